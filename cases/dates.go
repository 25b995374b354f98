package cases

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/openvultron/vultron/store"
)

// The cases that have a date a calendar shows (the end of the embargo in
// force, of a proposed one, the advisory's proposed publication) are
// indexed by the latest of those dates, so that the node's calendar feed
// reads the cases whose dates are recent or ahead, not every case the node
// ever held. datedCases maps a case id to its key in casesByDate: the
// latest date's Unix nanoseconds (big-endian) and the case id. Stores
// written before the index get it from MigrateCaseDates, which then
// creates the bucket named by caseDatesIndexed.
const (
	datedCases       = "cases dated"
	casesByDate      = "cases by date"
	caseDatesIndexed = "cases indexed by date"
)

// latestDate is the latest date of c a calendar shows; zero when it has
// none.
func latestDate(c *Case) time.Time {
	var latest time.Time
	later := func(t time.Time) {
		if t.After(latest) {
			latest = t
		}
	}
	if c.Embargo != nil {
		later(c.Embargo.End)
	}
	for _, p := range c.Proposals {
		later(p.Terms.End)
	}
	if c.Advisory != nil && c.Advisory.PublishAt != nil {
		later(c.Advisory.PublishAt.Time)
	}
	return latest
}

// dateKey is a key of casesByDate: t's Unix nanoseconds (none before
// 1970), then id.
func dateKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(max(t.UnixNano(), 0))), id...)
}

// indexDates indexes case c, whose record is being saved, by its latest
// date, or takes it out of the index when it has none.
func indexDates(tx *store.Tx, c *Case) error {
	var key []byte
	if t := latestDate(c); !t.IsZero() {
		key = dateKey(t, c.ID)
	}
	return reindex(tx, datedCases, casesByDate, c.ID, key)
}

// reindex moves id's entry in the ordered index keysName to key (none
// when key is nil), through idsName, which maps each id to its key there:
// a write only when the key changed.
func reindex(tx *store.Tx, idsName, keysName, id string, key []byte) error {
	ids, err := tx.Case(idsName)
	if err != nil {
		return err
	}
	old := ids.Get([]byte(id))
	if bytes.Equal(old, key) && (old != nil || key == nil) {
		return nil
	}
	keys, err := tx.Case(keysName)
	if err != nil {
		return err
	}
	if len(old) > 0 {
		if err := keys.Delete(old); err != nil {
			return err
		}
	}
	if key == nil {
		if old == nil {
			return nil
		}
		return ids.Delete([]byte(id))
	}
	if err := keys.Put(key, []byte{}); err != nil {
		return err
	}
	return ids.Put([]byte(id), key)
}

// DatedCases returns the cases whose latest calendar date (an embargo's
// end, a proposed one, an advisory's publication) is at since or later,
// earliest first, at most limit of them.
func DatedCases(tx *store.ReadTx, since time.Time, limit int) ([]*Case, error) {
	return casesInOrder(tx, casesByDate, dateKey(since, ""), limit)
}

// casesInOrder returns the cases of the ordered index keysName (whose keys
// are 8 bytes of order, then a case id; see reindex), in key order from
// from, at most limit of them.
func casesInOrder(tx *store.ReadTx, keysName string, from []byte, limit int) ([]*Case, error) {
	keys, err := tx.Case(keysName)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Case
	err = keys.RangeN(from, limit, func(k, _ []byte) error {
		if len(out) == limit {
			return errPageFull
		}
		if len(k) <= 8 {
			return fmt.Errorf("%s: key %x is too short", keysName, k)
		}
		c, err := loadCase(tx, string(k[8:]))
		if err != nil {
			return err
		}
		if c != nil {
			out = append(out, c)
		}
		return nil
	})
	if errors.Is(err, errPageFull) {
		err = nil
	}
	return out, err
}

// MigrateCaseDates indexes by their latest date the cases of a store
// written before casesByDate (a page of cases per transaction), and then
// marks the store so that later calls return at once. It returns how many
// cases it read.
func MigrateCaseDates(ctx context.Context, db *store.DB) (int, error) {
	return migratePages(ctx, db, caseDatesIndexed, "index the cases by date", func(tx *store.Tx, after string) (int, string, error) {
		cs, next, err := ListCasesPage(&tx.ReadTx, after, 100)
		if err != nil {
			return 0, "", err
		}
		for _, c := range cs {
			if err := indexDates(tx, c); err != nil {
				return 0, "", err
			}
		}
		return len(cs), next, nil
	})
}

// migratePages runs page, one transaction per page from the first, until
// it says there is no next, unless the store has the bucket named by
// marker; then creates that bucket, which marks the migration done. It
// returns how many items the pages counted.
func migratePages(ctx context.Context, db *store.DB, marker, what string, page func(tx *store.Tx, after string) (int, string, error)) (int, error) {
	done := false
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		_, err := tx.Case(marker)
		done = err == nil
		return nil
	}); err != nil || done {
		return 0, err
	}
	n, after := 0, ""
	for {
		var next string
		var counted int
		err := db.Update(ctx, func(tx *store.Tx) error {
			var err error
			counted, next, err = page(tx, after)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("%s: %w", what, err)
		}
		n += counted
		if next == "" {
			break
		}
		after = next
	}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Case(marker)
		return err
	}); err != nil {
		return n, fmt.Errorf("%s: %w", what, err)
	}
	return n, nil
}
