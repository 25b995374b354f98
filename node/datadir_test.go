package node

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
)

// newNodeIn makes (and closes again) a node with one vendor actor on the
// bbolt store of dir, and returns New's error.
func newNodeIn(t *testing.T, dir string) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	n, err := New(context.Background(), Config{DataDir: dir, Listener: ln, PublicURL: "http://" + ln.Addr().String(),
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, NoSync: true, Argon2: testArgon2,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Notice: io.Discard})
	if err != nil {
		return err
	}
	return n.Close()
}

// TestActorWhoseKeyIsMissingIsNotGivenANewOne starts a node whose store
// knows its actor but whose data directory lost the actor's private key:
// a new key would make the actor another one to every peer, so the node
// refuses to start and says where the key should be, and creates none.
func TestActorWhoseKeyIsMissingIsNotGivenANewOne(t *testing.T) {
	dir := t.TempDir()
	if err := newNodeIn(t, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	err := newNodeIn(t, dir)
	if err == nil || !strings.Contains(err.Error(), "actor vendor") || !strings.Contains(err.Error(), "private key") || !strings.Contains(err.Error(), filepath.Join(dir, "keys")) {
		t.Fatalf("New without the actor's key: %v; want a refusal that names the actor and where its key should be", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "keys")); len(entries) != 0 {
		t.Errorf("the refused start left key files: %v", entries)
	}
}

// TestStoreGivesItsKeysToANewDataDirectory moves a store that keeps the
// node's keys and tokens (as a database shared by several processes
// does, and a copy of one) into a data directory that holds only the data
// key: the node takes its actor's key and its API token from the store,
// instead of making new ones.
func TestStoreGivesItsKeysToANewDataDirectory(t *testing.T) {
	ctx := context.Background()
	old := t.TempDir()
	if err := newNodeIn(t, old); err != nil {
		t.Fatal(err)
	}
	keys, err := store.LoadDataKeys(old, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(old, "vultron.db"), store.Options{NoSync: true, DataKey: keys.Current})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.PushFiles(ctx, old, sharedFiles); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	moved := t.TempDir()
	for _, name := range []string{"vultron.db", "data-key"} {
		raw, err := os.ReadFile(filepath.Join(old, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(moved, name), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := newNodeIn(t, moved); err != nil {
		t.Fatalf("New on the moved store: %v", err)
	}
	for _, rel := range []string{filepath.Join("keys", "vendor.pem"), tokenFile} {
		want, err := os.ReadFile(filepath.Join(old, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(moved, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s in the new data directory: %v; want the one the store kept", rel, err)
		}
	}
}

// TestStoreSealedWithARetiredKeySaysWhereItIs opens a copy of a store made
// before its data key was rotated (as a PostgreSQL database copied from
// it is): the refusal names the file in which rotate-key kept the key.
func TestStoreSealedWithARetiredKeySaysWhereItIs(t *testing.T) {
	dir := t.TempDir()
	if err := newNodeIn(t, dir); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	raw, err := os.ReadFile(filepath.Join(dir, "vultron.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rot, err := store.RotateDataKey(context.Background(), filepath.Join(dir, "vultron.db"), "", store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = New(context.Background(), Config{DataDir: dir, Store: "bolt:" + copyPath, Listener: ln, PublicURL: "http://" + ln.Addr().String(),
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, NoSync: true, Argon2: testArgon2,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Notice: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "rotate-key kept that key in "+filepath.Join(dir, store.RetiredDataKeyFile(rot.OldKeyID))) {
		t.Fatalf("New on a copy sealed with the retired key: %v; want where the key is", err)
	}
}
