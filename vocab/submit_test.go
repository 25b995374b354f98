package vocab

import (
	"encoding/json"
	"testing"
	"time"
)

// docResolver resolves ids to documents parsed from JSON.
type docResolver map[string]Object

func (r docResolver) Resolve(id string) (Object, bool) { o, ok := r[id]; return o, ok }

func (r docResolver) add(t *testing.T, doc string) {
	t.Helper()
	d, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	r[d.Object.Common().ID] = d.Object
}

// TestSubmittedShapes checks that each constructor builds an activity that,
// once the outbox has filled its id and actor, parses and classifies as the
// protocol message it is meant to send.
func TestSubmittedShapes(t *testing.T) {
	const (
		caseID  = "https://n.example/cases/c1"
		partID  = "https://n.example/cases/c1/participants/p"
		invitee = "https://m.example/actors/v"
		invite  = "https://n.example/activities/invite-1"
	)
	ctx := `"@context":"` + VultronContext + `"`
	r := docResolver{}
	r.add(t, `{`+ctx+`,"type":"VulnerabilityCase","id":"`+caseID+`","name":"c1"}`)
	r.add(t, `{`+ctx+`,"type":"Organization","id":"`+invitee+`","inbox":"https://m.example/actors/v/inbox","outbox":"https://m.example/actors/v/outbox"}`)
	r.add(t, `{`+ctx+`,"type":"Invite","id":"`+invite+`","actor":"https://n.example/actors/a","object":{"type":"EmbargoEvent","id":"https://n.example/embargoes/e1","startTime":"2026-12-03T00:00:00Z","endTime":"2026-12-05T00:00:00Z"},"context":"`+caseID+`"}`)
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		act  map[string]any
		want Semantic
	}{
		{"propose an embargo", ProposeEmbargo(caseID, now, now.Add(48*time.Hour)), "INVITE_TO_EMBARGO_ON_CASE"},
		{"accept the proposal", Respond("Accept", invite, caseID), "ACCEPT_INVITE_TO_EMBARGO_ON_CASE"},
		{"reject the proposal", Respond("Reject", invite, caseID), "REJECT_INVITE_TO_EMBARGO_ON_CASE"},
		{"invite an actor", InviteToCase(caseID, invitee, []string{"vendor"}), "INVITE_ACTOR_TO_CASE"},
		{"fix ready", ReportFixState(caseID, partID, "VFd"), "ADD_PARTICIPANT_STATUS_TO_PARTICIPANT"},
		{"public", ReportCaseState(caseID, partID, "Pxa"), "ADD_PARTICIPANT_STATUS_TO_PARTICIPANT"},
		{"note", AddNote(caseID, "hello"), "ADD_NOTE_TO_CASE"},
		{"vulnerability ids", AddVulnerabilityIDs(caseID, "CVE-2026-1234", []string{"GHSA-aaaa-bbbb-cccc"}), "ADD_VULNERABILITY_RECORD_TO_CASE"},
		{"engage", Respond("Join", caseID, caseID), "ENGAGE_CASE"},
		{"defer", Respond("Ignore", caseID, caseID), "DEFER_CASE"},
		{"close", Respond("Leave", caseID, caseID), "CLOSE_CASE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.act["@context"] = VultronContext
			tt.act["id"] = "https://n.example/activities/new"
			tt.act["actor"] = "https://n.example/actors/a"
			b, err := json.Marshal(tt.act)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Parse(b)
			if err != nil {
				t.Fatalf("the submitted activity does not parse: %v\n%s", err, b)
			}
			if got := Classify(d.Activity(), r).Semantic; got != tt.want {
				t.Errorf("classified as %s, want %s\n%s", got, tt.want, b)
			}
		})
	}
}
