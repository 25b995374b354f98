package cvdstate

// Level is how strongly the protocol requires an effect.
type Level uint8

// The requirement levels of cross-model effects.
const (
	// Must marks a SHALL or MUST rule of the protocol.
	Must Level = iota + 1
	// Should marks a SHOULD rule, applied here as the default behaviour.
	Should
)

var levelNames = []string{"", "MUST", "SHOULD"}

// String returns "MUST" or "SHOULD".
func (l Level) String() string { return nameOf("Level", levelNames, int(l)) }

// MarshalText writes the level's name.
func (l Level) MarshalText() ([]byte, error) {
	if err := checkRange("level", levelNames[1:], int(l)-1); err != nil {
		return nil, err
	}
	return []byte(l.String()), nil
}

// Effect is a change one model forces on another, with the message that
// announces it and the reason.
type Effect struct {
	From    EMState     `json:"from"`
	To      EMState     `json:"to"`
	Message MessageType `json:"message"`
	Level   Level       `json:"level"`
	Reason  string      `json:"reason"`
}

// EmbargoEffect is the single place where a case-state event reaches the
// embargo. It returns the effect of CS event e on embargo state em, and
// false when e leaves the embargo alone:
//
//	event  pending proposal (PROPOSED)    embargo in force (ACTIVE, REVISE)
//	P, X   reject, ER (MUST)               terminate, ET (MUST)
//	A      reject, ER (SHOULD)             terminate, ET (SHOULD)
//	F      reject, ER (SHOULD)             continues (it MAY)
//	D      reject, ER (SHOULD)             terminate, ET (SHOULD)
//	V      —                               —
//
// SHOULD rules are applied rather than left to the caller so that a node
// cannot forget one. D rejects a pending proposal because a deployed fix is
// also a ready fix (VFD··· lies inside VF····), whose rule is to reject.
func EmbargoEffect(em EMState, e CSEvent) (Effect, bool) {
	var level Level
	var reason string
	switch e {
	case EventP:
		level, reason = Must, "the public is aware of the vulnerability"
	case EventX:
		level, reason = Must, "an exploit is public"
	case EventA:
		level, reason = Should, "attacks have been observed"
	case EventF:
		if em != EMProposed {
			return Effect{}, false
		}
		level, reason = Should, "a fix is ready"
	case EventD:
		level, reason = Should, "the fix is deployed"
	default:
		return Effect{}, false
	}
	switch {
	case em == EMProposed:
		return Effect{From: em, To: EMNone, Message: ER, Level: level, Reason: reason + ", so the pending embargo proposal is rejected"}, true
	case em.InForce():
		return Effect{From: em, To: EMExited, Message: ET, Level: level, Reason: reason + ", so the embargo is terminated"}, true
	}
	return Effect{}, false
}

// consentEffect returns the change an EM transition from→to makes to the
// consent of every participant but the one that acts: a proposal (EP, from
// NONE or a counter-proposal in PROPOSED) and a further revision (EV in
// REVISE) invite them, entering REVISE lapses the signatories of the
// terms in force and invites the others, and the end of an embargo or of
// a proposal clears everyone's consent (BulkConsent says what each does
// to one participant).
func consentEffect(from, to EMState) PECEvent {
	switch {
	case to == EMRevise && from == EMActive:
		return PECRevise
	case to == EMProposed || to == EMRevise && from == EMRevise:
		return PECInvite
	case to == EMExited && from != EMExited, from == EMProposed && to == EMNone:
		return PECReset
	}
	return 0
}

// BulkConsent returns the consent of one participant after a change e
// that the embargo's transition makes to every participant's consent
// (Outcome.Consent), other than the one whose action it is:
//
//	e        NO_EMBARGO  INVITED  SIGNATORY  DECLINED  LAPSED
//	invite   INVITED     INVITED  SIGNATORY  INVITED   LAPSED
//	revise   INVITED     INVITED  LAPSED     INVITED   LAPSED
//	reset    NO_EMBARGO  (everyone)
//
// A proposal invites whoever is not bound by terms and not already asked
// to answer: a signatory cannot be invited (SIGNATORY→INVITED is no
// edge), and a LAPSED participant, a signatory of the terms in force whose
// consent lapsed when they came under revision, stays LAPSED: it may
// accept the new terms directly, its answer is due by the same deadline
// as an invitee's, and LAPSED keeps what INVITED would lose, that it was
// bound by the terms still in force. A revision (revise) lapses the
// signatories first, then invites the rest.
func BulkConsent(p PEC, e PECEvent) PEC {
	switch e {
	case PECInvite:
		return inviteUnbound(p)
	case PECRevise:
		return inviteUnbound(applyConsent(p, PECRevise))
	}
	return applyConsent(p, e)
}

