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

// TestFetchAsReadsUpToItsLimit fetches answers larger than the client's
// default body bound with FetchAs: its limit, not that bound, decides what
// is read, whether the answer announces its length or not, and a body
// over the limit is still an error.
func TestFetchAsReadsUpToItsLimit(t *testing.T) {
	const size = 2 << 20 // over the safe client's default of 1 MiB
	body := strings.Repeat("x", size)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") != "" {
			w.Header().Set("Content-Type", ContentType)
			w.(http.Flusher).Flush() // no Content-Length: the body is chunked
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(size))
		}
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	f, err := NewFetcher(FetcherOptions{Client: SafeClientOptions{AllowPrivate: true}, KeyID: "https://a.example/actors/a#main-key", Key: rsaKey(t, 0)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		query string
		limit int64
		ok    bool
	}{
		{"announced, under the limit", "", 4 << 20, true},
		{"chunked, under the limit", "?chunked=1", 4 << 20, true},
		{"announced, over the limit", "", size - 1, false},
		{"chunked, over the limit", "?chunked=1", size - 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, got, err := f.FetchAs(t.Context(), srv.URL+"/ledger"+tt.query, "https://a.example/actors/a#main-key", rsaKey(t, 0), tt.limit)
			if tt.ok {
				if err != nil || status != http.StatusOK || len(got) != size {
					t.Fatalf("FetchAs = %d, %d bytes, %v; want 200 and all %d bytes", status, len(got), err, size)
				}
				return
			}
			if err == nil {
				t.Fatalf("FetchAs = %d, %d bytes; want an error for a body over the limit of %d", status, len(got), tt.limit)
			}
		})
	}
}
