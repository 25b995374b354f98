package cases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Engine applies activities to the protocol state this node keeps. It holds
// no state of its own between calls: everything lives in the store, read
// and written through the transaction each call is given.
type Engine struct {
	now func() time.Time
	cfg Config
}

// Config configures an Engine. Every function field is required.
type Config struct {
	Now func() time.Time
	// PublicURL is the node's base URL; the ids of the cases it opens and
	// of their Case Actors live under it.
	PublicURL string
	// NewID returns a fresh id on this node under kind ("activities").
	NewID func(kind string) string
	// DefaultEmbargo is the embargo the node's actors offer on every case
	// they open, in force from its creation; zero means none.
	DefaultEmbargo time.Duration
	// Roles returns the CVD roles a configured local actor takes in the
	// cases it opens.
	Roles func(localName string) cvdstate.RoleSet
	// Provision creates the key of a new Case Actor with the given local
	// name and returns its record; it is idempotent for a name. Making a
	// key is slow (an RSA key takes tens of milliseconds), so it is called
	// only from Prepare, outside every store transaction.
	Provision func(name string) (store.LocalActor, error)
	// Provisioned returns the record of a Case Actor whose key Provision
	// made, and false when there is none; it must be fast, for it runs
	// inside the store's write path.
	Provisioned func(name string) (store.LocalActor, bool, error)
	// IsLocal reports whether an actor id belongs to this node.
	IsLocal func(actorID string) bool
	// MaxAnnouncement is the largest announcement of a ledger entry the
	// Case Actors of this node send; an activity whose announcement would
	// be larger is not recorded. Zero means DefaultMaxAnnouncement.
	MaxAnnouncement int
	// Sync schedules the checks of this node's replicas; zero fields take
	// the defaults.
	Sync SyncTiming
	// MaxEmbargo is the longest embargo this node's actors may propose and
	// its Case Actors record, counted from when the proposal is checked;
	// zero means no limit. It is this node's policy, not the protocol's:
	// replicas apply what their Case Actor recorded whatever their own.
	MaxEmbargo time.Duration
}

// NewEngine returns an Engine.
func NewEngine(cfg Config) *Engine {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxAnnouncement <= 0 {
		cfg.MaxAnnouncement = DefaultMaxAnnouncement
	}
	cfg.Sync = cfg.Sync.withDefaults()
	return &Engine{now: cfg.Now, cfg: cfg}
}

// LocalActor identifies the local actor a message is sent by or to.
type LocalActor struct {
	Name string // as in the store
	ID   string // actor IRI
}

// Message is a parsed activity and what it means.
type Message struct {
	Activity *vocab.Activity
	Class    vocab.Classification
	// Resolver finds objects the activity refers to by id; may be nil.
	Resolver vocab.Resolver
}

// Reply is an activity the protocol requires the node to send in answer to
// one it received. The inbox fills in its id and publication time and
// queues it in the transaction that accepts the received activity.
type Reply struct {
	Activity *vocab.Activity
	// To is the actor the reply is delivered to.
	To string
	// OrderingKey keeps replies to one peer about one report or case in
	// order.
	OrderingKey string
}

// unhandled refuses an activity whose semantic this node does not act on.
func unhandled(c vocab.Classification) error {
	if c.Unresolved {
		return problem.Unprocessable("the activity refers to %s, which this node does not hold, so its meaning cannot be established", c.UnresolvedID)
	}
	if c.Semantic == vocab.Unknown || c.Semantic == vocab.UnknownUnresolvableObject {
		reason := c.Reason
		if reason == "" {
			reason = "it matches no Vultron message"
		}
		return problem.Unprocessable("the activity is not a Vultron message this node understands: %s", reason)
	}
	return problem.Unprocessable("this node does not handle %s activities", c.Semantic)
}

