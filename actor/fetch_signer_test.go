package actor

import (
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestFetcherSignsWithCurrentKey checks that a Fetcher with a Signer signs
// each fetch with the key the signer gives at that moment, so a rotated
// key is used from the next fetch on.
func TestFetcherSignsWithCurrentKey(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Signature"))
		mu.Unlock()
		w.Header().Set("Content-Type", ContentType)
		fmt.Fprintf(w, `{"id":%q,"type":"Person"}`, srv.URL+r.URL.Path)
	}))
	defer srv.Close()

	keyID, key := "https://a.example/actors/a#key-1", rsaKey(t, 0)
	f, err := NewFetcher(FetcherOptions{Client: SafeClientOptions{AllowPrivate: true},
		Signer: func() (string, *rsa.PrivateKey) { return keyID, key }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.FetchDocument(t.Context(), srv.URL+"/actors/b"); err != nil {
		t.Fatal(err)
	}
	keyID, key = "https://a.example/actors/a#key-2", rsaKey(t, 1)
	if _, err := f.FetchDocument(t.Context(), srv.URL+"/actors/b"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || !strings.Contains(seen[0], `keyId="https://a.example/actors/a#key-1"`) || !strings.Contains(seen[1], `keyId="https://a.example/actors/a#key-2"`) {
		t.Errorf("signatures %q, want key-1 then key-2", seen)
	}
	if _, err := NewFetcher(FetcherOptions{}); err == nil {
		t.Error("a fetcher without a key or signer was created")
	}
}
