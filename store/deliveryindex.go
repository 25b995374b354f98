package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// The delivery queue keeps, beside its sealed records (deliveries: id →
// Delivery), an index that lets DueDeliveries find what is due without
// reading the queue:
//
//	deliveries_due  due time (8 bytes) + id (8 bytes) → nothing
//	                exactly the head of every lane: the oldest pending
//	                delivery of each recipient and ordering key, and every
//	                delivery without an ordering key (each its own lane),
//	                keyed by its NextAttempt
//	delivery_lanes  lane (32 bytes) + id (8 bytes) → nothing
//	                every pending delivery that has an ordering key, so a
//	                lane's next delivery is one seek away when its head
//	                leaves the queue
//
// and two counts in meta ("pending_deliveries", "dead_letters"), so that
// the size of the queue and of the dead letters is read, not counted.
//
// Every write of the queue goes through deliveryQueue, which changes the
// record, the index and the pending count in the same transaction (and
// DeadLetter and RequeueDeadLetter change the dead letter count with the
// dead letters), so they cannot disagree after a crash; DB.Check verifies
// that they agree.
//
// The index holds no case content. A due time is the NextAttempt of a
// delivery, which the audit log already records in clear; a lane is the
// SHA-256 of the recipient and the ordering key (domain-separated and
// length-prefixed), not the recipient or the case id themselves. The hash
// is kept whole: two lanes whose hashes collided would become one, and a
// dead recipient could then hold back another's deliveries, so finding a
// collision must stay out of reach even for recipient IRIs a peer chooses.
// Its values are empty, so there is nothing to seal.

// Index bucket names and meta keys. They are part of the file format.
var (
	bucketDeliveriesDue = []byte("deliveries_due")
	bucketDeliveryLanes = []byte("delivery_lanes")

	keyPendingCount = []byte("pending_deliveries")
	keyDeadCount    = []byte("dead_letters")
)

const (
	dueKeyLen  = 16
	laneLen    = sha256.Size
	laneKeyLen = laneLen + 8
)

// dueTime is t's position in the due index: its Unix nanoseconds, as the
// record stores them, ordered as unsigned numbers. The zero time (due
// always) sorts first.
func dueTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ 1<<63
}

// dueBound is the last due time a scan for deliveries due at now visits.
// Times that Unix nanoseconds cannot hold are clamped; the scan compares the
// record's own NextAttempt with now before handing it out.
func dueBound(now time.Time) uint64 {
	switch {
	case now.Before(time.Unix(0, math.MinInt64)):
		return 0
	case now.After(time.Unix(0, math.MaxInt64)):
		return math.MaxUint64
	}
	return dueTime(now)
}

func dueKey(at time.Time, id uint64) []byte {
	k := make([]byte, dueKeyLen)
	binary.BigEndian.PutUint64(k, dueTime(at))
	binary.BigEndian.PutUint64(k[8:], id)
	return k
}

// splitDueKey returns the due time and delivery id of a due index key.
func splitDueKey(k []byte) (at, id uint64, ok bool) {
	if len(k) != dueKeyLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:]), true
}

// laneOf returns the lane of d, or ok false when d has no ordering key and
// so is a lane of its own.
func laneOf(d *Delivery) (lane [laneLen]byte, ok bool) {
	if d.OrderingKey == "" {
		return lane, false
	}
	h := sha256.New()
	h.Write([]byte("vultron delivery lane\x00"))
	h.Write(binary.AppendUvarint(nil, uint64(len(d.Recipient))))
	h.Write([]byte(d.Recipient))
	h.Write([]byte(d.OrderingKey))
	h.Sum(lane[:0])
	return lane, true
}

