package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
)

// fakeNode answers the read API with canned JSON and checks the token.
func fakeNode(t *testing.T) (url, tokenFile string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/api/cases", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret-token-secret-token-secret" {
			w.WriteHeader(401)
			w.Write([]byte(`{"error":"this endpoint needs the node's API token"}`))
			return
		}
		// Two pages of one case each, so the command must follow "next".
		switch r.URL.Query().Get("after") {
		case "":
			w.Write([]byte(`{"cases":[{"id":"http://n/cases/abc","name":"SQLi","emState":"ACTIVE","pxaState":"pxa","ledgerLength":2,
"participants":[{"actor":"http://n/actors/vendor","roles":["vendor"],"rmState":"VALID","vfdState":"Vfd","pecState":"SIGNATORY","engaged":true}]}],
"next":"http://n/cases/abc"}`))
		case "http://n/cases/abc":
			w.Write([]byte(`{"cases":[{"id":"http://n/cases/abd","name":"XSS","emState":"NONE","pxaState":"Pxa","ledgerLength":9}]}`))
		default:
			w.WriteHeader(400)
			w.Write([]byte(`{"error":"unknown cursor"}`))
		}
	})
	mux.HandleFunc("/api/cases/{id}", func(w http.ResponseWriter, r *http.Request) {
		// The node resolves a case's id and its short id, nothing else.
		if id := r.PathValue("id"); id != "abc" && id != "http://n/cases/abc" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"no case ` + id + ` on this node"}`))
			return
		}
		w.Write([]byte(`{"id":"http://n/cases/abc","name":"SQLi","owner":"http://n/actors/vendor","emState":"ACTIVE","pxaState":"pxa","ledgerLength":2,"tailHash":"ff",
"participants":[{"actor":"http://n/actors/vendor","roles":["vendor","case_owner"],"rmState":"VALID","vfdState":"Vfd","pecState":"SIGNATORY","engaged":true},
 {"actor":"http://f/actors/finder","roles":["finder","reporter"],"rmState":"ACCEPTED","vfdState":"vfd","pecState":"INVITED","rsvpBy":"2026-11-29T09:00:00Z","engaged":true}],
"notes":[{"author":"http://n/actors/vendor","content":"fix in progress","published":"2026-11-22T09:00:00Z"}]}`))
	})
	mux.HandleFunc("/api/cases/{id}/ledger", func(w http.ResponseWriter, r *http.Request) {
		// Entry 1 was sent on alice's request from this node; entry 0 by
		// the Case Actor on its own.
		w.Write([]byte(`{"entries":[
{"caseId":"http://n/cases/abc","logIndex":0,"disposition":"recorded","logObjectId":"http://n/activities/a0","eventType":"create_case","payloadSnapshot":{},"prevLogHash":"00","entryHash":"aa00","receivedAt":"2026-11-22T09:00:00Z"},
{"caseId":"http://n/cases/abc","logIndex":1,"disposition":"recorded","logObjectId":"http://n/activities/a1","eventType":"validate_report","payloadSnapshot":{},"prevLogHash":"aa00","entryHash":"bb11","receivedAt":"2026-11-22T09:01:00Z"}],
"sentBy":{"http://n/activities/a1":"alice"}}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tokenFile = filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, tokenFile
}

