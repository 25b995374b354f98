package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/problem"
)

// TestUnavailableErrors: the failures of an engine that pass once the
// machine or the database is set right are ErrUnavailable, answered 503
// (or 507 when the store is full) with a sentence that says why and
// Retry-After; every other failure stays an internal error.
func TestUnavailableErrors(t *testing.T) {
	live := context.Background()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	pathErr := func(errno syscall.Errno) error {
		return fmt.Errorf("bolt commit: %w", &fs.PathError{Op: "write", Path: "/d/vultron.db", Err: errno})
	}
	pgErr := func(code string) error { return fmt.Errorf("take the writer lock: %w", &pgconn.PgError{Code: code}) }
	tests := []struct {
		name   string
		ctx    context.Context
		err    error
		status int    // 0: not unavailable
		says   string // in the sentence
	}{
		{"disk full", live, pathErr(syscall.ENOSPC), http.StatusInsufficientStorage, "the node's disk is full"},
		{"quota", live, pathErr(syscall.EDQUOT), http.StatusInsufficientStorage, "the node's disk is full"},
		{"file size limit", live, pathErr(syscall.EFBIG), http.StatusInsufficientStorage, "file size limit"},
		{"database disk full", live, pgErr("53100"), http.StatusInsufficientStorage, "the database's disk is full"},
		{"read-only database", live, pgErr("25006"), http.StatusServiceUnavailable, "read-only"},
		{"too many connections", live, pgErr("53300"), http.StatusServiceUnavailable, "refuses more connections"},
		{"password", live, pgErr("28P01"), http.StatusServiceUnavailable, "credentials"},
		{"shutting down", live, pgErr("57P03"), http.StatusServiceUnavailable, "starting or shutting down"},
		{"session terminated", live, pgErr("57P01"), http.StatusServiceUnavailable, "ended the connection"},
		{"role's statement timeout", live, pgErr("57014"), http.StatusServiceUnavailable, "timeout set for the node's role"},
		{"role's lock timeout", live, pgErr("55P03"), http.StatusServiceUnavailable, "timeout set for the node's role"},
		{"connect", live, fmt.Errorf("acquire: %w", &pgconn.ConnectError{}), http.StatusServiceUnavailable, "cannot be reached"},
		{"connection reset", live, fmt.Errorf("read: %w", &netOpError{}), http.StatusServiceUnavailable, "does not answer"},
		// Not the database's doing, or not passing by itself.
		{"statement cancelled by the caller", ended, pgErr("57014"), 0, ""},
		{"the caller's deadline", ended, fmt.Errorf("view: %w", context.DeadlineExceeded), 0, ""},
		{"a protocol violation", live, pgErr("08P01"), 0, ""},
		{"a configuration limit", live, pgErr("53400"), 0, ""},
		{"an I/O error of the disk", live, pathErr(syscall.EIO), 0, ""},
		{"a unique violation", live, pgErr("23505"), 0, ""},
		{"not found", live, ErrNotFound, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := unavailable(tt.ctx, tt.err)
			if !errors.Is(err, tt.err) {
				t.Errorf("%v does not wrap %v", err, tt.err)
			}
			if tt.status == 0 {
				if errors.Is(err, ErrUnavailable) || problem.Status(err) != http.StatusInternalServerError {
					t.Errorf("%v: unavailable (status %d), want an internal error", err, problem.Status(err))
				}
				return
			}
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%v is not ErrUnavailable", err)
			}
			rec := httptest.NewRecorder()
			problem.Write(rec, fmt.Errorf("jsonapi: %w", err))
			if rec.Code != tt.status || !strings.Contains(rec.Body.String(), tt.says) || !strings.Contains(rec.Body.String(), "nothing was stored") || rec.Header().Get("Retry-After") == "" {
				t.Errorf("answered %d %s (Retry-After %q), want %d saying %q, that nothing was stored, and when to try again",
					rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"), tt.status, tt.says)
			}
		})
	}
}

// netOpError is a connection's failure, as pgx returns it when the
// server's connection is reset.
type netOpError struct{}

