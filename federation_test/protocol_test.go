package federation_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/vocab"
)

// TestWholeProtocolOnTheWire runs one case through the whole protocol
// between five organizations on five `vultron serve` processes, signed,
// through their outboxes only: a finder, a vendor (owner, host of the
// Case Actor, no default embargo), a second vendor, a coordinator and an
// organization that only deploys. On the way: a report carrying an embargo
// proposal (RS|EP), pending in the case it opens; a second report of the
// same vulnerability, from the coordinator, added to the case; a
// suggestion answered the reference's way; a declared non-adherence that
// tears the pending proposal down; a new embargo; CF; a non-owner's ET
// with its reason; CD from the deployer; two repeats raced past the
// senders' own checks while the host was down, acknowledged. At the end: every
// activity each organization sent (and the Case Actor) is answered in its
// inbox with the acknowledgement the receiver tables give it
// (cvdstate.AcknowledgementOf of the messages it carried), every refusal
// with its model's error (cvdstate.ErrorOf), and every node holds the same
// verified ledger.
func TestWholeProtocolOnTheWire(t *testing.T) {
	bin := buildVultron(t)
	c := newCluster(t, bin, finderSpec, vendorSpec+" --default-embargo 0d", vendor2Spec, coordinatorSpec, "ops:Organization:deployer")
	end := time.Now().Add(45 * 24 * time.Hour).UTC().Truncate(time.Second)

	// RS|EP: the finder reports with an embargo proposal; the vendor's
	// validation opens a case with the proposal pending from the finder.
	offer := c.submit("finder", vocab.OfferReport(c.id("vendor"), "SQL injection in login", "The login form builds SQL from the user name.", end.Add(-45*24*time.Hour), end))
	offerID := offer["id"].(string)
	c.waitInbox("vendor", "the finder's report", func(a activity) bool { return a["id"] == offerID })
	c.submit("vendor", activity{"type": "Accept", "object": offerID, "to": []string{c.id("finder")}})
	host := c.waitCase("vendor", "", "the case its validation opened", func(cs clusterCase) bool { return cs.Hosted && cs.LedgerLength == 2 })
	caseID := host.ID
	c.hosts[caseID] = c.node("vendor")
	if host.EMState != "PROPOSED" {
		t.Fatalf("the case opens at EM %s, want PROPOSED with the finder's proposal:\n%s", host.EMState, host)
	}
	c.waitCase("finder", caseID, "the finder's replica", func(cs clusterCase) bool { return cs.LedgerLength == 2 })
	if p := caseProposals(c, "finder", caseID); len(p) != 1 || p[0].Terms.Proposer != c.id("finder") || !p[0].Terms.End.Equal(end) {
		t.Fatalf("the finder's replica shows proposals %+v, want the finder's, ending %s", p, end)
	}

	// The coordinator reports the same vulnerability: the owner adds its
	// report to the case, which opens no other.
	second := c.submit("coordinator", vocab.OfferReport(c.id("vendor"), "Login SQLi", "Reported to us by a customer.", time.Time{}, time.Time{}))
	secondID := second["id"].(string)
	secondReport := second["object"].(map[string]any)
	c.waitInbox("vendor", "the coordinator's report", func(a activity) bool { return a["id"] == secondID })
	c.record("vendor", caseID, vocab.AddReport(caseID, secondReport, c.id("coordinator")))
	c.waitInbox("coordinator", "the owner's adding of its report", func(a activity) bool { return a["type"] == "Add" && refID(a["object"]) == secondReport["id"] })
	c.expectRefused("vendor", activity{"type": "Accept", "object": secondID, "to": []string{c.id("coordinator")}}, http.StatusConflict)

	c.record("vendor", caseID, join(caseID))
	c.record("vendor", caseID, inviteActor(caseID, c.id("coordinator"), "coordinator"))
	joinByInvitation(c, caseID, "coordinator")
	c.record("coordinator", caseID, join(caseID))

	// A suggestion, the reference's way: the coordinator suggests vendor2,
	// the Case Actor offers the owner a participant, the owner accepts that
	// offer, vendor2 is invited and the coordinator told.
	suggestion := c.record("coordinator", caseID, activity{"type": "Offer", "object": c.id("vendor2"), "target": caseID, "context": caseID, "roles": []string{"vendor"}})
	offered := c.waitInbox("vendor", "the Case Actor's offer of vendor2", func(a activity) bool {
		return a["type"] == "Offer" && refID(a["origin"]) == suggestion["id"]
	})
	c.record("vendor", caseID, vocab.Respond("Accept", offered["id"].(string), caseID))
	c.waitInbox("coordinator", "the answer to its suggestion", func(a activity) bool {
		return a["type"] == "Accept" && refID(a["inReplyTo"]) == suggestion["id"]
	})
	joinByInvitation(c, caseID, "vendor2")
	c.record("vendor2", caseID, join(caseID))

	// vendor2 declares it will not honour an embargo: the pending
	// proposal is rejected (ER).
	c.record("vendor2", caseID, vocab.DeclareNonAdherence(caseID, participantID(c, caseID, "vendor2"), "We must tell our customers at once."))
	if cs, _ := c.caseOn("vendor", caseID); cs.EMState != "NONE" {
		t.Fatalf("after vendor2's non-adherence EM is %s, want NONE (the proposal rejected)", cs.EMState)
	}

	// A new embargo: the owner proposes, the finder binds itself, the
	// owner's acceptance puts it in force.
	proposal := c.record("vendor", caseID, vocab.ProposeEmbargo(caseID, time.Now(), time.Now().Add(30*24*time.Hour)))
	c.record("finder", caseID, vocab.Respond("Accept", proposal["id"].(string), caseID))
	c.record("vendor", caseID, vocab.Respond("Accept", proposal["id"].(string), caseID))

	// The deployer joins bound by it; the vendor readies a fix (CF); the
	// coordinator, not the owner, ends the embargo (ET), saying why; the
	// deployer reports its deployment (CD).
	c.record("vendor", caseID, inviteActor(caseID, c.id("ops"), "deployer"))
	joinByInvitation(c, caseID, "ops")
	c.record("ops", caseID, join(caseID))
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("coordinator", caseID, addNote(caseID, "Downstream packagers are ready.", ""))
	embargoID := caseEmbargoID(c, "coordinator", caseID)
	c.record("coordinator", caseID, vocab.TerminateEmbargo(caseID, embargoID, "An exploit was shown at a conference."))
	c.record("ops", caseID, fixStatus(caseID, participantID(c, caseID, "ops"), "VFD"))

	// Two repeats the senders' own checks cannot see: while the host is
	// down, vendor2 defers twice and two participants report publication;
	// the second of each changes nothing, and the Case Actor records and
	// acknowledges all four (RD in D: RK; CP in P: CK), as the receiver
	// tables say.
	finderPart, coordPart := participantID(c, caseID, "finder"), participantID(c, caseID, "coordinator")
	c.stop("vendor")
	defer1 := c.submit("vendor2", activity{"type": "Ignore", "object": caseID, "context": caseID})
	defer2 := c.submit("vendor2", activity{"type": "Ignore", "object": caseID, "context": caseID})
	pub1 := c.submit("finder", published(caseID, finderPart))
	pub2 := c.submit("coordinator", published(caseID, coordPart))
	c.restart("vendor")
	var refused, missing []string
	c.waitFor("the Case Actor to record all four", func() bool {
		recorded := map[string]bool{}
		for _, e := range c.ledgerOf("vendor", caseID) {
			recorded[e.LogObjectID] = true
		}
		missing = missing[:0]
		for _, a := range []activity{defer1, defer2, pub1, pub2} {
			if !recorded[a["id"].(string)] {
				missing = append(missing, a["id"].(string))
			}
		}
		return len(missing) == 0
	}, func() string { return fmt.Sprintf("not recorded so far %v", missing) })

	closeAll(c, caseID, "ops", "vendor2", "coordinator", "finder", "vendor")
	names := []string{"finder", "vendor", "vendor2", "coordinator", "ops"}
	final := c.checkConverged(caseID, names...)
	if !final.Closed || final.EMState != "EXITED" || final.PXAState != "Pxa" {
		t.Errorf("the case ends %s, want closed, EXITED, Pxa", final)
	}

	// What the scenario went through, as every node records it.
	entries := c.ledgerOf("vendor", caseID)
	for _, ev := range []string{"add_report_to_case", "offer_actor_to_case", "accept_offer_case_participant", "remove_embargo_event_from_case"} {
		if !slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.EventType == ev }) {
			t.Errorf("the ledger records no %s", ev)
		}
	}
	// Every entry means what it records without any node's store: what it
	// acts on is inline, never a bare id, and it is in the case (the
	// reference's ledger invariants 10 and 11).
	for _, e := range entries {
		doc, err := vocab.Parse(e.PayloadSnapshot)
		if err != nil || doc.Activity() == nil {
			t.Fatalf("entry %d (%s) does not parse as an activity: %v", e.LogIndex, e.EventType, err)
		}
		act := doc.Activity()
		if act.Object.Object == nil {
			t.Errorf("entry %d (%s) names its object by the bare id %q", e.LogIndex, e.EventType, act.Object.IRI)
		}
		if got := act.Context.ID(); got != caseID {
			t.Errorf("entry %d (%s) has context %q, want the case", e.LogIndex, e.EventType, got)
		}
		want := e.EventType
		if want == "case_fully_closed" {
			want = "close_case" // the Case Actor's own Leave, after the owner's
		}
		if got := cases.EventType(vocab.Classify(act, nil).Semantic); got != want {
			t.Errorf("entry %d classifies without a store as %s, but records %s: %s", e.LogIndex, got, e.EventType, e.PayloadSnapshot)
		}
	}
	detail := caseDetailOf(c, "finder", caseID)
	if len(detail.Reports) != 2 {
		t.Errorf("the case holds reports %v, want the finder's and the coordinator's", detail.Reports)
	}
	if p := detail.participant(c.id("ops")); p == nil || p.FixPath != "D" {
		t.Errorf("the deployer ends with fix path %+v, want D", p)
	}
	stepBy := func(by, msg, reason string) bool {
		return slices.ContainsFunc(detail.History, func(h historyStep) bool {
			return h.By == c.id(by) && h.Message == msg && strings.Contains(h.Reason, reason)
		})
	}
	if !stepBy("vendor2", "ER", "will not honour") || !stepBy("coordinator", "ET", "An exploit was shown at a conference.") {
		t.Errorf("the embargo's history lacks vendor2's non-adherence or the coordinator's ET:\n%+v", detail.History)
	}

	// Every activity sent, by each organization and by the Case Actor, is
	// answered as the receiver tables say: the acknowledgement of what it
	// carried, or the error of what was refused.
	caseActor := strings.TrimPrefix(final.CaseActor, c.node("vendor").url+"/actors/")
	var problems []string
	acks, errs := 0, 0
	c.waitFor("every reply the receiver tables name", func() bool {
		problems, acks, errs = checkReplies(c, caseID, append(names, caseActor), caseActor, refused)
		return len(problems) == 0
	}, func() string { return strings.Join(problems, "\n") })
	// The scenario sends well over 25 messages that the tables acknowledge
	// (two reports, a validation, engagements, notes, statuses, embargo
	// messages, closings, and the nodes' own RK|CV and invitations' RK).
	if errs != 0 || acks < 25 {
		t.Errorf("%d acknowledgements and %d errors were checked, want the scenario's (over 25) and no error", acks, errs)
	}
	t.Logf("%d acknowledgements and %d errors checked against cvdstate", acks, errs)
}