func TestCaseCommand(t *testing.T) {
	url, tokenFile := fakeNode(t)
	otherToken := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(otherToken, []byte("another-node-token-another-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []commandCase{
		{[]string{"case", "list", "--node", url, "--token-file", tokenFile}, 0, []string{"\nabc   SQLi", "\nabd   XSS"}},
		{[]string{"case", "list", "--json", "--node", url, "--token-file", tokenFile}, 0, []string{`"id": "http://n/cases/abc"`, `"id": "http://n/cases/abd"`}},
		{[]string{"case", "show", "abc", "--node", url, "--token-file", tokenFile}, 0, []string{"owner       http://n/actors/vendor", "vendor,case_owner", "fix in progress", "INVITED (answer by 2026-11-29T09:00:00Z)"}},
		{[]string{"case", "show", "ab", "--node", url, "--token-file", tokenFile}, 1, []string{`"ab" matches 2 cases`}},
		{[]string{"case", "show", "zzz", "--node", url, "--token-file", tokenFile}, 1, []string{`no case on the node matches "zzz"`}},
		{[]string{"case", "frob", "--node", url, "--token-file", tokenFile}, 2, []string{`unknown case command "frob"`}},
		{[]string{"case", "show", "http://n/cases/abc", "--node", url, "--token-file", tokenFile}, 0, []string{"owner       http://n/actors/vendor"}},
		{[]string{"case", "show", "bc", "--node", url, "--token-file", tokenFile}, 0, []string{"case        http://n/cases/abc"}},
		// The ledger names the person behind this node's own entries.
		{[]string{"case", "ledger", "abc", "--node", url, "--token-file", tokenFile}, 0, []string{"BY", "validate_report  alice  http://n/activities/a1", "create_case      -      http://n/activities/a0"}},
		// --json keeps each entry as the ledger has it, with sentBy beside
		// its fields for this node's own entries.
		{[]string{"case", "ledger", "abc", "--json", "--node", url, "--token-file", tokenFile}, 0, []string{`"entryHash": "bb11",
    "receivedAt": "2026-11-22T09:01:00Z",
    "sentBy": "alice"`, `"entryHash": "aa00",
    "receivedAt": "2026-11-22T09:00:00Z"
  }`}},
		{[]string{"case", "list", "--node", url, "--token-file", filepath.Join(t.TempDir(), "missing")}, 1, []string{"read the token for the node at " + url}},
		// A token of another node: the sentence names the node and the file.
		{[]string{"case", "list", "--node", url, "--token-file", otherToken}, 1, []string{"the node at " + url + " refused the token from " + otherToken + " (401"}},
		// No scheme: one sentence, exit 2.
		{[]string{"case", "list", "--node", "127.0.0.1:7001", "--token-file", tokenFile}, 2, []string{`--node must be the node's URL with its scheme, such as http://127.0.0.1:7001, not "127.0.0.1:7001"`}},
	}
	for _, tt := range tests {
		runCommand(t, tt)
	}
}

// TestCaseListShortIDs checks that case list shows each case by its short
// id, which the other commands take, and --json by its id.
func TestCaseListShortIDs(t *testing.T) {
	url, tokenFile := fakeNode(t)
	code, out, errOut := runCLI(t, "case", "list", "--node", url, "--token-file", tokenFile)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || strings.Contains(out, "http://n/cases/") {
		t.Fatalf("case list: exit %d, stdout %q, stderr %q; want a header and two cases by their short ids", code, out, errOut)
	}
	var shown []string
	for _, l := range lines[1:] {
		shown = append(shown, strings.Fields(l)[0])
	}
	if strings.Join(shown, " ") != "abc abd" {
		t.Errorf("case list shows the cases %q, want abc and abd:\n%s", shown, out)
	}
	// What the list shows is what case show takes.
	if code, out, errOut := runCLI(t, "case", "show", shown[0], "--node", url, "--token-file", tokenFile); code != 0 || !strings.Contains(out, "case        http://n/cases/abc") {
		t.Errorf("case show %s: exit %d, stdout %q, stderr %q", shown[0], code, out, errOut)
	}
}

func TestDeliveriesCommand(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/deliveries", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"pending":[{"id":4,"actor":"vendor","recipient":"http://p/actors/finder","attempts":2,"firstQueued":"2026-11-22T09:00:00Z","nextAttempt":"2026-11-22T09:10:00Z","lastError":"connection refused"}],
"dead":[{"id":3,"actor":"vendor","recipient":"http://q/actors/gone","attempts":1,"firstQueued":"2026-11-22T08:00:00Z","lastError":"peer answered 410 Gone"}]}`))
	})
	mux.HandleFunc("POST /api/deliveries/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "3" {
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"no dead letter ` + r.PathValue("id") + `"}`))
			return
		}
		w.Write([]byte(`{"requeued":3,"delivery":9}`))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "api-token")
	if err := os.WriteFile(tokenFile, []byte("secret-token-secret-token-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []commandCase{
		{[]string{"deliveries", "--node", srv.URL, "--token-file", tokenFile}, 0, []string{"pending: 1", "connection refused", "dead letters: 1", "410 Gone"}},
		{[]string{"deliveries", "retry", "3", "--node", srv.URL, "--token-file", tokenFile}, 0, []string{"dead letter 3 requeued as delivery 9"}},
		{[]string{"deliveries", "retry", "7", "--node", srv.URL, "--token-file", tokenFile}, 1, []string{"the node refused (404): no dead letter 7"}},
		{[]string{"deliveries", "retry", "x", "--node", srv.URL, "--token-file", tokenFile}, 2, []string{`dead letter id "x" is not a number`}},
	}
	for _, tt := range tests {
		runCommand(t, tt)
	}
}

