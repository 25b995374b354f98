package cases

import (
	"slices"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/vocab"
)

// Case is a node's view of one vulnerability case: everything its ledger
// says, folded in order. The Case Actor computes it to decide what it may
// record; every participant's node computes the same value from its replica
// of the ledger, with the same Apply.
type Case struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CaseActor string    `json:"caseActor"`
	Owner     string    `json:"owner"` // actor id holding case_owner
	Published time.Time `json:"published"`
	Reports   []string  `json:"reports"`
	// VulnerabilityIDs are the ids its vulnerability is known by, a CVE id
	// and its aliases, upper case, in the order they were recorded
	// (vulnids.go).
	VulnerabilityIDs []string `json:"vulnerabilityIds,omitempty"`
	// Products are the vendors' statements of the products' statuses, in
	// the order they were first stated, and Advisory what the case
	// records of its advisory (publication.go).
	Products []Product `json:"products,omitempty"`
	Advisory *Advisory `json:"advisory,omitempty"`
	// Participants in the order they joined.
	Participants []*Participant   `json:"participants"`
	PXA          cvdstate.PXA     `json:"pxaState"`
	EM           cvdstate.EMState `json:"emState"`
	// Embargo is the embargo in force (EM ACTIVE or REVISE), or the last
	// one once it ended; nil when there never was one.
	Embargo *Embargo `json:"embargo,omitempty"`
	// Proposals are the open embargo proposals (EM PROPOSED) or revisions
	// (EM REVISE).
	Proposals []Proposal    `json:"proposals,omitempty"`
	History   []EmbargoStep `json:"embargoHistory,omitempty"`
	// NoteCount counts every note of the case: those stored under its
	// notes/ bucket and those pending. The notes themselves are not part of
	// the record, so that folding one more entry does not decode and
	// encode every note ever added (see casestore.go).
	NoteCount int `json:"noteCount"`
	// Invites are open invitations to join, by invitee actor id.
	Invites     []Invite     `json:"invites,omitempty"`
	Suggestions []Suggestion `json:"suggestions,omitempty"`
	Transfer    *Transfer    `json:"transfer,omitempty"`
	// Links relate the case to other cases (its parents, children and
	// siblings), in the order the owner related them.
	Links []CaseLink `json:"links,omitempty"`
	// Closure records the case's closing by its Case Actor when its owner
	// left (the case_fully_closed entry): the Case Actor's own RM CLOSED.
	// nil while the case is open.
	Closure *Closure `json:"closure,omitempty"`
	// LedgerLen and TailHash describe the ledger this state was folded
	// from.
	LedgerLen int64  `json:"ledgerLength"`
	TailHash  string `json:"tailHash"`
	// Diverged records why this replica could not apply an entry its Case
	// Actor recorded; empty when the replica agrees with the ledger.
	Diverged  string    `json:"diverged,omitempty"`
	UpdatedAt time.Time `json:"updatedAt"`

	// pending are the notes Apply added that saveCase has not stored yet:
	// every note of a case folded only in memory.
	pending []Note
	// pendingIDs indexes pending by id, so that adding a note does not
	// scan every note before it. It is built on first use and may be
	// shared with clones: pending only grows and the set only gains the
	// note just appended, so a set whose size differs from len(pending)
	// belongs to another copy and is rebuilt (see addNote).
	pendingIDs map[string]struct{}
	// recorded is set while applyRecorded folds an entry the Case Actor
	// recorded as applied: the refusals of laterRule give way to it.
	recorded bool
	// clocksHeld keeps saveCase from changing the case's deadline clocks:
	// set on a replica rebuilt page by page until it reaches the Case
	// Actor's tail (SyncState.ClocksHeld).
	clocksHeld bool
	// storedNote reports whether a note with the given id is stored
	// already. loadCase and saveCase set it to read the case's noteids/
	// bucket, so it is valid only in their transaction; it is nil for a
	// case folded only in memory.
	storedNote func(id string) bool
	// byActor indexes Participants by actor, so that finding the sender of
	// each entry does not scan every participant; Participant rebuilds it
	// when its size says it is not this copy's (see clone).
	byActor map[string]int
}

