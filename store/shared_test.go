package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/crashtest"
	"github.com/openvultron/vultron/internal/pgtest"
)

// Tests of several processes on one PostgreSQL database. Each DB opened on
// the same URL has its own pool, committer and leases, as a process does.

// openShared opens n DBs on one new PostgreSQL database.
func openShared(t *testing.T, n int, opts Options) []*DB {
	t.Helper()
	u := pgtest.Database(t)
	be := backends[1]
	dbs := make([]*DB, n)
	for i := range dbs {
		dbs[i] = be.openURL(t, u, opts)
	}
	return dbs
}

func TestSharedDatabaseHandsOutEachDeliveryOnce(t *testing.T) {
	clock := newTestClock()
	dbs := openShared(t, 2, Options{Now: clock.Now, LeaseTTL: time.Hour, DataKey: testKey(4)})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	const activities = 60
	for i := range activities {
		// Two lanes shared by many activities, and unordered deliveries.
		enqueue(t, dbs[i%2], fmt.Sprintf("a%d", i),
			DeliveryTarget{Recipient: inboxA, OrderingKey: fmt.Sprintf("case-%d", i%2)},
			DeliveryTarget{Recipient: fmt.Sprintf("https://p%d.example/inbox", i)})
	}
	var (
		mu      sync.Mutex
		handed  = map[uint64]int{}
		lastIn  = map[string]uint64{} // lane → last id handed out
		ordered = true
	)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for w := range dbs {
		wg.Go(func() {
			db := dbs[w]
			for idle := 0; idle < 3; {
				due, err := db.DueDeliveries(ctx, clock.Now(), 5)
				if err != nil {
					errs <- err
					return
				}
				if len(due) == 0 {
					idle++
					continue
				}
				idle = 0
				for _, d := range due {
					mu.Lock()
					handed[d.ID]++
					if d.OrderingKey != "" {
						lane := d.Recipient + " " + d.OrderingKey
						if d.ID < lastIn[lane] {
							ordered = false
						}
						lastIn[lane] = d.ID
					}
					mu.Unlock()
					if err := db.CompleteDelivery(ctx, d.ID); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(handed) != 2*activities {
		t.Errorf("%d deliveries handed out, want %d", len(handed), 2*activities)
	}
	for id, n := range handed {
		if n != 1 {
			t.Errorf("delivery %d handed out %d times", id, n)
		}
	}
	if !ordered {
		t.Error("a lane's deliveries were handed out out of queue order")
	}
	if n, err := dbs[1].PendingCount(ctx); err != nil || n != 0 {
		t.Errorf("PendingCount = %d, %v; want 0", n, err)
	}
}

func TestSharedDatabaseSerializesWrites(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	const each = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	accepted := map[string]int{}
	errs := make(chan error, 2*each*2)
	for w, db := range dbs {
		wg.Go(func() {
			for i := range each {
				// Every activity is sent to both processes, as a peer
				// retrying through a load balancer would.
				for _, id := range []string{fmt.Sprintf("https://peer.example/a/%d", i), fmt.Sprintf("https://peer.example/own/%d-%d", w, i)} {
					res, err := db.AcceptInbound(ctx, inbound(id, "coord", "n"), nil)
					if err != nil {
						errs <- err
						continue
					}
					if !res.Duplicate {
						mu.Lock()
						accepted[id]++
						mu.Unlock()
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(accepted) != 3*each {
		t.Errorf("%d activities accepted, want %d", len(accepted), 3*each)
	}
	for id, n := range accepted {
		if n != 1 {
			t.Errorf("%s accepted %d times", id, n)
		}
	}
	v, err := dbs[1].VerifyAudit(ctx)
	if err != nil || !v.OK {
		t.Fatalf("audit chain written by two processes: %+v, %v", v, err)
	}
	if v.Records < 4*each {
		t.Errorf("audit chain has %d records, want at least %d", v.Records, 4*each)
	}
}

func TestSharedDatabaseChangedFiresInEveryProcess(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	changed := dbs[1].Changed()
	if err := dbs[0].PutLocalActor(context.Background(), LocalActor{Name: "coord"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("a commit of one process did not wake the other's watchers")
	}
}

func TestSharedDatabaseHasOneLeader(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	ctx := context.Background()
	for _, db := range dbs {
		if !db.Shared() {
			t.Fatal("a PostgreSQL store must say it is shared")
		}
	}
	lead0, stop0, err := dbs[0].Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan context.Context, 1)
	var stop1 func()
	go func() {
		lctx, stop, err := dbs[1].Lead(ctx)
		if err != nil {
			t.Error(err)
			close(second)
			return
		}
		stop1 = stop
		second <- lctx
	}()
	select {
	case <-second:
		t.Fatal("a second process leads while the first does")
	case <-time.After(300 * time.Millisecond):
	}
	stop0()
	if lead0.Err() == nil {
		t.Error("the first leader's context is not done after it gave up the lead")
	}
	select {
	case lctx, ok := <-second:
		if !ok {
			return
		}
		if lctx.Err() != nil {
			t.Error("the new leader's context is done")
		}
		stop1()
	case <-time.After(10 * time.Second):
		t.Fatal("the second process did not lead after the first gave up")
	}
}

// TestSharedDatabaseLeaderKilled kills a child process that leads, and
// checks that this process then leads: the lead is the child's database
// session, which dies with it.
func TestSharedDatabaseLeaderKilled(t *testing.T) {
	const env = "STORE_LEADER_CHILD"
	if u, ok := crashtest.Child(env); ok {
		db, err := OpenURL(context.Background(), u, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Lead(context.Background()); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("step leading\n")
		<-time.After(crashChildLimit) // the parent kills it long before
		os.Exit(4)
	}
	u := pgtest.Database(t)
	db := backends[1].openURL(t, u, Options{})
	crashtest.Kill(t, "TestSharedDatabaseLeaderKilled", env, u, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lctx, stop, err := db.Lead(ctx)
	if err != nil {
		t.Fatalf("no lead after the leader was killed: %v", err)
	}
	defer stop()
	if errors.Is(lctx.Err(), context.Canceled) {
		t.Fatal("the lead ended at once")
	}
}

// TestSharedFilesReachEveryProcess pushes a data directory's secrets from
// one process and pulls them into another's, under the start-up lock,
// which a second process waits for.
func TestSharedFilesReachEveryProcess(t *testing.T) {
	dbs := openShared(t, 2, Options{DataKey: testKey(6)})
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(a+"/keys", 0o700); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"keys/vendor.pem": "PRIVATE " + marker, "keys/vendor.ring.json": "{}", "api-token": "token"} {
		if err := os.WriteFile(a+"/"+name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	release, err := dbs[0].StartupLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := dbs[0].PushFiles(ctx, a, []string{"keys", "api-token", "missing"}); err != nil || n != 3 {
		t.Fatalf("PushFiles = %d, %v; want 3", n, err)
	}
	second := make(chan func(), 1)
	go func() {
		r, err := dbs[1].StartupLock(ctx)
		if err != nil {
			t.Error(err)
		}
		second <- r
	}()
	select {
	case <-second:
		t.Fatal("a second process took the start-up lock while the first held it")
	case <-time.After(200 * time.Millisecond):
	}
	release()
	select {
	case r := <-second:
		defer r()
	case <-time.After(10 * time.Second):
		t.Fatal("the start-up lock was not handed on")
	}
	if n, err := dbs[1].PullFiles(ctx, b); err != nil || n != 3 {
		t.Fatalf("PullFiles = %d, %v; want 3", n, err)
	}
	got, err := os.ReadFile(b + "/keys/vendor.pem")
	if err != nil || string(got) != "PRIVATE "+marker {
		t.Errorf("pulled key: %q, %v", got, err)
	}
	if fi, err := os.Stat(b + "/keys/vendor.pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("pulled key mode: %v, %v", fi.Mode(), err)
	}
	// The files are sealed in the database.
	var plain int
	if err := dbs[0].eng.(*pgEngine).pool.QueryRow(ctx, `SELECT count(*) FROM vultron_kv WHERE position($1::bytea IN value) > 0`, []byte(marker)).Scan(&plain); err != nil || plain != 0 {
		t.Errorf("%d rows hold the key in the clear (%v)", plain, err)
	}
	if n, err := dbs[0].PushFiles(ctx, a, []string{"keys"}); err != nil || n != 0 {
		t.Errorf("pushing unchanged files stored %d, %v; want 0", n, err)
	}
	if _, err := dbs[0].PushFiles(ctx, a, []string{"../etc/passwd"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a path outside the data directory: %v, want ErrInvalid", err)
	}
}

// TestSharedDatabaseWaitersHoldNoSnapshot checks that a process waiting to
// lead, or to start, does not hold back the database's xmin horizon. A
// statement that waits on a lock keeps its snapshot while it waits; a
// process that waits for the lead for its whole life would keep every
// dead row version written since it began, and every lookup of a key
// written often (the sequences, the counts) would walk all of them. A
// waiter must ask in short statements and wait between them.
func TestSharedDatabaseWaitersHoldNoSnapshot(t *testing.T) {
	dbs := openShared(t, 3, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, stop0, err := dbs[0].Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop0()
	release, err := dbs[0].StartupLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	waiters := make(chan func(), 2)
	go func() {
		if _, stop, err := dbs[1].Lead(ctx); err == nil {
			waiters <- stop
		}
	}()
	go func() {
		if r, err := dbs[2].StartupLock(ctx); err == nil {
			waiters <- r
		}
	}()
	pool := dbs[0].eng.(*pgEngine).pool
	// Both waiters have asked for their lock: four sessions have run an
	// advisory lock function (the two holders and the two waiters).
	waitFor(t, 10*time.Second, "the waiters to ask for their locks", func() (bool, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%advisory_lock%($1)%' AND query NOT LIKE '%pg_stat_activity%'`).Scan(&n)
		return n >= 4, err
	})
	var x1 string
	if err := pool.QueryRow(ctx, `SELECT txid_current()::text`).Scan(&x1); err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, dbs[0], "coord") // a commit after x1
	waitFor(t, 10*time.Second, "no session to hold a snapshot older than the last commit", func() (bool, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
			AND age(backend_xmin) >= age($1::text::xid)`, x1).Scan(&n)
		return n == 0, err
	})
	select {
	case <-waiters:
		t.Fatal("a waiter took a lock another process holds")
	default:
	}
}

// TestSharedDatabaseLeaseEndsWithItsProcess checks the two ways a lease
// ends besides the delivery's outcome: it expires, while its process
// lives; and it ends at once (within a reaping interval) when the process
// that holds it is gone, whatever its expiry. A process killed while it
// sends would otherwise hold its deliveries, and every delivery queued
// behind them in their lanes, for the whole lease (two minutes by default)
// after it restarts.
func TestSharedDatabaseLeaseEndsWithItsProcess(t *testing.T) {
	clock := newTestClock()
	dbs := openShared(t, 3, Options{Now: clock.Now, LeaseTTL: time.Minute})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	enqueue(t, dbs[0], "a1", DeliveryTarget{Recipient: inboxA})
	due, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("first process: DueDeliveries = %v, %v; want the delivery", due, err)
	}
	if got, err := dbs[1].DueDeliveries(ctx, clock.Advance(59*time.Second), 10); err != nil || len(got) != 0 {
		t.Fatalf("second process while the lease runs: DueDeliveries = %v, %v; want none", got, err)
	}
	// The lease of a live process expires.
	got, err := dbs[1].DueDeliveries(ctx, clock.Advance(2*time.Second), 10)
	if err != nil || len(got) != 1 || got[0].ID != due[0].ID {
		t.Fatalf("second process after the lease expired: DueDeliveries = %v, %v; want delivery %d", got, err, due[0].ID)
	}
	if again, err := dbs[2].DueDeliveries(ctx, clock.Now(), 10); err != nil || len(again) != 0 {
		t.Fatalf("a third process while the second's lease runs: DueDeliveries = %v, %v; want none", again, err)
	}
	// The second process dies with its lease, 59 s before it expires: its
	// lease holder session ends without a word (a process that stops
	// ends its leases itself; TestPostgresStoppingProcessEndsItsLeases).
	killHolderSession(t, dbs[0], dbs[1])
	var taken []Delivery
	waitFor(t, 10*time.Second, "the dead process's lease to end", func() (bool, error) {
		taken, err = dbs[2].DueDeliveries(ctx, clock.Now(), 10)
		return len(taken) > 0, err
	})
	if len(taken) != 1 || taken[0].ID != due[0].ID {
		t.Fatalf("third process after the second died: DueDeliveries = %v; want delivery %d", taken, due[0].ID)
	}
	if again, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10); err != nil || len(again) != 0 {
		t.Fatalf("the first process while the third's lease runs: DueDeliveries = %v, %v; want none", again, err)
	}
}

// TestSharedDatabaseBatchGrowsWhileWaitingForTheWriter checks that the
// writes which reach a process while its committer waits for the writer
// lock (another process holds it) commit with the batch that waits, not
// in a commit of their own after it: two processes hand the lock to each
// other every batch, and each wait would otherwise split a batch in two.
func TestSharedDatabaseBatchGrowsWhileWaitingForTheWriter(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	// The other process takes the writer lock and keeps it.
	holding, release := make(chan struct{}), make(chan struct{})
	other := make(chan error, 1)
	go func() {
		other <- dbs[1].Update(ctx, func(tx *Tx) error {
			select {
			case <-holding:
			default:
				close(holding)
			}
			<-release
			return nil
		})
	}()
	<-holding
	before := dbs[0].Commits()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	put := func(name string) {
		wg.Go(func() { errs <- dbs[0].PutLocalActor(ctx, LocalActor{Name: name}) })
	}
	put("first")
	pool := dbs[0].eng.(*pgEngine).pool
	waitFor(t, 10*time.Second, "the committer to wait for the writer lock", func() (bool, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&n)
		return n == 1, err
	})
	put("second")
	put("third")
	waitFor(t, 10*time.Second, "the later writes to be queued", func() (bool, error) {
		return dbs[0].QueuedWrites() == 2, nil
	})
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	if n := dbs[0].Commits() - before; n != 1 {
		t.Errorf("three writes made %d commits; want 1 (the two that came while the first waited for the lock join it)", n)
	}
	for _, name := range []string{"first", "second", "third"} {
		if _, err := dbs[0].LocalActor(ctx, name); err != nil {
			t.Errorf("LocalActor(%s): %v", name, err)
		}
	}
}

// TestSchemasOfOneDatabaseAreSeparateNodes opens two stores in two schemas
// of one database, as two nodes kept in one database are, and checks that
// each can lead at once: advisory locks belong to the database, so with
// shared lock keys the second node would wait for the lead for as long as
// the first runs, and never run its timers or replica checks.
func TestSchemasOfOneDatabaseAreSeparateNodes(t *testing.T) {
	be := backends[1]
	a := be.openURL(t, pgtest.Database(t), Options{})
	b := be.openURL(t, pgtest.Database(t), Options{})
	ctx := context.Background()
	_, stopA, err := a.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, stopB, err := b.Lead(wctx)
	if err != nil {
		t.Fatalf("the node in the second schema could not lead while the first leads: %v", err)
	}
	defer stopB()
	// Writes in one schema do not wait for the other's writer lock: a
	// write of b commits while a transaction of a holds its lock.
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- a.Update(ctx, func(tx *Tx) error {
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	mustPutActor(t, b, "coord")
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	la, lb := a.eng.(*pgEngine).locks, b.eng.(*pgEngine).locks
	if la.writer == lb.writer || la.leader == lb.leader || la.startup == lb.startup || la.migrate == lb.migrate || la.open == lb.open || la.channel == lb.channel {
		t.Errorf("two schemas share locks or a channel: %+v and %+v", la, lb)
	}
	if p := pgLocksOf("public"); p != (pgLocks{pgWriterLock, pgLeaderLock, pgMigrateLock, pgStartupLock, pgOpenLock, pgChannel}) {
		t.Errorf("the schema public has locks %+v, want the fixed keys every release used", p)
	}
}

// TestLocksFollowTheSchemaOfTheTables opens a second process of a node
// whose search_path names, before the schema of the node's tables, a
// schema that holds none (one an operator created after the first process
// started, as a role's own schema comes first in the default search_path):
// both processes use the tables of the first schema, so they must take
// that schema's locks, or both would lead and their writes would not be
// serialized.
func TestLocksFollowTheSchemaOfTheTables(t *testing.T) {
	be := backends[1]
	tablesURL := pgtest.Database(t)
	emptyURL := pgtest.Database(t)
	schemaOf := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return u.Query().Get("search_path")
	}
	a := be.openURL(t, tablesURL, Options{})
	u, err := url.Parse(tablesURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schemaOf(emptyURL)+","+schemaOf(tablesURL))
	u.RawQuery = q.Encode()
	b := be.openURL(t, u.String(), Options{})
	if la, lb := a.eng.(*pgEngine).locks, b.eng.(*pgEngine).locks; la != lb {
		t.Fatalf("two processes on the tables of schema %s take different locks: %+v and %+v", schemaOf(tablesURL), la, lb)
	}
	ctx := context.Background()
	_, stopA, err := a.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stopA()
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, stopB, err := b.Lead(wctx); err == nil {
		stopB()
		t.Fatal("the second process led while the first leads")
	}
}

// TestSharedDatabaseLeaseHolderSessionIsRenewed ends, from the server, the
// session on which a process holds its lease holder lock (a failover or a
// network cut can do it while the process runs), and checks that the
// process's next claims are still its own: another process must not take
// them for the leases of a process that is gone.
func TestSharedDatabaseLeaseHolderSessionIsRenewed(t *testing.T) {
	clock := newTestClock()
	dbs := openShared(t, 2, Options{Now: clock.Now, LeaseTTL: time.Hour})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	enqueue(t, dbs[0], "a1", DeliveryTarget{Recipient: inboxA})
	enqueue(t, dbs[0], "a2", DeliveryTarget{Recipient: inboxB})
	e := dbs[0].eng.(*pgEngine)
	e.holderMu.Lock()
	pid := e.holderConn.PgConn().PID()
	e.holderMu.Unlock()
	var ended bool
	if err := e.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ended); err != nil || !ended {
		t.Fatalf("end the lease holder session %d: %v, %v", pid, ended, err)
	}
	// The claims after the session ended, more than a reaping interval
	// apart, so that the other process looks for dead holders between.
	var first []Delivery
	waitFor(t, 10*time.Second, "the first process to claim", func() (bool, error) {
		var err error
		first, err = dbs[0].DueDeliveries(ctx, clock.Now(), 1)
		return len(first) == 1, err
	})
	dbs[1].eng.(*pgEngine).holderMu.Lock()
	dbs[1].eng.(*pgEngine).lastReap = time.Time{} // reap on its next claim
	dbs[1].eng.(*pgEngine).holderMu.Unlock()
	got, err := dbs[1].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		if d.ID == first[0].ID {
			t.Fatalf("the second process was handed delivery %d, which the first process, still running, had just claimed", d.ID)
		}
	}
}

// killHolderSession ends, from the server's side, the session on which
// process db holds its lease holder lock, as the server does when the
// process dies: db itself is left as it was. via is another process of
// the same database.
func killHolderSession(t *testing.T, via, db *DB) {
	t.Helper()
	pg := db.eng.(*pgEngine)
	pg.holderMu.Lock()
	pid := pg.holderConn.PgConn().PID()
	pg.holderMu.Unlock()
	var ok bool
	if err := via.eng.(*pgEngine).pool.QueryRow(context.Background(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the lease holder session %d: %v, %v", pid, ok, err)
	}
}

// TestPostgresStoppingProcessEndsItsLeases: a process that stops (a
// rolling upgrade, a restart) ends the leases of the deliveries it had
// claimed and not sent, so that the others, or its own restart, send them
// at once rather than after the next look for processes that are gone.
func TestPostgresStoppingProcessEndsItsLeases(t *testing.T) {
	clock := newTestClock()
	dbs := openShared(t, 2, Options{Now: clock.Now, LeaseTTL: time.Minute})
	ctx := context.Background()
	mustPutActor(t, dbs[0], "coord")
	enqueue(t, dbs[0], "a1", DeliveryTarget{Recipient: inboxA}, DeliveryTarget{Recipient: inboxB})
	due, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("DueDeliveries = %v, %v; want both deliveries", due, err)
	}
	if err := dbs[0].Close(); err != nil {
		t.Fatal(err)
	}
	leases, err := dbs[1].eng.(*pgEngine).leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 0 {
		t.Errorf("after the process that held them stopped, %d leases remain", len(leases))
	}
	got, err := dbs[1].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(got) != 2 {
		t.Errorf("the other process: DueDeliveries = %v, %v; want both deliveries at once", got, err)
	}
}

// TestSharedDatabaseAuditChainAcrossProcesses: each process remembers the
// tail of the audit log it last committed, so that its next record chains
// on it without reading the log again; a record another process appended
// since must make it read the tail instead. The two processes append in
// turn, which a tail remembered without that check would chain wrongly
// every time.
func TestSharedDatabaseAuditChainAcrossProcesses(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	ctx := context.Background()
	for i := range 12 {
		db := dbs[i%2]
		if i%4 == 3 {
			db = dbs[(i+1)%2] // and now and then twice by one process
		}
		err := db.Audit(ctx, AuditRecord{Kind: AuditInbound, Decision: DecisionAccepted, ActivityID: fmt.Sprintf("https://peer.example/a/%d", i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, db := range dbs {
		v, err := db.VerifyAudit(ctx)
		if err != nil || !v.OK || v.Records != 12 {
			t.Errorf("process %d: audit chain of records appended in turn: %+v, %v; want 12 records, intact", i, v, err)
		}
	}
}

// TestPostgresAuditRecordReadsTheTailWithTheLock: every transaction that
// appends an audit record (every accept, every delivery) reads the log's
// last record first, to chain on it. Once write transactions read it
// often, it is read in the request that takes the writer lock, so it
// costs no round trip of its own while the lock is held.
func TestPostgresAuditRecordReadsTheTailWithTheLock(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	rec := func(i int) AuditRecord {
		return AuditRecord{Kind: AuditInbound, Decision: DecisionAccepted, ActivityID: fmt.Sprintf("https://peer.example/a/%d", i)}
	}
	for i := range 3 { // the sequences it reads become hot reads of the writer lock's request
		if err := db.Audit(ctx, rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	trips := pgTrips(t, db)
	if err := db.Audit(ctx, rec(3)); err != nil {
		t.Fatal(err)
	}
	// BEGIN, the writer lock and the hot reads (the log's sequence and
	// last record among them); the record; COMMIT.
	if n := trips(); n > 3 {
		t.Errorf("appending an audit record took %d round trips, want 3", n)
	}
	v, err := db.VerifyAudit(ctx)
	if err != nil || !v.OK || v.Records != 4 {
		t.Errorf("audit chain: %+v, %v; want 4 records, intact", v, err)
	}
}

// TestPostgresLastKeyReadWithTheLockIsTheLast: a bucket's last key, read
// ahead with the writer lock once write transactions read it often, is
// what a cursor's Last returns: after another process appended, after the
// transaction's own put and delete, and for a bucket emptied since; and a
// cursor moves back from it as from a fetched one.
func TestPostgresLastKeyReadWithTheLockIsTheLast(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	ctx := context.Background()
	name := []byte("lasts under test")
	last := func(db *DB, fn func(b kvBucket) error) {
		t.Helper()
		err := db.eng.update(ctx, func(tx kvTx) error {
			b, err := tx.CreateBucketIfNotExists(name)
			if err != nil {
				return err
			}
			return fn(b)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := func(b kvBucket, key string) {
		t.Helper()
		if k, _ := b.Cursor().Last(); string(k) != key {
			t.Errorf("Last = %q, want %q", k, key)
		}
	}
	last(dbs[0], func(b kvBucket) error {
		for _, k := range []string{"a", "b", "c"} {
			if err := b.Put([]byte(k), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	for range 3 { // its last key becomes a hot read of process 0
		last(dbs[0], func(b kvBucket) error { want(b, "c"); return nil })
	}
	trips := pgTrips(t, dbs[0])
	last(dbs[0], func(b kvBucket) error {
		before := trips()
		c := b.Cursor()
		if k, _ := c.Last(); string(k) != "c" {
			t.Errorf("Last = %q, want c", k)
		}
		if n := trips() - before; n != 0 {
			t.Errorf("the last key read ahead took %d round trips, want none", n)
		}
		if k, _ := c.Prev(); string(k) != "b" {
			t.Errorf("Prev after Last = %q, want b", k)
		}
		if err := b.Put([]byte("d"), []byte("v")); err != nil {
			return err
		}
		want(b, "d")
		if err := b.Delete([]byte("d")); err != nil {
			return err
		}
		want(b, "c")
		return nil
	})
	last(dbs[1], func(b kvBucket) error { return b.Put([]byte("e"), []byte("v")) })
	last(dbs[0], func(b kvBucket) error { want(b, "e"); return nil })
	last(dbs[1], func(b kvBucket) error {
		for _, k := range []string{"a", "b", "c", "e"} {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	last(dbs[0], func(b kvBucket) error {
		if k, v := b.Cursor().Last(); k != nil || v != nil {
			t.Errorf("Last of an emptied bucket = %q, %q; want nothing", k, v)
		}
		return nil
	})
}

// TestAStartPushesOnlyWhatItMade: a process that starts pulls the shared
// files, makes what is missing and pushes it at the end of its start
// (PushFilesSince, given what PullFilesSeen read). Whatever another
// process stored meanwhile (a start whose start-up lock the server ended,
// or a key rotated during this start) is not overwritten: a file this
// process did not change is not pushed at all, and a file it made that
// another process also stored differently refuses the start, so that no
// two processes of one node sign with different keys for one actor.
// PushFiles, which the start used before, stored this process's copy over
// both.
func TestAStartPushesOnlyWhatItMade(t *testing.T) {
	dbs := openShared(t, 2, Options{DataKey: testKey(6)})
	ctx := context.Background()
	a, b := t.TempDir(), t.TempDir()
	write := func(dir, rel, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, rel)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, rel), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	stored := func(rel string) string {
		t.Helper()
		out := t.TempDir()
		if ok, err := dbs[0].PullFile(ctx, out, rel); err != nil || !ok {
			t.Fatalf("PullFile %s = %v, %v", rel, ok, err)
		}
		data, err := os.ReadFile(filepath.Join(out, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	// A node whose api-token the first process made long ago.
	write(a, "api-token", "token-1")
	if _, err := dbs[0].PushFiles(ctx, a, []string{"api-token"}); err != nil {
		t.Fatal(err)
	}

	// Both start at once: each reads what the store holds.
	seenA, err := dbs[0].PullFilesSeen(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	seenB, err := dbs[1].PullFilesSeen(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	// B makes the vendor's key and rotates the API token, and stores both.
	write(b, "keys/vendor.pem", "KEY OF B")
	write(b, "api-token", "token-2")
	if n, err := dbs[1].PushFilesSince(ctx, b, sharedTestFiles, seenB); err != nil || n != 2 {
		t.Fatalf("B's push = %d, %v; want 2", n, err)
	}
	// A, which never saw them, made a key of its own for the vendor.
	write(a, "keys/vendor.pem", "KEY OF A")
	_, err = dbs[0].PushFilesSince(ctx, a, sharedTestFiles, seenA)
	if !errors.Is(err, ErrFilesChanged) || !strings.Contains(err.Error(), "keys/vendor.pem") {
		t.Errorf("A's push of a key B stored meanwhile: %v, want ErrFilesChanged naming keys/vendor.pem", err)
	}
	if got := stored("keys/vendor.pem"); got != "KEY OF B" {
		t.Errorf("the store holds the vendor's key %q, want B's", got)
	}
	if got := stored("api-token"); got != "token-2" {
		t.Errorf("the store holds api-token %q after A's start, want the token B rotated to", got)
	}

	// Alone, A stores what it made and leaves what it did not change.
	os.Remove(filepath.Join(a, "keys/vendor.pem"))
	write(a, "keys/coordinator.pem", "KEY OF A")
	seenA2 := seenA
	if n, err := dbs[0].PushFilesSince(ctx, a, sharedTestFiles, seenA2); err != nil || n != 1 {
		t.Errorf("A's push of a key nobody else made = %d, %v; want 1", n, err)
	}
	if got := stored("keys/coordinator.pem"); got != "KEY OF A" {
		t.Errorf("the store holds the coordinator's key %q, want A's", got)
	}
}

var sharedTestFiles = []string{"keys", "api-token"}
