package cvdstate

import (
	"errors"
	"strings"
	"testing"
)

// TestEmbargoEffectTable checks every (EM state, CS event) pair against the
// cross-model rules written out: the EM state reached, the message and the
// requirement level.
func TestEmbargoEffectTable(t *testing.T) {
	// want[em][event] = "TO MSG LEVEL", or "" for no effect.
	want := map[string]map[string]string{
		"NONE":     {"V": "", "F": "", "D": "", "P": "", "X": "", "A": ""},
		"PROPOSED": {"V": "", "F": "NONE ER SHOULD", "D": "NONE ER SHOULD", "P": "NONE ER MUST", "X": "NONE ER MUST", "A": "NONE ER SHOULD"},
		"ACTIVE":   {"V": "", "F": "", "D": "EXITED ET SHOULD", "P": "EXITED ET MUST", "X": "EXITED ET MUST", "A": "EXITED ET SHOULD"},
		"REVISE":   {"V": "", "F": "", "D": "EXITED ET SHOULD", "P": "EXITED ET MUST", "X": "EXITED ET MUST", "A": "EXITED ET SHOULD"},
		"EXITED":   {"V": "", "F": "", "D": "", "P": "", "X": "", "A": ""},
	}
	for _, em := range EMStates() {
		for _, e := range CSEvents() {
			eff, ok := EmbargoEffect(em, e)
			got := ""
			if ok {
				got = eff.To.String() + " " + eff.Message.String() + " " + eff.Level.String()
				if eff.From != em || eff.Reason == "" {
					t.Errorf("EmbargoEffect(%s, %s) = %+v: wrong From or no reason", em, e, eff)
				}
			}
			if w := want[em.String()][e.String()]; got != w {
				t.Errorf("EmbargoEffect(%s, %s) = %q, want %q", em, e, got, w)
			}
		}
	}
}

