package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestWebhooksCommand: "webhooks" lists each webhook with whether it is
// paused, the status that paused it and since when; "webhooks resume ID"
// lifts a pause, and a refusal is one sentence with a non-zero exit.
func TestWebhooksCommand(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/webhooks", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"webhooks":[{"id":"a1b2c3d4e5f6","url":"https://tickets:xxxxx@t.example/hook","delivered":40,"pending":3,"skipped":0,
"lastError":"the webhook answered 410 Gone","paused":{"since":"2026-12-07T10:00:00Z","status":410,"error":"the webhook answered 410 Gone to event https://n.example#41","event":"https://n.example#41"}},
{"id":"0f0e0d0c0b0a","url":"https://chat.example/hook","delivered":43,"pending":0,"skipped":1}]}`))
	})
	mux.HandleFunc("POST /api/webhooks/{id}/resume", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("id") {
		case "a1b2c3d4e5f6":
			w.Write([]byte(`{"id":"a1b2c3d4e5f6","url":"https://tickets:xxxxx@t.example/hook","delivered":40,"pending":3}`))
		case "0f0e0d0c0b0a":
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(`{"error":"webhook 0f0e0d0c0b0a is not paused: the node is delivering to it"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no webhook ` + r.PathValue("id") + ` on this node"}`))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []commandCase{
		{[]string{"webhooks", "--node", srv.URL, "--token-file", tokenFile}, 0,
			[]string{"a1b2c3d4e5f6", "https://tickets:xxxxx@t.example/hook", "paused since 2026-12-07T10:00:00Z (410)", "0f0e0d0c0b0a", "delivering"}},
		{[]string{"webhooks", "resume", "a1b2c3d4e5f6", "--node", srv.URL, "--token-file", tokenFile}, 0,
			[]string{"webhook a1b2c3d4e5f6 resumed: 3 events to deliver, from the one it refused"}},
		{[]string{"webhooks", "resume", "0f0e0d0c0b0a", "--node", srv.URL, "--token-file", tokenFile}, 1, []string{"the node refused (409): webhook 0f0e0d0c0b0a is not paused"}},
		{[]string{"webhooks", "resume", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{"resume takes one webhook id"}},
		{[]string{"webhooks", "pause", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{`unknown webhooks command "pause"`}},
	} {
		runCommand(t, tt)
	}
}
