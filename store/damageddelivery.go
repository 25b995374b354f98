package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"
)

// A delivery record that does not open (a flipped byte of its sealed
// value) or does not decode (cut short, or written by a newer release
// under a tag this one does not know) is never acted on, as no damaged
// record is: nobody can say what it would send, or to whom. But it must
// not stop the rest of the queue either, which a failure of the whole
// read of the due deliveries would. DueDeliveries therefore hands out
// the others and sets it aside (setAsideDamaged): its bytes, as stored,
// move to a bucket of their own, for the operator to look at with the
// data key, and the next delivery of its lane becomes the lane's head.
//
//	deliveries_damaged  delivery id → the record's bytes as stored
//	                    (sealed when the store is); not sealed again,
//	                    since they are what was stored
//	deliveries_damaged_notes  delivery id → when it was set aside and
//	                    why it did not open (tagDamagedNote); not
//	                    sealed: it says nothing the record held
//
// and meta's "damaged_deliveries" counts them, kept like the dead
// letters' count (DB.Check verifies it). An operator lists them
// (DamagedDeliveries: what the notes say and the size, never the bytes,
// which are sealed case content) and discards one once looked at
// (DiscardDamagedDelivery). A record set aside by a release that kept
// no note is listed without a time, and with the reason unknown: it is
// not opened again to find out, since a value sealed with a key this
// process lacks would fence it (seal.go).

// The buckets and the count of damaged delivery records. They are part
// of the file format.
var (
	bucketDamagedDeliveries = []byte("deliveries_damaged")
	bucketDamagedNotes      = []byte("deliveries_damaged_notes")
	keyDamagedCount         = []byte("damaged_deliveries")
)

// tagDamagedNote is the record tag of a damaged delivery's note: the time
// it was set aside and why it did not open. It is part of the file
// format.
const tagDamagedNote byte = 0x0E

// UnknownDamage is the Reason of a damaged delivery set aside by a
// release that did not note why.
const UnknownDamage = "not noted (set aside by an earlier release)"

// DamagedDelivery is a delivery record set aside as damaged, as far as it
// can be told without opening it.
type DamagedDelivery struct {
	ID uint64
	// SetAside is when it was set aside; zero when UnknownDamage.
	SetAside time.Time
	// Bytes is the size of the record as stored.
	Bytes int
	// Reason says why it did not open or decode.
	Reason string
}

// maxLaneWalk bounds the lane index entries a set-aside reads to find the
// lane of a damaged delivery, whose record no longer names it: the lane
// index is keyed by lane, not by delivery. A queue with more pending
// deliveries with an ordering key than this keeps the record where it
// is (it stays leased, and is looked at again when the lease ends).
const maxLaneWalk = 1 << 20

// damagedDelivery is a key of the due index whose delivery's record did
// not open or decode.
type damagedDelivery struct {
	dueKey []byte
	id     uint64
	err    error
}

// isRecordDamage reports whether err says that a record itself is
// damaged, rather than that the store could not be read or that another
// process rotated the data key (which fences this one: its reads prove
// nothing about the record).
func isRecordDamage(err error) bool {
	return errors.Is(err, ErrDamaged) && !errors.Is(err, ErrDataKeyRotated)
}

// openDelivery opens and decodes raw, the stored bytes of the pending
// delivery under k, without failing tx when they do not open.
func openDelivery(tx *ReadTx, k, raw []byte) (Delivery, error) {
	v := raw
	if tx.sl != nil {
		var err error
		if v, err = tx.sl.open(string(bucketDeliveries), k, raw); err != nil {
			return Delivery{}, err
		}
	}
	return decodeDelivery(k, v)
}

// setAsideDamaged moves the damaged delivery dd out of the queue, and
// logs it; the read that met it goes on without it. A failure is logged
// and leaves the record where it is.
func (db *DB) setAsideDamaged(ctx context.Context, dd damagedDelivery) {
	moved, err := db.moveDamaged(ctx, dd)
	if err != nil {
		db.log.Error().Err(err).Uint64("delivery_id", dd.id).Str("damage", dd.err.Error()).
			Msg("delivery record is damaged and could not be set aside; it is tried again when its lease ends")
		return
	}
	db.releaseLease(dd.id)
	if moved {
		db.log.Error().Uint64("delivery_id", dd.id).Str("damage", dd.err.Error()).
			Msg("delivery record is damaged: set aside, its bytes kept in the store's deliveries_damaged bucket; the other deliveries go on")
	}
}

