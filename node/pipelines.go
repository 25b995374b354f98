package node

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/inbox"
	"github.com/openvultron/vultron/node/federation"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// newID returns a fresh IRI on this node under kind ("activities",
// "objects"): 16 bytes, the first six of them the time and the other ten
// random, base32 without padding, lower case.
func (n *Node) newID(kind string) string {
	// Six bytes of milliseconds, then ten random ones (80 bits), in an
	// encoding that sorts as the bytes do: the ids a node mints one after
	// another land next to each other in the store's indexes, so a commit
	// rewrites one index page for them instead of one page each.
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.cfg.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand does not fail on supported platforms; an id that is
		// not random would be worse than stopping.
		panic("node: crypto/rand: " + err.Error())
	}
	return n.cfg.PublicURL + "/" + kind + "/" + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// buildPipelines creates the inbox and outbox pipelines and the delivery
// workers.
func (n *Node) buildPipelines() error {
	engine := cases.NewEngine(cases.Config{
		Now:            n.cfg.Now,
		PublicURL:      n.cfg.PublicURL,
		NewID:          n.newID,
		DefaultEmbargo: n.cfg.DefaultEmbargo,
		MaxEmbargo:     n.cfg.MaxEmbargo,
		Roles:          n.roles,
		Provision:      n.provisionCaseActor,
		Provisioned:    n.provisionedCaseActor,
		IsLocal:        n.isLocal,
		// Every node's inbox takes an activity of the largest size and the
		// margin its announcement needs (see inboxLimit).
		MaxAnnouncement: int(n.inboxLimit()),
		Sync:            n.cfg.ReplicaSync,
	})
	n.engine = engine
	syncer, err := cases.NewSyncer(cases.SyncerConfig{Store: n.db, Engine: engine, Fetch: federation.LedgerFetcher{Local: n.LocalActor, CheckURL: n.policy.CheckURL, Fetcher: n.fetcher}, Now: n.cfg.Now, Logger: n.log})
	if err != nil {
		return err
	}

	inboxes := outbox.NewActorInboxes(n.policy.FetchFunc(n.fetcher.FetchDocument), 0, n.cfg.Now)
	for _, l := range n.locals {
		if err := inboxes.AddLocal(l.ID, l.Inbox); err != nil {
			return err
		}
	}
	policy := n.cfg.Retry
	if policy == (outbox.RetryPolicy{}) {
		policy = outbox.DefaultRetryPolicy()
	}
	client := deliveryClient(n.cfg)
	client.Transport = n.policy.Transport(client.Transport)
	var attemptTimeout time.Duration // the deliverer's default
	if lease := n.cfg.DeliveryLease; lease > 0 {
		attemptTimeout = min(outbox.DefaultAttemptTimeout, lease/2)
	}
	n.deliverer, err = outbox.NewDeliverer(outbox.DelivererConfig{
		AttemptTimeout: attemptTimeout,
		Queue:          n.db,
		Keys:           signingKeys{n: n},
		Inboxes:        inboxes,
		Client:         client,
		Policy:         policy,
		Workers:        n.cfg.DeliveryWorkers,
		// n.inbox is built below, before any service runs.
		Busy:    func() bool { return n.inbox != nil && n.inbox.Busy() },
		Logger:  n.log,
		Now:     n.cfg.Now,
		Version: n.cfg.Version,
		// A delivery of a case's content to an actor the case removed
		// after it was queued is not sent (cases.Withdrawn).
		Withdrawn: func(ctx context.Context, d store.Delivery, a store.StoredActivity) (string, error) {
			return cases.CheckWithdrawn(ctx, n.db, d, a)
		},
	})
	if err != nil {
		return err
	}
	n.services = append(n.services,
		service{name: "delivery", run: n.deliverer.Run},
		service{name: "dedup-prune", run: n.pruneDedup, leader: true},
		service{name: "fan-out", run: n.resumeFanouts, leader: true},
		service{name: "audit", run: n.audit.run},
		service{name: "replica-sync", run: func(ctx context.Context) error { syncer.Run(ctx); return nil }, leader: true})
	if n.db.Shared() {
		// Deliveries another process queues are due here too: its commits
		// wake this process's workers as its own do.
		n.services = append(n.services, service{name: "key-watch", run: n.watchKeys})
		n.services = append(n.services, service{name: "delivery-wake", run: func(ctx context.Context) error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-n.db.Changed():
					n.deliverer.Wake()
				}
			}
		}})
	}

	plain, err := social.New(social.Config{
		ManuallyApproves: func(name string) bool { return !n.openFollowers(name) },
		IsCaseActor:      func(name string) bool { return strings.HasPrefix(name, cases.CaseActorPrefix) },
		PublicURL:        n.cfg.PublicURL,
		KnownCaseActor:   cases.KnownCaseActor,
		Published: func(tx *store.ReadTx, tracking string) (bool, error) {
			// What the publication surface serves (made after the
			// pipelines; asked only once the node serves).
			return n.publication.Published(tx, tracking)
		},
		Now: n.cfg.Now,
	})
	if err != nil {
		return err
	}
	// A Follow whose delivery is given up fails with the dead letter, and
	// is pending again when the dead letter is retried.
	n.db.OnDeadLetter(plain.FollowDeadLetter)
	n.inbox, err = inbox.New(inbox.Config{
		Social:     plain,
		FetchActor: n.fetchActorDocument,
		Store:      n.db,
		Engine:     engine,
		Verifier:   n.verifier,
		Local:      n.LocalActor,
		IsLocal:    n.isLocal,
		MaxBody:    n.inboxLimit(),
		NewID:      func() string { return n.newID("activities") },
		Queued:     n.deliverer.Wake,
		Now:        n.cfg.Now,
		Logger:     n.log,
		ClientIP:   n.clientIP,
		// A peer's announced key rotation refreshes its cached keys.
		ActorUpdated: n.refreshActorKeys,
	})
	if err != nil {
		return err
	}
	n.submitter, err = outbox.NewSubmitter(outbox.SubmitConfig{
		Social:     plain,
		Store:      n.db,
		Engine:     engine,
		Local:      n.LocalActor,
		NewID:      n.newID,
		Queued:     n.deliverer.Wake,
		FetchActor: n.fetchActor,
		// A copy that may be behind is brought to the Case Actor's tail,
		// within a few seconds, before an action it refused is refused.
		CatchUp: func(ctx context.Context, caseID string) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return syncer.CatchUp(ctx, caseID)
		},
		// A recipient is resolved as its delivery will resolve it, and the
		// delivery then finds its inbox in the cache.
		ResolveRecipient: func(ctx context.Context, iri string) error {
			if n.isLocal(iri) {
				name := strings.TrimPrefix(iri, n.cfg.PublicURL+"/actors/")
				_, ok, err := n.LocalActor(ctx, name)
				switch {
				case err != nil:
					return err // looked up again when the delivery is tried
				case !ok:
					return outbox.Permanent(noLocalActor(name))
				}
				return nil
			}
			_, err := inboxes.Inbox(ctx, iri)
			return err
		},
		Now:    n.cfg.Now,
		Logger: n.log,
	})
	return err
}

