// Package policy decides which peers a node federates with and how often
// they may call it, before any signature key is fetched.
//
// A Policy holds:
//
//   - the federation mode: Open (any host may federate) or Allowlist (only
//     the configured peer hosts; everyone else gets 403 before their key is
//     fetched, and outbound requests to them are refused);
//   - token-bucket rate limits per peer host (the host of a signature's key
//     id, known before the key is fetched) and per client IP (IPv6 grouped by
//     /64), answered with 429 and Retry-After;
//   - the client IP of a request (ClientIP, clientip.go): the immediate
//     peer's address, or, only when that peer is a trusted reverse proxy,
//     the first untrusted address of the forwarding chain the operator
//     said its proxies append to (X-Forwarded-For by default, or
//     Forwarded), read from the right; the node uses it for rate limits,
//     audit records and logs alike;
//   - a negative cache of key ids whose resolution failed, so that a peer
//     naming many bad keys cannot make the node fetch each one over and over;
//   - a token bucket of key fetches per key host (AdmitKeyFetch), on by
//     default: requests naming ever new key ids on one host (someone
//     else's, which the node would be made to flood) cost that host at
//     most DefaultKeyFetchRate fetches a second after a burst of
//     DefaultKeyFetchBurst, whatever the peer rate. Keys already cached
//     are not fetched and not limited.
//
// Every piece of per-peer state lives in a bounded map whose idle entries
// expire (an LRU of hashicorp/golang-lru, see lru): no sequence of
// requests grows the node's memory without limit.
package policy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	golru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
)

// Mode is a federation mode.
type Mode string

// The federation modes.
const (
	// Open federates with any host that signs correctly.
	Open Mode = "open"
	// Allowlist federates only with the hosts in Config.AllowedHosts.
	Allowlist Mode = "allowlist"
)

// ParseMode parses "open" or "allowlist".
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case Open, Allowlist:
		return m, nil
	}
	return "", fmt.Errorf("federation mode %q is not open or allowlist", s)
}

// Defaults of Config.
const (
	// DefaultMaxEntries bounds each map of per-peer state (rate buckets per
	// host, per IP, failed keys).
	DefaultMaxEntries = 10000
	// DefaultIdleTTL is how long an idle rate bucket is kept.
	DefaultIdleTTL = 10 * time.Minute
	// DefaultKeyFailureTTL is how long a key id whose resolution failed is
	// answered from the negative cache without a new fetch.
	DefaultKeyFailureTTL = 5 * time.Minute
	// DefaultKeyFetchRate and DefaultKeyFetchBurst bound the key fetches
	// the node makes to one host. A peer's keys are cached for a day, but
	// a peer node has a Case Actor, with a key of its own, for each case
	// it owns, so a node that learns of many of its cases at once fetches
	// many keys of one host: the burst lets a hundred through at once,
	// and the senders retry those held back.
	DefaultKeyFetchRate  = 10.0
	DefaultKeyFetchBurst = 100
)

