package actor

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// peer is a remote node on 127.0.0.1 serving actor and key documents.
type peer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	docs map[string]func(base string) (status int, ctype string, body string)
	hits atomic.Int64
	// verifier, when set, checks that every GET is signed.
	verifier *Verifier
	unsigned atomic.Int64
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	p := &peer{docs: map[string]func(string) (int, string, string){}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hits.Add(1)
		if p.verifier != nil {
			if _, err := p.verifier.Verify(r.Context(), r, nil); err != nil {
				p.unsigned.Add(1)
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
		}
		p.mu.Lock()
		h := p.docs[r.URL.Path]
		p.mu.Unlock()
		if h == nil {
			http.NotFound(w, r)
			return
		}
		status, ct, body := h(p.srv.URL)
		if status >= 300 && status < 400 {
			w.Header().Set("Location", body)
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// serve registers path with a JSON document built from base.
func (p *peer) serve(path, ctype string, doc func(base string) any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.docs[path] = func(base string) (int, string, string) {
		b, _ := json.Marshal(doc(base))
		return http.StatusOK, ctype, string(b)
	}
}

// actorDoc returns an actor document listing keyFragment with key.
func actorDoc(base, path, keyID string, key *rsa.PrivateKey) any {
	pemText, _ := PublicKeyPEM(&key.PublicKey)
	return map[string]any{
		"@context":  []string{ActivityStreamsContext, SecurityContext},
		"id":        base + path,
		"type":      "Organization",
		"inbox":     base + path + "/inbox",
		"publicKey": map[string]string{"id": keyID, "owner": base + path, "publicKeyPem": pemText},
	}
}

// newTestKeyFetcher returns a KeyFetcher that may reach 127.0.0.1 and
// signs its GETs with key 2.
func newTestKeyFetcher(t *testing.T, cache KeyCache, now func() time.Time) *KeyFetcher {
	t.Helper()
	f, err := NewFetcher(FetcherOptions{
		Client: SafeClientOptions{AllowPrivate: true, Timeout: 5 * time.Second},
		KeyID:  "https://node.example/actors/node#main-key",
		Key:    rsaKey(t, 2),
	})
	if err != nil {
		t.Fatal(err)
	}
	kf, err := NewKeyFetcher(KeyFetcherOptions{Cache: cache, Fetcher: f, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

// signedInboxPost signs a POST to node.example as keyID with key.
func signedInboxPost(t *testing.T, keyID string, key *rsa.PrivateKey) (*http.Request, []byte) {
	t.Helper()
	body := []byte(testBody)
	r := httptest.NewRequest(http.MethodPost, inboxURL, strings.NewReader(testBody))
	if err := SignRequest(r, body, keyID, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	r.Header.Del("Host")
	return r, body
}

// TestKeyFetcherCachesAndRefreshes verifies through a real key fetch: the
// fetch is a signed GET, a second verification does no HTTP request, and
// after the peer rotates its key the new key is fetched once.
func TestKeyFetcherCachesAndRefreshes(t *testing.T) {
	p := newPeer(t)
	fetcherKeyID := "https://node.example/actors/node#main-key"
	gv, err := NewVerifier(VerifierOptions{
		Keys: &staticKeys{keys: map[string]PublicKey{fetcherKeyID: pub(fetcherKeyID, "https://node.example/actors/node", rsaKey(t, 2))}},
		Host: strings.TrimPrefix(p.srv.URL, "http://"),
	})
	if err != nil {
		t.Fatal(err)
	}
	p.verifier = gv
	var current atomic.Pointer[rsa.PrivateKey]
	current.Store(rsaKey(t, 0))
	p.serve("/actors/alice", ContentType, func(base string) any {
		return actorDoc(base, "/actors/alice", base+"/actors/alice#main-key", current.Load())
	})
	keyID := p.srv.URL + "/actors/alice#main-key"

	cache := NewMemoryKeyCache()
	var skew atomic.Int64 // how far the key fetcher's clock runs ahead
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	v, err := NewVerifier(VerifierOptions{Keys: newTestKeyFetcher(t, cache, clock), Host: "node.example"})
	if err != nil {
		t.Fatal(err)
	}
	r, body := signedInboxPost(t, keyID, rsaKey(t, 0))
	s, err := v.Verify(context.Background(), r, body)
	if err != nil {
		t.Fatal(err)
	}
	if s.Owner != p.srv.URL+"/actors/alice" || s.KeyID != keyID {
		t.Fatalf("signer %+v", s)
	}
	if p.hits.Load() != 1 || p.unsigned.Load() != 0 {
		t.Fatalf("%d fetches, %d unsigned; want 1 signed fetch", p.hits.Load(), p.unsigned.Load())
	}
	if c, err := cache.RemoteKey(context.Background(), keyID); err != nil || c.Owner != s.Owner {
		t.Fatalf("cache: %+v %v", c, err)
	}

	r, body = signedInboxPost(t, keyID, rsaKey(t, 0))
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	if p.hits.Load() != 1 {
		t.Fatalf("second verification made %d requests in all; want the cached key used", p.hits.Load())
	}

	current.Store(rsaKey(t, 1)) // the peer rotates its key
	r, body = signedInboxPost(t, keyID, rsaKey(t, 1))
	_, err = v.Verify(context.Background(), r, body)
	wantReason(t, err, "signature does not verify with key "+keyID)
	if p.hits.Load() != 1 {
		t.Fatalf("a refresh within MinRefresh of the fetch made %d requests in all; want none", p.hits.Load()-1)
	}

	skew.Store(int64(2 * time.Minute))
	r, body = signedInboxPost(t, keyID, rsaKey(t, 1))
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if p.hits.Load() != 2 {
		t.Fatalf("rotation made %d requests in all; want exactly one refresh", p.hits.Load()-1)
	}
}

func TestKeyFetcherTTL(t *testing.T) {
	p := newPeer(t)
	p.serve("/actors/alice", ContentType, func(base string) any {
		return actorDoc(base, "/actors/alice", base+"/actors/alice#main-key", rsaKey(t, 0))
	})
	now := time.Now()
	clock := func() time.Time { return now }
	kf := newTestKeyFetcher(t, NewMemoryKeyCache(), clock)
	keyID := p.srv.URL + "/actors/alice#main-key"
	for i := 0; i < 2; i++ {
		if _, err := kf.ResolveKey(context.Background(), keyID, false); err != nil {
			t.Fatal(err)
		}
	}
	if p.hits.Load() != 1 {
		t.Fatalf("%d fetches within the TTL; want 1", p.hits.Load())
	}
	now = now.Add(25 * time.Hour)
	if _, err := kf.ResolveKey(context.Background(), keyID, false); err != nil {
		t.Fatal(err)
	}
	if p.hits.Load() != 2 {
		t.Fatalf("%d fetches after the TTL; want 2", p.hits.Load())
	}
}

// TestKeyFetcherRefuses lists the key documents of B13, B14 and B17 that
// must be refused.
func TestKeyFetcherRefuses(t *testing.T) {
	p := newPeer(t)
	k0 := rsaKey(t, 0)
	pem0, _ := PublicKeyPEM(&k0.PublicKey)
	// B13: a standalone key claims bob, whose actor does not list it.
	p.serve("/keys/orphan", ContentType, func(base string) any {
		return map[string]string{"id": base + "/keys/orphan", "owner": base + "/actors/bob", "publicKeyPem": pem0}
	})
	p.serve("/actors/bob", ContentType, func(base string) any {
		return actorDoc(base, "/actors/bob", base+"/actors/bob#main-key", k0)
	})
	// A standalone key its owner does list.
	p.serve("/keys/listed", ContentType, func(base string) any {
		return map[string]string{"id": base + "/keys/listed", "owner": base + "/actors/carol", "publicKeyPem": pem0}
	})
	p.serve("/actors/carol", ContentType, func(base string) any {
		return actorDoc(base, "/actors/carol", base+"/keys/listed", k0)
	})
	// B14: the document's id is not the key id.
	p.serve("/keys/liar", ContentType, func(base string) any {
		return map[string]string{"id": base + "/keys/other", "owner": base + "/actors/bob", "publicKeyPem": pem0}
	})
	p.serve("/actors/dave", ContentType, func(base string) any {
		return actorDoc(base, "/actors/dave", base+"/actors/dave#main-key", k0)
	})
	p.docs["/keys/moved"] = func(base string) (int, string, string) {
		return http.StatusFound, "", base + "/actors/bob"
	}
	// B17: not an ActivityPub content type.
	p.serve("/actors/html", "text/html", func(base string) any {
		return actorDoc(base, "/actors/html", base+"/actors/html#main-key", k0)
	})
	p.serve("/actors/json", "application/json", func(base string) any {
		return actorDoc(base, "/actors/json", base+"/actors/json#main-key", k0)
	})
	p.serve("/actors/ld", LDContentType, func(base string) any {
		return actorDoc(base, "/actors/ld", base+"/actors/ld#main-key", k0)
	})
	kf := newTestKeyFetcher(t, NewMemoryKeyCache(), nil)
	base := p.srv.URL
	for _, tc := range []struct {
		name, keyID, want string
	}{
		{"actor document", base + "/actors/bob#main-key", ""},
		{"ld+json with the ActivityStreams profile", base + "/actors/ld#main-key", ""},
		{"standalone key listed by its owner", base + "/keys/listed", ""},
		{"B13 owner does not list the key", base + "/keys/orphan", "actor " + base + "/actors/bob does not list key " + base + "/keys/orphan"},
		{"B13 actor lists another key id", base + "/actors/dave#other-key", "actor document " + base + "/actors/dave does not list key"},
		{"B14 key document id is not the key id", base + "/keys/liar", "document id \"" + base + "/keys/other\" is not the requested URL"},
		{"B14 key URL redirects", base + "/keys/moved", "redirected (302)"},
		{"B17 text/html", base + "/actors/html#main-key", `Content-Type "text/html" is not an ActivityPub type`},
		{"B17 application/json", base + "/actors/json#main-key", `Content-Type "application/json" is not an ActivityPub type`},
		{"missing", base + "/actors/nobody#main-key", "status 404"},
		{"not http", "ftp://peer.example/key", "only http and https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pk, err := kf.ResolveKey(context.Background(), tc.keyID, false)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if pk.ID != tc.keyID || pk.Owner == "" || pk.Key == nil {
					t.Fatalf("key %+v", pk)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v; want %q", err, tc.want)
			}
		})
	}

	// Through the verifier a fetch failure is a refusal naming the key.
	v, err := NewVerifier(VerifierOptions{Keys: kf, Host: "node.example"})
	if err != nil {
		t.Fatal(err)
	}
	r, body := signedInboxPost(t, base+"/keys/orphan", k0)
	_, err = v.Verify(context.Background(), r, body)
	wantReason(t, err, "key "+base+"/keys/orphan could not be resolved")
}

// countingKeyCache counts the reads of a KeyCache.
type countingKeyCache struct {
	KeyCache
	reads int
}

func (c *countingKeyCache) RemoteKey(ctx context.Context, keyID string) (CachedKey, error) {
	c.reads++
	return c.KeyCache.RemoteKey(ctx, keyID)
}

// TestKeyFetcherParsedKeyFollowsCache checks that a key answered without
// reading the cache is the key the cache held at most Remember ago, and
// that a refresh reads the cache: once the cached PEM of a key id changes
// (another process sharing the cache stored the peer's rotated key), a
// refresh (which a signature that fails to verify asks for) answers the
// new key at once, and any lookup once Remember has passed. The cache is
// read once per Remember, not for every lookup.
func TestKeyFetcherParsedKeyFollowsCache(t *testing.T) {
	cache := &countingKeyCache{KeyCache: NewMemoryKeyCache()}
	now := time.Now()
	kf := newTestKeyFetcher(t, cache, func() time.Time { return now })
	put := func(i int) {
		t.Helper()
		pemText, err := PublicKeyPEM(&rsaKey(t, i).PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.PutRemoteKey(context.Background(), CachedKey{KeyID: aliceKey, Owner: aliceID, PublicKeyPEM: pemText, FetchedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(what string, refresh bool, i, reads int) {
		t.Helper()
		k, err := kf.ResolveKey(context.Background(), aliceKey, refresh)
		if err != nil {
			t.Fatal(err)
		}
		if !rsaKey(t, i).PublicKey.Equal(k.Key) {
			t.Errorf("%s: resolved another key than key %d", what, i)
		}
		if cache.reads != reads {
			t.Errorf("%s: the cache was read %d times in all, want %d", what, cache.reads, reads)
		}
	}
	put(0)
	want("first lookup", false, 0, 1)
	want("lookup within Remember", false, 0, 1)
	put(1) // another process stored the rotated key
	want("lookup within Remember after the cache changed", false, 0, 1)
	want("refresh", true, 1, 2)
	want("lookup after the refresh", false, 1, 2)
	put(0)
	now = now.Add(30 * time.Second)
	want("lookup once Remember passed", false, 0, 3)
}

// failingKeyCache is a KeyCache whose reads or writes fail, as a store
// whose disk is full or whose database does not answer.
type failingKeyCache struct {
	KeyCache
	readErr, putErr error
}

func (c *failingKeyCache) RemoteKey(ctx context.Context, keyID string) (CachedKey, error) {
	if c.readErr != nil {
		return CachedKey{}, c.readErr
	}
	return c.KeyCache.RemoteKey(ctx, keyID)
}

func (c *failingKeyCache) PutRemoteKey(ctx context.Context, k CachedKey) error {
	if c.putErr != nil {
		return c.putErr
	}
	return c.KeyCache.PutRemoteKey(ctx, k)
}

// TestKeyFetcherCacheFailures: when the node's own cache of keys fails
// (its store cannot read or write), the lookup fails with a CacheError,
// which says nothing of the sender's key, and which is neither Transient
// (a failure of the sender's server) nor a verification's refusal.
func TestKeyFetcherCacheFailures(t *testing.T) {
	full := &fs.PathError{Op: "write", Path: "/data/vultron.db", Err: syscall.ENOSPC}
	tests := []struct {
		name  string
		cache *failingKeyCache
	}{
		{"read fails", &failingKeyCache{KeyCache: NewMemoryKeyCache(), readErr: fmt.Errorf("store: %w", full)}},
		{"write fails", &failingKeyCache{KeyCache: NewMemoryKeyCache(), putErr: fmt.Errorf("store: put remote key: %w", full)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t)
			p.serve("/actors/alice", ContentType, func(base string) any {
				return actorDoc(base, "/actors/alice", base+"/actors/alice#main-key", rsaKey(t, 0))
			})
			kf := newTestKeyFetcher(t, tt.cache, time.Now)
			_, err := kf.ResolveKey(context.Background(), p.srv.URL+"/actors/alice#main-key", false)
			var ce *CacheError
			if !errors.As(err, &ce) || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("err = %v, want a CacheError wrapping the store's", err)
			}
			if Transient(err) {
				t.Errorf("%v is Transient: it would be answered as a failure of the sender's server", err)
			}
			var ve *VerifyError
			if errors.As(err, &ve) {
				t.Errorf("%v is a VerifyError: it would be answered 401", err)
			}
		})
	}
}

// TestLookupsOfOneKeyShareItsFetch: requests signed with a key the node
// does not have yet, arriving together, cost the key's server one GET:
// the lookups that come while the key is fetched wait for that fetch and
// all get its key. A lookup whose own context ends stops waiting without
// failing the others.
func TestLookupsOfOneKeyShareItsFetch(t *testing.T) {
	p := newPeer(t)
	arrived, release := make(chan struct{}, 16), make(chan struct{})
	pemText, _ := PublicKeyPEM(&rsaKey(t, 0).PublicKey)
	p.mu.Lock()
	p.docs["/actors/alice"] = func(base string) (int, string, string) {
		arrived <- struct{}{}
		<-release
		b, _ := json.Marshal(map[string]any{
			"@context":  []string{ActivityStreamsContext, SecurityContext},
			"id":        base + "/actors/alice",
			"type":      "Organization",
			"inbox":     base + "/actors/alice/inbox",
			"publicKey": map[string]string{"id": base + "/actors/alice#main-key", "owner": base + "/actors/alice", "publicKeyPem": pemText},
		})
		return http.StatusOK, ContentType, string(b)
	}
	p.mu.Unlock()
	keyID := p.srv.URL + "/actors/alice#main-key"
	kf := newTestKeyFetcher(t, NewMemoryKeyCache(), time.Now)

	const lookups = 8
	errs := make(chan error, lookups)
	for range lookups {
		go func() {
			k, err := kf.ResolveKey(context.Background(), keyID, false)
			if err == nil && k.Owner != p.srv.URL+"/actors/alice" {
				err = fmt.Errorf("key of %s, want alice's", k.Owner)
			}
			errs <- err
		}()
	}
	// One that gives up while it waits.
	gaveUp, cancel := context.WithCancel(context.Background())
	gaveUpErr := make(chan error, 1)
	go func() {
		_, err := kf.ResolveKey(gaveUp, keyID, false)
		gaveUpErr <- err
	}()
	<-arrived
	waitFor(t, func() bool { return kf.waiting.Load() == lookups+1 })
	cancel()
	if err := <-gaveUpErr; !errors.Is(err, context.Canceled) {
		t.Errorf("the lookup whose context ended: %v, want context.Canceled", err)
	}
	close(release)
	for range lookups {
		if err := <-errs; err != nil {
			t.Errorf("a lookup that shared the fetch: %v", err)
		}
	}
	if n := p.hits.Load(); n != 1 {
		t.Errorf("%d lookups arriving together made %d GETs, want 1", lookups+1, n)
	}
}

// waitFor waits, up to 10 s, until cond holds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
