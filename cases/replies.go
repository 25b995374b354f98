package cases

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Replies: the protocol answers each message with its model's
// acknowledgement (K) and a refused one with its model's error (E); the
// wire forms are vocab's (Acknowledge, Refuse).
//
// The Case Actor answers for the case: it acknowledges each activity it
// records, and sends the error of each it refuses, to the sender alone.
// The replicas, which receive the entry that records it, do not answer
// it: a case of N participants costs one reply per message, not N − 1.
// Before a case exists, and for what a Case Actor sends a participant
// directly (an invitation), the local actor that received the message
// answers it.
//
// A reply a local actor receives is stored (the inbox keeps it), listed
// with the case or report it concerns (Replies), and never answered: the
// receiver tables answer an error with K and GI, which this node leaves to
// the people reading it (see cvdstate.AcknowledgementOf). Only the
// vendor's awareness (CV) an RK carries is a message of its own, answered
// with CK.

// caseActorState is the Case Actor's own state when it applies the
// receiver tables: it works the case (ACCEPTED, from the case's creation
// on), as its case manager and coordinator.
var caseActorState = cvdstate.ParticipantState{RM: cvdstate.RMAccepted}

// caseActorRoles are the roles a Case Actor holds in its case.
const caseActorRoles = cvdstate.CaseManager | cvdstate.Coordinator

// received returns the protocol messages an activity of eventType carries
// into case c as it stands before the activity: EP or EV, EA or EC, ER or
// EJ by the embargo's state, and for a status the case-state events it
// raises. Activities of no formal type (an invitation's answer, a
// suggestion, an ownership offer, a Create(Note)) carry none.
func (c *Case) received(eventType string, act *vocab.Activity) cvdstate.MessageType {
	switch eventType {
	case EventType(vocab.ValidateReport):
		return cvdstate.RV
	case EventType(vocab.InvalidateReport):
		return cvdstate.RI
	case EventType(vocab.EngageCase):
		return cvdstate.RA
	case EventType(vocab.DeferCase):
		return cvdstate.RD
	case EventType(vocab.CloseCase):
		return cvdstate.RC
	case EventType(vocab.InviteActorToCase):
		return cvdstate.RS
	case EventType(vocab.AddNoteToCase),
		EventType(vocab.AddProductStatusToCase), EventType(vocab.PublishAdvisory), EventType(vocab.ReviseAdvisory):
		// General information every participant is told of (GI), as
		// vocab classifies it: the Case Actor acknowledges it with GK. A
		// Create(Note) the case records as a note is no GI (the spec's
		// registry gives CREATE_NOTE no message type, nor does vocab), so
		// it gets no K: none would read as the acknowledgement of it.
		return cvdstate.GI
	case EventType(vocab.InviteToEmbargoOnCase):
		return pick(c.EM.InForce(), cvdstate.EV, cvdstate.EP)
	case EventType(vocab.AcceptInviteToEmbargoOnCase):
		return pick(c.EM == cvdstate.EMRevise, cvdstate.EC, cvdstate.EA)
	case EventType(vocab.RejectInviteToEmbargoOnCase):
		return pick(c.EM == cvdstate.EMRevise, cvdstate.EJ, cvdstate.ER)
	case EventType(vocab.RemoveEmbargoEventFromCase):
		return cvdstate.ET
	case EventType(vocab.AddParticipantStatusToParticipant):
		return c.statusMessages(act)
	}
	return 0
}

// pick returns a if cond holds, else b.
func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// statusMessages returns the CS messages a participant's status carries:
// CV, CF, CD for each fix-path letter it raises past the sender's, CP, CX,
// CA for each world-state letter new to the case. A status that raises
// nothing still is a CS message (its error is CE).
func (c *Case) statusMessages(act *vocab.Activity) cvdstate.MessageType {
	st, _ := act.Object.Object.(*vocab.ParticipantStatus)
	var m cvdstate.MessageType
	if st != nil {
		from, vendor := cvdstate.VFDNone, true
		if p := c.Participant(act.Actor.ID()); p != nil {
			from, vendor = p.VFD, p.Roles.Has(cvdstate.Vendor) || !p.Roles.Has(cvdstate.Deployer)
		}
		if to, err := cvdstate.ParseVFD(st.VFDState); err == nil {
			for v := from; v < to; v++ {
				m |= []cvdstate.MessageType{cvdstate.CV, cvdstate.CF, cvdstate.CD}[v]
			}
			if !vendor && to == cvdstate.VFDDeployed && from != to {
				m = cvdstate.CD // a deployer's path is d → D
			}
		}
		if st.CaseStatus != nil {
			if pxa, err := cvdstate.ParsePXA(st.CaseStatus.PXAState); err == nil {
				for _, ev := range []cvdstate.CSEvent{cvdstate.EventP, cvdstate.EventX, cvdstate.EventA} {
					if bit := pxaBit(ev); pxa&bit != 0 && c.PXA&bit == 0 {
						m |= ev.Message()
					}
				}
			}
		}
	}
	if m == 0 {
		m = cvdstate.CV | cvdstate.CF | cvdstate.CD | cvdstate.CP | cvdstate.CX | cvdstate.CA
	}
	return m
}

