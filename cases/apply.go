package cases

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// Effects are what recording an activity requires of the Case Actor beyond
// the ledger entry itself.
type Effects struct {
	// Invite is an invitation the Case Actor sends on the owner's behalf.
	Invite *Invite
	// Joined is an actor that just became a participant: it is sent the
	// whole ledger so far.
	Joined string
	// Messages are the protocol messages the recorded activity carries,
	// including the consequences (CP|ET when the public learns of an
	// embargoed vulnerability).
	Messages cvdstate.MessageType
	// OfferParticipant is a suggestion just recorded: the Case Actor
	// offers the owner a participant for it (Offer(CaseParticipant)).
	OfferParticipant *Suggestion
	// Decided is a suggestion the owner just decided on by answering the
	// Case Actor's offer, and Accepted the decision: the Case Actor tells
	// the suggester (Accept or Reject of its Offer(Actor)).
	Decided  *Suggestion
	Accepted bool
	// Unsendable, when not nil, is why a participant may not send the
	// activity although a receiver acknowledges it: it changes nothing
	// (a status the case already knows, a repeat of the sender's own RM
	// step, an ET once the embargo ended). The receiver tables answer
	// such a message with K and no transition, so the Case Actor records
	// it and every replica applies it; the sender tables have no row for
	// it, so the node refuses it from its own actors (Engine.checkCase).
	Unsendable error
	// CloseCase is set when the owner just left: the Case Actor closes
	// the case right after, in the same transaction, with an entry of its
	// own (EventCaseFullyClosed).
	CloseCase bool
}

// EventCaseFullyClosed is the ledger event type of the Case Actor's
// closing of its case once the owner left (spec §1.5, CM-23-002): the
// Case Actor's own Leave of the case (vocab.CaseClosing), recorded right
// after the owner's.
const EventCaseFullyClosed = "case_fully_closed"

// EventType returns the ledger event type that records an activity of the
// given semantic: its name in lower case, as the ledger spells it.
func EventType(s vocab.Semantic) string { return strings.ToLower(string(s)) }

// Apply folds one recorded activity into the case. The Case Actor calls it
// on a copy to decide whether to record an activity; every replica calls it
// for every entry, in ledger order, with the entry's time, and reaches the
// same state. It returns a *problem.Error saying why when the activity is
// not allowed: 403 for a sender that may not act in the case, 409 for a
// step the protocol forbids now, 422 for a malformed activity.
func (c *Case) Apply(eventType string, act *vocab.Activity, at time.Time) (Effects, error) {
	if eventType == EventType(vocab.CreateCase) {
		return Effects{}, c.create(act, at)
	}
	if c.ID == "" {
		return Effects{}, problem.Conflict("the case does not exist yet")
	}
	if eventType == EventCaseFullyClosed {
		return Effects{}, c.closeFully(act, at)
	}
	sender := act.Actor.ID()
	if c.Closure != nil {
		// The owner left: nothing but a remaining participant's own
		// Leave, so that every participant ends CLOSED.
		if p := c.Participant(sender); eventType != EventType(vocab.CloseCase) || p == nil || !p.Engaged() {
			return Effects{}, c.closedError()
		}
	} else if c.EveryoneLeft() {
		return Effects{}, problem.Conflict("case %s is closed: every participant has closed it, so it takes nothing but reads", c.ID)
	}
	// Invitees answer invitations before they are participants.
	switch eventType {
	case EventType(vocab.AcceptInviteActorToCase):
		return c.acceptInvite(sender, act.Object.ID(), at)
	case EventType(vocab.RejectInviteActorToCase):
		return Effects{}, c.rejectInvite(sender, act.Object.ID())
	}
	p := c.Participant(sender)
	if p == nil || p.Removed {
		return Effects{}, problem.Forbidden("%s is not a participant of case %s", sender, c.ID)
	}
	c.UpdatedAt = at
	switch eventType {
	case EventType(vocab.ValidateReport):
		return c.stepRM(p, cvdstate.RMValidate)
	case EventType(vocab.InvalidateReport):
		return c.stepRM(p, cvdstate.RMInvalidate)
	case EventType(vocab.EngageCase):
		return c.stepRM(p, cvdstate.RMAccept)
	case EventType(vocab.DeferCase):
		return c.stepRM(p, cvdstate.RMDefer)
	case EventType(vocab.CloseCase):
		fx, err := c.stepRM(p, cvdstate.RMClose)
		// The owner's Leave closes the case for everyone: its Case Actor
		// records that next (CM-23-002); anyone else's closes only its
		// own report (CM-23-003).
		fx.CloseCase = err == nil && p.Actor == c.Owner && c.Closure == nil
		return fx, err
	case EventType(vocab.AddNoteToCase), EventType(vocab.CreateNote):
		if note, ok := act.Object.Object.(*vocab.GenericObject); ok && note.Type == "Note" {
			if err := c.noteExtensions(p, note, at); err != nil { // publication.go
				return Effects{}, err
			}
		}
		return Effects{Messages: cvdstate.GI}, c.addNote(sender, act, at)
	case EventType(vocab.AddProductStatusToCase):
		return Effects{Messages: cvdstate.GI}, c.addProduct(p, act, at) // publication.go
	case EventType(vocab.PublishAdvisory):
		return Effects{Messages: cvdstate.GI}, c.publish(p, act, false, at)
	case EventType(vocab.ReviseAdvisory):
		return Effects{Messages: cvdstate.GI}, c.publish(p, act, true, at)
	case EventType(vocab.AddReportToCase):
		return Effects{}, c.addReport(p, act)
	case EventType(vocab.UpdateCase):
		return Effects{}, c.link(p, act)
	case EventType(vocab.AddParticipantStatusToParticipant):
		return c.status(p, act, at)
	case EventType(vocab.AddVulnerabilityRecordToCase):
		return Effects{}, c.addVulnerabilityIDs(act) // vulnids.go
	case EventType(vocab.InviteToEmbargoOnCase):
		return c.proposeEmbargo(p, act, at)
	case EventType(vocab.AcceptInviteToEmbargoOnCase):
		return c.acceptEmbargo(p, act, at)
	case EventType(vocab.RejectInviteToEmbargoOnCase):
		return c.rejectEmbargo(p, act, at)
	case EventType(vocab.RemoveEmbargoEventFromCase):
		if c.Embargo != nil && c.EM.InForce() && act.Object.ID() != c.Embargo.ID {
			return Effects{}, problem.Conflict("%s is not the embargo in force in case %s (%s is)", act.Object.ID(), c.ID, c.Embargo.ID)
		}
		return c.terminateEmbargo(p, act, at)
	case EventType(vocab.InviteActorToCase):
		fx, err := c.invite(p, act.Object.ID(), roleSet(act.Roles), act.ID, at)
		if err == nil && act.Object.Object != nil {
			// Keep what the invitation says of the invitee: its type, for
			// the Case Actor's own invitation, and its name, for contact.
			o := act.Object.Object.Common()
			inv := &c.Invites[len(c.Invites)-1]
			inv.ActorType, inv.ActorName = o.Type, o.Name
			if a, ok := act.Object.Object.(*vocab.Actor); ok && inv.ActorName == "" {
				inv.ActorName = a.PreferredUsername
			}
			copied := *inv
			fx.Invite = &copied
		}
		return fx, err
	case EventType(vocab.OfferActorToCase):
		return c.suggest(p, act)
	case EventType(vocab.AcceptOfferCaseParticipant):
		return c.decideOffered(p, act.Object.ID(), true, at)
	case EventType(vocab.RejectOfferCaseParticipant):
		return c.decideOffered(p, act.Object.ID(), false, at)
	case EventType(vocab.AcceptActorRecommendation):
		// The owner's answer to the suggestion itself: the flow of nodes
		// before the Case Actor offered the owner a participant, accepted
		// for one release (docs/protocol.md).
		return c.decideSuggestion(p, act.Object.ID(), true, at)
	case EventType(vocab.RejectActorRecommendation):
		return c.decideSuggestion(p, act.Object.ID(), false, at)
	case EventType(vocab.RemoveCaseParticipantFromCase):
		return Effects{}, c.remove(p, act)
	case EventType(vocab.OfferCaseOwnershipTransfer):
		return Effects{}, c.offerTransfer(p, act)
	case EventType(vocab.AcceptCaseOwnershipTransfer):
		return Effects{}, c.decideTransfer(p, act.Object.ID(), true)
	case EventType(vocab.RejectCaseOwnershipTransfer):
		return Effects{}, c.decideTransfer(p, act.Object.ID(), false)
	}
	return Effects{}, problem.Unprocessable("case %s does not record %s activities", c.ID, strings.ToUpper(eventType))
}

