package rules

import (
	"fmt"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/vocab"
)

// Target is what an action acts on, as the acting actor's node knows it
// when the action is taken.
type Target struct {
	CaseID        string       // "" for a report no case was opened for yet
	ParticipantID string       // the acting actor's participant in the case
	PXA           cvdstate.PXA // the case's world state
	OfferID       string       // the Offer of the report decided on
	Reporter      string       // who sent that Offer
	ProposalID    string       // the Invite(EmbargoEvent) decided on
	InvitationID  string       // the Invite to the case decided on
	SuggestionID  string       // the suggestion decided on
	Now           time.Time
}

// Activity returns the activity that carries out action a, in the form a
// local actor submits to its outbox (the same shapes the command line and
// the dashboard build, from package vocab), or nil for notify and ask,
// which send no protocol message. It refuses an action whose object the
// target lacks, such as accept_embargo with no proposal.
func Activity(a Resolved, t Target) (map[string]any, error) {
	need := func(v, what string) error {
		if v == "" {
			return fmt.Errorf("%s needs %s, and there is none", a.Kind, what)
		}
		return nil
	}
	inCase := func(typ string) (map[string]any, error) {
		if err := need(t.CaseID, "a case"); err != nil {
			return nil, err
		}
		return vocab.Respond(typ, t.CaseID, t.CaseID), nil
	}
	onReport := func(typ string) (map[string]any, error) {
		if err := need(t.OfferID, "a report's offer"); err != nil {
			return nil, err
		}
		act := map[string]any{"type": typ, "object": t.OfferID}
		if t.Reporter != "" {
			act["to"] = []string{t.Reporter}
		}
		return act, nil
	}
	world := func(bit cvdstate.PXA) (map[string]any, error) {
		if err := need(t.CaseID, "a case"); err != nil {
			return nil, err
		}
		if err := need(t.ParticipantID, "the acting actor's participant in the case"); err != nil {
			return nil, err
		}
		return vocab.ReportCaseState(t.CaseID, t.ParticipantID, (t.PXA | bit).String()), nil
	}
	answer := func(typ, id, what string) (map[string]any, error) {
		if err := need(id, what); err != nil {
			return nil, err
		}
		return vocab.Respond(typ, id, t.CaseID), nil
	}
	switch a.Kind {
	case Validate:
		return onReport("Accept")
	case Invalidate:
		return onReport("TentativeReject")
	case Close:
		if t.CaseID == "" {
			return onReport("Reject")
		}
		return inCase("Leave")
	case Engage:
		return inCase("Join")
	case Defer:
		return inCase("Ignore")
	case ProposeEmbargo:
		if err := need(t.CaseID, "a case"); err != nil {
			return nil, err
		}
		now := t.Now.UTC().Truncate(time.Second)
		return vocab.ProposeEmbargo(t.CaseID, now, now.Add(time.Duration(a.Days)*24*time.Hour)), nil
	case AcceptEmbargo:
		return answer("Accept", t.ProposalID, "an embargo proposal")
	case RejectEmbargo:
		act, err := answer("Reject", t.ProposalID, "an embargo proposal")
		if err == nil && a.Reason != "" {
			act["summary"] = a.Reason
		}
		return act, err
	case ReportAttacks:
		return world(cvdstate.PXAAttacks)
	case ReportExploitPublic:
		return world(cvdstate.PXAExploit)
	case ReportPublic:
		return world(cvdstate.PXAPublic)
	case Invite:
		if err := need(t.CaseID, "a case"); err != nil {
			return nil, err
		}
		return vocab.InviteToCase(t.CaseID, a.Actor, a.Roles), nil
	case AcceptInvitation:
		return answer("Accept", t.InvitationID, "an invitation")
	case DeclineInvitation:
		return answer("Reject", t.InvitationID, "an invitation")
	case AcceptSuggestion:
		return answer("Accept", t.SuggestionID, "a suggestion")
	case RejectSuggestion:
		return answer("Reject", t.SuggestionID, "a suggestion")
	case Notify, Ask:
		return nil, nil
	}
	return nil, fmt.Errorf("action %s sends no activity this node knows", a.Kind)
}
