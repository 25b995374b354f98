package cvdstate

import (
	"slices"
	"strings"
)

// EMState is the case's Embargo Management state; a case has at most one
// embargo at a time. The zero value is EMNone, the initial state.
type EMState uint8

// The five EM states.
const (
	// EMNone: no embargo has been established, or the proposal was rejected.
	EMNone EMState = iota
	// EMProposed: an embargo is proposed and not yet accepted or rejected.
	EMProposed
	// EMActive: an embargo is in force.
	EMActive
	// EMRevise: an embargo is in force and a revision is pending.
	EMRevise
	// EMExited: the embargo has ended; final.
	EMExited
)

var emStateNames = []string{"NONE", "PROPOSED", "ACTIVE", "REVISE", "EXITED"}

// emStateLetters are the one-letter names of the protocol's formulas.
var emStateLetters = []string{"N", "P", "A", "R", "X"}

// emStateAliases are the reference implementation's alternative spellings:
// NO_EMBARGO for NONE, the long EMBARGO_MANAGEMENT_ names and the one-letter
// names.
//
// Contradiction: the notional case object model calls the active state
// "Accepted" while the EM model calls it "Active". ACTIVE is the wire
// spelling, as in the reference implementation; ACCEPTED is read as an alias.
var emStateAliases = func() map[string]int {
	m := map[string]int{"NO_EMBARGO": int(EMNone), "ACCEPTED": int(EMActive)}
	for i, n := range emStateNames {
		m["EMBARGO_MANAGEMENT_"+n] = i
		m[emStateLetters[i]] = i
	}
	return m
}()

// EMStates returns the five EM states in order.
func EMStates() []EMState { return []EMState{EMNone, EMProposed, EMActive, EMRevise, EMExited} }

// String returns the wire spelling, such as "ACTIVE".
func (s EMState) String() string { return nameOf("EMState", emStateNames, int(s)) }

// Letter returns the one-letter name used in the protocol's formulas.
func (s EMState) Letter() string { return nameOf("EMState", emStateLetters, int(s)) }

// ParseEMState reads an EM state from its wire spelling or an alias
// ("NO_EMBARGO", "EMBARGO_MANAGEMENT_ACTIVE", "A").
func ParseEMState(s string) (EMState, error) {
	i, err := parseName("EM state", s, emStateNames, emStateAliases, false)
	return EMState(i), err
}

// MarshalText writes the wire spelling.
func (s EMState) MarshalText() ([]byte, error) {
	if err := checkRange("EM state", emStateNames, int(s)); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads the wire spelling or an alias.
func (s *EMState) UnmarshalText(text []byte) error {
	v, err := ParseEMState(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// InForce reports whether an embargo is in force (ACTIVE or REVISE).
func (s EMState) InForce() bool { return s == EMActive || s == EMRevise }

// Negotiating reports whether a proposal or revision is pending.
func (s EMState) Negotiating() bool { return s == EMProposed || s == EMRevise }

// EMEvent is an event of the EM model. The zero value is not an event.
type EMEvent uint8

// The four EM events.
const (
	EMPropose EMEvent = iota + 1
	EMReject
	EMAccept
	EMTerminate
)

var emEventNames = []string{"", "propose", "reject", "accept", "terminate"}

// EMEvents returns the four EM events in order.
func EMEvents() []EMEvent { return []EMEvent{EMPropose, EMReject, EMAccept, EMTerminate} }

// String returns the event's name, such as "propose".
func (e EMEvent) String() string { return nameOf("EMEvent", emEventNames, int(e)) }

// ParseEMEvent reads an EM event name ("propose").
func ParseEMEvent(s string) (EMEvent, error) {
	i, err := parseName("EM event", strings.ToLower(s), emEventNames[1:], nil, true)
	return EMEvent(i + 1), err
}

// MarshalText writes the event's name.
func (e EMEvent) MarshalText() ([]byte, error) {
	if err := checkRange("EM event", emEventNames[1:], int(e)-1); err != nil {
		return nil, err
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads the event's name.
func (e *EMEvent) UnmarshalText(text []byte) error {
	v, err := ParseEMEvent(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// EMTransition is one edge of the EM model and the message its sender emits.
type EMTransition struct {
	From    EMState
	Event   EMEvent
	To      EMState
	Message MessageType
}

// emTransitions is the EM automaton: N→pP; P→pP|rN|aA; A→pR|tX;
// R→pR|aA|rA|tX. The same event emits a different message depending on the
// state: propose is EP before an embargo is in force and EV after; accept is
// EA or EC; reject is ER or EJ.
var emTransitions = []EMTransition{
	{EMNone, EMPropose, EMProposed, EP},
	{EMProposed, EMPropose, EMProposed, EP},
	{EMProposed, EMReject, EMNone, ER},
	{EMProposed, EMAccept, EMActive, EA},
	{EMActive, EMPropose, EMRevise, EV},
	{EMRevise, EMPropose, EMRevise, EV},
	{EMRevise, EMReject, EMActive, EJ},
	{EMRevise, EMAccept, EMActive, EC},
	{EMActive, EMTerminate, EMExited, ET},
	{EMRevise, EMTerminate, EMExited, ET},
}

// EMTransitions returns the 10 edges of the EM model.
func EMTransitions() []EMTransition { return slices.Clone(emTransitions) }

// Apply returns the state that e leads to from s and the message the sender
// emits (EP or EV, EA or EC, ER or EJ, ET), or a *TransitionError.
func (s EMState) Apply(e EMEvent) (EMState, MessageType, error) {
	for _, t := range emTransitions {
		if t.From == s && t.Event == e {
			return t.To, t.Message, nil
		}
	}
	return s, 0, &TransitionError{Model: "EM", Event: e.String(), From: s.String(), Reason: emRefusal(s, e)}
}

// MessageFor tells apart the message types that share a wire form: it
// returns the message that e stands for in state s (EP or EV for propose, EA
// or EC for accept, ER or EJ for reject, ET for terminate).
func (s EMState) MessageFor(e EMEvent) (MessageType, error) {
	_, m, err := s.Apply(e)
	return m, err
}

// EMEventOf returns the EM event that an EM message type stands for, or
// false for EK, EE and non-EM types.
func EMEventOf(m MessageType) (EMEvent, bool) {
	switch m {
	case EP, EV:
		return EMPropose, true
	case ER, EJ:
		return EMReject, true
	case EA, EC:
		return EMAccept, true
	case ET:
		return EMTerminate, true
	}
	return 0, false
}

// emRefusal explains why e is not allowed in s.
func emRefusal(s EMState, e EMEvent) string {
	switch {
	case e < EMPropose || e > EMTerminate:
		return "it is not an EM event"
	case s > EMExited:
		return "it is not an EM state"
	case s == EMExited:
		return "an embargo that has ended cannot be negotiated again in the same case"
	case e == EMTerminate:
		return "there is no embargo in force to terminate"
	case e == EMAccept || e == EMReject:
		return "there is no pending proposal or revision to " + e.String()
	default:
		return "it is not an EM transition"
	}
}
