package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/openvultron/vultron/internal/crashtest"
)

// checkCounts fails the test unless the kept counts equal a recount of the
// deliveries and dead-letters buckets.
func checkCounts(t *testing.T, db *DB, when string) {
	t.Helper()
	pending, dead, err := db.DeliveryCounts(context.Background())
	if err != nil {
		t.Fatalf("%s: DeliveryCounts: %v", when, err)
	}
	wantPending, wantDead := countBucket(t, db, bucketDeliveries, ""), countBucket(t, db, bucketDeadLetters, "")
	if pending != uint64(wantPending) || dead != uint64(wantDead) {
		t.Fatalf("%s: counts say %d pending and %d dead, the buckets hold %d and %d", when, pending, dead, wantPending, wantDead)
	}
}

// queueStep makes one random change to the delivery queue: an enqueue to
// 0–3 recipients, a completion (with or without a commit of its own), a
// retry, a dead letter, a requeue, or a failing write in the same batch as
// a good one.
func queueStep(t *testing.T, db *DB, rng *rand.Rand, i int) {
	t.Helper()
	ctx := context.Background()
	pending, err := db.PendingDeliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := db.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pick := func(ds []Delivery) uint64 { return ds[rng.IntN(len(ds))].ID }
	switch op := rng.IntN(7); {
	case op == 0 || len(pending) == 0:
		targets := make([]DeliveryTarget, rng.IntN(4))
		for j := range targets {
			targets[j] = DeliveryTarget{Recipient: fmt.Sprintf("https://peer%d.example/inbox", j), OrderingKey: "case"}
		}
		enqueue(t, db, fmt.Sprintf("https://node.example/activities/%d", i), targets...)
	case op == 1:
		if err := db.CompleteDelivery(ctx, pick(pending)); err != nil {
			t.Fatal(err)
		}
	case op == 2:
		done := make(chan error, 1)
		if err := db.CompleteDeliveryDeferred(pick(pending), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		// A deferred write waits for another write to commit it.
		mustPutActor(t, db, "coord")
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	case op == 3:
		if err := db.RetryDelivery(ctx, pick(pending), db.now().Add(time.Minute), "503"); err != nil {
			t.Fatal(err)
		}
	case op == 4:
		if err := db.DeadLetter(ctx, pick(pending), "gone"); err != nil {
			t.Fatal(err)
		}
	case op == 5 && len(dead) > 0:
		if _, err := db.RequeueDeadLetter(ctx, pick(dead)); err != nil {
			t.Fatal(err)
		}
	default:
		// A write that fails after queueing: its batch is rolled back and
		// rerun without it, and its count must go with it.
		id := fmt.Sprintf("https://node.example/activities/%d-failed", i)
		err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "x"),
			Deliveries: []DeliveryTarget{{Recipient: "https://peer.example/inbox"}}}, func(*Tx) error { return errors.New("refused") })
		if err == nil {
			t.Fatal("a failing apply was stored")
		}
	}
}

// TestDeliveryCountsFollowTheQueues runs random sequences of queue changes
// and checks after each that the kept counts equal a recount, and that they
// still do after the file is closed and opened again.
func TestDeliveryCountsFollowTheQueues(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			key := bytes.Repeat([]byte{7}, DataKeySize)
			db, err := Open(path, Options{NoSync: true, DataKey: key})
			if err != nil {
				t.Fatal(err)
			}
			mustPutActor(t, db, "coord")
			rng := rand.New(rand.NewPCG(seed, 1))
			for i := range 150 {
				queueStep(t, db, rng, i)
				checkCounts(t, db, fmt.Sprintf("after step %d", i))
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if db, err = Open(path, Options{NoSync: true, DataKey: key}); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkCounts(t, db, "after reopening")
		})
	}
}

// TestOpenCountsTheQueuesOfAnOlderFile opens a file whose queues were
// written before the counts existed: Open counts them once, page by page.
func TestOpenCountsTheQueuesOfAnOlderFile(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pending, dead int
		page          int
	}{
		{"empty", 0, 0, 3},
		{"less than a page", 2, 1, 3},
		{"whole pages", 6, 3, 3},
		{"pages and a rest", 7, 5, 3},
		{"default page", 7, 5, countPage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			db, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			mustPutActor(t, db, "coord")
			for i := range tc.pending + tc.dead {
				enqueue(t, db, fmt.Sprintf("a%d", i), DeliveryTarget{Recipient: inboxA})
			}
			ds, err := db.PendingDeliveries(context.Background(), 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ds[:tc.dead] {
				if err := db.DeadLetter(context.Background(), d.ID, "gone"); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			// Remove the counts, as in a file written before them, and
			// count the way Open does with the test's page size.
			bdb, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := bdb.Update(func(tx *bolt.Tx) error {
				meta := tx.Bucket(bucketMeta)
				return errors.Join(meta.Delete(keyPendingCount), meta.Delete(keyDeadCount))
			}); err != nil {
				t.Fatal(err)
			}
			if err := countQueuesPaged(bdb, tc.page); err != nil {
				t.Fatal(err)
			}
			if err := bdb.Close(); err != nil {
				t.Fatal(err)
			}

			db, err = Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			pending, dead, err := db.DeliveryCounts(context.Background())
			if err != nil || pending != uint64(tc.pending) || dead != uint64(tc.dead) {
				t.Fatalf("counted %d pending and %d dead (%v), want %d and %d", pending, dead, err, tc.pending, tc.dead)
			}
			checkCounts(t, db, "after counting")
		})
	}
}