func TestStepCrossModel(t *testing.T) {
	accepted := ParticipantState{RM: RMAccepted, PEC: PECSignatory}
	vendor := ParticipantState{RM: RMAccepted, VFD: VFDAware, PEC: PECSignatory}
	tests := []struct {
		name    string
		c       CaseState
		p       ParticipantState
		roles   RoleSet
		ev      Event
		wantC   CaseState
		wantP   ParticipantState
		emit    MessageType
		consent PECEvent
	}{
		{"P during an active embargo terminates it", CaseState{EM: EMActive}, accepted, Reporter, EventP,
			CaseState{PXA: PXAPublic, EM: EMExited}, ParticipantState{RM: RMAccepted}, CP | ET, PECReset},
		{"P during a revision terminates it", CaseState{EM: EMRevise}, accepted, Coordinator, EventP,
			CaseState{PXA: PXAPublic, EM: EMExited}, ParticipantState{RM: RMAccepted}, CP | ET, PECReset},
		{"P rejects a pending proposal", CaseState{EM: EMProposed}, accepted, Reporter, EventP,
			CaseState{PXA: PXAPublic, EM: EMNone}, ParticipantState{RM: RMAccepted}, CP | ER, PECReset},
		{"X makes the public aware and terminates", CaseState{EM: EMActive}, accepted, Observer, EventX,
			CaseState{PXA: PXAPublic | PXAExploit, EM: EMExited}, ParticipantState{RM: RMAccepted}, CP | CX | ET, PECReset},
		{"X after P is only X", CaseState{PXA: PXAPublic, EM: EMExited}, accepted, Observer, EventX,
			CaseState{PXA: PXAPublic | PXAExploit, EM: EMExited}, accepted, CX, 0},
		{"A terminates an active embargo", CaseState{EM: EMActive}, accepted, Reporter, EventA,
			CaseState{PXA: PXAAttacks, EM: EMExited}, ParticipantState{RM: RMAccepted}, CA | ET, PECReset},
		{"A alone does not make the public aware", CaseState{}, accepted, Reporter, EventA,
			CaseState{PXA: PXAAttacks}, accepted, CA, 0},
		{"F rejects a pending proposal", CaseState{EM: EMProposed}, vendor, Vendor, EventF,
			CaseState{EM: EMNone}, ParticipantState{RM: RMAccepted, VFD: VFDFixReady}, CF | ER, PECReset},
		{"F leaves an active embargo alone", CaseState{EM: EMActive}, vendor, Vendor, EventF,
			CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted, VFD: VFDFixReady, PEC: PECSignatory}, CF, 0},
		{"D terminates an active embargo", CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted, VFD: VFDFixReady, PEC: PECSignatory}, Vendor | Deployer, EventD,
			CaseState{EM: EMExited}, ParticipantState{RM: RMAccepted, VFD: VFDDeployed}, CD | ET, PECReset},
		{"a deployer deploys from d: its own d → D", CaseState{}, ParticipantState{RM: RMAccepted}, Deployer, EventD,
			CaseState{}, ParticipantState{RM: RMAccepted, VFD: VFDDeployed}, CD, 0},
		{"a deployer's D terminates an active embargo", CaseState{EM: EMActive}, ParticipantState{RM: RMDeferred, PEC: PECSignatory}, Deployer | Coordinator, EventD,
			CaseState{EM: EMExited}, ParticipantState{RM: RMDeferred, VFD: VFDDeployed}, CD | ET, PECReset},
		{"V by a vendor that has not seen the report receives it", CaseState{}, ParticipantState{}, Vendor, EventV,
			CaseState{}, ParticipantState{RM: RMReceived, VFD: VFDAware}, CV, 0},
		{"proposing from NONE invites the others, not the proposer", CaseState{}, ParticipantState{RM: RMAccepted}, Reporter, EMPropose,
			CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted}, EP, PECInvite},
		{"a counter-proposal invites the others", CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, Vendor, EMPropose,
			CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, EP, PECInvite},
		{"proposing during an embargo is a revision; the proposer's consent does not lapse", CaseState{EM: EMActive}, accepted, Vendor, EMPropose,
			CaseState{EM: EMRevise}, accepted, EV, PECRevise},
		{"a further revision invites the others", CaseState{EM: EMRevise}, accepted, Vendor, EMPropose,
			CaseState{EM: EMRevise}, accepted, EV, PECInvite},
		{"accepting a proposal binds the acceptor", CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, Vendor, EMAccept,
			CaseState{EM: EMActive}, accepted, EA, 0},
		{"accepting a revision", CaseState{EM: EMRevise}, ParticipantState{RM: RMAccepted, PEC: PECLapsed}, Vendor, EMAccept,
			CaseState{EM: EMActive}, accepted, EC, 0},
		{"rejecting a revision keeps the embargo", CaseState{EM: EMRevise}, ParticipantState{RM: RMAccepted, PEC: PECLapsed}, Vendor, EMReject,
			CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted, PEC: PECLapsed}, EJ, 0},
		{"rejecting a proposal is allowed even once public", CaseState{PXA: PXAPublic, EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, Vendor, EMReject,
			CaseState{PXA: PXAPublic, EM: EMNone}, ParticipantState{RM: RMAccepted}, ER, PECReset},
		{"terminating", CaseState{EM: EMActive}, accepted, CaseOwner, EMTerminate,
			CaseState{EM: EMExited}, ParticipantState{RM: RMAccepted}, ET, PECReset},
		{"an RM transition emits its message", CaseState{EM: EMActive}, ParticipantState{RM: RMValid}, Vendor, RMAccept,
			CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted}, RA, 0},
		{"closing does not end the embargo", CaseState{EM: EMActive}, accepted, Vendor, RMClose,
			CaseState{EM: EMActive}, ParticipantState{RM: RMClosed, PEC: PECSignatory}, RC, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Step(tc.c, tc.p, tc.roles, tc.ev)
			if err != nil {
				t.Fatalf("Step: %v", err)
			}
			if out.Case != tc.wantC || out.Participant != tc.wantP || out.Emit != tc.emit || out.Consent != tc.consent {
				t.Errorf("Step = case %s, participant %s, emit %v, consent %v;\nwant case %s, participant %s, emit %v, consent %v",
					out.Case, out.Participant, out.Emit, out.Consent, tc.wantC, tc.wantP, tc.emit, tc.consent)
			}
			if out.Emit&(ER|ET) != 0 && tc.ev.String() != "reject" && tc.ev.String() != "terminate" && len(out.Effects) != 1 {
				t.Errorf("a teardown by a CS event is not explained: %+v", out.Effects)
			}
		})
	}
}

