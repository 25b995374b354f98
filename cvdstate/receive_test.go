package cvdstate

import (
	"testing"
)

// TestReceiveRM checks every R* message in every RM state against the
// receiver rules: RK for any R* but RK; RE|GI for an R* other than RS
// received in START; RE answered with RK|GI; nothing in CLOSED.
func TestReceiveRM(t *testing.T) {
	// want[message] per receiver state S R I V D A C.
	want := map[MessageType][7]string{
		RS: {"RK", "RK", "RK", "RK", "RK", "RK", ""},
		RI: {"RE|GI", "RK", "RK", "RK", "RK", "RK", ""},
		RV: {"RE|GI", "RK", "RK", "RK", "RK", "RK", ""},
		RD: {"RE|GI", "RK", "RK", "RK", "RK", "RK", ""},
		RA: {"RE|GI", "RK", "RK", "RK", "RK", "RK", ""},
		RC: {"RE|GI", "RK", "RK", "RK", "RK", "RK", ""},
		RK: {"", "", "", "", "", "", ""},
		RE: {"RK|GI", "RK|GI", "RK|GI", "RK|GI", "RK|GI", "RK|GI", ""},
	}
	for msg, replies := range want {
		for i, rm := range RMStates() {
			self := ParticipantState{RM: rm}
			out, err := Receive(CaseState{}, self, Reporter, msg)
			if err != nil {
				t.Fatalf("Receive(%s in %s): %v", msg, rm, err)
			}
			if out.Emit.String() != replies[i] {
				t.Errorf("Receive(%s in %s) replies %q, want %q", msg, rm, out.Emit, replies[i])
			}
			wantRM := rm
			if msg == RS && rm == RMStart {
				wantRM = RMReceived
			}
			if out.Participant.RM != wantRM {
				t.Errorf("Receive(%s in %s) moves RM to %s, want %s", msg, rm, out.Participant.RM, wantRM)
			}
		}
	}
	// A vendor receiving a report becomes aware and says so.
	out, _ := Receive(CaseState{}, ParticipantState{}, Vendor, RS)
	if out.Participant != (ParticipantState{RM: RMReceived, VFD: VFDAware}) || out.Emit != RK|CV {
		t.Errorf("vendor receiving RS = %s, emit %v; want rm=RECEIVED vfd=Vfd, RK|CV", out.Participant, out.Emit)
	}
	out, _ = Receive(CaseState{}, ParticipantState{RM: RMAccepted, VFD: VFDFixReady}, Vendor, RS)
	if out.Participant.VFD != VFDFixReady || out.Emit != RK|CV {
		t.Errorf("aware vendor receiving RS = %s, emit %v", out.Participant, out.Emit)
	}
}

// TestReceiveEM checks every E* message in every EM state, with the case
// still secret (pxa) and not.
func TestReceiveEM(t *testing.T) {
	type result struct{ to, reply string }
	// want[message][em] for a secret case and for a public one; a missing
	// entry means the message is unexpected: no change, reply EE.
	secret := map[MessageType]map[EMState]result{
		EP: {EMNone: {"PROPOSED", "EK"}, EMProposed: {"PROPOSED", "EK"}},
		EA: {EMProposed: {"ACTIVE", "EK"}},
		EV: {EMActive: {"REVISE", "EK"}, EMRevise: {"REVISE", "EK"}},
		EJ: {EMRevise: {"ACTIVE", "EK"}},
		EC: {EMRevise: {"ACTIVE", "EK"}},
		ER: {EMProposed: {"NONE", "EK"}},
		ET: {EMActive: {"EXITED", "EK"}, EMRevise: {"EXITED", "EK"}, EMExited: {"EXITED", "EK"}},
	}
	public := map[MessageType]map[EMState]result{
		EP: {EMNone: {"NONE", "ER"}, EMProposed: {"NONE", "ER"}},
		EA: {EMProposed: {"NONE", "ER"}},
		EV: {EMActive: {"EXITED", "ET"}, EMRevise: {"EXITED", "ET"}},
		EJ: {EMRevise: {"EXITED", "ET"}},
		EC: {EMRevise: {"EXITED", "ET"}},
		ER: {EMProposed: {"NONE", "EK"}},
		ET: {EMActive: {"EXITED", "EK"}, EMRevise: {"EXITED", "EK"}, EMExited: {"EXITED", "EK"}},
	}
	for _, tc := range []struct {
		pxa  PXA
		want map[MessageType]map[EMState]result
	}{{PXANone, secret}, {PXAPublic, public}, {PXAAttacks, public}} {
		for _, msg := range []MessageType{EP, ER, EA, EV, EJ, EC, ET, EK, EE} {
			for _, em := range EMStates() {
				c := CaseState{PXA: tc.pxa, EM: em}
				out, err := Receive(c, ParticipantState{RM: RMAccepted}, Vendor, msg)
				if err != nil {
					t.Fatal(err)
				}
				w, ok := tc.want[msg][em]
				switch {
				case msg == EK:
					w = result{em.String(), ""}
				case msg == EE:
					w = result{em.String(), "EK|GI"}
				case !ok:
					w = result{em.String(), "EE"}
				}
				if out.Case.EM.String() != w.to || out.Emit.String() != w.reply {
					t.Errorf("Receive(%s, em=%s, pxa=%s) = (%s, %q), want (%s, %q)", msg, em, tc.pxa, out.Case.EM, out.Emit, w.to, w.reply)
				}
			}
		}
	}
	// E* messages are not errors before the report arrives.
	if out, _ := Receive(CaseState{}, ParticipantState{}, Vendor, EP); out.Emit != EK || out.Case.EM != EMProposed {
		t.Errorf("EP in START = %s, %v", out.Case, out.Emit)
	}
	// A report that carries an embargo proposal.
	out, _ := Receive(CaseState{}, ParticipantState{}, Vendor, RS|EP)
	if out.Participant.RM != RMReceived || out.Case.EM != EMProposed || out.Emit != RK|EK|CV {
		t.Errorf("RS|EP = %s %s, %v; want RECEIVED, PROPOSED, RK|EK|CV", out.Participant, out.Case, out.Emit)
	}
}

