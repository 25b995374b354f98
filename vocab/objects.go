package vocab

import (
	"encoding/json"
	"time"
)

// Object is any value that can stand in an object-valued property or at
// the top of a document: an *Activity, an *Actor, a *GenericObject (a Note,
// an Event, a collection and any other ActivityStreams core type), or one
// of the Vultron object types below.
type Object interface {
	// Common returns the properties every object has.
	Common() *ObjectBase
}

// Ref is the value of a property that holds one object: either a bare
// reference (IRI) or an inline object. The zero Ref means "absent".
type Ref struct {
	IRI    string
	Object Object
}

// IsZero reports whether the property is absent.
func (r Ref) IsZero() bool { return r.IRI == "" && r.Object == nil }

// ID returns the referenced identifier: the IRI, or the id of the inline
// object.
func (r Ref) ID() string {
	if r.Object != nil {
		return r.Object.Common().ID
	}
	return r.IRI
}

// RefTo returns a Ref holding the bare IRI id.
func RefTo(id string) Ref { return Ref{IRI: id} }

// RefID returns the id a reference held as raw JSON names (a stored
// payload read again without parsing the whole activity): the IRI, or the
// "id" of an inline object; "" for anything else.
func RefID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var o struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &o)
	return o.ID
}

// Inline returns a Ref holding the object o.
func Inline(o Object) Ref { return Ref{Object: o} }

// Refs is the value of a property that may hold one value or an array of
// them, such as to, cc or attributedTo. Single records that the document
// used one bare value rather than an array, so that serialising gives the
// same shape back.
type Refs struct {
	Items  []Ref
	Single bool
}

// IDs returns the identifiers of the values.
func (rs Refs) IDs() []string {
	out := make([]string, 0, len(rs.Items))
	for _, r := range rs.Items {
		out = append(out, r.ID())
	}
	return out
}

// ObjectBase holds the ActivityStreams properties shared by every object.
// Properties with no field here (url, tag, attachment, icon, image,
// location, preview, replies, generator, and extension properties this
// package does not know) are kept in Extra, so that serialising a parsed
// object loses nothing. Date-times are kept as the strings received.
type ObjectBase struct {
	ID           string
	Type         string
	Name         string
	Summary      string
	Content      string
	MediaType    string
	Published    string
	Updated      string
	StartTime    string
	EndTime      string
	Duration     string
	Context      Ref
	InReplyTo    Ref
	AttributedTo Refs
	To           Refs
	Cc           Refs
	Bto          Refs
	Bcc          Refs
	Audience     Refs
	// Extra holds the remaining properties as decoded JSON values
	// (map[string]any, []any, string, json.Number, bool).
	Extra map[string]any
}

// Common returns b itself; it makes every type embedding ObjectBase an
// Object.
func (b *ObjectBase) Common() *ObjectBase { return b }

// Activity is an ActivityStreams activity (Offer, Accept, Invite, ...,
// Question). Object, Target and Origin hold one value each: Vultron never
// sends several, and a document that does is refused.
type Activity struct {
	ObjectBase
	Actor      Ref
	Object     Ref
	Target     Ref
	Origin     Ref
	Instrument Ref
	Result     Ref
	// Roles is the non-standard list of CVD roles an Invite offers
	// (lowercase wire spelling).
	Roles []string
	// OneOf and AnyOf are the options of a Question.
	OneOf []Ref
	AnyOf []Ref
}

// Actor is an ActivityStreams actor: Person, Organization, Service,
// Application or Group. A case actor is a Service.
type Actor struct {
	ObjectBase
	Inbox             Ref
	Outbox            Ref
	Following         Ref
	Followers         Ref
	Liked             Ref
	Streams           []Ref
	PreferredUsername string
	Endpoints         map[string]any
	EmbargoPolicy     Ref
}

// GenericObject is any other ActivityStreams core object (Note, Event,
// OrderedCollection, ...); its type-specific properties are in Extra.
type GenericObject struct {
	ObjectBase
}

// VulnerabilityReport is a report of a vulnerability. It uses only the
// common properties: name, content (the report itself), attributedTo
// (the reporter) and context.
type VulnerabilityReport struct {
	ObjectBase
}

// VulnerabilityCase is the shared record of a case. A case stub, as sent
// as the target of an Invite, carries only id, type, summary,
// activeEmbargo and caseStatus.
type VulnerabilityCase struct {
	ObjectBase
	CaseParticipants               []Ref
	ActorParticipantIndex          map[string]string
	VulnerabilityReports           []Ref
	CaseStatuses                   []Ref
	Notes                          []Ref
	GenesisHash                    string
	ActiveEmbargo                  Ref
	ProposedEmbargoes              []Ref
	PendingEmbargoProposalIndex    map[string]string
	RecommendationRecommenderIndex map[string]string
	CaseActivity                   []Ref
	ParentCases                    []string
	ChildCases                     []string
	SiblingCases                   []string
	// CaseStatus is the single status a case stub carries.
	CaseStatus *CaseStatus
}

// CaseParticipant is an actor's membership in a case; attributedTo is the
// actor and context the case.
type CaseParticipant struct {
	ObjectBase
	CaseRoles           []string // lowercase role values
	ParticipantStatuses []Ref
	AcceptedEmbargoIDs  []string
	EmbargoConsentState string // PEC state
	ParticipantCaseName string
}

