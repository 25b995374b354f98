package bench

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// LimitInboxPath is the path of LimitInbox's one inbox.
const LimitInboxPath = "/actors/vendor/inbox"

// limitInboxMaxBody bounds a body as the node's default does.
const limitInboxMaxBody = 1 << 20

// LimitInbox is InboxLimit's work behind HTTP: an inbox on 127.0.0.1 that,
// for every POST, reads the body, verifies its draft-cavage signature and
// Digest with actor.Verifier (the sender's key fetched once from its actor
// document and then answered from memory, as the node's key cache does),
// parses the activity with vocab.Parse and stores it durably with
// store.DB.AcceptInbound (bbolt, fsync on, the group committer), and only
// then answers 202. It does nothing else: no protocol state, no replies,
// no audit, no middleware.
//
// It takes the load generator's load like the node's inbox, as a separate
// process on the same cores, so the node's rate over LimitInbox's rate in
// the same run is what the node's own processing leaves of what an inbox
// with this machine's HTTP serving and load generator can reach; the node's
// rate over InboxLimit's is that and the cost of HTTP and of the load
// generator's share of the cores besides.
type LimitInbox struct {
	URL string

	db  *store.DB
	v   *actor.Verifier
	srv *http.Server
}

// StartLimitInbox opens a store under dir and serves LimitInbox on ln.
func StartLimitInbox(dir string, ln net.Listener) (*LimitInbox, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("limit inbox: generate key: %w", err)
	}
	base := "http://" + ln.Addr().String()
	fetcher, err := actor.NewFetcher(actor.FetcherOptions{
		Client:    actor.SafeClientOptions{AllowPrivate: true},
		Signer:    func() (string, *rsa.PrivateKey) { return base + "/actors/vendor#main-key", key },
		PlainHTTP: true,
	})
	if err != nil {
		return nil, fmt.Errorf("limit inbox: %w", err)
	}
	keys, err := actor.NewKeyFetcher(actor.KeyFetcherOptions{Cache: &memoryKeys{keys: map[string]actor.CachedKey{}}, Fetcher: fetcher})
	if err != nil {
		return nil, fmt.Errorf("limit inbox: %w", err)
	}
	v, err := actor.NewVerifier(actor.VerifierOptions{Keys: keys, Host: ln.Addr().String(), Scheme: "http"})
	if err != nil {
		return nil, fmt.Errorf("limit inbox: %w", err)
	}
	db, err := store.Open(filepath.Join(dir, "limit-inbox.db"), store.Options{})
	if err != nil {
		return nil, fmt.Errorf("limit inbox: %w", err)
	}
	if err := db.PutLocalActor(context.Background(), store.LocalActor{Name: "vendor", Type: "Organization",
		KeyID: base + "/actors/vendor#main-key", CreatedAt: time.Now()}); err != nil {
		db.Close()
		return nil, fmt.Errorf("limit inbox: %w", err)
	}
	li := &LimitInbox{URL: base, db: db, v: v}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+LimitInboxPath, li.receive)
	li.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go li.srv.Serve(ln)
	return li, nil
}

// Close stops serving and closes the store.
func (li *LimitInbox) Close() error {
	return errors.Join(li.srv.Close(), li.db.Close())
}

// receive is InboxLimit's step for one request, with the refusals an inbox
// answers when a step fails.
func (li *LimitInbox) receive(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > limitInboxMaxBody {
		http.Error(w, "the body is too large", http.StatusRequestEntityTooLarge)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limitInboxMaxBody+1))
	if err != nil || len(body) > limitInboxMaxBody {
		http.Error(w, "the body could not be read within the limit", http.StatusBadRequest)
		return
	}
	signer, err := li.v.Verify(r.Context(), r, body)
	if err != nil {
		http.Error(w, "signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	doc, err := vocab.Parse(body)
	if err != nil || doc.Activity() == nil {
		http.Error(w, "the body is not an activity", http.StatusBadRequest)
		return
	}
	act := doc.Activity()
	if _, err := li.db.AcceptInbound(r.Context(), store.Inbound{ID: act.ID, Recipient: "vendor", Sender: signer.Owner,
		KeyID: signer.KeyID, Body: body, Semantic: "SubmitReport", ReceivedAt: time.Now()}, nil); err != nil {
		http.Error(w, "store: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// memoryKeys is a KeyCache in memory: the limit inbox's keys live as long
// as its process.
type memoryKeys struct {
	mu   sync.Mutex
	keys map[string]actor.CachedKey
}

func (m *memoryKeys) RemoteKey(_ context.Context, keyID string) (actor.CachedKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[keyID]
	if !ok {
		return actor.CachedKey{}, fmt.Errorf("%w: %s", actor.ErrKeyNotCached, keyID)
	}
	return k, nil
}

func (m *memoryKeys) PutRemoteKey(_ context.Context, k actor.CachedKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[k.KeyID] = k
	return nil
}
