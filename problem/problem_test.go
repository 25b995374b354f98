package problem

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	cause := errors.New("disk on fire")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantMsg    string
		wantRetry  string
	}{
		{"refusal", Unauthorized("signature does not cover the digest header"), 401, "signature does not cover the digest header", ""},
		{"wrapped refusal", fmt.Errorf("inbox: %w", Conflict("activity %s was already received with a different body", "https://x/1")), 409, "activity https://x/1 was already received with a different body", ""},
		{"internal error hides detail", cause, 500, "internal error; the node's log has the details", ""},
		{"retry after", &Error{Status: 429, Msg: "too many requests from example.org", RetryAfter: 1500 * time.Millisecond}, 429, "too many requests from example.org", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.err)
			if got, want := rec.Code, tt.wantStatus; got != want {
				t.Errorf("status = %d, want %d", got, want)
			}
			if got, want := rec.Header().Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			if got := body["error"]; got != tt.wantMsg {
				t.Errorf("error = %q, want %q", got, tt.wantMsg)
			}
		})
	}
}

func TestErrorChain(t *testing.T) {
	cause := errors.New("bbolt: timeout")
	err := Wrap(http.StatusServiceUnavailable, cause, "the store is busy")
	if !errors.Is(err, cause) {
		t.Fatal("Wrap does not keep the cause in the chain")
	}
	if got, want := err.Error(), "the store is busy: bbolt: timeout"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := Status(fmt.Errorf("outer: %w", err)), 503; got != want {
		t.Errorf("Status = %d, want %d", got, want)
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"abcdefghijkl", 5, "abcde…"},
		// "é" is two bytes: a cut in its middle keeps it whole out.
		{"abcdé", 5, "abcd…"},
		{"日本語", 4, "日…"},
	} {
		if got := Clip(tt.in, tt.n); got != tt.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

// TestPrintable checks what text from a peer becomes before it is quoted:
// control characters (C0, DEL, C1) and invalid UTF-8 cannot break a log
// line or a terminal, surrounding space is trimmed, and the result is
// clipped as Clip clips.
func TestPrintable(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"plain", 10, "plain"},
		{"line\nbreak\ttab", 40, "line break tab"},
		{"bell\x07 del\x7f c1\u0085", 40, "bell  del  c1"},
		{"bad \xff\xfe utf-8", 40, "bad ? utf-8"},
		{"  \r\n padded \n", 40, "padded"},
		{"ééééé", 5, "éé…"},
		{"a\nbcdefgh", 4, "a bc…"},
	} {
		if got := Printable(tt.in, tt.n); got != tt.want {
			t.Errorf("Printable(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
