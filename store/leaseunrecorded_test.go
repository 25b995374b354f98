package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// commitFailingEngine runs the function of every update and then fails
// the update while fail is set, as bbolt's commit fails when the disk
// fills up under it: the transaction is rolled back.
type commitFailingEngine struct {
	engine
	fail *atomic.Bool
}

func (e commitFailingEngine) update(ctx context.Context, fn func(kvTx) error) error {
	return e.engine.update(ctx, func(tx kvTx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if e.fail.Load() {
			return errors.New("write vultron.db: no space left on device")
		}
		return nil
	})
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
// store failed to write (a full disk) is not due again at once, which
// would send it in a loop while writes fail, but within
// unrecordedLeaseTTL, not after the whole lease: once writes succeed
// again its lane goes on within seconds. A delivery that was delivered
// is then sent again, which a receiver drops as a duplicate.
func TestUnrecordedOutcomeEndsTheLeaseSoon(t *testing.T) {
	tests := []struct {
		name   string
		record func(t *testing.T, db *DB, d Delivery, now time.Time) error
	}{
		{"deferred completion", func(t *testing.T, db *DB, d Delivery, _ time.Time) error {
			return completeDeferredOutcome(t, db, d)
		}},
		{"completion", func(_ *testing.T, db *DB, d Delivery, _ time.Time) error {
			return db.CompleteDelivery(context.Background(), d.ID)
		}},
		{"retry", func(_ *testing.T, db *DB, d Delivery, now time.Time) error {
			return db.RetryDelivery(context.Background(), d.ID, now, "503 Service Unavailable")
		}},
		{"dead letter", func(_ *testing.T, db *DB, d Delivery, _ time.Time) error {
			return db.DeadLetter(context.Background(), d.ID, "410 Gone")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			const lease = 2 * time.Minute
			db := openTestDB(t, Options{Now: clock.Now, LeaseTTL: lease})
			var fail atomic.Bool
			db.eng = commitFailingEngine{engine: db.eng, fail: &fail}
			mustPutActor(t, db, "coord")
			enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})

			_, due := dueIDs(t, db, clock.Now())
			if len(due) != 1 {
				t.Fatalf("due = %v, want o1", due)
			}
			fail.Store(true)
			if err := tt.record(t, db, due[0], clock.Now()); err == nil {
				t.Fatal("the outcome was recorded on a failing disk")
			}
			if got, _ := dueIDs(t, db, clock.Now()); len(got) != 0 {
				t.Fatalf("due at once after the outcome was not recorded = %v, want none until a back-off", got)
			}
			fail.Store(false)
			clock.Advance(unrecordedLeaseTTL)
			got, again := dueIDs(t, db, clock.Now())
			if len(got) != 1 || again[0].ID != due[0].ID {
				t.Fatalf("due %s after the outcome was not recorded = %v, want o1 again (the lease is %s)", unrecordedLeaseTTL, got, lease)
			}
			if err := tt.record(t, db, again[0], clock.Now()); err != nil {
				t.Fatalf("the outcome once writes succeed: %v", err)
			}
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