// PendingNotes returns the notes not yet stored, in the order they were
// added: for a case folded only in memory (without a store), all of them.
// The notes of a stored case are read with Notes.
func (c *Case) PendingNotes() []Note { return c.pending }

// Participant is one actor's part in a case.
type Participant struct {
	Actor string           `json:"actor"`
	ID    string           `json:"id"` // the CaseParticipant object id
	Roles cvdstate.RoleSet `json:"roles"`
	cvdstate.ParticipantState
	Removed  bool      `json:"removed,omitempty"`
	JoinedAt time.Time `json:"joinedAt"`
	Contact  Contact   `json:"contact"`
	// AcceptedEmbargo is the id of the embargo terms this participant
	// last accepted.
	AcceptedEmbargo string `json:"acceptedEmbargo,omitempty"`
	// Disengaged records the participant's declaration that it left
	// active work on the case (its status's caseEngagement false): it is
	// then sent only the entries it still needs (AnnounceTo).
	Disengaged bool `json:"disengaged,omitempty"`
}

// Engaged reports whether the participant still works on the case: it has
// not closed its report and was not removed.
func (p *Participant) Engaged() bool { return !p.Removed && p.RM != cvdstate.RMClosed }

// CaseEngagement reports the participant's case engagement: engaged, and
// it did not declare it left active work. A participant without it is sent
// only the entries it still needs.
func (p *Participant) CaseEngagement() bool { return p.Engaged() && !p.Disengaged }

// EmbargoAdherence reports whether the participant is bound by the
// embargo in force: its consent is SIGNATORY. It is computed, never stored.
func (p *Participant) EmbargoAdherence() bool { return p.PEC == cvdstate.PECSignatory }

// Contact is how people reach a participant.
type Contact struct {
	Name         string `json:"name,omitempty"`
	Email        string `json:"email,omitempty"`
	Organization string `json:"organization,omitempty"`
	Actor        string `json:"actor"`
}

// Embargo is a set of embargo terms.
type Embargo struct {
	ID       string    `json:"id"` // the EmbargoEvent id
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Proposer string    `json:"proposer"`
	// Sequence counts the revisions of the case's embargo, as iCalendar's
	// SEQUENCE does.
	Sequence int `json:"sequence"`
}

// Proposal is an open embargo proposal or revision.
type Proposal struct {
	InviteID string  `json:"inviteId"` // the Invite(EmbargoEvent) id
	Terms    Embargo `json:"terms"`
	// RSVPBy is when the participants it invites are to answer (AnswerBy);
	// zero in a record saved before it was kept, until the case is
	// rebuilt from its ledger.
	RSVPBy time.Time `json:"rsvpBy,omitzero"`
}

// EmbargoStep is one change of the case's embargo, for its history.
type EmbargoStep struct {
	At      time.Time        `json:"at"`
	By      string           `json:"by"`
	Message string           `json:"message"` // EP, EA, EV, EC, ER, EJ, ET
	From    cvdstate.EMState `json:"from"`
	To      cvdstate.EMState `json:"to"`
	End     time.Time        `json:"end,omitzero"`
	Reason  string           `json:"reason,omitempty"`
}

// Note is a comment in a case.
type Note struct {
	ID        string    `json:"id"`
	Author    string    `json:"author"`
	Content   string    `json:"content"`
	InReplyTo string    `json:"inReplyTo,omitempty"`
	Published time.Time `json:"published"`
	// Activity is the id of the activity that added the note, through
	// which the node that sent it knows the person who wrote it
	// (SentBy); empty for notes recorded before it was kept.
	Activity string `json:"activity,omitempty"`
}

// Invite is an open invitation to join a case.
type Invite struct {
	Actor string `json:"actor"`
	// ActorType and ActorName are the invitee's ActivityStreams actor type
	// and name, when the invitation said them.
	ActorType string           `json:"actorType,omitempty"`
	ActorName string           `json:"actorName,omitempty"`
	Roles     cvdstate.RoleSet `json:"roles"`
	By        string           `json:"by"`
	ID        string           `json:"id"` // the activity that invited
	// Sent is the id of the Invite the Case Actor sends the invitee on the
	// owner's behalf, derived from ID (see invitationID), so that every
	// replica knows which invitation an answer names. Empty in records
	// written before it was kept.
	Sent string    `json:"sent,omitempty"`
	At   time.Time `json:"at"`
}