// applyRecorded folds an entry the case's Case Actor recorded as applied,
// as a replica does: as Apply, but a refusal this release added, which a
// Case Actor of an earlier release did not make (laterRule), gives way to
// the Case Actor's disposition. The Case Actor is authoritative for its
// ledger (spec §7.8): one of this release records such an activity as
// rejected, which no replica applies, and one of an earlier release
// applied it, as every replica then does, so the replicas of a case whose
// nodes run different releases agree. Every other refusal still stands,
// and the entry's place in the hash chain is verified before (ledger).
func (c *Case) applyRecorded(eventType string, act *vocab.Activity, at time.Time) (Effects, error) {
	c.recorded = true
	defer func() { c.recorded = false }()
	return c.Apply(eventType, act, at)
}

// laterRule returns err, a refusal of a rule that Case Actors of earlier
// releases did not apply, unless the case is folding an entry its Case
// Actor recorded as applied (applyRecorded): a participant that closed the
// case answering an embargo proposal (answersEmbargo) or taking the
// ownership it was offered (decideTransfer).
func (c *Case) laterRule(err error) error {
	if c.recorded {
		return nil
	}
	return err
}

// closeFully records the Case Actor's closing of the case once its owner
// left (EventCaseFullyClosed): its own Leave of the case, after the
// owner's. The open invitations, suggestions and ownership offer end with
// it: nobody can answer them any more.
func (c *Case) closeFully(act *vocab.Activity, at time.Time) error {
	if by := act.Actor.ID(); by != c.CaseActor {
		return problem.Forbidden("only its Case Actor %s closes case %s for everyone, not %s; a participant closes its own part with Leave", c.CaseActor, c.ID, by)
	}
	if act.Type != "Leave" || act.Object.ID() != c.ID {
		return problem.Unprocessable("the Case Actor's Leave of case %s closes case %s; this is a %s of %q", c.ID, c.ID, act.Type, act.Object.ID())
	}
	if c.Closure != nil {
		return c.closedError()
	}
	if owner := c.Participant(c.Owner); owner == nil || owner.RM != cvdstate.RMClosed {
		return problem.Conflict("the owner %s of case %s has not left it, so its Case Actor does not close it", c.Owner, c.ID)
	}
	c.Closure = &Closure{At: at, Owner: c.Owner, Activity: act.ID}
	c.Invites, c.Suggestions, c.Transfer = nil, nil, nil
	c.endProposals(act.Actor.ID(), at)
	c.UpdatedAt = at
	return nil
}

// endProposals ends the open embargo proposals of a case its owner left,
// as the owner's rejection of them would (ER in PROPOSED, EJ in REVISE):
// nobody can answer them any more. A revision's lapsed signatories are
// bound again by the terms still in force (revisionRejected).
func (c *Case) endProposals(by string, at time.Time) {
	if len(c.Proposals) == 0 || !c.EM.Negotiating() {
		return
	}
	before := c.EM
	next, msg, err := c.EM.Apply(cvdstate.EMReject)
	if err != nil {
		return
	}
	c.EM, c.Proposals = next, nil
	if before == cvdstate.EMRevise {
		c.revisionRejected()
	} else {
		for _, o := range c.Participants {
			o.PEC = cvdstate.BulkConsent(o.PEC, cvdstate.PECReset)
		}
	}
	c.History = append(c.History, EmbargoStep{At: at, By: by, Message: msg.String(), From: before, To: c.EM,
		Reason: "the case closed when its owner left, which ended its open embargo proposals"})
}

// closedError is the refusal of an activity in a case its Case Actor
// closed because its owner left.
func (c *Case) closedError() error {
	return problem.Conflict("case %s is closed because its owner %s left it (%s), so its Case Actor closed it for every participant: it takes nothing more but a remaining participant's own Leave",
		c.ID, c.Closure.Owner, c.Closure.At.UTC().Format(time.RFC3339))
}

// addReport records the owner's adding of another report to the case:
// a report about the same vulnerability (a duplicate) is handled in the
// case that exists instead of opening one of its own.
func (c *Case) addReport(p *Participant, act *vocab.Activity) error {
	if p.Actor != c.Owner {
		return problem.Forbidden("only the case owner %s adds reports to case %s", c.Owner, c.ID)
	}
	id := act.Object.ID()
	if id == "" {
		return problem.Unprocessable("the report added to case %s has no id", c.ID)
	}
	if slices.Contains(c.Reports, id) {
		return problem.Conflict("report %s is already in case %s", id, c.ID)
	}
	c.Reports = append(c.Reports, id)
	return nil
}

