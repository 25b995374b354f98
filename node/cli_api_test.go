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
	"github.com/openvultron/vultron/cases"
)

// openedCase has the finder on one node report to the vendor on another,
// the vendor validate, and returns both nodes, the offer and the case once
// the finder's replica holds it.
func openedCase(t *testing.T, finderCfg, vendorCfg Config) (finder, vendor *testNode, offerID string, c api.Case) {
	t.Helper()
	finder = startNodeWith(t, finderCfg, "finder:Person")
	vendor = startNodeWith(t, vendorCfg, "vendor:Organization")
	offerID = finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Overflow in the parser","content":"A long header overflows the parser's buffer."}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
	c = vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the case at the finder", func(c api.Case) bool { return c.LedgerLength == 2 })
	return finder, vendor, offerID, c
}

// TestShortCaseIDs names a case by its short id, the last segment of its
// id, in every /api/cases/{id} path, on the node that hosts it and on the
// one that keeps a replica; an id that names no case gets a 404 saying
// what was tried.
func TestShortCaseIDs(t *testing.T) {
	finder, vendor, _, c := openedCase(t, Config{}, Config{})
	short := cases.ShortID(c.ID)
	for _, n := range []*testNode{vendor, finder} {
		for _, path := range []string{"/api/cases/" + short, "/api/cases/" + short + "/ledger", "/api/cases/" + url.PathEscape(c.ID),
			"/api/cases/" + short + "/embargo.ics"} {
			status, body := n.api(t, http.MethodGet, path, "")
			if status != http.StatusOK {
				t.Errorf("%s GET %s: %d %s", n.url, path, status, body)
				continue
			}
			if !strings.HasSuffix(path, ".ics") && !strings.Contains(string(body), c.ID) {
				t.Errorf("%s GET %s does not show case %s: %s", n.url, path, c.ID, body)
			}
		}
	}
	status, body := finder.api(t, http.MethodPost, "/api/cases/"+short+"/resync", "")
	if status != http.StatusOK || !strings.Contains(string(body), c.ID) {
		t.Errorf("resync by short id: %d %s", status, body)
	}
	for _, bad := range []string{"nosuchcase", url.PathEscape(vendor.url + "/cases/nosuchcase")} {
		status, body := vendor.api(t, http.MethodGet, "/api/cases/"+bad, "")
		if status != http.StatusNotFound || !strings.Contains(string(body), "nosuchcase") {
			t.Errorf("GET /api/cases/%s: %d %s, want 404 naming it", bad, status, body)
		}
	}
	status, body = vendor.api(t, http.MethodGet, "/api/cases/nosuchcase", "")
	if !strings.Contains(string(body), "short id") {
		t.Errorf("the 404 of an unknown short id does not say it was tried as one: %d %s", status, body)
	}
}

// ledgerOf asks GET /api/cases/{id}/ledger?activity=ID of the node.
func (tn *testNode) ledgerOf(t *testing.T, caseID, activity string) api.ActivityRecord {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/cases/"+cases.ShortID(caseID)+"/ledger?activity="+url.QueryEscape(activity), "")
	var a api.ActivityRecord
	if status != http.StatusOK || json.Unmarshal(body, &a) != nil {
		t.Fatalf("ledger?activity=%s: %d %s", activity, status, body)
	}
	return a
}

