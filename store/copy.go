package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
)

// CopyStats is what Copy copied.
type CopyStats struct {
	Buckets int
	Keys    int
	Bytes   int64
}

// copyChunk bounds the keys, and copyChunkBytes the bytes, written to the
// destination per transaction, so that a large store is copied in bounded
// memory (bbolt holds a transaction's changes in memory until it commits).
const (
	copyChunk      = 10000
	copyChunkBytes = 32 << 20
)

// Copy copies the store at from into the empty store at to (URLs as for
// OpenURL), bucket by bucket, values as they are stored: sealed values stay
// sealed under the same data key, since their additional data (bucket path
// and key) does not change, so Copy needs no key. The source must be at the
// current schema version (open it once with this binary first); a bbolt
// source or destination is locked for the copy, so the node using it must
// be stopped. The whole source is read in one read transaction, so what is
// copied is one consistent state even from a PostgreSQL database that
// other processes keep writing.
//
// The destination's schema version is written last, so an interrupted copy
// leaves a destination that Open refuses ("no schema version") and that
// Copy refuses too (not empty): empty it and copy again.
func Copy(ctx context.Context, from, to string) (CopyStats, error) {
	var st CopyStats
	src, err := openRawEngine(ctx, from)
	if err != nil {
		return st, fmt.Errorf("store: copy: open source: %w", err)
	}
	defer src.close()
	dst, err := openRawEngine(ctx, to)
	if err != nil {
		return st, fmt.Errorf("store: copy: open destination: %w", err)
	}
	defer dst.close()
	if src.describe() == dst.describe() {
		return st, fmt.Errorf("store: copy: %w: source and destination are the same store", ErrInvalid)
	}
	empty := true
	if err := dst.view(ctx, func(tx kvTx) error {
		return tx.ForEachBucket(func([]byte) error { empty = false; return nil })
	}); err != nil {
		return st, fmt.Errorf("store: copy: read destination: %w", err)
	}
	if !empty {
		return st, fmt.Errorf("store: copy: %w: destination %s is not empty", ErrInvalid, dst.describe())
	}
	c := &copier{ctx: ctx, dst: dst, st: &st}
	err = src.view(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: source %s has no schema version; it is not a store", ErrSchema, src.describe())
		}
		raw := meta.Get(keySchemaVersion)
		if len(raw) != 8 || binary.BigEndian.Uint64(raw) != SchemaVersion {
			return fmt.Errorf("%w: source %s is not at schema version %d; open it once with this binary (vultron migrate) first", ErrSchema, src.describe(), SchemaVersion)
		}
		c.version = bytes.Clone(raw)
		if err := tx.ForEachBucket(func(name []byte) error {
			return c.bucket([][]byte{bytes.Clone(name)}, tx.Bucket(name))
		}); err != nil {
			return err
		}
		if err := tx.err(); err != nil {
			return err
		}
		return c.flush()
	})
	if err != nil {
		return st, fmt.Errorf("store: copy %s to %s: %w", src.describe(), dst.describe(), err)
	}
	// Last: the destination becomes a store only now.
	err = dst.update(ctx, func(tx kvTx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, c.version)
	})
	if err != nil {
		return st, fmt.Errorf("store: copy: write the schema version: %w", err)
	}
	return st, nil
}

// openRawEngine opens the engine named by a store URL without preparing it
// as a store.
func openRawEngine(ctx context.Context, rawURL string) (engine, error) {
	switch {
	case strings.HasPrefix(rawURL, "bolt:") && len(rawURL) > len("bolt:"):
		return openBolt(strings.TrimPrefix(rawURL, "bolt:"), false, DefaultLockTimeout)
	case isPostgresURL(rawURL):
		return openPostgres(ctx, rawURL, false)
	}
	return nil, fmt.Errorf("%w: the store URL must start with bolt: or postgres://", ErrInvalid)
}

// copier writes what it is given into the destination in chunks.
type copier struct {
	ctx     context.Context
	dst     engine
	st      *CopyStats
	version []byte
	pending []copyOp
	size    int
}

// copyOp is one write into the destination: a key and value, a bucket to
// create (value nil and bucket true) or a sequence to set.
type copyOp struct {
	path   [][]byte
	key    []byte
	value  []byte
	bucket bool
	seq    uint64
	setSeq bool
}

// bucket copies the bucket b found at path, and everything under it.
func (c *copier) bucket(path [][]byte, b kvBucket) error {
	c.st.Buckets++
	c.add(copyOp{path: path, bucket: true})
	cur := b.Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if v == nil {
			sub := b.Bucket(k)
			if sub == nil {
				continue
			}
			if err := c.bucket(append(path[:len(path):len(path)], bytes.Clone(k)), sub); err != nil {
				return err
			}
			continue
		}
		if len(path) == 1 && bytes.Equal(path[0], bucketMeta) && bytes.Equal(k, keySchemaVersion) {
			continue // written last
		}
		c.st.Keys++
		c.st.Bytes += int64(len(v))
		c.add(copyOp{path: path, key: bytes.Clone(k), value: bytes.Clone(v)})
		if len(c.pending) >= copyChunk || c.size >= copyChunkBytes {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
	if seq := b.Sequence(); seq != 0 {
		c.add(copyOp{path: path, seq: seq, setSeq: true})
	}
	return nil
}

func (c *copier) add(op copyOp) {
	c.pending = append(c.pending, op)
	c.size += len(op.key) + len(op.value)
}

// flush writes the pending operations in one destination transaction.
func (c *copier) flush() error {
	if len(c.pending) == 0 {
		return nil
	}
	err := c.dst.update(c.ctx, func(tx kvTx) error {
		var (
			lastPath [][]byte
			b        kvBucket
		)
		for _, op := range c.pending {
			if b == nil || !samePath(lastPath, op.path) {
				var err error
				if b, err = walkCreate(tx, op.path); err != nil {
					return err
				}
				lastPath = op.path
			}
			switch {
			case op.bucket:
			case op.setSeq:
				if err := b.SetSequence(op.seq); err != nil {
					return err
				}
			default:
				if err := b.Put(op.key, op.value); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write to %s: %w", c.dst.describe(), err)
	}
	c.pending, c.size = c.pending[:0], 0
	return nil
}

// walkCreate returns the bucket at path, creating what is missing.
func walkCreate(tx kvTx, path [][]byte) (kvBucket, error) {
	b, err := tx.CreateBucketIfNotExists(path[0])
	if err != nil {
		return nil, fmt.Errorf("bucket %q: %w", path[0], err)
	}
	for _, name := range path[1:] {
		if b, err = b.CreateBucketIfNotExists(name); err != nil {
			return nil, fmt.Errorf("bucket %q: %w", name, err)
		}
	}
	return b, nil
}

func samePath(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