// ApplyInbound records what an activity received by local actor to changes,
// and returns the replies the protocol calls for. sender is the verified
// actor that sent it.
func (e *Engine) ApplyInbound(tx *store.Tx, to LocalActor, sender string, m Message) ([]Reply, error) {
	now := e.now().UTC()
	if strings.HasPrefix(to.Name, CaseActorPrefix) {
		// Everything sent to a Case Actor is about its case.
		return e.hostInbound(tx, to, sender, m, now)
	}
	a := m.Activity
	if m.Class.Semantic.IsReply() {
		// An acknowledgement or error changes no state and is not
		// answered (replies.go).
		return e.receiveReply(tx, to, sender, m, now)
	}
	switch m.Class.Semantic {
	case vocab.SubmitReport:
		return e.receiveReport(tx, to, sender, m)
	case vocab.ValidateReport, vocab.InvalidateReport, vocab.CloseReport:
		return e.receiveReportDecision(tx, to, sender, m)
	case vocab.CreateReport:
		// The announcement of an object: stored, no protocol state.
		return nil, nil
	case vocab.AnnounceCaseLedgerEntry:
		return nil, e.receiveEntry(tx, to, sender, m, now)
	case vocab.InviteActorToCase:
		return e.receiveInvite(tx, to, sender, m)
	case vocab.OfferCaseParticipant:
		return nil, e.receiveParticipantOffer(&tx.ReadTx, to, sender, m)
	case vocab.AddReportToCase:
		return nil, e.receiveReportAdded(tx, to, sender, m)
	case vocab.AcceptActorRecommendation, vocab.RejectActorRecommendation:
		// The Case Actor's answer to a suggestion this actor made.
		return e.receiveReply(tx, to, sender, m, now)
	case vocab.PublishAdvisory, vocab.ReviseAdvisory:
		return nil, e.receiveAdvisory(&tx.ReadTx, to, sender, m)
	}
	if a.Type == "Reject" {
		if _, ok, err := answeredBy(&tx.ReadTx, a, to.Name); err != nil {
			return nil, err
		} else if ok {
			// A refusal in the untyped form of Case Actors from before
			// typed errors: kept as a general error.
			return e.receiveReply(tx, to, sender, m, now)
		}
	}
	if m.Class.Semantic == vocab.CreateNote {
		return nil, nil
	}
	return nil, unhandled(m.Class)
}

