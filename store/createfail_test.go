//go:build linux

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	fsizeChildEnv = "STORE_FSIZE_CHILD"
	fsizePathEnv  = "STORE_FSIZE_PATH"
)

// TestFailedFirstOpenLeavesNoFile: when the disk fills up under the open
// that creates the store file, in bbolt's first pages or in the store's
// first commit, the open fails and leaves no file behind, so that the
// next open, once there is room, creates a good store rather than
// refusing an empty or cut-short one. A file that was there before the
// open is kept as it was. The full disk is a child process whose files
// may not grow past a limit (RLIMIT_FSIZE): a write past it fails with
// EFBIG (Go ignores SIGXFSZ).
func TestFailedFirstOpenLeavesNoFile(t *testing.T) {
	if os.Getenv(fsizeChildEnv) != "" {
		fsizeChild(t, os.Getenv(fsizeChildEnv), os.Getenv(fsizePathEnv))
		return
	}
	ps := int64(os.Getpagesize()) // bbolt's page size
	tests := []struct {
		name  string
		limit int64
		// existing, when not nil, is the content of a file at the path
		// before the open, which the failed open must neither remove nor
		// replace.
		existing []byte
	}{
		{name: "bbolt's first pages", limit: 2 * ps},
		{name: "the store's first commit", limit: 4 * ps}, // bbolt writes 4 pages first
		{name: "an empty file that was there", limit: 2 * ps, existing: []byte{}},
		{name: "a file that was there", limit: 2 * ps, existing: []byte("not a store")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			var before os.FileInfo
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o600); err != nil {
					t.Fatal(err)
				}
				var err error
				if before, err = os.Stat(path); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestFailedFirstOpenLeavesNoFile$", "-test.count=1")
			cmd.Env = append(os.Environ(), fsizeChildEnv+"="+strconv.FormatInt(tt.limit, 10), fsizePathEnv+"="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			t.Logf("child at a limit of %d bytes: %s", tt.limit, out)
			if !strings.Contains(string(out), "open failed: ") {
				t.Fatalf("the child's open did not fail at a limit of %d bytes:\n%s", tt.limit, out)
			}

			if before != nil {
				after, err := os.Stat(path)
				if err != nil {
					t.Fatalf("the file that was there before the failed open: %v", err)
				}
				got, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if !os.SameFile(before, after) {
					t.Fatal("the file that was there before the failed open was replaced")
				}
				// bbolt writes its first pages into an empty file, as
				// into a new one.
				if len(tt.existing) > 0 && string(got) != string(tt.existing) {
					t.Fatalf("the file that was there before the failed open was changed: %d bytes, want %q", len(got), tt.existing)
				}
				return
			}
			if fi, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				size := int64(-1)
				if fi != nil {
					size = fi.Size()
				}
				t.Fatalf("after the failed open the file is there (%d bytes, %v); want none", size, err)
			}
			db, err := Open(path, Options{NoSync: true, DataKey: testKey(1)})
			if err != nil {
				t.Fatalf("open once there is room: %v", err)
			}
			defer db.Close()
			if err := db.Check(context.Background()); err != nil {
				t.Fatalf("check of the new store: %v", err)
			}
		})
	}
}

// fsizeChild opens a new store at path with its files limited to limit
// bytes, and prints how the open ended.
func fsizeChild(t *testing.T, limit, path string) {
	n, err := strconv.ParseUint(limit, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
		t.Fatalf("limit the file size: %v", err)
	}
	db, err := Open(path, Options{DataKey: testKey(1)})
	if err != nil {
		fmt.Printf("open failed: %v\n", err)
		return
	}
	fmt.Println("open succeeded")
	if err := db.Close(); err != nil {
		fmt.Printf("close failed: %v\n", err)
	}
}

// TestOpenAwaitingARemovedFileOpensThePathAgain: an open that waits for
// the lock of a file which the open holding it removes (it created the
// file and failed) does not go on with the removed file, which no later
// open would find, but opens the path again and creates the file anew.
func TestOpenAwaitingARemovedFileOpensThePathAgain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	holder, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if err := lockBoltFile(holder, true, 0); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		f       *os.File
		created bool
		err     error
	}
	done := make(chan opened, 1)
	go func() {
		f, created, err := openLockedBoltFile(path, os.O_RDWR|os.O_CREATE, 0o600, func(f *os.File) error { return lockBoltFile(f, true, 10*time.Second) })
		done <- opened{f, created != nil, err}
	}()
	// Once the waiting open has the file open, the holder removes it and
	// gives up its lock.
	waitFor(t, 10*time.Second, "the second open of "+path, func() (bool, error) {
		fds, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			return false, err
		}
		n := 0
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); target == path {
				n++
			}
		}
		return n >= 2, nil
	})
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := holder.Close(); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil {
		t.Fatalf("open: %v", got.err)
	}
	defer got.f.Close()
	held, err := got.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path)
	if err != nil || !os.SameFile(held, now) || !got.created {
		t.Fatalf("the open holds a file that is not at %s (%v), or says it did not create it (created %v)", path, err, got.created)
	}
}

// TestAFileAnotherOpenMadeAStoreOfIsKept: the open that created a store
// file is not its only user. Another open (another process) may take the
// file's lock between its create and its lock, or after bbolt let go of
// the lock when its own first pages failed, and make a store of the
// empty file; the first open's failure must not remove that store.
func TestAFileAnotherOpenMadeAStoreOfIsKept(t *testing.T) {
	ctx := context.Background()
	other := func(t *testing.T, path string) {
		t.Helper()
		db, err := Open(path, Options{DataKey: testKey(2), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(ctx, failIncr("other")); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	kept := func(t *testing.T, path string) {
		t.Helper()
		db, err := Open(path, Options{DataKey: testKey(2), NoSync: true})
		if err != nil {
			t.Fatalf("the other open's store: %v", err)
		}
		defer db.Close()
		if n := failRead(t, db, "other"); n != 1 {
			t.Errorf("the other open's store holds other = %d, want 1", n)
		}
	}
	t.Run("between the create and the lock", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vultron.db")
		f, created, err := openLockedBoltFile(path, os.O_RDWR|os.O_CREATE, 0o600, func(f *os.File) error {
			other(t, path) // it took the lock first, and let it go
			return lockBoltFile(f, true, time.Second)
		})
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if created != nil {
			t.Fatal("the open says it created a file that another open made a store of before it held the lock: a failure of the open would remove that store")
		}
		kept(t, path)
	})
	t.Run("after bbolt let go of the lock", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "vultron.db")
		f, created, err := openOrCreateBoltFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil || !created {
			t.Fatalf("create: %v, %v", created, err)
		}
		info, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		f.Close() // bbolt's open failed before it wrote a page, and closed the file
		other(t, path)
		if err := removeCreatedBoltFile(path, info); err != nil {
			t.Fatal(err)
		}
		kept(t, path)
	})
}
