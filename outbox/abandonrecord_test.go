package outbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// unansweredRetries is a Queue whose writes of a retry do not answer (a
// store that stopped answering) until their context ends.
type unansweredRetries struct {
	Queue
	started chan struct{}
}

func (q unansweredRetries) RetryDelivery(ctx context.Context, _ uint64, _ time.Time, _ string) error {
	close(q.started)
	<-ctx.Done()
	return ctx.Err()
}

// TestAbandonEndsTheWriteOfAnOutcome: an attempt abandoned while it
// writes its outcome to a store that does not answer ends at once, as one
// abandoned while it sends does, so that Run returns and the node closes
// its store with nothing writing to it. The write, under a bound of its
// own so that an attempt that used its whole time is still recorded,
// was not ended by Abandon, and held the worker until that bound.
func TestAbandonEndsTheWriteOfAnOutcome(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	started := make(chan struct{})
	f := newFixture(t, newFakeClock(), srv.URL+"/inbox", func(c *DelivererConfig) {
		c.AttemptTimeout = time.Minute
		c.Queue = unansweredRetries{Queue: c.Queue, started: started}
	})
	f.enqueue(t, 1, "case-1")
	dl := f.due(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.d.attempt(context.Background(), dl)
	}()
	<-started
	f.d.Abandon()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("an attempt abandoned while it wrote its outcome still runs 10 s later")
	}
}
