package vocab

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// This file builds the documents of testdata/wire: one or more for every
// message shape Classify knows, every bare object type, the forms the
// node's own submissions take (submit.go), activities it cannot place,
// and documents in the 2023 shapes, each with the classification or
// refusal a reader of the protocol expects. The expectations are written
// here by hand, never computed by Classify; wire_test.go checks the files
// against them and that the files on disk are what this file builds
// (go test ./vocab -run TestWireTestdataCurrent -update rewrites them).

// Identifiers of the example documents: a finder reports to a vendor,
// whose Case Actor opens a case a coordinator is invited to.
const (
	exFinder      = "https://finder.example/actors/fiona"
	exVendor      = "https://vendor.example/actors/psirt"
	exCoordinator = "https://coordinator.example/actors/desk"
	exCaseActor   = "https://vendor.example/actors/case-actor"
	exReport      = "https://finder.example/reports/r-1042"
	exOffer       = "https://finder.example/activities/offer-r-1042"
	exCase        = "https://vendor.example/cases/c-77"
	exVendorPart  = exCase + "/participants/vendor"
	exFinderPart  = exCase + "/participants/finder"
	exCoordPart   = exCase + "/participants/coordinator"
	exEmbargo     = exCase + "/embargoes/e-1"
	exEmbargo2    = exCase + "/embargoes/e-2"
	exInvite      = "https://vendor.example/activities/invite-embargo-1"
	exCaseStatus  = exCase + "/statuses/s-3"
	exNote        = exCase + "/notes/n-5"
	exLedgerEntry = exCase + "/ledger/12"
	exPublished   = "2026-03-02T09:15:00Z"
)

// Expected values of the table that are not semantics.
const (
	// refused is the expected column of a document Parse refuses; the
	// reason column then holds the refusal, word for word.
	refused = "REFUSED"
	// format2023 marks documents in the 2023 example shapes; current
	// marks the wire format the node writes.
	formatCurrent = "current"
	format2023    = "2023"
)

// wireExample is one document of testdata/wire and what it must mean.
type wireExample struct {
	file string
	// object is built with this package's types and written by Marshal;
	// raw is a hand-written document, for shapes Marshal never writes
	// (nested contexts, the 2023 shapes, refusals). One of the two is set.
	object Object
	raw    string
	format string
	// held lists the example files whose top-level objects the node
	// holds when it classifies this one (the Resolver).
	held []string
	// want is the semantic, or refused; messages the formal message
	// types as Classification.FormalMessages writes them; reason the
	// Classification's Reason, or the refusal's text.
	want     string
	messages string
	reason   string
}

// Small builders of example values. Each call returns a fresh value.

func exRefs(ids ...string) Refs {
	rs := Refs{}
	for _, id := range ids {
		rs.Items = append(rs.Items, RefTo(id))
	}
	return rs
}

func exBool(b bool) *bool  { return &b }
func exInt(i int64) *int64 { return &i }
func exIRI(id string) Ref  { return RefTo(id) }
func exIn(o Object) Ref    { return Inline(o) }
func exBase(id, typ string) ObjectBase {
	return ObjectBase{ID: id, Type: typ, Published: exPublished}
}

// exAct is an activity of type typ by actor; opts fill the rest.
func exAct(typ, id, actor string, object Ref, opts ...func(*Activity)) *Activity {
	a := &Activity{ObjectBase: exBase(id, typ), Actor: RefTo(actor), Object: object}
	for _, o := range opts {
		o(a)
	}
	return a
}

func withTarget(r Ref) func(*Activity)  { return func(a *Activity) { a.Target = r } }
func withOrigin(r Ref) func(*Activity)  { return func(a *Activity) { a.Origin = r } }
func withContext(r Ref) func(*Activity) { return func(a *Activity) { a.Context = r } }
func withTo(ids ...string) func(*Activity) {
	return func(a *Activity) { a.To = exRefs(ids...) }
}
func withSummary(s string) func(*Activity) { return func(a *Activity) { a.Summary = s } }

func exReportObj() *VulnerabilityReport {
	r := &VulnerabilityReport{exBase(exReport, TypeVulnerabilityReport)}
	r.Name = "Stored XSS in the fleet console's device notes"
	r.Content = "A device note containing a script element is rendered unescaped on the fleet overview page."
	r.AttributedTo = exRefs(exFinder)
	return r
}

func exOfferReport() *Activity {
	return exAct("Offer", exOffer, exFinder, exIn(exReportObj()), withTo(exVendor))
}

func exCaseStatusObj() *CaseStatus {
	s := &CaseStatus{ObjectBase: exBase(exCaseStatus, TypeCaseStatus), EMState: "ACTIVE", PXAState: "pxa"}
	s.Context = exIRI(exCase)
	return s
}

func exParticipantStatusObj() *ParticipantStatus {
	s := &ParticipantStatus{
		ObjectBase: exBase(exVendorPart+"/statuses/2", TypeParticipantStatus),
		RMState:    "ACCEPTED", VFDState: "VFd",
		CaseEngagement: exBool(true), EmbargoAdherence: exBool(true),
		EMConsentState: "SIGNATORY", CVDRole: []string{"VENDOR"},
		TrackingID: "PSIRT-2026-0113", CaseStatus: exCaseStatusObj(),
	}
	s.Context = exIRI(exVendorPart)
	s.AttributedTo = exRefs(exVendor)
	return s
}

func exParticipant(id, actor string, roles ...string) *CaseParticipant {
	p := &CaseParticipant{ObjectBase: exBase(id, TypeCaseParticipant), CaseRoles: roles, EmbargoConsentState: "SIGNATORY"}
	p.AttributedTo = exRefs(actor)
	p.Context = exIRI(exCase)
	return p
}

func exEmbargoObj(id string, days int) *EmbargoEvent {
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	e := &EmbargoEvent{exBase(id, TypeEmbargoEvent)}
	e.Name = fmt.Sprintf("Embargo of %d days", days)
	e.StartTime = start.Format(time.RFC3339)
	e.EndTime = start.AddDate(0, 0, days).Format(time.RFC3339)
	e.Context = exIRI(exCase)
	return e
}

func exNoteObj() *GenericObject {
	n := &GenericObject{exBase(exNote, "Note")}
	n.Content = "Fix is in build 4.2.1; deployment to the hosted fleet starts Monday."
	n.Context = exIRI(exCase)
	n.AttributedTo = exRefs(exVendor)
	return n
}

// exRecordObj is the ids the case's vulnerability is known by.
func exRecordObj() *VulnerabilityRecord {
	r := &VulnerabilityRecord{ObjectBase: exBase("https://vendor.example/objects/cve-2026-1234", TypeVulnerabilityRecord)}
	r.Name = "CVE-2026-1234"
	r.Aliases = []string{"GHSA-2f3q-x8v6-9c4m"}
	return r
}

