package actor

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the signature tests.
var testNow = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// testKeys generates RSA keys once per test binary: generation is slow.
var testKeys = sync.OnceValues(func() ([]*rsa.PrivateKey, error) {
	var ks []*rsa.PrivateKey
	for i := 0; i < 3; i++ {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, nil
})

// rsaKey returns the i-th shared test key (0..2).
func rsaKey(t *testing.T, i int) *rsa.PrivateKey {
	t.Helper()
	ks, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	return ks[i]
}

// staticKeys is a KeyResolver over a fixed map; refreshed answers come
// from a second map when one is set, and refreshes are counted.
type staticKeys struct {
	mu        sync.Mutex
	keys      map[string]PublicKey
	fresh     map[string]PublicKey
	refreshes int
}

func (s *staticKeys) ResolveKey(_ context.Context, keyID string, refresh bool) (PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.keys
	if refresh {
		s.refreshes++
		if s.fresh != nil {
			m = s.fresh
		}
	}
	k, ok := m[keyID]
	if !ok {
		return PublicKey{}, fmt.Errorf("no key %s", keyID)
	}
	return k, nil
}

// newTestVerifier returns a verifier for host node.example at testNow.
func newTestVerifier(t *testing.T, keys KeyResolver) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierOptions{Keys: keys, Host: "node.example", Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantReason asserts that err is a *VerifyError whose reason contains want.
func wantReason(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want refusal %q", want)
	}
	ve, ok := err.(*VerifyError)
	if !ok {
		t.Fatalf("error %T %v is not a *VerifyError", err, err)
	}
	if !strings.Contains(ve.Reason, want) {
		t.Fatalf("reason %q; want it to contain %q", ve.Reason, want)
	}
}

// pub returns the public half of a test key as a PublicKey.
func pub(id, owner string, k crypto.Signer) PublicKey {
	return PublicKey{ID: id, Owner: owner, Key: k.Public()}
}

// MemoryKeyCache is a KeyCache held in memory, for tests (a node keeps its
// remote keys in its store). It is safe for concurrent use.
type MemoryKeyCache struct {
	mu   sync.Mutex
	keys map[string]CachedKey
}

// NewMemoryKeyCache returns an empty MemoryKeyCache.
func NewMemoryKeyCache() *MemoryKeyCache {
	return &MemoryKeyCache{keys: map[string]CachedKey{}}
}

// RemoteKey returns the cached key keyID or an error wrapping
// ErrKeyNotCached.
func (m *MemoryKeyCache) RemoteKey(_ context.Context, keyID string) (CachedKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[keyID]
	if !ok {
		return CachedKey{}, fmt.Errorf("key %s: %w", keyID, ErrKeyNotCached)
	}
	return k, nil
}

// PutRemoteKey stores k under its key id.
func (m *MemoryKeyCache) PutRemoteKey(_ context.Context, k CachedKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[k.KeyID] = k
	return nil
}
