package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
)

var totpSecretRE = regexp.MustCompile(`<code id="totp-secret">([A-Z2-7]+)</code>`)

// linkPath returns the path and query of an enrollment link, and its
// code.
func linkPath(t *testing.T, link string) (string, string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Query().Get("code") == "" {
		t.Fatalf("%q is not an enrollment link: %v", link, err)
	}
	return u.RequestURI(), u.Query().Get("code")
}

// setPasswordOver sends a link's form with a password and returns the
// answer.
func (b *browser) setPasswordOver(link, password string) *http.Response {
	b.t.Helper()
	path, code := linkPath(b.t, link)
	page := b.get(path)
	resp, body := b.do(http.MethodPost, "/enroll", url.Values{"csrf": {csrfOf(b.t, page)}, "code": {code}, "password": {password}, "password2": {password}})
	if resp.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("POST /enroll: %d, want 303\n%s", resp.StatusCode, body)
	}
	return resp
}

// offerTOTP has the session offered an authenticator app and returns the
// app's secret and the CSRF value of the form that confirms it.
func (b *browser) offerTOTP(page string) (secret, csrf string) {
	b.t.Helper()
	page = b.post("/factor/totp", url.Values{"csrf": {csrfOf(b.t, page)}, "action": {"offer"}})
	m := totpSecretRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no authenticator app's secret offered:\n%s", page)
	}
	return m[1], csrfOf(b.t, page)
}

// sessionsOf lists a user's dashboard sessions through the admin API.
func sessionsOf(t *testing.T, n *testNode, name string) []api.SessionInfo {
	t.Helper()
	status, body := n.api(t, http.MethodGet, "/api/users/"+name+"/sessions", "")
	var list api.SessionList
	if status != http.StatusOK || json.Unmarshal(body, &list) != nil {
		t.Fatalf("GET sessions of %s: %d %s", name, status, body)
	}
	return list.Sessions
}

