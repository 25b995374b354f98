package cases

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

func addIDs(t *testing.T, actor, record string) *vocab.Activity {
	t.Helper()
	return act(t, "Add", actor, fmt.Sprintf(`"object":%s,"target":%q,"context":%q`, record, caseID, caseID))
}

// TestVulnerabilityIDs: a participant records the ids the case's
// vulnerability is known by (a CVE id and aliases), upper-cased and once
// each; what is malformed, too much or from a non-participant changes
// nothing.
func TestVulnerabilityIDs(t *testing.T) {
	c := newCase(t, false)
	record := `{"type":"VulnerabilityRecord","id":"https://v.example/o/1","name":"cve-2026-1234","aliases":["GHSA-2f3q-x8v6-9c4m"]}`
	if _, err := c.Apply(EventType(vocab.AddVulnerabilityRecordToCase), addIDs(t, vendor, record), t0); err != nil {
		t.Fatal(err)
	}
	want := []string{"CVE-2026-1234", "GHSA-2F3Q-X8V6-9C4M"}
	if !slices.Equal(c.VulnerabilityIDs, want) {
		t.Fatalf("ids = %v, want %v", c.VulnerabilityIDs, want)
	}
	more := `{"type":"VulnerabilityRecord","id":"https://v.example/o/2","name":"CVE-2026-1234","aliases":["OSV-2026-9"]}`
	if _, err := c.Apply(EventType(vocab.AddVulnerabilityRecordToCase), addIDs(t, finder, more), t0); err != nil {
		t.Fatal(err)
	}
	want = append(want, "OSV-2026-9")
	if !slices.Equal(c.VulnerabilityIDs, want) {
		t.Fatalf("ids = %v, want %v", c.VulnerabilityIDs, want)
	}
	for name, tc := range map[string]struct {
		actor, record string
		status        int
	}{
		"nothing new":     {vendor, record, 409},
		"no name":         {vendor, `{"type":"VulnerabilityRecord","id":"https://v.example/o/3"}`, 422},
		"bad characters":  {vendor, `{"type":"VulnerabilityRecord","id":"https://v.example/o/3","name":"CVE 2026"}`, 422},
		"not participant": {vendor2, `{"type":"VulnerabilityRecord","id":"https://v.example/o/3","name":"CVE-2026-9999"}`, 403},
	} {
		before := slices.Clone(c.VulnerabilityIDs)
		err := c.Try(EventType(vocab.AddVulnerabilityRecordToCase), addIDs(t, tc.actor, tc.record), t0)
		if problem.Status(err) != tc.status {
			t.Errorf("%s: %v (status %d), want %d", name, err, problem.Status(err), tc.status)
		}
		if !slices.Equal(c.VulnerabilityIDs, before) {
			t.Errorf("%s: ids changed to %v", name, c.VulnerabilityIDs)
		}
	}
	c.VulnerabilityIDs = nil
	var many []string
	for i := range MaxVulnerabilityIDs + 1 {
		many = append(many, fmt.Sprintf("%q", fmt.Sprintf("ALIAS-%d", i)))
	}
	big := fmt.Sprintf(`{"type":"VulnerabilityRecord","id":"https://v.example/o/4","name":"CVE-2026-0001","aliases":[%s]}`, joinComma(many))
	if err := c.Try(EventType(vocab.AddVulnerabilityRecordToCase), addIDs(t, vendor, big), t0); problem.Status(err) != 422 {
		t.Errorf("%d ids: %v, want 422", MaxVulnerabilityIDs+2, err)
	}
}

func joinComma(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

// TestCasesByVulnerabilityID finds the cases that record an id, through
// the index saveCase keeps.
func TestCasesByVulnerabilityID(t *testing.T) {
	db := openClockStore(t)
	save := func(id string, ids ...string) {
		t.Helper()
		c := &Case{ID: id, Owner: vendor, VulnerabilityIDs: ids}
		if err := db.Update(context.Background(), func(tx *store.Tx) error { return saveCase(tx, c) }); err != nil {
			t.Fatal(err)
		}
	}
	save("https://v.example/cases/a", "CVE-2026-0001")
	save("https://v.example/cases/b", "CVE-2026-0001", "GHSA-X")
	save("https://v.example/cases/c")
	save("https://v.example/cases/a", "CVE-2026-0001", "CVE-2026-0010")
	for id, want := range map[string][]string{
		"CVE-2026-0001": {"https://v.example/cases/a", "https://v.example/cases/b"},
		"cve-2026-0010": {"https://v.example/cases/a"},
		"GHSA-X":        {"https://v.example/cases/b"},
		"CVE-2026-0002": nil,
	} {
		var got []string
		err := db.View(context.Background(), func(tx *store.ReadTx) error {
			var err error
			got, err = CasesByVulnerabilityID(tx, id)
			return err
		})
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("CasesByVulnerabilityID(%s) = %v, %v; want %v", id, got, err, want)
		}
	}
}
