package store

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/pgtest"
)

// TestAReadWhoseConnectionIsLostFails: a read transaction on PostgreSQL
// whose connection the server ended (a restart, a failover, an operator's
// pg_terminate_backend) fails with the engine's error, however many
// buckets the read goes on to ask for after its first query failed; it
// used to panic ("bucket missing") at the next bucket it asked for, which
// ended a node's process from its deadline watcher.
func TestAReadWhoseConnectionIsLostFails(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db, err := OpenURL(ctx, u, Options{DataKey: testKey(5), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// A read that panicked keeps its connection from the pool, and Close
	// would wait for it.
	defer func() {
		if !t.Failed() {
			db.Close()
		}
	}()
	for range 3 { // connections in the pool, to be ended below
		if err := db.View(ctx, func(tx *ReadTx) error { _, _ = tx.Case("warm"); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	admin := pgtest.Connect(t, u)
	pgtest.EndOtherSessions(t, admin)

	for i := range 3 {
		err := func() (err error) {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("read %d after the connections were lost panicked: %v", i, r)
				}
			}()
			return db.View(ctx, func(tx *ReadTx) error {
				for _, id := range []string{"a", "b", "c"} {
					_, _ = tx.Case(id) // not there: what counts is the engine's error
				}
				_, _ = tx.LocalActor("vendor")
				return nil
			})
		}()
		if err == nil {
			// The pool replaced the lost connection before this read.
			continue
		}
		t.Logf("read %d: %v", i, err)
	}
}

// TestAPanickingReadGivesBackItsConnection: a read whose function panics
// (a bug) on PostgreSQL still ends its transaction and gives its
// connection back to the pool, instead of leaving a session idle in a
// transaction whose snapshot keeps the server from pruning dead rows (and
// that the store's Close then waits for).
func TestAPanickingReadGivesBackItsConnection(t *testing.T) {
	ctx := context.Background()
	db, err := OpenURL(ctx, pgtest.Database(t), Options{DataKey: testKey(6), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Close waits for a connection taken and never given back.
	defer func() {
		if !t.Failed() {
			db.Close()
		}
	}()
	func() {
		defer func() { _ = recover() }()
		_ = db.View(ctx, func(tx *ReadTx) error {
			_, _ = tx.Case("begun") // the read transaction has begun
			panic("a bug in a read")
		})
	}()
	if n := db.eng.(*pgEngine).pool.Stat().AcquiredConns(); n != 0 {
		t.Errorf("%d connections still taken from the pool after the read that panicked", n)
	}
}

// TestAReadOnAnEndedConnectionIsMadeOnAnother: read transactions on the
// pooled connections whose sessions the server ended (a failover, a
// restart) are begun again on another connection, as a point read and a
// write's first round trip are: nothing of them had reached their
// function. Each failed once, answered 503, a token check or an inbox
// POST alike, until the pool had let go of every ended connection.
func TestAReadOnAnEndedConnectionIsMadeOnAnother(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db := backends[1].openURL(t, u, Options{})
	if err := db.Update(ctx, failIncr("k")); err != nil {
		t.Fatal(err)
	}
	// Connections in the pool, each the last a read used.
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = db.View(ctx, func(tx *ReadTx) error { _, _ = tx.Case("warm"); return nil })
		}()
	}
	wg.Wait()
	admin := pgtest.Connect(t, u)
	pgtest.EndOtherSessions(t, admin)
	for i := range 3 {
		var n uint64
		err := db.View(ctx, func(tx *ReadTx) error {
			n = 0
			if b := tx.tx.Bucket(failBucket); b != nil && len(b.Get([]byte("k"))) == 8 {
				n = binary.BigEndian.Uint64(b.Get([]byte("k")))
			}
			return nil
		})
		if err != nil || n != 1 {
			t.Fatalf("read %d after the server ended the pool's sessions: k = %d, %v; want 1", i, n, err)
		}
	}
}

// TestAReadOnAnEndedConnectionOfAFullPoolIsMadeOnAnother: a read whose
// pooled connection the server had ended is begun again on another even
// when the pool is at its size: the ended connection is given back before
// another is asked for. Asked for while it was still held, a pool of one
// connection (or every connection of a pool held by such reads at once,
// after a failover) had none to give, and the read waited until its
// context ended.
func TestAReadOnAnEndedConnectionOfAFullPoolIsMadeOnAnother(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db := backends[1].openURL(t, withPoolSize(t, u, 1), Options{})
	if err := db.Update(ctx, failIncr("k")); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, u)
	pgtest.EndOtherSessions(t, admin)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n uint64
	err := db.View(rctx, func(tx *ReadTx) error {
		if b := tx.tx.Bucket(failBucket); b != nil && len(b.Get([]byte("k"))) == 8 {
			n = binary.BigEndian.Uint64(b.Get([]byte("k")))
		}
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("read on the ended connection of a pool of one: k = %d, %v; want 1", n, err)
	}
}
