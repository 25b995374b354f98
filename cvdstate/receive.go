package cvdstate

import "fmt"

// Receive applies the protocol's receiver rules to a message of type msg
// that arrived at a participant in state self, holding roles, in a case in
// state c. It returns the new states and, in Emit, the replies that are due.
// A message that carries several types (RS|EP) is handled one type at a
// time in canonical order. A message that is unexpected in the current
// state is not an error: its reply is the model's error message (RE, EE,
// CE). Receive returns an error only for bits that are no message type.
//
// A participant whose report is closed ignores every message, as the
// protocol allows (it MAY ignore them), so that closed participants do not
// keep conversations alive.
func Receive(c CaseState, self ParticipantState, roles RoleSet, msg MessageType) (Outcome, error) {
	out := Outcome{Case: c, Participant: self}
	if msg&^AllMessages != 0 {
		return out, fmt.Errorf("receive %s: unknown message type bits %#x", msg, uint32(msg&^AllMessages))
	}
	if self.RM == RMClosed {
		return out, nil
	}
	for _, t := range msg.Types() {
		switch {
		case t&RMMessages != 0:
			receiveRM(&out, roles, t)
		case t&EMMessages != 0:
			receiveEM(&out, t)
		case t&CSMessages != 0:
			receiveCS(&out, t)
		default:
			out.Emit |= generalReply(t)
		}
	}
	return out, nil
}

// receiveRM applies the RM receiver table. Every R* message but RK is
// acknowledged with RK, except that an R* other than RS received before the
// report (in START) is an error answered with RE|GI.
//
// Contradiction: the formal receiver table answers such a message with RE|GI
// only, while the requirement registry adds RK. The formal table is followed:
// acknowledging a message as valid while reporting it as an error says two
// opposite things. RK received in START is answered with nothing, as in the
// formal table, because answering an acknowledgement with an error could make
// two nodes bounce errors forever.
func receiveRM(out *Outcome, roles RoleSet, t MessageType) {
	p := &out.Participant
	switch t {
	case RS:
		if p.RM == RMStart {
			p.RM = RMReceived
		}
		out.Emit |= RK
		if roles.Has(Vendor) {
			if p.VFD == VFDNone {
				p.VFD = VFDAware
			}
			out.Emit |= CV
		}
	case RI, RV, RD, RA, RC:
		if p.RM == RMStart {
			out.Emit |= RE | GI
		} else {
			out.Emit |= RK
		}
	case RE:
		out.Emit |= RK | GI
	case RK:
	}
}

// receiveEM applies the EM receiver table. A proposal, acceptance or
// revision message that arrives when the case state is no longer pxa is
// answered by ending the negotiation (ER) or the embargo (ET). It is not an
// error for an E* message to arrive before the report (RM START).
func receiveEM(out *Outcome, t MessageType) {
	em := out.Case.EM
	secret := out.Case.PXA == PXANone
	next, reply := em, EE
	switch {
	case t == EK:
		reply = 0
	case t == EE:
		reply = EK | GI
	case t == EP && em == EMNone:
		next, reply = pick(secret, EMProposed, EMNone), pick(secret, EK, ER)
	case t == EP && em == EMProposed:
		next, reply = pick(secret, EMProposed, EMNone), pick(secret, EK, ER)
	case t == EA && em == EMProposed:
		next, reply = pick(secret, EMActive, EMNone), pick(secret, EK, ER)
	case t == EV && em == EMActive:
		next, reply = pick(secret, EMRevise, EMExited), pick(secret, EK, ET)
	case t == EV && em == EMRevise:
		next, reply = pick(secret, EMRevise, EMExited), pick(secret, EK, ET)
	case (t == EJ || t == EC) && em == EMRevise:
		next, reply = pick(secret, EMActive, EMExited), pick(secret, EK, ET)
	case t == ER && em == EMProposed:
		next, reply = EMNone, EK
	case t == ET && (em.InForce() || em == EMExited):
		next, reply = EMExited, EK
	}
	out.Case.EM = next
	out.Emit |= reply
	if consent := consentEffect(em, next); consent != 0 {
		out.Consent = consent
		out.Participant.PEC = BulkConsent(out.Participant.PEC, consent)
	}
}

// pick returns a if cond holds and b otherwise.
func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// receiveCS applies the CS receiver table. CV, CF and CD change only the
// receiver's record of the sender, which the node keeps with Step on the
// sender's participant state; here they are acknowledged. CP, CX and CA
// change the case-wide state and, through EmbargoEffect, the embargo, and
// the receiver announces the embargo change it makes (CP during an embargo
// is answered with CK|ET).
//
// Contradiction: the receiver table sets P on receipt of CA from ···p·a,
// while the sender table and the CS model keep pxA as a stable state
// (attacks do not by themselves make the public aware) and the 70 valid
// histories include attacks before public awareness. The CS model is
// followed: CA sets only A.
func receiveCS(out *Outcome, t MessageType) {
	switch t {
	case CV, CF, CD:
		out.Emit |= CK
		return
	case CK:
		return
	case CE:
		out.Emit |= CK | GI
		return
	}
	e, _ := CSEventOf(t)
	out.Emit |= CK
	if (CS{PXA: out.Case.PXA}).Happened(e) {
		return
	}
	switch e {
	case EventP:
		out.Case.PXA |= PXAPublic
	case EventX:
		// A public exploit makes the public aware: X and P together.
		out.Case.PXA |= PXAExploit | PXAPublic
	case EventA:
		out.Case.PXA |= PXAAttacks
	}
	applyEmbargoEffect(out, out.Case.EM, e)
}

// generalReply answers a general message: GI with GK, GE with GI, GK with
// nothing.
func generalReply(t MessageType) MessageType {
	switch t {
	case GI:
		return GK
	case GE:
		return GI
	}
	return 0
}