// checkReplies checks that every activity the named actors sent (their
// outboxes) is answered in their inboxes: a refused one (its id in
// refused) with the error cvdstate.ErrorOf gives what it carried, any
// other with cvdstate.AcknowledgementOf's acknowledgement. It returns what
// is missing or wrong, and how many replies it checked.
func checkReplies(c *cluster, caseID string, names []string, caseActor string, refused []string) (problems []string, acks, errs int) {
	c.t.Helper()
	r := newScenarioResolver(c, caseID, names)
	for _, who := range names {
		n := c.node("vendor")
		if who != caseActor {
			n = c.node(who)
		}
		inbox := boxOf(c, n, who, "inbox")
		for _, a := range boxOf(c, n, who, "outbox") {
			id, _ := a["id"].(string)
			carried := toCvdstate(c.t, r.classify(c.t, a).Messages)
			typ, want := "Read", cvdstate.AcknowledgementOf(carried)
			if slices.Contains(refused, id) {
				typ, want = "Ignore", cvdstate.ErrorOf(carried)
				errs++
			} else if want == 0 {
				continue
			} else {
				acks++
			}
			got := replyIn(c.t, r, inbox, typ, id)
			switch {
			case got == nil:
				problems = append(problems, fmt.Sprintf("%s's %s %s (%s): no %s in reply to it, want %s", who, a["type"], id, carried, typ, want))
			case toCvdstate(c.t, got.Messages)&want != want:
				problems = append(problems, fmt.Sprintf("%s's %s %s (%s): the %s in reply is %s (%s), want %s", who, a["type"], id, carried, typ, got.Semantic, got.Messages, want))
			}
		}
	}
	return problems, acks, errs
}

