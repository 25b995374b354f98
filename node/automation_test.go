package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
)

func mustPolicy(t *testing.T, src string) *rules.Policy {
	t.Helper()
	p, err := rules.Parse([]byte(src), "test-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// issuePolicy is issue 19's example as written, with the finder of the
// test in the allow-list.
func issuePolicy(finder string) string {
	return fmt.Sprintf(`rules:
  - on: report_received
    if: 'sender in [%q]'
    do: [validate, engage, {propose_embargo: {days: 90}}]
  - on: intel_attacks_observed
    do: [report_attacks]
`, finder)
}

// caseDetailOf reads a case through the API.
func caseDetailOf(t *testing.T, tn *testNode, id string) map[string]any {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(id), "")
	if status != http.StatusOK {
		t.Fatalf("GET case: %d %s", status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func participantRM(c map[string]any, actor string) string {
	parts, _ := c["participants"].([]any)
	for _, p := range parts {
		m, _ := p.(map[string]any)
		if m["actor"] == actor {
			s, _ := m["rmState"].(string)
			return s
		}
	}
	return ""
}

// TestPolicyDecidesAReport: with issue 19's example policy, the vendor's
// node validates and engages a report from the allow-listed finder and
// proposes a 90-day embargo with no person acting: each step goes through
// the outbox, is in the audit log with the rule that made it and in the
// case's timeline; a report from anyone else waits for a person.
func TestPolicyDecidesAReport(t *testing.T) {
	finder := startNode(t, "finder:Person")
	stranger := startNode(t, "stranger:Person")
	vendor := startNodeConfig(t, t.TempDir(), nil, Config{Policy: mustPolicy(t, issuePolicy(finder.actorID("finder"))),
		AutomationInterval: 20 * time.Millisecond}, "vendor:Organization")

	submit := func(from *testNode, name, title string) {
		t.Helper()
		from.submit(t, name, fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"x"}}`, vendor.actorID("vendor"), title))
	}
	submit(finder, "finder", "from the allow-listed finder")
	c := vendor.oneCase(t, "the case the policy opened and engaged with a proposed embargo", func(c api.Case) bool {
		_, rm, _, _ := participantOf(c, vendor.actorID("vendor"))
		return rm == "ACCEPTED" && c.EMState == "PROPOSED"
	})
	detail := caseDetailOf(t, vendor, c.ID)
	props, _ := detail["proposals"].([]any)
	if len(props) != 1 {
		t.Fatalf("proposals = %v", detail["proposals"])
	}
	terms, _ := props[0].(map[string]any)["terms"].(map[string]any)
	end, _ := time.Parse(time.RFC3339, terms["end"].(string))
	if d := time.Until(end); d < 89*24*time.Hour || d > 91*24*time.Hour {
		t.Errorf("the proposed embargo ends in %s, want 90 days", d)
	}
	// The finder's node learns of it like of any action.
	finder.oneCase(t, "the finder's replica with the proposal", func(c api.Case) bool { return c.EMState == "PROPOSED" })

	// Audit: one record per action, naming the rule.
	records, _, err := vendor.db.AuditPage(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range records {
		if strings.HasPrefix(r.Reason, "automation: ") {
			if r.Decision != store.DecisionDone || r.Actor != "vendor" || !strings.Contains(r.Reason, "rule 1 (line 2) at report_received") {
				t.Errorf("audit record %+v", r)
			}
			actions = append(actions, r.Reason[strings.LastIndex(r.Reason, ": ")+2:])
		}
	}
	if strings.Join(actions, ", ") != "validate, engage, propose_embargo 90 days" {
		t.Errorf("automatic actions in the audit log: %v", actions)
	}
	// Timeline: the entries say which rule made them.
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	page := b.get("/ui/cases/" + url.PathEscape(c.ID))
	if strings.Count(page, "automatic: rule 1 of policy test-policy.yaml") < 2 {
		t.Errorf("the case page's timeline does not name the rule:\n%s", grepLines(page, "automatic"))
	}

	// A report from someone not on the list waits for a person.
	submit(stranger, "stranger", "from a stranger")
	waitFor(t, "the stranger's report at the vendor", func() bool {
		status, body := vendor.api(t, http.MethodGet, "/api/reports", "")
		return status == http.StatusOK && strings.Contains(string(body), "from a stranger")
	})
	if _, err := vendor.automation.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	status, body := vendor.api(t, http.MethodGet, "/api/reports", "")
	var reports struct {
		Reports []struct {
			Name string `json:"name"`
			RM   string `json:"rmState"`
			Case string `json:"case"`
		} `json:"reports"`
	}
	if err := json.Unmarshal(body, &reports); status != http.StatusOK || err != nil {
		t.Fatalf("GET /api/reports: %d %v", status, err)
	}
	for _, r := range reports.Reports {
		if r.Name == "from a stranger" && (r.RM != "RECEIVED" || r.Case != "") {
			t.Errorf("the stranger's report: %+v, want it RECEIVED with no case", r)
		}
	}
}

// TestIntelSignalMakesTheVendorReportAttacks: the vendor's policy proposes
// an embargo, the finder's accepts it, the vendor's puts it in force once
// the finder answered; a feed file that lists the case's CVE then makes
// the vendor's node report attacks (CA), and the embargo ends (ET), as
// the protocol says, on both nodes.
func TestIntelSignalMakesTheVendorReportAttacks(t *testing.T) {
	feed := filepath.Join(t.TempDir(), "intel.json")
	if err := os.WriteFile(feed, []byte(`{"format": "vultron-intel/1", "signals": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	finder := startNodeConfig(t, t.TempDir(), nil, Config{AutomationInterval: 20 * time.Millisecond,
		Policy: mustPolicy(t, "rules:\n  - on: embargo_proposed\n    if: proposal.days >= 30 && proposal.days <= 120\n    do: [accept_embargo]\n")}, "finder:Person")
	vendorPolicy := issuePolicy(finder.actorID("finder")) + "  - on: embargo_proposed\n    if: proposal.days >= 30 && proposal.days <= 120\n    do: [accept_embargo]\n"
	vendor := startNodeConfig(t, t.TempDir(), nil, Config{Policy: mustPolicy(t, vendorPolicy), AutomationInterval: 20 * time.Millisecond,
		IntelFeeds: []string{feed}, IntelInterval: 20 * time.Millisecond}, "vendor:Organization")

	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"KEV test","content":"x"}}`, vendor.actorID("vendor")))
	c := vendor.oneCase(t, "the embargo in force", func(c api.Case) bool { return c.EMState == "ACTIVE" })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Add","object":{"type":"VulnerabilityRecord","name":"CVE-2026-31337"},"target":%q,"context":%q}`, c.ID, c.ID))
	waitFor(t, "the CVE recorded", func() bool {
		ids, _ := caseDetailOf(t, vendor, c.ID)["vulnerabilityIds"].([]any)
		return len(ids) == 1
	})
	if err := os.WriteFile(feed, []byte(`{"vulnerabilities": [{"cveID": "CVE-2026-31337", "vendorProject": "Example", "product": "Widget", "vulnerabilityName": "Widget RCE", "dateAdded": "2026-12-01"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	vendor.oneCase(t, "attacks reported and the embargo ended at the vendor", func(c api.Case) bool { return c.PXAState == "pxA" && c.EMState == "EXITED" })
	finder.oneCase(t, "attacks reported and the embargo ended at the finder", func(c api.Case) bool { return c.PXAState == "pxA" && c.EMState == "EXITED" })
	hist, _ := caseDetailOf(t, vendor, c.ID)["embargoHistory"].([]any)
	last, _ := hist[len(hist)-1].(map[string]any)
	if last["message"] != "ET" || !strings.Contains(fmt.Sprint(last["reason"]), "attacks have been observed") {
		t.Errorf("the embargo's last step: %v", last)
	}
	// The explanation says which rule did it and that it is decided.
	status, body := vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(c.ID)+"/policy", "")
	if status != http.StatusOK || !strings.Contains(string(body), `"point":"intel_attacks_observed"`) {
		t.Errorf("GET policy explanation: %d %s", status, body)
	}
}

// TestPolicyReload: the node reads its policy file again when it changes;
// a changed file that does not parse is refused whole (the policy in
// force stays, the refusal is in the audit log with its line); a reload
// signal reads it at once; an off list that names no actor of the node is
// said to in the reload's audit record.
func TestPolicyReload(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("name: first\nrules:\n  - on: fix_ready\n    do: [report_public]\n")
	p, err := ReadPolicy(file)
	if err != nil {
		t.Fatal(err)
	}
	reload := make(chan struct{})
	n := startNodeConfig(t, t.TempDir(), nil, Config{Policy: p, PolicyFile: file, PolicyCheck: 10 * time.Millisecond, PolicyReload: reload}, "vendor:Organization")
	name := func() string {
		status, body := n.api(t, http.MethodGet, "/api/policy", "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/policy: %d %s", status, body)
		}
		var v struct{ Name string }
		json.Unmarshal(body, &v)
		return v.Name
	}
	if name() != "first" {
		t.Fatalf("policy in force: %q", name())
	}
	write("name: second\nrules:\n  - on: fix_ready\n    do: [report_public]\n")
	waitFor(t, "the changed policy in force", func() bool { return name() == "second" })
	write("name: broken\nrules:\n  - on: fix_ready\n    do: [publish]\n")
	waitFor(t, "the refusal in the audit log", func() bool {
		records, _, err := n.db.AuditPage(t.Context(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			if r.Decision == store.DecisionRefused && strings.Contains(r.Reason, `line 4: rule 1: "publish" is not an action`) {
				return true
			}
		}
		return false
	})
	if name() != "second" {
		t.Errorf("after a broken file, the policy in force is %q, want second", name())
	}
	write("name: third\nrules:\n  - on: fix_ready\n    do: [report_public]\n")
	reload <- struct{}{}
	waitFor(t, "the reloaded policy", func() bool { return name() == "third" })
	// An off list naming no actor of the node (a misspelt name) leaves
	// automation on for every actor: the reload says so.
	write("name: fourth\noff: [vendr]\nrules:\n  - on: fix_ready\n    do: [report_public]\n")
	waitFor(t, "the reload's warning of an unknown actor in the audit log", func() bool {
		records, _, err := n.db.AuditPage(t.Context(), 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			if strings.HasSuffix(r.Reason, `policy fourth, 1 rule; off names vendr, which is no actor of this node (its actors: vendor)`) {
				return true
			}
		}
		return false
	})
}

// TestPolicyReportsPublicAtPublication: a vendor whose policy answers
// advisory_published with report_public publishes its advisory, and the
// case becomes public on the reporter's copy too, with no person acting
// after the publication.
func TestPolicyReportsPublicAtPublication(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNodeConfig(t, t.TempDir(), nil, Config{AutomationInterval: 20 * time.Millisecond,
		Policy: mustPolicy(t, "rules:\n  - on: advisory_published\n    if: case.owner == actor\n    do: [report_public]\n")}, "vendor:Organization")
	offer := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Overflow in the widget","content":"x"}}`, vendor.actorID("vendor")))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offer, finder.actorID("finder")))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength >= 2 })
	if c.EMState == "ACTIVE" {
		t.Fatalf("the case opened under an embargo (%s); this node has no default", c.EMState)
	}
	finder.oneCase(t, "the finder's replica", func(rc api.Case) bool { return rc.ID == c.ID })
	if strings.HasPrefix(c.PXAState, "P") {
		t.Fatalf("the case is public (%s) before the publication", c.PXAState)
	}
	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(c.ID)+"/advisory/publish", `{}`); status != http.StatusCreated {
		t.Fatalf("publish: %d %s", status, body)
	}
	finder.oneCase(t, "the finder's replica public after the publication", func(rc api.Case) bool {
		return rc.ID == c.ID && strings.HasPrefix(rc.PXAState, "P")
	})
	records, _, err := vendor.db.AuditPage(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range records {
		found = found || strings.Contains(r.Reason, "at advisory_published: report_public")
	}
	if !found {
		t.Error("no audit record of the policy's report_public at advisory_published")
	}
}

