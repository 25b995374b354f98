package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/vocab"
)

// mapResolver resolves the objects of a map, for classifying in tests.
type mapResolver map[string]vocab.Object

func (m mapResolver) Resolve(id string) (vocab.Object, bool) {
	o, ok := m[id]
	return o, ok
}

// inboxWhere waits until a local actor's inbox holds an activity that
// pred accepts, and returns the newest such.
func (tn *testNode) inboxWhere(t *testing.T, name, what string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	var got map[string]any
	waitFor(t, what+" in the inbox of "+name, func() bool {
		for _, it := range tn.inboxItems(t, name) {
			if pred(it) {
				got = it
				return true
			}
		}
		return false
	})
	return got
}

// inboxReply waits until a local actor's inbox holds an activity of type
// typ (Read, Ignore) in reply to the activity with id answered, and returns
// it.
func (tn *testNode) inboxReply(t *testing.T, name, typ, answered string) map[string]any {
	t.Helper()
	return tn.inboxWhere(t, name, fmt.Sprintf("a %s of %s", typ, answered), func(it map[string]any) bool {
		return it["type"] == typ && it["inReplyTo"] == answered
	})
}

// inboxOfType waits until a local actor's inbox holds an activity of type
// typ and returns the newest.
func (tn *testNode) inboxOfType(t *testing.T, name, typ string) map[string]any {
	t.Helper()
	return tn.inboxWhere(t, name, "a "+typ, func(it map[string]any) bool { return it["type"] == typ })
}

