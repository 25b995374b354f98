package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
)

// caseEmbargoJSON is the embargo part of case show --json.
type caseEmbargoJSON struct {
	ID        string `json:"id"`
	EMState   string `json:"emState"`
	Proposals []struct {
		InviteID string `json:"inviteId"`
		Terms    struct {
			End      time.Time `json:"end"`
			Proposer string    `json:"proposer"`
		} `json:"terms"`
	} `json:"proposals"`
}

// TestCLIReportWithEmbargo submits a report with an embargo proposal
// (report submit --embargo-days, RS|EP): the case its validation opens
// has the finder's proposal pending, which the vendor accepts. The two
// ways of giving the end cannot be combined, and an end that has passed
// is refused by the finder's node in one sentence.
func TestCLIReportWithEmbargo(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization")
	finder, vendor := finderNode.url+"/actors/finder", vendorNode.url+"/actors/vendor"

	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--embargo-days", "30", "--embargo-end", "2030-01-01T00:00:00Z"}, 2, "give --embargo-end or --embargo-days, not both"},
		{[]string{"--embargo-end", "next week"}, 2, "--embargo-end must be an RFC 3339 time"},
		{[]string{"--embargo-end", "2020-01-01T00:00:00Z"}, 1, "has passed"},
	}
	for _, tt := range tests {
		args := append([]string{"report", "submit", "--to", vendor, "--name", "r"}, tt.args...)
		code, _, errOut := finderNode.cli(t, args...)
		if code != tt.code || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit %d saying %q", tt.args, code, errOut, tt.code, tt.want)
		}
	}

	var out struct {
		Activity map[string]any `json:"activity"`
	}
	if err := json.Unmarshal([]byte(finderNode.ok(t, "report", "submit", "--to", vendor, "--name", "Heap overflow", "--embargo-days", "30", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	if inst, _ := out.Activity["instrument"].(map[string]any); inst["type"] != "EmbargoEvent" {
		t.Fatalf("the offer carries no embargo proposal: %v", out.Activity)
	}
	offer := out.Activity["id"].(string)
	waitUntilTrue(t, "the report at the vendor", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "validate", offer, "--as", "vendor")
		return code == 0
	})
	caseID := onlyCase(t, vendorNode)
	var ce caseEmbargoJSON
	if err := json.Unmarshal([]byte(vendorNode.ok(t, "case", "show", caseID, "--json")), &ce); err != nil {
		t.Fatal(err)
	}
	if ce.EMState != "PROPOSED" || len(ce.Proposals) != 1 || ce.Proposals[0].Terms.Proposer != finder ||
		ce.Proposals[0].Terms.End.Before(time.Now().Add(29*24*time.Hour)) {
		t.Fatalf("the new case: %+v; want the finder's 30-day proposal pending", ce)
	}
	vendorNode.ok(t, "embargo", "accept", caseID, "--as", "vendor", "--wait", "em=ACTIVE", "--timeout", "20s")
}

// TestCLISeveralReports runs the commands for several reports of one
// vulnerability: report add (the owner adds a second report to the case),
// report duplicate (a third is closed as a duplicate of the case) and
// case link (a second case is related to the first), with their usage
// errors.
func TestCLISeveralReports(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization")
	vendor := vendorNode.url + "/actors/vendor"
	submit := func(name string) string {
		var out struct {
			Activity map[string]any `json:"activity"`
		}
		if err := json.Unmarshal([]byte(finderNode.ok(t, "report", "submit", "--to", vendor, "--name", name, "--json")), &out); err != nil {
			t.Fatal(err)
		}
		return out.Activity["id"].(string)
	}
	first, second, third, fourth := submit("Auth bypass"), submit("Auth bypass, again"), submit("Auth bypass, third time"), submit("Token leak")
	waitUntilTrue(t, "the first report at the vendor", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "validate", first, "--as", "vendor")
		return code == 0
	})
	caseIDs := func() []string {
		var cs []caseJSON
		code, out, _ := vendorNode.cli(t, "case", "list", "--json")
		if code != 0 || json.Unmarshal([]byte(out), &cs) != nil {
			return nil
		}
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		return ids
	}
	caseID := onlyCase(t, vendorNode)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "add", caseID}, "report add needs --offer OFFER"},
		{[]string{"report", "duplicate", second}, "report duplicate needs --of CASE"},
		{[]string{"case", "link", caseID}, "give one of --parent, --child or --sibling"},
		{[]string{"case", "link", caseID, "--parent", "a", "--child", "b"}, "give one of --parent, --child or --sibling"},
	} {
		if code, _, errOut := vendorNode.cli(t, append(tt.args, "--as", "vendor")...); code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 saying %q", tt.args, code, errOut, tt.want)
		}
	}
	var added string
	waitUntilTrue(t, "the second report added to the case", func() bool {
		code, out, _ := vendorNode.cli(t, "report", "add", caseID, "--offer", second, "--as", "vendor")
		added = out
		return code == 0
	})
	checkSent(t, "Add", added)
	waitUntilTrue(t, "the third report closed as a duplicate", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "duplicate", third, "--of", caseID, "--as", "vendor")
		return code == 0
	})
	// Both sides' report says which case it duplicates, not that it waits
	// for a case.
	dup := "case      none: closed as a duplicate of case " + cases.ShortID(caseID) + " (" + caseID + ")"
	if out := vendorNode.ok(t, "report", "show", third); !strings.Contains(out, dup) {
		t.Errorf("the vendor's report show of the duplicate:\n%s\nwant %q", out, dup)
	}
	waitUntilTrue(t, "the finder's record of the duplicate", func() bool {
		return strings.Contains(finderNode.ok(t, "report", "show", third), dup)
	})
	// The list says it in its case column too, rather than "-" as for a
	// report that waits for a decision.
	for _, n := range []cliNode{vendorNode, finderNode} {
		if out := n.ok(t, "report", "list"); !strings.Contains(out, "duplicate of "+cases.ShortID(caseID)+"  ") {
			t.Errorf("report list at %s does not name the case the third report duplicates:\n%s", n.url, out)
		}
	}
	var c struct {
		Reports []string `json:"reports"`
	}
	waitUntilTrue(t, "both reports in the case", func() bool {
		return json.Unmarshal([]byte(vendorNode.ok(t, "case", "show", caseID, "--json")), &c) == nil && len(c.Reports) == 2
	})
	if code, _, errOut := vendorNode.cli(t, "report", "validate", second, "--as", "vendor"); code != 1 || !strings.Contains(errOut, "already in case") {
		t.Errorf("validating an added report: exit %d, %q", code, errOut)
	}
	waitUntilTrue(t, "the fourth report validated", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "validate", fourth, "--as", "vendor")
		return code == 0
	})
	var other string
	waitUntilTrue(t, "the second case", func() bool {
		for _, id := range caseIDs() {
			if id != caseID {
				other = id
			}
		}
		return other != ""
	})
	checkSent(t, "Update", vendorNode.ok(t, "case", "link", other, "--parent", caseID, "--as", "vendor"))
	var related struct {
		Related []struct{ Relation, Case string } `json:"related"`
	}
	waitUntilTrue(t, "the relation seen from the parent", func() bool {
		return json.Unmarshal([]byte(vendorNode.ok(t, "case", "show", caseID, "--json")), &related) == nil &&
			len(related.Related) == 1 && related.Related[0].Relation == "child" && related.Related[0].Case == other
	})
}

