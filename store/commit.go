package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/openvultron/vultron/internal/durationtext"
)

// The group committer merges concurrent write requests into one bbolt
// read-write transaction, so many writers share one fsync. It has no timer:
// the committer goroutine takes the first queued request, adds every request
// already waiting (up to MaxBatch) and commits at once. Requests that arrive
// while a commit is running wait in the queue and form the next batch, so the
// batch size grows with the load and a lone writer pays no delay. Requests
// that arrive while the transaction waits to start (on PostgreSQL, for the
// writer lock another process holds) join the batch when it starts.
//
// If one request's function fails, the whole transaction is rolled back, that
// request gets its error, and the batch is rerun without it. This is why write
// functions must be idempotent (see the package documentation).
//
// Deferred requests (UpdateDeferred) never start a commit of their own while
// another write can carry them: they wait, at most Options.DeferDelay, and
// join the next batch the committer takes for an ordinary request. Their
// callers do not wait for durability, so a write that a crash may lose
// without harm (it is repeated after a restart) costs no fsync of its own.

// Request states. A request moves from queued to either started (the
// committer took it; it will complete) or cancelled (its caller gave up while
// it was still queued; the committer drops it).
const (
	reqQueued int32 = iota
	reqStarted
	reqCancelled
)

// request is one caller's write function waiting for the committer.
type request struct {
	fn func(*Tx) error
	// reads are keys fn will read, which the committer reads for the
	// whole batch in one request before running it (batchTx), where that
	// saves round trips.
	reads []ReadRef
	state atomic.Int32
	done  chan error // buffered; receives exactly one result
	// deferred requests wait for another request's commit (see
	// UpdateDeferred); after, if set, is called with the outcome.
	deferred bool
	after    func(error)
}

// finish hands a request its outcome.
func (r *request) finish(err error) {
	r.done <- err
	if r.after != nil {
		r.after(err)
	}
}

// errBatchMember carries the index of the request whose function failed.
type errBatchMember struct {
	index int
	err   error
}

// Error returns the failed function's error text.
func (e *errBatchMember) Error() string { return e.err.Error() }

// Update runs fn in a read-write transaction, merged by the group committer
// with other concurrent writes, and returns after the transaction is durable.
// If fn returns an error, none of its writes are stored and Update returns
// that error; the other writes of the same batch still commit.
//
// fn may be called more than once and must be idempotent: it must derive
// everything it writes from the Tx and its inputs, reset any results it
// reports to the caller at its start, and have no effects outside the Tx.
//
// fn runs on the committer goroutine: it must not call methods of the DB
// (that would deadlock) and should only read and write through the Tx.
//
// While the request is waiting for the committer, cancelling ctx abandons it
// and Update returns ctx.Err(); once its transaction has started, Update waits
// for the outcome regardless of ctx.
func (db *DB) Update(ctx context.Context, fn func(*Tx) error) error {
	return db.update(ctx, nil, fn)
}

// update is Update with the keys of top-level buckets that fn will read,
// for the committer to read ahead for its whole batch.
func (db *DB) update(ctx context.Context, reads []ReadRef, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &request{fn: fn, reads: reads, done: make(chan error, 1)}

	db.closeMu.RLock()
	if db.closed {
		db.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case db.reqs <- r:
	case <-ctx.Done():
		db.closeMu.RUnlock()
		return ctx.Err()
	}
	db.closeMu.RUnlock()

	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		if r.state.CompareAndSwap(reqQueued, reqCancelled) {
			return ctx.Err()
		}
		return <-r.done
	}
}

// UpdateDeferred queues fn to run in a read-write transaction like Update,
// but returns at once and asks for no commit of its own: fn runs in the next
// batch the committer takes for another writer, or in a commit of its own
// after at most Options.DeferDelay when no other write comes. It is for
// writes that may be lost in a crash without harm because what they record
// is repeated after a restart (a delivery's completion: the delivery is
// sent again and its receiver drops the duplicate).
//
// after, if not nil, is called once with the outcome: nil when the
// transaction is durable, fn's error (its writes dropped) or the commit's.
// It runs on the committer goroutine and must neither block nor call
// methods of the DB. fn follows the rules of Update's fn.
func (db *DB) UpdateDeferred(fn func(*Tx) error, after func(error)) error {
	r := &request{fn: fn, done: make(chan error, 1), deferred: true, after: after}
	r.state.Store(reqStarted) // a deferred request cannot be cancelled
	db.closeMu.RLock()
	defer db.closeMu.RUnlock()
	if db.closed {
		return ErrClosed
	}
	db.reqs <- r
	return nil
}

