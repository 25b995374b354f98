package cvdstate

import (
	"slices"
	"strings"
)

// PEC is one participant's consent to the case's embargo (Participant
// Embargo Consent). The zero value is PECNoEmbargo, the initial state.
type PEC uint8

// The five PEC states.
const (
	// PECNoEmbargo: no embargo concerns the participant.
	PECNoEmbargo PEC = iota
	// PECInvited: invited to the embargo, not yet answered.
	PECInvited
	// PECSignatory: bound by the embargo's current terms.
	PECSignatory
	// PECDeclined: declined, explicitly or by letting the invitation lapse.
	PECDeclined
	// PECLapsed: was a signatory, but the terms are under revision.
	PECLapsed
)

var pecNames = []string{"NO_EMBARGO", "INVITED", "SIGNATORY", "DECLINED", "LAPSED"}

// PECs returns the five PEC states in order.
func PECs() []PEC { return []PEC{PECNoEmbargo, PECInvited, PECSignatory, PECDeclined, PECLapsed} }

// String returns the wire spelling, such as "SIGNATORY".
func (p PEC) String() string { return nameOf("PEC", pecNames, int(p)) }

// ParsePEC reads a PEC state from its wire spelling.
func ParsePEC(s string) (PEC, error) {
	i, err := parseName("embargo consent state", s, pecNames, nil, false)
	return PEC(i), err
}

// MarshalText writes the wire spelling.
func (p PEC) MarshalText() ([]byte, error) {
	if err := checkRange("embargo consent state", pecNames, int(p)); err != nil {
		return nil, err
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads the wire spelling.
func (p *PEC) UnmarshalText(text []byte) error {
	v, err := ParsePEC(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Adheres reports whether the participant is bound by the embargo; a
// participant's embargo adherence is this projection, never stored apart.
func (p PEC) Adheres() bool { return p == PECSignatory }

// PECEvent is an event of the PEC model. The zero value is not an event.
type PECEvent uint8

// The five PEC events.
const (
	// PECInvite invites the participant to the embargo.
	PECInvite PECEvent = iota + 1
	// PECAccept records the participant's acceptance of the terms.
	PECAccept
	// PECDecline records a refusal, or an invitation left unanswered past its deadline.
	PECDecline
	// PECRevise lapses a signatory's consent when the embargo enters REVISE.
	PECRevise
	// PECReset clears consent when the embargo ends or is removed.
	PECReset
)

var pecEventNames = []string{"", "invite", "accept", "decline", "revise", "reset"}

// PECEvents returns the five PEC events in order.
func PECEvents() []PECEvent { return []PECEvent{PECInvite, PECAccept, PECDecline, PECRevise, PECReset} }

// String returns the event's name, such as "invite".
func (e PECEvent) String() string { return nameOf("PECEvent", pecEventNames, int(e)) }

// ParsePECEvent reads a PEC event name ("invite").
func ParsePECEvent(s string) (PECEvent, error) {
	i, err := parseName("embargo consent event", strings.ToLower(s), pecEventNames[1:], nil, true)
	return PECEvent(i + 1), err
}

// MarshalText writes the event's name.
func (e PECEvent) MarshalText() ([]byte, error) {
	if err := checkRange("embargo consent event", pecEventNames[1:], int(e)-1); err != nil {
		return nil, err
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads the event's name.
func (e *PECEvent) UnmarshalText(text []byte) error {
	v, err := ParsePECEvent(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// PECTransition is one edge of the PEC model.
type PECTransition struct {
	From  PEC
	Event PECEvent
	To    PEC
}

// pecTransitions: invite from NO_EMBARGO, DECLINED or LAPSED; accept and
// decline from NO_EMBARGO, INVITED or LAPSED; revise from SIGNATORY; reset
// from every state. SIGNATORY→INVITED is deliberately absent.
var pecTransitions = func() []PECTransition {
	ts := []PECTransition{
		{PECNoEmbargo, PECInvite, PECInvited},
		{PECDeclined, PECInvite, PECInvited},
		{PECLapsed, PECInvite, PECInvited},
		{PECNoEmbargo, PECAccept, PECSignatory},
		{PECInvited, PECAccept, PECSignatory},
		{PECLapsed, PECAccept, PECSignatory},
		{PECNoEmbargo, PECDecline, PECDeclined},
		{PECInvited, PECDecline, PECDeclined},
		{PECLapsed, PECDecline, PECDeclined},
		{PECSignatory, PECRevise, PECLapsed},
	}
	for _, p := range PECs() {
		ts = append(ts, PECTransition{p, PECReset, PECNoEmbargo})
	}
	return ts
}()

// PECTransitions returns the 15 edges of the PEC model.
func PECTransitions() []PECTransition { return slices.Clone(pecTransitions) }

// Apply returns the consent state that e leads to from p, or a
// *TransitionError.
func (p PEC) Apply(e PECEvent) (PEC, error) {
	for _, t := range pecTransitions {
		if t.From == p && t.Event == e {
			return t.To, nil
		}
	}
	return p, &TransitionError{Model: "PEC", Event: e.String(), From: p.String(), Reason: pecRefusal(p, e)}
}

func pecRefusal(p PEC, e PECEvent) string {
	switch {
	case e < PECInvite || e > PECReset:
		return "it is not an embargo consent event"
	case p > PECLapsed:
		return "it is not an embargo consent state"
	case e == PECInvite && p == PECSignatory:
		return "a signatory is already bound by the embargo and cannot be invited again"
	case e == PECInvite:
		return "the participant already has an open invitation"
	case e == PECRevise:
		return "only a signatory's consent lapses when the terms are revised"
	case p == PECSignatory:
		return "a signatory has already accepted the current terms"
	default: // accept or decline from DECLINED
		return "a participant that declined must be invited again first"
	}
}