func TestStepRefusals(t *testing.T) {
	tests := []struct {
		name  string
		c     CaseState
		p     ParticipantState
		roles RoleSet
		ev    Event
		want  string
	}{
		{"only a vendor readies a fix", CaseState{}, ParticipantState{RM: RMAccepted, VFD: VFDAware}, Deployer, EventF, "only a vendor can ready a fix (F)"},
		{"only a deployer deploys", CaseState{}, ParticipantState{RM: RMAccepted, VFD: VFDFixReady}, Vendor, EventD, "only a deployer can deploy a fix (D)"},
		{"a reporter has no vendor awareness", CaseState{}, ParticipantState{RM: RMAccepted}, Reporter | Finder, EventV, "only a vendor has a vendor-awareness state"},
		{"a deployer has no vendor awareness", CaseState{}, ParticipantState{RM: RMAccepted}, Deployer, EventV, "only a vendor has a vendor-awareness state"},
		{"a deployer deploys once", CaseState{}, ParticipantState{RM: RMAccepted, VFD: VFDDeployed}, Deployer, EventD, "already happened"},
		{"a deployment needs a prioritized report", CaseState{}, ParticipantState{RM: RMReceived}, Deployer, EventD, "must be accepted or deferred before it deploys a fix"},
		{"a fix needs a prioritized report", CaseState{}, ParticipantState{RM: RMValid, VFD: VFDAware}, Vendor, EventF, "must be accepted or deferred before a fix is ready"},
		{"no embargo once public", CaseState{PXA: PXAPublic}, ParticipantState{RM: RMAccepted}, Vendor, EMPropose, "the case state is Pxa"},
		{"no acceptance once attacked", CaseState{PXA: PXAAttacks, EM: EMProposed}, ParticipantState{RM: RMAccepted}, Vendor, EMAccept, "the case state is pxA"},
		{"closed participants are silent", CaseState{}, ParticipantState{RM: RMClosed}, Reporter, EventP, "closed the report"},
		{"closed participants do not negotiate", CaseState{}, ParticipantState{RM: RMClosed}, Reporter, EMPropose, "closed the report"},
		{"P cannot happen twice", CaseState{PXA: PXAPublic}, ParticipantState{RM: RMAccepted}, Reporter, EventP, "already happened"},
		{"an unaware vendor must learn first", CaseState{PXA: PXAPublic}, ParticipantState{RM: RMAccepted}, Vendor, EventX, "vendor must become aware next"},
		{"an exploit forces P", CaseState{PXA: PXAExploit}, ParticipantState{RM: RMAccepted}, Reporter, EventA, "public must become aware next"},
		{"no termination without an embargo", CaseState{}, ParticipantState{RM: RMAccepted}, Vendor, EMTerminate, "no embargo in force"},
		{"RM close from VALID", CaseState{}, ParticipantState{RM: RMValid}, Vendor, RMClose, "accepted or deferred before it is closed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Step(tc.c, tc.p, tc.roles, tc.ev)
			if err == nil {
				t.Fatalf("Step succeeded with %+v", out)
			}
			if !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want ErrNotAllowed saying %q", err, tc.want)
			}
			if out.Case != tc.c || out.Participant != tc.p || out.Emit != 0 {
				t.Errorf("a refusal changed state: %+v", out)
			}
		})
	}
}

