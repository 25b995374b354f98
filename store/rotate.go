package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Rotation is the outcome of RotateDataKey.
type Rotation struct {
	// OldKeyID and NewKeyID are the ids (KeyID) of the replaced and the new
	// data key.
	OldKeyID, NewKeyID string
	// Resumed says an interrupted rotation was finished instead of a new key
	// being generated.
	Resumed bool
	// Resealed is how many values were re-encrypted.
	Resealed int
	// Retired is the file the old key was kept in (RetiredDataKeyFile):
	// backups, and a PostgreSQL database copied from the store, are still
	// sealed with it.
	Retired string
}

// RetiredDataKeyFile is the name of the file, beside the data key, in
// which RotateDataKey keeps the key it replaced, whose id is keyID.
func RetiredDataKeyFile(keyID string) string { return "data-key.retired-" + keyID }

// RotateDataKey replaces the data key of the store at storeURL (bolt:PATH or
// postgres://…), whose key is in keyFile, with a new random key and
// re-encrypts every sealed value. keyFile may be "" for a bbolt file: then
// DataKeyFile beside it. Every process of the node must be stopped: the
// store is opened Exclusive (a bbolt file's lock, or on PostgreSQL the open
// lock every process holds), and ErrLocked is returned while another
// process has it open; it keeps the lock from its check of the key to the
// end of the re-encryption, so that no process opens the store between. A
// bbolt file is compacted besides, so that no freed
// page keeps old ciphertext; PostgreSQL keeps old row versions until its
// vacuum reclaims them (and its WAL and backups keep them).
//
// A store holding a value that does not open with its key is refused,
// with ErrDataKey, before anything is changed.
//
// It is crash-safe: the new key is written before the old one is moved to
// data-key.previous, the re-encryption commits in one transaction, and
// data-key.previous is renamed to RetiredDataKeyFile only after the
// re-encryption (and the compacted file) is in place; the retired key is
// kept for the backups and copies sealed with it. A store with a
// data-key.previous beside its key opens with both keys; running
// RotateDataKey again finishes the interrupted rotation rather than starting
// another.
func RotateDataKey(ctx context.Context, storeURL, keyFile string, opts Options) (Rotation, error) {
	var boltPath string
	switch {
	case strings.HasPrefix(storeURL, "bolt:") && len(storeURL) > len("bolt:"):
		boltPath = strings.TrimPrefix(storeURL, "bolt:")
	case isPostgresURL(storeURL):
	default:
		return Rotation{}, fmt.Errorf("store: rotate data key: %w: the store URL must be bolt:PATH or postgres://…", ErrInvalid)
	}
	if keyFile == "" {
		if boltPath == "" {
			return Rotation{}, fmt.Errorf("store: rotate data key of %s: %w: name the file of its data key", describePostgres(storeURL), ErrInvalid)
		}
		keyFile = filepath.Join(filepath.Dir(boltPath), DataKeyFile)
	}
	prevFile := filepath.Join(filepath.Dir(keyFile), DataKeyPreviousFile)
	if boltPath != "" {
		if _, err := os.Stat(boltPath); err != nil {
			return Rotation{}, fmt.Errorf("store: rotate data key: %w", err)
		}
	}
	open := func(o Options) (*DB, error) {
		o.Exclusive = true
		return OpenURL(ctx, storeURL, o)
	}
	keys, err := LoadDataKeys(filepath.Dir(keyFile), keyFile, "", false)
	if err != nil {
		return Rotation{}, fmt.Errorf("store: rotate data key: %w", err)
	}
	var rot Rotation
	if keys.Previous != nil {
		rot.Resumed = true
		rot.OldKeyID, rot.NewKeyID = KeyID(keys.Previous), KeyID(keys.Current)
		if err := ctx.Err(); err != nil {
			return rot, err
		}
		// Open reseals every value sealed with the previous key in one
		// transaction and records the new key id.
		o := opts
		o.DataKey, o.PreviousDataKey = keys.Current, keys.Previous
		db, err := open(o)
		if err != nil {
			return rot, fmt.Errorf("store: rotate data key: %w", err)
		}
		rot.Resealed = db.resealed
		if err := db.Close(); err != nil {
			return rot, fmt.Errorf("store: rotate data key: %w", err)
		}
	} else {
		// Open with the current key: it takes the lock (a running process
		// holds it), and checks the key is the one the store was sealed
		// with before anything is changed. The store stays open, and so
		// the lock held, until the values are re-encrypted: a process
		// that opened it between the check and the re-encryption would
		// seal with the old key, and make the re-encryption fail once the
		// new key is in the key file.
		o := opts
		o.DataKey, o.PreviousDataKey = keys.Current, nil
		db, err := open(o)
		if err != nil {
			return Rotation{}, fmt.Errorf("store: rotate data key: %w", err)
		}
		n, err := rotateOpen(ctx, db, keys.Current, keyFile, prevFile, opts.keysSwapped)
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("store: rotate data key: %w", cerr)
		}
		if n.next != nil {
			rot.OldKeyID, rot.NewKeyID = KeyID(n.old), KeyID(n.next)
		}
		if err != nil {
			return rot, err
		}
		rot.Resealed = n.resealed
	}
	if boltPath != "" {
		if err := CompactFile(boltPath, opts.LockTimeout); err != nil {
			return rot, fmt.Errorf("store: rotate data key: %w", err)
		}
	}
	// The old key is not destroyed: what was sealed with it elsewhere
	// (backups, a database copied from this store) needs it. It is kept
	// under its id, out of the way of the node's own keys.
	rot.Retired = filepath.Join(filepath.Dir(prevFile), RetiredDataKeyFile(rot.OldKeyID))
	if err := os.Rename(prevFile, rot.Retired); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rot, fmt.Errorf("store: rotate data key: retire previous key: %w", err)
	}
	if err := syncDir(filepath.Dir(prevFile)); err != nil {
		return rot, fmt.Errorf("store: rotate data key: %w", err)
	}
	return rot, nil
}