// TestLedgerActivityAndMaxEmbargo asks whether a case recorded an activity:
// the validation that opened it at once, a note once the Case Actor
// recorded it and the replica applied it, and an embargo longer than the
// vendor's node accepts as the Case Actor's refusal with its reason. The
// vendor's own node refuses such a proposal at submit, with 422.
func TestLedgerActivityAndMaxEmbargo(t *testing.T) {
	finder, vendor, _, c := openedCase(t, Config{MaxEmbargo: 1000 * 24 * time.Hour}, Config{})
	var rv string
	for _, it := range vendor.boxItems(t, "vendor", "outbox") {
		if it["type"] == "Accept" {
			rv, _ = it["id"].(string)
		}
	}
	if a := vendor.ledgerOf(t, c.ID, rv); !a.Recorded || !a.CaseHeld || a.LogIndex == nil || *a.LogIndex != 1 || a.Case != c.ID {
		t.Errorf("the validation: %+v, want recorded at 1", a)
	}
	if a := vendor.ledgerOf(t, c.ID, vendor.url+"/activities/none"); a.Recorded || a.LogIndex != nil || a.Refused != nil {
		t.Errorf("an activity never sent: %+v, want neither recorded nor refused", a)
	}

	note := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"Any news?"},"target":%q,"context":%q}`, c.ID, c.ID))
	waitFor(t, "the note in the finder's replica", func() bool { return finder.ledgerOf(t, c.ID, note).Recorded })
	if a := finder.ledgerOf(t, c.ID, note); a.LogIndex == nil || *a.LogIndex != 2 {
		t.Errorf("the note: %+v, want recorded at 2", a)
	}

	end := time.Now().Add(400 * 24 * time.Hour).UTC().Format(time.RFC3339)
	propose := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","endTime":%q},"context":%q}`, end, c.ID)
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", propose)
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "at most 365 days") {
		t.Errorf("a 400-day embargo at the vendor's node: %d %s, want 422 naming the limit", status, body)
	}
	long := finder.submit(t, "finder", propose)
	waitFor(t, "the Case Actor's refusal at the finder", func() bool { return finder.ledgerOf(t, c.ID, long).Refused != nil })
	a := finder.ledgerOf(t, c.ID, long)
	if a.Recorded || a.Refused.By != c.CaseActor || !strings.Contains(a.Refused.Reason, "at most 365 days") {
		t.Errorf("the refused proposal: %+v, want the Case Actor's reason", a)
	}
	if got := vendor.cases(t)[0].EMState; got != "NONE" {
		t.Errorf("after the refused proposal EM is %s", got)
	}
}

// TestMaxEmbargoConfig refuses a default embargo longer than the longest
// the node accepts.
func TestMaxEmbargoConfig(t *testing.T) {
	_, err := New(t.Context(), Config{DataDir: t.TempDir(), PublicURL: "http://127.0.0.1:1", Actors: []ActorConfig{{Name: "vendor", Type: "Organization"}},
		DefaultEmbargo: 400 * 24 * time.Hour})
	if err == nil || !strings.Contains(err.Error(), "longer than the longest this node accepts") {
		t.Errorf("New with a 400-day default embargo: %v", err)
	}
}

