package outbox

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// countingQueue is the store seen through the Deliverer's Queue, counting
// what it asks for: the deliveries it holds (claimed, no outcome recorded
// yet) and their peak, and the activities it reads.
type countingQueue struct {
	*store.DB
	mu         sync.Mutex
	held, peak int
	reads      int
	// batchReads and batchRead count the reads of activities together and
	// the activities they read.
	batchReads, batchRead int
}

func (q *countingQueue) Activities(ctx context.Context, ids []string) (map[string]store.StoredActivity, error) {
	q.mu.Lock()
	q.batchReads++
	q.batchRead += len(ids)
	q.mu.Unlock()
	return q.DB.Activities(ctx, ids)
}

func (q *countingQueue) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	ds, err := q.DB.DueDeliveries(ctx, now, limit)
	q.mu.Lock()
	q.held += len(ds)
	q.peak = max(q.peak, q.held)
	q.mu.Unlock()
	return ds, err
}

func (q *countingQueue) done() {
	q.mu.Lock()
	q.held--
	q.mu.Unlock()
}

func (q *countingQueue) CompleteDeliveryDeferred(id uint64, done func(error)) error {
	q.done()
	return q.DB.CompleteDeliveryDeferred(id, done)
}

func (q *countingQueue) RetryDelivery(ctx context.Context, id uint64, next time.Time, lastErr string) error {
	q.done()
	return q.DB.RetryDelivery(ctx, id, next, lastErr)
}

func (q *countingQueue) DeadLetter(ctx context.Context, id uint64, reason string) error {
	q.done()
	return q.DB.DeadLetter(ctx, id, reason)
}

func (q *countingQueue) Activity(ctx context.Context, id string) (store.StoredActivity, error) {
	q.mu.Lock()
	q.reads++
	q.mu.Unlock()
	return q.DB.Activity(ctx, id)
}

// newCountingFixture is newFixture with workers delivery workers, whose
// queue is counted.
func newCountingFixture(t *testing.T, clock *fakeClock, inbox string, workers int) (*fixture, *countingQueue) {
	t.Helper()
	var q *countingQueue
	f := newFixture(t, clock, inbox, func(c *DelivererConfig) {
		c.Workers = workers
		q = &countingQueue{DB: c.Queue.(*store.DB)}
		c.Queue = q
	})
	return f, q
}

// wantOwnBodies checks that each request got carried the body of the
// activity it delivered.
func wantOwnBodies(t *testing.T, got []received) {
	t.Helper()
	for _, r := range got {
		var a int
		if _, err := fmt.Sscanf(r.activityID, "http://vendor.example/activities/%d", &a); err != nil {
			t.Fatalf("request for %q: %v", r.activityID, err)
		}
		if _, want := activityBody(a); string(r.body) != string(want) {
			t.Errorf("delivery of %s carried %q, want its own body", r.activityID, r.body)
		}
	}
}

func (q *countingQueue) counts() (held, peak, reads int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.held, q.peak, q.reads
}

// TestWorkersFindTheNextDeliveryClaimed checks that while every worker is
// busy the dispatcher holds as many more deliveries, claimed and ready, so
// that a worker that finishes starts the next one without waiting for a
// claim (a round trip and a commit on PostgreSQL), and no more than that.
func TestWorkersFindTheNextDeliveryClaimed(t *testing.T) {
	clock := newFakeClock()
	release := make(chan struct{})
	arrived := make(chan struct{}, 16)
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		arrived <- struct{}{}
		<-release
		w.WriteHeader(http.StatusAccepted)
	})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the recipient closes, should the test fail
	var q *countingQueue
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Workers = 2
		q = &countingQueue{DB: c.Queue.(*store.DB)}
		c.Queue = q
	})
	for i := 1; i <= 10; i++ {
		f.enqueue(t, i, "") // no lane: all due at once
	}
	run(t, f.d)
	f.d.Wake()
	for range 2 {
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("the workers' attempts never reached the recipient")
		}
	}
	// Both workers wait for the recipient; two more are claimed for them.
	waitFor(t, "two deliveries claimed ahead of the busy workers", func() bool {
		held, _, _ := q.counts()
		return held == 4
	})
	unblock()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })
	if _, peak, _ := q.counts(); peak != 4 {
		t.Errorf("the dispatcher held up to %d deliveries with 2 workers, want 4", peak)
	}
	if n := len(rc.requests()); n != 10 {
		t.Errorf("recipient got %d requests, want 10", n)
	}
}

