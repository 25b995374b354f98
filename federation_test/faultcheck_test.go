package federation_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/ledger"
)

// The invariants a seed must end with, once every fault healed and the
// cluster had time to converge, checked on what the harness read of each
// case: the host's view and ledger, each participant node's replica, the
// activities the C2S API accepted for the case and the Case Actor's
// refusals of them.
//
//	(a) every replica reaches the Case Actor's tail: the same length and
//	    tail hash as the host's ledger;
//	(b) no entry is recorded twice: no activity id appears twice in the
//	    host's ledger;
//	(c) none is lost: every activity a C2S call accepted (201) for the
//	    case is in the host's ledger, or the Case Actor refused it with a
//	    Reject in the sender's inbox;
//	(d) no replica applied what the Case Actor did not record: each
//	    replica's ledger is the host's, entry hash by entry hash, and its
//	    view of the case (owner, EM and pxa states, participants' roles,
//	    RM, vfd, PEC and embargo consent, notes, pending proposals) is the
//	    host's, with no divergence recorded.

// sentActivity is an activity a C2S call got 201 for.
type sentActivity struct {
	id      string
	actor   string // the sending actor's name (its node's)
	actorID string
	what    string // the step that sent it
}

// deliveryInfo is a pending delivery or dead letter as GET /api/deliveries
// shows it.
type deliveryInfo struct {
	Activity    string `json:"activity"`
	Recipient   string `json:"recipient"`
	OrderingKey string `json:"orderingKey"`
	Attempts    int    `json:"attempts"`
	LastError   string `json:"lastError"`
}

// replicaState is what one participant's node holds of a case.
type replicaState struct {
	node   string
	actor  string // the id of the participant's actor on it
	held   bool   // false: the node does not hold the case at all
	view   clusterCase
	ledger []ledger.Entry
}

// caseState is everything the invariants of one case are checked on.
type caseState struct {
	id       string
	host     string
	hostView clusterCase
	ledger   []ledger.Entry // the host's
	replicas []replicaState
	sent     []sentActivity
	refused  map[string]string         // activity id → the Case Actor's reason
	dead     map[string][]deliveryInfo // node name → its dead letters in the case's lane
	// addressed holds the recipients of the sent activities that are
	// neither recorded nor refused, as their senders' nodes stored them.
	addressed map[string][]string
}

// violations checks the invariants and says, one line each, what broke.
func (cs *caseState) violations() []string {
	var v []string
	add := func(format string, args ...any) { v = append(v, fmt.Sprintf(format, args...)) }
	host := cs.ledger

	// The host must serve the ledger it reports, and it must chain.
	if int64(len(host)) != cs.hostView.LedgerLength || (len(host) > 0 && host[len(host)-1].EntryHash != cs.hostView.TailHash) {
		add("(a) host %s reports %d entries ending in %s but serves %d ending in %s", cs.host, cs.hostView.LedgerLength, short(cs.hostView.TailHash), len(host), short(tailHash(host)))
	}
	if len(host) > 0 {
		if genesis, err := genesisOf(cs.id, host[0]); err != nil {
			add("(d) host %s: %v", cs.host, err)
		} else if err := ledger.Verify(host, genesis); err != nil {
			add("(d) host %s: its ledger does not verify: %v", cs.host, err)
		}
	}

	// (b)
	at := map[string]int64{}
	recorded := map[string]bool{}
	for _, e := range host {
		if first, dup := at[e.LogObjectID]; dup {
			add("(b) activity %s is recorded twice in the host's ledger: entries %d and %d (%s)", e.LogObjectID, first, e.LogIndex, e.EventType)
			continue
		}
		at[e.LogObjectID], recorded[e.LogObjectID] = e.LogIndex, true
	}

	// (a) and (d)
	for _, r := range cs.replicas {
		if !r.held {
			add("(a) node %s holds no replica of the case, though %s takes part in it (the host holds %d entries)", r.node, r.actor, len(host))
			continue
		}
		if r.view.Diverged != "" {
			add("(d) node %s: its replica diverged: %s", r.node, r.view.Diverged)
		}
		if int64(len(r.ledger)) != r.view.LedgerLength || r.view.TailHash != tailHash(r.ledger) {
			add("(a) node %s reports %d entries ending in %s but serves %d ending in %s", r.node, r.view.LedgerLength, short(r.view.TailHash), len(r.ledger), short(tailHash(r.ledger)))
		}
		mismatch := -1
		for i := range min(len(r.ledger), len(host)) {
			if r.ledger[i].EntryHash != host[i].EntryHash {
				mismatch = i
				break
			}
		}
		switch {
		case mismatch >= 0:
			add("(d) node %s: entry %d is %s %s, the host's entry %d is %s %s: the replica holds what the Case Actor did not record",
				r.node, mismatch, r.ledger[mismatch].EventType, short(r.ledger[mismatch].EntryHash), mismatch, host[mismatch].EventType, short(host[mismatch].EntryHash))
		case len(r.ledger) > len(host):
			add("(d) node %s holds %d entries, more than the host's %d", r.node, len(r.ledger), len(host))
		case len(r.ledger) < len(host):
			add("(a) node %s holds %d of the host's %d entries: %d behind (its tail %s, the host's %s)%s",
				r.node, len(r.ledger), len(host), len(host)-len(r.ledger), short(tailHash(r.ledger)), short(tailHash(host)), cs.deadTo(r))
		default:
			for _, d := range viewDiffs(cs.hostView, r.view) {
				add("(d) node %s: %s", r.node, d)
			}
		}
	}

	// (c)
	for _, s := range cs.sent {
		if recorded[s.id] {
			continue
		}
		if _, ok := cs.refused[s.id]; ok {
			continue
		}
		to := ""
		if rs, ok := cs.addressed[s.id]; ok {
			to = fmt.Sprintf(" (its node addressed it to %v)", rs)
		}
		add("(c) lost: %s (activity %s) got 201 from %s's node but is neither in the host's ledger nor refused by the Case Actor%s%s",
			s.what, s.id, s.actor, to, cs.deadOf(s))
	}
	return v
}

