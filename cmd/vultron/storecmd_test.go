package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/store"
)

// TestStoreCopyCommand copies a stopped node's bbolt store into another
// file, checks the copy with the node's data key, and refuses what it
// cannot do with one sentence.
func TestStoreCopyCommand(t *testing.T) {
	dir, src, keys, db := sealedStore(t)
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
		{"migrate", "--store", "postgres://127.0.0.1/x", "--data", dir},
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
	// Into a directory that does not exist: one sentence that says to
	// create it, and nothing created.
	noDir := filepath.Join(t.TempDir(), "nosuch")
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "bolt:"+filepath.Join(noDir, "vultron.db"), "--data", dir); code != 1 ||
		!strings.Contains(out, "the directory "+noDir+" of the destination does not exist, so nothing was copied: create it first") || strings.Count(out, "\n") != 1 {
		t.Errorf("copy into a directory that does not exist: exit %d, %q; want exit 1 saying to create it", code, out)
	}
	if _, err := os.Stat(noDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the copy created %s (%v)", noDir, err)
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
	// Into a file a node holds: the sentence names that file, not the
	// source.
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "bolt:"+dst); code != 1 || !strings.Contains(out, "a node is using bolt:"+dst) || strings.Count(out, "\n") != 1 {
		t.Errorf("copy into a store in use: exit %d, %q; want exit 1 naming the destination", code, out)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// Again into the same file: one sentence that says what to do.
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "bolt:"+dst); code != 1 || !strings.Contains(out, "is not empty") || !strings.Contains(out, "new file") || strings.Contains(out, "invalid argument") || strings.Count(out, "\n") != 1 {
		t.Errorf("copy into a store that is not empty: exit %d, %q; want exit 1 saying to copy into a new file", code, out)
	}
	if code, out := cmd("store", "copy", "--from", "bolt:"+src, "--to", "postgres://user:secret@127.0.0.1:1/none"); code != 1 || strings.Contains(out, "secret") {
		t.Errorf("copy to an unreachable database: exit %d, %q; want exit 1 without the password", code, out)
	}
}

