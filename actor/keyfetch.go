package actor

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
)

// ErrKeyNotCached is returned (possibly wrapped) by a KeyCache that holds
// no key for the id asked.
var ErrKeyNotCached = errors.New("key not cached")

// ErrKeyRotatedAway is wrapped by the error of a key fetch whose owner
// lists the key as retired with an expiry that has passed: the key is no
// longer accepted, which is not a failure of the fetch itself.
var ErrKeyRotatedAway = errors.New("key was rotated away")

// CachedKey is a remote public key as a KeyCache keeps it.
type CachedKey struct {
	KeyID        string
	Owner        string
	PublicKeyPEM string
	FetchedAt    time.Time
}

// CacheError is the failure of the KeyCache (the node's own store) while a
// key was resolved: it says nothing of the sender's key or signature, so
// whoever answers the request answers it as the node's own failure (5xx,
// which the sender retries), never as a bad signature, and a failed lookup
// of this kind is not remembered.
type CacheError struct{ Err error }

func (e *CacheError) Error() string { return e.Err.Error() }

// Unwrap returns the cache's error.
func (e *CacheError) Unwrap() error { return e.Err }

// KeyCache stores remote keys between fetches. RemoteKey returns an error
// wrapping ErrKeyNotCached for an unknown key id.
type KeyCache interface {
	RemoteKey(ctx context.Context, keyID string) (CachedKey, error)
	PutRemoteKey(ctx context.Context, k CachedKey) error
}

