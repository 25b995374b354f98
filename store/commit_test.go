package store

import (
	"context"
	"errors"
	"path/filepath"
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
	db := openTestDB(t, Options{})
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
}

func TestUpdateCancelledWhileQueued(t *testing.T) {
	db := openTestDB(t, Options{})
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
}

func TestLoneWriterCommitsWithoutDelay(t *testing.T) {
	db := openTestDB(t, Options{})
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
}

func TestCloseWaitsForQueuedWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{NoSync: true})
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

	db, err = Open(path, Options{NoSync: true})
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
}

// TestChangedAfterCommit checks that Changed's channel is closed by the
// next durable write and not before.
func TestChangedAfterCommit(t *testing.T) {
	db := openTestDB(t, Options{NoSync: true})
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
}
