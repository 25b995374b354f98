package cases

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// Reports awaiting a decision: those a local actor received that are in
// no case yet and whose RM state is received or invalid, so that the
// actor still has to validate, invalidate or close them. Lists of them (the
// dashboard's) read this index, never every report the node keeps, oldest
// first, as a triage queue is worked.
const (
	// pendingIndex maps arrival (8 bytes, arrivalKey of the record's
	// ReceivedAt), report id, NUL, local actor name to nothing, one key
	// per record that awaits a decision. A report received now goes to
	// the end of the index, beside the others of its commit, where a key
	// by report id cost every received report a page at a random place.
	pendingIndex = "reports awaiting a decision, by arrival"
	// pendingByID is the index as schema versions before 4 kept it,
	// keyed by report id, NUL, actor; MigratePendingReports moves its
	// keys into pendingIndex and removes it.
	pendingByID = "reports awaiting a decision"
	// pendingCount holds how many keys pendingIndex has (8 bytes,
	// big-endian) under keyPendingCount.
	pendingCount = "reports awaiting a decision, count"
	// pendingMigrated is present once every record written before the
	// index existed was indexed (MigratePendingReports ran).
	pendingMigrated = "reports awaiting a decision, indexed"
)

var keyPendingCount = []byte("count")

// AwaitsDecision reports whether a local actor's record of a report waits
// for the actor's decision: received, in no case, and valid or not yet
// decided.
func AwaitsDecision(r ReportRecord) bool {
	return r.Role == Receiver && r.CaseID == "" && (r.RM == cvdstate.RMReceived || r.RM == cvdstate.RMInvalid)
}

// pendingKey is r's key in pendingIndex. ReceivedAt never changes once a
// record has it, so the key a record was indexed under is found again
// from the record.
func pendingKey(r ReportRecord) []byte {
	k := make([]byte, 8, 8+len(r.ReportID)+1+len(r.Actor))
	binary.BigEndian.PutUint64(k, arrivalKey(r.ReceivedAt))
	k = append(k, r.ReportID...)
	k = append(k, 0)
	return append(k, r.Actor...)
}