// link records the owner's relating of the case to other cases: an
// Update of the case whose parentCases, childCases and siblingCases name
// them. Only the relations are read from it; each is added once.
func (c *Case) link(p *Participant, act *vocab.Activity) error {
	if p.Actor != c.Owner {
		return problem.Forbidden("only the case owner %s relates case %s to other cases", c.Owner, c.ID)
	}
	vc, ok := act.Object.Object.(*vocab.VulnerabilityCase)
	if !ok || vc.ID != c.ID {
		return problem.Unprocessable("an update of case %s carries the case itself, inline", c.ID)
	}
	var add []CaseLink
	for _, r := range []struct {
		rel   Relation
		cases []string
	}{{RelParent, vc.ParentCases}, {RelChild, vc.ChildCases}, {RelSibling, vc.SiblingCases}} {
		for _, other := range r.cases {
			if other == c.ID {
				return problem.Unprocessable("case %s cannot be related to itself", c.ID)
			}
			l := CaseLink{Relation: r.rel, Case: other}
			if slices.ContainsFunc(c.Links, func(x CaseLink) bool { return x.Case == other }) || slices.Contains(add, l) {
				return problem.Conflict("case %s is already related to %s", c.ID, other)
			}
			add = append(add, l)
		}
	}
	if len(add) == 0 {
		return problem.Unprocessable("the update of case %s relates it to no other case (parentCases, childCases, siblingCases); this node records no other update", c.ID)
	}
	if len(c.Links)+len(add) > maxLinks {
		return problem.Conflict("case %s would be related to more than %d cases", c.ID, maxLinks)
	}
	c.Links = append(c.Links, add...)
	return nil
}

// contactOf returns the contact record of a participant: its actor, the
// name it goes by, and its organization, which is the host that runs its
// node (each organization runs its own). The wire format carries no email
// address, so Email stays empty until a participant's actor publishes one.
func contactOf(actor, name string) Contact {
	c := Contact{Actor: actor, Name: name}
	if u, err := url.Parse(actor); err == nil {
		c.Organization = u.Hostname()
	}
	return c
}

// ParticipantID returns the id of actor's CaseParticipant object in a case.
func ParticipantID(caseID, actor string) string {
	sum := sha256.Sum256([]byte(actor))
	return caseID + "/participants/" + hex.EncodeToString(sum[:8])
}

// roleSet reads wire role names; unknown names are dropped (the wire
// format already refused malformed ones) and no role means vendor, the
// role a case most often invites.
func roleSet(names []string) cvdstate.RoleSet {
	var r cvdstate.RoleSet
	for _, n := range names {
		if one, err := cvdstate.ParseRoleSet(n); err == nil {
			r |= one
		}
	}
	r &^= cvdstate.CaseOwner | cvdstate.CaseManager // not granted by invitation
	if r == 0 {
		r = cvdstate.Vendor
	}
	return r
}

// create initialises the case from the Case Actor's Create(VulnerabilityCase).
func (c *Case) create(act *vocab.Activity, at time.Time) error {
	if c.ID != "" {
		return problem.Conflict("case %s already exists", c.ID)
	}
	vc, ok := act.Object.Object.(*vocab.VulnerabilityCase)
	if !ok || vc.ID == "" {
		return problem.Unprocessable("a case is created by a Create of an inline VulnerabilityCase with an id")
	}
	c.ID, c.Name, c.CaseActor = vc.ID, vc.Name, act.Actor.ID()
	c.Owner = firstRef(vc.AttributedTo)
	c.Published = parseTime(vc.Published, at)
	c.UpdatedAt = at
	for _, r := range vc.VulnerabilityReports {
		if id := r.ID(); id != "" {
			c.Reports = append(c.Reports, id)
		}
	}
	for _, ref := range vc.CaseParticipants {
		cp, ok := ref.Object.(*vocab.CaseParticipant)
		if !ok {
			return problem.Unprocessable("case %s lists a participant that is not an inline CaseParticipant", vc.ID)
		}
		p := &Participant{Actor: firstRef(cp.AttributedTo), ID: cp.ID, JoinedAt: at}
		if p.Actor == "" {
			return problem.Unprocessable("a participant of case %s has no attributedTo actor", vc.ID)
		}
		p.Contact = contactOf(p.Actor, cp.ParticipantCaseName)
		roles, err := cvdstate.ParseRoleSet(strings.Join(cp.CaseRoles, "|"))
		if err != nil && len(cp.CaseRoles) > 0 {
			return problem.Unprocessable("participant %s of case %s: %v", p.Actor, vc.ID, err)
		}
		p.Roles = roles
		if cp.EmbargoConsentState != "" {
			if p.PEC, err = cvdstate.ParsePEC(cp.EmbargoConsentState); err != nil {
				return problem.Unprocessable("participant %s of case %s: %v", p.Actor, vc.ID, err)
			}
		}
		if n := len(cp.ParticipantStatuses); n > 0 {
			st, ok := cp.ParticipantStatuses[n-1].Object.(*vocab.ParticipantStatus)
			if !ok {
				return problem.Unprocessable("participant %s of case %s has a status that is not inline", p.Actor, vc.ID)
			}
			if p.RM, err = cvdstate.ParseRMState(orDefault(st.RMState, "START")); err != nil {
				return problem.Unprocessable("participant %s of case %s: %v", p.Actor, vc.ID, err)
			}
			if p.VFD, err = cvdstate.ParseVFD(orDefault(st.VFDState, "vfd")); err != nil {
				return problem.Unprocessable("participant %s of case %s: %v", p.Actor, vc.ID, err)
			}
		}
		if p.Actor == c.Owner {
			p.Roles |= cvdstate.CaseOwner
		}
		c.addParticipant(p)
	}
	if c.Participant(c.Owner) == nil {
		return problem.Unprocessable("the owner %s of case %s is not one of its participants", c.Owner, vc.ID)
	}
	if n := len(vc.CaseStatuses); n > 0 {
		if cs, ok := vc.CaseStatuses[n-1].Object.(*vocab.CaseStatus); ok {
			var err error
			if c.EM, err = cvdstate.ParseEMState(orDefault(cs.EMState, "NONE")); err != nil {
				return problem.Unprocessable("case %s: %v", vc.ID, err)
			}
			if c.PXA, err = cvdstate.ParsePXA(orDefault(cs.PXAState, "pxa")); err != nil {
				return problem.Unprocessable("case %s: %v", vc.ID, err)
			}
		}
	}
	// The embargo in force from the case's creation: the owner's default,
	// or the terms a participant (the reporter) proposed with the report,
	// which name it in attributedTo when they are shorter than the default.
	if ev, ok := vc.ActiveEmbargo.Object.(*vocab.EmbargoEvent); ok {
		proposer, reason := c.Owner, "the owner's default embargo applies from the case's creation"
		if by := firstRef(ev.AttributedTo); by != "" && by != c.Owner {
			if c.Participant(by) == nil {
				return problem.Unprocessable("the embargo in force in case %s is by %s, who takes no part in it", vc.ID, by)
			}
			proposer, reason = by, "proposed with the report, shorter than the owner's default embargo, it applies from the case's creation"
		}
		terms, err := embargoTerms(ev, proposer, at)
		if err != nil {
			return err
		}
		c.Embargo = &terms
		c.History = append(c.History, EmbargoStep{At: at, By: c.Owner, Message: "EA", From: cvdstate.EMNone, To: c.EM, End: terms.End,
			Reason: reason})
		// The participants the creation binds (SIGNATORY, or LAPSED when
		// it opens revising them) signed these terms.
		for _, p := range c.Participants {
			if p.PEC == cvdstate.PECSignatory || p.PEC == cvdstate.PECLapsed {
				p.AcceptedEmbargo = terms.ID
			}
		}
	}
	if c.EM.InForce() && c.Embargo == nil {
		return problem.Unprocessable("case %s has an embargo in force but no activeEmbargo", vc.ID)
	}
	// An embargo proposal the case opens with: the one the reporter
	// offered its report with (RS|EP), as the Invite it stands for.
	for _, ref := range vc.CaseActivity {
		inv, ok := ref.Object.(*vocab.Activity)
		if !ok || inv.Type != "Invite" {
			continue
		}
		ev, ok := inv.Object.Object.(*vocab.EmbargoEvent)
		if !ok {
			continue
		}
		if !c.EM.Negotiating() {
			return problem.Unprocessable("case %s opens with the embargo proposal %s but its embargo state is %s", vc.ID, inv.ID, c.EM)
		}
		proposer := inv.Actor.ID()
		if c.Participant(proposer) == nil {
			return problem.Unprocessable("the embargo proposal %s of case %s is by %s, who takes no part in it", inv.ID, vc.ID, proposer)
		}
		terms, err := embargoTerms(ev, proposer, at)
		if err != nil {
			return err
		}
		c.Proposals = append(c.Proposals, Proposal{InviteID: inv.ID, Terms: terms, RSVPBy: AnswerBy(inv, at)})
		msg, from := "EP", cvdstate.EMNone
		if c.EM == cvdstate.EMRevise {
			msg, from = "EV", cvdstate.EMActive
		}
		// The proposal invites the participants the creation does not
		// bind, as one made in the case does (cvdstate.BulkConsent).
		for _, o := range c.Participants {
			if o.Actor != proposer {
				o.PEC = cvdstate.BulkConsent(o.PEC, cvdstate.PECInvite)
			}
		}
		reason := "proposed with the report"
		if proposer == c.Owner {
			reason = "the owner's default embargo, longer than the one proposed with the report"
		}
		c.History = append(c.History, EmbargoStep{At: at, By: proposer, Message: msg, From: from, To: c.EM, End: terms.End,
			Reason: reason})
	}
	if c.EM.Negotiating() && len(c.Proposals) == 0 {
		return problem.Unprocessable("case %s opens negotiating an embargo (%s) with no proposal", vc.ID, c.EM)
	}
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func parseTime(s string, fallback time.Time) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC()
	}
	return fallback
}

