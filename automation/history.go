package automation

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// history is what a case's ledger records of its embargo proposals and
// its invitations, in the order it recorded them: what an explanation
// reads once a proposal or an invitation is closed and the case no longer
// holds it, to say who answered it, how and when.
type history struct {
	proposals   []*proposalStep
	invitations []*invitationStep
}

// proposalStep is an embargo proposal (Invite(EmbargoEvent)) and the
// answers the ledger recorded to it.
type proposalStep struct {
	ID      string // the Invite's id, which answers name
	By      string // its proposer; "" when the ledger has only answers to it
	End     time.Time
	Answers []answer
}

// invitationStep is an invitation to the case and its invitee's answers.
type invitationStep struct {
	ID      string // the owner's Invite
	Sent    string // the Invite the Case Actor sent the invitee for it
	Actor   string // the invitee
	By      string
	Answers []answer
}

// answer is a recorded Accept or Reject.
type answer struct {
	By       string
	Accepted bool
	At       time.Time
	// Summary is what the answer said of itself: "automatic: RULE of
	// policy NAME" when a policy's rule sent it.
	Summary string
}

// historyWindow bounds the ledger entries readHistory reads: the latest
// ones, which hold the proposals and invitations an explanation asks about
// (the last one an actor had to answer), so that explaining a case with a
// long ledger costs the window, not the ledger.
const historyWindow = 2000

// readHistory reads the latest historyWindow entries of the ledger of case
// c for its proposals and invitations.
func readHistory(tx *store.ReadTx, c *cases.Case) (*history, error) {
	entries, err := cases.Entries(tx, c.ID, max(c.LedgerLen-historyWindow, 0), historyWindow)
	if err != nil {
		return nil, err
	}
	h := &history{}
	for _, e := range entries {
		if e.Disposition != ledger.Recorded {
			continue
		}
		var p struct {
			Actor   json.RawMessage `json:"actor"`
			Object  json.RawMessage `json:"object"`
			Summary string          `json:"summary"`
		}
		if json.Unmarshal(e.PayloadSnapshot, &p) != nil {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, e.ReceivedAt)
		actor := vocab.RefID(p.Actor)
		switch e.EventType {
		case cases.EventType(vocab.InviteToEmbargoOnCase):
			var ev struct {
				EndTime time.Time `json:"endTime"`
			}
			_ = json.Unmarshal(p.Object, &ev)
			pr := h.proposal(e.LogObjectID)
			pr.By, pr.End = actor, ev.EndTime.UTC()
		case cases.EventType(vocab.AcceptInviteToEmbargoOnCase), cases.EventType(vocab.RejectInviteToEmbargoOnCase):
			pr := h.proposal(vocab.RefID(p.Object))
			pr.Answers = append(pr.Answers, answer{By: actor, At: at, Summary: p.Summary,
				Accepted: e.EventType == cases.EventType(vocab.AcceptInviteToEmbargoOnCase)})
		case cases.EventType(vocab.InviteActorToCase):
			h.invitations = append(h.invitations, &invitationStep{ID: e.LogObjectID, Sent: c.SentInvitationID(e.LogObjectID), Actor: vocab.RefID(p.Object), By: actor})
		case cases.EventType(vocab.AcceptInviteActorToCase), cases.EventType(vocab.RejectInviteActorToCase):
			if inv := h.invitationOf(actor, vocab.RefID(p.Object)); inv != nil {
				inv.Answers = append(inv.Answers, answer{By: actor, At: at, Summary: p.Summary,
					Accepted: e.EventType == cases.EventType(vocab.AcceptInviteActorToCase)})
			}
		}
	}
	return h, nil
}

// proposal returns the proposal with id id, added when the ledger did not
// record it yet (a proposal the case opened with, which its creation
// carries).
func (h *history) proposal(id string) *proposalStep {
	for _, pr := range h.proposals {
		if pr.ID == id {
			return pr
		}
	}
	pr := &proposalStep{ID: id}
	h.proposals = append(h.proposals, pr)
	return pr
}

// invitationOf returns the invitation of actor an answer naming answered
// answers: the one it names, else the actor's last one.
func (h *history) invitationOf(actor, answered string) *invitationStep {
	var last *invitationStep
	for _, inv := range h.invitations {
		if inv.Actor != actor {
			continue
		}
		if answered != "" && (inv.Sent == answered || inv.ID == answered) {
			return inv
		}
		last = inv
	}
	return last
}

// lastBy returns the last of answers by actor.
func lastBy(answers []answer, actor string) (answer, bool) {
	for i := len(answers) - 1; i >= 0; i-- {
		if answers[i].By == actor {
			return answers[i], true
		}
	}
	return answer{}, false
}

// decidedAt returns when decision key was taken, and whether it was.
func decidedAt(tx *store.ReadTx, key string) (time.Time, bool, error) {
	v, err := getState(tx, "done "+key)
	if err != nil || v == nil {
		return time.Time{}, false, err
	}
	if len(v) < 8 {
		return time.Time{}, true, nil
	}
	return time.Unix(int64(binary.BigEndian.Uint64(v[:8])), 0).UTC(), true, nil
}

// when writes a time for an explanation, to the minute.
func when(t time.Time) string {
	if t.IsZero() {
		return "at a time not recorded"
	}
	return "at " + t.UTC().Format("2006-01-02 15:04 UTC")
}

// said describes answer a: who (name, for a local actor), what, when, and
// the rule that sent it when a policy did.
func said(a answer, name func(string) string, accepted, rejected string) string {
	verb := rejected
	if a.Accepted {
		verb = accepted
	}
	s := name(a.By) + " " + verb + " it " + when(a.At)
	if strings.HasPrefix(a.Summary, "automatic: ") {
		s += " (" + a.Summary + ")"
	}
	return s
}
