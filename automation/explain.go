package automation

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
)

// ErrNoPolicy is returned by Explain when the node has no policy.
var ErrNoPolicy = errors.New("this node has no policy (serve --policy FILE)")

// ErrNoCase is returned by Explain for a case the node does not hold.
var ErrNoCase = errors.New("no such case on this node")

// Explain says which rules would fire now for case caseID, and why, for
// each of the node's actors that work on it and each decision point the
// policy has rules for. Nothing is decided or sent. Of an embargo
// proposal or an invitation the case no longer holds open for an actor it
// says what became of it (closedPoint), read from the policy's decision
// record and the latest historyWindow entries of the case's ledger, read
// once and only when such a point needs them.
func (e *Engine) Explain(ctx context.Context, caseID string) ([]api.PolicyPoint, error) {
	p := e.Policy()
	if p == nil {
		return nil, ErrNoPolicy
	}
	now := e.cfg.Now()
	var out []api.PolicyPoint
	err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, caseID)
		if err != nil {
			return err
		}
		if c == nil || c.ID == "" {
			return ErrNoCase
		}
		signals, err := intel.OfferedFor(tx, c.ID)
		if err != nil {
			return err
		}
		locals := e.localParticipants(c)
		// The case's ledger is read once, for the first closed proposal
		// or invitation an explanation needs it for.
		var h *history
		hist := func() (*history, error) {
			if h == nil {
				var err error
				if h, err = readHistory(tx, c); err != nil {
					return nil, err
				}
			}
			return h, nil
		}
		open := map[string]point{}
		for _, pt := range e.casePoints(c, locals) {
			open[string(pt.Point)+" "+pt.Actor.Name] = pt
		}
		// A signal the case records already is no longer open; it is
		// explained with its own values, and said decided when it was.
		past := map[string]point{}
		for _, l := range locals {
			for _, s := range signals {
				name := intelPoint(s.Signal.Kind)
				pt := point{Point: name, Key: string(name) + " " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID,
					Env: rules.Env{Intel: rules.Intel{Kind: string(s.Signal.Kind), CVE: s.MatchedID, Source: s.Signal.Source, Detail: s.Signal.Detail}}}
				if c.PXA&s.Signal.Kind.Bit() == 0 {
					open[string(name)+" "+l.Name] = pt
				} else {
					past[string(name)+" "+l.Name] = pt
				}
			}
			if c.EM.InForce() && c.Embargo != nil && !now.Before(c.Embargo.End) {
				open[string(rules.EmbargoEnded)+" "+l.Name] = point{Point: rules.EmbargoEnded, Key: "embargo_ended " + c.ID + " " + c.Embargo.End.UTC().String() + " " + l.Name, Actor: l, CaseID: c.ID}
			}
			for _, pointName := range rules.Points() {
				if !p.Uses(pointName) {
					continue
				}
				pt, isOpen := open[string(pointName)+" "+l.Name]
				var nothing string
				var closed bool // decided, with its subject closed
				if !isOpen {
					var was bool
					if pt, was = past[string(pointName)+" "+l.Name]; !was {
						if pt, nothing, closed, err = closedPoint(tx, c, pointName, l, now, hist); err != nil {
							return err
						}
					}
				}
				env := pt.Env
				env.Point, env.Actor, env.Now, env.Vars = string(pointName), l.ID, now, p.Vars
				env.Case = CaseEnv(c, l.ID, now)
				if !env.Proposal.End.IsZero() {
					env.Proposal.Days = env.Proposal.End.Sub(now).Hours() / 24
				}
				ds := p.Decide(env)
				if len(ds) == 0 {
					continue
				}
				x := api.PolicyPoint{Actor: l.ID, Point: string(pointName), Open: isOpen, Decided: closed}
				if pt.Key != "" {
					if x.Decided, err = decided(tx, pt.Key); err != nil {
						return err
					}
				}
				for _, d := range ds {
					rv := api.PolicyRuleView{Rule: d.Rule.Name, Line: d.Rule.Line, Fires: d.Fires, Why: d.Why}
					for _, a := range d.Actions {
						rv.Actions = append(rv.Actions, a.String())
					}
					if nothing != "" {
						rv.Fires, rv.Why = false, nothing
					}
					if !p.ActsFor(l.Name) {
						rv.Fires, rv.Why = false, "the policy is off for "+l.Name+"; "+rv.Why
					}
					x.Rules = append(x.Rules, rv)
				}
				out = append(out, x)
			}
		}
		return nil
	})
	return out, err
}

