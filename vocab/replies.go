package vocab

import (
	"fmt"
	"strings"
)

// The protocol answers every message with its model's acknowledgement (RK,
// EK, CK, GK) or, when the message is refused, its model's error (RE, EE,
// CE, GE). The reference implementation gives a wire form only to RK,
// Read(Offer(VulnerabilityReport)); for the others this package uses the
// forms of the protocol's 2023 ontology, which modelled an acknowledgement
// as a Read of the message, with one change for errors:
//
//   - an acknowledgement is Read(<the message>), inReplyTo the message;
//     which K it is follows from the message's own model (a Read of a Join
//     is RK, of an Invite(EmbargoEvent) EK, of an Add(ParticipantStatus)
//     CK, of an Add(Note) GK). A Read(Offer(VulnerabilityReport)) stays the
//     reference's RK.
//   - an error is Ignore(<the message>), inReplyTo the message, with the
//     reason in summary: the receiver ignored the message (it changed
//     nothing) and says why. The ontology used Reject, but a Reject of an
//     Offer(VulnerabilityReport) is RC and a Reject of an
//     Invite(EmbargoEvent) is ER: a refusal would read as a decision. No
//     Vultron message is an Ignore of an activity, so an error cannot be
//     taken for one, by this node or by the reference.
//
// The message travels inline so that its receiver, which sent it, can
// tell which message is answered without a lookup, but reduced to what
// identifies it: its id, type, actor, addressing of the case and the type
// and id of what it carries (Stub). The vendor's awareness (CV) that the
// receiver of a report owes its reporter rides on the report's RK, as a
// ParticipantStatus in result: one message of types RK|CV.

// Stub returns a copy of an activity reduced to what identifies it and
// its meaning: id, type, actor, target, origin, context, inReplyTo and
// result, and
// its object as an IRI, a stub of the activity it answers, or the inline
// object's id and type only, and its instrument (the embargo an Offer
// proposes, so that an RS|EP keeps both types). Reports and notes are not copied; a status
// keeps its few state letters.
//
// An object given by IRI that r (which may be nil) resolves is written as
// such a stub too, so that the reply says what the message was about, and
// is classified, without a lookup: a Join of a case IRI becomes a Join of
// {id, type: VulnerabilityCase}.
func Stub(a *Activity, r Resolver) *Activity {
	return stubDepth(a, r, 0)
}

func stubDepth(a *Activity, r Resolver, depth int) *Activity {
	out := &Activity{}
	out.ID, out.Type = a.ID, a.Type
	out.Actor = RefTo(a.Actor.ID())
	out.Target, out.Origin, out.Context, out.InReplyTo = stubRef(a.Target), stubRef(a.Origin), stubRef(a.Context), stubRef(a.InReplyTo)
	out.Result = stubRef(a.Result)
	out.Roles = append([]string(nil), a.Roles...)
	out.Instrument = stubRef(a.Instrument)
	obj := a.Object.Object
	if obj == nil && a.Object.IRI != "" && r != nil {
		obj, _ = r.Resolve(a.Object.IRI)
	}
	switch o := obj.(type) {
	case nil:
		out.Object = a.Object
	case *Activity:
		if depth >= maxResolveDepth {
			out.Object = RefTo(o.ID)
		} else {
			out.Object = Inline(stubDepth(o, r, depth+1))
		}
	default:
		out.Object = Inline(stubObject(o))
	}
	return out
}

// stubRef keeps a reference's IRI, or the id and type of an inline object.
func stubRef(r Ref) Ref {
	if r.Object == nil {
		return r
	}
	if a, ok := r.Object.(*Activity); ok {
		return RefTo(a.ID)
	}
	return Inline(stubObject(r.Object))
}

