package cvdstate

import (
	"math"
	"math/rand"
	"strings"
	"testing"
)

// TestRandomWalkCS takes seeded random walks through the CS model, choosing
// among the allowed events, and checks that every walk is one of the 70
// histories and that the desiderata's observed frequencies approach their
// computed baselines.
func TestRandomWalkCS(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	valid := map[string]bool{}
	for _, h := range Histories() {
		valid[h.Events.String()] = true
	}
	baselines := Baselines()
	met := make([]int, len(baselines))
	const walks = 200000
	for range walks {
		var c CS
		var h History
		for {
			next := c.Allowed()
			if len(next) == 0 {
				break
			}
			e := next[rng.Intn(len(next))]
			to, _, err := c.Apply(e)
			if err != nil {
				t.Fatalf("allowed event %s refused from %s: %v", e, c, err)
			}
			c, h = to, append(h, e)
		}
		if !valid[h.String()] {
			t.Fatalf("walk %s is not a valid history", h)
		}
		for i, b := range baselines {
			if b.Desideratum.In(h) == Met {
				met[i]++
			}
		}
	}
	for i, b := range baselines {
		observed := float64(met[i]) / walks
		// Five standard deviations of a binomial share.
		tolerance := 5 * math.Sqrt(b.Frequency*(1-b.Frequency)/walks)
		if math.Abs(observed-b.Frequency) > tolerance {
			t.Errorf("%s: observed %.4f over %d walks, baseline %.4f", b.Desideratum, observed, walks, b.Frequency)
		}
	}
}

// TestRandomWalkRM applies random RM events and checks that only allowed
// ones change the state and CLOSED is final.
func TestRandomWalkRM(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	events := RMEvents()
	for range 2000 {
		s := RMStart
		for range 20 {
			e := events[rng.Intn(len(events))]
			next, msg, err := s.Apply(e)
			if err != nil {
				if next != s {
					t.Fatalf("refused %s moved %s to %s", e, s, next)
				}
				continue
			}
			if s == RMClosed || (s == RMValid && next == RMClosed) || (next == RMInvalid && s != RMReceived) {
				t.Fatalf("%s -%s-> %s is forbidden", s, e, next)
			}
			if (msg == 0) != (e == RMReceive) {
				t.Fatalf("%s -%s-> emits %v", s, e, msg)
			}
			s = next
		}
	}
}

// replica is a case with its participants, as a node keeps it.
type replica struct {
	c     CaseState
	ps    []ParticipantState
	roles []RoleSet
}

func newReplica() *replica {
	roles := []RoleSet{Vendor | Deployer | CaseOwner, Vendor, Deployer, Reporter | Finder, Coordinator | CaseManager, Observer}
	r := &replica{roles: roles, ps: make([]ParticipantState, len(roles))}
	r.ps[3].RM = RMAccepted // reporters enter the process in ACCEPTED
	return r
}

var allEvents = func() []Event {
	var out []Event
	for _, e := range RMEvents() {
		out = append(out, e)
	}
	for _, e := range EMEvents() {
		out = append(out, e)
	}
	for _, e := range CSEvents() {
		out = append(out, e)
	}
	return out
}()

// step applies event ev by participant i, and the bulk consent change to
// the others; it reports whether the step was allowed.
func (r *replica) step(t *testing.T, i int, ev Event) bool {
	t.Helper()
	out, err := Step(r.c, r.ps[i], r.roles[i], ev)
	if err != nil {
		return false
	}
	for j := range r.ps {
		if j != i {
			r.ps[j].PEC = BulkConsent(r.ps[j].PEC, out.Consent)
		}
	}
	prev := r.c
	r.c, r.ps[i] = out.Case, out.Participant
	r.check(t, prev, ev)
	return true
}

// receive delivers a message of type msg to participant i.
func (r *replica) receive(t *testing.T, i int, msg MessageType) {
	t.Helper()
	out, err := Receive(r.c, r.ps[i], r.roles[i], msg)
	if err != nil {
		t.Fatalf("Receive(%s): %v", msg, err)
	}
	for j := range r.ps {
		if j != i {
			r.ps[j].PEC = BulkConsent(r.ps[j].PEC, out.Consent)
		}
	}
	prev := r.c
	r.c, r.ps[i] = out.Case, out.Participant
	r.check(t, prev, msgEvent{msg})
}

