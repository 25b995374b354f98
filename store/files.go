package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Shared files. Processes that share a PostgreSQL database act as one node,
// so they must hold the same secrets: the actors' private keys and key
// records (keys/ in the data directory), the API token, the metrics token
// and the webhook secret. The node keeps those files in its data directory
// as it does on bbolt, and on a shared database also in the bucket "files"
// (path relative to the data directory → content), sealed with the data
// key like case content. A process that starts copies the stored files
// into its data directory (PullFilesSeen), creates what is still missing as
// a lone node would, and stores what it created (PushFilesSince), all under
// the start-up lock (StartupLock), so two processes starting at once cannot
// create two different keys for one actor; should the lock be lost with
// its session, PushFilesSince refuses the second of two such keys. The
// data key itself is not kept in the database it protects: every process
// is given it (VULTRON_DATA_KEY or the same key file), and a process with
// another key is refused at Open.

var bucketFiles = []byte("files")

// maxSharedFile bounds a shared file: keys and tokens are a few KiB.
const maxSharedFile = 1 << 20

// checkSharedPath refuses a path that would leave the data directory.
func checkSharedPath(rel string) error {
	if rel == "" || filepath.IsAbs(rel) || !filepath.IsLocal(rel) || strings.ContainsRune(rel, 0) {
		return fmt.Errorf("shared file %q: %w: want a path inside the data directory", rel, ErrInvalid)
	}
	return nil
}

// PullFiles writes every file kept in the store into dir, replacing what is
// there (mode 0600, through a temporary file and a rename; directories
// 0700), and returns how many files it wrote. A store without a data key
// keeps no files.
func (db *DB) PullFiles(ctx context.Context, dir string) (int, error) {
	n, _, err := db.pullFiles(ctx, dir, false)
	return n, err
}

// FilesSeen is what PullFilesSeen read of the shared files: a digest of
// each file the store held, by its path relative to the data directory.
type FilesSeen map[string][sha256.Size]byte

// PullFilesSeen is PullFiles, and returns what it read, for the
// PushFilesSince that ends a process's start.
func (db *DB) PullFilesSeen(ctx context.Context, dir string) (FilesSeen, error) {
	_, seen, err := db.pullFiles(ctx, dir, false)
	return seen, err
}

// ErrFilesChanged is PushFilesSince's refusal of a file this process made
// or changed that another process stored differently since seen was read.
var ErrFilesChanged = errors.New("store: shared files changed")

// PullMissingFiles writes into dir, as PullFiles does, only the files kept
// in the store that dir does not hold, and returns how many it wrote. A
// store that kept a shared node's files (its database, or a copy of it)
// so gives them to a data directory that lacks them, as when a node moves
// between engines, and never replaces a file the directory holds.
func (db *DB) PullMissingFiles(ctx context.Context, dir string) (int, error) {
	n, _, err := db.pullFiles(ctx, dir, true)
	return n, err
}

