package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a child that enqueues
// outbound activities from several goroutines with real fsync and prints each
// id to stdout after EnqueueOutbound returns. The parent kills it with
// SIGKILL while it is writing, reopens the file, runs the consistency check
// and verifies that every printed activity has all its deliveries pending.

const (
	crashChildEnv   = "STORE_CRASH_CHILD"
	crashPathEnv    = "STORE_CRASH_PATH"
	crashWriters    = 8
	crashTargets    = 2
	crashKillAfter  = 300 // acknowledged enqueues before the kill
	crashChildLimit = 20 * time.Second
)

func TestCrashDuringEnqueueKeepsAcknowledgedDeliveries(t *testing.T) {
	if os.Getenv(crashChildEnv) == "1" {
		crashChild(t, os.Getenv(crashPathEnv))
		return
	}
	if testing.Short() {
		t.Skip("crash test runs a child process")
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		acked := map[string]bool{}
		killChildWhen(t, "TestCrashDuringEnqueueKeepsAcknowledgedDeliveries", "1", path, func(line string) bool {
			if id, ok := strings.CutPrefix(line, "enqueued "); ok {
				acked[id] = true
			}
			return len(acked) >= crashKillAfter
		})

		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		defer db.Close()
		ctx := context.Background()
		if err := db.Check(ctx); err != nil {
			t.Fatalf("consistency check after kill: %v", err)
		}
		pending := allDeliveries(t, db, false)
		perActivity := map[string]int{}
		for _, d := range pending {
			perActivity[d.ActivityID]++
		}
		for id := range acked {
			if got := perActivity[id]; got != crashTargets {
				t.Errorf("acknowledged %s has %d pending deliveries, want %d", id, got, crashTargets)
			}
		}
		// Atomicity: every delivery that survived belongs to a stored activity
		// with all its deliveries, acknowledged or not.
		for id, n := range perActivity {
			if n != crashTargets {
				t.Errorf("activity %s has %d deliveries, want %d (partial transaction)", id, n, crashTargets)
			}
			if _, err := db.Activity(ctx, id); err != nil {
				t.Errorf("delivery for %s without its activity: %v", id, err)
			}
		}
		// After a restart nothing is leased: all pending deliveries of
		// independent lanes are due.
		due, err := db.DueDeliveries(ctx, time.Now().Add(time.Minute), len(pending)+1)
		if err != nil {
			t.Fatal(err)
		}
		if len(due) != len(pending) {
			t.Errorf("%d of %d pending deliveries due after restart", len(due), len(pending))
		}
		t.Logf("%d enqueues acknowledged, %d activities stored, %d deliveries pending", len(acked), len(perActivity), len(pending))
	})
}

// killChildWhen runs the test binary's test as a child with crashChildEnv
// set to mode and crashPathEnv to path, passes each line the child prints
// to kill, sends SIGKILL as soon as kill returns true, and fails the test
// unless the child died of that signal.
func killChildWhen(t *testing.T, test, mode, path string, kill func(line string) bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+mode, crashPathEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if !killed && kill(sc.Text()) {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatalf("kill child: %v", err)
			}
			killed = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read child output: %v", err)
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before the kill: %v\n%s", err, stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, stderr.String())
	}
}

// crashChild enqueues until it is killed or crashChildLimit passes.
func crashChild(t *testing.T, path string) {
	db, err := OpenURL(context.Background(), path, Options{}) // real fsync
	if err != nil {
		t.Fatalf("child open: %v", err)
	}
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	deadline := time.Now().Add(crashChildLimit)
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("https://node.example/activities/%d-%d", w, i)
				targets := make([]DeliveryTarget, crashTargets)
				for j := range targets {
					targets[j] = DeliveryTarget{Recipient: fmt.Sprintf("https://peer%d.example/inbox/%d-%d", j, w, i)}
				}
				err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "crash"), Deliveries: targets}, nil)
				if err != nil {
					fmt.Fprintf(os.Stderr, "enqueue %s: %v\n", id, err)
					os.Exit(2)
				}
				// One write per line: lines from different writers do
				// not interleave on the pipe.
				if _, err := os.Stdout.WriteString("enqueued " + id + "\n"); err != nil {
					os.Exit(3)
				}
			}
		})
	}
	wg.Wait()
	_ = db.Close()
	os.Exit(4) // the parent should have killed the child long before
}

