package outbox

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/openvultron/vultron/store"
)

// TestWithdrawnDeliveriesAreNotSent has DelivererConfig.Withdrawn withdraw
// one of two deliveries in a lane: it is not posted, it moves to the dead
// letters with the reason, the attempt's log line says so without the
// body, and the lane goes on to the next delivery, which is sent. A
// Withdrawn that cannot answer (the store failed) retries the delivery
// rather than sending or dropping it.
func TestWithdrawnDeliveriesAreNotSent(t *testing.T) {
	const reason = "not sent: the recipient was removed from case-1"
	tests := []struct {
		name string
		fn   func(store.Delivery) (string, error)
		sent int    // requests the recipient gets
		dead string // the dead letter's reason, "" for none
		left int    // deliveries still pending
	}{
		{"withdrawn", func(d store.Delivery) (string, error) {
			if strings.HasSuffix(d.ActivityID, "/1") {
				return reason, nil
			}
			return "", nil
		}, 1, reason, 0},
		{"kept", func(store.Delivery) (string, error) { return "", nil }, 2, "", 0},
		{"not known", func(store.Delivery) (string, error) { return "", errors.New("the store did not answer") }, 0, "", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, nil)
			f := newFixture(t, clock, rc.inbox, func(cfg *DelivererConfig) {
				cfg.Withdrawn = func(_ context.Context, d store.Delivery, a store.StoredActivity) (string, error) {
					if a.ID != d.ActivityID || len(a.Body) == 0 {
						t.Errorf("Withdrawn was given activity %q (%d bytes) for delivery of %s", a.ID, len(a.Body), d.ActivityID)
					}
					return tt.fn(d)
				}
			})
			f.enqueue(t, 1, "case-1")
			f.enqueue(t, 2, "case-1")
			f.d.attempt(context.Background(), f.due(t))
			if tt.left == 0 {
				// A delivery's completion commits a moment later; the lane
				// hands out the next one after it.
				waitFor(t, "the first delivery's outcome", func() bool { return len(f.pending(t)) == 1 })
				f.d.attempt(context.Background(), f.due(t))
				waitFor(t, "the queue to empty", func() bool { return len(f.pending(t)) == 0 })
			}
			if got := len(rc.requests()); got != tt.sent {
				t.Errorf("the recipient got %d requests, want %d", got, tt.sent)
			}
			dead := f.deadLetters(t)
			switch {
			case tt.dead == "" && len(dead) != 0:
				t.Errorf("dead letters %+v, want none", dead)
			case tt.dead != "" && (len(dead) != 1 || dead[0].LastError != tt.dead || !strings.HasSuffix(dead[0].ActivityID, "/1")):
				t.Errorf("dead letters %+v, want the first delivery's, saying %q", dead, tt.dead)
			}
			if got := len(f.pending(t)); got != tt.left {
				t.Errorf("%d deliveries pending, want %d", got, tt.left)
			}
			if tt.dead != "" {
				if !strings.Contains(f.logs.String(), `"outcome":"withdrawn"`) || strings.Contains(f.logs.String(), testSecret) {
					t.Errorf("the log does not say the delivery was withdrawn, or shows the body:\n%s", f.logs)
				}
				if st := f.d.Stats(); st.Withdrawn != 1 || st.DeadLettered != 0 {
					t.Errorf("stats %+v, want one withdrawn and none dead-lettered", st)
				}
			}
		})
	}
}