// stepRM applies a participant's Report Management step. Engaging or
// deferring straight from RECEIVED includes the validation, which an invitee
// that joined a case (at RECEIVED) does by engaging with it.
func (c *Case) stepRM(p *Participant, ev cvdstate.RMEvent) (Effects, error) {
	if repeatsRM(p.RM, ev) {
		// A repeat of the participant's own step (RD in DEFERRED, as two
		// deferrals sent at once are): the receiver tables update their
		// model of the sender's RM, which it already is, and answer RK.
		_, _, err := p.RM.Apply(ev)
		return Effects{Unsendable: conflict(p.Actor, err)}, nil
	}
	var msgs cvdstate.MessageType
	if ev == cvdstate.RMClose && c.Closure != nil {
		// A case its owner left is over: a participant that had not
		// finished evaluating it closes its part through the steps it
		// skipped (validated, deferred), as a report closed as a
		// duplicate does, so that every participant can end CLOSED.
		for _, skipped := range [...]struct {
			from cvdstate.RMState
			ev   cvdstate.RMEvent
		}{{cvdstate.RMReceived, cvdstate.RMValidate}, {cvdstate.RMValid, cvdstate.RMDefer}} {
			if p.RM != skipped.from {
				continue
			}
			out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, skipped.ev)
			if err != nil {
				return Effects{}, conflict(p.Actor, err)
			}
			p.ParticipantState, msgs = out.Participant, msgs|out.Emit
		}
	}
	if p.RM == cvdstate.RMReceived && (ev == cvdstate.RMAccept || ev == cvdstate.RMDefer) {
		out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, cvdstate.RMValidate)
		if err != nil {
			return Effects{}, conflict(p.Actor, err)
		}
		p.ParticipantState, msgs = out.Participant, out.Emit
	}
	out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, ev)
	if err != nil {
		return Effects{}, conflict(p.Actor, err)
	}
	p.ParticipantState = out.Participant
	return Effects{Messages: msgs | out.Emit}, nil
}

// repeatsRM reports whether ev is the step that led to s: validating a
// valid report, finding an invalid one invalid, accepting an accepted one
// or deferring a deferred one. Closing a closed report is not one: a
// closed report is final, and its participant's messages are ignored.
func repeatsRM(s cvdstate.RMState, ev cvdstate.RMEvent) bool {
	switch ev {
	case cvdstate.RMValidate:
		return s == cvdstate.RMValid
	case cvdstate.RMInvalidate:
		return s == cvdstate.RMInvalid
	case cvdstate.RMAccept:
		return s == cvdstate.RMAccepted
	case cvdstate.RMDefer:
		return s == cvdstate.RMDeferred
	}
	return false
}

// conflict reports a step the protocol does not allow, saying why without
// the state models' dump of the states it was refused in.
func conflict(actor string, err error) error {
	if errors.Is(err, cvdstate.ErrNotAllowed) {
		why := err
		var se *cvdstate.StepError
		if errors.As(err, &se) {
			why = se.Err
		}
		return problem.Conflict("%s cannot do that now: %v", actor, why)
	}
	return err
}

func (c *Case) addNote(author string, act *vocab.Activity, at time.Time) error {
	note, ok := act.Object.Object.(*vocab.GenericObject)
	if !ok || note.Type != "Note" {
		return problem.Unprocessable("a note added to case %s must be an inline Note", c.ID)
	}
	if note.ID == "" {
		return problem.Unprocessable("the note added to case %s has no id", c.ID)
	}
	if c.pendingIDs == nil || len(c.pendingIDs) != len(c.pending) {
		c.pendingIDs = make(map[string]struct{}, len(c.pending)+1)
		for _, n := range c.pending {
			c.pendingIDs[n.ID] = struct{}{}
		}
	}
	if _, ok := c.pendingIDs[note.ID]; ok || (c.storedNote != nil && c.storedNote(note.ID)) {
		return nil // the same note again changes nothing
	}
	c.pendingIDs[note.ID] = struct{}{}
	c.pending = append(c.pending, Note{ID: note.ID, Author: author, Content: note.Content, InReplyTo: note.InReplyTo.ID(),
		Published: parseTime(note.Published, at), Activity: act.ID})
	c.NoteCount++
	return nil
}