// stubObject returns an object of the same Go type carrying only o's id
// and type, so that it classifies as o does.
func stubObject(o Object) Object {
	base := ObjectBase{ID: o.Common().ID, Type: o.Common().Type}
	switch o.(type) {
	case *VulnerabilityReport:
		return &VulnerabilityReport{ObjectBase: base}
	case *VulnerabilityCase:
		return &VulnerabilityCase{ObjectBase: base}
	case *Actor:
		return &Actor{ObjectBase: base}
	case *EmbargoEvent:
		return &EmbargoEvent{ObjectBase: base}
	case *CaseParticipant:
		return &CaseParticipant{ObjectBase: base}
	case *CaseStatus:
		return &CaseStatus{ObjectBase: base}
	case *ParticipantStatus:
		// What a status says is a few letters; an acknowledgement of it
		// keeps them, so that an RK|CV answered with CK still says CV.
		st := o.(*ParticipantStatus)
		out := &ParticipantStatus{ObjectBase: base, RMState: st.RMState, VFDState: st.VFDState}
		if st.CaseStatus != nil {
			out.CaseStatus = &CaseStatus{ObjectBase: ObjectBase{Type: TypeCaseStatus}, PXAState: st.CaseStatus.PXAState}
		}
		return out
	case *VulnerabilityRecord:
		return &VulnerabilityRecord{ObjectBase: base}
	case *ProductStatus:
		// A product status is valid with its product, vendor and status
		// (its schema's required members), which say what it stated.
		st := o.(*ProductStatus)
		b := base
		b.Name = st.Name
		return &ProductStatus{ObjectBase: b, Vendor: st.Vendor, Status: st.Status}
	case *CaseProposal:
		return &CaseProposal{ObjectBase: base}
	case *CaseParticipantRole:
		return &CaseParticipantRole{ObjectBase: base, Role: o.(*CaseParticipantRole).Role}
	case *CaseLedgerEntry:
		return &CaseLedgerEntry{ObjectBase: base, CaseID: o.(*CaseLedgerEntry).CaseID, LogObjectID: o.(*CaseLedgerEntry).LogObjectID, EventType: o.(*CaseLedgerEntry).EventType}
	}
	return &GenericObject{ObjectBase: base}
}

// Acknowledge returns the acknowledgement (K) by actor of a message it
// received: Read(Stub(answered, res)), inReplyTo the message, to its
// sender, in caseID ("" before a case). The caller gives it an id and a
// publication time.
func Acknowledge(actor string, answered *Activity, to, caseID string, res Resolver) *Activity {
	return reply("Read", actor, answered, to, caseID, res)
}

// Refuse returns the error (E) by actor about a message it refused:
// Ignore(Stub(refused, res)), inReplyTo the message, with reason, one
// sentence, as its summary.
func Refuse(actor string, refused *Activity, to, caseID, reason string, res Resolver) *Activity {
	r := reply("Ignore", actor, refused, to, caseID, res)
	r.Summary = reason
	return r
}

func reply(typ, actor string, answered *Activity, to, caseID string, res Resolver) *Activity {
	r := &Activity{}
	r.Type = typ
	r.Actor = RefTo(actor)
	r.Object = Inline(Stub(answered, res))
	r.InReplyTo = RefTo(answered.ID)
	if caseID != "" {
		r.Context = RefTo(caseID)
	}
	r.To = Refs{Items: []Ref{RefTo(to)}}
	return r
}

// VendorAwareness returns the ParticipantStatus an acknowledgement of a
// report carries in result when its receiver is a vendor that became
// aware of the vulnerability (CV): the receiver's RM and vfd states,
// about the report.
func VendorAwareness(reportID, rm, vfd string) *ParticipantStatus {
	st := &ParticipantStatus{RMState: rm, VFDState: vfd}
	st.Type = TypeParticipantStatus
	st.Context = RefTo(reportID)
	return st
}

// announcesAwareness reports whether a Read's result says its sender, a
// vendor, is aware of the vulnerability (CV): a ParticipantStatus whose
// vfdState has V.
func announcesAwareness(a *Activity) bool {
	st, ok := a.Result.Object.(*ParticipantStatus)
	return ok && strings.HasPrefix(st.VFDState, "V")
}

// IsReply reports whether s is the semantic of an acknowledgement or an
// error: what this node stores and shows but never answers.
func (s Semantic) IsReply() bool {
	switch s {
	case AckReport, AckEmbargo, AckCaseStatus, AckInquiry, ReportError, EmbargoError, CaseStatusError, GeneralError:
		return true
	}
	return false
}

