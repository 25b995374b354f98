package vocab

import "time"

// The activities below are what a participant submits to its own outbox
// (client to server) for the protocol's actions, as the JSON members the
// outbox takes; the outbox fills id, actor and published, checks them and
// delivers them. The command line and the dashboard both build them here,
// so that an action sends the same shape whichever way it is taken.

// OfferReport is Offer(VulnerabilityReport) to an actor (RS). With a
// non-zero embargo end it proposes an embargo from start to end with the
// report (RS|EP): the EmbargoEvent travels as the Offer's instrument, the
// terms under which the report is offered.
func OfferReport(to, name, content string, start, end time.Time) map[string]any {
	report := map[string]any{"type": TypeVulnerabilityReport, "name": name}
	if content != "" {
		report["content"] = content
	}
	offer := map[string]any{"type": "Offer", "to": []string{to}, "object": report}
	if !end.IsZero() {
		offer["instrument"] = map[string]any{"type": TypeEmbargoEvent,
			"startTime": start.UTC().Format(time.RFC3339), "endTime": end.UTC().Format(time.RFC3339)}
	}
	return offer
}

// ProposeEmbargo is Invite(EmbargoEvent) in a case: EP, or EV while an
// embargo is active.
func ProposeEmbargo(caseID string, start, end time.Time) map[string]any {
	event := map[string]any{"type": TypeEmbargoEvent,
		"startTime": start.UTC().Format(time.RFC3339), "endTime": end.UTC().Format(time.RFC3339)}
	return map[string]any{"type": "Invite", "object": event, "context": caseID}
}

// Respond is an activity of type typ whose object is the activity or case
// with id object, in a case: Accept or Reject of an embargo proposal, an
// invitation, a suggestion or an ownership offer; Join, Ignore or Leave of
// the case itself (RA, RD, RC).
func Respond(typ, object, caseID string) map[string]any {
	return map[string]any{"type": typ, "object": object, "context": caseID}
}

// InviteToCase is Invite(actor) to a case, with the roles the invitee is
// to take (none: the Case Actor's default).
func InviteToCase(caseID, actorID string, roles []string) map[string]any {
	act := map[string]any{"type": "Invite", "object": actorID, "target": caseID, "context": caseID}
	if len(roles) > 0 {
		act["roles"] = roles
	}
	return act
}

// ReportFixState is Add(ParticipantStatus) with the sender's new vfd state
// (CF: VFd, CD: VFD), to its participant in a case.
func ReportFixState(caseID, participantID, vfd string) map[string]any {
	return participantStatus(caseID, participantID, map[string]any{"vfdState": vfd})
}

// ReportCaseState is Add(ParticipantStatus) carrying the case's new pxa
// state (CP, CX, CA), to the sender's participant in a case.
func ReportCaseState(caseID, participantID, pxa string) map[string]any {
	return participantStatus(caseID, participantID,
		map[string]any{"caseStatus": map[string]any{"type": TypeCaseStatus, "pxaState": pxa}})
}

func participantStatus(caseID, participantID string, status map[string]any) map[string]any {
	status["type"] = TypeParticipantStatus
	status["context"] = participantID
	return map[string]any{"type": "Add", "object": status, "target": participantID, "context": caseID}
}

// AddNote is Add(Note) to a case (GI).
func AddNote(caseID, content string) map[string]any {
	note := map[string]any{"type": "Note", "content": content}
	return map[string]any{"type": "Add", "object": note, "target": caseID, "context": caseID}
}

// TerminateEmbargo is Remove(EmbargoEvent) from a case (ET), with the
// reason the embargo ends early, if given, as its summary.
func TerminateEmbargo(caseID, embargoID, reason string) map[string]any {
	act := map[string]any{"type": "Remove", "object": embargoID, "origin": caseID, "context": caseID}
	if reason != "" {
		act["summary"] = reason
	}
	return act
}

// AddReport is Add(VulnerabilityReport)[target=Case], by the case's owner:
// a report it received, about the case's vulnerability, joins the case
// instead of opening another. report is the report as its Offer carried
// it; the activity goes to the case's Case Actor (the outbox adds it) and
// to the report's reporter, who learns where its report is handled.
func AddReport(caseID string, report map[string]any, reporter string) map[string]any {
	act := map[string]any{"type": "Add", "object": report, "target": caseID, "context": caseID}
	if reporter != "" {
		act["to"] = []string{reporter}
	}
	return act
}

// CloseAsDuplicate is Reject of a report's Offer (RC) to its reporter,
// closing the report as a duplicate of a case: the case is the Reject's
// result, a pointer the reporter's node keeps.
func CloseAsDuplicate(offerID, caseID, reporter string) map[string]any {
	act := map[string]any{"type": "Reject", "object": offerID, "result": caseID,
		"summary": "A duplicate of case " + caseID + ", where the vulnerability is handled."}
	if reporter != "" {
		act["to"] = []string{reporter}
	}
	return act
}

// LinkCase is Update(VulnerabilityCase) by the case's owner relating the
// case to another: relation is "parent", "child" or "sibling" (the case
// object's parentCases, childCases, siblingCases).
func LinkCase(caseID, relation, other string) map[string]any {
	vc := map[string]any{"id": caseID, "type": TypeVulnerabilityCase, relation + "Cases": []string{other}}
	return map[string]any{"type": "Update", "object": vc, "context": caseID}
}

// DeclareEngagement is Add(ParticipantStatus) to the sender's participant
// in a case declaring its case engagement: false leaves active work (the
// participant is then sent only what it still needs), true returns to it.
// It keeps the embargo (embargoAdherence stays true).
func DeclareEngagement(caseID, participantID string, engaged bool, reason string) map[string]any {
	act := participantStatus(caseID, participantID, map[string]any{"caseEngagement": engaged, "embargoAdherence": true})
	if reason != "" {
		act["summary"] = reason
	}
	return act
}

// DeclareNonAdherence is Add(ParticipantStatus) to the sender's
// participant in a case declaring it will not honour the embargo
// (embargoAdherence false), which tears the embargo down.
func DeclareNonAdherence(caseID, participantID, reason string) map[string]any {
	act := participantStatus(caseID, participantID, map[string]any{"embargoAdherence": false})
	if reason != "" {
		act["summary"] = reason
	}
	return act
}

// AddVulnerabilityIDs is Add(VulnerabilityRecord) to a case: the id a
// vulnerability is known by (a CVE id) and its aliases.
func AddVulnerabilityIDs(caseID, id string, aliases []string) map[string]any {
	rec := map[string]any{"type": TypeVulnerabilityRecord, "name": id}
	if len(aliases) > 0 {
		rec["aliases"] = aliases
	}
	return map[string]any{"type": "Add", "object": rec, "target": caseID, "context": caseID}
}