// Suggestion is an open suggestion to invite an actor.
type Suggestion struct {
	ID    string           `json:"id"` // the Offer(Actor) id
	Actor string           `json:"actor"`
	By    string           `json:"by"`
	Roles cvdstate.RoleSet `json:"roles"`
	// ActorType is the suggested actor's ActivityStreams type, when the
	// suggestion said it.
	ActorType string `json:"actorType,omitempty"`
	// Offered is the id of the Offer(CaseParticipant) the Case Actor sent
	// the owner for the suggestion, which the owner answers; empty for a
	// suggestion recorded before that offer existed, which the owner
	// answers directly.
	Offered string `json:"offered,omitempty"`
}

// Relation is how a case relates to another: the case object's
// parentCases, childCases and siblingCases.
type Relation string

// The relations between cases.
const (
	RelParent  Relation = "parent"
	RelChild   Relation = "child"
	RelSibling Relation = "sibling"
)

// inverse returns the relation the other case has to this one.
func (r Relation) inverse() Relation {
	switch r {
	case RelParent:
		return RelChild
	case RelChild:
		return RelParent
	}
	return r
}

// CaseLink relates a case to another one: Case is its parent, child or
// sibling.
type CaseLink struct {
	Relation Relation `json:"relation"`
	Case     string   `json:"case"`
}

// maxLinks bounds the cases one case is related to: a case related to
// hundreds of others relates nothing a reader can follow.
const maxLinks = 64

// Transfer is an open offer to transfer the ownership of a case.
type Transfer struct {
	ID string `json:"id"` // the Offer(VulnerabilityCase) id
	To string `json:"to"`
}

// Closure is the closing of a case by its Case Actor once its owner left
// (spec §1.5, CM-23-002): from then on the case takes nothing but the
// remaining participants' own Leave.
type Closure struct {
	// At is when the Case Actor recorded the closing.
	At time.Time `json:"at"`
	// Owner is the owner whose Leave closed the case.
	Owner string `json:"owner"`
	// Activity is the id of the Case Actor's Leave that closed it.
	Activity string `json:"activity"`
}

// Participant returns the participant that actor is, or nil.
func (c *Case) Participant(actor string) *Participant {
	if len(c.byActor) != len(c.Participants) {
		c.byActor = make(map[string]int, len(c.Participants))
		for i, p := range c.Participants {
			if _, ok := c.byActor[p.Actor]; !ok {
				c.byActor[p.Actor] = i
			}
		}
	}
	if i, ok := c.byActor[actor]; ok && i < len(c.Participants) && c.Participants[i].Actor == actor {
		return c.Participants[i]
	}
	return nil
}

// addParticipant appends p, which is no participant yet, keeping the index
// of Participant current.
func (c *Case) addParticipant(p *Participant) {
	if c.byActor != nil && len(c.byActor) == len(c.Participants) {
		c.byActor[p.Actor] = len(c.Participants)
	}
	c.Participants = append(c.Participants, p)
}

// Closed reports whether the case is closed: its owner left and its Case
// Actor closed it (Closure), or every participant has closed it (or was
// removed). A closed case refuses everything but reads and, once its owner
// left, the remaining participants' own Leave.
func (c *Case) Closed() bool { return c.Closure != nil || c.EveryoneLeft() }

// EveryoneLeft reports whether every participant has closed the case or
// was removed: no entry is to come.
func (c *Case) EveryoneLeft() bool {
	if len(c.Participants) == 0 {
		return false
	}
	for _, p := range c.Participants {
		if p.Engaged() {
			return false
		}
	}
	return true
}

// Recipients returns the actors that receive the case's ledger entries:
// every participant that was not removed.
func (c *Case) Recipients() []string {
	var out []string
	for _, p := range c.Participants {
		if !p.Removed {
			out = append(out, p.Actor)
		}
	}
	return out
}

