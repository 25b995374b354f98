package cvdstate

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestMessageTypeNames(t *testing.T) {
	want := strings.Fields("RS RI RV RD RA RC RK RE EP ER EA EV EJ EC ET EK EE CV CF CD CP CX CA CK CE GI GK GE")
	types := MessageTypes()
	if len(types) != 28 || len(want) != 28 {
		t.Fatalf("got %d message types, want 28", len(types))
	}
	seen := MessageType(0)
	for i, m := range types {
		if m.Count() != 1 {
			t.Errorf("type %d is %v, want a single type", i, m)
		}
		if seen&m != 0 {
			t.Errorf("type %v repeats a bit", m)
		}
		seen |= m
		if got := m.String(); got != want[i] {
			t.Errorf("type %d String() = %q, want %q", i, got, want[i])
		}
		parsed, err := ParseMessageType(want[i])
		if err != nil || parsed != m {
			t.Errorf("ParseMessageType(%q) = %v, %v; want %v", want[i], parsed, err, m)
		}
	}
	if seen != AllMessages {
		t.Errorf("the 28 types cover %#x, want AllMessages %#x", seen, AllMessages)
	}
	if RMMessages&EMMessages != 0 || EMMessages&CSMessages != 0 || CSMessages&GeneralMessages != 0 {
		t.Error("model groups overlap")
	}
	for _, g := range []struct {
		group MessageType
		n     int
	}{{RMMessages, 8}, {EMMessages, 9}, {CSMessages, 8}, {GeneralMessages, 3}} {
		if g.group.Count() != g.n {
			t.Errorf("group %v has %d types, want %d", g.group, g.group.Count(), g.n)
		}
	}
}

func TestMessageTypeCompound(t *testing.T) {
	tests := []struct {
		in   string
		want MessageType
		out  string
	}{
		{"RS|EP", RS | EP, "RS|EP"},
		{"ep|rs", RS | EP, "RS|EP"},
		{" CP | ET ", CP | ET, "ET|CP"},
		{"CX|CP", CP | CX, "CP|CX"},
		{"", 0, ""},
		{"GI", GI, "GI"},
	}
	for _, tc := range tests {
		got, err := ParseMessageType(tc.in)
		if err != nil {
			t.Errorf("ParseMessageType(%q): %v", tc.in, err)
			continue
		}
		if got != tc.want || got.String() != tc.out {
			t.Errorf("ParseMessageType(%q) = %v (%q), want %v (%q)", tc.in, got, got.String(), tc.want, tc.out)
		}
	}
	if !(RS | EP).Has(EP) || (RS | EP).Has(ET) || (RS | EP).Has(0) {
		t.Error("Has disagrees with the set")
	}
	if got := (RS | EP | CK).Types(); len(got) != 3 || got[0] != RS || got[1] != EP || got[2] != CK {
		t.Errorf("Types() = %v, want [RS EP CK]", got)
	}
	for _, bad := range []string{"XX", "RS|", "RS||EP", "RSEP", "R S"} {
		if _, err := ParseMessageType(bad); err == nil {
			t.Errorf("ParseMessageType(%q) succeeded, want an error", bad)
		}
	}
}