// joinByInvitation has the invitee accept the Case Actor's invitation and
// waits until its own replica shows it a participant at RECEIVED.
func joinByInvitation(c *cluster, caseID, invitee string) {
	c.t.Helper()
	inv := caseActorInvite(c, caseID, invitee)
	c.record(invitee, caseID, activity{"type": "Accept", "object": inv["id"]})
	c.waitCase(invitee, caseID, "its own replica showing it a participant", func(cs clusterCase) bool {
		p := cs.participant(c.id(invitee))
		return p != nil && p.RMState == "RECEIVED"
	})
}

// historyStep is one step of a case's embargo history, as the read API
// shows it.
type historyStep struct {
	By      string `json:"by"`
	Message string `json:"message"`
	Reason  string `json:"reason"`
}

// scenarioCase is the detail of a case the scenario checks.
type scenarioCase struct {
	Reports      []string `json:"reports"`
	Participants []struct {
		Actor   string `json:"actor"`
		FixPath string `json:"fixPath"`
	} `json:"participants"`
	History   []historyStep        `json:"embargoHistory"`
	Embargo   *struct{ ID string } `json:"embargo"`
	Proposals []struct {
		InviteID string `json:"inviteId"`
		Terms    struct {
			End      time.Time `json:"end"`
			Proposer string    `json:"proposer"`
		} `json:"terms"`
	} `json:"proposals"`
}

