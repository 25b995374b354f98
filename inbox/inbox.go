// Package inbox is the node's receive pipeline. For every POST to a local
// actor's inbox it reads the body under a size limit, verifies the HTTP
// signature (and the digest, date and host it covers), parses the activity
// strictly, binds the signer to the activity's actor and id, classifies it
// into a protocol message, applies it to the protocol state, and stores it,
// together with the replies it calls for, in one transaction. Only then does
// it answer 202. A refused request stores nothing.
//
// What is no Vultron message but a plain ActivityPub activity the node
// acts on (vocab.ClassifySocial: a Follow, its answers and its Undo,
// articles and announcements of followed actors) takes the same checks of
// signature, key owner and addressing, and is applied by package social
// instead of the case engine, in the same transaction.
package inbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Verifier proves who signed a request; *actor.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (actor.Signer, error)
}

// Config configures a Pipeline. Every field but Now and Logger is required.
type Config struct {
	Store    *store.DB
	Engine   *cases.Engine
	Verifier Verifier
	// Local returns the local actor with the given name, false when there
	// is none, and an error when it could not be looked up (the store
	// failed): the sender is then answered as for the node's failure, and
	// tries again, not told that the actor does not exist.
	Local func(ctx context.Context, name string) (actor.Local, bool, error)
	// IsLocal reports whether an actor id belongs to this node; may be
	// nil when the node's actors never write to each other.
	IsLocal func(actorID string) bool
	// MaxBody is the largest body accepted, checked before it is parsed.
	MaxBody int64
	// NewID returns a fresh activity id on this node, for replies.
	NewID func() string
	// Queued is called after replies were queued, to wake the delivery
	// workers; may be nil.
	Queued func()
	// ActorUpdated, when set, is called for a verified Update of the
	// signer's own actor (a key rotation announced): it refreshes the
	// actor's cached keys. Such an Update is answered 202 and not stored;
	// an error it returns is answered as problem.Write answers it, so
	// that the sender retries: a failure of the sender's server (its
	// documents could not be fetched) is a *problem.Error of 502 that
	// names what failed, and a failure of this node's own is answered as
	// the node's (503 or 507 with Retry-After while its store cannot
	// write, else 500), with nothing of it in the answer.
	ActorUpdated func(ctx context.Context, actorID string) error
	// ClientIP returns the IP of the client that sent a request, for the
	// audit record of what it sent; the node's one computation of it
	// (which honours trusted proxies' forwarding headers) goes here.
	// Default: the host of the request's RemoteAddr.
	ClientIP func(r *http.Request) string
	// Social applies the plain ActivityPub activities (Follow and its
	// answers, articles and announcements of followed actors) that are no
	// Vultron message; nil refuses them as before, with 422.
	Social *social.Social
	// FetchActor, when set, fetches a follower's actor document, for the
	// shared inbox it names; a failure only means no shared inbox.
	FetchActor func(ctx context.Context, iri string) (*vocab.Actor, error)
	Now        func() time.Time
	Logger     zerolog.Logger
}

// Pipeline receives activities for the node's local actors.
type Pipeline struct {
	cfg Config

	// inFlight counts the requests being received now, and lastDone is
	// when the last one ended (nanoseconds after epoch, monotonic); Busy
	// reads them.
	inFlight atomic.Int64
	lastDone atomic.Int64
	epoch    time.Time
}

// BusyLinger is how long the inbox counts as busy after a request ends: a
// peer that sends one activity after another leaves gaps shorter than this
// between them, and a delivery started in such a gap would take the CPU
// from its next request.
const BusyLinger = 5 * time.Millisecond

// New returns a Pipeline.
func New(cfg Config) (*Pipeline, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Verifier == nil || cfg.Local == nil || cfg.NewID == nil {
		return nil, errors.New("inbox: store, engine, verifier, local actors and id generator are required")
	}
	if cfg.MaxBody <= 0 {
		return nil, errors.New("inbox: the body limit must be positive")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = remoteHost
	}
	return &Pipeline{cfg: cfg, epoch: time.Now()}, nil
}

// Busy reports whether a request is being received, or one ended less than
// BusyLinger ago: peers are sending to the inbox. The node lets its delivery
// workers yield to the inbox while it is busy (see outbox.DelivererConfig.Busy).
func (p *Pipeline) Busy() bool {
	if p.inFlight.Load() > 0 {
		return true
	}
	last := p.lastDone.Load()
	return last > 0 && time.Since(p.epoch)-time.Duration(last) < BusyLinger
}

