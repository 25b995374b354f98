package automation

import (
	"slices"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/rules"
)

// CaseEnv describes case c to the conditions of a policy, as the actor
// actorID sees it at now: its roles, report state and fix path in the
// case, the participants, the embargo and how old the case is. The node
// and the simulator both describe cases with it, so that a rule reads the
// same names in both.
func CaseEnv(c *cases.Case, actorID string, now time.Time) rules.Case {
	if c == nil || c.ID == "" {
		return rules.Case{}
	}
	out := rules.Case{ID: c.ID, Name: c.Name, Owner: c.Owner, EM: c.EM.String(), PXA: c.PXA.String(),
		AgeDays: now.Sub(c.Published).Hours() / 24, CVEs: slices.Clone(c.VulnerabilityIDs)}
	for _, p := range c.Participants {
		if p.Removed {
			continue
		}
		out.Participants = append(out.Participants, p.Actor)
		if p.Actor == actorID {
			out.Roles = p.Roles.Names()
			out.RM, out.VFD = p.RM.String(), p.VFD.String()
		}
	}
	if c.EM.InForce() && c.Embargo != nil {
		out.EmbargoEnd = c.Embargo.End
		out.EmbargoDaysLeft = c.Embargo.End.Sub(now).Hours() / 24
	}
	return out
}
