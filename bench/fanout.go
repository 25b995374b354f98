package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// Sink is a loopback HTTP server standing in for many participants' nodes:
// every POST to /p/I/inbox has its draft-cavage signature and Digest
// verified (actor.Verifier, with the sender's public key known in advance)
// and is answered 202, or 401 when verification fails.
type Sink struct {
	URL      string
	srv      *http.Server
	v        *actor.Verifier
	verified atomic.Int64
	refused  atomic.Int64
	done     chan struct{}
	want     atomic.Int64
}

// NewSink starts a sink that verifies signatures made with pub, or with
// ed for a key id of an Ed25519 key (#ed25519-key) when ed is not nil.
func NewSink(pub *rsa.PublicKey, ed ed25519.PublicKey) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: listen: %w", err)
	}
	s := &Sink{URL: "http://" + ln.Addr().String()}
	s.v, err = actor.NewVerifier(actor.VerifierOptions{Keys: sinkKeys{rsa: pub, ed: ed}, Host: ln.Addr().String(), Scheme: "http"})
	if err != nil {
		ln.Close()
		return nil, err
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *Sink) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/inbox") {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if _, err := s.v.Verify(r.Context(), r, body); err != nil {
		s.refused.Add(1)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	if s.verified.Add(1) == s.want.Load() {
		close(s.done)
	}
}

// expect arms the sink to signal when n more deliveries have verified.
func (s *Sink) expect(n int64) <-chan struct{} {
	s.done = make(chan struct{})
	s.want.Store(s.verified.Load() + n)
	return s.done
}

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

// sinkKeys resolves the Case Actor's key ids for the sink: its Ed25519
// key id to ed, any other to rsa.
type sinkKeys struct {
	rsa *rsa.PublicKey
	ed  ed25519.PublicKey
}

func (k sinkKeys) ResolveKey(_ context.Context, keyID string, _ bool) (actor.PublicKey, error) {
	owner, frag, _ := strings.Cut(keyID, "#")
	if frag == actor.Ed25519MainFragment && k.ed != nil {
		return actor.PublicKey{ID: keyID, Owner: owner, Key: k.ed}, nil
	}
	return actor.PublicKey{ID: keyID, Owner: owner, Key: k.rsa}, nil
}

// sinkInboxes resolves the sink's participants to their inboxes without a
// fetch, as a node's inbox cache does once it has seen them; with ed25519
// they say, as other Vultron nodes' actors do, that they verify RFC 9421
// Ed25519 signatures.
type sinkInboxes struct{ ed25519 bool }

func (sinkInboxes) Inbox(_ context.Context, iri string) (string, error) { return iri + "/inbox", nil }

func (s sinkInboxes) VerifiesEd25519(string) bool { return s.ed25519 }

// rsaKey is a key source that signs with one RSA key only.
type rsaKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k rsaKey) SigningKey(context.Context, string) (string, *rsa.PrivateKey, error) {
	return k.id, k.key, nil
}

// caseActorKeys are the Case Actor's keys, as the node's key source gives
// them to its deliverer.
type caseActorKeys struct{ l actor.Local }

func (k caseActorKeys) SigningKey(context.Context, string) (string, *rsa.PrivateKey, error) {
	return k.l.KeyID, k.l.Key, nil
}

func (k caseActorKeys) Ed25519Key(string) (actor.Ed25519Key, bool) { return k.l.Ed25519() }

// FanoutResult is the outcome of one fan-out.
type FanoutResult struct {
	Recipients int     `json:"recipients"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"deliveriesPerSecond"`
	Refused    int64   `json:"refused"`
}

// Fanout is a node's delivery pipeline set up for a case event to many
// participants: a durable store (fsync on) holding the Case Actor, and an
// outbox.Deliverer with the node's default settings except its HTTP client,
// which must reach the sink on loopback (the node's own client refuses
// loopback unless --allow-private-peers is set, as the benchmark's node
// would).
type Fanout struct {
	db      *store.DB
	sink    *Sink
	cancel  context.CancelFunc
	done    chan error
	d       *outbox.Deliverer
	caseID  string
	actorID string
	n       atomic.Int64
}

// FanoutConfig configures NewFanoutWith.
type FanoutConfig struct {
	// Dir holds the bbolt file File (default fanout.db) when Store is "".
	Dir, File string
	// Store is the store's URL (postgres://...); "" means a bbolt file in
	// Dir.
	Store string
	// Workers is the number of delivery workers.
	Workers int
	// DataKey seals the store, as a node's; nil for none.
	DataKey []byte
	// Ed25519 makes the participants say they verify RFC 9421 Ed25519
	// signatures, as Vultron nodes' actors do, so the deliveries are signed
	// with Ed25519; otherwise with RSA-2048.
	Ed25519 bool
}

// NewFanout opens a store in dir and starts the delivery workers, which
// sign with RSA.
func NewFanout(dir string, workers int) (*Fanout, error) {
	return NewFanoutWith(FanoutConfig{Dir: dir, Workers: workers})
}