// closedPoint describes a decision point the case does not hold open for
// actor l now with what the case says of it, so that an explanation reads
// real values: for report_received the report l received (its title and
// text as the node keeps them, and the key of that decision) and who sent
// it, the open proposal for embargo_proposed (the actor's own,
// which the others still have to answer). For a point whose subject the
// case does not hold (no report received, no proposal open, no invitation
// or suggestion waiting, no signal listed) it also returns the sentence
// that says so, which explains every rule of the point instead of its
// condition read with empty values.
//
// An embargo proposal or an invitation that closed (accepted, rejected,
// withdrawn) is no longer in the case, nor is a proposal l may no longer
// answer (its deadline for answers passed, which declines it) open for
// l; the decision is keyed by its id. For those the sentence says what
// became of the last one l had to answer, from the case's ledger (hist)
// and the policy's decision record: who answered it, how and when, and
// the rule that answered when a policy did. closedPoint then reports it
// decided when l answered it, the policy decided it, or its deadline
// declined it, rather than evaluating rules against it.
func closedPoint(tx *store.ReadTx, c *cases.Case, name rules.Point, l Local, now time.Time, hist func() (*history, error)) (point, string, bool, error) {
	pt := point{Point: name, Actor: l, CaseID: c.ID}
	switch name {
	case rules.InvitationReceived:
		h, err := hist()
		if err != nil {
			return pt, "", false, err
		}
		var inv *invitationStep
		for _, i := range h.invitations {
			if i.Actor == l.ID {
				inv = i
			}
		}
		if inv == nil {
			return pt, "no invitation to the case waits for " + l.Name + "'s answer", false, nil
		}
		why, decided, err := invitationOutcome(tx, c, inv, l)
		return pt, why, decided, err
	case rules.SuggestionReceived:
		return pt, "no suggestion to the case waits for an answer", false, nil
	case intelPoint(intel.Attacks):
		return pt, "no intelligence feed has listed attacks on the case's vulnerability", false, nil
	case intelPoint(intel.ExploitPublic):
		return pt, "no intelligence feed has listed a public exploit of the case's vulnerability", false, nil
	case intelPoint(intel.Public):
		return pt, "no intelligence feed has listed the case's vulnerability as public", false, nil
	case rules.ReportReceived:
		for _, p := range c.Participants {
			if p.Roles.Has(cvdstate.Reporter) {
				pt.Env.Sender = p.Actor
				break
			}
		}
		var rec cases.ReportRecord
		for _, r := range c.Reports {
			if r, ok, err := cases.Report(tx, r, l.Name); err == nil && ok && r.Role == cases.Receiver {
				rec = r
				break
			}
		}
		if rec.ReportID == "" {
			// It submitted the report, or joined the case by invitation.
			return pt, l.Name + " received none of the case's reports", false, nil
		}
		if rec.Reporter != "" {
			pt.Env.Sender = rec.Reporter // whose Offer it received first
		}
		pt.Env.Report = rules.Report{ID: rec.ReportID, Name: rec.Name, Reporter: pt.Env.Sender}
		if d := cases.DetailOf(tx, rec); d.Report != nil {
			if pt.Env.Report.Name == "" {
				pt.Env.Report.Name = d.Report.Name
			}
			pt.Env.Report.Content = d.Report.Content
		}
		pt.Key = "report_received " + rec.ReportID + " " + l.Name
	case rules.EmbargoProposed:
		for _, pr := range c.Proposals {
			if pr.Terms.Proposer != l.ID && !pr.RSVPBy.IsZero() && now.After(pr.RSVPBy) {
				// Too late for l to answer: its deadline declined it.
				h, err := hist()
				if err != nil {
					return pt, "", false, err
				}
				step := h.proposal(pr.InviteID)
				step.By, step.End = pr.Terms.Proposer, pr.Terms.End
				why, _, err := proposalOutcome(tx, c, step, l, pr.RSVPBy)
				return pt, why, true, err
			}
		}
		if len(c.Proposals) > 0 {
			pr := c.Proposals[0]
			pt.Env.Sender = pr.Terms.Proposer
			pt.Env.Proposal = rules.Proposal{ID: pr.InviteID, End: pr.Terms.End, Proposer: pr.Terms.Proposer, Revision: c.EM == cvdstate.EMRevise}
			return pt, "", false, nil
		}
		h, err := hist()
		if err != nil {
			return pt, "", false, err
		}
		var last *proposalStep
		for _, pr := range h.proposals {
			if pr.By != l.ID || l.ID == c.Owner {
				last = pr // l's to answer: another's, or the owner's own
			}
		}
		if last == nil {
			return pt, "no embargo proposal is open in the case", false, nil
		}
		why, decided, err := proposalOutcome(tx, c, last, l, time.Time{})
		return pt, why, decided, err
	}
	return pt, "", false, nil
}

