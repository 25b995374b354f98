package vocab

import "fmt"

// Resolver looks up objects the node already holds, by id. Classify uses it
// to learn what a bare IRI in an activity names.
type Resolver interface {
	Resolve(id string) (Object, bool)
}

// Classification is what a message means in the protocol.
type Classification struct {
	Semantic Semantic
	// Messages are the formal message types the message can carry;
	// MessageNote says how they are told apart when the wire form alone
	// does not ("by payload"), or which use of the message this is
	// ("late joiner").
	Messages    MessageTypes
	MessageNote string
	// Unresolved is set when the meaning depends on an object the node
	// does not hold; UnresolvedID is that object's IRI.
	Unresolved   bool
	UnresolvedID string
	// Reason explains an Unknown or unresolved result.
	Reason string
}

// FormalMessages returns the message types as the corpus writes them:
// "EP|EV", "RS (late joiner)", or "-" for none.
func (c Classification) FormalMessages() string {
	s := c.Messages.String()
	if c.MessageNote != "" {
		s += " (" + c.MessageNote + ")"
	}
	return s
}

// ClassifyDocument classifies a parsed document: an activity by Classify,
// a bare object as OBJECT:<type>.
func ClassifyDocument(d *Document, r Resolver) Classification {
	if a := d.Activity(); a != nil {
		return Classify(a, r)
	}
	return Classification{Semantic: ObjectSemantic(d.Object.Common().Type)}
}

// kind is the role an object plays in the patterns.
type kind int

const (
	anyKind kind = iota // no constraint
	reportKind
	caseKind
	actorKind
	eventKind
	noteKind
	participantKind
	caseStatusKind
	participantStatusKind
	proposalKind
	roleKind
	ledgerKind
	activityKind
	recordKind
	productKind
	articleKind
	otherKind
)

func (k kind) String() string {
	switch k {
	case reportKind:
		return "VulnerabilityReport"
	case caseKind:
		return "VulnerabilityCase"
	case actorKind:
		return "actor"
	case eventKind:
		return "EmbargoEvent"
	case noteKind:
		return "Note"
	case participantKind:
		return "CaseParticipant"
	case caseStatusKind:
		return "CaseStatus"
	case participantStatusKind:
		return "ParticipantStatus"
	case proposalKind:
		return "CaseProposal"
	case roleKind:
		return "CaseParticipantRole"
	case ledgerKind:
		return "CaseLedgerEntry"
	case activityKind:
		return "activity"
	case recordKind:
		return "VulnerabilityRecord"
	case productKind:
		return "ProductStatus"
	case articleKind:
		return "Article"
	}
	return "object"
}

func kindOf(o Object) kind {
	switch x := o.(type) {
	case *VulnerabilityReport:
		return reportKind
	case *VulnerabilityCase:
		return caseKind
	case *Actor:
		return actorKind
	case *EmbargoEvent:
		return eventKind
	case *CaseParticipant:
		return participantKind
	case *CaseStatus:
		return caseStatusKind
	case *ParticipantStatus:
		return participantStatusKind
	case *CaseProposal:
		return proposalKind
	case *CaseParticipantRole:
		return roleKind
	case *CaseLedgerEntry:
		return ledgerKind
	case *Activity:
		return activityKind
	case *VulnerabilityRecord:
		return recordKind
	case *ProductStatus:
		return productKind
	case *GenericObject:
		switch x.Type {
		case "Note":
			return noteKind
		case "Article":
			return articleKind
		case "Event":
			return eventKind
		}
	}
	return otherKind
}

// pattern is the shape of one kind of Vultron message: the activity type,
// what its object must be, and which of target, context and origin must
// name a case or participant.
type pattern struct {
	sem      Semantic
	activity string
	object   kind
	inner    *pattern // when object is activityKind: the answered activity
	target   kind
	context  kind
	origin   kind
	// targetOrOrigin accepts the case in target or in origin (Remove).
	targetOrOrigin kind
}