// TestCrashDuringDrainKeepsDeliveryIndex kills a child that queues
// deliveries in shared lanes while workers lease, retry, complete and
// dead-letter them, then reopens the store and checks that the index agrees
// with the queue and that draining it hands out every pending delivery
// exactly once, lane by lane in queue order: leases died with the process,
// so everything pending is due again.
func TestCrashDuringDrainKeepsDeliveryIndex(t *testing.T) {
	if os.Getenv(crashChildEnv) == "drain" {
		crashDrainChild(os.Getenv(crashPathEnv))
		return
	}
	if testing.Short() {
		t.Skip("crash test runs a child process")
	}
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		acked, handled := 0, 0
		killChildWhen(t, "TestCrashDuringDrainKeepsDeliveryIndex", "drain", path, func(line string) bool {
			switch {
			case strings.HasPrefix(line, "enqueued "):
				acked++
			case strings.HasPrefix(line, "handled "):
				handled++
			}
			return acked >= 200 && handled >= 100
		})

		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatalf("reopen after kill: %v", err)
		}
		defer db.Close()
		ctx := context.Background()
		if err := db.Check(ctx); err != nil {
			t.Fatalf("after kill: %v", err)
		}
		pending := allDeliveries(t, db, false)
		if n, err := db.PendingCount(ctx); err != nil || n != len(pending) {
			t.Fatalf("PendingCount = %d, %v; %d deliveries are pending", n, err, len(pending))
		}
		now := time.Now().Add(24 * time.Hour) // after every retry the child set
		seen := make(map[uint64]bool)
		for round := 0; ; round++ {
			want := referenceDue(allDeliveries(t, db, false), nil, now, len(pending)+1)
			due, err := db.DueDeliveries(ctx, now, len(pending)+1)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(due, want, deliveriesEqual) {
				t.Fatalf("round %d: due %v, want %v", round, ids(due), ids(want))
			}
			if len(due) == 0 {
				break
			}
			for _, d := range due {
				if seen[d.ID] {
					t.Fatalf("delivery %d handed out twice", d.ID)
				}
				seen[d.ID] = true
				if err := db.CompleteDelivery(ctx, d.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		for _, d := range pending {
			if !seen[d.ID] {
				t.Errorf("pending delivery %d was never handed out", d.ID)
			}
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 0 {
			t.Errorf("PendingCount after the drain = %d, %v; want 0", n, err)
		}
		t.Logf("%d enqueues acknowledged and %d outcomes recorded before the kill; %d deliveries pending after it, all handed out", acked, handled, len(pending))
	})
}

// crashDrainChild queues and works the queue until it is killed or
// crashChildLimit passes.
func crashDrainChild(path string) {
	fail := func(what string, err error) {
		fmt.Fprintf(os.Stderr, "%s: %v\n", what, err)
		os.Exit(2)
	}
	db, err := OpenURL(context.Background(), path, Options{LeaseTTL: time.Second}) // real fsync
	if err != nil {
		fail("open", err)
	}
	ctx := context.Background()
	if err := db.PutLocalActor(ctx, LocalActor{Name: "coord", Type: "Organization", KeyID: "https://node.example/actors/coord#main-key"}); err != nil {
		fail("put actor", err)
	}
	deadline := time.Now().Add(crashChildLimit)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				id := fmt.Sprintf("https://node.example/activities/%d-%d", w, i)
				targets := []DeliveryTarget{
					{Recipient: fmt.Sprintf("https://peer%d.example/inbox", i%3), OrderingKey: fmt.Sprintf("case-%d", i%4)},
					{Recipient: fmt.Sprintf("https://peer%d.example/inbox", (i+w)%3)},
				}
				if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "crash"), Deliveries: targets}, nil); err != nil {
					fail("enqueue", err)
				}
				if _, err := os.Stdout.WriteString("enqueued " + id + "\n"); err != nil {
					os.Exit(3)
				}
			}
		})
	}
	for w := range 2 {
		wg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				due, err := db.DueDeliveries(ctx, time.Now(), 8)
				if err != nil {
					fail("due", err)
				}
				for i, d := range due {
					switch (n + i + w) % 5 {
					case 0, 1:
						err = db.CompleteDelivery(ctx, d.ID)
					case 2:
						err = db.CompleteDeliveryDeferred(d.ID, nil)
					case 3:
						err = db.RetryDelivery(ctx, d.ID, time.Now().Add(time.Duration(i)*time.Millisecond), "503")
					default:
						err = db.DeadLetter(ctx, d.ID, "410 Gone")
					}
					if err != nil && !errors.Is(err, ErrNotFound) {
						fail("outcome", err)
					}
					if _, err := fmt.Fprintf(os.Stdout, "handled %d\n", d.ID); err != nil {
						os.Exit(3)
					}
				}
			}
		})
	}
	wg.Wait()
	_ = db.Close()
	os.Exit(4) // the parent should have killed the child long before
}
