package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

// TestActionsAreAttributed has an analyst of the vendor's node validate
// a report with her own token, and checks that the node keeps who did it
// where the issue asks: the stored activity, the audit log, the case's
// ledger through the API and the dashboard's timeline; and, since this
// node sends names (AttributeNames), that the finder's node receives her
// display name as the activity's attributedTo while the actor and
// signature stay the organization's. The finder's node, which does not
// send names, sends none.
func TestActionsAreAttributed(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNodeWith(t, Config{AttributeNames: true}, "vendor:Organization")
	ctx := context.Background()
	admin, err := vendor.accounts.Authenticate(ctx, vendor.token)
	if err != nil {
		t.Fatal(err)
	}
	added, err := vendor.accounts.AddUser(ctx, admin, accounts.NewUser{Name: "alice", DisplayName: "Alice Liddell", Role: accounts.Analyst, Actors: []string{"vendor"}},
		func(string) bool { return true }, "")
	if err != nil {
		t.Fatal(err)
	}

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	for _, it := range vendor.inboxItems(t, "vendor") {
		if _, has := it["attributedTo"]; has {
			t.Errorf("the finder's node, which sends no names, sent one: %v", it["attributedTo"])
		}
	}
	status, body := vendor.apiAs(t, added.Token, http.MethodPost, "/actors/vendor/outbox",
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
	if status != http.StatusCreated {
		t.Fatalf("alice's Accept: %d %s", status, body)
	}
	var sent struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &sent); err != nil {
		t.Fatal(err)
	}
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })

	// The stored activity and its audit record name her.
	err = vendor.db.View(ctx, func(tx *store.ReadTx) error {
		a, err := tx.Activity(sent.ID)
		if err != nil {
			return err
		}
		if a.SentBy != "alice" {
			t.Errorf("the stored Accept was sent by %q, want alice", a.SentBy)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	records := vendor.auditRecords(t)
	found := false
	for _, r := range records {
		// The record of its sending; those of its deliveries, which may
		// be there too by now, name the recipient instead.
		if r.Kind == store.AuditOutbound && r.ActivityID == sent.ID && r.Decision == store.DecisionEnqueued {
			found = true
			if r.Principal != "alice" {
				t.Errorf("the Accept's audit record names %q, want alice", r.Principal)
			}
		}
	}
	if !found {
		t.Errorf("no outbound audit record of the Accept in %d records", len(records))
	}

	// The ledger through the API says who had the entry sent; the entry
	// the Case Actor wrote on its own names no one.
	status, body = vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(c.ID)+"/ledger", "")
	var page api.LedgerPage
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil {
		t.Fatalf("ledger: %d %s", status, body)
	}
	if page.SentBy[sent.ID] != "alice" || len(page.SentBy) != 1 {
		t.Errorf("ledger page sentBy = %v, want only %s: alice", page.SentBy, sent.ID)
	}

	// The dashboard's timeline shows her beside the vendor.
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	if casePage := b.get("/ui/cases/" + url.PathEscape(c.ID)); !strings.Contains(casePage, `<span class="by">(alice)</span>`) {
		t.Errorf("the case's timeline does not name alice:\n%s", grepLines(casePage, "timeline"))
	}

	// On the wire: the organization's actor, with her display name as the
	// activity's attributedTo.
	var accept map[string]any
	waitFor(t, "the Accept at the finder", func() bool {
		for _, it := range finder.inboxItems(t, "finder") {
			if it["id"] == sent.ID {
				accept = it
				return true
			}
		}
		return false
	})
	if accept["actor"] != vendor.actorID("vendor") {
		t.Errorf("the Accept's actor is %v, want the vendor's", accept["actor"])
	}
	by, _ := accept["attributedTo"].(map[string]any)
	if by["type"] != "Person" || by["name"] != "Alice Liddell" || by["id"] != nil {
		t.Errorf("the Accept's attributedTo = %v, want a Person named Alice Liddell without an id", accept["attributedTo"])
	}
	// The finder's copy of the case names no one of the vendor's node.
	finder.oneCase(t, "the finder's replica", func(rc api.Case) bool { return rc.ID == c.ID && rc.LedgerLength == 2 })
	status, body = finder.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(c.ID)+"/ledger", "")
	page = api.LedgerPage{}
	if status != http.StatusOK || json.Unmarshal(body, &page) != nil || len(page.SentBy) != 0 {
		t.Errorf("the finder's ledger page: %d, sentBy %v", status, page.SentBy)
	}
}