// answerRecorded queues the Case Actor's acknowledgement of an activity it
// recorded: the K the receiver tables give the messages it carried, in
// the case as it stood before. An activity of no formal type gets none.
func (e *Engine) answerRecorded(tx *store.Tx, c *Case, actorName, sender string, act *vocab.Activity, received cvdstate.MessageType, before cvdstate.CaseState, now time.Time) error {
	out, err := cvdstate.Receive(before, caseActorState, caseActorRoles, received)
	if err != nil {
		return fmt.Errorf("acknowledge %s: %w", act.ID, err)
	}
	if out.Emit&cvdstate.Acknowledgements == 0 {
		return nil
	}
	return e.queueReply(tx, actorName, sender, c.ID, vocab.Acknowledge(c.CaseActor, act, sender, c.ID, NewResolver(&tx.ReadTx)), now)
}

// answerRefused queues the Case Actor's answer to an activity it does not
// record: its model's error (RE, EE, CE, GE) with the reason. The one
// refusal the receiver tables answer with a protocol message of its own
// is a proposal in a case that is no longer secret: the Case Actor rejects
// it (ER), in the reference's form of ER. A published advisory makes the
// case no longer secret even before a participant reports the public
// aware (P): the tables are read with P then.
func (e *Engine) answerRefused(tx *store.Tx, c *Case, actorName, sender string, act *vocab.Activity, received cvdstate.MessageType, before cvdstate.CaseState, refusal error, now time.Time) error {
	reason := problem.Message(refusal)
	// What the refused message names is written as the case knows it
	// only for a sender that may read the case: a stranger learns nothing
	// of it from the error.
	var res vocab.Resolver
	if c.CanRead(sender) {
		res = NewResolver(&tx.ReadTx)
	}
	if received&cvdstate.EP != 0 && problem.Status(refusal) == http.StatusConflict {
		if c.advisoryPublished() {
			before.PXA |= cvdstate.PXAPublic
		}
		if out, err := cvdstate.Receive(before, caseActorState, caseActorRoles, cvdstate.EP); err == nil && out.Emit&cvdstate.ER != 0 {
			r := vocab.Refuse(c.CaseActor, act, sender, c.ID, reason, res)
			r.Type = "Reject" // Reject(Invite(EmbargoEvent)): ER
			return e.queueReply(tx, actorName, sender, c.ID, r, now)
		}
	}
	return e.queueReply(tx, actorName, sender, c.ID, vocab.Refuse(c.CaseActor, act, sender, c.ID, reason, res), now)
}

// queueReply gives a reply from local actor actorName an id and a time
// and queues its delivery to one recipient, in the lane of key (a case or
// a report), so that the replies about one case reach a peer in order.
func (e *Engine) queueReply(tx *store.Tx, actorName, to, key string, r *vocab.Activity, now time.Time) error {
	r.ID = e.cfg.NewID("activities")
	r.Published = now.Format(time.RFC3339)
	body, err := vocab.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode the reply to %s: %w", r.InReplyTo.ID(), err)
	}
	return tx.EnqueueOutbound(store.Outbound{ID: r.ID, Actor: actorName, Body: body, CreatedAt: now,
		Semantic:   string(vocab.Classify(r, NewResolver(&tx.ReadTx)).Semantic),
		Deliveries: []store.DeliveryTarget{{Recipient: to, OrderingKey: key}}})
}

