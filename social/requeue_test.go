package social

import (
	"context"
	"net/http"
	"testing"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestRequeueOfAnUndoneFollowIsRefused checks that the dead letter of a
// Follow the actor has undone since is not sent again: requeued, it would
// go after the Undo, and the followed actor would take the actor for a
// follower that no longer asks to be one (and whose Accept this node
// refuses). The requeue is refused with 409 and the following stays
// absent.
func TestRequeueOfAnUndoneFollowIsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	must := func(m map[string]any, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	send := func(act *vocab.Activity, sem vocab.Semantic) {
		t.Helper()
		body, _ := vocab.Marshal(act)
		if err := f.db.EnqueueOutbound(ctx, store.Outbound{ID: act.ID, Actor: "vendor", Body: body},
			func(tx *store.Tx) error { return f.s.Outbound(tx, vendor, act, sem) }); err != nil {
			t.Fatal(err)
		}
	}
	follow := activity(t, must(vocab.NewFollow(coordID)), "https://v.example/f/1", vendorID)
	send(follow, vocab.SocialFollow)
	dl := store.Delivery{ID: 7, ActivityID: follow.ID, Actor: "vendor", Recipient: coordID, LastError: "peer answered 503 Service Unavailable"}
	if err := f.db.Update(ctx, func(tx *store.Tx) error { return f.s.FollowDeadLetter(tx, dl, false) }); err != nil {
		t.Fatal(err)
	}
	send(activity(t, must(vocab.NewUndo(vocab.FollowInfo{ID: follow.ID, Actor: vendorID, Object: coordID})), "https://v.example/u/1", vendorID), vocab.SocialUndoFollow)

	dl.ID = 8
	err := f.db.Update(ctx, func(tx *store.Tx) error { return f.s.FollowDeadLetter(tx, dl, true) })
	if problem.Status(err) != http.StatusConflict {
		t.Errorf("requeue of the undone Follow's dead letter: %v (status %d), want 409", err, problem.Status(err))
	}
	if got := f.state("vendor", store.Following, coordID); got != 0 {
		t.Errorf("after the requeue the following is %v, want none", got)
	}
}