// TestDashboardAnalystActsForItsActors logs in an analyst of the
// coordinator on a node that also holds the vendor: the vendor's report is
// shown to it without decisions, and a forged form that validates it as
// the vendor is refused with nothing sent; the vendor's analyst validates
// it, and the case's timeline names her.
func TestDashboardAnalystActsForItsActors(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization", "coordinator:Organization")
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })

	cora := newBrowser(t, vendor.url)
	cora.loginAs("cora", vendor.person(t, "cora", accounts.Analyst, "coordinator"))
	page := cora.get("/")
	m := regexp.MustCompile(`name="report" value="([^"]+)"`).FindStringSubmatch(page)
	if strings.Contains(page, "Validate (RV)") || m != nil {
		t.Fatalf("the coordinator's analyst is offered a decision on the vendor's report:\n%s", grepLines(page, "report"))
	}
	reports := vendorReports(t, vendor)
	if len(reports) != 1 {
		t.Fatalf("%d reports at the vendor, want 1", len(reports))
	}
	resp, refusal := cora.do(http.MethodPost, "/ui/reports/validate", url.Values{"csrf": {csrfOf(t, page)}, "report": {reports[0].ID}, "as": {"vendor"}, "decision": {"validate"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(refusal, "cora does not act for vendor.") {
		t.Errorf("a forged validation as the vendor is not refused: %d\n%s", resp.StatusCode, refusal)
	}
	if got := vendorReports(t, vendor); got[0].RMState != "RECEIVED" || got[0].Case != "" {
		t.Errorf("after the refused form the report is %s in case %q, want RECEIVED in none", got[0].RMState, got[0].Case)
	}

	vic := newBrowser(t, vendor.url)
	vic.loginAs("vic", vendor.person(t, "vic", accounts.Analyst, "vendor"))
	page = vic.get("/")
	page = vic.post("/ui/reports/validate", url.Values{"csrf": {csrfOf(t, page)}, "report": {reports[0].ID}, "as": {"vendor"}, "decision": {"validate"}})
	if !strings.Contains(page, "Report validated (RV)") {
		t.Fatalf("the vendor's analyst could not validate:\n%s", grepLines(page, "flash"))
	}
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	casePath := "/ui/cases/" + url.PathEscape(c.ID)
	casePage := vic.get(casePath)
	if !strings.Contains(casePage, `<span class="by">(vic)</span>`) {
		t.Errorf("the timeline does not name vic:\n%s", grepLines(casePage, "timeline"))
	}
	// Her note names her in the case's notes, as its entry in the
	// timeline does; a note of the finder's names no one of this node.
	casePage = vic.post(casePath, url.Values{"csrf": {csrfOf(t, casePage)}, "action": {"note"}, "as": {"vendor"}, "content": {"Reproduced on 2.1."}})
	if !strings.Contains(casePage, "Note added.") {
		t.Fatalf("vic's note was not added:\n%s", grepLines(casePage, "flash"))
	}
	notes := regexp.MustCompile(`(?s)<ul class="notes">.*?</ul>`).FindString(casePage)
	if !strings.Contains(notes, `<span class="by">(vic)</span>`) || !strings.Contains(notes, "Reproduced on 2.1.") {
		t.Errorf("the case's notes do not name vic beside her note:\n%s", notes)
	}
	// A forged note as the vendor from the coordinator's analyst is
	// refused, and audited, as her forged validation was.
	coraPage := cora.get(casePath)
	resp, refusal = cora.do(http.MethodPost, casePath, url.Values{"csrf": {csrfOf(t, coraPage)}, "action": {"note"}, "as": {"vendor"}, "content": {"Not mine to say."}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(refusal, "cora does not act for vendor.") {
		t.Errorf("a forged note as the vendor is not refused: %d\n%s", resp.StatusCode, refusal)
	}
	refusals := 0
	for _, rec := range vendor.auditRecords(t) {
		if strings.HasPrefix(rec.Principal, "cora via session") && rec.Reason == "cora does not act for vendor" {
			refusals++
		}
	}
	if refusals != 2 {
		t.Errorf("%d refusals of cora's forged forms in the audit log, want 2", refusals)
	}
	// The API names her by the note's id.
	d := vendor.detail(t, c.ID)
	if len(d.Notes) != 1 || d.NotesSentBy[d.Notes[0].ID] != "vic" || d.Notes[0].Activity == "" {
		t.Errorf("the API's notes %+v name %v, want vic for the note", d.Notes, d.NotesSentBy)
	}
}

// vendorReports lists the reports the vendor actor of tn received.
func vendorReports(t *testing.T, tn *testNode) []api.Report {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/reports?actor=vendor", "")
	var list api.ReportPage
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET /api/reports: %d %s", status, body)
	}
	return list.Reports
}