// Config configures a Policy. The zero value is open federation without
// rate limits.
type Config struct {
	Mode Mode // default Open
	// AllowedHosts are the peer hosts of Allowlist mode: "host" matches
	// every port of host, "host:port" only that port. Case-insensitive.
	AllowedHosts []string
	// PeerRate is the sustained number of signed requests per second one
	// peer host may make; zero means no limit. PeerBurst is its bucket size
	// (default: PeerRate rounded up, at least 1).
	PeerRate  float64
	PeerBurst int
	// IPRate and IPBurst limit the federation requests of one client IP
	// (one /64 for IPv6) the same way.
	IPRate  float64
	IPBurst int
	// MaxEntries bounds each map of per-peer state; default
	// DefaultMaxEntries.
	MaxEntries int
	// IdleTTL is how long an idle rate bucket is remembered; default
	// DefaultIdleTTL.
	IdleTTL time.Duration
	// KeyFailureTTL is how long a failed key resolution is remembered;
	// default DefaultKeyFailureTTL; negative disables the negative cache.
	KeyFailureTTL time.Duration
	// KeyFetchRate is the sustained number of key fetches per second the
	// node makes to one host (AdmitKeyFetch), KeyFetchBurst its bucket
	// size. Zero means DefaultKeyFetchRate and DefaultKeyFetchBurst; a
	// negative rate means no limit.
	KeyFetchRate  float64
	KeyFetchBurst int
	// TrustedProxies are the reverse proxies in front of the node, each a
	// CIDR prefix or one address (see ParseTrustedProxies and ClientIP).
	TrustedProxies []string
	// ProxyHeaders names the forwarding headers the trusted proxies
	// append the client's address to, "X-Forwarded-For" or "Forwarded"
	// (RFC 7239), or both; ClientIP reads those only, since a proxy passes
	// the other through as the client wrote it. Default: X-Forwarded-For
	// (see ParseProxyHeaders).
	ProxyHeaders []string
	// Logger receives the warnings about unusable forwarding headers from
	// a trusted proxy (sampled: a burst of 10 a minute).
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Policy applies a Config. It is safe for concurrent use.
type Policy struct {
	mode      Mode
	hosts     map[string]bool // host or host:port, lower case
	peerRate  float64
	peerBurst float64
	ipRate    float64
	ipBurst   float64
	keyTTL    time.Duration
	// fetchRate and fetchBurst bound the key fetches to one host; a rate
	// of zero means no limit.
	fetchRate  float64
	fetchBurst float64
	now        func() time.Time
	proxies    []netip.Prefix
	// readFwd and readXFF say which forwarding headers the trusted
	// proxies set (Config.ProxyHeaders).
	readFwd, readXFF bool
	proxyLog         zerolog.Logger

	peers   *lru[*bucket]
	ips     *lru[*bucket]
	fetches *lru[*bucket] // by key host
	failed  *lru[keyFailure]
}

// CheckHost returns an error that names h unless it is a host or
// host:port, as an allowed peer is given: no scheme, path or user.
func CheckHost(h string) error {
	if h = strings.ToLower(strings.TrimSpace(h)); h == "" || strings.ContainsAny(h, "/@ ") {
		return fmt.Errorf("allowed peer %q is not a host or host:port", h)
	}
	return nil
}

// New returns a Policy for cfg.
func New(cfg Config) (*Policy, error) {
	if cfg.Mode == "" {
		cfg.Mode = Open
	}
	if _, err := ParseMode(string(cfg.Mode)); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	if cfg.PeerRate < 0 || cfg.IPRate < 0 || cfg.PeerBurst < 0 || cfg.IPBurst < 0 || cfg.KeyFetchBurst < 0 {
		return nil, errors.New("policy: rates and bursts must not be negative")
	}
	switch {
	case cfg.KeyFetchRate == 0:
		cfg.KeyFetchRate = DefaultKeyFetchRate
		if cfg.KeyFetchBurst == 0 {
			cfg.KeyFetchBurst = DefaultKeyFetchBurst
		}
	case cfg.KeyFetchRate < 0:
		cfg.KeyFetchRate = 0
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.IdleTTL <= 0 {
		cfg.IdleTTL = DefaultIdleTTL
	}
	if cfg.KeyFailureTTL == 0 {
		cfg.KeyFailureTTL = DefaultKeyFailureTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	proxies, err := ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	readFwd, readXFF, err := ParseProxyHeaders(cfg.ProxyHeaders)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p := &Policy{
		readFwd:  readFwd,
		readXFF:  readXFF,
		mode:     cfg.Mode,
		hosts:    map[string]bool{},
		peerRate: cfg.PeerRate,
		ipRate:   cfg.IPRate,
		keyTTL:   cfg.KeyFailureTTL,
		now:      cfg.Now,
		proxies:  proxies,
		proxyLog: cfg.Logger.Sample(&zerolog.BurstSampler{Burst: 10, Period: time.Minute}),
	}
	if p.peers, err = newLRU[*bucket](cfg.MaxEntries, cfg.IdleTTL); err != nil {
		return nil, err
	}
	if p.ips, err = newLRU[*bucket](cfg.MaxEntries, cfg.IdleTTL); err != nil {
		return nil, err
	}
	if p.fetches, err = newLRU[*bucket](cfg.MaxEntries, cfg.IdleTTL); err != nil {
		return nil, err
	}
	if p.failed, err = newLRU[keyFailure](cfg.MaxEntries, max(cfg.KeyFailureTTL, time.Second)); err != nil {
		return nil, err
	}
	p.peerBurst = burst(cfg.PeerRate, cfg.PeerBurst)
	p.ipBurst = burst(cfg.IPRate, cfg.IPBurst)
	p.fetchRate = cfg.KeyFetchRate
	p.fetchBurst = burst(cfg.KeyFetchRate, cfg.KeyFetchBurst)
	for _, h := range cfg.AllowedHosts {
		if err := CheckHost(h); err != nil {
			return nil, fmt.Errorf("policy: %w", err)
		}
		p.hosts[strings.ToLower(strings.TrimSpace(h))] = true
	}
	if cfg.Mode == Allowlist && len(p.hosts) == 0 {
		return nil, errors.New("policy: allowlist federation needs at least one allowed peer host (--allow-peer)")
	}
	return p, nil
}

func burst(rate float64, b int) float64 {
	if b > 0 {
		return float64(b)
	}
	return math.Max(1, math.Ceil(rate))
}

// Mode returns the federation mode.
func (p *Policy) Mode() Mode { return p.mode }

// HostAllowed reports whether the node federates with host (host or
// host:port, as in a URL).
func (p *Policy) HostAllowed(host string) bool {
	if p.mode == Open {
		return true
	}
	host = strings.ToLower(host)
	if p.hosts[host] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil && p.hosts[strings.ToLower(h)] {
		return true
	}
	return false
}

// CheckURL refuses a URL whose host the node does not federate with; the
// error is a 403 *problem.Error.
func (p *Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return problem.Forbidden("%q is not an absolute URL with a host", problem.Clip(raw, 200))
	}
	if !p.HostAllowed(u.Host) {
		return problem.Forbidden("host %s is not on this node's federation allow-list", problem.Clip(u.Host, 200))
	}
	return nil
}

// AdmitPeer is called with a signature's key id before the key is
// resolved: it refuses a key on a host outside the allow-list (403) and a
// peer host over its rate (429 with Retry-After).
func (p *Policy) AdmitPeer(keyID string) error {
	u, err := url.Parse(keyID)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return problem.Unauthorized("signature key id %q is not an http or https URL", problem.Clip(keyID, 200))
	}
	host := strings.ToLower(u.Host)
	if !p.HostAllowed(host) {
		return problem.Forbidden("peer %s is not on this node's federation allow-list; its key was not fetched", problem.Clip(host, 200))
	}
	if p.peerRate > 0 {
		if wait, ok := p.take(p.peers, host, p.peerRate, p.peerBurst); !ok {
			return &problem.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
				Msg: fmt.Sprintf("peer %s is over its rate limit of %g requests per second; retry later", problem.Clip(host, 200), p.peerRate)}
		}
	}
	return nil
}

