package store

import (
	"context"
	"errors"
	"fmt"
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
}

// openBolt opens (creating with mode 0600) the bbolt file at path.
func openBolt(path string, noSync bool, lockTimeout time.Duration) (*boltEngine, error) {
	bdb, err := openBoltFile(path, false, &bolt.Options{
		Timeout: lockTimeout,
		NoSync:  noSync,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (file lock not acquired within %s)", ErrLocked, lockTimeout)
		}
		return nil, err
	}
	// bbolt applies the mode only when it creates the file; tighten an
	// existing file too, since it holds the node's whole state.
	if err := os.Chmod(path, 0o600); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return &boltEngine{db: bdb, path: path}, nil
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
func openBoltFile(path string, walk bool, opts *bolt.Options) (bdb *bolt.DB, err error) {
	var (
		f      *os.File
		opened atomic.Bool
	)
	opts.OpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		if opened.Swap(true) {
			// bbolt keeps this function and opens the file with it again
			// for a copy (Tx.WriteTo with a WriteFlag, Tx.CopyFile): the
			// store holds the lock already, and the file was checked.
			return os.OpenFile(name, flag, perm)
		}
		file, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		if err := lockBoltFile(file, !opts.ReadOnly, opts.Timeout); err != nil {
			_ = file.Close()
			return nil, err
		}
		if err := checkBoltOpenFile(file, name, walk); err != nil {
			_ = file.Close()
			return nil, err
		}
		f = file
		return file, nil
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer recoverDamage(path, &err, func() {
		if f != nil {
			_ = f.Close()
		}
	})
	return bolt.Open(path, 0o600, opts)
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
