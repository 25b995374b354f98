package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
)

func (tn *testNode) cases(t testing.TB) []api.Case {
	t.Helper()
	return apiGet[api.CasePage](t, tn, "/api/cases").Cases
}

// oneCase waits until the node holds exactly one case satisfying cond.
func (tn *testNode) oneCase(t testing.TB, what string, cond func(api.Case) bool) api.Case {
	t.Helper()
	var got api.Case
	waitFor(t, what, func() bool {
		cs := tn.cases(t)
		if len(cs) == 1 && cond(cs[0]) {
			got = cs[0]
			return true
		}
		return false
	})
	return got
}

func participantOf(c api.Case, actor string) (id, rm, vfd, pec string) {
	for _, p := range c.Participants {
		if p.Actor == actor {
			return p.ID, p.RMState, p.VFDState, p.PECState
		}
	}
	return "", "", "", ""
}

// TestCaseLifecycleBetweenNodes runs the finder-vendor story across two
// nodes through their outboxes: validating the report opens a case with the
// vendor's default embargo, whose ledger the finder's node replicates;
// engaging, notes, a fix and publication (which ends the embargo), and
// closing by both: the owner first, which closes the case for everyone
// (the Case Actor's case_fully_closed entry), then the finder, whose own
// Leave the closed case still takes; at the end both hold the same ledger.
func TestCaseLifecycleBetweenNodes(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNodeWith(t, Config{DefaultEmbargo: 90 * 24 * time.Hour}, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"SQL injection in login","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))

	host := vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 })
	if !host.Hosted || host.Owner != vendorID || host.EMState != "ACTIVE" {
		t.Fatalf("hosted case = %+v", host)
	}
	replica := finder.oneCase(t, "the case replica at the finder", func(c api.Case) bool { return c.LedgerLength == 2 })
	if replica.Hosted || replica.TailHash != host.TailHash || replica.Diverged != "" {
		t.Fatalf("replica = %+v, host tail %s", replica, host.TailHash)
	}
	caseID := host.ID
	vendorPart, _, _, _ := participantOf(host, vendorID)
	finderPart, _, _, _ := participantOf(host, finderID)

	steps := []struct {
		node            *testNode
		actor, activity string
	}{
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"Any progress?"},"target":%q,"context":%q}`, caseID, caseID)},
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"vfdState":"VFd"},"target":%q,"context":%q}`, vendorPart, vendorPart, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"caseStatus":{"type":"CaseStatus","pxaState":"Pxa"}},"target":%q,"context":%q}`, finderPart, finderPart, caseID)},
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID)},
	}
	want := int64(2)
	for i, s := range steps {
		want++
		if i == 4 {
			want++ // the vendor, the owner, leaves: its Case Actor closes the case next
		}
		s.node.submit(t, s.actor, s.activity)
		vendor.oneCase(t, fmt.Sprintf("entry %d at the vendor", want), func(c api.Case) bool { return c.LedgerLength == want })
		finder.oneCase(t, fmt.Sprintf("entry %d at the finder", want), func(c api.Case) bool { return c.LedgerLength == want })
	}
	h := vendor.cases(t)[0]
	r := finder.cases(t)[0]
	if h.TailHash != r.TailHash || r.Diverged != "" {
		t.Fatalf("tails differ: host %s replica %s (diverged %q)", h.TailHash, r.TailHash, r.Diverged)
	}
	for _, c := range []api.Case{h, r} {
		if !c.Closed || c.PXAState != "Pxa" || c.EMState != "EXITED" {
			t.Errorf("final case = %+v, want closed, Pxa, EXITED", c)
		}
		if _, rm, vfd, _ := participantOf(c, vendorID); rm != "CLOSED" || vfd != "VFd" {
			t.Errorf("vendor ends %s %s, want CLOSED VFd", rm, vfd)
		}
		if _, rm, _, _ := participantOf(c, finderID); rm != "CLOSED" {
			t.Errorf("finder ends %s, want CLOSED", rm)
		}
	}

	// A closed case records nothing more: the finder's node stops checking
	// the Case Actor's ledger for it.
	waitFor(t, "the finder's replica to stop checking the closed case", func() bool {
		rep, _ := finder.caseDetail(t, caseID)["replica"].(map[string]any)
		return rep["state"] == "in-sync" && rep["nextCheck"] == nil && strings.Contains(fmt.Sprint(rep["doing"]), "no longer checked")
	})

	// A closed case refuses new activity at the sender's node.
	status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"late"},"target":%q,"context":%q}`, caseID, caseID))
	if status != http.StatusConflict || !strings.Contains(string(body), "is closed") {
		t.Errorf("note on a closed case: %d %s, want 409", status, body)
	}
	// The ledger reads back in order from both nodes.
	for _, n := range []*testNode{vendor, finder} {
		status, body := n.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/ledger?limit=1000", "")
		var page api.LedgerPage
		if status != 200 || json.Unmarshal(body, &page) != nil || len(page.Entries) != 9 {
			t.Fatalf("ledger of %s: %d %s", n.url, status, body)
		}
		if page.Entries[0].EventType != "create_case" || page.Entries[7].EventType != "case_fully_closed" || page.Entries[8].EventType != "close_case" {
			t.Errorf("ledger events: first %s, 7th %s, last %s", page.Entries[0].EventType, page.Entries[7].EventType, page.Entries[8].EventType)
		}
	}
}

