package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestFollows: relations are stored per actor, direction and state, a
// later write replaces the earlier state, the counts follow every change,
// and a page reads from where the last one ended.
func TestFollows(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		put := func(f Follow) {
			t.Helper()
			if err := db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(f) }); err != nil {
				t.Fatalf("PutFollow %+v: %v", f, err)
			}
		}
		for i := range 5 {
			put(Follow{Local: "vendor", Direction: FollowerOf, State: FollowAccepted, Remote: fmt.Sprintf("https://c.example/users/%d", i),
				FollowID: fmt.Sprintf("https://c.example/follows/%d", i), SharedInbox: "https://c.example/inbox", Since: since})
		}
		put(Follow{Local: "vendor", Direction: FollowerOf, State: FollowPending, Remote: "https://d.example/u", FollowID: "https://d.example/f"})
		put(Follow{Local: "other", Direction: FollowerOf, State: FollowAccepted, Remote: "https://c.example/users/0", FollowID: "x"})
		put(Follow{Local: "vendor", Direction: Following, State: FollowPending, Remote: "https://c.example/users/0", FollowID: "y"})

		counts := func() [4]int {
			var out [4]int
			_ = db.View(ctx, func(tx *ReadTx) error {
				out = [4]int{tx.FollowCount("vendor", FollowerOf, FollowAccepted), tx.FollowCount("vendor", FollowerOf, FollowPending),
					tx.FollowCount("vendor", Following, FollowPending), tx.FollowCount("other", FollowerOf, FollowAccepted)}
				return nil
			})
			return out
		}
		if got, want := counts(), [4]int{5, 1, 1, 1}; got != want {
			t.Fatalf("counts = %v, want %v", got, want)
		}
		// Accepting the pending follower moves it between the states.
		put(Follow{Local: "vendor", Direction: FollowerOf, State: FollowAccepted, Remote: "https://d.example/u", FollowID: "https://d.example/f"})
		if got, want := counts(), [4]int{6, 0, 1, 1}; got != want {
			t.Fatalf("counts after accepting = %v, want %v", got, want)
		}

		var pages [][]Follow
		after := ""
		for range 10 {
			var page []Follow
			var next string
			if err := db.View(ctx, func(tx *ReadTx) error {
				var err error
				page, next, err = tx.Follows("vendor", FollowerOf, FollowAccepted, after, 4)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			pages = append(pages, page)
			if next == "" {
				break
			}
			after = next
		}
		if len(pages) != 2 || len(pages[0]) != 4 || len(pages[1]) != 2 {
			t.Fatalf("pages of 4 = %d pages %v", len(pages), pages)
		}
		if f := pages[0][0]; f.Remote != "https://c.example/users/0" || f.SharedInbox != "https://c.example/inbox" || !f.Since.Equal(since) || f.FollowID != "https://c.example/follows/0" {
			t.Errorf("first follower = %+v", f)
		}
		if f := pages[1][1]; f.Remote != "https://d.example/u" {
			t.Errorf("last follower = %+v, want d.example/u", f)
		}

		if err := db.Update(ctx, func(tx *Tx) error {
			if err := tx.DeleteFollow("vendor", FollowerOf, "https://c.example/users/1"); err != nil {
				return err
			}
			return tx.DeleteFollow("vendor", FollowerOf, "https://nobody.example/u")
		}); err != nil {
			t.Fatal(err)
		}
		if got, want := counts(), [4]int{5, 0, 1, 1}; got != want {
			t.Fatalf("counts after delete = %v, want %v", got, want)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			if _, ok, err := tx.Follow("vendor", FollowerOf, "https://c.example/users/1"); ok || err != nil {
				t.Errorf("deleted follower still found (%v, %v)", ok, err)
			}
			if f, ok, err := tx.Follow("vendor", Following, "https://c.example/users/0"); !ok || err != nil || f.State != FollowPending || f.FollowID != "y" {
				t.Errorf("following = %+v %v %v", f, ok, err)
			}
			return nil
		})
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(Follow{Local: "vendor", Remote: "x"}) }); err == nil {
			t.Error("a follow without direction and state was stored")
		}
	})
}

// TestFailedFollowing: a failed following keeps its reason and is counted
// in its own state; following again replaces it; a follower cannot fail,
// and a relation in another state has no reason.
func TestFailedFollowing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		const remote = "https://v.example/actors/psirt"
		failed := Follow{Local: "coord", Direction: Following, State: FollowFailed, Remote: remote, FollowID: "https://c.example/f/1",
			Since: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), Reason: "peer answered 403 Forbidden"}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(failed) }); err != nil {
			t.Fatalf("PutFollow of a failed following: %v", err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			f, ok, err := tx.Follow("coord", Following, remote)
			if !ok || err != nil || f.State != FollowFailed || f.Reason != failed.Reason || f.FollowID != failed.FollowID || !f.Since.Equal(failed.Since) {
				t.Errorf("the failed following reads back as %+v %v %v", f, ok, err)
			}
			page, _, err := tx.Follows("coord", Following, FollowFailed, "", 10)
			if err != nil || len(page) != 1 || page[0].Reason != failed.Reason || f.State.String() != "failed" {
				t.Errorf("failed followings = %+v, %v", page, err)
			}
			if n, p, a := tx.FollowCount("coord", Following, FollowFailed), tx.FollowCount("coord", Following, FollowPending), tx.FollowCount("coord", Following, FollowAccepted); n != 1 || p != 0 || a != 0 {
				t.Errorf("counts failed %d pending %d accepted %d, want 1 0 0", n, p, a)
			}
			return nil
		})

		// Following again asks again: the failed relation is replaced.
		again := Follow{Local: "coord", Direction: Following, State: FollowPending, Remote: remote, FollowID: "https://c.example/f/2"}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(again) }); err != nil {
			t.Fatal(err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			f, ok, err := tx.Follow("coord", Following, remote)
			if !ok || err != nil || f.State != FollowPending || f.Reason != "" || f.FollowID != again.FollowID {
				t.Errorf("the following asked again reads back as %+v %v %v", f, ok, err)
			}
			if n, p := tx.FollowCount("coord", Following, FollowFailed), tx.FollowCount("coord", Following, FollowPending); n != 0 || p != 1 {
				t.Errorf("counts failed %d pending %d, want 0 1", n, p)
			}
			return nil
		})

		for _, bad := range []Follow{
			{Local: "coord", Direction: FollowerOf, State: FollowFailed, Remote: remote, Reason: "x"},
			{Local: "coord", Direction: Following, State: FollowPending, Remote: remote, Reason: "x"},
		} {
			if err := db.Update(ctx, func(tx *Tx) error { return tx.PutFollow(bad) }); !errors.Is(err, ErrInvalid) {
				t.Errorf("PutFollow %+v: %v, want ErrInvalid", bad, err)
			}
		}
	})
}

