package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenSchemaVersion(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) // nil: fresh file
		wantErr string                          // "" means Open succeeds
	}{
		{name: "fresh file gets the current version"},
		{
			// Version 3 rewrites nothing; it keeps binaries of version 2,
			// which would misread a report's clocks, from opening the file.
			name:    "version 2 is moved to the current version",
			prepare: func(t *testing.T, path string) { writeRawVersion(t, path, 2) },
		},
		{
			// Version 4 rewrites nothing either; it keeps binaries of
			// version 3 from keeping the old index of pending reports.
			name:    "version 3 is moved to the current version",
			prepare: func(t *testing.T, path string) { writeRawVersion(t, path, 3) },
		},
		{
			name:    "newer version is refused",
			prepare: func(t *testing.T, path string) { writeRawVersion(t, path, 7) },
			// It says what to do: a downgrade has no way back.
			wantErr: "database schema version 7 is newer than this binary supports (4): a newer release opened it; run that release, or restore a backup made before it",
		},
		{
			name:    "older version is refused",
			prepare: func(t *testing.T, path string) { writeRawVersion(t, path, 0) },
			wantErr: "database schema version 0 is older than this binary can migrate (1 to 4)",
		},
		{
			name: "foreign bbolt file is refused",
			prepare: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					_, err := tx.CreateBucket([]byte("something_else"))
					return err
				})
			},
			wantErr: "not a store file",
		},
		{
			name: "malformed version record is refused",
			prepare: func(t *testing.T, path string) {
				rawUpdate(t, path, func(tx *bolt.Tx) error {
					b, err := tx.CreateBucket(bucketMeta)
					if err != nil {
						return err
					}
					return b.Put(keySchemaVersion, []byte("one"))
				})
			},
			wantErr: "malformed schema version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			db, err := Open(path, Options{NoSync: true})
			if tt.wantErr != "" {
				if err == nil {
					db.Close()
					t.Fatalf("Open succeeded, want error containing %q", tt.wantErr)
				}
				if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Open error = %v, want ErrSchema containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			var got uint64
			var buckets []string
			rawView(t, path, func(tx *bolt.Tx) error {
				got = binary.BigEndian.Uint64(tx.Bucket(bucketMeta).Get(keySchemaVersion))
				return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
					buckets = append(buckets, string(name))
					return nil
				})
			})
			if got != SchemaVersion {
				t.Errorf("stored schema version = %d, want %d", got, SchemaVersion)
			}
			if len(buckets) != len(allBuckets) {
				t.Errorf("buckets = %v, want %d buckets", buckets, len(allBuckets))
			}
			// A second open of a file written by this binary succeeds.
			db, err = Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		})
	}
}

func writeRawVersion(t *testing.T, path string, v uint64) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		raw := make([]byte, 8)
		binary.BigEndian.PutUint64(raw, v)
		return b.Put(keySchemaVersion, raw)
	})
}

func rawUpdate(t testing.TB, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(fn); err != nil {
		t.Fatal(err)
	}
}

func rawView(t testing.TB, path string, fn func(*bolt.Tx) error) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.View(fn); err != nil {
		t.Fatal(err)
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	start := time.Now()
	second, err := Open(path, Options{NoSync: true, LockTimeout: 200 * time.Millisecond})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("error = %v, want ErrLocked saying the data directory is in use", err)
	}
	if elapsed > 2*time.Second {
		t.Errorf("second Open took %s, want about the 200ms lock timeout", elapsed)
	}
}

func TestOpenFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	// An existing file with loose permissions is tightened too.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
}

func TestClosedDB(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("second Close = %v, want nil", err)
		}
		ctx := context.Background()
		if err := db.PutLocalActor(ctx, LocalActor{Name: "a"}); !errors.Is(err, ErrClosed) {
			t.Errorf("write after Close = %v, want ErrClosed", err)
		}
		if _, err := db.LocalActors(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("read after Close = %v, want ErrClosed", err)
		}
	})
}

// A store file cut short (a copy that stopped, a disk that filled) is
// refused as damaged, in one error that says to restore it, by every way
// of opening it: bbolt itself would panic, or fault, on the pages it
// maps past the end of the file.
func TestTruncatedFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vultron.db")
	db, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		mustPutActor(t, db, fmt.Sprintf("actor%03d", i))
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 8*4096 {
		t.Fatalf("the store file is %d bytes, want a few pages to cut", fi.Size())
	}
	if err := os.Truncate(path, fi.Size()/2+100); err != nil {
		t.Fatal(err)
	}
	want := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "restore it from a backup") {
			t.Errorf("%s: error = %v, want ErrDamaged saying to restore the file from a backup", what, err)
		}
	}
	db, err = Open(path, Options{NoSync: true})
	if err == nil {
		db.Close()
	}
	want("Open", err)
	_, _, err = MigrateBolt(context.Background(), path, Options{NoSync: true})
	want("MigrateBolt", err)
	_, err = Copy(context.Background(), "bolt:"+path, "bolt:"+filepath.Join(dir, "copy.db"))
	want("Copy", err)
}