// KeyFetcherOptions configures a KeyFetcher.
type KeyFetcherOptions struct {
	Cache   KeyCache // required
	Fetcher *Fetcher // required
	// TTL is how long a cached key is used before it is fetched again;
	// default 24h.
	TTL time.Duration
	// MinRefresh is the shortest time between two fetches of one key: a
	// refresh asked for sooner (a peer sending bad signatures to make this
	// node hammer a key URL) is answered from the cache. Default 1m;
	// negative disables the limit.
	MinRefresh time.Duration
	// Remember is how long a key read from the cache (or fetched) answers
	// the lookups that ask for no refresh without the cache being read
	// again; default 30s, negative: the cache is read for every lookup. A
	// cache that several processes share (a database) is read for every
	// refresh, so a key another process refreshed is seen at once where a
	// signature failed to verify, and elsewhere within Remember.
	Remember time.Duration
	// AdmitFetch, when set, is asked before a key is fetched (not for a
	// key answered from the cache); its error ends the lookup as it is,
	// so that a policy's refusal (429 with Retry-After) reaches the
	// sender.
	AdmitFetch func(keyID string) error
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// KeyFetcher is the KeyResolver of a node: it answers from the cache while
// a key is fresh and otherwise dereferences the key id with a signed GET.
//
// The key id is fetched without its fragment. The answer must be either
//   - the owner's actor document (its id is the URL fetched) whose publicKey
//     lists the key id, or whose assertionMethod lists it as an Ed25519
//     Multikey (FEP-521a) whose controller is that actor; an id listed in
//     both is refused;
//   - a standalone key document whose id is exactly the key id and whose
//     owner (or controller) is an actor; that actor's document is then
//     fetched and must list the key id with the same key (B13); or
//   - a standalone Multikey whose id is the key id; its controller's
//     document must list it in assertionMethod with the same key and
//     controller.
//
// A Multikey is cached in PEM form like any other key, so the store and
// the verifier treat both alike; its algorithm (Ed25519) is pinned by the
// key.
//
// Neither document may be reached through a redirect: canonical ids are
// fetched strictly (see Fetcher.FetchDocument). The key and its owner must
// be on the same host.
//
// Lookups of one key id that need a fetch while another lookup fetches it
// wait for that fetch and share its outcome, so that a burst of requests
// signed with a key the node does not have yet costs its server one GET.
type KeyFetcher struct {
	cache      KeyCache
	fetcher    *Fetcher
	ttl        time.Duration
	minRefresh time.Duration
	remember   time.Duration
	admitFetch func(keyID string) error
	now        func() time.Time
	// inflight is the fetches under way, by key id; waiting counts the
	// lookups waiting for one of them now (for tests to await).
	inflight singleflight.Group
	waiting  atomic.Int64
	// parsed keeps the last parsed form of each key's PEM, so that a key
	// answered from the cache is not parsed again for every request while
	// its PEM is the same (an RSA key's x509 parse costs more than the
	// cache read); a different PEM is parsed afresh. It also answers,
	// for Remember after the key was read, the lookups that ask for no
	// refresh (on a node on PostgreSQL the cache read is a round trip per
	// request). Bounded, an LRU.
	parsed *lru.Cache[string, parsedKey]
}

// parsedKey is a cached key as last read from the cache or fetched, with
// its parsed public key and when it was read.
type parsedKey struct {
	pem       string
	key       crypto.PublicKey
	id, owner string
	fetchedAt time.Time
	readAt    time.Time
}

// parsedKeysSize bounds KeyFetcher.parsed.
const parsedKeysSize = 4096

// NewKeyFetcher returns a KeyFetcher.
func NewKeyFetcher(opts KeyFetcherOptions) (*KeyFetcher, error) {
	if opts.Cache == nil || opts.Fetcher == nil {
		return nil, errors.New("key fetcher: a cache and a fetcher are required")
	}
	if opts.TTL <= 0 {
		opts.TTL = 24 * time.Hour
	}
	if opts.MinRefresh == 0 {
		opts.MinRefresh = time.Minute
	}
	if opts.Remember == 0 {
		opts.Remember = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// The size is a positive constant, which is all lru.New checks.
	parsed, _ := lru.New[string, parsedKey](parsedKeysSize)
	return &KeyFetcher{cache: opts.Cache, fetcher: opts.Fetcher, ttl: opts.TTL, minRefresh: opts.MinRefresh, remember: opts.Remember,
		admitFetch: opts.AdmitFetch, now: opts.Now, parsed: parsed}, nil
}

// ResolveKey returns the key keyID, from the cache unless the cached copy
// is older than the TTL, or refresh is set and the copy is older than
// MinRefresh. Without refresh, a key read from the cache (or fetched) less
// than Remember ago is returned without reading the cache.
func (k *KeyFetcher) ResolveKey(ctx context.Context, keyID string, refresh bool) (PublicKey, error) {
	now := k.now()
	if !refresh && k.remember > 0 {
		if p, ok := k.parsed.Get(keyID); ok && now.Sub(p.readAt) < k.remember && now.Sub(p.fetchedAt) < k.ttl {
			return PublicKey{ID: p.id, Owner: p.owner, Key: p.key}, nil
		}
	}
	maxAge := k.ttl
	if refresh {
		maxAge = k.minRefresh
	}
	if maxAge > 0 {
		c, err := k.cache.RemoteKey(ctx, keyID)
		switch {
		case err == nil && now.Sub(c.FetchedAt) < maxAge:
			read := parsedKey{pem: c.PublicKeyPEM, id: c.KeyID, owner: c.Owner, fetchedAt: c.FetchedAt, readAt: now}
			if p, ok := k.parsed.Get(keyID); ok && p.pem == c.PublicKeyPEM {
				read.key = p.key
			} else if pub, perr := ParsePublicKeyPEM(c.PublicKeyPEM); perr == nil {
				read.key = pub
			} else {
				break // an unusable cached key is fetched again
			}
			k.parsed.Add(keyID, read)
			return PublicKey{ID: read.id, Owner: read.owner, Key: read.key}, nil
		case err != nil && !errors.Is(err, ErrKeyNotCached):
			return PublicKey{}, &CacheError{Err: fmt.Errorf("read cached key %s: %w", keyID, err)}
		}
	}
	if k.admitFetch != nil {
		if err := k.admitFetch(keyID); err != nil {
			return PublicKey{}, err
		}
	}
	// One fetch per key id at a time, shared by the lookups that come
	// while it runs. It runs apart from the context of the lookup that
	// started it, within sharedFetchBound, so that one sender hanging up
	// does not fail the others; each lookup still stops waiting when its
	// own context ends.
	ch := k.inflight.DoChan(keyID, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedFetchBound)
		defer cancel()
		return k.fetchAndCache(fctx, keyID, now)
	})
	k.waiting.Add(1)
	defer k.waiting.Add(-1)
	select {
	case r := <-ch:
		if r.Err != nil {
			return PublicKey{}, r.Err
		}
		return r.Val.(PublicKey), nil
	case <-ctx.Done():
		return PublicKey{}, fmt.Errorf("key %s: %w", keyID, ctx.Err())
	}
}

