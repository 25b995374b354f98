package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// boltEngine is the engine of a bbolt file: the store's model is bbolt's
// own, so every method is a thin wrapper. The wrappers are single-pointer
// structs, which an interface holds without allocating.
type boltEngine struct {
	db   *bolt.DB
	path string
	// walked says that every page was walked at open, under a shared lock
	// that keeps writers out (openBoltReadOnly): check need not again.
	walked bool
	// created says that the open created the file (openBolt), which
	// discard then removes.
	created bool
}

// openBolt opens (creating with mode 0600) the bbolt file at path. When it
// creates the file and bbolt fails to write its first pages (a full disk),
// it removes the file again (openBoltFileCreating); so does discard when
// the store's first writes into it fail.
func openBolt(path string, noSync bool, lockTimeout time.Duration) (*boltEngine, error) {
	bdb, created, err := openBoltFileCreating(path, false, &bolt.Options{
		Timeout: lockTimeout,
		NoSync:  noSync,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (file lock not acquired within %s)", ErrLocked, lockTimeout)
		}
		return nil, err
	}
	e := &boltEngine{db: bdb, path: path, created: created}
	// bbolt applies the mode only when it creates the file; tighten an
	// existing file too, since it holds the node's whole state.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = e.discard()
		return nil, err
	}
	return e, nil
}

// discard closes an engine whose store could not be made ready (openEngine
// fails), and if its open created the file it first removes the file,
// while it holds the file's lock: a store whose first writes failed (a
// full disk) leaves no file that the next open would find empty or cut
// short and refuse. A file that was there before the open is kept.
func (e *boltEngine) discard() error {
	var rmErr error
	if e.created {
		if err := os.Remove(e.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			rmErr = fmt.Errorf("remove %s, which the open created: %w", e.path, err)
		}
	}
	return errors.Join(rmErr, e.close())
}

// openBoltReadOnly opens the existing bbolt file at path for reading only:
// it creates nothing, changes nothing (mode included), and takes the
// shared lock, which a process holding the file for writing (a running
// node) keeps it from taking. Its update fails. Its users read the whole
// file (a copy, a backup's check), so it walks every page first
// (walkBoltPages): a page that points back up its tree would make bbolt's
// reads recurse until the stack overflows, which no recover catches.
func openBoltReadOnly(path string, lockTimeout time.Duration) (*boltEngine, error) {
	bdb, err := openBoltFile(path, true, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (file lock not acquired within %s)", ErrLocked, lockTimeout)
		}
		return nil, err
	}
	return &boltEngine{db: bdb, path: path, walked: true}, nil
}

// openBoltFile is bolt.Open (mode 0600) of a file checked first: it takes
// the file's lock (lockBoltFile, within opts.Timeout, else ErrLocked) and,
// holding it, checks what every open reads (checkBoltOpenFile) or, with
// walk, every page (walkBoltPages); a damaged file is a DamagedError. A
// panic of bbolt's on a damaged page (reading the freelist) is turned into
// a DamagedError too; the file bbolt opened is then closed, and its
// mapping is left to the end of the process (on Linux, so is its lock,
// which the mapping holds: a later open in this process is ErrLocked).
func openBoltFile(path string, walk bool, opts *bolt.Options) (*bolt.DB, error) {
	bdb, _, err := openBoltFileCreating(path, walk, opts)
	return bdb, err
}