// TestDeadLetterHook: the function OnDeadLetter sets runs in the
// transaction that moves a delivery to the dead letters, with the delivery
// and its reason, and in the one that requeues it, with the delivery as
// queued again, so what it writes commits with the move; when it fails,
// nothing is written and the delivery stays where it was.
func TestDeadLetterHook(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		const remote = "https://v.example/actors/psirt"
		queue := func(id string) uint64 {
			t.Helper()
			if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "f"),
				Deliveries: []DeliveryTarget{{Recipient: remote}}}, nil); err != nil {
				t.Fatal(err)
			}
			due, err := db.DueDeliveries(ctx, db.now().Add(time.Second), 10)
			if err != nil || len(due) != 1 {
				t.Fatalf("DueDeliveries = %v, %v", due, err)
			}
			return due[0].ID
		}

		var seen []Delivery
		db.OnDeadLetter(func(tx *Tx, d Delivery, requeued bool) error {
			seen = append(seen, d)
			if requeued {
				return tx.PutFollow(Follow{Local: d.Actor, Direction: Following, State: FollowPending, Remote: d.Recipient, FollowID: d.ActivityID})
			}
			return tx.PutFollow(Follow{Local: d.Actor, Direction: Following, State: FollowFailed, Remote: d.Recipient,
				FollowID: d.ActivityID, Reason: d.LastError})
		})
		id := queue("https://c.example/f/1")
		if err := db.DeadLetter(ctx, id, "peer answered 410 Gone"); err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1].ActivityID != "https://c.example/f/1" || seen[len(seen)-1].LastError != "peer answered 410 Gone" {
			t.Fatalf("the hook saw %+v", seen)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			if f, ok, err := tx.Follow("coord", Following, remote); !ok || err != nil || f.Reason != "peer answered 410 Gone" {
				t.Errorf("what the hook wrote: %+v %v %v", f, ok, err)
			}
			return nil
		})

		// The requeue of the dead letter runs the hook too, with the
		// delivery as queued again.
		newID, err := db.RequeueDeadLetter(ctx, id, "test")
		if err != nil {
			t.Fatal(err)
		}
		if last := seen[len(seen)-1]; last.ID != newID || last.ActivityID != "https://c.example/f/1" || last.Attempts != 0 {
			t.Errorf("the hook saw the requeue as %+v, want delivery %d", last, newID)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			if f, ok, err := tx.Follow("coord", Following, remote); !ok || err != nil || f.State != FollowPending {
				t.Errorf("what the hook wrote at the requeue: %+v %v %v", f, ok, err)
			}
			return nil
		})
		if due, err := db.DueDeliveries(ctx, db.now().Add(time.Second), 10); err != nil || len(due) != 1 || due[0].ID != newID {
			t.Fatalf("DueDeliveries after the requeue = %v, %v", due, err)
		}
		if err := db.DeadLetter(ctx, newID, "peer answered 410 Gone"); err != nil {
			t.Fatal(err)
		}

		// A hook that fails leaves the delivery where it was and writes
		// nothing.
		db.OnDeadLetter(func(tx *Tx, d Delivery, requeued bool) error {
			if err := tx.DeleteFollow(d.Actor, Following, d.Recipient); err != nil {
				return err
			}
			return errors.New("the hook failed")
		})
		id = queue("https://c.example/f/2")
		if err := db.DeadLetter(ctx, id, "peer answered 403 Forbidden"); err == nil || !strings.Contains(err.Error(), "the hook failed") {
			t.Fatalf("DeadLetter with a failing hook: %v", err)
		}
		if _, err := db.RequeueDeadLetter(ctx, newID, "test"); err == nil || !strings.Contains(err.Error(), "the hook failed") {
			t.Fatalf("RequeueDeadLetter with a failing hook: %v", err)
		}
		if n, err := db.DeadLetterCount(ctx); err != nil || n != 1 {
			t.Errorf("dead letters after the failed hook: %d %v, want 1", n, err)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 1 {
			t.Errorf("pending deliveries after the failed hook: %d %v, want 1", n, err)
		}
		_ = db.View(ctx, func(tx *ReadTx) error {
			if _, ok, err := tx.Follow("coord", Following, remote); !ok || err != nil {
				t.Errorf("the failed hook's delete was committed (%v %v)", ok, err)
			}
			return nil
		})

		// Without a hook, dead-lettering writes only the dead letter.
		db.OnDeadLetter(nil)
		if err := db.DeadLetter(ctx, id, "peer answered 403 Forbidden"); err != nil {
			t.Fatal(err)
		}
	})
}