// ReplyRecord is an acknowledgement or an error a local actor received,
// as the case or report it concerns lists it.
type ReplyRecord struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	From     string    `json:"from"`
	To       string    `json:"to"` // the local actor's name
	Semantic string    `json:"semantic"`
	Messages string    `json:"messages"` // RK, EE, RK|CV ...
	// Answers is the id of the activity the reply answers, and
	// AnswersType that activity's type.
	Answers     string `json:"answers"`
	AnswersType string `json:"answersType,omitempty"`
	// AnswersSemantic and AnswersMessages are what the answered activity
	// meant (VALIDATE_REPORT, RV), for telling the reply in words; empty
	// in records kept before they were.
	AnswersSemantic string `json:"answersSemantic,omitempty"`
	AnswersMessages string `json:"answersMessages,omitempty"`
	// Reason is an error's reason.
	Reason string `json:"reason,omitempty"`
}

// bucketReplies is the sub-bucket of a case's or a report's bucket that
// lists the replies its local actors received, in order of arrival.
const bucketReplies = "replies"

// recordReply lists a reply under the case or report bucket key.
func recordReply(tx *store.Tx, key string, r ReplyRecord) error {
	b, err := tx.Case(key)
	if err != nil {
		return err
	}
	replies, err := b.Bucket(bucketReplies)
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reply %s: %w", r.ID, err)
	}
	_, err = replies.Append(v)
	return err
}