func (*netOpError) Error() string   { return "read tcp 127.0.0.1:5432: connection reset by peer" }
func (*netOpError) Timeout() bool   { return false }
func (*netOpError) Temporary() bool { return false }

// TestAReadOnlyDatabase: a database that turned read-only (a standby
// after a failover) fails every write with ErrUnavailable, which says so,
// while reads go on; the episode is logged when it begins and when it
// ends, not once per write; writes succeed again once the database takes
// them, with nothing else to do.
func TestAReadOnlyDatabase(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	var logs bytes.Buffer
	db := backends[1].openURL(t, u, Options{DataKey: testKey(9), Logger: zerolog.New(&logs)})
	admin := pgtest.Connect(t, u)
	if err := db.Update(ctx, failIncr("k")); err != nil {
		t.Fatal(err)
	}
	pgtest.AlterDatabase(t, admin, `SET default_transaction_read_only = on`)
	for i := range 20 {
		err := db.Update(ctx, failIncr("k"))
		if !errors.Is(err, ErrUnavailable) || problem.Status(err) != http.StatusServiceUnavailable || !strings.Contains(problem.Message(err), "read-only") {
			t.Fatalf("write %d to a read-only database: %v (status %d, %q), want ErrUnavailable, 503, saying the database is read-only",
				i, err, problem.Status(err), problem.Message(err))
		}
		if !db.WritesFailing() {
			t.Fatalf("write %d failed, and WritesFailing is false", i)
		}
	}
	if n := failRead(t, db, "k"); n != 1 {
		t.Errorf("read from the read-only database: k = %d, want 1", n)
	}
	pgtest.AlterDatabase(t, admin, `RESET default_transaction_read_only`)
	if err := db.Update(ctx, failIncr("k")); err != nil {
		t.Fatalf("write once the database is writable again: %v", err)
	}
	if db.WritesFailing() {
		t.Error("WritesFailing after a write succeeded")
	}
	if got := strings.Count(logs.String(), "store: commit failed"); got != 1 {
		t.Errorf("%d lines say a commit failed for 20 failed writes, want 1:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), `"failed_commits":20`) || !strings.Contains(logs.String(), "commits succeed again") {
		t.Errorf("no line says that writes succeed again after 20 failed commits:\n%s", logs.String())
	}
}

// TestTimeoutsOfTheDatabaseDoNotCancelTheWriterLock: a statement_timeout
// or lock_timeout set on the role or the database (a DBA's guard against
// runaway queries) does not cancel a write's wait for the writer lock,
// which every process takes in turn and which can be held longer than
// either while another process commits a batch.
func TestTimeoutsOfTheDatabaseDoNotCancelTheWriterLock(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db := backends[1].openURL(t, u, Options{DataKey: testKey(9)})
	admin := pgtest.Connect(t, u)
	pgtest.AlterDatabase(t, admin, `SET lock_timeout = '50ms'`)
	pgtest.AlterDatabase(t, admin, `SET statement_timeout = '100ms'`)
	// The admin session started before: it has neither timeout.
	holder, writer := holdWriterLock(t, admin, db)
	done := make(chan error, 1)
	go func() { done <- db.Update(ctx, failIncr("k")) }()
	// Held while the write waits, past both timeouts, as another
	// process's batch would hold it.
	waitFor(t, 10*time.Second, "the write waits for the writer lock", func() (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("the write ended while the lock was held: %v", err)
		default:
		}
		return lockWaiters(t, admin, writer) > 0, nil
	})
	hold := time.NewTimer(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("the write ended while another session held the writer lock: %v", err)
	case <-hold.C:
	}
	if err := holder.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the write that waited for the writer lock failed: %v", err)
	}
	if n := failRead(t, db, "k"); n != 1 {
		t.Errorf("k = %d after the write, want 1", n)
	}
}

