package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

const deadInbox = "https://dead.example/actors/gone"

// takeDueWork returns what DueDeliveries has visited and read since the
// last call, and resets the counters.
func takeDueWork(db *DB) (keys, records uint64) {
	db.leaseMu.Lock()
	defer db.leaseMu.Unlock()
	keys, records = db.dueScan.keys, db.dueScan.records
	db.dueScan = dueScanStats{}
	return keys, records
}

// queueBehindDeadPeer queues n deliveries to a peer that always fails, as
// a node holds them after one failed attempt each: half of them in lanes of
// laneLen deliveries (one per case) whose heads wait for a retry at retryAt,
// the other half unordered and each waiting for a retry at retryAt. It
// returns the ids of the deliveries that wait for retryAt.
func queueBehindDeadPeer(t testing.TB, db *DB, n, laneLen int, retryAt time.Time) []uint64 {
	t.Helper()
	ctx := context.Background()
	const perTx = 500
	for start := 0; start < n; start += perTx {
		err := db.Update(ctx, func(tx *Tx) error {
			for i := start; i < min(start+perTx, n); i++ {
				key := ""
				if i%2 == 0 {
					key = fmt.Sprintf("https://node.example/cases/%d", (i/2)/laneLen)
				}
				id := fmt.Sprintf("https://node.example/activities/dead-%d", i)
				if err := tx.EnqueueOutbound(Outbound{ID: id, Actor: "coord", Body: activityBody(id, "to a dead peer"),
					Deliveries: []DeliveryTarget{{Recipient: deadInbox, OrderingKey: key}}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("queue deliveries to the dead peer: %v", err)
		}
	}
	// Hand out every head once and fail it, as the deliverer would.
	var waiting []uint64
	for {
		due, err := db.DueDeliveries(ctx, retryAt.Add(-time.Hour), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) == 0 {
			break
		}
		for _, d := range due {
			if err := db.RetryDelivery(ctx, d.ID, retryAt, "503 Service Unavailable"); err != nil {
				t.Fatal(err)
			}
			waiting = append(waiting, d.ID)
		}
	}
	return waiting
}

// TestDueDeliveriesWorkIsBoundedByLimit checks that a poll reads what it
// hands out and skips only what is leased, however many deliveries wait
// behind a dead peer: the work of a poll must not grow with the queue.
func TestDueDeliveriesWorkIsBoundedByLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: time.Hour, DataKey: testKey(7)})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		now := clock.Now()
		waiting := queueBehindDeadPeer(t, db, 1000, 100, now.Add(time.Hour))
		if len(waiting) != 500+5 {
			t.Fatalf("%d deliveries wait for a retry, want 505 (500 unordered, 5 lane heads)", len(waiting))
		}
		// Healthy peers: ten unordered deliveries and a lane of five.
		for i := range 10 {
			enqueue(t, db, fmt.Sprintf("ok-%d", i), DeliveryTarget{Recipient: fmt.Sprintf("https://p%d.example/inbox", i)})
		}
		for i := range 5 {
			enqueue(t, db, fmt.Sprintf("lane-%d", i), DeliveryTarget{inboxA, "case-ok"})
		}
		takeDueWork(db)

		var leased int
		for poll := 1; ; poll++ {
			due, err := db.DueDeliveries(ctx, now, 4)
			if err != nil {
				t.Fatal(err)
			}
			// The counts are of the scan over the index in memory
			// leases (bbolt); PostgreSQL claims with one indexed query
			// bounded by the limit (see engine_pg.go).
			keys, records := takeDueWork(db)
			if be.name == "bolt" && (records != uint64(len(due)) || keys != uint64(len(due)+leased)) {
				t.Fatalf("poll %d handed out %d with %d leased: visited %d entries and read %d records of a queue of %d; want to read only what it hands out",
					poll, len(due), leased, keys, records, 1015)
			}
			if len(due) == 0 {
				break
			}
			for _, d := range due {
				if d.Recipient == deadInbox {
					t.Fatalf("poll %d handed out %+v, which waits for its retry", poll, d)
				}
			}
			leased += len(due)
		}
		if leased != 11 {
			t.Errorf("%d deliveries handed out, want 11 (ten unordered, the head of the lane)", leased)
		}
	})
}

