package cvdstate

import (
	"errors"
	"strings"
	"testing"
)

// csAllowed lists, for each of the 32 case states, the events the CS model
// allows next, written out from the protocol's rules: an event sets one
// letter that is still lower-case, V before F before D, from v··P·· only V
// and from ···pX· only P.
var csAllowed = []struct{ state, next string }{
	{"vfdpxa", "VPXA"}, {"vfdPxa", "V"}, {"vfdpXa", "P"}, {"vfdpxA", "VPX"},
	{"vfdPXa", "V"}, {"vfdPxA", "V"}, {"vfdpXA", "P"}, {"vfdPXA", "V"},
	{"Vfdpxa", "FPXA"}, {"VfdPxa", "FXA"}, {"VfdpXa", "P"}, {"VfdpxA", "FPX"},
	{"VfdPXa", "FA"}, {"VfdPxA", "FX"}, {"VfdpXA", "P"}, {"VfdPXA", "F"},
	{"VFdpxa", "DPXA"}, {"VFdPxa", "DXA"}, {"VFdpXa", "P"}, {"VFdpxA", "DPX"},
	{"VFdPXa", "DA"}, {"VFdPxA", "DX"}, {"VFdpXA", "P"}, {"VFdPXA", "D"},
	{"VFDpxa", "PXA"}, {"VFDPxa", "XA"}, {"VFDpXa", "P"}, {"VFDpxA", "PX"},
	{"VFDPXa", "A"}, {"VFDPxA", "X"}, {"VFDpXA", "P"}, {"VFDPXA", ""},
}

func TestCSStatesAndEdges(t *testing.T) {
	states := CSStates()
	if len(states) != 32 || len(csAllowed) != 32 {
		t.Fatalf("CS has %d states, want 32", len(states))
	}
	if len(VFDs()) != 4 || len(PXAs()) != 8 {
		t.Errorf("VFD has %d states and PXA %d, want 4 and 8", len(VFDs()), len(PXAs()))
	}
	edges := 0
	for i, s := range states {
		if s.String() != csAllowed[i].state {
			t.Fatalf("state %d = %s, want %s", i, s, csAllowed[i].state)
		}
		for _, e := range CSEvents() {
			next, msg, err := s.Apply(e)
			want := strings.Contains(csAllowed[i].next, e.String())
			if !want {
				if !errors.Is(err, ErrNotAllowed) || next != s || msg != 0 {
					t.Errorf("%s -%s-> %s, %v; want refused", s, e, next, err)
				}
				continue
			}
			edges++
			if err != nil {
				t.Errorf("%s -%s->: %v", s, e, err)
				continue
			}
			// Exactly the event's letter turns upper-case.
			from, to := s.String(), next.String()
			for j := range 6 {
				changed := from[j] != to[j]
				if changed != ("VFDPXA"[j] == e.String()[0]) || (changed && to[j] != "VFDPXA"[j]) {
					t.Errorf("%s -%s-> %s changes the wrong letters", s, e, next)
				}
			}
			if msg != e.Message() {
				t.Errorf("%s -%s-> emits %v, want %v", s, e, msg, e.Message())
			}
		}
	}
	if edges != 58 {
		t.Errorf("%d valid CS edges, want 58", edges)
	}
	if n := len(CSTransitions()); n != 58 {
		t.Errorf("CSTransitions() has %d edges, want 58", n)
	}
}

func TestCSForcingRules(t *testing.T) {
	tests := []struct {
		state, event, want string
	}{
		{"vfdPxa", "X", "CS transition X is not allowed from vfdPxa: the public is aware, so the vendor must become aware next (V)"},
		{"VfdpXa", "F", "CS transition F is not allowed from VfdpXa: an exploit is public, so the public must become aware next (P)"},
		{"vfdpxa", "F", "CS transition F is not allowed from vfdpxa: the vendor must be aware before a fix can be ready"},
		{"Vfdpxa", "D", "CS transition D is not allowed from Vfdpxa: a fix must be ready before it can be deployed"},
		{"VfdPxa", "P", "CS transition P is not allowed from VfdPxa: the event has already happened and case-state events cannot be undone"},
	}
	for _, tc := range tests {
		s, err := ParseCS(tc.state)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ParseCSEvent(tc.event)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Apply(e); err == nil || err.Error() != tc.want {
			t.Errorf("%s -%s->: %v; want %q", tc.state, tc.event, err, tc.want)
		}
	}
	for _, tc := range []struct {
		state string
		want  CSEvent
	}{{"vfdPxa", EventV}, {"vfdpXA", EventP}, {"VFdpXa", EventP}} {
		s, _ := ParseCS(tc.state)
		if got, ok := s.Forced(); !ok || got != tc.want {
			t.Errorf("%s.Forced() = %v, %v; want %v", tc.state, got, ok, tc.want)
		}
	}
	if _, ok := (CS{VFD: VFDAware, PXA: PXAAttacks}).Forced(); ok {
		t.Error("VfdpxA forces an event, but attacks alone force nothing")
	}
}

func TestCSSpellings(t *testing.T) {
	wantPXA := []string{"pxa", "Pxa", "pXa", "pxA", "PXa", "PxA", "pXA", "PXA"}
	for i, p := range PXAs() {
		if p.String() != wantPXA[i] {
			t.Errorf("PXA %d = %s, want %s", i, p, wantPXA[i])
		}
		if got, err := ParsePXA(wantPXA[i]); err != nil || got != p {
			t.Errorf("ParsePXA(%q) = %v, %v", wantPXA[i], got, err)
		}
	}
	for i, v := range VFDs() {
		want := []string{"vfd", "Vfd", "VFd", "VFD"}[i]
		if got, err := ParseVFD(want); err != nil || got != v || v.String() != want {
			t.Errorf("ParseVFD(%q) = %v, %v", want, got, err)
		}
	}
	for _, bad := range []string{"vFd", "fvd", "VFDX", "PXAA", "pxb", "VFd Pxa"} {
		if _, err := ParseCS(bad); err == nil {
			t.Errorf("ParseCS(%q) succeeded", bad)
		}
	}
	if _, err := ParseVFD("vfD"); err == nil {
		t.Error("ParseVFD(vfD) succeeded: D without F is impossible")
	}
	for _, tc := range []struct {
		in   string
		want CSEvent
	}{{"V", EventV}, {"p", EventP}, {"exploit_made_public", EventX}, {"attacks_are_observed", EventA}, {"fix_is_deployed", EventD}} {
		if got, err := ParseCSEvent(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseCSEvent(%q) = %v, %v", tc.in, got, err)
		}
	}
	for _, s := range CSStates() {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back CS
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("round trip of %s = %v, %v", s, back, err)
		}
	}
	for _, m := range []MessageType{CV, CF, CD, CP, CX, CA} {
		e, ok := CSEventOf(m)
		if !ok || e.Message() != m {
			t.Errorf("CSEventOf(%s) = %v, %v", m, e, ok)
		}
	}
}