// ReadDeliveryLane names the delivery lane of recipient and orderingKey,
// which queuing a delivery there reads (whether an older one is pending).
// A write that will queue one names it in its read-ahead, so that on
// PostgreSQL a batch of such writes finds all their lanes in one request.
// A delivery without an ordering key has no lane: the ref names nothing.
func ReadDeliveryLane(recipient, orderingKey string) ReadRef {
	lane, ok := laneOf(&Delivery{Recipient: recipient, OrderingKey: orderingKey})
	if !ok {
		return ReadRef{}
	}
	return ReadRef{bucket: bucketDeliveryLanes, key: lane[:], seek: true}
}

func laneKey(lane [laneLen]byte, id uint64) []byte {
	k := make([]byte, laneKeyLen)
	copy(k, lane[:])
	binary.BigEndian.PutUint64(k[laneLen:], id)
	return k
}

// laneHead returns the id of the oldest pending delivery of lane, or ok
// false when the lane is empty.
func laneHead(lanes kvBucket, lane [laneLen]byte) (id uint64, ok bool) {
	k, _ := lanes.Cursor().Seek(lane[:])
	if len(k) != laneKeyLen || [laneLen]byte(k[:laneLen]) != lane {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[laneLen:]), true
}

// deliveryQueue is the delivery queue inside one transaction: the sealed
// records, the index and the counts.
type deliveryQueue struct {
	records *kv
	due     kvBucket
	lanes   kvBucket
	meta    kvBucket
}

func (r *ReadTx) deliveryQueue() *deliveryQueue {
	return &deliveryQueue{
		records: r.bucket(bucketDeliveries),
		due:     r.bucket(bucketDeliveriesDue).engineBucket,
		lanes:   r.bucket(bucketDeliveryLanes).engineBucket,
		meta:    r.bucket(bucketMeta).engineBucket,
	}
}

// get returns the pending delivery id, or ErrNotFound.
func (q *deliveryQueue) get(id uint64) (Delivery, error) {
	k := seqKey(id)
	v := q.records.Get(k)
	if v == nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, ErrNotFound)
	}
	return decodeDelivery(k, v)
}

// add queues d under a new id, at the end of its lane, and returns the id.
func (q *deliveryQueue) add(d *Delivery) (uint64, error) {
	if err := q.addMany([]*Delivery{d}); err != nil {
		return 0, err
	}
	return d.ID, nil
}

// addMany queues ds in order, each under a new id (set in its ID) at the
// end of its lane, as add would one after another, with the heads of all
// their lanes read at once (seekEach): queuing an event for N participants
// reads N lanes in one request, not N.
func (q *deliveryQueue) addMany(ds []*Delivery) error {
	lanes := make([][laneLen]byte, len(ds))
	laned := make([]bool, len(ds))
	var froms [][]byte // each lane once
	// busy: the lane has a pending delivery, stored before this call or
	// queued by it.
	busy := make(map[[laneLen]byte]bool)
	for i, d := range ds {
		lane, ok := laneOf(d)
		if !ok {
			continue
		}
		lanes[i], laned[i] = lane, true
		if _, seen := busy[lane]; !seen {
			busy[lane] = false
			froms = append(froms, lanes[i][:])
		}
	}
	for j, k := range seekEach(q.lanes, froms) {
		lane := [laneLen]byte(froms[j])
		busy[lane] = len(k) == laneKeyLen && [laneLen]byte(k[:laneLen]) == lane
	}
	for i, d := range ds {
		id, err := q.records.NextSequence()
		if err != nil {
			return fmt.Errorf("queue delivery: %w", err)
		}
		d.ID = id
		if err := q.records.Put(seqKey(id), encodeDelivery(d)); err != nil {
			return fmt.Errorf("queue delivery %d: %w", id, err)
		}
		head := true
		if laned[i] {
			head = !busy[lanes[i]]
			busy[lanes[i]] = true
			if err := q.lanes.Put(laneKey(lanes[i], id), nil); err != nil {
				return fmt.Errorf("index delivery %d: %w", id, err)
			}
		}
		if head {
			if err := q.due.Put(dueKey(d.NextAttempt, id), nil); err != nil {
				return fmt.Errorf("index delivery %d: %w", id, err)
			}
		}
	}
	return addCount(q.meta, keyPendingCount, len(ds))
}

