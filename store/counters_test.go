package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/crashtest"
	"github.com/openvultron/vultron/internal/pgtest"
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
	pending, _, err := db.PendingDeliveries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	dead, _, err := db.DeadLetters(ctx, 0, 1000)
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
		if _, err := db.RequeueDeadLetter(ctx, pick(dead), ""); err != nil {
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

// countCrashEnv marks the child process of TestDeliveryCountsSurviveSigkill.
const countCrashEnv = "STORE_COUNT_CRASH_CHILD"

// TestDeliveryCountsSurviveSigkill kills a process that enqueues,
// completes, dead-letters and requeues deliveries from several goroutines
// with real fsync, then checks that the reopened store's counts equal a
// recount.
func TestDeliveryCountsSurviveSigkill(t *testing.T) {
	if path, ok := crashtest.Child(countCrashEnv); ok {
		countCrashChild(t, path)
		return
	}
	if testing.Short() {
		t.Skip("crash test runs a child process")
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		crashtest.Kill(t, "TestDeliveryCountsSurviveSigkill", countCrashEnv, path, 400)
		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
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
	})
}

// countCrashChild changes the queue from four goroutines until it is killed.
func countCrashChild(t *testing.T, path string) {
	db, err := OpenURL(context.Background(), path, Options{}) // real fsync
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
					if ds, _, err = db.PendingDeliveries(ctx, 0, 1000); err == nil && len(ds) > 0 {
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
					if dead, _, derr := db.DeadLetters(ctx, 0, 1); derr == nil && len(dead) > 0 {
						if _, err = db.RequeueDeadLetter(ctx, dead[0].ID, ""); errors.Is(err, ErrNotFound) {
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

// TestRoundTripsCountWhatTheDatabaseIsAsked checks the counts the node
// exports as vultron_store_round_trips_total and
// vultron_store_statements_total: bbolt has no server and says so; on
// PostgreSQL a read of one key is one request of one statement, and a
// read-ahead of many keys is one request of many statements.
func TestRoundTripsCountWhatTheDatabaseIsAsked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		mustPutActor(t, db, "vendor")
		reqs0, stmts0, ok := db.RoundTrips()
		if be.name == "bolt" {
			if ok || reqs0 != 0 || stmts0 != 0 {
				t.Fatalf("bbolt RoundTrips = %d, %d, %v; want 0, 0, false", reqs0, stmts0, ok)
			}
			return
		}
		if !ok || reqs0 == 0 || stmts0 < reqs0 {
			t.Fatalf("PostgreSQL RoundTrips after opening and a write = %d, %d, %v; want requests > 0, statements >= requests, true", reqs0, stmts0, ok)
		}
		readKey := func() {
			t.Helper()
			if _, err := db.RemoteKey(context.Background(), "https://peer.example/actors/a#main-key"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("RemoteKey of an unknown key: %v, want ErrNotFound", err)
			}
		}
		readKey() // the first read also looks up the bucket
		reqs0, stmts0, _ = db.RoundTrips()
		readKey()
		reqs1, stmts1, _ := db.RoundTrips()
		if reqs1-reqs0 != 1 || stmts1-stmts0 != 1 {
			t.Errorf("one point read cost %d requests and %d statements, want 1 and 1", reqs1-reqs0, stmts1-stmts0)
		}
	})
}

// TestPageWrites: a bbolt store counts the page writes of its commits
// (each page, or run of a page and its overflow pages, and the meta page),
// so that an operator can see what a commit costs the disk; PostgreSQL
// writes no pages of the node's own and reports none.
func TestPageWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		before, ok := db.PageWrites()
		if be.name != "bolt" {
			if ok {
				t.Errorf("a %s store reports page writes", be.name)
			}
			return
		}
		if !ok {
			t.Fatal("a bbolt store reports no page writes")
		}
		if err := db.Update(context.Background(), putCase("k", strings.Repeat("v", 100))); err != nil {
			t.Fatal(err)
		}
		// At least the leaf of the key, the bucket's parents up to the
		// root, and the meta page; a few more with the freelist.
		if n, _ := db.PageWrites(); n-before < 3 || n-before > 20 {
			t.Errorf("one small commit wrote %d pages", n-before)
		}
		// Ten keys far apart in ten buckets write more pages than one.
		before, _ = db.PageWrites()
		if err := db.Update(context.Background(), func(tx *Tx) error {
			for i := range 10 {
				c, err := tx.Case(fmt.Sprintf("c%d", i))
				if err != nil {
					return err
				}
				if err := c.Put([]byte("k"), bytes.Repeat([]byte("v"), 3000)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, _ := db.PageWrites(); n-before < 11 {
			t.Errorf("a commit to ten buckets wrote %d pages", n-before)
		}
	})
}

// TestPoolStats checks what the node exports of a PostgreSQL store's
// connection pool and writer lock: the pool's size and use, the
// acquisitions that found no free connection and how long they waited, and
// how long write transactions waited for the writer lock that the
// processes sharing the database take in turn. bbolt has neither and says
// so.
func TestPoolStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		if be.name == "bolt" {
			db := be.open(t, Options{})
			if st, ok := db.PoolStats(); ok || st != (PoolStats{}) {
				t.Fatalf("bbolt PoolStats = %+v, %v; want nothing, false", st, ok)
			}
			return
		}
		ctx := context.Background()
		u := pgtest.Database(t)
		db := be.openURL(t, withPoolSize(t, u, 2), Options{DataKey: testKey(9)})
		if err := db.Update(ctx, failIncr("k")); err != nil {
			t.Fatal(err)
		}
		st, ok := db.PoolStats()
		if !ok || st.MaxConns != 2 || st.AcquiredConns+st.IdleConns < 1 || st.WriterLocks < 1 {
			t.Fatalf("PoolStats after a write = %+v, %v; want MaxConns 2, a connection open, a writer lock taken, true", st, ok)
		}

		// Another process holds the writer lock for 300 ms while this
		// one's write waits for it.
		admin := pgtest.Connect(t, u)
		holder, writer := holdWriterLock(t, admin, db)
		before, _ := db.PoolStats()
		done := make(chan error, 1)
		go func() { done <- db.Update(ctx, failIncr("k")) }()
		waitFor(t, 10*time.Second, "the write waits for the writer lock", func() (bool, error) {
			return lockWaiters(t, admin, writer) > 0, nil
		})
		held := time.Now()
		<-time.After(300 * time.Millisecond)
		if err := holder.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		heldFor := time.Since(held)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		after, _ := db.PoolStats()
		if after.WriterLocks != before.WriterLocks+1 {
			t.Errorf("writer locks taken %d → %d by one write, want one more", before.WriterLocks, after.WriterLocks)
		}
		if waited := after.WriterLockWait - before.WriterLockWait; waited < heldFor-50*time.Millisecond || waited > heldFor+5*time.Second {
			t.Errorf("the write waited %v for the writer lock by PoolStats; another session held it for %v", waited, heldFor)
		}

		// Both connections taken by reads that wait: a third finds none
		// free and waits for one.
		release := make(chan struct{})
		var readers sync.WaitGroup
		for range 2 {
			readers.Go(func() {
				_ = db.View(ctx, func(*ReadTx) error { <-release; return nil })
			})
		}
		waitFor(t, 10*time.Second, "two reads hold both connections", func() (bool, error) {
			st, _ := db.PoolStats()
			return st.AcquiredConns == 2, nil
		})
		third := make(chan error, 1)
		go func() { third <- db.View(ctx, func(*ReadTx) error { return nil }) }()
		select {
		case err := <-third:
			t.Fatalf("a third read went through while two held both connections: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(release)
		readers.Wait()
		if err := <-third; err != nil {
			t.Fatal(err)
		}
		final, _ := db.PoolStats()
		if final.EmptyAcquires <= after.EmptyAcquires {
			t.Errorf("acquisitions that found no free connection %d → %d, want more", after.EmptyAcquires, final.EmptyAcquires)
		}
		if w := final.EmptyAcquireWait - after.EmptyAcquireWait; w < 90*time.Millisecond {
			t.Errorf("the read that found no free connection waited %v for one by PoolStats; want at least the 100 ms it was held back", w)
		}
	})
}
