package cases

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// TestRecentAdvisories: the published advisories are listed latest
// revised first, from an index that a new revision updates, so that a
// provider's feed and index name the newest whatever the case ids; and a
// store written before that index gets it from MigrateAdvisoryUpdates.
func TestRecentAdvisories(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	publish := func(id string, days ...int) {
		t.Helper()
		err := db.Update(ctx, func(tx *store.Tx) error {
			c, err := loadCase(&tx.ReadTx, id)
			if err != nil {
				return err
			}
			if c == nil {
				c = &Case{ID: id, Name: id, Advisory: &Advisory{}}
			}
			for _, d := range days {
				c.Advisory.Revisions = append(c.Advisory.Revisions, Revision{Number: len(c.Advisory.Revisions) + 1, At: base.AddDate(0, 0, d)})
			}
			return saveCase(tx, c)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	recent := func(limit int) []string {
		t.Helper()
		var ids []string
		err := db.View(ctx, func(tx *store.ReadTx) error {
			cs, err := RecentAdvisories(tx, limit)
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
	// Case ids sort apart from their publication: case 0 is the newest.
	for i := range 5 {
		publish(fmt.Sprintf("https://v.example/cases/%d", i), 10-i)
	}
	publish("https://v.example/cases/unpublished")
	if got, want := recent(3), []string{"https://v.example/cases/0", "https://v.example/cases/1", "https://v.example/cases/2"}; !slices.Equal(got, want) {
		t.Errorf("the 3 latest: %v, want %v", got, want)
	}
	// A revision of the oldest moves it first, once.
	publish("https://v.example/cases/4", 20)
	if got := recent(10); len(got) != 5 || got[0] != "https://v.example/cases/4" {
		t.Errorf("after a revision of case 4: %v, want it first of 5", got)
	}

	// A store written before the index: values empty, no index.
	err = db.Update(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteCase(advisoryUpdates); err != nil {
			return err
		}
		idx, err := tx.Case(advisoryIndex)
		if err != nil {
			return err
		}
		for i := range 5 {
			if err := idx.Put(fmt.Appendf(nil, "https://v.example/cases/%d", i), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := recent(10); len(got) != 0 {
		t.Fatalf("without the index: %v", got)
	}
	if n, err := MigrateAdvisoryUpdates(ctx, db); err != nil || n != 5 {
		t.Fatalf("MigrateAdvisoryUpdates = %d, %v; want the 5 published", n, err)
	}
	if got := recent(10); len(got) != 5 || got[0] != "https://v.example/cases/4" || got[1] != "https://v.example/cases/0" {
		t.Errorf("after the migration: %v, want case 4, then 0 … 3", got)
	}
	if n, err := MigrateAdvisoryUpdates(ctx, db); err != nil || n != 0 {
		t.Errorf("a second MigrateAdvisoryUpdates = %d, %v; want 0, nothing done", n, err)
	}
}
