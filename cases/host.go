package cases

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// The Case Actor of a case is a Service actor hosted by the node of the
// organization that created the case. It is the single writer of the
// case's ledger: every case-scoped activity is sent to it; it decides with
// Apply whether to record it, appends an entry, and announces the entry to
// every participant on another node. Participants on the hosting node read
// the ledger it writes directly.
//
// When the ownership of a case moves to a participant on another node, the
// Case Actor stays where it is and acts for the new owner (the owner's
// decisions arrive at it like every other case-scoped activity). Moving the
// single writer would mean handing over its key and its ledger and
// redirecting every participant; keeping it makes an ownership transfer one
// ledger entry that every replica can verify.

// CaseActorPrefix starts the local name of every Case Actor.
const CaseActorPrefix = "case-"

// caseNames derives the ids of the case a receiver opens for a report: the
// same report validated by the same actor always opens the same case, so
// that a write the store retries cannot create two.
func (e *Engine) caseNames(reportID, owner string) (caseID, actorName, actorID string) {
	sum := sha256.Sum256([]byte(reportID + "|" + owner))
	cid := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:16]))
	actorName = CaseActorPrefix + cid
	return e.cfg.PublicURL + "/cases/" + cid, actorName, e.cfg.PublicURL + "/actors/" + actorName
}

