package cvdstate

import (
	"errors"
	"fmt"
	"slices"
)

// CaseState is the state every participant of a case shares: the
// case-wide part of the case state and the embargo.
type CaseState struct {
	PXA PXA     `json:"pxaState"`
	EM  EMState `json:"emState"`
}

// String writes the case state as "pxa=Pxa em=ACTIVE".
func (c CaseState) String() string { return fmt.Sprintf("pxa=%s em=%s", c.PXA, c.EM) }

// ParticipantState is the state that belongs to one participant: its report
// management, its part of the case state and its embargo consent.
type ParticipantState struct {
	RM  RMState `json:"rmState"`
	VFD VFD     `json:"vfdState"`
	PEC PEC     `json:"emConsentState"`
}

// String writes the participant state as "rm=ACCEPTED vfd=VFd pec=SIGNATORY".
func (p ParticipantState) String() string {
	return fmt.Sprintf("rm=%s vfd=%s pec=%s", p.RM, p.VFD, p.PEC)
}

// Event is an action a participant takes: an RMEvent, an EMEvent or a
// CSEvent.
type Event interface {
	fmt.Stringer
	isEvent()
}

func (RMEvent) isEvent() {}
func (EMEvent) isEvent() {}
func (CSEvent) isEvent() {}

// Outcome is the result of applying an event or a message to a case.
type Outcome struct {
	Case        CaseState        `json:"case"`
	Participant ParticipantState `json:"participant"`
	// Emit is every message type the node must send: for Step, the
	// announcements of the participant's action and of its consequences
	// (CP|ET when the public learns of an embargoed vulnerability); for
	// Receive, the replies.
	Emit MessageType `json:"emit"`
	// Consent is the change every other participant's embargo consent
	// undergoes (PECInvite, PECRevise or PECReset; BulkConsent applies
	// it), zero if none. Participant already has its own.
	Consent PECEvent `json:"consent,omitempty"`
	// Effects lists the cross-model consequences and why they happened.
	Effects []Effect `json:"effects,omitempty"`
}

// Step applies an action taken by a participant holding roles to the case
// and that participant, following the protocol's sender rules and every
// cross-model rule, and returns the new states and the messages to send.
// It refuses, with an error wrapping ErrNotAllowed that says why, an action
// the protocol does not allow.
func Step(c CaseState, p ParticipantState, roles RoleSet, ev Event) (Outcome, error) {
	var out Outcome
	var err error
	switch e := ev.(type) {
	case RMEvent:
		out, err = stepRM(c, p, e)
	case EMEvent:
		out, err = stepEM(c, p, e)
	case CSEvent:
		out, err = stepCS(c, p, roles, e)
	default:
		err = fmt.Errorf("step: %v is not a protocol event", ev)
	}
	if err != nil {
		return Outcome{Case: c, Participant: p}, &StepError{Case: c, Participant: p, Roles: roles, Err: err}
	}
	return out, nil
}

