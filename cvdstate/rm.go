package cvdstate

import (
	"slices"
	"strings"
)

// RMState is a participant's Report Management state. The zero value is
// RMStart, the initial state.
type RMState uint8

// The seven RM states.
const (
	// RMStart: the report has not reached the participant.
	RMStart RMState = iota
	// RMReceived: received, not yet validated.
	RMReceived
	// RMInvalid: evaluated and found lacking; held for more information.
	RMInvalid
	// RMValid: valid, awaiting prioritization.
	RMValid
	// RMDeferred: valid, not being worked (reversible).
	RMDeferred
	// RMAccepted: valid and being worked.
	RMAccepted
	// RMClosed: no further work; final.
	RMClosed
)

var rmStateNames = []string{"START", "RECEIVED", "INVALID", "VALID", "DEFERRED", "ACCEPTED", "CLOSED"}

// rmStateAliases are the reference implementation's alternative spellings:
// the long REPORT_MANAGEMENT_ names and the one-letter names.
var rmStateAliases = func() map[string]int {
	m := map[string]int{}
	for i, n := range rmStateNames {
		m["REPORT_MANAGEMENT_"+n] = i
		m[n[:1]] = i
	}
	return m
}()

// RMStates returns the seven RM states in order.
func RMStates() []RMState {
	return []RMState{RMStart, RMReceived, RMInvalid, RMValid, RMDeferred, RMAccepted, RMClosed}
}

// String returns the wire spelling, such as "RECEIVED".
func (s RMState) String() string { return nameOf("RMState", rmStateNames, int(s)) }

// Letter returns the one-letter name used in the protocol's formulas.
func (s RMState) Letter() string {
	return nameOf("RMState", []string{"S", "R", "I", "V", "D", "A", "C"}, int(s))
}

// ParseRMState reads an RM state from its wire spelling or an alias
// ("REPORT_MANAGEMENT_RECEIVED", "R").
func ParseRMState(s string) (RMState, error) {
	i, err := parseName("RM state", s, rmStateNames, rmStateAliases, false)
	return RMState(i), err
}

