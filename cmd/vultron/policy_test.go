package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/rules"
)

// TestPolicyCheck checks every shipped example and refuses a broken file
// with its line and reason, in one sentence, exit 1.
func TestPolicyCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "examples", "policies", "*"))
	if err != nil || len(files) < 5 {
		t.Fatalf("shipped policies: %v, %v", files, err)
	}
	for _, f := range files {
		code, out, errOut := runCapture(t, "policy", "check", f)
		if code != 0 || !strings.Contains(out, "rules, valid") {
			t.Errorf("policy check %s: exit %d\n%s%s", f, code, out, errOut)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - on: report_received\n    if: 'sendr == \"x\"'\n    do: [validate]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCapture(t, "policy", "check", bad)
	if code != 1 || out != "" || !strings.Contains(errOut, "line 3: rule 1: the condition does not compile: unknown name sendr") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("policy check of a broken file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	one := filepath.Join(t.TempDir(), "one.yaml")
	if err := os.WriteFile(one, []byte("rules:\n  - on: fix_ready\n    do: [report_public]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCapture(t, "policy", "check", one); code != 0 || !strings.HasPrefix(out, "policy "+one+": 1 rule, valid\n") {
		t.Errorf("policy check of a one-rule file: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := runCapture(t, "policy", "check"); code != 2 || !strings.Contains(errOut, "takes one file") {
		t.Errorf("policy check without a file: exit %d, %q", code, errOut)
	}
}

// TestPolicyExplain asks a running node which rules would fire in a case
// and why: the vendor's own 90-day proposal waits for the finder, so the
// rule that accepts proposals does not fire for the vendor yet and says
// so; the rule that opened the case is decided, and its explanation reads
// the report's title and text. At the finder's node, which submitted the
// report, report_received has nothing to decide.
func TestPolicyExplain(t *testing.T) {
	fp, err := rules.Parse([]byte("name: finder's\nrules:\n  - name: reports to me\n    on: report_received\n    do: [ask]\n"), "finder.yaml")
	if err != nil {
		t.Fatal(err)
	}
	finder := startCLINodeWith(t, node.Config{Policy: fp}, "finder:Person")
	p, err := rules.Parse([]byte(fmt.Sprintf(`name: explained
rules:
  - name: take alice's reports
    on: report_received
    if: 'sender in [%q]'
    do: [validate, engage, {propose_embargo: {days: 90}}]
  - name: reasonable embargoes
    on: embargo_proposed
    if: proposal.days >= 30 && proposal.days <= 120
    do: [accept_embargo]
  - name: reports about the login
    on: report_received
    if: report.content contains "login" && report.name != ""
    do: [ask]
`, finder.url+"/actors/finder")), "explained.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vendor := startCLINodeWith(t, node.Config{Policy: p, AutomationInterval: 20 * time.Millisecond}, "vendor:Organization")
	report := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", vendor.url+"/actors/vendor", "--name", "Explain", "--content", "the login form"))
	// The report's own short id is its case's too once validated; wait
	// for the case's proposal, which the policy makes.
	caseID := waitCaseOfReport(t, vendor, report)
	vendor.ok(t, "case", "wait", caseID, "--until", "em=PROPOSED", "--timeout", "30s")
	out := vendor.ok(t, "policy", "explain", caseID)
	for _, want := range []string{"policy explained",
		"report_received for " + vendor.url + "/actors/vendor (decided)", "take alice's reports (line 3) fires: validate, engage, propose_embargo 90 days",
		`holds with sender = "` + finder.url + `/actors/finder"`,
		"embargo_proposed for " + vendor.url + "/actors/vendor (not open now)",
		"reasonable embargoes (line 7) fires: accept_embargo", "because proposal.days >= 30 && proposal.days <= 120 holds with proposal.days = 90",
		// The decided report_received reads the report the vendor received.
		"reports about the login (line 11) fires: ask",
		`report.content = "the login form"`, `report.name = "Explain"`} {
		if !strings.Contains(out, want) {
			t.Errorf("policy explain lacks %q:\n%s", want, out)
		}
	}
	// The finder submitted the report: nothing is there for it to decide
	// at report_received, rather than a rule firing on its own report.
	finder.ok(t, "case", "wait", caseID, "--until", "em=PROPOSED", "--timeout", "30s")
	out = finder.ok(t, "policy", "explain", caseID)
	if want := "reports to me (line 3) does not fire\n    because finder received none of the case's reports\n"; !strings.Contains(out, want) {
		t.Errorf("policy explain at the reporter's node lacks %q:\n%s", want, out)
	}
	// Once the finder accepted the proposal, the policy accepted the
	// vendor's own, which put it in force: the case no longer holds the
	// proposal, and explain says it was decided, how, when and by which
	// rule, rather than that no proposal is open.
	finder.ok(t, "embargo", "accept", caseID, "--as", "finder")
	vendor.ok(t, "case", "wait", caseID, "--until", "em=ACTIVE", "--timeout", "30s")
	out = vendor.ok(t, "policy", "explain", caseID)
	for _, want := range []string{"embargo_proposed for " + vendor.url + "/actors/vendor (decided)",
		"reasonable embargoes (line 7) does not fire\n    because the embargo proposal ",
		" is closed: vendor accepted it at ", " (automatic: reasonable embargoes of policy explained)\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy explain of the proposal put in force lacks %q:\n%s", want, out)
		}
	}
	// In a closed case the policy decides nothing, and says why.
	vendor.ok(t, "case", "close", caseID)
	if out := vendor.ok(t, "policy", "explain", caseID); !strings.HasSuffix(out, "the case is closed: the policy decides nothing in it\n") {
		t.Errorf("policy explain of a closed case:\n%s", out)
	}
	if code, _, errOut := vendor.cli(t, "policy", "explain", "nosuchcase"); code != 1 || !strings.Contains(errOut, "no case") {
		t.Errorf("explain of an unknown case: exit %d, %q", code, errOut)
	}
}

// waitCaseOfReport polls "report show" until the report's case is open,
// for at most 30 seconds, and returns the case's id.
func waitCaseOfReport(t *testing.T, n cliNode, report string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var r struct {
			Case string `json:"case"`
		}
		if err := json.Unmarshal([]byte(n.ok(t, "report", "show", report, "--timeout", "30s", "--json")), &r); err != nil {
			t.Fatal(err)
		}
		if r.Case != "" {
			return r.Case
		}
		if time.Now().After(deadline) {
			t.Fatalf("report %s has no case after 30 s", report)
		}
		time.Sleep(20 * time.Millisecond) // the policy acts on its own schedule
	}
}

// TestPolicyShow prints the policy a running node follows as policy check
// prints a file: its name and source, the actors it is off for, its
// rules.
func TestPolicyShow(t *testing.T) {
	p, err := rules.Parse([]byte("name: shown\noff: [bot]\nrules:\n  - name: attacks\n    on: intel_attacks_observed\n    do: [report_attacks]\n"), "shown.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vendor := startCLINodeWith(t, node.Config{Policy: p}, "vendor:Organization", "bot:Service")
	out := vendor.ok(t, "policy", "show")
	for _, want := range []string{"policy shown (shown.yaml): 1 rule\n", "off for: bot\n", "attacks  intel_attacks_observed  -   report_attacks"} {
		if !strings.Contains(out, want) {
			t.Errorf("policy show lacks %q:\n%s", want, out)
		}
	}
}