// openBoltFileCreating is openBoltFile that also says whether it created
// the file. A file it created is removed again when bolt.Open fails (bbolt
// could not write its first pages: a full disk), so that no empty or
// cut-short file is left for the next open to refuse; a file that was
// there before is never removed.
func openBoltFileCreating(path string, walk bool, opts *bolt.Options) (bdb *bolt.DB, created bool, err error) {
	var (
		f      *os.File
		info   os.FileInfo // of the file, when this open created it
		opened atomic.Bool
	)
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if opened.Swap(true) {
			// bbolt keeps this function and opens the file with it again
			// for a copy (Tx.WriteTo with a WriteFlag, Tx.CopyFile): the
			// store holds the lock already, and the file was checked.
			return os.OpenFile(name, flag, perm)
		}
		file, createdInfo, err := openLockedBoltFile(name, flag, perm, func(f *os.File) error { return lockBoltFile(f, !opts.ReadOnly, opts.Timeout) })
		if err != nil {
			return nil, err
		}
		info = createdInfo
		if err := checkBoltOpenFile(file, name, walk); err != nil {
			_ = file.Close()
			return nil, err
		}
		f = file
		return file, nil
	}
	defer func() {
		// After recoverDamage, which may set err.
		if err != nil && info != nil {
			if rmErr := removeCreatedBoltFile(path, info); rmErr != nil {
				err = fmt.Errorf("%w; and %w", err, rmErr)
			}
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(path, &err, func() {
		if f != nil {
			_ = f.Close()
		}
	})
	bdb, err = bolt.Open(path, 0o600, opts)
	return bdb, info != nil, err
}

// openLockedBoltFile opens the store file name as bbolt asks (flag, perm)
// and takes its lock (lockBoltFile); created is the file's FileInfo when
// this open created it, nil otherwise. When bbolt may create the file, it is created exclusively,
// to know that this open made it. A file that was removed or replaced
// while its lock was awaited (an open that created it and failed removes
// it, holding the lock) is opened again: the lock of a file no longer at
// name would guard nothing, and its pages would be written to no file.
func openLockedBoltFile(name string, flag int, perm os.FileMode, lock func(*os.File) error) (file *os.File, created os.FileInfo, err error) {
	for tries := 1; ; tries++ {
		file, isNew, err := openOrCreateBoltFile(name, flag, perm)
		if err != nil {
			return nil, nil, err
		}
		if err := lock(file); err != nil {
			_ = file.Close()
			return nil, nil, err
		}
		held, err := file.Stat()
		if err != nil {
			_ = file.Close()
			if isNew {
				_ = os.Remove(name) // empty, and locked: no other open uses it
			}
			return nil, nil, err
		}
		if isNew {
			// Another open may have taken the lock between the create
			// and this lock, and made a store of the file: then it is
			// that store, which no failure of this open removes.
			// bbolt writes only under the lock, so a file still empty
			// is this open's.
			if held.Size() != 0 {
				return file, nil, nil
			}
			return file, held, nil // only a failed open of this one removes it
		}
		now, err := os.Stat(name)
		if err == nil && os.SameFile(held, now) {
			return file, nil, nil
		}
		_ = file.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, nil, err
		}
		if tries == maxBoltOpenTries {
			return nil, nil, fmt.Errorf("open %s: the file was removed or replaced while its lock was awaited, %d times", name, tries)
		}
	}
}

// maxBoltOpenTries bounds how often openLockedBoltFile opens a file that
// is removed or replaced under it.
const maxBoltOpenTries = 5

// openOrCreateBoltFile opens name with flag and perm, as os.OpenFile;
// created says that it created the file. With os.O_CREATE it creates the
// file exclusively, or else opens the file that is there; a name that is
// there for the one and not for the other (a link to a file that does not
// exist) is opened as asked, and not said to be created.
func openOrCreateBoltFile(name string, flag int, perm os.FileMode) (*os.File, bool, error) {
	if flag&os.O_CREATE == 0 {
		f, err := os.OpenFile(name, flag, perm)
		return f, false, err
	}
	for range maxBoltOpenTries {
		f, err := os.OpenFile(name, flag|os.O_EXCL, perm)
		if err == nil {
			return f, true, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, false, err
		}
		f, err = os.OpenFile(name, flag&^os.O_CREATE, perm)
		if !errors.Is(err, fs.ErrNotExist) {
			return f, false, err
		}
		// Removed in between: create it.
	}
	f, err := os.OpenFile(name, flag, perm)
	return f, false, err
}

// wholeBoltStore reports whether the bbolt file f is a store bbolt made
// whole: both meta pages valid, and as long as the pages they count. What
// a failed first open leaves (nothing, or some of the first pages) is not.
func wholeBoltStore(f *os.File) (bool, error) {
	m, ok0, ok1 := boltMetas(f)
	if !ok0 || !ok1 {
		return false, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, err
	}
	return uint64(st.Size())/uint64(m.pageSize) >= m.pgid, nil
}

