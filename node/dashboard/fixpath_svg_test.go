package dashboard

import (
	"regexp"
	"strings"
	"testing"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
)

// TestStateSVGDrawsEachFixPath checks the case-state picture: the world's
// p, x, a, each vendor's v, f, d, and a deployer that is no vendor with
// its own one box, d or D; participants without a fix path are not drawn.
func TestStateSVGDrawsEachFixPath(t *testing.T) {
	c := &cases.Case{PXA: cvdstate.PXAPublic, Participants: []*cases.Participant{
		{Actor: "https://v.example/actors/psirt", Roles: cvdstate.Vendor | cvdstate.CaseOwner, ParticipantState: cvdstate.ParticipantState{VFD: cvdstate.VFDFixReady}},
		{Actor: "https://d.example/actors/ops", Roles: cvdstate.Deployer, ParticipantState: cvdstate.ParticipantState{VFD: cvdstate.VFDDeployed}},
		{Actor: "https://d2.example/actors/cloud", Roles: cvdstate.Deployer, ParticipantState: cvdstate.ParticipantState{}},
		{Actor: "https://f.example/actors/finder", Roles: cvdstate.Finder | cvdstate.Reporter},
	}}
	svg := string(stateSVG(c, func(id string) actorName { return nameOf(id, "", id[strings.LastIndex(id, "/")+1:]) }))
	desc := regexp.MustCompile(`<desc id="cs-d">([^<]*)</desc>`).FindStringSubmatch(svg)
	if desc == nil {
		t.Fatalf("no description in %s", svg)
	}
	rows := strings.Split(desc[1], "; ")
	want := []string{"world Pxa", "psirt VFd", "ops D", "cloud d"}
	if len(rows) != len(want) {
		t.Fatalf("rows %q, want %q", rows, want)
	}
	for i, w := range want {
		if !strings.HasSuffix(rows[i], strings.Fields(w)[1]) || !strings.Contains(rows[i], strings.Fields(w)[0]) {
			t.Errorf("row %d = %q, want %q", i, rows[i], w)
		}
	}
	// Three boxes for the world and the vendor, one for each deployer.
	if n := strings.Count(svg, "<rect "); n != 3+3+1+1 {
		t.Errorf("the picture has %d boxes, want 8", n)
	}
}