// TestCLIEngagementAndAdherence has the finder leave active work while
// keeping the embargo (case engagement --off), then declare it will not
// honour the embargo (embargo withdraw), which ends it.
func TestCLIEngagementAndAdherence(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization")
	vendor := vendorNode.url + "/actors/vendor"
	finder := finderNode.url + "/actors/finder"
	var out struct {
		Activity map[string]any `json:"activity"`
	}
	if err := json.Unmarshal([]byte(finderNode.ok(t, "report", "submit", "--to", vendor, "--name", "r", "--embargo-days", "30", "--json")), &out); err != nil {
		t.Fatal(err)
	}
	waitUntilTrue(t, "the report at the vendor", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "validate", out.Activity["id"].(string), "--as", "vendor")
		return code == 0
	})
	caseID := onlyCase(t, finderNode)
	vendorNode.ok(t, "embargo", "accept", caseID, "--as", "vendor", "--wait", "em=ACTIVE", "--timeout", "20s")
	finderNode.ok(t, "case", "wait", caseID, "--until", "em=ACTIVE", "--timeout", "20s")
	if code, _, errOut := finderNode.cli(t, "case", "engagement", caseID); code != 2 || !strings.Contains(errOut, "give --off or --on") {
		t.Errorf("case engagement without --off or --on: exit %d, %q", code, errOut)
	}
	checkSent(t, "Add", finderNode.ok(t, "case", "engagement", caseID, "--off", "--reason", "our part is done"))
	engaged := func() string {
		var c struct {
			Participants []struct {
				Actor            string `json:"actor"`
				Engaged          bool   `json:"engaged"`
				EmbargoAdherence bool   `json:"embargoAdherence"`
			} `json:"participants"`
		}
		_ = json.Unmarshal([]byte(vendorNode.ok(t, "case", "show", caseID, "--json")), &c)
		for _, p := range c.Participants {
			if p.Actor == finder {
				return fmt.Sprintf("engaged %v adheres %v", p.Engaged, p.EmbargoAdherence)
			}
		}
		return "absent"
	}
	waitUntilTrue(t, "the finder out of active work, keeping the embargo", func() bool { return engaged() == "engaged false adheres true" })
	checkSent(t, "ET", finderNode.ok(t, "embargo", "withdraw", caseID, "--reason", "we present it on the 3rd", "--wait", "em=EXITED", "--timeout", "20s"))
	waitUntilTrue(t, "the finder's declaration at the owner", func() bool { return engaged() == "engaged false adheres false" })
}

// onlyCase waits until node n holds exactly one case and returns its id.
func onlyCase(t *testing.T, n cliNode) string {
	t.Helper()
	var id string
	waitUntilTrue(t, "the one case on "+n.url, func() bool {
		var cs []caseJSON
		code, out, _ := n.cli(t, "case", "list", "--json")
		if code == 0 && json.Unmarshal([]byte(out), &cs) == nil && len(cs) == 1 {
			id = cs[0].ID
		}
		return id != ""
	})
	return id
}

// TestWithdrawalMessage checks what embargo withdraw says it sent in each
// EM state: the teardown it causes, or, with no embargo and no proposal,
// the Add it is.
func TestWithdrawalMessage(t *testing.T) {
	for _, tt := range []struct{ em, want string }{
		{"ACTIVE", "ET"},
		{"REVISE", "ET"},
		{"PROPOSED", "ER"},
		{"NONE", noMessage},
		{"EXITED", noMessage},
	} {
		if got := withdrawalMessage(tt.em); got != tt.want {
			t.Errorf("withdrawalMessage(%s) = %q, want %q", tt.em, got, tt.want)
		}
	}
}