// reportedToVendor starts a finder's node and a vendor's, and has the
// finder offer the vendor a report; it returns both nodes and the Offer's
// id.
func reportedToVendor(t *testing.T) (finder, vendor *testNode, offerID string) {
	t.Helper()
	finder = startNode(t, "finder:Person")
	vendor = startNodeWith(t, Config{}, "vendor:Organization")
	offerID = finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"SQL injection in login","content":"details"}}`, vendor.actorID("vendor")))
	return finder, vendor, offerID
}

// TestRepliesOnTheWire checks that each message a node receives or its
// Case Actor records is answered on the wire with the acknowledgement the
// protocol's receiver tables give it, and a refused one with its model's
// error: RK|CV for a report a vendor receives (and the reporter's CK for
// the CV), the Case Actor's RK, GK, CK and EK for what it records (one
// reply, from the Case Actor, not one from every replica), and an error,
// Ignore with the reason, for an activity it does not record. Replies
// are stored and never answered.
func TestRepliesOnTheWire(t *testing.T) {
	finder, vendor, offerID := reportedToVendor(t)
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	rk := finder.inboxReply(t, "finder", "Read", offerID)
	result, _ := rk["result"].(map[string]any)
	if rk["actor"] != vendorID || result["type"] != "ParticipantStatus" || result["vfdState"] != "Vfd" {
		t.Fatalf("the vendor's RK = %v; want a Read by the vendor whose result says it is aware (CV: vfdState Vfd)", rk)
	}
	// The reporter acknowledges the vendor's awareness (CK).
	ck := vendor.inboxReply(t, "vendor", "Read", rk["id"].(string))
	if ck["actor"] != finderID {
		t.Fatalf("the CK of the vendor's CV = %v", ck)
	}

	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	host := vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	caseID := host.ID
	vendorPart, _, _, _ := participantOf(host, vendorID)

	// An embargo within the node's longest (--max-embargo, 365 days).
	start, end := time.Now().UTC().Format(time.RFC3339), time.Now().Add(60*24*time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name     string
		node     *testNode
		actor    string
		activity string
	}{
		{"RA gets RK", vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID)},
		{"GI gets GK", finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"Any progress?"},"target":%q,"context":%q}`, caseID, caseID)},
		{"EP gets EK", finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`, start, end, caseID)},
		{"CF gets CK", vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"vfdState":"VFd"},"target":%q,"context":%q}`, vendorPart, vendorPart, caseID)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.node.submit(t, tt.actor, tt.activity)
			k := tt.node.inboxReply(t, tt.actor, "Read", id)
			obj, _ := k["object"].(map[string]any)
			if k["actor"] != host.CaseActor || k["context"] != caseID || obj["id"] != id {
				t.Errorf("the acknowledgement = %v; want a Read by the Case Actor %s of %s in the case", k, host.CaseActor, id)
			}
		})
	}

	// An actor that is no participant sends the Case Actor a message of
	// each model: the Case Actor keeps it, records nothing, and answers
	// with that model's error (an Ignore with the reason).
	p := newPeer(t, sharedKeys.get(t, 0))
	caseRef := map[string]vocab.Object{caseID: &vocab.VulnerabilityCase{ObjectBase: vocab.ObjectBase{ID: caseID, Type: vocab.TypeVulnerabilityCase}}}
	refusals := []struct {
		name, members string
		sem           vocab.Semantic
		messages      string
	}{
		{"RE for an RM message", fmt.Sprintf(`"type":"Join","object":%q`, caseID), vocab.ReportError, "RE"},
		{"EE for an EM message", fmt.Sprintf(`"type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q}`, start, end), vocab.EmbargoError, "EE"},
		{"CE for a CS message", fmt.Sprintf(`"type":"Add","object":{"type":"ParticipantStatus","context":%q,"vfdState":"VFd"},"target":%q`, vendorPart, vendorPart), vocab.CaseStatusError, "CE"},
		{"GE for a general message", fmt.Sprintf(`"type":"Add","object":{"type":"Note","content":"let me in"},"target":%q`, caseID), vocab.GeneralError, "GE"},
	}
	for i, rt := range refusals {
		t.Run(rt.name, func(t *testing.T) {
			id := fmt.Sprintf("%s/activities/uninvited-%d", p.id, i)
			body := fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","id":%q,"actor":%q,"context":%q,"to":[%q],%s}`,
				id, p.id, caseID, host.CaseActor, rt.members)
			if status, msg := p.post(t, host.CaseActor+"/inbox", []byte(body), nil); status != http.StatusAccepted {
				t.Fatalf("%s: %d %s, want 202", body, status, msg)
			}
			var refusal []byte
			waitFor(t, "the Case Actor's error at the peer", func() bool {
				p.mu.Lock()
				defer p.mu.Unlock()
				for _, b := range p.received {
					var m map[string]any
					if json.Unmarshal(b, &m) == nil && m["type"] == "Ignore" && m["inReplyTo"] == id {
						refusal = b
						return true
					}
				}
				return false
			})
			doc, err := vocab.Parse(refusal)
			if err != nil {
				t.Fatal(err)
			}
			cl := vocab.Classify(doc.Activity(), mapResolver(caseRef))
			if doc.Activity().Actor.ID() != host.CaseActor || doc.Activity().Summary == "" || cl.Semantic != rt.sem || cl.Messages.String() != rt.messages {
				t.Errorf("the error = %s, classified %s %s; want an Ignore by the Case Actor with the reason, %s %s", refusal, cl.Semantic, cl.Messages, rt.sem, rt.messages)
			}
			// A stranger learns nothing of the case from the error: what
			// its message named stays as it named it.
			if rt.sem == vocab.ReportError && !strings.Contains(string(refusal), fmt.Sprintf(`"object":%q`, caseID)) {
				t.Errorf("the error to a stranger writes out what the case knows of its message: %s", refusal)
			}
		})
	}

	// A validation of a report the vendor never received (RM START) is
	// answered with RE, as the receiver tables say, not applied.
	rvID := p.id + "/activities/accept-9"
	rv := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Accept","actor":%q,"to":[%q],