// index adds the stored delivery d to the index. d must be newer than every
// pending delivery of its lane, so it is the head only of an empty lane.
func (q *deliveryQueue) index(d *Delivery) error {
	head := true
	if lane, ok := laneOf(d); ok {
		_, busy := laneHead(q.lanes, lane)
		head = !busy
		if err := q.lanes.Put(laneKey(lane, d.ID), nil); err != nil {
			return fmt.Errorf("index delivery %d: %w", d.ID, err)
		}
	}
	if head {
		if err := q.due.Put(dueKey(d.NextAttempt, d.ID), nil); err != nil {
			return fmt.Errorf("index delivery %d: %w", d.ID, err)
		}
	}
	return nil
}

// isHead reports whether the pending delivery d heads its lane.
func (q *deliveryQueue) isHead(d *Delivery) bool {
	return hasKey(q.due, dueKey(d.NextAttempt, d.ID))
}

// hasKey reports whether key is in b. The index's values are empty, and
// bbolt may read an empty value back as nil, so presence is a seek.
func hasKey(b kvBucket, key []byte) bool {
	k, _ := b.Cursor().Seek(key)
	return bytes.Equal(k, key)
}

// remove takes the pending delivery d (as stored) out of the queue; the
// next delivery of its lane, if any, becomes the head.
func (q *deliveryQueue) remove(d *Delivery) error {
	return q.removeMany([]Delivery{*d})
}

// removeMany takes the pending deliveries ds (as stored, distinct) out of
// the queue, leaving it as remove would one after another: a lane whose
// head left is headed by its oldest delivery left. Which of them head
// their lanes, the lanes' next heads and those heads' records are each
// read at once (seekEach, prefetch): completing N deliveries reads in
// three requests, not 3N.
func (q *deliveryQueue) removeMany(ds []Delivery) error {
	dueKeys := make([][]byte, len(ds))
	for i := range ds {
		dueKeys[i] = dueKey(ds[i].NextAttempt, ds[i].ID)
	}
	found := seekEach(q.due, dueKeys)
	var froms [][]byte // lanes whose head left
	refill := make(map[[laneLen]byte]bool)
	for i := range ds {
		d := &ds[i]
		if err := q.records.Delete(seqKey(d.ID)); err != nil {
			return fmt.Errorf("remove delivery %d: %w", d.ID, err)
		}
		wasHead := bytes.Equal(found[i], dueKeys[i])
		if wasHead {
			if err := q.due.Delete(dueKeys[i]); err != nil {
				return fmt.Errorf("unindex delivery %d: %w", d.ID, err)
			}
		}
		if lane, ok := laneOf(d); ok {
			if err := q.lanes.Delete(laneKey(lane, d.ID)); err != nil {
				return fmt.Errorf("unindex delivery %d: %w", d.ID, err)
			}
			if wasHead && !refill[lane] {
				refill[lane] = true
				froms = append(froms, lane[:])
			}
		}
	}
	var next [][]byte // record keys of the lanes' new heads
	for j, k := range seekEach(q.lanes, froms) {
		if len(k) == laneKeyLen && bytes.Equal(k[:laneLen], froms[j]) {
			next = append(next, k[laneLen:])
		}
	}
	prefetch(q.records.engineBucket, next)
	for _, k := range next {
		if err := q.indexHead(binary.BigEndian.Uint64(k)); err != nil {
			return err
		}
	}
	return addCount(q.meta, keyPendingCount, -len(ds))
}

