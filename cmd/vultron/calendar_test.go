package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
)

// TestCalendarCommand checks vultron calendar [token] [--rotate] against a
// node: the printed feed URL reads the feed, --rotate prints a new one and
// retires the old, and a stray argument is a usage error (exit 2).
func TestCalendarCommand(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	feedURL := func(args ...string) string {
		t.Helper()
		var links api.CalendarLinks
		out := n.ok(t, append(args, "--json")...)
		if err := json.Unmarshal([]byte(out), &links); err != nil || !strings.Contains(links.Calendar, "/calendar.ics?token=") ||
			!strings.Contains(links.CaseTemplate, "/api/cases/{id}/embargo.ics?token=") {
			t.Fatalf("vultron %s printed %q (%v)", strings.Join(args, " "), out, err)
		}
		return links.Calendar
	}
	status := func(u string) int {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	old := feedURL("calendar")
	if again := feedURL("calendar", "token"); again != old {
		t.Errorf("calendar token printed %s, calendar %s; want the same", again, old)
	}
	if st := status(old); st != http.StatusOK {
		t.Fatalf("GET %s: %d", old, st)
	}
	rotated := feedURL("calendar", "token", "--rotate")
	if rotated == old {
		t.Fatalf("--rotate printed the old feed URL")
	}
	if st := status(old); st != http.StatusUnauthorized {
		t.Errorf("the retired feed URL: %d, want 401", st)
	}
	if st := status(rotated); st != http.StatusOK {
		t.Errorf("the new feed URL: %d, want 200", st)
	}
	if out := n.ok(t, "calendar"); !strings.Contains(out, rotated) {
		t.Errorf("vultron calendar after rotation printed %q, want %s", out, rotated)
	}
	if code, _, errOut := n.cli(t, "calendar", "feeds"); code != 2 || !strings.Contains(errOut, "token") {
		t.Errorf("calendar feeds: exit %d, %q; want a usage error", code, errOut)
	}
}

// TestUserDisableAndRemoveSayTheFeedURLsChanged: disabling or removing a
// user retires the calendar feed URLs every subscriber holds, so the
// command says so and where the new ones are, and the old URL is refused.
func TestUserDisableAndRemoveSayTheFeedURLsChanged(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	n.ok(t, "user", "add", "alice", "--role", "viewer")
	n.ok(t, "user", "add", "bob", "--role", "viewer")
	for _, args := range [][]string{{"user", "disable", "alice"}, {"user", "remove", "bob"}} {
		var links api.CalendarLinks
		if err := json.Unmarshal([]byte(n.ok(t, "calendar", "--json")), &links); err != nil {
			t.Fatal(err)
		}
		out := n.ok(t, args...)
		if !strings.Contains(out, "calendar feed URLs") || !strings.Contains(out, "vultron calendar") {
			t.Errorf("vultron %s printed %q; want it to say the calendar feed URLs changed and vultron calendar prints the new ones", strings.Join(args, " "), out)
		}
		resp, err := http.Get(links.Calendar)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("after vultron %s the old feed URL answers %d, want 401", strings.Join(args, " "), resp.StatusCode)
		}
	}
}