// sharedFetchBound bounds a key fetch that several lookups may share: the
// key's document, its owner's and the write to the cache.
const sharedFetchBound = 30 * time.Second

// fetchAndCache fetches keyID and records it in the cache and in parsed.
func (k *KeyFetcher) fetchAndCache(ctx context.Context, keyID string, now time.Time) (PublicKey, error) {
	pk, c, err := k.FetchKey(ctx, keyID)
	if err != nil {
		return PublicKey{}, err
	}
	if err := k.cache.PutRemoteKey(ctx, c); err != nil {
		// Not verified with the key it fetched: the cache is where a
		// new or changed key is recorded and audited, and a request
		// that cannot be recorded cannot be accepted anyway.
		return PublicKey{}, &CacheError{Err: fmt.Errorf("cache key %s: %w", keyID, err)}
	}
	k.parsed.Add(keyID, parsedKey{pem: c.PublicKeyPEM, key: pk.Key, id: pk.ID, owner: pk.Owner, fetchedAt: c.FetchedAt, readAt: now})
	return pk, nil
}

// FetchKey dereferences keyID as described on KeyFetcher, without the
// cache.
func (k *KeyFetcher) FetchKey(ctx context.Context, keyID string) (PublicKey, CachedKey, error) {
	u, err := parseFetchURL(keyID)
	if err != nil {
		return PublicKey{}, CachedKey{}, fmt.Errorf("key id: %w", err)
	}
	docURL := *u
	docURL.Fragment, docURL.RawFragment = "", ""
	body, err := k.fetcher.FetchDocument(ctx, docURL.String())
	if err != nil {
		return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	var doc remoteDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	var entry PublicKeyDoc
	switch {
	case doc.PublicKeyPem != "":
		// A standalone key document.
		if doc.ID != keyID {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key document id %q is not the key id %s", problem.Printable(doc.ID, maxQuoted), keyID)
		}
		owner := doc.Owner
		if owner == "" {
			owner = doc.Controller
		}
		if owner == "" {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key document %s names no owner", keyID)
		}
		if err := ownerOnKeyHost(keyID, owner); err != nil {
			return PublicKey{}, CachedKey{}, err
		}
		listed, err := k.ownerListing(ctx, owner, keyID)
		if err != nil {
			return PublicKey{}, CachedKey{}, err
		}
		if listed.PublicKeyPem != "" && strings.TrimSpace(listed.PublicKeyPem) != strings.TrimSpace(doc.PublicKeyPem) {
			return PublicKey{}, CachedKey{}, fmt.Errorf("actor %s lists key %s with a different key than the key document", owner, keyID)
		}
		entry = PublicKeyDoc{ID: keyID, Owner: owner, PublicKeyPem: doc.PublicKeyPem, Expires: listed.Expires}
	case doc.PublicKeyMultibase != "" || doc.isMultikey():
		// A standalone Multikey: its controller must list it, with the
		// same key, in its assertionMethod.
		if doc.ID != keyID {
			return PublicKey{}, CachedKey{}, fmt.Errorf("Multikey document id %q is not the key id %s", problem.Printable(doc.ID, maxQuoted), keyID)
		}
		m := MultikeyDoc{ID: doc.ID, Type: MultikeyType, Controller: doc.Controller, PublicKeyMultibase: doc.PublicKeyMultibase, Expires: doc.Expires}
		if !doc.isMultikey() {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key document %s has a publicKeyMultibase but is not of type Multikey", keyID)
		}
		if m.Controller == "" {
			return PublicKey{}, CachedKey{}, fmt.Errorf("Multikey %s names no controller", keyID)
		}
		if err := ownerOnKeyHost(keyID, m.Controller); err != nil {
			return PublicKey{}, CachedKey{}, err
		}
		listed, err := k.controllerListing(ctx, m.Controller, keyID)
		if err != nil {
			return PublicKey{}, CachedKey{}, err
		}
		if listed.PublicKeyMultibase != m.PublicKeyMultibase {
			return PublicKey{}, CachedKey{}, fmt.Errorf("actor %s lists Multikey %s with a different key than the Multikey document", m.Controller, keyID)
		}
		m.Expires = listed.Expires
		if entry, err = multikeyEntry(m, m.Controller); err != nil {
			return PublicKey{}, CachedKey{}, err
		}
	default:
		// The owner's actor document, with the key embedded in publicKey
		// or, for a Multikey, in assertionMethod.
		found, inPublicKey, err := doc.findKey(keyID)
		if err != nil {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: %w", keyID, err)
		}
		m, inAssertion, err := doc.findMultikey(keyID)
		if err != nil {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: %w", keyID, err)
		}
		switch {
		case inPublicKey && inAssertion:
			// One id for two keys: the verifier could be made to use
			// whichever of them a signature prefers.
			return PublicKey{}, CachedKey{}, fmt.Errorf("actor document %s lists key %s both in publicKey and in assertionMethod", doc.ID, keyID)
		case inAssertion:
			if entry, err = multikeyEntry(m, doc.ID); err != nil {
				return PublicKey{}, CachedKey{}, err
			}
		case inPublicKey:
			if found.Owner != "" && found.Owner != doc.ID {
				return PublicKey{}, CachedKey{}, fmt.Errorf("key %s in actor document %s claims owner %q", keyID, doc.ID, problem.Printable(found.Owner, maxQuoted))
			}
			entry = PublicKeyDoc{ID: keyID, Owner: doc.ID, PublicKeyPem: found.PublicKeyPem, Expires: found.Expires}
		default:
			return PublicKey{}, CachedKey{}, fmt.Errorf("actor document %s does not list key %s", doc.ID, keyID)
		}
	}
	pub, err := ParsePublicKeyPEM(entry.PublicKeyPem)
	if err != nil {
		return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: %w", keyID, err)
	}
	c := CachedKey{KeyID: keyID, Owner: entry.Owner, PublicKeyPEM: entry.PublicKeyPem, FetchedAt: k.now()}
	if entry.Expires != "" {
		// A key its owner retired by a rotation: refused once its overlap
		// has ended, and cached no longer than that.
		until, err := time.Parse(time.RFC3339, entry.Expires)
		if err != nil {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key %s: expires %q is not an RFC 3339 time", keyID, problem.Printable(entry.Expires, maxQuoted))
		}
		if !k.now().Before(until) {
			return PublicKey{}, CachedKey{}, fmt.Errorf("key %s %w by %s and stopped being accepted at %s", keyID, ErrKeyRotatedAway, entry.Owner, until.UTC().Format(time.RFC3339))
		}
		if stale := until.Add(-k.ttl); stale.Before(c.FetchedAt) {
			c.FetchedAt = stale // the cached copy goes stale when the key expires
		}
	}
	return PublicKey{ID: keyID, Owner: entry.Owner, Key: pub}, c, nil
}

// ownerListing fetches the actor owner and returns its publicKey entry for
// keyID, refusing an actor that does not list the key.
func (k *KeyFetcher) ownerListing(ctx context.Context, owner, keyID string) (PublicKeyDoc, error) {
	body, err := k.fetcher.FetchDocument(ctx, owner)
	if err != nil {
		return PublicKeyDoc{}, fmt.Errorf("owner of key %s: %w", keyID, err)
	}
	var actor remoteDocument
	if err := json.Unmarshal(body, &actor); err != nil {
		return PublicKeyDoc{}, fmt.Errorf("owner of key %s: %w", keyID, err)
	}
	entry, ok, err := actor.findKey(keyID)
	if err != nil {
		return PublicKeyDoc{}, fmt.Errorf("owner of key %s: %w", keyID, err)
	}
	if !ok {
		return PublicKeyDoc{}, fmt.Errorf("actor %s does not list key %s", owner, keyID)
	}
	return entry, nil
}

// controllerListing fetches the actor controller and returns its
// assertionMethod entry for keyID, refusing an actor that does not list
// the key, or lists it under another controller.
func (k *KeyFetcher) controllerListing(ctx context.Context, controller, keyID string) (MultikeyDoc, error) {
	body, err := k.fetcher.FetchDocument(ctx, controller)
	if err != nil {
		return MultikeyDoc{}, fmt.Errorf("controller of key %s: %w", keyID, err)
	}
	var actor remoteDocument
	if err := json.Unmarshal(body, &actor); err != nil {
		return MultikeyDoc{}, fmt.Errorf("controller of key %s: %w", keyID, err)
	}
	m, ok, err := actor.findMultikey(keyID)
	if err != nil {
		return MultikeyDoc{}, fmt.Errorf("controller of key %s: %w", keyID, err)
	}
	if !ok {
		return MultikeyDoc{}, fmt.Errorf("actor %s does not list Multikey %s in its assertionMethod", controller, keyID)
	}
	if m.Controller != controller {
		return MultikeyDoc{}, fmt.Errorf("actor %s lists Multikey %s under the controller %q", controller, keyID, problem.Printable(m.Controller, maxQuoted))
	}
	return m, nil
}

// multikeyEntry checks a Multikey an actor lists (its type, that actor is
// its controller, an Ed25519 key) and returns it as the entry FetchKey
// caches, with the key in PEM form.
func multikeyEntry(m MultikeyDoc, actor string) (PublicKeyDoc, error) {
	if m.Type != MultikeyType {
		return PublicKeyDoc{}, fmt.Errorf("assertionMethod %s of %s has the type %q, not Multikey", m.ID, actor, problem.Printable(m.Type, maxQuoted))
	}
	if m.Controller != actor {
		return PublicKeyDoc{}, fmt.Errorf("Multikey %s listed by %s names the controller %q: a key is accepted only for the actor that controls it", m.ID, actor, problem.Printable(m.Controller, maxQuoted))
	}
	pub, err := ParseEd25519Multibase(m.PublicKeyMultibase)
	if err != nil {
		return PublicKeyDoc{}, fmt.Errorf("Multikey %s: %w", m.ID, err)
	}
	pemText, err := PublicKeyPEM(pub)
	if err != nil {
		return PublicKeyDoc{}, fmt.Errorf("Multikey %s: %w", m.ID, err)
	}
	return PublicKeyDoc{ID: m.ID, Owner: actor, PublicKeyPem: pemText, Expires: m.Expires}, nil
}

// ownerOnKeyHost refuses a key whose owner lives on another host.
func ownerOnKeyHost(keyID, owner string) error {
	if !urlhost.Same(keyID, owner) {
		return fmt.Errorf("key %s and its owner %q are not on the same host", keyID, problem.Printable(owner, maxQuoted))
	}
	return nil
}
