package outbox

import (
	"context"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
)

// TestInboxOnRefusedAddressDeadLetters checks that a delivery whose inbox
// is on an address the node never connects to (loopback, private, as a
// shared inbox or a cached document may name) goes to the dead letters at
// once, as the fetch of an actor document there does, rather than being
// retried for the whole horizon without a request ever leaving the node.
func TestInboxOnRefusedAddressDeadLetters(t *testing.T) {
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", func(c *DelivererConfig) {
		c.Client = actor.NewSafeClient(actor.SafeClientOptions{Timeout: 10 * time.Second})
	})
	f.enqueue(t, 1, "case-1")

	f.d.attempt(context.Background(), f.due(t))

	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending = %+v, want none", p)
	}
	dead := f.deadLetters(t)
	if len(dead) != 1 {
		t.Fatalf("dead letters = %+v, want one", dead)
	}
	checkReason(t, dead[0].LastError, []string{"127.0.0.1", actor.ErrAddressRefused.Error()})
}
