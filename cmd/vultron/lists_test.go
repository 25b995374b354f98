package main

import (
	"strings"
	"testing"
	"time"
)

// TestEmptyListsSayNone checks that every list command, with nothing to
// list, prints one sentence that says so rather than a table's header
// alone, which reads as output cut short.
func TestEmptyListsSayNone(t *testing.T) {
	vendor := startCLINode(t, "vendor:Organization")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"followers"}, "vendor has no followers.\n"},
		{[]string{"followers", "--pending"}, "No Follow of vendor waits for an answer.\n"},
		{[]string{"followers", "--following"}, "vendor follows no one (vultron follow ACTOR asks to).\n"},
		{[]string{"followers", "--following", "--pending"}, "vendor waits for no answer to a Follow.\n"},
		{[]string{"user", "sessions", "admin"}, "admin has no dashboard sessions.\n"},
		{[]string{"case", "list"}, "No cases: a case opens when a report is validated (vultron report validate).\n"},
		{[]string{"report", "list"}, "No reports.\n"},
		{[]string{"due"}, "No deadline is running.\n"},
		{[]string{"due", "--overdue"}, "Nothing is overdue.\n"},
		{[]string{"deliveries"}, "No pending deliveries.\nNo dead letters.\n"},
		{[]string{"deliveries", "damaged"}, "No damaged delivery records.\n"},
		{[]string{"audit", "show", "--after", "1000000"}, "No audit records after 1000000.\n"},
		{[]string{"webhooks"}, "No webhooks (serve --webhook URL adds one).\n"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := vendor.cli(t, tc.args...)
			if code != 0 || out != tc.want {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, tc.want)
			}
		})
	}

	// A Follow that waits for the admin is not a follower, and the empty
	// list says where it is.
	coord := startCLINode(t, "coordinator:Service")
	coord.ok(t, "follow", vendor.url+"/actors/vendor")
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(vendor.ok(t, "followers", "--pending"), coord.url+"/actors/coordinator") {
		if time.Now().After(deadline) {
			t.Fatal("the coordinator's Follow did not reach the vendor in 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	want := "vendor has no followers yet; 1 Follow waits for an answer (vultron followers --pending lists it).\n"
	if code, out, errOut := vendor.cli(t, "followers"); code != 0 || out != want {
		t.Errorf("followers with one pending: exit %d, stdout %q, stderr %q; want %q", code, out, errOut, want)
	}
}

// TestEmptyListsPrintEmptyJSONLists checks that --json of a list command
// with nothing to list prints [], which a script can iterate, not null.
func TestEmptyListsPrintEmptyJSONLists(t *testing.T) {
	vendor := startCLINode(t, "vendor:Organization")
	for _, args := range [][]string{
		{"case", "list"}, {"report", "list"}, {"followers"}, {"followers", "--pending"}, {"followers", "--following"},
		{"user", "sessions"}, {"audit", "show", "--after", "1000000"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := vendor.cli(t, append(args, "--json")...)
			if code != 0 || strings.TrimSpace(out) != "[]" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and []", code, out, errOut)
			}
		})
	}
}
