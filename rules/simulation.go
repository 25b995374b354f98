package rules

import (
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Simulation is the random timing "vultron simulate" draws a case's events
// from, in days (means of exponential delays) and shares. A node reads a
// policy's simulation section only to check it.
type Simulation struct {
	// FixDays is the mean time from a vendor's engagement to its fix.
	FixDays float64
	// DeployDays is the mean time from a ready fix to its deployment.
	DeployDays float64
	// ExploitDays, AttacksDays and LeakDays are the mean times, from the
	// discovery, until an exploit is public, attacks are seen and the
	// public learns of the vulnerability by other means.
	ExploitDays, AttacksDays, LeakDays float64
	// DetectDays is the mean delay before a participant's intelligence
	// sees an event of the world.
	DetectDays float64
	// HumanDays is the mean delay of a person asked to decide.
	HumanDays float64
	// CoordinatorShare is the share of reports a finder sends to a
	// coordinator rather than to the vendor.
	CoordinatorShare float64
}

// DefaultSimulation returns the timing used where a policy sets none.
func DefaultSimulation() Simulation {
	return Simulation{FixDays: 60, DeployDays: 30, ExploitDays: 180, AttacksDays: 270, LeakDays: 365,
		DetectDays: 2, HumanDays: 5, CoordinatorShare: 0.25}
}

func (pr parser) simulation(n *yaml.Node, s *Simulation) error {
	fields := map[string]*float64{
		"fix_days": &s.FixDays, "deploy_days": &s.DeployDays, "exploit_days": &s.ExploitDays,
		"attacks_days": &s.AttacksDays, "leak_days": &s.LeakDays, "detect_days": &s.DetectDays,
		"human_days": &s.HumanDays, "coordinator_share": &s.CoordinatorShare,
	}
	known := []string{"fix_days", "deploy_days", "exploit_days", "attacks_days", "leak_days", "detect_days", "human_days", "coordinator_share"}
	return pr.mapping(n, "simulation", known, func(key string, k, v *yaml.Node) error {
		if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") {
			return pr.errorf(v, "simulation %s must be a number", key)
		}
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil {
			return pr.errorf(v, "simulation %s must be a number, not %q", key, v.Value)
		}
		switch {
		case key == "coordinator_share" && (f < 0 || f > 1):
			return pr.errorf(v, "simulation coordinator_share must be between 0 and 1, not %g", f)
		case key != "coordinator_share" && (f <= 0 || f > 36500):
			return pr.errorf(v, "simulation %s must be a number of days above 0 and at most 36500, not %g", key, f)
		}
		*fields[key] = f
		return nil
	})
}