// TestMigrateBoltCommand: the copy of an old bbolt store names the command
// that migrates it, and that command does, with the data key beside the
// file; it refuses a store in use and a missing file, creating nothing.
func TestMigrateBoltCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	old := filepath.Join(dir, "old", "vultron.db")
	if err := os.Mkdir(filepath.Dir(old), 0o700); err != nil {
		t.Fatal(err)
	}
	gunzip(t, "../../store/testdata/schema1.db.gz", old)
	noEnv := func(string) string { return "" }
	cmd := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, args)
		return code, out.String()
	}
	dst := filepath.Join(dir, "x.db")

	code, out := cmd("store", "copy", "--from", "bolt:"+old, "--to", "bolt:"+dst)
	if hint := "vultron migrate --store bolt:" + old; code != 1 || !strings.Contains(out, hint) {
		t.Fatalf("copy of a schema 1 store: exit %d, %q; want exit 1 naming %q", code, out, hint)
	}
	// Without its data key: told which key the file wants.
	if code, out := cmd("migrate", "--store", "bolt:"+old); code != 1 || !strings.Contains(out, "data key") || strings.Count(out, "\n") != 1 {
		t.Errorf("migrate without the data key: exit %d, %q; want exit 1 about the data key", code, out)
	}
	// schema1.db.gz is sealed with 32 bytes of 1 (store's testKey(1)).
	if err := os.WriteFile(filepath.Join(filepath.Dir(old), store.DataKeyFile), bytes.Repeat([]byte{1}, store.DataKeySize), 0o600); err != nil {
		t.Fatal(err)
	}

	missing := filepath.Join(dir, "nosuch.db")
	if code, out := cmd("migrate", "--store", "bolt:"+missing); code != 1 || !strings.Contains(out, "no such file") || strings.Count(out, "\n") != 1 {
		t.Errorf("migrate of a missing file: exit %d, %q; want exit 1 saying no such file", code, out)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("migrate of a missing file created it (%v)", err)
	}

	held, err := store.Open(old, store.Options{DataKey: bytes.Repeat([]byte{1}, store.DataKeySize), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if code, out := cmd("migrate", "--store", "bolt:"+old); code != 1 || !strings.Contains(out, "stop it before migrating") || strings.Count(out, "\n") != 1 {
		t.Errorf("migrate of a store in use: exit %d, %q; want exit 1 saying to stop the node", code, out)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	// Open migrated it; start again from the old file.
	gunzip(t, "../../store/testdata/schema1.db.gz", old)

	want := fmt.Sprintf("store migrated from schema version 1 to %d\n", store.SchemaVersion)
	if code, out := cmd("migrate", "--store", "bolt:"+old); code != 0 || out != want {
		t.Fatalf("migrate of a schema 1 store: exit %d, %q; want %q", code, out, want)
	}
	want = fmt.Sprintf("store already at schema version %d\n", store.SchemaVersion)
	if code, out := cmd("migrate", "--store", "bolt:"+old); code != 0 || out != want {
		t.Errorf("migrate again: exit %d, %q; want %q", code, out, want)
	}
	if code, out := cmd("store", "copy", "--from", "bolt:"+old, "--to", "bolt:"+dst, "--data", filepath.Dir(old)); code != 0 || !strings.Contains(out, "copied ") {
		t.Errorf("copy of the migrated store: exit %d, %q", code, out)
	}
}

// gunzip writes the gzip file src, uncompressed, to dst.
func gunzip(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestBadPostgresURLIsAUsageError: a PostgreSQL URL with a setting the
// driver refuses is a bad command line for serve, migrate and store copy:
// one sentence naming the setting, never the password, exit 2, and
// nothing created (serve's data directory included).
func TestBadPostgresURLIsAUsageError(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	bad := "postgres://vultron:hunter2@127.0.0.1:1/vultron?password=s3cret&sslmode=bogus"
	noEnv := func(string) string { return "" }
	for _, args := range [][]string{
		{"serve", "--data", data, "--store", bad},
		{"migrate", "--store", bad},
		{"store", "copy", "--from", bad, "--to", "bolt:" + filepath.Join(dir, "x.db")},
		{"store", "copy", "--from", "bolt:" + filepath.Join(dir, "y.db"), "--to", bad},
	} {
		var out bytes.Buffer
		code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, args)
		got := out.String()
		if code != 2 || !strings.Contains(got, `sslmode="bogus"`) || strings.Count(got, "\n") != 1 ||
			strings.Contains(got, "hunter2") || strings.Contains(got, "s3cret") {
			t.Errorf("%s %s: exit %d, %q; want exit 2 naming sslmode, without the password", args[0], args[1], code, got)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("refused commands left %v (%v)", entries, err)
	}
}

// TestStoreCopyFindsTheDataKeyFirst: store copy with --data or
// --data-key-file checks the copy with the node's data key; a key it
// cannot find is refused before anything is copied, in one sentence that
// says where to give it, and --data-key-file alone is enough.
func TestStoreCopyFindsTheDataKeyFirst(t *testing.T) {
	ctx := context.Background()
	dir, src, keys := stoppedSealedStore(t)
	noKeyDir := t.TempDir() // a data directory without the key
	otherDir := t.TempDir() // a data directory with another key
	if _, err := store.LoadDataKeys(otherDir, "", "", true); err != nil {
		t.Fatal(err)
	}
	rotatedDir := t.TempDir() // a data directory whose key rotate-key replaced
	if _, err := store.LoadDataKeys(rotatedDir, "", "", true); err != nil {
		t.Fatal(err)
	}
	retired := filepath.Join(rotatedDir, store.RetiredDataKeyFile(store.KeyID(keys.Current)))
	if err := os.WriteFile(retired, keys.Current, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{name: "a data directory without the key", args: []string{"--data", noKeyDir}, code: 1,
			want: []string{filepath.Join(noKeyDir, store.DataKeyFile), "--data-key-file", "VULTRON_DATA_KEY"}},
		{name: "a missing key file", args: []string{"--data-key-file", filepath.Join(noKeyDir, "key")}, code: 1,
			want: []string{filepath.Join(noKeyDir, "key"), "VULTRON_DATA_KEY"}},
		// A backup made before rotate-key, checked with the node's key
		// of today: refused before the copy is made, naming the key it
		// needs, and where rotate-key kept it when it is there.
		{name: "another key", args: []string{"--data", otherDir}, code: 1,
			want: []string{store.KeyID(keys.Current), "nothing was copied", "--data-key-file"}},
		{name: "a retired key", args: []string{"--data", rotatedDir}, code: 1,
			want: []string{store.KeyID(keys.Current), "--data-key-file " + retired}},
		{name: "the key file alone", args: []string{"--data-key-file", filepath.Join(dir, store.DataKeyFile)}, code: 0,
			want: []string{"copied ", "opens with data key " + store.KeyID(keys.Current)}},
		// Without a key, the copy says what it did not check.
		{name: "no key", args: nil, code: 0,
			want: []string{"copied ", "its pages are consistent; its records and audit chain were not opened (give the data key with --data DATA, --data-key-file FILE or VULTRON_DATA_KEY to check them)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy.db")
			var out bytes.Buffer
			args := append([]string{"store", "copy", "--from", "bolt:" + src, "--to", "bolt:" + dst}, tc.args...)
			code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}, args)
			got := out.String()
			wantExitSaying(t, code, got, tc.code, tc.want)
			if tc.code == 0 {
				return
			}
			if strings.Count(got, "\n") != 1 {
				t.Errorf("%q is not one line", got)
			}
			if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the refused copy left %s (%v)", dst, err)
			}
		})
	}
}