// referenceDue is what DueDeliveries hands out, computed the way the store
// did before it had an index: a scan of every pending delivery in queue
// order that takes the first of each lane, skips it while leased and while
// its NextAttempt is after now. What it finds is then ordered by
// NextAttempt and queue order, the order DueDeliveries documents across
// lanes, and cut at limit.
func referenceDue(pending []Delivery, leases map[uint64]time.Time, now time.Time, limit int) []Delivery {
	blocked := make(map[string]struct{})
	var eligible []Delivery
	for _, d := range pending {
		if d.OrderingKey != "" {
			lane := d.Recipient + "\x00" + d.OrderingKey
			if _, ok := blocked[lane]; ok {
				continue
			}
			blocked[lane] = struct{}{}
		}
		if exp, ok := leases[d.ID]; ok && now.Before(exp) {
			continue
		}
		if d.NextAttempt.After(now) {
			continue
		}
		eligible = append(eligible, d)
	}
	slices.SortStableFunc(eligible, func(a, b Delivery) int {
		if c := a.NextAttempt.Compare(b.NextAttempt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return eligible[:min(limit, len(eligible))]
}

// leaseSnapshot copies the leases DueDeliveries holds: in the DB's memory,
// or in the due index of a PostgreSQL database.
func leaseSnapshot(t testing.TB, db *DB) map[uint64]time.Time {
	t.Helper()
	if pg, ok := db.eng.(*pgEngine); ok {
		leases, err := pg.leases(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return leases
	}
	db.leaseMu.Lock()
	defer db.leaseMu.Unlock()
	return maps.Clone(db.leases)
}

// TestDueDeliveriesMatchesQueueScan runs random sequences of enqueues,
// polls, retries, completions (immediate and deferred), dead letters,
// requeues, clock steps and restarts (after which the store has no
// leases: bbolt keeps them in memory, and a PostgreSQL process ends its
// own as it stops), and checks that every poll hands
// out exactly what referenceDue computes from the stored queue, in the
// same order, and that the index and counts agree with the queue after
// every step (DB.Check).
func TestDueDeliveriesMatchesQueueScan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		// Each step reads the whole queue through small pages and checks
		// the store; on PostgreSQL that is many round trips, so it runs
		// fewer seeds to stay within the test budget.
		seeds := uint64(8)
		if be.name == "postgres" {
			seeds = 3
		}
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
				runQueueModel(t, be, seed, 300)
			})
		}
	})
}

