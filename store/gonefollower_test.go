package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestGoneFollower: a follower whose actor is gone is kept in a state of
// its own, with its reason, counted apart from the accepted followers; a
// following is never gone, and a Follow from the same actor replaces it.
func TestGoneFollower(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		const remote = "https://c.example/users/1"
		put := func(f Follow) error { return db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(f) }) }
		if err := put(Follow{Local: "vendor", Direction: FollowerOf, State: FollowAccepted, Remote: remote, FollowID: "https://c.example/f/1"}); err != nil {
			t.Fatal(err)
		}
		gone := Follow{Local: "vendor", Direction: FollowerOf, State: FollowGone, Remote: remote, FollowID: "https://c.example/f/1",
			Since: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Reason: "peer answered 410 Gone"}
		if err := put(gone); err != nil {
			t.Fatalf("PutFollow of a gone follower: %v", err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			f, ok, err := tx.Follow("vendor", FollowerOf, remote)
			if !ok || err != nil || f.State != FollowGone || f.Reason != gone.Reason || f.State.String() != "gone" {
				t.Errorf("the gone follower reads back as %+v %v %v", f, ok, err)
			}
			page, _, err := tx.Follows("vendor", FollowerOf, FollowGone, "", 10)
			if err != nil || len(page) != 1 || page[0].Remote != remote {
				t.Errorf("gone followers = %+v, %v", page, err)
			}
			if g, a := tx.FollowCount("vendor", FollowerOf, FollowGone), tx.FollowCount("vendor", FollowerOf, FollowAccepted); g != 1 || a != 0 {
				t.Errorf("counts gone %d accepted %d, want 1 0", g, a)
			}
			return nil
		})
		if err := put(Follow{Local: "vendor", Direction: FollowerOf, State: FollowPending, Remote: remote, FollowID: "https://c.example/f/2"}); err != nil {
			t.Fatal(err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			if g, p := tx.FollowCount("vendor", FollowerOf, FollowGone), tx.FollowCount("vendor", FollowerOf, FollowPending); g != 0 || p != 1 {
				t.Errorf("after a new Follow: counts gone %d pending %d, want 0 1", g, p)
			}
			return nil
		})
		for _, bad := range []Follow{
			{Local: "vendor", Direction: Following, State: FollowGone, Remote: remote, Reason: "x"},
			{Local: "vendor", Direction: FollowerOf, State: FollowAccepted, Remote: remote, Reason: "x"},
		} {
			if err := put(bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutFollow %+v: %v, want ErrInvalid", bad, err)
			}
		}
	})
}

// TestSharedInboxGone: a shared inbox recorded gone reads so until it is
// forgotten, on both engines; forgetting one never recorded is no error.
func TestSharedInboxGone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		const inbox = "https://c.example/inbox"
		gone := func() bool {
			var g bool
			_ = db.View(ctx, func(tx *ReadTx) error { g = tx.SharedInboxGone(inbox); return nil })
			return g
		}
		if gone() {
			t.Fatal("a shared inbox never recorded reads gone")
		}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutSharedInboxGone(inbox, time.Now()) }); err != nil {
			t.Fatal(err)
		}
		if !gone() {
			t.Fatal("the recorded shared inbox does not read gone")
		}
		if err := db.Update(ctx, func(tx *Tx) error {
			if err := tx.DeleteSharedInboxGone(inbox); err != nil {
				return err
			}
			return tx.DeleteSharedInboxGone("https://other.example/inbox")
		}); err != nil {
			t.Fatal(err)
		}
		if gone() {
			t.Error("the forgotten shared inbox still reads gone")
		}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutSharedInboxGone("", time.Now()) }); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutSharedInboxGone of no URL: %v, want ErrInvalid", err)
		}
	})
}

// TestDeadLetterGone: DeadLetterGone moves a delivery to the dead letters
// as DeadLetter does, and tells the OnDeadLetter function that the
// recipient's actor is gone; DeadLetter does not.
func TestDeadLetterGone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		const remote = "https://v.example/actors/psirt"
		var seen []Delivery
		db.OnDeadLetter(func(_ *Tx, d Delivery, _ bool) error {
			seen = append(seen, d)
			return nil
		})
		for i, id := range []string{"https://c.example/a/1", "https://c.example/a/2"} {
			if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "f"),
				Deliveries: []DeliveryTarget{{Recipient: remote}}}, nil); err != nil {
				t.Fatal(err)
			}
			due, err := db.DueDeliveries(ctx, db.now().Add(time.Second), 10)
			if err != nil || len(due) != 1 {
				t.Fatalf("DueDeliveries = %v, %v", due, err)
			}
			if i == 0 {
				err = db.DeadLetterGone(ctx, due[0].ID, "peer answered 410 Gone")
			} else {
				err = db.DeadLetter(ctx, due[0].ID, "peer answered 403 Forbidden")
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(seen) != 2 || !seen[0].Gone || seen[0].LastError != "peer answered 410 Gone" || seen[1].Gone {
			t.Fatalf("the hook saw %+v, want the first gone and the second not", seen)
		}
		if n, err := db.DeadLetterCount(ctx); err != nil || n != 2 {
			t.Errorf("DeadLetterCount = %d, %v, want 2", n, err)
		}
	})
}
