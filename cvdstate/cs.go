package cvdstate

import (
	"fmt"
	"strings"
)

// VFD is a participant's part of the case state: whether the vendor is
// aware (V), a fix is ready (F) and the fix is deployed (D). The three
// happen in that order, so there are four states. The zero value is "vfd".
type VFD uint8

// The four VFD states.
const (
	VFDNone     VFD = iota // vfd: vendor unaware
	VFDAware               // Vfd: vendor aware, no fix
	VFDFixReady            // VFd: fix ready, not deployed
	VFDDeployed            // VFD: fix deployed
)

var vfdNames = []string{"vfd", "Vfd", "VFd", "VFD"}

// VFDs returns the four VFD states in order.
func VFDs() []VFD { return []VFD{VFDNone, VFDAware, VFDFixReady, VFDDeployed} }

// String returns the wire spelling, such as "VFd".
func (v VFD) String() string { return nameOf("VFD", vfdNames, int(v)) }

// ParseVFD reads a VFD state from its wire spelling ("VFd"); letters are
// case-sensitive because case is what they mean.
func ParseVFD(s string) (VFD, error) {
	i, err := parseName("VFD state", s, vfdNames, nil, true)
	return VFD(i), err
}

// MarshalText writes the wire spelling.
func (v VFD) MarshalText() ([]byte, error) {
	if err := checkRange("VFD state", vfdNames, int(v)); err != nil {
		return nil, err
	}
	return []byte(v.String()), nil
}

// UnmarshalText reads the wire spelling.
func (v *VFD) UnmarshalText(text []byte) error {
	x, err := ParseVFD(string(text))
	if err != nil {
		return err
	}
	*v = x
	return nil
}

// PXA is the case-wide part of the case state: whether the public is aware
// (P), an exploit is public (X) and attacks have been observed (A). The
// three are independent latches, so there are eight states. The zero value
// is "pxa".
type PXA uint8

// The bits of PXA.
const (
	PXAPublic  PXA = 1 << iota // P: the public is aware
	PXAExploit                 // X: an exploit is public
	PXAAttacks                 // A: attacks have been observed
	PXANone    PXA = 0         // pxa: none of them
)

// PXAs returns the eight PXA states in the protocol's customary order.
func PXAs() []PXA {
	return []PXA{0, PXAPublic, PXAExploit, PXAAttacks, PXAPublic | PXAExploit,
		PXAPublic | PXAAttacks, PXAExploit | PXAAttacks, PXAPublic | PXAExploit | PXAAttacks}
}

// String returns the wire spelling, such as "Pxa".
func (p PXA) String() string {
	if p > 7 {
		return fmt.Sprintf("PXA(%d)", uint8(p))
	}
	return letters("pxa", uint8(p))
}

// letters upper-cases the letters of lower whose bit is set in set.
func letters(lower string, set uint8) string {
	b := []byte(lower)
	for i := range b {
		if set&(1<<i) != 0 {
			b[i] -= 'a' - 'A'
		}
	}
	return string(b)
}

