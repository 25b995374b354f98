package social

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestGoneFollowerRemoved: a delivery given up because the recipient's
// actor is gone (store.DB.DeadLetterGone) removes that follower, with the
// reason and an audit record, so that no announcement goes to it again;
// the same for a shared inbox, which names no actor, removes none of the
// followers on its host, whose later deliveries go to their own inboxes;
// another delivery's dead letter, or a gone actor that follows no one
// here, changes nothing.
func TestGoneFollowerRemoved(t *testing.T) {
	tests := []struct {
		name      string
		recipient string
		gone      bool
		wantGone  []string // the followers that must be gone afterwards
		// wantOwnInboxes: the followers that named the shared inbox get
		// the next announcement at their own inboxes.
		wantOwnInboxes bool
	}{
		{name: "a follower's actor is gone", recipient: coordID, gone: true, wantGone: []string{coordID}},
		{name: "a shared inbox is gone", recipient: SharedInbox("https://c.example/inbox"), gone: true, wantOwnInboxes: true},
		{name: "a follower's delivery refused for another reason", recipient: coordID},
		{name: "a gone actor that follows no one here", recipient: "https://n.example/actors/nobody", gone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			const peer = "https://c.example/actors/peer"
			if err := f.db.Update(ctx, func(tx *store.Tx) error {
				for _, r := range []string{coordID, peer, otherID} {
					if err := tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: r,
						FollowID: r + "/follows/1", SharedInbox: "https://c.example/inbox"}); err != nil {
						return err
					}
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			dl := store.Delivery{ID: 3, ActivityID: "https://v.example/activities/an-1", Actor: "vendor", Recipient: tt.recipient,
				LastError: "peer answered 410 Gone", Gone: tt.gone}
			if err := f.db.Update(ctx, func(tx *store.Tx) error { return f.s.FollowDeadLetter(tx, dl, false) }); err != nil {
				t.Fatal(err)
			}
			var gone []string
			if err := f.db.View(ctx, func(tx *store.ReadTx) error {
				page, _, err := tx.Follows("vendor", store.FollowerOf, store.FollowGone, "", 10)
				for _, g := range page {
					gone = append(gone, g.Remote)
					if !strings.Contains(g.Reason, "410 Gone") {
						t.Errorf("the gone follower %s has the reason %q, want the 410", g.Remote, g.Reason)
					}
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			const next = "https://v.example/activities/an-2"
			announce(t, f.db, next)
			if err := RunFanouts(ctx, f.db, "vendor", 0, nil); err != nil {
				t.Fatal(err)
			}
			expanded := queued(t, f.db, next)
			if !slices.Equal(gone, tt.wantGone) {
				t.Errorf("gone followers %v, want %v", gone, tt.wantGone)
			}
			for _, g := range tt.wantGone {
				if slices.Contains(expanded, g) {
					t.Errorf("an announcement still goes to %s: %v", g, expanded)
				}
			}
			if tt.wantOwnInboxes {
				// The shared inbox is gone, its followers are not: each
				// gets the next announcements at its own inbox, where a
				// 410 would remove it alone.
				slices.Sort(expanded)
				if want := []string{coordID, peer, otherID}; !slices.Equal(expanded, want) {
					t.Errorf("after the shared inbox's 410 an announcement goes to %v, want each follower's own inbox %v", expanded, want)
				}
			} else if len(tt.wantGone) == 0 && len(expanded) != 2 {
				t.Errorf("an announcement goes to %v, want the shared inbox and %s", expanded, otherID)
			}
			recs, _, err := f.db.AuditPage(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			audited := 0
			for _, r := range recs {
				if r.Decision == store.DecisionRemoved && r.Signer == coordID && strings.Contains(r.Reason, "gone") {
					audited++
				}
			}
			if want := len(tt.wantGone); audited != want {
				t.Errorf("%d audit records of the removal, want %d", audited, want)
			}
			// Given up again (another of its deliveries), it is removed once.
			if err := f.db.Update(ctx, func(tx *store.Tx) error { return f.s.FollowDeadLetter(tx, dl, false) }); err != nil {
				t.Fatal(err)
			}
			if n := f.countGone(); n != len(tt.wantGone) {
				t.Errorf("after a second dead letter %d gone followers, want %d", n, len(tt.wantGone))
			}
		})
	}
}

func (f *fixture) countGone() int {
	f.t.Helper()
	n := 0
	_ = f.db.View(context.Background(), func(tx *store.ReadTx) error {
		n = tx.FollowCount("vendor", store.FollowerOf, store.FollowGone)
		return nil
	})
	return n
}

// TestFollowClearsAGoneSharedInbox: a Follow whose sender's document
// names a shared inbox once found gone says that its server serves it
// again: the followers on it get the activities there again.
func TestFollowClearsAGoneSharedInbox(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const inbox = "https://c.example/inbox" // the shared inbox inbound gives
	if err := f.db.Update(ctx, func(tx *store.Tx) error { return tx.PutSharedInboxGone(inbox, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	follow, err := vocab.NewFollow(openID)
	if err != nil {
		t.Fatal(err)
	}
	if _, st := f.inbound(open, coordID, activity(t, follow, "https://c.example/f/9", coordID), vocab.SocialFollow); st != 0 {
		t.Fatalf("the Follow: %d", st)
	}
	if err := f.db.View(ctx, func(tx *store.ReadTx) error {
		if tx.SharedInboxGone(inbox) {
			t.Error("the shared inbox the Follow names is still recorded gone")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
