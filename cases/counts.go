package cases

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/openvultron/vultron/store"
)

// The node counts its cases by embargo state and world state (PXA) for its
// metrics. Counting at each scrape would decode every case record, so the
// counts are kept instead, in the case bucket named by caseCounts:
//
//	"EM PXA"   number of cases in that state (8-byte big-endian), such as
//	           "ACTIVE pxa"
//	complete   present once every case stored before the counts existed
//	           has been counted (MigrateCounts)
//
// and each counted case's bucket holds, under keyCountedAs, the "EM PXA"
// it is counted in. saveCase calls countCase in the transaction that writes
// the case record: when the state it writes differs from the one the case
// is counted in, it moves the case from the one count to the other. So the
// counts change only with the records, commit with them and never drift
// across a crash, and a save costs one small read more.

// caseCounts is the case-bucket name of the counts; like objectIndex it is
// no URL, so it cannot clash with a case id.
const caseCounts = "counts of cases by state"

var (
	keyCountedAs      = []byte("counted as")
	keyCountsComplete = []byte("complete")
)

// migrateCountsPage is how many cases one transaction of MigrateCounts
// looks at.
const migrateCountsPage = 500

// CaseState is a state the cases are counted in: the embargo state and
// the world state (PXA) as their String methods spell them.
type CaseState struct {
	EM, PXA string
}

func (s CaseState) key() []byte { return []byte(s.EM + " " + s.PXA) }

func stateOf(c *Case) CaseState { return CaseState{EM: c.EM.String(), PXA: c.PXA.String()} }

// countCase counts case c, whose record is being saved in case bucket b, in
// the state it is saved in.
func countCase(tx *store.Tx, b *store.CaseBucket, c *Case) error {
	now := stateOf(c).key()
	was := b.Get(keyCountedAs)
	if was != nil && string(was) == string(now) {
		return nil
	}
	counts, err := tx.Case(caseCounts)
	if err != nil {
		return err
	}
	if was != nil {
		if err := addCaseCount(counts, was, -1); err != nil {
			return err
		}
	}
	if err := addCaseCount(counts, now, 1); err != nil {
		return err
	}
	return b.Put(keyCountedAs, now)
}

// addCaseCount adds delta to the count under key; a count that reaches
// zero is removed, so that the counts name only states some case is in.
func addCaseCount(counts *store.CaseBucket, key []byte, delta int64) error {
	var n int64
	if v := counts.Get(key); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	// Below zero only if the bucket was written by something else than
	// countCase; a metric is not worth refusing the case's change for.
	if n = max(n+delta, 0); n == 0 {
		return counts.Delete(key)
	}
	return counts.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

// ErrCountsIncomplete is returned by Counts for a store whose cases have not
// all been counted yet: MigrateCounts has not finished on it.
var ErrCountsIncomplete = errors.New("the cases stored before the case counts existed are not counted yet")

// Counts returns how many cases this node hosts or replicates in each state
// (states no case is in are absent). It reads the kept counts, so its cost
// does not grow with the number of cases.
func Counts(tx *store.ReadTx) (map[CaseState]int64, error) {
	counts, err := tx.Case(caseCounts)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrCountsIncomplete
	}
	if err != nil {
		return nil, err
	}
	if counts.Get(keyCountsComplete) == nil {
		return nil, ErrCountsIncomplete
	}
	out := map[CaseState]int64{}
	err = counts.ForEach(func(k, v []byte) error {
		if string(k) == string(keyCountsComplete) {
			return nil
		}
		em, pxa, ok := strings.Cut(string(k), " ")
		if !ok || len(v) != 8 {
			return fmt.Errorf("case counts: malformed count %q", k)
		}
		out[CaseState{EM: em, PXA: pxa}] = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MigrateCounts counts the cases of a store written before the case counts
// existed, once: it goes through the cases in pages of migrateCountsPage,
// one transaction each, counts every case not counted yet, and marks the
// counts complete at the end, so that later calls return at once. A run
// that stops half-way leaves every case it reached counted once, and the
// next run goes on with the others. It returns how many cases it counted.
func MigrateCounts(ctx context.Context, db *store.DB) (int, error) {
	return migrateCounts(ctx, db, migrateCountsPage, 0)
}

// migrateCounts is MigrateCounts with page cases per transaction, stopping
// after maxPages transactions when maxPages > 0 (as a crash would).
func migrateCounts(ctx context.Context, db *store.DB, page, maxPages int) (int, error) {
	counted, err := walkCaseBuckets(ctx, db, page, maxPages, caseBucketWalk{
		done: func(tx *store.ReadTx) bool {
			counts, err := tx.Case(caseCounts)
			return err == nil && counts.Get(keyCountsComplete) != nil
		},
		visit: func(tx *store.Tx, id string) (bool, error) {
			b, err := tx.Case(id)
			if err != nil || b.Get(keyCountedAs) != nil {
				return false, err
			}
			c, err := loadCase(&tx.ReadTx, id)
			if err != nil || c == nil || c.ID == "" {
				return false, err // a report, an index, a replica with no record yet
			}
			return true, countCase(tx, b, c)
		},
		finish: func(tx *store.Tx) error {
			counts, err := tx.Case(caseCounts)
			if err != nil {
				return err
			}
			return counts.Put(keyCountsComplete, []byte{1})
		},
	})
	if err != nil {
		return counted, fmt.Errorf("count cases: %w", err)
	}
	return counted, nil
}
