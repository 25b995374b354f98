// Package icaltest checks the node's iCalendar feeds in tests, in the
// node's tests (which read the feeds over HTTP) and in the calendar
// package's (which write them directly).
package icaltest

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

// sequenceLine is a SEQUENCE property as RFC 5545 types it: an INTEGER.
var sequenceLine = regexp.MustCompile(`^SEQUENCE:[0-9]+$`)

// CheckRFC5545 checks the raw feed against RFC 5545's line rules: CRLF
// endings only, no line longer than 75 octets, and that it parses back.
func CheckRFC5545(t testing.TB, raw []byte) *ical.Calendar {
	t.Helper()
	if bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\n")) || bytes.Contains(bytes.ReplaceAll(raw, []byte("\r\n"), nil), []byte("\r")) {
		t.Errorf("the feed has a line ending other than CRLF")
	}
	if !bytes.HasSuffix(raw, []byte("\r\n")) {
		t.Errorf("the feed does not end with CRLF")
	}
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\r\n"), "\r\n") {
		if len(line) > 75 {
			t.Errorf("a line of %d octets: %q", len(line), line)
		}
		// SEQUENCE is an INTEGER: a bare number, never VALUE=TEXT.
		if strings.HasPrefix(line, "SEQUENCE") && !sequenceLine.MatchString(line) {
			t.Errorf("SEQUENCE line %q is not an INTEGER property", line)
		}
	}
	cal, err := ical.NewDecoder(bytes.NewReader(raw)).Decode()
	if err != nil {
		t.Fatalf("the feed does not parse back: %v\n%s", err, raw)
	}
	for _, p := range []string{ical.PropVersion, ical.PropProductID} {
		if cal.Props.Get(p) == nil {
			t.Errorf("the calendar lacks %s", p)
		}
	}
	for _, ev := range cal.Events() {
		for _, p := range []string{ical.PropUID, ical.PropDateTimeStamp, ical.PropDateTimeStart} {
			if ev.Props.Get(p) == nil {
				t.Errorf("an event lacks %s", p)
			}
		}
		for _, p := range []string{ical.PropDateTimeStart, ical.PropDateTimeStamp} {
			if v := ev.Props.Get(p); v != nil && !strings.HasSuffix(v.Value, "Z") {
				t.Errorf("%s %q is not in UTC", p, v.Value)
			}
		}
	}
	return cal
}

// MainEvent returns the one event of a calendar that is not a proposal,
// and how many events the calendar has.
func MainEvent(t testing.TB, cal *ical.Calendar) (ical.Event, int) {
	t.Helper()
	var found []ical.Event
	for _, ev := range cal.Events() {
		if ev.Props.Get(ical.PropRelatedTo) == nil && !strings.Contains(ev.Props.Get(ical.PropSummary).Value, "proposed") {
			found = append(found, ev)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d embargo events, want 1", len(found))
	}
	return found[0], len(cal.Events())
}