// exProductObj is the vendor's statement of one product's status.
func exProductObj() *ProductStatus {
	p := &ProductStatus{ObjectBase: exBase("https://vendor.example/objects/product-widget", TypeProductStatus)}
	p.Name = "Widget Server"
	p.Vendor = exVendor
	p.PURL = "pkg:golang/vendor.example/widget@4.2.0"
	p.Versions = "< 4.2.1"
	p.Status = "affected"
	p.Content = "Upgrade to 4.2.1."
	return p
}

// exArticleObj is a published advisory as its Create and Update carry it.
func exArticleObj() *GenericObject {
	a := &GenericObject{exBase("https://vendor.example/advisories/vultron-2026-0113", "Article")}
	a.Name = "Heap overflow in the widget parser"
	a.Summary = "A crafted widget file overflows a heap buffer; fixed in 4.2.1."
	a.Content = "<p>A crafted widget file overflows a heap buffer in the parser of Widget Server before 4.2.1.</p>"
	a.AttributedTo = exRefs(exVendor)
	a.Extra = map[string]any{"url": "https://vendor.example/advisories/vultron-2026-0113"}
	return a
}

func exCaseObj() *VulnerabilityCase {
	vendor := exParticipant(exVendorPart, exVendor, "vendor", "case_owner")
	vendor.ParticipantStatuses = []Ref{exIn(exParticipantStatusObj())}
	vendor.AcceptedEmbargoIDs = []string{exEmbargo}
	vendor.ParticipantCaseName = "PSIRT-2026-0113"
	c := &VulnerabilityCase{
		ObjectBase: exBase(exCase, TypeVulnerabilityCase),
		CaseParticipants: []Ref{
			exIn(vendor),
			exIn(exParticipant(exFinderPart, exFinder, "finder", "reporter")),
		},
		ActorParticipantIndex: map[string]string{exVendor: exVendorPart, exFinder: exFinderPart},
		VulnerabilityReports:  []Ref{exIRI(exReport)},
		CaseStatuses:          []Ref{exIn(exCaseStatusObj())},
		Notes:                 []Ref{exIRI(exNote)},
		GenesisHash:           "9f2c4e1a7b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e",
		ActiveEmbargo:         exIn(exEmbargoObj(exEmbargo, 90)),
		CaseActivity:          []Ref{exIRI(exOffer)},
	}
	c.Name = "Stored XSS in the fleet console"
	c.AttributedTo = exRefs(exCaseActor)
	return c
}

// exCaseStub is the case as an Invite's target carries it.
func exCaseStub() *VulnerabilityCase {
	c := &VulnerabilityCase{ObjectBase: ObjectBase{ID: exCase, Type: TypeVulnerabilityCase},
		ActiveEmbargo: exIRI(exEmbargo), CaseStatus: &CaseStatus{ObjectBase: ObjectBase{Type: TypeCaseStatus}, EMState: "ACTIVE", PXAState: "pxa"}}
	c.Summary = "A case about a web console vulnerability, under embargo."
	return c
}

func exActorObj(id, typ, name string) *Actor {
	a := &Actor{ObjectBase: ObjectBase{ID: id, Type: typ, Name: name},
		Inbox: exIRI(id + "/inbox"), Outbox: exIRI(id + "/outbox")}
	return a
}

func exPolicyObj() *EmbargoPolicy {
	p := &EmbargoPolicy{ObjectBase: ObjectBase{ID: exVendor + "/embargo-policy", Type: TypeEmbargoPolicy},
		ActorID: exVendor, Inbox: exVendor + "/inbox",
		PreferredDuration: "P90D", MinimumDuration: "P45D", MaximumDuration: "P180D",
		Notes: "Longer embargoes when a fix needs a firmware release."}
	return p
}

func exRoleObj() *CaseParticipantRole {
	return &CaseParticipantRole{ObjectBase: ObjectBase{Type: TypeCaseParticipantRole}, Role: "case_owner"}
}

func exProposalObj() *CaseProposal {
	return &CaseProposal{ObjectBase: exBase(exCase+"/proposal", TypeCaseProposal),
		Object: exIRI(exReport), Target: exIRI(exCaseActor)}
}

func exLedgerObj(disposition string) *CaseLedgerEntry {
	e := &CaseLedgerEntry{ObjectBase: exBase(exLedgerEntry, TypeCaseLedgerEntry),
		CaseID: exCase, LogIndex: exInt(12), Disposition: disposition, Term: exInt(1),
		LogObjectID: exOffer, EventType: "validate_report",
		PayloadSnapshot: map[string]any{"type": "Accept", "object": exOffer},
		PrevLogHash:     "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9",
		EntryHash:       "f9e8d7c6b5a4938271605f4e3d2c1b0af9e8d7c6b5a4938271605f4e3d2c1b0a",
		ReceivedAt:      exPublished}
	if disposition == "rejected" {
		e.ReasonCode = "stale_term"
		e.ReasonDetail = "the entry's term is older than the case's"
	}
	return e
}

// exSubmitted turns what a participant submits to its outbox (submit.go)
// into the activity the outbox sends: it fills id, actor and published as
// the outbox does, and parses the result.
func exSubmitted(t testing.TB, submission map[string]any, id, actor string) Object {
	t.Helper()
	submission["@context"] = VultronContext
	submission["id"] = id
	submission["actor"] = actor
	submission["published"] = exPublished
	data, err := json.Marshal(submission)
	if err != nil {
		t.Fatalf("encode submission %s: %v", id, err)
	}
	d, err := Parse(data)
	if err != nil {
		t.Fatalf("parse submission %s: %v", id, err)
	}
	return d.Object
}

