package dashboard

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// The dashboard shows actors by the names they give themselves: "name",
// or "preferredUsername@host", with the actor's id on hover. A name comes
// from the actor's own document, which for a remote actor means a signed
// GET to another node: a page is never held up by one. A page takes the
// names known already and asks for the others; a few workers fetch them
// in the background, and the page's live stream sends an update when a
// name arrives. Names are kept in memory, in a cache of bounded size (an
// LRU from hashicorp/golang-lru) whose entries expire, so that a renamed
// actor is seen within the hour and a node that did not answer is asked
// again a few minutes later.

const (
	// maxActorNames bounds the names kept in memory.
	maxActorNames = 10000
	// nameTTL is how long a fetched name is used before it is fetched
	// again; failedNameTTL is how long a failed fetch is not repeated.
	nameTTL       = time.Hour
	failedNameTTL = 5 * time.Minute
	// nameFetchTimeout bounds one fetch of an actor document.
	nameFetchTimeout = 10 * time.Second
	// nameQueue bounds the fetches waiting for a worker: a page that asks
	// for more finds the queue full and shows the ids, and the next view
	// asks again.
	nameQueue = 256
	// nameWorkers is how many actor documents are fetched at once.
	nameWorkers = 2
	// maxNameBytes bounds a name as shown.
	maxNameBytes = 64
)

// actorName is how a page shows an actor.
type actorName struct {
	ID string // the actor's id, shown on hover
	// Label is the actor's name, its preferredUsername@host, or while
	// neither is known its id without the scheme.
	Label string
	// Host is the actor's host, shown beside a Label that does not say it.
	Host string
	// Known is false while the Label is only the id.
	Known bool
}

// nameEntry is a cached fetch: the name found, or none after a failure.
type nameEntry struct {
	name    actorName
	ok      bool
	expires time.Time
}

// actorNames finds and keeps the names of actors.
type actorNames struct {
	fetch func(ctx context.Context, iri string) (*vocab.Actor, error)
	now   func() time.Time
	cache *lru.Cache[string, nameEntry]
	queue chan string

	mu       sync.Mutex
	inflight map[string]bool
	changed  chan struct{}
	gen      atomic.Int64
}

func newActorNames(fetch func(ctx context.Context, iri string) (*vocab.Actor, error), now func() time.Time) (*actorNames, error) {
	cache, err := lru.New[string, nameEntry](maxActorNames)
	if err != nil {
		return nil, fmt.Errorf("dashboard: actor name cache: %w", err)
	}
	return &actorNames{fetch: fetch, now: now, cache: cache, queue: make(chan string, nameQueue),
		inflight: map[string]bool{}, changed: make(chan struct{})}, nil
}

// lookup returns how to show the actor with id iri now, and asks for its
// document when its name is not known or has expired. It never waits for
// a fetch.
func (a *actorNames) lookup(iri string) actorName {
	if u, err := url.Parse(iri); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fallbackName(iri) // not an actor document's address: nothing to fetch
	}
	e, found := a.cache.Get(iri)
	if found && e.ok {
		if a.now().After(e.expires) {
			a.request(iri)
		}
		return e.name
	}
	if !found || a.now().After(e.expires) {
		a.request(iri)
	}
	return fallbackName(iri)
}

// request queues a fetch of iri unless one is queued or running, or the
// queue is full.
func (a *actorNames) request(iri string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inflight[iri] {
		return
	}
	select {
	case a.queue <- iri:
		a.inflight[iri] = true
	default:
	}
}

// run fetches the queued actor documents until ctx ends.
func (a *actorNames) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range nameWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case iri := <-a.queue:
					a.fetchOne(ctx, iri)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

func (a *actorNames) fetchOne(ctx context.Context, iri string) {
	defer func() {
		a.mu.Lock()
		delete(a.inflight, iri)
		a.mu.Unlock()
	}()
	fctx, cancel := context.WithTimeout(ctx, nameFetchTimeout)
	defer cancel()
	doc, err := a.fetch(fctx, iri)
	if ctx.Err() != nil {
		return // stopping: not a failure of the peer
	}
	if err != nil || doc == nil || doc.ID != iri {
		a.cache.Add(iri, nameEntry{expires: a.now().Add(failedNameTTL)})
		return
	}
	name := nameOf(iri, doc.Name, doc.PreferredUsername)
	prev, had := a.cache.Peek(iri)
	a.cache.Add(iri, nameEntry{name: name, ok: name.Known, expires: a.now().Add(nameTTL)})
	if !had || prev.name != name {
		a.notify()
	}
}

// notify wakes the pages waiting for names.
func (a *actorNames) notify() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.gen.Add(1)
	close(a.changed)
	a.changed = make(chan struct{})
}

// Changed returns a channel closed when a name is learnt or changes.
func (a *actorNames) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

// generation counts the names learnt or changed; a page's live state
// includes it so that a name that arrives after the page was drawn
// updates the page.
func (a *actorNames) generation() int64 { return a.gen.Load() }

// nameOf is how an actor with id iri whose document says name and
// preferredUsername is shown: its name, or else preferredUsername@host.
// Both are text another node chose: control and formatting characters
// (such as the bidirectional overrides that would make one name read as
// another) are dropped, runs of spaces become one, and the result is
// clipped.
func nameOf(iri, name, username string) actorName {
	host := hostOf(iri)
	if n := cleanName(name); n != "" {
		return actorName{ID: iri, Label: n, Host: host, Known: true}
	}
	if u := cleanName(username); u != "" && host != "" {
		return actorName{ID: iri, Label: u + "@" + host, Known: true}
	}
	return fallbackName(iri)
}

// fallbackName shows an actor whose name is not known by its id without
// the scheme.
func fallbackName(iri string) actorName {
	label := iri
	if u, err := url.Parse(iri); err == nil && u.Host != "" {
		label = u.Host + u.EscapedPath()
	}
	return actorName{ID: iri, Label: problem.Clip(label, 2*maxNameBytes)}
}

func hostOf(iri string) string {
	if u, err := url.Parse(iri); err == nil {
		return u.Host
	}
	return ""
}

func cleanName(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.IsControl(r), unicode.Is(unicode.Cf, r), r == unicode.ReplacementChar:
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return problem.Clip(b.String(), maxNameBytes)
}