// TestStepEveryPair applies every event to every combination of case state,
// participant RM and VFD state and a vendor-deployer or a reporter, and
// checks that each allowed step keeps the states valid and announces what it
// changed, and each refused one says so.
func TestStepEveryPair(t *testing.T) {
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
	allowed, refused := 0, 0
	for _, roles := range []RoleSet{Vendor | Deployer, Deployer, Reporter} {
		for _, pxa := range PXAs() {
			for _, em := range EMStates() {
				for _, rm := range RMStates() {
					for _, vfd := range VFDs() {
						c := CaseState{PXA: pxa, EM: em}
						p := ParticipantState{RM: rm, VFD: vfd}
						for _, ev := range events {
							out, err := Step(c, p, roles, ev)
							if err != nil {
								refused++
								if !errors.Is(err, ErrNotAllowed) {
									t.Fatalf("Step(%s, %s, %s): %v does not wrap ErrNotAllowed", c, p, ev, err)
								}
								continue
							}
							allowed++
							checkStep(t, c, p, roles, ev, out)
						}
					}
				}
			}
		}
	}
	if allowed == 0 || refused == 0 {
		t.Errorf("allowed %d, refused %d", allowed, refused)
	}
}

// checkStep asserts the invariants of one allowed step.
func checkStep(t *testing.T, c CaseState, p ParticipantState, roles RoleSet, ev Event, out Outcome) {
	t.Helper()
	where := c.String() + " " + p.String() + " " + ev.String()
	if out.Emit == 0 && ev != RMReceive {
		t.Errorf("%s: no message announces the step", where)
	}
	if out.Case.PXA&^c.PXA != 0 && out.Case.PXA&c.PXA != c.PXA {
		t.Errorf("%s: PXA went from %s to %s", where, c.PXA, out.Case.PXA)
	}
	if out.Case.PXA&PXAExploit != 0 && c.PXA&PXAExploit == 0 && out.Case.PXA&PXAPublic == 0 {
		t.Errorf("%s: an exploit became public without public awareness", where)
	}
	if out.Participant.VFD < p.VFD {
		t.Errorf("%s: VFD went back from %s to %s", where, p.VFD, out.Participant.VFD)
	}
	if roles&(Vendor|Deployer) == 0 && out.Participant.VFD != p.VFD {
		t.Errorf("%s: a participant without a fix path changed its VFD", where)
	}
	if _, isCS := ev.(CSEvent); isCS && out.Case.PXA != c.PXA && out.Case.PXA != 0 && (out.Case.EM.InForce() || out.Case.EM == EMProposed) {
		if e := ev.(CSEvent); e == EventP || e == EventX || e == EventA {
			t.Errorf("%s: embargo %s survives %s", where, out.Case.EM, out.Case.PXA)
		}
	}
	if out.Case.EM != c.EM && out.Emit&EMMessages == 0 {
		t.Errorf("%s: EM changed from %s to %s without an EM message", where, c.EM, out.Case.EM)
	}
}

func TestSteps(t *testing.T) {
	// A vendor that has not seen the report, in a fresh case, may receive it,
	// propose an embargo, become aware, or report P, X or A.
	var got []string
	for _, o := range Steps(CaseState{}, ParticipantState{}, Vendor) {
		got = append(got, o.Event.String()+":"+o.Outcome.Emit.String())
	}
	want := "receive: propose:EP V:CV P:CP X:CP|CX A:CA"
	if strings.Join(got, " ") != want {
		t.Errorf("Steps = %q, want %q", strings.Join(got, " "), want)
	}
	if n := len(Steps(CaseState{EM: EMActive}, ParticipantState{RM: RMClosed}, Vendor)); n != 0 {
		t.Errorf("a closed participant has %d steps, want 0", n)
	}
}

func TestStepErrorNamesTheContext(t *testing.T) {
	_, err := Step(CaseState{EM: EMActive}, ParticipantState{RM: RMValid}, Vendor, RMClose)
	want := `step (pxa=pxa em=ACTIVE, rm=VALID vfd=vfd pec=NO_EMBARGO, roles "vendor"): RM transition close is not allowed from VALID: a report must be accepted or deferred before it is closed`
	if err == nil || err.Error() != want {
		t.Errorf("error = %v\nwant %s", err, want)
	}
}

