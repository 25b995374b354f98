package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// SubmitConfig configures a Submitter. Every field but Now, Queued and
// Logger is required.
type SubmitConfig struct {
	Store  *store.DB
	Engine *cases.Engine
	// Local returns the local actor with the given name, false when there
	// is none, and an error when it could not be looked up (the store
	// failed), which SubmitBy returns as it is.
	Local func(ctx context.Context, name string) (actor.Local, bool, error)
	// NewID returns a fresh id on this node for an activity ("activities")
	// or another object ("objects").
	NewID func(kind string) string
	// Queued is called after deliveries were queued, to wake the delivery
	// workers; may be nil.
	Queued func()
	// FetchActor, when set, fetches the actor document at an IRI. An
	// Invite or Offer whose object is the bare IRI of an actor the node
	// does not hold gets that actor inline, so that a client may name the
	// actor by its id alone.
	FetchActor func(ctx context.Context, iri string) (*vocab.Actor, error)
	// CatchUp, when set, brings this node's replica of a case up to its Case
	// Actor's ledger now (cases.Syncer.CatchUp): an activity this node's
	// copy refused is tried again once the copy took new entries.
	CatchUp func(ctx context.Context, caseID string) (advanced bool, err error)
	// ResolveRecipient, when set, checks that there is an actor with an
	// inbox at a recipient's IRI, before anything is stored or queued: a
	// Permanent error means there is none (the submission is refused with
	// 422), any other that its node could not be asked (502). In
	// production it is (*ActorInboxes).Inbox, whose cache the deliveries
	// then use.
	ResolveRecipient func(ctx context.Context, iri string) error
	// Social applies what the plain ActivityPub activities an actor sends
	// change (a Follow, its answers, its Undo); nil refuses them with 422,
	// as activities that are no Vultron message.
	Social *social.Social
	// FanoutBatch bounds the deliveries to the actor's followers that one
	// transaction queues (social.AdvanceFanout); default
	// social.FanoutBatch.
	FanoutBatch int
	Now         func() time.Time
	Logger      zerolog.Logger
}

// Submitter accepts the activities local actors send (client-to-server).
type Submitter struct {
	cfg SubmitConfig
}

