package cases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/openvultron/vultron/store"
)

// What a client names a case, a report or an activity by, and what it asks
// of them, is answered from indexes kept in case buckets whose names are no
// URL, so that none clashes with a case id:
//
//	shortIDs       short id + "\x00" + full id → kind ("case" or "report"):
//	               a case or report named by the last segment of its id
//	refusalIndex   id of an activity a local actor sent → the Case Actor's
//	               refusal of it (JSON Refusal)
//
// Each index is written in the transaction that writes what it indexes, so
// that it never lags behind it; a lookup costs one seek, whatever the
// number of cases. MigrateShortIDs indexes, once, the cases and reports of
// a store written before the short ids were.

const (
	shortIDs     = "short ids of cases and reports"
	refusalIndex = "refusals of activities sent"
)

// Kinds of the short-id index.
const (
	KindCase   = "case"
	KindReport = "report"
)

// keyShortIDsComplete, in the shortIDs bucket, says that every case and
// report stored before the index existed has been indexed.
var keyShortIDsComplete = []byte("complete")

// ShortID returns the short id of a case or report: the last segment of
// its id's path ("…/cases/SHORT"), or the whole id when it has none.
func ShortID(id string) string {
	i := strings.LastIndexByte(id, '/')
	if i < 0 || i == len(id)-1 {
		return id
	}
	return id[i+1:]
}

// shortKey is the key of full in the short-id index.
func shortKey(full string) []byte {
	return append(append([]byte(ShortID(full)), 0), full...)
}

// indexShortID records that full, a case or report id of the given kind,
// is named by its short id, and whether it was not before. It writes only
// when the entry is missing, so that saving a case again costs one read.
func indexShortID(tx *store.Tx, full, kind string) (bool, error) {
	if full == "" {
		return false, nil
	}
	idx, err := tx.Case(shortIDs)
	if err != nil {
		return false, err
	}
	key := shortKey(full)
	if idx.Get(key) != nil {
		return false, nil
	}
	return true, idx.Put(key, []byte(kind))
}

// maxShortMatches bounds how many ids ResolveShortID returns: more than one
// already makes the short id ambiguous.
const maxShortMatches = 10

