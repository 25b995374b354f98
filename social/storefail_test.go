package social

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestAnUndoOfAFollowTheStoreCannotReadIsNotAConflict: an Undo naming by
// id a Follow whose stored record does not decode (a damaged store) is
// refused with the store's damage (500), not 409 "this node does not hold"
// the Follow, which tells the follower that its Follow never arrived.
func TestAnUndoOfAFollowTheStoreCannotReadIsNotAConflict(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const followID = "https://c.example/f/1"
	body := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + followID + `","type":"Follow","actor":"` + coordID +
		`","object":"` + vendorID + `"}`)
	if _, err := f.db.AcceptInbound(ctx, store.Inbound{ID: followID, Recipient: "vendor", Sender: coordID, Body: body, Semantic: string(vocab.SocialFollow)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	path := f.db.Path()
	storetest.DamageActivity(t, path, followID)
	var err error
	if f.db, err = store.Open(path, store.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.db.Close() })

	undo := activity(t, map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Undo", "object": followID}, "https://c.example/u/1", coordID)
	err = f.db.Update(ctx, func(tx *store.Tx) error {
		_, err := f.s.Inbound(tx, vendor, coordID, undo, vocab.SocialUndoFollow, Sender{Inbox: coordID + "/inbox"})
		return err
	})
	if problem.Status(err) == http.StatusConflict {
		t.Fatalf("an Undo of a Follow the store cannot read: %v, a 409 that says the node does not hold it", err)
	}
	if !errors.Is(err, store.ErrDamaged) || problem.Status(err) != http.StatusInternalServerError {
		t.Errorf("an Undo of a Follow the store cannot read: %d (%v), want 500 for the damage", problem.Status(err), err)
	}
}
