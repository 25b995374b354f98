package accounts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/internal/pgtest"
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

// TestACredentialUsedWhileTheStoreTakesNoWritesLogsNoLinePerRequest: a
// token, or a dashboard session, used while the store takes no writes
// (here its database turned read-only, as after a failover) still
// authenticates, and the record of its last use, which cannot be
// written, is not logged at each request: the store logs the episode
// once. A client that polls the API with its token, or a person who
// browses the dashboard, made a warning a request before.
func TestACredentialUsedWhileTheStoreTakesNoWritesLogsNoLinePerRequest(t *testing.T) {
	for _, tt := range []struct {
		name  string
		every time.Duration
		use   func(ctx context.Context, s *Service, admin Principal) func() error
	}{
		{"token", lastUsedEvery, func(ctx context.Context, s *Service, _ Principal) func() error {
			return func() error { _, err := s.Authenticate(ctx, apiToken); return err }
		}},
		{"session", lastSeenEvery, func(ctx context.Context, s *Service, admin Principal) func() error {
			login := enrolled(t, s, admin, "erin", Analyst, "correct horse battery")
			return func() error { _, err := s.Session(ctx, login.SessionID); return err }
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			u := pgtest.Database(t)
			var logs bytes.Buffer
			c, s, admin := serviceWithAdmin(t, u, func(cfg *Config) {
				cfg.Logger = zerolog.New(&logs)
				cfg.SecondFactorOptional = true
			})
			use := tt.use(ctx, s, admin)
			pg := pgtest.Connect(t, u)
			pgtest.AlterDatabase(t, pg, `SET default_transaction_read_only = on`)
			t.Cleanup(func() { pgtest.AlterDatabase(t, pg, `RESET default_transaction_read_only`) })
			for range 5 {
				c.Advance(tt.every) // each use is one to record
				if err := use(); err != nil {
					t.Fatalf("a %s on a read-only database: %v", tt.name, err)
				}
				// The record of its use waits for a commit; this one takes it.
				if err := s.db.Update(ctx, func(*store.Tx) error { return nil }); !errors.Is(err, store.ErrUnavailable) {
					t.Fatalf("a write on a read-only database: %v, want ErrUnavailable", err)
				}
			}
			if n := strings.Count(logs.String(), "accounts: record a"); n != 0 {
				t.Errorf("%d lines for 5 uses of a %s on a read-only database, want none (the store logs it):\n%s", n, tt.name, logs.String())
			}
		})
	}
}
