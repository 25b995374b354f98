package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// DrainResult is the outcome of one Drain.
type DrainResult struct {
	// Blocked is the number of deliveries to the dead peer in the queue.
	Blocked int `json:"blocked"`
	// Healthy is the number of deliveries to healthy peers drained.
	Healthy int `json:"healthy"`
	// Seconds runs from the enqueue of the healthy deliveries to the last
	// one verified by the sink.
	Seconds float64 `json:"seconds"`
	// Polls is how many times the Deliverer asked the store for due
	// deliveries during the drain; PollMs and PollMaxMs are the mean and
	// the longest time one took.
	Polls     int64   `json:"polls"`
	PollMs    float64 `json:"pollMs"`
	PollMaxMs float64 `json:"pollMaxMs"`
	// DeadAttempts counts requests the dead peer received during the
	// drain: none of its deliveries is due, so it must be 0.
	DeadAttempts int64 `json:"deadAttempts"`
}

// Drain measures how fast a node's delivery pipeline drains deliveries to
// healthy peers while blocked deliveries to a dead peer sit in the queue
// before them. The store is durable (fsync on) and sealed with a data key,
// as a node ships; the Deliverer runs with the node's defaults (8 workers)
// except its client, which must reach loopback.
//
// The dead peer (a loopback server answering 503) has blocked deliveries,
// queued first and left as a node leaves them after one failed attempt
// each: half unordered, each waiting for a retry an hour later; half in
// lanes of 100 (one per case), whose heads wait for that retry and whose
// other deliveries wait behind their heads. Then one transaction queues
// healthy deliveries, healthy/lanes activities to the lanes participants
// of one case at the verifying sink (one lane per participant, so each
// lane drains one delivery at a time), and the clock runs until the sink
// has verified all of them.
func Drain(dir string, blocked, healthy, lanes int, timeout time.Duration) (DrainResult, error) {
	if lanes <= 0 || healthy%lanes != 0 {
		return DrainResult{}, fmt.Errorf("drain: %d healthy deliveries do not split into %d lanes", healthy, lanes)
	}
	ctx := context.Background()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return DrainResult{}, err
	}
	dataKey := make([]byte, store.DataKeySize)
	if _, err := rand.Read(dataKey); err != nil {
		return DrainResult{}, err
	}
	dead, err := newDeadPeer()
	if err != nil {
		return DrainResult{}, err
	}
	defer dead.Close()
	path := filepath.Join(dir, "drain.db")
	const actorName = "case-drain"
	actorID := "http://127.0.0.1:7001/actors/" + actorName
	if err := queueDeadBacklog(ctx, path, dataKey, actorName, actorID, dead.url+"/actors/gone", blocked); err != nil {
		return DrainResult{}, err
	}

	db, err := store.Open(path, store.Options{DataKey: dataKey})
	if err != nil {
		return DrainResult{}, err
	}
	defer db.Close()
	sink, err := NewSink(&key.PublicKey, nil)
	if err != nil {
		return DrainResult{}, err
	}
	defer sink.Close()
	q := &timedQueue{DB: db}
	d, err := outbox.NewDeliverer(outbox.DelivererConfig{
		Queue: q, Keys: rsaKey{actorID + "#main-key", key}, Inboxes: sinkInboxes{},
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, DisableCompression: true}},
		Logger: zerolog.Nop(),
	})
	if err != nil {
		return DrainResult{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- d.Run(rctx) }()
	defer func() {
		cancel()
		<-ran
	}()

	caseID := "http://127.0.0.1:7001/cases/drain"
	var outs []store.Outbound
	for i := range healthy / lanes {
		id := fmt.Sprintf("http://127.0.0.1:7001/activities/drain-%d", i)
		targets := make([]store.DeliveryTarget, lanes)
		for j := range targets {
			targets[j] = store.DeliveryTarget{Recipient: fmt.Sprintf("%s/p/%d", sink.URL, j), OrderingKey: caseID}
		}
		outs = append(outs, store.Outbound{ID: id, Actor: actorName, Body: drainBody(id, actorID, caseID),
			Semantic: "AnnounceCaseLedgerEntry", Deliveries: targets})
	}
	q.reset()
	deadBefore := dead.requests.Load()
	done := sink.expect(int64(healthy))
	start := time.Now()
	if err := db.Update(ctx, func(tx *store.Tx) error {
		for _, out := range outs {
			if err := tx.EnqueueOutbound(out); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return DrainResult{}, fmt.Errorf("drain: queue the healthy deliveries: %w", err)
	}
	d.Wake()
	select {
	case <-done:
	case <-time.After(timeout):
		return DrainResult{}, fmt.Errorf("drain: %d of %d healthy deliveries verified after %v", sink.verified.Load(), healthy, timeout)
	}
	el := time.Since(start)
	polls, total, longest := q.stats()
	r := DrainResult{Blocked: blocked, Healthy: healthy, Seconds: el.Seconds(), Polls: polls,
		PollMaxMs: float64(longest) / 1e6, DeadAttempts: dead.requests.Load() - deadBefore}
	if polls > 0 {
		r.PollMs = float64(total) / float64(polls) / 1e6
	}
	if n := sink.refused.Load(); n != 0 {
		return r, fmt.Errorf("drain: the sink refused %d deliveries", n)
	}
	return r, nil
}

// queueDeadBacklog creates the store at path with the actor and n
// deliveries to recipient, in the state described at Drain. It uses a store
// without fsync, closed before the measurement.
func queueDeadBacklog(ctx context.Context, path string, dataKey []byte, actorName, actorID, recipient string, n int) error {
	db, err := store.Open(path, store.Options{DataKey: dataKey, NoSync: true})
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: actorName, Type: "Service", KeyID: actorID + "#main-key", CreatedAt: time.Now()}); err != nil {
		return err
	}
	const perTx = 500
	for start := 0; start < n; start += perTx {
		err := db.Update(ctx, func(tx *store.Tx) error {
			for i := start; i < min(start+perTx, n); i++ {
				ordering := ""
				if i%2 == 0 {
					ordering = fmt.Sprintf("http://127.0.0.1:7001/cases/stuck-%d", (i/2)/100)
				}
				id := fmt.Sprintf("http://127.0.0.1:7001/activities/stuck-%d", i)
				if err := tx.EnqueueOutbound(store.Outbound{ID: id, Actor: actorName, Body: drainBody(id, actorID, ordering),
					Semantic: "AnnounceCaseLedgerEntry", Deliveries: []store.DeliveryTarget{{Recipient: recipient, OrderingKey: ordering}}}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("drain: queue deliveries to the dead peer: %w", err)
		}
	}
	// Every head fails once and waits an hour, as after a 503.
	retryAt := time.Now().Add(time.Hour)
	for {
		due, err := db.DueDeliveries(ctx, time.Now(), 1000)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			break
		}
		for _, d := range due {
			if err := db.RetryDelivery(ctx, d.ID, retryAt, "503 Service Unavailable"); err != nil {
				return err
			}
		}
	}
	if c, err := db.PendingCount(ctx); err != nil || c != n {
		return fmt.Errorf("drain: %d deliveries to the dead peer queued (%v), want %d", c, err, n)
	}
	return db.Close()
}

// drainBody is an Announce of a ledger entry of about a kilobyte, like
// the ones a Case Actor sends.
func drainBody(id, actorID, caseID string) []byte {
	return fmt.Appendf(nil, `{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","id":%q,"type":"Announce","actor":%q,"context":%q,"object":{"type":"CaseLedgerEntry","caseId":%q,"content":%q}}`,
		id, actorID, caseID, caseID, fmt.Sprintf("%0900d", 0))
}

// timedQueue is the store as the Deliverer's queue, timing every poll.
type timedQueue struct {
	*store.DB
	mu      sync.Mutex
	polls   int64
	total   time.Duration
	longest time.Duration
}

// DueDeliveries is store.DB.DueDeliveries, timed.
func (q *timedQueue) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error) {
	start := time.Now()
	ds, err := q.DB.DueDeliveries(ctx, now, limit)
	took := time.Since(start)
	q.mu.Lock()
	q.polls++
	q.total += took
	q.longest = max(q.longest, took)
	q.mu.Unlock()
	return ds, err
}

func (q *timedQueue) reset() {
	q.mu.Lock()
	q.polls, q.total, q.longest = 0, 0, 0
	q.mu.Unlock()
}

func (q *timedQueue) stats() (int64, time.Duration, time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.polls, q.total, q.longest
}

// deadPeer is a loopback server that answers every request 503.
type deadPeer struct {
	url      string
	srv      *http.Server
	requests atomic.Int64
}

func newDeadPeer() (*deadPeer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dead peer: listen: %w", err)
	}
	p := &deadPeer{url: "http://" + ln.Addr().String()}
	p.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	})}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *deadPeer) Close() error { return p.srv.Close() }
