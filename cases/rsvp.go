package cases

import (
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// An embargo proposal asks the participants it invites to answer by a
// deadline (RSVP), the activity-level endTime of its Invite, distinct from
// the endTime of the EmbargoEvent it carries, which is the embargo's end
// (spec §2.7). Past the deadline, a participant that has not answered
// counts as having declined (the pocket veto). Nothing stores that: the
// consent a participant has at a given time is computed from the case and
// the time (ConsentAt), and the Case Actor refuses an Accept that comes
// too late (CheckRSVP), so no timer runs and every replica computes the
// same.
const (
	// DefaultRSVPWindow is how long the invitees of a proposal have to
	// answer when its Invite names no deadline.
	DefaultRSVPWindow = 7 * 24 * time.Hour
	// MinRSVPWindow is the least time they are given: a deadline sooner
	// after the proposal's publication is moved to it, not refused.
	MinRSVPWindow = 72 * time.Hour
)

// AnswerBy returns the RSVP deadline of an embargo proposal: its Invite's
// endTime, at least MinRSVPWindow after its publication, or
// DefaultRSVPWindow after it when the Invite names none (as nodes before
// the deadline was written, and other implementations, send it). The
// publication is the Invite's published time, else at (the time the case
// recorded it). An endTime that is no date-time with a zone counts as
// none: the Case Actor recorded the Invite, and every replica must read
// the same deadline from it.
func AnswerBy(inv *vocab.Activity, at time.Time) time.Time {
	pub := parseTime(inv.Published, at)
	by, err := time.Parse(time.RFC3339Nano, inv.EndTime)
	if err != nil {
		return pub.Add(DefaultRSVPWindow)
	}
	return later(by.UTC(), pub.Add(MinRSVPWindow))
}

// StampRSVP writes the RSVP deadline into an embargo proposal a local
// actor sends, published now: DefaultRSVPWindow from now when the client
// named none, and MinRSVPWindow from now when it named a sooner one. A
// deadline the client named that is no date-time with a zone is refused
// (422), naming the field: it cannot be read as one instant.
func StampRSVP(inv *vocab.Activity, now time.Time) error {
	if inv.EndTime == "" {
		inv.EndTime = now.UTC().Add(DefaultRSVPWindow).Format(time.RFC3339)
		return nil
	}
	by, err := time.Parse(time.RFC3339Nano, inv.EndTime)
	if err != nil {
		return problem.Unprocessable("the invitation's endTime (the date by which the invitees are to answer the embargo proposal) is %q, which is no date and time with a zone, such as 2026-01-31T12:00:00Z", inv.EndTime)
	}
	if floor := now.UTC().Add(MinRSVPWindow); by.Before(floor) {
		inv.EndTime = floor.Format(time.RFC3339)
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// RSVPDeadline returns when participant p is to answer the open embargo
// proposals it was invited to, zero when it is asked nothing: it is not
// INVITED or LAPSED, no proposal but its own is open, or the case is
// closed (its Case Actor takes no answer any more). With several open
// proposals (a counter-proposal, a further revision), the invitation
// stands until the last of their deadlines.
func (c *Case) RSVPDeadline(p *Participant) time.Time {
	if p == nil || c.Closed() || (p.PEC != cvdstate.PECInvited && p.PEC != cvdstate.PECLapsed) {
		return time.Time{}
	}
	var by time.Time
	for _, pr := range c.Proposals {
		if pr.Terms.Proposer != p.Actor {
			by = later(pr.RSVPBy, by)
		}
	}
	return by
}

// ConsentAt returns participant p's embargo consent at time now: its
// recorded consent, but DECLINED for a participant INVITED or LAPSED whose
// RSVP deadline has passed. It is what every view of the case shows.
func (c *Case) ConsentAt(p *Participant, now time.Time) cvdstate.PEC {
	if by := c.RSVPDeadline(p); !by.IsZero() && now.After(by) {
		return cvdstate.PECDeclined
	}
	return p.PEC
}

// CheckRSVP is the Case Actor's refusal (409) of an answer that comes too
// late: an Accept of an embargo proposal, at time at, past the proposal's
// RSVP deadline, by anyone but its proposer. Apply does not check it:
// replicas apply what the Case Actor recorded, a Case Actor that predates
// the deadline included.
func (c *Case) CheckRSVP(eventType string, act *vocab.Activity, at time.Time) error {
	if eventType != EventType(vocab.AcceptInviteToEmbargoOnCase) {
		return nil
	}
	i, ok := c.proposal(act.Object.ID())
	if !ok {
		return nil // Apply says why
	}
	pr := c.Proposals[i]
	if pr.Terms.Proposer == act.Actor.ID() || pr.RSVPBy.IsZero() || !at.After(pr.RSVPBy) {
		return nil
	}
	return problem.Conflict("the embargo proposal %s of case %s was to be answered by %s (its RSVP deadline); %s did not answer by then, so it counts as having declined: ask for the terms to be proposed again",
		pr.InviteID, c.ID, pr.RSVPBy.Format(time.RFC3339), act.Actor.ID())
}