// enter counts a request in; the function it returns counts it out.
func (p *Pipeline) enter() (leave func()) {
	p.inFlight.Add(1)
	return func() {
		p.lastDone.Store(int64(time.Since(p.epoch)))
		p.inFlight.Add(-1)
	}
}

// Result describes an accepted activity.
type Result struct {
	ID        string
	Semantic  vocab.Semantic
	Duplicate bool // the same activity was already received; nothing changed
	Replies   int  // replies queued
}

// Receive runs the pipeline for a POST to the inbox of local actor name.
// It returns a *problem.Error for every refusal.
func (p *Pipeline) Receive(ctx context.Context, name string, r *http.Request) (Result, error) {
	defer p.enter()()
	local, ok, err := p.cfg.Local(ctx, name)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{}, problem.NotFound("no actor %q on this node", name)
	}
	if err := checkMediaType(r.Header.Get("Content-Type")); err != nil {
		return Result{}, err
	}
	body, err := readBody(r, p.cfg.MaxBody)
	if err != nil {
		return Result{}, err
	}
	signer, err := p.cfg.Verifier.Verify(ctx, r, body)
	if err != nil {
		return Result{}, unauthorized(err)
	}
	if !utf8.Valid(body) {
		return Result{}, problem.BadRequest("the body is not valid UTF-8")
	}
	doc, err := vocab.ParseWithLimits(body, vocab.Limits{MaxBytes: int(p.cfg.MaxBody), MaxDepth: vocab.DefaultLimits().MaxDepth})
	if err != nil {
		return Result{}, problem.Wrap(http.StatusBadRequest, err, err.Error())
	}
	act := doc.Activity()
	if act == nil {
		return Result{}, problem.Unprocessable("an inbox accepts activities, not a bare %s", doc.Object.Common().Type)
	}
	if err := actor.CheckBinding(signer, act.ID, act.Actor.ID()); err != nil {
		return Result{}, unauthorized(err)
	}
	if err := checkAuthorship(act); err != nil {
		return Result{}, err
	}
	if err := checkAddressing(act, local.ID); err != nil {
		return Result{}, err
	}
	if len(act.ID) > store.MaxIDSize {
		return Result{}, problem.BadRequest("the activity id is %d bytes, longer than the %d this node keeps", len(act.ID), store.MaxIDSize)
	}
	if act.Type == "Update" && p.cfg.ActorUpdated != nil && act.Object.ID() == signer.Owner {
		if _, isActor := act.Object.Object.(*vocab.Actor); isActor {
			if err := p.cfg.ActorUpdated(ctx, signer.Owner); err != nil {
				// Answered as ActorUpdated says: the sender's server's
				// failure as its *problem.Error, this node's own (its
				// store) as the node's, with nothing of it in the answer.
				return Result{}, err
			}
			p.cfg.Logger.Info().Str("actor", local.Name).Str("sender", signer.Owner).Str("key_id", signer.KeyID).
				Str("activity", act.ID).Msg("inbox accepted an actor update; keys refreshed")
			return Result{ID: act.ID, Semantic: vocab.Semantic("UPDATE_ACTOR")}, nil
		}
	}

	var sender social.Sender
	if act.Type == "Follow" && p.cfg.FetchActor != nil && p.cfg.Social != nil {
		if doc, err := p.cfg.FetchActor(ctx, signer.Owner); err == nil {
			sender.Inbox = doc.Inbox.ID()
			sender.SharedInbox, _ = doc.Endpoints["sharedInbox"].(string)
		} else {
			p.cfg.Logger.Warn().Str("actor", signer.Owner).Err(err).Msg("the follower's document could not be fetched; its deliveries go to its own inbox")
		}
	}

	// The activity is classified in the transaction that applies it, so
	// that what it means and what it changes are read from the same state.
	var class vocab.Classification
	var plain vocab.Semantic      // what a plain ActivityPub activity means
	var classified cases.Resolver // what class and plain were read through
	sum := sha256.Sum256(body)
	now := p.cfg.Now().UTC()
	replies := 0
	// Most accepted activities call for one reply (an acknowledgement): its
	// id is made before the accept, so that the store can read whether it
	// is taken ahead, with the batch's other reads.
	firstReply := p.cfg.NewID()
	replyID := func() string {
		if replies == 0 {
			return firstReply
		}
		return p.cfg.NewID()
	}
	res, err := p.cfg.Store.AcceptInbound(ctx, store.Inbound{
		ID:        act.ID,
		Recipient: local.Name,
		Sender:    signer.Owner,
		KeyID:     signer.KeyID,
		Digest:    hex.EncodeToString(sum[:]),
		Body:      body,
		Classify: func(tx *store.ReadTx) string {
			classified = cases.NewResolver(tx)
			class = vocab.Classify(act, classified)
			plain = ""
			if p.cfg.Social != nil && (class.Semantic == vocab.Unknown || class.Semantic == vocab.UnknownUnresolvableObject) {
				if plain = vocab.ClassifySocial(act, classified); plain != "" {
					return string(plain)
				}
			}
			return string(class.Semantic)
		},
		ReceivedAt: now,
		Local:      p.cfg.IsLocal != nil && p.cfg.IsLocal(signer.Owner),
		Remote:     p.cfg.ClientIP(r),
		ReadAhead:  append(cases.InboundReads(act, signer.Owner), store.ReadActivity(firstReply)),
	}, func(tx *store.Tx) error {
		replies = 0 // the store may run this function more than once
		if err := classified.Err(); err != nil {
			// What the activity names could not be read: what it means
			// is not known, and the store's failure is the answer.
			return fmt.Errorf("read what the activity names: %w", err)
		}
		if plain != "" {
			answers, err := p.cfg.Social.Inbound(tx, social.Local{Name: local.Name, ID: local.ID}, signer.Owner, act, plain, sender)
			if err != nil {
				return err
			}
			for _, a := range answers {
				a.Activity.Actor = vocab.RefTo(local.ID)
				if err := p.queueReply(tx, local, replyID(), cases.Reply{Activity: a.Activity, To: a.To, OrderingKey: a.OrderingKey}, now); err != nil {
					return err
				}
				replies++
			}
			return nil
		}
		res := cases.NewResolver(&tx.ReadTx)
		out, err := p.cfg.Engine.ApplyInbound(tx, cases.LocalActor{Name: local.Name, ID: local.ID}, signer.Owner,
			cases.Message{Activity: act, Class: class, Resolver: res})
		if rerr := res.Err(); rerr != nil {
			return fmt.Errorf("read what the activity names: %w", rerr)
		}
		if err != nil {
			return err
		}
		for _, reply := range out {
			if err := p.queueReply(tx, local, replyID(), reply, now); err != nil {
				return err
			}
			replies++
		}
		return nil
	})
	if errors.Is(err, store.ErrConflict) {
		return Result{}, problem.Wrap(http.StatusConflict, err, fmt.Sprintf("activity %s was already received with a different body", act.ID))
	}
	if err != nil {
		return Result{}, fmt.Errorf("inbox: accept %s: %w", act.ID, err)
	}
	if replies > 0 && p.cfg.Queued != nil {
		p.cfg.Queued()
	}
	p.cfg.Logger.Info().
		Str("actor", local.Name).Str("sender", signer.Owner).Str("key_id", signer.KeyID).
		Str("scheme", signer.Scheme).Str("activity", act.ID).Str("semantic", res.Semantic).
		Str("messages", class.Messages.String()).Bool("duplicate", res.Duplicate).Int("replies", replies).
		Msg("inbox accepted")
	return Result{ID: act.ID, Semantic: vocab.Semantic(res.Semantic), Duplicate: res.Duplicate, Replies: replies}, nil
}

