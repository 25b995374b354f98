package samefile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestIs checks a file against itself by two spellings, through a link,
// against another file, and a path that does not exist yet.
func TestIs(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		x, y string
		want bool
	}{
		{a, filepath.Join(dir, ".", "a"), true},
		{a, link, true},
		{a, b, false},
		{filepath.Join(dir, "new"), filepath.Join(dir, "sub", "..", "new"), true},
		{filepath.Join(dir, "new"), a, false},
	} {
		if got := Is(tt.x, tt.y); got != tt.want {
			t.Errorf("Is(%q, %q) = %v, want %v", tt.x, tt.y, got, tt.want)
		}
	}
}
