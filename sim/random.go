package sim

import (
	"fmt"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/vocab"
)

// randomWalk runs a case whose every step chooses uniformly among the
// case-state events the model allows (for the case's state: the vendor's
// fix path and the world's pxa), and takes the protocol actions that cause
// it. The finder reports to a coordinator, which opens the case without
// the vendor, so that P, X or A may come before V.
func (s *caseSim) randomWalk() error {
	w := s.w
	s.finder = w.finders[s.rng.IntN(len(w.finders))]
	s.vendor = w.vendors[s.rng.IntN(len(w.vendors))]
	coordinator := w.coordinator[s.rng.IntN(len(w.coordinator))]
	if err := s.submitReport(coordinator); err != nil {
		return err
	}
	s.advance(1)
	if err := s.validate(); err != nil {
		return err
	}
	for step := 2; ; step++ {
		cs := cvdstate.CS{VFD: s.vendorVFD(), PXA: s.c.PXA}
		next := cs.Allowed()
		if len(next) == 0 {
			return nil
		}
		e := next[s.rng.IntN(len(next))]
		s.advance(float64(step))
		if err := s.cause(e, coordinator); err != nil {
			return fmt.Errorf("from %s, event %s: %w", cs, e, err)
		}
	}
}

// cause takes the protocol actions that make event e happen in the case:
// V, the owner invites the vendor, which accepts; F, the vendor engages
// (if it has not) and reports its fix ready; D, it reports the fix
// deployed; P, X and A, the owner reports them.
func (s *caseSim) cause(e cvdstate.CSEvent, owner int) error {
	c := s.c
	vendor := s.w.orgs[s.vendor].actor
	switch e {
	case cvdstate.EventV:
		if err := s.submit(owner, vocab.InviteToCase(c.ID, vendor, []string{"vendor", "deployer"})); err != nil {
			return err
		}
		inv := c.Invites[len(c.Invites)-1]
		return s.submit(s.vendor, vocab.Respond("Accept", inv.Sent, c.ID))
	case cvdstate.EventF:
		if p := s.participantOf(s.vendor); p != nil && p.RM != cvdstate.RMAccepted {
			if err := s.submit(s.vendor, vocab.Respond("Join", c.ID, c.ID)); err != nil {
				return err
			}
		}
		return s.submit(s.vendor, vocab.ReportFixState(c.ID, s.participantOf(s.vendor).ID, "VFd"))
	case cvdstate.EventD:
		return s.submit(s.vendor, vocab.ReportFixState(c.ID, s.participantOf(s.vendor).ID, "VFD"))
	}
	kind := map[cvdstate.CSEvent]rules.Kind{cvdstate.EventP: rules.ReportPublic, cvdstate.EventX: rules.ReportExploitPublic, cvdstate.EventA: rules.ReportAttacks}[e]
	m, err := rules.Activity(rules.Resolved{Kind: kind}, rules.Target{CaseID: c.ID, ParticipantID: s.participantOf(owner).ID, PXA: c.PXA, Now: s.now})
	if err != nil {
		return err
	}
	return s.submit(owner, m)
}
