package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/outbox"
)

// cliNode is a node started in-process for the command-line tests.
type cliNode struct {
	url, tokenFile string
}

// startCLINode starts a node on 127.0.0.1 with the given actors
// ("name:Type") and stops it when the test ends.
func startCLINode(t *testing.T, actors ...string) cliNode {
	t.Helper()
	return startCLINodeWith(t, node.Config{}, actors...)
}

// startCLINodeWith starts a node as startCLINode does, with the embargo
// settings, the clock, the deadlines, the policy and the federation
// allow-list of extra.
func startCLINodeWith(t *testing.T, extra node.Config, actors ...string) cliNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startCLINodeIn(t, t.TempDir(), ln, extra, actors...)
}

// startCLINodeIn starts a node as startCLINodeWith does, with its data in
// dir (a store a test made or damaged) and listening on ln.
func startCLINodeIn(t *testing.T, dir string, ln net.Listener, extra node.Config, actors ...string) cliNode {
	t.Helper()
	u := "http://" + ln.Addr().String()
	var acs []node.ActorConfig
	for _, a := range actors {
		name, typ, _ := strings.Cut(a, ":")
		acs = append(acs, node.ActorConfig{Name: name, Type: actor.Type(typ)})
	}
	n, err := node.New(t.Context(), node.Config{DataDir: dir, Listener: ln, PublicURL: u, Actors: acs,
		AllowPrivatePeers: true, Logger: zerolog.Nop(), Notice: io.Discard, MaxEmbargo: extra.MaxEmbargo, DefaultEmbargo: extra.DefaultEmbargo,
		Retry: outbox.RetryPolicy{First: 50 * time.Millisecond, Max: 200 * time.Millisecond, Horizon: time.Minute},
		Now:   extra.Now, Deadlines: extra.Deadlines, DeadlineCheck: extra.DeadlineCheck,
		Policy: extra.Policy, AutomationInterval: extra.AutomationInterval,
		Federation: extra.Federation, AllowPeers: extra.AllowPeers})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", u, err)
		}
	})
	return cliNode{url: u, tokenFile: filepath.Join(dir, "api-token")}
}

// cli runs the command line against node n and returns the exit code and
// what it printed on stdout and stderr.
func (n cliNode) cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	args = append(args, "--node", n.url, "--token-file", n.tokenFile)
	code := run(t.Context(), env, args)
	return code, stdout.String(), stderr.String()
}