// status applies a participant's report of its own case state: the fix
// path letters it raised (V, F, D) and the world-state letters (P, X, A)
// it observed, one event at a time, with every cross-model consequence.
func (c *Case) status(p *Participant, act *vocab.Activity, at time.Time) (Effects, error) {
	st, ok := act.Object.Object.(*vocab.ParticipantStatus)
	if !ok {
		return Effects{}, problem.Unprocessable("a status must be an inline ParticipantStatus")
	}
	if t := act.Target.ID(); t != "" && t != p.ID {
		return Effects{}, problem.Forbidden("%s may report only its own status (%s), not %s", p.Actor, p.ID, t)
	}
	var events []cvdstate.CSEvent
	known := false // it reports a letter the case already has
	if st.VFDState != "" {
		want, err := cvdstate.ParseVFD(st.VFDState)
		if err != nil {
			return Effects{}, problem.Unprocessable("%v", err)
		}
		switch {
		case !p.Roles.Has(cvdstate.Vendor):
			// A deployer's own path is d → D: a status saying the fix is
			// deployed (VFD) is its CD; the vendor letters are not its.
			if want == cvdstate.VFDDeployed && p.VFD != cvdstate.VFDDeployed {
				events = append(events, cvdstate.EventD)
			}
			known = want == cvdstate.VFDDeployed && p.VFD == cvdstate.VFDDeployed
		case want < p.VFD:
			return Effects{}, problem.Conflict("%s is at %s; the fix path cannot go back to %s", p.Actor, p.VFD, want)
		default:
			known = want == p.VFD
			for v := p.VFD; v < want; v++ {
				events = append(events, []cvdstate.CSEvent{cvdstate.EventV, cvdstate.EventF, cvdstate.EventD}[v])
			}
		}
	}
	if st.CaseStatus != nil && st.CaseStatus.PXAState != "" {
		want, err := cvdstate.ParsePXA(st.CaseStatus.PXAState)
		if err != nil {
			return Effects{}, problem.Unprocessable("%v", err)
		}
		known = true
		for _, ev := range []cvdstate.CSEvent{cvdstate.EventP, cvdstate.EventX, cvdstate.EventA} {
			if bit := pxaBit(ev); want&bit != 0 && c.PXA&bit == 0 {
				events = append(events, ev)
			}
		}
	}
	// What the participant declares of itself: leaving (or returning to)
	// active work, and that it will not honour the embargo. Only a change
	// counts; a status that says engaged and adhering, as the reference
	// sends by default, declares nothing.
	engagement := st.CaseEngagement != nil && *st.CaseEngagement == p.Disengaged
	withdraw := st.EmbargoAdherence != nil && !*st.EmbargoAdherence
	if len(events) == 0 && !engagement && !withdraw {
		nothing := problem.Conflict("the status of %s changes nothing in case %s", p.Actor, c.ID)
		if !known {
			// No CS message of the sender's at all: nothing but
			// declarations that declare nothing, or the vendor's
			// fix-path letters from a participant that is no vendor.
			return Effects{}, nothing
		}
		// A CS message the case already knows (CP or CX in P, CA in A, a
		// fix-path letter the sender already raised), as a second
		// participant reporting the same at once sends it: the receiver
		// tables acknowledge it (CK) and change nothing.
		return Effects{Unsendable: nothing}, nil
	}
	var fx Effects
	if engagement {
		p.Disengaged = !*st.CaseEngagement
	}
	if withdraw {
		before := c.EM
		out, err := cvdstate.Withdraw(c.state(), p.ParticipantState)
		if err != nil {
			return Effects{}, conflict(p.Actor, err)
		}
		c.applyOutcome(p, out)
		fx.Messages |= out.Emit
		if c.EM != before {
			reason := out.Effects[0].Reason
			if act.Summary != "" {
				reason += ": " + act.Summary
			}
			c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, Reason: reason})
		}
	}
	for _, ev := range events {
		if c.PXA&pxaBit(ev) != 0 {
			continue // an earlier event of this status already set it (X sets P)
		}
		before := c.EM
		out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, ev)
		if err != nil {
			return Effects{}, conflict(p.Actor, err)
		}
		c.applyOutcome(p, out)
		fx.Messages |= out.Emit
		if c.EM != before {
			reason := ""
			for _, e := range out.Effects {
				reason = e.Reason
			}
			c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, Reason: reason})
		}
	}
	return fx, nil
}

func pxaBit(ev cvdstate.CSEvent) cvdstate.PXA {
	switch ev {
	case cvdstate.EventP:
		return cvdstate.PXAPublic
	case cvdstate.EventX:
		return cvdstate.PXAExploit
	case cvdstate.EventA:
		return cvdstate.PXAAttacks
	}
	return 0
}

// emMessage names the embargo message among msgs.
func emMessage(msgs cvdstate.MessageType) string {
	return (msgs & cvdstate.EMMessages).String()
}

// applyOutcome stores an outcome: the case state, the acting participant's
// state, and the bulk consent change every other participant undergoes.
func (c *Case) applyOutcome(p *Participant, out cvdstate.Outcome) {
	c.PXA, c.EM = out.Case.PXA, out.Case.EM
	p.ParticipantState = out.Participant
	if out.Consent != 0 {
		for _, o := range c.Participants {
			if o != p {
				o.PEC = cvdstate.BulkConsent(o.PEC, out.Consent)
			}
		}
	}
	if !c.EM.Negotiating() {
		c.Proposals = nil
	}
}

// embargoTerms reads the terms of an EmbargoEvent.
func embargoTerms(ev *vocab.EmbargoEvent, proposer string, at time.Time) (Embargo, error) {
	if ev.ID == "" {
		return Embargo{}, problem.Unprocessable("the embargo has no id")
	}
	end, err := time.Parse(time.RFC3339Nano, ev.EndTime)
	if err != nil {
		return Embargo{}, problem.Unprocessable("embargo %s needs an endTime with a date, time and zone: %q", ev.ID, ev.EndTime)
	}
	start := parseTime(ev.StartTime, at)
	if !end.After(start) {
		if ev.StartTime == "" {
			// It starts when proposed: the end has passed.
			return Embargo{}, problem.Unprocessable("the embargo proposed ends at %s, which has passed: an embargo must end in the future (embargo %s)", end.UTC().Format(time.RFC3339), ev.ID)
		}
		return Embargo{}, problem.Unprocessable("embargo %s ends (%s) before it starts (%s)", ev.ID, end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	return Embargo{ID: ev.ID, Start: start, End: end.UTC(), Proposer: proposer}, nil
}

func (c *Case) proposeEmbargo(p *Participant, act *vocab.Activity, at time.Time) (Effects, error) {
	ev, ok := act.Object.Object.(*vocab.EmbargoEvent)
	if !ok {
		return Effects{}, problem.Unprocessable("an embargo proposal must carry an inline EmbargoEvent")
	}
	terms, err := embargoTerms(ev, p.Actor, at)
	if err != nil {
		return Effects{}, err
	}
	if !terms.End.After(at) {
		return Effects{}, problem.Unprocessable("embargo %s would end at %s, which has passed", terms.ID, terms.End.Format(time.RFC3339))
	}
	before := c.EM
	out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, cvdstate.EMPropose)
	if err != nil {
		return Effects{}, conflict(p.Actor, err)
	}
	c.applyOutcome(p, out)
	c.Proposals = append(c.Proposals, Proposal{InviteID: act.ID, Terms: terms, RSVPBy: AnswerBy(act, at)})
	c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, End: terms.End})
	return Effects{Messages: out.Emit}, nil
}

