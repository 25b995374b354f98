package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/problem"
)

// TestPostNotificationSaysWhy: a notification the receiver does not take
// is refused with a sentence that says why (the address refused the
// connection, the receiver's status), which the audit record keeps.
func TestPostNotificationSaysWhy(t *testing.T) {
	closed := func(t *testing.T) string {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr + "/hook"
	}
	failing := func(t *testing.T) string {
		t.Helper()
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "down", http.StatusInternalServerError)
		}))
		t.Cleanup(s.Close)
		return s.URL + "/hook"
	}
	tests := []struct {
		name string
		url  func(*testing.T) string
		want string
	}{
		{"nothing listens", closed, "failed: dial tcp"},
		{"error status", failing, "the receiver answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.url(t)
			err := postNotification(context.Background(), &http.Client{Timeout: 5 * time.Second}, u, nil, time.Now(), automation.Notification{Policy: "p"})
			msg := problem.Message(err)
			if err == nil || problem.Status(err) != http.StatusBadGateway || !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "notify "+u) {
				t.Errorf("postNotification = %v (%d, %q); want a 502 whose sentence has %q", err, problem.Status(err), msg, tt.want)
			}
			if strings.Count(msg, u) != 1 {
				t.Errorf("the sentence names the URL more than once: %q", msg)
			}
		})
	}
}
