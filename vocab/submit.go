package vocab

import "time"

// The activities below are what a participant submits to its own outbox
// (client to server) for the protocol's actions, as the JSON members the
// outbox takes; the outbox fills id, actor and published, checks them and
// delivers them. The command line and the dashboard both build them here,
// so that an action sends the same shape whichever way it is taken.

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

// AddVulnerabilityIDs is Add(VulnerabilityRecord) to a case: the id a
// vulnerability is known by (a CVE id) and its aliases.
func AddVulnerabilityIDs(caseID, id string, aliases []string) map[string]any {
	rec := map[string]any{"type": TypeVulnerabilityRecord, "name": id}
	if len(aliases) > 0 {
		rec["aliases"] = aliases
	}
	return map[string]any{"type": "Add", "object": rec, "target": caseID, "context": caseID}
}
