package jsonapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// TestBackupRoom: a backup is taken only when the free space beside the
// store holds the copy and leaves the store room to grow (a tenth of the
// copy, at least 64 MiB); otherwise it is refused with 507 and a sentence
// that says how much is needed and what to do.
func TestBackupRoom(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name       string
		free       uint64
		size       int64
		refused    bool
		inSentence string
	}{
		{"plenty", 100 << 30, 1 << 30, false, ""},
		{"a small store and the least headroom", 65*mb + 4096, mb, false, ""},
		{"a small store without the least headroom", 64 * mb, mb, true, "the copy takes 1 MiB and the store needs room to grow meanwhile (65 MiB in all), but 64 MiB are free"},
		{"a large store and a tenth of it", 11 << 30, 10 << 30, false, ""},
		{"a large store without a tenth of it", 10<<30 + 512*mb, 10 << 30, true, "(11264 MiB in all), but 10752 MiB are free"},
		{"the copy fills the disk", 4 * mb, 4 * mb, true, "free some space there and ask again"},
		{"no space at all", 0, 4096, true, "but 0 MiB are free"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := backupRoom(tc.free, tc.size)
			if !tc.refused {
				if err != nil {
					t.Errorf("refused: %v", err)
				}
				return
			}
			if problem.Status(err) != http.StatusInsufficientStorage || !strings.Contains(problem.Message(err), tc.inSentence) {
				t.Errorf("%v (status %d), want 507 saying %q", err, problem.Status(err), tc.inSentence)
			}
		})
	}
}

// TestBackupOfAClientThatHungUp: a backup asked for by a client that hung
// up before the copy was written is not taken, leaves no file beside the
// store, and is audited as such, not as an internal error.
func TestBackupOfAClientThatHungUp(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	e := &Endpoints{cfg: Config{Store: db, BackupDir: dir, Logger: zerolog.Nop(), Now: time.Now,
		ClientIP: func(*http.Request) string { return "192.0.2.1" }}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := deadlineRecorder{httptest.NewRecorder()}
	e.Backup(w, httptest.NewRequest(http.MethodGet, "/api/backup", nil).WithContext(ctx))

	if left, _ := filepath.Glob(filepath.Join(dir, ".vultron-backup-*")); len(left) != 0 {
		t.Errorf("%v left beside the store", left)
	}
	recs, _, err := db.AuditPage(context.Background(), 0, 100)
	if err != nil || len(recs) == 0 {
		t.Fatalf("audit: %d records, %v", len(recs), err)
	}
	last := recs[len(recs)-1]
	if last.Decision != store.DecisionFailed || last.Reason != "backup of the store not taken: the client hung up, or the node is stopping, before the copy was written" {
		t.Errorf("audited as %s: %q", last.Decision, last.Reason)
	}
}

// deadlineRecorder is a ResponseRecorder that takes a write deadline, as
// the server's connection does.
type deadlineRecorder struct{ *httptest.ResponseRecorder }

func (deadlineRecorder) SetWriteDeadline(time.Time) error { return nil }

// TestBackupRefusalsAreAudited: every backup not taken is in the audit
// log with why, the refusals too: another backup under way (409), a store
// that is not a file (409), and a disk that filled up while the copy was
// written (507, not an internal error).
func TestBackupRefusalsAreAudited(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(filepath.Join(dir, "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lastAudit := func() store.AuditRecord {
		t.Helper()
		recs, _, err := db.AuditPage(context.Background(), 0, 100)
		if err != nil || len(recs) == 0 {
			t.Fatalf("audit: %d records, %v", len(recs), err)
		}
		return recs[len(recs)-1]
	}
	for _, tc := range []struct {
		name   string
		setup  func(e *Endpoints)
		call   func(e *Endpoints, w http.ResponseWriter, r *http.Request)
		status int
		reason string
	}{
		{"another backup under way", func(e *Endpoints) { e.backingUp.Store(true) }, (*Endpoints).Backup,
			http.StatusConflict, "backup of the store not taken: another backup of this node is being taken"},
		{"no store file", func(e *Endpoints) { e.cfg.BackupDir = "" }, (*Endpoints).Backup,
			http.StatusConflict, "backup of the store not taken: " + noFileBackup},
		{"the disk filled up", func(*Endpoints) {}, func(e *Endpoints, w http.ResponseWriter, r *http.Request) {
			e.backupFailed(w, r, fmt.Errorf("jsonapi: store: backup: write: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}))
		}, http.StatusInsufficientStorage, "backup of the store not taken: the disk beside the store filled up while the copy was written"},
		{"the disk quota ran out", func(*Endpoints) {}, func(e *Endpoints, w http.ResponseWriter, r *http.Request) {
			e.backupFailed(w, r, fmt.Errorf("jsonapi: store: backup: write: %w", &os.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}))
		}, http.StatusInsufficientStorage, "backup of the store not taken: the disk beside the store filled up while the copy was written"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Endpoints{cfg: Config{Store: db, BackupDir: dir, Logger: zerolog.Nop(), Now: time.Now,
				ClientIP: func(*http.Request) string { return "192.0.2.1" }}}
			tc.setup(e)
			w := deadlineRecorder{httptest.NewRecorder()}
			tc.call(e, w, httptest.NewRequest(http.MethodGet, "/api/backup", nil))
			if w.Code != tc.status {
				t.Errorf("answered %d %s, want %d", w.Code, w.Body, tc.status)
			}
			if last := lastAudit(); last.Decision == store.DecisionDone || !strings.HasPrefix(last.Reason, tc.reason) {
				t.Errorf("audited as %s %q, want it refused saying %q", last.Decision, last.Reason, tc.reason)
			}
		})
	}
}