// sentBy reports whether the activity with the given id was sent by local
// actor name; its error is a read of the store's that failed, not the
// absence of the activity.
func sentBy(tx *store.ReadTx, id, name string) (bool, error) {
	if id == "" {
		return false, nil
	}
	a, err := tx.Activity(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return a.Direction == store.DirectionOutbound && a.Actor == name, nil
}

// receiveReport handles an Offer(VulnerabilityReport) (RS).
func (e *Engine) receiveReport(tx *store.Tx, to LocalActor, sender string, m Message) ([]Reply, error) {
	offer := m.Activity
	rep, err := offeredReport(offer, m.Resolver)
	if err != nil {
		return nil, err
	}
	if a := firstRef(rep.AttributedTo); a != "" && a != sender {
		// The reporter speaks for itself; a coordinator forwarding a report
		// it received is the sender and may credit the finder in the
		// report's content, not claim the finder's identity.
		return nil, problem.Forbidden("report %s is attributed to %s but was offered by %s", rep.ID, a, sender)
	}
	rec, found, err := readReport(&tx.ReadTx, rep.ID, to.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		rec = ReportRecord{ReportID: rep.ID, Actor: to.Name, Role: Receiver, RM: cvdstate.RMStart, OfferID: offer.ID, Name: rep.Name, Reporter: sender,
			ReceivedAt: e.now().UTC()}
	}
	msg := cvdstate.RS
	if proposal, err := offeredEmbargo(offer, e.now().UTC(), e.cfg.MaxEmbargo); err != nil {
		return nil, err
	} else if proposal != nil {
		msg |= cvdstate.EP // the proposal waits for the case the validation opens
	}
	out, err := cvdstate.Receive(cvdstate.CaseState{}, cvdstate.ParticipantState{RM: rec.RM}, e.cfg.Roles(to.Name), msg)
	if err != nil {
		return nil, fmt.Errorf("receive report %s: %w", rep.ID, err)
	}
	rec.RM = out.Participant.RM
	if rec.Peers == nil {
		rec.Peers = map[string]cvdstate.RMState{}
	}
	// A reporter enters the process already in ACCEPTED.
	if _, known := rec.Peers[sender]; !known {
		rec.Peers[sender] = cvdstate.RMAccepted
	}
	rec.UpdatedAt = e.now().UTC()
	write := writeReport
	if !found {
		write = writeNewReport
	}
	if err := write(tx, rec); err != nil {
		return nil, err
	}
	if !found {
		if err := reportEvent(tx, rec, EventReportReceived, to.ID, "", rec.UpdatedAt); err != nil {
			return nil, err
		}
	}
	replies := acknowledge(out.Emit, to, sender, offer, offer.ID, rep.ID)
	if out.Emit&cvdstate.CV != 0 && len(replies) == 1 {
		// A vendor that receives a report is aware of the vulnerability
		// (CV): its acknowledgement says so.
		replies[0].Activity.Result = vocab.Inline(vocab.VendorAwareness(rep.ID, rec.RM.String(), out.Participant.VFD.String()))
	}
	return replies, nil
}

// receiveAdvisory keeps a published advisory (Create or Update of an
// Article in a case's context) in the inbox of a local actor that follows
// its sender, or that takes part in its case, which the sender owns: it
// changes no state here (the case's ledger records it, and replicas learn
// of it from there). An Article on another host than the sender's, or
// attributed to another actor, is refused: an actor publishes and revises
// only its own advisories.
func (e *Engine) receiveAdvisory(tx *store.ReadTx, to LocalActor, sender string, m Message) error {
	a := m.Activity
	if id := a.Object.ID(); !urlhost.Same(id, sender) {
		return problem.Forbidden("%s of %s by %s: the Article is not on the sender's server; an actor publishes and revises only its own advisories", a.Type, problem.Clip(id, 200), sender)
	}
	if a.Object.Object != nil {
		for _, by := range a.Object.Object.Common().AttributedTo.IDs() {
			if by != sender {
				return problem.Forbidden("%s of %s by %s: the Article is attributed to %s; an actor publishes and revises only its own advisories", a.Type, problem.Clip(a.Object.ID(), 200), sender, problem.Clip(by, 200))
			}
		}
	}
	if f, ok, err := tx.Follow(to.Name, store.Following, sender); err != nil {
		return err
	} else if ok && f.State == store.FollowAccepted {
		return nil
	}
	c, err := loadCase(tx, e.caseOf(tx, m.Activity))
	if err != nil {
		return err
	}
	if c != nil && c.Owner == sender && c.CanRead(to.ID) {
		return nil
	}
	return problem.Forbidden("%s neither follows %s nor takes part in the case of the advisory it sent", to.ID, sender)
}

// receiveParticipantOffer keeps the Case Actor's offer of a participant
// for a suggestion (Offer(CaseParticipant)) in the inbox of the case's
// owner, who answers it: it must come from the Case Actor of a case the
// actor takes part in.
func (e *Engine) receiveParticipantOffer(tx *store.ReadTx, to LocalActor, sender string, m Message) error {
	c, err := loadCase(tx, e.caseOf(tx, m.Activity))
	if err != nil {
		return err
	}
	if c == nil || c.CaseActor != sender {
		return problem.Forbidden("%s offers a participant of a case it is not the Case Actor of", sender)
	}
	if !c.CanRead(to.ID) {
		return problem.Forbidden("%s is not a participant of case %s", to.ID, c.ID)
	}
	return nil
}

// receiveInvite handles the Case Actor's invitation of local actor to: it
// waits in the inbox for the actor to answer, and is acknowledged at once
// (an invitation is the RS of a late joiner), with the vendor's awareness
// (CV) when it invites a vendor.
func (e *Engine) receiveInvite(tx *store.Tx, to LocalActor, sender string, m Message) ([]Reply, error) {
	a := m.Activity
	if a.Object.ID() != to.ID {
		return nil, problem.Unprocessable("the invitation is for %s, not %s", a.Object.ID(), to.ID)
	}
	out, err := cvdstate.Receive(cvdstate.CaseState{}, cvdstate.ParticipantState{}, roleSet(a.Roles), cvdstate.RS)
	if err != nil {
		return nil, fmt.Errorf("receive the invitation %s: %w", a.ID, err)
	}
	caseID := a.Target.ID()
	k := vocab.Acknowledge(to.ID, a, sender, caseID, m.Resolver)
	if out.Emit&cvdstate.CV != 0 {
		k.Result = vocab.Inline(vocab.VendorAwareness(caseID, out.Participant.RM.String(), out.Participant.VFD.String()))
	}
	return []Reply{{Activity: k, To: sender, OrderingKey: caseID}}, nil
}

// receiveReportDecision handles a peer's RV, RI or RC about a report this
// actor knows.
func (e *Engine) receiveReportDecision(tx *store.Tx, to LocalActor, sender string, m Message) ([]Reply, error) {
	a := m.Activity
	offer, rep, err := answeredOffer(a, m.Resolver)
	if err != nil {
		return nil, err
	}
	rec, found, err := readReport(&tx.ReadTx, rep.ID, to.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		// The receiver tables answer an R* message about a report the
		// receiver never had (RM START) with RE.
		out, err := cvdstate.Receive(cvdstate.CaseState{}, cvdstate.ParticipantState{}, 0, decisionFor(m.Class.Semantic).message)
		if err != nil {
			return nil, err
		}
		if out.Emit&cvdstate.RE == 0 {
			return nil, fmt.Errorf("receive %s: the receiver tables give no error for it", m.Class.Semantic)
		}
		reason := fmt.Sprintf("%s never sent or received report %s", to.ID, rep.ID)
		return []Reply{{Activity: vocab.Refuse(to.ID, a, sender, "", reason, m.Resolver), To: sender, OrderingKey: rep.ID}}, nil
	}
	peer, isPeer := rec.Peers[sender]
	if !isPeer {
		return nil, problem.Forbidden("%s is not a party to report %s of %s", sender, rep.ID, to.Name)
	}
	d, _ := decisionOf(m.Class.Semantic)
	next, _, err := peer.Apply(d.event)
	if err != nil {
		// The peer's RM is its own: a message tells this node the state
		// the peer moved to even when this node missed a step (a lost
		// message), so the model follows it forward. A repeat changes
		// nothing; a message that would move it back is older than what
		// this node knows (it arrived after a later one): it is kept and
		// answered with RE, and the model stays as it is. So is any but a
		// repeated RC from a peer that closed the report.
		if d.target != peer && d.target.Progress() <= peer.Progress() {
			reason := fmt.Sprintf("%s is %s for report %s as far as %s knows; a message saying it is %s is older than that, or would move it back", sender, peer, rep.ID, to.ID, d.target)
			return []Reply{{Activity: vocab.Refuse(to.ID, a, sender, "", reason, m.Resolver), To: sender, OrderingKey: rep.ID}}, nil
		}
		next = d.target
	}
	rec.Peers[sender] = next
	if of := a.Result.ID(); d.event == cvdstate.RMClose && of != "" {
		// Closed as a duplicate of the case the result names.
		rec.DuplicateOf = of
	}
	rec.UpdatedAt = e.now().UTC()
	if err := writeReport(tx, rec); err != nil {
		return nil, err
	}
	if err := reportEvent(tx, rec, decisionEvent(d.event), sender, "", rec.UpdatedAt); err != nil {
		return nil, err
	}
	if d.event == cvdstate.RMValidate && rec.Role == Reporter && peer <= cvdstate.RMInvalid {
		// A validation names the case it opens as its context. The Case
		// Actor's announcements tell this node of the case; should they
		// be lost and the case stay quiet, the node would never know it:
		// look for it. The case must be on the validator's host, where
		// its ledger is fetched from. Only a validation that moves the
		// peer to VALID opens a case, so a peer cannot have this node
		// look for one case after another by validating again.
		if caseID := a.Context.ID(); caseID != "" && urlhost.Same(caseID, sender) {
			if err := e.expectCase(tx, caseID, to.Name, "", rec.UpdatedAt); err != nil {
				return nil, err
			}
		}
	}
	out, err := cvdstate.Receive(cvdstate.CaseState{}, cvdstate.ParticipantState{RM: rec.RM}, 0, d.message)
	if err != nil {
		return nil, fmt.Errorf("receive %s for report %s: %w", m.Class.Semantic, rep.ID, err)
	}
	return acknowledge(out.Emit, to, sender, offer, a.ID, rep.ID), nil
}

// acknowledge returns the RK reply when emit calls for one. The wire form
// of RK is Read(Offer(VulnerabilityReport)); an acknowledgement of a
// validation, invalidation or closure reads the same Offer and names the
// message it acknowledges in inReplyTo, since the protocol defines no other
// wire form for it.
func acknowledge(emit cvdstate.MessageType, from LocalActor, to string, offer *vocab.Activity, inReplyTo, reportID string) []Reply {
	if emit&(cvdstate.RK|cvdstate.EK) == 0 || offer == nil {
		return nil
	}
	read := &vocab.Activity{}
	read.Type = "Read"
	read.Actor = vocab.RefTo(from.ID)
	read.Object = vocab.Inline(offer)
	read.InReplyTo = vocab.RefTo(inReplyTo)
	read.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(to)}}
	return []Reply{{Activity: read, To: to, OrderingKey: reportID}}
}