// pullFiles is PullFiles, or PullMissingFiles when onlyMissing is set, and
// returns what it read.
func (db *DB) pullFiles(ctx context.Context, dir string, onlyMissing bool) (int, FilesSeen, error) {
	type file struct {
		rel  string
		data []byte
	}
	var files []file
	err := db.View(ctx, func(tx *ReadTx) error {
		files = files[:0]
		b := tx.bucket(bucketFiles)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				continue
			}
			data := b.open(k, v)
			if tx.sealErr != nil {
				return tx.sealErr
			}
			files = append(files, file{string(k), bytes.Clone(data)})
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: pull shared files: %w", err)
	}
	seen := make(FilesSeen, len(files))
	for _, f := range files {
		seen[f.rel] = sha256.Sum256(f.data)
	}
	written := 0
	for _, f := range files {
		if err := checkSharedPath(f.rel); err != nil {
			return 0, nil, fmt.Errorf("store: pull shared files: %w", err)
		}
		path := filepath.Join(dir, f.rel)
		if onlyMissing {
			_, err := os.Lstat(path)
			if err == nil {
				continue
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return 0, nil, fmt.Errorf("store: pull shared files: %w", err)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return 0, nil, fmt.Errorf("store: pull shared files: %w", err)
		}
		if cur, err := os.ReadFile(path); err == nil && bytes.Equal(cur, f.data) {
			continue
		}
		if err := writeKeyFile(path, f.data); err != nil {
			return 0, nil, fmt.Errorf("store: pull shared file %s: %w", f.rel, err)
		}
		written++
	}
	if onlyMissing {
		return written, seen, nil
	}
	return len(files), seen, nil
}

// PullFile writes the file kept in the store at rel (relative to dir) into
// dir, as PullFiles does, and reports whether the store holds it.
func (db *DB) PullFile(ctx context.Context, dir, rel string) (bool, error) {
	if err := checkSharedPath(rel); err != nil {
		return false, fmt.Errorf("store: pull shared file: %w", err)
	}
	key := []byte(filepath.ToSlash(rel))
	var data []byte
	err := db.View(ctx, func(tx *ReadTx) error {
		data = bytes.Clone(tx.bucket(bucketFiles).Get(key))
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: pull shared file %s: %w", rel, err)
	}
	if data == nil {
		return false, nil
	}
	path := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("store: pull shared file %s: %w", rel, err)
	}
	if err := writeKeyFile(path, data); err != nil {
		return false, fmt.Errorf("store: pull shared file %s: %w", rel, err)
	}
	return true, nil
}

// PushFiles stores the files at the given paths relative to dir, and every
// file in the directories among them, when the store does not hold them
// with the same content; a path that does not exist is skipped. It returns
// how many files it stored. The store must have a data key: the files are
// secrets.
func (db *DB) PushFiles(ctx context.Context, dir string, rels []string) (int, error) {
	return db.pushFiles(ctx, dir, rels, nil)
}

// sharedFilesIn reads the files at the given paths relative to dir, and
// every file in the directories among them (not the temporary file of a
// write in progress, isTempFile), by their slash-separated paths; a path
// that does not exist is skipped.
func sharedFilesIn(dir string, rels []string) (map[string][]byte, error) {
	found := map[string][]byte{}
	var add func(rel string) error
	add = func(rel string) error {
		if err := checkSharedPath(rel); err != nil {
			return err
		}
		path := filepath.Join(dir, rel)
		fi, err := os.Lstat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil
		case err != nil:
			return err
		case fi.IsDir():
			entries, err := os.ReadDir(path)
			if err != nil {
				return err
			}
			for _, e := range entries {
				if isTempFile(e.Name()) {
					continue // a write in progress, or one a crash interrupted
				}
				if err := add(filepath.Join(rel, e.Name())); err != nil {
					return err
				}
			}
			return nil
		case !fi.Mode().IsRegular():
			return nil
		case fi.Size() > maxSharedFile:
			return fmt.Errorf("shared file %s is %d bytes, more than %d", rel, fi.Size(), maxSharedFile)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found[filepath.ToSlash(rel)] = data
		return nil
	}
	for _, rel := range rels {
		if err := add(rel); err != nil {
			return nil, fmt.Errorf("store: push shared files: %w", err)
		}
	}
	return found, nil
}

// PushFilesSince stores, as PushFiles does, the files at the given paths
// that this process made or changed since seen was read (PullFilesSeen):
// a file whose content is still what seen says is not stored, even where
// the store now holds another (another process changed it: a key it
// rotated). It refuses with ErrFilesChanged, storing nothing, when another
// process stored one of the files this process made or changed since seen
// was read: the start of two processes overlapped (the start-up lock of
// one was lost with its session), and each made its own key for one
// actor. The process then starts again, taking the stored ones.
func (db *DB) PushFilesSince(ctx context.Context, dir string, rels []string, seen FilesSeen) (int, error) {
	if seen == nil {
		seen = FilesSeen{} // nothing seen: every file is this process's
	}
	return db.pushFiles(ctx, dir, rels, seen)
}

// pushFiles is PushFiles when seen is nil, and PushFilesSince otherwise.
func (db *DB) pushFiles(ctx context.Context, dir string, rels []string, seen FilesSeen) (int, error) {
	if db.sl == nil {
		return 0, fmt.Errorf("store: push shared files: %w: a store shared by several processes keeps their keys, sealed, and needs a data key", ErrDataKey)
	}
	found, err := sharedFilesIn(dir, rels)
	if err != nil {
		return 0, err
	}
	for rel, data := range found {
		if d, ok := seen[rel]; ok && d == sha256.Sum256(data) {
			delete(found, rel) // not this process's to store
		}
	}
	n := 0
	err = db.Update(ctx, func(tx *Tx) error {
		n = 0
		b := tx.bucket(bucketFiles)
		var changed []string
		for rel, data := range found {
			cur := b.Get([]byte(rel))
			if cur != nil && bytes.Equal(cur, data) {
				continue
			}
			if seen != nil {
				if d, ok := seen[rel]; cur == nil && ok || cur != nil && (!ok || d != sha256.Sum256(cur)) {
					changed = append(changed, rel)
					continue
				}
			}
			if err := b.Put([]byte(rel), data); err != nil {
				return err
			}
			n++
		}
		if len(changed) > 0 {
			slices.Sort(changed)
			return fmt.Errorf("%w: another process stored %s while this one started; start this one again to take them", ErrFilesChanged, strings.Join(changed, ", "))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: push shared files: %w", err)
	}
	return n, nil
}

// RemoveFiles drops the files at the given paths (relative to the data
// directory) from the store; dropping one it does not hold is not an error.
// Files are never dropped by PushFiles, which cannot tell a file another
// process made from one this process removed.
func (db *DB) RemoveFiles(ctx context.Context, rels []string) error {
	for _, rel := range rels {
		if err := checkSharedPath(rel); err != nil {
			return fmt.Errorf("store: remove shared files: %w", err)
		}
	}
	err := db.Update(ctx, func(tx *Tx) error {
		b := tx.bucket(bucketFiles)
		for _, rel := range rels {
			if err := b.Delete([]byte(filepath.ToSlash(rel))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: remove shared files: %w", err)
	}
	return nil
}

// StartupLock serializes the start of the processes that share the
// database: it blocks until no other process holds it, or ctx ends, and
// returns the function that releases it. On a store no other process can
// open (bbolt) it returns at once.
func (db *DB) StartupLock(ctx context.Context) (func(), error) {
	pg, ok := db.eng.(*pgEngine)
	if !ok {
		return func() {}, nil
	}
	release, err := pg.sessionLock(ctx, pg.locks.startup)
	if err != nil {
		return nil, fmt.Errorf("store: start-up lock: %w", err)
	}
	return release, nil
}