// patterns returns the registry in match order. Each activity's object
// must be known (inline, or resolved through the Resolver) before any
// pattern can match, so the order only decides between patterns with the
// same activity and object type.
func patterns() []pattern {
	offerReport := &pattern{activity: "Offer", object: reportKind}
	offerActor := &pattern{activity: "Offer", object: actorKind, target: caseKind}
	offerParticipant := &pattern{activity: "Offer", object: participantKind, target: caseKind}
	offerRole := &pattern{activity: "Offer", object: roleKind, context: caseKind}
	offerCase := &pattern{activity: "Offer", object: caseKind}
	inviteActor := &pattern{activity: "Invite", object: actorKind, target: caseKind}
	inviteEmbargo := &pattern{activity: "Invite", object: eventKind, context: caseKind}
	return []pattern{
		{sem: CreateReport, activity: "Create", object: reportKind},
		{sem: SubmitReport, activity: "Offer", object: reportKind},
		{sem: AckReport, activity: "Read", object: activityKind, inner: offerReport},
		// The reference's own factory and examples acknowledge with
		// Read(VulnerabilityReport); both forms mean RK.
		{sem: AckReport, activity: "Read", object: reportKind},
		{sem: ValidateReport, activity: "Accept", object: activityKind, inner: offerReport},
		{sem: InvalidateReport, activity: "TentativeReject", object: activityKind, inner: offerReport},
		{sem: CloseReport, activity: "Reject", object: activityKind, inner: offerReport},
		{sem: CreateCaseProposal, activity: "Create", object: proposalKind},
		{sem: AcceptCaseProposal, activity: "Accept", object: proposalKind},
		{sem: RejectCaseProposal, activity: "Reject", object: proposalKind},
		{sem: CreateCase, activity: "Create", object: caseKind},
		{sem: UpdateCase, activity: "Update", object: caseKind},
		{sem: EngageCase, activity: "Join", object: caseKind},
		{sem: DeferCase, activity: "Ignore", object: caseKind},
		{sem: AddReportToCase, activity: "Add", object: reportKind, target: caseKind},
		{sem: AddVulnerabilityRecordToCase, activity: "Add", object: recordKind, target: caseKind},
		{sem: AddProductStatusToCase, activity: "Add", object: productKind, target: caseKind},
		{sem: PublishAdvisory, activity: "Create", object: articleKind, context: caseKind},
		{sem: ReviseAdvisory, activity: "Update", object: articleKind, context: caseKind},
		{sem: OfferActorToCase, activity: "Offer", object: actorKind, target: caseKind},
		{sem: AcceptActorRecommendation, activity: "Accept", object: activityKind, inner: offerActor},
		{sem: RejectActorRecommendation, activity: "Reject", object: activityKind, inner: offerActor},
		{sem: OfferCaseParticipant, activity: "Offer", object: participantKind, target: caseKind},
		{sem: AcceptOfferCaseParticipant, activity: "Accept", object: activityKind, inner: offerParticipant},
		{sem: RejectOfferCaseParticipant, activity: "Reject", object: activityKind, inner: offerParticipant},
		{sem: OfferCaseParticipantRole, activity: "Offer", object: roleKind, context: caseKind},
		{sem: AcceptCaseParticipantRole, activity: "Accept", object: activityKind, inner: offerRole},
		{sem: RejectCaseParticipantRole, activity: "Reject", object: activityKind, inner: offerRole},
		{sem: OfferCaseOwnershipTransfer, activity: "Offer", object: caseKind},
		{sem: AcceptCaseOwnershipTransfer, activity: "Accept", object: activityKind, inner: offerCase},
		{sem: RejectCaseOwnershipTransfer, activity: "Reject", object: activityKind, inner: offerCase},
		{sem: InviteActorToCase, activity: "Invite", object: actorKind, target: caseKind},
		{sem: AcceptInviteActorToCase, activity: "Accept", object: activityKind, inner: inviteActor},
		{sem: RejectInviteActorToCase, activity: "Reject", object: activityKind, inner: inviteActor},
		{sem: AnnounceVulnerabilityCase, activity: "Announce", object: caseKind},
		{sem: CreateEmbargoEvent, activity: "Create", object: eventKind, context: caseKind},
		{sem: AddEmbargoEventToCase, activity: "Add", object: eventKind, target: caseKind},
		{sem: RemoveEmbargoEventFromCase, activity: "Remove", object: eventKind},
		{sem: AnnounceEmbargoEventToCase, activity: "Announce", object: eventKind, context: caseKind},
		{sem: InviteToEmbargoOnCase, activity: "Invite", object: eventKind, context: caseKind},
		{sem: AcceptInviteToEmbargoOnCase, activity: "Accept", object: activityKind, inner: inviteEmbargo},
		{sem: RejectInviteToEmbargoOnCase, activity: "Reject", object: activityKind, inner: inviteEmbargo},
		{sem: CloseCase, activity: "Leave", object: caseKind},
		{sem: AnnounceCaseLedgerEntry, activity: "Announce", object: ledgerKind},
		{sem: RejectCaseLedgerEntry, activity: "Reject", object: ledgerKind},
		{sem: CreateCaseParticipant, activity: "Create", object: participantKind, context: caseKind},
		{sem: AddCaseParticipantToCase, activity: "Add", object: participantKind, target: caseKind},
		// The registry wants the case in target; the reference's example
		// generator puts it in origin, which is what AS2 defines for
		// Remove. Both are accepted.
		{sem: RemoveCaseParticipantFromCase, activity: "Remove", object: participantKind, targetOrOrigin: caseKind},
		{sem: CreateNote, activity: "Create", object: noteKind},
		{sem: AddNoteToCase, activity: "Add", object: noteKind, target: caseKind},
		{sem: RemoveNoteFromCase, activity: "Remove", object: noteKind, target: caseKind},
		{sem: CreateCaseStatus, activity: "Create", object: caseStatusKind, context: caseKind},
		{sem: AddCaseStatusToCase, activity: "Add", object: caseStatusKind, target: caseKind},
		{sem: CreateParticipantStatus, activity: "Create", object: participantStatusKind},
		{sem: AddParticipantStatusToParticipant, activity: "Add", object: participantStatusKind, target: participantKind},
	}
}

