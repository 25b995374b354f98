package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/store"
)

// TestStoreCopyCommand copies a stopped node's bbolt store into another
// file, checks the copy with the node's data key, and refuses what it
// cannot do with one sentence.
func TestStoreCopyCommand(t *testing.T) {
	dir := t.TempDir()
	keys, err := store.LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "vultron.db")
	db, err := store.Open(src, store.Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	noEnv := func(string) string { return "" }
	cmd := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, args)
		return code, out.String()
	}
	dst := filepath.Join(t.TempDir(), "copy.db")

	// While the node holds the file: one sentence, exit 1.
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "bolt:"+dst); code != 1 || !strings.Contains(out, "stop it before copying") || strings.Count(out, "\n") != 1 {
		t.Fatalf("copy of a store in use: exit %d, %q", code, out)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"store", "copy", "--from", "bolt:" + src},
		{"store", "copy", "--from", "mysql://x", "--to", "bolt:" + dst},
		{"store", "move"},
		{"migrate", "--store", "bolt:" + src},
		{"migrate"},
		{"serve", "--store", "sqlite:x"},
	} {
		if code, out := cmd(bad...); code != 2 || strings.Count(out, "\n") < 1 {
			t.Errorf("%v: exit %d, %q; want a usage error", bad, code, out)
		}
	}
	// A mistyped source: one sentence, exit 1, and no file made on either
	// side.
	missing := filepath.Join(dir, "nosuch.db")
	if code, out := cmd("store", "copy", "--from", "bolt:"+missing, "--to", "bolt:"+dst); code != 1 || !strings.Contains(out, "no such file") || strings.Count(out, "\n") != 1 {
		t.Errorf("copy from a missing file: exit %d, %q; want exit 1 saying no such file", code, out)
	}
	for _, p := range []string{missing, dst} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a copy from a missing file (%v)", p, err)
		}
	}
	code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "bolt:"+dst, "--data", dir)
	if code != 0 || !strings.Contains(out, "copied ") || !strings.Contains(out, "opens with data key "+store.KeyID(keys.Current)) {
		t.Fatalf("store copy: exit %d, %q", code, out)
	}
	c, err := store.Open(dst, store.Options{DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a, err := c.LocalActor(ctx, "vendor"); err != nil || a.Type != "Organization" {
		t.Errorf("the copy's actor: %+v, %v", a, err)
	}
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "postgres://user:secret@127.0.0.1:1/none"); code != 1 || strings.Contains(out, "secret") {
		t.Errorf("copy to an unreachable database: exit %d, %q; want exit 1 without the password", code, out)
	}
}