// NewSubmitter returns a Submitter.
func NewSubmitter(cfg SubmitConfig) (*Submitter, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Local == nil || cfg.NewID == nil {
		return nil, errors.New("outbox: store, engine, local actors and id generator are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Submitter{cfg: cfg}, nil
}

// Submitted is an activity the outbox accepted.
type Submitted struct {
	ID         string
	Semantic   vocab.Semantic
	Body       []byte   // the activity as stored and delivered
	Recipients []string // the actors it is delivered to
}

// By is the person on whose request a local actor sends an activity: a
// user of the node (package accounts). The zero By is the node itself
// (an automatic action, a reply).
type By struct {
	// Name is the user's name, kept with the stored activity and in its
	// audit record (store.StoredActivity.SentBy); never sent.
	Name string
	// DisplayName, when set, travels with the activity as its
	// attributedTo: an AS2 Person with this name and no id, beside the
	// actor that signs it. The node sets it only when it is configured
	// to (serve --attribute-names); the activity's actor and signature
	// stay the organization's.
	DisplayName string
}

// Submit is SubmitBy on the node's own behalf.
func (s *Submitter) Submit(ctx context.Context, name string, body []byte) (Submitted, error) {
	return s.SubmitBy(ctx, name, body, By{})
}

// SubmitBy validates an activity that local actor name sends on by's
// request, fills in its id, actor and publication time (and the ids of
// new objects it carries), checks it against the actor's protocol state,
// and stores it, with who asked, and one queued delivery per recipient,
// all in one transaction. It returns a *problem.Error for every refusal;
// nothing is stored then.
func (s *Submitter) SubmitBy(ctx context.Context, name string, body []byte, by By) (Submitted, error) {
	local, ok, err := s.cfg.Local(ctx, name)
	if err != nil {
		return Submitted{}, err
	}
	if !ok {
		return Submitted{}, problem.NotFound("no actor %q on this node", name)
	}
	doc, err := vocab.Parse(body)
	if pe := (*vocab.ParseError)(nil); errors.As(err, &pe) && pe.Path == "$.endTime" {
		// On an embargo proposal it is the invitees' deadline to answer:
		// a time without a zone is no instant every node reads alike.
		return Submitted{}, problem.Wrap(http.StatusUnprocessableEntity, err,
			"the activity's endTime (on an embargo proposal, the date by which the invitees are to answer it) must be a date and time with a zone: "+pe.Msg)
	}
	if err != nil {
		return Submitted{}, problem.Wrap(http.StatusBadRequest, err, err.Error())
	}
	act := doc.Activity()
	if act == nil {
		return Submitted{}, problem.Unprocessable("an outbox accepts activities, not a bare %s", doc.Object.Common().Type)
	}
	if act.ID != "" {
		return Submitted{}, problem.BadRequest("the activity has an id (%s); the node assigns ids to what its actors send", act.ID)
	}
	if got := act.Actor.ID(); got != "" && got != local.ID {
		return Submitted{}, problem.Forbidden("the activity's actor %s is not %s", got, local.ID)
	}
	now := s.cfg.Now().UTC()
	act.ID = s.cfg.NewID("activities")
	act.Actor = vocab.RefTo(local.ID)
	act.Published = now.Format(time.RFC3339)
	// With a person's name to send, the node names them: what the client
	// put in the activity's attributedTo is replaced, so no one is sent as
	// someone else.
	if by.DisplayName != "" {
		act.AttributedTo = vocab.Refs{Items: []vocab.Ref{{Object: &vocab.Actor{ObjectBase: vocab.ObjectBase{Type: "Person", Name: by.DisplayName}}}}, Single: true}
	}
	s.fillObjectIDs(act, local, now)

	recipients := recipientsOf(act, local.ID)
	// bto and bcc name recipients that must not see each other: deliver to
	// them, but never send or store the lists.
	act.Bto, act.Bcc = vocab.Refs{}, vocab.Refs{}
	if err := s.resolveRecipients(ctx, recipients); err != nil {
		return Submitted{}, err
	}

	if err := s.inlineActor(ctx, act); err != nil {
		return Submitted{}, err
	}

	// What the activity means, whom it reaches and what it changes are all
	// decided in the transaction that stores it, from one view of the
	// state. The function may run more than once, so it starts from the
	// activity as submitted every time.
	submitted, baseTo, baseContext := recipients, act.To, act.Context
	var (
		class   vocab.Classification
		out     []byte
		targets []store.DeliveryTarget
		fanned  bool
	)
	from := cases.LocalActor{Name: local.Name, ID: local.ID}
	// Slow work the activity needs (a new Case Actor's key) is done before
	// the write, outside the store's single write path; should the state
	// change in between so that more is needed, it is done and the write
	// tried once more.
	prepare := func() error {
		var class vocab.Classification
		if err := s.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
			r := cases.NewResolver(tx)
			class = vocab.Classify(act, r)
			return r.Err()
		}); err != nil {
			return fmt.Errorf("outbox: classify: %w", err)
		}
		return s.cfg.Engine.Prepare(ctx, s.cfg.Store, from, cases.Message{Activity: act, Class: class})
	}
	if err := prepare(); err != nil {
		return Submitted{}, err
	}
	// A fan-out of the actor's that a stop or a failed write left in
	// progress is finished first: what the actor sends now follows, in
	// every lane, what it sent before. With none, this is one read.
	s.fanOut(ctx, local.Name)
	for attempt := 0; ; attempt++ {
		err = s.cfg.Store.Update(ctx, func(tx *store.Tx) (failed error) {
			resolver := cases.NewResolver(&tx.ReadTx)
			defer func() {
				if err := resolver.Err(); err != nil {
					// What the activity names could not be read: what it
					// means, and any refusal of it, is not known.
					failed = fmt.Errorf("outbox: read what the activity names: %w", err)
				}
			}()
			recipients = slices.Clone(submitted)
			act.To = vocab.Refs{Items: slices.Clone(baseTo.Items), Single: baseTo.Single}
			act.Context = baseContext
			class = vocab.Classify(act, resolver)
			if class.Semantic == vocab.InviteToEmbargoOnCase {
				// The invitees' deadline to answer (RSVP), the Invite's
				// own endTime: 7 days unless the client named one, at
				// least 72 hours (cases.StampRSVP).
				if err := cases.StampRSVP(act, now); err != nil {
					return err
				}
			}
			plain := vocab.Semantic("")
			if s.cfg.Social != nil && (class.Semantic == vocab.Unknown || class.Semantic == vocab.UnknownUnresolvableObject) {
				plain = vocab.ClassifySocial(act, resolver)
			}
			key := orderingKey(act, resolver)
			if plain != "" && key == "" {
				key = social.OrderingKey(social.Local{Name: local.Name, ID: local.ID}, act, plain)
			}
			if plain == "" {
				if err := checkAudience(act, local.ID, class.Semantic); err != nil {
					return err
				}
				// A validation that opens a case names it, for the
				// reporter's node (cases.Engine.OpensCase). Its ordering
				// key stays the report's, taken above: it is sent in the
				// order of the other answers about the report.
				caseID, err := s.cfg.Engine.OpensCase(&tx.ReadTx, from, cases.Message{Activity: act, Class: class, Resolver: resolver})
				if err != nil {
					return err
				}
				if caseID != "" {
					if got := act.Context.ID(); got != "" && got != caseID {
						return problem.Unprocessable("this validation opens case %s, but its context names %s", caseID, got)
					}
					act.Context = vocab.RefTo(caseID)
				}
				// An answer to an invitation names the case it joins or
				// declines, as every case-scoped activity does.
				if act.Context.ID() == "" {
					if caseID := s.cfg.Engine.InvitationCase(&tx.ReadTx, cases.Message{Activity: act, Class: class, Resolver: resolver}); caseID != "" {
						act.Context = vocab.RefTo(caseID)
					}
				}
			}
			// Case-scoped activities go to the case's Case Actor, whether or
			// not the client named it.
			if plain == "" {
				for _, r := range s.cfg.Engine.Recipients(&tx.ReadTx, cases.Message{Activity: act, Class: class}) {
					if r != local.ID && !slices.Contains(recipients, r) {
						recipients = append(recipients, r)
						act.To.Items = append(act.To.Items, vocab.RefTo(r))
						act.To.Single = false
					}
				}
			}
			// A Follow, its Undo and an answer to a Follow go to the actor
			// they are for, whether or not the client named it: sent to no
			// one, a Follow would wait for an answer for ever.
			if plain != "" {
				to, err := s.cfg.Social.Counterpart(&tx.ReadTx, act, plain)
				if err != nil {
					return err
				}
				if to != "" && to != local.ID && !slices.Contains(recipients, to) {
					recipients = append(recipients, to)
					act.To.Items = append(act.To.Items, vocab.RefTo(to))
					act.To.Single = false
				}
			}
			// An activity to the actor's followers reaches each of them
			// (or each shared inbox they name): this transaction records
			// the fan-out, and the deliveries are queued a batch per
			// transaction once it has committed.
			fanned, err = social.StartFanout(tx, social.Local{Name: local.Name, ID: local.ID}, act.ID, key, addressed(act), recipients)
			if err != nil {
				return err
			}
			// What is sent carries what it answers or acts on inline (its
			// stub), so that it means the same without this node's store;
			// the engine below works from the activity as submitted.
			sent := act
			if plain == "" {
				if sent, err = vocab.CarryAnswered(act, resolver); err != nil {
					return problem.Unprocessable("%s", err.Error())
				}
			}
			if out, err = vocab.Marshal(sent); err != nil {
				return problem.Wrap(http.StatusUnprocessableEntity, err, "the activity cannot be serialised: "+err.Error())
			}
			targets = make([]store.DeliveryTarget, 0, len(recipients))
			for _, r := range recipients {
				targets = append(targets, store.DeliveryTarget{Recipient: r, OrderingKey: key})
			}
			semantic := class.Semantic
			if plain != "" {
				semantic = plain
				if err := s.cfg.Social.Outbound(tx, social.Local{Name: local.Name, ID: local.ID}, act, plain); err != nil {
					return err
				}
			} else if err := s.cfg.Engine.ApplyOutbound(tx, from, recipients,
				cases.Message{Activity: act, Class: class, Resolver: resolver}); err != nil {
				return err
			}
			class.Semantic = semantic
			return tx.EnqueueOutbound(store.Outbound{
				ID:         act.ID,
				Actor:      local.Name,
				Body:       out,
				Semantic:   string(semantic),
				CreatedAt:  now,
				Deliveries: targets,
				SentBy:     by.Name,
			})
		})
		if attempt >= 2 {
			break
		}
		var stale *cases.ReplicaRefusal
		switch {
		case errors.Is(err, cases.ErrUnprepared):
			if err := prepare(); err != nil {
				return Submitted{}, err
			}
			continue
		case errors.As(err, &stale) && s.cfg.CatchUp != nil:
			// This node's copy of the case refused it; the Case Actor may
			// have recorded since what the copy lacks (another node acted a
			// moment ago). Bring the copy to the Case Actor's tail and try
			// again; if the Case Actor could not be asked, say so.
			advanced, cerr := s.cfg.CatchUp(ctx, stale.CaseID)
			if advanced {
				continue
			}
			if store.Passing(cerr) {
				// This node's store could not take the Case Actor's
				// entries: 503 or 507 with Retry-After, not a conflict.
				return Submitted{}, fmt.Errorf("outbox: submit: bring this node's copy of case %s up to date: %w", stale.CaseID, cerr)
			}
			if cerr != nil {
				return Submitted{}, problem.Conflict("%s; this node's copy of case %s may lack what the Case Actor recorded since, and its ledger could not be checked (%s): try again once it answers, or wait for the case with vultron case wait",
					problem.Message(stale.Err), stale.CaseID, problem.Clip(cerr.Error(), 300))
			}
		}
		break
	}
	if err != nil {
		return Submitted{}, fmt.Errorf("outbox: submit: %w", err)
	}
	if len(targets) > 0 && s.cfg.Queued != nil {
		s.cfg.Queued()
	}
	if fanned {
		s.fanOut(ctx, local.Name)
	}
	s.cfg.Logger.Info().Str("actor", local.Name).Str("activity", act.ID).Str("semantic", string(class.Semantic)).
		Int("recipients", len(recipients)).Msg("outbox accepted")
	return Submitted{ID: act.ID, Semantic: class.Semantic, Body: out, Recipients: recipients}, nil
}

