package outbox

import (
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// expiringSet remembers keys, each until a deadline: the origins that
// refused an Ed25519 signature (signatures.go), the recipients whose actor
// is gone. It is an LRU of a fixed size, so it does not grow with what
// peers do. It is safe for concurrent use.
type expiringSet struct {
	mu    sync.Mutex // orders a check of an entry's deadline and its removal
	until *lru.Cache[string, time.Time]
	ttl   time.Duration
}

func newExpiringSet(size int, ttl time.Duration) *expiringSet {
	// size is a positive constant, which is all lru.New checks.
	c, _ := lru.New[string, time.Time](size)
	return &expiringSet{until: c, ttl: ttl}
}

// has reports whether key was added less than the TTL before now.
func (m *expiringSet) has(key string, now time.Time) bool {
	_, ok := m.since(key, now)
	return ok
}

// since returns when key was last added, and whether that was less than
// the TTL before now.
func (m *expiringSet) since(key string, now time.Time) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	until, ok := m.until.Get(key)
	if !ok {
		return time.Time{}, false
	}
	if !now.Before(until) {
		m.until.Remove(key)
		return time.Time{}, false
	}
	return until.Add(-m.ttl), true
}

// add remembers key from now for the TTL.
func (m *expiringSet) add(key string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.until.Add(key, now.Add(m.ttl))
}