// caseDetailOf returns GET /api/cases/{id} of a node.
func (tn *testNode) caseDetail(t testing.TB, id string) map[string]any {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(id), "")
	if status != http.StatusOK {
		t.Fatalf("case %s: %d %s", id, status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestEmbargoAndParticipantsBetweenNodes negotiates an embargo across
// three nodes through their outboxes — two proposals while one is pending,
// acceptance by the owner, a revision rejected and one accepted — invites a
// second vendor, who joins bound by the embargo in force, removes it again
// (it then receives no further entries), and terminates the embargo.
func TestEmbargoAndParticipantsBetweenNodes(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	vendor2 := startNode(t, "vendor2:Organization")
	finderID, vendorID, vendor2ID := finder.actorID("finder"), vendor.actorID("vendor"), vendor2.actorID("vendor2")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Auth bypass","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	if c.EMState != "NONE" {
		t.Fatalf("a node without a default embargo opened the case with EM %s", c.EMState)
	}
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	caseID := c.ID
	steps := &caseSteps{t: t, host: vendor, length: 2}
	step := steps.step
	propose := func(days int) string {
		end := time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Format(time.RFC3339)
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
			time.Now().UTC().Format(time.RFC3339), end, caseID)
	}
	answer := func(typ, invite string) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":%q,"object":%q,"context":%q}`, typ, invite, caseID)
	}
	em := func(n *testNode) string { return n.cases(t)[0].EMState }

	ep1 := step(finder, "finder", propose(30), finder)
	step(finder, "finder", propose(60), finder) // a second proposal while one is pending
	if got := em(finder); got != "PROPOSED" {
		t.Fatalf("after two proposals EM = %s, want PROPOSED", got)
	}
	step(vendor, "vendor", answer("Accept", ep1), finder)
	if got := em(finder); got != "ACTIVE" {
		t.Fatalf("after the owner accepted EM = %s, want ACTIVE", got)
	}
	ev1 := step(vendor, "vendor", propose(45), finder)
	if got := em(finder); got != "REVISE" {
		t.Fatalf("after a revision EM = %s, want REVISE", got)
	}
	// The finder knows the revision only from the ledger; it answers it by id.
	step(finder, "finder", answer("Reject", ev1), finder)
	step(vendor, "vendor", answer("Reject", ev1), finder) // the owner withdraws it: EJ
	if got := em(finder); got != "ACTIVE" {
		t.Fatalf("after the revision was rejected EM = %s, want ACTIVE", got)
	}
	ev2 := step(vendor, "vendor", propose(50), finder)
	step(vendor, "vendor", answer("Accept", ev2), finder) // EC
	detail := finder.caseDetail(t, caseID)
	if emb, _ := detail["embargo"].(map[string]any); emb["sequence"] != float64(1) {
		t.Errorf("after an accepted revision the embargo is %v, want sequence 1", detail["embargo"])
	}

	// Inviting proposes the embargo in force: the invitee that accepts is
	// bound by it.
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["vendor"]}`, vendor2ID, caseID, caseID), finder)
	inviteID := vendor2.awaitInboxItem(t, "vendor2", "Invite")
	acceptID := step(vendor2, "vendor2", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q}`, inviteID), finder, vendor2)
	// The answer to an invitation to a case names the case as its context,
	// as every case-scoped activity does (the spec's §6.3).
	for _, it := range vendor2.boxItems(t, "vendor2", "outbox") {
		if it["id"] == acceptID && it["context"] != caseID {
			t.Errorf("the acceptance of the invitation has context %v, want the case %s", it["context"], caseID)
		}
	}
	if _, rm, vfd, pec := participantOf(vendor2.cases(t)[0], vendor2ID); rm != "RECEIVED" || vfd != "Vfd" || pec != "SIGNATORY" {
		t.Errorf("vendor2 joined as %s %s %s, want RECEIVED Vfd SIGNATORY", rm, vfd, pec)
	}

	// A removed participant is told of its removal, and receives nothing
	// further.
	v2part, _, _, _ := participantOf(vendor.cases(t)[0], vendor2ID)
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"target":%q,"context":%q}`, v2part, caseID, caseID), finder, vendor2)
	removedAt := vendor2.cases(t)[0].LedgerLength
	embargoID, _ := finder.caseDetail(t, caseID)["embargo"].(map[string]any)["id"].(string)
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"origin":%q,"context":%q}`, embargoID, caseID, caseID), finder)
	if got := em(finder); got != "EXITED" {
		t.Errorf("after termination EM = %s, want EXITED", got)
	}
	// ET once the embargo ended is not the sender's to send (the sender
	// tables allow it from ACTIVE or REVISE only): neither the owner on
	// the Case Actor's node nor the finder on a replica may send it.
	for _, n := range []struct {
		node *testNode
		name string
	}{{vendor, "vendor"}, {finder, "finder"}} {
		status, body := n.node.api(t, http.MethodPost, "/actors/"+n.name+"/outbox",
			fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"origin":%q,"context":%q}`, embargoID, caseID, caseID))
		if status != http.StatusConflict || !strings.Contains(string(body), "already ended") {
			t.Errorf("%s's ET after the embargo ended: %d %s, want 409 saying it already ended", n.name, status, body)
		}
	}
	if got := vendor.cases(t)[0].LedgerLength; got != steps.length {
		t.Errorf("the ledger holds %d entries after refused terminations, want %d", got, steps.length)
	}
	if got := vendor2.cases(t)[0].LedgerLength; got != removedAt || got >= steps.length {
		t.Errorf("the removed vendor2 holds %d entries (had %d at its removal; the case has %d)", got, removedAt, steps.length)
	}
	if h, r := vendor.cases(t)[0], finder.cases(t)[0]; h.TailHash != r.TailHash || r.Diverged != "" {
		t.Errorf("finder's replica differs: %+v vs %+v", r, h)
	}

	// The case object is served to its participants only.
	fl, _ := finder.Local("finder")
	v2l, _ := vendor2.Local("vendor2")
	if status := signedGet(t, caseID, fl.KeyID, fl.Key); status != http.StatusOK {
		t.Errorf("a participant's signed GET of the case: %d, want 200", status)
	}
	if status := signedGet(t, caseID, v2l.KeyID, v2l.Key); status != http.StatusNotFound {
		t.Errorf("a removed participant's signed GET of the case: %d, want 404, as for a case the node does not hold", status)
	}
	resp, err := http.Get(caseID)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("an unsigned GET of the case: %d, want 401", resp.StatusCode)
	}
}

// TestCaseActorRefusesWithAnError sends a case-scoped activity from a
// stranger to a Case Actor: the delivery is accepted, nothing is recorded,
// and the stranger receives the error of the activity's model (RE for a
// Join), an Ignore that says why.
func TestCaseActorRefusesWithAnError(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })

	stranger := newPeer(t, sharedKeys.get(t, 2))
	join := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/activities/join-1","type":"Join","actor":%q,"object":%q,"context":%q,"to":[%q]}`,
		stranger.id, stranger.id, c.ID, c.ID, c.CaseActor))
	if status, msg := stranger.post(t, c.CaseActor+"/inbox", join, nil); status != http.StatusAccepted {
		t.Fatalf("stranger's Join: %d %s, want 202 (received, then refused with an error)", status, msg)
	}
	waitFor(t, "the error at the stranger", func() bool { return stranger.receivedCount() >= 1 })
	stranger.mu.Lock()
	reject, err := decode(stranger.received[0])
	stranger.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if reject["type"] != "Ignore" || reject["inReplyTo"] != stranger.id+"/activities/join-1" || !strings.Contains(fmt.Sprint(reject["summary"]), "is not a participant") {
		t.Errorf("refusal = %v, want an Ignore (RE) in reply to the Join saying the sender is not a participant", reject)
	}
	if got := vendor.cases(t)[0].LedgerLength; got != 2 {
		t.Errorf("the ledger grew to %d entries from a refused activity", got)
	}
}

