package node

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node/dashboard"
)

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see each 303.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// get fetches a page that must answer 200.
func (b *browser) get(path string) string {
	b.t.Helper()
	resp, body := b.do(http.MethodGet, path, nil)
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, body)
	}
	return body
}

// post submits a form that must answer with a redirect, and returns the
// page it redirects to.
func (b *browser) post(path string, form url.Values) string {
	b.t.Helper()
	resp, body := b.do(http.MethodPost, path, form)
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("POST %s: %d, want 303\n%s", path, resp.StatusCode, body)
	}
	return b.get(resp.Header.Get("Location"))
}

// login logs a new admin of node n in, with a password (the test nodes
// take a password alone).
func (b *browser) login(n *testNode) {
	b.t.Helper()
	name := "admin-" + strings.ToLower(accounts.RandomID()[:8])
	b.loginAs(name, n.person(b.t, name, accounts.Admin))
}

// loginAs logs in with a name and password, through the login form and
// its CSRF value.
func (b *browser) loginAs(name, password string) {
	b.t.Helper()
	resp, body := b.passwordStep(name, password, "/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		b.t.Fatalf("login: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// passwordStep sends the login form and returns the answer.
func (b *browser) passwordStep(name, password, next string) (*http.Response, string) {
	b.t.Helper()
	page := b.get("/login")
	return b.do(http.MethodPost, "/login", url.Values{"csrf": {csrfOf(b.t, page)}, "name": {name}, "password": {password}, "next": {next}})
}

// reportText is a report's text with markup a browser would run if the
// page did not escape it, and a line break the page keeps.
const (
	reportText        = "Steps: open a crafted widget <img src=x onerror=alert(1)>\nThe parser overflows a heap buffer."
	reportTextEscaped = "Steps: open a crafted widget &lt;img src=x onerror=alert(1)&gt;\nThe parser overflows a heap buffer."
)

var (
	receivedRE = regexp.MustCompile(`received \d{4}-\d\d-\d\d \d\d:\d\d UTC`)
	csrfRE     = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	// vendorAcceptedRE matches the participant row of the local vendor
	// when its RM state is ACCEPTED.
	vendorAcceptedRE = regexp.MustCompile(`\(here: vendor\)</span></td>\s*<td>.*</td>\s*<td><span class="badge rm-accepted"[^>]*>ACCEPTED<`)
)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	return m[1]
}

// dashboardCase is where most dashboard tests start: a finder's node and
// a vendor's, the case the finder's report opened when the vendor's admin
// validated it on the dashboard, and that admin's logged-in browser.
type dashboardCase struct {
	finder, vendor *testNode
	id             string   // the case's id
	path           string   // its page's path
	b              *browser // the vendor's admin's browser
	// page is the case page as b first got it; csrf its CSRF token, the
	// session's, which every form of b repeats.
	page, csrf string
}

// openDashboardCase starts a finder's node and a vendor's, each in a
// directory of its own (t.TempDir), has the finder report to the vendor
// and the vendor validate the report from the dashboard, checking what
// the dashboard shows of the report on the way, and gets the case page.
func openDashboardCase(t *testing.T) dashboardCase {
	t.Helper()
	return openDashboardCaseWith(t, Config{})
}

// openDashboardCaseWith is openDashboardCase with the non-zero fields of
// finderCfg applied to the finder's node.
func openDashboardCaseWith(t *testing.T, finderCfg Config) dashboardCase {
	t.Helper()
	finder := startNodeConfig(t, t.TempDir(), nil, finderCfg, "finder:Person")
	vendor := startNodeConfig(t, t.TempDir(), nil, Config{}, "vendor:Organization")
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Dashboard <b>report</b>","content":%q}}`, vendor.actorID("vendor"), reportText))
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	var page string
	waitFor(t, "the report on the dashboard", func() bool {
		page = b.get("/")
		return strings.Contains(page, "Validate (RV)")
	})
	if !strings.Contains(page, "Dashboard &lt;b&gt;report&lt;/b&gt;") {
		t.Errorf("the report's name is not escaped in the list:\n%s", page)
	}
	// The analyst decides on the text: the list shows it, escaped, with
	// its reporter and when it arrived.
	if strings.Contains(page, "<img src=x") || !strings.Contains(page, reportTextEscaped) {
		t.Errorf("the list does not show the report's text escaped:\n%s", page)
	}
	if !strings.Contains(page, `title="`+finder.actorID("finder")+`"`) || !receivedRE.MatchString(page) {
		t.Errorf("the list does not say who sent the report and when it arrived:\n%s", page)
	}
	// A received report may be validated or found invalid; closing it
	// needs an evaluation first (RM R→C is no transition).
	if strings.Contains(page, `value="close"`) || !strings.Contains(page, "Invalid (RI)") {
		t.Errorf("the list offers other decisions than RV and RI for a RECEIVED report:\n%s", page)
	}
	m := regexp.MustCompile(`name="report" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no report form:\n%s", page)
	}
	// A decision the form does not offer, or none, decides nothing.
	for _, decision := range []string{"bogus", ""} {
		form := url.Values{"csrf": {csrfOf(t, page)}, "report": {m[1]}, "as": {"vendor"}}
		if decision != "" {
			form.Set("decision", decision)
		}
		page = b.post("/ui/reports/validate", form)
		if !strings.Contains(page, "Refused: ") || !strings.Contains(page, "validate, invalidate or close") || strings.Contains(page, "Report validated") {
			t.Errorf("a report form with decision %q: the page does not refuse it:\n%s", decision, grepLines(page, "flash"))
		}
	}
	if n := len(vendor.cases(t)); n != 0 {
		t.Fatalf("a report form without a valid decision opened %d cases", n)
	}
	page = b.post("/ui/reports/validate", url.Values{"csrf": {csrfOf(t, page)}, "report": {m[1]}, "as": {"vendor"}, "decision": {"validate"}})
	if !strings.Contains(page, "Report validated (RV)") {
		t.Errorf("after validating, the page does not say so:\n%s", page)
	}
	c := vendor.oneCase(t, "the case the dashboard opened", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	dc := dashboardCase{finder: finder, vendor: vendor, id: c.ID, path: "/ui/cases/" + url.PathEscape(c.ID), b: b}
	dc.page = b.get(dc.path)
	dc.csrf = csrfOf(t, dc.page)
	return dc
}

// act posts the case page's form as the vendor's admin: action, taken as
// the local actor as, with name and value pairs of further fields. It
// returns the page the form leads to.
func (c dashboardCase) act(as, action string, fields ...string) string {
	c.b.t.Helper()
	return c.b.act(c.path, c.csrf, as, action, fields...)
}

// act posts the form of a case page at path with the session's CSRF
// token csrf: action, taken as the local actor as, with name and value
// pairs of further fields. It returns the page the form leads to.
func (b *browser) act(path, csrf, as, action string, fields ...string) string {
	b.t.Helper()
	if len(fields)%2 != 0 {
		b.t.Fatalf("act %s: fields %q are not name and value pairs", action, fields)
	}
	form := url.Values{"csrf": {csrf}, "action": {action}, "as": {as}}
	for i := 0; i < len(fields); i += 2 {
		form.Add(fields[i], fields[i+1])
	}
	return b.post(path, form)
}

// TestDashboardLoginAndHeaders checks the login by name and password,
// the session cookie, the security headers and the refusals of a browser
// without a session, with a wrong password, or without a form's CSRF
// token.
func TestDashboardLoginAndHeaders(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	password := n.person(t, "dora", accounts.Analyst)
	b := newBrowser(t, n.url)

	resp, _ := b.do(http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("GET / without a session: %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := b.passwordStep("dora", "not the password", "/")
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong name or password.") {
		t.Fatalf("a wrong password: %d\n%s", resp.StatusCode, body)
	}
	// The login form without its CSRF value (another site's form) is
	// refused before the password is looked at.
	resp, _ = b.do(http.MethodPost, "/login", url.Values{"name": {"dora"}, "password": {password}})
	if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 && resp.Cookies()[0].Name == dashboard.SessionCookie {
		t.Errorf("a login without the form's CSRF value: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, _ = b.do(http.MethodGet, "/ui/events", nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("the event stream without a session: %d, want 401", resp.StatusCode)
	}
	// A post-login redirect never leaves the node.
	resp, _ = b.passwordStep("dora", password, "//evil.example/")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != "/" {
		t.Errorf("login with next=//evil.example/: %d to %q, want 303 to /", resp.StatusCode, loc)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure {
		t.Errorf("session cookie %+v, want HttpOnly, SameSite=Lax, and not Secure on http", cookie)
	}
	resp, body = b.do(http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<h1>Cases</h1>") || !strings.Contains(body, "Person dora") {
		t.Fatalf("GET / after login: %d\n%s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options %q, want DENY", resp.Header.Get("X-Frame-Options"))
	}
	// A form without the session's CSRF token is refused, and changes nothing.
	resp, body = b.do(http.MethodPost, "/ui/cases/x", url.Values{"action": {"note"}, "as": {"vendor"}, "content": {"x"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "security token") {
		t.Errorf("a form without CSRF token: %d\n%s", resp.StatusCode, body)
	}
	// Logging out ends the session.
	csrf := csrfOf(t, body2(b, "/"))
	resp, _ = b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ = b.do(http.MethodGet, "/", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("GET / after logout: %d, want a redirect to the login", resp.StatusCode)
	}
	for _, path := range []string{"/ui/static/app.js", "/ui/static/app.css", "/ui/static/passkey.js"} {
		if resp, _ := b.do(http.MethodGet, path, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

func body2(b *browser, path string) string {
	b.t.Helper()
	return b.get(path)
}

// TestDashboardForms drives a case through the dashboard's forms: validate
// a report, propose and accept an embargo, add a note, report fix ready
// and publication, and a refusal shown as the node's sentence. Hostile
// text is shown escaped.
func TestDashboardForms(t *testing.T) {
	c := openDashboardCase(t)
	page := c.page
	for _, want := range []string{"Participants", "Embargo history", "Desiderata", "Timeline", "validated the report (RV)", "<svg class=\"cs\"", "D≺P"} {
		if !strings.Contains(page, want) {
			t.Errorf("the case page lacks %q", want)
		}
	}
	// Each state has its line of plain words beside it, and so has each
	// desideratum.
	for _, want := range []string{
		`<span class="explain">no embargo: nothing binds the participants to keep the vulnerability private.</span>`,
		`<span class="explain">the public does not know, no exploit is public, no attacks have been seen.</span>`,
		`<td class="explain">the fix was deployed before the public learnt of it</td>`,
		`<dd>found the report valid and has not decided whether to work on it</dd>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the case page does not explain a state: no %s", want)
		}
	}
	// The case's report, with its text, reporter and arrival.
	if rep := section(page, `id="reports"`); !strings.Contains(rep, reportTextEscaped) || !strings.Contains(rep, "Dashboard &lt;b&gt;report&lt;/b&gt;") ||
		!strings.Contains(rep, `title="`+c.finder.actorID("finder")+`"`) || !receivedRE.MatchString(rep) {
		t.Errorf("the case page does not show the report's text, reporter and arrival:\n%s", rep)
	}
	// Only what the protocol allows now: the vendor's report is VALID, so
	// it may engage, defer, propose and invite (it owns the case), but a
	// fix is ready only once it engaged, and nothing is closed unengaged.
	wantOffers(t, page, []string{"engage", "defer", "propose-embargo", "invite", "note", "public"}, []string{"fix-ready", "fix-deployed", "close"})
	end := time.Now().Add(40 * 24 * time.Hour).UTC().Format("2006-01-02")
	page = c.act("vendor", "propose-embargo", "end", end)
	if !strings.Contains(page, "Embargo proposed, ending "+end) {
		t.Fatalf("after proposing, the page does not say so:\n%s", page)
	}
	// The Case Actor records the proposal a moment later.
	waitFor(t, "the proposal on the case page", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, "Accept (EA)")
	})
	proposal := regexp.MustCompile(`name="proposal" value="([^"]+)"`).FindStringSubmatch(page)[1]
	// Its proposal open, the vendor is not offered a second one.
	wantOffers(t, page, []string{"engage", "accept-embargo", "reject-embargo"}, []string{"propose-embargo"})
	c.act("vendor", "accept-embargo", "proposal", proposal)
	waitFor(t, "the embargo in force on the case page", func() bool {
		return strings.Contains(c.b.get(c.path), `id="em-state">ACTIVE<`)
	})
	// The same proposal again: no longer open, refused with a sentence.
	page = c.act("vendor", "accept-embargo", "proposal", proposal)
	if !strings.Contains(page, "Refused: that embargo proposal is no longer open") {
		t.Errorf("accepting a closed proposal was not refused on the page")
	}
	c.act("vendor", "note", "content", `<script>alert("x")</script>`)
	waitFor(t, "the note on the case page", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, "Notes (1)")
	})
	if strings.Contains(page, `<script>alert("x")</script>`) || !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Errorf("a hostile note is not escaped on the page")
	}
	c.act("vendor", "engage")
	// The finder's row says ACCEPTED already: look at the vendor's own row.
	waitFor(t, "the vendor engaged", func() bool { page = c.b.get(c.path); return vendorAcceptedRE.MatchString(page) })
	wantOffers(t, page, []string{"fix-ready", "close", "defer"}, []string{"engage"})
	// Participants by name, with their ids on hover: the local vendor at
	// once, the finder on the other node once its document was fetched.
	waitFor(t, "the finder by name", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, `<span class="actor" title="`+c.finder.actorID("finder")+`">finder</span>`)
	})
	if !strings.Contains(section(page, `class="participants"`), `<span class="actor" title="`+c.vendor.actorID("vendor")+`">vendor</span>`) {
		t.Errorf("the local vendor is not shown by name among the participants:\n%s", section(page, `class="participants"`))
	}
	page = c.act("vendor", "fix-ready")
	if !strings.Contains(page, "fix ready (CF)") {
		t.Errorf("fix ready was not reported:\n%s", page)
	}
	waitFor(t, "the fix on the case page", func() bool { page = c.b.get(c.path); return strings.Contains(page, ">VFd<") })
	// A vendor readies a fix; only a deployer deploys one.
	wantOffers(t, page, []string{"public"}, []string{"fix-ready", "fix-deployed"})
	c.act("vendor", "public")
	waitFor(t, "publication on the case page", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, `id="pxa-state">Pxa<`) && strings.Contains(page, `id="em-state">EXITED<`)
	})
	// The case's history, kept across page views and extended with the
	// entries added since, shows V, F and P in order.
	if !strings.Contains(page, "History so far: <code>VFP</code>") {
		t.Errorf("the desiderata section does not show the history VFP")
	}
	// The embargo ended early: the page says when and why, and counts
	// down to nothing.
	if strings.Contains(page, " left</span>") || !strings.Contains(page, "ended early") {
		t.Errorf("the case page of an embargo that ended early:\n%s", section(page, `id="em-state"`))
	}
	wantOffers(t, page, []string{"close", "note"}, []string{"public", "propose-embargo", "fix-ready"})
	// An unknown acting actor and an invitation of a non-URL are refused.
	page = c.act("mallory", "note", "content", "x")
	if !strings.Contains(page, "Refused: choose which of this node") {
		t.Errorf("a form acting as an unknown actor was not refused")
	}
	page = c.act("vendor", "invite", "actor", "javascript:alert(1)")
	if !strings.Contains(page, "Refused: the actor to invite must be an actor id") {
		t.Errorf("inviting a non-URL was not refused")
	}
	detail := c.vendor.caseDetail(t, c.id)
	if detail["pxaState"] != "Pxa" || detail["emState"] != "EXITED" {
		t.Errorf("the API shows %v %v after the forms, want Pxa EXITED", detail["pxaState"], detail["emState"])
	}
	// Both close: the case takes nothing more, and its page offers no form.
	c.act("vendor", "close")
	c.finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, c.id, c.id))
	waitFor(t, "the closed case", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, `<span class="badge closed">closed</span>`)
	})
	if strings.Contains(page, `name="action"`) || !strings.Contains(page, "This case is closed") {
		t.Errorf("the page of a closed case offers forms or does not say it is closed:\n%s", page)
	}
}