// createCase opens a case for a report its receiver validated: the
// receiver owns it, the reporter takes part as finder and reporter, and the
// owner's default embargo (if it has one) is in force from the start. It
// records the creation and the validation as the first two entries.
func (e *Engine) createCase(tx *store.Tx, owner LocalActor, rec *ReportRecord, rv *vocab.Activity, m Message, now time.Time) error {
	offer, report, err := answeredOffer(rv, m.Resolver)
	if err != nil {
		return err
	}
	reporter := reporterOf(&tx.ReadTx, *rec)
	if reporter == "" {
		return problem.Conflict("report %s has no reporter to open a case with", rec.ReportID)
	}
	// Whole seconds: the case's publication time is written with them, and
	// its genesis hash must be reproducible from what is written.
	now = now.Truncate(time.Second)
	caseID, actorName, actorID := e.caseNames(rec.ReportID, owner.ID)
	if existing, err := loadCase(&tx.ReadTx, caseID); err != nil {
		return err
	} else if existing != nil {
		return nil
	}
	la, ok, err := e.cfg.Provisioned(actorName)
	if err != nil {
		return fmt.Errorf("create the case actor of %s: %w", caseID, err)
	}
	if !ok {
		return fmt.Errorf("create the case actor of %s: no key for %s: %w", caseID, actorName, ErrUnprepared)
	}
	if err := tx.PutLocalActor(la); err != nil {
		return err
	}
	ownerRoles := e.cfg.Roles(owner.Name)
	ownerVFD := "vfd"
	if ownerRoles.Has(cvdstate.Vendor) {
		ownerVFD = "Vfd" // receiving the report made the vendor aware
	}
	consent := "NO_EMBARGO"
	em := "NONE"
	var embargo vocab.Ref
	var defaultEv *vocab.EmbargoEvent
	defaultEnd := now.Add(e.cfg.DefaultEmbargo)
	if e.cfg.DefaultEmbargo > 0 {
		consent, em = "SIGNATORY", "ACTIVE"
		defaultEv = &vocab.EmbargoEvent{}
		defaultEv.ID, defaultEv.Type = caseID+"/embargoes/1", vocab.TypeEmbargoEvent
		defaultEv.Context = vocab.RefTo(caseID)
		defaultEv.StartTime = now.Format(time.RFC3339)
		defaultEv.EndTime = defaultEnd.Format(time.RFC3339)
		defaultEv.Name = "Embargo of " + caseID
		embargo = vocab.Inline(defaultEv)
	}
	// The reporter's embargo proposal (RS|EP) meets the owner's default
	// embargo, which counts as the receiver's initial proposal (spec §2.5,
	// defaults): with no default the reporter's proposal is pending from
	// the reporter (PROPOSED); with one, the shorter terms are in force
	// and the longer are a pending revision (REVISE, when the signatories'
	// consent lapses). Terms longer than the default (or ending with it)
	// leave the default in force with the reporter's pending; shorter ones
	// are in force, attributed to the reporter, with the default pending
	// from the owner. The pending terms are written into the case's
	// creation as the Invite the reporter's Offer stood for, under an id
	// the Case Actor derives, so that every replica knows what an answer
	// to it names.
	var proposal *vocab.Activity
	if offer != nil && offer.Actor.ID() == reporter {
		terms, err := offeredEmbargo(offer, now, e.cfg.MaxEmbargo)
		if err == nil && terms != nil {
			ev := &vocab.EmbargoEvent{}
			ev.ID, ev.Type = caseID+"/embargoes/reporter", vocab.TypeEmbargoEvent
			ev.Context = vocab.RefTo(caseID)
			ev.StartTime, ev.EndTime = terms.Start.Format(time.RFC3339), terms.End.Format(time.RFC3339)
			ev.Name = "Embargo proposed with the report"
			proposer, pending := reporter, ev
			switch {
			case defaultEv == nil:
				em = "PROPOSED"
			case terms.End.Before(defaultEnd):
				ev.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(reporter)}, Single: true}
				embargo = vocab.Inline(ev)
				proposer, pending = owner.ID, defaultEv
				em, consent = "REVISE", "LAPSED"
			default:
				em, consent = "REVISE", "LAPSED"
			}
			proposal = &vocab.Activity{}
			proposal.ID, proposal.Type = reporterProposalID(e.cfg.PublicURL, caseID, offer.ID), "Invite"
			proposal.Actor = vocab.RefTo(proposer)
			proposal.Object = vocab.Inline(pending)
			proposal.Context = vocab.RefTo(caseID)
			proposal.InReplyTo = vocab.RefTo(offer.ID)
			proposal.Published = now.Format(time.RFC3339)
			proposal.EndTime = now.Add(DefaultRSVPWindow).Format(time.RFC3339) // the RSVP deadline
		}
	}
	participant := func(actor, name string, roles cvdstate.RoleSet, rm, vfd string) vocab.Ref {
		return ParticipantRef(caseID, actor, name, roles, consent, rm, vfd)
	}
	vc := &vocab.VulnerabilityCase{}
	vc.ID, vc.Type = caseID, vocab.TypeVulnerabilityCase
	vc.Name = report.Name
	if vc.Name == "" {
		vc.Name = "Case for " + rec.ReportID
	}
	vc.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(owner.ID)}, Single: true}
	vc.Published = now.Format(time.RFC3339)
	vc.VulnerabilityReports = []vocab.Ref{vocab.Inline(report)}
	vc.CaseParticipants = []vocab.Ref{
		participant(owner.ID, owner.Name, ownerRoles|cvdstate.CaseOwner, "RECEIVED", ownerVFD),
		// Finders enter the process already working on their report.
		participant(reporter, "", cvdstate.Finder|cvdstate.Reporter, "ACCEPTED", "vfd"),
	}
	status := &vocab.CaseStatus{EMState: em, PXAState: "pxa"}
	status.Type = vocab.TypeCaseStatus
	status.Context = vocab.RefTo(caseID)
	vc.CaseStatuses = []vocab.Ref{vocab.Inline(status)}
	vc.ActiveEmbargo = embargo
	if proposal != nil {
		vc.CaseActivity = []vocab.Ref{vocab.Inline(proposal)}
		vc.ProposedEmbargoes = []vocab.Ref{vocab.RefTo(proposal.Object.ID())}
		vc.PendingEmbargoProposalIndex = map[string]string{proposal.Object.ID(): proposal.ID}
	}
	vc.GenesisHash = ledger.GenesisHash(caseID, now, actorID)

	create := vocab.CaseCreation(actorID, vc, now)

	c := &Case{}
	b, err := tx.Case(caseID)
	if err != nil {
		return err
	}
	if err := b.Put(keyHost, []byte(actorName)); err != nil {
		return err
	}
	c.TailHash = vc.GenesisHash
	if _, err := e.record(tx, c, actorName, create, EventType(vocab.CreateCase), now); err != nil {
		return err
	}
	rec.CaseID = caseID
	// The validation that opened the case is the case's second entry, as
	// it is sent: with the Offer it answers inline (vocab.CarryAnswered).
	sent, err := vocab.CarryAnswered(rv, m.Resolver)
	if err != nil {
		return problem.Unprocessable("%s", err.Error())
	}
	_, err = e.record(tx, c, actorName, sent, EventType(vocab.ValidateReport), now)
	return err
}

