package outbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUnauthorizedRetried checks that a 401 is retried with backoff (the
// peer's copy of the actor's key may be stale after a rotation, and it
// fetches the key again) a bounded number of times, and then
// dead-lettered with a reason that names the 401.
func TestUnauthorizedRetried(t *testing.T) {
	tests := []struct {
		name     string
		refusals int // how many requests the peer answers 401
		wantDead bool
	}{
		{name: "a 401 once, then accepted", refusals: 1},
		{name: "401 until the last attempt, then accepted", refusals: MaxUnauthorizedAttempts - 1},
		{name: "401 every time", refusals: 1 << 30, wantDead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, func(n int, _ received, w http.ResponseWriter) {
				if n < tt.refusals {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusUnauthorized)
					fmt.Fprint(w, `{"error":"signature does not verify"}`)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			})
			f := newFixture(t, clock, rc.inbox, nil)
			f.enqueue(t, 1, "case-1")
			var waits []time.Duration
			for attempt := 1; attempt <= MaxUnauthorizedAttempts; attempt++ {
				before := clock.Now()
				f.d.attempt(context.Background(), f.due(t))
				if attempt > tt.refusals {
					waitFor(t, "the completion to commit", func() bool { return f.d.Stats().Delivered == 1 })
					break
				}
				if attempt == MaxUnauthorizedAttempts {
					break
				}
				p := f.pending(t)
				if len(p) != 1 || p[0].Attempts != attempt {
					t.Fatalf("after 401 number %d: pending %+v, want the delivery retried", attempt, p)
				}
				checkReason(t, p[0].LastError, []string{"401 Unauthorized", "signature does not verify"})
				waits = append(waits, p[0].NextAttempt.Sub(before))
				clock.Advance(p[0].NextAttempt.Sub(before))
			}
			for i := 1; i < len(waits); i++ {
				if waits[i] <= waits[i-1] {
					t.Errorf("waits between attempts %v do not grow", waits)
				}
			}
			dead := f.deadLetters(t)
			if !tt.wantDead {
				if len(dead) != 0 || len(f.pending(t)) != 0 {
					t.Fatalf("dead letters %+v, pending %+v; want the delivery delivered", dead, f.pending(t))
				}
				if got := len(rc.requests()); got != tt.refusals+1 {
					t.Errorf("the peer got %d requests, want %d", got, tt.refusals+1)
				}
				return
			}
			if len(dead) != 1 || len(f.pending(t)) != 0 {
				t.Fatalf("dead letters %+v, pending %+v; want the delivery dead-lettered after %d attempts", dead, f.pending(t), MaxUnauthorizedAttempts)
			}
			checkReason(t, dead[0].LastError, []string{"401 Unauthorized", fmt.Sprintf("attempt %d", MaxUnauthorizedAttempts)})
			if got := len(rc.requests()); got != MaxUnauthorizedAttempts {
				t.Errorf("the peer got %d requests, want %d", got, MaxUnauthorizedAttempts)
			}
		})
	}
}

// TestUnauthorizedAfterAnOutageRetried: a peer that was down for several
// attempts and answers 401 when it is back (restored with a copy of the
// actor's key cached before a rotation) gets the delivery again; a second
// 401 in a row past MaxUnauthorizedAttempts dead-letters it, with a
// reason that says at which attempt, not that every attempt was a 401.
func TestUnauthorizedAfterAnOutageRetried(t *testing.T) {
	const outage = MaxUnauthorizedAttempts + 1 // 503s before the first 401
	tests := []struct {
		name     string
		refusals int // 401s after the outage, then 202
		wantDead bool
	}{
		{name: "one 401 after the outage, then accepted", refusals: 1},
		{name: "401 after the outage every time", refusals: 1 << 30, wantDead: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, func(n int, _ received, w http.ResponseWriter) {
				switch {
				case n < outage:
					w.WriteHeader(http.StatusServiceUnavailable)
				case n < outage+tt.refusals:
					w.WriteHeader(http.StatusUnauthorized)
				default:
					w.WriteHeader(http.StatusAccepted)
				}
			})
			f := newFixture(t, clock, rc.inbox, nil)
			f.enqueue(t, 1, "case-1")
			for range outage + 1 {
				d := f.due(t)
				f.d.attempt(context.Background(), d)
				if p := f.pending(t); len(p) == 1 {
					clock.Advance(p[0].NextAttempt.Sub(clock.Now()))
				}
			}
			if p := f.pending(t); len(p) != 1 {
				t.Fatalf("after the outage's 503s and a 401: pending %+v, dead letters %+v; want the delivery retried", p, f.deadLetters(t))
			}
			f.d.attempt(context.Background(), f.due(t))
			if !tt.wantDead {
				waitFor(t, "the completion to commit", func() bool { return f.d.Stats().Delivered == 1 })
				return
			}
			dead := f.deadLetters(t)
			if len(dead) != 1 {
				t.Fatalf("after two 401s in a row: dead letters %+v, pending %+v; want the delivery dead-lettered", dead, f.pending(t))
			}
			checkReason(t, dead[0].LastError, []string{"401 Unauthorized", fmt.Sprintf("attempt %d", outage+2)})
			if strings.Contains(dead[0].LastError, fmt.Sprintf("on %d attempts", outage+2)) {
				t.Errorf("reason %q says the peer answered 401 on every attempt", dead[0].LastError)
			}
		})
	}
}