// queueReply gives a reply the id id and its publication time and queues
// it for delivery in the accepting transaction.
func (p *Pipeline) queueReply(tx *store.Tx, local actor.Local, id string, reply cases.Reply, now time.Time) error {
	a := reply.Activity
	a.ID = id
	a.Published = now.Format(time.RFC3339)
	body, err := vocab.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	return tx.EnqueueOutbound(store.Outbound{
		ID:         a.ID,
		Actor:      local.Name,
		Body:       body,
		Semantic:   string(vocab.Classify(a, cases.NewResolver(&tx.ReadTx)).Semantic),
		CreatedAt:  now,
		Deliveries: []store.DeliveryTarget{{Recipient: reply.To, OrderingKey: reply.OrderingKey}},
	})
}

// checkMediaType accepts the ActivityPub media types and plain JSON.
func checkMediaType(ct string) error {
	if ct == "" {
		return problem.New(http.StatusUnsupportedMediaType, "Content-Type is missing; send application/activity+json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return problem.New(http.StatusUnsupportedMediaType, "Content-Type %q cannot be parsed", ct)
	}
	switch mt {
	case "application/activity+json", "application/ld+json", "application/json":
		return nil
	}
	return problem.New(http.StatusUnsupportedMediaType, "Content-Type %s is not accepted; send application/activity+json", mt)
}

// readBody reads the request body, refusing one over limit before reading
// more than limit+1 bytes of it.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, problem.TooLarge("the body has %d bytes; the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, problem.Wrap(http.StatusBadRequest, err, "the request body could not be read")
	}
	if int64(len(body)) > limit {
		return nil, problem.TooLarge("the body is larger than the limit of %d bytes", limit)
	}
	return body, nil
}

