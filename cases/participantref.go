package cases

import (
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/vocab"
)

// ParticipantRef returns actor's CaseParticipant as the creation of case
// caseID lists it inline: its roles, its embargo consent and its first
// status (rm and vfd as the wire spells them). Case.Apply reads it back
// when it folds the creation.
func ParticipantRef(caseID, actor, name string, roles cvdstate.RoleSet, consent, rm, vfd string) vocab.Ref {
	cp := &vocab.CaseParticipant{}
	cp.ID, cp.Type = ParticipantID(caseID, actor), vocab.TypeCaseParticipant
	cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(actor)}, Single: true}
	cp.Context = vocab.RefTo(caseID)
	for _, r := range cvdstate.Roles() {
		if roles.Has(r) {
			cp.CaseRoles = append(cp.CaseRoles, r.String())
		}
	}
	cp.EmbargoConsentState = consent
	cp.ParticipantCaseName = name
	st := &vocab.ParticipantStatus{RMState: rm, VFDState: vfd}
	st.Type = vocab.TypeParticipantStatus
	st.Context = vocab.RefTo(cp.ID)
	cp.ParticipantStatuses = []vocab.Ref{vocab.Inline(st)}
	return vocab.Inline(cp)
}

// Received returns the protocol messages an activity of eventType carries
// into c as it stands before the activity (EP or EV by the embargo's
// state, a status's case-state events ...), zero for one of no formal
// type: the messages the Case Actor acknowledges (K) when it records the
// activity, or answers with their error (E) when it refuses it.
func (c *Case) Received(eventType string, act *vocab.Activity) cvdstate.MessageType {
	return c.received(eventType, act)
}
