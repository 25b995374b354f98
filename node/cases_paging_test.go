package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
)

// TestCaseNotesPaging checks that GET /api/cases/{id} shows a page of the
// case's notes (the newest by default, any page on request) with their
// total, and that bad paging parameters are refused with a sentence.
func TestCaseNotesPaging(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Paging","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return len(vendor.inboxItems(t, "vendor")) == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c caseSummary) bool { return c.LedgerLength == 2 }).ID
	for i := range 3 {
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"note %d"},"target":%q,"context":%q}`, i, caseID, caseID))
	}
	vendor.oneCase(t, "three notes", func(c caseSummary) bool { return c.LedgerLength == 5 })

	type page struct {
		Notes []struct {
			Content string `json:"content"`
		} `json:"notes"`
		NotesFrom  int `json:"notesFrom"`
		NotesTotal int `json:"notesTotal"`
	}
	get := func(query string) page {
		t.Helper()
		status, body := vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+query, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", query, status, body)
		}
		var p page
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	contents := func(p page) string {
		var s []string
		for _, n := range p.Notes {
			s = append(s, n.Content)
		}
		return fmt.Sprint(s)
	}
	for _, tt := range []struct {
		query, want string
		from        int
	}{
		{"", "[note 0 note 1 note 2]", 0},
		{"?notes=2", "[note 1 note 2]", 1},
		{"?notes=2&notesFrom=0", "[note 0 note 1]", 0},
		{"?notes=2&notesFrom=2", "[note 2]", 2},
		{"?notes=5&notesFrom=9", "[]", 3},
	} {
		p := get(tt.query)
		if contents(p) != tt.want || p.NotesFrom != tt.from || p.NotesTotal != 3 {
			t.Errorf("%q: notes %s from %d of %d, want %s from %d of 3", tt.query, contents(p), p.NotesFrom, p.NotesTotal, tt.want, tt.from)
		}
	}
	for _, path := range []string{
		"/api/cases/" + url.PathEscape(caseID) + "?notes=-1",
		"/api/cases/" + url.PathEscape(caseID) + "?notesFrom=x",
		"/api/cases?limit=0",
		"/api/cases?limit=1001",
	} {
		status, body := vendor.api(t, http.MethodGet, path, "")
		var e struct{ Error string }
		if status != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Error == "" {
			t.Errorf("GET %s: %d %s, want 400 with an error sentence", path, status, body)
		}
	}
}