// ackOf returns the acknowledgement of each model m carries (RK, EK, CK,
// GK); acknowledgements and errors are not acknowledged.
func ackOf(m MessageTypes) MessageTypes {
	return replyOf(m, [4]MessageTypes{MsgRK, MsgEK, MsgCK, MsgGK})
}

// errorOf returns the error of each model m carries (RE, EE, CE), GE for a
// general message or one with no formal type, and nothing for a message
// that is only acknowledgements and errors.
func errorOf(m MessageTypes) MessageTypes {
	if m != 0 && m&^(replyTypes) == 0 {
		return 0
	}
	if e := replyOf(m, [4]MessageTypes{MsgRE, MsgEE, MsgCE, 0}); e != 0 {
		return e
	}
	return MsgGE
}

// replyTypes are the acknowledgements and errors.
const replyTypes = MsgRK | MsgEK | MsgCK | MsgGK | MsgRE | MsgEE | MsgCE | MsgGE

// Message types by model, for replyOf.
const (
	rmTypes = MsgRS | MsgRI | MsgRV | MsgRD | MsgRA | MsgRC
	emTypes = MsgEP | MsgER | MsgEA | MsgEV | MsgEJ | MsgEC | MsgET
	csTypes = MsgCV | MsgCF | MsgCD | MsgCP | MsgCX | MsgCA
)

// replyOf returns, for each of the RM, EM, CS and general models m
// carries a message of, the reply per[model].
func replyOf(m MessageTypes, per [4]MessageTypes) MessageTypes {
	var out MessageTypes
	for i, model := range [4]MessageTypes{rmTypes, emTypes, csTypes, MsgGI} {
		if m&model != 0 {
			out |= per[i]
		}
	}
	return out
}

// ReportOf returns the id of the report an activity is about: the report
// an Offer carries, or that of the Offer an answer (RV, RI, RC, or a reply
// to one of those) names, resolving ids through r; "" if none. It follows
// at most four levels of objects.
func ReportOf(a *Activity, r Resolver) string {
	ref := Ref{}
	if a != nil {
		ref = Inline(a)
	}
	for depth := 0; depth < 4 && !ref.IsZero(); depth++ {
		obj := ref.Object
		if obj == nil && ref.IRI != "" && r != nil {
			obj, _ = r.Resolve(ref.IRI)
		}
		switch o := obj.(type) {
		case *VulnerabilityReport:
			return o.ID
		case *Activity:
			ref = o.Object
		default:
			return ""
		}
	}
	return ""
}

// CarryAnswered returns a copy of a, an activity about to be sent, that
// carries what it is about inline: an object given by IRI that r resolves
// becomes its stub (Stub for an activity, else its id and type), so that a
// receiver, or the case's ledger, can tell what a means without the
// sender's store (spec: "payloadSnapshot.object is an inline dict, never
// a bare id"). An answer to an Offer or an Invite (Accept, Reject,
// TentativeReject of one) names it in inReplyTo as well (§6.3); an
// inReplyTo that names something else is an error, and a is not changed.
func CarryAnswered(a *Activity, r Resolver) (*Activity, error) {
	out := *a
	if out.Object.Object == nil && out.Object.IRI != "" && r != nil {
		if obj, ok := r.Resolve(out.Object.IRI); ok {
			if act, isActivity := obj.(*Activity); isActivity {
				out.Object = Inline(Stub(act, r))
			} else {
				out.Object = Inline(stubObject(obj))
			}
		}
	}
	answered, ok := out.Object.Object.(*Activity)
	if !ok || (answered.Type != "Offer" && answered.Type != "Invite") {
		return &out, nil
	}
	switch out.Type {
	case "Accept", "Reject", "TentativeReject":
	default:
		return &out, nil
	}
	switch got := out.InReplyTo.ID(); {
	case got == "":
		out.InReplyTo = RefTo(answered.ID)
	case got != answered.ID:
		return nil, fmt.Errorf("the %s answers %s, but its inReplyTo names %s", out.Type, answered.ID, got)
	}
	return &out, nil
}