// wantOffers checks which of the case page's actions are offered.
func wantOffers(t *testing.T, page string, offered, withheld []string) {
	t.Helper()
	for _, a := range offered {
		if !strings.Contains(page, `value="`+a+`"`) {
			t.Errorf("the case page does not offer %s", a)
		}
	}
	for _, a := range withheld {
		if strings.Contains(page, `value="`+a+`"`) {
			t.Errorf("the case page offers %s, which the protocol does not allow now", a)
		}
	}
}

// section returns the part of page from the element marked with attr to
// the end of the next table, list or section, for messages and checks.
func section(page, attr string) string {
	i := strings.Index(page, attr)
	if i < 0 {
		return ""
	}
	rest := page[i:]
	for _, end := range []string{"</section>", "</table>", "</p>"} {
		if j := strings.Index(rest, end); j >= 0 {
			return rest[:j+len(end)]
		}
	}
	return rest
}

// TestDashboardEvents checks that the event stream of a case page sends an
// event when the case changes.
func TestDashboardEvents(t *testing.T) {
	c := openDashboardCase(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.vendor.url+"/ui/events?case="+url.QueryEscape(c.id), nil)
	if err != nil {
		t.Fatal(err)
	}
	stream := &http.Client{Jar: c.b.c.Jar}
	resp, err := stream.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	// The finder adds a note; the vendor's node records it; the stream says so.
	c.finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"live"},"target":%q,"context":%q}`, c.id, c.id))
	for {
		select {
		case l := <-lines:
			if l == "event: changed" {
				return
			}
		case <-ctx.Done():
			t.Fatal("no change event arrived on the case's stream")
		}
	}
}

// TestDashboardNames checks that a reporter is shown by the name its
// actor document gives, with the id on hover: a remote actor without a
// name as preferredUsername@host, once its node answered. (The case page's
// names are checked in TestDashboardForms.)
func TestDashboardNames(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	mallory := newPeer(t, sharedKeys.get(t, 0))
	if status, msg := mallory.post(t, vendor.actorID("vendor")+"/inbox", mallory.offer(1, vendor.actorID("vendor")), nil); status != http.StatusAccepted {
		t.Fatalf("the peer's offer: %d %s", status, msg)
	}
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	host := strings.TrimPrefix(mallory.srv.URL, "http://")
	want := `<span class="actor" title="` + mallory.id + `">mallory@` + host + `</span>`
	waitFor(t, "the reporter by name", func() bool { return strings.Contains(b.get("/"), want) })
}

// TestDashboardProposalAnswers checks whom the answers to an embargo
// proposal are offered to: the finder that proposed may withdraw it but is
// not asked to accept its own terms, and does not invite (only the owner
// does); the vendor, owner of the case, may accept or reject it.
func TestDashboardProposalAnswers(t *testing.T) {
	c := openDashboardCase(t)
	now := time.Now().UTC()
	c.finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
		now.Format(time.RFC3339), now.Add(30*24*time.Hour).Format(time.RFC3339), c.id))
	fb := newBrowser(t, c.finder.url)
	fb.login(c.finder)
	var page string
	waitFor(t, "the proposal on the finder's page", func() bool {
		page = fb.get(c.path)
		return strings.Contains(page, "Proposed embargo ending")
	})
	if !strings.Contains(page, `class="withdraw-embargo"`) || strings.Contains(page, `value="accept-embargo"`) || strings.Contains(page, `value="invite"`) {
		t.Errorf("the proposer's page offers other answers than withdrawing, or an invitation:\n%s", section(page, `id="act"`))
	}
	waitFor(t, "the proposal on the vendor's page", func() bool {
		page = c.b.get(c.path)
		return strings.Contains(page, "Proposed embargo ending")
	})
	if !strings.Contains(page, `class="accept-embargo"`) || !strings.Contains(page, `class="reject-embargo"`) || strings.Contains(page, `class="withdraw-embargo"`) {
		t.Errorf("the owner's page does not offer to accept and reject the finder's proposal:\n%s", page)
	}
}

// TestDashboardOwnerClose checks what the dashboard says of the owner's
// closing: its Close says that it closes the case for everyone and how to
// keep it open; once the owner left, the case is closed, with when, on
// both nodes' pages, and the finder's page offers it nothing but its own
// Close.
func TestDashboardOwnerClose(t *testing.T) {
	c := openDashboardCase(t)
	c.act("vendor", "engage")
	var page string
	waitFor(t, "the vendor engaged", func() bool { page = c.b.get(c.path); return vendorAcceptedRE.MatchString(page) })
	wantOffers(t, page, []string{"close"}, nil)
	if !strings.Contains(page, "closes the case for every participant") || !strings.Contains(page, "transfer the ownership first") {
		t.Errorf("the owner's Close does not say it closes the case for everyone:\n%s", grepLines(page, "close"))
	}
	page = c.act("vendor", "close")
	if !strings.Contains(page, "for every participant") {
		t.Errorf("after the owner's Close, the page does not say the case closed for everyone:\n%s", grepLines(page, "flash"))
	}
	fb := newBrowser(t, c.finder.url)
	fb.login(c.finder)
	for _, br := range []*browser{c.b, fb} {
		waitFor(t, "the closing on the case page", func() bool {
			page = br.get(c.path)
			return strings.Contains(page, "its Case Actor closed it for every participant")
		})
		if !strings.Contains(page, `<span class="badge closed">closed</span>`) {
			t.Errorf("the closed case's page shows no closed badge")
		}
	}
	// The finder may only close its own part; the vendor nothing.
	wantOffers(t, page, []string{"close"}, []string{"note", "engage", "defer", "public", "propose-embargo", "invite"})
	if strings.Contains(page, "transfer the ownership first") {
		t.Errorf("the finder's Close warns it closes the case for everyone")
	}
	if vp := c.b.get(c.path); strings.Contains(vp, `name="action"`) {
		t.Errorf("the page of the owner that left offers forms:\n%s", grepLines(vp, `name="action"`))
	}
	if strings.Contains(page, "takes nothing more") {
		t.Errorf("the closed case's page says it takes nothing more, though the finder may still close its part")
	}
	fb.act(c.path, csrfOf(t, page), "finder", "close")
	waitFor(t, "the finder's Close", func() bool {
		page = fb.get(c.path)
		return !strings.Contains(page, `name="action"`) && strings.Contains(page, "Every participant has closed its part")
	})
	if strings.Contains(page, "A participant still in it can only close its own part") {
		t.Errorf("once every participant closed, the page still tells one to close its part")
	}
}

// TestEventStreamEndsWithItsSession: a page's event stream tells the page
// when the session it was opened with has ended (revoked here; a logout in
// another tab or through another process is the same), and ends, rather
// than telling it of the node's changes.
func TestEventStreamEndsWithItsSession(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	b := newBrowser(t, vendor.url)
	b.loginAs("vic", vendor.person(t, "vic", accounts.Analyst, "vendor"))
	state := regexp.MustCompile(`data-state="([^"]*)"`).FindStringSubmatch(b.get("/"))
	if state == nil {
		t.Fatal("the case list has no live state")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, vendor.url+"/ui/events?state="+url.QueryEscape(html.UnescapeString(state[1])), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Jar: b.c.Jar}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %d", resp.StatusCode)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for l := range lines {
		if strings.HasPrefix(l, ": watching") {
			break
		}
	}

	vendor.revokeSessions(t, "vic")
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"After the session","content":"text"}}`, vendor.actorID("vendor")))

	var got []string
	for l := range lines {
		got = append(got, l)
		if l == "event: changed" {
			t.Fatalf("the stream of an ended session tells of a change: %q", got)
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the stream of an ended session is still open: %q", got)
	}
	if !slices.Contains(got, "event: ended") {
		t.Errorf("the stream ended without telling the page its session ended: %q", got)
	}
}

// TestDeadlinesDueAtTheirStart: the clocks due at the time they start (an
// invitation's answer-by time, the embargo's end) are listed by that time
// alone, on the case list and the case page; they read as no "0 hours"
// limit running from their own due time.
func TestDeadlinesDueAtTheirStart(t *testing.T) {
	c := openDashboardCase(t)
	c.act("vendor", "propose-embargo", "end", time.Now().Add(40*24*time.Hour).UTC().Format("2006-01-02"))
	for _, tc := range []struct{ path, kind string }{
		{c.path, "embargo_rsvp"},
		{"/", "embargo_rsvp"},
	} {
		var rows string
		waitFor(t, tc.kind+" on "+tc.path, func() bool {
			rows = section(c.b.get(tc.path), `id="deadlines"`)
			return strings.Contains(rows, tc.kind)
		})
		if strings.Contains(rows, "0 hours") {
			t.Errorf("%s lists %s as a 0 hours clock:\n%s", tc.path, tc.kind, rows)
		}
	}
	// The other clocks keep their limit.
	if rows := section(c.b.get(c.path), `id="deadlines"`); !strings.Contains(rows, "(10 business days, from ") && !strings.Contains(rows, "(90 days, from ") {
		t.Errorf("the case page no longer says a clock's limit:\n%s", rows)
	}
}

// TestDashboardPathsNoPageTakes: a browser sent to a path of the dashboard
// that no page takes is answered with a page that says so and leads to the
// cases, not with the API's JSON; other paths keep the API's answer.
func TestDashboardPathsNoPageTakes(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	for _, tc := range []struct {
		path, contentType, want string
	}{
		{"/ui", "text/html; charset=utf-8", "The dashboard has no page at this address"},
		{"/ui/", "text/html; charset=utf-8", "The dashboard has no page at this address"},
		{"/ui/cases/", "text/html; charset=utf-8", "The dashboard has no page at this address"},
		{"/ui/nothing", "text/html; charset=utf-8", `<a href="/">`},
		{"/api/nothing", "application/json", `{"error":"no such resource: /api/nothing"}`},
	} {
		resp, err := http.Get(n.url + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.contentType) || !strings.Contains(string(body), tc.want) {
			t.Errorf("GET %s: %d %s %s, want 404 %s with %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.contentType, tc.want)
		}
	}
}

// revokeSessions revokes every dashboard session of a user through the
// API, as an admin does; the user has at least one.
func (tn *testNode) revokeSessions(t *testing.T, user string) {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/users/"+user+"/sessions", "")
	var list struct {
		Sessions []struct {
			Handle string `json:"handle"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil || len(list.Sessions) == 0 {
		t.Fatalf("%s's sessions: %d %s (%v)", user, status, body, err)
	}
	for _, s := range list.Sessions {
		if status, body := tn.api(t, http.MethodDelete, "/api/users/"+user+"/sessions/"+s.Handle, ""); status >= 300 {
			t.Fatalf("revoke %s's session %s: %d %s", user, s.Handle, status, body)
		}
	}
}

