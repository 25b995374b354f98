package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

func TestActorRotateKeyCommand(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/actors/{name}/rotate-key", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "vendor" {
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":"no actor \"` + r.PathValue("name") + `\" on this node"}`))
			return
		}
		if got := r.URL.Query().Get("overlap"); got != "72h0m0s" && got != "168h0m0s" {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"unexpected overlap ` + got + `"}`))
			return
		}
		w.Write([]byte(`{"actor":"http://n/actors/vendor","keyId":"http://n/actors/vendor#key-abc","previousKeyId":"http://n/actors/vendor#main-key","previousKeyUntil":"2026-11-25T12:00:00Z"}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []commandCase{
		{[]string{"actor", "rotate-key", "vendor", "--key-overlap", "3d", "--node", srv.URL, "--token-file", tokenFile}, 0,
			[]string{"http://n/actors/vendor now signs with http://n/actors/vendor#key-abc", "#main-key stays accepted until 2026-11-25T12:00:00Z"}},
		{[]string{"actor", "rotate-key", "vendor", "--node", srv.URL, "--token-file", tokenFile}, 0, []string{"#key-abc"}},
		{[]string{"actor", "rotate-key", "nobody", "--node", srv.URL, "--token-file", tokenFile}, 1, []string{`the node refused (404): no actor "nobody"`}},
		{[]string{"actor", "rotate-key", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{"rotate-key takes one actor name"}},
		{[]string{"actor", "frob", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{`unknown actor command "frob"`}},
		{[]string{"actor", "rotate-key", "vendor", "--key-overlap", "soon", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{`"soon" is not a duration`}},
	}
	for _, tt := range tests {
		runCommand(t, tt)
	}
}