// unauthorized turns a signature or binding refusal into a 401 whose
// message is the refusal's reason. When the sender's key could not be
// fetched because its server did not answer, the answer is 503 instead: the
// sender's retry will succeed once its server is reachable, while a 401
// would make it give up for good.
func unauthorized(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return err // the federation policy's 403 or 429
	}
	var cacheErr *actor.CacheError
	if errors.As(err, &cacheErr) {
		// This node's store failed while the key was looked up: answered
		// as the node's own failure (503 or 507 when the store cannot
		// serve now, otherwise 500), which the sender retries; a 401
		// would make it give up a delivery that is not at fault.
		return err
	}
	if actor.Transient(err) {
		// The key's server (or the network to it) failed for now: a 401
		// would make the sender give up on a delivery a retry will get
		// through.
		return &problem.Error{Status: http.StatusServiceUnavailable, RetryAfter: 10 * time.Second, Err: err,
			Msg: "the sender's key could not be fetched right now (its server did not answer or failed); try again later"}
	}
	var ve *actor.VerifyError
	if errors.As(err, &ve) {
		return problem.Wrap(http.StatusUnauthorized, err, ve.Reason)
	}
	return problem.Wrap(http.StatusUnauthorized, err, "the request's signature could not be verified")
}

// checkAuthorship refuses a Create whose inline object is attributed to
// someone other than the activity's actor, or whose object, inline or
// named by its id, is on another host than the actor's: an actor creates
// only its own objects, on its own server (B16).
func checkAuthorship(a *vocab.Activity) error {
	if a.Type != "Create" {
		return nil
	}
	actorID := a.Actor.ID()
	objID := a.Object.ID()
	if a.Object.Object != nil {
		for _, by := range a.Object.Object.Common().AttributedTo.IDs() {
			if by != actorID {
				return problem.Forbidden("the created object %s is attributed to %s, not to the activity's actor %s", problem.Clip(objID, 200), problem.Clip(by, 200), problem.Clip(actorID, 200))
			}
		}
	}
	if objID != "" && !urlhost.Same(objID, actorID) {
		host := ""
		if au, err := url.Parse(actorID); err == nil {
			host = au.Host
		}
		return problem.Forbidden("the created object %s is not on the actor's host (%s)", problem.Clip(objID, 200), problem.Clip(host, 200))
	}
	return nil
}

// remoteHost returns the host of a request's RemoteAddr: the client IP
// when no proxy stands between it and the node.
func remoteHost(r *http.Request) string {
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// checkAddressing refuses an activity whose addressing provably excludes
// the receiving actor. An activity with no addressing at all is accepted:
// the signature already proves who sent it to this inbox. One addressed to
// its actor's followers collection (social.FollowersOf) does not exclude
// the receiving actor, which may follow it; whether it does is for what
// the activity asks to decide.
func checkAddressing(a *vocab.Activity, self string) error {
	var all []string
	for _, refs := range []vocab.Refs{a.To, a.Cc, a.Bto, a.Bcc, a.Audience} {
		all = append(all, refs.IDs()...)
	}
	if len(all) == 0 {
		return nil
	}
	followers := social.FollowersOf(a.Actor.ID())
	for _, id := range all {
		if id == self || vocab.IsPublic(id) || id == followers {
			return nil
		}
	}
	return problem.BadRequest("activity %s is not addressed to %s", a.ID, self)
}
