package node

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestReadyzSaysWhichCheckFailed: /readyz answers 503 with a JSON body
// that names the check that failed and says why, so that an operator
// (or an orchestrator's log) does not have to guess: the node not yet
// serving, the node stopping, the store closed. It answers 200 only when
// every check passes, and never names the data directory.
func TestReadyzSaysWhichCheckFailed(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, n *idleNode)
		status int
		check  string // the check named in a 503
		says   string // in its error
	}{
		{"not serving yet", func(*testing.T, *idleNode) {}, http.StatusServiceUnavailable, "started", "has not started"},
		{"ready", func(_ *testing.T, n *idleNode) { n.serving.Store(true) }, http.StatusOK, "", ""},
		{"stopping", func(_ *testing.T, n *idleNode) {
			n.serving.Store(true)
			close(n.stopping)
		}, http.StatusServiceUnavailable, "stopping", "is stopping"},
		{"store closed", func(t *testing.T, n *idleNode) {
			n.serving.Store(true)
			if err := n.db.Close(); err != nil {
				t.Fatal(err)
			}
		}, http.StatusServiceUnavailable, "store", "store is closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newIdleNode(t, Config{})
			tt.setup(t, n)
			rec := httptest.NewRecorder()
			n.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			var body struct {
				Status string `json:"status"`
				Check  string `json:"check"`
				Error  string `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("/readyz body %q is not JSON: %v", rec.Body.String(), err)
			}
			if rec.Code != tt.status {
				t.Fatalf("/readyz = %d %s, want %d", rec.Code, rec.Body.String(), tt.status)
			}
			if tt.status == http.StatusOK {
				if body.Status != "ready" {
					t.Errorf("/readyz body %s, want status ready", rec.Body.String())
				}
				return
			}
			if body.Check != tt.check || !strings.Contains(body.Error, tt.says) || body.Status != "not ready" {
				t.Errorf("/readyz body %s, want status \"not ready\", check %q and an error saying %q", rec.Body.String(), tt.check, tt.says)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Errorf("/readyz 503 without Retry-After")
			}
			if strings.Contains(rec.Body.String(), n.dir) {
				t.Errorf("/readyz body names the data directory: %s", rec.Body.String())
			}
		})
	}
}
