package federation_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// A fault plan is the schedule of one seed, drawn from it alone: which
// actors open cases, the protocol actions the participants take, and when
// nodes are cut off or killed. The plan is what a participant intends; at
// run time each action is resolved against what the acting actor's own
// node shows (its pending proposals, its invitations), and the node may
// refuse it.

// faultActors are the cluster's actors, one per node (NAME:TYPE[:ROLES]).
func faultActors() []string {
	return []string{"finder:Person", "vendor:Organization", "vendor2:Organization",
		"coordinator:Organization:coordinator", "deployer:Organization:deployer"}
}

// faultNodes are the names of the cluster's nodes, in a fixed order.
func faultNodes() []string {
	var out []string
	for _, spec := range faultActors() {
		name, _, _ := strings.Cut(spec, ":")
		out = append(out, name)
	}
	return out
}

// inviteRoles is the role an organization is invited to a case with.
func inviteRoles(name string) []string {
	switch name {
	case "coordinator":
		return []string{"coordinator"}
	case "deployer":
		return []string{"deployer"}
	}
	return []string{"vendor"}
}

// planOp is what a step does.
type planOp string

const (
	opNote         planOp = "note"
	opBurst        planOp = "burst"           // count notes, one right after the other
	opJoin         planOp = "engage"          // Join: RA
	opPropose      planOp = "propose-embargo" // by the owner, or any participant unless held back
	opAnswer       planOp = "answer-embargo"  // accept or reject the newest pending proposal
	opInvite       planOp = "invite"          // the owner invites other
	opAnswerInvite planOp = "answer-invite"   // accept or reject the Case Actor's invitation
	opFix          planOp = "fix"             // fix ready (VFd), or deployed (VFD) for a deployer
	opPublic       planOp = "public"          // the vulnerability is public (CP)
	opClose        planOp = "close"           // Leave: RC
	opKill         planOp = "kill"            // SIGKILL a node, restart it after hold
	opCut          planOp = "cut"             // cut a node off for hold
)

// downBurst is how many notes a case's owner records while the finder's
// node is down, once in every seed with kills.
const downBurst = 50

// planStep is one step of a plan.
type planStep struct {
	op     planOp
	gap    time.Duration // pause before the step, after the previous one was sent
	caseIx int
	actor  string        // who acts; for kill and cut, the node
	other  string        // the invitee of an invite
	count  int           // notes in a burst
	accept bool          // an answer accepts (or rejects)
	days   int           // a proposed embargo's length
	hold   time.Duration // kill and cut: how long the node is out
	lag    time.Duration // kill: how long after the step's start the kill falls
	// untilBurst keeps a killed node down, after hold, until the burst
	// that follows the kill was sent: the entries of that burst are all
	// recorded while the node is down.
	untilBurst bool
}

func (s planStep) String() string {
	switch s.op {
	case opKill:
		if s.untilBurst {
			return fmt.Sprintf("SIGKILL %s (%s after the step starts), restart after %s once the next burst was sent", s.actor, s.lag.Round(time.Millisecond), s.hold.Round(time.Millisecond))
		}
		return fmt.Sprintf("SIGKILL %s (%s after the step starts), restart after %s", s.actor, s.lag.Round(time.Millisecond), s.hold.Round(time.Millisecond))
	case opCut:
		return fmt.Sprintf("cut %s off for %s", s.actor, s.hold.Round(time.Millisecond))
	case opBurst:
		return fmt.Sprintf("case%d %s %s of %d notes", s.caseIx, s.actor, s.op, s.count)
	case opInvite:
		return fmt.Sprintf("case%d %s invites %s", s.caseIx, s.actor, s.other)
	case opAnswer, opAnswerInvite:
		verb := "rejects"
		if s.accept {
			verb = "accepts"
		}
		return fmt.Sprintf("case%d %s %s (%s)", s.caseIx, s.actor, verb, s.op)
	case opPropose:
		return fmt.Sprintf("case%d %s proposes a %d-day embargo", s.caseIx, s.actor, s.days)
	}
	return fmt.Sprintf("case%d %s %s", s.caseIx, s.actor, s.op)
}

// faultPlan is the schedule of one seed.
type faultPlan struct {
	seed      int64
	receivers []string // per case: the actor the finder reports to, who owns the case
	steps     []planStep
}