// msgEvent names a received message in failure reports.
type msgEvent struct{ m MessageType }

func (e msgEvent) String() string { return "receive " + e.m.String() }
func (msgEvent) isEvent()         {}

// check asserts the invariants no sequence of allowed events may break.
func (r *replica) check(t *testing.T, prev CaseState, ev Event) {
	t.Helper()
	where := func() string { return prev.String() + " -" + ev.String() + "-> " + r.c.String() }
	for _, s := range []string{r.c.PXA.String(), r.c.EM.String()} {
		if strings.Contains(s, "(") {
			t.Fatalf("%s: invalid case state", where())
		}
	}
	if r.c.PXA&prev.PXA != prev.PXA {
		t.Fatalf("%s: a case-state event was undone", where())
	}
	if r.c.PXA&PXAExploit != 0 && r.c.PXA&PXAPublic == 0 {
		t.Fatalf("%s: exploit public without public awareness", where())
	}
	if r.c.EM != EMNone && r.c.EM != EMExited && r.c.PXA != PXANone {
		t.Fatalf("%s: embargo %s survives case state %s", where(), r.c.EM, r.c.PXA)
	}
	if prev.EM == EMExited && r.c.EM != EMExited {
		t.Fatalf("%s: an ended embargo came back", where())
	}
	for i, p := range r.ps {
		if strings.Contains(p.String(), "(") {
			t.Fatalf("%s: participant %d in an invalid state %s", where(), i, p)
		}
		if p.PEC == PECSignatory && !r.c.EM.InForce() {
			t.Fatalf("%s: participant %d is a signatory of no embargo (em=%s)", where(), i, r.c.EM)
		}
		if r.roles[i]&(Vendor|Deployer) == 0 && p.VFD != VFDNone {
			t.Fatalf("%s: participant %d without a fix path has VFD %s", where(), i, p.VFD)
		}
		if p.VFD >= VFDFixReady && p.RM != RMAccepted && p.RM != RMDeferred && p.RM != RMClosed {
			t.Fatalf("%s: participant %d has a fix ready in RM %s", where(), i, p.RM)
		}
		if deployerOnly(r.roles[i]) && p.VFD != VFDNone && p.VFD != VFDDeployed {
			t.Fatalf("%s: deployer %d is at %s; a deployer is at d or D", where(), i, p.VFD)
		}
	}
}

// TestRandomWalkCase drives a six-participant case with seeded random
// actions and received messages, and checks the invariants after every allowed step.
func TestRandomWalkCase(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	allowed := 0
	for range 3000 {
		r := newReplica()
		for range 60 {
			i := rng.Intn(len(r.ps))
			if rng.Intn(4) == 0 {
				types := MessageTypes()
				r.receive(t, i, types[rng.Intn(len(types))])
				continue
			}
			if r.step(t, i, allEvents[rng.Intn(len(allEvents))]) {
				allowed++
			}
		}
	}
	if allowed < 10000 {
		t.Errorf("only %d steps were allowed; the walk explores too little", allowed)
	}
}

// FuzzStep drives a case with actions read from the fuzzer's bytes: each
// pair of bytes picks a participant and an event.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 4, 3, 8, 0, 10, 3, 13})
	f.Add([]byte{3, 6, 0, 6, 0, 9, 2, 14, 1, 11})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := newReplica()
		for k := 0; k+1 < len(data); k += 2 {
			r.step(t, int(data[k])%len(r.ps), allEvents[int(data[k+1])%len(allEvents)])
		}
	})
}

// FuzzParseMessageType checks that whatever parses prints back to a
// spelling that parses to the same set.
func FuzzParseMessageType(f *testing.F) {
	for _, s := range []string{"RS|EP", "cp|et", "", "GI", "XX|RS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMessageType(s)
		if err != nil {
			return
		}
		back, err := ParseMessageType(m.String())
		if err != nil || back != m {
			t.Fatalf("%q parsed to %v, which prints as %q and parses back to %v, %v", s, m, m.String(), back, err)
		}
	})
}
