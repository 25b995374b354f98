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

// TestPostNotificationHidesTheReceiversCredential: a notification URL
// with a credential of the receiver's (a password, a token in the query)
// is named in the refusal's sentence, which the audit record and the log
// keep, with the credential as xxxxx, as a webhook URL is.
func TestPostNotificationHidesTheReceiversCredential(t *testing.T) {
	const password, token = "notify-password-5d1a", "notify-query-token-0b7e"
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	t.Cleanup(s.Close)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	for _, base := range []string{s.URL, closed} {
		for _, u := range []string{
			strings.Replace(base, "http://", "http://bot:"+password+"@", 1) + "/hook",
			base + "/hook?token=" + token,
		} {
			err := postNotification(context.Background(), &http.Client{Timeout: 5 * time.Second}, u, nil, time.Now(), automation.Notification{Policy: "p"})
			if err == nil {
				t.Fatalf("postNotification to %s succeeded", base)
			}
			// The sentence, and the whole error a log line would write.
			for _, text := range []string{problem.Message(err), err.Error()} {
				if !strings.Contains(text, "xxxxx") || strings.Contains(text, password) || strings.Contains(text, token) {
					t.Errorf("postNotification to a URL with a credential = %q; want the URL named with the credential as xxxxx", text)
				}
			}
		}
	}
}