// commitLoop is the committer goroutine. It exits when reqs is closed and
// drained, after committing any deferred request still waiting.
func (db *DB) commitLoop() {
	defer close(db.done)
	batch := make([]*request, 0, db.maxBatch)
	var waiting []*request // deferred requests not yet in a batch
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var deadline <-chan time.Time // fires when the oldest waiting request is due
	for {
		batch = batch[:0]
		select {
		case first, ok := <-db.reqs:
			if !ok {
				if len(waiting) > 0 {
					db.commit(waiting)
				}
				return
			}
			if first.deferred {
				waiting = append(waiting, first)
				if len(waiting) < db.maxBatch {
					if deadline == nil {
						timer.Reset(db.deferDelay)
						deadline = timer.C
					}
					continue
				}
			} else if first.state.CompareAndSwap(reqQueued, reqStarted) {
				batch = append(batch, first)
			}
		case <-deadline:
		}
		// A commit happens now: the waiting deferred requests ride on it.
		batch = append(batch, waiting...)
		waiting = waiting[:0]
		timer.Stop()
		deadline = nil
		batch = db.fill(batch)
		if len(batch) > 0 {
			db.commit(batch)
		}
	}
}

// fill adds to batch, up to MaxBatch, every request already queued, and
// returns it.
func (db *DB) fill(batch []*request) []*request {
	for len(batch) < db.maxBatch {
		select {
		case r, ok := <-db.reqs:
			if !ok {
				return batch
			}
			if r.deferred || r.state.CompareAndSwap(reqQueued, reqStarted) {
				batch = append(batch, r)
			}
		default:
			return batch
		}
	}
	return batch
}

// defaultCommitTimeout bounds one of the committer's transactions on
// PostgreSQL (bbolt's do not wait on anything but the disk, and ignore
// it): a database that stops answering (a partition) fails the batch, and
// the committer goes on, instead of waiting for the system's TCP timeout.
const defaultCommitTimeout = time.Minute

// commit runs the batch in one transaction, removing failed requests and
// retrying until the remaining ones commit or the commit itself fails.
func (db *DB) commit(batch []*request) {
	for len(batch) > 0 {
		ctx, cancel := context.WithTimeout(db.commitCtx, db.commitTimeout)
		err := db.eng.update(ctx, func(t kvTx) error {
			// The transaction may have waited to start: on a shared
			// store for the writer lock another process held, as long
			// as that process's batch took. What was queued meanwhile
			// joins this batch rather than waiting for the next, or
			// two processes handing the lock to each other would each
			// commit half batches.
			batch = db.fill(batch)
			tx := &Tx{ReadTx: ReadTx{tx: t, sl: db.sl}, now: db.now}
			readAhead(t, batch)
			for i, r := range batch {
				err := safeCall(r.fn, tx)
				if e := t.err(); e != nil {
					// The engine failed (a lost connection): the
					// transaction is gone, for every member.
					return e
				}
				if tx.sealErr != nil {
					err = tx.sealErr // a value did not open; never act on it
				}
				if err != nil {
					return &errBatchMember{index: i, err: err}
				}
			}
			return nil
		})
		var member *errBatchMember
		if errors.As(err, &member) {
			cancel()
			batch[member.index].finish(member.err)
			batch = append(batch[:member.index], batch[member.index+1:]...)
			continue
		}
		if err == nil {
			db.commits.Add(1)
			db.failing.succeeded(db)
			db.notifyChanged()
		} else {
			err = unavailable(ctx, err)
			// A COMMIT that went unanswered until the bound may have
			// taken effect: it stays ErrCommitUnknown, not a store that
			// did not answer, whose refusal says that nothing was stored.
			switch {
			case errors.Is(err, ErrUnavailable), errors.Is(err, ErrCommitUnknown), ctx.Err() == nil:
			case db.commitCtx.Err() == nil:
				err = &UnavailableError{Reason: "the store did not answer within " + durationtext.Typed(db.commitTimeout), Err: err}
			default:
				// Close canceled the transaction, which had not sent its
				// COMMIT: nothing of it was stored, and the process stops.
				err = fmt.Errorf("%w: the write was canceled as it closed (%v)", ErrClosed, err)
			}
			db.commitFailures.Add(1)
			db.failing.failed(db, err, len(batch))
			err = fmt.Errorf("store: commit: %w", err)
		}
		cancel()
		for _, r := range batch {
			r.finish(err)
		}
		return
	}
}