// AdmitKeyFetch is called before the key keyID is fetched (it is not in
// the node's cache, or its copy is due for a refresh): it refuses the
// fetch with 429 and Retry-After while the key's host is over its rate of
// key fetches. The refusal is not a failure of the key, and the negative
// cache does not remember it.
func (p *Policy) AdmitKeyFetch(keyID string) error {
	if p.fetchRate <= 0 {
		return nil
	}
	u, err := url.Parse(keyID)
	if err != nil || u.Host == "" {
		return nil // the fetch refuses it, saying why
	}
	host := strings.ToLower(u.Host)
	if wait, ok := p.take(p.fetches, host, p.fetchRate, p.fetchBurst); !ok {
		return &problem.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Msg: fmt.Sprintf("too many new keys on %s were named lately to fetch this one now (at most %g a second); retry later", problem.Clip(host, 200), p.fetchRate)}
	}
	return nil
}

// AdmitIP is called with a request's client IP (ClientIP; an address with
// a port is accepted too) before its body is read: it refuses a client
// over its rate with 429 and Retry-After.
func (p *Policy) AdmitIP(clientIP string) error {
	if p.ipRate <= 0 {
		return nil
	}
	key := ipKey(clientIP)
	if wait, ok := p.take(p.ips, key, p.ipRate, p.ipBurst); !ok {
		return &problem.Error{Status: http.StatusTooManyRequests, RetryAfter: wait,
			Msg: fmt.Sprintf("client %s is over its rate limit of %g requests per second; retry later", key, p.ipRate)}
	}
	return nil
}

// ipKey returns the rate-limit key of a client address (with or without a
// port): the IPv4 address, or the /64 of an IPv6 address (one host usually
// holds a whole /64).
func ipKey(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		pfx, _ := ip.Prefix(64)
		return pfx.String()
	}
	return ip.String()
}

