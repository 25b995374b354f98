package policy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func mustNew(t *testing.T, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestAllowlist(t *testing.T) {
	p := mustNew(t, Config{Mode: Allowlist, AllowedHosts: []string{"cvd.vendor.example", "Cert.Example:8443"}})
	tests := []struct {
		keyID      string
		wantStatus int
	}{
		{"https://cvd.vendor.example/actors/psirt#main-key", 0},
		{"https://cvd.vendor.example:9000/actors/psirt#main-key", 0}, // a bare host allows every port
		{"https://cert.example:8443/actors/a#k", 0},
		{"https://cert.example/actors/a#k", 403}, // host:port allows that port only
		{"https://evil.example/actors/a#k", 403},
		{"https://cvd.vendor.example.evil.example/actors/a#k", 403},
		{"not a url", 401},
		{"ftp://cvd.vendor.example/k", 401},
	}
	for _, tt := range tests {
		err := p.AdmitPeer(tt.keyID)
		if got := statusOf(err); got != tt.wantStatus {
			t.Errorf("AdmitPeer(%q) = %v (status %d), want status %d", tt.keyID, err, got, tt.wantStatus)
		}
	}
	if err := p.AdmitPeer("https://evil.example/a#k"); err == nil || problem.Message(err) != "peer evil.example is not on this node's federation allow-list; its key was not fetched" {
		t.Errorf("refusal text = %q", problem.Message(err))
	}
	open := mustNew(t, Config{})
	if err := open.AdmitPeer("https://evil.example/a#k"); err != nil {
		t.Errorf("open federation refused a peer: %v", err)
	}
	if _, err := New(Config{Mode: Allowlist}); err == nil {
		t.Error("allowlist without hosts was accepted")
	}
	if _, err := New(Config{Mode: "closed"}); err == nil {
		t.Error("unknown mode was accepted")
	}
}

func statusOf(err error) int {
	if err == nil {
		return 0
	}
	return problem.Status(err)
}

func TestPeerRateLimit(t *testing.T) {
	c := newClock()
	p := mustNew(t, Config{PeerRate: 2, PeerBurst: 3, Now: c.now})
	key := "https://a.example/actors/x#k"
	for i := range 3 {
		if err := p.AdmitPeer(key); err != nil {
			t.Fatalf("request %d within the burst: %v", i, err)
		}
	}
	err := p.AdmitPeer(key)
	var pe *problem.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests || pe.RetryAfter < time.Second {
		t.Fatalf("over the burst: %v, want 429 with Retry-After ≥ 1s", err)
	}
	if err := p.AdmitPeer("https://b.example/actors/y#k"); err != nil {
		t.Errorf("another peer host was limited too: %v", err)
	}
	c.add(500 * time.Millisecond) // one token back at 2/s
	if err := p.AdmitPeer(key); err != nil {
		t.Errorf("after refill: %v", err)
	}
	if err := p.AdmitPeer(key); statusOf(err) != 429 {
		t.Errorf("second request after one refill: %v, want 429", err)
	}
}

func TestIPRateLimit(t *testing.T) {
	c := newClock()
	p := mustNew(t, Config{IPRate: 1, IPBurst: 1, Now: c.now})
	if err := p.AdmitIP("192.0.2.1:1000"); err != nil {
		t.Fatal(err)
	}
	if err := p.AdmitIP("192.0.2.1:2000"); statusOf(err) != 429 {
		t.Errorf("same IP, other port: %v, want 429", err)
	}
	if err := p.AdmitIP("192.0.2.2:1000"); err != nil {
		t.Errorf("other IP: %v", err)
	}
	// One IPv6 /64 is one client.
	if err := p.AdmitIP("[2001:db8:1:2::1]:443"); err != nil {
		t.Fatal(err)
	}
	if err := p.AdmitIP("[2001:db8:1:2::ffff]:443"); statusOf(err) != 429 {
		t.Errorf("same /64: %v, want 429", err)
	}
	if err := p.AdmitIP("[2001:db8:1:3::1]:443"); err != nil {
		t.Errorf("other /64: %v", err)
	}
	if err := mustNew(t, Config{}).AdmitIP("192.0.2.1:1"); err != nil {
		t.Errorf("no IP limit configured, got %v", err)
	}
}

// TestStateIsBounded sends requests from far more peer hosts and IPs than
// the bound (B29: attacker-chosen hosts must not grow the state) and
// checks that idle entries expire.
func TestStateIsBounded(t *testing.T) {
	c := newClock()
	p := mustNew(t, Config{PeerRate: 1, IPRate: 1, MaxEntries: 100, IdleTTL: time.Minute, Now: c.now})
	for i := range 5000 {
		_ = p.AdmitPeer(fmt.Sprintf("https://h%d.example/a#k", i))
		_ = p.AdmitIP(fmt.Sprintf("10.%d.%d.1:1", i/256, i%256))
	}
	peers, ips, _ := p.Tracked()
	if peers > 100 || ips > 100 {
		t.Errorf("tracked %d peers and %d IPs, want at most 100 each", peers, ips)
	}
	c.add(2 * time.Minute)
	_ = p.AdmitPeer("https://fresh.example/a#k")
	if peers, _, _ := p.Tracked(); peers > 100 {
		t.Errorf("after the TTL: %d peers tracked", peers)
	}
	// A key that keeps expiring and coming back is one entry.
	q := mustNew(t, Config{PeerRate: 1, MaxEntries: 10, IdleTTL: time.Second, Now: c.now})
	for range 1000 {
		_ = q.AdmitPeer("https://same.example/a#k")
		c.add(2 * time.Second)
	}
	if n, _, _ := q.Tracked(); n != 1 {
		t.Errorf("%d entries for one key that keeps coming back", n)
	}
}

// countingKeys is a KeyResolver that fails and counts its calls.
type countingKeys struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (k *countingKeys) ResolveKey(context.Context, string, bool) (actor.PublicKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls++
	return actor.PublicKey{}, k.err
}

func TestNegativeKeyCache(t *testing.T) {
	c := newClock()
	p := mustNew(t, Config{KeyFailureTTL: time.Minute, Now: c.now})
	inner := &countingKeys{err: errors.New("key document not found (status 404)")}
	keys := p.Keys(inner)
	for range 5 {
		_, err := keys.ResolveKey(context.Background(), "https://a.example/k#1", false)
		if err == nil {
			t.Fatal("a failing key resolved")
		}
	}
	if inner.calls != 1 {
		t.Errorf("failing key fetched %d times within the TTL, want 1", inner.calls)
	}
	_, err := keys.ResolveKey(context.Background(), "https://a.example/k#1", false)
	if !errors.Is(err, ErrKeyRecentlyFailed) {
		t.Errorf("err = %v, want ErrKeyRecentlyFailed", err)
	}
	c.add(2 * time.Minute)
	_, _ = keys.ResolveKey(context.Background(), "https://a.example/k#1", false)
	if inner.calls != 2 {
		t.Errorf("after the TTL: %d fetches, want 2", inner.calls)
	}
}

// TestNegativeKeyCacheSkipsTheNodesOwnFailures: a lookup that failed
// because this node's store did not answer (a CacheError) is not
// remembered: the sender's next try must reach the key once the store is
// back, not be refused for the TTL.
func TestNegativeKeyCacheSkipsTheNodesOwnFailures(t *testing.T) {
	p := mustNew(t, Config{KeyFailureTTL: time.Minute, Now: newClock().now})
	inner := &countingKeys{err: &actor.CacheError{Err: errors.New("cache key: store: the database is read-only")}}
	keys := p.Keys(inner)
	for range 3 {
		_, err := keys.ResolveKey(context.Background(), "https://a.example/k#1", false)
		if errors.Is(err, ErrKeyRecentlyFailed) {
			t.Fatalf("err = %v: the node's own failure was remembered", err)
		}
	}
	if inner.calls != 3 {
		t.Errorf("%d lookups reached the resolver, want 3", inner.calls)
	}
}

func TestTransportAndFetchRefuseOtherHosts(t *testing.T) {
	p := mustNew(t, Config{Mode: Allowlist, AllowedHosts: []string{"ok.example"}})
	called := false
	rt := p.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		called = true
		return &http.Response{StatusCode: 202, Body: http.NoBody}, nil
	}))
	req, _ := http.NewRequest(http.MethodPost, "https://evil.example/inbox", http.NoBody)
	if _, err := rt.RoundTrip(req); !errors.Is(err, ErrNotAllowed) || called {
		t.Errorf("request to a host off the list: err %v, sent %v", err, called)
	}
	req, _ = http.NewRequest(http.MethodPost, "https://ok.example/inbox", http.NoBody)
	if _, err := rt.RoundTrip(req); err != nil || !called {
		t.Errorf("request to an allowed host: err %v, sent %v", err, called)
	}
	fetch := p.FetchFunc(func(context.Context, string) ([]byte, error) { return []byte("{}"), nil })
	if _, err := fetch(context.Background(), "https://evil.example/actors/a"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("fetch off the list: %v", err)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNegativeKeyCacheSkipsTransientFailures(t *testing.T) {
	for _, code := range []int{503, 429, 413, 502} {
		msg := fmt.Sprintf("status %d", code)
		p := mustNew(t, Config{})
		inner := &countingKeys{err: fmt.Errorf("resolve key: %w", &actor.StatusError{URL: "https://a.example/k", Code: code})}
		keys := p.Keys(inner)
		for range 3 {
			_, _ = keys.ResolveKey(context.Background(), "https://a.example/k#1", false)
		}
		if inner.calls != 3 {
			t.Errorf("%q: %d fetches, want 3 (transient failures are not cached)", msg, inner.calls)
		}
	}
}

// TestKeyFetchLimit: the key fetches to one host are limited by default
// (no Config field set), per host, refilled at the rate; a negative rate
// lifts the limit. A lookup the limit held back is not remembered as a
// failure of the key: the sender's retry fetches it once the host has
// fetches again.
func TestKeyFetchLimit(t *testing.T) {
	c := newClock()
	p := mustNew(t, Config{Now: c.now})
	key := func(i int) string { return fmt.Sprintf("https://a.example/keys/%d#k", i) }
	for i := range DefaultKeyFetchBurst {
		if err := p.AdmitKeyFetch(key(i)); err != nil {
			t.Fatalf("fetch %d within the default burst: %v", i, err)
		}
	}
	err := p.AdmitKeyFetch(key(DefaultKeyFetchBurst))
	var pe *problem.Error
	if !errors.As(err, &pe) || pe.Status != http.StatusTooManyRequests || pe.RetryAfter < time.Second {
		t.Fatalf("over the default burst: %v, want 429 with Retry-After", err)
	}
	if err := p.AdmitKeyFetch("https://b.example/actors/y#k"); err != nil {
		t.Errorf("another host's fetch was limited too: %v", err)
	}
	c.add(time.Duration(float64(time.Second) / DefaultKeyFetchRate))
	if err := p.AdmitKeyFetch(key(100)); err != nil {
		t.Errorf("after a refill: %v", err)
	}

	// Held back, then fetched: the refusal is not a failure of the key.
	inner := &countingKeys{err: err}
	keys := p.Keys(inner)
	if _, err := keys.ResolveKey(context.Background(), key(1), false); statusOf(err) != http.StatusTooManyRequests {
		t.Fatalf("a held back lookup: %v, want 429", err)
	}
	inner.err = nil
	if _, err := keys.ResolveKey(context.Background(), key(1), false); err != nil {
		t.Errorf("the retry of a held back lookup: %v; the refusal was remembered as the key's failure", err)
	}

	open := mustNew(t, Config{KeyFetchRate: -1, Now: c.now})
	for i := range 3 * DefaultKeyFetchBurst {
		if err := open.AdmitKeyFetch(key(i)); err != nil {
			t.Fatalf("fetch %d without a limit: %v", i, err)
		}
	}
}