// TestReceiveCS checks CV/CF/CD/CP/CX/CA/CK/CE in every PXA state with an
// embargo in force.
func TestReceiveCS(t *testing.T) {
	for _, pxa := range PXAs() {
		if pxa&PXAExploit != 0 && pxa&PXAPublic == 0 {
			continue // pX never persists in a case
		}
		for _, msg := range []MessageType{CV, CF, CD, CP, CX, CA, CK, CE} {
			em := EMActive
			if pxa != PXANone {
				em = EMExited
			}
			c := CaseState{PXA: pxa, EM: em}
			out, err := Receive(c, ParticipantState{RM: RMAccepted, PEC: PECSignatory}, Observer, msg)
			if err != nil {
				t.Fatal(err)
			}
			wantPXA := pxa
			switch msg {
			case CP:
				wantPXA |= PXAPublic
			case CX:
				wantPXA |= PXAPublic | PXAExploit
			case CA:
				// Attacks alone do not make the public aware.
				wantPXA |= PXAAttacks
			}
			wantEmit := CK
			switch msg {
			case CK:
				wantEmit = 0
			case CE:
				wantEmit = CK | GI
			}
			wantEM := em
			if wantPXA != pxa && em == EMActive {
				wantEM = EMExited
				wantEmit |= ET
			}
			if out.Case.PXA != wantPXA || out.Case.EM != wantEM || out.Emit != wantEmit {
				t.Errorf("Receive(%s in %s) = %s, %v; want pxa=%s em=%s, %v", msg, c, out.Case, out.Emit, wantPXA, wantEM, wantEmit)
			}
		}
	}
	out, _ := Receive(CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, Vendor, CP)
	if out.Case != (CaseState{PXA: PXAPublic, EM: EMNone}) || out.Emit != ER|CK || out.Participant.PEC != PECNoEmbargo || out.Consent != PECReset {
		t.Errorf("CP with a pending proposal = %s, %v, consent %v", out.Case, out.Emit, out.Consent)
	}
}

func TestReceiveGeneralAndClosed(t *testing.T) {
	for msg, want := range map[MessageType]MessageType{GI: GK, GK: 0, GE: GI} {
		if out, _ := Receive(CaseState{}, ParticipantState{RM: RMReceived}, Reporter, msg); out.Emit != want {
			t.Errorf("Receive(%s) replies %v, want %v", msg, out.Emit, want)
		}
	}
	for _, msg := range MessageTypes() {
		c := CaseState{EM: EMActive}
		self := ParticipantState{RM: RMClosed, VFD: VFDAware}
		out, err := Receive(c, self, Vendor, msg)
		if err != nil || out.Emit != 0 || out.Case != c || out.Participant != self {
			t.Errorf("closed participant receiving %s = %+v, %v; want ignored", msg, out, err)
		}
	}
	if _, err := Receive(CaseState{}, ParticipantState{}, Vendor, 1<<31); err == nil {
		t.Error("Receive of an unknown bit succeeded")
	}
}
