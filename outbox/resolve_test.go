package outbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
)

// docServer is a fetch function over a map of actor documents that counts
// fetches.
type docServer struct {
	mu      sync.Mutex
	docs    map[string]string
	errs    map[string]error
	fetches map[string]int
}

func newDocServer() *docServer {
	return &docServer{docs: map[string]string{}, errs: map[string]error{}, fetches: map[string]int{}}
}

// actorDoc adds the document of actor iri with the given inbox.
func (s *docServer) actorDoc(iri, inbox string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.docs[iri] = fmt.Sprintf(`{"id":%q,"type":"Organization","inbox":%q,"endpoints":{"sharedInbox":"https://shared.example/inbox"}}`, iri, inbox)
}

func (s *docServer) fetch(_ context.Context, iri string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fetches[iri]++
	if err, ok := s.errs[iri]; ok {
		return nil, err
	}
	doc, ok := s.docs[iri]
	if !ok {
		return nil, fmt.Errorf("fetch %s: status 404", iri)
	}
	return []byte(doc), nil
}

func (s *docServer) count(iri string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches[iri]
}

func TestActorInboxesCachesForTTL(t *testing.T) {
	clock := newFakeClock()
	docs := newDocServer()
	const iri = "https://coordinator.example/actors/coordinator"
	docs.actorDoc(iri, "https://coordinator.example/actors/coordinator/inbox")
	a := NewActorInboxes(docs.fetch, time.Hour, clock.Now)
	ctx := context.Background()

	for i := range 3 {
		inbox, err := a.Inbox(ctx, iri)
		if err != nil {
			t.Fatalf("lookup %d: %v", i, err)
		}
		if inbox != "https://coordinator.example/actors/coordinator/inbox" {
			t.Fatalf("inbox = %q, want the per-actor inbox, not the shared one", inbox)
		}
	}
	if n := docs.count(iri); n != 1 {
		t.Errorf("%d fetches for three lookups within the TTL, want 1", n)
	}

	clock.Advance(59 * time.Minute)
	if _, err := a.Inbox(ctx, iri); err != nil || docs.count(iri) != 1 {
		t.Errorf("lookup before expiry: err %v, fetches %d; want the cached answer", err, docs.count(iri))
	}
	docs.actorDoc(iri, "https://coordinator.example/moved/inbox")
	clock.Advance(time.Minute)
	inbox, err := a.Inbox(ctx, iri)
	if err != nil {
		t.Fatal(err)
	}
	if docs.count(iri) != 2 || inbox != "https://coordinator.example/moved/inbox" {
		t.Errorf("after the TTL: %d fetches, inbox %q; want a refetch finding the moved inbox", docs.count(iri), inbox)
	}
}

func TestActorInboxesRefuses(t *testing.T) {
	tests := []struct {
		name    string
		iri     string
		doc     string // the whole document; empty means none is served
		wantErr string
	}{
		{
			name:    "inbox on another host",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"https://attacker.example/inbox"}`,
			wantErr: "not on the actor's host",
		},
		{
			name:    "inbox on another port",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"https://coordinator.example:8443/inbox"}`,
			wantErr: "not on the actor's host",
		},
		{
			name:    "inbox not http",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"ftp://coordinator.example/inbox"}`,
			wantErr: "not http or https",
		},
		{
			name:    "inbox downgraded to http",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"http://coordinator.example/inbox"}`,
			wantErr: "plain http",
		},
		{
			name:    "relative inbox",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"/inbox"}`,
			wantErr: "not http or https",
		},
		{
			name:    "inbox with user info",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":"https://u:p@coordinator.example/inbox"}`,
			wantErr: "no user info",
		},
		{
			name:    "only a shared inbox",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","endpoints":{"sharedInbox":"https://coordinator.example/inbox"}}`,
			wantErr: "no inbox URL",
		},
		{
			name:    "inbox not a string",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/c","inbox":{"id":"https://coordinator.example/inbox"}}`,
			wantErr: "no inbox URL",
		},
		{
			name:    "document of another actor",
			iri:     "https://coordinator.example/actors/c",
			doc:     `{"id":"https://coordinator.example/actors/d","inbox":"https://coordinator.example/inbox"}`,
			wantErr: "has the id",
		},
		{
			name:    "not JSON",
			iri:     "https://coordinator.example/actors/c",
			doc:     `<html>`,
			wantErr: "not a JSON object",
		},
		{
			name:    "recipient not an http URL",
			iri:     "mailto:coordinator@example.org",
			wantErr: "not http or https",
		},
		{
			name:    "recipient gone",
			iri:     "https://coordinator.example/actors/gone",
			wantErr: "status 404",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := newDocServer()
			if tt.doc != "" {
				docs.docs[tt.iri] = tt.doc
			}
			a := NewActorInboxes(docs.fetch, 0, newFakeClock().Now)
			for i := range 2 {
				inbox, err := a.Inbox(context.Background(), tt.iri)
				if err == nil {
					t.Fatalf("Inbox = %q, want an error", inbox)
				}
				if !IsPermanent(err) {
					t.Errorf("error %v is not permanent", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if i == 1 && tt.iri != "mailto:coordinator@example.org" && docs.count(tt.iri) != 2 {
					t.Errorf("%d fetches for two failed lookups; failures must not be cached", docs.count(tt.iri))
				}
			}
			if tt.iri == "mailto:coordinator@example.org" && docs.count(tt.iri) != 0 {
				t.Errorf("a non-http recipient was fetched")
			}
			if a.Len() != 0 {
				t.Errorf("Len = %d after refusals, want 0", a.Len())
			}
		})
	}
}