// MarshalText writes the wire spelling.
func (s RMState) MarshalText() ([]byte, error) {
	if err := checkRange("RM state", rmStateNames, int(s)); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads the wire spelling or an alias.
func (s *RMState) UnmarshalText(text []byte) error {
	v, err := ParseRMState(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Open reports whether the report is open: received and not closed.
func (s RMState) Open() bool { return s != RMStart && s != RMClosed }

// Validated reports whether the report has been found valid and not closed.
func (s RMState) Validated() bool { return s == RMValid || s == RMDeferred || s == RMAccepted }

// Active reports whether the participant is working the report (R, V, A).
func (s RMState) Active() bool { return s == RMReceived || s == RMValid || s == RMAccepted }

// Progress returns how far along the RM model s lies: START 0, RECEIVED 1,
// INVALID and VALID 2, DEFERRED and ACCEPTED 3, CLOSED 4. Every edge of
// the model but those within one level (I→V, A→D, D→A) leads to greater
// progress, so a state of lesser progress is never reached again: a
// message that names one is older than what the receiver already knows.
func (s RMState) Progress() int {
	switch s {
	case RMStart:
		return 0
	case RMReceived:
		return 1
	case RMInvalid, RMValid:
		return 2
	case RMDeferred, RMAccepted:
		return 3
	}
	return 4
}

// RMEvent is an event of the RM model. The zero value is not an event.
type RMEvent uint8

// The six RM events.
const (
	RMReceive RMEvent = iota + 1
	RMValidate
	RMInvalidate
	RMAccept
	RMDefer
	RMClose
)

var rmEventNames = []string{"", "receive", "validate", "invalidate", "accept", "defer", "close"}

// RMEvents returns the six RM events in order.
func RMEvents() []RMEvent {
	return []RMEvent{RMReceive, RMValidate, RMInvalidate, RMAccept, RMDefer, RMClose}
}

// String returns the event's name, such as "validate".
func (e RMEvent) String() string { return nameOf("RMEvent", rmEventNames, int(e)) }

// ParseRMEvent reads an RM event name ("validate").
func ParseRMEvent(s string) (RMEvent, error) {
	i, err := parseName("RM event", strings.ToLower(s), rmEventNames[1:], nil, true)
	return RMEvent(i + 1), err
}

// MarshalText writes the event's name.
func (e RMEvent) MarshalText() ([]byte, error) {
	if err := checkRange("RM event", rmEventNames[1:], int(e)-1); err != nil {
		return nil, err
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads the event's name.
func (e *RMEvent) UnmarshalText(text []byte) error {
	v, err := ParseRMEvent(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// RMTransition is one edge of the RM model and the message its sender emits.
type RMTransition struct {
	From    RMState
	Event   RMEvent
	To      RMState
	Message MessageType // zero for receive, which is driven by receipt of RS
}

// rmTransitions is the RM automaton: S→rR; R→vV|iI; I→vV|cC; V→aA|dD;
// A→dD|cC; D→aA|cC. There is no V→C edge and invalidate leaves only R.
//
// Contradiction: the formal sender table lets RI be sent from R or V, but the
// automaton has only R→I; as the digest recommends, only R→I exists here.
var rmTransitions = []RMTransition{
	{RMStart, RMReceive, RMReceived, 0},
	{RMReceived, RMValidate, RMValid, RV},
	{RMReceived, RMInvalidate, RMInvalid, RI},
	{RMInvalid, RMValidate, RMValid, RV},
	{RMValid, RMAccept, RMAccepted, RA},
	{RMValid, RMDefer, RMDeferred, RD},
	{RMAccepted, RMDefer, RMDeferred, RD},
	{RMDeferred, RMAccept, RMAccepted, RA},
	{RMAccepted, RMClose, RMClosed, RC},
	{RMDeferred, RMClose, RMClosed, RC},
	{RMInvalid, RMClose, RMClosed, RC},
}

// RMTransitions returns the 11 edges of the RM model.
func RMTransitions() []RMTransition { return slices.Clone(rmTransitions) }

// Apply returns the state that e leads to from s and the message the
// participant sends about it, or a *TransitionError saying why the protocol
// forbids e in s.
func (s RMState) Apply(e RMEvent) (RMState, MessageType, error) {
	for _, t := range rmTransitions {
		if t.From == s && t.Event == e {
			return t.To, t.Message, nil
		}
	}
	return s, 0, &TransitionError{Model: "RM", Event: e.String(), From: s.String(), Reason: rmRefusal(s, e)}
}

// rmRefusal explains why e is not allowed in s.
func rmRefusal(s RMState, e RMEvent) string {
	switch {
	case e < RMReceive || e > RMClose:
		return "it is not an RM event"
	case s > RMClosed:
		return "it is not an RM state"
	case s == RMClosed:
		return "a closed report is final"
	case e == RMReceive:
		return "the report has already been received"
	case s == RMStart:
		return "the report has not been received yet"
	case e == RMClose && s == RMValid:
		return "a report must be accepted or deferred before it is closed"
	case e == RMClose && s == RMReceived:
		return "a report must be evaluated (validated or found invalid) before it is closed"
	case e == RMInvalidate && s == RMInvalid:
		return "the report is already invalid"
	case e == RMInvalidate:
		return "only a report that is received and not yet validated can be found invalid"
	case e == RMValidate:
		return "the report is already valid"
	case e == RMAccept && s == RMAccepted:
		return "the report is already accepted"
	case e == RMDefer && s == RMDeferred:
		return "the report is already deferred"
	case e == RMAccept:
		return "a report must be validated before it is accepted"
	default: // defer from R or I
		return "a report must be validated before it is deferred"
	}
}
