package sim

import (
	"container/heap"
	"errors"
	"slices"

	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/vocab"
)

// event is something due at a day of the simulated case.
type event struct {
	day float64
	seq int
	fn  func() error
}

type eventQueue []event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].day != q[j].day {
		return q[i].day < q[j].day
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// follower is a case run by policy: its queue of what is due and what it
// has set in motion.
type follower struct {
	queue eventQueue
	seq   int
	// world holds the events that have happened in the world (an exploit
	// published, attacks, a leak), whether or not the case records them.
	world map[cvdstate.CSEvent]bool
	// proposals seen, with the organizations yet to answer each.
	pending      map[string][]int
	seenInvites  map[string]bool
	lastEmbargo  string
	fixPlanned   bool
	joined       map[int]bool
	publishedRun bool
	// validated and engaged hold the organizations whose report_validated
	// and case_engaged decisions were opened.
	validated, engaged map[int]bool
}

// extra is what a decision is about beyond the case: the proposal, the
// invitation or the signal.
type extra struct {
	proposal   rules.Proposal
	invitation rules.Invitation
	intel      cvdstate.CSEvent
}

// at schedules fn on day.
func (s *caseSim) at(day float64, fn func() error) {
	f := s.f
	f.seq++
	heap.Push(&f.queue, event{day: max(day, s.day), seq: f.seq, fn: fn})
}

// worldEvents are the events the world brings about at random times, and
// the decision point each one's evidence reaches.
var worldEvents = []struct {
	ev    cvdstate.CSEvent
	point rules.Point
	kind  rules.Kind
}{
	{cvdstate.EventX, rules.IntelExploitPublic, rules.ReportExploitPublic},
	{cvdstate.EventA, rules.IntelAttacksObserved, rules.ReportAttacks},
	{cvdstate.EventP, rules.IntelPublic, rules.ReportPublic},
}

// worldBit is the pxa bit each report of the world raises.
var worldBit = map[rules.Kind]cvdstate.PXA{rules.ReportPublic: cvdstate.PXAPublic,
	rules.ReportExploitPublic: cvdstate.PXAExploit, rules.ReportAttacks: cvdstate.PXAAttacks}

// follow runs a case whose organizations follow the policy: the finder
// reports to the vendor or, at the policy's share, to a coordinator; the
// world's events come at random times; every decision is the policy's or,
// where no rule decides, a person's after a random delay.
func (s *caseSim) follow() (bool, error) {
	w, tm := s.w, s.w.timing
	s.f = &follower{world: map[cvdstate.CSEvent]bool{}, pending: map[string][]int{}, seenInvites: map[string]bool{}, joined: map[int]bool{},
		validated: map[int]bool{}, engaged: map[int]bool{}}
	s.finder = w.finders[s.rng.IntN(len(w.finders))]
	s.vendor = w.vendors[s.rng.IntN(len(w.vendors))]
	receiver := s.vendor
	if len(w.coordinator) > 0 && s.rng.Float64() < tm.CoordinatorShare {
		receiver = w.coordinator[s.rng.IntN(len(w.coordinator))]
	}
	s.at(0, func() error {
		if err := s.submitReport(receiver); err != nil {
			return err
		}
		return s.decide(receiver, rules.ReportReceived, extra{}, nil)
	})
	means := map[cvdstate.CSEvent]float64{cvdstate.EventX: tm.ExploitDays, cvdstate.EventA: tm.AttacksDays, cvdstate.EventP: tm.LeakDays}
	for _, we := range worldEvents {
		s.at(s.exp(means[we.ev]), func() error {
			s.f.world[we.ev] = true
			for _, org := range s.deciders() {
				s.detect(org, we.ev)
			}
			return nil
		})
	}
	for n := 0; s.f.queue.Len() > 0; n++ {
		if n >= MaxEventsPerCase {
			return true, nil
		}
		e := heap.Pop(&s.f.queue).(event)
		s.advance(e.day)
		if err := e.fn(); err != nil {
			return false, err
		}
	}
	return false, nil
}

// detect has org's intelligence see a world event after a delay; it then
// decides whether to report it.
func (s *caseSim) detect(org int, ev cvdstate.CSEvent) {
	s.at(s.day+s.exp(s.w.timing.DetectDays), func() error {
		if s.recorded(ev) {
			return nil
		}
		if s.participantOf(org) == nil {
			if s.c == nil {
				s.detect(org, ev) // no case to report to yet: look again later
			}
			return nil
		}
		for _, we := range worldEvents {
			if we.ev == ev {
				return s.decide(org, we.point, extra{intel: ev}, nil)
			}
		}
		return nil
	})
}

// recorded reports whether the case records event ev already.
func (s *caseSim) recorded(ev cvdstate.CSEvent) bool {
	return slices.Contains(s.history, ev)
}

// deciders are the organizations that take decisions in the case: its
// working participants, or before the case opens, the finder and the
// receiver of the report.
func (s *caseSim) deciders() []int {
	if s.c == nil || s.c.ID == "" {
		if s.offer == nil {
			return []int{s.finder}
		}
		return []int{s.finder, s.receiver}
	}
	var out []int
	for _, p := range s.c.Participants {
		if p.Engaged() {
			if org := s.w.orgOf(p.Actor); org >= 0 {
				out = append(out, org)
			}
		}
	}
	return out
}

// env describes the decision to the policy's conditions.
func (s *caseSim) env(org int, point rules.Point, x extra) rules.Env {
	o := s.w.orgs[org]
	env := rules.Env{Point: string(point), Actor: o.actor, Now: s.now, Vars: s.w.policy.Vars,
		Proposal: x.proposal, Invitation: x.invitation}
	if s.report != nil {
		env.Report = rules.Report{ID: s.report.ID, Name: s.report.Name, Content: s.report.Content,
			Reporter: s.w.orgs[s.finder].actor, Vendor: s.w.orgs[s.vendor].actor}
	}
	switch point {
	case rules.ReportReceived:
		env.Sender = s.w.orgs[s.finder].actor
	case rules.EmbargoProposed:
		env.Sender = x.proposal.Proposer
	case rules.InvitationReceived:
		env.Sender = x.invitation.By
	}
	if x.intel != 0 {
		for _, we := range worldEvents {
			if we.ev == x.intel {
				env.Intel = rules.Intel{Kind: string(we.kind)[len("report_"):], Source: "simulated intelligence"}
			}
		}
	}
	if s.c != nil {
		env.Case = automation.CaseEnv(s.c, o.actor, s.now)
	}
	return env
}

// decide runs org's policy at a decision point and takes the actions of
// the rules that fire. Where none fires, or a rule asks, a person decides
// after a random delay, with the defaults of fallback. done, if set, runs
// once the decision is taken.
func (s *caseSim) decide(org int, point rules.Point, x extra, done func() error) error {
	p := s.w.policy
	var actions []rules.Resolved
	fired, asked := false, false
	if p.ActsFor(s.w.orgs[org].name) {
		for _, d := range p.Fired(s.env(org, point, x)) {
			fired = true
			for _, a := range d.Actions {
				if a.Kind == rules.Ask {
					asked = true
					continue
				}
				actions = append(actions, a)
			}
		}
	}
	if err := s.act(org, x, actions); err != nil {
		return err
	}
	if fired && !asked {
		if done != nil {
			return done()
		}
		return nil
	}
	s.at(s.day+s.exp(s.w.timing.HumanDays), func() error {
		if err := s.act(org, x, s.fallback(org, point, x)); err != nil {
			return err
		}
		if done != nil {
			return done()
		}
		return nil
	})
	return nil
}

// fallback is what a person of org does at a decision point no rule
// decided: validate, engage and propose 90 days for a report (and, for a
// coordinator, invite the vendor); accept an invitation and an embargo;
// report what the world made known; publish when the embargo ends, or the
// vendor with its fix when no embargo holds it back.
func (s *caseSim) fallback(org int, point rules.Point, x extra) []rules.Resolved {
	c := s.c
	open := c != nil && c.ID != ""
	var out []rules.Resolved
	switch point {
	case rules.ReportReceived:
		if org != s.receiver {
			return nil
		}
		if !open {
			out = append(out, rules.Resolved{Kind: rules.Validate})
		}
		if p := s.participantOf(org); p == nil || p.RM != cvdstate.RMAccepted {
			out = append(out, rules.Resolved{Kind: rules.Engage})
		}
		if !open || (c.EM == cvdstate.EMNone && len(c.Proposals) == 0) {
			out = append(out, rules.Resolved{Kind: rules.ProposeEmbargo, Days: 90})
		}
		if s.w.orgs[org].roles.Has(cvdstate.Coordinator) && s.participantOf(s.vendor) == nil {
			out = append(out, rules.Resolved{Kind: rules.Invite, Actor: s.w.orgs[s.vendor].actor, Roles: []string{"vendor", "deployer"}})
		}
	case rules.InvitationReceived:
		out = append(out, rules.Resolved{Kind: rules.AcceptInvitation}, rules.Resolved{Kind: rules.Engage})
	case rules.EmbargoProposed:
		out = append(out, rules.Resolved{Kind: rules.AcceptEmbargo})
	case rules.FixReady:
		if org == s.vendor && open && !c.EM.InForce() {
			out = append(out, rules.Resolved{Kind: rules.ReportPublic})
		}
	case rules.EmbargoEnded:
		if open && org == s.w.orgOf(c.Owner) {
			out = append(out, rules.Resolved{Kind: rules.ReportPublic})
		}
	case rules.IntelAttacksObserved, rules.IntelExploitPublic, rules.IntelPublic:
		for _, we := range worldEvents {
			if we.point == point {
				out = append(out, rules.Resolved{Kind: we.kind})
			}
		}
	}
	return out
}

// act takes org's actions in order; one the case refuses is counted and
// the next is still tried, as a node's automation goes on with a rule's
// other actions.
func (s *caseSim) act(org int, x extra, actions []rules.Resolved) error {
	for _, a := range actions {
		if err := s.take(org, x, a); err != nil && !errors.Is(err, errRefused) {
			return err
		}
	}
	return nil
}

// take carries out one action of org.
func (s *caseSim) take(org int, x extra, a rules.Resolved) error {
	open := s.c != nil && s.c.ID != ""
	switch a.Kind {
	case rules.Notify:
		s.load.Notifications++
		return nil
	case rules.Ask:
		return nil
	case rules.Validate:
		if open || org != s.receiver {
			return s.refuse()
		}
		return s.validate()
	case rules.Engage:
		if !open && org == s.receiver {
			if err := s.validate(); err != nil {
				return err
			}
		}
	case rules.ReportPublic, rules.ReportExploitPublic, rules.ReportAttacks:
		if s.c != nil && s.c.PXA&worldBit[a.Kind] != 0 {
			return nil // the case knows already; nothing to report
		}
	case rules.Invite:
		if s.w.orgOf(a.Actor) < 0 {
			return s.refuse() // no such organization in the simulation
		}
	}
	if s.c == nil && a.Kind != rules.Invalidate && a.Kind != rules.Close {
		return s.refuse() // only a case takes the other actions
	}
	t := rules.Target{Now: s.now, ProposalID: x.proposal.ID, InvitationID: x.invitation.ID}
	if s.offer != nil && s.c == nil {
		t.OfferID, t.Reporter = s.offer.ID, s.w.orgs[s.finder].actor
	}
	if s.c != nil {
		t.CaseID, t.PXA = s.c.ID, s.c.PXA
		if p := s.participantOf(org); p != nil {
			t.ParticipantID = p.ID
		}
	}
	m, err := rules.Activity(a, t)
	if err != nil {
		return s.refuse()
	}
	if s.c == nil {
		// Before a case, an answer to the report goes to the reporter.
		_, body, err := s.build(org, m)
		if err != nil {
			return err
		}
		s.send(org, s.w.orgs[s.finder].actor, len(body))
		return nil
	}
	return s.submit(org, m)
}

// refuse counts an action that could not be taken.
func (s *caseSim) refuse() error {
	s.load.Refused++
	return errRefused
}

// react sets in motion what the entry just recorded calls for: the
// answers to a new embargo proposal, the end of an embargo now in force,
// the invitee's answer, the detection of past world events by a new
// participant, the vendor's work on a fix once it engaged, and the
// decisions a ready fix, a deployed fix and publication reach.
func (s *caseSim) react(histBefore int) {
	f, c := s.f, s.c
	for _, pr := range c.Proposals {
		if _, seen := f.pending[pr.InviteID]; seen {
			continue
		}
		var waiting []int
		for _, org := range s.deciders() {
			if s.w.orgs[org].actor != pr.Terms.Proposer {
				waiting = append(waiting, org)
			}
		}
		f.pending[pr.InviteID] = waiting
		prop := rules.Proposal{ID: pr.InviteID, Days: s.daysUntil(pr.Terms.End), End: pr.Terms.End,
			Proposer: pr.Terms.Proposer, Revision: c.EM == cvdstate.EMRevise}
		if len(waiting) == 0 {
			s.at(s.day, func() error { return s.settle(prop.ID) })
		}
		for _, org := range waiting {
			s.at(s.day, func() error {
				return s.decide(org, rules.EmbargoProposed, extra{proposal: prop}, func() error { return s.answered(prop.ID, org) })
			})
		}
	}
	if c.EM.InForce() && c.Embargo != nil && c.Embargo.ID != f.lastEmbargo {
		id := c.Embargo.ID
		f.lastEmbargo = id
		s.at(s.day+s.daysUntil(c.Embargo.End), func() error {
			if !s.c.EM.InForce() || s.c.Embargo == nil || s.c.Embargo.ID != id {
				return nil
			}
			return s.everyone(rules.EmbargoEnded)
		})
	}
	for _, inv := range c.Invites {
		if f.seenInvites[inv.Sent] {
			continue
		}
		f.seenInvites[inv.Sent] = true
		if org := s.w.orgOf(inv.Actor); org >= 0 {
			x := extra{invitation: rules.Invitation{ID: inv.Sent, By: inv.By, Case: c.ID, Roles: inv.Roles.Names()}}
			s.at(s.day, func() error { return s.decide(org, rules.InvitationReceived, x, nil) })
		}
	}
	for _, org := range s.deciders() {
		if !f.joined[org] {
			f.joined[org] = true
			for _, we := range worldEvents {
				if f.world[we.ev] {
					s.detect(org, we.ev)
				}
			}
		}
	}
	s.stepPoints(rules.ReportValidated, f.validated, cvdstate.RMValid, cvdstate.RMAccepted, cvdstate.RMDeferred)
	s.stepPoints(rules.CaseEngaged, f.engaged, cvdstate.RMAccepted)
	if vp := s.participantOf(s.vendor); vp != nil && vp.RM == cvdstate.RMAccepted && !f.fixPlanned {
		f.fixPlanned = true
		s.at(s.day+s.exp(s.w.timing.FixDays), func() error { return s.fixState("VFd") })
	}
	for _, ev := range s.history[histBefore:] {
		switch ev {
		case cvdstate.EventF:
			s.at(s.day+s.exp(s.w.timing.DeployDays), func() error { return s.fixState("VFD") })
			s.at(s.day, func() error { return s.everyone(rules.FixReady) })
		case cvdstate.EventD:
			s.at(s.day, func() error { return s.everyone(rules.FixDeployed) })
		case cvdstate.EventP:
			s.at(s.day, func() error { return s.everyone(rules.Publication) })
		}
	}
}

// stepPoints opens point, once, for each organization whose RM state in
// the case is one of states, as a node's automation does; only when the
// policy has a rule for it, so that a policy without one runs as before.
func (s *caseSim) stepPoints(point rules.Point, opened map[int]bool, states ...cvdstate.RMState) {
	if !s.w.policy.Uses(point) {
		return
	}
	for _, org := range s.deciders() {
		if p := s.participantOf(org); p != nil && !opened[org] && slices.Contains(states, p.RM) {
			opened[org] = true
			s.at(s.day, func() error { return s.decide(org, point, extra{}, nil) })
		}
	}
}

// fixState has the vendor report its fix ready (VFd) or deployed (VFD).
func (s *caseSim) fixState(vfd string) error {
	p := s.participantOf(s.vendor)
	if p == nil {
		return nil
	}
	err := s.submit(s.vendor, vocab.ReportFixState(s.c.ID, p.ID, vfd))
	if errors.Is(err, errRefused) {
		return nil
	}
	return err
}

// everyone has each working participant decide at point.
func (s *caseSim) everyone(point rules.Point) error {
	for _, org := range s.deciders() {
		if err := s.decide(org, point, extra{}, nil); err != nil {
			return err
		}
	}
	return nil
}

// answered notes that org decided on proposal id, and settles the
// proposal once everyone has.
func (s *caseSim) answered(id string, org int) error {
	waiting := s.f.pending[id]
	if i := slices.Index(waiting, org); i >= 0 {
		s.f.pending[id] = slices.Delete(waiting, i, i+1)
	}
	if len(s.f.pending[id]) == 0 {
		return s.settle(id)
	}
	return nil
}

// settle has the owner accept its own proposal, still open, once every
// other participant answered it: the owner's acceptance puts it in force.
func (s *caseSim) settle(id string) error {
	c := s.c
	i := slices.IndexFunc(c.Proposals, func(p cases.Proposal) bool { return p.InviteID == id })
	if i < 0 || c.Proposals[i].Terms.Proposer != c.Owner {
		return nil
	}
	owner := s.w.orgOf(c.Owner)
	err := s.submit(owner, vocab.Respond("Accept", id, c.ID))
	if errors.Is(err, errRefused) {
		return nil
	}
	return err
}
