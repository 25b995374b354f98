package outbox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAnAttemptThatTimesOutIsRecorded: an attempt whose peer does not
// answer within the attempt's timeout is recorded as a retry (its
// attempts counted, its next try scheduled by the retry policy), as any
// other failure is. Its outcome was written under the attempt's own
// context, which the timeout had ended: the write failed, the delivery
// waited out its lease instead of its back-off, and its attempts were
// never counted.
func TestAnAttemptThatTimesOutIsRecorded(t *testing.T) {
	clock := newFakeClock()
	ended := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select { // never answers
		case <-r.Context().Done():
		case <-ended:
		}
	}))
	defer srv.Close()
	defer close(ended)
	f := newFixture(t, clock, srv.URL+"/inbox", func(c *DelivererConfig) { c.AttemptTimeout = 200 * time.Millisecond })
	f.enqueue(t, 1, "case-1")

	f.d.attempt(context.Background(), f.due(t))

	pending, dead := f.pending(t), f.deadLetters(t)
	if stats := f.d.Stats(); len(pending) != 1 || len(dead) != 0 || stats.Retried != 1 || pending[0].Attempts != 1 {
		t.Fatalf("pending %+v, dead %v, stats %+v; want the delivery retried once", pending, dead, stats)
	}
	if want := clock.Now().Add(30 * time.Second); !pending[0].NextAttempt.Equal(want) {
		t.Errorf("NextAttempt = %v, want %v (the first back-off)", pending[0].NextAttempt, want)
	}
	if logs := f.logs.String(); strings.Contains(logs, "record_error") {
		t.Errorf("the attempt's outcome was not recorded:\n%s", logs)
	}
}