// TestStoreHelp: store -h says what its one subcommand does and where its
// flags are, exit 0.
func TestStoreHelp(t *testing.T) {
	for _, args := range [][]string{{"store", "-h"}, {"store", "--help"}, {"store", "help"}} {
		var out bytes.Buffer
		code := run(context.Background(), &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}, args)
		got := out.String()
		for _, w := range []string{"usage: vultron store copy --from URL --to URL", "bbolt", "PostgreSQL", `"vultron store copy -h"`} {
			if code != 0 || !strings.Contains(got, w) {
				t.Errorf("%v: exit %d, %q; want exit 0 saying %q", args, code, got, w)
			}
		}
	}
}

// sealedStore makes a data directory with a new data key and a bbolt
// store sealed with it at DIR/vultron.db, open.
func sealedStore(t *testing.T) (dir, path string, keys store.DataKeys, db *store.DB) {
	t.Helper()
	dir = t.TempDir()
	keys, err := store.LoadDataKeys(dir, "", "", true)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(dir, "vultron.db")
	if db, err = store.Open(path, store.Options{DataKey: keys.Current, NoSync: true}); err != nil {
		t.Fatal(err)
	}
	return dir, path, keys, db
}

// stoppedSealedStore makes a sealedStore holding the local actor vendor,
// closed as a stopped node leaves it, and returns its data directory, its
// path and its keys.
func stoppedSealedStore(t *testing.T) (dir, path string, keys store.DataKeys) {
	t.Helper()
	dir, path, keys, db := sealedStore(t)
	if err := db.PutLocalActor(context.Background(), store.LocalActor{Name: "vendor", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, path, keys
}

// wantExitSaying checks that a command exited with wantCode and that its
// output got says each of want.
func wantExitSaying(t *testing.T, code int, got string, wantCode int, want []string) {
	t.Helper()
	if code != wantCode {
		t.Errorf("exit %d, %q; want %d", code, got, wantCode)
	}
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%q does not say %q", got, w)
		}
	}
}

// TestStoreCopyChecksWithTheKeyOfTheEnvironment: VULTRON_DATA_KEY alone,
// as the processes on PostgreSQL get their key, checks the copy as
// --data-key-file does, and a source sealed with another key is refused
// before anything is copied. Before, the key of the environment was used
// only with --data or --data-key-file: without them the copy was made and
// left unchecked, saying nothing of it, while the docs give
// VULTRON_DATA_KEY as one of the ways to check a backup.
func TestStoreCopyChecksWithTheKeyOfTheEnvironment(t *testing.T) {
	ctx := context.Background()
	_, src, keys := stoppedSealedStore(t)
	other := bytes.Repeat([]byte{9}, store.DataKeySize)
	for _, tc := range []struct {
		name string
		key  []byte
		code int
		want []string
	}{
		{name: "the store's key", key: keys.Current, code: 0,
			want: []string{"copied ", "opens with data key " + store.KeyID(keys.Current)}},
		{name: "another key", key: other, code: 1,
			want: []string{store.KeyID(keys.Current), "nothing was copied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "copy.db")
			env := func(k string) string {
				if k == "VULTRON_DATA_KEY" {
					return base64.StdEncoding.EncodeToString(tc.key)
				}
				return ""
			}
			var out bytes.Buffer
			code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: env}, []string{"store", "copy", "--from", "bolt:" + src, "--to", "bolt:" + dst})
			got := out.String()
			wantExitSaying(t, code, got, tc.code, tc.want)
		})
	}
}

