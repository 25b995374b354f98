package cvdstate

import (
	"fmt"
	"math/bits"
	"strings"
)

// MessageType is a set of protocol message types. One message may carry
// several types at once: a report submission that also proposes an embargo
// is RS|EP. The zero value is the empty set (no message).
type MessageType uint32

// The 28 message types of the protocol, grouped by the model they belong to.
const (
	// RS submits a report to a participant that has not seen it.
	RS MessageType = 1 << iota
	// RI says the sender found the report invalid.
	RI
	// RV says the sender found the report valid.
	RV
	// RD says the sender deferred the report.
	RD
	// RA says the sender accepted the report for action.
	RA
	// RC says the sender closed the report.
	RC
	// RK acknowledges an RM message.
	RK
	// RE reports an unexpected RM message.
	RE
	// EP proposes an embargo.
	EP
	// ER rejects an embargo proposal.
	ER
	// EA accepts an embargo proposal.
	EA
	// EV proposes a revision of the active embargo.
	EV
	// EJ rejects a revision; the old terms stay.
	EJ
	// EC accepts a revision; the new terms replace the old.
	EC
	// ET terminates the embargo with immediate effect.
	ET
	// EK acknowledges an EM message.
	EK
	// EE reports an unexpected EM message.
	EE
	// CV says the vendor is aware of the vulnerability.
	CV
	// CF says a fix is ready.
	CF
	// CD says a fix is deployed.
	CD
	// CP says the public is aware of the vulnerability.
	CP
	// CX says an exploit is public.
	CX
	// CA says attacks have been observed.
	CA
	// CK acknowledges a CS message.
	CK
	// CE reports an unexpected CS message.
	CE
	// GI is a general inquiry.
	GI
	// GK acknowledges a general inquiry.
	GK
	// GE reports a general error.
	GE
)

// messageNames are the two-letter names in bit order.
var messageNames = [...]string{
	"RS", "RI", "RV", "RD", "RA", "RC", "RK", "RE",
	"EP", "ER", "EA", "EV", "EJ", "EC", "ET", "EK", "EE",
	"CV", "CF", "CD", "CP", "CX", "CA", "CK", "CE",
	"GI", "GK", "GE",
}

// Groups of message types by model.
const (
	// RMMessages are the Report Management message types.
	RMMessages = RS | RI | RV | RD | RA | RC | RK | RE
	// EMMessages are the Embargo Management message types.
	EMMessages = EP | ER | EA | EV | EJ | EC | ET | EK | EE
	// CSMessages are the Case State message types.
	CSMessages = CV | CF | CD | CP | CX | CA | CK | CE
	// GeneralMessages are the general message types.
	GeneralMessages = GI | GK | GE
	// AllMessages is every message type.
	AllMessages = RMMessages | EMMessages | CSMessages | GeneralMessages
	// Acknowledgements are the K message of each model.
	Acknowledgements = RK | EK | CK | GK
	// Errors are the E message of each model.
	Errors = RE | EE | CE | GE
)

// AcknowledgementOf returns the acknowledgements the receiver tables give
// a message of types m that the receiver accepted: RK for an RM message,
// EK for an EM message, CK for a CS message and GK for GI, one of each
// model m carries. Acknowledgements and errors are not acknowledged, so
// RK|CV (an acknowledgement that also says the vendor is aware) is
// answered with CK alone.
//
// The receiver tables answer a received error with K and GI. This node
// answers no acknowledgement and no error at all: an error is read by
// people, who follow up with a note, and answering errors between two
// nodes could make them bounce replies forever.
func AcknowledgementOf(m MessageType) MessageType {
	m &^= Acknowledgements | Errors
	var out MessageType
	if m&RMMessages != 0 {
		out |= RK
	}
	if m&EMMessages != 0 {
		out |= EK
	}
	if m&CSMessages != 0 {
		out |= CK
	}
	if m&GI != 0 {
		out |= GK
	}
	return out
}

// ErrorOf returns the error that answers a refused message of types m: RE,
// EE or CE for each model m carries, and GE for a general message or one
// with no formal type at all (an invitation's answer, a suggestion, an
// ownership offer). Acknowledgements and errors are never answered, so a
// message of nothing else has no error.
func ErrorOf(m MessageType) MessageType {
	if m != 0 && m&^(Acknowledgements|Errors) == 0 {
		return 0
	}
	m &^= Acknowledgements | Errors
	var out MessageType
	if m&RMMessages != 0 {
		out |= RE
	}
	if m&EMMessages != 0 {
		out |= EE
	}
	if m&CSMessages != 0 {
		out |= CE
	}
	if out == 0 {
		out = GE
	}
	return out
}

// MessageTypes returns the 28 single message types in canonical order.
func MessageTypes() []MessageType {
	out := make([]MessageType, len(messageNames))
	for i := range messageNames {
		out[i] = 1 << i
	}
	return out
}

// Has reports whether every type in other is also in m.
func (m MessageType) Has(other MessageType) bool { return m&other == other && other != 0 }

// Count is the number of single types in m.
func (m MessageType) Count() int { return bits.OnesCount32(uint32(m)) }

// Types splits m into its single types in canonical order.
func (m MessageType) Types() []MessageType {
	var out []MessageType
	for i := range messageNames {
		if t := MessageType(1) << i; m&t != 0 {
			out = append(out, t)
		}
	}
	return out
}

// String writes m as its two-letter names joined by "|" in canonical order,
// for example "RS|EP". The empty set is written as "".
func (m MessageType) String() string {
	var names []string
	for i, name := range messageNames {
		if m&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	if rest := m &^ AllMessages; rest != 0 {
		names = append(names, fmt.Sprintf("MessageType(%#x)", uint32(rest)))
	}
	return strings.Join(names, "|")
}

// ParseMessageType reads a set of message types written as two-letter names
// separated by "|", such as "RS|EP". Names are case-insensitive and spaces
// around them are ignored; the empty string is the empty set.
func ParseMessageType(s string) (MessageType, error) {
	var m MessageType
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	for _, part := range strings.Split(s, "|") {
		name := strings.ToUpper(strings.TrimSpace(part))
		t, ok := messageByName(name)
		if !ok {
			return 0, fmt.Errorf("parse message type %q: %q is not one of the 28 message types", s, part)
		}
		m |= t
	}
	return m, nil
}

func messageByName(name string) (MessageType, bool) {
	for i, n := range messageNames {
		if n == name {
			return 1 << i, true
		}
	}
	return 0, false
}

// MarshalText writes m as String does.
func (m MessageType) MarshalText() ([]byte, error) {
	if m&^AllMessages != 0 {
		return nil, fmt.Errorf("marshal message type: unknown bits %#x", uint32(m&^AllMessages))
	}
	return []byte(m.String()), nil
}

// UnmarshalText reads m as ParseMessageType does.
func (m *MessageType) UnmarshalText(text []byte) error {
	v, err := ParseMessageType(string(text))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