func runQueueModel(t *testing.T, be backend, seed uint64, steps int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	clock := newTestClock()
	path := be.newURL(t)
	opts := Options{Now: clock.Now, LeaseTTL: 3 * time.Minute, NoSync: true, DeferDelay: time.Millisecond, DataKey: testKey(3)}
	db, err := OpenURL(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	ctx := context.Background()
	mustPutActor(t, db, "coord")

	recipients := []string{inboxA, inboxB, deadInbox}
	keys := []string{"", "", "case-1", "case-2", "case-3"}
	pick := func(ds []Delivery) (Delivery, bool) {
		if len(ds) == 0 {
			return Delivery{}, false
		}
		return ds[rng.IntN(len(ds))], true
	}
	var handedOut []Delivery // from the last polls; what a worker would act on
	activity := 0
	for step := range steps {
		pending := allDeliveries(t, db, false)
		var what string
		switch op := rng.IntN(100); {
		case op < 25:
			activity++
			n := 1 + rng.IntN(3)
			targets := make([]DeliveryTarget, n)
			for i := range targets {
				targets[i] = DeliveryTarget{Recipient: recipients[rng.IntN(len(recipients))], OrderingKey: keys[rng.IntN(len(keys))]}
			}
			what = fmt.Sprintf("enqueue %v", targets)
			enqueue(t, db, fmt.Sprintf("o%d", activity), targets...)
		case op < 50:
			now := clock.Now()
			if rng.IntN(5) == 0 {
				now = now.Add(-time.Duration(rng.IntN(120)) * time.Second)
			}
			limit := 1 + rng.IntN(6)
			want := referenceDue(pending, leaseSnapshot(t, db), now, limit)
			got, err := db.DueDeliveries(ctx, now, limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(got, want, deliveriesEqual) {
				t.Fatalf("step %d: DueDeliveries(%s, %d) = %v\nwant %v", step, now.Format(time.TimeOnly), limit, ids(got), ids(want))
			}
			what = fmt.Sprintf("poll %d → %v", limit, ids(got))
			handedOut = append(handedOut, got...)
		case op < 62:
			d, ok := pickFrom(rng, handedOut, pending)
			if !ok {
				continue
			}
			next := clock.Now().Add(time.Duration(rng.IntN(600)-60) * time.Second)
			what = fmt.Sprintf("retry %d at %s", d.ID, next.Format(time.TimeOnly))
			err = db.RetryDelivery(ctx, d.ID, next, "503")
		case op < 74:
			d, ok := pickFrom(rng, handedOut, pending)
			if !ok {
				continue
			}
			what = fmt.Sprintf("complete %d", d.ID)
			if rng.IntN(2) == 0 {
				err = db.CompleteDelivery(ctx, d.ID)
			} else {
				done := make(chan error, 1)
				if err = db.CompleteDeliveryDeferred(d.ID, func(err error) { done <- err }); err == nil {
					err = <-done
				}
			}
		case op < 82:
			d, ok := pickFrom(rng, handedOut, pending)
			if !ok {
				continue
			}
			what = fmt.Sprintf("dead-letter %d", d.ID)
			err = db.DeadLetter(ctx, d.ID, "410 Gone")
		case op < 88:
			d, ok := pick(allDeliveries(t, db, true))
			if !ok {
				continue
			}
			what = fmt.Sprintf("requeue %d", d.ID)
			_, err = db.RequeueDeadLetter(ctx, d.ID, "")
		case op < 97:
			step := time.Duration(rng.IntN(240)) * time.Second
			what = fmt.Sprintf("clock +%s", step)
			clock.Advance(step)
		default:
			what = "restart"
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = OpenURL(ctx, path, opts); err != nil {
				t.Fatal(err)
			}
			handedOut = nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		if err := db.Check(ctx); err != nil {
			t.Fatalf("step %d (%s): %v", step, what, err)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != len(allDeliveries(t, db, false)) {
			t.Fatalf("step %d (%s): PendingCount = %d, %v", step, what, n, err)
		}
	}
}

// pickFrom picks a delivery a worker holds, or now and then any pending
// one (the store must handle an outcome for a delivery that does not head
// its lane too).
func pickFrom(rng *rand.Rand, handedOut, pending []Delivery) (Delivery, bool) {
	if len(handedOut) > 0 && rng.IntN(4) != 0 {
		return handedOut[rng.IntN(len(handedOut))], true
	}
	if len(pending) == 0 {
		return Delivery{}, false
	}
	return pending[rng.IntN(len(pending))], true
}

func deliveriesEqual(a, b Delivery) bool {
	return a.ID == b.ID && a.ActivityID == b.ActivityID && a.Actor == b.Actor && a.Recipient == b.Recipient &&
		a.OrderingKey == b.OrderingKey && a.Attempts == b.Attempts && a.FirstQueued.Equal(b.FirstQueued) &&
		a.NextAttempt.Equal(b.NextAttempt) && a.LastError == b.LastError
}

func ids(ds []Delivery) []uint64 {
	out := make([]uint64, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
