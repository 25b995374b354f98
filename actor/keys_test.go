package actor

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k1, created, err := LoadOrCreateKey(dir, "vendor")
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	if k1.N.BitLen() != 2048 {
		t.Fatalf("key has %d bits", k1.N.BitLen())
	}
	path := filepath.Join(dir, "vendor.pem")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o; want 0600", info.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(dir, "vendor")
	if err != nil || created {
		t.Fatalf("second start: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Fatal("second start did not reuse the key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("key directory holds %d entries; want only vendor.pem", len(entries))
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreateKey(dir, "vendor")
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file: err=%v; want the file name and the chmod 600 fix", err)
	}
}

func TestLoadOrCreateKeyRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "junk.pem"), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(dir, "junk"); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatalf("junk key file: err=%v", err)
	}
}

func TestValidateName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"vendor", true},
		{"psirt-bot", true},
		{"a.b_c-1", true},
		{"0day", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{"", false},
		{"Vendor", false},
		{"-vendor", false},
		{"../etc", false},
		{"a/b", false},
		{"a b", false},
	} {
		if err := ValidateName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidateName(%q) = %v; want ok=%v", tc.name, err, tc.ok)
		}
		if !tc.ok {
			if _, _, err := LoadOrCreateKey(t.TempDir(), tc.name); err == nil {
				t.Errorf("LoadOrCreateKey accepted name %q", tc.name)
			}
		}
	}
}

func TestParseActorSpec(t *testing.T) {
	for _, tc := range []struct {
		spec, name string
		typ        Type
		err        string
	}{
		{spec: "vendor:Organization", name: "vendor", typ: Organization},
		{spec: "psirt-bot:Service", name: "psirt-bot", typ: Service},
		{spec: "alice:Person", name: "alice", typ: Person},
		{spec: "vendor", err: "want NAME:TYPE"},
		{spec: "vendor:Robot", err: `actor type "Robot"`},
		{spec: "vendor:organization", err: `actor type "organization"`},
		{spec: "Vendor:Organization", err: "actor name"},
	} {
		name, typ, err := ParseActorSpec(tc.spec)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseActorSpec(%q) err=%v; want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.name || typ != tc.typ {
			t.Errorf("ParseActorSpec(%q) = %q, %q, %v", tc.spec, name, typ, err)
		}
	}
}

func TestLocalDocument(t *testing.T) {
	key := rsaKey(t, 0)
	l, err := NewLocal("https://cvd.example.org/", "vendor", Organization, key)
	if err != nil {
		t.Fatal(err)
	}
	if l.ID != "https://cvd.example.org/actors/vendor" || l.Inbox != l.ID+"/inbox" || l.Outbox != l.ID+"/outbox" || l.KeyID != l.ID+"#main-key" {
		t.Fatalf("urls: %+v", l)
	}
	b, err := l.Document()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context           []any `json:"@context"`
		Type, ID          string
		PreferredUsername string
		Inbox, Outbox     string
		PublicKey         PublicKeyDoc
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Context) != 5 || doc.Context[0] != ActivityStreamsContext || doc.Context[1] != SecurityContext || doc.Context[2] != DIDContext || doc.Context[3] != MultikeyContext {
		t.Errorf("@context %v", doc.Context)
	}
	if doc.Type != "Organization" || doc.ID != l.ID || doc.PreferredUsername != "vendor" || doc.Inbox != l.Inbox || doc.Outbox != l.Outbox {
		t.Errorf("document %s", b)
	}
	if doc.PublicKey.ID != l.KeyID || doc.PublicKey.Owner != l.ID {
		t.Errorf("publicKey %+v", doc.PublicKey)
	}
	pk, err := ParsePublicKeyPEM(doc.PublicKey.PublicKeyPem)
	if err != nil || !key.PublicKey.Equal(pk) {
		t.Errorf("publicKeyPem does not hold the actor's key: %v", err)
	}
	if strings.Contains(string(b), "PRIVATE") {
		t.Error("document contains private key material")
	}
	if ContentType != "application/activity+json" {
		t.Errorf("ContentType %q", ContentType)
	}

	for _, bad := range []string{"ftp://x", "https://", "https://h/?q=1", "https://u@h"} {
		if _, err := NewLocal(bad, "vendor", Organization, key); err == nil {
			t.Errorf("NewLocal accepted public URL %q", bad)
		}
	}
}

// TestLocalNeverPrintsKey checks that formatting or JSON-encoding a Local
// leaves out the private key.
func TestLocalNeverPrintsKey(t *testing.T) {
	key := rsaKey(t, 0)
	l, err := NewLocal("https://cvd.example.org", "vendor", Organization, key)
	if err != nil {
		t.Fatal(err)
	}
	secret := key.D.String()[:20]
	edSecret := fmt.Sprintf("%x", []byte(l.EdKey.Seed()[:12]))
	js, _ := json.Marshal(l)
	for _, out := range []string{fmt.Sprint(l), fmt.Sprintf("%v %+v %#v %s", l, l, l, l), string(js)} {
		if strings.Contains(out, secret) {
			t.Fatalf("output contains the private exponent: %.200s", out)
		}
		if strings.Contains(out, edSecret) || strings.Contains(out, fmt.Sprint(l.EdKey.Seed()[:6])) {
			t.Fatalf("output contains the Ed25519 seed: %.200s", out)
		}
		if !strings.Contains(out, "vendor") {
			t.Fatalf("output does not name the actor: %.200s", out)
		}
	}
}
