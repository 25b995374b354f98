package node

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// TestBackupCutShortIsAudited: a client that stops reading a backup and
// hangs up leaves no file beside the store, and the audit log records the
// backup as cut short with who asked for it, although the request's
// context ended with the connection.
func TestBackupCutShortIsAudited(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	growStore(t, n.db, 32<<20)

	resp := startBackup(t, n)
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // hangs up with most of the copy unread

	last := awaitBackupAudit(t, n, 10*time.Second)
	if last.Decision != store.DecisionFailed || !strings.Contains(last.Reason, "cut short") || last.Principal == "" {
		t.Errorf("the backup cut short is audited as %+v", last)
	}
	if left, _ := filepath.Glob(filepath.Join(n.dir, ".vultron-backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store", left)
	}
}

// growStore appends audit records to db until its file is about size
// bytes, so that a backup of it outlasts the connection's buffers.
func growStore(t *testing.T, db *store.DB, size int) {
	t.Helper()
	filler := strings.Repeat("x", 60<<10)
	for range size / len(filler) / 64 {
		err := db.Update(context.Background(), func(tx *store.Tx) error {
			for range 64 {
				if _, err := tx.AppendAudit(store.AuditRecord{Kind: store.AuditAdmin, Decision: store.DecisionDone, Reason: filler}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestStopDuringBackup: a node told to stop while a client has stopped
// reading its backup cuts the backup short at its shutdown deadline,
// audits it as cut short, removes the copy beside its store, and stops.
func TestStopDuringBackup(t *testing.T) {
	n := startNodeConfig(t, t.TempDir(), nil, Config{ShutdownTimeout: 200 * time.Millisecond}, "vendor:Organization")
	growStore(t, n.db, 32<<20)
	resp := startBackup(t, n)
	defer resp.Body.Close()
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	// The client reads no more; the node stops.
	start := time.Now()
	n.stop()
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the node took %v to stop", took)
	}
	if left, _ := filepath.Glob(filepath.Join(n.dir, ".vultron-backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store", left)
	}
	keys, err := store.LoadDataKeys(n.dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(n.dir, "vultron.db"), store.Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recs, _, err := db.AuditPage(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range recs {
		if strings.HasPrefix(r.Reason, "backup of the store") {
			found = r.Decision == store.DecisionFailed && strings.Contains(r.Reason, "cut short")
		}
	}
	if !found {
		t.Error("no audit record of the backup cut short by the node's stop")
	}
}

// TestStalledBackupFreesItsSlot: a client that stops reading a backup
// holds the node's only backup slot, and a copy of the store beside it,
// no longer than the stall timeout: the node cuts the backup short,
// audits it so, removes the copy, and takes the next backup.
func TestStalledBackupFreesItsSlot(t *testing.T) {
	n := startNodeConfig(t, t.TempDir(), nil, Config{BackupStallTimeout: 300 * time.Millisecond}, "vendor:Organization")
	growStore(t, n.db, 32<<20)
	stalled := startBackup(t, n)
	defer stalled.Body.Close()
	if _, err := io.ReadFull(stalled.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	// The client keeps its connection open and reads no more.
	last := awaitBackupAudit(t, n, 20*time.Second)
	if last.Decision != store.DecisionFailed || !strings.Contains(last.Reason, "cut short") || !strings.Contains(last.Reason, "took less than 32 KiB in 300ms") {
		t.Errorf("the stalled backup is audited as %s %q", last.Decision, last.Reason)
	}
	if left, _ := filepath.Glob(filepath.Join(n.dir, ".vultron-backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store after the stall", left)
	}

	next := startBackup(t, n)
	defer next.Body.Close()
	got, err := io.Copy(io.Discard, next.Body)
	if err != nil || got != next.ContentLength {
		t.Errorf("the next backup: %d of %d bytes, %v", got, next.ContentLength, err)
	}
}

// awaitBackupAudit waits up to within for the audit record of a backup to
// be the last of n's audit log, and returns it.
func awaitBackupAudit(t *testing.T, n *testNode, within time.Duration) store.AuditRecord {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs, _, err := n.db.AuditPage(context.Background(), 0, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 0 && strings.HasPrefix(recs[len(recs)-1].Reason, "backup of the store") {
			return recs[len(recs)-1]
		}
		if time.Now().After(deadline) {
			last := recs[len(recs)-1]
			t.Fatalf("no audit record of the backup within %v; the last is #%d %s %.60q", within, last.Seq, last.Decision, last.Reason)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLeftoverBackupRemovedAtStart: the copy of a backup that a node
// stopped while sending is removed at its next start, also from a data
// directory whose name holds characters that a glob pattern reads
// otherwise; other files there stay.
func TestLeftoverBackupRemovedAtStart(t *testing.T) {
	for _, name := range []string{"data", "data[1]", "da*ta?"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), name)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			// kept: the partial file of a `vultron backup DATA/backup-x`
			// being downloaded into the data directory itself.
			left, kept := filepath.Join(dir, ".vultron-backup-123.tmp"), filepath.Join(dir, "backup-x.partial")
			for _, f := range []string{left, kept} {
				if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			startNodeIn(t, dir, nil, "vendor:Organization")
			if _, err := os.Stat(left); err == nil {
				t.Errorf("%s is left at the node's start", left)
			}
			if _, err := os.Stat(kept); err != nil {
				t.Errorf("%s: %v", kept, err)
			}
		})
	}
}

// startBackup asks n for a backup with its API token and returns the
// answer, 200, with its body still to read.
func startBackup(t *testing.T, n *testNode) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url+"/api/backup", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET /api/backup: %s", resp.Status)
	}
	return resp
}