// caseModel is what a plan intends of one case so far: who takes part,
// who was invited, who engaged or closed. Only the plan's choices depend
// on it.
type caseModel struct {
	owner   string
	members []string
	invited map[string]bool // pending invitations
	asked   map[string]bool // every actor ever invited
	joined  map[string]bool
	fixed   map[string]bool
	closed  map[string]bool
	// published: a publication is planned, which ends the embargo
	published bool
}

// Behaviours of a plan that can be held back (see heldBackActions).
const (
	// actLostRefusal: actions the Case Actor may refuse while the
	// sender's node accepted them, of a kind whose refusal is lost today:
	// embargo proposals and publication (which ends the embargo) by
	// participants other than the owner, the owner's proposals after its
	// publication, and inviting an actor a second time. Held back, only
	// the owner proposes and publishes (not after it closed the case),
	// proposes only before it publishes, and invites each actor once.
	actLostRefusal = "lost-refusal"
	// actBeforeReplica: acting on a case before one's own node holds its
	// replica; held back, the driver waits for the replica first.
	actBeforeReplica = "act-before-replica"
)

// allActions lists the behaviours that can be held back.
func allActions() []string { return []string{actLostRefusal, actBeforeReplica} }

// newFaultPlan draws the plan of a seed. Kill and cut windows appear only
// when their kinds are on; each is often followed by a burst of notes from
// a participant on another node, so that many entries are recorded while
// a node is out. Behaviours in withheld are left out.
func newFaultPlan(seed int64, kinds faultKinds, withheld map[string]bool) faultPlan {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	receivers := []string{"vendor", "vendor2", "coordinator"}
	rng.Shuffle(len(receivers), func(i, j int) { receivers[i], receivers[j] = receivers[j], receivers[i] })
	p := faultPlan{seed: seed, receivers: receivers[:1+rng.IntN(2)]}
	models := make([]*caseModel, len(p.receivers))
	for i, r := range p.receivers {
		// The finder enters a case already engaged (RM ACCEPTED).
		models[i] = &caseModel{owner: r, members: []string{r, "finder"}, invited: map[string]bool{}, asked: map[string]bool{},
			joined: map[string]bool{"finder": true}, fixed: map[string]bool{}, closed: map[string]bool{}}
	}
	n := 40 + rng.IntN(30)
	windows := map[int][]planStep{}
	for _, kind := range []faultKind{faultKill, faultCut} {
		if !kinds[kind] {
			continue
		}
		op := opKill
		if kind == faultCut {
			op = opCut
		}
		for range 1 + rng.IntN(2) {
			w := planStep{op: op, actor: faultNodes()[rng.IntN(len(faultNodes()))],
				hold: 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))}
			if op == opKill {
				w.lag = time.Duration(rng.Int64N(int64(50 * time.Millisecond)))
			}
			at := rng.IntN(n)
			windows[at] = append(windows[at], w)
		}
	}
	// Every seed with kills keeps the finder's node down while its first
	// case's owner records downBurst notes: the finder's replica must
	// catch up with all of them once it is back.
	if kinds[faultKill] {
		at := rng.IntN(n)
		windows[at] = append([]planStep{{op: opKill, actor: "finder", untilBurst: true,
			hold: 500*time.Millisecond + time.Duration(rng.Int64N(int64(2500*time.Millisecond)))}}, windows[at]...)
	}
	for i := range n {
		for _, w := range windows[i] {
			p.steps = append(p.steps, w)
			if w.untilBurst {
				p.steps = append(p.steps, planStep{op: opBurst, caseIx: 0, actor: p.receivers[0], count: downBurst})
				continue
			}
			if rng.Float64() < 0.7 {
				ix := rng.IntN(len(models))
				var others []string
				for _, m := range models[ix].active() {
					if m != w.actor {
						others = append(others, m)
					}
				}
				if len(others) > 0 {
					p.steps = append(p.steps, planStep{op: opBurst, caseIx: ix, actor: others[rng.IntN(len(others))], count: 20 + rng.IntN(31)})
				}
			}
		}
		ix := rng.IntN(len(models))
		st := models[ix].next(rng, i, n, withheld)
		st.caseIx = ix
		st.gap = time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
		p.steps = append(p.steps, st)
	}
	return p
}