// TestTokenFromTheDashboardNeedsARecentLogin: a dashboard session kept in
// use, whose login is older than the accounts' RecentLogin, makes no token
// (a token outlives the session: one made with a cookie taken from a
// browser left logged in would keep the account); logged in again, it
// does.
func TestTokenFromTheDashboardNeedsARecentLogin(t *testing.T) {
	var skew atomic.Int64
	vendor := startNodeWith(t, Config{Now: skewed(&skew)}, "vendor:Organization")
	b := newBrowser(t, vendor.url)
	password := vendor.person(t, "rosa", accounts.Admin)
	b.loginAs("rosa", password)
	for range 4 {
		skew.Add(int64(5 * time.Minute))
		b.get("/ui/account") // in use: not idle
	}
	// create sends the form and returns the page it leads to: the
	// account page with its outcome, or, for a new token, the page that
	// shows it once.
	create := func() string {
		t.Helper()
		page := b.get("/ui/account")
		resp, body := b.do(http.MethodPost, "/ui/account", url.Values{"csrf": {csrfOf(t, page)}, "action": {"create-token"}, "name": {"laptop"}, "scope": {"read"}, "expires": {"1d"}})
		if resp.StatusCode == http.StatusSeeOther {
			return b.get(resp.Header.Get("Location"))
		}
		return body
	}
	if page := create(); !strings.Contains(page, "this needs a recent login") || strings.Contains(page, `id="token-value"`) {
		t.Errorf("a token from a login 20 minutes old was not refused:\n%s", section(page, "Refused"))
	}
	// Logged out and in again, it may.
	if resp, _ := b.do(http.MethodPost, "/logout", url.Values{"csrf": {csrfOf(t, b.get("/ui/account"))}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	b.loginAs("rosa", password)
	if page := create(); strings.Contains(page, "Refused") || !strings.Contains(page, `id="token-value"`) {
		t.Errorf("a token from a new login:\n%s", section(page, "token"))
	}
}