// reporterProposalID derives the id of the Invite(EmbargoEvent) pending in
// the case that the report offered in offerID with an embargo proposal
// opens: the reporter's proposal, or the owner's default embargo when the
// reporter's shorter terms are in force. It is an activity id on the Case
// Actor's node that the case's creation carries.
func reporterProposalID(publicURL, caseID, offerID string) string {
	sum := sha256.Sum256([]byte(caseID + "|" + offerID))
	return publicURL + "/activities/ep-" + hex.EncodeToString(sum[:13])
}

// record applies an activity to a case the node hosts, appends it to the
// ledger, announces the entry, and carries out its effects. It returns a
// *problem.Error, and changes nothing, when Apply refuses the activity.
func (e *Engine) record(tx *store.Tx, c *Case, actorName string, act *vocab.Activity, eventType string, now time.Time) (Effects, error) {
	work := c.clone()
	fx, err := work.Apply(eventType, act, now)
	if err != nil {
		return Effects{}, err
	}
	payload, err := vocab.Marshal(act)
	if err != nil {
		return Effects{}, fmt.Errorf("record %s: encode payload: %w", act.ID, err)
	}
	entry, err := ledger.NewEntry(work.ID, c.LedgerLen, c.TailHash, act.ID, eventType, payload, now)
	if err != nil {
		return Effects{}, fmt.Errorf("record %s: %w", act.ID, err)
	}
	announcement, err := e.announceable(work, entry, now)
	if err != nil {
		return Effects{}, err
	}
	if err := appendEntry(tx, entry); err != nil {
		return Effects{}, err
	}
	if err := recordEvent(tx, work, entry, act.Actor.ID()); err != nil {
		return Effects{}, err
	}
	work.LedgerLen, work.TailHash, work.UpdatedAt = entry.LogIndex+1, entry.EntryHash, now
	before := *c // Apply changed only work's copies
	*c = *work
	if err := saveCase(tx, c); err != nil {
		return Effects{}, err
	}
	// Announce the entry to every participant on another node that is to
	// be sent it (AnnounceTo), a new one included: a participant that
	// lacks earlier entries (a new one lacks them all, one out of active
	// work those it was not sent) fetches them from the ledger itself (see
	// sync.go), so that what a join costs here does not grow with the
	// ledger.
	var to []string
	for _, a := range c.AnnounceTo(&before, act.Actor.ID()) {
		if !e.cfg.IsLocal(a) {
			to = append(to, a)
		}
	}
	if err := e.enqueueAnnouncement(tx, c, actorName, announcement, to, now); err != nil {
		return Effects{}, err
	}
	if fx.Invite != nil {
		if err := e.sendInvite(tx, c, actorName, *fx.Invite, now); err != nil {
			return Effects{}, err
		}
	}
	if fx.OfferParticipant != nil {
		if err := e.offerParticipant(tx, c, actorName, *fx.OfferParticipant, now); err != nil {
			return Effects{}, err
		}
	}
	if fx.Decided != nil {
		if err := e.answerSuggestion(tx, c, actorName, *fx.Decided, fx.Accepted, now); err != nil {
			return Effects{}, err
		}
	}
	if fx.CloseCase {
		if err := e.closeCase(tx, c, actorName, now); err != nil {
			return Effects{}, err
		}
	}
	return fx, nil
}

