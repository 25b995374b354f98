package outbox

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

func TestBackoffDoublesToCap(t *testing.T) {
	p := DefaultRetryPolicy()
	tests := []struct {
		failures int
		want     time.Duration
	}{
		{0, 30 * time.Second},
		{1, 30 * time.Second},
		{2, time.Minute},
		{3, 2 * time.Minute},
		{10, 30 * time.Second << 9},
		{11, 6 * time.Hour},
		{100, 6 * time.Hour},
	}
	for _, tt := range tests {
		if got := p.Backoff(tt.failures); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.failures, got, tt.want)
		}
	}
}

// TestHorizonIsAtLeastSevenDays walks a delivery that always fails and
// checks that it is retried for seven days and then given up.
func TestHorizonIsAtLeastSevenDays(t *testing.T) {
	p := DefaultRetryPolicy()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := start
	attempts := 0
	for {
		attempts++
		next, ok := p.Next(now, start, attempts, 0, rng)
		if !ok {
			break
		}
		if !next.After(now) {
			t.Fatalf("attempt %d: next %v is not after now %v", attempts, next, now)
		}
		now = next
		if attempts > 1000 {
			t.Fatal("the policy never gives up")
		}
	}
	if span := now.Sub(start); span < 6*24*time.Hour+18*time.Hour {
		t.Errorf("last retry %v after queueing; want close to the 7-day horizon", span)
	}
	if attempts < 20 {
		t.Errorf("only %d attempts in 7 days", attempts)
	}
}

func TestNextHonoursRetryAfterWithinCap(t *testing.T) {
	p := DefaultRetryPolicy()
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	next, ok := p.Next(now, now, 1, time.Hour, nil)
	if !ok || next.Sub(now) != time.Hour {
		t.Errorf("Retry-After 1h: next in %v (ok=%v), want 1h", next.Sub(now), ok)
	}
	next, ok = p.Next(now, now, 1, 30*24*time.Hour, nil)
	if !ok || next.Sub(now) != p.MaxRetryAfter {
		t.Errorf("Retry-After 30d: next in %v (ok=%v), want the %v cap", next.Sub(now), ok, p.MaxRetryAfter)
	}
}

func TestJitterStaysWithinBounds(t *testing.T) {
	p := DefaultRetryPolicy()
	rng := rand.New(rand.NewPCG(7, 7))
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	base := p.Backoff(3)
	for i := 0; i < 1000; i++ {
		next, _ := p.Next(now, now, 3, 0, rng)
		wait := next.Sub(now)
		if lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2); wait < lo || wait > hi {
			t.Fatalf("wait %v outside [%v, %v]", wait, lo, hi)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		err    error
		want   outcome
	}{
		{200, nil, delivered},
		{202, nil, delivered},
		{204, nil, delivered},
		{408, nil, retry},
		{429, nil, retry},
		{500, nil, retry},
		{503, nil, retry},
		{400, nil, permanent},
		{401, nil, permanent},
		{403, nil, permanent},
		{404, nil, permanent},
		{410, nil, permanent},
		{413, nil, permanent},
		{422, nil, permanent},
		{301, nil, permanent},
		{0, errors.New("connection refused"), retry},
		{0, fmt.Errorf("resolve inbox: %w", errPermanent), permanent},
	}
	for _, tt := range tests {
		if got := classify(tt.status, tt.err); got != tt.want {
			t.Errorf("classify(%d, %v) = %v, want %v", tt.status, tt.err, got, tt.want)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"120", 2 * time.Minute},
		{"-5", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"soon", 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestHugeRetryAfterIsCapped checks that a Retry-After in seconds too
// large for a time.Duration postpones the delivery by MaxRetryAfter, as
// any other long one does, rather than wrapping around to a short or
// negative wait (or none) and having the peer asked again at the backoff.
func TestHugeRetryAfterIsCapped(t *testing.T) {
	p := DefaultRetryPolicy()
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, in := range []string{"9223372037", "18446744074", "99999999999999999999"} {
		t.Run(in, func(t *testing.T) {
			next, ok := p.Next(now, now, 1, parseRetryAfter(in, now), nil)
			if !ok || next.Sub(now) != p.MaxRetryAfter {
				t.Errorf("Retry-After %s: next in %v (ok=%v), want the %v cap", in, next.Sub(now), ok, p.MaxRetryAfter)
			}
		})
	}
}

// TestRetryAfterPastTheHorizonKeepsALastAttempt checks that a peer's
// Retry-After that reaches past the retry horizon (a rate limit near the
// end of the horizon, or a horizon shorter than MaxRetryAfter) makes the
// delivery wait until the horizon for its last attempt, rather than
// dead-lettering it at once: the peer asked for time, not refused it, and
// the backoff alone would have tried again before the horizon.
func TestRetryAfterPastTheHorizonKeepsALastAttempt(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	short := DefaultRetryPolicy()
	short.Horizon = 12 * time.Hour
	tests := []struct {
		name        string
		p           RetryPolicy
		firstQueued time.Time
		failures    int
		retryAfter  time.Duration
		want        time.Time
		wantOK      bool
	}{
		{"late in the horizon", DefaultRetryPolicy(), now.Add(-6*24*time.Hour - 12*time.Hour), 20, 24 * time.Hour, now.Add(12 * time.Hour), true},
		{"a horizon shorter than the cap", short, now, 1, 24 * time.Hour, now.Add(12 * time.Hour), true},
		{"the backoff alone passes the horizon", DefaultRetryPolicy(), now.Add(-6*24*time.Hour - 20*time.Hour), 20, 24 * time.Hour, time.Time{}, false},
		{"no Retry-After", DefaultRetryPolicy(), now.Add(-6*24*time.Hour - 20*time.Hour), 20, 0, time.Time{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.p.Jitter = 0
			next, ok := tt.p.Next(now, tt.firstQueued, tt.failures, tt.retryAfter, nil)
			if ok != tt.wantOK || !next.Equal(tt.want) {
				t.Errorf("Next = %v, %v; want %v, %v", next, ok, tt.want, tt.wantOK)
			}
		})
	}
}
