package cvdstate

import (
	"errors"
	"testing"
)

// pecExpected is the consent model written out from the protocol: the
// allowed "STATE event" pairs and where they lead.
var pecExpected = map[string]string{
	"NO_EMBARGO invite":  "INVITED",
	"DECLINED invite":    "INVITED",
	"LAPSED invite":      "INVITED",
	"NO_EMBARGO accept":  "SIGNATORY",
	"INVITED accept":     "SIGNATORY",
	"LAPSED accept":      "SIGNATORY",
	"NO_EMBARGO decline": "DECLINED",
	"INVITED decline":    "DECLINED",
	"LAPSED decline":     "DECLINED",
	"SIGNATORY revise":   "LAPSED",
	"NO_EMBARGO reset":   "NO_EMBARGO",
	"INVITED reset":      "NO_EMBARGO",
	"SIGNATORY reset":    "NO_EMBARGO",
	"DECLINED reset":     "NO_EMBARGO",
	"LAPSED reset":       "NO_EMBARGO",
}

func TestPECStatesAndEdges(t *testing.T) {
	if n := len(PECs()); n != 5 {
		t.Errorf("PEC has %d states, want 5", n)
	}
	if n := len(PECTransitions()); n != len(pecExpected) {
		t.Errorf("PEC has %d transitions, want %d", n, len(pecExpected))
	}
	for _, p := range PECs() {
		for _, e := range PECEvents() {
			key := p.String() + " " + e.String()
			got, err := p.Apply(e)
			want, ok := pecExpected[key]
			switch {
			case !ok && !errors.Is(err, ErrNotAllowed):
				t.Errorf("%s = %s, %v; want refused", key, got, err)
			case ok && (err != nil || got.String() != want):
				t.Errorf("%s = %s, %v; want %s", key, got, err, want)
			}
		}
	}
	_, err := PECSignatory.Apply(PECInvite)
	if err == nil || err.Error() != "PEC transition invite is not allowed from SIGNATORY: a signatory is already bound by the embargo and cannot be invited again" {
		t.Errorf("SIGNATORY invite error = %v", err)
	}
}

func TestPECSpellings(t *testing.T) {
	for _, p := range PECs() {
		got, err := ParsePEC(p.String())
		if err != nil || got != p {
			t.Errorf("ParsePEC(%q) = %v, %v", p, got, err)
		}
		if p.Adheres() != (p == PECSignatory) {
			t.Errorf("%s.Adheres() = %v", p, p.Adheres())
		}
	}
	if got, err := ParsePEC("no_embargo"); err != nil || got != PECNoEmbargo {
		t.Errorf("ParsePEC(no_embargo) = %v, %v", got, err)
	}
	for _, e := range PECEvents() {
		if got, err := ParsePECEvent(e.String()); err != nil || got != e {
			t.Errorf("ParsePECEvent(%q) = %v, %v", e, got, err)
		}
	}
	var p PEC
	if err := p.UnmarshalText([]byte("SIGNED")); err == nil {
		t.Error("UnmarshalText(SIGNED) succeeded")
	}
}
