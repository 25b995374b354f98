package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/policy"
)

// waitOutput runs a command until its output contains want.
func (n cliNode) waitOutput(t *testing.T, want string, args ...string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := n.cli(t, args...)
		if code == 0 && strings.Contains(out, want) {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v never printed %q; last: exit %d %s %s", args, want, code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond) // polling a command's output, with a deadline
	}
}

// TestFollowProductAdvisoryCommands: a coordinator follows the vendor,
// whose admin accepts; the vendor states a product, shares a draft the
// finder reviews, and publishes once the embargo ends; the coordinator
// unfollows. Bad command lines are one sentence each.
func TestFollowProductAdvisoryCommands(t *testing.T) {
	vendor := startCLINodeWith(t, node.Config{DefaultEmbargo: 30 * 24 * time.Hour}, "vendor:Organization")
	finder := startCLINode(t, "finder:Person")
	coord := startCLINode(t, "coord:Organization")
	vendorID, coordID, finderID := vendor.url+"/actors/vendor", coord.url+"/actors/coord", finder.url+"/actors/finder"

	coord.ok(t, "follow", vendorID)
	// The Follow is listed as pending until the vendor's admin answers.
	if out := coord.ok(t, "followers", "--following"); !strings.Contains(out, vendorID) || !strings.Contains(out, "pending") {
		t.Errorf("followers --following right after follow lacks the pending Follow:\n%s", out)
	}
	// --timeout waits for the Follow to arrive.
	if out := vendor.ok(t, "followers", "accept", coordID, "--timeout", "30s"); !strings.Contains(out, "accepted the Follow of "+coordID) {
		t.Errorf("followers accept: %s", out)
	}
	coord.waitOutput(t, "accepted", "followers", "--following")
	vendor.waitOutput(t, "accepted", "followers")

	report := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", vendorID, "--name", "Heap overflow", "--content", "x"))
	vendor.ok(t, "report", "show", report, "--timeout", "30s")
	caseID := strings.TrimSpace(vendor.ok(t, "report", "validate", "-q", report))
	vendor.ok(t, "case", "cve", caseID, "CVE-2026-5151")
	vendor.ok(t, "product", "add", caseID, "--product", "Widget", "--purl", "pkg:npm/widget@1.0.0", "--versions", "< 1.0.1", "--status", "affected", "--statement", "Upgrade to 1.0.1.")
	if out := vendor.ok(t, "case", "show", caseID); !strings.Contains(out, "Widget") || !strings.Contains(out, "pkg:npm/widget@1.0.0") || !strings.Contains(out, "CVE-2026-5151") {
		t.Errorf("case show lacks the product or the CVE id:\n%s", out)
	}
	for _, bad := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"product", "add", caseID, "--product", "W", "--status", "broken"}, 2, "--status is affected"},
		{[]string{"product", "add", caseID, "--product", "W", "--status", "fixed", "--purl", "npm/w"}, 2, "is not a package URL"},
		{[]string{"follow", "not-a-url"}, 2, "is not an actor's URL"},
		{[]string{"case", "cve", caseID, "CVE-26-1"}, 1, "CVE-YYYY-NNNN"},
		{[]string{"advisory", "publish", caseID}, 1, "embargo"},
		{[]string{"case", "note", caseID, "Fixed in 1.0.1."}, 2, "give the text with --content TEXT"},
		{[]string{"announce", vendor.url + "/cases/" + caseID}, 1, "an Announce to " + vendorID + "/followers shares a published advisory, not " + vendor.url + "/cases/" + caseID},
		{[]string{"announce", vendor.url + "/objects/draft-1"}, 1, "is not an advisory page"},
	} {
		code, _, errOut := vendor.cli(t, bad.args...)
		if code != bad.code || !strings.Contains(errOut, bad.want) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%v: exit %d, %q; want %d and one sentence with %q", bad.args, code, errOut, bad.code, bad.want)
		}
	}

	// A note an analyst of the vendor writes names her in case show.
	var dana api.AddedUser
	if err := json.Unmarshal([]byte(vendor.ok(t, "user", "add", "dana", "--role", "analyst", "--json")), &dana); err != nil {
		t.Fatal(err)
	}
	vendor.as(t, dana.Token).ok(t, "case", "note", caseID, "--content", "Reproduced on 1.0.")
	if out := vendor.ok(t, "case", "show", caseID); !strings.Contains(out, "/actors/vendor (dana): Reproduced on 1.0.") {
		t.Errorf("case show does not name the note's writer:\n%s", out)
	}

	vendor.ok(t, "advisory", "share", caseID, "--with", finderID, "--title", "Heap overflow in Widget", "--summary", "Upgrade to 1.0.1.")
	finder.ok(t, "case", "wait", caseID, "--until", "draft")
	finder.ok(t, "advisory", "review", caseID, "--approve", "--comment", "Accurate.")
	vendor.ok(t, "case", "wait", caseID, "--until", "reviewed")
	if out := vendor.ok(t, "case", "show", caseID); !strings.Contains(out, "approve: Accurate.") {
		t.Errorf("case show lacks the review:\n%s", out)
	}
	// A time that has passed is a bad command line; one to come is sent.
	if code, _, errOut := vendor.cli(t, "advisory", "propose-time", caseID, "--at", "2020-01-01T00:00:00Z"); code != 2 ||
		!strings.Contains(errOut, "--at 2020-01-01T00:00:00Z has passed") || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("advisory propose-time in the past: exit %d, %q; want 2 and one sentence saying it has passed", code, errOut)
	}
	at := time.Now().Add(40 * 24 * time.Hour).UTC().Format(time.RFC3339)
	vendor.ok(t, "advisory", "propose-time", caseID, "--at", at)
	finder.waitOutput(t, at, "case", "show", caseID)
	finder.ok(t, "advisory", "accept-time", caseID)
	vendor.waitOutput(t, "accepted by "+finderID, "case", "show", caseID)
	draft := vendor.ok(t, "advisory", "draft", caseID)
	if !json.Valid([]byte(draft)) || !strings.Contains(draft, `"status": "draft"`) || !strings.Contains(draft, "Heap overflow in Widget") {
		t.Errorf("advisory draft:\n%s", draft)
	}
	vendor.ok(t, "embargo", "terminate", caseID, "--reason", "fixed")
	// The agreed publication time is 40 days away: publishing now is
	// refused, in one sentence naming --force, until it is forced.
	if code, _, errOut := vendor.cli(t, "advisory", "publish", caseID); code != 1 ||
		!strings.Contains(errOut, "agreed to publish its advisory at "+at) || !strings.Contains(errOut, "--force") ||
		strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
		t.Errorf("advisory publish before the agreed time: exit %d, %q; want 1 and one sentence naming the time and --force", code, errOut)
	}
	out := vendor.ok(t, "advisory", "publish", caseID, "--force")
	if !strings.Contains(out, "revision 1 published") || !strings.Contains(out, "recorded in case") || !strings.Contains(out, "cve  ") {
		t.Errorf("advisory publish:\n%s", out)
	}
	// It returns once the case recorded the publication: the documents
	// are served at once.
	csafURL := ""
	for _, line := range strings.Split(out, "\n") {
		if u, ok := strings.CutPrefix(line, "csaf "); ok {
			csafURL = strings.TrimSpace(u)
		}
	}
	resp, err := http.Get(csafURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s right after advisory publish: %d", csafURL, resp.StatusCode)
	}
	finder.ok(t, "case", "wait", caseID, "--until", "published")
	if code, _, errOut := vendor.cli(t, "followers", "accept", "https://nobody.example/actors/x", "--timeout", "200ms"); code != 1 || !strings.Contains(errOut, "no Follow from https://nobody.example/actors/x") {
		t.Errorf("followers accept of an actor that never asked: exit %d, %q", code, errOut)
	}
	coord.ok(t, "unfollow", vendorID)
	deadline := time.Now().Add(30 * time.Second)
	for strings.Contains(vendor.ok(t, "followers"), coordID) {
		if time.Now().After(deadline) {
			t.Fatal("the coordinator still follows the vendor after unfollow")
		}
		time.Sleep(50 * time.Millisecond) // polling the command's output, with a deadline
	}
}