// arrivalKey orders times as their Unix nanoseconds do (offset so that
// times before 1970 sort first); the zero time sorts first of all.
func arrivalKey(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

// parsePendingKey returns the report id and actor name of a pendingIndex
// key.
func parsePendingKey(k []byte) (reportID, actor string, err error) {
	if len(k) < 8 {
		return "", "", fmt.Errorf("reports awaiting a decision: malformed key %q", k)
	}
	reportID, actor, ok := strings.Cut(string(k[8:]), "\x00")
	if !ok {
		return "", "", fmt.Errorf("reports awaiting a decision: malformed key %q", k)
	}
	return reportID, actor, nil
}

// indexPending puts r's record into the index of reports awaiting a
// decision or takes it out, and keeps the count; writeReport calls it.
// A record that was never stored (isNew) has no key in it to look for.
func indexPending(tx *store.Tx, r ReportRecord, isNew bool) error {
	idx, err := tx.Case(pendingIndex)
	if err != nil {
		return err
	}
	key := pendingKey(r)
	was, is := !isNew && idx.Get(key) != nil, AwaitsDecision(r)
	if was == is {
		return nil
	}
	d := int64(1)
	if is {
		err = idx.Put(key, []byte{})
	} else {
		d, err = -1, idx.Delete(key)
	}
	if err != nil {
		return err
	}
	return addPendingCount(tx, d)
}

// addPendingCount adds d to the count of records awaiting a decision,
// which never goes below zero.
func addPendingCount(tx *store.Tx, d int64) error {
	counts, err := tx.Case(pendingCount)
	if err != nil {
		return err
	}
	n := readCount(counts.Get(keyPendingCount))
	return counts.Put(keyPendingCount, binary.BigEndian.AppendUint64(nil, uint64(max(n+d, 0))))
}

func readCount(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

// errStopPending ends a walk of the index early.
var errStopPending = errors.New("stop")

// PendingReports returns the records of at most limit reports awaiting a
// decision, oldest received first, and how many records await one in all.
// It reads the index: its cost grows with limit, not with the reports the
// node keeps.
func PendingReports(tx *store.ReadTx, limit int) ([]ReportRecord, int, error) {
	total := 0
	if counts, err := tx.Case(pendingCount); err == nil {
		total = int(readCount(counts.Get(keyPendingCount)))
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, 0, err
	}
	idx, err := tx.Case(pendingIndex)
	if errors.Is(err, store.ErrNotFound) {
		return nil, total, nil
	}
	if err != nil {
		return nil, 0, err
	}
	// The index's keys first, then the records they name, read together
	// (on PostgreSQL a few requests for the page, not two per report).
	type entry struct{ reportID, actor string }
	var entries []entry
	err = idx.RangeN(nil, limit, func(k, _ []byte) error {
		if len(entries) == limit {
			return errStopPending
		}
		reportID, actor, err := parsePendingKey(k)
		if err != nil {
			return err
		}
		entries = append(entries, entry{reportID, actor})
		return nil
	})
	if err != nil && !errors.Is(err, errStopPending) {
		return nil, 0, fmt.Errorf("reports awaiting a decision: %w", err)
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = reportBucket(e.reportID)
	}
	tx.ReadAheadCaseContents(names)
	var out []ReportRecord
	for _, e := range entries {
		rec, found, err := readReport(tx, e.reportID, e.actor)
		if err != nil {
			return nil, 0, fmt.Errorf("reports awaiting a decision: %w", err)
		}
		if found {
			out = append(out, rec)
		}
	}
	return out, total, nil
}

// migratePendingPage bounds the reports, or index keys, one transaction of
// MigratePendingReports reads.
const migratePendingPage = 500

// MigratePendingReports brings the index of reports awaiting a decision up
// to date at start, and returns how many records it indexed or moved:
//
//   - an index keyed by report id (schema version 3 and before) has its
//     keys moved to keys by arrival, migratePendingPage keys per
//     transaction, and is removed once empty; a record without ReceivedAt
//     takes its UpdatedAt, the nearest time it says;
//   - a store written before the index existed has it built from every
//     report record, in pages of migratePendingPage reports, and is then
//     marked, so that later starts return at once.
//
// The move runs first, so that a build that an older release left half
// done counts none of what it had indexed twice. Either step, stopped
// half-way, is taken up by the next start.
func MigratePendingReports(ctx context.Context, db *store.DB) (int, error) {
	moved, err := movePendingByID(ctx, db)
	if err != nil {
		return moved, err
	}
	built, err := buildPending(ctx, db)
	return moved + built, err
}

// movePendingByID moves the keys of the index by report id to the index by
// arrival.
func movePendingByID(ctx context.Context, db *store.DB) (int, error) {
	gone := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		_, err := tx.Case(pendingByID)
		gone = errors.Is(err, store.ErrNotFound)
		return nil
	}); err != nil || gone {
		return 0, err // a start with nothing to move writes nothing
	}
	total := 0
	for {
		more, n := false, 0
		err := db.Update(ctx, func(tx *store.Tx) error {
			more, n = false, 0
			if _, err := tx.ReadTx.Case(pendingByID); errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			old, err := tx.Case(pendingByID)
			if err != nil {
				return err
			}
			var keys [][]byte
			err = old.ForEach(func(k, _ []byte) error {
				if len(keys) == migratePendingPage {
					more = true
					return errStopPending
				}
				keys = append(keys, bytes.Clone(k))
				return nil
			})
			if err != nil && !errors.Is(err, errStopPending) {
				return err
			}
			idx, err := tx.Case(pendingIndex)
			if err != nil {
				return err
			}
			stale := int64(0)
			for _, k := range keys {
				reportID, actor, ok := strings.Cut(string(k), "\x00")
				if !ok {
					return fmt.Errorf("malformed key %q", k)
				}
				rec, found, err := readReport(&tx.ReadTx, reportID, actor)
				if err != nil {
					return err
				}
				switch {
				case !found || !AwaitsDecision(rec):
					stale++ // counted, but no longer waiting
				default:
					if rec.ReceivedAt.IsZero() {
						rec.ReceivedAt = rec.UpdatedAt
						if _, err := putRecord(tx, rec); err != nil {
							return err
						}
					}
					if err := idx.Put(pendingKey(rec), []byte{}); err != nil {
						return err
					}
					n++
				}
				if err := old.Delete(k); err != nil {
					return err
				}
			}
			if stale > 0 {
				if err := addPendingCount(tx, -stale); err != nil {
					return err
				}
			}
			if more {
				return nil
			}
			return tx.DeleteCase(pendingByID)
		})
		if err != nil {
			return total, fmt.Errorf("key the reports awaiting a decision by arrival: %w", err)
		}
		total += n
		if !more {
			return total, nil
		}
	}
}

// buildPending indexes the records written before the index existed,
// unless the store is marked as done.
func buildPending(ctx context.Context, db *store.DB) (int, error) {
	done := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		_, err := tx.Case(pendingMigrated)
		done = err == nil
		return nil
	}); err != nil || done {
		return 0, err
	}
	total, after := 0, ""
	for {
		next := ""
		err := db.Update(ctx, func(tx *store.Tx) error {
			var recs []ReportRecord
			var err error
			next, err = eachReport(&tx.ReadTx, after, migratePendingPage, func(r []ReportRecord) { recs = append(recs, r...) })
			if err != nil {
				return err
			}
			for _, r := range recs {
				if !AwaitsDecision(r) {
					continue
				}
				if r.ReceivedAt.IsZero() {
					r.ReceivedAt = r.UpdatedAt
					if _, err := putRecord(tx, r); err != nil {
						return err
					}
				}
				if err := indexPending(tx, r, false); err != nil {
					return err
				}
				total++
			}
			if next == "" {
				_, err = tx.Case(pendingMigrated)
			}
			return err
		})
		if err != nil {
			return total, fmt.Errorf("index the reports awaiting a decision: %w", err)
		}
		if next == "" {
			return total, nil
		}
		after = next
	}
}