// commandCase is one run of the binary's command line and what it must do.
type commandCase struct {
	args     []string
	wantCode int
	want     []string // each must appear in the output
}

// runCommand runs tt as a subtest named after its first two arguments.
func runCommand(t *testing.T, tt commandCase) {
	t.Helper()
	t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
		var out strings.Builder
		env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
		if got := run(t.Context(), env, tt.args); got != tt.wantCode {
			t.Errorf("exit code %d, want %d; output:\n%s", got, tt.wantCode, out.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("output lacks %q:\n%s", w, out.String())
			}
		}
	})
}

// TestCaseShowListsProposals: "case show" prints each open embargo
// proposal, the end it proposes, its proposer and its RSVP deadline, so
// that an invitee sees what it is asked to accept before it answers.
func TestCaseShowListsProposals(t *testing.T) {
	var out strings.Builder
	env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	end := time.Date(2027, 2, 5, 0, 3, 52, 0, time.UTC)
	rsvp := time.Date(2026, 12, 14, 0, 3, 52, 0, time.UTC)
	d := api.CaseDetail{Case: api.Case{ID: "https://v.example/cases/c1", EMState: "REVISE"},
		Proposals: []cases.Proposal{{InviteID: "https://c.example/activities/ev1", RSVPBy: rsvp,
			Terms: cases.Embargo{End: end, Proposer: "https://c.example/actors/coordinator"}}}}
	printCase(env, d)
	for _, want := range []string{"proposed", "2027-02-05T00:03:52Z", "https://c.example/actors/coordinator", "answer by 2026-12-14T00:03:52Z", "https://c.example/activities/ev1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("case show printed\n%s\nwithout %q", out.String(), want)
		}
	}
}

// TestCaseShowListsWhatIsOpen: "case show" prints what awaits an answer
// besides embargo proposals: each open invitation (whom, in which roles,
// by whom, the Case Actor's Invite the invitee answers), each open
// suggestion and an offer of the case's ownership, so that an owner sees
// who has not answered yet.
func TestCaseShowListsWhatIsOpen(t *testing.T) {
	at := time.Date(2026, 12, 7, 2, 25, 45, 0, time.UTC)
	d := api.CaseDetail{Case: api.Case{ID: "https://c.example/cases/c1", EMState: "NONE"},
		Invites: []cases.Invite{{Actor: "https://a.example/actors/vendora", Roles: cvdstate.Vendor | cvdstate.Deployer,
			By: "https://c.example/actors/cert", ID: "https://c.example/activities/i1", Sent: "https://c.example/actors/case-c1/invitations/i1", At: at}},
		Suggestions: []cases.Suggestion{{ID: "https://a.example/activities/s1", Actor: "https://b.example/actors/vendorb",
			By: "https://a.example/actors/vendora", Roles: cvdstate.Vendor}},
		Transfer: &cases.Transfer{ID: "https://c.example/activities/t1", To: "https://a.example/actors/vendora"}}
	tests := []struct {
		name string
		want []string
	}{
		{"invitation", []string{"invited", "https://a.example/actors/vendora as vendor,deployer", "by https://c.example/actors/cert", "2026-12-07T02:25:45Z", "https://c.example/actors/case-c1/invitations/i1"}},
		{"suggestion", []string{"suggested", "https://b.example/actors/vendorb as vendor", "by https://a.example/actors/vendora", "https://a.example/activities/s1"}},
		{"transfer", []string{"transfer", "ownership offered to https://a.example/actors/vendora", "https://c.example/activities/t1"}},
	}
	var out strings.Builder
	env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	printCase(env, d)
	for _, tt := range tests {
		for _, want := range tt.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%s: case show printed\n%s\nwithout %q", tt.name, out.String(), want)
			}
		}
	}
}