// TestReplacedEnrollmentLinkOverHTTP follows the walkthrough over HTTP,
// on a node that requires a second factor. X uses alice's first link and
// is offered an authenticator app; the admin issues a new link; X can
// neither confirm the app nor log in, and alice's use of the new link
// asks her to set up her own factor. Once she logged in with it, another
// link (a forgotten password) ends her other sessions and asks for her
// app's code before it opens a session.
func TestReplacedEnrollmentLinkOverHTTP(t *testing.T) {
	// The node's clock is moved 30 s on between TOTP codes, so that each
	// one is of a step after the last one taken.
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	nextStep := func() { offset.Add(int64(30 * time.Second)) }
	n := startNodeStrict(t, t.TempDir(), nil, Config{Now: now}, "vendor:Organization")

	// vultron user add alice --role analyst --actor vendor
	status, body := n.api(t, http.MethodPost, "/api/users", `{"name":"alice","role":"analyst","actors":["vendor"]}`)
	var added api.AddedUser
	if status != http.StatusCreated || json.Unmarshal(body, &added) != nil {
		t.Fatalf("POST /api/users: %d %s", status, body)
	}
	x := newBrowser(t, n.url)
	if resp := x.setPasswordOver(added.Enroll, "the password X chose"); resp.Header.Get("Location") != "/enroll/factor" {
		t.Fatalf("X's use of the first link went to %q, want /enroll/factor", resp.Header.Get("Location"))
	}
	secretX, csrfX := x.offerTOTP(x.get("/enroll/factor"))

	// vultron user enroll alice
	status, body = n.api(t, http.MethodPost, "/api/users/alice/enroll", "")
	var l2 api.EnrollLink
	if status != http.StatusOK || json.Unmarshal(body, &l2) != nil {
		t.Fatalf("POST /api/users/alice/enroll: %d %s", status, body)
	}
	path1, _ := linkPath(t, added.Enroll)
	if _, page := x.do(http.MethodGet, path1, nil); !strings.Contains(page, "This enrollment link is not valid") {
		t.Errorf("the first link after the second was issued:\n%s", page)
	}

	// X's session ended with the link it came from: the app it was offered
	// is not set up.
	resp, page := x.do(http.MethodPost, "/factor/totp", url.Values{"csrf": {csrfX}, "action": {"confirm"}, "code": {totpCode(t, secretX, now())}})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("X confirms the app after the link was replaced: %d %s, want 401\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	if resp, _ := x.do(http.MethodGet, "/", nil); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Errorf("X's GET / after the link was replaced: %d %s, want a redirect to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	nextStep()
	if resp, _ := x.passwordStep("alice", "the password X chose", "/"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("X's login with the password it chose: %d %s, want 401", resp.StatusCode, resp.Header.Get("Location"))
	}
	if list := sessionsOf(t, n, "alice"); len(list) != 0 {
		t.Errorf("alice has sessions before she used her link: %+v", list)
	}

	// Alice uses the new link: she is asked to set up a factor of her own.
	a := newBrowser(t, n.url)
	if resp := a.setPasswordOver(l2.Enroll, "alice's own password"); resp.Header.Get("Location") != "/enroll/factor" {
		t.Fatalf("alice's use of the new link went to %q, want /enroll/factor", resp.Header.Get("Location"))
	}
	secretA, csrfA := a.offerTOTP(a.get("/enroll/factor"))
	account := a.post("/factor/totp", url.Values{"csrf": {csrfA}, "action": {"confirm"}, "code": {totpCode(t, secretA, now())}})
	if !strings.Contains(account, "Your authenticator app is set up.") || !strings.Contains(account, `id="recovery-codes"`) {
		t.Fatalf("alice's account page after her app:\n%s", account)
	}
	if list := sessionsOf(t, n, "alice"); len(list) != 1 || list[0].Method != "enrollment+authenticator app" {
		t.Errorf("alice's sessions: %+v, want her enrollment's alone", list)
	}

	// She logs in with her password and app.
	nextStep()
	own := newBrowser(t, n.url)
	resp, page = own.passwordStep("alice", "alice's own password", "/")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login/factor") {
		t.Fatalf("alice's password step: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	factor := own.get(resp.Header.Get("Location"))
	if strings.Contains(factor, `id="factor-link"`) {
		t.Errorf("the second step of a login speaks of an enrollment link:\n%s", factor)
	}
	if got := own.post("/login/factor", url.Values{"csrf": {csrfOf(t, factor)}, "next": {"/"}, "kind": {"totp"}, "code": {totpCode(t, secretA, now())}}); !strings.Contains(got, "alice") {
		t.Fatalf("alice's dashboard after her login:\n%s", got)
	}

	// A link for a forgotten password: issuing it ends the session of the
	// link before; using it ends the others and asks for her app.
	status, body = n.api(t, http.MethodPost, "/api/users/alice/enroll", "")
	var l3 api.EnrollLink
	if status != http.StatusOK || json.Unmarshal(body, &l3) != nil {
		t.Fatalf("POST /api/users/alice/enroll: %d %s", status, body)
	}
	if resp, _ := a.do(http.MethodGet, "/ui/account", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the first link's session after a new link: GET /ui/account %d, want a redirect to /login", resp.StatusCode)
	}
	if resp, _ := own.do(http.MethodGet, "/ui/account", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("alice's own login after a new link was issued: GET /ui/account %d, want 200", resp.StatusCode)
	}
	nextStep()
	reset := newBrowser(t, n.url)
	resp = reset.setPasswordOver(l3.Enroll, "alice's second password")
	if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login/factor") {
		t.Fatalf("a link on an account with an app went to %q, want /login/factor", loc)
	}
	if resp, _ := own.do(http.MethodGet, "/ui/account", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("alice's own login after she used a new link: GET /ui/account %d, want a redirect to /login", resp.StatusCode)
	}
	if resp, _ := reset.do(http.MethodGet, "/ui/account", nil); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the new link's session before the app's code: GET /ui/account %d, want a redirect", resp.StatusCode)
	}
	factor = reset.get(resp.Header.Get("Location"))
	if !strings.Contains(factor, `id="factor-link"`) || !strings.Contains(factor, "vultron user reset-2fa alice") {
		t.Errorf("the second step after a link does not say the password is set and what to do without a factor:\n%s", factor)
	}
	resp, page = reset.do(http.MethodPost, "/login/factor", url.Values{"csrf": {csrfOf(t, factor)}, "next": {"/"}, "kind": {"totp"}, "code": {totpCode(t, secretA, now())}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("the app's code after the link: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), page)
	}
	if list := sessionsOf(t, n, "alice"); len(list) != 1 || list[0].Method != "enrollment+totp" {
		t.Errorf("alice's sessions after the link and her app: %+v, want one of method enrollment+totp", list)
	}
}

// TestAccountPageOffersToReplaceTheApp: once an authenticator app is set
// up, the account page offers to replace it, and says the app in use
// keeps working until the new one is confirmed; before, it offers to set
// one up.
func TestAccountPageOffersToReplaceTheApp(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	b := newBrowser(t, n.url)
	b.loginAs("ana", n.person(t, "ana", accounts.Analyst))
	page := b.get("/ui/account")
	if !strings.Contains(page, "Set up an authenticator app") || strings.Contains(page, "Replace the authenticator app") {
		t.Errorf("an account without an app is not offered to set one up:\n%s", section(page, `id="totp"`))
	}
	secret, csrf := b.offerTOTP(page)
	b.post("/factor/totp", url.Values{"csrf": {csrf}, "action": {"confirm"}, "code": {totpCode(t, secret, time.Now())}})
	page = b.get("/ui/account")
	if !strings.Contains(page, "Replace the authenticator app") || strings.Contains(page, "Set up an authenticator app") ||
		!strings.Contains(page, "the app you use now works until the new one is confirmed") {
		t.Errorf("an account with an app is not offered to replace it:\n%s", section(page, `id="totp"`))
	}
}

// TestEnrollmentCookieLastsAsLongAsItsSession: the session an enrollment
// link opens on a node that requires a second factor, in which the person
// sets one up (finds the phone, installs an authenticator app), lasts half
// an hour; its cookie lasts no less, or the browser would drop it while
// the session holds, with the link spent and no factor set up.
func TestEnrollmentCookieLastsAsLongAsItsSession(t *testing.T) {
	n := startNodeStrict(t, t.TempDir(), nil, Config{}, "vendor:Organization")
	status, body := n.api(t, http.MethodPost, "/api/users", `{"name":"nia","role":"analyst"}`)
	var added api.AddedUser
	if status != http.StatusCreated || json.Unmarshal(body, &added) != nil {
		t.Fatalf("POST /api/users: %d %s", status, body)
	}
	b := newBrowser(t, n.url)
	resp := b.setPasswordOver(added.Enroll, "the password nia chose")
	if resp.Header.Get("Location") != "/enroll/factor" {
		t.Fatalf("the link went to %q, want /enroll/factor", resp.Header.Get("Location"))
	}
	sessions := sessionsOf(t, n, "nia")
	if len(sessions) != 1 {
		t.Fatalf("nia has %d sessions, want the enrollment's", len(sessions))
	}
	left := time.Until(sessions[0].Expires)
	for _, c := range resp.Cookies() {
		if c.Name != "vultron_session" {
			continue
		}
		if c.MaxAge > 0 && time.Duration(c.MaxAge)*time.Second < left-time.Minute {
			t.Errorf("the enrollment's cookie lasts %v; its session %v", time.Duration(c.MaxAge)*time.Second, left.Round(time.Minute))
		}
		return
	}
	t.Fatal("the enrollment set no session cookie")
}

// TestARefusedPasswordsLengthIsNotAudited: a password refused at
// enrollment is not kept, and neither is anything about it: the audit
// record of the refusal names the rule it broke, not how many characters
// the person typed, which tells of the password they will choose next.
// The page still says what a password needs.
func TestARefusedPasswordsLengthIsNotAudited(t *testing.T) {
	n := startNodeStrict(t, t.TempDir(), nil, Config{}, "vendor:Organization")
	status, body := n.api(t, http.MethodPost, "/api/users", `{"name":"nia","role":"analyst"}`)
	var added api.AddedUser
	if status != http.StatusCreated || json.Unmarshal(body, &added) != nil {
		t.Fatalf("POST /api/users: %d %s", status, body)
	}
	seq := lastAuditSeq(t, n.db)
	b := newBrowser(t, n.url)
	path, code := linkPath(t, added.Enroll)
	page := b.get(path)
	const short = "seven77" // 7 characters
	resp, page := b.do(http.MethodPost, "/enroll", url.Values{"csrf": {csrfOf(t, page)}, "code": {code}, "password": {short}, "password2": {short}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, fmt.Sprintf("at least %d", accounts.MinPasswordLength)) {
		t.Errorf("POST /enroll with a short password: %d, want 400 saying it needs at least %d characters\n%s", resp.StatusCode, accounts.MinPasswordLength, page)
	}
	recs := auditAfter(t, n.db, seq)
	if len(recs) == 0 {
		t.Fatal("the refused enrollment left no audit record")
	}
	for _, r := range recs {
		if strings.Contains(r.Reason, "7 characters") || strings.Contains(r.Reason, "has 7") {
			t.Errorf("audit record %d tells the refused password's length: %q", r.Seq, r.Reason)
		}
	}
}