func TestMessageTypeJSON(t *testing.T) {
	b, err := json.Marshal(map[string]MessageType{"type": RS | EP})
	if err != nil || string(b) != `{"type":"RS|EP"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back map[string]MessageType
	if err := json.Unmarshal(b, &back); err != nil || back["type"] != RS|EP {
		t.Fatalf("unmarshal = %v, %v", back, err)
	}
	if _, err := json.Marshal(MessageType(1 << 30)); err == nil {
		t.Error("marshal of an unknown bit succeeded")
	}
}

func TestRoleSet(t *testing.T) {
	want := []string{"finder", "reporter", "vendor", "deployer", "coordinator", "observer", "case_owner", "case_manager", "cve_numbering_authority"}
	roles := Roles()
	if len(roles) != len(want) {
		t.Fatalf("got %d roles, want %d", len(roles), len(want))
	}
	for i, r := range roles {
		if r.String() != want[i] {
			t.Errorf("role %d = %q, want %q", i, r, want[i])
		}
		if got, err := ParseRoleSet(want[i]); err != nil || got != r {
			t.Errorf("ParseRoleSet(%q) = %v, %v", want[i], got, err)
		}
	}
	got, err := ParseRoleSet("Vendor, deployer")
	if err != nil || got != Vendor|Deployer || got.String() != "vendor|deployer" {
		t.Errorf("ParseRoleSet(\"Vendor, deployer\") = %q, %v", got, err)
	}
	if got, err := ParseRoleSet("other"); err != nil || got != Observer {
		t.Errorf("ParseRoleSet(\"other\") = %v, %v; want observer", got, err)
	}
	if _, err := ParseRoleSet("vendor|hacker"); err == nil {
		t.Error("ParseRoleSet accepted an unknown role")
	}
	var r RoleSet
	if err := json.Unmarshal([]byte(`"case_owner|coordinator"`), &r); err != nil || r != CaseOwner|Coordinator {
		t.Errorf("unmarshal roles = %v, %v", r, err)
	}
}

// TestAcknowledgementAndErrorOf checks the K and E of each model against
// the receiver tables: a message Receive accepts is answered with exactly
// AcknowledgementOf's replies (and the consequences the receiver
// announces, which are no acknowledgement), and the E of a refused message
// is its model's.
func TestAcknowledgementAndErrorOf(t *testing.T) {
	tests := []struct {
		msg     MessageType
		state   CaseState
		self    ParticipantState
		ack, er string
	}{
		{RS, CaseState{}, ParticipantState{}, "RK", "RE"},
		{RV, CaseState{}, ParticipantState{RM: RMReceived}, "RK", "RE"},
		{RI, CaseState{}, ParticipantState{RM: RMReceived}, "RK", "RE"},
		{RA, CaseState{}, ParticipantState{RM: RMAccepted}, "RK", "RE"},
		{RD, CaseState{}, ParticipantState{RM: RMAccepted}, "RK", "RE"},
		{RC, CaseState{}, ParticipantState{RM: RMAccepted}, "RK", "RE"},
		{EP, CaseState{EM: EMNone}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{EA, CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{ER, CaseState{EM: EMProposed}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{EV, CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{EC, CaseState{EM: EMRevise}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{EJ, CaseState{EM: EMRevise}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{ET, CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted}, "EK", "EE"},
		{CV, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{CF, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{CD, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{CP, CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{CX, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{CA, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{GI, CaseState{}, ParticipantState{RM: RMAccepted}, "GK", "GE"},
		{RS | EP, CaseState{}, ParticipantState{}, "RK|EK", "RE|EE"},
		{CP | ET, CaseState{EM: EMActive}, ParticipantState{RM: RMAccepted}, "EK|CK", "EE|CE"},
		{RK | CV, CaseState{}, ParticipantState{RM: RMAccepted}, "CK", "CE"},
		{RK, CaseState{}, ParticipantState{RM: RMAccepted}, "", ""},
		{EE | GE, CaseState{}, ParticipantState{RM: RMAccepted}, "", ""},
		{0, CaseState{}, ParticipantState{RM: RMAccepted}, "", "GE"},
	}
	for _, tt := range tests {
		if got := AcknowledgementOf(tt.msg).String(); got != tt.ack {
			t.Errorf("AcknowledgementOf(%s) = %q, want %q", tt.msg, got, tt.ack)
		}
		if got := ErrorOf(tt.msg).String(); got != tt.er {
			t.Errorf("ErrorOf(%s) = %q, want %q", tt.msg, got, tt.er)
		}
		if tt.msg == 0 || tt.msg&^(Acknowledgements|Errors) == 0 {
			continue
		}
		out, err := Receive(tt.state, tt.self, Coordinator, tt.msg&^(Acknowledgements|Errors))
		if err != nil {
			t.Fatalf("Receive(%s): %v", tt.msg, err)
		}
		if got := out.Emit & Acknowledgements; got != AcknowledgementOf(tt.msg) {
			t.Errorf("Receive(%s in %s, %s) acknowledges with %q; AcknowledgementOf says %q", tt.msg, tt.state, tt.self, got, AcknowledgementOf(tt.msg))
		}
		if out.Emit&Errors != 0 {
			t.Errorf("Receive(%s in %s, %s) answers %s: the test state must be one that accepts it", tt.msg, tt.state, tt.self, out.Emit)
		}
	}
	if Acknowledgements.String() != "RK|EK|CK|GK" || Errors.String() != "RE|EE|CE|GE" {
		t.Errorf("Acknowledgements = %s, Errors = %s", Acknowledgements, Errors)
	}
}