// fanOut queues the deliveries of the fan-outs in progress of local
// actor name to its followers, a batch per transaction, and wakes the
// delivery workers after each. What it leaves (a store that failed, a
// stopping node) the node's fan-out service goes on with: the activity
// is stored and its cursor kept.
func (s *Submitter) fanOut(ctx context.Context, name string) {
	if err := social.RunFanouts(ctx, s.cfg.Store, name, s.cfg.FanoutBatch, s.cfg.Queued); err != nil {
		s.cfg.Logger.Warn().Err(err).Str("actor", name).Msg("queue the deliveries to the followers: the node goes on with it in the background")
	}
}

// MaxRecipients bounds the recipients a client may name in one activity:
// each is resolved before the activity is accepted.
const MaxRecipients = 100

// resolveRecipients checks that every recipient the client named is an
// actor this node can deliver to, so that a typo in an address is refused
// now rather than becoming a dead letter days later. A recipient whose
// node does not answer now is no reason to refuse: its deliveries are
// retried until it does. The form the node gives a delivery to a shared
// inbox (social.SharedInbox) is no actor's id and is refused: its URL
// would be posted to without an actor document naming it.
func (s *Submitter) resolveRecipients(ctx context.Context, recipients []string) error {
	if len(recipients) > MaxRecipients {
		return problem.Unprocessable("the activity names %d recipients; an outbox takes at most %d", len(recipients), MaxRecipients)
	}
	for _, r := range recipients {
		if _, ok := social.IsSharedInbox(r); ok {
			return problem.Unprocessable("%s is not an actor's id (an actor's id is the URL of its document, such as https://cvd.vendor.example/actors/psirt); nothing was sent", problem.Clip(r, 200))
		}
	}
	if s.cfg.ResolveRecipient == nil {
		return nil
	}
	for _, r := range recipients {
		err := s.cfg.ResolveRecipient(ctx, r)
		if err == nil {
			continue
		}
		if !IsPermanent(err) {
			s.cfg.Logger.Warn().Str("recipient", r).Err(err).Msg("recipient not resolved now; its delivery will retry")
			continue
		}
		if status, ok := fetchStatus(err); ok && (status == http.StatusNotFound || status == http.StatusGone) {
			return problem.Wrap(http.StatusUnprocessableEntity, err, fmt.Sprintf("there is no actor at %s (%d); nothing was sent", r, status))
		}
		// An address that answers with something else than an actor's
		// document (a node's own address, whose dashboard redirects to
		// its login; a web page) is no actor's id.
		if detail, ok := refusedAddress(err); ok {
			hint := ""
			if !strings.Contains(detail, "unspecified") && !strings.Contains(detail, "multicast") && !strings.Contains(detail, "invalid") {
				hint = "; a node for local set-ups and tests delivers to loopback and private addresses when serve is given --allow-private-peers"
			}
			return problem.Wrap(http.StatusUnprocessableEntity, err, fmt.Sprintf("%s is on an address this node does not deliver to: %s%s; nothing was sent", r, detail, hint))
		}
		var de *actor.DocumentError
		if errors.As(err, &de) {
			return problem.Wrap(http.StatusUnprocessableEntity, err, fmt.Sprintf("%s is not an actor's id: %s (an actor's id is the URL of its document, such as https://cvd.vendor.example/actors/psirt); nothing was sent", r, de.Reason))
		}
		return problem.Wrap(http.StatusUnprocessableEntity, err, fmt.Sprintf("%s cannot be delivered to: %v; nothing was sent", r, namedOnce(err, r)))
	}
	return nil
}