// noLocalActor is the error of a recipient on this node that is not one of
// its actors: what fetching its document would answer, 404.
type noLocalActor string

func (e noLocalActor) Error() string   { return fmt.Sprintf("this node has no actor %q", string(e)) }
func (e noLocalActor) StatusCode() int { return http.StatusNotFound }

// fetchActorDocument fetches an actor's document (with a signed GET
// through the SSRF-safe client), or a local actor's own.
func (n *Node) fetchActorDocument(ctx context.Context, iri string) (*vocab.Actor, error) {
	var body []byte
	if l, ok := n.localByID(iri); ok {
		doc, err := l.Document()
		if err != nil {
			return nil, err
		}
		body = doc
	} else {
		if err := n.policy.CheckURL(iri); err != nil {
			return nil, err
		}
		var err error
		if body, err = n.fetcher.FetchDocument(ctx, iri); err != nil {
			return nil, err
		}
	}
	doc, err := vocab.Parse(body)
	if err != nil {
		return nil, &actor.DocumentError{URL: iri, Reason: "the document is not ActivityStreams", Err: err}
	}
	a, ok := doc.Object.(*vocab.Actor)
	if !ok {
		return nil, &actor.DocumentError{URL: iri, Reason: fmt.Sprintf("it is a %s, not an actor", problem.Printable(doc.Object.Common().Type, 80))}
	}
	return a, nil
}

