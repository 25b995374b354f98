package cases

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// TestDatedCases: cases are listed by their latest calendar date from an
// index that a change of date moves and that a case without dates leaves;
// a store written before the index gets it from MigrateCaseDates.
func TestDatedCases(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	save := func(c *Case) {
		t.Helper()
		if err := db.Update(ctx, func(tx *store.Tx) error { return saveCase(tx, c) }); err != nil {
			t.Fatal(err)
		}
	}
	dated := func(since time.Time) []string {
		t.Helper()
		var ids []string
		err := db.View(ctx, func(tx *store.ReadTx) error {
			cs, err := DatedCases(tx, since, 10)
			for _, c := range cs {
				ids = append(ids, c.ID)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	a := &Case{ID: "https://v.example/cases/a", Embargo: &Embargo{End: base.AddDate(0, 0, 30)}}
	b := &Case{ID: "https://v.example/cases/b", Proposals: []Proposal{{InviteID: "i", Terms: Embargo{End: base.AddDate(0, 0, 10)}}}}
	c := &Case{ID: "https://v.example/cases/c", Embargo: &Embargo{End: base.AddDate(0, 0, -5)}}
	for _, x := range []*Case{a, b, c, {ID: "https://v.example/cases/none"}} {
		save(x)
	}
	if got, want := dated(base), []string{b.ID, a.ID}; !slices.Equal(got, want) {
		t.Errorf("dated from %v: %v, want %v", base, got, want)
	}
	// The proposal is answered and gone: b has no date and leaves.
	b.Proposals = nil
	save(b)
	if got, want := dated(base.AddDate(0, 0, -10)), []string{c.ID, a.ID}; !slices.Equal(got, want) {
		t.Errorf("after b's proposal went: %v, want %v", got, want)
	}

	// A store written before the index.
	err = db.Update(ctx, func(tx *store.Tx) error {
		for _, name := range []string{datedCases, casesByDate} {
			if err := tx.DeleteCase(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := MigrateCaseDates(ctx, db); err != nil || n != 4 {
		t.Fatalf("MigrateCaseDates = %d, %v; want the 4 cases read", n, err)
	}
	if got, want := dated(base.AddDate(0, 0, -10)), []string{c.ID, a.ID}; !slices.Equal(got, want) {
		t.Errorf("after the migration: %v, want %v", got, want)
	}
	if n, err := MigrateCaseDates(ctx, db); err != nil || n != 0 {
		t.Errorf("a second MigrateCaseDates = %d, %v; want 0", n, err)
	}
}
