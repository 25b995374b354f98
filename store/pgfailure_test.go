package store

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
)

var failBucket = []byte("review")

// failIncr increments counter key in the review bucket.
func failIncr(key string) func(*Tx) error {
	return func(tx *Tx) error {
		b, err := tx.tx.CreateBucketIfNotExists(failBucket)
		if err != nil {
			return err
		}
		var n uint64
		if v := b.Get([]byte(key)); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return b.Put([]byte(key), binary.BigEndian.AppendUint64(nil, n+1))
	}
}

func failRead(t *testing.T, db *DB, key string) uint64 {
	t.Helper()
	var n uint64
	if err := db.View(context.Background(), func(tx *ReadTx) error {
		b := tx.tx.Bucket(failBucket)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(key)); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		return nil
	}); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return n
}

// lockHolderPID returns the pid of the session that holds advisory lock key, or 0.
func lockHolderPID(t *testing.T, admin *pgx.Conn, key int64) int32 {
	t.Helper()
	var pid int32
	err := admin.QueryRow(context.Background(), `SELECT coalesce((SELECT pid FROM pg_locks WHERE locktype = 'advisory'
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1 AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) LIMIT 1), 0)`, key).Scan(&pid)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func terminate(t *testing.T, admin *pgx.Conn, pid int32) {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(context.Background(), `SELECT pg_terminate_backend($1, 10000)`, pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate %d: %v %v", pid, ok, err)
	}
}

// TestAWriteWhoseConnectionEndsBeforeCommit: the connection of a write
// transaction is ended while the batch's functions run (before COMMIT),
// holding the writer lock; another process waits for the lock. Every
// member gets an error, nothing of theirs is committed, the other
// process's write goes through at once, and the next write of this
// process succeeds.
func TestAWriteWhoseConnectionEndsBeforeCommit(t *testing.T) {
	ctx := context.Background()
	dbs := openShared(t, 2, Options{DataKey: testKey(9)})
	a, b := dbs[0], dbs[1]
	if err := a.Update(ctx, failIncr("warm")); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, a.eng.(*pgEngine).cfg.ConnConfig.ConnString())

	inFn := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	first := make(chan error, 1)
	go func() {
		first <- a.Update(ctx, func(tx *Tx) error {
			if err := failIncr("x")(tx); err != nil {
				return err
			}
			once.Do(func() { close(inFn) })
			<-release
			return nil
		})
	}()
	<-inFn
	// A second member joins the batch (fill runs at the start of fn only,
	// so it would be in the next batch: good enough to check it too).
	second := make(chan error, 1)
	go func() { second <- a.Update(ctx, failIncr("y")) }()
	other := make(chan error, 1)
	start := time.Now()
	go func() { other <- b.Update(ctx, failIncr("z")) }()
	time.Sleep(200 * time.Millisecond)
	pid := lockHolderPID(t, admin, a.eng.(*pgEngine).locks.writer)
	if pid == 0 {
		t.Fatal("nobody holds the writer lock")
	}
	terminate(t, admin, pid)
	select {
	case err := <-other:
		t.Logf("other process's write after %v: %v", time.Since(start), err)
		if err != nil {
			t.Errorf("other process's write failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("other process's write still waits for the writer lock of a dead session")
	}
	close(release)
	err1 := <-first
	err2 := <-second
	t.Logf("member 1: %v", err1)
	t.Logf("member 2 (next batch): %v", err2)
	if err1 == nil {
		t.Error("the member whose connection was ended was told it committed")
	}
	if n := failRead(t, a, "x"); (err1 == nil) != (n == 1) {
		t.Errorf("x = %d but Update said %v", n, err1)
	}
	if n := failRead(t, a, "y"); (err2 == nil) != (n == 1) {
		t.Errorf("y = %d but Update said %v", n, err2)
	}
	if err := a.Update(ctx, failIncr("after")); err != nil {
		t.Errorf("next write after the lost connection: %v", err)
	}
}

// TestWritesRightAfterTheSessionsEnded: every session of the process is
// ended between two writes (a failover, a server restart). The next write
// does not fail: the pool still holds the dead connections (pgxpool pings
// only those idle over a second), and a write whose first round trip
// fails on one runs again on another, since nothing of it ran. Several
// writes in a row failed before.
func TestWritesRightAfterTheSessionsEnded(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db := backends[1].openURL(t, u, Options{DataKey: testKey(9)})
	admin := pgtest.Connect(t, u)
	// Several connections in the pool, used just now.
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			_ = db.View(ctx, func(tx *ReadTx) error { _, _ = tx.Case("w" + string(rune('a'+i))); return nil })
		})
	}
	wg.Wait()
	if err := db.Update(ctx, failIncr("warm")); err != nil {
		t.Fatal(err)
	}
	pgtest.EndOtherSessions(t, admin)
	var failed int
	for i := range 20 {
		err := db.Update(ctx, failIncr("k"))
		if err == nil {
			break
		}
		t.Logf("write %d: %v", i, err)
		failed++
	}
	if failed > 0 {
		t.Errorf("%d writes in a row right after the server ended the sessions failed, though none reached the server (k = %d, pool max %d)", failed, failRead(t, db, "k"), db.eng.(*pgEngine).cfg.MaxConns)
	}
}

