package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blockCommitter starts a write whose function waits until release is
// closed, so that requests queued meanwhile form one batch. It returns the
// channel that carries the blocking write's result.
func blockCommitter(t *testing.T, db *DB) (release chan struct{}, result chan error) {
	t.Helper()
	release = make(chan struct{})
	started := make(chan struct{})
	result = make(chan error, 1)
	var once sync.Once
	go func() {
		result <- db.Update(context.Background(), func(tx *Tx) error {
			once.Do(func() { close(started) })
			<-release
			return nil
		})
	}()
	<-started
	return release, result
}

// waitQueued waits until n requests wait in the committer queue.
func waitQueued(t *testing.T, db *DB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(db.reqs) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests queued, want %d", len(db.reqs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGroupCommitFailingRequestDoesNotBlockOthers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		release, blocked := blockCommitter(t, db)

		errBoom := errors.New("boom")
		type outcome struct {
			key string
			err error
		}
		kinds := []string{"ok1", "fail", "ok2", "panic", "ok3"}
		var calls [5]atomic.Int32
		results := make(chan outcome, len(kinds))
		for i, kind := range kinds {
			go func() {
				err := db.Update(ctx, func(tx *Tx) error {
					calls[i].Add(1)
					c, err := tx.Case("case-1")
					if err != nil {
						return err
					}
					if err := c.Put([]byte(kind), []byte("written")); err != nil {
						return err
					}
					switch kind {
					case "fail":
						return errBoom
					case "panic":
						panic("bad write function")
					}
					return nil
				})
				results <- outcome{kind, err}
			}()
			waitQueued(t, db, i+1) // keep the queue order fixed
		}
		close(release)
		if err := <-blocked; err != nil {
			t.Fatalf("blocking write: %v", err)
		}

		for range kinds {
			o := <-results
			switch o.key {
			case "fail":
				if !errors.Is(o.err, errBoom) {
					t.Errorf("failing request returned %v, want its own error", o.err)
				}
			case "panic":
				if o.err == nil || !strings.Contains(o.err.Error(), "panicked") {
					t.Errorf("panicking request returned %v, want a panic error", o.err)
				}
			default:
				if o.err != nil {
					t.Errorf("request %s returned %v, want nil", o.key, o.err)
				}
			}
		}
		// The batch ran once with the failing request, once with the
		// panicking one, and committed on the third run: requests before a
		// failure rerun.
		if got := calls[0].Load(); got != 3 {
			t.Errorf("first request ran %d times, want 3 (it shared a batch with the failures)", got)
		}
		err := db.View(ctx, func(tx *ReadTx) error {
			c, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			for _, kind := range kinds {
				got := c.Get([]byte(kind))
				wantStored := strings.HasPrefix(kind, "ok")
				if (got != nil) != wantStored {
					t.Errorf("key %s stored = %v, want %v", kind, got != nil, wantStored)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestUpdateCancelledWhileQueued(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		release, blocked := blockCommitter(t, db)

		ctx, cancel := context.WithCancel(context.Background())
		var ran atomic.Bool
		done := make(chan error, 1)
		go func() {
			done <- db.Update(ctx, func(tx *Tx) error {
				ran.Store(true)
				return nil
			})
		}()
		waitQueued(t, db, 1)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Update = %v, want context.Canceled", err)
		}
		close(release)
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		// A later write goes through the committer after the cancelled one.
		if err := db.Update(context.Background(), func(*Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if ran.Load() {
			t.Error("cancelled request's function ran")
		}
	})
}

func TestLoneWriterCommitsWithoutDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		const n = 50
		start := time.Now()
		for i := range n {
			if err := db.Update(ctx, func(tx *Tx) error {
				c, err := tx.Case("c")
				if err != nil {
					return err
				}
				_, err = c.Append([]byte{byte(i)})
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		// A timer-based batcher (bbolt's Batch: 10 ms) would need 500 ms.
		if elapsed := time.Since(start); elapsed > 250*time.Millisecond {
			t.Errorf("%d sequential writes took %s; a lone writer must not wait for a timer", n, elapsed)
		}
	})
}

func TestCloseWaitsForQueuedWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		release, blocked := blockCommitter(t, db)
		const n = 10
		results := make(chan error, n)
		for i := range n {
			go func() {
				results <- db.Update(context.Background(), func(tx *Tx) error {
					c, err := tx.Case("c")
					if err != nil {
						return err
					}
					return c.Put([]byte{byte(i)}, []byte("v"))
				})
			}()
		}
		waitQueued(t, db, n)
		closed := make(chan error, 1)
		go func() { closed <- db.Close() }()
		// Close must not finish while writes are queued.
		select {
		case err := <-closed:
			t.Fatalf("Close returned %v before queued writes committed", err)
		case <-time.After(50 * time.Millisecond):
		}
		close(release)
		if err := <-blocked; err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-results; err != nil {
				t.Errorf("queued write: %v", err)
			}
		}
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}

		db, err = OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		got := 0
		if err := db.View(context.Background(), func(tx *ReadTx) error {
			c, err := tx.Case("c")
			if err != nil {
				return err
			}
			return c.ForEach(func(k, v []byte) error { got++; return nil })
		}); err != nil {
			t.Fatal(err)
		}
		if got != n {
			t.Errorf("%d writes stored after Close, want %d", got, n)
		}
	})
}

