package cases

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
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
			scheme := "https"
			if i == 1 {
				scheme = "http"
			}
			c := &Case{ID: fmt.Sprintf("%s://v.example/cases/%02d", scheme, i), Name: fmt.Sprintf("case %d", i)}
			want = append(want, c.ID)
			if err := saveCase(tx, c); err != nil {
				return err
			}
		}
		// A replica whose record has not come yet is no case either.
		b, err := tx.Case("https://v.example/cases/02-no-record-yet")
		if err != nil {
			return err
		}
		if err := b.Put(keySync, []byte(`{}`)); err != nil {
			return err
		}
		// Reports' records sort after every case.
		if err := writeReport(tx, ReportRecord{ReportID: "https://f.example/r/1", Actor: "vendor", Role: Receiver}); err != nil {
			return err
		}
		// The object index lives among the case buckets; it is no case.
		_, err = tx.Case(objectIndex)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want) // byte order: http:// before https://
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

// BenchmarkListCasesLastPage lists the last page of ten cases in stores
// that keep 1,000 and 20,000 reports, whose buckets sort after the cases':
// the page stops at the first of them, so its cost does not follow the
// reports.
func BenchmarkListCasesLastPage(b *testing.B) {
	for _, reports := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("reports=%d", reports), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			err = db.Update(ctx, func(tx *store.Tx) error {
				for i := range 10 {
					if err := saveCase(tx, &Case{ID: fmt.Sprintf("https://v.example/cases/%02d", i)}); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			for start := 0; start < reports; start += 1000 {
				err := db.Update(ctx, func(tx *store.Tx) error {
					for i := start; i < start+1000; i++ {
						b, err := tx.Case(reportBucket(fmt.Sprintf("https://f.example/r/%06d", i)))
						if err != nil {
							return err
						}
						if err := b.Put([]byte("vendor"), []byte(`{}`)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				err := db.View(ctx, func(tx *store.ReadTx) error {
					page, next, err := ListCasesPage(tx, "https://v.example/cases/04", 100)
					if err == nil && (len(page) != 5 || next != "") {
						err = fmt.Errorf("last page: %d cases, next %q; want 5 and none", len(page), next)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestStubsDoNotReplaceRecordedObjects records an embargo inline, then an
// activity that names it by a stub (its id and type, as an early
// termination carries it): the object index keeps serving the embargo as
// it was recorded, with its end.
func TestStubsDoNotReplaceRecordedObjects(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	const caseID = "https://v.example/cases/c1"
	const embargo = caseID + "/embargoes/1"
	payloads := []string{
		fmt.Sprintf(`{"id":"https://v.example/a/1","type":"Invite","actor":"https://v.example/actors/vendor","object":{"id":%q,"type":"EmbargoEvent","endTime":"2027-03-01T00:00:00Z"},"context":%q}`, embargo, caseID),
		fmt.Sprintf(`{"id":"https://v.example/a/2","type":"Remove","actor":"https://v.example/actors/vendor","object":{"id":%q,"type":"EmbargoEvent"},"origin":%q,"context":%q}`, embargo, caseID, caseID),
	}
	err = db.Update(ctx, func(tx *store.Tx) error {
		prev := ledger.GenesisHash(caseID, time.Now(), "https://v.example/actors/case-c1")
		for i, p := range payloads {
			e, err := ledger.NewEntry(caseID, int64(i), prev, fmt.Sprintf("https://v.example/a/%d", i+1), "x", []byte(p), time.Now())
			if err != nil {
				return err
			}
			if err := appendEntry(tx, e); err != nil {
				return err
			}
			prev = e.EntryHash
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		obj, ok := NewResolver(tx).Resolve(embargo)
		ev, isEvent := obj.(*vocab.EmbargoEvent)
		if !ok || !isEvent || ev.EndTime != "2027-03-01T00:00:00Z" {
			t.Errorf("the embargo resolves to %#v (found %v); want it as recorded, with its end", obj, ok)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