// maxResolveDepth bounds how many answered activities Classify follows.
const maxResolveDepth = 5

// outcome is the result of matching one pattern.
type outcome struct {
	ok         bool
	unresolved string // IRI of an object the node does not hold
	objectOK   bool   // the object had the right type; a later field failed
	reason     string
}

// classifier matches activities against the patterns with one resolver.
type classifier struct{ r Resolver }

// resolve returns the object a Ref names, inline or held by the node.
func (c classifier) resolve(ref Ref) (Object, bool) {
	if ref.Object != nil {
		return ref.Object, true
	}
	if ref.IRI == "" || c.r == nil {
		return nil, false
	}
	return c.r.Resolve(ref.IRI)
}

// Classify returns the protocol meaning of an activity. It is strict where
// matching by rule order alone would guess: an object given as a bare IRI
// that r cannot resolve is never matched to a pattern (the result is
// UnknownUnresolvableObject with Unresolved set), because the same
// Offer(<iri>) is a report submission, an ownership transfer or an actor
// recommendation depending on what the IRI names. target, context and
// origin may stay unresolved; when they resolve, their type must fit.
// r may be nil.
func Classify(a *Activity, r Resolver) Classification {
	return classifier{r: r}.classify(a, 0)
}

// classify classifies a at depth activities below the one Classify was
// given (a reply's message, the message that message answers, ...).
func (c classifier) classify(a *Activity, depth int) Classification {
	var unresolved, reason string
	known := false
	for _, p := range patterns() {
		if p.activity != a.Type {
			continue
		}
		known = true
		out := c.match(p, a, 0)
		if out.ok {
			cl := classification(p.sem)
			switch p.sem {
			case SubmitReport:
				if c.proposesEmbargo(a) {
					cl.Messages |= MsgEP // RS|EP: the report comes with an embargo proposal
				}
			case AckReport:
				if announcesAwareness(a) {
					cl.Messages |= MsgCV
				}
				// The RK of an RS|EP acknowledges the proposal too (EK);
				// one that answers a decision about the report does not.
				if offer, ok := c.resolveActivity(a.Object); ok && c.proposesEmbargo(offer) && (a.InReplyTo.IsZero() || a.InReplyTo.ID() == offer.ID) {
					cl.Messages |= MsgEK
				}
			}
			return cl
		}
		if out.unresolved != "" && unresolved == "" {
			unresolved = out.unresolved
		}
		if out.objectOK && reason == "" {
			reason = out.reason
		}
	}
	if (a.Type == "Read" || a.Type == "Ignore") && unresolved == "" {
		cl, out := c.matchReply(a, depth)
		if out.ok {
			return cl
		}
		if out.unresolved != "" {
			unresolved = out.unresolved
		}
		if out.reason != "" {
			reason = out.reason
		}
	}
	if a.Type == "Undo" {
		known = true
		out := c.matchReengage(a)
		if out.ok {
			return classification(EngageCase)
		}
		unresolved, reason = out.unresolved, out.reason
	}
	if a.Type == "Question" {
		known = true
		out := c.matchChooseEmbargo(a)
		if out.ok {
			return classification(ChoosePreferredEmbargo)
		}
		unresolved, reason = out.unresolved, out.reason
	}
	switch {
	case unresolved != "":
		return Classification{Semantic: UnknownUnresolvableObject, Unresolved: true, UnresolvedID: unresolved,
			Reason: fmt.Sprintf("%s is not held by this node, so what this %s means cannot be told", unresolved, a.Type)}
	case !known:
		return Classification{Semantic: Unknown, Reason: fmt.Sprintf("no Vultron message is a %s", a.Type)}
	case reason != "":
		return Classification{Semantic: Unknown, Reason: reason}
	}
	return Classification{Semantic: Unknown, Reason: fmt.Sprintf("no Vultron message is a %s of %s", a.Type, c.describe(a.Object))}
}