// wireExamples returns every document of testdata/wire with what it must
// mean.
func wireExamples(t testing.TB) []wireExample {
	t.Helper()
	caseRef := exIRI(exCase)
	offerActor := func() *Activity {
		return exAct("Offer", "https://vendor.example/activities/recommend-desk", exVendor,
			exIn(exActorObj(exCoordinator, "Organization", "Coordination Desk")), withTarget(caseRef), withTo(exCaseActor))
	}
	offerParticipant := func() *Activity {
		return exAct("Offer", "https://vendor.example/activities/offer-participant", exVendor,
			exIn(exParticipant(exCoordPart, exCoordinator, "coordinator")), withTarget(caseRef), withTo(exCaseActor))
	}
	offerRole := func() *Activity {
		return exAct("Offer", "https://vendor.example/activities/offer-role", exVendor,
			exIn(exRoleObj()), withContext(caseRef), withTo(exCoordinator))
	}
	offerCase := func() *Activity {
		return exAct("Offer", "https://vendor.example/activities/offer-ownership", exVendor,
			exIn(exCaseObj()), withTo(exCoordinator))
	}
	inviteActor := func() *Activity {
		a := exAct("Invite", "https://vendor.example/activities/invite-desk", exCaseActor,
			exIn(exActorObj(exCoordinator, "Organization", "Coordination Desk")), withTarget(exIn(exCaseStub())), withTo(exCoordinator))
		a.Roles = []string{"coordinator"}
		return a
	}
	inviteEmbargo := func() *Activity {
		return exAct("Invite", exInvite, exVendor, exIn(exEmbargoObj(exEmbargo, 90)), withContext(caseRef),
			withTo(exCaseActor), withSummary("We propose an embargo of 90 days."))
	}
	answer := func(typ, id, actor string, answered *Activity, opts ...func(*Activity)) *Activity {
		return exAct(typ, id, actor, exIn(answered), opts...)
	}
	finderToVendor := withTo(exVendor)
	vendorToFinder := withTo(exFinder)

	ex := []wireExample{
		// Report management.
		{file: "create_report.json", object: exAct("Create", "https://finder.example/activities/create-r-1042", exFinder, exIn(exReportObj())), want: string(CreateReport), messages: "-"},
		{file: "submit_report.json", object: exOfferReport(), want: string(SubmitReport), messages: "RS"},
		{file: "ack_report.json", object: answer("Read", "https://vendor.example/activities/read-offer", exVendor, exOfferReport(), vendorToFinder), want: string(AckReport), messages: "RK"},
		{file: "ack_report_read_report.json", object: exAct("Read", "https://vendor.example/activities/read-report", exVendor, exIn(exReportObj()), vendorToFinder), want: string(AckReport), messages: "RK"},
		{file: "validate_report.json", object: answer("Accept", "https://vendor.example/activities/validate", exVendor, exOfferReport(), vendorToFinder), want: string(ValidateReport), messages: "RV"},
		{file: "invalidate_report.json", object: answer("TentativeReject", "https://vendor.example/activities/invalidate", exVendor, exOfferReport(), vendorToFinder), want: string(InvalidateReport), messages: "RI"},
		{file: "close_report.json", object: answer("Reject", "https://vendor.example/activities/close-report", exVendor, exOfferReport(), vendorToFinder, withSummary("Not reproducible on supported versions.")), want: string(CloseReport), messages: "RC"},

		// Case proposals, the case itself and engagement.
		{file: "create_case_proposal.json", object: exAct("Create", "https://vendor.example/activities/propose-case", exVendor, exIn(exProposalObj()), withTo(exCaseActor)), want: string(CreateCaseProposal), messages: "-"},
		{file: "accept_case_proposal.json", object: exAct("Accept", "https://vendor.example/activities/accept-proposal", exCaseActor, exIn(exProposalObj()), withTo(exVendor)), want: string(AcceptCaseProposal), messages: "-"},
		{file: "reject_case_proposal.json", object: exAct("Reject", "https://vendor.example/activities/reject-proposal", exCaseActor, exIn(exProposalObj()), withTo(exVendor)), want: string(RejectCaseProposal), messages: "-"},
		{file: "create_case.json", object: exAct("Create", "https://vendor.example/activities/create-case", exCaseActor, exIn(exCaseObj()), withTo(exVendor, exFinder)), want: string(CreateCase), messages: "-"},
		{file: "update_case.json", object: exAct("Update", "https://vendor.example/activities/update-case", exCaseActor, exIn(exCaseObj()), withTo(exVendor, exFinder)), want: string(UpdateCase), messages: "-"},
		{file: "engage_case.json", object: exAct("Join", "https://vendor.example/activities/join", exVendor, exIn(exCaseStub()), withTo(exCaseActor)), want: string(EngageCase), messages: "RA"},
		{file: "defer_case.json", object: exAct("Ignore", "https://vendor.example/activities/ignore", exVendor, exIn(exCaseStub()), withTo(exCaseActor)), want: string(DeferCase), messages: "RD"},
		{file: "reengage_case.json", object: exAct("Undo", "https://vendor.example/activities/undo-ignore", exVendor,
			exIn(exAct("Ignore", "https://vendor.example/activities/ignore", exVendor, exIn(exCaseStub()))), withTo(exCaseActor)), want: string(EngageCase), messages: "RA"},
		{file: "reengage_case_by_context.json", object: exAct("Undo", "https://vendor.example/activities/undo-ignore-2", exVendor,
			exIn(&Activity{ObjectBase: ObjectBase{ID: "https://vendor.example/activities/ignore-2", Type: "Ignore"}}), withContext(caseRef)), want: string(EngageCase), messages: "RA"},
		{file: "close_case.json", object: exAct("Leave", "https://vendor.example/activities/leave", exVendor, exIn(exCaseStub()), withTo(exCaseActor)), want: string(CloseCase), messages: "RC"},
		// The Case Actor's closing of the case once its owner left, which its
		// ledger records as case_fully_closed (spec §1.5, CM-23-002).
		{file: "case_actor_closes_case.json", object: CaseClosing(exCaseActor, exCase, "Overflow in the parser", exVendor, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)),
			want: string(CloseCase), messages: "RC"},
		{file: "announce_case.json", object: exAct("Announce", "https://vendor.example/activities/announce-case", exCaseActor, exIn(exCaseObj()), withTo(exCoordinator)), want: string(AnnounceVulnerabilityCase), messages: "-"},
		{file: "add_report_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-report", exCaseActor, exIn(exReportObj()), withTarget(caseRef)), want: string(AddReportToCase), messages: "-"},

		// Participants, recommendations, roles and ownership.
		{file: "recommend_actor.json", object: offerActor(), want: string(OfferActorToCase), messages: "-"},
		{file: "accept_actor_recommendation.json", object: answer("Accept", "https://vendor.example/activities/accept-recommendation", exCaseActor, offerActor()), want: string(AcceptActorRecommendation), messages: "-"},
		{file: "reject_actor_recommendation.json", object: answer("Reject", "https://vendor.example/activities/reject-recommendation", exCaseActor, offerActor()), want: string(RejectActorRecommendation), messages: "-"},
		{file: "offer_case_participant.json", object: offerParticipant(), want: string(OfferCaseParticipant), messages: "-"},
		{file: "accept_case_participant_offer.json", object: answer("Accept", "https://vendor.example/activities/accept-participant", exCaseActor, offerParticipant()), want: string(AcceptOfferCaseParticipant), messages: "-"},
		{file: "reject_case_participant_offer.json", object: answer("Reject", "https://vendor.example/activities/reject-participant", exCaseActor, offerParticipant()), want: string(RejectOfferCaseParticipant), messages: "-"},
		{file: "offer_role.json", object: offerRole(), want: string(OfferCaseParticipantRole), messages: "-"},
		{file: "accept_role.json", object: answer("Accept", "https://coordinator.example/activities/accept-role", exCoordinator, offerRole()), want: string(AcceptCaseParticipantRole), messages: "-"},
		{file: "reject_role.json", object: answer("Reject", "https://coordinator.example/activities/reject-role", exCoordinator, offerRole()), want: string(RejectCaseParticipantRole), messages: "-"},
		{file: "offer_case_ownership_transfer.json", object: offerCase(), want: string(OfferCaseOwnershipTransfer), messages: "-"},
		{file: "accept_case_ownership_transfer.json", object: answer("Accept", "https://coordinator.example/activities/accept-ownership", exCoordinator, offerCase()), want: string(AcceptCaseOwnershipTransfer), messages: "-"},
		{file: "reject_case_ownership_transfer.json", object: answer("Reject", "https://coordinator.example/activities/reject-ownership", exCoordinator, offerCase()), want: string(RejectCaseOwnershipTransfer), messages: "-"},
		{file: "invite_to_case.json", object: inviteActor(), want: string(InviteActorToCase), messages: "RS (late joiner)"},
		{file: "accept_invite_to_case.json", object: answer("Accept", "https://coordinator.example/activities/accept-invite", exCoordinator, inviteActor()), want: string(AcceptInviteActorToCase), messages: "-"},
		{file: "reject_invite_to_case.json", object: answer("Reject", "https://coordinator.example/activities/reject-invite", exCoordinator, inviteActor()), want: string(RejectInviteActorToCase), messages: "-"},
		{file: "create_participant.json", object: exAct("Create", "https://vendor.example/activities/create-participant", exCaseActor, exIn(exParticipant(exCoordPart, exCoordinator, "coordinator")), withContext(caseRef)), want: string(CreateCaseParticipant), messages: "-"},
		{file: "add_participant_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-participant", exCaseActor, exIn(exParticipant(exCoordPart, exCoordinator, "coordinator")), withTarget(caseRef)), want: string(AddCaseParticipantToCase), messages: "-"},
		{file: "remove_participant_target.json", object: exAct("Remove", "https://vendor.example/activities/remove-participant", exCaseActor, exIn(exParticipant(exCoordPart, exCoordinator, "coordinator")), withTarget(caseRef)), want: string(RemoveCaseParticipantFromCase), messages: "-"},
		{file: "remove_participant_origin.json", object: exAct("Remove", "https://vendor.example/activities/remove-participant-2", exCaseActor, exIn(exParticipant(exCoordPart, exCoordinator, "coordinator")), withOrigin(caseRef)), want: string(RemoveCaseParticipantFromCase), messages: "-"},

		// Embargoes.
		{file: "create_embargo.json", object: exAct("Create", "https://vendor.example/activities/create-embargo", exVendor, exIn(exEmbargoObj(exEmbargo, 90)), withContext(caseRef)), want: string(CreateEmbargoEvent), messages: "-"},
		{file: "propose_embargo.json", object: inviteEmbargo(), want: string(InviteToEmbargoOnCase), messages: "EP|EV"},
		{file: "accept_embargo.json", object: answer("Accept", "https://finder.example/activities/accept-embargo", exFinder, inviteEmbargo(), withContext(caseRef)), want: string(AcceptInviteToEmbargoOnCase), messages: "EA|EC"},
		{file: "reject_embargo.json", object: answer("Reject", "https://finder.example/activities/reject-embargo", exFinder, inviteEmbargo(), withContext(caseRef)), want: string(RejectInviteToEmbargoOnCase), messages: "ER|EJ"},
		{file: "add_embargo_to_case.json", object: exAct("Add", "https://vendor.example/activities/activate-embargo", exCaseActor, exIn(exEmbargoObj(exEmbargo, 90)), withTarget(caseRef)), want: string(AddEmbargoEventToCase), messages: "-"},
		{file: "announce_embargo.json", object: exAct("Announce", "https://vendor.example/activities/announce-embargo", exCaseActor, exIn(exEmbargoObj(exEmbargo, 90)), withContext(caseRef), withTo(exFinder, exVendor)), want: string(AnnounceEmbargoEventToCase), messages: "-"},
		{file: "remove_embargo.json", object: exAct("Remove", "https://vendor.example/activities/end-embargo", exCaseActor, exIn(exEmbargoObj(exEmbargo, 90)), withOrigin(caseRef)), want: string(RemoveEmbargoEventFromCase), messages: "ET"},
		{file: "choose_preferred_embargo.json", object: exAct("Question", "https://vendor.example/activities/poll-embargo", exCaseActor, Ref{}, withContext(caseRef),
			func(a *Activity) {
				a.OneOf = []Ref{exIn(exEmbargoObj(exEmbargo, 90)), exIn(exEmbargoObj(exEmbargo2, 45))}
			}), want: string(ChoosePreferredEmbargo), messages: "-"},
		{file: "choose_preferred_embargo_any_of.json", object: exAct("Question", "https://vendor.example/activities/poll-embargo-2", exCaseActor, Ref{}, withContext(caseRef),
			func(a *Activity) {
				a.AnyOf = []Ref{exIn(exEmbargoObj(exEmbargo, 90)), exIn(exEmbargoObj(exEmbargo2, 45))}
			}), want: string(ChoosePreferredEmbargo), messages: "-"},

		// Notes, statuses and the ledger.
		{file: "create_note.json", object: exAct("Create", "https://vendor.example/activities/create-note", exVendor, exIn(exNoteObj())), want: string(CreateNote), messages: "-"},
		{file: "add_note_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-note", exVendor, exIn(exNoteObj()), withTarget(caseRef)), want: string(AddNoteToCase), messages: "GI"},
		{file: "add_vulnerability_record_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-cve", exVendor, exIn(exRecordObj()), withTarget(caseRef), withContext(caseRef)), want: string(AddVulnerabilityRecordToCase), messages: "-"},
		{file: "add_product_status_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-product", exVendor, exIn(exProductObj()), withTarget(caseRef), withContext(caseRef)), want: string(AddProductStatusToCase), messages: "GI"},
		{file: "publish_advisory.json", object: exAct("Create", "https://vendor.example/activities/publish-advisory", exVendor, exIn(exArticleObj()), withContext(caseRef)), want: string(PublishAdvisory), messages: "GI"},
		{file: "revise_advisory.json", object: exAct("Update", "https://vendor.example/activities/revise-advisory", exVendor, exIn(exArticleObj()), withContext(caseRef)), want: string(ReviseAdvisory), messages: "GI"},
		{file: "remove_note_from_case.json", object: exAct("Remove", "https://vendor.example/activities/remove-note", exVendor, exIn(exNoteObj()), withTarget(caseRef)), want: string(RemoveNoteFromCase), messages: "-"},
		{file: "create_case_status.json", object: exAct("Create", "https://vendor.example/activities/create-status", exCaseActor, exIn(exCaseStatusObj()), withContext(caseRef)), want: string(CreateCaseStatus), messages: "-"},
		{file: "add_status_to_case.json", object: exAct("Add", "https://vendor.example/activities/add-status", exCaseActor, exIn(exCaseStatusObj()), withTarget(caseRef)), want: string(AddCaseStatusToCase), messages: "CP|CX|CA"},
		{file: "create_participant_status.json", object: exAct("Create", "https://vendor.example/activities/create-participant-status", exVendor, exIn(exParticipantStatusObj())), want: string(CreateParticipantStatus), messages: "-"},
		{file: "add_status_to_participant.json", object: exAct("Add", "https://vendor.example/activities/add-participant-status", exVendor, exIn(exParticipantStatusObj()), withTarget(exIRI(exVendorPart)), withContext(caseRef)), want: string(AddParticipantStatusToParticipant), messages: "CV|CF|CD|CP|CX|CA (by payload)"},
		{file: "announce_ledger_entry.json", object: exAct("Announce", "https://vendor.example/activities/announce-entry-12", exCaseActor, exIn(exLedgerObj("recorded")), withContext(caseRef)), want: string(AnnounceCaseLedgerEntry), messages: "-"},
		{file: "reject_ledger_entry.json", object: exAct("Reject", "https://vendor.example/activities/reject-entry-12", exCaseActor, exIn(exLedgerObj("rejected")), withContext(caseRef)), want: string(RejectCaseLedgerEntry), messages: "-"},

		// Bare objects: every Vultron type and every actor type.
		{file: "vulnerability_report.json", object: exReportObj(), want: "OBJECT:VulnerabilityReport"},
		{file: "vulnerability_case.json", object: exCaseObj(), want: "OBJECT:VulnerabilityCase"},
		{file: "case_participant.json", object: exParticipant(exVendorPart, exVendor, "vendor"), want: "OBJECT:CaseParticipant"},
		{file: "participant_status.json", object: exParticipantStatusObj(), want: "OBJECT:ParticipantStatus"},
		{file: "case_status.json", object: exCaseStatusObj(), want: "OBJECT:CaseStatus"},
		{file: "embargo_event.json", object: exEmbargoObj(exEmbargo, 90), want: "OBJECT:EmbargoEvent"},
		{file: "embargo_policy.json", object: exPolicyObj(), want: "OBJECT:EmbargoPolicy"},
		{file: "case_proposal.json", object: exProposalObj(), want: "OBJECT:CaseProposal"},
		{file: "case_participant_role.json", object: exRoleObj(), want: "OBJECT:CaseParticipantRole"},
		{file: "case_reference.json", object: &CaseReference{ObjectBase: ObjectBase{ID: exCase + "/references/advisory", Type: TypeCaseReference,
			Name: "Vendor advisory", Extra: map[string]any{"url": "https://vendor.example/advisories/2026-0113"}}, Tags: []string{"vendor-advisory", "patch"}},
			want: "OBJECT:CaseReference"},
		{file: "vulnerability_record.json", object: &VulnerabilityRecord{ObjectBase: ObjectBase{ID: "https://vendor.example/records/cve-2026-41177", Type: TypeVulnerabilityRecord,
			Name: "CVE-2026-41177"}, Aliases: []string{"PSIRT-2026-0113"}}, want: "OBJECT:VulnerabilityRecord"},
		{file: "case_ledger_entry.json", object: exLedgerObj("recorded"), want: "OBJECT:CaseLedgerEntry"},
		{file: "product_status.json", object: exProductObj(), want: "OBJECT:ProductStatus"},
		{file: "note.json", object: exNoteObj(), want: "OBJECT:Note"},
		{file: "finder.json", object: exActorObj(exFinder, "Person", "Fiona"), want: "OBJECT:Person"},
		{file: "vendor.json", object: func() Object {
			a := exActorObj(exVendor, "Organization", "Vendor PSIRT")
			a.PreferredUsername = "psirt"
			a.EmbargoPolicy = exIn(exPolicyObj())
			return a
		}(), want: "OBJECT:Organization"},
		{file: "coordinator.json", object: exActorObj(exCoordinator, "Organization", "Coordination Desk"), want: "OBJECT:Organization"},
		{file: "case_actor.json", object: exActorObj(exCaseActor, "Service", "Case Actor of vendor.example"), want: "OBJECT:Service"},
		{file: "triage_bot.json", object: exActorObj("https://vendor.example/actors/triage", "Application", "Triage bot"), want: "OBJECT:Application"},
		{file: "response_team.json", object: exActorObj("https://coordinator.example/actors/team", "Group", "Response team"), want: "OBJECT:Group"},

		// The meaning depends on what the node holds.
		{file: "offer_held_report.json", object: exAct("Offer", "https://finder.example/activities/offer-by-id", exFinder, exIRI(exReport), finderToVendor),
			held: []string{"vulnerability_report.json"}, want: string(SubmitReport), messages: "RS"},
		{file: "offer_held_case.json", object: exAct("Offer", "https://vendor.example/activities/offer-case-by-id", exVendor, caseRef, withTo(exCoordinator)),
			held: []string{"vulnerability_case.json"}, want: string(OfferCaseOwnershipTransfer), messages: "-"},
		{file: "offer_unheld_object.json", object: exAct("Offer", "https://finder.example/activities/offer-unknown", exFinder, exIRI(exReport), finderToVendor),
			want: string(UnknownUnresolvableObject), messages: "-",
			reason: exReport + " is not held by this node, so what this Offer means cannot be told"},

		// Activities no Vultron message has the shape of.
		{file: "follow_actor.json", object: exAct("Follow", "https://finder.example/activities/follow", exFinder, exIRI(exVendor)),
			want: string(Unknown), messages: "-", reason: "no Vultron message is a Follow"},
		{file: "accept_report_without_offer.json", object: exAct("Accept", "https://vendor.example/activities/accept-report", exVendor, exIn(exReportObj())),
			want: string(Unknown), messages: "-", reason: "no Vultron message is a Accept of VulnerabilityReport"},
		{file: "remove_participant_without_case.json", object: exAct("Remove", "https://vendor.example/activities/remove-nowhere", exCaseActor, exIn(exParticipant(exCoordPart, exCoordinator, "coordinator"))),
			want: string(Unknown), messages: "-", reason: "Remove(CaseParticipant) needs target or origin: the VulnerabilityCase"},
		{file: "propose_embargo_without_context.json", object: exAct("Invite", "https://vendor.example/activities/invite-nowhere", exVendor, exIn(exEmbargoObj(exEmbargo, 90)), withTarget(caseRef)),
			want: string(Unknown), messages: "-", reason: "Invite(EmbargoEvent) needs context: the VulnerabilityCase"},
		{file: "add_note_to_participant.json", object: exAct("Add", "https://vendor.example/activities/add-note-to-participant", exVendor, exIn(exNoteObj()), withTarget(exIRI(exVendorPart))),
			held: []string{"case_participant.json"}, want: string(Unknown), messages: "-", reason: "Add(Note) needs target: the VulnerabilityCase"},
		{file: "undo_like.json", object: exAct("Undo", "https://finder.example/activities/undo-like", exFinder,
			exIn(exAct("Like", "https://finder.example/activities/like", exFinder, exIRI(exNote)))),
			want: string(Unknown), messages: "-", reason: "no Vultron message undoes a Like"},
		{file: "question_of_notes.json", object: exAct("Question", "https://vendor.example/activities/poll-notes", exVendor, Ref{}, withContext(caseRef),
			func(a *Activity) { a.OneOf = []Ref{exIn(exNoteObj())} }),
			want: string(Unknown), messages: "-", reason: "a Question offering a Note is not a Vultron message"},
		{file: "question_without_options.json", object: exAct("Question", "https://vendor.example/activities/poll-empty", exVendor, Ref{}, withContext(caseRef)),
			want: string(Unknown), messages: "-", reason: "a Question without options is not a Vultron message"},

		// Equivalent current forms Marshal does not write: an
		// ActivityStreams context with the nested objects carrying their
		// own, a single "to", an embargo typed as a plain Event, a stub
		// typed VulnerabilityCaseStub.
		{file: "submit_report_nested_contexts.json", raw: `{
  "@context": ["https://www.w3.org/ns/activitystreams", {"vultron": "https://certcc.github.io/Vultron/ns#"}],
  "id": "https://finder.example/activities/offer-r-1043",
  "type": "Offer",
  "actor": "https://finder.example/actors/fiona",
  "to": "https://vendor.example/actors/psirt",
  "object": {
    "@context": "https://certcc.github.io/Vultron/ns/context.jsonld",
    "id": "https://finder.example/reports/r-1043",
    "type": "VulnerabilityReport",
    "name": "Path traversal in the firmware upload handler",
    "content": "An upload named ../../etc/rc.local is written outside the upload directory.",
    "attributedTo": "https://finder.example/actors/fiona"
  }
}`, want: string(SubmitReport), messages: "RS"},
		{file: "propose_embargo_as_event.json", raw: `{
  "@context": "https://www.w3.org/ns/activitystreams",
  "id": "https://vendor.example/activities/invite-embargo-event",
  "type": "Invite",
  "actor": "https://vendor.example/actors/psirt",
  "context": "https://vendor.example/cases/c-77",
  "object": {
    "type": "Event",
    "startTime": "2026-03-02T00:00:00Z",
    "endTime": "2026-04-16T00:00:00Z"
  }
}`, want: string(InviteToEmbargoOnCase), messages: "EP|EV"},
		{file: "vulnerability_case_stub.json", raw: `{
  "@context": "https://certcc.github.io/Vultron/ns/context.jsonld",
  "id": "https://vendor.example/cases/c-77",
  "type": "VulnerabilityCaseStub",
  "summary": "A case about a web console vulnerability.",
  "caseStatus": {"type": "CaseStatus", "emState": "NONE", "pxaState": "pxa"}
}`, want: "OBJECT:VulnerabilityCase"},
		{file: "no_context.json", raw: `{
  "id": "https://social.example/notes/1",
  "type": "Note",
  "content": "A note from a server that sends no @context."
}`, want: refused, reason: `@context is missing: use "https://certcc.github.io/Vultron/ns/context.jsonld"`},
	}
	ex = append(ex, replyExamples()...)
	ex = append(ex, legacyExamples()...)
	ex = append(ex, submittedExamples(t)...)
	for i := range ex {
		if ex[i].format == "" {
			ex[i].format = formatCurrent
		}
	}
	return ex
}

