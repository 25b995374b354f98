package sim

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/rules"
)

// zFamily is the normal quantile that bounds the twelve desiderata's
// deviations together: P(|Z| > 4) = 6.3e-5 for one, so at most 7.6e-4
// that any of the twelve exceeds it by chance (Bonferroni). The run is
// seeded, so the test is deterministic; the bound says how far a correct
// simulator may stray for any seed.
const zFamily = 4.0

// TestRandomPolicyMatchesBaseline runs the random policy and checks that
// every desideratum's measured fraction is within sampling error of the
// random-walk baseline cvdstate computes, and that every history is one of
// the 70 valid ones.
func TestRandomPolicyMatchesBaseline(t *testing.T) {
	cases := 6000
	if testing.Short() {
		cases = 1500
	}
	res, err := Run(context.Background(), Config{Orgs: 9, Cases: cases, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Complete != cases || res.Cut != 0 {
		t.Fatalf("complete %d, cut %d of %d cases", res.Complete, res.Cut, cases)
	}
	valid := map[string]bool{}
	for _, h := range cvdstate.Histories() {
		valid[h.Events.String()] = true
	}
	for h := range res.Histories {
		if !valid[h] {
			t.Errorf("history %q is not a valid history of the case-state model", h)
		}
	}
	if len(res.Histories) < 60 {
		t.Errorf("only %d of the 70 histories occurred in %d cases", len(res.Histories), cases)
	}
	for _, d := range res.Desiderata {
		// The standard error under the null hypothesis, from the baseline.
		bound := zFamily * math.Sqrt(d.Baseline*(1-d.Baseline)/float64(cases))
		if math.Abs(d.Fraction-d.Baseline) > bound {
			t.Errorf("%s: measured %.4f, baseline %.4f: off by more than %.4f (%g standard errors over %d cases)",
				d.Desideratum, d.Fraction, d.Baseline, bound, zFamily, cases)
		}
	}
	if res.Load.Messages == 0 || res.Load.LedgerEntries < int64(cases)*8 {
		t.Errorf("load = %+v; want messages and at least 8 ledger entries a case", res.Load)
	}
}

// TestRunIsDeterministic checks that a run depends on its seed only, not
// on how many workers share the cases.
func TestRunIsDeterministic(t *testing.T) {
	p := examplePolicy(t, "fixed-schedule.yaml")
	a, err := Run(context.Background(), Config{Orgs: 12, Cases: 300, Seed: 7, Policy: p, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), Config{Orgs: 12, Cases: 300, Seed: 7, Policy: p, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Desiderata {
		if a.Desiderata[i].Met != b.Desiderata[i].Met {
			t.Errorf("%s: %d met with one worker, %d with three", a.Desiderata[i].Desideratum, a.Desiderata[i].Met, b.Desiderata[i].Met)
		}
	}
	if a.Load != b.Load {
		t.Errorf("load differs: %+v vs %+v", a.Load, b.Load)
	}
}

// examplePolicy reads a policy shipped in docs/examples/policies.
func examplePolicy(t *testing.T, name string) *rules.Policy {
	t.Helper()
	return examplePolicyB(t, name)
}

func examplePolicyB(t testing.TB, name string) *rules.Policy {
	t.Helper()
	path := filepath.Join("..", "docs", "examples", "policies", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := rules.Parse(data, name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRefusesBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Orgs: 1, Cases: 1}, {Orgs: 2, Cases: 10}, {Orgs: 5, Cases: 0}} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) succeeded", cfg)
		}
	}
}

// TestEngagedPointOpens runs a policy that proposes its embargo when it
// engages (case_engaged) rather than when the report arrives, and checks
// that the point opens: the same runs with the rule send the proposal and
// its answers, without it they do not, and every case still engages.
func TestEngagedPointOpens(t *testing.T) {
	const base = "name: engaged\nrules:\n  - on: report_received\n    do: [validate, engage]\n  - on: invitation_received\n    do: [accept_invitation, engage]\n  - on: embargo_proposed\n    do: [accept_embargo]\n"
	run := func(policy string) Result {
		t.Helper()
		p, err := rules.Parse([]byte(policy), "engaged.yaml")
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), Config{Orgs: 8, Cases: 50, Seed: 3, Policy: p, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	without := run(base)
	with := run(base + "  - on: case_engaged\n    if: 'actor == report.vendor || actor == case.owner'\n    do: [{propose_embargo: {days: 60}}]\n")
	if with.Load.Messages <= without.Load.Messages {
		t.Errorf("with a case_engaged rule the cases sent %d messages, without it %d: the rule did not fire", with.Load.Messages, without.Load.Messages)
	}
	if with.Load.Refused > without.Load.Refused+int64(with.Cases) {
		t.Errorf("the case_engaged rule was refused %d times more than once a case", with.Load.Refused-without.Load.Refused)
	}
}