func (s scenarioCase) participant(actor string) *struct {
	Actor   string `json:"actor"`
	FixPath string `json:"fixPath"`
} {
	for i := range s.Participants {
		if s.Participants[i].Actor == actor {
			return &s.Participants[i]
		}
	}
	return nil
}

func caseDetailOf(c *cluster, name, caseID string) scenarioCase {
	c.t.Helper()
	status, body := c.api(c.node(name), http.MethodGet, "/api/cases/"+url.PathEscape(caseID), nil)
	var out scenarioCase
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil {
		c.t.Fatalf("GET /api/cases/%s on %s: %d %s", caseID, name, status, body)
	}
	return out
}

func caseProposals(c *cluster, name, caseID string) []struct {
	InviteID string `json:"inviteId"`
	Terms    struct {
		End      time.Time `json:"end"`
		Proposer string    `json:"proposer"`
	} `json:"terms"`
} {
	return caseDetailOf(c, name, caseID).Proposals
}

func caseEmbargoID(c *cluster, name, caseID string) string {
	c.t.Helper()
	d := caseDetailOf(c, name, caseID)
	if d.Embargo == nil || d.Embargo.ID == "" {
		c.t.Fatalf("case %s on %s has no embargo", caseID, name)
	}
	return d.Embargo.ID
}