// TestChangedAfterCommit checks that Changed's channel is closed by the
// next durable write and not before.
func TestChangedAfterCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{NoSync: true})
		ch := db.Changed()
		select {
		case <-ch:
			t.Fatal("Changed fired before any write")
		default:
		}
		if err := db.Update(t.Context(), func(tx *Tx) error {
			_, err := tx.Case("https://v.example/cases/1")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Second):
			t.Fatal("Changed did not fire after a commit")
		}
		if next := db.Changed(); next == ch {
			t.Error("Changed returned the closed channel again")
		}
	})
}

// putCase returns a write function that stores value under key in case
// bucket "c".
func putCase(key, value string) func(*Tx) error {
	return func(tx *Tx) error {
		c, err := tx.Case("c")
		if err != nil {
			return err
		}
		return c.Put([]byte(key), []byte(value))
	}
}

// caseValue reads key of case bucket "c", or "" when absent.
func caseValue(t *testing.T, db *DB, key string) string {
	t.Helper()
	var v string
	if err := db.View(context.Background(), func(tx *ReadTx) error {
		c, err := tx.Case("c")
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		v = string(c.Get([]byte(key)))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDeferredWriteCommitsAloneAfterDelay(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{DeferDelay: 20 * time.Millisecond})
		before := db.Commits()
		done := make(chan error, 1)
		start := time.Now()
		if err := db.UpdateDeferred(putCase("k", "v"), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("deferred write: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a lone deferred write never committed")
		}
		if waited := time.Since(start); waited < 20*time.Millisecond {
			t.Errorf("a lone deferred write committed after %s, before its delay of 20ms", waited)
		}
		if got := caseValue(t, db, "k"); got != "v" {
			t.Errorf("stored %q, want v", got)
		}
		if n := db.Commits() - before; n != 1 {
			t.Errorf("%d commits, want 1", n)
		}
	})
}

func TestDeferredWritesRideOnTheNextCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		// With an hour's delay, only another write can commit them.
		db := be.open(t, Options{DeferDelay: time.Hour})
		before := db.Commits()
		var outcomes sync.WaitGroup
		var failed atomic.Int32
		for i := range 5 {
			outcomes.Add(1)
			if err := db.UpdateDeferred(putCase("d"+string(rune('0'+i)), "v"), func(err error) {
				if err != nil {
					failed.Add(1)
				}
				outcomes.Done()
			}); err != nil {
				t.Fatal(err)
			}
		}
		// One deferred write fails: it gets its error, the others still commit.
		bad := errors.New("refused")
		badDone := make(chan error, 1)
		if err := db.UpdateDeferred(func(tx *Tx) error { return bad }, func(err error) { badDone <- err }); err != nil {
			t.Fatal(err)
		}
		if got := caseValue(t, db, "d0"); got != "" {
			t.Fatalf("a deferred write was stored before any other write: %q", got)
		}
		if err := db.Update(context.Background(), putCase("k", "v")); err != nil {
			t.Fatal(err)
		}
		outcomes.Wait()
		if n := failed.Load(); n != 0 {
			t.Errorf("%d deferred writes failed", n)
		}
		if err := <-badDone; !errors.Is(err, bad) {
			t.Errorf("failing deferred write got %v, want its own error", err)
		}
		for i := range 5 {
			if got := caseValue(t, db, "d"+string(rune('0'+i))); got != "v" {
				t.Errorf("deferred write %d: stored %q, want v", i, got)
			}
		}
		// The batch was retried once without the failing write: at most two
		// transactions ran, one of them committed.
		if n := db.Commits() - before; n != 1 {
			t.Errorf("%d commits for one ordinary and five deferred writes, want 1", n)
		}
	})
}

func TestCloseCommitsDeferredWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{NoSync: true, DeferDelay: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if err := db.UpdateDeferred(putCase("k", "v"), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("deferred write at Close: %v", err)
		}
		if err := db.UpdateDeferred(putCase("k2", "v"), nil); !errors.Is(err, ErrClosed) {
			t.Errorf("UpdateDeferred after Close: %v, want ErrClosed", err)
		}
		db, err = OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if got := caseValue(t, db, "k"); got != "v" {
			t.Errorf("after reopening: %q, want the deferred write", got)
		}
	})
}

// failingEngine fails every update while fail is set, as a disk that has
// filled up fails bbolt's commit.
type failingEngine struct {
	engine
	fail *atomic.Bool
}

func (e failingEngine) update(ctx context.Context, fn func(kvTx) error) error {
	if e.fail.Load() {
		return errors.New("write vultron.db: no space left on device")
	}
	return e.engine.update(ctx, fn)
}

// TestCommitFailuresAreCounted: a commit the engine fails (a full disk)
// is counted, for /metrics, while reads go on answering; a commit that
// succeeds afterwards leaves the count as it was.
func TestCommitFailuresAreCounted(t *testing.T) {
	db := openTestDB(t, Options{})
	var fail atomic.Bool
	db.eng = failingEngine{engine: db.eng, fail: &fail}
	write := func() error { return db.Update(context.Background(), func(*Tx) error { return nil }) }
	if err := write(); err != nil {
		t.Fatal(err)
	}
	if got := db.CommitFailures(); got != 0 {
		t.Fatalf("CommitFailures after a commit = %d, want 0", got)
	}
	fail.Store(true)
	for range 2 {
		if err := write(); err == nil {
			t.Fatal("a write on a failing disk succeeded")
		}
	}
	if got := db.CommitFailures(); got != 2 {
		t.Errorf("CommitFailures after two failed commits = %d, want 2", got)
	}
	fail.Store(false)
	if err := write(); err != nil {
		t.Fatal(err)
	}
	if got := db.CommitFailures(); got != 2 {
		t.Errorf("CommitFailures after a commit that succeeded = %d, want still 2", got)
	}
}
