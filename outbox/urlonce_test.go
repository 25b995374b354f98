package outbox

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
)

// closedAddress returns an address on 127.0.0.1 where nothing listens:
// that of a listener closed at once.
func closedAddress(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestAFailedDeliveryNamesTheURLOnce: the reason a delivery records when
// nothing listens where it goes used to repeat the URL three times
// ("resolve the inbox of X: fetch X: Get \"X\": dial tcp ...", "post to
// X: Post \"X\": dial tcp ..."). It names the URL once, and keeps the
// cause: the refused connection.
func TestAFailedDeliveryNamesTheURLOnce(t *testing.T) {
	addr := closedAddress(t)
	tests := []struct {
		name string
		// recipient is the delivery's recipient; url is the URL its
		// reason names (the actor's, or its inbox's).
		recipient, url string
		edit           func(t *testing.T, c *DelivererConfig)
	}{
		{
			name:      "the fetch of the recipient's actor document",
			recipient: "http://" + addr + "/actors/coordinator",
			url:       "http://" + addr + "/actors/coordinator",
			edit: func(t *testing.T, c *DelivererConfig) {
				f, err := actor.NewFetcher(actor.FetcherOptions{
					Client: actor.SafeClientOptions{AllowPrivate: true, Timeout: 5 * time.Second},
					KeyID:  testKeyID,
					Key:    signingKey(t),
				})
				if err != nil {
					t.Fatal(err)
				}
				c.Inboxes = NewActorInboxes(f.FetchDocument, 0, nil)
			},
		},
		{
			name:      "the post to the recipient's inbox",
			recipient: testRecipient,
			url:       "http://" + addr + "/actors/coordinator/inbox",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, newFakeClock(), "http://"+addr+"/actors/coordinator/inbox", func(c *DelivererConfig) {
				if tt.edit != nil {
					tt.edit(t, c)
				}
			})
			id, body := activityBody(1)
			err := f.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: testActorName, Body: body,
				Deliveries: []store.DeliveryTarget{{Recipient: tt.recipient}}}, nil)
			if err != nil {
				t.Fatal(err)
			}

			f.d.attempt(context.Background(), f.due(t))

			pending := f.pending(t)
			if len(pending) != 1 {
				t.Fatalf("pending = %+v, want the delivery, to be tried again", pending)
			}
			reason := pending[0].LastError
			if n := strings.Count(reason, tt.url); n != 1 {
				t.Errorf("reason %q names %s %d times, want once", reason, tt.url, n)
			}
			if strings.Contains(reason, `"http://`) {
				t.Errorf("reason %q quotes a URL again", reason)
			}
			checkReason(t, reason, []string{"dial tcp " + addr, "connection refused"})
		})
	}
}