// ReplicaRefusal is a refusal of an activity by this node's replica of a
// case (a step its copy forbids, or a reference to something the copy does
// not hold), which may lack entries the Case Actor has recorded since: the
// caller may bring the replica up to the Case Actor's tail and try again
// (see Syncer.CatchUp). It unwraps to the refusal.
type ReplicaRefusal struct {
	CaseID string
	Err    error
}

func (r *ReplicaRefusal) Error() string { return r.Err.Error() }
func (r *ReplicaRefusal) Unwrap() error { return r.Err }

// ErrUnprepared is returned by ApplyOutbound for an activity that needs
// slow work done first, outside the store's write path: the caller runs
// Prepare for it and tries again.
var ErrUnprepared = errors.New("cases: the activity needs Prepare before it is applied")

// Prepare does, before an activity local actor from sends is applied, the
// slow work its application needs, outside any store transaction: for a
// validation that opens a case, it makes the key of the case's Case Actor.
// It reads what it needs in a read transaction of its own, and does
// nothing for other activities. ApplyOutbound returns ErrUnprepared when
// it finds work Prepare did not do (the state changed in between).
func (e *Engine) Prepare(ctx context.Context, db *store.DB, from LocalActor, m Message) error {
	if m.Class.Semantic != vocab.ValidateReport {
		return nil
	}
	var name string
	err := db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		_, name, err = e.opensCase(tx, from, Message{Activity: m.Activity, Class: m.Class, Resolver: NewResolver(tx)})
		return err
	})
	if err != nil {
		return fmt.Errorf("prepare %s: %w", m.Activity.ID, err)
	}
	if name != "" {
		if _, err := e.cfg.Provision(name); err != nil {
			return fmt.Errorf("prepare %s: make the key of Case Actor %s: %w", m.Activity.ID, name, err)
		}
	}
	return nil
}

