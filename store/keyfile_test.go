package store

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestWriteKeyFileNamesThePathOnce: a data key that cannot be written says
// which file failed once, not once from the store and once more from the
// error of the file system that already names it.
func TestWriteKeyFileNamesThePathOnce(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full to fail the write with")
	}
	tests := []struct {
		name       string
		setup      func(t *testing.T, dir string)
		createTemp func(dir, pattern string) (*os.File, error)
		want       error
	}{
		{
			name: "the disk is full",
			// The temporary file is made, but every write to it fails
			// with ENOSPC: it writes to /dev/full.
			createTemp: func(dir, pattern string) (*os.File, error) {
				f, err := os.CreateTemp(dir, pattern)
				if err != nil {
					return nil, err
				}
				defer f.Close()
				full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
				if err != nil {
					return nil, err
				}
				defer full.Close()
				// A descriptor of its own: full's is closed with it.
				fd, err := syscall.Dup(int(full.Fd()))
				if err != nil {
					return nil, err
				}
				return os.NewFile(uintptr(fd), f.Name()), nil
			},
			want: syscall.ENOSPC,
		},
		{
			name: "the directory is gone",
			setup: func(t *testing.T, dir string) {
				t.Helper()
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
			},
			createTemp: os.CreateTemp,
			want:       os.ErrNotExist,
		},
	}
	// The write must leave the device it wrote to as it was: a chmod of
	// the temporary file would change /dev/full for the whole machine.
	before, err := os.Stat("/dev/full")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if after, err := os.Stat("/dev/full"); err != nil || after.Mode() != before.Mode() {
			t.Errorf("/dev/full is %v after the test (%v), was %v", after.Mode(), err, before.Mode())
		}
	}()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys", DataKeyFile)
			dir := filepath.Dir(path)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			err := writeKeyFileVia(path, testKey(1), tt.createTemp)
			if !errors.Is(err, ErrDataKey) || !errors.Is(err, tt.want) {
				t.Fatalf("writeKeyFile = %v, want ErrDataKey and %v", err, tt.want)
			}
			tmp := filepath.Join(dir, "."+DataKeyFile+".tmp-")
			if n := strings.Count(err.Error(), tmp); n != 1 {
				t.Errorf("writeKeyFile = %q: names %s… %d times, want once", err, tmp, n)
			}
			if left, _ := filepath.Glob(tmp + "*"); len(left) != 0 {
				t.Errorf("temporary files left after the failure: %v", left)
			}
		})
	}
}

// TestWriteKeyFileConcurrently: writes of one key file at once (two
// requests that need the same shared key a process does not have yet,
// each pulling it from the store) all succeed and leave the whole file,
// instead of sharing one temporary file that one of them renames from
// under the others or truncates after another renamed it.
func TestWriteKeyFileConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "case-1.pem")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	key := []byte(strings.Repeat("k", 64<<10))
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- writeKeyFile(path, key)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: writeKeyFile = %v", round, err)
			}
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, key) {
			t.Fatalf("round %d: the file holds %d bytes (%v), want the %d of the key", round, len(got), err, len(key))
		}
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestSharedFilesLeaveOutWritesInProgress: the files a process stores for
// the others leave out the temporary files of key writes in progress or
// interrupted by a crash (this package's and the actor package's, and
// those of releases that wrote NAME.tmp), which would otherwise reach
// every process as keys.
func TestSharedFilesLeaveOutWritesInProgress(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vendor.pem", ".vendor.pem.tmp-123", "vendor.pem.tmp", ".case-1.pem.tmp-456"} {
		if err := os.WriteFile(filepath.Join(dir, "keys", name), []byte(name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	found, err := sharedFilesIn(dir, []string{"keys"})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found["keys/vendor.pem"] == nil {
		t.Errorf("shared files found: %d (%v), want keys/vendor.pem alone", len(found), slices.Sorted(maps.Keys(found)))
	}
}
