package vocab

import "testing"

// TestCoreKindsMatchResolver checks that the table of core type kinds
// answers exactly what go-fed's resolver answers, and that every core name
// is in it.
func TestCoreKindsMatchResolver(t *testing.T) {
	table := coreKinds()
	if len(table) != len(coreTypeNames) {
		t.Fatalf("table has %d kinds for %d core names", len(table), len(coreTypeNames))
	}
	for _, name := range append(coreTypeNames[:], "VulnerabilityCase", "Emoji", "NoSuchType") {
		want, werr := resolveAS2Kind(name)
		got, gerr := recognizeAS2(name)
		if got != want || (werr == nil) != (gerr == nil) {
			t.Errorf("%s: table says %v (%v), resolver %v (%v)", name, got, gerr, want, werr)
		}
	}
	for _, name := range []string{"Note", "Offer", "Person"} {
		if table[name] == as2Unknown {
			t.Errorf("%s is not recognised as an ActivityStreams type", name)
		}
	}
}