// InvitationCase returns the case an answer to an invitation (an Accept
// or Reject of an Invite to a case) concerns: the Invite's target, or its
// context; "" for any other message. The outbox names it as the answer's
// context, as every case-scoped activity does.
func (e *Engine) InvitationCase(tx *store.ReadTx, m Message) string {
	switch m.Class.Semantic {
	case vocab.AcceptInviteActorToCase, vocab.RejectInviteActorToCase:
	default:
		return ""
	}
	obj := m.Activity.Object.Object
	if obj == nil {
		obj, _ = NewResolver(tx).Resolve(m.Activity.Object.IRI)
	}
	inv, ok := obj.(*vocab.Activity)
	if !ok {
		return ""
	}
	return firstNonEmpty(inv.Target.ID(), inv.Context.ID())
}

// OpensCase returns the case that an activity local actor from sends will
// open, "" when it opens none: the case of a report that a validation
// (RV) accepts, when from received the report and it is in no case yet
// (ApplyOutbound creates the case with the validation). The outbox names
// that case as the validation's context, which tells the reporter's node
// what case to look for should the Case Actor's announcements of it be
// lost (see receiveReportDecision).
func (e *Engine) OpensCase(tx *store.ReadTx, from LocalActor, m Message) (string, error) {
	caseID, _, err := e.opensCase(tx, from, m)
	return caseID, err
}

// opensCase returns the case a validation opens and the name of its Case
// Actor, or nothing (see OpensCase).
func (e *Engine) opensCase(tx *store.ReadTx, from LocalActor, m Message) (caseID, actorName string, err error) {
	if m.Class.Semantic != vocab.ValidateReport {
		return "", "", nil
	}
	_, rep, err := answeredOffer(m.Activity, m.Resolver)
	if err != nil {
		return "", "", nil // ApplyOutbound says what is wrong with it
	}
	rec, ok, err := readReport(tx, rep.ID, from.Name)
	if err != nil || !ok || rec.CaseID != "" || rec.Role != Receiver {
		return "", "", err
	}
	caseID, actorName, _ = e.caseNames(rec.ReportID, from.ID)
	return caseID, actorName, nil
}

// ApplyOutbound checks that local actor from may send the activity in its
// current protocol state and records the change it makes. recipients are
// the actors it is addressed to. It returns a *problem.Error with status
// 409 when the protocol forbids it now, and 422 when the node cannot act on
// it at all.
func (e *Engine) ApplyOutbound(tx *store.Tx, from LocalActor, recipients []string, m Message) error {
	// What the protocol forbids is said first: it is the more telling
	// refusal, and the activity's recipients are checked against the case
	// as it stands, which nothing a local actor sends changes here (the
	// Case Actor records it).
	if err := e.applyOutbound(tx, from, recipients, m); err != nil {
		return err
	}
	return e.checkAddressees(&tx.ReadTx, from, recipients, m)
}