"object":{"id":"%[2]s/activities/offer-9","type":"Offer","actor":%[3]q,"object":{"id":"%[2]s/reports/9","type":"VulnerabilityReport","attributedTo":%[3]q}}}`, rvID, p.id, vendorID)
	if status, msg := p.post(t, vendor.actorID("vendor")+"/inbox", []byte(rv), nil); status != http.StatusAccepted {
		t.Fatalf("the validation of an unknown report: %d %s, want 202", status, msg)
	}
	var refusal map[string]any
	waitFor(t, "the vendor's RE at the peer", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, b := range p.received {
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && m["type"] == "Ignore" && m["inReplyTo"] == rvID {
				refusal = m
				return true
			}
		}
		return false
	})
	if refusal["actor"] != vendorID || !strings.Contains(fmt.Sprint(refusal["summary"]), "never sent or received") {
		t.Errorf("the RE = %v; want an Ignore by the vendor saying it never had the report", refusal)
	}
	if c := vendor.cases(t)[0]; c.LedgerLength != 6 {
		t.Errorf("the ledger has %d entries after the refused activities, want 6", c.LedgerLength)
	}

	// The replies are listed with the case (API) and in the dashboard's
	// timeline of the node that received them.
	detail := vendor.caseDetail(t, caseID)
	replies, _ := detail["replies"].([]any)
	found := map[string]bool{}
	for _, r := range replies {
		m, _ := r.(map[string]any)
		found[fmt.Sprint(m["semantic"], " ", m["messages"])] = true
	}
	if !found["ACK_REPORT RK"] || !found["ACK_CASE_STATUS CK"] {
		t.Errorf("the vendor's case lists replies %v; want the Case Actor's RK of its Join and CK of its fix", found)
	}
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	page := b.get("/ui/cases/" + url.PathEscape(caseID))
	// In words: what the vendor sent, the message it was and the reply.
	if !strings.Contains(page, "acknowledged vendor&#39;s engagement in the case (RK, answering RA)") ||
		!strings.Contains(page, "acknowledged vendor&#39;s status report (CK)<") {
		t.Errorf("the case page's timeline does not show the acknowledgements of the vendor's engagement and status in words:\n%s", grepLines(page, "reply"))
	}

	// Replies are never answered: the Case Actor's inbox holds what the
	// participants sent it and the peer's Join, and no acknowledgement or
	// error of its own replies.
	caseActorName := host.CaseActor[len(vendor.url+"/actors/"):]
	for _, it := range vendor.inboxItems(t, caseActorName) {
		if it["type"] == "Read" || it["type"] == "Ignore" {
			t.Errorf("the Case Actor received %v: a reply was answered", it)
		}
	}
}

// TestInvitationAcknowledged checks the late joiner's side: an invited
// vendor's node acknowledges the Case Actor's invitation (RK, with its
// awareness, CV), and the Case Actor answers the CV with CK, which the
// invitee's node keeps although it holds no replica of the case yet.
func TestInvitationAcknowledged(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	vendor2 := startNode(t, "vendor2:Organization")
	c := openCase(t, finder, vendor)
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["vendor"]}`,
		vendor2.actorID("vendor2"), c.ID, c.ID))
	invite := vendor2.inboxOfType(t, "vendor2", "Invite")
	var rk map[string]any
	waitFor(t, "vendor2's acknowledgement of the invitation", func() bool {
		for _, it := range vendor2.boxItems(t, "vendor2", "outbox") {
			if it["type"] == "Read" && it["inReplyTo"] == invite["id"] {
				rk = it
				return true
			}
		}
		return false
	})
	if res, _ := rk["result"].(map[string]any); res["vfdState"] != "Vfd" {
		t.Errorf("the invited vendor's RK = %v; want its awareness (CV) in result", rk)
	}
	ck := vendor2.inboxReply(t, "vendor2", "Read", rk["id"].(string))
	if ck["actor"] != c.CaseActor {
		t.Errorf("the CK of vendor2's awareness = %v; want a Read by the Case Actor", ck)
	}
}

// openCase has the finder (actor "finder") report to the vendor (actor
// "vendor"), which validates the report, and returns the case as the
// vendor's node shows it once the finder's replica holds its first two
// entries.
func openCase(t *testing.T, finder, vendor *testNode) api.Case {
	t.Helper()
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	return c
}

// TestValidationNamesTheCaseItOpens checks the validation (RV) that opens
// a case on the wire: the reporter receives it with the case as its
// context, which its node looks for should the Case Actor's announcements
// be lost. A validation whose context names another case is refused, and
// neither it nor a case is stored.
func TestValidationNamesTheCaseItOpens(t *testing.T) {
	finder, vendor, offerID := reportedToVendor(t)
	finderID := finder.actorID("finder")
	vendor.inboxWhere(t, "vendor", "the finder's report", func(it map[string]any) bool { return it["id"] == offerID })

	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", fmt.Sprintf(
		`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q],"context":%q}`,
		offerID, finderID, vendor.url+"/cases/another"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "context names "+vendor.url+"/cases/another") {
		t.Fatalf("a validation naming another case: %d %s; want 422 saying what the context names", status, body)
	}
	if cs := vendor.cases(t); len(cs) != 0 {
		t.Fatalf("the refused validation left %d cases", len(cs))
	}
	if items := vendor.boxItems(t, "vendor", "outbox"); len(items) != 1 {
		t.Fatalf("the vendor's outbox holds %d activities after the refused validation, want its RK only", len(items))
	}

	rvID := vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	host := vendor.oneCase(t, "the case the validation opened", func(c api.Case) bool { return c.LedgerLength == 2 })
	rv := finder.inboxWhere(t, "finder", "the vendor's validation", func(it map[string]any) bool { return it["id"] == rvID })
	if rv["context"] != host.ID {
		t.Errorf("the validation's context is %v, want the case it opened, %s", rv["context"], host.ID)
	}
}