// embargoActor returns who proposes an embargo or publishes: the actor
// drawn, or the owner when actions whose refusal is lost are withheld.
func (m *caseModel) embargoActor(withheld map[string]bool, drawn string) string {
	if withheld[actLostRefusal] {
		return m.owner
	}
	return drawn
}

// mayEmbargo reports whether a proposal (or, with publishing, a
// publication) can be planned: always, or, when actions whose refusal is
// lost are withheld, only while the owner takes part and (for a proposal)
// has not planned its publication.
func (m *caseModel) mayEmbargo(withheld map[string]bool, publishing bool) bool {
	if !withheld[actLostRefusal] {
		return true
	}
	return !m.closed[m.owner] && (publishing || !m.published)
}

// active returns the members that have not closed the case.
func (m *caseModel) active() []string {
	var out []string
	for _, a := range m.members {
		if !m.closed[a] {
			out = append(out, a)
		}
	}
	return out
}

// next draws the i-th of n steps in the case.
func (m *caseModel) next(rng *rand.Rand, i, n int, withheld map[string]bool) planStep {
	active := m.active()
	if len(active) == 0 {
		// Everyone closed: what the finder tries now is refused.
		return planStep{op: opNote, actor: "finder"}
	}
	pick := func(from []string) string { return from[rng.IntN(len(from))] }
	type option struct {
		weight float64
		step   func() planStep
	}
	options := []option{
		{4, func() planStep { return planStep{op: opNote, actor: pick(active)} }},
		{0.5, func() planStep { return planStep{op: opBurst, actor: pick(active), count: 10 + rng.IntN(21)} }},
		{1.2, func() planStep { return planStep{op: opAnswer, actor: pick(active), accept: rng.Float64() < 0.75} }},
	}
	// Held back, only the owner proposes, and only while it takes part
	// and has not planned its publication, which ends the embargo: a
	// proposal still on its way when the embargo ends is refused.
	if m.mayEmbargo(withheld, false) {
		options = append(options, option{1, func() planStep {
			return planStep{op: opPropose, actor: m.embargoActor(withheld, pick(active)), days: 30 + rng.IntN(91)}
		}})
	}
	var unjoined, outsiders, invited, fixers []string
	for _, a := range active {
		if !m.joined[a] {
			unjoined = append(unjoined, a)
		}
		if a != "finder" && a != "coordinator" && !m.fixed[a] {
			fixers = append(fixers, a)
		}
	}
	for _, a := range faultNodes() {
		switch {
		case m.invited[a]:
			invited = append(invited, a)
		case !slices.Contains(m.members, a) && a != "finder" && !(withheld[actLostRefusal] && m.asked[a]):
			outsiders = append(outsiders, a)
		}
	}
	if len(unjoined) > 0 {
		options = append(options, option{2, func() planStep {
			a := pick(unjoined)
			m.joined[a] = true
			return planStep{op: opJoin, actor: a}
		}})
	}
	if len(outsiders) > 0 && !m.closed[m.owner] {
		options = append(options, option{1.5, func() planStep {
			a := pick(outsiders)
			m.invited[a], m.asked[a] = true, true
			return planStep{op: opInvite, actor: m.owner, other: a}
		}})
	}
	if len(invited) > 0 {
		options = append(options, option{3, func() planStep {
			a := pick(invited)
			delete(m.invited, a)
			accept := rng.Float64() < 0.85
			if accept {
				m.members = append(m.members, a)
			}
			return planStep{op: opAnswerInvite, actor: a, accept: accept}
		}})
	}
	if len(fixers) > 0 {
		options = append(options, option{0.8, func() planStep {
			a := pick(fixers)
			m.fixed[a] = true
			return planStep{op: opFix, actor: a}
		}})
	}
	if i > 2*n/3 && m.mayEmbargo(withheld, true) {
		options = append(options, option{0.4, func() planStep {
			m.published = true
			return planStep{op: opPublic, actor: m.embargoActor(withheld, pick(active))}
		}})
	}
	if i > n*85/100 {
		options = append(options, option{0.5, func() planStep {
			a := pick(active)
			m.closed[a] = true
			return planStep{op: opClose, actor: a}
		}})
	}
	total := 0.0
	for _, o := range options {
		total += o.weight
	}
	x := rng.Float64() * total
	for _, o := range options {
		if x < o.weight {
			return o.step()
		}
		x -= o.weight
	}
	return options[0].step()
}