// ParticipantStatus is one participant's report of its own state.
type ParticipantStatus struct {
	ObjectBase
	RMState          string
	VFDState         string
	CaseEngagement   *bool
	EmbargoAdherence *bool
	EMConsentState   string
	CVDRole          []string // uppercase role names
	TrackingID       string
	CaseStatus       *CaseStatus
}

// CaseStatus is the case-wide embargo and public/exploit/attack state.
type CaseStatus struct {
	ObjectBase
	EMState  string
	PXAState string
}

// EmbargoEvent is an embargo: an Event whose startTime and endTime bound
// the embargo.
type EmbargoEvent struct {
	ObjectBase
}

// EmbargoPolicy is an actor's declaration of the embargo it accepts by
// default.
type EmbargoPolicy struct {
	ObjectBase
	ActorID           string
	Inbox             string
	PreferredDuration string
	MinimumDuration   string
	MaximumDuration   string
	Notes             string
}

// CaseProposal proposes that a case actor open a case for a report.
type CaseProposal struct {
	ObjectBase
	Object Ref // the report
	Target Ref // the case actor service
}

// CaseParticipantRole is the object of a role offer.
type CaseParticipantRole struct {
	ObjectBase
	Role string // lowercase role value
}

// CaseReference is a typed external reference of a case.
type CaseReference struct {
	ObjectBase
	Tags []string
}

// VulnerabilityRecord is a persistent vulnerability identifier record
// (a CVE entry, for example).
type VulnerabilityRecord struct {
	ObjectBase
	Aliases []string
}

// ProductStatus is a vendor's statement of how a vulnerability affects one
// of its products: the product (name), the vendor (an actor that takes
// part in the case), how to find the product (a package URL, a CPE name),
// the versions the statement covers and their status (affected, fixed,
// not-affected, under-investigation), with a justification when they are
// not affected and free text (content) saying what to do or why. It is
// this node's extension (docs/protocol.md).
type ProductStatus struct {
	ObjectBase
	Vendor        string
	PURL          string
	CPE           string
	Versions      string
	Status        string
	Justification string
}

// CaseLedgerEntry is one entry of a case's hash-chained ledger.
type CaseLedgerEntry struct {
	ObjectBase
	CaseID          string
	LogIndex        *int64
	Disposition     string
	Term            *int64
	LogObjectID     string
	EventType       string
	PayloadSnapshot map[string]any // opaque: never interpreted
	PrevLogHash     string
	EntryHash       string
	ReceivedAt      string
	ReasonCode      string
	ReasonDetail    string
}

// Vultron object type names as they appear in "type".
const (
	TypeVulnerabilityReport = "VulnerabilityReport"
	TypeVulnerabilityCase   = "VulnerabilityCase"
	TypeCaseParticipant     = "CaseParticipant"
	TypeParticipantStatus   = "ParticipantStatus"
	TypeCaseStatus          = "CaseStatus"
	TypeEmbargoEvent        = "EmbargoEvent"
	TypeEmbargoPolicy       = "EmbargoPolicy"
	TypeCaseProposal        = "CaseProposal"
	TypeCaseParticipantRole = "CaseParticipantRole"
	TypeCaseReference       = "CaseReference"
	TypeVulnerabilityRecord = "VulnerabilityRecord"
	TypeProductStatus       = "ProductStatus"
	TypeCaseLedgerEntry     = "CaseLedgerEntry"
	// TypeVulnerabilityCaseStub is declared by the Vultron context but never
	// sent: stubs travel as VulnerabilityCase. It is accepted and read as a
	// VulnerabilityCase.
	TypeVulnerabilityCaseStub = "VulnerabilityCaseStub"
)

// Context URIs.
const (
	// ActivityStreamsContext is the ActivityStreams 2.0 context.
	ActivityStreamsContext = "https://www.w3.org/ns/activitystreams"
	// VultronContext is the Vultron context; it includes the
	// ActivityStreams context and names the Vultron types.
	VultronContext = "https://certcc.github.io/Vultron/ns/context.jsonld"
)

// CaseCreation returns the Create(VulnerabilityCase) by which the Case
// Actor actor opens the case vc, published at published: the first entry
// of the case's ledger. Its id is the case's id followed by "/created",
// so that it is the same activity wherever the case is opened again from
// the same data.
func CaseCreation(actor string, vc *VulnerabilityCase, published time.Time) *Activity {
	create := &Activity{}
	create.ID, create.Type = vc.ID+"/created", "Create"
	create.Actor = RefTo(actor)
	create.Object = Inline(vc)
	create.Context = RefTo(vc.ID)
	create.Published = published.Format(time.RFC3339)
	return create
}

// CaseClosing returns the Leave(VulnerabilityCase) by which the Case
// Actor actor closes the case with id caseID and name caseName once its
// owner owner left (spec §1.5, CM-23-002): the Case Actor's own RM CLOSED,
// recorded as the case's last entry under the event type
// case_fully_closed. Its id is the case's id followed by "/closed": a case
// is closed once. The case travels inline, as every entry's object does.
func CaseClosing(actor, caseID, caseName, owner string, published time.Time) *Activity {
	vc := &VulnerabilityCase{}
	vc.ID, vc.Type, vc.Name = caseID, TypeVulnerabilityCase, caseName
	leave := &Activity{}
	leave.ID, leave.Type = caseID+"/closed", "Leave"
	leave.Actor = RefTo(actor)
	leave.Object = Inline(vc)
	leave.Context = RefTo(caseID)
	leave.Published = published.Format(time.RFC3339)
	leave.Content = "The case owner " + owner + " left the case, so its Case Actor closes it for every participant."
	return leave
}