// TestCaseActivitiesNameTheirCase checks that an activity of a case whose
// context names another case is refused, 422, by the sender's node (nothing
// sent) and by the Case Actor (nothing recorded), rather than recorded in
// the ledger with a context that places it in another case.
func TestCaseActivitiesNameTheirCase(t *testing.T) {
	finder, vendor, _, c := openedCase(t, Config{}, Config{})
	other := vendor.url + "/cases/another"
	const ctx = `"@context":"https://certcc.github.io/Vultron/ns/context.jsonld"`
	for _, tc := range []struct{ name, activity string }{
		{"note", fmt.Sprintf(`{%s,"type":"Add","object":{"type":"Note","content":"hello"},"target":%q,"context":%q}`, ctx, c.ID, other)},
		{"engage", fmt.Sprintf(`{%s,"type":"Join","object":%q,"context":%q}`, ctx, c.ID, other)},
		{"vulnerability id", fmt.Sprintf(`{%s,"type":"Add","object":{"type":"VulnerabilityRecord","name":"CVE-2026-1234"},"target":%q,"context":%q}`, ctx, c.ID, "https://elsewhere.example/cases/x")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(finder.boxItems(t, "finder", "outbox"))
			status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", tc.activity)
			if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "acts in case "+c.ID+", but its context names") {
				t.Fatalf("%s with another case as context: %d %s; want 422 naming both", tc.name, status, body)
			}
			if after := len(finder.boxItems(t, "finder", "outbox")); after != before {
				t.Errorf("the refused activity is in the outbox: %d activities, want %d", after, before)
			}
		})
	}

	// A peer that sends such an activity to the Case Actor itself.
	key, found, err := actor.LoadKey(filepath.Join(finder.dir, "keys"), "finder")
	if err != nil || !found {
		t.Fatalf("the finder's key: %v (found %v)", err, found)
	}
	p := &peer{id: finder.actorID("finder"), keyID: finder.actorID("finder") + "#main-key", key: key}
	raw := fmt.Sprintf(`{%s,"id":%q,"type":"Add","actor":%q,"to":[%q],"object":{"type":"Note","content":"hello"},"target":%q,"context":%q}`,
		ctx, finder.url+"/activities/raw-note", p.id, c.CaseActor, c.ID, other)
	status, msg := p.post(t, c.CaseActor+"/inbox", []byte(raw), nil)
	if status != http.StatusUnprocessableEntity || !strings.Contains(msg, "but its context names "+other) {
		t.Fatalf("the Case Actor answered %d %q to a note whose context names another case; want 422", status, msg)
	}
	if got := vendor.oneCase(t, "the case", func(api.Case) bool { return true }); got.LedgerLength != c.LedgerLength {
		t.Errorf("the case's ledger has %d entries after the refused note, want %d", got.LedgerLength, c.LedgerLength)
	}
}

// TestBoxPagesKeepTheirLimit pages an outbox one activity at a time: each
// page's id and next keep the limit asked for, and following next reaches
// every activity once.
func TestBoxPagesKeepTheirLimit(t *testing.T) {
	_, vendor, _, _ := openedCase(t, Config{}, Config{})
	all := len(vendor.boxItems(t, "vendor", "outbox"))
	if all < 2 {
		t.Fatalf("the vendor's outbox holds %d activities, want at least 2 to page through", all)
	}
	seen := map[string]bool{}
	path := "/actors/vendor/outbox?limit=1"
	for pages := 0; path != ""; pages++ {
		if pages > all {
			t.Fatalf("more than %d pages of one activity each", all)
		}
		status, body := vendor.api(t, http.MethodGet, path, "")
		var page struct {
			ID    string           `json:"id"`
			Next  string           `json:"next"`
			Items []map[string]any `json:"orderedItems"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d %v %s", path, status, err, body)
		}
		if len(page.Items) > 1 || !strings.Contains(page.ID, "limit=1") || (page.Next != "" && !strings.Contains(page.Next, "limit=1")) {
			t.Fatalf("GET %s: %d items, id %s, next %s; want at most 1, and the limit kept", path, len(page.Items), page.ID, page.Next)
		}
		for _, it := range page.Items {
			seen[it["id"].(string)] = true
		}
		path = strings.TrimPrefix(page.Next, vendor.url)
	}
	if len(seen) != all {
		t.Errorf("paging one at a time reached %d activities, want %d", len(seen), all)
	}
}
