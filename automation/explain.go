package automation

import (
	"context"
	"errors"

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
// policy has rules for. Nothing is decided or sent.
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
				pt, isOpen := open[string(pointName)+" "+l.Name]
				var nothing string
				if !isOpen {
					var was bool
					if pt, was = past[string(pointName)+" "+l.Name]; !was {
						pt, nothing = closedPoint(tx, c, pointName, l)
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
				x := api.PolicyPoint{Actor: l.ID, Point: string(pointName), Open: isOpen}
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
func closedPoint(tx *store.ReadTx, c *cases.Case, name rules.Point, l Local) (point, string) {
	pt := point{Point: name, Actor: l, CaseID: c.ID}
	switch name {
	case rules.InvitationReceived:
		return pt, "no invitation to the case waits for " + l.Name + "'s answer"
	case rules.SuggestionReceived:
		return pt, "no suggestion to the case waits for an answer"
	case intelPoint(intel.Attacks):
		return pt, "no intelligence feed has listed attacks on the case's vulnerability"
	case intelPoint(intel.ExploitPublic):
		return pt, "no intelligence feed has listed a public exploit of the case's vulnerability"
	case intelPoint(intel.Public):
		return pt, "no intelligence feed has listed the case's vulnerability as public"
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
			return pt, l.Name + " received none of the case's reports"
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
		if len(c.Proposals) == 0 {
			return pt, "no embargo proposal is open in the case"
		}
		pr := c.Proposals[0]
		pt.Env.Sender = pr.Terms.Proposer
		pt.Env.Proposal = rules.Proposal{ID: pr.InviteID, End: pr.Terms.End, Proposer: pr.Terms.Proposer, Revision: c.EM == cvdstate.EMRevise}
	}
	return pt, ""
}

// intelPoint names the decision point of a kind of signal.
func intelPoint(k intel.Kind) rules.Point { return rules.Point(k.Event()) }
