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