// boxOf returns every activity in a local actor's inbox or outbox, paging
// through the API.
func boxOf(c *cluster, n *clusterNode, name, box string) []activity {
	c.t.Helper()
	var all []activity
	path := "/actors/" + name + "/" + box + "?limit=200"
	for pages := 0; pages < 50; pages++ {
		status, body := c.api(n, http.MethodGet, path, nil)
		if status != http.StatusOK {
			c.t.Fatalf("GET %s on %s: %d %s", path, n.name, status, body)
		}
		var page struct {
			Items []activity `json:"orderedItems"`
			Next  string     `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			c.t.Fatalf("GET %s on %s: %v", path, n.name, err)
		}
		all = append(all, page.Items...)
		if page.Next == "" {
			return all
		}
		path = strings.TrimPrefix(page.Next, n.url)
	}
	c.t.Fatalf("%s of %s has more than 50 pages", box, name)
	return nil
}

// scenarioResolver knows every object of the scenario: those the nodes'
// inboxes and outboxes and the case's ledger carry, and the case.
type scenarioResolver map[string]vocab.Object

func (r scenarioResolver) Resolve(id string) (vocab.Object, bool) {
	o, ok := r[id]
	return o, ok
}

// newScenarioResolver collects the objects the named actors sent and
// received and those the case's ledger recorded.
func newScenarioResolver(c *cluster, caseID string, names []string) scenarioResolver {
	c.t.Helper()
	r := scenarioResolver{}
	vc := &vocab.VulnerabilityCase{}
	vc.ID, vc.Type = caseID, vocab.TypeVulnerabilityCase
	r[caseID] = vc
	var docs []any
	for _, e := range c.ledgerOf("vendor", caseID) {
		var v any
		if json.Unmarshal(e.PayloadSnapshot, &v) == nil {
			docs = append(docs, v)
		}
	}
	for _, name := range names {
		n, ok := c.nodes[name]
		if !ok {
			n = c.node("vendor") // the Case Actor
		}
		for _, box := range []string{"inbox", "outbox"} {
			for _, a := range boxOf(c, n, name, box) {
				docs = append(docs, map[string]any(a))
			}
		}
	}
	for _, d := range docs {
		r.add(d, 0)
	}
	return r
}

// add registers every JSON object with an id and a type inside v.
func (r scenarioResolver) add(v any, depth int) {
	if depth > 8 {
		return
	}
	switch v := v.(type) {
	case map[string]any:
		if id, _ := v["id"].(string); id != "" && v["type"] != nil {
			if _, held := r[id]; !held {
				m := map[string]any{"@context": vocab.VultronContext}
				for k, x := range v {
					if k != "@context" {
						m[k] = x
					}
				}
				if b, err := json.Marshal(m); err == nil {
					if doc, err := vocab.Parse(b); err == nil {
						r[id] = doc.Object
					}
				}
			}
		}
		for _, x := range v {
			r.add(x, depth+1)
		}
	case []any:
		for _, x := range v {
			r.add(x, depth+1)
		}
	}
}

// classify classifies an activity as JSON with the resolver.
func (r scenarioResolver) classify(t *testing.T, a activity) vocab.Classification {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := vocab.Parse(b)
	if err != nil || doc.Activity() == nil {
		t.Fatalf("the node's activity %s does not parse: %v", b, err)
	}
	return vocab.Classify(doc.Activity(), r)
}

// replyIn returns the classification of the reply of type typ (Read,
// Ignore) to activity id in an inbox, nil if there is none.
func replyIn(t *testing.T, r scenarioResolver, inbox []activity, typ, id string) *vocab.Classification {
	t.Helper()
	for _, a := range inbox {
		if a["type"] == typ && refID(a["inReplyTo"]) == id {
			cl := r.classify(t, a)
			return &cl
		}
	}
	return nil
}

// toCvdstate converts the message types of a classification into
// cvdstate's: both are the protocol's 28 types, written alike.
func toCvdstate(t *testing.T, m vocab.MessageTypes) cvdstate.MessageType {
	t.Helper()
	if m == 0 {
		return 0
	}
	out, err := cvdstate.ParseMessageType(m.String())
	if err != nil {
		t.Fatalf("message types %s: %v", m, err)
	}
	return out
}