// deadTo explains a replica that is behind with the dead letters of the
// case's lane on the host (to the replica's actor) and on the replica's
// node (its replay requests).
func (cs *caseState) deadTo(r replicaState) string {
	var parts []string
	for _, d := range cs.dead[cs.host] {
		if d.Recipient == r.actor {
			parts = append(parts, fmt.Sprintf("host dead-lettered %s to it after %d attempts: %s", d.Activity, d.Attempts, d.LastError))
		}
	}
	for _, d := range cs.dead[r.node] {
		parts = append(parts, fmt.Sprintf("%s dead-lettered %s to %s after %d attempts: %s", r.node, d.Activity, d.Recipient, d.Attempts, d.LastError))
	}
	return listSuffix(parts)
}

// deadOf explains a lost activity with its dead letters on the sender's
// node, and the host's dead letters to the sender in the case's lane (a
// refusal that did not arrive, or an announcement).
func (cs *caseState) deadOf(s sentActivity) string {
	var parts []string
	for _, d := range cs.dead[s.actor] {
		if d.Activity == s.id {
			parts = append(parts, fmt.Sprintf("%s dead-lettered it to %s after %d attempts: %s", s.actor, d.Recipient, d.Attempts, d.LastError))
		}
	}
	for _, d := range cs.dead[cs.host] {
		if d.Recipient == s.actorID && d.Activity != s.id {
			parts = append(parts, fmt.Sprintf("the host dead-lettered %s to %s in the case's lane after %d attempts: %s", d.Activity, s.actor, d.Attempts, d.LastError))
		}
	}
	return listSuffix(parts)
}

// capViolations keeps at most per violations of each invariant, (a) to
// (d), and says how many more there were.
func capViolations(vs []string, per int) []string {
	var out []string
	seen := map[string]int{}
	for _, v := range vs {
		tag := ""
		if i := strings.Index(v, "("); i >= 0 && i+3 <= len(v) && v[i+2] == ')' {
			tag = v[i : i+3]
		}
		seen[tag]++
		if seen[tag] <= per {
			out = append(out, v)
		}
	}
	for _, tag := range []string{"(a)", "(b)", "(c)", "(d)", ""} {
		if n := seen[tag] - per; n > 0 {
			out = append(out, fmt.Sprintf("%s … and %d more like it", tag, n))
		}
	}
	return out
}

// listSuffix joins explanations after "; " (at most five, with a count of
// the rest).
func listSuffix(parts []string) string {
	if len(parts) == 0 {
		return ""
	}
	more := ""
	if len(parts) > 5 {
		more = fmt.Sprintf("; and %d more", len(parts)-5)
		parts = parts[:5]
	}
	return "; " + strings.Join(parts, "; ") + more
}

// viewDiffs says where a replica's view of a case differs from the host's.
func viewDiffs(host, replica clusterCase) []string {
	var diffs []string
	field := func(name, h, r string) {
		if h != r {
			diffs = append(diffs, fmt.Sprintf("%s is %q, the host's %q", name, r, h))
		}
	}
	field("owner", host.Owner, replica.Owner)
	field("EM state", host.EMState, replica.EMState)
	field("pxa state", host.PXAState, replica.PXAState)
	end := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	field("embargo end", end(host.EmbargoEnd), end(replica.EmbargoEnd))
	field("closed", fmt.Sprint(host.Closed), fmt.Sprint(replica.Closed))
	field("number of notes", fmt.Sprint(host.NotesTotal), fmt.Sprint(replica.NotesTotal))
	proposals := func(cs clusterCase) string {
		var ids []string
		for _, p := range cs.Proposals {
			ids = append(ids, p.InviteID)
		}
		slices.Sort(ids)
		return strings.Join(ids, " ")
	}
	field("pending proposals", proposals(host), proposals(replica))
	for _, hp := range host.Participants {
		rp := replica.participant(hp.Actor)
		if rp == nil {
			diffs = append(diffs, fmt.Sprintf("participant %s is missing", hp.Actor))
			continue
		}
		field("participant "+hp.Actor, participantLine(hp), participantLine(*rp))
	}
	for _, rp := range replica.Participants {
		if host.participant(rp.Actor) == nil {
			diffs = append(diffs, fmt.Sprintf("participant %s is there, the host has none", rp.Actor))
		}
	}
	return diffs
}

func participantLine(p clusterParticipant) string {
	roles := slices.Clone(p.Roles)
	slices.Sort(roles)
	return fmt.Sprintf("id=%s roles=%s rm=%s vfd=%s pec=%s signatory=%v removed=%v",
		p.ID, strings.Join(roles, "|"), p.RMState, p.VFDState, p.PECState, p.EmbargoAdherence, p.Removed)
}

func tailHash(entries []ledger.Entry) string {
	if len(entries) == 0 {
		return ""
	}
	return entries[len(entries)-1].EntryHash
}

// short abbreviates a hash for messages.
func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(none)"
	}
	return h
}