// Replies returns the newest replies (at most limit) the local actors
// received about a case or a report (key: the case id, or reportBucket of
// the report), newest first.
func Replies(tx *store.ReadTx, key string, limit int) ([]ReplyRecord, error) {
	b, err := tx.Case(key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	replies, err := b.Bucket(bucketReplies)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	from := uint64(1)
	if n := replies.Sequence(); n > uint64(limit) {
		from = n - uint64(limit) + 1
	}
	var out []ReplyRecord
	err = replies.Range(store.SeqKey(from), func(_, v []byte) error {
		var r ReplyRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode a reply of %s: %w", key, err)
		}
		out = append(out, r)
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// ReportReplies returns the newest replies about a report (see Replies).
func ReportReplies(tx *store.ReadTx, reportID string, limit int) ([]ReplyRecord, error) {
	return Replies(tx, reportBucket(reportID), limit)
}

// answeredBy returns the activity a reply answers, if local actor name
// sent it: the one named by inReplyTo, or else its object (a Read of an
// Offer that names no inReplyTo).
func answeredBy(tx *store.ReadTx, reply *vocab.Activity, name string) (string, bool, error) {
	for _, id := range []string{reply.InReplyTo.ID(), reply.Object.ID()} {
		sent, err := sentBy(tx, id, name)
		if err != nil {
			return "", false, fmt.Errorf("read the activity %s a reply answers: %w", id, err)
		}
		if sent {
			return id, true, nil
		}
	}
	return "", false, nil
}

// receiveReply stores an acknowledgement or an error local actor to
// received in answer to an activity it sent, lists it with the case or
// report it concerns, and answers the one message a reply may carry
// besides: the vendor's awareness (CV), with CK. A reply that answers
// nothing to sent is refused (422): it cannot be filed anywhere.
func (e *Engine) receiveReply(tx *store.Tx, to LocalActor, sender string, m Message, now time.Time) ([]Reply, error) {
	a := m.Activity
	answered, ok, err := answeredBy(&tx.ReadTx, a, to.Name)
	if err != nil {
		return nil, err
	}
	reportID := ""
	if !ok && m.Class.Semantic == vocab.AckReport {
		// The reference's own Read(VulnerabilityReport) names no activity:
		// it answers a report this actor sent or received.
		if _, rep, err := answeredOffer(a, m.Resolver); err == nil {
			if _, known, err := readReport(&tx.ReadTx, rep.ID, to.Name); err != nil {
				return nil, err
			} else if known {
				answered, reportID, ok = rep.ID, rep.ID, true
			}
		}
	}
	if !ok {
		return nil, problem.Unprocessable("%s answers %s, which %s did not send", a.Type, firstNonEmpty(a.InReplyTo.ID(), a.Object.ID()), to.Name)
	}
	rec := ReplyRecord{ID: a.ID, At: now, From: sender, To: to.Name, Semantic: string(m.Class.Semantic),
		Messages: m.Class.Messages.String(), Answers: answered}
	if a.Type == "Ignore" || a.Type == "Reject" {
		rec.Reason = a.Summary
		if rec.Reason == "" {
			rec.Reason = a.Content
		}
	}
	switch m.Class.Semantic {
	case vocab.Unknown, vocab.UnknownUnresolvableObject, vocab.RejectCaseLedgerEntry:
		// A Case Actor from before typed errors refused with a Reject.
		rec.Semantic, rec.Messages = string(vocab.GeneralError), "GE"
	}
	var inner *vocab.Activity
	if stored, err := tx.Activity(answered); err == nil {
		if doc, err := vocab.Parse(stored.Body); err == nil {
			inner = doc.Activity()
		}
	}
	if inner != nil {
		rec.AnswersType = inner.Type
		// Classified from the stored activity alone, which carries what
		// it answers or acts on inline (vocab.CarryAnswered): no read
		// more in the reply's write.
		if cls := vocab.Classify(inner, nil); cls.Semantic != vocab.Unknown && cls.Semantic != vocab.UnknownUnresolvableObject {
			rec.AnswersSemantic, rec.AnswersMessages = string(cls.Semantic), cls.Messages.String()
		}
	}
	key := e.replyKey(&tx.ReadTx, a, inner, reportID, m.Resolver)
	if key == "" {
		return nil, problem.Unprocessable("%s answers %s, which concerns no case or report of %s", a.Type, answered, to.Name)
	}
	if err := recordReply(tx, key, rec); err != nil {
		return nil, err
	}
	if rec.Reason != "" || rec.Semantic == string(vocab.GeneralError) || strings.HasSuffix(rec.Semantic, "_ERROR") {
		// A refusal of what this actor sent: indexed under the refused
		// activity, so that the API answers "was it recorded?" at once
		// (RefusalOf, lookup.go).
		if err := recordRefusal(tx, answered, Refusal{Reject: a.ID, By: sender, Reason: rec.Reason}); err != nil {
			return nil, err
		}
	}
	if m.Class.Semantic == vocab.AckReport && inner != nil && inner.Type == "Offer" {
		// The RK of a report this actor offered: its receiver has it.
		if id := vocab.ReportOf(inner, m.Resolver); id != "" {
			if r, found, err := readReport(&tx.ReadTx, id, to.Name); err != nil {
				return nil, err
			} else if found && r.Role == Reporter {
				if peer, isPeer := r.Peers[sender]; isPeer && peer == cvdstate.RMStart {
					// The acknowledgement says the receiver has the
					// report: its RM is RECEIVED, as on its own node.
					r.Peers[sender] = cvdstate.RMReceived
					r.UpdatedAt = now
					if err := writeReport(tx, r); err != nil {
						return nil, err
					}
				}
				if err := reportEvent(tx, r, EventReportReceived, sender, "", now); err != nil {
					return nil, err
				}
			}
		}
	}
	if m.Class.Messages&vocab.MsgCV == 0 {
		return nil, nil
	}
	// The vendor is aware: the reporter's model of it follows, and the CV
	// is acknowledged (CK).
	if reportID == "" {
		reportID = vocab.ReportOf(inner, m.Resolver)
	}
	if reportID != "" {
		if r, found, err := readReport(&tx.ReadTx, reportID, to.Name); err != nil {
			return nil, err
		} else if found {
			if r.PeerVFD == nil {
				r.PeerVFD = map[string]cvdstate.VFD{}
			}
			r.PeerVFD[sender] = max(r.PeerVFD[sender], cvdstate.VFDAware)
			r.UpdatedAt = now
			if err := writeReport(tx, r); err != nil {
				return nil, err
			}
		}
	}
	caseID := ""
	if c, err := loadCase(&tx.ReadTx, key); err == nil && c != nil {
		caseID = c.ID
	}
	return []Reply{{Activity: vocab.Acknowledge(to.ID, a, sender, caseID, m.Resolver), To: sender, OrderingKey: key}}, nil
}

// replyKey returns the bucket a reply is listed under: the case it names
// (its context) or the case or report of the activity it answers.
func (e *Engine) replyKey(tx *store.ReadTx, reply, answered *vocab.Activity, reportID string, r vocab.Resolver) string {
	if reportID != "" {
		return reportBucket(reportID)
	}
	for _, a := range []*vocab.Activity{reply, answered} {
		if a == nil {
			continue
		}
		if c, err := loadCase(tx, e.caseOf(tx, a)); err == nil && c != nil {
			return c.ID
		}
	}
	if id := vocab.ReportOf(answered, r); id != "" {
		return reportBucket(id)
	}
	// A case this node does not hold yet: the reply to an invitee's
	// acknowledgement of its invitation arrives before the case does. It
	// is listed under the case's id, where the case's page finds it.
	for _, a := range []*vocab.Activity{reply, answered} {
		if a != nil && strings.HasPrefix(a.Context.ID(), "http") {
			return a.Context.ID()
		}
	}
	return ""
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
