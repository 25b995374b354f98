package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
)

// TestFollowActivitiesKeepTheirOrder checks that what changes one
// relation between a local actor and a remote one reaches the remote
// actor in the order it was sent: an Undo never overtakes the Follow it
// undoes while the Follow waits for a retry (the remote node would take
// the Undo of a Follow it has not seen, then the Follow, and keep a
// follower that no longer asks to be one), nor a Reject of a follower the
// Accept that let it in.
func TestFollowActivitiesKeepTheirOrder(t *testing.T) {
	const (
		peer       = "https://peer.example/actors/p"
		follower   = "https://fan.example/actors/f"
		followerID = "https://fan.example/activities/follow-1"
		as         = "https://www.w3.org/ns/activitystreams"
	)
	ctx := context.Background()
	v := newFollowedOutbox(t, follower, followerID, store.FollowPending)
	submit := func(body string) Submitted {
		t.Helper()
		s, err := v.sub.Submit(ctx, "vendor", []byte(body))
		if err != nil {
			t.Fatalf("submit %s: %v", body, err)
		}
		return s
	}
	follow := submit(fmt.Sprintf(`{"@context":%q,"type":"Follow","object":%q,"to":[%q]}`, as, peer, peer))
	submit(fmt.Sprintf(`{"@context":%q,"type":"Undo","to":[%q],"object":{"type":"Follow","id":%q,"actor":%q,"object":%q}}`,
		as, peer, follow.ID, v.vendor.ID, peer))
	accept := submit(fmt.Sprintf(`{"@context":%q,"type":"Accept","to":[%q],"object":{"type":"Follow","id":%q,"actor":%q,"object":%q}}`,
		as, follower, followerID, follower, v.vendor.ID))
	submit(fmt.Sprintf(`{"@context":%q,"type":"Reject","to":[%q],"object":{"type":"Follow","id":%q,"actor":%q,"object":%q}}`,
		as, follower, followerID, follower, v.vendor.ID))

	due, err := v.db.DueDeliveries(ctx, time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range due {
		got = append(got, d.ActivityID)
	}
	if len(got) != 2 || got[0] != follow.ID || got[1] != accept.ID {
		t.Errorf("due first: %q, want only the Follow %s and the Accept %s (the Undo and the Reject wait behind them)", got, follow.ID, accept.ID)
	}
}

// newFollowedOutbox returns the vendor's outbox with the plain
// ActivityPub of package social (every follower approved by hand), and
// follower's Follow of the vendor, followID, recorded in state.
func newFollowedOutbox(t *testing.T, follower, followID string, state store.FollowState) *vendorOutbox {
	t.Helper()
	v := newVendorOutbox(t, nil, nil)
	plain, err := social.New(social.Config{
		ManuallyApproves: func(string) bool { return true },
		IsCaseActor:      func(string) bool { return false },
	})
	if err != nil {
		t.Fatal(err)
	}
	v.sub.cfg.Social = plain
	if err := v.db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: state, Remote: follower, FollowID: followID})
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