// removeCreatedBoltFile removes the file at path that an open which failed
// created (info), so that the next open creates it anew. bbolt has closed
// the file, and given up its lock, when its open fails: the file is
// opened and locked again, without waiting, and removed only if it is
// still the one that open created and no other open holds it (one that
// opened it meanwhile, and keeps it, owns it now).
func removeCreatedBoltFile(path string, info os.FileInfo) error {
	if err := removeIfStillCreated(path, info); err != nil {
		return fmt.Errorf("remove %s, which the open created: %w", path, err)
	}
	return nil
}

// removeIfStillCreated is removeCreatedBoltFile without the error's
// context.
func removeIfStillCreated(path string, info os.FileInfo) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if err := lockBoltFile(f, true, time.Nanosecond); err != nil {
		if errors.Is(err, ErrLocked) {
			return nil
		}
		return err
	}
	held, err := f.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(held, info) {
		return nil
	}
	whole, err := wholeBoltStore(f)
	if err != nil || whole {
		// A whole store: made by another open while bbolt had let go of
		// the lock (the file was empty then), or this open's own first
		// pages, which did get written. Either opens; it is not removed.
		return err
	}
	return os.Remove(path)
}

// view runs fn in a read transaction. A panic of bbolt's on a damaged
// page, or a fault reading the file, is a DamagedError; bbolt has rolled
// the transaction back.
func (e *boltEngine) view(_ context.Context, fn func(kvTx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(e.path, &err, nil)
	err = e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// update runs fn in a read-write transaction, with a damaged page or file
// reported as by view.
func (e *boltEngine) update(_ context.Context, fn func(kvTx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(e.path, &err, nil)
	return growErrno(e.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

// growErrno recovers the errno of bbolt's failure to grow its file, which
// bbolt formats with %s ("file resize error: truncate …: file too
// large"), so that a full disk or a file size limit is an ErrUnavailable
// (see unavailable) rather than an internal error. Other errors are
// returned as they are.
func growErrno(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "file resize error: ") && !strings.HasPrefix(msg, "file sync error: ") {
		return err
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT, syscall.EFBIG} {
		if strings.HasSuffix(msg, ": "+errno.Error()) {
			return &growError{msg: msg, errno: errno}
		}
	}
	return err
}

// growError is bbolt's failure to grow its file, with its errno.
type growError struct {
	msg   string
	errno syscall.Errno
}

func (e *growError) Error() string { return e.msg }

// Unwrap returns the errno.
func (e *growError) Unwrap() error { return e.errno }

// check checks the whole file: first its pages, walked from the file
// itself (walkPages, unless the open walked them), then, only when they form a tree that ends, every
// bucket through bbolt's cursors (walk) and bbolt's own check, which
// trust the pages they read.
func (e *boltEngine) check(ctx context.Context) []error {
	if !e.walked {
		if err := e.walkPages(); err != nil {
			return []error{err}
		}
	}
	if err := e.walk(); err != nil {
		return []error{err}
	}
	var errs []error
	err := e.view(ctx, func(t kvTx) error {
		for err := range t.(boltTx).tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errs
}

// walkPages walks the pages of the file (walkBoltPages) as of a read
// transaction, which keeps them from being written over meanwhile.
func (e *boltEngine) walkPages() error {
	err := e.db.View(func(tx *bolt.Tx) error {
		// Read within the transaction, which holds bbolt's mapping: a
		// commit that grows the file remaps it, and DB.Info reads the
		// mapping unguarded (a nil pointer while a remap was under way).
		pageSize := uint64(tx.DB().Info().PageSize)
		return walkBoltPages(e.path, boltMetaPage{
			pageSize: uint32(pageSize),
			root:     uint64(tx.Cursor().Bucket().Root()),
			freelist: boltNoFreelist, // not told: read from its meta page
			pgid:     uint64(tx.Size()) / pageSize,
			txid:     uint64(tx.ID()),
		})
	})
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// walk reads every page of every bucket, and the last byte of every
// value, in the calling goroutine, where a page number or a value that
// points past the end of a damaged file is an error: in bbolt's check,
// which runs in a goroutine of its own, it is a memory fault that ends
// the process.
func (e *boltEngine) walk() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(e.path, &err, nil)
	return e.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(_ []byte, b *bolt.Bucket) error {
			walkBucket(b)
			return nil
		})
	})
}

// walkBucket reads every key and value of b and of its nested buckets.
func walkBucket(b *bolt.Bucket) {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		switch {
		case v == nil:
			if nb := b.Bucket(k); nb != nil {
				walkBucket(nb)
			}
		case len(v) > 0:
			_ = v[len(v)-1]
		}
	}
}

func (e *boltEngine) close() error { return e.db.Close() }

func (e *boltEngine) describe() string { return e.path }

type boltTx struct{ tx *bolt.Tx }

func (t boltTx) Bucket(name []byte) kvBucket { return wrapBolt(t.tx.Bucket(name)) }

func (t boltTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	b, err := t.tx.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBkt{b}, nil
}

func (t boltTx) DeleteBucket(name []byte) error { return boltBucketErr(t.tx.DeleteBucket(name)) }

func (t boltTx) ForEachBucket(fn func(name []byte) error) error {
	return t.tx.ForEach(func(name []byte, _ *bolt.Bucket) error { return fn(name) })
}

func (t boltTx) Writable() bool { return t.tx.Writable() }

func (t boltTx) err() error { return nil }

// wrapBolt returns b as a kvBucket, and a nil bucket as a nil interface.
func wrapBolt(b *bolt.Bucket) kvBucket {
	if b == nil {
		return nil
	}
	return boltBkt{b}
}

// boltBucketErr maps bbolt's missing-bucket error to the engine's.
func boltBucketErr(err error) error {
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return errBucketNotFound
	}
	return err
}

type boltBkt struct{ b *bolt.Bucket }

func (b boltBkt) Get(key []byte) []byte { return b.b.Get(key) }

// Put stores value; a nil value is stored as an empty one, so that it reads
// back as empty, not as the nil of a sub-bucket, even in the transaction
// that wrote it (the file holds the same zero-length value either way).
func (b boltBkt) Put(key, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return b.b.Put(key, value)
}

func (b boltBkt) Delete(key []byte) error     { return b.b.Delete(key) }
func (b boltBkt) Bucket(name []byte) kvBucket { return wrapBolt(b.b.Bucket(name)) }

func (b boltBkt) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	s, err := b.b.CreateBucketIfNotExists(name)
	if err != nil {
		return nil, err
	}
	return boltBkt{s}, nil
}