// StepError is Step's refusal: the states and roles it was refused in, for
// logs and tests, and why (Err, which wraps ErrNotAllowed when the protocol
// does not allow the action), which is what a participant is told.
type StepError struct {
	Case        CaseState
	Participant ParticipantState
	Roles       RoleSet
	Err         error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("step (%s, %s, roles %q): %v", e.Case, e.Participant, e.Roles, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

func stepRM(c CaseState, p ParticipantState, e RMEvent) (Outcome, error) {
	rm, msg, err := p.RM.Apply(e)
	if err != nil {
		return Outcome{}, err
	}
	p.RM = rm
	return Outcome{Case: c, Participant: p, Emit: msg}, nil
}

// closedRefusal is the error for an action by a participant whose report is
// closed: closed participants take no further part in the case.
func closedRefusal(model string, ev Event, from string) error {
	return &TransitionError{Model: model, Event: ev.String(), From: from,
		Reason: "the participant has closed the report and takes no further part in the case"}
}

func stepEM(c CaseState, p ParticipantState, e EMEvent) (Outcome, error) {
	if p.RM == RMClosed {
		return Outcome{}, closedRefusal("EM", e, c.EM.String())
	}
	next, msg, err := c.EM.Apply(e)
	if err != nil {
		return Outcome{}, err
	}
	// Proposing, accepting and rejecting a revision need a case that is
	// still secret; rejecting a proposal and terminating are always allowed.
	if msg&(EP|EA|EV|EJ|EC) != 0 && c.PXA != PXANone {
		return Outcome{}, &TransitionError{Model: "EM", Event: e.String(), From: c.EM.String(),
			Reason: fmt.Sprintf("the case state is %s; %s needs the vulnerability unpublished, no public exploit and no attacks (pxa)", c.PXA, msg)}
	}
	out := Outcome{Case: CaseState{PXA: c.PXA, EM: next}, Participant: p, Emit: msg, Consent: consentEffect(c.EM, next)}
	if e != EMPropose {
		out.Participant.PEC = BulkConsent(p.PEC, out.Consent)
	}
	// A proposal invites the others; the proposer is not invited to its
	// own terms, and its consent to the terms in force does not lapse: it
	// answered by proposing. It becomes a signatory of its terms when they
	// are accepted.
	if e == EMAccept {
		// The participant that accepts binds itself to the terms.
		out.Participant.PEC = applyConsent(out.Participant.PEC, PECAccept)
	}
	return out, nil
}

func stepCS(c CaseState, p ParticipantState, roles RoleSet, e CSEvent) (Outcome, error) {
	tracksVFD := roles&(Vendor|Deployer) != 0
	view := CS{VFD: p.VFD, PXA: c.PXA}
	from := view.String()
	if fp := FixPath(roles, p.VFD); fp != "" {
		from = fp + c.PXA.String()
	} else {
		from = c.PXA.String()
	}
	refuse := func(reason string) (Outcome, error) {
		return Outcome{}, &TransitionError{Model: "CS", Event: e.String(), From: from, Reason: reason}
	}
	if p.RM == RMClosed {
		return Outcome{}, closedRefusal("CS", e, from)
	}
	// Role gating: only a vendor readies a fix and only a deployer deploys
	// it; vendor awareness concerns only vendors, for a deployer's fix path
	// is its own deployment (d, D) of a fix some vendor readied.
	switch {
	case e == EventV && !roles.Has(Vendor):
		return refuse("only a vendor has a vendor-awareness state (V)")
	case e == EventF && !roles.Has(Vendor):
		return refuse("only a vendor can ready a fix (F)")
	case e == EventD && !roles.Has(Deployer):
		return refuse("only a deployer can deploy a fix (D)")
	case e == EventF && p.RM != RMAccepted && p.RM != RMDeferred:
		// A ready fix implies the vendor prioritized the report.
		return refuse(fmt.Sprintf("the vendor's report is %s; it must be accepted or deferred before a fix is ready", p.RM))
	case e == EventD && deployerOnly(roles) && p.RM != RMAccepted && p.RM != RMDeferred:
		// So does a deployment: deploying is working on the report.
		return refuse(fmt.Sprintf("the deployer's report is %s; it must be accepted or deferred before it deploys a fix", p.RM))
	}
	// The forcing rule v··P··→V binds only vendors, whose awareness is
	// tracked; ···pX·→P binds everyone.
	if !roles.Has(Vendor) {
		view.VFD = VFDAware // awareness is not tracked, so v··P·· cannot bind
	}
	if deployerOnly(roles) && e == EventD {
		// A deployer's own path is d → D: the fix it deploys is ready
		// (a vendor's F), whether or not that vendor takes part.
		if p.VFD == VFDDeployed {
			return refuse("the event has already happened and case-state events cannot be undone")
		}
		view.VFD = VFDFixReady
	}
	next, msg, err := view.Apply(e)
	if err != nil {
		var te *TransitionError
		if errors.As(err, &te) {
			te.From = from
		}
		return Outcome{}, err
	}
	// An exploit made public makes the public aware at once: X and P are
	// applied together and announced as CX|CP, so pX never persists.
	if e == EventX && !next.Happened(EventP) {
		next.PXA |= PXAPublic
		msg |= CP
	}
	out := Outcome{Case: CaseState{PXA: next.PXA, EM: c.EM}, Participant: p, Emit: msg}
	if tracksVFD && (roles.Has(Vendor) || e == EventD) {
		out.Participant.VFD = next.VFD
	}
	if e == EventV && p.RM == RMStart {
		// Learning of the vulnerability is receiving the report.
		out.Participant.RM = RMReceived
	}
	applyEmbargoEffect(&out, c.EM, e)
	return out, nil
}

// deployerOnly reports whether roles make a deployer that is no vendor:
// its fix path is its own deployment, d → D.
func deployerOnly(roles RoleSet) bool { return roles.Has(Deployer) && !roles.Has(Vendor) }

// FixPath returns a participant's part of the case state as it is
// written for it: a vendor's vfd state ("vfd" … "VFD", with or without a
// deployment of its own), a deployer's own deployment ("d" or "D"), and ""
// for a participant with no fix path (finders, coordinators, observers).
// A deployer that is no vendor keeps VFDNone until it deploys, then
// VFDDeployed: on the wire its status says vfdState "VFD" (the fix,
// readied by a vendor, is deployed), the only state it reports.
func FixPath(roles RoleSet, v VFD) string {
	switch {
	case roles.Has(Vendor):
		return v.String()
	case deployerOnly(roles) && v == VFDDeployed:
		return "D"
	case deployerOnly(roles):
		return "d"
	}
	return ""
}

// applyEmbargoEffect adds the effect of CS event e on embargo state em to
// out: the new EM state, the message, the consent change and the reason.
func applyEmbargoEffect(out *Outcome, em EMState, e CSEvent) {
	eff, ok := EmbargoEffect(em, e)
	if !ok {
		return
	}
	out.Case.EM = eff.To
	out.Emit |= eff.Message
	out.Effects = append(out.Effects, eff)
	out.Consent = consentEffect(eff.From, eff.To)
	out.Participant.PEC = BulkConsent(out.Participant.PEC, out.Consent)
}

// Steps returns every event a participant holding roles may take from the
// given states, each with its outcome; it lists RM, then EM, then CS events.
func Steps(c CaseState, p ParticipantState, roles RoleSet) []StepOption {
	var events []Event
	for _, e := range RMEvents() {
		events = append(events, e)
	}
	for _, e := range EMEvents() {
		events = append(events, e)
	}
	for _, e := range CSEvents() {
		events = append(events, e)
	}
	var out []StepOption
	for _, e := range events {
		if o, err := Step(c, p, roles, e); err == nil {
			out = append(out, StepOption{Event: e, Outcome: o})
		}
	}
	return slices.Clip(out)
}

// StepOption is one event a participant may take and what it leads to.
type StepOption struct {
	Event   Event
	Outcome Outcome
}
