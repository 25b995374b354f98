package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// TestFanoutCursors: an actor's fan-outs come oldest first, a cursor
// reads back as it was put, keeps the named recipients as hashes only,
// and is gone once deleted; QueueDeliveries queues more deliveries of
// the actor's own outbound activity only.
func TestFanoutCursors(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "vendor")
		const bcc = "https://secret.example/actors/s"
		for _, id := range []string{"https://v.example/a/1", "https://v.example/a/2"} {
			if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "vendor", Body: activityBody(id, "x")}, func(tx *Tx) error {
				_, err := tx.AddFanout(NewFanoutCursor("vendor", id, "lane", []string{bcc}))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		next := func(actor string) (FanoutCursor, bool) {
			t.Helper()
			var c FanoutCursor
			var ok bool
			if err := db.View(ctx, func(tx *ReadTx) error {
				var err error
				c, ok, err = tx.NextFanout(actor)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return c, ok
		}
		c, ok := next("vendor")
		if !ok || c.ActivityID != "https://v.example/a/1" || c.OrderingKey != "lane" || !c.Named(bcc) || c.Named("https://other.example/x") {
			t.Fatalf("first fan-out = %+v, %v", c, ok)
		}
		if _, ok := next("other"); ok {
			t.Error("another actor has a fan-out")
		}
		c.After, c.Host, c.Shared = "https://h.example/u/3", "h.example", []string{"https://h.example/inbox"}
		if err := db.Update(ctx, func(tx *Tx) error {
			if err := tx.PutFanout(c); err != nil {
				return err
			}
			return tx.QueueDeliveries("vendor", c.ActivityID, []DeliveryTarget{{Recipient: "https://h.example/u/1", OrderingKey: "lane"}})
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := next(""); got.After != c.After || got.Host != c.Host || len(got.Shared) != 1 || !got.Named(bcc) {
			t.Errorf("the advanced fan-out reads back as %+v", got)
		}
		if err := db.View(ctx, func(tx *ReadTx) error {
			k, v := tx.bucket(bucketFollows).Cursor().Seek([]byte{'o', 0})
			if k == nil || bytes.Contains(v, []byte(bcc)) {
				t.Errorf("the cursor record %q keeps a named recipient in the clear", v)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 1 {
			t.Errorf("PendingCount = %d, %v, want 1", n, err)
		}
		for _, bad := range []struct{ actor, id string }{{"other", c.ActivityID}, {"vendor", "https://v.example/a/none"}} {
			err := db.Update(ctx, func(tx *Tx) error {
				return tx.QueueDeliveries(bad.actor, bad.id, []DeliveryTarget{{Recipient: "https://h.example/u/2"}})
			})
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("QueueDeliveries(%s, %s) = %v, want ErrNotFound", bad.actor, bad.id, err)
			}
		}
		if err := db.Update(ctx, func(tx *Tx) error { return tx.DeleteFanout(c) }); err != nil {
			t.Fatal(err)
		}
		if got, ok := next("vendor"); !ok || got.ActivityID != "https://v.example/a/2" {
			t.Errorf("after the first ended, the next fan-out = %+v, %v; want the second", got, ok)
		}
	})
}