func TestActorInboxesAcceptsSameHostSpellings(t *testing.T) {
	tests := []struct{ iri, inbox string }{
		{"https://coordinator.example/actors/c", "https://Coordinator.EXAMPLE:443/actors/c/inbox"},
		{"http://coordinator.example:80/actors/c", "http://coordinator.example/inbox"},
		{"http://coordinator.example/actors/c", "https://coordinator.example/inbox"},
		{"http://[::1]:8080/actors/c", "http://[::1]:8080/inbox"},
	}
	for _, tt := range tests {
		docs := newDocServer()
		docs.actorDoc(tt.iri, tt.inbox)
		a := NewActorInboxes(docs.fetch, 0, nil)
		got, err := a.Inbox(context.Background(), tt.iri)
		if err != nil || got != tt.inbox {
			t.Errorf("Inbox(%s) = %q, %v; want %q", tt.iri, got, err, tt.inbox)
		}
	}
}

func TestActorInboxesFetchErrors(t *testing.T) {
	tests := []struct {
		name          string
		err           error
		wantPermanent bool
	}{
		{"410 gone", errors.New("fetch https://c.example/a: status 410"), true},
		{"404 not found", errors.New("fetch https://c.example/a: status 404"), true},
		{"401 refused", errors.New("fetch https://c.example/a: status 401"), true},
		{"503 unavailable", errors.New("fetch https://c.example/a: status 503"), false},
		{"429 rate limited", errors.New("fetch https://c.example/a: status 429"), false},
		{"408 timeout", errors.New("fetch https://c.example/a: status 408"), false},
		{"connection refused", fmt.Errorf("fetch https://c.example/a: %w", &url.Error{Op: "Get", URL: "https://c.example/a", Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}), false},
		{"timeout", fmt.Errorf("fetch: %w", context.DeadlineExceeded), false},
		{"private address", fmt.Errorf("fetch: %w", &url.Error{Op: "Get", URL: "https://c.example/a", Err: fmt.Errorf("10.0.0.1: %w", actor.ErrAddressRefused)}), true},
		{"body too large", fmt.Errorf("read response: %w", actor.ErrBodyTooLarge), true},
		{"wrong content type", errors.New(`fetch https://c.example/a: Content-Type "text/html" is not an ActivityPub type`), true},
		{"redirected", errors.New(`fetch https://c.example/a: redirected (301) to "https://d.example/a"; canonical ids must not redirect`), true},
	}
	const iri = "https://c.example/a"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs := newDocServer()
			docs.errs[iri] = tt.err
			a := NewActorInboxes(docs.fetch, 0, nil)
			_, err := a.Inbox(context.Background(), iri)
			if err == nil {
				t.Fatal("Inbox succeeded, want an error")
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v does not wrap the fetch error", err)
			}
			if IsPermanent(err) != tt.wantPermanent {
				t.Errorf("IsPermanent(%v) = %v, want %v", err, IsPermanent(err), tt.wantPermanent)
			}
		})
	}
}

