package vocab

import "strings"

// Semantic names what a message means in the protocol. The values are the
// names the conformance corpus uses; a bare object is "OBJECT:<type>".
type Semantic string

// The semantics of Vultron activities.
const (
	CreateReport                      Semantic = "CREATE_REPORT"
	SubmitReport                      Semantic = "SUBMIT_REPORT"
	AckReport                         Semantic = "ACK_REPORT"
	ValidateReport                    Semantic = "VALIDATE_REPORT"
	InvalidateReport                  Semantic = "INVALIDATE_REPORT"
	CloseReport                       Semantic = "CLOSE_REPORT"
	CreateCaseProposal                Semantic = "CREATE_CASE_PROPOSAL"
	AcceptCaseProposal                Semantic = "ACCEPT_CASE_PROPOSAL"
	RejectCaseProposal                Semantic = "REJECT_CASE_PROPOSAL"
	CreateCase                        Semantic = "CREATE_CASE"
	UpdateCase                        Semantic = "UPDATE_CASE"
	EngageCase                        Semantic = "ENGAGE_CASE"
	DeferCase                         Semantic = "DEFER_CASE"
	AddReportToCase                   Semantic = "ADD_REPORT_TO_CASE"
	OfferActorToCase                  Semantic = "OFFER_ACTOR_TO_CASE"
	AcceptActorRecommendation         Semantic = "ACCEPT_ACTOR_RECOMMENDATION"
	RejectActorRecommendation         Semantic = "REJECT_ACTOR_RECOMMENDATION"
	OfferCaseParticipant              Semantic = "OFFER_CASE_PARTICIPANT"
	AcceptOfferCaseParticipant        Semantic = "ACCEPT_OFFER_CASE_PARTICIPANT"
	RejectOfferCaseParticipant        Semantic = "REJECT_OFFER_CASE_PARTICIPANT"
	OfferCaseParticipantRole          Semantic = "OFFER_CASE_PARTICIPANT_ROLE"
	AcceptCaseParticipantRole         Semantic = "ACCEPT_CASE_PARTICIPANT_ROLE"
	RejectCaseParticipantRole         Semantic = "REJECT_CASE_PARTICIPANT_ROLE"
	OfferCaseOwnershipTransfer        Semantic = "OFFER_CASE_OWNERSHIP_TRANSFER"
	AcceptCaseOwnershipTransfer       Semantic = "ACCEPT_CASE_OWNERSHIP_TRANSFER"
	RejectCaseOwnershipTransfer       Semantic = "REJECT_CASE_OWNERSHIP_TRANSFER"
	InviteActorToCase                 Semantic = "INVITE_ACTOR_TO_CASE"
	AcceptInviteActorToCase           Semantic = "ACCEPT_INVITE_ACTOR_TO_CASE"
	RejectInviteActorToCase           Semantic = "REJECT_INVITE_ACTOR_TO_CASE"
	AnnounceVulnerabilityCase         Semantic = "ANNOUNCE_VULNERABILITY_CASE"
	CreateEmbargoEvent                Semantic = "CREATE_EMBARGO_EVENT"
	AddEmbargoEventToCase             Semantic = "ADD_EMBARGO_EVENT_TO_CASE"
	RemoveEmbargoEventFromCase        Semantic = "REMOVE_EMBARGO_EVENT_FROM_CASE"
	AnnounceEmbargoEventToCase        Semantic = "ANNOUNCE_EMBARGO_EVENT_TO_CASE"
	InviteToEmbargoOnCase             Semantic = "INVITE_TO_EMBARGO_ON_CASE"
	AcceptInviteToEmbargoOnCase       Semantic = "ACCEPT_INVITE_TO_EMBARGO_ON_CASE"
	RejectInviteToEmbargoOnCase       Semantic = "REJECT_INVITE_TO_EMBARGO_ON_CASE"
	ChoosePreferredEmbargo            Semantic = "CHOOSE_PREFERRED_EMBARGO"
	CloseCase                         Semantic = "CLOSE_CASE"
	AnnounceCaseLedgerEntry           Semantic = "ANNOUNCE_CASE_LEDGER_ENTRY"
	RejectCaseLedgerEntry             Semantic = "REJECT_CASE_LEDGER_ENTRY"
	CreateCaseParticipant             Semantic = "CREATE_CASE_PARTICIPANT"
	AddCaseParticipantToCase          Semantic = "ADD_CASE_PARTICIPANT_TO_CASE"
	RemoveCaseParticipantFromCase     Semantic = "REMOVE_CASE_PARTICIPANT_FROM_CASE"
	CreateNote                        Semantic = "CREATE_NOTE"
	AddNoteToCase                     Semantic = "ADD_NOTE_TO_CASE"
	RemoveNoteFromCase                Semantic = "REMOVE_NOTE_FROM_CASE"
	CreateCaseStatus                  Semantic = "CREATE_CASE_STATUS"
	AddCaseStatusToCase               Semantic = "ADD_CASE_STATUS_TO_CASE"
	CreateParticipantStatus           Semantic = "CREATE_PARTICIPANT_STATUS"
	AddParticipantStatusToParticipant Semantic = "ADD_PARTICIPANT_STATUS_TO_PARTICIPANT"
	// The acknowledgements and errors of the four models (replies.go):
	// Read(<message>) and Ignore(<message>). ACK_REPORT is also the
	// reference's Read(Offer(VulnerabilityReport)).
	AckEmbargo      Semantic = "ACK_EMBARGO"
	AckCaseStatus   Semantic = "ACK_CASE_STATUS"
	AckInquiry      Semantic = "ACK_INQUIRY"
	ReportError     Semantic = "REPORT_ERROR"
	EmbargoError    Semantic = "EMBARGO_ERROR"
	CaseStatusError Semantic = "CASE_STATUS_ERROR"
	GeneralError    Semantic = "GENERAL_ERROR"
	// UnknownUnresolvableObject is the result for an activity whose object
	// (or the object of the activity it answers) is a bare IRI this node
	// does not hold: its meaning depends on what that IRI names.
	UnknownUnresolvableObject Semantic = "UNKNOWN_UNRESOLVABLE_OBJECT"
	// Unknown is the result for an activity no Vultron message has the
	// shape of.
	Unknown Semantic = "UNKNOWN"
)