// applyOutbound is ApplyOutbound but for the check of the recipients.
func (e *Engine) applyOutbound(tx *store.Tx, from LocalActor, recipients []string, m Message) error {
	a := m.Activity
	switch m.Class.Semantic {
	case vocab.SubmitReport:
		return e.submitReport(tx, from, recipients, m)
	case vocab.AckReport:
		_, rep, err := answeredOffer(a, m.Resolver)
		if err != nil {
			return err
		}
		if _, ok, err := readReport(&tx.ReadTx, rep.ID, from.Name); err != nil {
			return err
		} else if !ok {
			return problem.Conflict("%s has not received report %s, so it cannot acknowledge it", from.Name, rep.ID)
		}
		return nil
	case vocab.ValidateReport, vocab.InvalidateReport, vocab.CloseReport:
		_, rep, err := answeredOffer(a, m.Resolver)
		if err != nil {
			return err
		}
		rec, ok, err := readReport(&tx.ReadTx, rep.ID, from.Name)
		if err != nil {
			return err
		}
		if !ok {
			return problem.Conflict("%s has not received report %s", from.Name, rep.ID)
		}
		d, _ := decisionOf(m.Class.Semantic)
		ev := d.event
		if ev != cvdstate.RMClose && rec.Role != Receiver {
			return problem.Conflict("%s submitted report %s; only a receiver can %s it", from.Name, rep.ID, ev)
		}
		if ev == cvdstate.RMValidate && rec.CaseID != "" {
			return problem.Conflict("report %s is already in case %s; validating it opens no other case", rep.ID, rec.CaseID)
		}
		if of := a.Result.ID(); ev == cvdstate.RMClose && of != "" {
			return e.closeAsDuplicate(tx, from, rec, of, m)
		}
		next, _, err := rec.RM.Apply(ev)
		if err != nil {
			return stateConflict(from.Name, rep.ID, err)
		}
		rec.RM = next
		rec.UpdatedAt = e.now().UTC()
		if ev == cvdstate.RMValidate && rec.Role == Receiver && rec.CaseID == "" {
			// Validating a report opens its case; the report's event
			// names it and comes before the case's own.
			caseID, _, _ := e.caseNames(rec.ReportID, from.ID)
			if err := reportEvent(tx, rec, EventReportValidated, from.ID, caseID, rec.UpdatedAt); err != nil {
				return err
			}
			if err := e.createCase(tx, from, &rec, a, m, rec.UpdatedAt); err != nil {
				return err
			}
		} else {
			if rec.CaseID != "" {
				if err := e.checkCase(tx, from, rec.CaseID, m); err != nil {
					return err
				}
			}
			if err := reportEvent(tx, rec, decisionEvent(ev), from.ID, "", rec.UpdatedAt); err != nil {
				return err
			}
		}
		return writeReport(tx, rec)
	case vocab.CreateReport:
		return nil
	case vocab.AcceptInviteActorToCase, vocab.RejectInviteActorToCase:
		return e.answerInvite(tx, from, m)
	case vocab.AddReportToCase:
		return e.addReportToCase(tx, from, m)
	}
	caseID := e.caseOf(&tx.ReadTx, a)
	if err := e.checkContext(&tx.ReadTx, a); err != nil {
		return err
	}
	if caseID == "" {
		if m.Class.Semantic == vocab.CreateNote {
			return nil
		}
		return unhandled(m.Class)
	}
	return e.checkCase(tx, from, caseID, m)
}

// checkAddressees refuses (422) a case activity local actor from sends to
// an actor that is neither a participant of the case (one not removed)
// nor its Case Actor: what a case says reaches only those who may read it.
// It leaves alone what the protocol sends to others on purpose: a
// report's messages, which go to the report's parties before and after it
// joins a case; the published advisory, which is public; an invitation to
// its invitee; a report added to a case to its reporter; an answer to the
// sender of what it answers. An activity of no case this node holds is
// not checked here: the Case Actor that holds it decides.
func (e *Engine) checkAddressees(tx *store.ReadTx, from LocalActor, recipients []string, m Message) error {
	switch m.Class.Semantic {
	case vocab.SubmitReport, vocab.AckReport, vocab.ValidateReport, vocab.InvalidateReport, vocab.CloseReport, vocab.CreateReport,
		vocab.PublishAdvisory, vocab.ReviseAdvisory:
		return nil
	}
	if len(recipients) == 0 {
		return nil
	}
	caseID := e.caseOf(tx, m.Activity)
	if caseID == "" {
		return nil
	}
	c, err := loadCase(tx, caseID)
	if err != nil || c == nil {
		return err
	}
	for _, r := range recipients {
		if r == c.CaseActor || c.CanRead(r) {
			continue
		}
		ok, err := e.addressedOnPurpose(tx, from, r, m)
		if err != nil {
			return err
		}
		if ok {
			continue
		}
		err = problem.Unprocessable("%s is not a participant of case %s: a case's activities go to its Case Actor and its participants; nothing was sent",
			problem.Clip(r, 200), c.ID)
		if hostedBy(tx, caseID) == "" {
			// This copy may lack the entry by which r joined.
			return &ReplicaRefusal{CaseID: caseID, Err: err}
		}
		return err
	}
	return nil
}

// addressedOnPurpose reports whether the protocol sends m to recipient r,
// no participant of m's case, on purpose (see checkAddressees).
func (e *Engine) addressedOnPurpose(tx *store.ReadTx, from LocalActor, r string, m Message) (bool, error) {
	a := m.Activity
	switch {
	case m.Class.Semantic == vocab.InviteActorToCase:
		return r == a.Object.ID(), nil
	case m.Class.Semantic == vocab.AddReportToCase:
		rec, ok, err := readReport(tx, a.Object.ID(), from.Name)
		return ok && rec.Reporter == r, err
	case m.Class.Semantic.IsReply():
		answered := a.Object.Object
		if answered == nil && m.Resolver != nil {
			answered, _ = m.Resolver.Resolve(a.Object.IRI)
		}
		inner, ok := answered.(*vocab.Activity)
		return ok && inner.Actor.ID() == r, nil
	}
	return false, nil
}

