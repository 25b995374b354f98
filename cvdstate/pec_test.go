package cvdstate

import (
	"errors"
	"testing"
)

// pecExpected is the consent model written out from the protocol: the
// allowed "STATE event" pairs and where they lead.
var pecExpected = map[string]string{
	"NO_EMBARGO invite":  "INVITED",
	"DECLINED invite":    "INVITED",
	"LAPSED invite":      "INVITED",
	"NO_EMBARGO accept":  "SIGNATORY",
	"INVITED accept":     "SIGNATORY",
	"LAPSED accept":      "SIGNATORY",
	"NO_EMBARGO decline": "DECLINED",
	"INVITED decline":    "DECLINED",
	"LAPSED decline":     "DECLINED",
	"SIGNATORY revise":   "LAPSED",
	"NO_EMBARGO reset":   "NO_EMBARGO",
	"INVITED reset":      "NO_EMBARGO",
	"SIGNATORY reset":    "NO_EMBARGO",
	"DECLINED reset":     "NO_EMBARGO",
	"LAPSED reset":       "NO_EMBARGO",
}

func TestPECStatesAndEdges(t *testing.T) {
	if n := len(PECs()); n != 5 {
		t.Errorf("PEC has %d states, want 5", n)
	}
	if n := len(PECTransitions()); n != len(pecExpected) {
		t.Errorf("PEC has %d transitions, want %d", n, len(pecExpected))
	}
	for _, p := range PECs() {
		for _, e := range PECEvents() {
			key := p.String() + " " + e.String()
			got, err := p.Apply(e)
			want, ok := pecExpected[key]
			switch {
			case !ok && !errors.Is(err, ErrNotAllowed):
				t.Errorf("%s = %s, %v; want refused", key, got, err)
			case ok && (err != nil || got.String() != want):
				t.Errorf("%s = %s, %v; want %s", key, got, err, want)
			}
		}
	}
	_, err := PECSignatory.Apply(PECInvite)
	if err == nil || err.Error() != "PEC transition invite is not allowed from SIGNATORY: a signatory is already bound by the embargo and cannot be invited again" {
		t.Errorf("SIGNATORY invite error = %v", err)
	}
}

func TestPECSpellings(t *testing.T) {
	for _, p := range PECs() {
		got, err := ParsePEC(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePEC(%q) = %v, %v", p, got, err)
		}
		if p.Adheres() != (p == PECSignatory) {
			t.Errorf("%s.Adheres() = %v", p, p.Adheres())
		}
	}
	if got, err := ParsePEC("no_embargo"); err != nil || got != PECNoEmbargo {
		t.Errorf("ParsePEC(no_embargo) = %v, %v", got, err)
	}
	for _, e := range PECEvents() {
		if got, err := ParsePECEvent(e.String()); err != nil || got != e {
			t.Errorf("ParsePECEvent(%q) = %v, %v", e, got, err)
		}
	}
	var p PEC
	if err := p.UnmarshalText([]byte("SIGNED")); err == nil {
		t.Error("UnmarshalText(SIGNED) succeeded")
	}
}

// TestConsentOfProposal: proposing an embargo (EP, from NONE or as a
// counter-proposal) or a revision (EV) invites every participant who is
// not bound; a revision first lapses the signatories of the terms in
// force, and those stay LAPSED (they may accept directly and their
// answer is due as an invitee's is). The end of a proposal or of the
// embargo resets everyone.
func TestConsentOfProposal(t *testing.T) {
	effects := []struct {
		from, to EMState
		want     PECEvent
	}{
		{EMNone, EMProposed, PECInvite},
		{EMProposed, EMProposed, PECInvite},
		{EMActive, EMRevise, PECRevise},
		{EMRevise, EMRevise, PECInvite},
		{EMProposed, EMActive, 0},
		{EMRevise, EMActive, 0},
		{EMProposed, EMNone, PECReset},
		{EMActive, EMExited, PECReset},
		{EMRevise, EMExited, PECReset},
	}
	for _, tt := range effects {
		if got := consentEffect(tt.from, tt.to); got != tt.want {
			t.Errorf("consentEffect(%s, %s) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
	bulk := map[PECEvent]map[PEC]PEC{
		PECInvite: {PECNoEmbargo: PECInvited, PECInvited: PECInvited, PECSignatory: PECSignatory, PECDeclined: PECInvited, PECLapsed: PECLapsed},
		PECRevise: {PECNoEmbargo: PECInvited, PECInvited: PECInvited, PECSignatory: PECLapsed, PECDeclined: PECInvited, PECLapsed: PECLapsed},
		PECReset:  {PECNoEmbargo: PECNoEmbargo, PECInvited: PECNoEmbargo, PECSignatory: PECNoEmbargo, PECDeclined: PECNoEmbargo, PECLapsed: PECNoEmbargo},
		0:         {PECNoEmbargo: PECNoEmbargo, PECInvited: PECInvited, PECSignatory: PECSignatory, PECDeclined: PECDeclined, PECLapsed: PECLapsed},
	}
	for e, row := range bulk {
		for from, want := range row {
			if got := BulkConsent(from, e); got != want {
				t.Errorf("BulkConsent(%s, %v) = %s, want %s", from, e, got, want)
			}
		}
	}
}

// TestReceiveProposalInvites: a participant that receives a proposal (EP)
// or a revision (EV) is invited unless bound; a signatory's consent
// lapses on a revision.
func TestReceiveProposalInvites(t *testing.T) {
	tests := []struct {
		c    CaseState
		pec  PEC
		msg  MessageType
		want PEC
	}{
		{CaseState{}, PECNoEmbargo, EP, PECInvited},
		{CaseState{EM: EMProposed}, PECDeclined, EP, PECInvited},
		{CaseState{EM: EMActive}, PECSignatory, EV, PECLapsed},
		{CaseState{EM: EMActive}, PECNoEmbargo, EV, PECInvited},
		{CaseState{EM: EMRevise}, PECLapsed, EV, PECLapsed},
	}
	for _, tt := range tests {
		out, err := Receive(tt.c, ParticipantState{RM: RMAccepted, PEC: tt.pec}, Vendor, tt.msg)
		if err != nil || out.Participant.PEC != tt.want {
			t.Errorf("Receive(%s, %s, %s) = %s, %v; want %s", tt.c, tt.pec, tt.msg, out.Participant.PEC, err, tt.want)
		}
	}
}
