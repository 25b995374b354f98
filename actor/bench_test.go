package actor

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// BenchmarkVerifyCavage verifies a signed inbox POST (draft-cavage,
// RSA-2048, cached key): the header parse, the policy checks, the digest
// over the body and the RSA verification.
func BenchmarkVerifyCavage(b *testing.B) {
	ks, err := testKeys()
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(testBody)
	r := httptest.NewRequest(http.MethodPost, inboxURL, strings.NewReader(testBody))
	if err := SignRequest(r, body, aliceKey, ks[0], testNow); err != nil {
		b.Fatal(err)
	}
	r.Header.Del("Host")
	keys := &staticKeys{keys: map[string]PublicKey{aliceKey: pub(aliceKey, aliceID, ks[0])}}
	v, err := NewVerifier(VerifierOptions{Keys: keys, Host: "node.example", Now: func() time.Time { return testNow }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, r, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkResolveCachedKey resolves a peer's RSA key that its KeyCache
// holds and that is fresh, which is what every inbox request but a peer's
// first does.
func BenchmarkResolveCachedKey(b *testing.B) {
	ks, err := testKeys()
	if err != nil {
		b.Fatal(err)
	}
	pemText, err := PublicKeyPEM(&ks[0].PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	cache := NewMemoryKeyCache()
	now := time.Now()
	if err := cache.PutRemoteKey(context.Background(), CachedKey{KeyID: aliceKey, Owner: aliceID, PublicKeyPEM: pemText, FetchedAt: now}); err != nil {
		b.Fatal(err)
	}
	f, err := NewFetcher(FetcherOptions{KeyID: aliceKey, Key: ks[0]})
	if err != nil {
		b.Fatal(err)
	}
	kf, err := NewKeyFetcher(KeyFetcherOptions{Cache: cache, Fetcher: f, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kf.ResolveKey(ctx, aliceKey, false); err != nil {
			b.Fatal(err)
		}
	}
}
