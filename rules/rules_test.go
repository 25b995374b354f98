package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// issueExample is the policy issue 19 says must work as written.
const issueExample = `rules:
  - on: report_received
    if: 'sender in ["https://finder.example/actors/alice"]'
    do: [validate, engage, {propose_embargo: {days: 90}}]
  - on: intel_attacks_observed
    do: [report_attacks]
`

const issueExampleJSON = `{"rules": [
  {"on": "report_received",
   "if": "sender in [\"https://finder.example/actors/alice\"]",
   "do": ["validate", "engage", {"propose_embargo": {"days": 90}}]},
  {"on": "intel_attacks_observed", "do": ["report_attacks"]}
]}`

func mustParse(t *testing.T, src string) *Policy {
	t.Helper()
	p, err := Parse([]byte(src), "test.yaml")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func kinds(d Decision) string {
	var s []string
	for _, a := range d.Actions {
		s = append(s, a.String())
	}
	return strings.Join(s, ", ")
}

func TestIssueExample(t *testing.T) {
	for name, src := range map[string]string{"yaml": issueExample, "json": issueExampleJSON} {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, src)
			if len(p.Rules) != 2 || p.Rules[0].Line != 2 && name == "yaml" {
				t.Fatalf("rules = %d, first at line %d", len(p.Rules), p.Rules[0].Line)
			}
			fired := p.Fired(Env{Point: string(ReportReceived), Sender: "https://finder.example/actors/alice"})
			if len(fired) != 1 || kinds(fired[0]) != "validate, engage, propose_embargo 90 days" {
				t.Fatalf("alice's report: fired %+v", fired)
			}
			if got := p.Fired(Env{Point: string(ReportReceived), Sender: "https://other.example/actors/bob"}); len(got) != 0 {
				t.Errorf("bob's report fired %d rules, want none", len(got))
			}
			ds := p.Decide(Env{Point: string(ReportReceived), Sender: "https://other.example/actors/bob"})
			if len(ds) != 1 || ds[0].Fires || !strings.Contains(ds[0].Why, `does not hold with sender = "https://other.example/actors/bob"`) {
				t.Errorf("explanation for bob = %+v", ds)
			}
			fired = p.Fired(Env{Point: string(IntelAttacksObserved)})
			if len(fired) != 1 || kinds(fired[0]) != "report_attacks" || fired[0].Why != "it has no condition" {
				t.Errorf("intel: fired %+v", fired)
			}
		})
	}
}

// TestShippedPSIRTExample checks docs/examples/policies/psirt.yaml, the
// examples issue 19 asks for: take reports from allow-listed finders,
// propose 90 days (45 for a coordinator's report), accept proposals of 30
// to 120 days and reject others with a reason, invite the vendor
// registered for a package URL.
func TestShippedPSIRTExample(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "docs", "examples", "policies", "psirt.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p := mustParse(t, string(data))
	tests := []struct {
		name string
		env  Env
		want []string
	}{
		{"finder gets 90 days", Env{Point: "report_received", Sender: "https://finder.example/actors/alice"},
			[]string{"validate, engage, propose_embargo 90 days"}},
		{"coordinator gets 45 days", Env{Point: "report_received", Sender: "https://cert.example/actors/cc"},
			[]string{"validate, engage, propose_embargo 45 days"}},
		{"a stranger's report waits", Env{Point: "report_received", Sender: "https://else.example/actors/x"}, nil},
		{"60 days accepted", Env{Point: "embargo_proposed", Proposal: Proposal{Days: 60}}, []string{"accept_embargo"}},
		{"200 days rejected", Env{Point: "embargo_proposed", Proposal: Proposal{Days: 200}},
			[]string{"reject_embargo (we accept embargoes of 30 to 120 days), notify https://tickets.acme.example/hooks/embargo"}},
		{"10 days rejected", Env{Point: "embargo_proposed", Proposal: Proposal{Days: 10}},
			[]string{"reject_embargo (we accept embargoes of 30 to 120 days), notify https://tickets.acme.example/hooks/embargo"}},
		{"package vendor invited", Env{Point: "report_received", Sender: "https://else.example/actors/x", Report: Report{Content: "overflow in pkg:npm/left-pad@1.3.0"}},
			[]string{"validate, invite https://leftpad.example/actors/psirt as vendor"}},
		{"a coordinator's invitation is taken", Env{Point: "invitation_received", Invitation: Invitation{Host: "cert.example"}},
			[]string{"accept_invitation, engage"}},
		{"another's invitation asks a person", Env{Point: "invitation_received", Invitation: Invitation{Host: "other.example"}}, []string{"ask"}},
		{"published at the end of the embargo once fixed", Env{Point: "embargo_ended", Actor: "https://acme.example/actors/psirt",
			Case: Case{Owner: "https://acme.example/actors/psirt", VFD: "VFd"}}, []string{"report_public"}},
		{"not before the fix", Env{Point: "embargo_ended", Actor: "https://acme.example/actors/psirt",
			Case: Case{Owner: "https://acme.example/actors/psirt", VFD: "Vfd"}}, nil},
		{"public once our advisory is out", Env{Point: "advisory_published", Actor: "https://acme.example/actors/psirt",
			Case: Case{Owner: "https://acme.example/actors/psirt", PXA: "pxa"}}, []string{"report_public"}},
		{"not again once public", Env{Point: "advisory_published", Actor: "https://acme.example/actors/psirt",
			Case: Case{Owner: "https://acme.example/actors/psirt", PXA: "Pxa"}}, nil},
		{"not for another's advisory", Env{Point: "advisory_published", Actor: "https://acme.example/actors/psirt",
			Case: Case{Owner: "https://other.example/actors/psirt", PXA: "pxa"}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range p.Fired(tc.env) {
				got = append(got, kinds(d))
			}
			if strings.Join(got, " | ") != strings.Join(tc.want, " | ") {
				t.Errorf("fired %q, want %q", got, tc.want)
			}
		})
	}
	if p.ActsFor("lab-bot") || !p.ActsFor("psirt") {
		t.Error("the policy's off list is not honoured")
	}
}