// fetchActor fetches an actor's document as fetchActorDocument does and
// returns the part of it a message carries inline: id, type, name and
// preferredUsername.
func (n *Node) fetchActor(ctx context.Context, iri string) (*vocab.Actor, error) {
	a, err := n.fetchActorDocument(ctx, iri)
	if err != nil {
		return nil, err
	}
	out := &vocab.Actor{}
	out.ID, out.Type, out.Name, out.PreferredUsername = a.ID, a.Type, a.Name, a.PreferredUsername
	return out, nil
}

// localByID returns the configured local actor with the given id.
func (n *Node) localByID(id string) (actor.Local, bool) {
	n.localsMu.RLock()
	defer n.localsMu.RUnlock()
	for _, l := range n.locals {
		if l.ID == id {
			return l, true
		}
	}
	return actor.Local{}, false
}

// roles returns the CVD roles a configured local actor takes in the cases
// it opens.
func (n *Node) roles(name string) cvdstate.RoleSet {
	for _, ac := range n.cfg.Actors {
		if ac.Name == name {
			if ac.Roles != 0 {
				return ac.Roles
			}
			return DefaultRoles(ac.Type)
		}
	}
	return cvdstate.Observer
}

// openFollowers reports whether configured actor name accepts every
// Follow at once.
func (n *Node) openFollowers(name string) bool {
	for _, ac := range n.cfg.Actors {
		if ac.Name == name {
			return ac.OpenFollowers
		}
	}
	return false
}

// isLocal reports whether an actor id is one of this node's actors.
func (n *Node) isLocal(id string) bool {
	return strings.HasPrefix(id, n.cfg.PublicURL+"/actors/")
}

// provisionCaseActor creates (or loads) the key of a new Case Actor and
// returns its store record; the engine stores the record in the
// transaction that opens the case.
func (n *Node) provisionCaseActor(name string) (store.LocalActor, error) {
	key, created, err := actor.LoadOrCreateKey(n.keyDir, name)
	if err != nil {
		return store.LocalActor{}, err
	}
	if created {
		// Stored before the case that names it commits, so that every
		// process of a shared node can sign as its Case Actor.
		if err := n.shareKey(context.Background(), name); err != nil {
			return store.LocalActor{}, err
		}
	}
	return n.caseActorRecord(name, key)
}

// provisionedCaseActor returns the record of a Case Actor whose key
// provisionCaseActor made; it never makes a key.
func (n *Node) provisionedCaseActor(name string) (store.LocalActor, bool, error) {
	key, found, err := actor.LoadKey(n.keyDir, name)
	if err == nil && !found {
		// Another process of a shared node may have made it.
		if _, err := n.fetchSharedKey(context.Background(), name); err != nil {
			return store.LocalActor{}, false, err
		}
		key, found, err = actor.LoadKey(n.keyDir, name)
	}
	if err != nil || !found {
		return store.LocalActor{}, false, err
	}
	la, err := n.caseActorRecord(name, key)
	return la, err == nil, err
}

// caseActorRecord is the store's record of Case Actor name with key.
func (n *Node) caseActorRecord(name string, key *rsa.PrivateKey) (store.LocalActor, error) {
	l, err := actor.NewLocal(n.cfg.PublicURL, name, actor.Service, key)
	if err != nil {
		return store.LocalActor{}, err
	}
	pem, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		return store.LocalActor{}, err
	}
	return store.LocalActor{Name: name, Type: string(actor.Service), KeyID: l.KeyID, PublicKeyPEM: pem, CreatedAt: n.cfg.Now().UTC()}, nil
}

// inboxLimit is the largest body the inbox takes: the largest activity
// (MaxInboxBytes) and the margin a Case Actor's announcement of such an
// activity needs, so that whatever a Case Actor records reaches every
// participant whose node has the same limit.
func (n *Node) inboxLimit() int64 { return n.cfg.MaxInboxBytes + cases.AnnouncementMargin }

// signingKeys gives the delivery workers the keys of the local actors.
type signingKeys struct{ n *Node }