func (c *Case) proposal(inviteID string) (int, bool) {
	for i, pr := range c.Proposals {
		if pr.InviteID == inviteID {
			return i, true
		}
	}
	return 0, false
}

// declineUnanswered declines the consent of every participant still
// INVITED or LAPSED once terms are in force with no proposal open: it has
// nothing left to answer. It returns how many it declined.
func (c *Case) declineUnanswered() int {
	n := 0
	for _, o := range c.Participants {
		if o.PEC == cvdstate.PECInvited || o.PEC == cvdstate.PECLapsed {
			o.PEC, _ = o.PEC.Apply(cvdstate.PECDecline)
			n++
		}
	}
	return n
}

// acceptEmbargo records an Accept of an embargo proposal. The owner's
// acceptance puts the terms in force for the case, and binds their
// proposer; a signatory of other terms lapses. Anyone else's binds only
// that participant (its consent becomes SIGNATORY).
func (c *Case) acceptEmbargo(p *Participant, act *vocab.Activity, at time.Time) (Effects, error) {
	i, ok := c.proposal(act.Object.ID())
	if !ok {
		return Effects{}, problem.Conflict("%s is not an open embargo proposal of case %s", act.Object.ID(), c.ID)
	}
	terms := c.Proposals[i].Terms
	if p.Actor != c.Owner {
		if err := c.laterRule(answersEmbargo(p)); err != nil {
			return Effects{}, err
		}
		next, err := p.PEC.Apply(cvdstate.PECAccept)
		if err != nil {
			return Effects{}, conflict(p.Actor, err)
		}
		p.PEC, p.AcceptedEmbargo = next, terms.ID
		return Effects{Messages: cvdstate.EA}, nil
	}
	before := c.EM
	out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, cvdstate.EMAccept)
	if err != nil {
		return Effects{}, conflict(p.Actor, err)
	}
	c.applyOutcome(p, out)
	if c.Embargo != nil {
		terms.Sequence = c.Embargo.Sequence + 1
	}
	c.Embargo = &terms
	c.Proposals = nil
	p.AcceptedEmbargo = terms.ID
	if prop := c.Participant(terms.Proposer); prop != nil {
		// Proposing terms is consenting to them.
		if next, err := prop.PEC.Apply(cvdstate.PECAccept); err == nil {
			prop.PEC = next
		}
		if prop.PEC == cvdstate.PECSignatory {
			prop.AcceptedEmbargo = terms.ID
		}
	}
	// No proposal is left to answer, so whoever did not accept these
	// terms has declined them (spec §2.7: INVITED or LAPSED to DECLINED,
	// the pocket veto, which no RSVP deadline would otherwise bring): an
	// invitee that did not answer, a signatory whose consent lapsed under
	// the revision, and a signatory of other terms (another proposal it
	// accepted or made), whose consent lapses first, as a revision's does.
	// It is not bound by them, and the next proposal invites it again.
	for _, o := range c.Participants {
		if o.PEC == cvdstate.PECSignatory && o.AcceptedEmbargo != terms.ID {
			o.PEC = cvdstate.BulkConsent(o.PEC, cvdstate.PECRevise)
		}
	}
	c.declineUnanswered()
	c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, End: terms.End})
	return Effects{Messages: out.Emit}, nil
}

// rejectEmbargo records a Reject of an embargo proposal. The owner's, or
// the proposer's withdrawal of its own proposal, ends the proposal for the
// case; anyone else's records that participant's refusal (DECLINED).
func (c *Case) rejectEmbargo(p *Participant, act *vocab.Activity, at time.Time) (Effects, error) {
	i, ok := c.proposal(act.Object.ID())
	if !ok {
		return Effects{}, problem.Conflict("%s is not an open embargo proposal of case %s", act.Object.ID(), c.ID)
	}
	terms := c.Proposals[i].Terms
	if p.Actor != c.Owner && p.Actor != terms.Proposer {
		if err := c.laterRule(answersEmbargo(p)); err != nil {
			return Effects{}, err
		}
		next, err := p.PEC.Apply(cvdstate.PECDecline)
		if err != nil {
			return Effects{}, conflict(p.Actor, err)
		}
		p.PEC = next
		return Effects{Messages: cvdstate.ER}, nil
	}
	c.Proposals = slices.Delete(c.Proposals, i, i+1)
	if len(c.Proposals) > 0 {
		// Other proposals stay open: the embargo state does not change.
		return Effects{Messages: cvdstate.ER}, nil
	}
	before := c.EM
	out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, cvdstate.EMReject)
	if err != nil {
		return Effects{}, conflict(p.Actor, err)
	}
	c.applyOutcome(p, out)
	if before == cvdstate.EMRevise && c.EM == cvdstate.EMActive {
		c.revisionRejected()
	}
	c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, End: terms.End})
	return Effects{Messages: out.Emit}, nil
}

// answersEmbargo refuses a participant's own answer to an embargo
// proposal (its consent, EA or ER, which moves no embargo state) once it
// has closed the case: the sender tables allow them only from a
// participant whose report is not closed, as Step does for the answers
// that move the embargo.
func answersEmbargo(p *Participant) error {
	if p.RM == cvdstate.RMClosed {
		return problem.Conflict("%s cannot do that now: it has closed the case and takes no further part in its embargo", p.Actor)
	}
	return nil
}

// revisionRejected undoes, once the last open revision is rejected (EJ)
// and the terms in force stay, what entering the revision did to consent
// (spec §2.7: revise lapses the signatories, a proposal invites the
// others): a LAPSED participant that signed the terms still in force is
// bound by them again, through the PEC model's own accept edge; an
// invitee has nothing left to answer. A participant that lapsed under
// terms an earlier revision replaced stays LAPSED: it never accepted the
// ones in force.
func (c *Case) revisionRejected() {
	for _, o := range c.Participants {
		switch {
		case o.PEC == cvdstate.PECLapsed && c.Embargo != nil && o.AcceptedEmbargo == c.Embargo.ID:
			o.PEC = cvdstate.BulkConsent(o.PEC, cvdstate.PECAccept)
		case o.PEC == cvdstate.PECInvited:
			o.PEC = cvdstate.BulkConsent(o.PEC, cvdstate.PECReset)
		}
	}
}