// TestShippedIssueExample: the issue's example, shipped in YAML and in
// JSON, reads the same.
func TestShippedIssueExample(t *testing.T) {
	var got []string
	for _, name := range []string{"issue-example.yaml", "issue-example.json"} {
		data, err := os.ReadFile(filepath.Join("..", "docs", "examples", "policies", name))
		if err != nil {
			t.Fatal(err)
		}
		p := mustParse(t, string(data))
		var s []string
		for _, r := range p.Rules {
			var do []string
			for _, a := range r.Do {
				do = append(do, a.String())
			}
			s = append(s, string(r.On)+" if "+r.If+" do "+strings.Join(do, ", "))
		}
		got = append(got, strings.Join(s, "; "))
	}
	if got[0] != got[1] {
		t.Errorf("YAML and JSON differ:\n%s\n%s", got[0], got[1])
	}
}

func TestRefusedWithLineAndReason(t *testing.T) {
	tests := []struct {
		name, src string
		line      int
		reason    string
	}{
		{"not yaml", "rules:\n  - on: fix_ready\n    do: [validate\n", 2, "not valid YAML or JSON"},
		{"no rules", "name: x\n", 1, "needs rules"},
		{"unknown top key", "rulez: []\n", 1, `no key "rulez"`},
		{"unknown point", "rules:\n  - on: report_recieved\n    do: [validate]\n", 2, `"report_recieved" is not a decision point`},
		{"unknown action", "rules:\n  - on: report_received\n    do:\n      - validate\n      - publish\n", 5, `"publish" is not an action`},
		{"action at wrong point", "rules:\n  - on: report_received\n    do: [accept_embargo]\n", 3, "accept_embargo answers embargo_proposed"},
		{"missing days", "rules:\n  - on: report_received\n    do:\n      - propose_embargo\n", 4, "propose_embargo needs days"},
		{"bad days", "rules:\n  - on: report_received\n    do:\n      - propose_embargo: {days: 0}\n", 4, "days must be a whole number"},
		{"days expression", "rules:\n  - on: report_received\n    do:\n      - propose_embargo: {days: 'sender + 1'}\n", 4, "days is neither a number nor an expression"},
		{"condition does not compile", "rules:\n  - on: report_received\n    if: 'sendr == \"x\"'\n    do: [validate]\n", 3, "the condition does not compile: unknown name sendr"},
		{"condition not boolean", "rules:\n  - on: report_received\n    if: 'sender'\n    do: [validate]\n", 3, "the condition does not compile"},
		{"no do", "rules:\n  - on: report_received\n", 2, "has no do"},
		{"empty do", "rules:\n  - on: report_received\n    do: []\n", 3, "non-empty list"},
		{"duplicate key", "rules:\n  - on: report_received\n    on: fix_ready\n    do: [validate]\n", 3, "already defined"},
		{"notify needs url", "rules:\n  - on: fix_ready\n    do:\n      - notify: {url: 'ftp://x'}\n", 4, "http or https URL"},
		{"args to bare action", "rules:\n  - on: fix_ready\n    do:\n      - validate: {days: 3}\n", 4, "takes no arguments"},
		{"bad role", "rules:\n  - on: fix_ready\n    do:\n      - invite: {actor: 'https://v.example/a', role: boss}\n", 4, `"boss" is not a role`},
		{"simulation out of range", "rules: []\nsimulation:\n  coordinator_share: 2\n", 3, "between 0 and 1"},
		{"json error line", "{\"rules\": [\n {\"on\": \"fix_ready\",\n  \"do\": [\"fly\"]}]}", 3, `"fly" is not an action`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.src), "p.yaml")
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse = %v, %v; want an *Error", p, err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Reason, tc.reason) {
				t.Errorf("refused at line %d with %q; want line %d and %q", pe.Line, pe.Reason, tc.line, tc.reason)
			}
			if !strings.HasPrefix(err.Error(), "policy p.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestTooLargeRefusedBeforeParsing(t *testing.T) {
	big := "rules: []\n#" + strings.Repeat("x", MaxSize)
	_, err := Parse([]byte(big), "big.yaml")
	if err == nil || !strings.Contains(err.Error(), "over the") {
		t.Fatalf("Parse of %d bytes = %v", len(big), err)
	}
}

