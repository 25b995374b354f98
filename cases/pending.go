package cases

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// Reports awaiting a decision: those a local actor received that are in
// no case yet and whose RM state is received or invalid, so that the
// actor still has to validate, invalidate or close them. Lists of them (the
// dashboard's) read this index, never every report the node keeps.
const (
	// pendingIndex maps report id, NUL, local actor name to nothing, one
	// key per record that awaits a decision.
	pendingIndex = "reports awaiting a decision"
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

func pendingKey(reportID, actor string) []byte { return []byte(reportID + "\x00" + actor) }

// indexPending puts r's record into the index of reports awaiting a
// decision or takes it out, and keeps the count; writeReport calls it.
func indexPending(tx *store.Tx, r ReportRecord) error {
	idx, err := tx.Case(pendingIndex)
	if err != nil {
		return err
	}
	key := pendingKey(r.ReportID, r.Actor)
	was, is := idx.Get(key) != nil, AwaitsDecision(r)
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
// decision, in report id order, and how many records await one in all.
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
	var out []ReportRecord
	err = idx.ForEach(func(k, _ []byte) error {
		if len(out) == limit {
			return errStopPending
		}
		reportID, actor, ok := strings.Cut(string(k), "\x00")
		if !ok {
			return fmt.Errorf("reports awaiting a decision: malformed key %q", k)
		}
		rec, found, err := readReport(tx, reportID, actor)
		if err != nil {
			return err
		}
		if found {
			out = append(out, rec)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopPending) {
		return nil, 0, fmt.Errorf("reports awaiting a decision: %w", err)
	}
	return out, total, nil
}

// migratePendingPage bounds the reports MigratePendingReports reads per
// transaction.
const migratePendingPage = 500

// MigratePendingReports indexes the records written before the index of
// reports awaiting a decision existed. It walks the reports in pages of
// migratePendingPage, one transaction each, then marks the store so that
// later starts return at once, and returns how many records it indexed.
func MigratePendingReports(ctx context.Context, db *store.DB) (int, error) {
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
				if err := indexPending(tx, r); err != nil {
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
