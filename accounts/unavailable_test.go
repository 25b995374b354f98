package accounts

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// TestUnavailableSaysWhenOnlyForWhatPasses: a credential that could not be
// checked is answered 503, with Retry-After when the store's failure
// passes (it cannot serve now, or the node is stopping), not when it does
// not (a damaged record), where trying again would fail the same way.
func TestUnavailableSaysWhenOnlyForWhatPasses(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"store cannot serve now", &store.UnavailableError{Reason: "the database is read-only", Err: errors.New("SQLSTATE 25006")}, true},
		{"node stopping", fmt.Errorf("read token: %w", store.ErrClosed), true},
		{"damaged record", fmt.Errorf("read token: %w", store.ErrDamaged), false},
	} {
		err := unavailable(tt.err)
		if problem.Status(err) != http.StatusServiceUnavailable {
			t.Errorf("%s: status %d, want 503", tt.name, problem.Status(err))
		}
		if got := problem.RetryAfter(err) > 0; got != tt.retry {
			t.Errorf("%s: Retry-After given %v, want %v", tt.name, got, tt.retry)
		}
	}
}

// TestUnavailableSaysWhy: a credential the store could not check because
// the database refuses the node's own credentials (a changed password)
// is answered with that reason, not only "its store does not answer",
// so that the one who reads it knows the database is the one to fix.
func TestUnavailableSaysWhy(t *testing.T) {
	err := unavailable(fmt.Errorf("read token: %w", &store.UnavailableError{
		Reason: "the database refuses the node's credentials", Err: errors.New("SQLSTATE 28P01")}))
	want := "the node cannot check credentials now: the database refuses the node's credentials; try again"
	if got := problem.Message(err); got != want {
		t.Errorf("message %q, want %q", got, want)
	}
	if got := problem.Message(unavailable(store.ErrClosed)); got != "the node cannot check credentials now: its store does not answer; try again" {
		t.Errorf("a store that gives no reason: message %q", got)
	}
}