// closeCase records, right after the owner's Leave and in its
// transaction, the Case Actor's closing of case c (spec §1.5, CM-23-002):
// its own Leave of the case, under the event type EventCaseFullyClosed,
// appended and announced like every entry, to every participant (the
// closing sets Closure, so AnnounceTo names them all).
func (e *Engine) closeCase(tx *store.Tx, c *Case, actorName string, now time.Time) error {
	leave := vocab.CaseClosing(c.CaseActor, c.ID, c.Name, c.Owner, now)
	if _, err := e.record(tx, c, actorName, leave, EventCaseFullyClosed, now); err != nil {
		return fmt.Errorf("close case %s after its owner left: %w", c.ID, err)
	}
	return nil
}

// offerParticipant queues the Case Actor's offer to the owner of a
// participant for a suggestion, as the reference makes it:
// Offer(CaseParticipant) to the case, its origin the suggestion, under the
// id the case derived for it (Suggestion.Offered). The owner accepts or
// rejects this offer.
func (e *Engine) offerParticipant(tx *store.Tx, c *Case, actorName string, s Suggestion, now time.Time) error {
	cp := &vocab.CaseParticipant{}
	cp.ID, cp.Type = ParticipantID(c.ID, s.Actor), vocab.TypeCaseParticipant
	cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(s.Actor)}, Single: true}
	cp.Context = vocab.RefTo(c.ID)
	cp.CaseRoles = s.Roles.Names()
	a := &vocab.Activity{}
	a.ID, a.Type = s.Offered, "Offer"
	a.Actor = vocab.RefTo(c.CaseActor)
	a.Object = vocab.Inline(cp)
	a.Target = vocab.RefTo(c.ID)
	a.Origin = vocab.RefTo(s.ID)
	a.Context = vocab.RefTo(c.ID)
	a.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(c.Owner)}}
	a.Published = now.Format(time.RFC3339)
	a.Content = fmt.Sprintf("%s suggests inviting %s to case %q; accept or reject this offer.", s.By, s.Actor, c.Name)
	body, err := vocab.Marshal(a)
	if err != nil {
		return fmt.Errorf("offer %s to the owner of %s: %w", s.Actor, c.ID, err)
	}
	return tx.EnqueueOutbound(store.Outbound{ID: a.ID, Actor: actorName, Body: body,
		Semantic: string(vocab.OfferCaseParticipant), CreatedAt: now,
		Deliveries: []store.DeliveryTarget{{Recipient: c.Owner, OrderingKey: c.ID}}})
}

// answerSuggestion queues the Case Actor's answer to the participant that
// suggested an actor, once the owner decided: Accept or Reject of its
// Offer(Actor), in reply to it.
func (e *Engine) answerSuggestion(tx *store.Tx, c *Case, actorName string, s Suggestion, accepted bool, now time.Time) error {
	a := &vocab.Activity{}
	a.Type = "Reject"
	a.Summary = fmt.Sprintf("The owner of case %q did not invite %s.", c.Name, s.Actor)
	if accepted {
		a.Type, a.Summary = "Accept", fmt.Sprintf("The owner of case %q invited %s.", c.Name, s.Actor)
	}
	a.Actor = vocab.RefTo(c.CaseActor)
	a.Object = vocab.RefTo(s.ID)
	res := NewResolver(&tx.ReadTx)
	if o, ok := res.Resolve(s.ID); ok {
		if offer, isActivity := o.(*vocab.Activity); isActivity {
			a.Object = vocab.Inline(vocab.Stub(offer, res))
		}
	}
	a.InReplyTo = vocab.RefTo(s.ID)
	a.Context = vocab.RefTo(c.ID)
	a.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(s.By)}}
	return e.queueReply(tx, actorName, s.By, c.ID, a, now)
}

