package automation

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
)

// askEvent is the change-feed event of a rule that asks a person.
const askEvent = "policy_ask"

// Notification is what a rule's notify action posts.
type Notification struct {
	Policy  string    `json:"policy"`
	Rule    string    `json:"rule"`
	Line    int       `json:"line"`
	Point   string    `json:"point"`
	Actor   string    `json:"actor"`
	Case    string    `json:"case,omitempty"`
	Report  string    `json:"report,omitempty"`
	Actions []string  `json:"actions"`
	Time    time.Time `json:"time"`
}

// pendingAction is an action that waits for the node to hold a case: the
// ones after accept_invitation, which the invitee's node holds only once
// the Case Actor's first entries arrive.
type pendingAction struct {
	Point  rules.Point    `json:"point"`
	Rule   string         `json:"rule"`
	Line   int            `json:"line"`
	Action rules.Resolved `json:"action"`
}

// decide asks policy p about one decision point and takes the actions of
// the rules that fire. It returns whether a decision was taken: false
// when no rule fired (the decision stays a person's), the policy does not
// act for the actor, the point no longer holds, or the decision was taken
// before.
func (e *Engine) decide(ctx context.Context, p *rules.Policy, pt point) (bool, error) {
	if !p.ActsFor(pt.Actor.Name) {
		return false, nil
	}
	now := e.cfg.Now()
	env := pt.Env
	env.Point, env.Actor, env.Now, env.Vars = string(pt.Point), pt.Actor.ID, now, p.Vars
	var c *cases.Case
	if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		if done, err := decided(tx, pt.Key); err != nil || done {
			pt.Key = "" // taken before
			return err
		}
		var err error
		c, err = e.caseOf(tx, pt)
		return err
	}); err != nil || pt.Key == "" {
		return false, err
	}
	if c != nil {
		if part := c.Participant(pt.Actor.ID); (part == nil || !part.Engaged()) && pt.Point != rules.InvitationReceived {
			return false, nil // it no longer works on the case
		}
		env.Case = CaseEnv(c, pt.Actor.ID, now)
		if !env.Proposal.End.IsZero() {
			env.Proposal.Days = env.Proposal.End.Sub(now).Hours() / 24
		}
	}
	fired := p.Fired(env)
	if len(fired) == 0 {
		return false, nil
	}
	var first bool
	if err := e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		var err error
		first, err = markDone(tx, pt.Key, now)
		return err
	}); err != nil || !first {
		return false, err
	}
	for _, d := range fired {
		for i, a := range d.Actions {
			if a.Kind == rules.AcceptInvitation && c == nil {
				if err := e.take(ctx, p, d.Rule, pt, a); err != nil {
					return true, err
				}
				// What follows needs the case, which arrives with the
				// Case Actor's entries: keep it until then.
				if err := e.postpone(ctx, pt, d.Rule, d.Actions[i+1:]); err != nil {
					return true, err
				}
				break
			}
			if err := e.take(ctx, p, d.Rule, pt, a); err != nil {
				return true, err
			}
		}
	}
	return true, nil
}

// caseOf returns the case a decision concerns, as this node holds it: the
// point's case, or the case a received report's validation opened; nil
// when there is none (yet).
func (e *Engine) caseOf(tx *store.ReadTx, pt point) (*cases.Case, error) {
	id := pt.CaseID
	if id == "" && pt.ReportID != "" {
		rec, ok, err := cases.Report(tx, pt.ReportID, pt.Actor.Name)
		if err != nil || !ok {
			return nil, err
		}
		id = rec.CaseID
	}
	if id == "" {
		return nil, nil
	}
	c, err := cases.Load(tx, id)
	if err != nil || c == nil || c.ID == "" {
		return nil, err
	}
	return c, nil
}

// target returns what an action of pt acts on now.
func (e *Engine) target(ctx context.Context, pt point) (rules.Target, error) {
	t := pt.Target
	t.Now = e.cfg.Now()
	err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		c, err := e.caseOf(tx, pt)
		if err != nil || c == nil {
			return err
		}
		t.CaseID, t.PXA = c.ID, c.PXA
		if p := c.Participant(pt.Actor.ID); p != nil {
			t.ParticipantID = p.ID
		}
		return nil
	})
	return t, err
}