// checkCase tries a case-scoped activity a local actor sends on its view
// of the case: the Case Actor will apply the same rules to it. It also
// refuses what the Case Actor would acknowledge but the sender tables do
// not allow (Effects.Unsendable), such as an ET once the embargo ended.
func (e *Engine) checkCase(tx *store.Tx, from LocalActor, caseID string, m Message) error {
	c, err := loadCase(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if c == nil {
		return problem.Unprocessable("case %s is unknown to this node", caseID)
	}
	hosted := hostedBy(&tx.ReadTx, caseID) != ""
	if !hosted {
		s, err := loadSync(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		if s != nil && (s.Fork != nil || s.Rebuild) {
			return problem.Conflict("this node's copy of case %s differs from the Case Actor's ledger, so it sends nothing for the case until an operator replaces the copy (vultron case resync CASE --rebuild)", caseID)
		}
	}
	if m.Class.Unresolved || m.Class.Semantic == vocab.UnknownUnresolvableObject {
		// It names something this copy does not hold, which the Case Actor
		// may have recorded since.
		err := unhandled(m.Class)
		if !hosted {
			return &ReplicaRefusal{CaseID: caseID, Err: err}
		}
		return err
	}
	now := e.now().UTC()
	if err := e.checkEmbargoLength(m, now, "this node"); err != nil {
		return err
	}
	if err := checkProposedTime(m, now); err != nil { // publication.go
		return err
	}
	if err := checkProductVersions(m); err != nil { // publication.go
		return err
	}
	if err := checkProductCPE(m); err != nil { // publication.go
		return err
	}
	if err := checkEmbargoAndAdvisory(c, m); err != nil { // publication.go
		return err
	}
	eventType := EventType(m.Class.Semantic)
	if err := c.TrySend(eventType, m.Activity, now); err != nil {
		if !hosted && problem.Status(err) == http.StatusConflict {
			// The Case Actor may have recorded what this copy lacks yet.
			return &ReplicaRefusal{CaseID: caseID, Err: err}
		}
		return err
	}
	// The Case Actor will refuse what it cannot announce: say so now.
	payload, err := vocab.Marshal(m.Activity)
	if err != nil {
		return problem.Unprocessable("the activity cannot be serialised: %v", err)
	}
	entry, err := ledger.NewEntry(c.ID, c.LedgerLen, c.TailHash, m.Activity.ID, eventType, payload, now)
	if err != nil {
		return fmt.Errorf("check %s: %w", m.Activity.ID, err)
	}
	_, err = e.announceable(c, entry, now)
	return err
}

// checkEmbargoLength refuses an embargo proposal that would last longer
// than MaxEmbargo from now; who names the node that refuses, for the
// sentence.
func (e *Engine) checkEmbargoLength(m Message, now time.Time, who string) error {
	if e.cfg.MaxEmbargo <= 0 || m.Class.Semantic != vocab.InviteToEmbargoOnCase {
		return nil
	}
	ev, ok := m.Activity.Object.Object.(*vocab.EmbargoEvent)
	if !ok {
		return nil // Apply says what is wrong with it
	}
	end, err := time.Parse(time.RFC3339, ev.EndTime)
	if err != nil {
		return nil
	}
	return embargoLength("the proposed embargo", end, now, e.cfg.MaxEmbargo, who)
}

// embargoLength refuses (422) an embargo, named by what, that would last
// from now until end, longer than limit (no limit when it is not
// positive); who names the node that refuses, for the sentence.
func embargoLength(what string, end, now time.Time, limit time.Duration, who string) error {
	if limit <= 0 || end.Sub(now) <= limit {
		return nil
	}
	return problem.Unprocessable("%s would last %s, until %s; %s accepts embargoes of at most %s (--max-embargo)",
		what, days(end.Sub(now)), end.UTC().Format(time.RFC3339), who, days(limit))
}

// days writes a duration as a number of days, rounded up ("1 day", "400
// days"), or as hours and minutes when it is under a day.
func days(d time.Duration) string {
	if d < 24*time.Hour {
		return d.Round(time.Minute).String()
	}
	n := (d + 24*time.Hour - 1) / (24 * time.Hour)
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

// answerInvite checks a local actor's answer to an invitation to a case:
// it must answer an invitation it received, from the case's Case Actor.
// Accepting it makes the actor trust that Case Actor's announcements.
func (e *Engine) answerInvite(tx *store.Tx, from LocalActor, m Message) error {
	obj := m.Activity.Object.Object
	if obj == nil && m.Resolver != nil {
		obj, _ = m.Resolver.Resolve(m.Activity.Object.IRI)
	}
	inv, ok := obj.(*vocab.Activity)
	if !ok || inv.Type != "Invite" {
		return problem.Unprocessable("an answer to an invitation must name the Invite it answers")
	}
	if inv.Object.ID() != from.ID {
		return problem.Conflict("the invitation %s is for %s, not %s", inv.ID, inv.Object.ID(), from.ID)
	}
	stored, err := tx.Activity(inv.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("read the invitation %s: %w", inv.ID, err)
	}
	if err != nil || !Received(stored, from.Name) {
		return problem.Conflict("%s never received the invitation %s", from.Name, inv.ID)
	}
	caseID := inv.Target.ID()
	if caseID == "" {
		return problem.Unprocessable("the invitation %s names no case", inv.ID)
	}
	if m.Class.Semantic == vocab.AcceptInviteActorToCase {
		if err := setInvited(tx, caseID, from.Name, inv.Actor.ID()); err != nil {
			return err
		}
		return e.expectCase(tx, caseID, from.Name, inv.Actor.ID(), e.now().UTC())
	}
	return nil
}

// Received reports whether local actor name received the stored activity
// a: it came in from a peer, or a Case Actor of this node delivered it
// locally — such an activity stays stored as sent, with name among its
// recipients.
func Received(a store.StoredActivity, name string) bool {
	if a.Direction == store.DirectionInbound {
		return true
	}
	return a.Direction == store.DirectionOutbound && strings.HasPrefix(a.Actor, CaseActorPrefix) && slices.Contains(a.Recipients, name)
}

// Recipients returns the actors an activity a local actor sends must also
// reach: the Case Actor of the case a case-scoped activity is about.
func (e *Engine) Recipients(tx *store.ReadTx, m Message) []string {
	switch m.Class.Semantic {
	case vocab.SubmitReport, vocab.AckReport, vocab.ValidateReport, vocab.InvalidateReport, vocab.CloseReport, vocab.CreateReport:
		return nil
	case vocab.AcceptInviteActorToCase, vocab.RejectInviteActorToCase:
		obj := m.Activity.Object.Object
		if obj == nil {
			obj, _ = NewResolver(tx).Resolve(m.Activity.Object.IRI)
		}
		if inv, ok := obj.(*vocab.Activity); ok && inv.Actor.ID() != "" {
			return []string{inv.Actor.ID()}
		}
		return nil
	}
	c, err := loadCase(tx, e.caseOf(tx, m.Activity))
	if err != nil || c == nil {
		return nil
	}
	return []string{c.CaseActor}
}

// submitReport handles an Offer(VulnerabilityReport) a local actor sends:
// as the reporter of a new report, or as a receiver passing a report it is
// working on to another party.
func (e *Engine) submitReport(tx *store.Tx, from LocalActor, recipients []string, m Message) error {
	rep, err := offeredReport(m.Activity, m.Resolver)
	if err != nil {
		return err
	}
	if len(recipients) == 0 {
		return problem.Unprocessable("the offer of report %s has no recipient", rep.ID)
	}
	rec, found, err := readReport(&tx.ReadTx, rep.ID, from.Name)
	if err != nil {
		return err
	}
	if !found {
		rec = ReportRecord{ReportID: rep.ID, Actor: from.Name, Role: Reporter, RM: cvdstate.RMAccepted, OfferID: m.Activity.ID, Name: rep.Name}
	}
	// RS requires the sender to be working on the report (RM ACCEPTED).
	if rec.RM != cvdstate.RMAccepted {
		return problem.Conflict("%s is in %s for report %s; a report can be submitted only from ACCEPTED", from.Name, rec.RM, rep.ID)
	}
	if _, err := offeredEmbargo(m.Activity, e.now().UTC(), e.cfg.MaxEmbargo); err != nil {
		return err
	}
	if rec.Peers == nil {
		rec.Peers = map[string]cvdstate.RMState{}
	}
	for _, r := range recipients {
		if _, known := rec.Peers[r]; !known {
			rec.Peers[r] = cvdstate.RMStart
		}
	}
	rec.UpdatedAt = e.now().UTC()
	if err := writeReport(tx, rec); err != nil {
		return err
	}
	if found {
		return nil
	}
	return reportEvent(tx, rec, EventReportSubmitted, from.ID, "", rec.UpdatedAt)
}

// firstRef returns the id of the first reference in refs, or "".
func firstRef(refs vocab.Refs) string {
	for _, r := range refs.Items {
		if id := r.ID(); id != "" {
			return id
		}
	}
	return ""
}