// inviteUnbound invites a participant that neither is bound nor was bound
// by the terms in force: NO_EMBARGO and DECLINED become INVITED.
func inviteUnbound(p PEC) PEC {
	if p == PECNoEmbargo || p == PECDeclined {
		return PECInvited
	}
	return p
}

// applyConsent applies a consent change to one participant; states the
// change does not apply to are left as they are (revise touches only
// signatories).
func applyConsent(p PEC, e PECEvent) PEC {
	if e == 0 {
		return p
	}
	if next, err := p.Apply(e); err == nil {
		return next
	}
	return p
}

// Withdraw applies a participant's declaration that it will not honour the
// case's embargo (its embargo adherence withdrawn) to the case and that
// participant. An embargo a participant will not keep protects nobody and
// misleads the others, so the teardown rules apply as they do to a public
// exploit, at SHOULD: a pending proposal is rejected (ER), an embargo in
// force (ACTIVE or REVISE) is terminated (ET), and everyone's consent is
// reset. The participant's consent ends DECLINED, through the PEC model's
// own edges (a signatory's lapses, then it declines), unless the
// embargo is terminated: entering EXITED resets every participant's
// consent (EMB-13-001), the withdrawing one's too, as no embargo remains
// to decline. With no embargo nothing else changes. A participant that
// already declined is refused, and so is a declaration after the embargo
// ended (EXITED): there is nothing left to withdraw from. So is one of a
// participant that closed the case (RM CLOSED), which takes no further
// part in its embargo: the sender tables allow ET and ER only before RC.
func Withdraw(c CaseState, p ParticipantState) (Outcome, error) {
	out := Outcome{Case: c, Participant: p}
	if p.RM == RMClosed && c.EM != EMExited {
		return Outcome{Case: c, Participant: p}, &TransitionError{Model: "RM", Event: "withdraw", From: p.RM.String(),
			Reason: "the participant closed the case and takes no further part in its embargo"}
	}
	if p.PEC == PECDeclined {
		return Outcome{Case: c, Participant: p}, &TransitionError{Model: "PEC", Event: "withdraw", From: p.PEC.String(),
			Reason: "the participant already declined the embargo"}
	}
	if c.EM == EMExited {
		return Outcome{Case: c, Participant: p}, &TransitionError{Model: "EM", Event: "withdraw", From: c.EM.String(),
			Reason: "the embargo has ended; there is nothing to withdraw from"}
	}
	eff, ok := withdrawalEffect(c.EM)
	if ok {
		out.Case.EM = eff.To
		out.Emit = eff.Message
		out.Effects = []Effect{eff}
		out.Consent = consentEffect(eff.From, eff.To)
	}
	if out.Case.EM == EMExited {
		out.Participant.PEC = applyConsent(p.PEC, out.Consent)
		return out, nil
	}
	pec := p.PEC
	if pec == PECSignatory {
		pec = applyConsent(pec, PECRevise)
	}
	out.Participant.PEC = applyConsent(applyConsent(pec, out.Consent), PECDecline)
	return out, nil
}

// withdrawalEffect is the teardown a declared non-adherence calls for in
// embargo state em, false when there is no embargo to tear down.
func withdrawalEffect(em EMState) (Effect, bool) {
	const why = "a participant declared it will not honour the embargo"
	switch {
	case em == EMProposed:
		return Effect{From: em, To: EMNone, Message: ER, Level: Should, Reason: why + ", so the pending embargo proposal is rejected"}, true
	case em.InForce():
		return Effect{From: em, To: EMExited, Message: ET, Level: Should, Reason: why + ", so the embargo is terminated"}, true
	}
	return Effect{}, false
}