// take carries out one action of rule r at pt, through the outbox, and
// records it in the audit log with the rule that made it; the activity's
// summary names the rule, so that the case's timeline does too. A refusal
// (the protocol does not allow the action now) is recorded and logged, and
// the rule's next action is still taken, as is an action with nothing to
// do (a validate of a report already valid); only a failure of the node
// itself is returned. A notification the receiver does not take is the
// receiver's failure, not the node's: it is recorded like a refusal.
func (e *Engine) take(ctx context.Context, p *rules.Policy, r *rules.Rule, pt point, a rules.Resolved) error {
	why := fmt.Sprintf("policy %s, %s (line %d) at %s: %s", p.Name, r.Name, r.Line, pt.Point, a)
	notification := false
	record := func(activityID string, err error) error {
		rec := store.AuditRecord{Kind: store.AuditAdmin, Actor: pt.Actor.Name, ActivityID: activityID, Decision: store.DecisionDone, Reason: "automation: " + why}
		if err != nil {
			rec.Decision, rec.Reason, rec.Status = store.DecisionRefused, rec.Reason+": "+problem.Message(err), problem.Status(err)
			e.cfg.Logger.Warn().Str("actor", pt.Actor.Name).Str("rule", r.Name).Str("point", string(pt.Point)).Str("action", string(a.Kind)).
				Str("reason", problem.Message(err)).Msg("automation: action refused")
		} else {
			e.cfg.Logger.Info().Str("actor", pt.Actor.Name).Str("rule", r.Name).Str("point", string(pt.Point)).Str("action", a.String()).
				Str("activity", activityID).Msg("automation: action taken")
		}
		if aerr := e.cfg.DB.Audit(ctx, rec); aerr != nil {
			return fmt.Errorf("automation: audit: %w", aerr)
		}
		if err != nil && problem.Status(err) >= 500 && !notification {
			return fmt.Errorf("automation: %s: %w", why, err)
		}
		return nil
	}
	t, err := e.target(ctx, pt)
	if err != nil {
		return err
	}
	switch a.Kind {
	case rules.Ask:
		state, _ := json.Marshal(map[string]any{"point": pt.Point, "policy": p.Name, "rule": r.Name, "line": r.Line, "actor": pt.Actor.ID})
		// A question about a report names it as the report (and its case
		// once it is in one), as the report's other steps in the change
		// feed do.
		err := e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
			return tx.AppendEvent(store.Event{CaseID: t.CaseID, Report: pt.ReportID, EventType: askEvent, Actor: pt.Actor.ID, Time: t.Now, State: state})
		})
		return record("", err)
	case rules.Notify:
		if e.cfg.Notify == nil {
			return record("", problem.Conflict("this node sends no notifications"))
		}
		n := Notification{Policy: p.Name, Rule: r.Name, Line: r.Line, Point: string(pt.Point), Actor: pt.Actor.ID, Case: t.CaseID, Report: pt.ReportID, Time: t.Now}
		for _, x := range r.Do {
			n.Actions = append(n.Actions, x.String())
		}
		notification = true
		return record("", e.cfg.Notify(ctx, a.URL, n))
	case rules.Engage:
		if t.CaseID == "" && t.OfferID != "" {
			// Engaging a report no case was opened for yet validates it.
			if err := e.take(ctx, p, r, pt, rules.Resolved{Kind: rules.Validate}); err != nil {
				return err
			}
			if t, err = e.target(ctx, pt); err != nil {
				return err
			}
		}
	case rules.ProposeEmbargo:
		if pt.Point == rules.EmbargoProposed && t.ProposalID != "" {
			mine, err := e.proposedByPolicy(ctx, t.ProposalID)
			if err != nil {
				return err
			}
			if mine {
				// Countering a proposal the policy made opens
				// embargo_proposed again, for another of the node's
				// actors or for the owner once the others answered: a
				// loop without end.
				return record("", problem.Conflict("the embargo proposal %s was made by this node's policy; a counter-proposal to it would answer the policy's own", t.ProposalID))
			}
			if n, err := e.counters(ctx, t.CaseID, pt.Actor.Name); err != nil {
				return err
			} else if n >= MaxCounterProposals {
				return record("", problem.Conflict("%s's policy sent %d counter-proposals in this case already, the most it sends; a person answers the embargo proposal %s",
					pt.Actor.Name, n, t.ProposalID))
			}
		}
	case rules.Validate:
		if t.CaseID != "" {
			// Validated already (by an earlier action or rule): there is
			// nothing to send, and the audit log says why.
			return record("", problem.Conflict("the report is already valid: case %s holds it", t.CaseID))
		}
	}
	if t.CaseID != "" {
		t.OfferID = "" // the report's decisions are taken; the rest is the case's
	}
	m, err := rules.Activity(a, t)
	if err != nil {
		return record("", problem.Conflict("%v", err))
	}
	m["summary"] = fmt.Sprintf("automatic: %s of policy %s", r.Name, p.Name)
	id, err := e.cfg.Submit(ctx, pt.Actor.Name, m)
	if err == nil && a.Kind == rules.ProposeEmbargo && id != "" {
		countered := pt.Point == rules.EmbargoProposed && t.ProposalID != ""
		if err := e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
			if countered {
				if err := addCounter(tx, t.CaseID, pt.Actor.Name); err != nil {
					return err
				}
			}
			return putState(tx, "proposed "+id, []byte{1})
		}); err != nil {
			return fmt.Errorf("automation: record proposal %s: %w", id, err)
		}
	}
	return record(id, err)
}