// TestOpenRecountsMissingCounts: Open itself counts a file without counts.
func TestOpenRecountsMissingCounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, db, "coord")
	enqueue(t, db, "a", DeliveryTarget{Recipient: inboxA}, DeliveryTarget{Recipient: inboxB})
	if err := db.Update(context.Background(), func(tx *Tx) error {
		return tx.bucket(bucketMeta).Delete(keyPendingCount)
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = Open(path, Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.PendingCount(context.Background()); err != nil || n != 2 {
		t.Fatalf("PendingCount after reopening = %d, %v; want 2", n, err)
	}
}

// TestUnderflowRecounts: a count a foreign writer left too low is
// recounted by the write that would take it below zero.
func TestUnderflowRecounts(t *testing.T) {
	db := openTestDB(t, Options{})
	mustPutActor(t, db, "coord")
	enqueue(t, db, "a", DeliveryTarget{Recipient: inboxA}, DeliveryTarget{Recipient: inboxB})
	if err := db.Update(context.Background(), func(tx *Tx) error {
		return tx.bucket(bucketMeta).Put(keyPendingCount, encodeCount(0))
	}); err != nil {
		t.Fatal(err)
	}
	ds, err := db.PendingDeliveries(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CompleteDelivery(context.Background(), ds[0].ID); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "after the completion")
}

// countCrashEnv marks the child process of TestDeliveryCountsSurviveSigkill.
const countCrashEnv = "STORE_COUNT_CRASH_CHILD"

// TestDeliveryCountsSurviveSigkill kills a process that enqueues,
// completes, dead-letters and requeues deliveries from several goroutines
// with real fsync, then checks that the reopened file's counts equal a
// recount.
func TestDeliveryCountsSurviveSigkill(t *testing.T) {
	if path, ok := crashtest.Child(countCrashEnv); ok {
		countCrashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("crash test runs a child process")
	}
	path := filepath.Join(t.TempDir(), "vultron.db")
	crashtest.Kill(t, "TestDeliveryCountsSurviveSigkill", countCrashEnv, path, 400)
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, db, "after SIGKILL")
	pending, dead, _ := db.DeliveryCounts(context.Background())
	if pending == 0 || dead == 0 {
		t.Errorf("the child left %d pending and %d dead: the test exercised too little", pending, dead)
	}
}

// countCrashChild changes the queue from four goroutines until it is killed.
func countCrashChild(t *testing.T, path string) {
	db, err := Open(path, Options{}) // real fsync
	if err != nil {
		t.Fatalf("child open: %v", err)
	}
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	deadline := time.Now().Add(20 * time.Second)
	var wg sync.WaitGroup
	var out sync.Mutex
	for w := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 2))
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("https://node.example/activities/%d-%d", w, i)
				err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "crash"),
					Deliveries: []DeliveryTarget{{Recipient: "https://a.example/inbox"}, {Recipient: "https://b.example/inbox"}}}, nil)
				if err == nil {
					var ds []Delivery
					if ds, err = db.PendingDeliveries(ctx, 0); err == nil && len(ds) > 0 {
						d := ds[rng.IntN(len(ds))]
						switch rng.IntN(3) {
						case 0:
							err = db.CompleteDelivery(ctx, d.ID)
						case 1:
							err = db.DeadLetter(ctx, d.ID, "gone")
						}
						if errors.Is(err, ErrNotFound) {
							err = nil // another goroutine took it
						}
					}
				}
				if err == nil && rng.IntN(4) == 0 {
					if dead, derr := db.DeadLetters(ctx); derr == nil && len(dead) > 0 {
						if _, err = db.RequeueDeadLetter(ctx, dead[0].ID); errors.Is(err, ErrNotFound) {
							err = nil
						}
					}
				}
				if err != nil {
					fmt.Fprintf(os.Stderr, "step %s: %v\n", id, err)
					os.Exit(2)
				}
				out.Lock()
				_, err = os.Stdout.WriteString("step " + id + "\n")
				out.Unlock()
				if err != nil {
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
	_ = db.Close()
	os.Exit(4) // the parent should have killed the child long before
}
