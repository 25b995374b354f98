package jsonapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// BackupSendTimeout bounds how long the copy of a backup takes to reach
// its client, in place of the server's write timeout: a large store over
// a slow link takes longer than a page does.
const BackupSendTimeout = 30 * time.Minute

// Backup answers GET /api/backup with a consistent copy of the node's
// bbolt store, taken while the node keeps running: the file, sealed with
// the data key the api.HeaderDataKeyID header names, as
// application/octet-stream with its length. The copy is written to a file
// in BackupDir first, so that the store's read transaction ends at local
// disk speed rather than at the client's (a read transaction held open
// keeps bbolt from reusing pages), and sent from there; the file is
// removed once sent. One backup is taken at a time (409 for another
// meanwhile); a PostgreSQL store is refused with 409 and what backs it up.
// Each backup sent, or cut short, is recorded in the audit log with who
// asked for it, and the time of the last one sent whole is kept for the
// node's metrics (store.ReadTx.LastBackupSent).
func (e *Endpoints) Backup(w http.ResponseWriter, r *http.Request) {
	if !e.backingUp.CompareAndSwap(false, true) {
		problem.Write(w, problem.Conflict("a backup of this node is being taken; ask again once it has been sent"))
		return
	}
	defer e.backingUp.Store(false)
	if e.cfg.BackupDir == "" {
		problem.Write(w, problem.Conflict(noFileBackup))
		return
	}
	f, err := os.CreateTemp(e.cfg.BackupDir, BackupTempPattern)
	if err != nil {
		problem.Write(w, fmt.Errorf("jsonapi: make the backup's file: %w", err))
		return
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	info, err := e.cfg.Store.Backup(r.Context(), func(store.BackupInfo) (io.Writer, error) { return f, nil })
	if errors.Is(err, store.ErrNoFileBackup) {
		problem.Write(w, problem.Conflict(noFileBackup))
		return
	}
	if err != nil {
		problem.Write(w, fmt.Errorf("jsonapi: %w", err))
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		problem.Write(w, fmt.Errorf("jsonapi: read the backup's file: %w", err))
		return
	}
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(BackupSendTimeout)); err != nil {
		problem.Write(w, fmt.Errorf("jsonapi: set the backup's send deadline: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(info.Bytes, 10))
	h.Set("Content-Disposition", `attachment; filename="vultron-`+e.cfg.Now().UTC().Format("20060102T150405Z")+`.db"`)
	h.Set("Cache-Control", "no-store")
	if info.DataKeyID != "" {
		h.Set(api.HeaderDataKeyID, info.DataKeyID)
	}
	w.WriteHeader(http.StatusOK)
	sent, copyErr := io.Copy(w, f)

	rec := store.AuditRecord{Kind: store.AuditAdmin, Actor: "store", Decision: store.DecisionDone,
		Principal: accounts.LabelOf(r.Context()), Remote: e.cfg.ClientIP(r),
		Reason: fmt.Sprintf("backup of the store sent: %d bytes, sealed with data key %s", info.Bytes, keyOrNone(info.DataKeyID))}
	if copyErr != nil || sent != info.Bytes {
		rec.Decision = store.DecisionFailed
		rec.Reason = fmt.Sprintf("backup of the store cut short after %d of %d bytes, sealed with data key %s", sent, info.Bytes, keyOrNone(info.DataKeyID))
	}
	// Recorded even when the client went away, which ended r's context.
	if err := e.cfg.Store.Update(context.WithoutCancel(r.Context()), func(tx *store.Tx) error {
		if rec.Decision == store.DecisionDone {
			if err := tx.RecordBackupSent(e.cfg.Now(), info.Bytes); err != nil {
				return err
			}
		}
		_, err := tx.AppendAudit(rec)
		return err
	}); err != nil {
		e.cfg.Logger.Error().Err(err).Str("reason", rec.Reason).Msg("the backup sent is not in the audit log")
	}
}

// BackupTempPattern names the files in BackupDir that Backup writes and
// removes; a node that stopped while sending one removes it at its next
// start.
const BackupTempPattern = "backup-*.partial"

// noFileBackup is the refusal of a backup on PostgreSQL.
const noFileBackup = "this node's store is a PostgreSQL database, which is backed up with PostgreSQL's tools (pg_dump, or base backups with WAL archiving), not by the node"

// keyOrNone names a data key id, or says there is none.
func keyOrNone(id string) string {
	if id == "" {
		return "(none: the store is not sealed)"
	}
	return id
}