func classification(s Semantic) Classification {
	m, note := messagesOf(s)
	return Classification{Semantic: s, Messages: m, MessageNote: note}
}

func (c classifier) describe(ref Ref) string {
	if ref.IsZero() {
		return "nothing"
	}
	if o, ok := c.resolve(ref); ok {
		return o.Common().Type
	}
	return ref.IRI
}

func (c classifier) match(p pattern, a *Activity, depth int) outcome {
	if a.Type != p.activity {
		return outcome{}
	}
	if a.Object.IsZero() {
		return outcome{}
	}
	obj, ok := c.resolve(a.Object)
	if !ok {
		return outcome{unresolved: a.Object.IRI}
	}
	if kindOf(obj) != p.object {
		return outcome{}
	}
	if p.inner != nil {
		inner, _ := obj.(*Activity)
		if depth >= maxResolveDepth {
			return outcome{reason: "activities nest too deeply"}
		}
		out := c.match(*p.inner, inner, depth+1)
		if !out.ok {
			return outcome{unresolved: out.unresolved, objectOK: out.objectOK, reason: out.reason}
		}
	}
	for _, f := range []struct {
		name string
		ref  Ref
		want kind
	}{{"target", a.Target, p.target}, {"context", a.Context, p.context}, {"origin", a.Origin, p.origin}} {
		if f.want == anyKind {
			continue
		}
		if !c.fits(f.ref, f.want) {
			return outcome{objectOK: true, reason: fmt.Sprintf("%s(%s) needs %s: the %s", a.Type, p.object, f.name, f.want)}
		}
	}
	if p.targetOrOrigin != anyKind && !c.fits(a.Target, p.targetOrOrigin) && !c.fits(a.Origin, p.targetOrOrigin) {
		return outcome{objectOK: true, reason: fmt.Sprintf("%s(%s) needs target or origin: the %s", a.Type, p.object, p.targetOrOrigin)}
	}
	return outcome{ok: true}
}

// fits reports whether a target, context or origin value can be a want:
// it must be present, and if the node knows it, of that type.
func (c classifier) fits(ref Ref, want kind) bool {
	if ref.IsZero() {
		return false
	}
	o, ok := c.resolve(ref)
	if !ok {
		return true
	}
	return kindOf(o) == want
}

// matchReengage recognises Undo(Ignore(VulnerabilityCase)), the re-engage
// form the reference's examples send, as ENGAGE_CASE. When the undone
// Ignore carries no object, the case is the Undo's (or the Ignore's)
// context.
func (c classifier) matchReengage(a *Activity) outcome {
	if a.Object.IsZero() {
		return outcome{reason: "Undo needs an object"}
	}
	o, ok := c.resolve(a.Object)
	if !ok {
		return outcome{unresolved: a.Object.IRI}
	}
	ignore, isActivity := o.(*Activity)
	if !isActivity || ignore.Type != "Ignore" {
		return outcome{reason: fmt.Sprintf("no Vultron message undoes a %s", o.Common().Type)}
	}
	if ignore.Object.IsZero() {
		if c.fits(a.Context, caseKind) || c.fits(ignore.Context, caseKind) {
			return outcome{ok: true}
		}
		return outcome{objectOK: true, reason: "Undo(Ignore) without an object needs context: the VulnerabilityCase"}
	}
	inner, ok := c.resolve(ignore.Object)
	if !ok {
		return outcome{unresolved: ignore.Object.IRI}
	}
	if kindOf(inner) != caseKind {
		return outcome{reason: fmt.Sprintf("no Vultron message undoes an Ignore of %s", inner.Common().Type)}
	}
	return outcome{ok: true}
}

