package store

import (
	"encoding/json"
	"testing"
	"time"
)

// TestChangeFeed checks the feed's order, paging, cursors and pruning.
func TestChangeFeed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{NoSync: true})
		ctx := t.Context()
		base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
		for i := range int64(5) {
			if err := db.Update(ctx, func(tx *Tx) error {
				return tx.AppendEvent(Event{CaseID: "https://v.example/cases/1", LogIndex: &i, EventType: "add_note_to_case",
					Time: base.Add(time.Duration(i) * time.Hour), State: json.RawMessage(`{"em":"ACTIVE"}`)})
			}); err != nil {
				t.Fatal(err)
			}
		}
		evs, err := db.EventsAfter(ctx, 1, 2)
		if err != nil || len(evs) != 2 || evs[0].Seq != 2 || evs[1].LogIndex == nil || *evs[1].LogIndex != 2 || string(evs[0].State) != `{"em":"ACTIVE"}` {
			t.Fatalf("EventsAfter(1, 2) = %+v, %v", evs, err)
		}
		if last, _ := db.LastEventSeq(ctx); last != 5 {
			t.Errorf("LastEventSeq = %d, want 5", last)
		}
		// A new webhook starts at the end; a stored cursor is read back.
		c, known, err := db.WebhookCursor(ctx, "https://hooks.example/a")
		if err != nil || known || c.Seq != 5 {
			t.Errorf("a new webhook's cursor %+v known %v (%v), want seq 5, unknown", c, known, err)
		}
		if err := db.SetWebhookCursor(ctx, "https://hooks.example/a", WebhookCursor{Seq: 3, Skipped: 1}); err != nil {
			t.Fatal(err)
		}
		if c, known, _ := db.WebhookCursor(ctx, "https://hooks.example/a"); !known || c.Seq != 3 || c.Skipped != 1 {
			t.Errorf("stored cursor read back as %+v (known %v)", c, known)
		}
		// Pruning removes only events up to seq and older than the time.
		n, err := db.PruneEvents(ctx, 3, base.Add(2*time.Hour))
		if err != nil || n != 2 {
			t.Errorf("PruneEvents = %d, %v; want the 2 events older than 2h", n, err)
		}
		if evs, _ := db.EventsAfter(ctx, 0, 10); len(evs) != 3 || evs[0].Seq != 3 {
			t.Errorf("after pruning: %d events from %d, want 3 from seq 3", len(evs), evs[0].Seq)
		}
	})
}