func TestActorInboxesBounded(t *testing.T) {
	clock := newFakeClock()
	docs := newDocServer()
	a := NewActorInboxes(docs.fetch, time.Hour, clock.Now)
	a.cache.Resize(3)
	ctx := context.Background()
	iri := func(i int) string { return fmt.Sprintf("https://peer%d.example/actors/a", i) }
	for i := range 5 {
		docs.actorDoc(iri(i), iri(i)+"/inbox")
		if _, err := a.Inbox(ctx, iri(i)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	if a.Len() != 3 {
		t.Fatalf("Len = %d, want the bound 3", a.Len())
	}
	// The newest three are cached; the oldest two were evicted.
	for i := 2; i < 5; i++ {
		if _, err := a.Inbox(ctx, iri(i)); err != nil || docs.count(iri(i)) != 1 {
			t.Errorf("%s: err %v, %d fetches; want a cache hit", iri(i), err, docs.count(iri(i)))
		}
	}
	if _, err := a.Inbox(ctx, iri(0)); err != nil || docs.count(iri(0)) != 2 {
		t.Errorf("evicted %s: err %v, %d fetches; want a refetch", iri(0), err, docs.count(iri(0)))
	}
	if a.Len() != 3 {
		t.Errorf("Len = %d after a refetch, want 3", a.Len())
	}

	// Expired entries go first: after the TTL, one new lookup leaves only
	// itself in the cache.
	clock.Advance(2 * time.Hour)
	docs.actorDoc(iri(9), iri(9)+"/inbox")
	if _, err := a.Inbox(ctx, iri(9)); err != nil {
		t.Fatal(err)
	}
	if a.Len() != 1 {
		t.Errorf("Len = %d after every other entry expired, want 1", a.Len())
	}
}

func TestActorInboxesLocal(t *testing.T) {
	docs := newDocServer()
	a := NewActorInboxes(docs.fetch, 0, nil)
	const iri = "https://node.example/actors/vendor"
	if err := a.AddLocal(iri, iri+"/inbox"); err != nil {
		t.Fatal(err)
	}
	got, err := a.Inbox(context.Background(), iri)
	if err != nil || got != iri+"/inbox" {
		t.Errorf("Inbox = %q, %v; want the local inbox", got, err)
	}
	if docs.count(iri) != 0 || a.Len() != 0 {
		t.Errorf("a local actor was fetched (%d) or cached (%d)", docs.count(iri), a.Len())
	}
	if err := a.AddLocal(iri, "https://elsewhere.example/inbox"); err == nil {
		t.Errorf("AddLocal accepted an inbox on another host")
	}
}

// TestActorInboxesWithFetcher resolves through a real actor.Fetcher
// against a test server, so the classification of its errors is checked
// against what it actually returns.
func TestActorInboxesWithFetcher(t *testing.T) {
	var mu sync.Mutex
	status := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		code := status[r.URL.Path]
		mu.Unlock()
		if code != 0 {
			w.WriteHeader(code)
			return
		}
		w.Header().Set("Content-Type", actor.ContentType)
		id := "http://" + r.Host + r.URL.Path
		fmt.Fprintf(w, `{"id":%q,"type":"Person","inbox":%q}`, id, id+"/inbox")
	}))
	t.Cleanup(srv.Close)
	status["/actors/gone"] = http.StatusGone
	status["/actors/missing"] = http.StatusNotFound
	status["/actors/busy"] = http.StatusServiceUnavailable

	f, err := actor.NewFetcher(actor.FetcherOptions{
		Client: actor.SafeClientOptions{AllowPrivate: true, Timeout: 5 * time.Second},
		KeyID:  testKeyID,
		Key:    signingKey(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	a := NewActorInboxes(f.FetchDocument, 0, nil)

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	tests := []struct {
		path          string
		base          string
		wantInbox     bool
		wantPermanent bool
	}{
		{path: "/actors/coordinator", base: srv.URL, wantInbox: true},
		{path: "/actors/gone", base: srv.URL, wantPermanent: true},
		{path: "/actors/missing", base: srv.URL, wantPermanent: true},
		{path: "/actors/busy", base: srv.URL, wantPermanent: false},
		{path: "/actors/down", base: closedURL, wantPermanent: false},
	}
	for _, tt := range tests {
		iri := tt.base + tt.path
		inbox, err := a.Inbox(context.Background(), iri)
		if tt.wantInbox {
			if err != nil || inbox != iri+"/inbox" {
				t.Errorf("Inbox(%s) = %q, %v; want %s/inbox", iri, inbox, err, iri)
			}
			continue
		}
		if err == nil {
			t.Errorf("Inbox(%s) = %q, want an error", iri, inbox)
			continue
		}
		if IsPermanent(err) != tt.wantPermanent {
			t.Errorf("Inbox(%s): IsPermanent(%v) = %v, want %v", iri, err, IsPermanent(err), tt.wantPermanent)
		}
	}
}
