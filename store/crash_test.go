package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	path := filepath.Join(t.TempDir(), "vultron.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashDuringEnqueueKeepsAcknowledgedDeliveries$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"=1", crashPathEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	acked := map[string]bool{}
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		id, ok := strings.CutPrefix(sc.Text(), "enqueued ")
		if !ok {
			continue
		}
		acked[id] = true
		if !killed && len(acked) >= crashKillAfter {
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
		t.Fatalf("child exited before the kill (%v) after %d enqueues:\n%s", err, len(acked), stderr.String())
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, stderr.String())
	}

	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Check(ctx); err != nil {
		t.Fatalf("consistency check after kill: %v", err)
	}
	pending, err := db.PendingDeliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
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
}

// crashChild enqueues until it is killed or crashChildLimit passes.
func crashChild(t *testing.T, path string) {
	db, err := Open(path, Options{}) // real fsync
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
