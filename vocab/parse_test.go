package vocab

import (
	"errors"
	"strings"
	"testing"
)

func TestParseRefusals(t *testing.T) {
	const ctx = `"@context":"https://www.w3.org/ns/activitystreams"`
	deep := `{` + ctx + `,"type":"Note","x":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `}`
	big := `{` + ctx + `,"type":"Note","content":"` + strings.Repeat("a", 1<<20) + `"}`
	tests := []struct {
		name, doc, want string
	}{
		{"duplicate key", `{` + ctx + `,"type":"Note","type":"Note"}`, `$.type: duplicate member "type"`},
		{"nested duplicate key", `{` + ctx + `,"type":"Offer","object":{"type":"Note","id":"urn:a","id":"urn:b"}}`, `$.object.id: duplicate member "id"`},
		{"too deep", deep, "nesting is deeper than the limit of 32 levels"},
		{"too big", big, "more than the limit of 1048576"},
		{"trailing garbage", `{` + ctx + `,"type":"Note"} x`, "unexpected data after the JSON object"},
		{"second document", `{` + ctx + `,"type":"Note"}{}`, "unexpected data after the JSON object"},
		{"not an object", `[1]`, "document must be a JSON object"},
		{"no context", `{"type":"Note"}`, `@context is missing: use "https://certcc.github.io/Vultron/ns/context.jsonld"`},
		{"wrong context", `{"@context":"https://example.org/ns","type":"Note"}`, `$.@context: @context must be`},
		{"wrong nested context", `{` + ctx + `,"type":"Offer","object":{"@context":"https://example.org/ns","type":"Note"}}`, `$.object.@context: @context must be`},
		{"asType", `{` + ctx + `,"asType":"Offer"}`, "$.asType: asType is not an AS2 property: use type"},
		{"unknown activity type", `{` + ctx + `,"type":"RmCloseReport","actor":"urn:a","object":"urn:b"}`, "unknown activity type RmCloseReport"},
		{"unknown object type", `{` + ctx + `,"type":"Widget"}`, "unknown object type Widget"},
		{"missing type", `{` + ctx + `,"id":"urn:a"}`, "type is missing"},
		{"type array", `{` + ctx + `,"type":["Offer"]}`, "$.type: type must be a single string, not an array"},
		{"relative id", `{` + ctx + `,"type":"Note","id":"notes/1"}`, `$.id: "notes/1" is not an absolute IRI`},
		{"object array", `{` + ctx + `,"type":"Offer","object":["urn:a","urn:b"]}`, "$.object: must be a single IRI or object, not an array"},
		{"bad role", `{` + ctx + `,"type":"CaseParticipant","caseRoles":["CVD_ROLE_VENDOR"]}`, "$.caseRoles[0]: CVD_ROLE_VENDOR is the 2023 spelling of a CVD role: use vendor"},
		{"bad rm state", `{` + ctx + `,"type":"ParticipantStatus","rmState":"OPEN"}`, `$.rmState: "OPEN" is not a report management state`},
		{"wrong nested type", `{` + ctx + `,"type":"VulnerabilityCase","caseStatuses":[{"type":"Note"}]}`, "$.caseStatuses[0]: must be a CaseStatus, not a Note"},
		{"bad date", `{` + ctx + `,"type":"Note","published":"yesterday"}`, `$.published: "yesterday" is not an RFC 3339 date-time`},
		{"invalid JSON", `{` + ctx + `,"type":}`, "invalid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want a *ParseError", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	tests := []struct {
		name, doc string
		check     func(t *testing.T, d *Document)
	}{
		{"vultron context", `{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"VulnerabilityReport","id":"urn:r"}`,
			func(t *testing.T, d *Document) {
				if _, ok := d.Object.(*VulnerabilityReport); !ok {
					t.Errorf("object is %T", d.Object)
				}
			}},
		{"context array", `{"@context":["https://www.w3.org/ns/activitystreams",{"vultron":"https://certcc.github.io/Vultron/ns#"}],"type":"Note","id":"urn:n"}`,
			func(t *testing.T, d *Document) {
				if d.Object.Common().Type != "Note" {
					t.Errorf("type %s", d.Object.Common().Type)
				}
			}},
		{"role aliases", `{"@context":"https://www.w3.org/ns/activitystreams","type":"ParticipantStatus","rmState":"REPORT_MANAGEMENT_RECEIVED","cvdRole":["vendor","Other"]}`,
			func(t *testing.T, d *Document) {
				ps := d.Object.(*ParticipantStatus)
				if ps.RMState != "RECEIVED" || strings.Join(ps.CVDRole, ",") != "VENDOR,OBSERVER" {
					t.Errorf("normalised to %s %v", ps.RMState, ps.CVDRole)
				}
			}},
		{"nulls are absent", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","actor":null,"object":"urn:x","extra":null}`,
			func(t *testing.T, d *Document) {
				a := d.Activity()
				if !a.Actor.IsZero() || a.Extra != nil {
					t.Errorf("null kept: actor %v extra %v", a.Actor, a.Extra)
				}
			}},
		{"unknown properties kept", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Note","url":"https://x/n","sensitive":true}`,
			func(t *testing.T, d *Document) {
				out, err := Marshal(d.Object)
				if err != nil || !strings.Contains(string(out), `"sensitive":true,"url":"https://x/n"`) {
					t.Errorf("Marshal = %s, %v", out, err)
				}
			}},
		{"html not escaped", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Note","content":"<b>a & b</b>"}`,
			func(t *testing.T, d *Document) {
				out, _ := Marshal(d.Object)
				if !strings.Contains(string(out), `"content":"<b>a & b</b>"`) {
					t.Errorf("Marshal = %s", out)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, d)
		})
	}
}