// TestOwnerLeaveClosesCaseForEveryone checks the owner's Leave across two
// nodes (spec §1.5, CM-23-002): the Case Actor records it and, right
// after, its own closing of the case (case_fully_closed), which the
// finder's replica applies. The case then refuses everything at the
// finder's node with a sentence saying its owner left, but the finder's
// own Leave, and at the end every participant is CLOSED on both nodes.
func TestOwnerLeaveClosesCaseForEveryone(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Path traversal","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	leave := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID)
	steps := &caseSteps{t: t, host: vendor, length: 2}
	steps.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID), finder)

	// The owner leaves: two entries, its Leave and the Case Actor's closing.
	vendor.submit(t, "vendor", leave)
	for _, n := range []*testNode{vendor, finder} {
		n.oneCase(t, "the owner's Leave and the case's closing", func(c api.Case) bool { return c.LedgerLength == 5 })
		closure, _ := n.caseDetail(t, caseID)["closure"].(map[string]any)
		if closure == nil || closure["owner"] != vendorID || closure["at"] == nil {
			t.Errorf("%s: closure = %v, want one naming the owner %s and when", n.url, closure, vendorID)
		}
	}
	for _, n := range []*testNode{vendor, finder} {
		status, body := n.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/ledger?limit=1000", "")
		var page api.LedgerPage
		if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.Entries) != 5 {
			t.Fatalf("ledger of %s: %d %s", n.url, status, body)
		}
		if got := []string{page.Entries[3].EventType, page.Entries[4].EventType}; got[0] != "close_case" || got[1] != "case_fully_closed" {
			t.Errorf("ledger of %s ends %v, want close_case, case_fully_closed", n.url, got)
		}
	}
	r := finder.cases(t)[0]
	if r.Diverged != "" || !r.Closed {
		t.Errorf("the finder's replica: closed %v, diverged %q; want closed, not diverged", r.Closed, r.Diverged)
	}

	// Anything but the finder's own Leave is refused before it is sent.
	const sentence = "is closed because its owner"
	for _, a := range []string{
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"still there?"},"target":%q,"context":%q}`, caseID, caseID),
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Ignore","object":%q,"context":%q}`, caseID, caseID),
	} {
		status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", a)
		if status != http.StatusConflict || !strings.Contains(string(body), sentence) {
			t.Errorf("after the owner left, %s: %d %s; want 409 saying the case %s left", a, status, body, sentence)
		}
	}
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", leave)
	if status != http.StatusConflict || !strings.Contains(string(body), sentence) {
		t.Errorf("the owner leaving again: %d %s; want 409 saying the case %s left", status, body, sentence)
	}

	// The finder's own Leave still is recorded: everyone ends CLOSED.
	steps.length = 5
	steps.step(finder, "finder", leave, finder)
	for _, n := range []*testNode{vendor, finder} {
		c := n.cases(t)[0]
		if !c.Closed || c.Diverged != "" {
			t.Errorf("%s: final case closed %v diverged %q", n.url, c.Closed, c.Diverged)
		}
		for _, p := range c.Participants {
			if p.RMState != "CLOSED" {
				t.Errorf("%s: %s ends %s, want CLOSED", n.url, p.Actor, p.RMState)
			}
		}
	}
}
