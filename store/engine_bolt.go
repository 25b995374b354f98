package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
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
}

// openBolt opens (creating with mode 0600) the bbolt file at path.
func openBolt(path string, noSync bool, lockTimeout time.Duration) (*boltEngine, error) {
	if err := checkBoltLength(path); err != nil {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{
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
// node) keeps it from taking. Its update fails.
func openBoltReadOnly(path string, lockTimeout time.Duration) (*boltEngine, error) {
	if err := checkBoltLength(path); err != nil {
		return nil, err
	}
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("%w (file lock not acquired within %s)", ErrLocked, lockTimeout)
		}
		return nil, err
	}
	return &boltEngine{db: bdb, path: path}, nil
}

// checkBoltLength refuses, with ErrDamaged, a bbolt file shorter than the
// pages its newest valid meta page says it holds: bbolt maps the file and
// would panic, or fault, on the first page past its end. A missing or
// empty file (one bbolt creates) and a file without a valid meta page
// (which bbolt refuses itself) pass.
func checkBoltLength(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // bbolt creates it, or says why it cannot
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	size, pages, ok := boltMeta(f, 0)
	if !ok {
		size = uint32(os.Getpagesize())
	}
	if s1, p1, ok1 := boltMeta(f, int64(size)); ok1 && s1 == size && (!ok || p1.txid > pages.txid) {
		pages, ok = p1, true
	}
	if !ok {
		return nil
	}
	if need := int64(pages.pgid) * int64(size); fi.Size() < need {
		return fmt.Errorf("%w: %s is %d bytes long, but its pages take %d: it was cut short (a copy that stopped, a full disk); restore it from a backup", ErrDamaged, path, fi.Size(), need)
	}
	return nil
}

// boltPages is what checkBoltLength reads of a meta page: the high-water
// mark of the file's pages and the transaction that wrote it.
type boltPages struct{ pgid, txid uint64 }

// boltMeta reads the meta page at off of a bbolt file: its page size and
// pages, and whether it is a valid meta page (magic, version, checksum).
// bbolt writes it in the machine's byte order.
func boltMeta(r io.ReaderAt, off int64) (uint32, boltPages, bool) {
	const header, metaSize = 16, 64 // page header; meta up to its checksum
	buf := make([]byte, header+metaSize)
	if _, err := r.ReadAt(buf, off); err != nil {
		return 0, boltPages{}, false
	}
	m := buf[header:]
	ord := binary.NativeEndian
	if ord.Uint32(m[0:]) != 0xED0CDAED || ord.Uint32(m[4:]) != 2 {
		return 0, boltPages{}, false
	}
	h := fnv.New64a()
	_, _ = h.Write(m[:56])
	if h.Sum64() != ord.Uint64(m[56:]) {
		return 0, boltPages{}, false
	}
	size := ord.Uint32(m[8:])
	if size < 1024 || size&(size-1) != 0 {
		return 0, boltPages{}, false
	}
	return size, boltPages{pgid: ord.Uint64(m[40:]), txid: ord.Uint64(m[48:])}, true
}

func (e *boltEngine) view(_ context.Context, fn func(kvTx) error) error {
	err := e.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

func (e *boltEngine) update(_ context.Context, fn func(kvTx) error) error {
	return e.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) })
}

func (e *boltEngine) check(context.Context) []error {
	if err := e.walk(); err != nil {
		return []error{err}
	}
	var errs []error
	_ = e.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	return errs
}

// walk reads every page of every bucket, and the last byte of every
// value, in the calling goroutine, where a page number or a value that
// points past the end of a damaged file is an error: in bbolt's check,
// which runs in a goroutine of its own, it is a memory fault that ends
// the process.
func (e *boltEngine) walk() (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("a page of the file cannot be read: %v", r)
		}
	}()
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
