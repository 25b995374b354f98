package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/store"
)

func TestRotateKeyCommand(t *testing.T) {
	dir := t.TempDir()
	keys, err := store.LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "vultron.db")
	db, err := store.Open(dbPath, store.Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
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
	if code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: withEnv}, []string{"rotate-key", "--data", dir}); code != 2 {
		t.Fatalf("rotate-key with VULTRON_DATA_KEY: exit %d, %q", code, out.String())
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
