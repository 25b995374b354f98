package node

import (
	"net/http"
	"net/http/httptest"
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