// submittedExamples are the activities the node's own submission
// builders (submit.go) produce once the outbox has filled them in.
func submittedExamples(t testing.TB) []wireExample {
	t.Helper()
	start := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	sub := func(m map[string]any, name, actor string) Object {
		return exSubmitted(t, m, "https://vendor.example/activities/"+name, actor)
	}
	return []wireExample{
		{file: "outbox_propose_embargo.json", object: sub(ProposeEmbargo(exCase, start, start.AddDate(0, 0, 60)), "outbox-propose", exVendor),
			want: string(InviteToEmbargoOnCase), messages: "EP|EV"},
		{file: "outbox_accept_embargo.json", object: sub(Respond("Accept", exInvite, exCase), "outbox-accept", exFinder),
			held: []string{"propose_embargo.json"}, want: string(AcceptInviteToEmbargoOnCase), messages: "EA|EC"},
		{file: "outbox_reject_embargo_unheld.json", object: sub(Respond("Reject", exInvite, exCase), "outbox-reject", exFinder),
			want: string(UnknownUnresolvableObject), messages: "-",
			reason: exInvite + " is not held by this node, so what this Reject means cannot be told"},
		{file: "outbox_engage_case.json", object: sub(Respond("Join", exCase, exCase), "outbox-join", exVendor),
			held: []string{"vulnerability_case.json"}, want: string(EngageCase), messages: "RA"},
		{file: "outbox_defer_case.json", object: sub(Respond("Ignore", exCase, exCase), "outbox-ignore", exVendor),
			held: []string{"vulnerability_case.json"}, want: string(DeferCase), messages: "RD"},
		{file: "outbox_close_case.json", object: sub(Respond("Leave", exCase, exCase), "outbox-leave", exVendor),
			held: []string{"vulnerability_case.json"}, want: string(CloseCase), messages: "RC"},
		{file: "outbox_invite_to_case.json", object: sub(InviteToCase(exCase, exCoordinator, []string{"coordinator"}), "outbox-invite", exCaseActor),
			held: []string{"coordinator.json"}, want: string(InviteActorToCase), messages: "RS (late joiner)"},
		{file: "outbox_fix_ready.json", object: sub(ReportFixState(exCase, exVendorPart, "VFd"), "outbox-fix-ready", exVendor),
			want: string(AddParticipantStatusToParticipant), messages: "CV|CF|CD|CP|CX|CA (by payload)"},
		{file: "outbox_public_aware.json", object: sub(ReportCaseState(exCase, exVendorPart, "Pxa"), "outbox-public", exVendor),
			want: string(AddParticipantStatusToParticipant), messages: "CV|CF|CD|CP|CX|CA (by payload)"},
		{file: "outbox_add_note.json", object: sub(AddNote(exCase, "Advisory draft attached for review."), "outbox-note", exVendor),
			want: string(AddNoteToCase), messages: "GI"},
		{file: "outbox_submit_report_with_embargo.json", object: sub(OfferReport(exVendor, "Stored XSS in the fleet console", "A device note is rendered unescaped.", start, start.AddDate(0, 0, 45)), "outbox-offer-embargo", exFinder),
			want: string(SubmitReport), messages: "RS|EP"},
		{file: "outbox_add_report_to_case.json", object: sub(AddReport(exCase, map[string]any{"id": "https://finder2.example/reports/r-9", "type": TypeVulnerabilityReport,
			"name": "XSS in device notes", "attributedTo": "https://finder2.example/actors/sam"}, "https://finder2.example/actors/sam"), "outbox-add-report", exVendor),
			want: string(AddReportToCase), messages: "-"},
		{file: "outbox_close_as_duplicate.json", object: sub(CloseAsDuplicate(exOffer, exCase, exFinder), "outbox-duplicate", exVendor),
			held: []string{"submit_report.json"}, want: string(CloseReport), messages: "RC"},
		{file: "outbox_link_case.json", object: sub(LinkCase(exCase, "parent", "https://coordinator.example/cases/umbrella-3"), "outbox-link", exVendor),
			want: string(UpdateCase), messages: "-"},
		{file: "outbox_leave_active_work.json", object: sub(DeclareEngagement(exCase, exFinderPart, false, "Our part is done; we keep the embargo."), "outbox-disengage", exFinder),
			want: string(AddParticipantStatusToParticipant), messages: "CV|CF|CD|CP|CX|CA (by payload)"},
		{file: "outbox_will_not_honour.json", object: sub(DeclareNonAdherence(exCase, exFinderPart, "We present at a conference on the 3rd."), "outbox-non-adherence", exFinder),
			want: string(AddParticipantStatusToParticipant), messages: "CV|CF|CD|CP|CX|CA (by payload)"},
		{file: "outbox_terminate_embargo.json", object: sub(TerminateEmbargo(exCase, exEmbargo, "The advisory leaked on a public mailing list."), "outbox-terminate", exFinder),
			held: []string{"embargo_event.json"}, want: string(RemoveEmbargoEventFromCase), messages: "ET"},
	}
}

