package store

import (
	"context"
	"io/fs"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// commitFailingEngine runs the function of every update and then fails
// the update while fail is set, as bbolt's commit fails when the disk
// fills up under it: the transaction is rolled back.
type commitFailingEngine struct {
	engine
	fail *atomic.Bool
	// errno is the failure (default ENOSPC).
	errno syscall.Errno
}

func (e commitFailingEngine) update(ctx context.Context, fn func(kvTx) error) error {
	return e.engine.update(ctx, func(tx kvTx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if e.fail.Load() {
			errno := e.errno
			if errno == 0 {
				errno = syscall.ENOSPC
			}
			return &fs.PathError{Op: "write", Path: "vultron.db", Err: errno}
		}
		return nil
	})
}

// pgCommitFailingEngine is commitFailingEngine over PostgreSQL: it keeps
// the engine's other methods, the leases it keeps (leaseEngine) among
// them.
type pgCommitFailingEngine struct {
	*pgEngine
	fail  *atomic.Bool
	errno syscall.Errno
}

func (e pgCommitFailingEngine) update(ctx context.Context, fn func(kvTx) error) error {
	return commitFailingEngine{engine: e.pgEngine, fail: e.fail, errno: e.errno}.update(ctx, fn)
}

// failCommits makes db's commits fail with errno (default ENOSPC) while
// fail is set, on either engine.
func failCommits(db *DB, fail *atomic.Bool, errno syscall.Errno) {
	if pg, ok := db.eng.(*pgEngine); ok {
		db.eng = pgCommitFailingEngine{pgEngine: pg, fail: fail, errno: errno}
		return
	}
	db.eng = commitFailingEngine{engine: db.eng, fail: fail, errno: errno}
}

// completeDeferredOutcome completes d with CompleteDeliveryDeferred and returns
// the outcome its callback is given.
func completeDeferredOutcome(t *testing.T, db *DB, d Delivery) error {
	t.Helper()
	done := make(chan error, 1)
	if err := db.CompleteDeliveryDeferred(d.ID, func(err error) { done <- err }); err != nil {
		return err
	}
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("the deferred completion of delivery %d was never given its outcome", d.ID)
		return nil
	}
}

// TestUnrecordedOutcomeEndsTheLeaseSoon: a delivery whose outcome the
// store failed to write because it cannot serve now (a full disk) is not
// due again at once, which would send it in a loop while writes fail, but
// within unrecordedLeaseTTL, not after the whole lease: once writes
// succeed again its lane goes on within seconds. A delivery that was
// delivered is then sent again, which a receiver drops as a duplicate. A
// retry that could not be recorded keeps its back-off; a dead letter that
// could not be recorded, and a failure that does not pass (an I/O error),
// keep the whole lease. On PostgreSQL, where the lease is in the
// database, the same holds: the shorter lease is written with the
// process's next claim, once the database takes writes again.
func TestUnrecordedOutcomeEndsTheLeaseSoon(t *testing.T) {
	const lease = 2 * time.Minute
	tests := []struct {
		name   string
		errno  syscall.Errno
		record func(t *testing.T, db *DB, d Delivery, now time.Time) error
		after  time.Duration // due again this long after the failed record
	}{
		{"deferred completion", 0, func(t *testing.T, db *DB, d Delivery, _ time.Time) error {
			return completeDeferredOutcome(t, db, d)
		}, unrecordedLeaseTTL},
		{"completion", 0, func(_ *testing.T, db *DB, d Delivery, _ time.Time) error {
			return db.CompleteDelivery(context.Background(), d.ID)
		}, unrecordedLeaseTTL},
		{"retry", 0, func(_ *testing.T, db *DB, d Delivery, now time.Time) error {
			return db.RetryDelivery(context.Background(), d.ID, now, "503 Service Unavailable")
		}, unrecordedLeaseTTL},
		{"retry backed off", 0, func(_ *testing.T, db *DB, d Delivery, now time.Time) error {
			return db.RetryDelivery(context.Background(), d.ID, now.Add(time.Minute), "503 Service Unavailable")
		}, time.Minute},
		{"retry backed off past the lease", 0, func(_ *testing.T, db *DB, d Delivery, now time.Time) error {
			return db.RetryDelivery(context.Background(), d.ID, now.Add(time.Hour), "503 Service Unavailable")
		}, lease},
		{"dead letter", 0, func(_ *testing.T, db *DB, d Delivery, _ time.Time) error {
			return db.DeadLetter(context.Background(), d.ID, "410 Gone")
		}, lease},
		{"completion on a failing disk", syscall.EIO, func(_ *testing.T, db *DB, d Delivery, _ time.Time) error {
			return db.CompleteDelivery(context.Background(), d.ID)
		}, lease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				clock := newTestClock()
				db := be.open(t, Options{Now: clock.Now, LeaseTTL: lease})
				var fail atomic.Bool
				failCommits(db, &fail, tt.errno)
				mustPutActor(t, db, "coord")
				enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})

				_, due := dueIDs(t, db, clock.Now())
				if len(due) != 1 {
					t.Fatalf("due = %v, want o1", due)
				}
				fail.Store(true)
				start := clock.Now()
				if err := tt.record(t, db, due[0], start); err == nil {
					t.Fatal("the outcome was recorded on a failing disk")
				}
				fail.Store(false)
				if got, _ := dueIDs(t, db, start.Add(tt.after-time.Second)); len(got) != 0 {
					t.Fatalf("due %s after the outcome was not recorded = %v, want none before %s", tt.after-time.Second, got, tt.after)
				}
				clock.Advance(tt.after)
				got, again := dueIDs(t, db, clock.Now())
				if len(got) != 1 || again[0].ID != due[0].ID {
					t.Fatalf("due %s after the outcome was not recorded = %v, want o1 again (the lease is %s)", tt.after, got, lease)
				}
				if err := tt.record(t, db, again[0], clock.Now()); err != nil {
					t.Fatalf("the outcome once writes succeed: %v", err)
				}
			})
		})
	}
}

