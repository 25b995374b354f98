package node

import (
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// TestACaseActorWhoseKeyCannotBeLoadedIsNotAbsent: a Case Actor whose
// record the store holds but whose key file does not load (damaged) or is
// gone is the node's failure, answered 500, not 404 "no actor", which
// tells a peer that fetches it to verify its announcements that the case's
// actor does not exist; and a missing key is not replaced by a new one,
// which could never match the record's.
func TestACaseActorWhoseKeyCannotBeLoadedIsNotAbsent(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	c := openCase(t, finder, vendor)
	name := path.Base(c.CaseActor)
	keyFile := filepath.Join(vendor.keyDir, name+".pem")
	forget := func() {
		vendor.localsMu.Lock()
		delete(vendor.locals, name)
		vendor.localsMu.Unlock()
	}
	get := func() (int, string) {
		t.Helper()
		resp, err := http.Get(c.CaseActor)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		if _, err := io.Copy(&b, resp.Body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b.String()
	}
	if status, body := get(); status != http.StatusOK {
		t.Fatalf("GET the Case Actor: %d %s", status, body)
	}
	good, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(keyFile, []byte("-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	forget()
	if status, body := get(); status != http.StatusInternalServerError || !strings.Contains(body, `"error"`) {
		t.Errorf("GET a Case Actor whose key file is damaged: %d %s, want 500 with an error", status, body)
	}

	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	forget()
	if status, body := get(); status != http.StatusInternalServerError {
		t.Errorf("GET a Case Actor whose key file is gone: %d %s, want 500", status, body)
	}
	if _, err := os.Stat(keyFile); err == nil {
		t.Errorf("a new key file was made for Case Actor %s, whose record names another key", name)
	}

	if err := os.WriteFile(keyFile, good, 0o600); err != nil {
		t.Fatal(err)
	}
	forget()
	if status, body := get(); status != http.StatusOK {
		t.Errorf("GET the Case Actor once its key is back: %d %s", status, body)
	}
}