// moveDamaged is the write of setAsideDamaged. It reports false when
// there was nothing to move: the record left the queue, or opens now.
func (db *DB) moveDamaged(ctx context.Context, dd damagedDelivery) (bool, error) {
	var (
		lane     []byte // the delivery's key in the lane index, if any
		complete bool
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		lane, complete = findLaneKey(tx.bucket(bucketDeliveryLanes).engineBucket, dd.id, maxLaneWalk)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: set aside damaged delivery %d: find its lane: %w", dd.id, err)
	}
	if !complete {
		return false, fmt.Errorf("store: set aside damaged delivery %d: its lane was not among the first %d entries of the lane index", dd.id, maxLaneWalk)
	}
	var moved bool
	at := db.now() // outside the write, which may run more than once
	err = db.Update(ctx, func(tx *Tx) error {
		moved = false
		q := tx.deliveryQueue()
		k := seqKey(dd.id)
		raw := cloneBytes(q.records.engineBucket.Get(k))
		if raw == nil || !hasKey(q.due, dd.dueKey) {
			return nil // gone meanwhile (another process set it aside)
		}
		if _, err := openDelivery(&tx.ReadTx, k, raw); !isRecordDamage(err) {
			return err // it opens now, or the store cannot tell: nothing moves
		}
		if lane != nil && !hasKey(q.lanes, lane) {
			return fmt.Errorf("its lane changed meanwhile: %w", ErrConflict)
		}
		if err := q.records.engineBucket.Delete(k); err != nil {
			return fmt.Errorf("remove delivery %d: %w", dd.id, err)
		}
		if err := q.due.Delete(dd.dueKey); err != nil {
			return fmt.Errorf("unindex delivery %d: %w", dd.id, err)
		}
		if lane != nil {
			if err := q.lanes.Delete(lane); err != nil {
				return fmt.Errorf("unindex delivery %d: %w", dd.id, err)
			}
			if err := promoteLaneHead(q, [laneLen]byte(lane[:laneLen])); err != nil {
				return err
			}
		}
		if err := tx.bucket(bucketDamagedDeliveries).engineBucket.Put(k, raw); err != nil {
			return fmt.Errorf("keep damaged delivery %d: %w", dd.id, err)
		}
		note := newEncoder(tagDamagedNote, 64)
		note.time(at)
		note.string(dd.err.Error())
		if err := tx.bucket(bucketDamagedNotes).engineBucket.Put(k, note.buf); err != nil {
			return fmt.Errorf("note damaged delivery %d: %w", dd.id, err)
		}
		if err := addCount(q.meta, keyPendingCount, -1); err != nil {
			return err
		}
		if err := addCount(q.meta, keyDamagedCount, 1); err != nil {
			return err
		}
		moved = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: set aside damaged delivery %d: %w", dd.id, err)
	}
	return moved, nil
}

// promoteLaneHead puts the oldest pending delivery of lane, if any, in
// the due index, as removeMany does when a head leaves.
func promoteLaneHead(q *deliveryQueue, lane [laneLen]byte) error {
	id, ok := laneHead(q.lanes, lane)
	if !ok {
		return nil
	}
	return q.indexHead(id)
}

// indexHead puts the pending delivery id, which has become the head of
// its lane, in the due index under its due time. One whose record is
// damaged is due at once, so that the next read of the due deliveries
// sets it aside (setAsideDamaged): the write that made it the head (the
// outcome of the delivery before it) does not fail for it, nor does the
// lane stop behind it.
func (q *deliveryQueue) indexHead(id uint64) error {
	k := seqKey(id)
	raw := q.records.engineBucket.Get(k)
	if raw == nil {
		return fmt.Errorf("next delivery of a lane: delivery %d: %w", id, ErrNotFound)
	}
	var at time.Time
	d, err := openDelivery(q.records.r, k, raw)
	switch {
	case err == nil:
		at = d.NextAttempt
	case !isRecordDamage(err):
		return fmt.Errorf("next delivery of a lane: %w", err)
	}
	if err := q.due.Put(dueKey(at, id), nil); err != nil {
		return fmt.Errorf("index delivery %d: %w", id, err)
	}
	return nil
}

// findLaneKey returns the key of the lane index that names delivery id,
// nil when none does, and complete false when it read max entries
// without finding it.
func findLaneKey(lanes kvBucket, id uint64, max int) (key []byte, complete bool) {
	want := seqKey(id)
	cur := lanes.Cursor()
	expectKeys(cur, 1024)
	n := 0
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		if n == max {
			return nil, false
		}
		n++
		if len(k) == laneKeyLen && bytes.Equal(k[laneLen:], want) {
			return cloneBytes(k), true
		}
	}
	return nil, true
}

