package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/store"
)

func TestRotateKeyCommand(t *testing.T) {
	dir, dbPath, keys, db := sealedStore(t)
	noEnv := func(string) string { return "" }
	ctx := context.Background()

	// While the node holds the file: one sentence, exit 1, key unchanged.
	var out bytes.Buffer
	code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, []string{"rotate-key", "--data", dir})
	if code != 1 || !strings.Contains(out.String(), "a node is running on "+dir) || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("rotate-key on a running node: exit %d, %q", code, out.String())
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	out.Reset()
	withEnv := func(k string) string {
		if k == "VULTRON_DATA_KEY" {
			return "AAAA"
		}
		return ""
	}
	// The docs have the key written to a file first: the variable, still
	// set in the shell the processes' key came from, is what to unset.
	if code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: withEnv}, []string{"rotate-key", "--data", dir}); code != 2 ||
		!strings.Contains(out.String(), "unset VULTRON_DATA_KEY") || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("rotate-key with VULTRON_DATA_KEY: exit %d, %q; want exit 2 saying to unset it", code, out.String())
	}

	out.Reset()
	code = run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, []string{"rotate-key", "--data", dir})
	oldID := store.KeyID(keys.Current)
	if code != 0 || !strings.Contains(out.String(), "data key "+oldID+" replaced by ") ||
		!strings.Contains(out.String(), "the old key is kept in "+filepath.Join(dir, store.RetiredDataKeyFile(oldID))) {
		t.Fatalf("rotate-key: exit %d, %q", code, out.String())
	}
	after, err := store.LoadDataKeys(dir, "", "", false)
	if err != nil || bytes.Equal(after.Current, keys.Current) || after.Previous != nil {
		t.Fatalf("key file after rotate-key: %v", err)
	}
	if _, err := store.Open(dbPath, store.Options{DataKey: keys.Current}); err == nil {
		t.Fatal("the old key still opens the store")
	}
	db, err = store.Open(dbPath, store.Options{DataKey: after.Current})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRotateKeyWithoutAFile: rotate-key in a data directory without a
// bbolt store (a node on PostgreSQL keeps only a cache there) and without
// --store is refused in one sentence that names the file and says how a
// PostgreSQL store is named, and leaves the directory as it was.
func TestRotateKeyWithoutAFile(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		files []string // in the data directory
	}{
		{name: "an empty directory"},
		{name: "a PostgreSQL node's directory", files: []string{"api-token", "data-key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, f), bytes.Repeat([]byte{7}, 32), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out bytes.Buffer
			code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}, []string{"rotate-key", "--data", dir})
			got := out.String()
			if code != 1 || strings.Count(got, "\n") != 1 || !strings.Contains(got, filepath.Join(dir, "vultron.db")) ||
				!strings.Contains(got, "PostgreSQL") || !strings.Contains(got, "--store postgres://") || !strings.Contains(got, "docs/operations.md") {
				t.Errorf("exit %d, %q; want exit 1, one line naming the file, --store for PostgreSQL and docs/operations.md", code, got)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != len(tc.files) {
				t.Errorf("the refused rotation left %v in the directory, which held %v", entries, tc.files)
			}
		})
	}
}