// refusedAddress returns what kind of address a recipient's fetch was
// refused for (actor.ErrAddressRefused), such as "127.0.0.1 is a loopback
// address (127.0.0.0/8)", and whether it was.
func refusedAddress(err error) (string, bool) {
	if !errors.Is(err, actor.ErrAddressRefused) {
		return "", false
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if errors.Unwrap(e) == actor.ErrAddressRefused {
			return strings.TrimSuffix(e.Error(), ": "+actor.ErrAddressRefused.Error()), true
		}
	}
	return actor.ErrAddressRefused.Error(), true
}

// inlineActor replaces the bare IRI object of an Invite or Offer by the
// actor document it names, when the node holds no object of that id.
func (s *Submitter) inlineActor(ctx context.Context, act *vocab.Activity) error {
	if s.cfg.FetchActor == nil || act.Object.Object != nil || act.Object.IRI == "" || (act.Type != "Invite" && act.Type != "Offer") {
		return nil
	}
	var held bool
	if err := s.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		r := cases.NewResolver(tx)
		if _, held = r.Resolve(act.Object.IRI); !held {
			return r.Err() // an object the store cannot read is not one to fetch
		}
		return nil
	}); err != nil {
		return fmt.Errorf("outbox: resolve %s: %w", act.Object.IRI, err)
	}
	if held {
		return nil
	}
	a, err := s.cfg.FetchActor(ctx, act.Object.IRI)
	if err != nil {
		return problem.Wrap(http.StatusUnprocessableEntity, err, fmt.Sprintf("%s names %s, an actor this node does not hold, and it could not be fetched (%s)", act.Type, act.Object.IRI, actor.FetchFailure(err)))
	}
	act.Object = vocab.Inline(a)
	return nil
}

