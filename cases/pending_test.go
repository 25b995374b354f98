package cases

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

func openPendingDB(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// pendingIDs lists the index's records as "report/actor", with the total.
func pendingIDs(t *testing.T, db *store.DB, limit int) ([]string, int) {
	t.Helper()
	var ids []string
	total := 0
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		recs, n, err := PendingReports(tx, limit)
		for _, r := range recs {
			ids = append(ids, r.ReportID+"/"+r.Actor)
		}
		total = n
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids, total
}

// TestPendingReportsFollowRecords keeps the index of reports awaiting a
// decision in step with each record's writes: in while received or
// invalid and in no case, out once validated into a case, closed or when
// the actor reported it, and the count with it.
func TestPendingReportsFollowRecords(t *testing.T) {
	ctx := context.Background()
	db := openPendingDB(t)
	put := func(r ReportRecord) {
		t.Helper()
		if err := db.Update(ctx, func(tx *store.Tx) error { return writeReport(tx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		rec   ReportRecord
		want  []string
		total int
	}{
		{ReportRecord{ReportID: "r1", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived}, []string{"r1/vendor"}, 1},
		{ReportRecord{ReportID: "r1", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived}, []string{"r1/vendor"}, 1},
		{ReportRecord{ReportID: "r1", Actor: "coord", Role: Receiver, RM: cvdstate.RMInvalid}, []string{"r1/coord", "r1/vendor"}, 2},
		{ReportRecord{ReportID: "r0", Actor: "finder", Role: Reporter, RM: cvdstate.RMAccepted}, []string{"r1/coord", "r1/vendor"}, 2},
		{ReportRecord{ReportID: "r1", Actor: "vendor", Role: Receiver, RM: cvdstate.RMValid, CaseID: "https://v.example/cases/1"}, []string{"r1/coord"}, 1},
		{ReportRecord{ReportID: "r2", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived}, []string{"r1/coord", "r2/vendor"}, 2},
		{ReportRecord{ReportID: "r1", Actor: "coord", Role: Receiver, RM: cvdstate.RMClosed}, []string{"r2/vendor"}, 1},
		{ReportRecord{ReportID: "r2", Actor: "vendor", Role: Receiver, RM: cvdstate.RMClosed, DuplicateOf: "https://v.example/cases/1"}, nil, 0},
	}
	for i, st := range steps {
		put(st.rec)
		got, total := pendingIDs(t, db, 10)
		if !slices.Equal(got, st.want) || total != st.total {
			t.Fatalf("after step %d (%s of %s, %s): pending %v of %d, want %v of %d", i, st.rec.ReportID, st.rec.Actor, st.rec.RM, got, total, st.want, st.total)
		}
	}
}

// TestPendingReportsLimit reads at most limit records and still counts
// them all.
func TestPendingReportsLimit(t *testing.T) {
	db := openPendingDB(t)
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		for i := range 7 {
			if err := writeReport(tx, ReportRecord{ReportID: fmt.Sprintf("r%d", i), Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, total := pendingIDs(t, db, 3)
	if want := []string{"r0/vendor", "r1/vendor", "r2/vendor"}; !slices.Equal(got, want) || total != 7 {
		t.Errorf("pending %v of %d, want %v of 7", got, total, want)
	}
}

// TestMigratePendingReports indexes records a store kept from before the
// index, across pages, once: a second run finds the store marked.
func TestMigratePendingReports(t *testing.T) {
	ctx := context.Background()
	db := openPendingDB(t)
	var want []string
	n := migratePendingPage + 3
	err := db.Update(ctx, func(tx *store.Tx) error {
		for i := range n {
			r := ReportRecord{ReportID: fmt.Sprintf("r%04d", i), Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived}
			if i%3 == 0 {
				r.RM, r.CaseID = cvdstate.RMValid, "https://v.example/cases/1"
			} else {
				want = append(want, r.ReportID+"/vendor")
			}
			// As written before the index existed: the record alone.
			b, err := tx.Case(reportBucket(r.ReportID))
			if err != nil {
				return err
			}
			v, err := json.Marshal(r)
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.Actor), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, total := pendingIDs(t, db, n); len(got) != 0 || total != 0 {
		t.Fatalf("before the migration: pending %d of %d, want none", len(got), total)
	}
	indexed, err := MigratePendingReports(ctx, db)
	if err != nil || indexed != len(want) {
		t.Fatalf("MigratePendingReports = %d, %v; want %d", indexed, err, len(want))
	}
	if got, total := pendingIDs(t, db, n); !slices.Equal(got, want) || total != len(want) {
		t.Fatalf("after the migration: pending %d of %d, want %d", len(got), total, len(want))
	}
	if again, err := MigratePendingReports(ctx, db); err != nil || again != 0 {
		t.Errorf("second MigratePendingReports = %d, %v; want 0 (the store is marked)", again, err)
	}
}

// BenchmarkPendingReports reads the dashboard's list of reports awaiting a
// decision from stores that keep 1,000 and 20,000 decided reports beside
// 60 pending ones: the cost follows the list, not the store.
func BenchmarkPendingReports(b *testing.B) {
	for _, decided := range []int{1000, 20000} {
		b.Run(fmt.Sprintf("decided=%d", decided), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for start := 0; start < decided+60; start += 1000 {
				err := db.Update(context.Background(), func(tx *store.Tx) error {
					for i := start; i < min(start+1000, decided+60); i++ {
						r := ReportRecord{ReportID: fmt.Sprintf("r%06d", i), Actor: "vendor", Role: Receiver, RM: cvdstate.RMValid, CaseID: "https://v.example/cases/1"}
						if i%(decided/60+1) == 0 {
							r.RM, r.CaseID = cvdstate.RMReceived, ""
						}
						if err := writeReport(tx, r); err != nil {
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
				err := db.View(context.Background(), func(tx *store.ReadTx) error {
					recs, _, err := PendingReports(tx, 50)
					if len(recs) != 50 {
						return fmt.Errorf("%d records, want 50", len(recs))
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

// TestPendingReportsOldestFirst lists the reports awaiting a decision in the
// order they were received, whatever their ids.
func TestPendingReportsOldestFirst(t *testing.T) {
	db := openPendingDB(t)
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		for i, id := range []string{"https://f.example/r/zeta", "https://f.example/r/alpha", "https://f.example/r/mid"} {
			at := start.Add(time.Duration(i) * time.Minute)
			r := ReportRecord{ReportID: id, Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived, ReceivedAt: at, UpdatedAt: at}
			if err := writeReport(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, total := pendingIDs(t, db, 10)
	want := []string{"https://f.example/r/zeta/vendor", "https://f.example/r/alpha/vendor", "https://f.example/r/mid/vendor"}
	if !slices.Equal(got, want) || total != 3 {
		t.Errorf("pending %v of %d, want %v of 3 (oldest first)", got, total, want)
	}
	// A later change of a record keeps its place.
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		r, _, err := readReport(&tx.ReadTx, "https://f.example/r/zeta", "vendor")
		if err != nil {
			return err
		}
		r.RM, r.UpdatedAt = cvdstate.RMInvalid, start.Add(time.Hour)
		return writeReport(tx, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, total := pendingIDs(t, db, 10); !slices.Equal(got, want) || total != 3 {
		t.Errorf("after a change: pending %v of %d, want %v of 3", got, total, want)
	}
}

// TestMigratePendingReportsMovesKeysByID moves an index keyed by report id,
// as schema version 3 kept it, across pages, to keys by arrival: records
// without ReceivedAt take their UpdatedAt, a key whose record no longer
// waits is dropped from the count, and the old index is removed.
func TestMigratePendingReportsMovesKeysByID(t *testing.T) {
	ctx := context.Background()
	db := openPendingDB(t)
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	n := migratePendingPage + 3
	var want []string
	err := db.Update(ctx, func(tx *store.Tx) error {
		old, err := tx.Case(pendingByID)
		if err != nil {
			return err
		}
		for i := range n {
			// Ids in the reverse of arrival order.
			r := ReportRecord{ReportID: fmt.Sprintf("r%04d", n-i), Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived,
				UpdatedAt: start.Add(time.Duration(i) * time.Minute)}
			if i == 7 {
				r.RM, r.CaseID = cvdstate.RMValid, "https://v.example/cases/1" // indexed, then decided without its key removed
			} else {
				want = append(want, r.ReportID+"/vendor")
			}
			if _, err := putRecord(tx, r); err != nil {
				return err
			}
			if err := old.Put([]byte(r.ReportID+"\x00"+r.Actor), []byte{}); err != nil {
				return err
			}
		}
		counts, err := tx.Case(pendingCount)
		if err != nil {
			return err
		}
		if err := counts.Put(keyPendingCount, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return err
		}
		_, err = tx.Case(pendingMigrated)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	moved, err := MigratePendingReports(ctx, db)
	if err != nil || moved != len(want) {
		t.Fatalf("MigratePendingReports = %d, %v; want %d", moved, err, len(want))
	}
	if got, total := pendingIDs(t, db, n); !slices.Equal(got, want) || total != len(want) {
		t.Fatalf("after the move: %d pending of %d, want %d in arrival order (first %v, want %v)", len(got), total, len(want), got[:min(3, len(got))], want[:3])
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		if _, err := tx.Case(pendingByID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the index by report id is still there (%v)", err)
		}
		r, _, err := readReport(tx, want[0][:len(want[0])-len("/vendor")], "vendor")
		if err == nil && !r.ReceivedAt.Equal(r.UpdatedAt) {
			t.Errorf("a moved record's ReceivedAt = %v, want its UpdatedAt %v", r.ReceivedAt, r.UpdatedAt)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	commits := db.Commits()
	if again, err := MigratePendingReports(ctx, db); err != nil || again != 0 {
		t.Errorf("second MigratePendingReports = %d, %v; want 0", again, err)
	}
	if n := db.Commits() - commits; n != 0 {
		t.Errorf("a start with nothing to move committed %d writes, want none", n)
	}
}