func (b boltBkt) DeleteBucket(name []byte) error { return boltBucketErr(b.b.DeleteBucket(name)) }
func (b boltBkt) Cursor() kvCursor               { return boltCursor{b.b.Cursor()} }
func (b boltBkt) NextSequence() (uint64, error)  { return b.b.NextSequence() }
func (b boltBkt) Sequence() uint64               { return b.b.Sequence() }
func (b boltBkt) SetSequence(seq uint64) error   { return b.b.SetSequence(seq) }
func (b boltBkt) Writable() bool                 { return b.b.Writable() }

func (b boltBkt) ForEach(fn func(k, v []byte) error) error { return b.b.ForEach(fn) }

func (b boltBkt) ForEachBucket(fn func(k []byte) error) error { return b.b.ForEachBucket(fn) }

type boltCursor struct{ c *bolt.Cursor }

func (c boltCursor) First() ([]byte, []byte)        { return c.c.First() }
func (c boltCursor) Last() ([]byte, []byte)         { return c.c.Last() }
func (c boltCursor) Seek(s []byte) ([]byte, []byte) { return c.c.Seek(s) }
func (c boltCursor) Next() ([]byte, []byte)         { return c.c.Next() }
func (c boltCursor) Prev() ([]byte, []byte)         { return c.c.Prev() }
func (c boltCursor) Delete() error                  { return c.c.Delete() }