// take takes one token from the bucket of key, creating a full bucket for
// a new key. When none is left it returns how long until one is.
func (p *Policy) take(m *lru[*bucket], key string, rate, size float64) (time.Duration, bool) {
	now := p.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.getLocked(key, now)
	if !ok {
		b = &bucket{tokens: size, last: now}
		m.putLocked(key, b, now)
	}
	b.tokens = math.Min(size, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	m.touchLocked(key, now)
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return max(wait, time.Second), false
}

// bucket is a token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// keyFailure is a remembered failed key resolution.
type keyFailure struct {
	err error
	at  time.Time
}

// Tracked returns how many peer hosts, client IPs and failed key ids the
// policy currently remembers (each bounded by Config.MaxEntries).
func (p *Policy) Tracked() (peers, ips, failedKeys int) {
	return p.peers.len(), p.ips.len(), p.failed.len()
}

// Keys wraps a key resolver with the negative cache: a key id whose
// resolution failed for a reason other than the network (a missing or
// malformed key document, a refused address) is refused without a new
// fetch for KeyFailureTTL.
func (p *Policy) Keys(inner actor.KeyResolver) actor.KeyResolver {
	if p.keyTTL < 0 {
		return inner
	}
	return &negativeKeys{p: p, inner: inner}
}

type negativeKeys struct {
	p     *Policy
	inner actor.KeyResolver
}

// ErrKeyRecentlyFailed is wrapped by the error of a key resolution answered
// from the negative cache.
var ErrKeyRecentlyFailed = errors.New("key resolution failed recently; not fetched again yet")

func (k *negativeKeys) ResolveKey(ctx context.Context, keyID string, refresh bool) (actor.PublicKey, error) {
	now := k.p.now()
	k.p.failed.mu.Lock()
	f, ok := k.p.failed.getLocked(keyID, now)
	k.p.failed.mu.Unlock()
	if ok && now.Sub(f.at) < k.p.keyTTL {
		return actor.PublicKey{}, fmt.Errorf("%w (until %s): %w", ErrKeyRecentlyFailed, f.at.Add(k.p.keyTTL).UTC().Format(time.RFC3339), f.err)
	}
	key, err := k.inner.ResolveKey(ctx, keyID, refresh)
	var cacheErr *actor.CacheError
	var held *problem.Error
	heldBack := errors.As(err, &held) && held.Status == http.StatusTooManyRequests
	if err != nil && ctx.Err() == nil && !actor.Transient(err) && !errors.As(err, &cacheErr) && !heldBack {
		// Transient failures (a peer's server briefly down or busy) are
		// not remembered: the peer's retry should succeed once it is back.
		// Nor are this node's own (its store failed, which says nothing
		// of the peer's key), nor a fetch the policy held back
		// (AdmitKeyFetch).
		k.p.failed.mu.Lock()
		k.p.failed.putLocked(keyID, keyFailure{err: err, at: now}, now)
		k.p.failed.mu.Unlock()
	}
	return key, err
}

// Transport wraps base (nil: http.DefaultTransport) so that requests to a
// host the node does not federate with fail before a connection is made.
func (p *Policy) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{p: p, base: base}
}

type roundTripper struct {
	p    *Policy
	base http.RoundTripper
}

func (t roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if !t.p.HostAllowed(r.URL.Host) {
		if r.Body != nil {
			_ = r.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s", ErrNotAllowed, problem.Clip(r.URL.Host, 200))
	}
	return t.base.RoundTrip(r)
}

// ErrNotAllowed is wrapped by the error of an outbound request to a host
// outside the federation allow-list.
var ErrNotAllowed = errors.New("host is not on the federation allow-list")

// FetchFunc wraps a document fetch function so that it refuses URLs on
// hosts the node does not federate with.
func (p *Policy) FetchFunc(fetch func(ctx context.Context, iri string) ([]byte, error)) func(ctx context.Context, iri string) ([]byte, error) {
	return func(ctx context.Context, iri string) ([]byte, error) {
		if u, err := url.Parse(iri); err == nil && !p.HostAllowed(u.Host) {
			return nil, fmt.Errorf("fetch %s: %w", problem.Clip(iri, 200), ErrNotAllowed)
		}
		return fetch(ctx, iri)
	}
}

// lru is a map of bounded size whose entries expire after ttl without
// use; when full, the least recently used entry is dropped. It is
// hashicorp/golang-lru's LRU with the time of last use kept in each entry
// and read against the policy's clock (which tests set), which the
// library's expirable LRU, running on the wall clock, cannot do. mu
// serialises the read, change and write of one entry; an entry is promoted
// when used (touchLocked), not when read, so that the LRU's order is the
// order of use.
type lru[V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	cache *golru.Cache[string, *entry[V]]
}

type entry[V any] struct {
	v    V
	used time.Time
}

func newLRU[V any](maxEntries int, ttl time.Duration) (*lru[V], error) {
	cache, err := golru.New[string, *entry[V]](maxEntries)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &lru[V]{ttl: ttl, cache: cache}, nil
}

func (l *lru[V]) len() int { return l.cache.Len() }

// getLocked returns the entry of k unless it is absent or expired; an
// expired entry is dropped.
func (l *lru[V]) getLocked(k string, now time.Time) (V, bool) {
	e, ok := l.cache.Peek(k)
	if !ok || now.Sub(e.used) >= l.ttl {
		var zero V
		if ok {
			l.cache.Remove(k)
		}
		return zero, false
	}
	return e.v, true
}

// touchLocked marks the entry of k used now.
func (l *lru[V]) touchLocked(k string, now time.Time) {
	if e, ok := l.cache.Get(k); ok {
		e.used = now
	}
}

// putLocked stores v under k, used now; when the map is full the least
// recently used entry, the first to expire, is dropped.
func (l *lru[V]) putLocked(k string, v V, now time.Time) {
	l.cache.Add(k, &entry[V]{v: v, used: now})
}