// AnnounceTo returns the actors the entry that turned case before into c
// is announced to, actor being the one that sent it: a participant the
// entry removed, every participant that was not removed and still works
// on the case (CaseEngagement), and
// the others only when the entry is one they still need. A participant
// that closed the case, or declared it left active work, needs the
// changes of the embargo and of the world state (what it must keep
// secret, and until when), the entries about itself (its own activities,
// its joining, its removal of roles), a change of owner and the case's
// closing; it is not sent the notes and the others' steps. Its node
// fetches those from the ledger when one it is sent shows the gap (see
// sync.go), at the cost to the host of one read. The owner is sent
// everything, so that it is told at once of what asks for its decision,
// until it left and the case closed (CM-23-004).
func (c *Case) AnnounceTo(before *Case, actor string) []string {
	everyone := before.EM != c.EM || before.PXA != c.PXA || before.Owner != c.Owner || before.EveryoneLeft() != c.EveryoneLeft() ||
		(before.Closure == nil) != (c.Closure == nil) ||
		embargoEnd(before) != embargoEnd(c)
	var out []string
	for _, p := range c.Participants {
		if p.Removed {
			if was := before.Participant(p.Actor); was != nil && !was.Removed {
				// Its own removal: its node learns it is out of the case,
				// and stops following it. Nothing after goes to it.
				out = append(out, p.Actor)
			}
			continue
		}
		if everyone || p.CaseEngagement() || p.Actor == actor || (p.Actor == c.Owner && c.Closure == nil) || participantChanged(before.Participant(p.Actor), p) {
			out = append(out, p.Actor)
		}
	}
	return out
}

// embargoEnd returns the end of the embargo in force, zero when none.
func embargoEnd(c *Case) time.Time {
	if c.Embargo == nil || !c.EM.InForce() {
		return time.Time{}
	}
	return c.Embargo.End
}

// participantChanged reports whether an entry changed participant p, which
// was old before it (nil: p joined with it).
func participantChanged(old, p *Participant) bool {
	return old == nil || old.ParticipantState != p.ParticipantState || old.Roles != p.Roles ||
		old.Removed != p.Removed || old.Disengaged != p.Disengaged
}

// CanRead reports whether actor may read the case's content: a participant
// that was not removed. An invitee reads nothing until it has accepted the
// invitation, which binds it to the embargo in force.
func (c *Case) CanRead(actor string) bool {
	p := c.Participant(actor)
	return p != nil && !p.Removed
}

// state returns the case-wide part of the protocol state.
func (c *Case) state() cvdstate.CaseState { return cvdstate.CaseState{PXA: c.PXA, EM: c.EM} }

// clone returns a deep copy, for trying an activity without changing c.
func (c *Case) clone() *Case {
	out := *c
	out.Reports = slices.Clone(c.Reports)
	out.VulnerabilityIDs = slices.Clone(c.VulnerabilityIDs)
	out.Participants = make([]*Participant, len(c.Participants))
	for i, p := range c.Participants {
		cp := *p
		out.Participants[i] = &cp
	}
	if c.Embargo != nil {
		e := *c.Embargo
		out.Embargo = &e
	}
	out.Proposals = slices.Clone(c.Proposals)
	out.History = slices.Clone(c.History)
	out.pending = slices.Clone(c.pending)
	out.byActor = nil // its own, built on first use
	out.Invites = slices.Clone(c.Invites)
	out.Suggestions = slices.Clone(c.Suggestions)
	if c.Transfer != nil {
		t := *c.Transfer
		out.Transfer = &t
	}
	out.Links = slices.Clone(c.Links)
	if c.Closure != nil {
		cl := *c.Closure
		out.Closure = &cl
	}
	out.Products = slices.Clone(c.Products)
	if c.Advisory != nil {
		out.Advisory = c.advisory()
	}
	return &out
}

// Try reports whether Apply would record act now, without changing c: nil
// when it would, else the refusal Apply gives: the Case Actor's view.
func (c *Case) Try(eventType string, act *vocab.Activity, at time.Time) error {
	if err := c.CheckRSVP(eventType, act, at); err != nil {
		return err
	}
	_, err := c.clone().Apply(eventType, act, at)
	return err
}

