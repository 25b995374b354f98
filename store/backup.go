package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrNoFileBackup is Backup's error for a store that is not a file: a
// PostgreSQL database is backed up with PostgreSQL's own tools.
var ErrNoFileBackup = errors.New("store: a PostgreSQL store is backed up with PostgreSQL's tools (pg_dump, or base backups with WAL archiving), not by the node")

// BackupInfo is what Backup wrote.
type BackupInfo struct {
	// Bytes is the size of the copy.
	Bytes int64
	// DataKeyID is the id (KeyID) of the data key the copy's sealed
	// values open with; empty for a store without a data key.
	DataKeyID string
}

// Backup writes a consistent copy of a bbolt store, the file as one read
// transaction sees it, to the writer begin returns, while the node goes on
// reading and writing: sealed values stay sealed under the data key
// DataKeyID names. begin is called once, inside the read transaction,
// with the copy's size and key id, before any byte is written; an error
// from it ends Backup before anything is written.
//
// The read transaction lasts until the last byte is written, and keeps
// the pages it sees from being reused meanwhile (the file grows while
// writes go on), so w should be a local file, not a network connection.
// Once ctx ends, nothing more is written and Backup returns its error.
// A PostgreSQL store returns ErrNoFileBackup.
func (db *DB) Backup(ctx context.Context, begin func(BackupInfo) (io.Writer, error)) (BackupInfo, error) {
	if err := ctx.Err(); err != nil {
		return BackupInfo{}, err
	}
	if db.isDown.Load() {
		return BackupInfo{}, ErrClosed
	}
	be, ok := db.eng.(*boltEngine)
	if !ok {
		return BackupInfo{}, ErrNoFileBackup
	}
	var info BackupInfo
	err := be.db.View(func(tx *bolt.Tx) error {
		info.DataKeyID = recordedKeyID(boltTx{tx})
		info.Bytes = tx.Size()
		w, err := begin(info)
		if err != nil {
			return err
		}
		n, err := tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("write the copy: stopped after %d of %d bytes: %w", n, info.Bytes, cerr)
		}
		if err != nil {
			return fmt.Errorf("write the copy: %w", err)
		}
		if n != info.Bytes {
			return fmt.Errorf("write the copy: %d bytes written, want %d", n, info.Bytes)
		}
		return nil
	})
	if err != nil {
		return BackupInfo{}, fmt.Errorf("store: back up %s: %w", db.path, err)
	}
	return info, nil
}

// ctxWriter writes to w until ctx ends, and then returns ctx's error.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// BackupCheck is what CheckBackup found in a backup that holds.
type BackupCheck struct {
	// DataKeyID is the data key the backup is sealed with ("" when it is
	// not sealed).
	DataKeyID string
	// Opened says whether the backup was opened with that key, so that
	// its delivery index and audit chain were checked too; AuditRecords
	// and AuditHead are then the chain's length and head.
	Opened       bool
	AuditRecords uint64
	AuditHead    string
}

// CheckBackup checks the bbolt file at path as a backup of a store, only
// reading it: that it is a store at this binary's schema version, and
// that its pages are consistent (a walk of every page from the file
// itself, then bbolt's own check, which reads the whole file). Given the data key the backup is sealed with (key, or previous),
// it also checks the delivery index and verifies the audit chain; given
// another key, it says which key the backup needs (ErrDataKey, and not
// ErrDamaged: a sealed value that does not open with the key the backup
// records is ErrDamaged, and may wrap ErrDataKey too). A backup
// that fails a check returns an error wrapping ErrDamaged, and so does
// one whose damage makes bbolt read past the end of the file or panic,
// or whose pages do not form a tree (a page reached twice, an overflow
// past the end of the file), on which bbolt's check would not end.
func CheckBackup(ctx context.Context, path string, key, previous []byte) (bc BackupCheck, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store: check backup %s: %w: a page of the file cannot be read: %v", path, ErrDamaged, r)
		}
	}()
	eng, _, err := openCopySource(ctx, "bolt:"+path)
	if err != nil {
		return bc, fmt.Errorf("store: check backup: %w", err)
	}
	defer eng.close()
	if err := eng.view(ctx, func(tx kvTx) error {
		var err error
		bc.DataKeyID, err = sealedKeyID(tx, path)
		return err
	}); err != nil {
		return bc, fmt.Errorf("store: check backup %s: %w", path, err)
	}
	if errs := eng.check(ctx); len(errs) > 0 {
		err := errors.Join(errs...)
		if len(errs) == 1 && errors.Is(err, ErrDamaged) {
			err = errs[0] // a DamagedError, which names the file and what to do
		} else {
			err = &DamagedError{Path: path, Reason: "its consistency check fails: " + err.Error(), Err: err}
		}
		return bc, fmt.Errorf("store: check backup: %w", err)
	}
	if key == nil {
		return bc, nil
	}
	var sl *sealer
	if bc.DataKeyID != "" {
		use := key
		switch bc.DataKeyID {
		case KeyID(key):
		case keyIDOrEmpty(previous):
			use = previous
		default:
			return bc, fmt.Errorf("store: check backup %s: %w: it is sealed with data key %s, not with the key given (%s)", path, ErrDataKey, bc.DataKeyID, KeyID(key))
		}
		if sl, err = newSealer(use, nil); err != nil {
			return bc, fmt.Errorf("store: check backup %s: %w", path, err)
		}
	}
	// A store over the read-only file, for the checks that read records:
	// nothing is written, so it needs no committer.
	db := &DB{eng: eng, path: path, sl: sl, now: time.Now, leases: map[uint64]time.Time{}, done: make(chan struct{})}
	if err := db.Check(ctx); err != nil {
		return bc, fmt.Errorf("store: check backup: %w: %w", ErrDamaged, err)
	}
	v, err := db.VerifyAudit(ctx)
	if err != nil {
		return bc, fmt.Errorf("store: check backup %s: %w: %w", path, ErrDamaged, err)
	}
	if !v.OK {
		return bc, fmt.Errorf("store: check backup %s: %w: its audit chain breaks at record %d: %s", path, ErrDamaged, v.BrokenSeq, v.Reason)
	}
	bc.Opened, bc.AuditRecords, bc.AuditHead = true, v.Records, v.Head
	return bc, nil
}

// keyIDOrEmpty is KeyID of key, or "" for no key.
func keyIDOrEmpty(key []byte) string {
	if key == nil {
		return ""
	}
	return KeyID(key)
}