func (k signingKeys) SigningKey(ctx context.Context, name string) (string, *rsa.PrivateKey, error) {
	l, ok, err := k.n.LocalActor(ctx, name)
	switch {
	case err != nil:
		return "", nil, err // the delivery is tried again
	case !ok:
		return "", nil, fmt.Errorf("%w %q", outbox.ErrNoSigningKey, name)
	}
	return l.KeyID, l.Key, nil
}

// Ed25519Key gives the delivery workers the Ed25519 keys of the local
// actors, for peers that verify RFC 9421 Ed25519 signatures.
func (k signingKeys) Ed25519Key(name string) (actor.Ed25519Key, bool) {
	l, ok := k.n.Local(name)
	if !ok {
		return actor.Ed25519Key{}, false
	}
	return l.Ed25519()
}

// keyCache adapts the store's remote key bucket to the actor package's
// KeyCache. A key seen for the first time, and a key whose PEM changed,
// are recorded in the audit log (kind "key") by the store, in the
// transaction that stores them.
type keyCache struct {
	db *store.DB
}

func (c keyCache) RemoteKey(ctx context.Context, keyID string) (actor.CachedKey, error) {
	k, err := c.db.RemoteKey(ctx, keyID)
	if errors.Is(err, store.ErrNotFound) {
		return actor.CachedKey{}, fmt.Errorf("%w: %s", actor.ErrKeyNotCached, keyID)
	}
	if err != nil {
		return actor.CachedKey{}, err
	}
	return actor.CachedKey{KeyID: k.KeyID, Owner: k.Owner, PublicKeyPEM: k.PublicKeyPEM, FetchedAt: k.FetchedAt}, nil
}

// PutRemoteKey stores k; the store records a new or changed key in the
// audit log in the same transaction.
func (c keyCache) PutRemoteKey(ctx context.Context, k actor.CachedKey) error {
	return c.db.PutRemoteKey(ctx, store.RemoteKey{KeyID: k.KeyID, Owner: k.Owner, PublicKeyPEM: k.PublicKeyPEM, FetchedAt: k.FetchedAt})
}

// dedupRetention is how long the dedup records that older versions wrote
// beside every received activity are kept: longer than any peer's retry
// horizon, as they were.
const dedupRetention = 30 * 24 * time.Hour

// pruneDedup removes the dedup records older versions wrote, once they are
// older than dedupRetention, at start and then daily; with none left, each
// run is one read. The activities stay stored, and every id seen before is
// recognised through its activity.
func (n *Node) pruneDedup(ctx context.Context) error {
	tick := time.NewTicker(24 * time.Hour)
	defer tick.Stop()
	for {
		removed, err := n.db.PruneDedup(ctx, n.cfg.Now().Add(-dedupRetention))
		if err != nil && ctx.Err() == nil {
			n.log.Error().Err(err).Msg("prune inbox dedup records")
		} else if removed > 0 {
			n.log.Info().Int("removed", removed).Msg("pruned inbox dedup records")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// fanoutPoll is how often the node looks for fan-outs to followers that
// no request is queueing: one read when there is none.
const fanoutPoll = 30 * time.Second

// resumeFanouts queues, at start and then every fanoutPoll, the
// deliveries of the fan-outs to followers that a crash, a stop or a store
// that failed left in progress (social.RunFanouts), a batch per
// transaction, from where each stands.
func (n *Node) resumeFanouts(ctx context.Context) error {
	tick := time.NewTicker(fanoutPoll)
	defer tick.Stop()
	for {
		if err := social.RunFanouts(ctx, n.db, "", social.FanoutBatch, n.deliverer.Wake); err != nil && ctx.Err() == nil {
			n.log.Error().Err(err).Msg("queue the deliveries to followers left in progress; tried again later")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// deliveryClient returns the client the delivery workers send with. It
// keeps an idle connection per worker to each host: deliveries to one
// busy peer (a coordinator, every participant of a case on one node) run
// on every worker at once, and with net/http's default of two idle
// connections per host the others would dial anew for each request.
func deliveryClient(cfg Config) *http.Client {
	return actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: cfg.AllowPrivatePeers, Timeout: 30 * time.Second,
		MaxRedirects: -1, RootCAs: cfg.RootCAs, IdleConnsPerHost: cfg.DeliveryWorkers})
}