// terminateEmbargo records an early termination (ET). The EM tables let
// any participant that has not closed the report end the embargo in force
// (ACTIVE or REVISE), the owner or not; the reason it gives (the
// activity's summary, else its content) is kept in the embargo's history.
// A termination that arrives after the embargo ended, as a second one sent
// at the same time does, changes nothing: the receiver tables acknowledge
// it (ET in EXITED: EK), and the history keeps who else ended it and why.
func (c *Case) terminateEmbargo(p *Participant, act *vocab.Activity, at time.Time) (Effects, error) {
	reason := firstNonEmpty(act.Summary, act.Content)
	if reason == "" {
		reason = "terminated early by " + p.Actor
		if p.Actor == c.Owner {
			reason = "terminated early by the owner"
		}
	}
	if c.EM == cvdstate.EMExited && p.RM != cvdstate.RMClosed {
		c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: "ET", From: c.EM, To: c.EM, Reason: reason})
		return Effects{Messages: cvdstate.ET, Unsendable: problem.Conflict(
			"the embargo of case %s already ended (EXITED): only an embargo in force (ACTIVE or REVISE) can be terminated", c.ID)}, nil
	}
	before := c.EM
	out, err := cvdstate.Step(c.state(), p.ParticipantState, p.Roles, cvdstate.EMTerminate)
	if err != nil {
		return Effects{}, conflict(p.Actor, err)
	}
	c.applyOutcome(p, out)
	c.History = append(c.History, EmbargoStep{At: at, By: p.Actor, Message: emMessage(out.Emit), From: before, To: c.EM, Reason: reason})
	return Effects{Messages: out.Emit}, nil
}

// invite records an invitation of actor to the case by its owner.
func (c *Case) invite(p *Participant, actor string, roles cvdstate.RoleSet, activityID string, at time.Time) (Effects, error) {
	if p.Actor != c.Owner {
		return Effects{}, problem.Forbidden("only the case owner %s invites to case %s", c.Owner, c.ID)
	}
	if actor == "" {
		return Effects{}, problem.Unprocessable("the invitation names no actor")
	}
	if q := c.Participant(actor); q != nil && !q.Removed {
		return Effects{}, problem.Conflict("%s is already a participant of case %s", actor, c.ID)
	}
	inv := Invite{Actor: actor, Roles: roles, By: p.Actor, ID: activityID, Sent: c.invitationID(activityID), At: at}
	// Each invitation stands on its own: the invitee answers each one.
	c.Invites = slices.DeleteFunc(c.Invites, func(i Invite) bool { return i.ID == activityID })
	c.Invites = append(c.Invites, inv)
	return Effects{Invite: &inv, Messages: cvdstate.RS}, nil
}

// invitationID derives the id of the Invite the Case Actor sends for the
// owner's invitation activityID: an activity id on the Case Actor's node
// that every replica computes alike.
func (c *Case) invitationID(activityID string) string {
	base := c.CaseActor
	if i := strings.LastIndex(base, "/actors/"); i >= 0 {
		base = base[:i]
	}
	sum := sha256.Sum256([]byte(c.ID + "|" + activityID))
	return base + "/activities/inv-" + hex.EncodeToString(sum[:13])
}

// SentInvitationID returns the id of the Invite the Case Actor of c sends
// the invitee for the owner's invitation activityID: the invitation the
// invitee receives and answers.
func (c *Case) SentInvitationID(activityID string) string { return c.invitationID(activityID) }

// openInvite returns the position of the open invitation of actor that
// an answer naming answered (an invitation's id, or "") takes up. An
// answer that names no invitation the case knows takes up the actor's only
// open one: Case Actors that did not derive their invitations' ids sent
// ids no replica can know.
func (c *Case) openInvite(actor, answered string) (int, error) {
	only, n := -1, 0
	for i, inv := range c.Invites {
		if inv.Actor != actor {
			continue
		}
		if answered != "" && (inv.Sent == answered || inv.ID == answered) {
			return i, nil
		}
		only, n = i, n+1
	}
	switch {
	case n == 0:
		return 0, problem.Forbidden("%s has no open invitation to case %s", actor, c.ID)
	case n > 1:
		return 0, problem.Conflict("%s has %d open invitations to case %s and the answer names none of them (%q)", actor, n, c.ID, answered)
	case answered != "" && c.Invites[only].Sent != "":
		return 0, problem.Conflict("the answer of %s names none of its open invitations to case %s (%q)", actor, c.ID, answered)
	}
	return only, nil
}

// acceptInvite makes an invitee a participant at RECEIVED. Accepting an
// invitation to a case with an embargo in force is accepting the embargo:
// the invitation carries its terms. Other invitations of the same actor
// close: it takes part now.
func (c *Case) acceptInvite(actor, answered string, at time.Time) (Effects, error) {
	i, err := c.openInvite(actor, answered)
	if err != nil {
		return Effects{}, err
	}
	inv := c.Invites[i]
	c.Invites = slices.DeleteFunc(c.Invites, func(i Invite) bool { return i.Actor == actor })
	p := c.Participant(actor)
	if p == nil {
		p = &Participant{Actor: actor, ID: ParticipantID(c.ID, actor)}
		c.addParticipant(p)
	}
	p.Removed, p.Roles, p.JoinedAt = false, inv.Roles, at
	p.Contact = contactOf(actor, inv.ActorName)
	p.RM = cvdstate.RMReceived
	if p.Roles.Has(cvdstate.Vendor) && p.VFD == cvdstate.VFDNone {
		p.VFD = cvdstate.VFDAware // receiving the case makes a vendor aware
	}
	p.PEC = cvdstate.PECNoEmbargo
	if c.EM.InForce() && c.Embargo != nil {
		p.PEC, p.AcceptedEmbargo = cvdstate.PECSignatory, c.Embargo.ID
	}
	c.UpdatedAt = at
	return Effects{Joined: actor, Messages: cvdstate.RK}, nil
}

// rejectInvite closes the one invitation the answer names.
func (c *Case) rejectInvite(actor, answered string) error {
	i, err := c.openInvite(actor, answered)
	if err != nil {
		return err
	}
	c.Invites = slices.Delete(c.Invites, i, i+1)
	return nil
}

