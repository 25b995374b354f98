package urlsecret

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestShown(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"https://hooks.example/in", "https://hooks.example/in"},
		{"https://hooks.example/in?token=s3cret&x=1", "https://hooks.example/in?xxxxx"},
		{"https://user:s3cret@hooks.example/in", "https://user:xxxxx@hooks.example/in"},
		// A token given as the user name alone, as some services take it.
		{"https://s3cret@hooks.example/in", "https://xxxxx@hooks.example/in"},
		{"https://hooks.example/in?", "https://hooks.example/in?xxxxx"},
		{"https://hooks.example/in#s3cret", "https://hooks.example/in"},
		{"http://[::1", "(a URL that does not parse)"},
	} {
		if got := Shown(tc.raw); got != tc.want {
			t.Errorf("Shown(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestHideIn(t *testing.T) {
	u, err := url.Parse("https://user:s3cret@hooks.example/in?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []error{
		&url.Error{Op: "Post", URL: u.String(), Err: context.DeadlineExceeded},
		fmt.Errorf("read %s: %w", u.Redacted(), context.DeadlineExceeded),
	} {
		got := HideIn(in, u)
		if strings.Contains(got.Error(), "s3cret") {
			t.Errorf("HideIn(%q) = %q: the secret is still there", in, got)
		}
		if !errors.Is(got, context.DeadlineExceeded) {
			t.Errorf("HideIn(%q) = %q no longer unwraps to what failed", in, got)
		}
	}
	if HideIn(nil, u) != nil {
		t.Error("HideIn(nil) is not nil")
	}
}