// ResolveShortID returns the full ids of the cases or reports (kind) whose
// short id is short, at most maxShortMatches of them; none when nothing of
// that kind has that short id on this node.
func ResolveShortID(tx *store.ReadTx, short, kind string) ([]string, error) {
	if short == "" || strings.ContainsRune(short, 0) {
		return nil, nil
	}
	idx, err := tx.Case(shortIDs)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	prefix := append([]byte(short), 0)
	var out []string
	errEnough := errors.New("enough")
	err = idx.Range(prefix, func(k, v []byte) error {
		if !bytes.HasPrefix(k, prefix) || len(out) == maxShortMatches {
			return errEnough
		}
		if string(v) == kind {
			out = append(out, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("look up short id %q: %w", short, err)
	}
	return out, nil
}

// migrateShortIDsPage is how many case buckets one transaction of
// MigrateShortIDs looks at.
const migrateShortIDsPage = 500

// MigrateShortIDs indexes the short ids of the cases and reports of a store
// written before the index existed, once, in pages of case buckets (one
// transaction each), and marks the index complete, so that later calls
// return at once. It returns how many ids it indexed.
func MigrateShortIDs(ctx context.Context, db *store.DB) (int, error) {
	return migrateShortIDs(ctx, db, migrateShortIDsPage, 0)
}

func migrateShortIDs(ctx context.Context, db *store.DB, page, maxPages int) (int, error) {
	indexed, err := walkCaseBuckets(ctx, db, page, maxPages, caseBucketWalk{
		done: func(tx *store.ReadTx) bool {
			idx, err := tx.Case(shortIDs)
			return err == nil && idx.Get(keyShortIDsComplete) != nil
		},
		visit: func(tx *store.Tx, id string) (bool, error) {
			full, kind := id, KindCase
			if rest, ok := strings.CutPrefix(id, reportBucket("")); ok {
				full, kind = rest, KindReport
			} else {
				b, err := tx.Case(id)
				if err != nil || b.Get(keyCase) == nil {
					return false, err // an index, a replica with no record yet
				}
			}
			return indexShortID(tx, full, kind)
		},
		finish: func(tx *store.Tx) error {
			idx, err := tx.Case(shortIDs)
			if err != nil {
				return err
			}
			return idx.Put(keyShortIDsComplete, []byte{1})
		},
	})
	if err != nil {
		return indexed, fmt.Errorf("index short ids: %w", err)
	}
	return indexed, nil
}

// caseBucketWalk is what walkCaseBuckets does: done says, before the walk,
// that it was finished before; visit is called with each case bucket's
// name and says whether it changed anything; finish runs in the transaction of the last page.
type caseBucketWalk struct {
	done   func(tx *store.ReadTx) bool
	visit  func(tx *store.Tx, id string) (bool, error)
	finish func(tx *store.Tx) error
}

// walkCaseBuckets calls w.visit with every case bucket's name, page names
// per transaction, and w.finish in the last one; it stops after maxPages
// transactions when maxPages > 0 (as a crash would). A walk that stops
// half-way has committed the pages it finished, so visit must be
// idempotent. It returns how many visits changed something.
func walkCaseBuckets(ctx context.Context, db *store.DB, page, maxPages int, w caseBucketWalk) (int, error) {
	done := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		done = w.done(tx)
		return nil
	}); err != nil || done {
		return 0, err
	}
	total, after := 0, ""
	for pages := 0; maxPages <= 0 || pages < maxPages; pages++ {
		var last string
		more, changed := false, 0
		err := db.Update(ctx, func(tx *store.Tx) error {
			// The function may run more than once: it starts afresh.
			last, more, changed = "", false, 0
			// The names first: writing into the case buckets while a cursor
			// walks their parent would move it.
			var ids []string
			if err := tx.CasesAfter(after, func(id string) (bool, error) {
				if len(ids) == page {
					more = true
					return false, nil
				}
				ids = append(ids, id)
				return true, nil
			}); err != nil {
				return err
			}
			for _, id := range ids {
				last = id
				did, err := w.visit(tx, id)
				if err != nil {
					return err
				}
				if did {
					changed++
				}
			}
			if more {
				return nil
			}
			return w.finish(tx)
		})
		if err != nil {
			return total, fmt.Errorf("after %q: %w", after, err)
		}
		total += changed
		if !more {
			return total, nil
		}
		after = last
	}
	return total, nil
}

// Recorded returns the log index at which this node's copy of case caseID
// recorded the activity activityID, and false when it holds no such entry
// (not yet, or never). It reads the index of recorded activities and the
// one entry it names.
func Recorded(tx *store.ReadTx, caseID, activityID string) (int64, bool, error) {
	idx, err := tx.Case(objectIndex)
	if errors.Is(err, store.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	i, ok := recordedAs(tx, idx.Get([]byte(activityID)), activityID)
	if !ok || i.caseID != caseID {
		return 0, false, nil
	}
	return i.index, true, nil
}

// recordedAt is where the index of recorded activities places an id.
type recordedAt struct {
	caseID string
	index  int64
}

// recordedAs reads v, a value of the index of recorded activities, and
// reports whether the entry it names recorded the activity id itself
// (rather than carrying it inline).
func recordedAs(tx *store.ReadTx, v []byte, id string) (recordedAt, bool) {
	if len(v) <= 8 {
		return recordedAt{}, false
	}
	i, _ := store.KeySeq(v[:8])
	at := recordedAt{caseID: string(v[8:]), index: int64(i)}
	entries, err := Entries(tx, at.caseID, at.index, 1)
	if err != nil || len(entries) != 1 || entries[0].LogObjectID != id {
		return recordedAt{}, false
	}
	return at, true
}

// Refusal is a Case Actor's refusal of an activity a local actor sent: the
// Reject it answered with and the reason it gave.
type Refusal struct {
	Reject string `json:"reject"`
	By     string `json:"by"`
	Reason string `json:"reason"`
}

// recordRefusal notes, in the transaction that accepts the Reject, that
// the activity refused was refused.
func recordRefusal(tx *store.Tx, refused string, r Refusal) error {
	idx, err := tx.Case(refusalIndex)
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("record the refusal of %s: %w", refused, err)
	}
	return idx.Put([]byte(refused), v)
}

// RefusalOf returns the Case Actor's refusal of the activity with the
// given id, which a local actor sent, and false when none arrived.
func RefusalOf(tx *store.ReadTx, activityID string) (Refusal, bool, error) {
	idx, err := tx.Case(refusalIndex)
	if errors.Is(err, store.ErrNotFound) {
		return Refusal{}, false, nil
	}
	if err != nil {
		return Refusal{}, false, err
	}
	v := idx.Get([]byte(activityID))
	if v == nil {
		return Refusal{}, false, nil
	}
	var r Refusal
	if err := json.Unmarshal(v, &r); err != nil {
		return Refusal{}, false, fmt.Errorf("the refusal of %s: %w", activityID, err)
	}
	return r, true, nil
}

// Outcome is what became of an activity a local actor sent to a case, as
// far as this node's copy of the case knows.
type Outcome struct {
	// CaseHeld is false while this node holds no copy of the case (a
	// participant's node holds one once the Case Actor's first
	// announcement arrived).
	CaseHeld bool
	// Recorded says that the copy recorded the activity, at LogIndex.
	Recorded bool
	LogIndex int64
	// Refused is the Case Actor's refusal of the activity, when one
	// reached the local actor that sent it.
	Refused *Refusal
}

// OutcomeOf returns what became of the activity activityID that a local
// actor sent to case caseID: whether this node's copy of the case recorded
// it, and where, or whether the Case Actor refused it. It reads the case
// and two indexes, so a client may ask again and again while it waits.
func OutcomeOf(tx *store.ReadTx, caseID, activityID string) (Outcome, error) {
	var out Outcome
	c, err := Load(tx, caseID)
	if err != nil {
		return Outcome{}, err
	}
	if c != nil {
		out.CaseHeld = true
		i, ok, err := Recorded(tx, caseID, activityID)
		if err != nil {
			return Outcome{}, err
		}
		if ok {
			out.Recorded, out.LogIndex = true, i
			return out, nil
		}
	}
	refusal, ok, err := RefusalOf(tx, activityID)
	if err != nil {
		return Outcome{}, err
	}
	if ok {
		out.Refused = &refusal
	}
	return out, nil
}
