package dashboard

import (
	"strings"

	"github.com/openvultron/vultron/cvdstate"
)

// The protocol's states are written in its own shorthand (RM ACCEPTED, EM
// REVISE, vfd VFd, pxa Pxa, SIGNATORY, D≺P). The dashboard puts one line
// of plain English beside each; the tables below are that wording, and
// the letters' states are composed from a phrase per event.

// rmMeaning says what each Report Management state means for the
// participant in it.
var rmMeaning = map[cvdstate.RMState]string{
	cvdstate.RMStart:    "has not received the report",
	cvdstate.RMReceived: "received the report and has not evaluated it yet",
	cvdstate.RMInvalid:  "found the report invalid; it may still validate or close it",
	cvdstate.RMValid:    "found the report valid and has not decided whether to work on it",
	cvdstate.RMDeferred: "found the report valid and put it aside for now",
	cvdstate.RMAccepted: "is working on the report",
	cvdstate.RMClosed:   "closed the report and takes no further part",
}

// emMeaning says what each Embargo Management state means for the case.
var emMeaning = map[cvdstate.EMState]string{
	cvdstate.EMNone:     "no embargo: nothing binds the participants to keep the vulnerability private",
	cvdstate.EMProposed: "an embargo is proposed; it binds no one until the case owner accepts it",
	cvdstate.EMActive:   "an embargo is in force: participants keep the vulnerability private until it ends",
	cvdstate.EMRevise:   "an embargo is in force and new terms are proposed; the current terms hold until they are accepted",
	cvdstate.EMExited:   "the embargo has ended; this case cannot have another",
}

// pecMeaning says what each embargo consent means for one participant.
var pecMeaning = map[cvdstate.PEC]string{
	cvdstate.PECNoEmbargo: "no embargo concerns this participant",
	cvdstate.PECInvited:   "invited to the embargo, has not answered",
	cvdstate.PECSignatory: "bound by the embargo's current terms",
	cvdstate.PECDeclined:  "declined the embargo",
	cvdstate.PECLapsed:    "was bound, but the terms are being revised",
}

// eventPhrase says, for each case-state event, that it happened and that
// it has not.
var eventPhrase = map[cvdstate.CSEvent][2]string{
	cvdstate.EventV: {"the vendor knows", "the vendor does not know"},
	cvdstate.EventF: {"a fix is ready", "no fix is ready"},
	cvdstate.EventD: {"the fix is deployed", "the fix is not deployed"},
	cvdstate.EventP: {"the public knows", "the public does not know"},
	cvdstate.EventX: {"an exploit is public", "no exploit is public"},
	cvdstate.EventA: {"attacks have been seen", "no attacks have been seen"},
}

// pastPhrase names each case-state event in the past, for the desiderata.
var pastPhrase = map[cvdstate.CSEvent]string{
	cvdstate.EventV: "the vendor learnt of it",
	cvdstate.EventF: "a fix was ready",
	cvdstate.EventD: "the fix was deployed",
	cvdstate.EventP: "the public learnt of it",
	cvdstate.EventX: "an exploit was public",
	cvdstate.EventA: "attacks were seen",
}

// meaning returns the one line that explains a protocol state (an RM or
// EM state, an embargo consent, a vfd or pxa state) or a desideratum; ""
// for anything else.
func meaning(v any) string {
	switch s := v.(type) {
	case cvdstate.RMState:
		return rmMeaning[s]
	case cvdstate.EMState:
		return emMeaning[s]
	case cvdstate.PEC:
		return pecMeaning[s]
	case cvdstate.VFD:
		cs := cvdstate.CS{VFD: s}
		return letterMeaning(cs, cvdstate.EventV, cvdstate.EventF, cvdstate.EventD)
	case cvdstate.PXA:
		cs := cvdstate.CS{PXA: s}
		return letterMeaning(cs, cvdstate.EventP, cvdstate.EventX, cvdstate.EventA)
	case cvdstate.Desideratum:
		return pastPhrase[s.Before] + " before " + pastPhrase[s.After]
	}
	return ""
}

// letterMeaning says, for each event, whether it happened in cs: upper
// case letters are events that happened.
func letterMeaning(cs cvdstate.CS, events ...cvdstate.CSEvent) string {
	parts := make([]string, len(events))
	for i, e := range events {
		if cs.Happened(e) {
			parts[i] = eventPhrase[e][0]
		} else {
			parts[i] = eventPhrase[e][1]
		}
	}
	return strings.Join(parts, ", ")
}