// fillObjectIDs gives the new objects an activity carries inline (a report
// being submitted, a note) an id, an attribution and a publication time.
// Activities nested inside it (the Offer an Accept answers) are not
// touched: they already exist.
func (s *Submitter) fillObjectIDs(act *vocab.Activity, local actor.Local, now time.Time) {
	obj := act.Object.Object
	if obj == nil {
		return
	}
	if _, isActivity := obj.(*vocab.Activity); isActivity {
		return
	}
	c := obj.Common()
	if c.ID == "" {
		c.ID = s.cfg.NewID("objects")
		if len(c.AttributedTo.Items) == 0 {
			c.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(local.ID)}, Single: true}
		}
		if c.Published == "" {
			c.Published = now.Format(time.RFC3339)
		}
	}
}

// checkAudience refuses a Vultron message addressed to the sending
// actor's followers or to the public: what a case or a report says goes
// to the actors it names, and reaches followers and the public only as
// the advisory's publication (Create or Update of the Article), which the
// case's rules hold back while the embargo is in force.
func checkAudience(act *vocab.Activity, self string, sem vocab.Semantic) error {
	if sem == vocab.PublishAdvisory || sem == vocab.ReviseAdvisory {
		return nil
	}
	for _, refs := range []vocab.Refs{act.To, act.Cc, act.Bto, act.Bcc, act.Audience} {
		for _, id := range refs.IDs() {
			if vocab.IsPublic(id) || id == social.FollowersOf(self) {
				if act.Type == "Announce" {
					// What an actor announces to its followers is an
					// advisory; this one names a case's or a report's
					// object or message.
					return problem.Unprocessable("an Announce to %s shares a published advisory, not %s: a case's or a report's objects and messages go only to the actors they name",
						problem.Clip(id, 200), problem.Clip(act.Object.ID(), 200))
				}
				return problem.Unprocessable("%s is not sent to %s: a case's or a report's messages go to the actors they name, and reach followers and the public only as the published advisory (Create or Update of its Article)",
					withArticle(act.Type), problem.Clip(id, 200))
			}
		}
	}
	return nil
}

