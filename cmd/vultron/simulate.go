package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/sim"
)

// simulateJSON is what "simulate --json" prints. Desiderata are named in
// their ASCII spelling ("D<P"), which ParseDesideratum reads like "D≺P"
// and which a shell or jq can type.
type simulateJSON struct {
	Policy    string             `json:"policy"`
	Seed      int64              `json:"seed"`
	Orgs      int                `json:"orgs"`
	Cases     int                `json:"cases"`
	Complete  int                `json:"complete"`
	Cut       int                `json:"cut"`
	Met       map[string]float64 `json:"desiderata"`
	Baseline  map[string]float64 `json:"baseline"`
	Skill     map[string]float64 `json:"skill"`
	StdErr    map[string]float64 `json:"stdErr"`
	MeanSkill float64            `json:"meanSkill"`
	Load      sim.Load           `json:"load"`
	PerCase   perCaseLoad        `json:"perCase"`
}

// perCaseLoad is the load divided by the number of cases.
type perCaseLoad struct {
	Messages      float64 `json:"messages"`
	Bytes         float64 `json:"bytes"`
	LedgerEntries float64 `json:"ledgerEntries"`
	LedgerBytes   float64 `json:"ledgerBytes"`
}

// asciiName writes a desideratum as "D<P".
func asciiName(s string) string { return strings.ReplaceAll(s, "≺", "<") }

func runSimulate(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("simulate", "vultron simulate [--orgs N] [--cases M] [--policy FILE|random] [--seed S] [--json] [--svg FILE]",
		"Simulate many organizations working many cases in one process, with the node's own case engine,\n"+
			"and report, per desideratum, the share of cases that met it against the random-walk baseline\n"+
			"of \"vultron model desiderata\", the skill, and what the load costs (messages, bytes and ledger\n"+
			"entries per case). With --policy random every step chooses uniformly among the case-state events\n"+
			"the model allows; with a policy file every organization follows its rules, a person answers where\n"+
			"no rule decides, and fixes and events in the world come at random times (docs/simulation.md).", env)
	orgs := fs.Int("orgs", 30, "how many organizations: in turn a vendor, a finder and a coordinator")
	count := fs.Int("cases", 1000, "how many cases")
	var policies listFlag
	fs.Var(&policies, "policy", "a policy `FILE` (YAML or JSON, as serve --policy reads), or random (the default);\nrepeat it to compare policies on the same cases (not with --json)")
	seed := fs.Int64("seed", 1, "the random seed; a run depends on it alone")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	svg := fs.String("svg", "", "also draw the shares met against the baselines as an SVG `FILE`, one bar per policy")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("simulate takes no arguments, got %q", fs.Arg(0))
	}
	if len(policies) == 0 {
		policies = listFlag{"random"}
	}
	if *asJSON && len(policies) > 1 {
		return usageError("--json prints one run: give one --policy")
	}
	// Values the simulator cannot run with are a bad command line, told
	// before any policy is read or run.
	if *orgs < 2 || *orgs > sim.MaxOrgs {
		return usageError("--orgs must be from 2 to %d, not %d", sim.MaxOrgs, *orgs)
	}
	if *count < 1 || *count > sim.MaxCases {
		return usageError("--cases must be from 1 to %d, not %d", sim.MaxCases, *count)
	}
	if *orgs < 3 && slices.Contains(policies, "random") {
		return usageError("--policy random needs at least 3 organizations (a vendor, a finder and a coordinator), so that the public may learn of a vulnerability before its vendor: give --orgs 3 or more")
	}
	var results []sim.Result
	for _, name := range policies {
		cfg := sim.Config{Orgs: *orgs, Cases: *count, Seed: *seed}
		if name != "random" {
			p, err := node.ReadPolicy(name)
			if err != nil {
				return err
			}
			cfg.Policy = p
		}
		res, err := sim.Run(ctx, cfg)
		if err != nil {
			return err
		}
		results = append(results, res)
	}
	if *svg != "" {
		f, err := os.Create(*svg)
		if err != nil {
			return fmt.Errorf("write %s: %w", *svg, err)
		}
		title := fmt.Sprintf("Desiderata met in %d simulated cases among %d organizations (seed %d)", *count, *orgs, *seed)
		err = sim.WriteSVG(f, title, results)
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write %s: %w", *svg, cerr)
		}
		if err != nil {
			return err
		}
	}
	for i, res := range results {
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		if err := printSimulation(env, res, *asJSON); err != nil {
			return err
		}
	}
	return nil
}

// printSimulation prints one run as a table or as JSON.
func printSimulation(env *environment, res sim.Result, asJSON bool) error {
	n := float64(res.Cases)
	per := perCaseLoad{float64(res.Load.Messages) / n, float64(res.Load.Bytes) / n,
		float64(res.Load.LedgerEntries) / n, float64(res.Load.LedgerBytes) / n}
	if asJSON {
		out := simulateJSON{Policy: res.Policy, Seed: res.Seed, Orgs: res.Orgs, Cases: res.Cases, Complete: res.Complete, Cut: res.Cut,
			Met: map[string]float64{}, Baseline: map[string]float64{}, Skill: map[string]float64{}, StdErr: map[string]float64{},
			MeanSkill: res.Skill, Load: res.Load, PerCase: per}
		for _, d := range res.Desiderata {
			name := asciiName(d.Desideratum.String())
			out.Met[name], out.Baseline[name], out.Skill[name], out.StdErr[name] = d.Fraction, d.Baseline, d.Skill, d.StdErr
		}
		return writeJSON(env.stdout, out)
	}
	w := env.stdout
	fmt.Fprintf(w, "simulated %d cases among %d organizations, policy %s, seed %d: %d complete, %d cut short\n",
		res.Cases, res.Orgs, res.Policy, res.Seed, res.Complete, res.Cut)
	rows := [][]string{{"desideratum", "met", "±", "baseline", "skill"}}
	for _, d := range res.Desiderata {
		rows = append(rows, []string{d.Desideratum.String(), fmt.Sprintf("%.2f%%", 100*d.Fraction), fmt.Sprintf("%.2f%%", 100*d.StdErr),
			fmt.Sprintf("%.2f%%", 100*d.Baseline), fmt.Sprintf("%+.3f", d.Skill)})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "mean skill %+.3f (± is one standard error)\n", res.Skill)
	fmt.Fprintf(w, "load per case: %.1f messages, %.1f KiB sent, %.1f ledger entries (%.1f KiB); %d actions refused, %d notifications\n",
		per.Messages, per.Bytes/1024, per.LedgerEntries, per.LedgerBytes/1024, res.Load.Refused, res.Load.Notifications)
	return nil
}
