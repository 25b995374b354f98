package node

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// deadlineWriter is a connection's writer that takes a write deadline, as
// the server's does.
type deadlineWriter struct {
	http.ResponseWriter
	deadline time.Time
}

func (w *deadlineWriter) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

// TestWrappersReachTheConnection checks that the writers the node wraps
// around an answer (the request log, the metrics, the audit of refusals)
// let http.ResponseController reach the connection: the dashboard's event
// stream extends its write deadline through them, or the server's write
// timeout would cut it.
func TestWrappersReachTheConnection(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	for _, tc := range []struct {
		name string
		wrap func(http.Handler) http.Handler
	}{
		{"request log", n.logRequests},
		{"metrics", n.countRequests},
		{"audit", func(h http.Handler) http.Handler { return n.auditRefusals(store.AuditAdmin, h.ServeHTTP) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := time.Now().Add(time.Minute)
			var err error
			h := tc.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				err = http.NewResponseController(w).SetWriteDeadline(want)
			}))
			conn := &deadlineWriter{ResponseWriter: httptest.NewRecorder()}
			h.ServeHTTP(conn, httptest.NewRequest(http.MethodGet, "/ui/events", nil))
			if err != nil || !conn.deadline.Equal(want) {
				t.Errorf("SetWriteDeadline through the %s's writer: %v, deadline %v", tc.name, err, conn.deadline)
			}
		})
	}
}

// TestHeadAndAllow: the public documents answer HEAD as GET, without a
// body (curl -I, monitoring probes), and a method a path does not take is
// answered 405 with the Allow header RFC 9110 asks for and a sentence
// that names the methods it takes.
func TestHeadAndAllow(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	do := func(method, path string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, n.url+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, path := range []string{"/healthz", "/actors/vendor", "/.well-known/csaf/provider-metadata.json", "/.well-known/csaf/white/index.txt"} {
		get, head := do(http.MethodGet, path), do(http.MethodHead, path)
		if head.StatusCode != http.StatusOK || head.StatusCode != get.StatusCode || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %s, Content-Type %q; GET: %s, %q", path, head.Status, head.Header.Get("Content-Type"), get.Status, get.Header.Get("Content-Type"))
		}
		if tag := get.Header.Get("ETag"); tag != "" && head.Header.Get("ETag") != tag {
			t.Errorf("HEAD %s: ETag %q, GET's %q", path, head.Header.Get("ETag"), tag)
		}
	}
	for _, tc := range []struct{ method, path, allow string }{
		{http.MethodPut, "/healthz", "GET, HEAD"},
		{http.MethodPost, "/actors/vendor", "GET, HEAD"},
		{http.MethodGet, "/api/cases/x/resync", "POST"},
	} {
		req, err := http.NewRequest(tc.method, n.url+tc.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow || !strings.Contains(string(body), "it takes "+tc.allow) {
			t.Errorf("%s %s: %s, Allow %q, %s; want 405, Allow %q and a sentence naming it", tc.method, tc.path, resp.Status, resp.Header.Get("Allow"), body, tc.allow)
		}
	}
}
