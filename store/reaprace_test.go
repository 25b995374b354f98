package store

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestReapingSparesALeaseTakenWhileItRuns: a look for the leases of
// processes that are gone ends only the leases of holders that are gone.
// A delivery that a process started since the look began (whose lock the
// look had not seen when it read the server's locks) claims meanwhile
// keeps its new lease: ending it would let a third process claim and send
// the delivery while the new holder sends it too.
//
// The look is made to wait on the delivery's row, which an open
// transaction holds, after it has read the server's locks; the new
// process then takes its lock, the transaction gives the row to it and
// commits, and the look goes on. PostgreSQL checks the condition of a row
// that changed while the statement waited again, the server's locks
// included, so the look sees the new lock; a list of live holders read
// once before the UPDATE fails this test.
func TestReapingSparesALeaseTakenWhileItRuns(t *testing.T) {
	clock := newTestClock()
	dbs := openShared(t, 2, Options{Now: clock.Now, LeaseTTL: time.Minute})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	enqueue(t, dbs[0], "a1", DeliveryTarget{Recipient: inboxA})
	if due, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10); err != nil || len(due) != 1 {
		t.Fatalf("first process: DueDeliveries = %v, %v; want the delivery", due, err)
	}
	killHolderSession(t, dbs[1], dbs[0]) // the first process is gone

	reaper := dbs[1].eng.(*pgEngine)
	pool := reaper.pool
	var key []byte
	if err := pool.QueryRow(ctx, `SELECT key FROM vultron_kv WHERE lease_holder IS NOT NULL`).Scan(&key); err != nil {
		t.Fatalf("the leased delivery's row: %v", err)
	}

	// A transaction holds the row.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT 1 FROM vultron_kv WHERE key = $1 AND lease_holder IS NOT NULL FOR UPDATE`, key); err != nil {
		t.Fatal(err)
	}

	// The look begins, and waits for the row.
	reaper.holderMu.Lock()
	self := reaper.holder
	reaper.holderMu.Unlock()
	reaped := make(chan error, 1)
	go func() { reaped <- reaper.reapLeases(ctx, self) }()
	waitFor(t, 10*time.Second, "the look for dead holders to wait for the row", func() (bool, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND query LIKE '%lease = NULL, lease_holder = NULL%'`).Scan(&n)
		return n > 0, err
	})

	// A process that started since takes its lock and the delivery.
	const newHolder = int64(0x7a11_0000_0001)
	conn, err := pgx.ConnectConfig(ctx, reaper.connConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, newHolder); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE vultron_kv SET lease_holder = $2 WHERE key = $1 AND lease_holder IS NOT NULL`, key, newHolder); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-reaped; err != nil {
		t.Fatalf("reapLeases: %v", err)
	}

	var holder *int64
	if err := pool.QueryRow(ctx, `SELECT lease_holder FROM vultron_kv WHERE key = $1`, key).Scan(&holder); err != nil {
		t.Fatalf("the delivery's row after the look: %v", err)
	}
	if holder == nil || *holder != newHolder {
		t.Fatalf("the delivery's lease holder after the look = %v, want the process that took it while the look ran (%d)", holder, newHolder)
	}
}