// TestClientMistakesSayWhatToDo gives the command line the mistakes of a
// first hour: a node that is not running, a file that holds no token, a
// --timeout without its unit and a case that is not there. Each is one
// sentence that says what is wrong and what to do, and none is reported
// as something else (a file that is no token is no network failure).
func TestClientMistakesSayWhatToDo(t *testing.T) {
	url, tokenFile := fakeNode(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	notToken := filepath.Join(t.TempDir(), "vultron.db")
	if err := os.WriteFile(notToken, []byte("\x00\x01bolt\x00\nmeta\x00page\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		wantCode int
		want     string
		unwanted []string
	}{
		{[]string{"case", "list", "--node", down, "--token-file", tokenFile}, 1,
			"nothing answers at " + down + " (connection refused): is the node running there?",
			[]string{"dial tcp", "Get \""}},
		// An action asks the node for its actors first: the sentence is the
		// same, not wrapped in what the command was about to do.
		{[]string{"case", "engage", "abc", "--node", down, "--token-file", tokenFile}, 1,
			"nothing answers at " + down + " (connection refused): is the node running there?",
			[]string{"list the node's actors", "dial tcp"}},
		{[]string{"case", "list", "--node", url, "--token-file", notToken}, 1,
			notToken + " does not hold a token", []string{"cannot reach", "Authorization"}},
		{[]string{"case", "wait", "abc", "--until", "draft", "--timeout", "5", "--node", url, "--token-file", tokenFile}, 2,
			`--timeout takes a duration with its unit, such as 30s, 2m or 1h, not "5"`, []string{"parse error"}},
		{[]string{"case", "show", "zzz", "--node", url, "--token-file", tokenFile}, 1,
			`no case on the node matches "zzz" ("vultron case list" lists them)`, nil},
		// A negative --from is a bad command line, refused before the node
		// is asked.
		{[]string{"case", "ledger", "abc", "--from", "-3", "--node", url, "--token-file", tokenFile}, 2,
			"--from must be a log index, 0 or more, not -3", []string{"refused"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 || out != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d and one sentence saying %q", code, out, errOut, tt.wantCode, tt.want)
			}
			for _, u := range tt.unwanted {
				if strings.Contains(errOut, u) {
					t.Errorf("stderr %q says %q", errOut, u)
				}
			}
		})
	}
}

// TestLoginRefusedTokenSaysWhichToken: a token the node refuses at login
// is named by where it came from (standard input, or the --token-file
// given), and the sentence does not send its reader back to vultron login.
func TestLoginRefusedTokenSaysWhichToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		w.Write([]byte(`{"error":"the token is not one of this node's (revoked, or never issued)"}`))
	}))
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "other-token")
	if err := os.WriteFile(tokenFile, []byte("another-node-token-another-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"login", "--node", srv.URL, "--with-token"}, "the node at " + srv.URL + " refused the token read from standard input (401: the token is not one of this node's (revoked, or never issued)); give a token of that node."},
		{[]string{"login", "--node", srv.URL, "--token-file", tokenFile}, "the node at " + srv.URL + " refused the token from " + tokenFile + " (401: the token is not one of this node's (revoked, or never issued)); give a token of that node."},
	} {
		var stdout, stderr strings.Builder
		env := &environment{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader("another-node-token-another-node\n"), getenv: func(k string) string {
			if k == "XDG_CONFIG_HOME" {
				return config
			}
			return ""
		}}
		code := run(t.Context(), env, tt.args)
		if code != 1 || !strings.Contains(stderr.String(), tt.want) || strings.Contains(stderr.String(), "log in with vultron login") || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and one sentence saying %q", tt.args, code, stderr.String(), tt.want)
		}
	}
}