// TestFollowRefusedCommand: the vendor's node federates only with a
// partner and refuses the coordinator's Follow with 403; follow says so
// and exits 1, "followers --following" lists the Follow as failed and
// says why, in a sentence, and the JSON carries the reason.
func TestFollowRefusedCommand(t *testing.T) {
	vendor := startCLINodeWith(t, node.Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization")
	coord := startCLINode(t, "coord:Organization")
	vendorID := vendor.url + "/actors/vendor"

	if code, _, errOut := coord.cli(t, "follow", vendorID); code != 1 || !strings.Contains(errOut, "the delivery to "+vendorID+" failed for good: peer answered 403 Forbidden") {
		t.Errorf("follow refused with 403: exit %d, stderr %q; want exit 1 and the refusal", code, errOut)
	}
	out := coord.waitOutput(t, "failed", "followers", "--following")
	if !strings.Contains(out, "The Follow of "+vendorID+" failed at ") || !strings.Contains(out, "403 Forbidden") ||
		!strings.Contains(out, `"vultron follow `+vendorID+`" asks again.`) {
		t.Errorf("followers --following after the vendor refused the Follow:\n%s", out)
	}
	var ms []struct {
		ID, State, Reason string
	}
	if err := json.Unmarshal([]byte(coord.ok(t, "followers", "--following", "--json")), &ms); err != nil {
		t.Fatal(err)
	}
	if len(ms) != 1 || ms[0].ID != vendorID || ms[0].State != "failed" || !strings.Contains(ms[0].Reason, "403") {
		t.Errorf("followers --following --json: %+v, want the vendor, failed, with the 403", ms)
	}
	// The vendor's followers are not the place of the coordinator's Follow.
	if out := coord.ok(t, "followers"); strings.Contains(out, vendorID) {
		t.Errorf("the coordinator's followers list the vendor:\n%s", out)
	}
}
