package cases

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/openvultron/vultron/store"
)

// TestListCasesPage pages through cases in id order: every case once, the
// object index never, and "" as the cursor after the last page.
func TestListCasesPage(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var want []string
	err = db.Update(ctx, func(tx *store.Tx) error {
		for i := range 5 {
			c := &Case{ID: fmt.Sprintf("https://v.example/cases/%02d", i), Name: fmt.Sprintf("case %d", i)}
			want = append(want, c.ID)
			if err := saveCase(tx, c); err != nil {
				return err
			}
		}
		// The object index lives among the case buckets; it is no case.
		_, err := tx.Case(objectIndex)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 2, 5, 6} {
		var got []string
		var pages int
		for after := ""; ; pages++ {
			var page []*Case
			var next string
			err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				page, next, err = ListCasesPage(tx, after, limit)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > limit {
				t.Fatalf("limit %d: a page of %d cases", limit, len(page))
			}
			for _, c := range page {
				got = append(got, c.ID)
			}
			if next == "" {
				break
			}
			if next != page[len(page)-1].ID {
				t.Fatalf("limit %d: next %q is not the page's last case %q", limit, next, page[len(page)-1].ID)
			}
			after = next
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("limit %d: pages gave %v, want %v", limit, got, want)
		}
		if wantPages := (len(want) + limit - 1) / limit; pages+1 != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages+1, wantPages)
		}
	}
}
