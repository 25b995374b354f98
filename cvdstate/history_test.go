package cvdstate

import (
	"math"
	"slices"
	"testing"
)

// permutations returns every ordering of s.
func permutations(s string) []string {
	if len(s) <= 1 {
		return []string{s}
	}
	var out []string
	for i := range len(s) {
		for _, rest := range permutations(s[:i] + s[i+1:]) {
			out = append(out, s[i:i+1]+rest)
		}
	}
	return out
}

// validByConstraints applies the protocol's history constraints to an
// ordering of VFDPXA: V≺F≺D; V≺P or V immediately follows P; P≺X or P
// immediately follows X.
func validByConstraints(h string) bool {
	at := func(c byte) int {
		for i := range len(h) {
			if h[i] == c {
				return i
			}
		}
		return -1
	}
	v, f, d, p, x := at('V'), at('F'), at('D'), at('P'), at('X')
	return v < f && f < d && (v < p || v == p+1) && (p < x || p == x+1)
}

func TestHistoriesMatchConstraints(t *testing.T) {
	perms := permutations("VFDPXA")
	if len(perms) != 720 {
		t.Fatalf("%d orderings, want 720", len(perms))
	}
	var want []string
	for _, p := range perms {
		if validByConstraints(p) {
			want = append(want, p)
		}
	}
	slices.Sort(want)
	hs := Histories()
	if len(hs) != 70 || len(want) != 70 {
		t.Fatalf("%d histories from the model and %d from the constraints, want 70", len(hs), len(want))
	}
	var got []string
	var total float64
	for _, h := range hs {
		got = append(got, h.Events.String())
		total += h.Probability
		if h.Probability <= 0 {
			t.Errorf("history %s has probability %v", h.Events, h.Probability)
		}
		if final, err := h.Events.Final(); err != nil || final != (CS{VFDDeployed, PXAPublic | PXAExploit | PXAAttacks}) {
			t.Errorf("history %s ends in %v, %v", h.Events, final, err)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("histories differ from the constraints:\n got %v\nwant %v", got, want)
	}
	if math.Abs(total-1) > 1e-12 {
		t.Errorf("probabilities sum to %v, want 1", total)
	}
	if hs[0].Events.String() != "VFDPXA" {
		t.Errorf("first history is %s, want VFDPXA", hs[0].Events)
	}
}

// TestHistoryProbabilities checks a few probabilities by hand: from vfdpxa
// four events are possible, and so on.
func TestHistoryProbabilities(t *testing.T) {
	want := map[string]float64{
		// V (1/4), F (1/4 of FPXA), D (1/4 of DPXA), P (1/3 of PXA), X (1/2 of XA), A (1).
		"VFDPXA": 1.0 / 4 / 4 / 4 / 3 / 2,
		// A (1/4), X (1/3 of VPX), P forced, V forced, F, D.
		"AXPVFD": 1.0 / 4 / 3,
		// P (1/4), V forced, then F, X, A from VfdPxa: F (1/3), D (1/3 of DXA), X (1/2), A.
		"PVFDXA": 1.0 / 4 / 3 / 3 / 2,
	}
	for _, h := range Histories() {
		if p, ok := want[h.Events.String()]; ok {
			if math.Abs(h.Probability-p) > 1e-15 {
				t.Errorf("P(%s) = %v, want %v", h.Events, h.Probability, p)
			}
			delete(want, h.Events.String())
		}
	}
	if len(want) != 0 {
		t.Errorf("histories not found: %v", want)
	}
}

// publishedBaselines is the expected-frequency table of the MPCVD
// measurement model ("Are we skillful or just lucky?", reproduced in the
// Vultron documentation), rounded there to three places.
var publishedBaselines = map[string]float64{
	"D≺P": 0.037, "F≺P": 0.111, "D≺X": 0.167, "D≺A": 0.187, "F≺X": 0.333, "V≺P": 0.333,
	"F≺A": 0.375, "P≺X": 0.500, "X≺A": 0.500, "P≺A": 0.667, "V≺X": 0.667, "V≺A": 0.750,
}

// exactBaselines are the same frequencies as fractions.
var exactBaselines = map[string]float64{
	"D≺P": 1.0 / 27, "F≺P": 1.0 / 9, "D≺X": 1.0 / 6, "D≺A": 3.0 / 16, "F≺X": 1.0 / 3, "V≺P": 1.0 / 3,
	"F≺A": 3.0 / 8, "P≺X": 1.0 / 2, "X≺A": 1.0 / 2, "P≺A": 2.0 / 3, "V≺X": 2.0 / 3, "V≺A": 3.0 / 4,
}

func TestBaselines(t *testing.T) {
	order := []string{"D≺P", "F≺P", "D≺X", "D≺A", "F≺X", "V≺P", "F≺A", "P≺X", "X≺A", "P≺A", "V≺X", "V≺A"}
	bs := Baselines()
	if len(bs) != 12 {
		t.Fatalf("%d desiderata, want 12", len(bs))
	}
	for i, b := range bs {
		name := b.Desideratum.String()
		if name != order[i] {
			t.Errorf("desideratum %d = %s, want %s", i, name, order[i])
		}
		if math.Abs(b.Frequency-publishedBaselines[name]) > 0.0006 {
			t.Errorf("f(%s) = %.4f, published %.3f", name, b.Frequency, publishedBaselines[name])
		}
		if math.Abs(b.Frequency-exactBaselines[name]) > 1e-12 {
			t.Errorf("f(%s) = %v, want %v", name, b.Frequency, exactBaselines[name])
		}
		if d, err := ParseDesideratum(name); err != nil || d != b.Desideratum {
			t.Errorf("ParseDesideratum(%q) = %v, %v", name, d, err)
		}
		ascii := name[:1] + "<" + name[len(name)-1:]
		if d, err := ParseDesideratum(ascii); err != nil || d != b.Desideratum {
			t.Errorf("ParseDesideratum(%q) = %v, %v", ascii, d, err)
		}
	}
	for _, bad := range []string{"P≺D", "A<V", "V", "V<F"} {
		if _, err := ParseDesideratum(bad); err == nil {
			t.Errorf("ParseDesideratum(%q) succeeded", bad)
		}
	}
}

func TestAssess(t *testing.T) {
	tests := []struct {
		history              string
		met, missed, pending int
		skill                float64
	}{
		// The best history meets everything: skill 1.
		{"VFDPXA", 12, 0, 0, 1},
		// The worst meets nothing.
		{"AXPVFD", 0, 12, 0, worstSkill()},
		// A case under way: V then F decides every desideratum that starts with V or F.
		{"VF", 6, 0, 6, 1},
		// Nothing has happened: nothing is decided.
		{"", 0, 0, 12, 0},
	}
	for _, tc := range tests {
		h, err := ParseHistory(tc.history)
		if err != nil {
			t.Fatalf("ParseHistory(%q): %v", tc.history, err)
		}
		a, err := Assess(h)
		if err != nil {
			t.Fatalf("Assess(%s): %v", tc.history, err)
		}
		if a.Met != tc.met || a.Missed != tc.missed || a.Pending != tc.pending {
			t.Errorf("Assess(%s) = met %d missed %d pending %d; want %d %d %d", tc.history, a.Met, a.Missed, a.Pending, tc.met, tc.missed, tc.pending)
		}
		if math.Abs(a.Skill-tc.skill) > 1e-12 {
			t.Errorf("Assess(%s).Skill = %v, want %v", tc.history, a.Skill, tc.skill)
		}
	}
	// A mixed history: P first, so every ≺P desideratum is missed.
	h, _ := ParseHistory("P V F D X A")
	a, _ := Assess(h)
	for _, r := range a.Results {
		missed := r.Desideratum.After == EventP
		if (r.Status == Missed) != missed || (!missed && r.Status != Met) {
			t.Errorf("PVFDXA: %s is %s", r.Desideratum, r.Status)
		}
		if want := Skill(map[bool]float64{true: 0, false: 1}[missed], r.Baseline); r.Skill != want {
			t.Errorf("PVFDXA: skill of %s = %v, want %v", r.Desideratum, r.Skill, want)
		}
	}
	for _, bad := range []string{"FV", "PX", "VV", "Q"} {
		if _, err := ParseHistory(bad); err == nil {
			t.Errorf("ParseHistory(%q) succeeded", bad)
		}
	}
	if _, err := Assess(History{EventD}); err == nil {
		t.Error("Assess(D) succeeded: D cannot come first")
	}
}

// worstSkill is the mean of −f/(1−f) over the twelve exact baselines.
func worstSkill() float64 {
	var sum float64
	for _, f := range exactBaselines {
		sum += -f / (1 - f)
	}
	return sum / 12
}

func TestSkill(t *testing.T) {
	tests := []struct{ observed, baseline, want float64 }{
		{1, 0.75, 1},
		{0.75, 0.75, 0},
		{0.7, 0.75, -0.2},
		{0, 0.5, -1},
		{0.5, 0, 0.5},
		{1, 1, 0},
	}
	for _, tc := range tests {
		if got := Skill(tc.observed, tc.baseline); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Skill(%v, %v) = %v, want %v", tc.observed, tc.baseline, got, tc.want)
		}
	}
}