// addressed returns every id an activity is addressed to.
func addressed(a *vocab.Activity) []string {
	var out []string
	for _, refs := range []vocab.Refs{a.To, a.Cc, a.Audience} {
		out = append(out, refs.IDs()...)
	}
	return out
}

// recipientsOf returns the actors an activity is addressed to, without the
// Public collection, the sender itself, its own followers and following
// collections (the former is expanded when the deliveries are queued) and
// duplicates.
func recipientsOf(a *vocab.Activity, self string) []string {
	seen := map[string]bool{self: true, social.FollowersOf(self): true, social.FollowingOf(self): true}
	var out []string
	for _, refs := range []vocab.Refs{a.To, a.Cc, a.Bto, a.Bcc, a.Audience} {
		for _, id := range refs.IDs() {
			if id == "" || seen[id] || vocab.IsPublic(id) {
				continue
			}
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// orderingKey is the lane an activity's deliveries keep their order in: the
// case it belongs to (its context), or else the report it is about.
func orderingKey(a *vocab.Activity, r vocab.Resolver) string {
	if id := a.Context.ID(); id != "" {
		return id
	}
	// An answer to a report names the Offer by id (RV, RI, RC): resolve it,
	// so that the answers about one report keep their order.
	return vocab.ReportOf(a, r)
}

// withArticle puts "a" or "an" before an activity type: "an Announce",
// "a Note".
func withArticle(typ string) string {
	if typ != "" && strings.ContainsRune("AEIOUaeiou", rune(typ[0])) {
		return "an " + typ
	}
	return "a " + typ
}
