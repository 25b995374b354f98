package cvdstate

import (
	"errors"
	"testing"
)

// emExpected is the EM automaton written out from the protocol.
var emExpected = map[string]struct{ to, msg string }{
	"NONE propose":     {"PROPOSED", "EP"},
	"PROPOSED propose": {"PROPOSED", "EP"},
	"PROPOSED reject":  {"NONE", "ER"},
	"PROPOSED accept":  {"ACTIVE", "EA"},
	"ACTIVE propose":   {"REVISE", "EV"},
	"ACTIVE terminate": {"EXITED", "ET"},
	"REVISE propose":   {"REVISE", "EV"},
	"REVISE reject":    {"ACTIVE", "EJ"},
	"REVISE accept":    {"ACTIVE", "EC"},
	"REVISE terminate": {"EXITED", "ET"},
}

func TestEMStatesAndEdges(t *testing.T) {
	if n := len(EMStates()); n != 5 {
		t.Errorf("EM has %d states, want 5", n)
	}
	if n := len(EMTransitions()); n != 10 {
		t.Errorf("EM has %d transitions, want 10", n)
	}
	allowed := 0
	for _, s := range EMStates() {
		for _, e := range EMEvents() {
			key := s.String() + " " + e.String()
			to, msg, err := s.Apply(e)
			want, ok := emExpected[key]
			if !ok {
				if !errors.Is(err, ErrNotAllowed) || to != s {
					t.Errorf("%s = (%s, %v, %v), want refused", key, to, msg, err)
				}
				if _, merr := s.MessageFor(e); merr == nil {
					t.Errorf("MessageFor(%s) succeeded for a refused pair", key)
				}
				continue
			}
			allowed++
			if err != nil || to.String() != want.to || msg.String() != want.msg {
				t.Errorf("%s = (%s, %q, %v), want (%s, %q)", key, to, msg, err, want.to, want.msg)
			}
			// The wire-identical pairs are told apart by the state alone.
			if m, err := s.MessageFor(e); err != nil || m.String() != want.msg {
				t.Errorf("MessageFor(%s) = %v, %v; want %s", key, m, err, want.msg)
			}
			if back, ok := EMEventOf(msg); !ok || back != e {
				t.Errorf("EMEventOf(%s) = %v, %v; want %s", msg, back, ok, e)
			}
		}
	}
	if allowed != 10 {
		t.Errorf("%d pairs allowed, want 10", allowed)
	}
	for _, m := range []MessageType{EK, EE, RS, CP} {
		if _, ok := EMEventOf(m); ok {
			t.Errorf("EMEventOf(%s) claims an EM event", m)
		}
	}
}

func TestEMWirePairsDisambiguation(t *testing.T) {
	tests := []struct {
		state EMState
		e     EMEvent
		want  MessageType
	}{
		{EMNone, EMPropose, EP}, {EMProposed, EMPropose, EP}, {EMActive, EMPropose, EV}, {EMRevise, EMPropose, EV},
		{EMProposed, EMAccept, EA}, {EMRevise, EMAccept, EC},
		{EMProposed, EMReject, ER}, {EMRevise, EMReject, EJ},
	}
	for _, tc := range tests {
		if got, err := tc.state.MessageFor(tc.e); err != nil || got != tc.want {
			t.Errorf("%s.MessageFor(%s) = %v, %v; want %v", tc.state, tc.e, got, err, tc.want)
		}
	}
}

func TestEMSpellings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want EMState
	}{
		{"NONE", EMNone}, {"NO_EMBARGO", EMNone}, {"EMBARGO_MANAGEMENT_NONE", EMNone}, {"N", EMNone},
		{"PROPOSED", EMProposed}, {"P", EMProposed}, {"ACTIVE", EMActive}, {"ACCEPTED", EMActive},
		{"EMBARGO_MANAGEMENT_ACTIVE", EMActive}, {"A", EMActive}, {"REVISE", EMRevise}, {"R", EMRevise},
		{"EXITED", EMExited}, {"X", EMExited}, {"EMBARGO_MANAGEMENT_EXITED", EMExited},
	} {
		got, err := ParseEMState(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseEMState(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, s := range EMStates() {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back EMState
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("round trip of %s = %v, %v", s, back, err)
		}
		if got, want := s.InForce(), s == EMActive || s == EMRevise; got != want {
			t.Errorf("%s.InForce() = %v", s, got)
		}
		if got, want := s.Negotiating(), s == EMProposed || s == EMRevise; got != want {
			t.Errorf("%s.Negotiating() = %v", s, got)
		}
	}
	for _, e := range EMEvents() {
		if got, err := ParseEMEvent(e.String()); err != nil || got != e {
			t.Errorf("ParseEMEvent(%q) = %v, %v", e, got, err)
		}
	}
	if _, err := ParseEMState("PENDING"); err == nil {
		t.Error("ParseEMState(\"PENDING\") succeeded")
	}
}
