package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/url"
	"time"
)

// Delivery is one queued attempt to deliver an outbound activity to one
// recipient. The retry policy (backoff, Retry-After, permanent failures, the retry
// horizon) belongs to the caller; the store keeps the queue durable and
// ordered.
type Delivery struct {
	// ID identifies the delivery. IDs increase in queue order.
	ID uint64
	// ActivityID is the id of the outbound activity to send.
	ActivityID string
	// Actor is the local actor that authored the activity (and signs the
	// request).
	Actor string
	// Recipient is the recipient actor IRI.
	Recipient string
	// OrderingKey is the ordering lane within Recipient; see DeliveryTarget.
	OrderingKey string
	// Attempts counts failed attempts so far.
	Attempts int
	// FirstQueued is when the delivery was queued (or requeued from the
	// dead letters).
	FirstQueued time.Time
	// NextAttempt is the earliest time the delivery is due.
	NextAttempt time.Time
	// LastError describes the last failure, or why it was dead-lettered.
	LastError string
	// Gone is set only in the OnDeadLetter function's call of
	// DeadLetterGone: the delivery is given up because the recipient's
	// actor is gone. It is not stored.
	Gone bool
}

func encodeDelivery(d *Delivery) []byte {
	e := newEncoder(tagDelivery, len(d.ActivityID)+len(d.Actor)+len(d.Recipient)+len(d.OrderingKey)+len(d.LastError)+32)
	e.string(d.ActivityID)
	e.string(d.Actor)
	e.string(d.Recipient)
	e.string(d.OrderingKey)
	e.uvarint(uint64(d.Attempts))
	e.time(d.FirstQueued)
	e.time(d.NextAttempt)
	e.string(d.LastError)
	return e.buf
}

func decodeDelivery(k, v []byte) (Delivery, error) {
	id, ok := keySeq(k)
	if !ok {
		return Delivery{}, fmt.Errorf("delivery key %x: %w", k, errCorrupt)
	}
	d := newDecoder(tagDelivery, v)
	out := Delivery{ID: id}
	out.ActivityID = d.string()
	out.Actor = d.string()
	out.Recipient = d.string()
	out.OrderingKey = d.string()
	out.Attempts = int(d.uvarint())
	out.FirstQueued = d.time()
	out.NextAttempt = d.time()
	out.LastError = d.string()
	if err := d.finish(); err != nil {
		return Delivery{}, fmt.Errorf("delivery %d: %w", id, err)
	}
	return out, nil
}

// DueDeliveries returns up to limit deliveries that a worker should attempt
// now and leases them: they are not returned again until they are
// completed, retried or dead-lettered, or until the lease expires
// (Options.LeaseTTL after now, or sooner after a write of the
// delivery's outcome failed: see shortenLease). A delivery is due when its NextAttempt is
// not after now, it is not leased, and no older delivery of its lane (same
// Recipient and OrderingKey) is still pending, so deliveries to one
// recipient for one ordering key go out one at a time and in queue order.
// Across lanes, deliveries come in the order they became due (NextAttempt,
// then queue order): a retry that falls due does not overtake what was due
// before it.
//
// Leases are kept in memory only: after a restart every pending delivery is
// due again, so a delivery interrupted by a crash is retried. A worker whose
// lease expired may find its delivery completed or handed to another worker;
// receivers see an activity at least once.
//
// The scan reads the due index (the head of every lane, by due time) from
// its start, so it visits what it hands out and the leased heads it skips,
// and reads only the records it hands out: deliveries that wait behind a
// lane's head or for a later retry cost nothing.
//
// A due delivery whose record does not open or decode is not handed out
// and does not fail the read: it is set aside (setAsideDamaged), logged
// and counted (DamagedDeliveryCount), and the next delivery of its lane
// becomes due.
func (db *DB) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	if le, ok := db.eng.(leaseEngine); ok {
		return db.claimDue(ctx, le, now, limit)
	}
	due, damaged, err := db.dueFromIndex(ctx, now, limit)
	if err != nil {
		return nil, err
	}
	for _, dd := range damaged {
		db.setAsideDamaged(ctx, dd)
	}
	return due, nil
}