// TrySend reports whether a participant may send act now: nil when the
// Case Actor would record it and the sender tables allow it, else why
// not. A repeat of what the case already knows is acknowledged by the
// Case Actor but is no message to send (Effects.Unsendable). It lets a
// user interface offer only the actions a participant may take.
func (c *Case) TrySend(eventType string, act *vocab.Activity, at time.Time) error {
	if err := c.CheckRSVP(eventType, act, at); err != nil {
		return err
	}
	fx, err := c.clone().Apply(eventType, act, at)
	if err != nil {
		return err
	}
	return fx.Unsendable
}

// Object returns the case as a VulnerabilityCase, as it is served to its
// participants: its owner, participants with their latest status, the case
// status, the embargo in force, the reports, and the notes by id. noteIDs
// are the ids of its notes in order, which the record does not hold
// (NoteIDs reads them from the store).
func (c *Case) Object(noteIDs []string) *vocab.VulnerabilityCase {
	vc := &vocab.VulnerabilityCase{}
	vc.ID, vc.Type, vc.Name = c.ID, vocab.TypeVulnerabilityCase, c.Name
	vc.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(c.Owner)}, Single: true}
	vc.Published = c.Published.Format(time.RFC3339)
	vc.Updated = c.UpdatedAt.Format(time.RFC3339)
	for _, r := range c.Reports {
		vc.VulnerabilityReports = append(vc.VulnerabilityReports, vocab.RefTo(r))
	}
	vc.ActorParticipantIndex = map[string]string{}
	for _, p := range c.Participants {
		if p.Removed {
			continue
		}
		cp := &vocab.CaseParticipant{}
		cp.ID, cp.Type = p.ID, vocab.TypeCaseParticipant
		cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(p.Actor)}, Single: true}
		cp.Context = vocab.RefTo(c.ID)
		for _, r := range cvdstate.Roles() {
			if p.Roles.Has(r) {
				cp.CaseRoles = append(cp.CaseRoles, r.String())
			}
		}
		cp.EmbargoConsentState = p.PEC.String()
		if p.AcceptedEmbargo != "" {
			cp.AcceptedEmbargoIDs = []string{p.AcceptedEmbargo}
		}
		engaged, adheres := p.CaseEngagement(), p.EmbargoAdherence()
		st := &vocab.ParticipantStatus{RMState: p.RM.String(), VFDState: p.VFD.String(), EMConsentState: p.PEC.String(),
			CaseEngagement: &engaged, EmbargoAdherence: &adheres}
		st.Type = vocab.TypeParticipantStatus
		st.Context = vocab.RefTo(p.ID)
		cp.ParticipantStatuses = []vocab.Ref{vocab.Inline(st)}
		vc.CaseParticipants = append(vc.CaseParticipants, vocab.Inline(cp))
		vc.ActorParticipantIndex[p.Actor] = p.ID
	}
	status := &vocab.CaseStatus{EMState: c.EM.String(), PXAState: c.PXA.String()}
	status.Type = vocab.TypeCaseStatus
	status.Context = vocab.RefTo(c.ID)
	vc.CaseStatuses = []vocab.Ref{vocab.Inline(status)}
	if c.Embargo != nil && c.EM.InForce() {
		ev := &vocab.EmbargoEvent{}
		ev.ID, ev.Type = c.Embargo.ID, vocab.TypeEmbargoEvent
		ev.StartTime, ev.EndTime = c.Embargo.Start.Format(time.RFC3339), c.Embargo.End.Format(time.RFC3339)
		ev.Context = vocab.RefTo(c.ID)
		vc.ActiveEmbargo = vocab.Inline(ev)
	}
	for _, pr := range c.Proposals {
		vc.ProposedEmbargoes = append(vc.ProposedEmbargoes, vocab.RefTo(pr.Terms.ID))
	}
	for _, id := range noteIDs {
		vc.Notes = append(vc.Notes, vocab.RefTo(id))
	}
	for _, l := range c.Links {
		switch l.Relation {
		case RelParent:
			vc.ParentCases = append(vc.ParentCases, l.Case)
		case RelChild:
			vc.ChildCases = append(vc.ChildCases, l.Case)
		case RelSibling:
			vc.SiblingCases = append(vc.SiblingCases, l.Case)
		}
	}
	return vc
}