// TestTheDatabasesTimeoutsHoldAfterTheWriterLock: the timeouts of the
// role or the database set aside for the wait for the writer lock are in
// force again for the transaction's own statements, with the values they
// were set to, and the server's transaction_timeout (PostgreSQL 17) is
// left as the server has it.
func TestTheDatabasesTimeoutsHoldAfterTheWriterLock(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	admin := pgtest.Connect(t, u)
	pgtest.AlterDatabase(t, admin, `SET lock_timeout = '4s'`)
	pgtest.AlterDatabase(t, admin, `SET statement_timeout = '5s'`)
	db := backends[1].openURL(t, u, Options{})
	var before, after struct{ statement, lock, transaction *string }
	read := `SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('transaction_timeout', true)`
	if err := admin.QueryRow(ctx, `SELECT current_setting('transaction_timeout', true)`).Scan(&before.transaction); err != nil {
		t.Fatal(err)
	}
	err := db.Update(ctx, func(tx *Tx) error {
		pt := tx.tx.(*pgTx)
		return pt.tx.QueryRow(pt.ctx, read).Scan(&after.statement, &after.lock, &after.transaction)
	})
	if err != nil {
		t.Fatal(err)
	}
	if after.statement == nil || *after.statement != "5s" || after.lock == nil || *after.lock != "4s" {
		t.Errorf("after the writer lock: statement_timeout %v, lock_timeout %v; want the database's 5s and 4s", deref(after.statement), deref(after.lock))
	}
	if deref(after.transaction) != deref(before.transaction) {
		t.Errorf("after the writer lock: transaction_timeout %q, want the server's %q", deref(after.transaction), deref(before.transaction))
	}
}