// suggest records a participant's suggestion to invite another actor.
// As in the reference, the Case Actor then offers the owner a participant
// for it (Effects.OfferParticipant), under an id every replica derives
// (suggestionOfferID), and the owner answers that offer.
func (c *Case) suggest(p *Participant, act *vocab.Activity) (Effects, error) {
	actor := act.Object.ID()
	if actor == "" {
		return Effects{}, problem.Unprocessable("the suggestion names no actor")
	}
	if q := c.Participant(actor); q != nil && !q.Removed {
		return Effects{}, problem.Conflict("%s is already a participant of case %s", actor, c.ID)
	}
	for _, s := range c.Suggestions {
		if s.Actor == actor {
			return Effects{}, problem.Conflict("%s was already suggested for case %s by %s", actor, c.ID, s.By)
		}
	}
	s := Suggestion{ID: act.ID, Actor: actor, By: p.Actor, Roles: roleSet(act.Roles), Offered: c.suggestionOfferID(act.ID)}
	if o, ok := act.Object.Object.(*vocab.Actor); ok {
		s.ActorType = o.Type
	}
	c.Suggestions = append(c.Suggestions, s)
	return Effects{OfferParticipant: &s}, nil
}

// suggestionOfferID derives the id of the Offer(CaseParticipant) the Case
// Actor sends the owner for suggestion suggestionID: an activity id on the
// Case Actor's node that every replica computes alike, so that each knows
// which suggestion the owner's answer decides.
func (c *Case) suggestionOfferID(suggestionID string) string {
	base := c.CaseActor
	if i := strings.LastIndex(base, "/actors/"); i >= 0 {
		base = base[:i]
	}
	sum := sha256.Sum256([]byte(c.ID + "|suggestion|" + suggestionID))
	return base + "/activities/sug-" + hex.EncodeToString(sum[:13])
}

// decideOffered records the owner's answer to the Case Actor's offer of a
// participant for a suggestion: accepting it invites the suggested actor;
// either way the suggester is told (Effects.Decided).
func (c *Case) decideOffered(p *Participant, offered string, accept bool, at time.Time) (Effects, error) {
	i := slices.IndexFunc(c.Suggestions, func(s Suggestion) bool { return s.Offered != "" && s.Offered == offered })
	if p.Actor != c.Owner {
		return Effects{}, problem.Forbidden("only the case owner %s decides on suggestions for case %s", c.Owner, c.ID)
	}
	if i < 0 {
		return Effects{}, problem.Conflict("%s is not an open suggestion for case %s", offered, c.ID)
	}
	s := c.Suggestions[i]
	fx, err := c.decideSuggestion(p, s.ID, accept, at)
	if err != nil {
		return Effects{}, err
	}
	fx.Decided, fx.Accepted = &s, accept
	return fx, nil
}

// decideSuggestion records the owner's answer to a suggestion; accepting
// it invites the suggested actor.
func (c *Case) decideSuggestion(p *Participant, offerID string, accept bool, at time.Time) (Effects, error) {
	if p.Actor != c.Owner {
		return Effects{}, problem.Forbidden("only the case owner %s decides on suggestions for case %s", c.Owner, c.ID)
	}
	i := slices.IndexFunc(c.Suggestions, func(s Suggestion) bool { return s.ID == offerID })
	if i < 0 {
		return Effects{}, problem.Conflict("%s is not an open suggestion for case %s", offerID, c.ID)
	}
	s := c.Suggestions[i]
	c.Suggestions = slices.Delete(c.Suggestions, i, i+1)
	if !accept {
		return Effects{}, nil
	}
	fx, err := c.invite(p, s.Actor, s.Roles, offerID, at)
	if err == nil && s.ActorType != "" {
		inv := &c.Invites[len(c.Invites)-1]
		inv.ActorType = s.ActorType
		fx.Invite.ActorType = s.ActorType
	}
	return fx, err
}

// remove records the owner's removal of a participant: it receives no
// further entries and loses access to the case.
func (c *Case) remove(p *Participant, act *vocab.Activity) error {
	if p.Actor != c.Owner {
		return problem.Forbidden("only the case owner %s removes participants of case %s", c.Owner, c.ID)
	}
	target := removedTarget(act)
	var q *Participant
	for _, cand := range c.Participants {
		if cand.Actor == target || cand.ID == target {
			q = cand
		}
	}
	if q == nil || q.Removed {
		return problem.Conflict("%s is not a participant of case %s", target, c.ID)
	}
	if q.Actor == c.Owner {
		return problem.Conflict("the owner cannot remove itself from case %s; transfer the ownership first", c.ID)
	}
	q.Removed = true
	return nil
}

// removedTarget returns whom a Remove of a participant names: the actor
// its inline CaseParticipant is attributed to, or else its object's id (an
// actor's or a CaseParticipant's).
func removedTarget(act *vocab.Activity) string {
	if cp, ok := act.Object.Object.(*vocab.CaseParticipant); ok {
		if a := firstRef(cp.AttributedTo); a != "" {
			return a
		}
	}
	return act.Object.ID()
}

func (c *Case) offerTransfer(p *Participant, act *vocab.Activity) error {
	if p.Actor != c.Owner {
		return problem.Forbidden("only the case owner %s offers the ownership of case %s", c.Owner, c.ID)
	}
	to := act.Target.ID()
	if q := c.Participant(to); q == nil || !q.Engaged() {
		return problem.Conflict("ownership of case %s can go only to an engaged participant; %q is not one", c.ID, to)
	}
	if to == c.Owner {
		return problem.Conflict("%s already owns case %s", to, c.ID)
	}
	c.Transfer = &Transfer{ID: act.ID, To: to}
	return nil
}

// decideTransfer records the answer to an ownership offer: the transferee
// accepts or rejects it, and the owner may withdraw it. On acceptance the
// case_owner role moves; the previous owner keeps its other roles.
func (c *Case) decideTransfer(p *Participant, offerID string, accept bool) error {
	if c.Transfer == nil || (offerID != "" && offerID != c.Transfer.ID) {
		return problem.Conflict("%s is not an open ownership offer of case %s", offerID, c.ID)
	}
	if p.Actor != c.Transfer.To && (accept || p.Actor != c.Owner) {
		return problem.Forbidden("the ownership offer of case %s is addressed to %s", c.ID, c.Transfer.To)
	}
	if accept && !p.Engaged() {
		// It closed the case since the offer: an owner that closed could
		// never leave the case and close it for everyone.
		if err := c.laterRule(problem.Conflict("ownership of case %s can go only to an engaged participant; %s has closed it", c.ID, p.Actor)); err != nil {
			return err
		}
	}
	if accept {
		if old := c.Participant(c.Owner); old != nil {
			old.Roles &^= cvdstate.CaseOwner
		}
		p.Roles |= cvdstate.CaseOwner
		c.Owner = p.Actor
	}
	c.Transfer = nil
	return nil
}

// errNoCase is returned for a case this node does not know.
var errNoCase = fmt.Errorf("no such case")