// DefaultMaxAnnouncement is the largest announcement of a ledger entry a
// Case Actor sends when its engine is given no other limit: a node's
// default largest activity (256 KiB) and AnnouncementMargin.
const DefaultMaxAnnouncement = 256<<10 + AnnouncementMargin

// AnnouncementMargin is how much larger than the largest activity a node
// accepts its inbox takes, so that the announcement of any activity a Case
// Actor recorded (the activity, plus the entry's hashes, times and ids)
// fits in every participant's inbox.
const AnnouncementMargin = 64 << 10

// pendingAnnouncement is the Announce(CaseLedgerEntry) of one entry.
type pendingAnnouncement struct {
	id   string
	body []byte
}

// announcement builds the Announce(CaseLedgerEntry) of entry of case c.
func (e *Engine) announcement(c *Case, entry ledger.Entry, now time.Time) (pendingAnnouncement, error) {
	id := e.cfg.NewID("activities")
	body, err := Announcement(c.CaseActor, id, entry, now)
	if err != nil {
		return pendingAnnouncement{}, err
	}
	return pendingAnnouncement{id: id, body: body}, nil
}

// Announcement returns the body of the Announce(CaseLedgerEntry), with
// the given id, by which a case's Case Actor announces entry to its
// participants. The entry travels in its canonical form, byte for byte,
// with the id of the entry added: its size is the entry's plus a few
// hundred bytes.
func Announcement(caseActor, id string, entry ledger.Entry, now time.Time) ([]byte, error) {
	raw, err := ledger.Marshal(entry)
	if err != nil {
		return nil, fmt.Errorf("announce entry %d of %s: %w", entry.LogIndex, entry.CaseID, err)
	}
	entryID, err := json.Marshal(fmt.Sprintf("%s/ledger/%d", entry.CaseID, entry.LogIndex))
	if err != nil {
		return nil, err
	}
	obj := make([]byte, 0, len(raw)+len(entryID)+8)
	obj = append(obj, `{"id":`...)
	obj = append(obj, entryID...)
	obj = append(obj, ',')
	obj = append(obj, raw[1:]...)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err = enc.Encode(struct {
		Context   string          `json:"@context"`
		ID        string          `json:"id"`
		Type      string          `json:"type"`
		Actor     string          `json:"actor"`
		CaseID    string          `json:"context"`
		Published string          `json:"published"`
		Object    json.RawMessage `json:"object"`
	}{vocab.VultronContext, id, "Announce", caseActor, entry.CaseID, now.Format(time.RFC3339), obj})
	if err != nil {
		return nil, fmt.Errorf("announce entry %d of %s: %w", entry.LogIndex, entry.CaseID, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// announceable builds the announcement of entry of case c and refuses,
// with a 422 *problem.Error naming both sizes, one larger than the inbox
// of a participant's node accepts.
func (e *Engine) announceable(c *Case, entry ledger.Entry, now time.Time) (pendingAnnouncement, error) {
	a, err := e.announcement(c, entry, now)
	if err != nil {
		return a, err
	}
	if len(a.body) > e.cfg.MaxAnnouncement {
		return a, problem.Unprocessable("activity %s is %d bytes; its announcement to the participants of case %s would be %d bytes, over the %d bytes a node's inbox accepts",
			entry.LogObjectID, len(entry.PayloadSnapshot), c.ID, len(a.body), e.cfg.MaxAnnouncement)
	}
	return a, nil
}

// enqueueAnnouncement queues an announcement from the Case Actor to each
// recipient, in the case's delivery lane so that each recipient receives
// the entries in ledger order.
func (e *Engine) enqueueAnnouncement(tx *store.Tx, c *Case, actorName string, a pendingAnnouncement, to []string, now time.Time) error {
	if len(to) == 0 {
		return nil
	}
	targets := make([]store.DeliveryTarget, len(to))
	for i, r := range to {
		targets[i] = store.DeliveryTarget{Recipient: r, OrderingKey: c.ID}
	}
	return tx.EnqueueOutbound(store.Outbound{ID: a.id, Actor: actorName, Body: a.body,
		Semantic: string(vocab.AnnounceCaseLedgerEntry), CreatedAt: now, Deliveries: targets})
}

// sendInvite queues the Case Actor's invitation of an actor to the case,
// on the owner's behalf. Its target is a stub of the case carrying the
// embargo in force: accepting the invitation accepts that embargo, and the
// case's content reaches the invitee only after it accepted.
func (e *Engine) sendInvite(tx *store.Tx, c *Case, actorName string, inv Invite, now time.Time) error {
	stub := &vocab.VulnerabilityCase{}
	stub.ID, stub.Type = c.ID, vocab.TypeVulnerabilityCase
	stub.Summary = c.Name
	status := &vocab.CaseStatus{EMState: c.EM.String(), PXAState: c.PXA.String()}
	status.Type = vocab.TypeCaseStatus
	stub.CaseStatus = status
	if c.EM.InForce() && c.Embargo != nil {
		ev := &vocab.EmbargoEvent{}
		ev.ID, ev.Type = c.Embargo.ID, vocab.TypeEmbargoEvent
		ev.EndTime = c.Embargo.End.Format(time.RFC3339)
		stub.ActiveEmbargo = vocab.Inline(ev)
	}
	// The invitee is named inline, typed as an actor, so that its node
	// classifies the invitation without fetching anything.
	invitee := &vocab.Actor{}
	invitee.ID, invitee.Type = inv.Actor, inv.ActorType
	if invitee.Type == "" {
		invitee.Type = "Organization"
	}
	a := &vocab.Activity{}
	a.ID, a.Type = inv.Sent, "Invite"
	if a.ID == "" {
		a.ID = e.cfg.NewID("activities")
	}
	a.Actor = vocab.RefTo(c.CaseActor)
	a.Object = vocab.Inline(invitee)
	a.Target = vocab.Inline(stub)
	a.Context = vocab.RefTo(c.ID)
	a.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(inv.Actor)}}
	a.Published = now.Format(time.RFC3339)
	a.Content = fmt.Sprintf("You are invited to take part in case %q on behalf of %s.", c.Name, inv.By)
	for _, r := range cvdstate.Roles() {
		if inv.Roles.Has(r) {
			a.Roles = append(a.Roles, r.String())
		}
	}
	body, err := vocab.Marshal(a)
	if err != nil {
		return fmt.Errorf("invite %s to %s: %w", inv.Actor, c.ID, err)
	}
	return tx.EnqueueOutbound(store.Outbound{ID: a.ID, Actor: actorName, Body: body,
		Semantic: string(vocab.InviteActorToCase), CreatedAt: now,
		Deliveries: []store.DeliveryTarget{{Recipient: inv.Actor, OrderingKey: c.ID}}})
}

// hostInbound handles an activity sent to the Case Actor of a case this
// node hosts: it records it and acknowledges it, or answers why it does
// not (replies.go). A reply to something the Case Actor sent (an
// invitee's acknowledgement of its invitation) is kept, not recorded.
func (e *Engine) hostInbound(tx *store.Tx, caseActor LocalActor, sender string, m Message, now time.Time) ([]Reply, error) {
	act := m.Activity
	if m.Class.Semantic.IsReply() {
		return e.receiveReply(tx, caseActor, sender, m, now)
	}
	caseID := e.caseOf(&tx.ReadTx, act)
	if le, ok := act.Object.Object.(*vocab.CaseLedgerEntry); ok && m.Class.Semantic == vocab.RejectCaseLedgerEntry {
		caseID = le.CaseID
	}
	c, err := loadCase(&tx.ReadTx, caseID)
	if err != nil {
		return nil, err
	}
	if c == nil || c.CaseActor != caseActor.ID {
		return nil, problem.NotFound("%s hosts no case %q", caseActor.ID, caseID)
	}
	if err := e.checkContext(&tx.ReadTx, act); err != nil {
		return nil, err
	}
	if m.Class.Semantic == vocab.RejectCaseLedgerEntry {
		return nil, problem.Unprocessable("the Case Actor of case %s does not replay its ledger on request: a participant fetches what it lacks with a signed GET of %s/ledger", c.ID, c.ID)
	}
	eventType := EventType(m.Class.Semantic)
	before, received := c.state(), c.received(eventType, act)
	err = e.checkEmbargoLength(m, now, "the Case Actor of case "+c.ID)
	if err == nil {
		err = c.CheckRSVP(eventType, act, now)
	}
	if err == nil {
		err = checkProductVersions(m)
	}
	if err == nil {
		err = checkProductCPE(m)
	}
	if err == nil {
		err = checkEmbargoAndAdvisory(c, m)
	}
	if err == nil {
		_, err = e.record(tx, c, caseActor.Name, act, eventType, now)
	}
	if err == nil {
		return nil, e.answerRecorded(tx, c, caseActor.Name, sender, act, received, before, now)
	}
	if problem.Status(err) >= 500 {
		return nil, err
	}
	// The activity arrived and is kept in the Case Actor's inbox, but the
	// case does not record it: tell the sender why.
	return nil, e.answerRefused(tx, c, caseActor.Name, sender, act, received, before, err, now)
}

// caseOf returns the case an activity is about: its context, or else the
// case it targets or carries.
func (e *Engine) caseOf(tx *store.ReadTx, act *vocab.Activity) string {
	id, _ := e.caseOfDepth(tx, act, 0)
	return id
}

// caseOfDepth is caseOf, with the first failure of the store it met: a
// case whose record it could not read, or an answered activity it could
// not read, is passed over as one the node does not hold, though the
// activity may be about it.
func (e *Engine) caseOfDepth(tx *store.ReadTx, act *vocab.Activity, depth int) (string, error) {
	var failed error
	for _, id := range []string{act.Context.ID(), act.Target.ID(), act.Object.ID(), act.Origin.ID()} {
		if id == "" {
			continue
		}
		c, err := loadCase(tx, id)
		if err != nil {
			failed = cmp.Or(failed, err)
			continue
		}
		if c != nil {
			return id, failed
		}
	}
	inner := act.Object.Object
	if inner == nil && act.Object.IRI != "" {
		// An answer that names the activity it answers by id: the case is
		// that activity's.
		r := NewResolver(tx)
		inner, _ = r.activity(act.Object.IRI)
		failed = cmp.Or(failed, r.Err())
	}
	if a, ok := inner.(*vocab.Activity); ok && depth < 3 {
		id, err := e.caseOfDepth(tx, a, depth+1)
		return id, cmp.Or(failed, err)
	}
	return act.Context.ID(), failed
}

// checkContext refuses (422) an activity whose context names another case
// than the one it acts on, which its target, object or origin, or the
// activity it answers, names: the ledger would record an activity that
// says it belongs to another case, and every receiver would place it
// there.
func (e *Engine) checkContext(tx *store.ReadTx, act *vocab.Activity) error {
	got := act.Context.ID()
	if got == "" {
		return nil
	}
	// The case the activity acts on is the one caseOf finds when the
	// activity names no context.
	bare := *act
	bare.Context = vocab.Ref{}
	acted, err := e.caseOfDepth(tx, &bare, 0)
	if err != nil {
		return err // a case the store cannot read may be the one it acts on
	}
	if acted == "" || acted == got {
		return nil
	}
	if c, err := loadCase(tx, acted); err != nil || c == nil {
		return err // a case the store cannot read is not one this node lacks
	}
	return problem.Unprocessable("this %s acts in case %s, but its context names %s: an activity of a case names that case as its context",
		act.Type, acted, got)
}
