package jsonapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"syscall"
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

// DefaultBackupStallTimeout is how long a backup's client may take to
// read one backupChunk, when Config.BackupStall is zero: longer than any
// pause of a client that is still reading, short beside BackupSendTimeout.
const DefaultBackupStallTimeout = time.Minute

// backupChunk is how much of a backup is written under one stall
// deadline: a client that takes less than this within the stall timeout
// is cut off. Small, so that only a client that has all but stopped is.
const backupChunk = 32 << 10

// Backup answers GET /api/backup with a consistent copy of the node's
// bbolt store, taken while the node keeps running: the file, sealed with
// the data key the api.HeaderDataKeyID header names, as
// application/octet-stream with its length. The copy is written to a file
// in BackupDir first, so that the store's read transaction ends at local
// disk speed rather than at the client's (a read transaction held open
// keeps bbolt from reusing pages), and sent from there; the file is
// removed once sent. It is refused with 507 when the free space there
// would not hold the copy and leave the store room to grow (backupRoom).
// One backup is taken at a time (409 for another meanwhile); a PostgreSQL
// store is refused with 409 and what backs it up. Each backup sent, cut
// short or not taken is recorded in the audit log with who asked for it,
// and the time of the last one sent whole is kept for the node's metrics
// (store.ReadTx.LastBackupSent).
func (e *Endpoints) Backup(w http.ResponseWriter, r *http.Request) {
	if !e.backingUp.CompareAndSwap(false, true) {
		e.backupRefused(w, r, "another backup of this node is being taken", problem.Conflict("a backup of this node is being taken; ask again once it has been sent"))
		return
	}
	defer e.backingUp.Store(false)
	if e.cfg.BackupDir == "" {
		e.backupRefused(w, r, noFileBackup, problem.Conflict(noFileBackup))
		return
	}
	// The send deadline is set before the copy is written, which may take
	// longer than the server's write timeout on a large store: the answer,
	// a refusal too, must still reach the client after it.
	sendBy := time.Now().Add(BackupSendTimeout)
	if err := http.NewResponseController(w).SetWriteDeadline(sendBy); err != nil {
		e.backupFailed(w, r, fmt.Errorf("jsonapi: set the backup's send deadline: %w", err))
		return
	}
	f, err := os.CreateTemp(e.cfg.BackupDir, BackupTempPattern)
	if err != nil {
		e.backupFailed(w, r, fmt.Errorf("jsonapi: make the backup's file: %w", err))
		return
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	info, err := e.cfg.Store.Backup(r.Context(), func(info store.BackupInfo) (io.Writer, error) {
		if free, ok := freeBytes(e.cfg.BackupDir); ok {
			if err := backupRoom(free, info.Bytes); err != nil {
				return nil, err
			}
		}
		return f, nil
	})
	if errors.Is(err, store.ErrNoFileBackup) {
		e.backupRefused(w, r, noFileBackup, problem.Conflict(noFileBackup))
		return
	}
	if err != nil {
		e.backupFailed(w, r, fmt.Errorf("jsonapi: %w", err))
		return
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		e.backupFailed(w, r, fmt.Errorf("jsonapi: read the backup's file: %w", err))
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
	stall := e.cfg.BackupStall
	if stall <= 0 {
		stall = DefaultBackupStallTimeout
	}
	sent, why := sendBackup(w, f, stall, sendBy)

	rec := store.AuditRecord{Decision: store.DecisionDone,
		Reason: fmt.Sprintf("backup of the store sent: %d bytes, sealed with data key %s", info.Bytes, keyOrNone(info.DataKeyID))}
	if why != "" || sent != info.Bytes {
		if why == "" {
			why = "the file beside the store ended early"
		}
		rec.Decision = store.DecisionFailed
		rec.Reason = fmt.Sprintf("backup of the store cut short after %d of %d bytes (%s), sealed with data key %s", sent, info.Bytes, why, keyOrNone(info.DataKeyID))
	}
	var whole *store.BackupInfo
	if rec.Decision == store.DecisionDone {
		whole = &info
	}
	e.auditBackup(r, rec, whole)
}

// sendBackup writes the backup file r to w, a chunk at a time, each under
// a write deadline of stall from its start (and none past sendBy), so
// that a client that takes less than a chunk in stall ends the send. It returns
// the bytes written and, for a send cut short, why, in a clause for the
// audit log ("" when r was sent to its end).
func sendBackup(w http.ResponseWriter, r io.Reader, stall time.Duration, sendBy time.Time) (int64, string) {
	rc := http.NewResponseController(w)
	buf := make([]byte, backupChunk)
	var sent int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			deadline := time.Now().Add(stall)
			stalled := deadline.Before(sendBy)
			if !stalled {
				deadline = sendBy
			}
			if err := rc.SetWriteDeadline(deadline); err != nil {
				return sent, "its send deadline could not be set: " + err.Error()
			}
			m, err := w.Write(buf[:n])
			sent += int64(m)
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded) && stalled:
				return sent, fmt.Sprintf("its client took less than %d KiB in %s", backupChunk>>10, stall)
			case errors.Is(err, os.ErrDeadlineExceeded):
				return sent, "it was not sent within " + BackupSendTimeout.String()
			case err != nil:
				return sent, "its client hung up, or the node is stopping"
			}
		}
		switch {
		case rerr == io.EOF || rerr == io.ErrUnexpectedEOF:
			return sent, ""
		case rerr != nil:
			return sent, "the file beside the store could not be read"
		}
	}
}