// TestPolicyChangedBeforeServe: a change to the policy file after the node
// was made and before it serves is reloaded like any later change; the
// watcher compares the file with how it was when the node was made, not
// when the watcher first ran.
func TestPolicyChangedBeforeServe(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte("name: first\nrules:\n  - on: fix_ready\n    do: [report_public]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := ReadPolicy(file)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := New(context.Background(), Config{DataDir: t.TempDir(), Listener: ln, PublicURL: "http://" + ln.Addr().String(),
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, NoSync: true, Argon2: testArgon2,
		Policy: p, PolicyFile: file, PolicyCheck: 10 * time.Millisecond,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Notice: io.Discard})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("name: second\nrules:\n  - on: fix_ready\n    do: [report_public]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	waitFor(t, "the policy changed before the node served in force", func() bool { return n.automation.Policy().Name == "second" })
}

// TestNotificationErrorsHideTheURLPassword: a notification that fails says
// why naming its URL without the password, since the sentence goes to the
// audit log and the node's log.
func TestNotificationErrorsHideTheURLPassword(t *testing.T) {
	const password = "hunter2-receiver-password"
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer refusing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // nothing listens there any more
	for name, base := range map[string]string{"error status": refusing.URL, "unreachable": closed.URL} {
		t.Run(name, func(t *testing.T) {
			hook := strings.Replace(base, "http://", "http://bot:"+password+"@", 1) + "/h"
			err := postNotification(context.Background(), &http.Client{Timeout: 5 * time.Second}, hook, nil, time.Now(), automation.Notification{})
			if err == nil {
				t.Fatal("the notification did not fail")
			}
			if msg := problem.Message(err); strings.Contains(msg, password) || strings.Contains(err.Error(), password) {
				t.Errorf("the error names the URL's password: %s / %v", msg, err)
			}
		})
	}
}

// TestNotificationRedirectIsNoDelivery: a notify URL that answers with a
// redirect has not taken the notification; the node does not follow it
// (which would turn the POST into a GET of another page and count that
// page's 200 as the notification taken).
func TestNotificationRedirectIsNoDelivery(t *testing.T) {
	var followed atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/h" {
			http.Redirect(w, r, "/login", http.StatusFound)
			return
		}
		followed.Add(1)
	}))
	defer srv.Close()
	err := postNotification(context.Background(), newNotifyClient(), srv.URL+"/h", nil, time.Now(), automation.Notification{})
	if err == nil || !strings.Contains(problem.Message(err), "302") {
		t.Errorf("notify a URL that redirects: %v; want a failure naming the 302", err)
	}
	if followed.Load() != 0 {
		t.Error("the node followed the redirect")
	}
}
