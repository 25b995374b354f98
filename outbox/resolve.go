package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
)

// Defaults of ActorInboxes.
const (
	// DefaultInboxTTL is how long a resolved inbox is used before the
	// actor document is fetched again.
	DefaultInboxTTL = time.Hour
	// DefaultInboxCacheSize bounds the number of remote actors whose inbox
	// is cached, so that recipients named by peers cannot grow the cache
	// without limit.
	DefaultInboxCacheSize = 10000
)

// ActorInboxes is the InboxResolver of a node: it fetches a recipient's
// actor document and uses its "inbox", never endpoints.sharedInbox
// (deliveries go to per-actor inboxes only, so that every delivery is
// authorized for one recipient) but for a recipient that stands for a
// shared inbox (social.SharedInbox), which is how an activity addressed to
// an actor's followers reaches several of them on one server at once. The inbox must be an http or https URL on
// the actor's own host: an actor cannot route deliveries to a third host.
//
// Results are cached in memory for a TTL, in a cache of bounded size that
// evicts expired and then oldest entries: hashicorp/golang-lru's LRU, read
// without promoting an entry (Peek), so that its order is the order of
// fetches, which with one TTL for all is also the order of expiry; the
// expiry is read against the resolver's clock, which tests set. Failures
// are not cached. Local actors added with AddLocal are answered without a
// fetch. It is safe for concurrent use.
type ActorInboxes struct {
	fetch func(ctx context.Context, iri string) ([]byte, error)
	ttl   time.Duration
	now   func() time.Time
	cache *lru.Cache[string, inboxEntry]

	mu    sync.Mutex // local, and the purge and add of store
	local map[string]string
}

// inboxEntry is one cached inbox.
type inboxEntry struct {
	inbox   string
	expires time.Time
	// ed25519 is whether the actor's document says its server verifies
	// RFC 9421 signatures made with Ed25519 (see VerifiesEd25519).
	ed25519 bool
}

// NewActorInboxes returns an ActorInboxes that dereferences actor IRIs
// with fetch, in production (*actor.Fetcher).FetchDocument. ttl ≤ 0 means
// DefaultInboxTTL; a nil now means time.Now.
func NewActorInboxes(fetch func(ctx context.Context, iri string) ([]byte, error), ttl time.Duration, now func() time.Time) *ActorInboxes {
	if ttl <= 0 {
		ttl = DefaultInboxTTL
	}
	if now == nil {
		now = time.Now
	}
	// The size is a positive constant, which is all lru.New checks.
	cache, _ := lru.New[string, inboxEntry](DefaultInboxCacheSize)
	return &ActorInboxes{
		fetch: fetch,
		ttl:   ttl,
		now:   now,
		cache: cache,
		local: make(map[string]string),
	}
}

