package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/store"
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
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	for i := range 3 {
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"note %d"},"target":%q,"context":%q}`, i, caseID, caseID))
	}
	vendor.oneCase(t, "three notes", func(c api.Case) bool { return c.LedgerLength == 5 })

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

// TestLegacyCaseNotes starts a node on a store written before case notes
// moved out of the case record: the node moves them at its start, and the
// API and the case object show them as before.
func TestLegacyCaseNotes(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	caseID := base + "/cases/legacy"
	var notes []cases.Note
	for i := range 3 {
		notes = append(notes, cases.Note{ID: fmt.Sprintf("%s/notes/%d", base, i), Author: base + "/actors/vendor",
			Content: fmt.Sprintf("note %d", i), Published: time.Date(2025, 3, 14, 12, i, 0, 0, time.UTC)})
	}
	writeLegacyCase(t, dir, cases.Case{ID: caseID, Name: "Legacy", Owner: base + "/actors/vendor", CaseActor: base + "/actors/case-legacy"}, notes)
	vendor := startNodeIn(t, dir, ln, "vendor:Organization")

	status, body := vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"?notes=2", "")
	var d api.CaseDetail
	if status != http.StatusOK || json.Unmarshal(body, &d) != nil {
		t.Fatalf("GET the case: %d %s", status, body)
	}
	if d.NotesTotal != 3 || d.NotesFrom != 1 || len(d.Notes) != 2 || d.Notes[0] != notes[1] || d.Notes[1] != notes[2] {
		t.Errorf("notes %+v from %d of %d, want notes 1 and 2 from 1 of 3", d.Notes, d.NotesFrom, d.NotesTotal)
	}
	status, body = vendor.api(t, http.MethodGet, "/cases/legacy", "")
	var obj struct {
		Notes []string `json:"notes"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &obj) != nil {
		t.Fatalf("GET the case object: %d %s", status, body)
	}
	if want := []string{notes[0].ID, notes[1].ID, notes[2].ID}; strings.Join(obj.Notes, " ") != strings.Join(want, " ") {
		t.Errorf("the case object's notes are %v, want %v", obj.Notes, want)
	}
}

// writeLegacyCase writes c with notes into the store in dir as a record
// written before notes moved to their own buckets, sealed with the data
// key the node in dir uses.
func writeLegacyCase(t *testing.T, dir string, c cases.Case, notes []cases.Note) {
	t.Helper()
	keys, err := store.LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "vultron.db"), store.Options{NoSync: true, DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	delete(rec, "noteCount")
	rec["notes"] = notes
	if raw, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		b, err := tx.Case(c.ID)
		if err != nil {
			return err
		}
		return b.Put([]byte("case"), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
}
