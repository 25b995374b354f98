package vocab

import (
	"strings"
	"testing"
)

// mapResolver is a Resolver over a fixed set of objects.
type mapResolver map[string]Object

func (m mapResolver) Resolve(id string) (Object, bool) {
	o, ok := m[id]
	return o, ok
}

func mustParse(t *testing.T, doc string) *Activity {
	t.Helper()
	d, err := Parse([]byte(`{"@context":"https://www.w3.org/ns/activitystreams",` + doc + `}`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	a := d.Activity()
	if a == nil {
		t.Fatalf("not an activity: %T", d.Object)
	}
	return a
}

func TestClassifyUnresolvedObject(t *testing.T) {
	report := &VulnerabilityReport{ObjectBase{ID: "https://x/unknown", Type: TypeVulnerabilityReport}}
	kase := &VulnerabilityCase{ObjectBase: ObjectBase{ID: "https://x/unknown", Type: TypeVulnerabilityCase}}
	offer := &Activity{ObjectBase: ObjectBase{ID: "https://x/offer", Type: "Offer"}, Object: Inline(report)}
	tests := []struct {
		name     string
		doc      string
		resolver Resolver
		want     Semantic
		unres    bool
	}{
		{"Offer(uri) unresolved", `"type":"Offer","object":"https://x/unknown"`, nil, UnknownUnresolvableObject, true},
		{"Offer(uri) known report", `"type":"Offer","object":"https://x/unknown"`, mapResolver{"https://x/unknown": report}, SubmitReport, false},
		{"Offer(uri) known case", `"type":"Offer","object":"https://x/unknown"`, mapResolver{"https://x/unknown": kase}, OfferCaseOwnershipTransfer, false},
		{"Create(uri) unresolved", `"type":"Create","object":"https://x/unknown"`, mapResolver{}, UnknownUnresolvableObject, true},
		{"Remove(uri) unresolved", `"type":"Remove","object":"https://x/unknown","origin":"https://x/case"`, nil, UnknownUnresolvableObject, true},
		{"Reject(uri) unresolved", `"type":"Reject","object":"https://x/unknown"`, nil, UnknownUnresolvableObject, true},
		{"Accept(uri) known offer", `"type":"Accept","object":"https://x/offer"`, mapResolver{"https://x/offer": offer}, ValidateReport, false},
		{"Accept(Offer(uri)) unresolved", `"type":"Accept","object":{"type":"Offer","object":"https://x/unknown"}`, nil, UnknownUnresolvableObject, true},
		{"Read(Report) inline", `"type":"Read","object":{"type":"VulnerabilityReport","id":"https://x/r"}`, nil, AckReport, false},
		{"Undo(uri) unresolved", `"type":"Undo","object":"https://x/ignore"`, nil, UnknownUnresolvableObject, true},
		{"Follow has no pattern", `"type":"Follow","object":"https://x/unknown"`, nil, Unknown, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(mustParse(t, tt.doc), tt.resolver)
			if c.Semantic != tt.want || c.Unresolved != tt.unres {
				t.Errorf("= %s unresolved=%v (%s), want %s unresolved=%v", c.Semantic, c.Unresolved, c.Reason, tt.want, tt.unres)
			}
			if tt.unres && (c.UnresolvedID == "" || !strings.Contains(c.Reason, "not held by this node")) {
				t.Errorf("unresolved result without the IRI or a reason: %+v", c)
			}
		})
	}
}

func TestClassifyShapes(t *testing.T) {
	const kase = `{"type":"VulnerabilityCase","id":"https://x/case"}`
	participant := &CaseParticipant{ObjectBase: ObjectBase{ID: "https://x/p", Type: TypeCaseParticipant}}
	tests := []struct {
		name     string
		doc      string
		resolver Resolver
		want     Semantic
		messages string
	}{
		{"Remove(CaseParticipant) target", `"type":"Remove","object":{"type":"CaseParticipant"},"target":"https://x/case"`, nil, RemoveCaseParticipantFromCase, "-"},
		{"Remove(CaseParticipant) origin", `"type":"Remove","object":{"type":"CaseParticipant"},"origin":"https://x/case"`, nil, RemoveCaseParticipantFromCase, "-"},
		{"Remove(CaseParticipant) no case", `"type":"Remove","object":{"type":"CaseParticipant"}`, nil, Unknown, "-"},
		{"Remove(CaseParticipant) origin is a participant", `"type":"Remove","object":{"type":"CaseParticipant"},"origin":"https://x/p"`, mapResolver{"https://x/p": participant}, Unknown, "-"},
		{"Undo(Ignore(Case))", `"type":"Undo","object":{"type":"Ignore","object":` + kase + `}`, nil, EngageCase, "RA"},
		{"Undo(Ignore(Note))", `"type":"Undo","object":{"type":"Ignore","object":{"type":"Note"}}`, nil, Unknown, "-"},
		{"Undo(Ignore) without case", `"type":"Undo","object":{"type":"Ignore"}`, nil, Unknown, "-"},
		{"Invite(EmbargoEvent) without context", `"type":"Invite","object":{"type":"EmbargoEvent"},"target":"https://x/case"`, nil, Unknown, "-"},
		{"Invite(EmbargoEvent)[context]", `"type":"Invite","object":{"type":"EmbargoEvent"},"context":"https://x/case"`, nil, InviteToEmbargoOnCase, "EP|EV"},
		{"Invite(Person)[target=stub]", `"type":"Invite","object":{"type":"Person"},"target":` + kase, nil, InviteActorToCase, "RS (late joiner)"},
		{"Offer(Role)[context]", `"type":"Offer","object":{"type":"CaseParticipantRole","role":"CASE_OWNER"},"context":"https://x/case"`, nil, OfferCaseParticipantRole, "-"},
		{"Announce(CaseLedgerEntry)", `"type":"Announce","object":{"type":"CaseLedgerEntry","caseId":"c","logObjectId":"o","eventType":"validate_report"}`, nil, AnnounceCaseLedgerEntry, "-"},
		{"Question of notes", `"type":"Question","oneOf":[{"type":"Note"}],"context":"https://x/case"`, nil, Unknown, "-"},
		{"Accept(Report) 2024 shape", `"type":"Accept","object":{"type":"VulnerabilityReport"}`, nil, Unknown, "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Classify(mustParse(t, tt.doc), tt.resolver)
			if c.Semantic != tt.want {
				t.Errorf("= %s (%s), want %s", c.Semantic, c.Reason, tt.want)
			}
			if c.FormalMessages() != tt.messages {
				t.Errorf("messages = %s, want %s", c.FormalMessages(), tt.messages)
			}
			if c.Semantic == Unknown && c.Reason == "" {
				t.Errorf("Unknown without a reason")
			}
		})
	}
}

func TestMessageTypesString(t *testing.T) {
	tests := []struct {
		m    MessageTypes
		want string
	}{
		{0, "-"},
		{MsgRS, "RS"},
		{MsgEP | MsgEV, "EP|EV"},
		{MsgCA | MsgCV, "CV|CA"},
		{MsgGE, "GE"},
	}
	for _, tt := range tests {
		if got := tt.m.String(); got != tt.want {
			t.Errorf("%d.String() = %s, want %s", uint32(tt.m), got, tt.want)
		}
	}
}