// TestACommitWhoseAnswerIsLost: the connection is ended while COMMIT waits
// on the server after the transaction committed locally (here: a
// synchronous standby that never answers). The write is in the database,
// so its failure says that the outcome is unknown (ErrCommitUnknown), for
// a caller that would retry it; it said only "conn closed" before.
func TestACommitWhoseAnswerIsLost(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db, err := OpenURL(ctx, u, Options{DataKey: testKey(9)}) // not NoSync: it sets synchronous_commit per session
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(ctx, failIncr("n")); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, u)
	pu, _ := url.Parse(u)
	_ = err
	dbname := strings.TrimPrefix(pu.Path, "/")
	for _, q := range []string{`ALTER SYSTEM SET synchronous_standby_names = 'nobody'`, `SELECT pg_reload_conf()`,
		`ALTER DATABASE ` + dbname + ` SET synchronous_commit = on`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	defer func() {
		for _, q := range []string{`ALTER DATABASE ` + dbname + ` RESET synchronous_commit`, `ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
			_, _ = admin.Exec(ctx, q)
		}
	}()
	db.eng.(*pgEngine).pool.Reset() // new sessions take synchronous_commit = on
	time.Sleep(200 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- db.Update(ctx, failIncr("n")) }()
	var pid int32
	waitFor(t, 10*time.Second, "a COMMIT waiting for the standby", func() (bool, error) {
		err := admin.QueryRow(ctx, `SELECT coalesce((SELECT pid FROM pg_stat_activity WHERE wait_event = 'SyncRep' LIMIT 1), 0)`).Scan(&pid)
		return pid != 0, err
	})
	terminate(t, admin, pid)
	uerr := <-done
	for _, q := range []string{`ALTER DATABASE ` + dbname + ` RESET synchronous_commit`, `ALTER SYSTEM RESET synchronous_standby_names`, `SELECT pg_reload_conf()`} {
		_, _ = admin.Exec(ctx, q)
	}
	db.eng.(*pgEngine).pool.Reset()
	n := failRead(t, db, "n")
	t.Logf("Update: %v; n = %d", uerr, n)
	if uerr != nil && n == 2 && !errors.Is(uerr, ErrCommitUnknown) {
		t.Errorf("Update failed (%v) but its write is committed (n = %d), and nothing in the error says the outcome is unknown", uerr, n)
	}
	if uerr == nil && n != 2 {
		t.Errorf("Update succeeded but n = %d", n)
	}
}

// TestNoTwoLeadersWhenTheLeadersSessionEnds: the leader's session is
// ended by the server. Another process takes the lock within pgLockPoll,
// and leads only once the old leader's context is done (it did for up to
// two seconds before: two processes ran the timers and sweeps).
func TestNoTwoLeadersWhenTheLeadersSessionEnds(t *testing.T) {
	ctx := context.Background()
	dbs := openShared(t, 2, Options{})
	admin := pgtest.Connect(t, dbs[0].eng.(*pgEngine).cfg.ConnConfig.ConnString())
	lead0, stop0, err := dbs[0].Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop0()
	got := make(chan context.Context, 1)
	var stop1 func()
	go func() {
		lctx, stop, err := dbs[1].Lead(ctx)
		if err != nil {
			t.Error(err)
			return
		}
		stop1 = stop
		got <- lctx
	}()
	time.Sleep(300 * time.Millisecond)
	pid := lockHolderPID(t, admin, dbs[0].eng.(*pgEngine).locks.leader)
	if pid == 0 {
		t.Fatal("no leader session")
	}
	terminate(t, admin, pid)
	ended := time.Now()
	lead1 := <-got
	defer stop1()
	took := time.Since(ended)
	old := lead0.Err() == nil
	var overlap time.Duration
	if old {
		<-lead0.Done()
		overlap = time.Since(ended) - took
	}
	t.Logf("new leader after %v; old leader still leading then: %v; overlap %v", took, old, overlap)
	if old {
		t.Errorf("two leaders for %v: the new one leads %v after the old one's session ended, the old one's context ends only %v later", overlap, took, overlap)
	}
	_ = lead1
}

// TestCloseAfterTheSessionsEnded: every session of a process is ended
// while it leads, holds leases and writes; its Close returns promptly and
// leaves no goroutine behind.
func TestCloseAfterTheSessionsEnded(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	before := runtime.NumGoroutine()
	clock := newTestClock()
	db, err := OpenURL(ctx, u, Options{DataKey: testKey(9), NoSync: true, Now: clock.Now, LeaseTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, db, "coord")
	enqueue(t, db, "a1", DeliveryTarget{Recipient: inboxA})
	if due, err := db.DueDeliveries(ctx, clock.Now(), 10); err != nil || len(due) != 1 {
		t.Fatalf("claim: %v %v", due, err)
	}
	lctx, stop, err := db.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, u)
	writes := make(chan error, 1)
	go func() {
		var last error
		for range 50 {
			last = db.Update(ctx, failIncr("w"))
		}
		writes <- last
	}()
	time.Sleep(20 * time.Millisecond)
	pgtest.EndOtherSessions(t, admin)
	select {
	case <-lctx.Done():
	case <-time.After(5 * time.Second):
		t.Error("lead not lost 5 s after its session ended")
	}
	stop()
	t.Logf("last write: %v", <-writes)
	closed := make(chan error, 1)
	start := time.Now()
	go func() { closed <- db.Close() }()
	select {
	case err := <-closed:
		t.Logf("Close after %v: %v", time.Since(start), err)
	case <-time.After(15 * time.Second):
		t.Fatal("Close did not return within 15 s")
	}
	time.Sleep(500 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before+2 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Errorf("goroutines: %d before Open, %d after Close\n%s", before, after, buf[:n])
	}
}

// TestALeaseHolderSessionEnded: a process's lease holder session ends while
// it still runs and sends what it claimed. As documented, another process
// may take the lease and send it too; nothing is handed out a third time.
func TestALeaseHolderSessionEnded(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	dbs := openShared(t, 3, Options{Now: clock.Now, LeaseTTL: time.Hour})
	mustPutActor(t, dbs[0], "coord")
	enqueue(t, dbs[0], "a1", DeliveryTarget{Recipient: inboxA})
	due, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("claim: %v %v", due, err)
	}
	killHolderSession(t, dbs[1], dbs[0])
	start := time.Now()
	var got []Delivery
	waitFor(t, 10*time.Second, "another process to take the lease", func() (bool, error) {
		got, err = dbs[1].DueDeliveries(ctx, clock.Now(), 10)
		return len(got) > 0, err
	})
	t.Logf("process 1 took delivery %d %v after process 0's holder session ended, while process 0 still runs", got[0].ID, time.Since(start))
	// Process 0 claims again (its session is renewed with the same id).
	again, err := dbs[0].DueDeliveries(ctx, clock.Now(), 10)
	t.Logf("process 0 claims again: %v %v", again, err)
	third, err := dbs[2].DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || len(again)+len(third) != 0 {
		t.Errorf("delivery handed out a third time: p0 %v, p2 %v, %v", again, third, err)
	}
	// Process 0 completes its send; process 1 completes too.
	err0 := dbs[0].CompleteDelivery(ctx, due[0].ID)
	err1 := dbs[1].CompleteDelivery(ctx, got[0].ID)
	t.Logf("complete by p0: %v; by p1: %v", err0, err1)
}

// freezeProxy forwards TCP to target until frozen, then holds every byte
// without closing anything: a network partition, as the two ends see it.
type freezeProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	frozen bool
	wake   chan struct{}
}

func newFreezeProxy(t *testing.T, target string) *freezeProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezeProxy{ln: ln, wake: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	return p
}

func (p *freezeProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		if frozen {
			select {} // hold the bytes for ever, close nothing
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func (p *freezeProxy) freeze() { p.mu.Lock(); p.frozen = true; p.mu.Unlock() }

func viaProxy(t *testing.T, u string) (string, *freezeProxy) {
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	p := newFreezeProxy(t, pu.Host)
	pu.Host = p.ln.Addr().String()
	return pu.String(), p
}

// TestAWriterCutOffReleasesTheWriterLock: process A's write transaction
// holds the writer lock when its network stops answering (a proxy that
// holds every byte and closes nothing). The server ends A's session idle
// in its transaction (idle_in_transaction_session_timeout, 2 s here, a
// minute by default), so process B's write goes through; and A's Close
// returns, canceling the transaction that waits for an answer. Before,
// B waited as long as the server kept A's session (hours, with the
// system's keepalive) and A's Close never returned.
func TestAWriterCutOffReleasesTheWriterLock(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	pu, proxy := viaProxy(t, u)
	a, err := OpenURL(ctx, withQuery(t, pu, "idle_in_transaction_session_timeout", "2000"), Options{DataKey: testKey(9), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	b := backends[1].openURL(t, u, Options{DataKey: testKey(9)})
	if err := a.Update(ctx, failIncr("warm")); err != nil {
		t.Fatal(err)
	}
	_, release := blockedWrite(a, nil)
	proxy.freeze()
	release()
	other := make(chan error, 1)
	go func() { other <- b.Update(ctx, failIncr("z")) }()
	select {
	case err := <-other:
		t.Logf("B's write: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("B's write still waits 10 s after A was cut off holding the writer lock")
	}
	closeWithin(t, a, 20*time.Second)
	endSessions(t, u) // A's, which the server still has
}

// TestStopOfALeaderCutOff: a leader whose network is cut gives the lead up
// (stop, as the node does at shutdown): stop returns, and so does Close;
// stop waited for ever before.
func TestStopOfALeaderCutOff(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	pu, proxy := viaProxy(t, u)
	db, err := OpenURL(ctx, pu, Options{DataKey: testKey(9), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	_, stop, err := db.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxy.freeze()
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("stop of a lead whose network is cut has not returned after 10 s")
	}
	closeWithin(t, db, 20*time.Second)
	endSessions(t, u)
}

// TestAnotherProcessLeadsWhenTheLeaderIsCutOff: the leader's network is
// cut. It stops leading when its check fails; the server ends its silent
// session after pgLeaderIdle (idle_session_timeout), and another process
// leads. Nobody led for hours before (the server kept the session).
func TestAnotherProcessLeadsWhenTheLeaderIsCutOff(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	pu, proxy := viaProxy(t, u)
	a, err := OpenURL(ctx, pu, Options{DataKey: testKey(9), NoSync: true}) // closed by the cleanup below, through the cut
	if err != nil {
		t.Fatal(err)
	}
	b := backends[1].openURL(t, u, Options{DataKey: testKey(9)})
	lctxA, _, err := a.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	proxy.freeze()
	start := time.Now()
	select {
	case <-lctxA.Done():
		t.Logf("A stopped leading %v after the cut", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Error("A still leads 10 s after its network was cut")
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	_, stopB, err := b.Lead(wctx)
	if err != nil {
		t.Errorf("no process leads %v after the leader was cut off (A gave up the lead long ago): %v", time.Since(start), err)
	} else {
		t.Logf("B leads %v after the cut", time.Since(start))
		stopB()
	}
	admin, err := pgx.Connect(ctx, u)
	if err == nil {
		pgtest.EndOtherSessions(t, admin)
		admin.Close(ctx)
	}
}

// withQuery returns the store URL u with the query parameter name=value.
func withQuery(t *testing.T, u, name, value string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	q.Set(name, value)
	pu.RawQuery = q.Encode()
	return pu.String()
}

// TestALostConnectionIsNotAStatementsError: a write is run again only when
// its first round trip failed on a connection that is gone; a scan error,
// or no row, on a live one is the write's own failure (it was run ten
// more times before).
func TestALostConnectionIsNotAStatementsError(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, err := range []error{pgx.ErrNoRows, errors.New("can't scan into dest[0]")} {
		if lostConnection(conn.PgConn(), err) {
			t.Errorf("lostConnection(%q) on a live connection = true: the write would run again up to %d times", err, pgRetries)
		}
	}
	conn.Close(ctx)
	if !lostConnection(conn.PgConn(), errors.New("unexpected EOF")) {
		t.Error("an error on a closed connection is not a lost connection")
	}
}

// TestSessionSettingsOfTheURLWin: the store's session defaults (a minute
// idle in a transaction, keepalives) give way to what the store URL sets,
// as a parameter or in options=-c, and are set after connecting rather
// than sent at start-up (which PgBouncer refuses for parameters it does
// not know). The defaults won over options=-c before.
func TestSessionSettingsOfTheURLWin(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	for _, tc := range []struct {
		name, url, want string
	}{
		{"the defaults", u, "1min"},
		{"options=-c", u + querySep(u) + "options=-c%20idle_in_transaction_session_timeout%3D0", "0"},
		{"a parameter", withQuery(t, u, "idle_in_transaction_session_timeout", "2000"), "2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := OpenURL(ctx, tc.url, Options{DataKey: testKey(9), NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var v, idle string
			if err := db.eng.(*pgEngine).pool.QueryRow(ctx, "SELECT current_setting('idle_in_transaction_session_timeout'), current_setting('tcp_keepalives_idle')").Scan(&v, &idle); err != nil {
				t.Fatal(err)
			}
			if v != tc.want {
				t.Errorf("idle_in_transaction_session_timeout = %s, want %s", v, tc.want)
			}
			if _, set := db.eng.(*pgEngine).cfg.ConnConfig.RuntimeParams["idle_in_transaction_session_timeout"]; set && tc.name == "the defaults" {
				t.Error("the default is sent at start-up")
			}
			_ = idle // 0 on a Unix socket, where the server ignores it
		})
	}
}

// TestAWriteThatFailsAfterTheCutEnds: a batch member's fn fails, without a
// round trip, after the network is cut: the transaction's rollback waited
// for the server for ever, and so did Update and Close.
func TestAWriteThatFailsAfterTheCutEnds(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	pu, proxy := viaProxy(t, u)
	a, err := OpenURL(ctx, pu, Options{DataKey: testKey(9), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(ctx, failIncr("warm")); err != nil {
		t.Fatal(err)
	}
	upd, release := blockedWrite(a, errors.New("refused by the request")) // no round trip
	proxy.freeze()
	release()
	select {
	case err := <-upd:
		t.Logf("Update: %v", err)
	case <-time.After(10 * time.Second):
		t.Error("Update whose fn failed after the cut has not returned after 10 s")
	}
	closeWithin(t, a, 20*time.Second)
	endSessions(t, u)
}

// TestALeaderKeepsItsLead: a lone leader on a healthy server keeps its
// lead: the server's idle_session_timeout (pgLeaderIdle) does not end its
// session between the lock and its first check (it did, at 6.5 s, every
// lead).
func TestALeaderKeepsItsLead(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db, err := OpenURL(ctx, u, Options{DataKey: testKey(9), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	lctx, stop, err := db.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	t.Logf("leads after %v", time.Since(start))
	select {
	case <-lctx.Done():
		t.Errorf("the lead ended by itself %v after Lead was called, on a healthy server", time.Since(start))
	case <-time.After(12 * time.Second):
	}
}

// querySep is what joins a query parameter to the URL u.
func querySep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}

// blockedWrite starts a write to db whose function increments "x" and then
// waits, and returns once it waits: release lets it return result, and
// done receives the write's outcome.
func blockedWrite(db *DB, result error) (done <-chan error, release func()) {
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ch := make(chan error, 1)
	go func() {
		ch <- db.Update(context.Background(), func(tx *Tx) error {
			if err := failIncr("x")(tx); err != nil {
				return err
			}
			once.Do(func() { close(in) })
			<-out
			return result
		})
	}()
	<-in
	return ch, func() { close(out) }
}

// closeWithin closes db and fails the test if Close takes longer than d.
func closeWithin(t *testing.T, db *DB, d time.Duration) {
	t.Helper()
	closed := make(chan error, 1)
	go func() { closed <- db.Close() }()
	select {
	case <-closed:
	case <-time.After(d):
		t.Errorf("Close of a store cut off from its database has not returned after %v", d)
	}
}

// endSessions ends the sessions of the database at u other than its own,
// as the server would once it noticed a client that is gone, so that the
// test ends.
func endSessions(t *testing.T, u string) {
	t.Helper()
	admin, err := pgx.Connect(context.Background(), u)
	if err != nil {
		return
	}
	defer admin.Close(context.Background())
	pgtest.EndOtherSessions(t, admin)
}
