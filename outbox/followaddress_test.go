package outbox

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/openvultron/vultron/store"
)

// TestFollowActivitiesReachTheirCounterpart checks that a Follow, its Undo
// and an answer to a Follow received are delivered to the actor they are
// for (the followed actor, or the follower) even when the client did not
// address them to it: otherwise the Follow would be recorded pending and
// sent to no one, never to be answered, and an Undo or an Accept would
// change this node's record of the relation while the other node never
// heard of it.
func TestFollowActivitiesReachTheirCounterpart(t *testing.T) {
	const (
		peer       = "https://peer.example/actors/p"
		follower   = "https://fan.example/actors/f"
		followerID = "https://fan.example/activities/follow-1"
	)
	ctx := context.Background()
	// A Follow of the vendor that fan.example sent, waiting for an answer.
	v := newFollowedOutbox(t, follower, followerID, store.FollowPending)
	const as = "https://www.w3.org/ns/activitystreams"
	follow, err := v.sub.Submit(ctx, "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Follow","object":%q}`, as, peer)))
	if err != nil {
		t.Fatalf("Follow: %v", err)
	}
	tests := []struct {
		name string
		body string
		want string
	}{
		{"Follow", "", peer},
		{"Undo of the Follow", fmt.Sprintf(`{"@context":%q,"type":"Undo","object":{"type":"Follow","id":%q,"actor":%q,"object":%q}}`,
			as, follow.ID, v.vendor.ID, peer), peer},
		{"Accept of a Follow received", fmt.Sprintf(`{"@context":%q,"type":"Accept","object":{"type":"Follow","id":%q,"actor":%q,"object":%q}}`,
			as, followerID, follower, v.vendor.ID), follower},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := follow
			if tt.body != "" {
				if sub, err = v.sub.Submit(ctx, "vendor", []byte(tt.body)); err != nil {
					t.Fatalf("submit: %v", err)
				}
			}
			if !slices.Contains(sub.Recipients, tt.want) {
				t.Errorf("recipients %q, want %s among them", sub.Recipients, tt.want)
			}
			pending, _, err := v.db.PendingDeliveries(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(pending, func(d store.Delivery) bool { return d.ActivityID == sub.ID && d.Recipient == tt.want }) {
				t.Errorf("no delivery of %s to %s queued (pending %+v)", sub.ID, tt.want, pending)
			}
		})
	}
}