// AddVulnerabilityRecordToCase records the ids a vulnerability is known
// by (a CVE id and its aliases) in a case: Add(VulnerabilityRecord) with
// the case as target. It is this node's extension; the reference has no
// message for it (docs/protocol.md).
const AddVulnerabilityRecordToCase Semantic = "ADD_VULNERABILITY_RECORD_TO_CASE"

// The publication of a case's advisory and what it says of the products,
// this node's extensions (docs/protocol.md):
//
//   - AddProductStatusToCase: Add(ProductStatus) with the case as target,
//     a vendor's statement of a product's status;
//   - PublishAdvisory: Create(Article) in the case's context, by its owner,
//     to its followers and participants: the advisory's first publication;
//   - ReviseAdvisory: Update(Article) of the same Article: a revision.
const (
	AddProductStatusToCase Semantic = "ADD_PRODUCT_STATUS_TO_CASE"
	PublishAdvisory        Semantic = "PUBLISH_ADVISORY"
	ReviseAdvisory         Semantic = "REVISE_ADVISORY"
)

// objectSemanticPrefix starts the semantic of a bare object.
const objectSemanticPrefix = "OBJECT:"

// ObjectSemantic returns the semantic of a document that is a bare object
// of the given type, such as OBJECT:VulnerabilityReport.
func ObjectSemantic(typ string) Semantic { return Semantic(objectSemanticPrefix + typ) }

// IsObject reports whether s is the semantic of a bare object.
func (s Semantic) IsObject() bool { return strings.HasPrefix(string(s), objectSemanticPrefix) }

// MessageTypes is a set of formal protocol message types (RS, RK, EP, ...).
// One wire form can carry several: EP and EV share Invite(EmbargoEvent) and
// are told apart by the case's embargo state; CV..CA share the status
// activities and are told apart by the payload.
type MessageTypes uint32

// The formal message types, in the order of the protocol's message table.
const (
	MsgRS MessageTypes = 1 << iota
	MsgRI
	MsgRV
	MsgRD
	MsgRA
	MsgRC
	MsgRK
	MsgRE
	MsgEP
	MsgER
	MsgEA
	MsgEV
	MsgEJ
	MsgEC
	MsgET
	MsgEK
	MsgEE
	MsgCV
	MsgCF
	MsgCD
	MsgCP
	MsgCX
	MsgCA
	MsgCK
	MsgCE
	MsgGI
	MsgGK
	MsgGE
)

// messageNames returns the shorthand of each message type in table order.
func messageNames() [28]string {
	return [28]string{"RS", "RI", "RV", "RD", "RA", "RC", "RK", "RE",
		"EP", "ER", "EA", "EV", "EJ", "EC", "ET", "EK", "EE",
		"CV", "CF", "CD", "CP", "CX", "CA", "CK", "CE",
		"GI", "GK", "GE"}
}

// String returns the shorthands joined by "|" ("EP|EV"), or "-" for none.
func (m MessageTypes) String() string {
	if m == 0 {
		return "-"
	}
	var parts []string
	for i, n := range messageNames() {
		if m&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	return strings.Join(parts, "|")
}

// messagesOf returns the formal message types a semantic can carry, and a
// note on how they are told apart when the wire form alone does not say.
func messagesOf(s Semantic) (MessageTypes, string) {
	switch s {
	case SubmitReport:
		return MsgRS, ""
	case InviteActorToCase:
		// An invitation brings a late joiner the report: the reference
		// documents this activity as "the RS message".
		return MsgRS, "late joiner"
	case AckReport:
		return MsgRK, ""
	case ValidateReport:
		return MsgRV, ""
	case InvalidateReport:
		return MsgRI, ""
	case CloseReport, CloseCase:
		return MsgRC, ""
	case EngageCase:
		return MsgRA, ""
	case DeferCase:
		return MsgRD, ""
	case InviteToEmbargoOnCase:
		return MsgEP | MsgEV, ""
	case AcceptInviteToEmbargoOnCase:
		return MsgEA | MsgEC, ""
	case RejectInviteToEmbargoOnCase:
		return MsgER | MsgEJ, ""
	case RemoveEmbargoEventFromCase:
		return MsgET, ""
	case AddNoteToCase, AddProductStatusToCase, PublishAdvisory, ReviseAdvisory:
		// General information every participant is told of, which the
		// Case Actor acknowledges (GK) like a note.
		return MsgGI, ""
	case AddCaseStatusToCase:
		// The message-semantics mapping lists CV..CA for Add(CaseStatus),
		// but a CaseStatus carries only the embargo and pxa states: the
		// vendor/fix/deployed facts travel in ParticipantStatus. Following
		// the corpus, only the public/exploit/attack messages are listed.
		return MsgCP | MsgCX | MsgCA, ""
	case AddParticipantStatusToParticipant:
		return MsgCV | MsgCF | MsgCD | MsgCP | MsgCX | MsgCA, "by payload"
	}
	return 0, ""
}
