package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestFollowersListsGoneFollowers: "vultron followers" lists, after the
// followers, those removed because their actor is gone, each with the
// reason; --pending lists only the pending Follows.
func TestFollowersListsGoneFollowers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /actors/vendor/followers", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/activity+json")
		switch r.URL.Query().Get("state") {
		case "accepted":
			w.Write([]byte(`{"orderedItems":[{"id":"https://c.example/actors/kept","state":"accepted","follow":"https://c.example/f/1","since":"2026-12-01T00:00:00Z"}]}`))
		case "gone":
			w.Write([]byte(`{"orderedItems":[{"id":"https://c.example/actors/left","state":"gone","follow":"https://c.example/f/2","since":"2026-12-07T00:00:00Z","reason":"peer answered 410 Gone"}]}`))
		case "pending":
			w.Write([]byte(`{"orderedItems":[]}`))
		default:
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"state"}`))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []commandCase{
		{[]string{"followers", "--as", "vendor", "--node", srv.URL, "--token-file", tokenFile}, 0, []string{
			"https://c.example/actors/kept  accepted", "https://c.example/actors/left  gone",
			"https://c.example/actors/left was removed from the followers at 2026-12-07T00:00:00Z: its actor is gone (peer answered 410 Gone)",
		}},
		{[]string{"followers", "--json", "--as", "vendor", "--node", srv.URL, "--token-file", tokenFile}, 0, []string{`"state": "gone"`, `"reason": "peer answered 410 Gone"`}},
	} {
		runCommand(t, tt)
	}
}