func TestParseWithLimits(t *testing.T) {
	doc := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","object":{"type":"Note"}}`)
	if _, err := ParseWithLimits(doc, Limits{MaxBytes: 1 << 10, MaxDepth: 1}); err == nil || !strings.Contains(err.Error(), "limit of 1 levels") {
		t.Errorf("depth 1: err = %v", err)
	}
	if _, err := ParseWithLimits(doc, Limits{MaxBytes: 10, MaxDepth: 8}); err == nil || !strings.Contains(err.Error(), "limit of 10") {
		t.Errorf("10 bytes: err = %v", err)
	}
	if _, err := ParseWithLimits(doc, Limits{MaxBytes: 1 << 10, MaxDepth: 2}); err != nil {
		t.Errorf("depth 2: %v", err)
	}
}

// TestInviteRSVPDeadline: an embargo proposal's own endTime (the
// invitees' deadline to answer) is read apart from its EmbargoEvent's
// (the embargo's end), is kept when the Invite is written again, and
// does not change what the Invite is classified as; one without a zone
// is refused, naming the field.
func TestInviteRSVPDeadline(t *testing.T) {
	const body = `{"@context":"https://www.w3.org/ns/activitystreams","id":"https://v.example/a/ep","type":"Invite","actor":"https://v.example/actors/v",
"endTime":"2026-11-08T12:00:00Z","context":"https://v.example/cases/1",
"object":{"id":"https://v.example/cases/1/embargoes/2","type":"EmbargoEvent","startTime":"2026-11-01T12:00:00Z","endTime":"2027-02-01T00:00:00Z"}}`
	doc, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	a := doc.Activity()
	ev, ok := a.Object.Object.(*EmbargoEvent)
	if !ok || a.EndTime != "2026-11-08T12:00:00Z" || ev.EndTime != "2027-02-01T00:00:00Z" {
		t.Fatalf("Invite endTime %q, embargo endTime %q", a.EndTime, ev.EndTime)
	}
	out, err := Marshal(a)
	if err != nil || !strings.Contains(string(out), `"endTime":"2026-11-08T12:00:00Z"`) {
		t.Errorf("written again: %s, %v", out, err)
	}
	without := strings.Replace(body, `"endTime":"2026-11-08T12:00:00Z",`, "", 1)
	d2, err := Parse([]byte(without))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := Classify(a, nil).Semantic, Classify(d2.Activity(), nil).Semantic; got != want || got != InviteToEmbargoOnCase {
		t.Errorf("classified %s with the deadline, %s without; want %s", got, want, InviteToEmbargoOnCase)
	}
	_, err = Parse([]byte(strings.Replace(body, "2026-11-08T12:00:00Z", "2026-11-08T12:00:00", 1)))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Path != "$.endTime" {
		t.Errorf("a deadline without a zone: %v; want a ParseError at $.endTime", err)
	}
}