// AddLocal makes actorIRI, an actor of this node, resolve to inbox
// without a fetch. Local entries never expire and do not count against
// the cache size.
func (a *ActorInboxes) AddLocal(actorIRI, inbox string) error {
	if err := checkSameHost(actorIRI, inbox); err != nil {
		return fmt.Errorf("local actor %s: %w", actorIRI, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.local[actorIRI] = inbox
	return nil
}

// Len returns the number of remote actors whose inbox is cached.
func (a *ActorInboxes) Len() int { return a.cache.Len() }

// Inbox returns the inbox URL of the actor actorIRI. Errors that no retry
// can fix (an IRI that is not an http or https URL, an actor document
// that is gone, malformed or names an unacceptable inbox) are marked
// Permanent; network errors and 5xx, 408 and 429 answers are not. What
// it says of the actor's document ("its actor document has no inbox URL
// string") leaves the actor to be named by the caller, as every caller
// does.
func (a *ActorInboxes) Inbox(ctx context.Context, actorIRI string) (string, error) {
	if shared, ok := social.IsSharedInbox(actorIRI); ok {
		// A delivery to several followers on one server (social.Expand).
		if _, err := parseHTTPURL(shared); err != nil {
			return "", Permanent(fmt.Errorf("shared inbox %w", err))
		}
		return shared, nil
	}
	if inbox, ok := a.cached(actorIRI); ok {
		return inbox, nil
	}
	if _, err := parseHTTPURL(actorIRI); err != nil {
		return "", Permanent(fmt.Errorf("recipient %w", err))
	}
	body, err := a.fetch(ctx, actorIRI)
	if err != nil {
		return "", classifyFetchError(err)
	}
	var doc struct {
		ID        string          `json:"id"`
		Inbox     json.RawMessage `json:"inbox"`
		Generator json.RawMessage `json:"generator"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", Permanent(fmt.Errorf("its actor document is not a JSON object: %w", err))
	}
	if doc.ID != actorIRI {
		return "", Permanent(fmt.Errorf("its actor document has the id %q", problem.Printable(doc.ID, 200)))
	}
	var inbox string
	if len(doc.Inbox) == 0 || json.Unmarshal(doc.Inbox, &inbox) != nil || inbox == "" {
		return "", Permanent(errors.New("its actor document has no inbox URL string"))
	}
	if err := checkSameHost(actorIRI, inbox); err != nil {
		return "", Permanent(fmt.Errorf("its actor document: %w", err))
	}
	a.store(actorIRI, inboxEntry{inbox: inbox, ed25519: implementsEd25519(doc.Generator)})
	return inbox, nil
}

// VerifiesEd25519 reports whether the actor actorIRI's server verifies RFC
// 9421 signatures made with Ed25519, as its cached document says: its
// generator (FEP-844e) lists actor.CapabilityRFC9421Ed25519 among what it
// implements. Local actors do. An actor whose document is not cached (it
// expired, or Inbox was not asked) is taken not to.
func (a *ActorInboxes) VerifiesEd25519(actorIRI string) bool {
	a.mu.Lock()
	_, local := a.local[actorIRI]
	a.mu.Unlock()
	if local {
		return true
	}
	e, ok := a.cache.Peek(actorIRI)
	return ok && e.ed25519 && a.now().Before(e.expires)
}

// implementsEd25519 reads a FEP-844e generator, {"implements": [{"href":
// ...}, ...]} (an Application object, or a list of them), and reports
// whether it lists actor.CapabilityRFC9421Ed25519. Anything it cannot read
// is taken as not listing it.
func implementsEd25519(raw json.RawMessage) bool {
	type link struct {
		Href string `json:"href"`
	}
	type app struct {
		Implements []json.RawMessage `json:"implements"`
	}
	var apps []app
	if err := json.Unmarshal(raw, &apps); err != nil {
		var one app
		if json.Unmarshal(raw, &one) != nil {
			return false
		}
		apps = []app{one}
	}
	for _, g := range apps {
		for _, it := range g.Implements {
			var l link
			if json.Unmarshal(it, &l) == nil && l.Href == actor.CapabilityRFC9421Ed25519 {
				return true
			}
		}
	}
	return false
}

// cached returns the inbox of a local actor or a fresh cache entry.
func (a *ActorInboxes) cached(iri string) (string, bool) {
	a.mu.Lock()
	inbox, ok := a.local[iri]
	a.mu.Unlock()
	if ok {
		return inbox, true
	}
	e, ok := a.cache.Peek(iri)
	if !ok {
		return "", false
	}
	if !a.now().Before(e.expires) {
		a.cache.Remove(iri)
		return "", false
	}
	return e.inbox, true
}

// store caches entry (its expiry set here) for iri, first dropping the expired
// entries, which are the oldest; the cache drops the oldest one when it is
// full.
func (a *ActorInboxes) store(iri string, entry inboxEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.cache.Remove(iri) // a refetch is the newest fetch
	for _, e, ok := a.cache.GetOldest(); ok && !now.Before(e.expires); _, e, ok = a.cache.GetOldest() {
		a.cache.RemoveOldest()
	}
	entry.expires = now.Add(a.ttl)
	a.cache.Add(iri, entry)
}

// checkSameHost accepts inbox when it is an http or https URL on the host
// and port of the actor actorIRI (a scheme's default port written out or
// left out alike), and not downgraded from https to http.
func checkSameHost(actorIRI, inbox string) error {
	au, err := parseHTTPURL(actorIRI)
	if err != nil {
		return fmt.Errorf("actor %w", err)
	}
	iu, err := parseHTTPURL(inbox)
	if err != nil {
		return fmt.Errorf("inbox %w", err)
	}
	if au.Scheme == "https" && iu.Scheme != "https" {
		return fmt.Errorf("inbox %q is plain http for an https actor", problem.Printable(inbox, 200))
	}
	if !urlhost.Same(actorIRI, inbox) {
		return fmt.Errorf("inbox %q is not on the actor's host %s", problem.Printable(inbox, 200), au.Host)
	}
	return nil
}

// parseHTTPURL parses an absolute http or https URL with a host and no
// user info.
func parseHTTPURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %w", problem.Printable(raw, 200), err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("URL %q is not http or https", problem.Printable(raw, 200))
	}
	if u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("URL %q: want an absolute URL with a host and no user info", problem.Printable(raw, 200))
	}
	return u, nil
}

// classifyFetchError marks a failed fetch of an actor document Permanent
// unless a retry may succeed: network errors, timeouts, and 408, 429 and
// 5xx answers are transient; refused addresses, other statuses and
// unusable documents are not.
func classifyFetchError(err error) error {
	if status, ok := fetchStatus(err); ok {
		if classify(status, nil) == retry {
			return err
		}
		return Permanent(err)
	}
	var netErr net.Error
	var urlErr *url.Error
	switch {
	case errors.Is(err, errPermanent),
		errors.Is(err, actor.ErrAddressRefused),
		errors.Is(err, actor.ErrBodyTooLarge):
		return Permanent(err)
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		errors.As(err, &netErr),
		errors.As(err, &urlErr):
		return err
	default:
		return Permanent(err)
	}
}

// fetchStatus extracts the HTTP status of a fetch that got an answer
// other than 200: from an error with a StatusCode method, or from the
// "status NNN" that (*actor.Fetcher).FetchDocument ends its message with.
func fetchStatus(err error) (int, bool) {
	var sc interface{ StatusCode() int }
	if errors.As(err, &sc) {
		return sc.StatusCode(), true
	}
	msg := err.Error()
	i := strings.LastIndex(msg, ": status ")
	if i < 0 {
		return 0, false
	}
	code, convErr := strconv.Atoi(msg[i+len(": status "):])
	if convErr != nil || code < 100 || code > 999 {
		return 0, false
	}
	return code, true
}