// TestFixPath checks the fix path each kind of participant shows: a
// vendor's four vfd states (with or without deployment), a deployer's own
// d and D, and none for the others.
func TestFixPath(t *testing.T) {
	tests := []struct {
		roles RoleSet
		vfd   VFD
		want  string
	}{
		{Vendor, VFDAware, "Vfd"},
		{Vendor | Deployer, VFDDeployed, "VFD"},
		{Deployer, VFDNone, "d"},
		{Deployer | Coordinator, VFDDeployed, "D"},
		{Reporter | Finder, VFDNone, ""},
		{Coordinator, VFDNone, ""},
	}
	for _, tt := range tests {
		if got := FixPath(tt.roles, tt.vfd); got != tt.want {
			t.Errorf("FixPath(%s, %s) = %q, want %q", tt.roles, tt.vfd, got, tt.want)
		}
	}
}

// TestWithdraw checks a participant's declaration that it will not honour
// the embargo: the embargo is torn down as the protocol's teardown rules
// say (a pending proposal rejected, an embargo in force terminated, both
// SHOULD), with the others' consent reset; the participant's consent ends
// DECLINED, except when the embargo is terminated: entering EXITED resets
// everyone's consent, the withdrawing participant's too (EMB-13-001). With
// no embargo nothing else changes; after the embargo ended there is
// nothing to withdraw from, and the declaration is refused.
func TestWithdraw(t *testing.T) {
	tests := []struct {
		name    string
		c       CaseState
		p       ParticipantState
		wantEM  EMState
		emit    MessageType
		consent PECEvent
		pec     PEC // the participant's consent afterwards
	}{
		{"an embargo in force", CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted, PEC: PECSignatory}, EMExited, ET, PECReset, PECNoEmbargo},
		{"a revision pending", CaseState{EM: EMRevise}, ParticipantState{RM: RMDeferred, PEC: PECLapsed}, EMExited, ET, PECReset, PECNoEmbargo},
		{"a revision pending, invited to it", CaseState{EM: EMRevise}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, EMExited, ET, PECReset, PECNoEmbargo},
		{"a proposal pending", CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted, PEC: PECInvited}, EMNone, ER, PECReset, PECDeclined},
		{"no embargo", CaseState{EM: EMNone}, ParticipantState{RM: RMAccepted}, EMNone, 0, 0, PECDeclined},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := Withdraw(tt.c, tt.p)
			if err != nil {
				t.Fatalf("Withdraw: %v", err)
			}
			if out.Case.EM != tt.wantEM || out.Emit != tt.emit || out.Consent != tt.consent || out.Participant.PEC != tt.pec {
				t.Errorf("Withdraw = em %s emit %s consent %v pec %s; want em %s emit %s consent %v pec %s",
					out.Case.EM, out.Emit, out.Consent, out.Participant.PEC, tt.wantEM, tt.emit, tt.consent, tt.pec)
			}
			if tt.emit != 0 && (len(out.Effects) != 1 || out.Effects[0].Level != Should || !strings.Contains(out.Effects[0].Reason, "will not honour")) {
				t.Errorf("the teardown is not explained: %+v", out.Effects)
			}
		})
	}
	if _, err := Withdraw(CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted, PEC: PECDeclined}); err == nil || !errors.Is(err, ErrNotAllowed) {
		t.Errorf("withdrawing twice: %v, want ErrNotAllowed", err)
	}
	if _, err := Withdraw(CaseState{EM: EMExited, PXA: PXAPublic}, ParticipantState{RM: RMClosed}); err == nil || !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "ended") {
		t.Errorf("withdrawing from an ended embargo: %v, want ErrNotAllowed saying it ended", err)
	}
	// A participant that closed the case takes no further part in its
	// embargo: the sender tables allow ET (and ER) only before RC, so its
	// declaration would end the embargo for everyone after it left.
	if out, err := Withdraw(CaseState{EM: EMActive}, ParticipantState{RM: RMClosed, PEC: PECSignatory}); err == nil || !errors.Is(err, ErrNotAllowed) || !strings.Contains(err.Error(), "closed") {
		t.Errorf("a closed participant withdrawing: em %s, %v; want ErrNotAllowed saying it closed the case", out.Case.EM, err)
	}
}