func deref(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

// lockWaiters counts the sessions that wait for advisory lock key.
func lockWaiters(t *testing.T, admin *pgx.Conn, key int64) int {
	t.Helper()
	var n int
	err := admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'
		AND classid = (($1::bigint >> 32) & 4294967295)::oid AND objid = ($1::bigint & 4294967295)::oid AND objsubid = 1 AND NOT granted`, key).Scan(&n)
	if err != nil {
		t.Fatalf("read pg_locks: %v", err)
	}
	return n
}

// errEngine fails every update with the error err holds, after running
// its function, until err is nil.
type errEngine struct {
	engine
	err *atomic.Pointer[error]
}

func (e errEngine) update(ctx context.Context, fn func(kvTx) error) error {
	return e.engine.update(ctx, func(tx kvTx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if p := e.err.Load(); p != nil {
			return *p
		}
		return nil
	})
}

// TestOnlyFailuresThatPassAreLoggedOnceAMinute: the committer holds back
// the lines of a full disk's failures for a minute, but not those of a
// failure that does not pass by itself (an I/O error of a failing disk),
// even right after a full disk's episode.
func TestOnlyFailuresThatPassAreLoggedOnceAMinute(t *testing.T) {
	var logs bytes.Buffer
	db := openTestDB(t, Options{Logger: zerolog.New(&logs)})
	var cur atomic.Pointer[error]
	db.eng = errEngine{engine: db.eng, err: &cur}
	fail := func(errno syscall.Errno, n int) {
		t.Helper()
		err := fmt.Errorf("bolt: %w", &fs.PathError{Op: "write", Path: "vultron.db", Err: errno})
		cur.Store(&err)
		for range n {
			if db.Update(context.Background(), failIncr("k")) == nil {
				t.Fatalf("a write succeeded while commits fail with %v", errno)
			}
		}
		cur.Store(nil)
		if err := db.Update(context.Background(), failIncr("k")); err != nil {
			t.Fatal(err)
		}
	}
	fail(syscall.ENOSPC, 5)
	fail(syscall.EIO, 5)
	if got := strings.Count(logs.String(), `"error":"store: the node's disk is full: bolt: write vultron.db: no space left on device"`); got != 1 {
		t.Errorf("%d lines for five commits failed on a full disk, want 1:\n%s", got, logs.String())
	}
	if got := strings.Count(logs.String(), `"error":"bolt: write vultron.db: input/output error"`); got != 5 {
		t.Errorf("%d lines for five commits failed with an I/O error, want 5:\n%s", got, logs.String())
	}
}

// TestReadAgainOnlyOnAnEndedConnection: a point read is made again when
// the server had ended its connection, not for a protocol violation on a
// live one (a bug, which would fail the same way ten times), nor once the
// caller's context ended.
func TestReadAgainOnlyOnAnEndedConnection(t *testing.T) {
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tt := range []struct {
		ctx  context.Context
		code string
		want bool
	}{
		{context.Background(), "57P01", true},
		{context.Background(), "08006", true},
		{context.Background(), "08P01", false},
		{context.Background(), "23505", false},
		{ended, "57P01", false},
	} {
		if got := readAgain(tt.ctx, fmt.Errorf("get: %w", &pgconn.PgError{Code: tt.code})); got != tt.want {
			t.Errorf("readAgain(%s, ctx ended %v) = %v, want %v", tt.code, tt.ctx.Err() != nil, got, tt.want)
		}
	}
	// What pgx says of a pooled connection the server had closed, found
	// as it cleans up the statements it cached.
	closed := fmt.Errorf("failed to deallocate cached statement(s): %w", pgconn.ErrConnClosed)
	if !readAgain(context.Background(), closed) {
		t.Errorf("readAgain(%v) = false, want true", closed)
	}
	if err := unavailable(context.Background(), closed); !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v is not ErrUnavailable", err)
	}
	if readAgain(context.Background(), errors.New("scan: cannot decode")) {
		t.Error("readAgain retries an error of a live connection")
	}
}

// TestTimeoutsOfTheDatabaseDoNotFailAStartDuringAMigration: a process that
// starts while another migrates the tables waits for the migration lock
// however long the migration takes, whatever statement_timeout or
// lock_timeout the role or the database sets; it failed to start after
// the timeout before.
func TestTimeoutsOfTheDatabaseDoNotFailAStartDuringAMigration(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	admin := pgtest.Connect(t, u)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	migrate := pgLocksOf(pu.Query().Get("search_path")).migrate
	pgtest.AlterDatabase(t, admin, `SET lock_timeout = '50ms'`)
	pgtest.AlterDatabase(t, admin, `SET statement_timeout = '100ms'`)
	// Another process's migration, as long as this test holds its lock.
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrate); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		db  *DB
		err error
	}
	done := make(chan opened, 1)
	go func() {
		db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)})
		done <- opened{db, err}
	}()
	hold := time.NewTimer(500 * time.Millisecond) // five statement timeouts
	select {
	case o := <-done:
		if o.db != nil {
			o.db.Close()
		}
		t.Fatalf("the start ended while another process migrated: %v", o.err)
	case <-hold.C:
	}
	if _, err := admin.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrate); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("the start that waited for the migration failed: %v", o.err)
	}
	defer o.db.Close()
	if err := o.db.Update(ctx, failIncr("k")); err != nil {
		t.Fatal(err)
	}
}

// TestAMigrationStoppedByATimeoutSaysWhatToDo: a migration that waits for
// another transaction's lock on a table longer than the database's
// lock_timeout fails, and says which setting stopped it and how to run it.
func TestAMigrationStoppedByATimeoutSaysWhatToDo(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	admin := pgtest.Connect(t, u)
	// Tables at version 1, as an older binary left them.
	for _, q := range []string{`CREATE TABLE vultron_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
		pgMigrations[1], `INSERT INTO vultron_schema_migrations (version) VALUES (1)`} {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	pgtest.AlterDatabase(t, admin, `SET lock_timeout = '50ms'`)
	// A process of the older binary reads the table, in a transaction.
	reader, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Rollback(ctx)
	if _, err := reader.Exec(ctx, `SELECT count(*) FROM vultron_kv`); err != nil {
		t.Fatal(err)
	}
	db, err := OpenURL(ctx, u, Options{NoSync: true, DataKey: testKey(9)})
	if err == nil {
		db.Close()
		t.Fatal("the migration went through while another transaction held its table")
	}
	for _, want := range []string{"tables to version 2", "lock_timeout", "PGOPTIONS='-c statement_timeout=0 -c lock_timeout=0'"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// unansweredEngine is an engine whose writes are never answered: an
// update waits until its context ends, then fails with what fail makes
// of it.
type unansweredEngine struct {
	engine
	fail func(ctx context.Context) error
}

func (e unansweredEngine) update(ctx context.Context, _ func(kvTx) error) error {
	<-ctx.Done()
	return e.fail(ctx)
}

// TestAWriteTheStoreDoesNotAnswer: a write that the database does not
// answer within the committer's bound fails as a store that did not
// answer (503, saying how long it waited, as a duration is typed), but a
// write whose COMMIT went unanswered fails with ErrCommitUnknown: it may
// have taken effect, and a 503 would tell the client that nothing was
// stored and to send it again (a second activity, when it was stored).
func TestAWriteTheStoreDoesNotAnswer(t *testing.T) {
	tests := []struct {
		name  string
		fail  func(ctx context.Context) error
		check func(t *testing.T, err error)
	}{
		{"nothing answered", func(ctx context.Context) error { return fmt.Errorf("begin on test: %w", ctx.Err()) },
			func(t *testing.T, err error) {
				if !errors.Is(err, ErrUnavailable) || !strings.Contains(problem.Message(err), "the store did not answer within 50ms") {
					t.Errorf("Update: %v, answered %d %q; want a store that did not answer within 50ms", err, problem.Status(err), problem.Message(err))
				}
			}},
		{"the COMMIT unanswered", func(ctx context.Context) error {
			return fmt.Errorf("commit on test: %w (%v)", ErrCommitUnknown, ctx.Err())
		}, func(t *testing.T, err error) {
			if !errors.Is(err, ErrCommitUnknown) || errors.Is(err, ErrUnavailable) || strings.Contains(problem.Message(err), "nothing was stored") {
				t.Errorf("Update: %v, answered %d %q; want ErrCommitUnknown, not a store that stored nothing",
					err, problem.Status(err), problem.Message(err))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestDB(t, Options{})
			db.commitTimeout = 50 * time.Millisecond
			eng := db.eng
			db.eng = unansweredEngine{engine: eng, fail: tt.fail}
			err := db.Update(context.Background(), failIncr("k"))
			db.eng = eng
			tt.check(t, err)
		})
	}
}

// TestAWriteCanceledByCloseIsTheStoreClosing: a write that waits for the
// writer lock (another process holds it) when Close begins is canceled
// once Close has waited closeGrace: it fails as a write of a store that
// is closing (ErrClosed, 503 with Retry-After: nothing of it was stored,
// and the node's other process, or this one restarted, takes it), not as
// an internal error, which a client of the API reads as final.
func TestAWriteCanceledByCloseIsTheStoreClosing(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db, err := OpenURL(ctx, u, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, u)
	_, writer := holdWriterLock(t, admin, db)
	done := make(chan error, 1)
	go func() { done <- db.Update(ctx, failIncr("k")) }()
	waitFor(t, 10*time.Second, "the write waits for the writer lock", func() (bool, error) {
		return lockWaiters(t, admin, writer) > 0, nil
	})
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	err = <-done
	if !errors.Is(err, ErrClosed) || problem.Status(err) != http.StatusServiceUnavailable || problem.RetryAfter(err) == 0 {
		t.Errorf("the write Close canceled: %v, answered %d (Retry-After %s), want ErrClosed, 503 with Retry-After",
			err, problem.Status(err), problem.RetryAfter(err))
	}
}

// TestACheckTheDatabaseCannotAnswerIsNotDamage: a check of a store on
// PostgreSQL whose queries the database does not answer (here one waits
// for a table another session locks, past the lock_timeout set for the
// database) fails as a check that could not be made, with the database's
// reason (ErrUnavailable), not as a damaged store to restore from a
// backup, which is what the check reported.
func TestACheckTheDatabaseCannotAnswerIsNotDamage(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	db := backends[1].openURL(t, u, Options{})
	if err := db.Update(ctx, failIncr("k")); err != nil {
		t.Fatal(err)
	}
	admin := pgtest.Connect(t, u)
	pgtest.AlterDatabase(t, admin, `SET lock_timeout = '100ms'`)
	t.Cleanup(func() { pgtest.AlterDatabase(t, admin, `RESET lock_timeout`) })
	holder, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(ctx, `LOCK TABLE vultron_kv IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	err = db.Check(ctx)
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if err == nil || errors.Is(err, ErrDamaged) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Check while the database cannot answer: %v; want ErrUnavailable, not ErrDamaged", err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check once the database answers: %v", err)
	}
}
