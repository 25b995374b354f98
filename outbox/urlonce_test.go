package outbox

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
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

// TestAnUnusableActorIsNamedOnce: a recipient whose actor document cannot
// be used (it names no inbox, an inbox on another host, or its server
// refuses it) was named again inside the reason ("resolve the inbox of
// X: actor document X has no inbox URL string"), in the dead letter and
// in the outbox's refusal of a submission ("X cannot be delivered to:
// fetch X: status 403"). Both name it once, and say what was wrong.
func TestAnUnusableActorIsNamedOnce(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	doc := func(extra string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", actor.ContentType)
			fmt.Fprintf(w, `{"id":%q%s}`, srv.URL+r.URL.Path, extra)
		}
	}
	mux.Handle("/actors/noinbox", doc(""))
	mux.Handle("/actors/elsewhere", doc(`,"inbox":"http://other.example/inbox"`))
	mux.HandleFunc("/actors/forbidden", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusForbidden) })
	f, err := actor.NewFetcher(actor.FetcherOptions{
		Client: actor.SafeClientOptions{AllowPrivate: true, Timeout: 5 * time.Second},
		KeyID:  testKeyID,
		Key:    signingKey(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path, why string
	}{
		{"/actors/noinbox", "has no inbox URL string"},
		{"/actors/elsewhere", "is not on the actor's host"},
		{"/actors/forbidden", "status 403"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			recipient := srv.URL + tt.path
			inboxes := NewActorInboxes(f.FetchDocument, 0, nil)

			fx := newFixture(t, newFakeClock(), "", func(c *DelivererConfig) { c.Inboxes = inboxes })
			id, body := activityBody(1)
			err := fx.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: testActorName, Body: body,
				Deliveries: []store.DeliveryTarget{{Recipient: recipient}}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			fx.d.attempt(context.Background(), fx.due(t))
			dead := fx.deadLetters(t)
			if len(dead) != 1 {
				t.Fatalf("dead letters = %+v, want the delivery", dead)
			}
			if n := strings.Count(dead[0].LastError, recipient); n != 1 || !strings.Contains(dead[0].LastError, tt.why) {
				t.Errorf("reason %q names %s %d times, want once, saying %q", dead[0].LastError, recipient, n, tt.why)
			}

			v := newVendorOutbox(t, nil, nil)
			v.sub.cfg.ResolveRecipient = func(ctx context.Context, iri string) error { _, err := inboxes.Inbox(ctx, iri); return err }
			_, err = v.sub.Submit(context.Background(), "vendor", fmt.Appendf(nil,
				`{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","to":[%q],"object":{"type":"Note","content":"hello"}}`, recipient))
			msg := problem.Message(err)
			if problem.Status(err) != http.StatusUnprocessableEntity || strings.Count(msg, recipient) != 1 || !strings.Contains(msg, tt.why) {
				t.Errorf("submission to %s: %d %q, want 422 naming it once, saying %q", recipient, problem.Status(err), msg, tt.why)
			}
		})
	}
}
