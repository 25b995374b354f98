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
//
// and meta's "damaged_deliveries" counts them, kept like the dead
// letters' count (DB.Check verifies it).

// The bucket and the count of damaged delivery records. They are part of
// the file format.
var (
	bucketDamagedDeliveries = []byte("deliveries_damaged")
	keyDamagedCount         = []byte("damaged_deliveries")
)

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

// checkDamagedCount reports a count of damaged delivery records that is
// not the number the bucket holds, for DB.Check.
func checkDamagedCount(tx *ReadTx) error {
	held := countKeys(tx.bucket(bucketDamagedDeliveries).engineBucket)
	if n, err := readCount(tx.bucket(bucketMeta).engineBucket, keyDamagedCount); err != nil || n != held {
		return fmt.Errorf("delivery index: damaged delivery count %d (%v), but %d damaged deliveries are kept", n, err, held)
	}
	return nil
}
