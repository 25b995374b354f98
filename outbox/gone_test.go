package outbox

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
)

// TestGoneRecipient: a recipient whose actor is gone (its inbox, or its
// actor document, answers 410 Gone) has its delivery dead-lettered as
// gone (store.DB.DeadLetterGone, whose function removes the follower),
// and its other pending deliveries are dropped to the dead letters with a
// reason that says so, without a request. A shared inbox that answers 410
// names no actor: its delivery is dead-lettered as gone too (the followers
// behind it get the later ones at their own inboxes), but the other
// deliveries already queued to it are still sent.
func TestGoneRecipient(t *testing.T) {
	const shared = "http://coordinator.example/inbox"
	tests := []struct {
		name         string
		recipient    string
		documentGone bool // the actor document answers 410, not the inbox
		wantGone     bool
		wantRequests int
	}{
		{name: "the inbox answers 410", recipient: testRecipient, wantGone: true, wantRequests: 1},
		{name: "the actor document answers 410", recipient: testRecipient, documentGone: true, wantGone: true},
		{name: "a shared inbox answers 410", recipient: social.SharedInbox(shared), wantGone: true, wantRequests: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
				w.WriteHeader(http.StatusGone)
			})
			f := newFixture(t, clock, rc.inbox, nil)
			f.inboxes.m[social.SharedInbox(shared)] = rc.inbox
			if tt.documentGone {
				f.inboxes.err = Permanent(fmt.Errorf("fetch actor %s: status 410", testRecipient))
			}
			var mu sync.Mutex
			var hooked []store.Delivery
			f.db.OnDeadLetter(func(_ *store.Tx, d store.Delivery, _ bool) error {
				mu.Lock()
				defer mu.Unlock()
				hooked = append(hooked, d)
				return nil
			})
			for i := 1; i <= 3; i++ {
				id, body := activityBody(i)
				if err := f.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: testActorName, Body: body,
					Deliveries: []store.DeliveryTarget{{Recipient: tt.recipient}}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				f.d.attempt(context.Background(), f.due(t))
			}
			dead := f.deadLetters(t)
			if n := len(rc.requests()); n != tt.wantRequests {
				t.Errorf("the peer got %d requests, want %d", n, tt.wantRequests)
			}
			if len(dead) != 3 || len(f.pending(t)) != 0 {
				t.Fatalf("dead letters %+v, pending %+v; want all three dead-lettered", dead, f.pending(t))
			}
			mu.Lock()
			seen := slices.Clone(hooked)
			mu.Unlock()
			if len(seen) != 3 {
				t.Fatalf("the dead-letter function ran %d times, want 3", len(seen))
			}
			for i, d := range seen {
				if d.Gone != tt.wantGone {
					t.Errorf("dead letter %d: Gone = %v, want %v", i, d.Gone, tt.wantGone)
				}
			}
			// A dead letter an operator retries is sent again.
			if _, err := f.db.RequeueDeadLetter(context.Background(), dead[1].ID, "admin"); err != nil {
				t.Fatal(err)
			}
			before := len(rc.requests())
			f.d.attempt(context.Background(), f.due(t))
			if got, want := len(rc.requests())-before, 1; !tt.documentGone && got != want {
				t.Errorf("the retried dead letter made %d requests, want %d", got, want)
			}
			checkReason(t, dead[0].LastError, []string{"410"})
			for _, d := range dead[1:] {
				if tt.wantRequests == 1 && !strings.Contains(d.LastError, "gone") {
					t.Errorf("a dropped delivery's reason %q does not say the actor is gone", d.LastError)
				}
			}
		})
	}
}

// TestDeliveryQueuedAfterTheActorWasFoundGoneIsSent: the memory of a gone
// actor drops, without a request, only the deliveries that were already
// queued to it when a delivery found it gone. One queued after (its
// answer to a Follow the actor sent since, an entry of a case it takes
// part in) has a reason of its own to reach it and is sent: an actor that
// acts again is not gone, and dropping what is sent to it for the rest of
// the memory's day would remove it from the followers once more.
func TestDeliveryQueuedAfterTheActorWasFoundGoneIsSent(t *testing.T) {
	tests := []struct {
		name         string
		queuedAfter  bool
		wantRequests int // after the first delivery's 410
		wantSent     bool
	}{
		{name: "queued before the 410", queuedAfter: false, wantRequests: 0, wantSent: false},
		{name: "queued after the 410", queuedAfter: true, wantRequests: 1, wantSent: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, func(n int, _ received, w http.ResponseWriter) {
				if n == 0 {
					w.WriteHeader(http.StatusGone)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			})
			f := newFixture(t, clock, rc.inbox, nil)
			enqueue := func(n int) {
				t.Helper()
				id, body := activityBody(n)
				if err := f.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: testActorName, Body: body,
					Deliveries: []store.DeliveryTarget{{Recipient: testRecipient}}}, nil); err != nil {
					t.Fatal(err)
				}
			}
			enqueue(1)
			if !tt.queuedAfter {
				enqueue(2)
			}
			f.d.attempt(context.Background(), f.due(t))
			if n := len(rc.requests()); n != 1 {
				t.Fatalf("the peer got %d requests for the first delivery, want 1 (its 410)", n)
			}
			clock.Advance(time.Minute)
			if tt.queuedAfter {
				enqueue(2)
			}
			f.d.attempt(context.Background(), f.due(t))
			if got := len(rc.requests()) - 1; got != tt.wantRequests {
				t.Errorf("the second delivery made %d requests, want %d", got, tt.wantRequests)
			}
			dead := f.deadLetters(t)
			if sent := len(dead) == 1; sent != tt.wantSent {
				t.Errorf("dead letters %+v: the second delivery sent %v, want %v", dead, sent, tt.wantSent)
			}
		})
	}
}
