package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/cvdstate"
)

// TestSimulateRandomMatchesBaseline runs the command of issue 19's
// acceptance, "vultron simulate --policy random --cases 20000 --seed 1",
// and checks that every desideratum's share is within sampling error of
// the baseline "vultron model desiderata" prints: four standard errors of
// a binomial share at the baseline, so that the twelve together stray that
// far by chance less than once in a thousand runs.
func TestSimulateRandomMatchesBaseline(t *testing.T) {
	cases := "20000"
	if testing.Short() {
		cases = "3000"
	}
	code, out, errOut := runCapture(t, "simulate", "--policy", "random", "--cases", cases, "--seed", "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Cases      int                `json:"cases"`
		Complete   int                `json:"complete"`
		Desiderata map[string]float64 `json:"desiderata"`
		Baseline   map[string]float64 `json:"baseline"`
		PerCase    struct {
			Messages      float64 `json:"messages"`
			LedgerEntries float64 `json:"ledgerEntries"`
		} `json:"perCase"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if got.Complete != got.Cases {
		t.Errorf("%d of %d cases complete", got.Complete, got.Cases)
	}
	n := float64(got.Cases)
	for _, b := range cvdstate.Baselines() {
		name := strings.ReplaceAll(b.Desideratum.String(), "≺", "<")
		f, ok := got.Desiderata[name]
		if !ok {
			t.Errorf("desiderata has no %q: %v", name, got.Desiderata)
			continue
		}
		if got.Baseline[name] != b.Frequency {
			t.Errorf("%s: baseline %v, model says %v", name, got.Baseline[name], b.Frequency)
		}
		bound := 4 * math.Sqrt(b.Frequency*(1-b.Frequency)/n)
		if math.Abs(f-b.Frequency) > bound {
			t.Errorf("%s: %.4f met, baseline %.4f, more than %.4f apart", name, f, b.Frequency, bound)
		}
	}
	if got.PerCase.Messages <= 0 || got.PerCase.LedgerEntries < 8 {
		t.Errorf("per case load = %+v", got.PerCase)
	}
}

// TestSimulateComparesPolicies runs the shipped example policies side by
// side, draws them, and checks the difference docs/simulation.md
// describes: publishing only once the fix is deployed meets D≺P more often
// than publishing on a fixed schedule, and both beat publishing at the fix.
func TestSimulateComparesPolicies(t *testing.T) {
	dir := filepath.Join("..", "..", "docs", "examples", "policies")
	svg := filepath.Join(t.TempDir(), "cmp.svg")
	code, out, errOut := runCapture(t, "simulate", "--cases", "1500", "--seed", "2", "--svg", svg,
		"--policy", filepath.Join(dir, "fix-first.yaml"), "--policy", filepath.Join(dir, "fixed-schedule.yaml"),
		"--policy", filepath.Join(dir, "publish-at-fix.yaml"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	dp := map[string]float64{}
	policy := ""
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "simulated ") {
			_, after, _ := strings.Cut(line, "policy ")
			policy, _, _ = strings.Cut(after, ",")
		}
		if f := strings.Fields(line); len(f) == 5 && f[0] == "D≺P" {
			var v float64
			if err := json.Unmarshal([]byte(strings.TrimSuffix(f[1], "%")), &v); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			dp[policy] = v
		}
	}
	if len(dp) != 3 {
		t.Fatalf("found D≺P for %v in:\n%s", dp, out)
	}
	if !(dp["fix-first/v1"] > dp["fixed-schedule/v1"] && dp["fixed-schedule/v1"] > dp["publish-at-fix/v1"]) {
		t.Errorf("D≺P met: %v; want fix-first > fixed-schedule > publish-at-fix", dp)
	}
	data, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "fix-first/v1", "publish-at-fix/v1", "random-walk baseline", "D≺P"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}

func TestSimulateRefusals(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - on: report_received\n    do: [fly]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"simulate", "--orgs", "2"}, 2, "at least 3 organizations"},
		{[]string{"simulate", "--orgs", "1", "--policy", bad}, 2, "--orgs must be from 2 to 100000, not 1"},
		{[]string{"simulate", "--cases", "0"}, 2, "--cases must be from 1 to 10000000, not 0"},
		{[]string{"simulate", "--cases", "-5", "--policy", "random", "--policy", "random"}, 2, "--cases must be from 1"},
		{[]string{"simulate", "--policy", bad}, 1, `line 3: rule 1: "fly" is not an action`},
		{[]string{"simulate", "--policy", "random", "--policy", "random", "--json"}, 2, "--json prints one run"},
		{[]string{"simulate", "extra"}, 2, "takes no arguments"},
	}
	for _, tc := range tests {
		code, _, errOut := runCapture(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || strings.Contains(errOut, "simulate: simulate:") {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
}