// DamagedDeliveryCount returns the number of delivery records set aside
// as damaged (see setAsideDamaged), kept like DeadLetterCount.
func (db *DB) DamagedDeliveryCount(ctx context.Context) (int, error) {
	n, err := db.count(ctx, keyDamagedCount)
	if err != nil {
		return 0, fmt.Errorf("store: damaged delivery count: %w", err)
	}
	return n, nil
}

// DamagedDeliveryCount is DB.DamagedDeliveryCount in a read transaction
// the caller has.
func (r *ReadTx) DamagedDeliveryCount() uint64 {
	n, _ := readCount(r.bucket(bucketMeta).engineBucket, keyDamagedCount)
	return n
}

// DamagedDeliveries returns up to limit delivery records set aside as
// damaged with an id above after, in id order, and the after of the next
// page (0 when there is none), with the limits of DeadLetters. It never
// returns their bytes.
func (db *DB) DamagedDeliveries(ctx context.Context, after uint64, limit int) ([]DamagedDelivery, uint64, error) {
	limit, ok := deliveryPageLimit(after, limit)
	if !ok {
		return nil, 0, nil
	}
	var (
		out  []DamagedDelivery
		next uint64
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		out, next = out[:0], 0
		notes := tx.bucket(bucketDamagedNotes).engineBucket
		cur := tx.bucket(bucketDamagedDeliveries).engineBucket.Cursor()
		expectKeys(cur, limit+1)
		for k, v := cur.Seek(seqKey(after + 1)); k != nil; k, v = cur.Next() {
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			id, ok := keySeq(k)
			if !ok {
				return fmt.Errorf("damaged delivery key %x: %w", k, errCorrupt)
			}
			dd := DamagedDelivery{ID: id, Bytes: len(v), Reason: UnknownDamage}
			if raw := notes.Get(k); raw != nil {
				d := newDecoder(tagDamagedNote, raw)
				dd.SetAside, dd.Reason = d.time(), d.string()
				if err := d.finish(); err != nil {
					return fmt.Errorf("note of damaged delivery %d: %w", id, err)
				}
			}
			out = append(out, dd)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: damaged deliveries: %w", err)
	}
	return out, next, nil
}

// DiscardDamagedDelivery removes the damaged delivery record id, its
// bytes and its note, once an operator has looked at it, and records
// that in the audit log with by, who asked (a principal's label). A
// record that was never set aside, or is gone, is ErrNotFound.
func (db *DB) DiscardDamagedDelivery(ctx context.Context, id uint64, by string) error {
	err := db.Update(ctx, func(tx *Tx) error {
		k := seqKey(id)
		kept := tx.bucket(bucketDamagedDeliveries).engineBucket
		raw := kept.Get(k)
		if raw == nil {
			return fmt.Errorf("damaged delivery %d: %w", id, ErrNotFound)
		}
		size := len(raw)
		if err := kept.Delete(k); err != nil {
			return fmt.Errorf("remove damaged delivery %d: %w", id, err)
		}
		if err := tx.bucket(bucketDamagedNotes).engineBucket.Delete(k); err != nil {
			return fmt.Errorf("remove the note of damaged delivery %d: %w", id, err)
		}
		if err := addCount(tx.bucket(bucketMeta).engineBucket, keyDamagedCount, -1); err != nil {
			return err
		}
		_, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Decision: DecisionDiscarded, Principal: by,
			Reason: fmt.Sprintf("damaged delivery record %d (%d bytes) discarded", id, size)})
		return err
	})
	if err != nil {
		return fmt.Errorf("store: discard damaged delivery %d: %w", id, err)
	}
	db.log.Info().Uint64("delivery_id", id).Str("by", by).Msg("damaged delivery record discarded")
	return nil
}

// checkDamagedCount reports a count of damaged delivery records that is
// not the number the bucket holds, for DB.Check.
func checkDamagedCount(tx *ReadTx) error {
	kept := tx.bucket(bucketDamagedDeliveries).engineBucket
	held := countKeys(kept)
	if n, err := readCount(tx.bucket(bucketMeta).engineBucket, keyDamagedCount); err != nil || n != held {
		return fmt.Errorf("delivery index: damaged delivery count %d (%v), but %d damaged deliveries are kept", n, err, held)
	}
	// A note outlives its record only if a discard removed one and not
	// the other.
	cur := tx.bucket(bucketDamagedNotes).engineBucket.Cursor()
	for k, _ := cur.First(); k != nil; k, _ = cur.Next() {
		if kept.Get(k) == nil {
			return fmt.Errorf("delivery index: a note of damaged delivery %x, which is not kept", k)
		}
	}
	return nil
}