// rotated is what rotateOpen did.
type rotated struct {
	old, next []byte
	resealed  int
}

// rotateOpen rotates the key of db, opened Exclusive with its key cur (in
// keyFile): it checks every value opens, writes a new key to keyFile and
// keeps cur in prevFile, and re-encrypts every value under the new key in
// one transaction, on the engine of db, whose lock it keeps throughout.
// An error before the key files change says nothing was changed.
func rotateOpen(ctx context.Context, db *DB, cur []byte, keyFile, prevFile string, keysSwapped func()) (rotated, error) {
	// Every page must be whole, or the compaction that follows the
	// re-encryption would fail on it with the new key already installed.
	if errs := db.eng.check(ctx); len(errs) > 0 {
		if err := checkNotMade(ctx, errs...); err != nil {
			return rotated{}, fmt.Errorf("store: rotate data key: nothing was changed: %w", err)
		}
		err := errors.Join(errs...)
		if !errors.Is(err, ErrDamaged) {
			err = &DamagedError{Path: db.path, Reason: "its consistency check fails: " + err.Error(), Err: err}
		}
		return rotated{}, fmt.Errorf("store: rotate data key: nothing was changed: %w", err)
	}
	// Every value must open with it, or the re-encryption would fail on
	// the first that does not, every time, with the new key already
	// installed.
	if err := db.eng.view(ctx, func(tx kvTx) error { return openAll(tx, db.sl) }); err != nil {
		if nerr := checkNotMade(ctx, err); nerr != nil {
			return rotated{}, fmt.Errorf("store: rotate data key: nothing was changed: %w", nerr)
		}
		return rotated{}, fmt.Errorf("store: rotate data key: nothing was changed: a value of the store does not open with its key, so it is damaged (vultron store copy --data checks it; restore it from a backup): %w", err)
	}
	next := make([]byte, DataKeySize)
	if _, err := rand.Read(next); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: %w", err)
	}
	sl, err := newSealer(next, cur)
	if err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: %w", err)
	}
	// Recorded before the key files change, so that a process given the
	// new key before the re-encryption is done is told to finish it.
	nextID := keyID(next)
	if err := db.eng.update(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketMeta).Put(keyNextDataKeyID, nextID[:])
	}); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: nothing was changed: %w", err)
	}
	nextFile := filepath.Join(filepath.Dir(keyFile), dataKeyNextFile)
	if err := writeKeyFile(nextFile, next); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: %w", err)
	}
	if err := os.Rename(keyFile, prevFile); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: keep previous key: %w", err)
	}
	if err := os.Rename(nextFile, keyFile); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: install new key: %w", err)
	}
	if err := syncDir(filepath.Dir(keyFile)); err != nil {
		return rotated{}, fmt.Errorf("store: rotate data key: %w", err)
	}
	if keysSwapped != nil {
		keysSwapped()
	}
	r := rotated{old: cur, next: next}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	// As Open does with a previous key: every value sealed with cur is
	// resealed with next in one transaction, which records next's id.
	if err := db.eng.update(ctx, func(tx kvTx) error {
		var err error
		r.resealed, err = checkDataKey(tx, sl)
		return err
	}); err != nil {
		return r, fmt.Errorf("store: rotate data key: %w", err)
	}
	if pg, ok := db.eng.(*pgEngine); ok {
		// A process the rotation could not see, which still listens,
		// stops now rather than at its next read or write.
		if err := pg.announceDataKey(ctx); err != nil {
			return r, fmt.Errorf("store: rotate data key: %w", err)
		}
	}
	return r, nil
}

// CompactFile rewrites the store file at path into a new file holding only
// live pages and renames it over path, so that freed pages (old values, old
// ciphertext) are no longer in the file. It holds the file lock throughout and
// fails with ErrLocked when a node has the file open.
func CompactFile(path string, lockTimeout time.Duration) error {
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	src, err := openBoltFile(path, false, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("compact %s: %w", path, ErrLocked)
		}
		return fmt.Errorf("compact %s: %w", path, err)
	}
	defer src.Close()
	tmp := path + ".compact"
	_ = os.Remove(tmp)
	dst, err := openBoltFile(tmp, false, &bolt.Options{Timeout: lockTimeout})
	if err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := compactBolt(path, dst, src); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Sync(); err != nil {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("compact %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// compactBolt is bolt.Compact of src (the file at path) into dst, with a
// panic of bbolt's on a damaged page of src a DamagedError.
func compactBolt(path string, dst, src *bolt.DB) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(path, &err, nil)
	return bolt.Compact(dst, src, 4<<20)
}
