package dashboard

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/vocab"
)

// TestActorNames checks the name cache: a page never waits for a fetch,
// a name another node chose loses the characters that would disguise it,
// a failed fetch is not repeated at once, and the queue is bounded.
func TestActorNames(t *testing.T) {
	var clock atomic.Int64 // the cache's clock, in Unix nanoseconds
	clock.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	docs := map[string]*vocab.Actor{}
	hostile := &vocab.Actor{PreferredUsername: "acme"}
	hostile.ID, hostile.Name = "https://acme.example/actors/psirt", "Acme\u202e  PSIRT\x07 <b>"
	docs[hostile.ID] = hostile
	plain := &vocab.Actor{PreferredUsername: "bob"}
	plain.ID = "https://bob.example/actors/bob"
	docs[plain.ID] = plain
	fetched := make(chan string, 10)
	a, err := newActorNames(func(_ context.Context, iri string) (*vocab.Actor, error) {
		fetched <- iri
		if d, ok := docs[iri]; ok {
			return d, nil
		}
		return nil, fmt.Errorf("no actor at %s", iri)
	}, func() time.Time { return time.Unix(0, clock.Load()) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx) }()
	defer func() { cancel(); <-done }()

	gone := "https://gone.example/actors/x"
	for _, id := range []string{hostile.ID, plain.ID, gone} {
		if got := a.lookup(id); got.Known || got.Label != strings.TrimPrefix(id, "https://") {
			t.Errorf("lookup(%s) before any fetch = %+v, want the id without its scheme", id, got)
		}
	}
	changed := a.Changed()
	waitFor(t, "the names", func() bool { return a.lookup(hostile.ID).Known && a.lookup(plain.ID).Known })
	select {
	case <-changed:
	default:
		t.Error("learning names did not signal a change")
	}
	if got := a.lookup(hostile.ID); got.Label != "Acme PSIRT <b>" || got.Host != "acme.example" {
		t.Errorf("hostile name shown as %+v, want Acme PSIRT <b> (escaped by the template) at acme.example", got)
	}
	if got := a.lookup(plain.ID); got.Label != "bob@bob.example" || got.Host != "" {
		t.Errorf("name without name shown as %+v, want bob@bob.example", got)
	}
	// The failed fetch is remembered: asking again does not fetch again
	// until it expires.
	waitFor(t, "the failed fetch", func() bool {
		_, ok := a.cache.Peek(gone)
		a.mu.Lock()
		defer a.mu.Unlock()
		return ok && !a.inflight[gone]
	})
	for len(fetched) > 0 {
		<-fetched
	}
	a.lookup(gone)
	clock.Add(int64(failedNameTTL + time.Second))
	a.lookup(gone)
	select {
	case iri := <-fetched:
		if iri != gone {
			t.Errorf("fetched %s, want %s again after the failure expired", iri, gone)
		}
	case <-time.After(10 * time.Second):
		t.Error("an expired failure was not fetched again")
	}
	// The queue is bounded: with no worker, requests beyond it are dropped.
	idle, err := newActorNames(func(context.Context, string) (*vocab.Actor, error) { return nil, nil }, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for i := range nameQueue + 10 {
		idle.lookup(fmt.Sprintf("https://n%d.example/actors/a", i))
	}
	if len(idle.queue) != nameQueue || len(idle.inflight) != nameQueue {
		t.Errorf("queued %d (in flight %d), want the bound %d", len(idle.queue), len(idle.inflight), nameQueue)
	}
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}