// proposalOutcome says what became of embargo proposal pr, which the case
// no longer holds open for l: who answered it and when, whether the
// policy decided it, and who closed it. lapsed is when its deadline for
// answers passed, for a proposal still open that l may no longer answer;
// zero for one the case closed. decided reports that l answered it or the
// policy decided it.
func proposalOutcome(tx *store.ReadTx, c *cases.Case, pr *proposalStep, l Local, lapsed time.Time) (string, bool, error) {
	name := func(id string) string {
		if id == l.ID {
			return l.Name
		}
		return id
	}
	s := "the embargo proposal " + pr.ID
	if pr.By != "" {
		s += " by " + name(pr.By)
	}
	if !pr.End.IsZero() {
		s += " (to end " + pr.End.UTC().Format("2006-01-02 15:04 UTC") + ")"
	}
	var parts []string
	mine, answered := lastBy(pr.Answers, l.ID)
	if answered {
		rejected := "rejected"
		if pr.By == l.ID {
			rejected = "withdrew"
		}
		parts = append(parts, said(mine, name, "accepted", rejected))
	}
	at, recorded, err := decidedAt(tx, "embargo_proposed "+c.ID+" "+pr.ID+" "+l.Name)
	if err != nil {
		return "", false, err
	}
	parts = append(parts, policyPart(at, recorded, answered, mine)...)
	if !lapsed.IsZero() {
		s += " is open, but its deadline for answers passed " + when(lapsed)
		if !answered {
			parts = append(parts, l.Name+" did not answer it by then, which declines it")
		}
		return s + ": " + strings.Join(parts, "; "), true, nil
	}
	// Who closed it: the owner's answer, or its proposer's withdrawal.
	var closer *answer
	for i := range pr.Answers {
		if a := pr.Answers[i]; a.By == c.Owner || (a.By == pr.By && !a.Accepted) {
			closer = &pr.Answers[i]
		}
	}
	switch {
	case closer != nil && closer.By != l.ID && closer.By == pr.By && !closer.Accepted:
		parts = append(parts, "its proposer "+said(*closer, name, "accepted", "withdrew"))
	case closer != nil && closer.By != l.ID:
		parts = append(parts, "the owner "+said(*closer, name, "accepted", "rejected"))
	case closer == nil:
		parts = append(parts, "it is no longer open")
	}
	switch {
	case !answered && recorded:
		parts = append(parts, "the case records no answer of "+l.Name+"'s to it")
	case !answered:
		parts = append(parts, l.Name+" did not answer it")
	}
	return s + " is closed: " + strings.Join(parts, "; "), answered || recorded, nil
}

// invitationOutcome says what became of invitation inv of l to case c,
// which the case no longer holds: how and when l answered it, and
// whether the policy decided it. decided reports that l answered it or
// the policy decided it.
func invitationOutcome(tx *store.ReadTx, c *cases.Case, inv *invitationStep, l Local) (string, bool, error) {
	name := func(id string) string {
		if id == l.ID {
			return l.Name
		}
		return id
	}
	// The decision is keyed by the invitation l received: the one its
	// Case Actor sent for the owner's.
	id := inv.Sent
	at, recorded, err := decidedAt(tx, "invitation_received "+id+" "+l.Name)
	if err != nil {
		return "", false, err
	}
	if !recorded && inv.ID != inv.Sent {
		if at, recorded, err = decidedAt(tx, "invitation_received "+inv.ID+" "+l.Name); err != nil {
			return "", false, err
		}
		if recorded {
			id = inv.ID
		}
	}
	s := "the invitation " + id + " by " + name(inv.By) + " is closed: "
	var parts []string
	mine, answered := lastBy(inv.Answers, l.ID)
	if answered {
		parts = append(parts, said(mine, name, "accepted", "declined"))
	}
	parts = append(parts, policyPart(at, recorded, answered, mine)...)
	if !answered {
		parts = append(parts, "the case records no answer of "+l.Name+"'s to it")
	}
	return s + strings.Join(parts, "; "), answered || recorded, nil
}

// policyPart says that the policy decided a point at, when it did and the
// answer the case records (if any) does not say so already: a rule that
// asked a person, or one whose action was refused or is not recorded yet.
func policyPart(at time.Time, recorded, answered bool, mine answer) []string {
	if !recorded || (answered && strings.HasPrefix(mine.Summary, "automatic: ")) {
		return nil
	}
	return []string{"the policy decided it " + when(at)}
}

// intelPoint names the decision point of a kind of signal.
func intelPoint(k intel.Kind) rules.Point { return rules.Point(k.Event()) }
