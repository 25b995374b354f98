package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
)

// resolveShort returns ResolveShortID(short, kind) or fails the test.
func resolveShort(t *testing.T, db *store.DB, short, kind string) []string {
	t.Helper()
	var out []string
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		out, err = ResolveShortID(tx, short, kind)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestShortIDs names cases and reports by the last segment of their ids:
// saving a case or a report record indexes it, a short id shared by cases
// of two hosts names both, and a report's short id names no case.
func TestShortIDs(t *testing.T) {
	db := openStore(t)
	update(t, db, func(tx *store.Tx) error {
		for _, id := range []string{"https://v.example/cases/abc", "https://w.example/cases/abc", "https://v.example/cases/abd"} {
			if err := saveCase(tx, &Case{ID: id}); err != nil {
				return err
			}
		}
		// Saving again indexes nothing twice.
		if err := saveCase(tx, &Case{ID: "https://v.example/cases/abd", Name: "again"}); err != nil {
			return err
		}
		return writeReport(tx, ReportRecord{ReportID: "https://f.example/objects/r1", Actor: "vendor", Role: Receiver})
	})
	tests := []struct {
		short, kind string
		want        []string
	}{
		{"abd", KindCase, []string{"https://v.example/cases/abd"}},
		{"abc", KindCase, []string{"https://v.example/cases/abc", "https://w.example/cases/abc"}},
		{"ab", KindCase, nil},
		{"r1", KindReport, []string{"https://f.example/objects/r1"}},
		{"r1", KindCase, nil},
		{"", KindCase, nil},
		{"abd\x00https://v.example/cases/abd", KindCase, nil},
	}
	for _, tt := range tests {
		if got := resolveShort(t, db, tt.short, tt.kind); !slices.Equal(got, tt.want) {
			t.Errorf("ResolveShortID(%q, %s) = %q, want %q", tt.short, tt.kind, got, tt.want)
		}
	}
	for id, want := range map[string]string{"https://v.example/cases/abc": "abc", "urn:uuid:1": "urn:uuid:1", "https://v.example/cases/": "https://v.example/cases/"} {
		if got := ShortID(id); got != want {
			t.Errorf("ShortID(%q) = %q, want %q", id, got, want)
		}
	}
}

// TestMigrateShortIDs indexes the cases and reports of a store written
// before the short ids, stopping after one page as a crash would and
// finishing after a reopen; a second run does nothing.
func TestMigrateShortIDs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := store.Open(path, store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, func(tx *store.Tx) error {
		for i := range 7 {
			v, err := json.Marshal(&Case{ID: fmt.Sprintf("https://v.example/cases/old-%d", i)})
			if err != nil {
				return err
			}
			b, err := tx.Case(fmt.Sprintf("https://v.example/cases/old-%d", i))
			if err != nil {
				return err
			}
			if err := b.Put(keyCase, v); err != nil {
				return err
			}
		}
		b, err := tx.Case(reportBucket("https://f.example/objects/rep"))
		if err != nil {
			return err
		}
		// A replica's bucket before its record: no case yet.
		if _, err := tx.Case("https://v.example/cases/empty"); err != nil {
			return err
		}
		return b.Put([]byte("vendor"), []byte(`{}`))
	})
	if got := resolveShort(t, db, "old-6", KindCase); got != nil {
		t.Fatalf("before the migration old-6 names %q", got)
	}
	// The first page: the bucket without a record, old-0 and old-1.
	if n, err := migrateShortIDs(ctx, db, 3, 1); err != nil || n != 2 {
		t.Fatalf("the first page indexed %d (%v), want 2", n, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(path, store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := MigrateShortIDs(ctx, db); err != nil || n != 6 {
		t.Fatalf("the rest indexed %d (%v), want 6", n, err)
	}
	for _, short := range []string{"old-0", "old-3", "old-6"} {
		if got := resolveShort(t, db, short, KindCase); len(got) != 1 {
			t.Errorf("after the migration %s names %q", short, got)
		}
	}
	if got := resolveShort(t, db, "rep", KindReport); len(got) != 1 {
		t.Errorf("after the migration the report's short id names %q", got)
	}
	if got := resolveShort(t, db, "empty", KindCase); got != nil {
		t.Errorf("a bucket without a case record is indexed as %q", got)
	}
	if n, err := MigrateShortIDs(ctx, db); err != nil || n != 0 {
		t.Errorf("a second migration indexed %d (%v), want 0", n, err)
	}
}

// TestRecorded finds where a case recorded an activity from the index of
// recorded activities: a later entry that carries the activity inline does
// not move it, an object carried inline is no recorded activity, and
// another case's id finds nothing.
func TestRecorded(t *testing.T) {
	db := openStore(t)
	c, entries := hostedLedger(t, db, 3, 10)
	quoting := fmt.Sprintf(`{"id":"https://v.example/a/q","type":"Accept","object":{"id":%q,"type":"Add","object":{"id":"https://v.example/obj/1","type":"Note"}}}`, entries[1].LogObjectID)
	e, err := ledger.NewEntry(caseID, 3, c.TailHash, "https://v.example/a/q", "add_note_to_case", []byte(quoting), t0)
	if err != nil {
		t.Fatal(err)
	}
	update(t, db, func(tx *store.Tx) error { return appendEntry(tx, e) })
	tests := []struct {
		caseID, activity string
		index            int64
		ok               bool
	}{
		{caseID, entries[0].LogObjectID, 0, true},
		{caseID, entries[1].LogObjectID, 1, true},
		{caseID, "https://v.example/a/q", 3, true},
		{caseID, "https://v.example/obj/1", 0, false},
		{caseID, "https://v.example/a/none", 0, false},
		{"https://w.example/cases/other", entries[0].LogObjectID, 0, false},
	}
	for _, tt := range tests {
		var i int64
		var ok bool
		err := db.View(context.Background(), func(tx *store.ReadTx) error {
			var err error
			i, ok, err = Recorded(tx, tt.caseID, tt.activity)
			return err
		})
		if err != nil || ok != tt.ok || i != tt.index {
			t.Errorf("Recorded(%s, %s) = %d, %v, %v; want %d, %v", tt.caseID, tt.activity, i, ok, err, tt.index, tt.ok)
		}
	}
}

// TestRefusals keeps the Case Actor's refusal of an activity under the
// activity's id.
func TestRefusals(t *testing.T) {
	db := openStore(t)
	want := Refusal{Reject: "https://v.example/a/r", By: caseActor, Reason: "the embargo is too long"}
	update(t, db, func(tx *store.Tx) error { return recordRefusal(tx, "https://f.example/a/1", want) })
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		if got, ok, err := RefusalOf(tx, "https://f.example/a/1"); err != nil || !ok || got != want {
			t.Errorf("RefusalOf = %+v, %v, %v; want %+v", got, ok, err, want)
		}
		if _, ok, err := RefusalOf(tx, "https://f.example/a/2"); err != nil || ok {
			t.Errorf("RefusalOf an activity not refused: %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