// legacyExamples are documents in the 2023 example shapes: custom activity
// types, asType, renamed properties and the long enumeration names. Those
// that still mean what they meant are accepted; the others are refused
// with a reason that says what to write instead.
func legacyExamples() []wireExample {
	const as = `"@context": "https://www.w3.org/ns/activitystreams"`
	ex := []wireExample{
		{file: "legacy_rm_close_report.json", raw: `{` + as + `,
  "id": "https://vendor.example/activities/2023-close",
  "type": "RmCloseReport",
  "actor": "https://vendor.example/actors/psirt",
  "object": "https://finder.example/reports/r-1042"
}`, want: refused, reason: "unknown activity type RmCloseReport"},
		{file: "legacy_rm_invite_to_case.json", raw: `{` + as + `,
  "id": "https://vendor.example/activities/2023-invite",
  "type": "RmInviteToCase",
  "actor": "https://vendor.example/actors/psirt",
  "object": "https://coordinator.example/actors/desk",
  "target": "https://vendor.example/cases/c-77"
}`, want: refused, reason: "unknown activity type RmInviteToCase"},
		{file: "legacy_as_type.json", raw: `{` + as + `,
  "id": "https://finder.example/activities/2023-offer",
  "asType": "Offer",
  "actor": "https://finder.example/actors/fiona",
  "object": "https://finder.example/reports/r-1042"
}`, want: refused, reason: "$.asType: asType is not an AS2 property: use type"},
		{file: "legacy_participant_status_name.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/vendor",
  "type": "CaseParticipant",
  "attributedTo": "https://vendor.example/actors/psirt",
  "participantStatus": [{"type": "ParticipantStatus", "rmState": "RECEIVED"}]
}`, want: refused, reason: "$.participantStatus: participantStatus is the 2023 name: use participantStatuses"},
		{file: "legacy_participant_actor.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/vendor",
  "type": "CaseParticipant",
  "actor": "https://vendor.example/actors/psirt"
}`, want: refused, reason: "$.actor: actor is the 2023 name of the participant's actor: use attributedTo"},
		{file: "legacy_case_status_list.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77",
  "type": "VulnerabilityCase",
  "caseStatus": [{"type": "CaseStatus", "emState": "NONE", "pxaState": "pxa"}]
}`, want: refused, reason: "$.caseStatus: caseStatus is the 2023 name of the case's status list: use caseStatuses"},
		{file: "legacy_pxa_state.json", raw: `{` + as + `,
  "id": "https://vendor.example/activities/2023-add-status",
  "type": "Add",
  "actor": "https://vendor.example/actors/case-actor",
  "target": "https://vendor.example/cases/c-77",
  "object": {"type": "CaseStatus", "pxaState": "CS_PUBLIC_AWARE__NO_EXPLOIT__NO_ATTACKS"}
}`, want: refused, reason: "$.object.pxaState: CS_PUBLIC_AWARE__NO_EXPLOIT__NO_ATTACKS is the 2023 spelling of a case state: use Pxa"},
		{file: "legacy_vfd_state.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/vendor/statuses/1",
  "type": "ParticipantStatus",
  "vfdState": "CS_VENDOR_AWARE__FIX_READY__NOT_DEPLOYED"
}`, want: refused, reason: "$.vfdState: CS_VENDOR_AWARE__FIX_READY__NOT_DEPLOYED is the 2023 spelling of a case state: use VFd"},
		{file: "legacy_case_role.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/vendor",
  "type": "CaseParticipant",
  "caseRoles": ["CVD_ROLE_VENDOR"]
}`, want: refused, reason: "$.caseRoles[0]: CVD_ROLE_VENDOR is the 2023 spelling of a CVD role: use vendor"},
		// Aliases the protocol still accepts: they mean what they meant.
		{file: "legacy_rm_state_alias.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/vendor/statuses/1",
  "type": "ParticipantStatus",
  "rmState": "REPORT_MANAGEMENT_VALID",
  "cvdRole": ["VENDOR"]
}`, want: "OBJECT:ParticipantStatus"},
		{file: "legacy_em_state_alias.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/statuses/1",
  "type": "CaseStatus",
  "emState": "EMBARGO_MANAGEMENT_ACTIVE",
  "pxaState": "pxa"
}`, want: "OBJECT:CaseStatus"},
		{file: "legacy_role_other.json", raw: `{` + as + `,
  "id": "https://vendor.example/cases/c-77/participants/observer",
  "type": "CaseParticipant",
  "attributedTo": "https://social.example/actors/watcher",
  "caseRoles": ["other"]
}`, want: "OBJECT:CaseParticipant"},
	}
	for i := range ex {
		ex[i].format = format2023
	}
	return ex
}

// replyExamples are the acknowledgements (K) and errors (E) of the four
// models, as the node writes them (replies.go): Read and Ignore of the
// message they answer.
func replyExamples() []wireExample {
	caseRef := exIRI(exCase)
	// The node writes what a message was about as it knows it: the case a
	// Join names is written {id, type}, so that the reply is classified
	// on its own.
	exResolver := exHeld{exCase: &VulnerabilityCase{ObjectBase: ObjectBase{ID: exCase, Type: TypeVulnerabilityCase}}}
	stamp := func(a *Activity, id string) *Activity {
		a.ID, a.Published = id, exPublished
		return a
	}
	join := exAct("Join", "https://vendor.example/activities/join-c-77", exVendor, caseRef, withContext(caseRef), withTo(exCaseActor))
	proposal := exAct("Invite", exInvite, exVendor, exIn(exEmbargoObj(exEmbargo, 90)), withContext(caseRef), withTo(exCaseActor))
	status := exAct("Add", "https://vendor.example/activities/fix-ready", exVendor, exIn(exParticipantStatusObj()),
		withTarget(exIRI(exVendorPart)), withContext(caseRef), withTo(exCaseActor))
	note := exAct("Add", "https://vendor.example/activities/add-note", exVendor, exIn(exNoteObj()), withTarget(caseRef), withContext(caseRef), withTo(exCaseActor))
	suggestion := exAct("Offer", "https://vendor.example/activities/suggest-desk", exVendor,
		exIn(exActorObj(exCoordinator, "Organization", "Coordination Desk")), withTarget(caseRef), withContext(caseRef), withTo(exCaseActor))
	ackJoin := stamp(Acknowledge(exCaseActor, join, exVendor, exCase, exResolver), "https://vendor.example/activities/ack-join")
	// A report offered with an embargo proposal (RS|EP), and the vendor's
	// acknowledgement of both, saying it is aware (RK|EK|CV).
	rsep := exOfferReport()
	rsep.Instrument = exIn(exEmbargoObj(exCase+"/embargoes/proposed", 45))
	rsep.Instrument.Object.Common().Context = Ref{}
	ackRSEP := exAct("Read", "https://vendor.example/activities/read-offer-embargo", exVendor, exIn(rsep), withTo(exFinder))
	ackRSEP.InReplyTo = exIRI(exOffer)
	ackRSEP.Result = exIn(VendorAwareness(exReport, "RECEIVED", "Vfd"))
	// The RK of a report by a vendor says it is aware (CV), in result.
	rkcv := exAct("Read", "https://vendor.example/activities/read-offer-aware", exVendor, exIn(exOfferReport()), withTo(exFinder))
	rkcv.InReplyTo = exIRI(exOffer)
	rkcv.Result = exIn(VendorAwareness(exReport, "RECEIVED", "Vfd"))
	return []wireExample{
		{file: "ack_engage_case.json", object: ackJoin, want: string(AckReport), messages: "RK"},
		{file: "ack_embargo_proposal.json", object: stamp(Acknowledge(exCaseActor, proposal, exVendor, exCase, exResolver), "https://vendor.example/activities/ack-proposal"),
			want: string(AckEmbargo), messages: "EK"},
		{file: "ack_fix_ready.json", object: stamp(Acknowledge(exCaseActor, status, exVendor, exCase, exResolver), "https://vendor.example/activities/ack-fix-ready"),
			want: string(AckCaseStatus), messages: "CK"},
		{file: "ack_note.json", object: stamp(Acknowledge(exCaseActor, note, exVendor, exCase, exResolver), "https://vendor.example/activities/ack-note"),
			want: string(AckInquiry), messages: "GK"},
		{file: "ack_report_vendor_aware.json", object: rkcv, want: string(AckReport), messages: "RK|CV"},
		{file: "submit_report_with_embargo.json", object: rsep, want: string(SubmitReport), messages: "RS|EP"},
		{file: "ack_report_with_embargo.json", object: ackRSEP, want: string(AckReport), messages: "RK|EK|CV"},
		{file: "ack_vendor_awareness.json", object: stamp(Acknowledge(exFinder, rkcv, exVendor, "", exResolver), "https://finder.example/activities/ack-aware"),
			want: string(AckCaseStatus), messages: "CK"},
		{file: "error_engage_case.json", object: stamp(Refuse(exCaseActor, join, exVendor, exCase, "https://vendor.example/actors/psirt is not a participant of case https://vendor.example/cases/c-77", exResolver),
			"https://vendor.example/activities/error-join"), want: string(ReportError), messages: "RE"},
		{file: "error_embargo_proposal.json", object: stamp(Refuse(exCaseActor, proposal, exVendor, exCase, "an embargo that has ended cannot be negotiated again in the same case", exResolver),
			"https://vendor.example/activities/error-proposal"), want: string(EmbargoError), messages: "EE"},
		{file: "error_fix_ready.json", object: stamp(Refuse(exCaseActor, status, exVendor, exCase, "only a vendor can ready a fix (F)", exResolver),
			"https://vendor.example/activities/error-fix-ready"), want: string(CaseStatusError), messages: "CE"},
		{file: "error_note.json", object: stamp(Refuse(exCaseActor, note, exVendor, exCase, "case https://vendor.example/cases/c-77 is closed", exResolver),
			"https://vendor.example/activities/error-note"), want: string(GeneralError), messages: "GE"},
		{file: "error_suggestion.json", object: stamp(Refuse(exCaseActor, suggestion, exVendor, exCase, "the desk was already suggested", exResolver),
			"https://vendor.example/activities/error-suggestion"), want: string(GeneralError), messages: "GE"},
		{file: "ack_of_ack.json", object: stamp(Acknowledge(exVendor, ackJoin, exCaseActor, exCase, exResolver), "https://vendor.example/activities/ack-ack"),
			want: string(Unknown), messages: "-",
			reason: "no Vultron message acknowledges ACK_REPORT (RK): acknowledgements and errors are not answered"},
		{file: "ack_unheld_activity.json", object: exAct("Read", "https://vendor.example/activities/read-unheld", exVendor, exIRI("https://finder.example/activities/unknown"), withTo(exFinder)),
			want: string(UnknownUnresolvableObject), messages: "-",
			reason: "https://finder.example/activities/unknown is not held by this node, so what this Read means cannot be told"},
	}
}

// exHeld resolves the objects an example's builder knows.
type exHeld map[string]Object

func (h exHeld) Resolve(id string) (Object, bool) {
	o, ok := h[id]
	return o, ok
}