func TestConditionFailureDoesNotFire(t *testing.T) {
	p := mustParse(t, "rules:\n  - on: fix_ready\n    if: 'vars.limit > 3'\n    do: [report_public]\n")
	ds := p.Decide(Env{Point: "fix_ready"})
	if len(ds) != 1 || ds[0].Fires || ds[0].Err == nil || !strings.Contains(ds[0].Why, "failed") {
		t.Fatalf("decision = %+v", ds)
	}
}

func TestExplainShowsValues(t *testing.T) {
	p := mustParse(t, "rules:\n  - on: embargo_ended\n    if: 'case.pxa == \"pxa\" && now > case.embargo_end'\n    do: [report_public]\n")
	end := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	ds := p.Decide(Env{Point: "embargo_ended", Now: end.Add(time.Hour), Case: Case{PXA: "pxa", EmbargoEnd: end}})
	if len(ds) != 1 || !ds[0].Fires {
		t.Fatalf("decision = %+v", ds)
	}
	for _, want := range []string{`case.pxa = "pxa"`, "case.embargo_end = 2026-01-02T00:00:00Z", "now = 2026-01-02T01:00:00Z"} {
		if !strings.Contains(ds[0].Why, want) {
			t.Errorf("why %q lacks %q", ds[0].Why, want)
		}
	}
}

// TestExplainShowsListsAsJSON: a list or a map an explanation shows is
// written as JSON, its strings quoted as a string alone is, so that its
// items can be told apart; a long value is clipped on a character.
func TestExplainShowsListsAsJSON(t *testing.T) {
	p := mustParse(t, "vars:\n  finders: [\"https://a.example/actors/x y\", \"https://b.example/actors/z\"]\n  vendors: {\"pkg:npm/a\": \"https://v.example/actors/a\"}\n"+
		"rules:\n  - on: report_received\n    if: 'sender in vars.finders || \"vendor\" in case.roles || len(vars.vendors) > 5 || report.content == \"\"'\n    do: [ask]\n")
	ds := p.Decide(Env{Point: "report_received", Sender: "https://c.example/actors/c", Vars: p.Vars,
		Case: Case{Roles: []string{"finder", "reporter"}}, Report: Report{Content: "x" + strings.Repeat("é", 100)}})
	if len(ds) != 1 || ds[0].Fires {
		t.Fatalf("decision = %+v", ds)
	}
	for _, want := range []string{`vars.finders = ["https://a.example/actors/x y","https://b.example/actors/z"]`,
		`case.roles = ["finder","reporter"]`, `vars.vendors = {"pkg:npm/a":"https://v.example/actors/a"}`} {
		if !strings.Contains(ds[0].Why, want) {
			t.Errorf("why %q lacks %q", ds[0].Why, want)
		}
	}
	if !utf8.ValidString(ds[0].Why) {
		t.Errorf("why %q is not valid UTF-8: a long value was clipped inside a character", ds[0].Why)
	}
}

func TestOffAndSimulation(t *testing.T) {
	p := mustParse(t, "off: [bot]\nrules: []\nsimulation:\n  fix_days: 10\n")
	if p.ActsFor("bot") || !p.ActsFor("vendor") {
		t.Errorf("ActsFor: bot %v, vendor %v", p.ActsFor("bot"), p.ActsFor("vendor"))
	}
	if p.Simulation.FixDays != 10 || p.Simulation.DeployDays != DefaultSimulation().DeployDays {
		t.Errorf("simulation = %+v", p.Simulation)
	}
}

// TestNotifyURLShownWithoutItsCredentials: the notify action, as the audit
// log, the node's log and the explanation of a case name it, shows its
// URL without the credential its password or query may carry.
func TestNotifyURLShownWithoutItsCredentials(t *testing.T) {
	const password, token = "notify-password-41c2", "notify-query-token-9e0a"
	url := "https://user:" + password + "@hooks.example/in?token=" + token
	for _, tc := range []struct {
		name, shown string
	}{
		{"action", Action{Kind: Notify, URL: url}.String()},
		{"resolved", Resolved{Kind: Notify, URL: url}.String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.shown, password) || strings.Contains(tc.shown, token) || !strings.Contains(tc.shown, "hooks.example/in?xxxxx") {
				t.Errorf("shown as %q, want the URL with its password and query as xxxxx", tc.shown)
			}
		})
	}
}
