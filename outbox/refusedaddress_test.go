package outbox

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/policy"
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

// TestInboxOffTheAllowListDeadLetters: a POST the federation policy
// refuses before it connects (the inbox's host is not on the allow-list)
// is refused again on every retry until the configuration changes: the
// delivery is dead-lettered at once, as the fetch of an actor document
// there is, naming the allow-list, instead of retried for the horizon.
func TestInboxOffTheAllowListDeadLetters(t *testing.T) {
	pol, err := policy.New(policy.Config{Mode: policy.Allowlist, AllowedHosts: []string{"cvd.partner.example"}})
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", func(c *DelivererConfig) {
		c.Client = &http.Client{Transport: pol.Transport(nil), Timeout: 10 * time.Second}
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
	checkReason(t, dead[0].LastError, []string{"127.0.0.1", policy.ErrNotAllowed.Error()})
}