// TestMigrateCheck: migrate --check says what versions a store is at
// beside this binary's and changes nothing: exit 1 with one sentence that
// says what to run while a migration is pending or when the store is
// newer, exit 0 once there is nothing to migrate, and exit 3 when it could
// not read the versions (a store in use, a missing file, a database that
// does not answer), so that a deployment does not take "unreachable" for
// "pending"; on bbolt and on a real PostgreSQL.
func TestMigrateCheck(t *testing.T) {
	ctx := context.Background()
	noEnv := func(string) string { return "" }
	cmd := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := run(ctx, &environment{stdout: &out, stderr: &out, getenv: noEnv}, args)
		return code, out.String()
	}
	oneLine := func(s string) bool { return strings.Count(s, "\n") == 1 }

	t.Run("bolt", func(t *testing.T) {
		dir := t.TempDir()
		old := filepath.Join(dir, "vultron.db")
		gunzip(t, "../../store/testdata/schema1.db.gz", old)
		before, err := os.ReadFile(old)
		if err != nil {
			t.Fatal(err)
		}
		code, out := cmd("migrate", "--check", "--store", "bolt:"+old)
		if want := fmt.Sprintf("records at version 1 (this binary's: %d)", store.SchemaVersion); code != 1 || !oneLine(out) ||
			!strings.Contains(out, want) || !strings.Contains(out, "vultron migrate --store bolt:"+old) {
			t.Errorf("check of a schema 1 store: exit %d, %q; want exit 1 saying %q and what to run", code, out, want)
		}
		if after, err := os.ReadFile(old); err != nil || !bytes.Equal(before, after) {
			t.Errorf("the check changed the store file (%v)", err)
		}
		if code, out := cmd("migrate", "--check", "--store", "bolt:"+old, "--data", dir); code != 2 {
			t.Errorf("check with --data: exit %d, %q; want 2", code, out)
		}
		if err := os.WriteFile(filepath.Join(dir, store.DataKeyFile), bytes.Repeat([]byte{1}, store.DataKeySize), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, out := cmd("migrate", "--store", "bolt:"+old); code != 0 {
			t.Fatalf("migrate: exit %d, %q", code, out)
		}
		if code, out := cmd("migrate", "--check", "--store", "bolt:"+old); code != 0 || !oneLine(out) || !strings.Contains(out, "nothing to migrate") {
			t.Errorf("check of a migrated store: exit %d, %q; want 0, nothing to migrate", code, out)
		}
		held, err := store.Open(old, store.Options{DataKey: bytes.Repeat([]byte{1}, store.DataKeySize), NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		if code, out := cmd("migrate", "--check", "--store", "bolt:"+old); code != 3 || !oneLine(out) ||
			!strings.Contains(out, "a node is using "+old+"; stop it before checking its store") {
			t.Errorf("check of a store in use: exit %d, %q; want exit 3 saying to stop the node", code, out)
		}
		if err := held.Close(); err != nil {
			t.Fatal(err)
		}
		if code, out := cmd("migrate", "--check", "--store", "bolt:"+filepath.Join(dir, "nosuch.db")); code != 3 || !oneLine(out) || !strings.Contains(out, "no such file") {
			t.Errorf("check of a missing file: exit %d, %q", code, out)
		}
	})

	t.Run("postgres", func(t *testing.T) {
		srv := pgtest.StartServer(t)
		admin := pgtest.Connect(t, srv.URL)
		if _, err := admin.Exec(ctx, `CREATE DATABASE checked`); err != nil {
			t.Fatal(err)
		}
		su, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		su.Path = "/checked"
		u := su.String()
		code, out := cmd("migrate", "--check", "--store", u)
		if code != 1 || !oneLine(out) || !strings.Contains(out, "tables at version 0") || !strings.Contains(out, "run vultron migrate --store") {
			t.Errorf("check of an empty database: exit %d, %q; want 1, tables at version 0, run migrate", code, out)
		}
		if code, out := cmd("migrate", "--store", u); code != 0 {
			t.Fatalf("migrate: exit %d, %q", code, out)
		}
		code, out = cmd("migrate", "--check", "--store", u)
		if code != 1 || !oneLine(out) || !strings.Contains(out, "records at version 0") || !strings.Contains(out, "first vultron serve") {
			t.Errorf("check of migrated tables no node opened: exit %d, %q; want 1, records at version 0, the first serve migrates them", code, out)
		}
		db, err := store.OpenURL(ctx, u, store.Options{NoSync: true, DataKey: bytes.Repeat([]byte{7}, store.DataKeySize)})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if code, out := cmd("migrate", "--check", "--store", u); code != 0 || !oneLine(out) || !strings.Contains(out, "nothing to migrate") {
			t.Errorf("check of a store a node opened: exit %d, %q; want 0, nothing to migrate", code, out)
		}
		dbConn := pgtest.Connect(t, u)
		if _, err := dbConn.Exec(ctx, `INSERT INTO vultron_schema_migrations (version) VALUES (99)`); err != nil {
			t.Fatal(err)
		}
		if code, out := cmd("migrate", "--check", "--store", u); code != 1 || !oneLine(out) || !strings.Contains(out, "newer than this binary") {
			t.Errorf("check of tables a newer binary migrated: exit %d, %q; want 1, newer", code, out)
		}
		su.Path = "/nosuchdatabase"
		if code, out := cmd("migrate", "--check", "--store", su.String()); code != 3 || !oneLine(out) || !strings.Contains(out, "nosuchdatabase") {
			t.Errorf("check of a database that does not exist: exit %d, %q; want 3 naming it", code, out)
		}
	})
}