// TestFanOutReadsItsActivityOnce checks that deliveries of one activity to
// many recipients do not read the activity from the store again for each:
// its stored body never changes.
func TestFanOutReadsItsActivityOnce(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, nil)
	f, q := newCountingFixture(t, clock, rc.inbox, 4)
	// Two activities, each to 30 recipients, queued one after the other.
	const n = 30
	for a := 1; a <= 2; a++ {
		id, body := activityBody(a)
		targets := make([]store.DeliveryTarget, n)
		for i := range targets {
			iri := fmt.Sprintf("http://p%d.example/actors/a", i)
			f.inboxes.mu.Lock()
			f.inboxes.m[iri] = rc.inbox
			f.inboxes.mu.Unlock()
			targets[i] = store.DeliveryTarget{Recipient: iri, OrderingKey: "case-1"}
		}
		if err := f.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: testActorName, Body: body, Deliveries: targets}, nil); err != nil {
			t.Fatal(err)
		}
	}
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })
	got := rc.requests()
	if len(got) != 2*n {
		t.Fatalf("recipient got %d requests, want %d", len(got), 2*n)
	}
	wantOwnBodies(t, got)
	// At most one read per worker and activity (workers that start at
	// once may each read it); before, one per delivery.
	if _, _, reads := q.counts(); reads > 2*4 {
		t.Errorf("%d deliveries of 2 activities read them %d times, want at most 8", 2*n, reads)
	}
}

// TestClaimedDeliveriesReadTheirActivitiesTogether checks that the
// deliveries of different activities claimed at once (the acknowledgements
// of a burst of reports) have their activities read in one read, not one
// each, and that each delivery still carries its own activity's body.
func TestClaimedDeliveriesReadTheirActivitiesTogether(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, nil)
	f, q := newCountingFixture(t, clock, rc.inbox, 4)
	const n = 6 // fewer than the workers and the deliveries claimed ahead: one claim
	for i := 1; i <= n; i++ {
		f.enqueue(t, i, "")
	}
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })
	got := rc.requests()
	if len(got) != n {
		t.Fatalf("recipient got %d requests, want %d", len(got), n)
	}
	wantOwnBodies(t, got)
	q.mu.Lock()
	reads, batchReads, batchRead := q.reads, q.batchReads, q.batchRead
	q.mu.Unlock()
	if reads != 0 || batchReads != 1 || batchRead != n {
		t.Errorf("%d deliveries of %d activities claimed at once: %d reads of one activity, %d of several (%d activities); want 0, and 1 of %d",
			n, n, reads, batchReads, batchRead, n)
	}
}

// failingQueue is a queue whose reads of the due deliveries fail, as a
// store that cannot serve for a while.
type failingQueue struct {
	*store.DB
	mu    sync.Mutex
	calls int
}

func (q *failingQueue) DueDeliveries(context.Context, time.Time, int) ([]store.Delivery, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls++
	return nil, &store.UnavailableError{Reason: "the database is read-only", Err: fmt.Errorf("SQLSTATE 25006")}
}

func (q *failingQueue) asked() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.calls
}

// TestAFailingQueueIsLoggedOnceAMinute: the dispatcher asks for the due
// deliveries again and again while the store fails; the failure is
// logged once, not once per try.
func TestAFailingQueueIsLoggedOnceAMinute(t *testing.T) {
	var q *failingQueue
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", func(c *DelivererConfig) {
		q = &failingQueue{DB: c.Queue.(*store.DB)}
		c.Queue = q
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx) }()
	waitFor(t, "the dispatcher asked five times", func() bool { return q.asked() >= 5 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(f.logs.String(), "read due deliveries"); got != 1 {
		t.Errorf("%d log lines for %d failed reads, want 1:\n%s", got, q.asked(), f.logs.String())
	}
}