// counterKey is the state key of the counter-proposals actor's policy sent
// in case caseID.
func counterKey(caseID, actor string) string { return "countered " + caseID + " " + actor }

// counters returns how many counter-proposals actor's policy sent in case
// caseID.
func (e *Engine) counters(ctx context.Context, caseID, actor string) (int, error) {
	var n int
	err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		v, err := getState(tx, counterKey(caseID, actor))
		if len(v) == 8 {
			n = int(binary.BigEndian.Uint64(v))
		}
		return err
	})
	return n, err
}

// addCounter counts one more counter-proposal of actor's policy in case
// caseID, in tx.
func addCounter(tx *store.Tx, caseID, actor string) error {
	v, err := getState(&tx.ReadTx, counterKey(caseID, actor))
	if err != nil {
		return err
	}
	n := uint64(0)
	if len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	return putState(tx, counterKey(caseID, actor), binary.BigEndian.AppendUint64(nil, n+1))
}

// MaxCounterProposals bounds the embargo proposals an actor's policy
// counters in one case (propose_embargo at embargo_proposed): two nodes
// whose policies each counter the other's would otherwise trade
// counter-proposals without end, each a new proposal and a new decision.
// The next proposal waits for a person.
const MaxCounterProposals = 3

// proposedByPolicy reports whether the embargo proposal of invitation id
// was sent by an action of the node's policy.
func (e *Engine) proposedByPolicy(ctx context.Context, id string) (bool, error) {
	var v []byte
	err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		var err error
		v, err = getState(tx, "proposed "+id)
		return err
	})
	return v != nil, err
}

// postpone keeps the actions of a rule that wait for the case the actor
// just accepted to join.
func (e *Engine) postpone(ctx context.Context, pt point, r *rules.Rule, rest []rules.Resolved) error {
	if len(rest) == 0 {
		return nil
	}
	var ps []pendingAction
	for _, a := range rest {
		ps = append(ps, pendingAction{Point: pt.Point, Rule: r.Name, Line: r.Line, Action: a})
	}
	v, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	return e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		return putState(tx, "pending "+pt.CaseID+" "+pt.Actor.Name, v)
	})
}

// resume takes the postponed actions of the local actors that now hold
// case c.
func (e *Engine) resume(ctx context.Context, p *rules.Policy, c *cases.Case) error {
	for _, l := range e.localParticipants(c) {
		key := "pending " + c.ID + " " + l.Name
		var v []byte
		if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
			var err error
			v, err = getState(tx, key)
			return err
		}); err != nil || v == nil {
			if err != nil {
				return err
			}
			continue
		}
		var ps []pendingAction
		if err := json.Unmarshal(v, &ps); err != nil {
			return fmt.Errorf("automation: %s: %w", key, err)
		}
		if err := e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
			b, err := tx.Case(stateBucket)
			if err != nil {
				return err
			}
			return b.Delete([]byte(key))
		}); err != nil {
			return err
		}
		for _, pa := range ps {
			r := &rules.Rule{Name: pa.Rule, Line: pa.Line}
			if err := e.take(ctx, p, r, point{Point: pa.Point, Actor: l, CaseID: c.ID}, pa.Action); err != nil {
				return err
			}
		}
	}
	return nil
}

// pendingCases returns the cases some local actor has postponed actions
// for, read from the engine's state.
func (e *Engine) pendingCases(ctx context.Context) ([]string, error) {
	var out []string
	err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		b, err := tx.Case(stateBucket)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return b.RangePrefix([]byte("pending "), func(k, _ []byte) error {
			rest := strings.TrimPrefix(string(k), "pending ")
			if i := strings.LastIndexByte(rest, ' '); i > 0 {
				out = append(out, rest[:i])
			}
			return nil
		})
	})
	return out, err
}
