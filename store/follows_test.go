package store

import (
	"context"
	"fmt"
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