// OpenStore opens the store at url, or a bbolt file name in dir when url
// is "", with fsync on, sealed with dataKey when it is not nil.
func OpenStore(ctx context.Context, dir, name, url string, dataKey []byte) (*store.DB, error) {
	if url == "" {
		return store.Open(filepath.Join(dir, name), store.Options{DataKey: dataKey})
	}
	return store.OpenURL(ctx, url, store.Options{DataKey: dataKey})
}

// NewFanoutWith opens the store cfg names and starts the delivery workers.
func NewFanoutWith(cfg FanoutConfig) (*Fanout, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	if cfg.File == "" {
		cfg.File = "fanout.db"
	}
	db, err := OpenStore(ctx, cfg.Dir, cfg.File, cfg.Store, cfg.DataKey)
	if err != nil {
		return nil, err
	}
	f := &Fanout{db: db, caseID: "http://127.0.0.1:7001/cases/bench", done: make(chan error, 1)}
	l, err := actor.NewLocal("http://127.0.0.1:7001", "case-bench", actor.Service, key)
	if err != nil {
		db.Close()
		return nil, err
	}
	f.actorID = l.ID
	var edPub ed25519.PublicKey
	if cfg.Ed25519 {
		ed, _ := l.Ed25519()
		edPub = ed.Key.Public().(ed25519.PublicKey)
	}
	if f.sink, err = NewSink(&key.PublicKey, edPub); err != nil {
		db.Close()
		return nil, err
	}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "case-bench", Type: "Service", KeyID: l.KeyID, CreatedAt: time.Now()}); err != nil {
		f.Close()
		return nil, err
	}
	f.d, err = outbox.NewDeliverer(outbox.DelivererConfig{
		Queue: db, Keys: caseActorKeys{l}, Inboxes: sinkInboxes{ed25519: cfg.Ed25519},
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64, DisableCompression: true}},
		Workers: cfg.Workers, Logger: zerolog.Nop(),
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { f.done <- f.d.Run(rctx) }()
	return f, nil
}

// Store returns the fan-out's store, for seeding it.
func (f *Fanout) Store() *store.DB { return f.db }

// Close stops the workers, the sink and the store.
func (f *Fanout) Close() error {
	if f.cancel != nil {
		f.cancel()
		<-f.done
	}
	f.sink.Close()
	return f.db.Close()
}

// Run queues one Announce(CaseLedgerEntry) to n participants, as the Case
// Actor does when it records an entry (one activity, one delivery per
// participant, in the case's lane), and waits until the sink has verified
// every delivery or timeout passed. The clock runs from the enqueue to the
// last verified delivery.
func (f *Fanout) Run(n int, timeout time.Duration) (FanoutResult, error) {
	seq := f.n.Add(1)
	id := fmt.Sprintf("%s/activities/announce-%d-%d", strings.TrimSuffix(f.actorID, "/actors/case-bench"), time.Now().UnixNano(), seq)
	body, err := json.Marshal(map[string]any{
		"@context": "https://certcc.github.io/Vultron/ns/context.jsonld",
		"id":       id, "type": "Announce", "actor": f.actorID, "context": f.caseID,
		"published": time.Now().UTC().Format(time.RFC3339),
		"object": map[string]any{
			"id": fmt.Sprintf("%s/ledger/%d", f.caseID, seq), "type": "CaseLedgerEntry", "caseId": f.caseID,
			"logIndex": seq, "disposition": "recorded", "eventType": "addnotetocase",
			"logObjectId": f.caseID + "/notes/" + fmt.Sprint(seq),
			"prevLogHash": strings.Repeat("a", 64), "entryHash": strings.Repeat("b", 64),
			"receivedAt": time.Now().UTC().Format(time.RFC3339),
			"payloadSnapshot": map[string]any{"type": "Add", "actor": f.sink.URL + "/p/0", "object": map[string]any{
				"type": "Note", "content": strings.Repeat("The fix is in review; the advisory draft is attached. ", 8)}},
		},
	})
	if err != nil {
		return FanoutResult{}, err
	}
	targets := make([]store.DeliveryTarget, n)
	for i := range targets {
		targets[i] = store.DeliveryTarget{Recipient: fmt.Sprintf("%s/p/%d", f.sink.URL, i), OrderingKey: f.caseID}
	}
	refused0 := f.sink.refused.Load()
	done := f.sink.expect(int64(n))
	start := time.Now()
	if err := f.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: "case-bench", Body: body,
		Semantic: "AnnounceCaseLedgerEntry", Deliveries: targets}, nil); err != nil {
		return FanoutResult{}, fmt.Errorf("enqueue: %w", err)
	}
	f.d.Wake()
	select {
	case <-done:
	case <-time.After(timeout):
		return FanoutResult{}, fmt.Errorf("fan-out to %d: %d delivered after %v", n, f.sink.verified.Load(), timeout)
	}
	el := time.Since(start)
	// Wait for the queue to empty (the last completions are recorded just
	// after the sink answered), so the next run starts from an empty queue.
	for t0 := time.Now(); time.Since(t0) < 10*time.Second; time.Sleep(5 * time.Millisecond) {
		if c, err := f.db.PendingCount(context.Background()); err == nil && c == 0 {
			break
		}
	}
	return FanoutResult{Recipients: n, Seconds: el.Seconds(), PerSecond: float64(n) / el.Seconds(),
		Refused: f.sink.refused.Load() - refused0}, nil
}