// replace stores next in place of the pending delivery old (same id, same
// lane), moving its due time in the index if it heads its lane.
func (q *deliveryQueue) replace(old, next *Delivery) error {
	if next.ID != old.ID || next.Recipient != old.Recipient || next.OrderingKey != old.OrderingKey {
		return fmt.Errorf("delivery %d: its id, recipient and ordering key cannot change: %w", old.ID, ErrInvalid)
	}
	if err := q.records.Put(seqKey(next.ID), encodeDelivery(next)); err != nil {
		return fmt.Errorf("update delivery %d: %w", next.ID, err)
	}
	if !q.isHead(old) {
		return nil
	}
	if dueTime(old.NextAttempt) != dueTime(next.NextAttempt) {
		if err := q.due.Delete(dueKey(old.NextAttempt, old.ID)); err != nil {
			return fmt.Errorf("reindex delivery %d: %w", old.ID, err)
		}
	}
	// Written even when the due time is the same: an engine that keeps
	// leases in the index (PostgreSQL) drops the lease on a write.
	if err := q.due.Put(dueKey(next.NextAttempt, next.ID), nil); err != nil {
		return fmt.Errorf("reindex delivery %d: %w", next.ID, err)
	}
	return nil
}

// readCount returns a count kept in meta (zero when absent).
func readCount(meta kvBucket, key []byte) (uint64, error) {
	v := meta.Get(key)
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("meta %s: %w: %d bytes, want 8", key, errCorrupt, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func writeCount(meta kvBucket, key []byte, n uint64) error {
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, n)
	if err := meta.Put(key, v); err != nil {
		return fmt.Errorf("meta %s: %w", key, err)
	}
	return nil
}

// addCount adds delta to a count kept in meta.
func addCount(meta kvBucket, key []byte, delta int) error {
	n, err := readCount(meta, key)
	if err != nil {
		return err
	}
	if delta < 0 && n < uint64(-delta) {
		return fmt.Errorf("meta %s: %w: count %d would go below zero", key, errCorrupt, n)
	}
	return writeCount(meta, key, uint64(int64(n)+int64(delta)))
}

// checkDeliveryIndex reports the first disagreement between the queue and
// its index and counts: every pending delivery must be in its lane, exactly
// the lane heads must be in the due index under their NextAttempt, and the
// counts must be the number of pending deliveries and dead letters. It
// reads the whole queue, for DB.Check.
func checkDeliveryIndex(tx *ReadTx) error {
	q := tx.deliveryQueue()
	seen := make(map[[laneLen]byte]struct{})
	var pending, laned, heads uint64
	cur := q.records.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		d, err := decodeDelivery(k, q.records.open(k, v))
		if tx.sealErr != nil {
			return tx.sealErr
		}
		if err != nil {
			return err
		}
		pending++
		head := true
		if lane, ok := laneOf(&d); ok {
			laned++
			if _, dup := seen[lane]; dup {
				head = false
			}
			seen[lane] = struct{}{}
			if !hasKey(q.lanes, laneKey(lane, d.ID)) {
				return fmt.Errorf("delivery index: delivery %d is missing from its lane", d.ID)
			}
		}
		indexed := q.isHead(&d)
		switch {
		case head && !indexed:
			return fmt.Errorf("delivery index: delivery %d heads its lane but is not in the due index", d.ID)
		case !head && indexed:
			return fmt.Errorf("delivery index: delivery %d is in the due index behind an older delivery of its lane", d.ID)
		}
		if head {
			heads++
		}
	}
	if n := countKeys(q.lanes); n != laned {
		return fmt.Errorf("delivery index: %d lane entries for %d pending deliveries with an ordering key", n, laned)
	}
	if n := countKeys(q.due); n != heads {
		return fmt.Errorf("delivery index: %d due entries for %d lane heads", n, heads)
	}
	if n, err := readCount(q.meta, keyPendingCount); err != nil || n != pending {
		return fmt.Errorf("delivery index: pending count %d (%v), but %d deliveries are pending", n, err, pending)
	}
	dead := countKeys(tx.bucket(bucketDeadLetters))
	if n, err := readCount(q.meta, keyDeadCount); err != nil || n != dead {
		return fmt.Errorf("delivery index: dead letter count %d (%v), but there are %d dead letters", n, err, dead)
	}
	return checkDamagedCount(tx)
}
