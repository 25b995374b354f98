package node

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
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
	rot, err := store.RotateDataKey(context.Background(), "bolt:"+filepath.Join(dir, "vultron.db"), "", store.Options{NoSync: true})
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

// TestNewRefusesBadSettingsBeforeCreatingAnything gives New one bad
// setting at a time: each is refused with a sentence that names it, and
// the data directory (keys, store, tokens) is not created.
func TestNewRefusesBadSettingsBeforeCreatingAnything(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"webhook without scheme", func(c *Config) { c.Webhooks = []string{"https://ok.example/hooks", "tickets.example.org/hooks"} },
			`webhook URL "tickets.example.org/hooks" is not an http or https URL`},
		{"webhook of another scheme", func(c *Config) { c.Webhooks = []string{"ftp://tickets.example.org/hooks"} },
			`webhook URL "ftp://tickets.example.org/hooks" is not an http or https URL`},
		{"allowed peer as URL", func(c *Config) { c.AllowPeers = []string{"https://peer.example"} },
			`allowed peer "https://peer.example" is not a host or host:port`},
		{"OIDC issuer without scheme", func(c *Config) {
			c.OIDC = &accounts.OIDCConfig{Issuer: "idp.example", ClientID: "v", ClientSecret: "s", RoleMap: map[string]accounts.Role{"psirt": accounts.Analyst}}
		}, `OIDC issuer "idp.example" is not an http(s) URL`},
		{"public URL without scheme", func(c *Config) { c.PublicURL = "vultron.example" }, `public URL "vultron.example"`},
		{"listen address", func(c *Config) { c.Listen = "7001" }, `listen address "7001"`},
		{"negative delivery workers", func(c *Config) { c.DeliveryWorkers = -2 }, "--delivery-workers is -2; it must not be negative"},
		{"negative body limit", func(c *Config) { c.MaxInboxBytes = -1 }, "--max-body is -1; it must not be negative"},
		{"negative peer rate", func(c *Config) { c.PeerRate = -0.5 }, "--peer-rate is -0.5; it must not be negative"},
		{"negative lease", func(c *Config) { c.DeliveryLease = -time.Second }, "--delivery-lease is -1s; it must not be negative"},
		{"metrics token in the API token file", func(c *Config) { c.MetricsTokenFile = filepath.Join(c.DataDir, "api-token") },
			"is the API token file; point --metrics-token-file at another file"},
		{"webhook secret in the API token file", func(c *Config) {
			c.Webhooks = []string{"https://ok.example/hooks"}
			c.WebhookSecretFile = filepath.Join(c.DataDir, ".", "api-token")
		}, "is the API token file; point --webhook-secret-file at another file"},
		{"data key not base64", func(c *Config) { c.DataKey = "not a key!" }, "VULTRON_DATA_KEY is not base64"},
		{"data key of the wrong size", func(c *Config) { c.DataKey = "c2hvcnQ=" }, "VULTRON_DATA_KEY holds 5 bytes, want 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			cfg := Config{DataDir: dir, PublicURL: "http://127.0.0.1:7001",
				Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, NoSync: true, Argon2: testArgon2,
				Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)}
			var notice strings.Builder
			cfg.Notice = &notice
			tt.mod(&cfg)
			n, err := New(context.Background(), cfg)
			if err == nil {
				n.Close()
				t.Fatalf("New started a node; want a refusal saying %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "delete") {
				t.Errorf("New: %v; want it to say %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("New created its data directory before refusing: %v", err)
			}
			if notice.Len() != 0 {
				t.Errorf("New printed before refusing: %q", notice.String())
			}
		})
	}
}

// TestStoreWhoseDataKeyIsMissing starts a node on a sealed store whose
// data directory lost its data key: the node refuses to start, says which
// key the store needs and where to put it, and leaves no new key file
// behind, which the operator would take for the node's key.
func TestStoreWhoseDataKeyIsMissing(t *testing.T) {
	dir := t.TempDir()
	if err := newNodeIn(t, dir); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, store.DataKeyFile)
	key, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	err = newNodeIn(t, dir)
	if err == nil {
		t.Fatal("the node started on a sealed store without its data key")
	}
	for _, want := range []string{store.KeyID(key), keyFile, "VULTRON_DATA_KEY", "--data-key-file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New without the data key: %v; want it to name %q", err, want)
		}
	}
	if _, statErr := os.Stat(keyFile); statErr == nil {
		t.Errorf("the refused start left a new key in %s", keyFile)
	}
}

// TestEmptyStoreFileIsNotANewStore starts a node whose store file is
// there but empty (a restore or a copy that wrote nothing): bbolt would
// make a new store in it, and the node start as a new node beside the
// keys and tokens of the old one. It refuses, and says what to do.
func TestEmptyStoreFileIsNotANewStore(t *testing.T) {
	dir := t.TempDir()
	if err := newNodeIn(t, dir); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "vultron.db")
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	err := newNodeIn(t, dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "empty") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("New on an empty store file: %v; want a refusal that names the file and says to restore it", err)
	}
	if fi, statErr := os.Stat(path); statErr != nil || fi.Size() != 0 {
		t.Errorf("the refused start changed the empty file: %v, %v", fi, statErr)
	}
}

// TestARefusedStartLeavesNoDirectory: a start refused before the node
// made anything (here, a store sealed with another data key than the one
// given) leaves no data directory, and no key directory in it, where
// there was none: the next start, with the right key, finds the place as
// the operator left it.
func TestARefusedStartLeavesNoDirectory(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first")
	if err := newNodeIn(t, first); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	second := filepath.Join(dir, "second")
	other := strings.Repeat("A", 43) + "="
	_, err = New(context.Background(), Config{DataDir: second, Store: "bolt:" + filepath.Join(first, "vultron.db"), DataKey: other,
		Listener: ln, PublicURL: "http://" + ln.Addr().String(), Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}},
		NoSync: true, Argon2: testArgon2, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Notice: io.Discard})
	if err == nil || !strings.Contains(err.Error(), "sealed with data key") {
		t.Fatalf("a start with another data key: %v, want a refusal naming the key the store is sealed with", err)
	}
	if _, err := os.Stat(second); err == nil {
		entries, _ := os.ReadDir(second)
		t.Errorf("the refused start left its data directory %s (%d entries)", second, len(entries))
	}
}