// TestDeferredCompletionAfterAWriteThatNeverRan: when the write of a batch
// of deferred completions fails before its function runs (PostgreSQL: the
// writer lock or the transaction could not be had), later completions do
// not join that finished batch, where nothing would ever run them, but
// make a batch of their own.
func TestDeferredCompletionAfterAWriteThatNeverRan(t *testing.T) {
	clock := newTestClock()
	db := openTestDB(t, Options{Now: clock.Now})
	var fail atomic.Bool
	db.eng = failingEngine{engine: db.eng, fail: &fail}
	mustPutActor(t, db, "coord")
	enqueue(t, db, "o1", DeliveryTarget{inboxA, ""})
	enqueue(t, db, "o2", DeliveryTarget{inboxB, ""})
	_, due := dueIDs(t, db, clock.Now())
	if len(due) != 2 {
		t.Fatalf("due = %v, want o1 and o2", due)
	}
	fail.Store(true)
	if err := completeDeferredOutcome(t, db, due[0]); err == nil {
		t.Fatal("a completion was stored on a failing disk")
	}
	fail.Store(false)
	if err := completeDeferredOutcome(t, db, due[1]); err != nil {
		t.Fatalf("the completion once writes succeed: %v", err)
	}
	if got := allDeliveries(t, db, false); len(got) != 1 || got[0].ID != due[0].ID {
		t.Errorf("pending after the second completion = %v, want only the first delivery", got)
	}
}

// TestUnrecordedOutcomesBackOff: a delivery whose outcome cannot be
// written again and again (a disk that stays full for hours) is due again
// later each time, up to the whole lease, not every unrecordedLeaseTTL:
// a delivered activity was otherwise sent again every few seconds for as
// long as the disk stayed full, each time with a line in the log. Once an
// outcome of the delivery is written, its next failure is due again soon.
func TestUnrecordedOutcomesBackOff(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		const lease = 2 * time.Minute
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: lease})
		var fail atomic.Bool
		failCommits(db, &fail, 0)
		mustPutActor(t, db, "coord")
		enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
		enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})

		// failOnce takes the due delivery, fails to write its completion and
		// returns how long it then stays leased.
		failOnce := func(want time.Duration) {
			t.Helper()
			_, due := dueIDs(t, db, clock.Now())
			if len(due) != 1 {
				t.Fatalf("due = %v, want one delivery", due)
			}
			fail.Store(true)
			if err := db.CompleteDelivery(context.Background(), due[0].ID); err == nil {
				t.Fatal("the completion was written on a full disk")
			}
			fail.Store(false)
			if got, _ := dueIDs(t, db, clock.Now().Add(want-time.Second)); len(got) != 0 {
				t.Fatalf("due again within %s of a failed completion: %v", want-time.Second, got)
			}
			clock.Advance(want)
		}
		for _, want := range []time.Duration{unrecordedLeaseTTL, 2 * unrecordedLeaseTTL, 4 * unrecordedLeaseTTL, 8 * unrecordedLeaseTTL, 16 * unrecordedLeaseTTL, lease, lease} {
			failOnce(want)
		}
		// An outcome of o1 that is written (a retry, due at once) ends the
		// run: o1's next failure is due again soon.
		_, due := dueIDs(t, db, clock.Now())
		if len(due) != 1 {
			t.Fatalf("due = %v, want o1 once the lease ended", due)
		}
		if err := db.RetryDelivery(context.Background(), due[0].ID, clock.Now(), "503"); err != nil {
			t.Fatal(err)
		}
		failOnce(unrecordedLeaseTTL)
		_, due = dueIDs(t, db, clock.Now())
		if len(due) != 1 {
			t.Fatalf("due = %v %s after the first failure since o1's retry was written, want o1 again", due, unrecordedLeaseTTL)
		}
		if err := db.CompleteDelivery(context.Background(), due[0].ID); err != nil {
			t.Fatal(err)
		}
		// The next delivery of the lane starts afresh.
		failOnce(unrecordedLeaseTTL)
	})
}