// backupFailed answers a backup that could not be taken with err, and
// logs and audits it: the client sees only err's safe sentence.
// A backup whose request ended meanwhile (the client hung up, the node
// is stopping) says so.
// A disk that filled up while the copy was written (after backupRoom's
// look at it), or the quota of the node's user there, is 507, as a disk
// too full to begin is.
func (e *Endpoints) backupFailed(w http.ResponseWriter, r *http.Request, err error) {
	reason, ev := problem.Message(err), e.cfg.Logger.Error()
	switch {
	case r.Context().Err() != nil:
		reason, ev = "the client hung up, or the node is stopping, before the copy was written", e.cfg.Logger.Warn()
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		reason = "the disk beside the store filled up while the copy was written"
		err = problem.Wrap(http.StatusInsufficientStorage, err, reason+"; free some space there and ask again")
	}
	ev.Err(err).Msg("backup of the store not taken")
	e.auditBackup(r, store.AuditRecord{Decision: store.DecisionFailed,
		Reason: problem.Clip("backup of the store not taken: "+reason, 300)}, nil)
	problem.Write(w, err)
}

// backupRefused answers a backup refused before it began with refusal,
// and audits it with why.
func (e *Endpoints) backupRefused(w http.ResponseWriter, r *http.Request, why string, refusal error) {
	e.auditBackup(r, store.AuditRecord{Decision: store.DecisionRefused, Reason: problem.Clip("backup of the store not taken: "+why, 300)}, nil)
	problem.Write(w, refusal)
}

// auditBackup records rec, the outcome of a backup, with who asked for it;
// the record is written even when the request's context ended (the client
// hung up).
// sent, when not nil, is a backup sent whole, recorded for the metrics in
// the same transaction.
func (e *Endpoints) auditBackup(r *http.Request, rec store.AuditRecord, sent *store.BackupInfo) {
	rec.Kind, rec.Actor = store.AuditAdmin, "store"
	rec.Principal, rec.Remote = accounts.LabelOf(r.Context()), e.cfg.ClientIP(r)
	if err := e.cfg.Store.Update(context.WithoutCancel(r.Context()), func(tx *store.Tx) error {
		if sent != nil {
			if err := tx.RecordBackupSent(e.cfg.Now(), sent.Bytes); err != nil {
				return err
			}
		}
		_, err := tx.AppendAudit(rec)
		return err
	}); err != nil {
		e.cfg.Logger.Error().Err(err).Str("reason", rec.Reason).Msg("the backup is not in the audit log")
	}
}

// backupHeadroom is the free space, beyond the copy's size, that a backup
// leaves beside the store for the store to grow into while the copy is
// written and sent: a tenth of the copy, and at least backupMinHeadroom.
func backupHeadroom(size int64) int64 { return max(size/10, backupMinHeadroom) }

// backupMinHeadroom is the least free space a backup leaves beside the
// store.
const backupMinHeadroom = 64 << 20

// backupRoom says whether free bytes beside the store hold a copy of size
// bytes and leave the store room to grow (backupHeadroom): a copy that
// filled the disk would fail the node's own writes while it is sent.
func backupRoom(free uint64, size int64) error {
	need := size + backupHeadroom(size)
	if free < uint64(need) {
		return problem.New(http.StatusInsufficientStorage,
			"not enough free space beside the store for its backup: the copy takes %d MiB and the store needs room to grow meanwhile (%d MiB in all), but %d MiB are free; free some space there and ask again",
			mib(size), mib(need), mib(int64(free)))
	}
	return nil
}

// mib is n bytes in MiB, rounded up.
func mib(n int64) int64 { return (n + 1<<20 - 1) >> 20 }

// BackupTempPattern names the files in BackupDir that Backup writes and
// removes; a node that stopped while sending one removes it at its next
// start.
const BackupTempPattern = ".vultron-backup-*.tmp"

// noFileBackup is the refusal of a backup on PostgreSQL.
const noFileBackup = "this node's store is a PostgreSQL database, which is backed up with PostgreSQL's tools (pg_dump, or base backups with WAL archiving), not by the node"

// keyOrNone names a data key id, or says there is none.
func keyOrNone(id string) string {
	if id == "" {
		return "(none: the store is not sealed)"
	}
	return id
}