// failingCommits is the committer's record of commits failing, so that
// an episode (a full disk, a database out of reach) is logged when it
// begins, once a minute while it lasts and when it ends, rather than once
// per commit: a node under load makes hundreds a second. On a store that
// is nearly full, small commits may succeed between large ones that fail;
// a failure is then logged at most once a minute, and the end of an
// episode only when its beginning was, so that the log does not follow
// every turn. Only failures that pass (ErrUnavailable) are held back so:
// any other is logged each time. Only the committer's goroutine uses it;
// DB.WritesFailing reads the flag.
type failingCommits struct {
	since   time.Time // the episode's first failure; zero while commits succeed
	count   int       // commits failed in the episode
	logged  time.Time // when a failure was last logged
	told    bool      // a failure of this episode was logged
	lastErr error
}

// failingLogEvery is how often failing commits are logged at most.
const failingLogEvery = time.Minute

func (f *failingCommits) failed(db *DB, err error, batch int) {
	now := time.Now()
	if f.since.IsZero() {
		f.since = now
		db.writesFailing.Store(true)
	}
	f.count++
	f.lastErr = err
	if errors.Is(err, ErrUnavailable) && !f.logged.IsZero() && now.Sub(f.logged) < failingLogEvery {
		// Only a cause that passes is logged once a minute: any other
		// (an I/O error, a damaged page) is logged every time.
		return
	}
	ev := db.log.Error().Err(err).Int("batch", batch).Str("store", db.eng.describe())
	switch {
	case f.told:
		ev.Int("failed_commits", f.count).Time("since", f.since).Msg("store: commits still failing")
	case errors.Is(err, ErrUnavailable):
		ev.Msg("store: commit failed; writes fail until the store takes them again (logged at most once a minute until then)")
	default:
		ev.Msg("store: commit failed")
	}
	f.logged, f.told = now, true
}

func (f *failingCommits) succeeded(db *DB) {
	if f.since.IsZero() {
		return
	}
	if f.told {
		db.log.Warn().Int("failed_commits", f.count).Time("since", f.since).Dur("for", time.Since(f.since)).AnErr("last_error", f.lastErr).
			Str("store", db.eng.describe()).Msg("store: commits succeed again")
	}
	f.since, f.count, f.told, f.lastErr = time.Time{}, 0, false, nil
	db.writesFailing.Store(false)
}

// WritesFailing reports whether the store's last commit failed: true from
// a failed commit to the next that succeeds (vultron_store_writes_failing).
func (db *DB) WritesFailing() bool { return db.writesFailing.Load() }

// readAhead reads, where the engine saves round trips by it (batchTx), the
// keys the batch's requests said they will read, in one request.
func readAhead(t kvTx, batch []*request) {
	bt, ok := t.(batchTx)
	if !ok || len(batch) < 2 {
		return // a lone request reads its keys as it goes, as fast
	}
	var refs []ReadRef
	for _, r := range batch {
		refs = append(refs, r.reads...)
	}
	if len(refs) > 0 {
		bt.prefetchKeys(refs)
	}
}

// Changed returns a channel that is closed after the next write the
// committer makes durable. Watchers (a dashboard's live view) wait on it and
// call Changed again after each wake; it says only that something changed.
func (db *DB) Changed() <-chan struct{} {
	db.changedMu.Lock()
	defer db.changedMu.Unlock()
	if db.changed == nil {
		db.changed = make(chan struct{})
	}
	return db.changed
}

func (db *DB) notifyChanged() {
	db.changedMu.Lock()
	defer db.changedMu.Unlock()
	if db.changed != nil {
		close(db.changed)
		db.changed = nil
	}
}

// QueuedWrites returns how many write requests wait for the committer
// now, not counting the batch being committed: the depth of the store's
// write queue.
func (db *DB) QueuedWrites() int { return len(db.reqs) }

// Commits returns the number of transactions the committer has made
// durable since Open, for the node's metrics.
func (db *DB) Commits() uint64 { return db.commits.Load() }

// CommitFailures returns the number of transactions whose commit failed
// since Open (a full disk, a lost database), each failing every write it
// carried, for the node's metrics: reads may go on answering meanwhile.
func (db *DB) CommitFailures() uint64 { return db.commitFailures.Load() }

// safeCall runs fn and turns a panic into an error, so that one faulty write
// function cannot take the committer (and every other writer) down with it.
func safeCall(fn func(*Tx) error, tx *Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("store: write function panicked: %v", p)
		}
	}()
	return fn(tx)
}
