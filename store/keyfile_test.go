package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
		name  string
		setup func(t *testing.T, tmp string)
		want  error
	}{
		{
			name: "the disk is full",
			setup: func(t *testing.T, tmp string) {
				t.Helper()
				// Every write to /dev/full fails with ENOSPC.
				if err := os.Symlink("/dev/full", tmp); err != nil {
					t.Fatal(err)
				}
			},
			want: syscall.ENOSPC,
		},
		{
			name: "the directory is gone",
			setup: func(t *testing.T, tmp string) {
				t.Helper()
				if err := os.Remove(filepath.Dir(tmp)); err != nil {
					t.Fatal(err)
				}
			},
			want: os.ErrNotExist,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys", DataKeyFile)
			if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
				t.Fatal(err)
			}
			tmp := path + ".tmp"
			tt.setup(t, tmp)
			err := writeKeyFile(path, testKey(1))
			if !errors.Is(err, ErrDataKey) || !errors.Is(err, tt.want) {
				t.Fatalf("writeKeyFile = %v, want ErrDataKey and %v", err, tt.want)
			}
			if n := strings.Count(err.Error(), tmp); n != 1 {
				t.Errorf("writeKeyFile = %q: names %s %d times, want once", err, tmp, n)
			}
		})
	}
}
