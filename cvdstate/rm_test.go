package cvdstate

import (
	"encoding/json"
	"errors"
	"testing"
)

// rmExpected is the RM automaton written out from the protocol: for each
// "STATE event" pair that is allowed, the next state and the message.
// Every pair not listed must be refused.
var rmExpected = map[string]struct{ to, msg string }{
	"START receive":       {"RECEIVED", ""},
	"RECEIVED validate":   {"VALID", "RV"},
	"RECEIVED invalidate": {"INVALID", "RI"},
	"INVALID validate":    {"VALID", "RV"},
	"INVALID close":       {"CLOSED", "RC"},
	"VALID accept":        {"ACCEPTED", "RA"},
	"VALID defer":         {"DEFERRED", "RD"},
	"ACCEPTED defer":      {"DEFERRED", "RD"},
	"ACCEPTED close":      {"CLOSED", "RC"},
	"DEFERRED accept":     {"ACCEPTED", "RA"},
	"DEFERRED close":      {"CLOSED", "RC"},
}

func TestRMStatesAndEdges(t *testing.T) {
	if n := len(RMStates()); n != 7 {
		t.Errorf("RM has %d states, want 7", n)
	}
	if n := len(RMTransitions()); n != 11 {
		t.Errorf("RM has %d transitions, want 11", n)
	}
	if len(rmExpected) != 11 {
		t.Fatalf("expected table has %d edges, want 11", len(rmExpected))
	}
	allowed := 0
	for _, s := range RMStates() {
		for _, e := range RMEvents() {
			key := s.String() + " " + e.String()
			to, msg, err := s.Apply(e)
			want, ok := rmExpected[key]
			if !ok {
				if err == nil {
					t.Errorf("%s: allowed (to %s), want refused", key, to)
				} else if !errors.Is(err, ErrNotAllowed) || to != s || msg != 0 {
					t.Errorf("%s: refusal = (%s, %v, %v), want same state, no message, ErrNotAllowed", key, to, msg, err)
				}
				continue
			}
			allowed++
			if err != nil {
				t.Errorf("%s: %v, want allowed", key, err)
				continue
			}
			if to.String() != want.to || msg.String() != want.msg {
				t.Errorf("%s = (%s, %q), want (%s, %q)", key, to, msg, want.to, want.msg)
			}
		}
	}
	if allowed != 11 {
		t.Errorf("%d (state, event) pairs allowed, want 11", allowed)
	}
}

func TestRMRefusalsSayWhy(t *testing.T) {
	tests := []struct {
		from RMState
		e    RMEvent
		want string
	}{
		{RMValid, RMClose, "RM transition close is not allowed from VALID: a report must be accepted or deferred before it is closed"},
		{RMValid, RMInvalidate, "RM transition invalidate is not allowed from VALID: only a report that is received and not yet validated can be found invalid"},
		{RMClosed, RMAccept, "RM transition accept is not allowed from CLOSED: a closed report is final"},
		{RMReceived, RMAccept, "RM transition accept is not allowed from RECEIVED: a report must be validated before it is accepted"},
		{RMStart, RMValidate, "RM transition validate is not allowed from START: the report has not been received yet"},
	}
	for _, tc := range tests {
		_, _, err := tc.from.Apply(tc.e)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Apply(%s, %s) error = %v, want %q", tc.from, tc.e, err, tc.want)
		}
		var te *TransitionError
		if !errors.As(err, &te) || te.Model != "RM" {
			t.Errorf("Apply(%s, %s) error is not an RM *TransitionError", tc.from, tc.e)
		}
	}
}

func TestRMSpellings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want RMState
	}{
		{"RECEIVED", RMReceived}, {"REPORT_MANAGEMENT_RECEIVED", RMReceived}, {"R", RMReceived},
		{"START", RMStart}, {"S", RMStart}, {"REPORT_MANAGEMENT_CLOSED", RMClosed}, {"accepted", RMAccepted},
		{"I", RMInvalid}, {"V", RMValid}, {"D", RMDeferred}, {"A", RMAccepted}, {"C", RMClosed},
	} {
		got, err := ParseRMState(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRMState(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if _, err := ParseRMState("OPEN"); err == nil {
		t.Error("ParseRMState(\"OPEN\") succeeded")
	}
	for _, s := range RMStates() {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back RMState
		if err := json.Unmarshal(b, &back); err != nil || back != s {
			t.Errorf("round trip of %s = %v, %v", s, back, err)
		}
	}
	for _, e := range RMEvents() {
		if got, err := ParseRMEvent(e.String()); err != nil || got != e {
			t.Errorf("ParseRMEvent(%q) = %v, %v", e, got, err)
		}
	}
	if _, err := RMState(9).MarshalText(); err == nil {
		t.Error("marshal of RMState(9) succeeded")
	}
	if _, err := RMEvent(0).MarshalText(); err == nil {
		t.Error("marshal of RMEvent(0) succeeded")
	}
	// The protocol's subsets.
	for _, s := range RMStates() {
		letter := s.Letter()
		if got, want := s.Open(), letter != "S" && letter != "C"; got != want {
			t.Errorf("%s.Open() = %v", s, got)
		}
		if got, want := s.Validated(), letter == "V" || letter == "D" || letter == "A"; got != want {
			t.Errorf("%s.Validated() = %v", s, got)
		}
		if got, want := s.Active(), letter == "R" || letter == "V" || letter == "A"; got != want {
			t.Errorf("%s.Active() = %v", s, got)
		}
	}
}

// TestRMShortestPaths checks the 15 shortest paths from START's first
// receipt to CLOSED that the protocol lists, written as event initials.
func TestRMShortestPaths(t *testing.T) {
	letters := map[byte]RMEvent{'r': RMReceive, 'v': RMValidate, 'i': RMInvalidate, 'a': RMAccept, 'd': RMDefer, 'c': RMClose}
	for _, path := range []string{"ric", "rvac", "rvdc", "rivac", "rivdc", "rvadc", "rvdac", "rivadc", "rvadac",
		"rvdadc", "rivdac", "rivdadc", "rvdadac", "rivadac", "rvadadc"} {
		s := RMStart
		for i := 0; i < len(path); i++ {
			next, _, err := s.Apply(letters[path[i]])
			if err != nil {
				t.Fatalf("path %s step %d: %v", path, i+1, err)
			}
			s = next
		}
		if s != RMClosed {
			t.Errorf("path %s ends in %s, want CLOSED", path, s)
		}
	}
}

// TestRMProgress checks that no RM edge leads to lesser progress, and that
// only the edges within one level (I→V, A→D, D→A) keep it.
func TestRMProgress(t *testing.T) {
	same := map[[2]RMState]bool{{RMInvalid, RMValid}: true, {RMAccepted, RMDeferred}: true, {RMDeferred, RMAccepted}: true}
	for _, tr := range RMTransitions() {
		from, to := tr.From.Progress(), tr.To.Progress()
		if to < from || (to == from) != same[[2]RMState{tr.From, tr.To}] {
			t.Errorf("%s -%s-> %s: progress %d to %d", tr.From, tr.Event, tr.To, from, to)
		}
	}
}
