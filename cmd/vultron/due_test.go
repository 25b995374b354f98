package main

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/node"
)

// TestDueCommand lists a vendor's deadlines for a report it received, then
// moves the vendor node's clock eight days on: "vultron due --overdue"
// lists the acknowledgement (5 business days) as overdue and not the
// validation (10), in the node's time zone and in UTC. A report's id, like
// a case's, keeps the listing to its clocks. The vendor's clocks are
// named by its name, those of the report as those of the case it opens.
func TestDueCommand(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	cfg, err := deadline.Parse([]byte("timezone: Europe/Berlin\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vendor := startCLINodeWith(t, node.Config{Now: now, Deadlines: &cfg, DeadlineCheck: 20 * time.Millisecond}, "vendor:Organization")
	finder := startCLINode(t, "finder:Person")
	report := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", vendor.url+"/actors/vendor", "--name", "Due test", "--content", "x"))
	vendor.ok(t, "report", "show", report, "--timeout", "30s")

	out := vendor.ok(t, "due")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "due (Europe/Berlin)") ||
		!strings.Contains(lines[1], "acknowledge  5 business days") || !strings.Contains(lines[2], "validate     10 business days") ||
		!strings.Contains(lines[1], `report `+report+` "Due test"`) || !strings.Contains(lines[1], "vendor") || !strings.Contains(lines[1], "CE") {
		t.Fatalf("vultron due:\n%s", out)
	}
	// A report's short id names its clocks, as the API's case= does.
	if code, out, errOut := vendor.cli(t, "due", report); code != 0 || out != strings.Join(lines, "\n")+"\n" {
		t.Errorf("vultron due REPORT: exit %d\n%s%s\nwant\n%s", code, out, errOut, strings.Join(lines, "\n"))
	}
	var reportClocks api.Deadlines
	if err := json.Unmarshal([]byte(vendor.ok(t, "due", "--json", report)), &reportClocks); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := vendor.cli(t, "due", "nosuchcase"); code != 1 || errOut != "vultron due: no case or report on the node matches \"nosuchcase\".\n" {
		t.Errorf("vultron due of an unknown id: exit %d, %q", code, errOut)
	}
	if out := vendor.ok(t, "due", "--overdue"); out != "Nothing is overdue.\n" {
		t.Fatalf("vultron due --overdue before the clock moved:\n%s", out)
	}
	offset.Store(int64(8 * 24 * time.Hour))
	out = vendor.ok(t, "due", "--overdue")
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "overdue by") || !strings.Contains(lines[1], "acknowledge") {
		t.Fatalf("vultron due --overdue after eight days:\n%s", out)
	}

	caseID := strings.TrimSpace(vendor.ok(t, "report", "validate", "-q", report))
	out = vendor.ok(t, "due", caseID)
	if !strings.Contains(out, "engage") || strings.Contains(out, "acknowledge") {
		t.Errorf("vultron due CASE after validation:\n%s", out)
	}
	// The vendor's clock of the case is named as its clock of the report
	// was, by the local actor's name: the table's last column, and the
	// API's local beside the actor's id.
	vendorID := vendor.url + "/actors/vendor"
	engage := regexp.MustCompile(`(?m)^.* engage .*$`).FindString(out)
	if !strings.HasSuffix(engage, "  vendor") || strings.Contains(out, vendorID) {
		t.Errorf("vultron due CASE names the vendor otherwise than by its name:\n%s", out)
	}
	var listed api.Deadlines
	if err := json.Unmarshal([]byte(vendor.ok(t, "due", "--json", caseID)), &listed); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(listed.Deadlines, reportClocks.Deadlines...) {
		if d.Participant == vendorID && (d.Local != "vendor" || !d.Mine) || d.Local == "vendor" && d.Participant != vendorID {
			t.Errorf("vultron due --json: %s clock of %s has participant %q, local %q, mine %v; want %s and vendor, mine",
				d.Kind, d.Subject, d.Participant, d.Local, d.Mine, vendorID)
		}
	}
	if len(reportClocks.Deadlines) == 0 || len(listed.Deadlines) == 0 {
		t.Errorf("vultron due --json: %d clocks of the report, %d of the case; want both", len(reportClocks.Deadlines), len(listed.Deadlines))
	}
	// The finder's time to answer an embargo proposal is due at its time,
	// with no limit counted to it.
	vendor.ok(t, "embargo", "propose", caseID, "--days", "60")
	out = vendor.ok(t, "due", caseID)
	if !regexp.MustCompile(`embargo_rsvp +at its time`).MatchString(out) || strings.Contains(out, "0 hours") {
		t.Errorf("vultron due CASE lists the answer-by time of an embargo proposal with a limit:\n%s", out)
	}
	// Attacks start the CRA's clocks beside the engagement: --limit keeps
	// the soonest, with the case named by its short id.
	vendor.ok(t, "status", "attacks", caseID)
	all := strings.Split(strings.TrimSpace(vendor.ok(t, "due", caseID)), "\n")
	if len(all) < 4 {
		t.Fatalf("vultron due CASE after attacks: %q, want the engagement and the CRA's clocks", all)
	}
	out = vendor.ok(t, "due", "--limit", "1", caseID)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[1], "cra_early_warning") {
		t.Errorf("vultron due --limit 1 CASE:\n%s\nwant the soonest (cra_early_warning) of\n%s", out, strings.Join(all, "\n"))
	}
	if code, _, errOut := vendor.cli(t, "due", "--limit", "0"); code != 2 || !strings.Contains(errOut, "--limit must be from 1 to 1000") {
		t.Errorf("due --limit 0: exit %d, %q", code, errOut)
	}
}