// ok runs a command that must succeed and returns its stdout.
func (n cliNode) ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := n.cli(t, args...)
	if code != 0 {
		t.Fatalf("vultron %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// caseJSON is what "case show --json" prints: the node's answer.
type caseJSON struct{ api.CaseDetail }

func (n cliNode) showCase(t *testing.T, id string) caseJSON {
	t.Helper()
	var c caseJSON
	if err := json.Unmarshal([]byte(n.ok(t, "case", "show", id, "--json")), &c); err != nil {
		t.Fatalf("case show --json is not JSON: %v", err)
	}
	return c
}

// removed reports whether actor is a participant the case removed.
func (c caseJSON) removed(actor string) bool {
	for _, p := range c.Participants {
		if p.Actor == actor {
			return p.Removed
		}
	}
	return false
}

func (c caseJSON) rm(actor string) string {
	for _, p := range c.Participants {
		if p.Actor == actor {
			return p.RMState + " " + p.VFDState + " " + p.PECState
		}
	}
	return "absent"
}

// TestCLIStory runs a whole case between a finder's and a vendor's node
// only through the command line: report, validation, embargo, a third
// participant invited, notes, fix and publication, ownership transfer and
// closing, checking the case after each step and the refusals on the way.
func TestCLIStory(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization", "deployer:Organization")
	finder, vendor, deployer := finderNode.url+"/actors/finder", vendorNode.url+"/actors/vendor", vendorNode.url+"/actors/deployer"

	// RS: the finder submits; --json prints the recorded activity.
	var submitted struct {
		Message  string         `json:"message"`
		Activity map[string]any `json:"activity"`
	}
	// A recipient that does not exist is refused before anything is sent.
	code, out, errOut := finderNode.cli(t, "report", "submit", "--to", vendorNode.url+"/actors/nobody", "--name", "x")
	if code != 1 || strings.Contains(out, "RS sent") || !strings.Contains(errOut, "there is no actor at "+vendorNode.url+"/actors/nobody") {
		t.Errorf("report submit to no actor: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out = finderNode.ok(t, "report", "submit", "--as", "finder", "--to", vendor, "--name", "Heap overflow in parser",
		"--content", "A crafted file overflows the parser's buffer.", "--json")
	if err := json.Unmarshal([]byte(out), &submitted); err != nil || submitted.Message != "RS" || submitted.Activity["type"] != "Offer" {
		t.Fatalf("report submit --json printed %q (%v)", out, err)
	}
	offerID := submitted.Activity["id"].(string)

	// RV by the vendor, naming the report by a part of the offer id; the
	// vendor's inbox may not hold it yet. It prints the case it opened.
	var caseID string
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, out, errOut := vendorNode.cli(t, "report", "validate", offerID[len(offerID)-10:], "--as", "vendor")
		if code == 0 {
			_, rest, ok := strings.Cut(out, " opened: ")
			caseID, _, _ = strings.Cut(rest, "\n")
			if !ok || !strings.Contains(out, "RV sent: ") || !strings.Contains(out, "recorded in case "+cases.ShortID(caseID)+" as entry 1\n") ||
				!strings.Contains(out, "case "+cases.ShortID(caseID)+": EM NONE, pxa, 2 ledger entries") {
				t.Fatalf("report validate printed %q, want the case it opened, recorded", out)
			}
			break
		}
		if time.Now().After(deadline) || !strings.Contains(errOut, "no report vendor received matches") {
			t.Fatalf("report validate: exit %d: %s", code, errOut)
		}
		time.Sleep(100 * time.Millisecond)
	}
	short := cases.ShortID(caseID)
	// The received report: listed, then shown with its text.
	out = vendorNode.ok(t, "report", "list", "--as", "vendor")
	for _, want := range []string{"Heap overflow in parser", "VALID", finder, short, "REPORTER"} {
		if !strings.Contains(out, want) {
			t.Errorf("report list lacks %q:\n%s", want, out)
		}
	}
	out = vendorNode.ok(t, "report", "show", offerID[len(offerID)-10:])
	for _, want := range []string{"title     Heap overflow in parser", "reporter  " + finder, "state     VALID", "case      " + short, "A crafted file overflows the parser's buffer."} {
		if !strings.Contains(out, want) {
			t.Errorf("report show lacks %q:\n%s", want, out)
		}
	}
	// The finder's replica arrives; case wait shows it.
	waitUntilTrue(t, "the finder's replica", func() bool {
		code, _, _ := finderNode.cli(t, "case", "wait", caseID, "--until", "entries>=2", "--timeout", "1s")
		return code == 0
	})
	// How each copy compares with the Case Actor's ledger: the vendor's
	// node hosts it; the finder's replica resyncs on request.
	if out := vendorNode.ok(t, "case", "show", caseID); !strings.Contains(out, "replica     hosted: this node hosts the case") {
		t.Errorf("case show on the host:\n%s", out)
	}
	if out := finderNode.ok(t, "case", "list"); !strings.Contains(out, "REPLICA") || !strings.Contains(out, "in-sync") || !strings.Contains(out, "\n"+short+" ") {
		t.Errorf("case list on the finder's node:\n%s", out)
	}
	if out := finderNode.ok(t, "case", "resync", caseID); !strings.Contains(out, "replica in-sync: ") {
		t.Errorf("case resync printed %q", out)
	}
	// A rebuild of a replica in step: the node says it is replacing its
	// copy, then the copy is in step again.
	if out := finderNode.ok(t, "case", "resync", caseID, "--rebuild"); !strings.Contains(out, "replica rebuilding: replacing this node's copy") {
		t.Errorf("case resync --rebuild printed %q", out)
	}
	waitUntilTrue(t, "the finder's rebuilt replica", func() bool {
		out := finderNode.ok(t, "case", "show", caseID)
		return strings.Contains(out, "replica     in-sync: ")
	})
	finderNode.ok(t, "case", "wait", caseID, "--until", "entries>=2", "--timeout", "10s")
	code, _, errOut = vendorNode.cli(t, "case", "resync", caseID)
	if code != 1 || !strings.Contains(errOut, "hosts case") {
		t.Errorf("case resync on the host: exit %d, %q; want the node's refusal", code, errOut)
	}
	if c := vendorNode.showCase(t, caseID); c.rm(vendor) != "VALID Vfd SIGNATORY" && !strings.HasPrefix(c.rm(vendor), "VALID") {
		t.Fatalf("after RV the vendor is %s", c.rm(vendor))
	}

	// A refusal is one sentence and exit 1: nothing to accept yet.
	code, _, errOut = finderNode.cli(t, "embargo", "accept", caseID, "--as", "finder")
	if code != 1 || !strings.Contains(errOut, "no pending embargo proposal") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("embargo accept with nothing proposed: exit %d, %q", code, errOut)
	}

	// Bad embargo lengths: one sentence each, nothing sent.
	code, out, errOut = vendorNode.cli(t, "embargo", "propose", short, "--as", "vendor", "--days", "-5")
	if code != 2 || !strings.Contains(errOut, "--days must be a positive number of days, not -5") || out != "" {
		t.Errorf("--days -5: exit %d, %q %q", code, errOut, out)
	}
	code, _, errOut = vendorNode.cli(t, "embargo", "propose", short, "--as", "vendor", "--days", "10000")
	if code != 1 || !strings.Contains(errOut, "this node accepts embargoes of at most 365 days") {
		t.Errorf("--days 10000: exit %d, %q", code, errOut)
	}
	// A condition with a typo is refused before anything is sent or
	// waited for.
	start := time.Now()
	code, _, errOut = finderNode.cli(t, "case", "wait", short, "--until", "em=ACTIV")
	if code != 2 || !strings.Contains(errOut, "em=ACTIV is not a state of EM: it is one of NONE, PROPOSED, ACTIVE, REVISE, EXITED") || time.Since(start) > 5*time.Second {
		t.Errorf("--until em=ACTIV: exit %d after %s, %q", code, time.Since(start), errOut)
	}

	// EP by the vendor, EA by the finder. Each action prints the case
	// after its entry is recorded.
	out = vendorNode.ok(t, "case", "engage", short, "--as", "vendor")
	if !strings.Contains(out, "RA sent: ") || !strings.Contains(out, "recorded in case "+short+" as entry 2") {
		t.Errorf("case engage printed %q", out)
	}
	out = vendorNode.ok(t, "embargo", "propose", short, "--as", "vendor", "--days", "45")
	if !strings.HasPrefix(out, "EP sent: ") || strings.Contains(out, "invited") || !strings.Contains(out, "recorded in case "+short+" as entry 3") || !strings.Contains(out, "EM PROPOSED, pxa, 4 ledger entries") {
		t.Errorf("embargo propose printed %q, want the case after the proposal", out)
	}
	finderNode.ok(t, "case", "wait", caseID, "--until", "em=PROPOSED", "--timeout", "20s")
	out = finderNode.ok(t, "embargo", "accept", caseID, "--as", "finder")
	if !strings.Contains(out, "EA sent:") || !strings.Contains(out, "recorded in case "+short+" as entry 4") {
		t.Errorf("embargo accept printed %q, want it recorded in the finder's replica", out)
	}
	// The finder's acceptance binds the finder; the owner's puts the
	// embargo in force.
	vendorNode.ok(t, "case", "wait", caseID, "--as", "finder", "--until", "entries>=5", "--timeout", "20s")
	vendorNode.ok(t, "embargo", "accept", caseID, "--as", "vendor", "--wait", "em=ACTIVE", "--timeout", "20s")
	finderNode.ok(t, "case", "wait", caseID, "--as", "finder", "--until", "em=ACTIVE,pec=SIGNATORY", "--timeout", "20s")

	// The vendor invites the deployer (on its own node), which accepts the
	// Case Actor's invitation.
	// -q prints the invitation's id, not the invited actor's.
	out = vendorNode.ok(t, "participant", "invite", caseID, "-q", "--as", "vendor", "--actor", deployer, "--role", "deployer")
	if id := strings.TrimSpace(out); !strings.HasPrefix(id, vendorNode.url+"/") || id == deployer || strings.Contains(id, "\n") {
		t.Errorf("participant invite -q printed %q, want the id of the Invite", out)
	}
	// The invitation is named by its case, as every participant action
	// names the case it acts in.
	var accepted string
	waitUntilTrue(t, "the deployer's invitation", func() bool {
		code, out, _ := vendorNode.cli(t, "participant", "accept-invite", short, "--as", "deployer")
		accepted = out
		return code == 0
	})
	if !strings.HasPrefix(accepted, "Accept sent: ") {
		t.Errorf("participant accept-invite printed %q, want \"Accept sent: \" (an invitation's answer is of no message type)", accepted)
	}
	vendorNode.ok(t, "case", "wait", caseID, "--as", "deployer", "--until", "rm=RECEIVED,pec=SIGNATORY", "--timeout", "20s")
	// An invitation accepted is no longer one to answer.
	for _, args := range [][]string{{"--as", "deployer"}, {short, "--as", "deployer"}} {
		if code, out, errOut := vendorNode.cli(t, append([]string{"participant", "accept-invite"}, args...)...); code != 1 || !strings.Contains(errOut, "accepted already") {
			t.Errorf("accept-invite %q once the invitation was accepted: exit %d, stdout %q, stderr %q; want a refusal saying it was accepted already", args, code, out, errOut)
		}
	}
	vendorNode.ok(t, "case", "engage", caseID, "--as", "deployer", "--wait", "rm=ACCEPTED", "--timeout", "20s")

	// Notes, fix ready, public.
	vendorNode.ok(t, "case", "note", caseID, "--as", "vendor", "--content", "Patch in review.")
	vendorNode.ok(t, "status", "fix-ready", caseID, "--as", "vendor", "--wait", "vfd=VFd", "--timeout", "20s")
	vendorNode.ok(t, "status", "public", caseID, "--as", "vendor", "--wait", "pxa=Pxa", "--timeout", "20s")
	c := vendorNode.showCase(t, caseID)
	if c.PXAState != "Pxa" || c.EMState != "EXITED" || !strings.HasPrefix(c.rm(vendor), "ACCEPTED VFd") {
		t.Errorf("after CF and CP: pxa %s em %s vendor %s; want Pxa, EXITED, ACCEPTED VFd", c.PXAState, c.EMState, c.rm(vendor))
	}
	if len(c.Notes) != 1 || c.Notes[0].Content != "Patch in review." {
		t.Errorf("notes %+v, want the one note", c.Notes)
	}

	// Ownership goes to the finder, who accepts it.
	vendorNode.ok(t, "case", "transfer", caseID, "--as", "vendor", "--to", finder)
	finderNode.ok(t, "case", "wait", caseID, "--until", "entries>="+strconv.FormatInt(c.LedgerLength+1, 10), "--timeout", "20s")
	finderNode.ok(t, "case", "accept-transfer", caseID, "--as", "finder")
	waitUntilTrue(t, "the finder owning the case", func() bool { return vendorNode.showCase(t, caseID).Owner == finder })

	// Everyone closes (RC).
	vendorNode.ok(t, "case", "close", caseID, "--as", "vendor")
	vendorNode.ok(t, "case", "close", caseID, "--as", "deployer")
	finderNode.ok(t, "case", "close", caseID, "--as", "finder", "--wait", "closed", "--timeout", "20s")
	if c := finderNode.showCase(t, caseID); !c.Closed || c.rm(finder)[:6] != "CLOSED" {
		t.Errorf("after every RC: closed %v, finder %s", c.Closed, c.rm(finder))
	}
	// The calendar command prints the feeds; the case's feed is valid
	// iCalendar (the node's tests check it in detail).
	out = vendorNode.ok(t, "calendar")
	if !strings.Contains(out, "/calendar.ics?token=") || !strings.Contains(out, "/api/cases/{id}/embargo.ics?token=") {
		t.Errorf("vultron calendar printed %q", out)
	}
	// A closed case takes no more notes: the node's sentence, exit 1.
	code, _, errOut = vendorNode.cli(t, "case", "note", caseID, "--as", "vendor", "--content", "late")
	if code != 1 || !strings.Contains(errOut, "the node refused") {
		t.Errorf("a note on a closed case: exit %d, %q", code, errOut)
	}
	// Waiting for what does not come times out with the state reached.
	code, _, errOut = vendorNode.cli(t, "case", "wait", caseID, "--until", "em=ACTIVE", "--timeout", "300ms")
	if code != 1 || !strings.Contains(errOut, "case "+cases.ShortID(caseID)+" did not reach em=ACTIVE") || !strings.Contains(errOut, "EM EXITED") {
		t.Errorf("a wait that times out: exit %d, %q", code, errOut)
	}
}

// TestActionCommandLines checks the refusals of bad command lines (exit 2)
// and of references that match nothing (exit 1), without a case.
func TestActionCommandLines(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"report"}, 2, "report needs an action"},
		{[]string{"report", "frob"}, 2, `unknown report action "frob"`},
		{[]string{"report", "submit", "--as", "vendor", "--name", "x"}, 2, "needs --to ACTOR and --name TITLE"},
		{[]string{"report", "submit", "--as", "vendor", "--to", "vendor", "--name", "x"}, 2, "--to must be an actor id"},
		{[]string{"report", "validate", "--as", "vendor"}, 2, "takes the argument OFFER"},
		{[]string{"report", "validate", "nothing", "--as", "vendor"}, 1, `no report vendor received matches "nothing"`},
		{[]string{"report", "validate", "x"}, 1, `no report vendor received matches "x"`},
		{[]string{"report", "show", "x"}, 1, `no report the node's actors received or submitted matches "x"`},
		{[]string{"report", "show", "x", "--timeout", "300ms"}, 1, `no report the node's actors received or submitted matches "x"`},
		{[]string{"report", "show", "x", "--timeout", "-1s"}, 2, "--timeout must not be negative"},
		{[]string{"report", "submit", "-q", "--json", "--as", "vendor", "--to", "https://x.example/a", "--name", "x"}, 2, "--quiet prints an id and --json a document: give one of them"},
		{[]string{"report", "list", "x"}, 2, "report list takes no arguments"},
		{[]string{"embargo", "propose", "x", "--as", "vendor", "--days", "0"}, 2, "--days must be a positive number of days, not 0"},
		{[]string{"embargo", "propose", "x", "--as", "vendor", "--days", "-5"}, 2, "--days must be a positive number of days, not -5"},
		{[]string{"embargo", "propose", "x", "--as", "vendor", "--days", "3", "--end", "2030-01-01T00:00:00Z"}, 2, "give --end or --days, not both"},
		{[]string{"case", "wait", "x", "--until", "em=ACTIV"}, 2, "em=ACTIV is not a state of EM: it is one of NONE, PROPOSED, ACTIVE, REVISE, EXITED"},
		{[]string{"case", "wait", "x", "--until", "rm=DONE"}, 2, "rm=DONE is not a state of RM: it is one of START, RECEIVED, INVALID, VALID, DEFERRED, ACCEPTED, CLOSED"},
		{[]string{"case", "wait", "x", "--until", "vfd=vfx"}, 2, "vfd=vfx is not a state of VFD"},
		{[]string{"status", "public", "x", "--as", "vendor", "--wait", "pxa=Pxx"}, 2, "pxa=Pxx is not a state of PXA"},
		{[]string{"case", "engage", "x", "--as", "vendor", "--wait", "em=ACTIVE", "--no-wait"}, 2, "give one of them"},
		{[]string{"report", "submit", "--as", "vendor", "--to", "https://x.example/a", "--name", "x", "--wait", "em=ACTIVE"}, 2, "--wait needs an action on a case"},
		{[]string{"embargo", "propose", "x", "--as", "vendor"}, 2, "give the embargo's end"},
		{[]string{"embargo", "propose", "x", "--as", "vendor", "--end", "tomorrow"}, 2, "--end must be an RFC 3339 time"},
		{[]string{"embargo", "propose", "nocase", "--as", "vendor", "--days", "3"}, 1, `no case on the node matches "nocase"`},
		{[]string{"status", "public", "nocase", "--as", "vendor"}, 1, `no case on the node matches "nocase"`},
		{[]string{"participant", "invite", "x", "--as", "vendor"}, 2, "give the actor with --actor"},
		{[]string{"participant", "invite", "x", "--as", "vendor", "--actor", "https://x.example/a", "--role", "wizard"}, 2,
			`--role: "wizard" is not a CVD role (one of finder, reporter, vendor, deployer, coordinator, observer, case_owner, case_manager, cve_numbering_authority)`},
		{[]string{"participant", "suggest", "x", "--as", "vendor", "--actor", "https://x.example/a", "--role", "vendor,wizard"}, 2, `--role: "wizard" is not a CVD role`},
		{[]string{"participant", "accept-invite", "--as", "vendor"}, 1, "no invitation of vendor to a case"},
		{[]string{"case", "wait", "x"}, 2, "give what to wait for with --until"},
		{[]string{"case", "wait", "x", "--until", "color=red"}, 2, `unknown condition "color"`},
		{[]string{"case", "note", "x", "--as", "vendor"}, 2, "give the note's text"},
		{[]string{"embargo", "accept", "x", "--as", "vendor", "--wait", "em"}, 2, `cannot read the condition "em"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := n.cli(t, tt.args...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d (want %d); stderr %q lacks %q; stdout %q", code, tt.code, errOut, tt.want, out)
			}
		})
	}
	// A flag where the action belongs is one sentence, which lists the
	// actions, not the group's whole usage.
	code, out, errOut := n.cli(t, "embargo", "--bogus")
	if code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "embargo needs an action first (propose,") {
		t.Errorf("embargo --bogus: exit %d, stderr %q, stdout %q; want one sentence and exit 2", code, errOut, out)
	}
}

// TestCLIMoreActions runs the actions TestCLIStory does not: invalidating
// and closing a report, deferring, an embargo rejected, revised, revision
// rejected and terminated, an invitation declined, a suggestion rejected,
// the other status reports (CD refused to a vendor), and a participant
// removed. The finder's node
// has one actor, so the finder's commands go without --as.
func TestCLIMoreActions(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization", "coord:Organization")
	finder, vendor, coord := finderNode.url+"/actors/finder", vendorNode.url+"/actors/vendor", vendorNode.url+"/actors/coord"

	// Two actors on the vendor's node: --as is needed there.
	code, _, errOut := vendorNode.cli(t, "case", "engage", "x")
	if code != 2 || !strings.Contains(errOut, "the node has 2 actors (coord, vendor)") {
		t.Errorf("case engage without --as on a node of two actors: exit %d, %q", code, errOut)
	}

	submit := func(name string, extra ...string) string {
		var out struct {
			Activity map[string]any `json:"activity"`
		}
		args := append([]string{"report", "submit", "--to", vendor, "--name", name, "--json"}, extra...)
		if err := json.Unmarshal([]byte(finderNode.ok(t, args...)), &out); err != nil {
			t.Fatalf("report submit --json: %v", err)
		}
		id, _ := out.Activity["id"].(string)
		if id == "" {
			t.Fatalf("report submit printed no activity id: %v", out.Activity)
		}
		return id
	}
	rejected := submit("Not a bug", "--content", "The door is open by design.")
	contentFile := filepath.Join(t.TempDir(), "report.txt")
	if err := os.WriteFile(contentFile, []byte("Requests with a long header crash the server."), 0o600); err != nil {
		t.Fatal(err)
	}
	accepted := submit("Crash on long headers", "--content-file", contentFile)

	// RI, then RC, on the first report; RV on the second.
	waitUntilTrue(t, "the first report at the vendor", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "invalidate", rejected, "--as", "vendor")
		return code == 0
	})
	vendorNode.ok(t, "report", "close", rejected, "--as", "vendor")
	// A closed report will have no case, and says so.
	if out := vendorNode.ok(t, "report", "show", rejected); !strings.Contains(out, "state     CLOSED\ncase      none: the report is closed\n") {
		t.Errorf("report show of the closed report:\n%s\nwant it to say it is closed and has no case", out)
	}
	code, _, errOut = vendorNode.cli(t, "report", "validate", rejected, "--as", "vendor")
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("validating a closed report: exit %d, %q; want exit 1 and one sentence", code, errOut)
	}
	waitUntilTrue(t, "the second report at the vendor", func() bool {
		code, _, _ := vendorNode.cli(t, "report", "validate", accepted, "--as", "vendor")
		return code == 0
	})
	var caseID string
	waitUntilTrue(t, "the case", func() bool {
		code, out, _ := vendorNode.cli(t, "case", "list", "--json")
		var cs []caseJSON
		if code == 0 && json.Unmarshal([]byte(out), &cs) == nil && len(cs) == 1 {
			caseID = cs[0].ID
			return true
		}
		return false
	})

	// RD, then RA again.
	vendorNode.ok(t, "case", "defer", caseID, "--as", "vendor", "--wait", "rm=DEFERRED", "--timeout", "20s")
	vendorNode.ok(t, "case", "engage", caseID, "--as", "vendor", "--wait", "rm=ACCEPTED", "--timeout", "20s")

	// EP rejected by the owner (ER): no embargo.
	end := time.Now().Add(40 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	vendorNode.ok(t, "embargo", "propose", caseID, "--as", "vendor", "--end", end, "--wait", "em=PROPOSED", "--timeout", "20s")
	// Each answer prints the message it is in the case's EM state: ER of
	// a proposal, EJ of a revision; a proposal while an embargo is in
	// force is EV.
	if out := vendorNode.ok(t, "embargo", "reject", caseID, "--as", "vendor", "--wait", "em=NONE", "--timeout", "20s"); !strings.HasPrefix(out, "ER sent: ") {
		t.Errorf("embargo reject of a proposal printed %q, want ER", out)
	}
	// EP accepted by the owner: in force; EV rejected (EJ): still active.
	// The proposal is named by a part of its id, as --json printed it.
	var proposed struct {
		Message  string         `json:"message"`
		Activity map[string]any `json:"activity"`
	}
	out := vendorNode.ok(t, "embargo", "propose", caseID, "--as", "vendor", "--days", "30", "--wait", "em=PROPOSED", "--timeout", "20s", "--json")
	if err := json.Unmarshal([]byte(out), &proposed); err != nil || proposed.Activity["type"] != "Invite" || proposed.Message != "EP" {
		t.Fatalf("embargo propose --json printed %q (%v)", out, err)
	}
	proposal, _ := proposed.Activity["id"].(string)
	code, _, errOut = vendorNode.cli(t, "embargo", "accept", caseID, "no-such-proposal", "--as", "vendor")
	if code != 1 || !strings.Contains(errOut, `no pending embargo proposal matching "no-such-proposal"`) {
		t.Errorf("accepting a proposal that is not pending: exit %d, %q", code, errOut)
	}
	vendorNode.ok(t, "embargo", "accept", caseID, proposal[len(proposal)-12:], "--as", "vendor", "--wait", "em=ACTIVE", "--timeout", "20s")
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"embargo", "revise", caseID, "--days", "60", "--wait", "em=REVISE"}, "EV sent: "},
		{[]string{"embargo", "reject", caseID, "--wait", "em=ACTIVE"}, "EJ sent: "},
		{[]string{"embargo", "propose", caseID, "--days", "50", "--wait", "em=REVISE"}, "EV sent: "},
		{[]string{"embargo", "accept", caseID, "--wait", "em=ACTIVE"}, "EC sent: "},
	} {
		if out := vendorNode.ok(t, append(step.args, "--as", "vendor", "--timeout", "20s")...); !strings.HasPrefix(out, step.want) {
			t.Errorf("%s printed %q, want %q", strings.Join(step.args[:2], " "), out, step.want)
		}
	}
	// ET, with the reason, which the embargo's history keeps.
	vendorNode.ok(t, "embargo", "terminate", caseID, "--as", "vendor", "--reason", "the fix shipped early", "--wait", "em=EXITED", "--timeout", "20s")
	if h := vendorNode.showCase(t, caseID).History; len(h) == 0 || h[len(h)-1].Message != "ET" || h[len(h)-1].Reason != "the fix shipped early" {
		t.Errorf("the embargo's history after ET --reason: %+v", h)
	}

	// The coordinator declines its invitation and stays out.
	// A role that is not a CVD role is a bad command line: nothing is sent.
	code, out, errOut = vendorNode.cli(t, "participant", "invite", caseID, "--as", "vendor", "--actor", coord, "--role", "wizard")
	if code != 2 || out != "" || errOut != `vultron participant: --role: "wizard" is not a CVD role (one of finder, reporter, vendor, deployer, coordinator, observer, case_owner, case_manager, cve_numbering_authority).`+"\n" {
		t.Errorf("participant invite --role wizard: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out = vendorNode.ok(t, "participant", "invite", caseID, "--as", "vendor", "--actor", coord, "--role", "coordinator")
	if !strings.HasPrefix(out, "RS sent: ") || !strings.Contains(out, "\ninvited coord: "+coord+"\n") || strings.Contains(out, "report ") {
		t.Errorf("participant invite printed %q, want the RS sent and the actor it invited", out)
	}
	var declined string
	waitUntilTrue(t, "the coordinator's invitation", func() bool {
		code, out, _ := vendorNode.cli(t, "participant", "reject-invite", "--as", "coord")
		declined = out
		return code == 0
	})
	// Declining an invitation is no RC (the invitee never took part): the
	// line names the activity, as the wire's classification has no
	// message for it.
	checkSent(t, "Reject", declined)

	// The finder suggests the coordinator; the owner rejects the suggestion.
	finderNode.ok(t, "case", "wait", caseID, "--until", "em=EXITED", "--timeout", "20s")
	finderNode.ok(t, "participant", "suggest", caseID, "--actor", coord)
	waitUntilTrue(t, "the suggestion at the owner", func() bool {
		code, _, _ := vendorNode.cli(t, "participant", "reject-suggestion", caseID, "--as", "vendor")
		return code == 0
	})
	if c := vendorNode.showCase(t, caseID); c.rm(coord) != "absent" {
		t.Errorf("the coordinator declined and its suggestion was rejected, yet it is %s", c.rm(coord))
	}

	// CF, CX, CA; rm, vfd and pec refer to the node's only actor.
	vendorNode.ok(t, "status", "fix-ready", caseID, "--as", "vendor", "--wait", "vfd=VFd", "--timeout", "20s")
	// CD is a deployer's: the node's sentence, exit 1.
	code, _, errOut = vendorNode.cli(t, "status", "fix-deployed", caseID, "--as", "vendor")
	if code != 1 || !strings.Contains(errOut, "only a deployer can deploy a fix") {
		t.Errorf("CD by the vendor: exit %d, %q", code, errOut)
	}
	vendorNode.ok(t, "status", "exploit-public", caseID, "--as", "vendor")
	vendorNode.ok(t, "status", "attacks", caseID, "--as", "vendor")
	finderNode.ok(t, "case", "wait", caseID, "--until", "rm=ACCEPTED,pxa=PXA", "--timeout", "20s")
	c := vendorNode.showCase(t, caseID)
	if !strings.HasPrefix(c.rm(vendor), "ACCEPTED VFd") || !strings.Contains(c.PXAState, "X") || !strings.Contains(c.PXAState, "A") {
		t.Errorf("after CF, CX, CA: vendor %s, pxa %s", c.rm(vendor), c.PXAState)
	}

	// The finder declines the ownership offered to it.
	// An action with no message type of its own says what it sent.
	checkSent(t, "Offer", vendorNode.ok(t, "case", "transfer", caseID, "--as", "vendor", "--to", finder))
	finderNode.ok(t, "case", "wait", caseID, "--until", "entries>="+strconv.FormatInt(c.LedgerLength+1, 10), "--timeout", "20s")
	if tr := finderNode.showCase(t, caseID).Transfer; tr == nil || tr.To != finder {
		t.Fatalf("the finder's replica shows the transfer %+v, want one to the finder", tr)
	}
	checkSent(t, "Reject", finderNode.ok(t, "case", "reject-transfer", caseID))
	waitUntilTrue(t, "the declined transfer at the owner", func() bool { return vendorNode.showCase(t, caseID).Transfer == nil })
	if owner := vendorNode.showCase(t, caseID).Owner; owner != vendor {
		t.Errorf("after a declined transfer the owner is %s", owner)
	}

	// The owner removes the finder.
	checkSent(t, "Remove", vendorNode.ok(t, "participant", "remove", caseID, "--as", "vendor", "--actor", finder))
	waitUntilTrue(t, "the finder removed", func() bool { return vendorNode.showCase(t, caseID).removed(finder) })
	// The finder's node is told of its removal, and says its copy stops
	// there.
	waitUntilTrue(t, "the removal at the finder's node", func() bool {
		return finderNode.showCase(t, caseID).removed(finder) &&
			strings.Contains(finderNode.ok(t, "case", "show", caseID), "removed from the case")
	})
}

// TestCLIRefusedByTheCaseActor has the finder, whose node accepts longer
// embargoes than the vendor's, propose one the vendor's Case Actor
// refuses: the command waits for the case, prints the Case Actor's
// sentence and exits 1; with --no-wait it returns once the node accepted.
func TestCLIRefusedByTheCaseActor(t *testing.T) {
	finderNode := startCLINodeWith(t, node.Config{MaxEmbargo: 1000 * 24 * time.Hour}, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization")
	finderNode.ok(t, "report", "submit", "--to", vendorNode.url+"/actors/vendor", "--name", "Overflow", "--content", "details")
	caseID := validateWhenReceived(t, vendorNode)
	short := cases.ShortID(caseID)
	finderNode.ok(t, "case", "wait", caseID, "--until", "entries>=2")
	code, out, errOut := finderNode.cli(t, "embargo", "propose", short, "--days", "400")
	if code != 1 || !strings.Contains(errOut, "the Case Actor of case "+short+" refused ") ||
		!strings.Contains(errOut, "accepts embargoes of at most 365 days") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("a proposal the Case Actor refuses: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out = finderNode.ok(t, "case", "note", short, "--content", "Any news?", "--no-wait")
	if !strings.Contains(out, "GI sent: ") || !strings.Contains(out, "not waiting for case "+short) {
		t.Errorf("--no-wait printed %q", out)
	}
	// case wait -h says what each condition means.
	var help strings.Builder
	if run(t.Context(), &environment{stdout: &help, stderr: &help, getenv: func(string) string { return "" }}, []string{"case", "wait", "-h"}) != 0 ||
		!strings.Contains(help.String(), "closed         every participant has closed the case") || !strings.Contains(help.String(), "em=STATE") {
		t.Errorf("case wait -h:\n%s", help.String())
	}
}

// checkSent checks that an action printed, first, the type of the activity
// it sent and the activity's id.
func checkSent(t *testing.T, typ, out string) {
	t.Helper()
	if !strings.HasPrefix(out, typ+" sent: http") {
		t.Errorf("the action printed %q, want it to start with %q and the activity's id", out, typ+" sent: ")
	}
}

// validateWhenReceived has the vendor validate the report it receives
// (the one its node lists under objects/) once it is there, and returns
// the case the validation opened.
func validateWhenReceived(t *testing.T, vendorNode cliNode) string {
	t.Helper()
	var caseID string
	waitUntilTrue(t, "the report at the vendor", func() bool {
		code, out, _ := vendorNode.cli(t, "report", "validate", "objects/")
		_, rest, _ := strings.Cut(out, " opened: ")
		caseID, _, _ = strings.Cut(rest, "\n")
		return code == 0
	})
	return caseID
}

func waitUntilTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCLIOwnerClosesTheCase checks what the command line says of the
// owner's closing: that it closes the case for everyone (and how to keep
// it open), that the case is then closed, with when, in case show and
// case list, and that the finder may then only close its own part.
func TestCLIOwnerClosesTheCase(t *testing.T) {
	finderNode := startCLINode(t, "finder:Person")
	vendorNode := startCLINode(t, "vendor:Organization")
	finderNode.ok(t, "report", "submit", "--to", vendorNode.url+"/actors/vendor", "--name", "Overflow", "--content", "details")
	caseID := validateWhenReceived(t, vendorNode)
	short := cases.ShortID(caseID)
	// A close the node refuses (the owner has not engaged: VALID) warns
	// of nothing: it closes nothing.
	code, out, errOut := vendorNode.cli(t, "case", "close", short, "--as", "vendor")
	if code != 1 || strings.Contains(errOut, "every participant") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("the owner's close from VALID: exit %d, stderr %q; want one sentence, the refusal, without the warning", code, errOut)
	}
	vendorNode.ok(t, "case", "engage", short, "--as", "vendor", "--wait", "rm=ACCEPTED", "--timeout", "20s")
	finderNode.ok(t, "case", "wait", short, "--until", "entries>=3", "--timeout", "20s")

	code, out, errOut = vendorNode.cli(t, "case", "close", short, "--as", "vendor", "--wait", "rm=CLOSED", "--timeout", "20s")
	if code != 0 || !strings.Contains(errOut, "closes it for every participant") || !strings.Contains(errOut, "vultron case transfer") {
		t.Errorf("the owner's case close: exit %d, stdout %q, stderr %q; want it to say it closes the case for everyone and how to keep it open", code, out, errOut)
	}
	finderNode.ok(t, "case", "wait", short, "--until", "entries>=5", "--timeout", "20s")
	for _, n := range []cliNode{vendorNode, finderNode} {
		if out := n.ok(t, "case", "show", short); !strings.Contains(out, "closed      ") || !strings.Contains(out, "its owner "+vendorNode.url+"/actors/vendor left") {
			t.Errorf("case show after the owner left:\n%s", out)
		}
		if out := n.ok(t, "case", "list"); !strings.Contains(out, "CLOSED") || !strings.Contains(out, "owner left") {
			t.Errorf("case list after the owner left:\n%s", out)
		}
	}
	code, _, errOut = finderNode.cli(t, "case", "note", short, "--as", "finder", "--content", "Still there?")
	if code != 1 || !strings.Contains(errOut, "is closed because its owner") {
		t.Errorf("a note in the closed case: exit %d, %q", code, errOut)
	}
	// The owner is told nothing more of closing: it has left.
	finderNode.ok(t, "case", "close", short, "--as", "finder", "--wait", "closed", "--timeout", "20s")
	if c := finderNode.showCase(t, short); c.Closure == nil || c.rm(finderNode.url + "/actors/finder")[:6] != "CLOSED" {
		t.Errorf("after the finder's RC: closure %+v, finder %s", c.Closure, c.rm(finderNode.url+"/actors/finder"))
	}
	// With every participant closed, nobody is told to close its part.
	if out := finderNode.ok(t, "case", "show", short); strings.Contains(out, "can only close its own part") || !strings.Contains(out, "every participant has closed its part") {
		t.Errorf("case show once every participant closed:\n%s", out)
	}
}

// TestStatusHelpSaysWhoDeploys: the node records a deployed fix (CD) only
// from a participant with the deployer role, so the help of "status" and
// of "status fix-deployed" says so, and how a vendor that deploys takes
// the role, instead of offering it to every vendor.
func TestStatusHelpSaysWhoDeploys(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"status", "-h"}, []string{"fix-deployed is a deployer's", "--role vendor,deployer"}},
		{[]string{"status", "fix-deployed", "-h"}, []string{"with the deployer role"}},
	} {
		args := tt.args
		var out strings.Builder
		env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
		if code := run(t.Context(), env, args); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out.String())
		}
		for _, want := range tt.want {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%v printed\n%s\nwithout %q", args, out.String(), want)
			}
		}
		if strings.Contains(out.String(), "vendor's or deployer's own vfd state") {
			t.Errorf("%v still offers fix-deployed to every vendor:\n%s", args, out.String())
		}
	}
}

// TestActionHelpOpensWithItsMessage: the help of an action opens with the
// protocol message it sends, and an action with no message type of its
// own (a CVE id, a transfer, a suggestion ...) opens with what it does,
// not with the "-" that stands for no message in the action lists.
func TestActionHelpOpensWithItsMessage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"case", "engage", "-h"}, "RA: accept the case for action"},
		{[]string{"case", "cve", "-h"}, "Record the CVE id"},
		{[]string{"case", "transfer", "-h"}, "Offer the case's ownership"},
		{[]string{"participant", "suggest", "-h"}, "Suggest to the"},
		// An invitation's answer is of no formal message type (it is no EA,
		// an Accept of an Invite(EmbargoEvent)).
		{[]string{"participant", "accept-invite", "-h"}, "Accept an invitation to a case"},
		{[]string{"report", "add", "-h"}, "Add a received report"},
	} {
		t.Run(strings.Join(tt.args[:2], " "), func(t *testing.T) {
			var out strings.Builder
			env := &environment{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
			if code := run(t.Context(), env, tt.args); code != 0 {
				t.Fatalf("%v: exit %d\n%s", tt.args, code, out.String())
			}
			lines := strings.Split(out.String(), "\n")
			if len(lines) < 3 || !strings.HasPrefix(lines[2], tt.want) {
				t.Errorf("%v printed\n%s\nwhose description does not open with %q", tt.args, out.String(), tt.want)
			}
		})
	}
}

// TestHelpOfActionsWithoutACase: the actions no case records (a
// submission, a decision on a report outside any case, declining an
// invitation) say in their help that they return once the node accepted
// the activity, not that they wait for a case; report submit's usage line
// names the flags it cannot do without.
func TestHelpOfActionsWithoutACase(t *testing.T) {
	for _, args := range [][]string{
		{"report", "submit", "-h"}, {"report", "invalidate", "-h"}, {"report", "close", "-h"},
		{"report", "duplicate", "-h"}, {"participant", "reject-invite", "-h"},
	} {
		code, out, errOut := runCLI(t, args...)
		help := out + errOut
		if code != 0 || strings.Contains(help, "waits until this node's\ncopy of the case has recorded it") || !strings.Contains(help, "once the node accepted it") {
			t.Errorf("%v: exit %d; the help should say the command returns once the node accepted the activity:\n%s", args, code, help)
		}
	}
	code, out, errOut := runCLI(t, "report", "submit", "-h")
	if code != 0 || !strings.Contains(out+errOut, "usage: vultron report submit --to ACTOR --name TITLE [flags]\n") {
		t.Errorf("report submit -h: exit %d; want the usage line to name --to and --name:\n%s", code, out+errOut)
	}
	// An action a case records keeps saying it waits for it.
	if code, out, errOut := runCLI(t, "report", "validate", "-h"); code != 0 || !strings.Contains(out+errOut, "waits until this node's\ncopy of the case has recorded it") {
		t.Errorf("report validate -h: exit %d:\n%s", code, out+errOut)
	}
}

// TestParticipantRoleHelpSaysTheDefault: an invitation or a suggestion
// without --role makes the actor a vendor, which the flag's help says.
func TestParticipantRoleHelpSaysTheDefault(t *testing.T) {
	for _, sub := range []string{"invite", "suggest"} {
		code, out, errOut := runCLI(t, "participant", sub, "-h")
		if help := out + errOut; code != 0 || !strings.Contains(help, "vendor when none is given") {
			t.Errorf("participant %s -h: exit %d; want --role to say that the actor is invited as vendor when none is given:\n%s", sub, code, help)
		}
	}
}

// TestActionHelpColumnsLineUp checks that the list of actions in each
// group's help (and in case -h) keeps its message and summary columns
// aligned, also for an action whose name and arguments are longer than
// the others', such as participant accept-invite [INVITE|CASE].
func TestActionHelpColumnsLineUp(t *testing.T) {
	groups := map[string]actionGroup{"report": reportGroup(), "case": caseActionGroup(), "embargo": embargoGroup(),
		"participant": participantGroup(), "status": statusGroup(), "product": productGroup(), "advisory": advisoryGroup()}
	for name, g := range groups {
		t.Run(name, func(t *testing.T) {
			_, out, errOut := runCLI(t, name, "-h")
			help := out + errOut
			at := -1
			for _, a := range g.actions {
				var line string
				for _, l := range strings.Split(help, "\n") {
					if strings.HasPrefix(l, "  "+a.name+" ") && strings.HasSuffix(l, a.summary) {
						line = l
					}
				}
				if line == "" {
					t.Fatalf("%s -h has no line for %s:\n%s", name, a.name, help)
				}
				col := len(line) - len(a.summary)
				if at < 0 {
					at = col
				}
				if col != at {
					t.Errorf("%s -h: the summary of %s starts at column %d, the others' at %d:\n%s", name, a.name, col, at, help)
				}
			}
		})
	}
}
