package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/openvultron/vultron/internal/samefile"
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
// current schema version (migrate it first: vultron migrate); a bbolt
// source or destination is locked for the copy, so the node using it must
// be stopped. The whole source is read in one read transaction, so what is
// copied is one consistent state even from a PostgreSQL database that
// other processes keep writing.
//
// Copy only reads its source: a bbolt file is opened read-only, and a
// PostgreSQL database's tables are neither created nor migrated. What is
// not a store at this binary's schema version (a missing or empty file, a
// database without the tables) is refused before the destination is
// opened, so a refused copy creates nothing on either side; a bbolt
// destination file the copy created is removed when the copy fails.
//
// The destination's schema version is written last, so an interrupted copy
// leaves a destination that Open refuses ("no schema version") and that
// Copy refuses too (not empty): empty it and copy again. A destination a
// node holds is refused with ErrDestinationLocked, which is ErrLocked.
func Copy(ctx context.Context, from, to string) (st CopyStats, err error) {
	src, version, err := openCopySource(ctx, from)
	if err != nil {
		return st, fmt.Errorf("store: copy: %w", err)
	}
	defer src.close()
	if sameStore(from, to) {
		return st, fmt.Errorf("store: copy: %w: source and destination are the same store", ErrInvalid)
	}
	// A bbolt file that the copy creates goes again when the copy fails.
	created := ""
	if path, ok := strings.CutPrefix(to, "bolt:"); ok && path != "" {
		if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
			created = path
			if dir := filepath.Dir(path); !dirExists(dir) {
				return st, invalidf("the directory %s of the destination does not exist, so nothing was copied: create it first", dir)
			}
		}
	}
	dst, err := openRawEngine(ctx, to)
	if err != nil {
		if created != "" {
			_ = os.Remove(created)
		}
		if errors.Is(err, ErrLocked) {
			err = ErrDestinationLocked
		}
		return st, fmt.Errorf("store: copy: open destination: %w", err)
	}
	defer func() {
		_ = dst.close()
		if err != nil && created != "" {
			_ = os.Remove(created)
		}
	}()
	empty := true
	if err := dst.view(ctx, func(tx kvTx) error {
		return tx.ForEachBucket(func([]byte) error { empty = false; return nil })
	}); err != nil {
		return st, fmt.Errorf("store: copy: read destination: %w", err)
	}
	if !empty {
		return st, invalidf("destination %s is not empty, so nothing was copied: copy into a new file or an empty database", dst.describe())
	}
	c := &copier{ctx: ctx, dst: dst, st: &st, version: version}
	err = src.view(ctx, func(tx kvTx) error {
		// Checked again in the snapshot that is copied.
		if _, err := sourceVersion(tx, src.describe(), from); err != nil {
			return err
		}
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

// ErrDestinationLocked is Copy's ErrLocked when the node that holds its
// file is the destination's.
var ErrDestinationLocked = fmt.Errorf("%w: the destination", ErrLocked)

// SealedWith returns the id (KeyID) of the data key the store at rawURL is
// sealed with, or "" when it is not sealed, opening it as Copy opens its
// source (read-only, refused as Copy refuses it): a copy that is to be
// checked with a key can be refused before it is made.
func SealedWith(ctx context.Context, rawURL string) (string, error) {
	src, _, err := openCopySource(ctx, rawURL)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	defer src.close()
	id := ""
	err = src.view(ctx, func(tx kvTx) error {
		var err error
		id, err = sealedKeyID(tx, src.describe())
		return err
	})
	return id, err
}

// sealedKeyID returns recordedKeyID of tx, the store desc names, after
// comparing it with the key its values are sealed with: they are sealed,
// with the key the store records, in the same transaction that records
// it, so a record that names another key than the values' was damaged,
// and would send the operator looking for a key that never was
// (DamagedError).
func sealedKeyID(tx kvTx, desc string) (string, error) {
	id := recordedKeyID(tx)
	if vid, ok := firstSealedID(tx); ok && id != "" && hex.EncodeToString(vid[:]) != id {
		return "", &DamagedError{Path: desc, Reason: fmt.Sprintf("its record of the data key it is sealed with names key %s, but its values are sealed with key %x: the record was damaged", id, vid[:])}
	}
	return id, nil
}

// recordedKeyID returns the id (KeyID) of the data key the meta bucket of
// tx records the store is sealed with, or "" when it records none.
func recordedKeyID(tx kvTx) string {
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if raw := meta.Get(keyDataKeyID); len(raw) == keyIDSize {
			return hex.EncodeToString(raw)
		}
	}
	return ""
}

// statStoreFile is os.Stat of a store file that is to be read, not made,
// with an error that says what is wrong ("no such file or directory")
// without "stat" and the path, which the caller names.
func statStoreFile(path string) (fs.FileInfo, error) {
	fi, err := os.Stat(path)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fi, err
}

// openCopySource opens the store at rawURL to read it only, and returns
// its schema version record. It refuses, without creating anything, a
// bbolt file that does not exist or is empty, a database without the
// store's tables, and a store not at SchemaVersion.
func openCopySource(ctx context.Context, rawURL string) (engine, []byte, error) {
	var src engine
	switch {
	case strings.HasPrefix(rawURL, "bolt:") && len(rawURL) > len("bolt:"):
		path := strings.TrimPrefix(rawURL, "bolt:")
		fi, err := statStoreFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("source %s: %w", path, err)
		}
		switch {
		case fi.IsDir():
			return nil, nil, invalidf("source %s is a directory, not a store file", path)
		case fi.Size() == 0:
			return nil, nil, fmt.Errorf("%w: source %s is an empty file; it is not a store", ErrSchema, path)
		}
		eng, err := openBoltReadOnly(path, DefaultLockTimeout)
		if err != nil {
			return nil, nil, fmt.Errorf("open source %s: %w", path, err)
		}
		src = eng
	case isPostgresURL(rawURL):
		eng, err := openPostgresReadOnly(ctx, rawURL)
		if err != nil {
			return nil, nil, fmt.Errorf("open source: %w", err)
		}
		src = eng
	default:
		return nil, nil, invalidf("the store URL must start with bolt: or postgres://")
	}
	var version []byte
	if err := src.view(ctx, func(tx kvTx) error {
		v, err := sourceVersion(tx, src.describe(), rawURL)
		version = bytes.Clone(v)
		return err
	}); err != nil {
		_ = src.close()
		return nil, nil, err
	}
	return src, version, nil
}