// dueFromIndex is DueDeliveries on an engine whose leases the DB keeps in
// memory (bbolt). It returns the deliveries it leased, and apart from
// them those whose records are damaged, leased too, for the caller to set
// aside once the leases' lock is released.
func (db *DB) dueFromIndex(ctx context.Context, now time.Time, limit int) ([]Delivery, []damagedDelivery, error) {
	db.leaseMu.Lock()
	defer db.leaseMu.Unlock()

	var (
		due     []Delivery
		damaged []damagedDelivery
	)
	bound := dueBound(now)
	err := db.View(ctx, func(tx *ReadTx) error {
		due, damaged = due[:0], damaged[:0]
		q := tx.deliveryQueue()
		cur := q.due.Cursor()
		for k, _ := cur.First(); k != nil && len(due)+len(damaged) < limit; k, _ = cur.Next() {
			at, id, ok := splitDueKey(k)
			if !ok {
				return fmt.Errorf("due index key %x: %w", k, errCorrupt)
			}
			if at > bound {
				break
			}
			db.dueScan.keys++
			if exp, ok := db.leases[id]; ok {
				if now.Before(exp) {
					continue
				}
				delete(db.leases, id)
			}
			db.dueScan.records++
			d, err := q.get(id)
			if tx.sealErr != nil {
				err, tx.sealErr = tx.sealErr, nil
			}
			if isRecordDamage(err) {
				// Never acted on, and no reason to stop the others.
				damaged = append(damaged, damagedDelivery{dueKey: cloneBytes(k), id: id, err: err})
				continue
			}
			if err != nil {
				return fmt.Errorf("due index names delivery %d: %w", id, err)
			}
			if d.NextAttempt.After(now) {
				break // only when now is beyond what Unix nanoseconds hold
			}
			due = append(due, d)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: due deliveries: %w", err)
	}
	exp := now.Add(db.leaseTTL)
	for _, d := range due {
		db.leases[d.ID] = exp
	}
	for _, dd := range damaged {
		db.leases[dd.id] = exp
	}
	return due, damaged, nil
}

// claimDue is DueDeliveries on an engine that keeps the leases itself,
// shared by every process on the database.
func (db *DB) claimDue(ctx context.Context, le leaseEngine, now time.Time, limit int) ([]Delivery, error) {
	if db.isDown.Load() {
		return nil, ErrClosed
	}
	bound := make([]byte, dueKeyLen)
	binary.BigEndian.PutUint64(bound, dueBound(now))
	binary.BigEndian.PutUint64(bound[8:], math.MaxUint64)
	db.leaseMu.Lock()
	shorten := db.shortened
	db.shortened = nil
	db.leaseMu.Unlock()
	claimed, err := le.claimDue(ctx, bound, limit, now, now.Add(db.leaseTTL), shorten)
	if err != nil {
		// Written with a later claim, unless a newer end replaced it.
		db.leaseMu.Lock()
		for id, at := range shorten {
			if _, newer := db.shortened[id]; !newer {
				if db.shortened == nil {
					db.shortened = make(map[uint64]time.Time)
				}
				db.shortened[id] = at
			}
		}
		db.leaseMu.Unlock()
		return nil, fmt.Errorf("store: due deliveries: %w", err)
	}
	due := make([]Delivery, 0, len(claimed))
	var damaged []damagedDelivery
	defer func() {
		for _, dd := range damaged {
			db.setAsideDamaged(ctx, dd)
		}
	}()
	for _, c := range claimed {
		_, id, ok := splitDueKey(c.dueKey)
		if !ok {
			return nil, fmt.Errorf("store: due deliveries: due index key %x: %w", c.dueKey, errCorrupt)
		}
		if c.record == nil {
			return nil, fmt.Errorf("store: due deliveries: due index names delivery %d: %w", id, ErrNotFound)
		}
		d, err := openDelivery(&ReadTx{sl: db.sl}, seqKey(id), c.record)
		if isRecordDamage(err) {
			// Never acted on, and no reason to stop the others; it stays
			// leased until it is set aside.
			damaged = append(damaged, damagedDelivery{dueKey: c.dueKey, id: id, err: err})
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: due deliveries: %w", err)
		}
		due = append(due, d)
	}
	return due, nil
}

// dueScanStats counts what DueDeliveries read, so that tests can assert on
// the work a poll does rather than on its time.
type dueScanStats struct {
	keys    uint64 // due index entries visited
	records uint64 // queue records read and opened
}

// releaseLease forgets the lease on a delivery after its outcome committed.
func (db *DB) releaseLease(id uint64) {
	db.leaseMu.Lock()
	delete(db.leases, id)
	delete(db.unrecorded, id)
	delete(db.shortened, id)
	db.leaseMu.Unlock()
}

// unrecordedLeaseTTL is how long, at least, a delivery whose outcome
// could not be written stays leased (see shortenLease): after the first
// such outcome; each one more in a row doubles it.
const unrecordedLeaseTTL = 5 * time.Second

// shortenLease ends the lease on a delivery whose outcome could not be
// written because the store cannot serve now (err is ErrUnavailable: a
// full disk) at unrecordedLeaseTTL from now, doubled for each outcome of
// the delivery before it in a row that could not be written either, or at
// notBefore if later (the back-off of the retry that could not be
// recorded), if the lease would end later: the delivery is then due
// again, and its lane goes on, a few seconds after writes succeed again
// rather than when the whole lease ends, and it is neither sent again at
// once, nor every few seconds, while writes keep failing, nor sooner than
// its back-off. A delivery that was delivered is sent
// again (at least once: a receiver drops the duplicate by its id). Other
// failures (a damaged record, an I/O error) keep the whole lease, as does
// a dead letter that could not be recorded. A lease kept by the engine
// (PostgreSQL) is shortened in the database by the process's next claim
// (leaseEngine.claimDue), since a write now would fail as the outcome's
// did: until then no other process may take the delivery, and after it
// every process may, once the shorter lease ends.
func (db *DB) shortenLease(id uint64, notBefore time.Time, err error) {
	if !errors.Is(err, ErrUnavailable) {
		return
	}
	db.leaseMu.Lock()
	defer db.leaseMu.Unlock()
	_, inEngine := db.eng.(leaseEngine)
	exp, ok := db.leases[id]
	if !ok && !inEngine {
		return
	}
	n := db.unrecorded[id]
	if db.unrecorded == nil {
		db.unrecorded = make(map[uint64]int)
	}
	db.unrecorded[id] = n + 1
	soon := db.now().Add(unrecordedLeaseTTL << min(n, 20)) // no later than the lease ends, below
	if notBefore.After(soon) {
		soon = notBefore
	}
	if inEngine {
		// The engine keeps the lease's end, and keeps it when it is sooner.
		if db.shortened == nil {
			db.shortened = make(map[uint64]time.Time)
		}
		db.shortened[id] = soon
		return
	}
	if soon.Before(exp) {
		db.leases[id] = soon
	}
}

// updateDelivery runs fn on the pending delivery id and writes back the
// result, or deletes it if fn returns nil. The lease ends when the write
// succeeds; the caller says what becomes of it when it fails.
func (db *DB) updateDelivery(ctx context.Context, id uint64, fn func(tx *Tx, d *Delivery) (*Delivery, error)) error {
	if err := db.Update(ctx, deliveryUpdate(id, fn)); err != nil {
		return err
	}
	db.releaseLease(id)
	return nil
}

// deliveryUpdate returns the write function of updateDelivery.
func deliveryUpdate(id uint64, fn func(tx *Tx, d *Delivery) (*Delivery, error)) func(*Tx) error {
	return func(tx *Tx) error {
		q := tx.deliveryQueue()
		d, err := q.get(id)
		if err != nil {
			return err
		}
		old := d
		next, err := fn(tx, &d)
		if err != nil {
			return err
		}
		if next == nil {
			return q.remove(&old)
		}
		return q.replace(&old, next)
	}
}

// CompleteDelivery removes a delivery that succeeded from the queue, which
// lets the next delivery of its lane become due. It returns ErrNotFound if
// the delivery is not pending.
func (db *DB) CompleteDelivery(ctx context.Context, id uint64) error {
	err := db.updateDelivery(ctx, id, completeDelivery)
	if err != nil {
		db.shortenLease(id, time.Time{}, err)
		return fmt.Errorf("store: complete delivery %d: %w", id, err)
	}
	return nil
}

// CompleteDeliveryDeferred is CompleteDelivery without a commit of its own
// (see UpdateDeferred): the removal joins the next commit, and done (if not
// nil) is called with its outcome. The delivery stays leased, and its lane
// blocked, until then. If the node stops before that commit, the delivery is
// sent again after the restart, which a receiver that deduplicates by
// activity id answers as a no-op; in exchange a delivery's completion costs
// no fsync while the node is receiving.
//
// The completions that arrive before the committer takes them are one
// write request (completionBatch): their deliveries are read and removed
// together (completeDeliveries), which on PostgreSQL is a few round trips
// for the whole batch instead of three per delivery, each made while the
// writer lock is held.
func (db *DB) CompleteDeliveryDeferred(id uint64, done func(error)) error {
	db.compMu.Lock()
	b := db.compOpen
	first := b == nil
	if first {
		b = &completionBatch{}
		db.compOpen = b
	}
	b.ids = append(b.ids, id)
	b.dones = append(b.dones, done)
	if len(b.ids) == maxCompletionBatch {
		db.compOpen = nil // the next completion starts another request
	}
	db.compMu.Unlock()
	if !first {
		return nil // b's request is queued, or is being queued
	}
	if err := db.UpdateDeferred(func(tx *Tx) error { return db.completeBatch(tx, b) }, func(err error) { db.completedBatch(b, err) }); err != nil {
		// Nothing will run b: fail the completions that joined it.
		db.takeBatch(b)
		for _, id := range b.ids {
			db.shortenLease(id, time.Time{}, err)
		}
		for i, d := range b.dones[1:] {
			if d != nil {
				d(fmt.Errorf("store: complete delivery %d: %w", b.ids[i+1], err))
			}
		}
		return fmt.Errorf("store: complete delivery %d: %w", id, err)
	}
	return nil
}

// maxCompletionBatch bounds the deliveries one completion request removes.
const maxCompletionBatch = 512

// completionBatch is the deferred completions of one write request.
type completionBatch struct {
	ids   []uint64
	dones []func(error)
	// errs is the outcome of each completion in the last run of the
	// write function (which the committer may rerun).
	errs []error
}

// takeBatch closes b to further completions: from the moment its write
// function first runs, its ids no longer change.
func (db *DB) takeBatch(b *completionBatch) {
	db.compMu.Lock()
	if db.compOpen == b {
		db.compOpen = nil
	}
	db.compMu.Unlock()
}

// completeBatch is the write function of b. A delivery that is not pending
// fails its own completion, not the others'.
func (db *DB) completeBatch(tx *Tx, b *completionBatch) error {
	db.takeBatch(b)
	b.errs = make([]error, len(b.ids))
	return completeDeliveries(tx, b.ids, b.errs)
}

// completedBatch hands each completion of b its outcome once the commit
// (or its failure) is known. It closes b first: a write that failed
// before its function ran (which closes b otherwise) must not leave b
// open to completions that nothing would run.
func (db *DB) completedBatch(b *completionBatch, err error) {
	db.takeBatch(b)
	for i, id := range b.ids {
		e := err
		if e == nil && b.errs != nil {
			e = b.errs[i]
		}
		if e == nil {
			db.releaseLease(id)
		} else {
			db.shortenLease(id, time.Time{}, e)
			e = fmt.Errorf("store: complete delivery %d: %w", id, e)
		}
		if b.dones[i] != nil {
			b.dones[i](e)
		}
	}
}

// completeDeliveries removes the pending deliveries ids from the queue and
// audits each as delivered, as completeDelivery would one after another:
// an id that is not pending (or is named twice) gets ErrNotFound in errs
// and changes nothing. The records are read at once (prefetch) and
// removed at once (removeMany).
func completeDeliveries(tx *Tx, ids []uint64, errs []error) error {
	q := tx.deliveryQueue()
	keys := make([][]byte, len(ids))
	for i, id := range ids {
		keys[i] = seqKey(id)
	}
	prefetch(q.records.engineBucket, keys)
	ds := make([]Delivery, 0, len(ids))
	done := make(map[uint64]bool, len(ids))
	for i, id := range ids {
		if done[id] {
			errs[i] = fmt.Errorf("delivery %d: %w", id, ErrNotFound)
			continue
		}
		d, err := q.get(id)
		if tx.sealErr != nil {
			return tx.sealErr // a record did not open; never act on it
		}
		if err != nil {
			errs[i] = err
			continue
		}
		done[id] = true
		if err := auditDelivery(tx, &d, DecisionDelivered, ""); err != nil {
			return err
		}
		ds = append(ds, d)
	}
	if len(ds) == 0 {
		return nil
	}
	return q.removeMany(ds)
}

func completeDelivery(tx *Tx, d *Delivery) (*Delivery, error) {
	return nil, auditDelivery(tx, d, DecisionDelivered, "")
}

// RetryDelivery records a failed attempt: it increments Attempts, sets
// LastError and makes the delivery due again at next. The delivery keeps its
// place at the head of its lane. It returns ErrNotFound if the delivery is
// not pending.
func (db *DB) RetryDelivery(ctx context.Context, id uint64, next time.Time, lastErr string) error {
	err := db.updateDelivery(ctx, id, func(tx *Tx, d *Delivery) (*Delivery, error) {
		d.Attempts++
		d.NextAttempt = next
		d.LastError = lastErr
		return d, auditDelivery(tx, d, DecisionRetrying, fmt.Sprintf("attempt %d failed: %s; next at %s", d.Attempts, lastErr, next.UTC().Format(time.RFC3339)))
	})
	if err != nil {
		db.shortenLease(id, next, err)
		return fmt.Errorf("store: retry delivery %d: %w", id, err)
	}
	return nil
}

// DeadLetter moves a pending delivery to the dead letters with reason as its
// LastError, which unblocks its lane, and runs the function OnDeadLetter
// set in the same transaction. It returns ErrNotFound if the delivery is
// not pending.
func (db *DB) DeadLetter(ctx context.Context, id uint64, reason string) error {
	return db.deadLetter(ctx, id, reason, false)
}

// DeadLetterGone is DeadLetter for a delivery given up because its
// recipient's actor is gone (it, or its inbox, answered 410 Gone): the
// function OnDeadLetter set sees the delivery with Gone set, and the node
// removes the recipient from the actor's followers in the same
// transaction.
func (db *DB) DeadLetterGone(ctx context.Context, id uint64, reason string) error {
	return db.deadLetter(ctx, id, reason, true)
}

func (db *DB) deadLetter(ctx context.Context, id uint64, reason string, gone bool) error {
	var dead Delivery
	hook := db.onDead.Load()
	err := db.updateDelivery(ctx, id, func(tx *Tx, d *Delivery) (*Delivery, error) {
		d.LastError = reason
		dead = *d
		if err := tx.bucket(bucketDeadLetters).Put(seqKey(id), encodeDelivery(d)); err != nil {
			return nil, fmt.Errorf("put dead letter: %w", err)
		}
		if err := addCount(tx.bucket(bucketMeta).engineBucket, keyDeadCount, 1); err != nil {
			return nil, err
		}
		if err := auditDelivery(tx, d, DecisionDead, reason); err != nil {
			return nil, err
		}
		if hook != nil {
			hd := *d
			hd.Gone = gone
			if err := (*hook)(tx, hd, false); err != nil {
				return nil, fmt.Errorf("after dead-lettering: %w", err)
			}
		}
		return nil, nil
	})
	if err != nil {
		return fmt.Errorf("store: dead-letter delivery %d: %w", id, err)
	}
	db.log.Warn().
		Uint64("delivery_id", id).
		Str("activity_id", dead.ActivityID).
		Str("recipient", dead.Recipient).
		Str("ordering_key", dead.OrderingKey).
		Int("attempts", dead.Attempts).
		Time("first_queued", dead.FirstQueued).
		Str("reason", reason).
		Msg("delivery moved to dead letters")
	return nil
}

// OnDeadLetter sets fn to run in the transaction of every move of a
// delivery into the dead letters (DeadLetter: requeued is false, and d's
// LastError the reason) and out of them (RequeueDeadLetter: requeued is
// true, and d the delivery as queued again, with its new id), so that what
// fn writes commits with the move or not at all: the node fails a
// following whose Follow was refused for good, and makes it pending again
// when an operator retries it (package social). Like every write function
// fn may run more than once and must be idempotent; an error of fn fails
// the move, and the delivery stays where it was. Nil removes it. Set it
// before deliveries are attempted.
func (db *DB) OnDeadLetter(fn func(tx *Tx, d Delivery, requeued bool) error) {
	if fn == nil {
		db.onDead.Store(nil)
		return
	}
	db.onDead.Store(&fn)
}

// DeadLetters returns up to limit dead-lettered deliveries with an id above
// after, oldest first, and the id to pass as after for the next page (0
// when there is none). A limit ≤ 0 means 100; limits above 1000 are
// capped.
func (db *DB) DeadLetters(ctx context.Context, after uint64, limit int) ([]Delivery, uint64, error) {
	out, next, err := db.deliveryPage(ctx, bucketDeadLetters, after, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("store: dead letters: %w", err)
	}
	return out, next, nil
}

// PendingDeliveries returns up to limit pending deliveries with an id above
// after, leased or not, in queue order, and the id to pass as after for the
// next page (0 when there is none), with the limits of DeadLetters.
func (db *DB) PendingDeliveries(ctx context.Context, after uint64, limit int) ([]Delivery, uint64, error) {
	out, next, err := db.deliveryPage(ctx, bucketDeliveries, after, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("store: pending deliveries: %w", err)
	}
	return out, next, nil
}

// deliveryPageLimit returns the size of a page of delivery records (of
// the queue, the dead letters or those set aside as damaged) for the
// limit asked, and whether a page after id after can hold any: 100 when
// none is asked, at most maxPageSize.
func deliveryPageLimit(after uint64, limit int) (int, bool) {
	if limit <= 0 {
		limit = 100
	}
	// No id comes after the largest.
	return min(limit, maxPageSize), after != math.MaxUint64
}

func (db *DB) deliveryPage(ctx context.Context, bucket []byte, after uint64, limit int) ([]Delivery, uint64, error) {
	limit, ok := deliveryPageLimit(after, limit)
	if !ok {
		return nil, 0, nil
	}
	var (
		out  []Delivery
		next uint64
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		out, next = out[:0], 0
		b := tx.bucket(bucket)
		cur := b.Cursor()
		expectKeys(cur, limit+1)
		for k, v := cur.Seek(seqKey(after + 1)); k != nil; k, v = cur.Next() {
			if len(out) == limit {
				next = out[len(out)-1].ID
				break
			}
			d, err := decodeDelivery(k, b.open(k, v))
			if tx.sealErr != nil {
				return tx.sealErr
			}
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, next, err
}

// RequeueDeadLetter moves a dead-lettered delivery back into the queue, at the
// end of its lane and due now, with Attempts reset to 0 and FirstQueued set to
// now so that the retry horizon starts over; LastError is kept. It returns the
// delivery's new id, a PendingError (ErrPending) if id is a delivery still
// pending, or ErrNotFound if it is neither. by names
// who asked (a principal's label), for the audit record. The function
// OnDeadLetter set runs in the same transaction.
func (db *DB) RequeueDeadLetter(ctx context.Context, id uint64, by string) (uint64, error) {
	return db.RequeueDeadLetterIf(ctx, id, by, nil)
}

// RequeueDeadLetterIf is RequeueDeadLetter for a caller that may requeue
// only some actors' dead letters: allow, when set, is given the dead
// letter's local actor in the transaction that requeues it, and an error
// it returns leaves the dead letter as it is and is returned. id naming a
// delivery still pending returns a PendingError (ErrPending), or allow's
// error for another actor's.
func (db *DB) RequeueDeadLetterIf(ctx context.Context, id uint64, by string, allow func(actor string) error) (uint64, error) {
	now := db.now()
	var newID uint64
	hook := db.onDead.Load()
	err := db.Update(ctx, func(tx *Tx) error {
		dead := tx.bucket(bucketDeadLetters)
		k := seqKey(id)
		v := dead.Get(k)
		if v == nil {
			if p := tx.bucket(bucketDeliveries).Get(k); p != nil {
				if d, err := decodeDelivery(k, p); err == nil {
					// Said pending only to a caller allowed its actor:
					// another learns nothing of its schedule.
					if allow != nil {
						if err := allow(d.Actor); err != nil {
							return err
						}
					}
					return &PendingError{ID: id, NextAttempt: d.Attempts + 1, At: d.NextAttempt}
				}
			}
			return fmt.Errorf("dead letter %d: %w", id, ErrNotFound)
		}
		d, err := decodeDelivery(k, v)
		if err != nil {
			return err
		}
		if allow != nil {
			if err := allow(d.Actor); err != nil {
				return err
			}
		}
		d.Attempts = 0
		d.FirstQueued = now
		d.NextAttempt = now
		if newID, err = tx.deliveryQueue().add(&d); err != nil {
			return err
		}
		if err := addCount(tx.bucket(bucketMeta).engineBucket, keyDeadCount, -1); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Actor: d.Actor, Signer: d.Recipient,
			ActivityID: d.ActivityID, Decision: DecisionRequeued, Principal: by,
			Reason: fmt.Sprintf("dead letter %d requeued as delivery %d", id, newID)}); err != nil {
			return err
		}
		if hook != nil {
			d.ID = newID
			if err := (*hook)(tx, d, true); err != nil {
				return fmt.Errorf("after requeueing: %w", err)
			}
		}
		return dead.Delete(k)
	})
	if err != nil {
		return 0, fmt.Errorf("store: requeue dead letter %d: %w", id, err)
	}
	db.log.Info().Uint64("dead_letter_id", id).Uint64("delivery_id", newID).Msg("dead letter requeued")
	return newID, nil
}

// PendingCount returns the number of deliveries in the queue, leased or
// not. The store keeps the count as it queues and removes deliveries, so
// reading it costs the same whatever the size of the queue.
func (db *DB) PendingCount(ctx context.Context) (int, error) {
	n, err := db.count(ctx, keyPendingCount)
	if err != nil {
		return 0, fmt.Errorf("store: pending count: %w", err)
	}
	return n, nil
}

// DeadLetterCount returns the number of dead letters, kept like
// PendingCount.
func (db *DB) DeadLetterCount(ctx context.Context) (int, error) {
	n, err := db.count(ctx, keyDeadCount)
	if err != nil {
		return 0, fmt.Errorf("store: dead letter count: %w", err)
	}
	return n, nil
}

func (db *DB) count(ctx context.Context, key []byte) (int, error) {
	var n uint64
	err := db.View(ctx, func(tx *ReadTx) error {
		var err error
		n, err = readCount(tx.bucket(bucketMeta).engineBucket, key)
		return err
	})
	return int(n), err
}

// auditDelivery records a delivery's outcome in the transaction that
// writes it. The recipient goes in Signer and its host in Remote.
func auditDelivery(tx *Tx, d *Delivery, decision, reason string) error {
	host := ""
	if u, err := url.Parse(d.Recipient); err == nil {
		host = u.Host
	}
	_, err := tx.AppendAudit(AuditRecord{Kind: AuditOutbound, Actor: d.Actor, Signer: d.Recipient,
		ActivityID: d.ActivityID, Decision: decision, Reason: reason, Remote: host})
	return err
}