// TestServeRefusesBadDeadlines: a deadline file with a fault stops serve
// before it opens anything, with the line and the reason.
func TestServeRefusesBadDeadlines(t *testing.T) {
	bad := writeFile(t, "timezone: UTC\nlimits:\n  acknowledge: someday\n")
	dataDir := t.TempDir() + "/data"
	code, _, errOut := runCapture(t, "serve", "--data", dataDir, "--listen", "127.0.0.1:0", "--deadlines", bad)
	if code != 1 || !strings.Contains(errOut, "line 3: acknowledge: \"someday\" is not a limit") || strings.Count(errOut, "\n") != 1 {
		t.Errorf("serve with a bad deadline file: exit %d, %q", code, errOut)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("serve created its data directory before refusing the deadlines: %v", err)
	}
}

// TestOversizedFilesAreRefused: a policy or deadline file over its limit
// is refused with the limit, not with a size the file does not have (the
// reader stops one byte past the limit).
func TestOversizedFilesAreRefused(t *testing.T) {
	big := writeFile(t, "# "+strings.Repeat("x", 2<<20)+"\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"policy", []string{"policy", "check", big}, "the file is over the 1048576 bytes a policy may have."},
		{"deadlines", []string{"serve", "--data", t.TempDir() + "/data", "--listen", "127.0.0.1:0", "--deadlines", big},
			"the file is over the 65536 bytes a deadline configuration may have."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCapture(t, tt.args...)
			if code != 1 || !strings.HasSuffix(errOut, tt.want+"\n") {
				t.Errorf("%s: exit %d, %q; want it to end %q", tt.name, code, errOut, tt.want)
			}
		})
	}
}

// TestDueOnAUTCNode: on a node whose deadlines are counted in UTC, the
// listing shows each due time once, under "due (UTC)", not again in a UTC
// column beside it; and every column has a header, the time left "left".
func TestDueOnAUTCNode(t *testing.T) {
	cfg, err := deadline.Parse([]byte("timezone: UTC\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	vendor := startCLINodeWith(t, node.Config{Deadlines: &cfg, DeadlineCheck: 20 * time.Millisecond}, "vendor:Organization")
	finder := startCLINode(t, "finder:Person")
	report := strings.TrimSpace(finder.ok(t, "report", "submit", "-q", "--to", vendor.url+"/actors/vendor", "--name", "Due in UTC", "--content", "x"))
	vendor.ok(t, "report", "show", report, "--timeout", "30s")
	out := vendor.ok(t, "due")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Fields(lines[0])
	if len(lines) != 3 || strings.Join(header, " ") != "due (UTC) left clock limit case or report whose" {
		t.Fatalf("vultron due on a UTC node: header %q, want the due time once and a header for every column\n%s", header, out)
	}
	if date := lines[1][:len("2006-01-02")]; strings.Count(lines[1], date) != 1 {
		t.Errorf("a deadline's line shows its date %s %d times, want once: %q", date, strings.Count(lines[1], date), lines[1])
	}
}