// sourceVersion returns the schema version record of the copy source
// named desc (rawURL), or why it cannot be copied.
func sourceVersion(tx kvTx, desc, rawURL string) ([]byte, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return nil, fmt.Errorf("%w: source %s has no schema version; it is not a store", ErrSchema, desc)
	}
	v, ok := schemaVersionOf(meta)
	if !ok {
		return nil, fmt.Errorf("%w: source %s has a malformed schema version record", ErrSchema, desc)
	}
	switch {
	case v > SchemaVersion:
		return nil, fmt.Errorf("%w: source %s is at schema version %d, newer than this binary supports (%d)", ErrSchema, desc, v, SchemaVersion)
	case v < SchemaVersion:
		return nil, fmt.Errorf("%w: source %s is at schema version %d, not this binary's %d; %s", ErrSchema, desc, v, SchemaVersion, migrateHint(rawURL))
	}
	return meta.Get(keySchemaVersion), nil
}

// migrateHint says how to bring the store at rawURL to SchemaVersion.
func migrateHint(rawURL string) string {
	if strings.HasPrefix(rawURL, "bolt:") {
		return "migrate it first with vultron migrate --store " + rawURL
	}
	// vultron migrate brings a database's tables, not the records in
	// them, to this binary's version: a process of the node opening it
	// migrates those.
	return "start one vultron serve of this binary on it first, which migrates it"
}

// sameStore reports whether the store URLs from and to name the same
// store: the same bbolt file, or the same schema of the same database.
func sameStore(from, to string) bool {
	fp, fromBolt := strings.CutPrefix(from, "bolt:")
	tp, toBolt := strings.CutPrefix(to, "bolt:")
	switch {
	case fromBolt && toBolt:
		return samefile.Is(fp, tp)
	case isPostgresURL(from) && isPostgresURL(to):
		return describePostgres(from) == describePostgres(to) && searchPath(from) == searchPath(to)
	}
	return false
}

// searchPath returns the search_path parameter of a PostgreSQL URL.
func searchPath(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return u.Query().Get("search_path")
}

// openRawEngine opens the engine named by a store URL without preparing it
// as a store.
func openRawEngine(ctx context.Context, rawURL string) (engine, error) {
	switch {
	case strings.HasPrefix(rawURL, "bolt:") && len(rawURL) > len("bolt:"):
		return openBolt(strings.TrimPrefix(rawURL, "bolt:"), false, DefaultLockTimeout)
	case isPostgresURL(rawURL):
		return openPostgres(ctx, rawURL, false, false)
	}
	return nil, invalidf("the store URL must start with bolt: or postgres://")
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

// dirExists reports whether path is a directory.
func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
