package rules

import (
	"slices"
	"strings"
)

// Point is a decision point of the protocol: a moment at which an
// organization decides something, and which a rule is keyed by.
type Point string

// The decision points.
const (
	// ReportReceived: a local actor received a report (RS). The report's
	// receiver decides whether it is valid and whether to work on it.
	ReportReceived Point = "report_received"
	// ReportValidated: a local actor's report in a case is valid: the
	// case it validated opened, or it holds a case's report as valid
	// (RM VALID, or later ACCEPTED or DEFERRED).
	ReportValidated Point = "report_validated"
	// CaseEngaged: a local actor engaged in a case (RM ACCEPTED).
	CaseEngaged Point = "case_engaged"
	// EmbargoProposed: a participant proposed an embargo or a revision of
	// the one in force (EP, EV) in a case a local actor takes part in.
	EmbargoProposed Point = "embargo_proposed"
	// InvitationReceived: a local actor was invited to a case.
	InvitationReceived Point = "invitation_received"
	// SuggestionReceived: a participant suggested inviting an actor to a
	// case a local actor owns.
	SuggestionReceived Point = "suggestion_received"
	// FixReady: a vendor of the case reported its fix ready (CF).
	FixReady Point = "fix_ready"
	// FixDeployed: a deployer of the case reported the fix deployed (CD).
	FixDeployed Point = "fix_deployed"
	// Publication: the case recorded that the public is aware (CP).
	Publication Point = "publication"
	// AdvisoryPublished: the case recorded the owner's advisory
	// (Create(Article)): what a policy may follow with CP.
	AdvisoryPublished Point = "advisory_published"
	// EmbargoEnded: the end of the embargo in force has passed.
	EmbargoEnded Point = "embargo_ended"
	// IntelAttacksObserved: a threat-intelligence feed lists a CVE of the
	// case as exploited in the wild (the evidence for CA).
	IntelAttacksObserved Point = "intel_attacks_observed"
	// IntelExploitPublic: a feed lists a public exploit for a CVE of the
	// case (the evidence for CX).
	IntelExploitPublic Point = "intel_exploit_public"
	// IntelPublic: a feed lists a public disclosure of a CVE of the case
	// (the evidence for CP).
	IntelPublic Point = "intel_public"
)

// Points returns every decision point, in the order a case meets them.
func Points() []Point {
	return []Point{ReportReceived, ReportValidated, CaseEngaged, InvitationReceived, EmbargoProposed, SuggestionReceived, FixReady,
		FixDeployed, AdvisoryPublished, Publication, EmbargoEnded, IntelAttacksObserved, IntelExploitPublic, IntelPublic}
}

// Kind is an action a rule takes: one of the protocol's ordinary actions,
// a webhook notification, or a question to a person.
type Kind string

// The actions.
const (
	Validate            Kind = "validate"              // RV: the report is valid (opens the case)
	Invalidate          Kind = "invalidate"            // RI
	Engage              Kind = "engage"                // RA: work on the case (validates first if needed)
	Defer               Kind = "defer"                 // RD
	Close               Kind = "close"                 // RC
	ProposeEmbargo      Kind = "propose_embargo"       // EP, or EV while one is in force; {days}
	AcceptEmbargo       Kind = "accept_embargo"        // EA, EC
	RejectEmbargo       Kind = "reject_embargo"        // ER, EJ; {reason}
	ReportAttacks       Kind = "report_attacks"        // CA
	ReportExploitPublic Kind = "report_exploit_public" // CX
	ReportPublic        Kind = "report_public"         // CP
	Invite              Kind = "invite"                // invite an actor to the case; {actor, role}
	AcceptInvitation    Kind = "accept_invitation"     // join the case one was invited to
	DeclineInvitation   Kind = "decline_invitation"    // decline it
	AcceptSuggestion    Kind = "accept_suggestion"     // the owner invites the suggested actor
	RejectSuggestion    Kind = "reject_suggestion"     // the owner declines the suggestion
	Notify              Kind = "notify"                // POST the decision to a webhook; {url}
	Ask                 Kind = "ask"                   // leave the decision to a person
)

// Kinds returns every action.
func Kinds() []Kind {
	return []Kind{Validate, Invalidate, Engage, Defer, Close, ProposeEmbargo, AcceptEmbargo, RejectEmbargo,
		ReportAttacks, ReportExploitPublic, ReportPublic, Invite, AcceptInvitation, DeclineInvitation,
		AcceptSuggestion, RejectSuggestion, Notify, Ask}
}

// onlyAt names the actions that answer one decision point and make no
// sense at another; every other action may be taken at every point.
var onlyAt = map[Kind]Point{
	AcceptEmbargo:     EmbargoProposed,
	RejectEmbargo:     EmbargoProposed,
	AcceptInvitation:  InvitationReceived,
	DeclineInvitation: InvitationReceived,
	AcceptSuggestion:  SuggestionReceived,
	RejectSuggestion:  SuggestionReceived,
}

// AllowedAt reports whether action k may be taken at point p.
func AllowedAt(k Kind, p Point) bool {
	at, only := onlyAt[k]
	return !only || at == p
}

func knownPoint(s string) bool { return slices.Contains(Points(), Point(s)) }
func knownKind(s string) bool  { return slices.Contains(Kinds(), Kind(s)) }

func pointList() string {
	var names []string
	for _, p := range Points() {
		names = append(names, string(p))
	}
	return strings.Join(names, ", ")
}

func kindList() string {
	var names []string
	for _, k := range Kinds() {
		names = append(names, string(k))
	}
	return strings.Join(names, ", ")
}