// ParsePXA reads a PXA state from its wire spelling ("Pxa").
func ParsePXA(s string) (PXA, error) {
	for _, p := range PXAs() {
		if p.String() == strings.TrimSpace(s) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("parse PXA state %q: want three letters p, x, a in that order, upper-case for what has happened (such as \"Pxa\")", s)
}

// MarshalText writes the wire spelling.
func (p PXA) MarshalText() ([]byte, error) {
	if p > 7 {
		return nil, fmt.Errorf("marshal PXA state: %d is not a valid value", uint8(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText reads the wire spelling.
func (p *PXA) UnmarshalText(text []byte) error {
	x, err := ParsePXA(string(text))
	if err != nil {
		return err
	}
	*p = x
	return nil
}

// CSEvent is one of the six case-state events. The zero value is not an
// event.
type CSEvent uint8

// The six CS events, in the order the state letters are written.
const (
	// EventV: the vendor becomes aware.
	EventV CSEvent = iota + 1
	// EventF: the vendor readies a fix.
	EventF
	// EventD: a deployer deploys the fix.
	EventD
	// EventP: the public becomes aware.
	EventP
	// EventX: an exploit is made public.
	EventX
	// EventA: attacks are observed.
	EventA
)

var csEventNames = []string{"", "V", "F", "D", "P", "X", "A"}

// csEventAliases are the reference implementation's trigger names.
var csEventAliases = map[string]int{
	"vendor_becomes_aware": 0, "fix_is_ready": 1, "fix_is_deployed": 2,
	"public_becomes_aware": 3, "exploit_made_public": 4, "attacks_are_observed": 5,
}

// CSEvents returns the six CS events in order V, F, D, P, X, A.
func CSEvents() []CSEvent { return []CSEvent{EventV, EventF, EventD, EventP, EventX, EventA} }

// String returns the event's letter, such as "P".
func (e CSEvent) String() string { return nameOf("CSEvent", csEventNames, int(e)) }

// ParseCSEvent reads a CS event from its letter ("P", either case) or its
// long name ("public_becomes_aware").
func ParseCSEvent(s string) (CSEvent, error) {
	key := strings.TrimSpace(s)
	if len(key) == 1 {
		key = strings.ToUpper(key)
	} else {
		key = strings.ToLower(key)
	}
	i, err := parseName("CS event", key, csEventNames[1:], csEventAliases, true)
	return CSEvent(i + 1), err
}

// MarshalText writes the event's letter.
func (e CSEvent) MarshalText() ([]byte, error) {
	if err := checkRange("CS event", csEventNames[1:], int(e)-1); err != nil {
		return nil, err
	}
	return []byte(e.String()), nil
}

// UnmarshalText reads the event's letter or long name.
func (e *CSEvent) UnmarshalText(text []byte) error {
	v, err := ParseCSEvent(string(text))
	if err != nil {
		return err
	}
	*e = v
	return nil
}

// Message returns the CS message that announces e (CV, CF, CD, CP, CX, CA).
func (e CSEvent) Message() MessageType {
	switch e {
	case EventV:
		return CV
	case EventF:
		return CF
	case EventD:
		return CD
	case EventP:
		return CP
	case EventX:
		return CX
	case EventA:
		return CA
	}
	return 0
}

// CSEventOf returns the event a CS message announces, or false for CK, CE
// and non-CS types.
func CSEventOf(m MessageType) (CSEvent, bool) {
	for _, e := range CSEvents() {
		if e.Message() == m {
			return e, true
		}
	}
	return 0, false
}

// CS is a case state as one participant sees it: its own VFD and the case's
// PXA, 4 × 8 = 32 states. The zero value is vfdpxa, the initial state.
type CS struct {
	VFD VFD
	PXA PXA
}

// CSStates returns the 32 case states, VFD-major.
func CSStates() []CS {
	var out []CS
	for _, v := range VFDs() {
		for _, p := range PXAs() {
			out = append(out, CS{v, p})
		}
	}
	return out
}

// String returns the six-letter spelling, such as "VFdPxa".
func (c CS) String() string { return c.VFD.String() + c.PXA.String() }

// ParseCS reads a six-letter case state such as "VFdPxa".
func ParseCS(s string) (CS, error) {
	s = strings.TrimSpace(s)
	if len(s) != 6 {
		return CS{}, fmt.Errorf("parse case state %q: want six letters such as \"VFdPxa\"", s)
	}
	v, err := ParseVFD(s[:3])
	if err != nil {
		return CS{}, fmt.Errorf("parse case state %q: %w", s, err)
	}
	p, err := ParsePXA(s[3:])
	if err != nil {
		return CS{}, fmt.Errorf("parse case state %q: %w", s, err)
	}
	return CS{v, p}, nil
}

// MarshalText writes the six-letter spelling.
func (c CS) MarshalText() ([]byte, error) {
	if int(c.VFD) >= len(vfdNames) || c.PXA > 7 {
		return nil, fmt.Errorf("marshal case state: %s is not a valid state", c)
	}
	return []byte(c.String()), nil
}

// UnmarshalText reads the six-letter spelling.
func (c *CS) UnmarshalText(text []byte) error {
	x, err := ParseCS(string(text))
	if err != nil {
		return err
	}
	*c = x
	return nil
}

// Happened reports whether event e is recorded in c.
func (c CS) Happened(e CSEvent) bool {
	switch e {
	case EventV:
		return c.VFD >= VFDAware
	case EventF:
		return c.VFD >= VFDFixReady
	case EventD:
		return c.VFD >= VFDDeployed
	case EventP:
		return c.PXA&PXAPublic != 0
	case EventX:
		return c.PXA&PXAExploit != 0
	case EventA:
		return c.PXA&PXAAttacks != 0
	}
	return false
}

// Forced returns the event that must come next from c, if any: from v··P··
// it is V (vendors know at least as much as the public) and from ···pX· it is
// P (a public exploit makes the public aware).
func (c CS) Forced() (CSEvent, bool) {
	switch {
	case c.VFD == VFDNone && c.Happened(EventP):
		return EventV, true
	case c.Happened(EventX) && !c.Happened(EventP):
		return EventP, true
	}
	return 0, false
}

// Allowed returns the events that may happen next from c, in order V..A.
func (c CS) Allowed() []CSEvent {
	var out []CSEvent
	for _, e := range CSEvents() {
		if _, _, err := c.Apply(e); err == nil {
			out = append(out, e)
		}
	}
	return out
}

// Apply returns the state that e leads to from c and the message that
// announces it, or a *TransitionError. Every event sets exactly one letter,
// never clears one, keeps V before F before D, and respects the forcing
// rules of Forced.
func (c CS) Apply(e CSEvent) (CS, MessageType, error) {
	refuse := func(reason string) (CS, MessageType, error) {
		return c, 0, &TransitionError{Model: "CS", Event: e.String(), From: c.String(), Reason: reason}
	}
	if e < EventV || e > EventA {
		return refuse("it is not a CS event")
	}
	if int(c.VFD) >= len(vfdNames) || c.PXA > 7 {
		return refuse("it is not a CS state")
	}
	if c.Happened(e) {
		return refuse("the event has already happened and case-state events cannot be undone")
	}
	if f, ok := c.Forced(); ok && f != e {
		if f == EventV {
			return refuse("the public is aware, so the vendor must become aware next (V)")
		}
		return refuse("an exploit is public, so the public must become aware next (P)")
	}
	next := c
	switch e {
	case EventV:
		next.VFD = VFDAware
	case EventF:
		if c.VFD != VFDAware {
			return refuse("the vendor must be aware before a fix can be ready")
		}
		next.VFD = VFDFixReady
	case EventD:
		if c.VFD != VFDFixReady {
			return refuse("a fix must be ready before it can be deployed")
		}
		next.VFD = VFDDeployed
	case EventP:
		next.PXA |= PXAPublic
	case EventX:
		next.PXA |= PXAExploit
	case EventA:
		next.PXA |= PXAAttacks
	}
	return next, e.Message(), nil
}

// CSTransition is one valid single-event edge of the CS model.
type CSTransition struct {
	From    CS
	Event   CSEvent
	To      CS
	Message MessageType
}

// CSTransitions returns every valid single-event edge of the CS model, 58
// in all. The edges follow from the rules in Apply rather than from a
// transcribed grammar.
//
// Contradiction: the protocol's written δ^cs grammar gives VFdPxA -X->
// VFDPXA, which would set two letters at once; the rules make the target
// VFdPXA, as the digest says it must be.
func CSTransitions() []CSTransition {
	var out []CSTransition
	for _, c := range CSStates() {
		for _, e := range c.Allowed() {
			to, m, _ := c.Apply(e)
			out = append(out, CSTransition{c, e, to, m})
		}
	}
	return out
}
