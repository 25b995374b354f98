package main

import (
	"strings"
	"testing"
)

// TestCaseCVE records a CVE id and an alias in a case through the ledger
// and reads them back; a malformed id is refused in one sentence.
func TestCaseCVE(t *testing.T) {
	vendor := startCLINode(t, "vendor:Organization")
	finder := startCLINode(t, "finder:Person")
	report := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", vendor.url+"/actors/vendor", "--name", "CVE test", "--content", "x"))
	vendor.ok(t, "report", "show", report, "--timeout", "30s")
	caseID := strings.TrimSpace(vendor.ok(t, "report", "validate", "-q", report))
	checkSent(t, "Add", vendor.ok(t, "case", "cve", caseID, "cve-2026-4242", "--aliases", "GHSA-abcd-efgh-ijkl"))
	out := vendor.ok(t, "case", "show", caseID, "--json")
	if !strings.Contains(out, `"vulnerabilityIds":[`) || !strings.Contains(out, `"CVE-2026-4242"`) || !strings.Contains(out, `"GHSA-ABCD-EFGH-IJKL"`) {
		t.Fatalf("case show --json after case cve:\n%s", out)
	}
	code, _, errOut := vendor.cli(t, "case", "cve", caseID, "CVE 2026")
	if code != 1 || !strings.Contains(errOut, `"CVE 2026" is not a vulnerability id`) {
		t.Errorf("case cve with a bad id: exit %d, %q", code, errOut)
	}
}
