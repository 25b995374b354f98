package accounts

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/openvultron/vultron/problem"
)

// Failed logins are throttled per login name and per client IP with an
// exponential backoff: after a few free failures each further one doubles
// the wait before the next attempt is even looked at (no password is
// hashed while a name or an address waits). A name is throttled whether
// or not a user has it, with the same answer, so that the throttle does
// not tell which names exist. An IPv6 client is counted by its /64
// (ipKey), any address of which it may send from. The counts are kept
// in memory, in bounded LRUs like the federation's per-peer state: a
// store write per failed guess would let a flood of guesses grow the
// store, and a restart forgetting them costs an attacker's wait, not a
// password. On a store
// shared by several processes each counts the failures it sees, so an
// attacker spread across N processes gets at most N times the attempts.

const (
	// freeNameFailures and freeIPFailures are the failures a name and an
	// address may have before the backoff starts: an address may be a
	// whole office behind one NAT.
	freeNameFailures = 3
	freeIPFailures   = 10
	// firstWait is the wait after the first failure past the free ones;
	// it doubles up to maxWait.
	firstWait = time.Second
	maxWait   = 15 * time.Minute
	// forgetAfter is how long after its last failure a name or address
	// starts again from nothing.
	forgetAfter = 24 * time.Hour
	// throttleEntries bounds each table.
	throttleEntries = 10000
)

type strikes struct {
	fails int
	until time.Time // no attempt is looked at before
	last  time.Time
}

type throttle struct {
	now   func() time.Time
	mu    sync.Mutex
	names *lru.Cache[string, strikes]
	ips   *lru.Cache[string, strikes]
	// begun holds, by client IP, when its latest logins at the identity
	// provider began (begin).
	begun *lru.Cache[string, []time.Time]
	// inflight counts the attempts let through and not yet decided, by
	// "n" and a name's key or "i" and an address's (attempt); a key
	// leaves it when its count is back to zero.
	inflight map[string]int
}

func newThrottle(now func() time.Time) (*throttle, error) {
	names, err := lru.New[string, strikes](throttleEntries)
	if err != nil {
		return nil, fmt.Errorf("accounts: throttle: %w", err)
	}
	ips, err := lru.New[string, strikes](throttleEntries)
	if err != nil {
		return nil, fmt.Errorf("accounts: throttle: %w", err)
	}
	begun, err := lru.New[string, []time.Time](throttleEntries)
	if err != nil {
		return nil, fmt.Errorf("accounts: throttle: %w", err)
	}
	return &throttle{now: now, names: names, ips: ips, begun: begun, inflight: map[string]int{}}, nil
}

// check refuses an attempt for name from ip while either waits, with 429
// and Retry-After.
func (t *throttle) check(name, ip string) error {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	wait := max(t.waitLocked(t.names, normName(name), now), t.waitLocked(t.ips, ipKey(ip), now))
	if wait <= 0 {
		return nil
	}
	return tooMany(wait)
}

// tooMany is the refusal of an attempt while a name or an address waits.
func tooMany(wait time.Duration) error {
	e := problem.New(429, "too many failed logins for this name or from this address; try again in %s", waitWords(wait))
	e.RetryAfter = wait
	return e
}

// attempt lets an attempt for name from ip through, as check does, and
// holds it as in flight until done is called, once its failure, if it
// failed, is counted. Attempts in flight count as failures to come: a
// name or an address lets through at once only as many as it has free
// failures left, and past them one at a time; beyond, 429 with a wait of
// a second. Without it, guesses sent all at once would each be looked
// at before any of them had failed, and every one of them checked.
func (t *throttle) attempt(name, ip string) (done func(), err error) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	nk, ik := normName(name), ipKey(ip)
	if wait := max(t.waitLocked(t.names, nk, now), t.waitLocked(t.ips, ik, now)); wait > 0 {
		return nil, tooMany(wait)
	}
	if t.fullLocked(t.names, "n", nk, freeNameFailures, now) || t.fullLocked(t.ips, "i", ik, freeIPFailures, now) {
		e := problem.New(429, "other logins for this name or from this address are being checked; try again in %s", waitWords(time.Second))
		e.RetryAfter = time.Second
		return nil, e
	}
	held := []string{"n" + nk, "i" + ik}
	for _, k := range held {
		if len(k) > 1 {
			t.inflight[k]++
		}
	}
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, k := range held {
			if len(k) == 1 {
				continue
			}
			if t.inflight[k]--; t.inflight[k] <= 0 {
				delete(t.inflight, k)
			}
		}
	}, nil
}