// matchChooseEmbargo recognises a Question whose options (oneOf or anyOf)
// are all embargoes of a case: a poll for the preferred embargo.
func (c classifier) matchChooseEmbargo(a *Activity) outcome {
	options := append(append([]Ref(nil), a.OneOf...), a.AnyOf...)
	if len(options) == 0 {
		return outcome{reason: "a Question without options is not a Vultron message"}
	}
	for _, opt := range options {
		o, ok := c.resolve(opt)
		if !ok {
			return outcome{unresolved: opt.IRI}
		}
		if kindOf(o) != eventKind {
			return outcome{reason: fmt.Sprintf("a Question offering a %s is not a Vultron message", o.Common().Type)}
		}
	}
	if !c.fits(a.Context, caseKind) {
		return outcome{objectOK: true, reason: "a Question about embargoes needs context: the VulnerabilityCase"}
	}
	return outcome{ok: true}
}

// The semantics of the acknowledgement and the error of each model, in
// the order RM, EM, CS, general.
var (
	ackSemantics   = [4]Semantic{AckReport, AckEmbargo, AckCaseStatus, AckInquiry}
	errorSemantics = [4]Semantic{ReportError, EmbargoError, CaseStatusError, GeneralError}
)

// matchReply recognises an acknowledgement, Read(<message>), and an
// error, Ignore(<message>) (replies.go). Which K or E it is follows from
// the message it answers, classified in turn; a Read's result may add the
// vendor's awareness (CV). An answer to an acknowledgement or an error is
// none of them: they are not answered.
func (c classifier) matchReply(a *Activity, depth int) (Classification, outcome) {
	if a.Object.IsZero() {
		return Classification{}, outcome{}
	}
	obj, ok := c.resolve(a.Object)
	if !ok {
		return Classification{}, outcome{unresolved: a.Object.IRI}
	}
	inner, ok := obj.(*Activity)
	if !ok {
		return Classification{}, outcome{}
	}
	if depth >= maxResolveDepth {
		return Classification{}, outcome{reason: "activities nest too deeply"}
	}
	ic := c.classify(inner, depth+1)
	if ic.Unresolved {
		return Classification{}, outcome{unresolved: ic.UnresolvedID}
	}
	if ic.Semantic == Unknown || ic.Semantic == UnknownUnresolvableObject {
		return Classification{}, outcome{reason: fmt.Sprintf("no Vultron message is a %s of a %s that is no Vultron message", a.Type, inner.Type)}
	}
	var m MessageTypes
	sems := ackSemantics
	if a.Type == "Read" {
		m = ackOf(ic.Messages)
	} else {
		m, sems = errorOf(ic.Messages), errorSemantics
	}
	if m == 0 {
		verb := map[string]string{"Read": "acknowledges", "Ignore": "answers an error to"}[a.Type]
		return Classification{}, outcome{reason: fmt.Sprintf("no Vultron message %s %s (%s): acknowledgements and errors are not answered", verb, ic.Semantic, ic.FormalMessages())}
	}
	sem := sems[3]
	for i, model := range [4]MessageTypes{MsgRK | MsgRE, MsgEK | MsgEE, MsgCK | MsgCE, MsgGK | MsgGE} {
		if m&model != 0 {
			sem = sems[i]
			break
		}
	}
	if a.Type == "Read" && announcesAwareness(a) {
		m |= MsgCV
	}
	return Classification{Semantic: sem, Messages: m}, outcome{ok: true}
}

// proposesEmbargo reports whether an Offer of a report proposes an
// embargo with it (RS|EP): its instrument is an EmbargoEvent, the terms
// under which the report is offered.
func (c classifier) proposesEmbargo(offer *Activity) bool {
	if offer.Instrument.IsZero() {
		return false
	}
	o, ok := c.resolve(offer.Instrument)
	return ok && kindOf(o) == eventKind
}

// resolveActivity returns the activity a reference names, if the node
// holds it or it is inline.
func (c classifier) resolveActivity(ref Ref) (*Activity, bool) {
	o, ok := c.resolve(ref)
	if !ok {
		return nil, false
	}
	a, ok := o.(*Activity)
	return a, ok
}