// TestReportsAPI lists the reports a node's actors received and shows one
// by its id, its short id or its Offer's id, with its text.
func TestReportsAPI(t *testing.T) {
	finder, vendor, offerID, c := openedCase(t, Config{}, Config{})
	status, body := vendor.api(t, http.MethodGet, "/api/reports?actor=vendor", "")
	var list api.ReportPage
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list.Reports) != 1 {
		t.Fatalf("GET /api/reports: %d %s", status, body)
	}
	r := list.Reports[0]
	if r.Offer != offerID || r.Role != "receiver" || r.Reporter != finder.actorID("finder") || r.Name != "Overflow in the parser" ||
		r.RMState != "VALID" || r.Case != c.ID || r.Received.IsZero() || r.ShortID != cases.ShortID(r.ID) || r.Content != "" {
		t.Errorf("the listed report: %+v", r)
	}
	for _, key := range []string{r.ShortID, url.PathEscape(r.ID), url.PathEscape(offerID)} {
		status, body := vendor.api(t, http.MethodGet, "/api/reports/"+key+"?actor=vendor", "")
		var one api.Report
		if status != http.StatusOK || json.Unmarshal(body, &one) != nil || one.ID != r.ID || one.Content != "A long header overflows the parser's buffer." {
			t.Errorf("GET /api/reports/%s: %d %s", key, status, body)
		}
	}
	if status, body := vendor.api(t, http.MethodGet, "/api/reports/nothing", ""); status != http.StatusNotFound || !strings.Contains(string(body), "nothing") {
		t.Errorf("an unknown report: %d %s, want 404 naming it", status, body)
	}
	if status, body := vendor.api(t, http.MethodGet, "/api/reports?actor=nobody", ""); status != http.StatusNotFound {
		t.Errorf("the reports of an unknown actor: %d %s, want 404", status, body)
	}
	// The finder's own record: it reported it.
	status, body = finder.api(t, http.MethodGet, "/api/reports", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"role":"reporter"`) {
		t.Errorf("the finder's reports: %d %s", status, body)
	}
}

// TestOutboxResolvesRecipients refuses, with 422 and the reason, an
// activity to an actor that does not exist, or to a node's own address in
// place of one of its actors, and queues nothing for it.
func TestOutboxResolvesRecipients(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	for _, tt := range []struct{ to, want string }{
		{vendor.url + "/actors/nobody", "there is no actor at " + vendor.url + "/actors/nobody"},
		{finder.url + "/actors/nobody", "there is no actor at " + finder.url + "/actors/nobody"},
		{vendor.url, vendor.url + ` is not an actor's id: redirected (303) to \"/login?next=%2F\"; canonical ids must not redirect (an actor's id is the URL of its document`},
	} {
		status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, tt.to))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), tt.want) {
			t.Errorf("an offer to %s: %d %s, want 422 saying %s", tt.to, status, body, tt.want)
		}
	}
	if items := finder.boxItems(t, "finder", "outbox"); len(items) != 0 {
		t.Errorf("the refused offers were stored: %v", items)
	}
	status, body := finder.api(t, http.MethodGet, "/api/deliveries", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"pendingCount":0`) || !strings.Contains(string(body), `"deadCount":0`) {
		t.Errorf("deliveries after the refusals: %d %s", status, body)
	}
}

// TestPastPublicationTime: a node refuses its own actor's proposal of a
// publication time that has passed, with 422 and a sentence, and records
// nothing; a proposal its Case Actor recorded still applies on a replica
// whose clock has passed it since, and the time may be accepted there. The
// vendor's node runs four minutes behind the finder's (within the
// signatures' window), so a time two minutes ago is to come for one and
// past for the other.
func TestPastPublicationTime(t *testing.T) {
	finder, vendor, _, c := openedCase(t, Config{}, Config{Now: func() time.Time { return time.Now().Add(-4 * time.Minute) }})
	note := func(at time.Time, extra string) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"Publication time","publicationTime":%q%s},"target":%q,"context":%q}`,
			at.UTC().Format(time.RFC3339), extra, c.ID, c.ID)
	}
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", note(time.Now().Add(-time.Hour), ""))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `{"error":"the proposed publication time `) || !strings.Contains(string(body), "has passed") {
		t.Errorf("a publication time an hour ago: %d %s, want 422 saying it has passed", status, body)
	}
	if n := countType(vendor.boxItems(t, "vendor", "outbox"), "Add"); n != 0 {
		t.Errorf("the vendor's outbox holds %d Add after the refused proposal, want none", n)
	}
	if d := vendor.detail(t, c.ID); d.LedgerLength != 2 || d.Advisory != nil {
		t.Errorf("after the refused proposal the case has %d entries and advisory %+v, want 2 and none", d.LedgerLength, d.Advisory)
	}

	soon := time.Now().Add(-2 * time.Minute).Truncate(time.Second)
	proposal := vendor.submit(t, "vendor", note(soon, ""))
	waitFor(t, "the proposal in the finder's replica", func() bool { return finder.ledgerOf(t, c.ID, proposal).Recorded })
	d := finder.detail(t, c.ID)
	if d.Advisory == nil || d.Advisory.PublishAt == nil || !d.Advisory.PublishAt.Time.Equal(soon) {
		t.Fatalf("the finder's replica: advisory %+v, want the proposal of %s", d.Advisory, soon)
	}
	accept := finder.submit(t, "finder", note(soon, fmt.Sprintf(`,"inReplyTo":%q`, d.Advisory.PublishAt.NoteID)))
	waitFor(t, "the acceptance in the vendor's case", func() bool { return vendor.ledgerOf(t, c.ID, accept).Recorded })
}
