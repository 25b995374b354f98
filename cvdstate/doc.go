// Package cvdstate owns the Vultron Protocol's state models as data and pure
// functions: Report Management (RM), Embargo Management (EM), Participant
// Embargo Consent (PEC) and the Case State (CS) model with its participant
// part (VFD) and case-wide part (PXA); the 28 protocol message types; the
// participant roles; the cross-model rules that tie a case-state event,
// or a participant's declared non-adherence, to embargo teardown; each
// participant's fix path (a vendor's vfd, a deployer's own d/D); the
// acknowledgement and the error of each model; and the history analysis (valid histories of the six CS
// events, their probabilities under a uniform random walk, and the twelve
// desiderata with their baseline frequencies and skill figures).
//
// The package does no I/O, imports nothing else from this module and keeps
// no mutable package state: every table is immutable and every function
// returns new values. A node drives a case replica through two entry points:
//
//   - Step applies an action taken by a participant (an RM transition, an
//     embargo action or a CS event) to the case and that participant, and
//     returns the new states and the messages that must be sent.
//   - Receive applies the protocol's receiver rules to a message that
//     arrived, and returns the new states and the replies that are due.
//
// Each enum has a wire spelling (String, MarshalText) and a parser that also
// accepts the alias spellings used by the reference implementation.
//
// Where the protocol's sources contradict each other, this package follows
// the resolution of the specification digest and names the choice in a
// comment at the place it takes effect; search for "Contradiction:".
package cvdstate
