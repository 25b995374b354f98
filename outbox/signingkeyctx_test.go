package outbox

import (
	"context"
	"crypto/rsa"
	"strings"
	"testing"
	"time"
)

// stalledKeys is a KeySource whose lookup does not answer (a Case Actor
// read from a database cut off by the network) until its context ends,
// or release is closed.
type stalledKeys struct{ release chan struct{} }

func (k stalledKeys) SigningKey(ctx context.Context, _ string) (string, *rsa.PrivateKey, error) {
	select {
	case <-ctx.Done():
		return "", nil, ctx.Err()
	case <-k.release:
		return "", nil, ErrNoSigningKey
	}
}

// TestASigningKeyThatDoesNotAnswerEndsWithTheAttempt: the lookup of the
// signing key (which reads the store for a Case Actor not loaded yet)
// ends with the attempt, at its timeout, as its other steps do; it was
// made without the attempt's context, so a store that stopped answering
// held the worker, past the lease and the node's abandon, until TCP gave
// up.
func TestASigningKeyThatDoesNotAnswerEndsWithTheAttempt(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", func(c *DelivererConfig) {
		c.Keys = stalledKeys{release: release}
		c.AttemptTimeout = 200 * time.Millisecond
	})
	f.enqueue(t, 1, "case-1")
	stop := run(t, f.d)
	defer stop()
	f.d.Wake()
	waitFor(t, "the attempt to end at its timeout of 200ms", func() bool {
		return strings.Contains(f.logs.String(), `"delivery attempt"`)
	})
}