// fullLocked reports whether key of table c, under kind in inflight, has
// attempts in flight that, were they all to fail, would use up its free
// failures.
func (t *throttle) fullLocked(c *lru.Cache[string, strikes], kind, key string, free int, now time.Time) bool {
	if key == "" {
		return false
	}
	n := t.inflight[kind+key]
	if n == 0 {
		return false
	}
	s, _ := c.Peek(key)
	if now.Sub(s.last) > forgetAfter {
		s = strikes{}
	}
	return s.fails+n >= free
}

// waitWords says a wait as a person reads it, rounded up: seconds under a
// minute, minutes beyond.
func waitWords(wait time.Duration) string {
	n, unit := int((wait+time.Second-1)/time.Second), "second"
	if n > 60 {
		n, unit = int((wait+time.Minute-1)/time.Minute), "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// ipKey is what the throttle counts a client IP under: an IPv4 address
// as it is (an IPv4-mapped IPv6 one as its IPv4 address), and an IPv6
// address as its /64, the network a single client is given and may
// send each guess from another address of. What is not an address
// counts as written.
func ipKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a = a.Unmap().WithZone(""); a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

func (t *throttle) waitLocked(c *lru.Cache[string, strikes], key string, now time.Time) time.Duration {
	if key == "" {
		return 0
	}
	s, ok := c.Get(key)
	if !ok {
		return 0
	}
	if now.Sub(s.last) > forgetAfter {
		c.Remove(key)
		return 0
	}
	return s.until.Sub(now)
}

// fail counts a failed attempt for name from ip.
func (t *throttle) fail(name, ip string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.strikeLocked(t.names, normName(name), freeNameFailures, now)
	t.strikeLocked(t.ips, ipKey(ip), freeIPFailures, now)
}

func (t *throttle) strikeLocked(c *lru.Cache[string, strikes], key string, free int, now time.Time) {
	if key == "" {
		return
	}
	s, _ := c.Get(key)
	if now.Sub(s.last) > forgetAfter {
		s = strikes{}
	}
	s.fails++
	s.last = now
	if over := s.fails - free; over > 0 {
		wait := maxWait
		if over < 20 {
			wait = min(firstWait<<(over-1), maxWait)
		}
		s.until = now.Add(wait)
	}
	c.Add(key, s)
}

// succeed forgets the failures of name: the person got in, with every
// factor the login asks (a right password that awaits a second factor
// does not count; wrong second factors are failures of the name). The
// address keeps its count, which others behind it may have run up.
func (t *throttle) succeed(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.names.Remove(normName(name))
}

// begin counts a login begun at the identity provider from ip, each of
// which stores a pre-login until it is finished or expires: at most most
// within window. Beyond, it refuses with 429 and the wait until the
// oldest of them is window old, so that one client cannot fill the
// node's bounded table of pre-logins and push out the logins of people
// at the provider.
func (t *throttle) begin(ip string, most int, window time.Duration) error {
	key := ipKey(ip)
	if key == "" {
		return nil
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	times, _ := t.begun.Get(key)
	recent := make([]time.Time, 0, most)
	for _, at := range times {
		if now.Sub(at) < window {
			recent = append(recent, at)
		}
	}
	if len(recent) >= most {
		t.begun.Add(key, recent)
		wait := recent[0].Add(window).Sub(now)
		e := problem.New(429, "too many logins at the identity provider were begun from this address; try again in %s", waitWords(wait))
		e.RetryAfter = wait
		return e
	}
	t.begun.Add(key, append(recent, now))
	return nil
}
