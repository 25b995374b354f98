package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/pquerna/otp/totp"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/node/dashboard"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// testArgon2 keeps password hashing quick in tests; the cost of the
// defaults is measured by accounts' BenchmarkHashPassword.
var testArgon2 = accounts.Argon2Params{Memory: 1024, Time: 1, Threads: 1}

// authzNode is a node, not served, with two actors, reached at a host
// name (so that it offers passkeys), whose analysts and admins may log in
// with a password alone.
func authzNode(t *testing.T, now func() time.Time) *idleNode {
	t.Helper()
	return idleNodeIn(t, Config{
		PublicURL: "http://localhost:7001", NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard,
		Actors:               []ActorConfig{{Name: "vendor", Type: actor.Organization}, {Name: "coordinator", Type: actor.Service}},
		SecondFactorOptional: true, Argon2: testArgon2, Now: now,
	})
}

// idleNodeIn builds a node from cfg in a new temporary data directory
// (cfg.DataDir is set to it), closes it when the test ends, and returns
// it with the first admin's API token.
func idleNodeIn(t *testing.T, cfg Config) *idleNode {
	t.Helper()
	cfg.DataDir = t.TempDir()
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return &idleNode{Node: n, token: readToken(t, cfg.DataDir), dir: cfg.DataDir}
}

// enrolledViewer adds the viewer vera to n and sets her password through
// her enrollment link, from m; it returns the first admin's principal and
// what adding vera gave.
func enrolledViewer(t *testing.T, n *idleNode, password string, m accounts.LoginMeta) (accounts.Principal, accounts.Added) {
	t.Helper()
	admin, vera := addViewer(t, n)
	link, err := url.Parse(vera.Enroll)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.accounts.Enroll(context.Background(), link.Query().Get("code"), password, m); err != nil {
		t.Fatal(err)
	}
	return admin, vera
}

// who is one principal of the table: how its request carries its
// credential, and what the table expects of it.
type who struct {
	name   string
	role   accounts.Role
	scopes accounts.ScopeSet
	actors []string
	// bearer is a token sent as Authorization: Bearer; query one sent as
	// ?token=; cookie and csrf a dashboard session's.
	bearer, query, cookie, csrf string
	// invalid marks a credential the node must refuse as such (expired,
	// revoked, of a disabled user).
	invalid bool
}

// principals makes the table's principals on n: for each role a token
// of each scope it may hold and a dashboard session, the node's API,
// metrics and feed tokens, and credentials that must not work.
func principals(t *testing.T, n *idleNode) []who {
	t.Helper()
	ctx := context.Background()
	acc := n.accounts
	admin, err := acc.Authenticate(ctx, n.token)
	if err != nil {
		t.Fatal(err)
	}
	out := []who{
		{name: "nobody"},
		{name: "API token", role: accounts.Admin, scopes: accounts.ScopeSet{"read", "act", "admin", "metrics", "calendar"}, bearer: n.token},
		{name: "metrics token", scopes: accounts.ScopeSet{accounts.ScopeMetrics}, bearer: readMetricsToken(t, n.dir)},
		{name: "unknown token", bearer: "vultron_never-issued", invalid: true},
	}
	known := func(a string) bool { return a == "vendor" || a == "coordinator" }
	for _, role := range accounts.Roles() {
		var actors []string
		if role == accounts.Analyst {
			actors = []string{"vendor"} // acts for vendor, not coordinator
		}
		added, err := acc.AddUser(ctx, admin, accounts.NewUser{Name: "u-" + role.String(), Role: role, Actors: actors}, known, "")
		if err != nil {
			t.Fatal(err)
		}
		p, err := acc.Authenticate(ctx, added.Token)
		if err != nil {
			t.Fatal(err)
		}
		for _, sc := range accounts.AllScopes() {
			if sc.MinRole() > role {
				continue
			}
			tok, _, err := acc.CreateToken(ctx, admin, accounts.TokenSpec{User: p.Name, Scopes: accounts.ScopeSet{sc}}, "")
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, who{name: role.String() + " token " + string(sc), role: role, scopes: accounts.ScopeSet{sc}, actors: actors, bearer: tok})
			if sc == accounts.ScopeCalendar {
				out = append(out, who{name: role.String() + " calendar token in the URL", role: role, scopes: accounts.ScopeSet{sc}, actors: actors, query: tok})
			}
		}
		login, err := acc.Enroll(ctx, strings.TrimPrefix(added.Enroll, "http://localhost:7001/enroll?code="), "a long enough password", accounts.LoginMeta{})
		if err != nil || login.Stage != accounts.StageFull {
			t.Fatalf("enroll %s: %+v, %v", role, login, err)
		}
		st, err := acc.Session(ctx, login.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		var ss accounts.ScopeSet
		for _, sc := range []accounts.Scope{accounts.ScopeRead, accounts.ScopeAct, accounts.ScopeAdmin} {
			if sc.MinRole() <= role {
				ss = append(ss, sc)
			}
		}
		out = append(out, who{name: role.String() + " session", role: role, scopes: ss, actors: actors, cookie: login.SessionID, csrf: st.CSRF})
	}
	// Credentials that stopped working.
	added, err := acc.AddUser(ctx, admin, accounts.NewUser{Name: "gone", Role: accounts.Admin}, known, "")
	if err != nil {
		t.Fatal(err)
	}
	goneLogin, err := acc.Enroll(ctx, strings.TrimPrefix(added.Enroll, "http://localhost:7001/enroll?code="), "a long enough password", accounts.LoginMeta{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.SetDisabled(ctx, admin, "gone", true, ""); err != nil {
		t.Fatal(err)
	}
	out = append(out, who{name: "disabled user's token", bearer: added.Token, invalid: true},
		who{name: "disabled user's session", cookie: goneLogin.SessionID, invalid: true})
	revoked, info, err := acc.CreateToken(ctx, admin, accounts.TokenSpec{Scopes: accounts.ScopeSet{"read"}}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := acc.RevokeToken(ctx, admin, info.ID, ""); err != nil {
		t.Fatal(err)
	}
	out = append(out, who{name: "revoked token", bearer: revoked, invalid: true})
	// The feed token as it is once the disabled user's access ended, which
	// rotated it.
	out = append(out, who{name: "feed token", scopes: accounts.ScopeSet{accounts.ScopeCalendar}, query: feedToken(t, n)})
	return out
}

func readToken(t *testing.T, dir string) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, dir+"/"+tokenFile))
}

func readMetricsToken(t *testing.T, dir string) string {
	t.Helper()
	return strings.TrimSpace(readFile(t, dir+"/"+metricsTokenFile))
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// feedToken returns the node's calendar feed token, from its feed URL.
func feedToken(t *testing.T, n *idleNode) string {
	t.Helper()
	u, err := url.Parse(n.calendar.URL(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get("token")
}

// expect is the table's own statement of the permission model, written
// apart from accounts.Principal.Allow: a credential from the source the
// route reads, a scope that grants the route's (read < act < admin
// nested), a role that may hold it, and for an analyst limited to some
// actors one of them.
func expect(w who, g guard, actorName string) bool {
	if g.from == fromNone {
		return true
	}
	var has bool
	switch g.from {
	case fromBearer, fromPeerBearer:
		if w.bearer != "" && w.invalid {
			return false // a bad token is refused, even where none is needed
		}
		has = w.bearer != ""
	case fromFeed:
		if (w.bearer != "" || w.query != "") && w.invalid {
			return false
		}
		has = w.bearer != "" || w.query != ""
	case fromSession:
		has = w.cookie != "" && !w.invalid // an ended session is no session
	}
	if g.perm.Scope == "" {
		return true
	}
	if !has {
		return false
	}
	grants := func(s accounts.Scope) bool {
		switch s {
		case accounts.ScopeRead:
			return slices.ContainsFunc(w.scopes, func(x accounts.Scope) bool { return x == "read" || x == "act" || x == "admin" })
		case accounts.ScopeAct:
			return slices.ContainsFunc(w.scopes, func(x accounts.Scope) bool { return x == "act" || x == "admin" })
		}
		return slices.Contains(w.scopes, s)
	}
	minRole := map[accounts.Scope]accounts.Role{"read": accounts.Viewer, "act": accounts.Analyst, "admin": accounts.Admin, "metrics": accounts.Viewer, "calendar": accounts.Viewer}
	if !grants(g.perm.Scope) || (w.role < minRole[g.perm.Scope] && w.role != accounts.RoleNone) {
		return false
	}
	if g.perm.ActorVar != "" && actorName != "" && w.role == accounts.Analyst && len(w.actors) > 0 {
		return slices.Contains(w.actors, actorName)
	}
	return true
}

// pinned is what the sensitive routes must declare: the scope, and ! for
// a route that acts as the actor its {name} names.
var pinned = map[string]string{
	"POST /actors/{name}/outbox":                 "act!",
	"POST /api/actors/{name}/rotate-key":         "admin",
	"GET /api/audit":                             "admin",
	"GET /api/audit/verify":                      "admin",
	"GET /api/backup":                            "admin",
	"GET /api/users":                             "admin",
	"POST /api/users":                            "admin",
	"GET /api/users/{user}":                      "admin",
	"DELETE /api/users/{user}":                   "admin",
	"POST /api/users/{user}/role":                "admin",
	"POST /api/users/{user}/disable":             "admin",
	"POST /api/users/{user}/enable":              "admin",
	"POST /api/users/{user}/reset-2fa":           "admin",
	"POST /api/users/{user}/enroll":              "admin",
	"GET /api/users/{user}/sessions":             "admin",
	"DELETE /api/users/{user}/sessions/{handle}": "admin",
	"POST /api/calendar/token":                   "admin",
	"GET /metrics":                               "metrics",
	"GET /calendar.ics":                          "calendar",
	"GET /api/cases/{id}/embargo.ics":            "calendar",
	"POST /api/cases/{id}/resync":                "act",
	"POST /api/deliveries/{id}/retry":            "act",
	"GET /api/deliveries/damaged":                "admin",
	"DELETE /api/deliveries/damaged/{id}":        "admin",
	"GET /api/webhooks":                          "admin",
	"POST /api/webhooks/{id}/resume":             "admin",
	"GET /api/cases":                             "read",
	"GET /api/reports/{id}":                      "read",
	"POST /ui/cases/{id}":                        "act",
	"POST /ui/reports/validate":                  "act",
	"GET /":                                      "read",
	"GET /ui/account":                            "read",
	"POST /login":                                "",
	"GET /login/sso/callback":                    "",
	"POST /actors/{name}/inbox":                  "",
	"GET /.well-known/webfinger":                 "",
	"GET /actors/{name}/followers":               "",
	"GET /advisories":                            "",
	"GET /api/cases/{id}/advisory/draft":         "read",
	"POST /api/cases/{id}/advisory/publish":      "act",
}

// routes walks the router and returns every route as "METHOD template".
func routeKeys(t *testing.T, r *mux.Router) []string {
	t.Helper()
	var out []string
	err := r.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		tpl, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s declares no method", tpl)
		}
		for _, m := range methods {
			out = append(out, m+" "+tpl)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// TestEveryRouteDeclaresItsPermission walks the router: every route must
// have been registered with a guard (Node.handle), and the sensitive ones
// with the permission pinned here; and through the node's handler, every
// route that needs a principal refuses a request without one.
func TestEveryRouteDeclaresItsPermission(t *testing.T) {
	n := authzNode(t, nil)
	keys := routeKeys(t, n.router())
	if len(keys) < 60 {
		t.Errorf("only %d routes found", len(keys))
	}
	for _, key := range keys {
		g, ok := n.guards[key]
		if !ok {
			t.Errorf("route %s has no guard: register it with Node.handle and the permission it needs", key)
			continue
		}
		if want, ok := pinned[key]; ok {
			got := string(g.perm.Scope)
			if g.perm.ActorVar == "name" {
				got += "!"
			}
			if got != want {
				t.Errorf("route %s declares %q, want %q", key, got, want)
			}
		}
		if g.perm.Public() {
			continue
		}
		method, tpl, _ := strings.Cut(key, " ")
		status, hdr := serveRaw(n, method, fill(tpl, "vendor"), who{name: "nobody"})
		switch {
		case g.from == fromSession && method == http.MethodGet && tpl != "/ui/events":
			if status != http.StatusSeeOther || !strings.HasPrefix(hdr.Get("Location"), "/login?next=") {
				t.Errorf("%s without a session: %d to %q, want 303 to the login page", key, status, hdr.Get("Location"))
			}
		case g.from == fromSession:
			if status != http.StatusUnauthorized {
				t.Errorf("%s without a session: %d, want 401", key, status)
			}
		default:
			if status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), `realm="vultron"`) {
				t.Errorf("%s without a token: %d (WWW-Authenticate %q), want 401 with a Bearer challenge", key, status, hdr.Get("WWW-Authenticate"))
			}
		}
	}
	for key := range pinned {
		if !slices.Contains(keys, key) {
			t.Errorf("pinned route %s is not routed", key)
		}
	}
}

// TestRouteTable decides every route for every principal: each role's
// tokens of each scope and its dashboard session, the node's API,
// metrics and feed tokens, nobody, and tokens that must not work, and for
// a route that acts as an actor both an actor the analyst acts for and
// one it does not. Each decision is the guard's on a real request, and
// must be the table's (expect). The table is logged with -v.
func TestRouteTable(t *testing.T) {
	n := authzNode(t, nil)
	whos := principals(t, n)
	keys := routeKeys(t, n.router())
	var table strings.Builder
	decisions := 0
	for _, key := range keys {
		g := n.guards[key]
		method, tpl, _ := strings.Cut(key, " ")
		actorNames := []string{"vendor"}
		if g.perm.ActorVar == "name" {
			actorNames = append(actorNames, "coordinator")
		}
		for _, a := range actorNames {
			fmt.Fprintf(&table, "%-45s %-12s", key+" "+a, g.perm)
			for _, w := range whos {
				reached := false
				h := n.guarded(g, func(http.ResponseWriter, *http.Request) { reached = true })
				req := request(method, fill(tpl, a), w)
				// A dashboard form names its actor in the form, which
				// the dashboard checks (TestDashboardAnalystActsForItsActors); a route's
				// {name} is checked by the guard.
				req = mux.SetURLVars(req, map[string]string{"name": a, "id": "x", "cid": "x", "user": "nobody", "handle": "x"})
				rec := httptest.NewRecorder()
				h(rec, req)
				decisions++
				if want := expect(w, g, a); reached != want {
					t.Errorf("%s as %s for %s: allowed %v (status %d), want %v", key, w.name, a, reached, rec.Code, want)
				}
				if !reached && g.from != fromSession && rec.Code != http.StatusUnauthorized && rec.Code != http.StatusForbidden {
					t.Errorf("%s as %s: refused with %d, want 401 or 403", key, w.name, rec.Code)
				}
				mark := "-"
				if reached {
					mark = "Y"
				}
				table.WriteString(mark)
			}
			table.WriteString("\n")
		}
	}
	var legend strings.Builder
	for i, w := range whos {
		fmt.Fprintf(&legend, "%2d %s\n", i+1, w.name)
	}
	t.Logf("%d decisions; columns:\n%s\n%s", decisions, legend.String(), table.String())
	if decisions < 1500 {
		t.Errorf("only %d decisions made", decisions)
	}
}

// fill puts values into a route template's variables.
func fill(tpl, actorName string) string {
	return strings.NewReplacer("{name}", actorName, "{id}", "x", "{cid}", "x", "{user}", "nobody", "{handle}", "x").Replace(tpl)
}

// request builds a request carrying w's credential; a dashboard form
// carries its session's CSRF token.
func request(method, path string, w who) *http.Request {
	if w.query != "" {
		path += "?token=" + url.QueryEscape(w.query)
	}
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(url.Values{"csrf": {w.csrf}}.Encode())
	}
	req := httptest.NewRequest(method, path, body)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if w.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+w.bearer)
	}
	if w.cookie != "" {
		req.AddCookie(&http.Cookie{Name: dashboard.SessionCookie, Value: w.cookie})
	}
	return req
}

// serveRaw sends w's request through the node's whole handler.
func serveRaw(n *idleNode, method, path string, w who) (int, http.Header) {
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, request(method, path, w))
	return rec.Code, rec.Result().Header
}

// TestRefusalsThroughTheNode checks, through the node's handler, that the
// guards' refusals reach the client as the API promises: 403 with the
// RFC 6750 insufficient_scope challenge for a viewer's admin call, 401
// with invalid_token for an expired token, and that a disabled user's
// session ends at the next request.
func TestRefusalsThroughTheNode(t *testing.T) {
	var skew atomicDuration
	n := authzNode(t, func() time.Time { return time.Now().Add(skew.Load()) })
	ctx := context.Background()
	admin, viewer := addViewer(t, n)
	status, hdr := serveRaw(n, http.MethodGet, "/api/users", who{bearer: viewer.Token})
	if status != http.StatusForbidden || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope", scope="admin"`) {
		t.Errorf("a viewer's GET /api/users: %d, WWW-Authenticate %q", status, hdr.Get("WWW-Authenticate"))
	}
	short, _, err := n.accounts.CreateToken(ctx, admin, accounts.TokenSpec{Scopes: accounts.ScopeSet{"read"}, Expires: time.Minute}, "")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := serveRaw(n, http.MethodGet, "/api/cases", who{bearer: short}); status != http.StatusOK {
		t.Fatalf("a fresh token: %d", status)
	}
	skew.Store(2 * time.Minute)
	status, hdr = serveRaw(n, http.MethodGet, "/api/cases", who{bearer: short})
	if status != http.StatusUnauthorized || !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("an expired token: %d, WWW-Authenticate %q", status, hdr.Get("WWW-Authenticate"))
	}
}

// atomicDuration is a clock's skew a test changes while the node reads it.
type atomicDuration struct{ v atomic.Int64 }

func (a *atomicDuration) Load() time.Duration   { return time.Duration(a.v.Load()) }
func (a *atomicDuration) Store(d time.Duration) { a.v.Store(int64(d)) }

// TestEveryFormNeedsCSRF sends every form of the dashboard (every POST
// route behind a session's guard) through the node's handler with an
// admin's logged-in session but without the form's CSRF token: each must
// be refused with 403, so a page of another site cannot post a form in
// the person's name. The login and enrollment forms, posted before there
// is a session, check their own CSRF cookie the same way.
func TestEveryFormNeedsCSRF(t *testing.T) {
	n := authzNode(t, nil)
	var admin who
	for _, w := range principals(t, n) {
		if w.name == "admin session" {
			admin = w
		}
	}
	if admin.cookie == "" {
		t.Fatal("no admin session among the principals")
	}
	admin.csrf = ""
	// The second step of a login is posted with a pending session: one of
	// a user with an authenticator app who gave the password.
	pending := who{name: "pending login", cookie: pendingLogin(t, n)}
	forms := 0
	for _, key := range routeKeys(t, n.router()) {
		method, tpl, _ := strings.Cut(key, " ")
		if g := n.guards[key]; method != http.MethodPost || g.from != fromSession {
			continue
		}
		forms++
		w := admin
		if strings.HasPrefix(tpl, "/login/") {
			w = pending
		}
		if status, _ := serveRaw(n, method, fill(tpl, "vendor"), w); status != http.StatusForbidden {
			t.Errorf("%s without its CSRF token: %d, want 403", key, status)
		}
	}
	if forms < 10 {
		t.Errorf("only %d dashboard forms found", forms)
	}
	// With its CSRF token the second step is read: a wrong code is a
	// wrong code, not a forgery.
	st, err := n.accounts.Session(context.Background(), pending.cookie)
	if err != nil {
		t.Fatal(err)
	}
	pending.csrf = st.CSRF
	if status, _ := serveRaw(n, http.MethodPost, "/login/factor", pending); status == http.StatusForbidden || status < 400 {
		t.Errorf("POST /login/factor with its CSRF token and no code: %d, want a refusal of the code", status)
	}
}

// pendingLogin adds a user with an authenticator app, logs it in with
// its password, and returns the session id of the login waiting for its
// second step.
func pendingLogin(t *testing.T, n *idleNode) string {
	t.Helper()
	ctx := context.Background()
	_, added := addUser(t, n, accounts.NewUser{Name: "tess", Role: accounts.Analyst})
	u, err := url.Parse(added.Enroll)
	if err != nil {
		t.Fatal(err)
	}
	const password = "tess's long password"
	enrolled, err := n.accounts.Enroll(ctx, u.Query().Get("code"), password, accounts.LoginMeta{})
	if err != nil {
		t.Fatal(err)
	}
	offer, err := n.accounts.OfferTOTP(ctx, enrolled.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(offer.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.accounts.ConfirmTOTP(ctx, enrolled.SessionID, code, accounts.LoginMeta{}); err != nil {
		t.Fatal(err)
	}
	login, err := n.accounts.PasswordLogin(ctx, "tess", password, accounts.LoginMeta{})
	if err != nil || login.Stage == accounts.StageFull {
		t.Fatalf("tess's password login: %+v, %v; want a pending second step", login, err)
	}
	return login.SessionID
}

// TestRefusalsAreAudited checks that what the guards and the login refuse
// is in the audit log with who asked: a wrong password (with the reason
// the answer does not tell, and never the password), a viewer's admin
// call, a revoked token, a form without its CSRF token.
func TestRefusalsAreAudited(t *testing.T) {
	n := authzNode(t, nil)
	ctx := context.Background()
	admin, viewer := enrolledViewer(t, n, "vera's long password", accounts.LoginMeta{})
	// A wrong password, through the login form with its CSRF cookie.
	rec := loginForm(t, n, "vera", "not vera's password")
	if rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "Wrong name or password.") {
		t.Errorf("a wrong password: %d\n%s", rec.Code, rec.Body.String())
	}
	// A viewer's admin call, then a revoked token.
	serveRaw(n, http.MethodGet, "/api/users", who{bearer: viewer.Token})
	if err := n.accounts.RevokeToken(ctx, admin, viewer.TokenI.ID, ""); err != nil {
		t.Fatal(err)
	}
	serveRaw(n, http.MethodGet, "/api/cases", who{bearer: viewer.Token})

	records, _, err := n.db.AuditPage(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ kind, principal, reason string }{
		{"account", "", "wrong password for vera"},
		{"admin", "vera via token " + viewer.TokenI.ID, "admin"},
		{"admin", "", "revoked"},
	}
	for _, w := range want {
		found := false
		for _, r := range records {
			if r.Kind == w.kind && r.Decision == "refused" && r.Principal == w.principal && strings.Contains(r.Reason, w.reason) {
				found = true
			}
			if strings.Contains(r.Reason, "not vera's password") {
				t.Errorf("the audit log holds the password: %+v", r)
			}
		}
		if !found {
			t.Errorf("no refused %s record by %q saying %q in:\n%+v", w.kind, w.principal, w.reason, records)
		}
	}
}

// addViewer adds the viewer vera to n and returns the first admin's
// principal and what adding vera gave.
func addViewer(t *testing.T, n *idleNode) (accounts.Principal, accounts.Added) {
	t.Helper()
	return addUser(t, n, accounts.NewUser{Name: "vera", Role: accounts.Viewer})
}

// addAnalyst adds, as the first admin, an analyst name who acts for
// actors.
func addAnalyst(t *testing.T, n *idleNode, name string, actors ...string) accounts.Added {
	t.Helper()
	_, added := addUser(t, n, accounts.NewUser{Name: name, Role: accounts.Analyst, Actors: actors})
	return added
}

// addUser adds u to n as the first admin, who may give it any actor, and
// returns the first admin's principal and what adding u gave.
func addUser(t *testing.T, n *idleNode, u accounts.NewUser) (accounts.Principal, accounts.Added) {
	t.Helper()
	ctx := context.Background()
	admin, err := n.accounts.Authenticate(ctx, n.token)
	if err != nil {
		t.Fatal(err)
	}
	added, err := n.accounts.AddUser(ctx, admin, u, func(string) bool { return true }, "")
	if err != nil {
		t.Fatal(err)
	}
	return admin, added
}

// pendingDelivery queues the vendor's activity out-1 for one recipient
// and returns its delivery, checking that it is the one pending.
func pendingDelivery(t *testing.T, n *idleNode) store.Delivery {
	t.Helper()
	ctx := context.Background()
	id := n.cfg.PublicURL + "/activities/out-1"
	if err := n.db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: "vendor", Body: []byte(`{"id":"` + id + `"}`),
		Deliveries: []store.DeliveryTarget{{Recipient: "https://peer.example/actors/finder"}}}, nil); err != nil {
		t.Fatal(err)
	}
	due, _, err := n.db.PendingDeliveries(ctx, 0, 10)
	if err != nil || len(due) != 1 {
		t.Fatalf("pending = %d, %v", len(due), err)
	}
	return due[0]
}

// TestAdminActionsNameTheirPrincipal has an admin other than the first
// rotate an actor's key, requeue a dead letter and rotate the calendar
// feed token with her own token: each action's audit record names her and
// the token.
func TestAdminActionsNameTheirPrincipal(t *testing.T) {
	n := authzNode(t, nil)
	ctx := context.Background()
	_, ada := addUser(t, n, accounts.NewUser{Name: "ada", Role: accounts.Admin})
	queued := pendingDelivery(t, n)
	if err := n.db.DeadLetter(ctx, queued.ID, "gone"); err != nil {
		t.Fatal(err)
	}
	as := who{bearer: ada.Token}
	for _, path := range []string{fmt.Sprintf("/api/deliveries/%d/retry", queued.ID), "/api/calendar/token", "/api/actors/vendor/rotate-key"} {
		if status, _ := serveRaw(n, http.MethodPost, path, as); status != http.StatusOK {
			t.Fatalf("POST %s as ada: %d", path, status)
		}
	}
	records, _, err := n.db.AuditPage(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	label := "ada via token " + ada.TokenI.ID
	for _, what := range []string{"requeued as delivery", "calendar feed token rotated", "actor key rotated"} {
		found := false
		for _, r := range records {
			if r.Kind == store.AuditAdmin && strings.Contains(r.Reason, what) {
				found = true
				if r.Principal != label {
					t.Errorf("the record of %q names %q, want %q", what, r.Principal, label)
				}
			}
		}
		if !found {
			t.Errorf("no admin record of %q", what)
		}
	}
}

// loginForm opens n's login page and posts its form, with the page's CSRF
// value and cookie, for name and password; it returns the answer.
func loginForm(t *testing.T, n *idleNode, name, password string) *httptest.ResponseRecorder {
	t.Helper()
	return loginFormFrom(t, n, name, password, "", nil)
}

// loginFormFrom is loginForm with both requests sent from the address
// remote (httptest's own when it is "") and the form's request changed by
// edit, when not nil, before it is sent. On an https node it checks that
// the login page's cookies are Secure.
func loginFormFrom(t *testing.T, n *idleNode, name, password, remote string, edit func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	page := httptest.NewRecorder()
	get := httptest.NewRequest(http.MethodGet, "/login", nil)
	if remote != "" {
		get.RemoteAddr = remote
	}
	n.Handler().ServeHTTP(page, get)
	m := csrfRE.FindStringSubmatch(page.Body.String())
	if m == nil {
		t.Fatalf("no CSRF value on the login page:\n%s", page.Body.String())
	}
	form := url.Values{"csrf": {m[1]}, "name": {name}, "password": {password}}
	req := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if remote != "" {
		req.RemoteAddr = remote
	}
	for _, c := range page.Result().Cookies() {
		if !c.Secure && strings.HasPrefix(n.cfg.PublicURL, "https://") {
			t.Errorf("the login page's cookie %s is not Secure on an https node", c.Name)
		}
		req.AddCookie(c)
	}
	if edit != nil {
		edit(req)
	}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	return rec
}

// TestSessionCookieIsSecureOnHTTPS logs a viewer in on a node whose public
// URL is https: the session cookie is Secure, HttpOnly and SameSite=Lax.
func TestSessionCookieIsSecureOnHTTPS(t *testing.T) {
	n := idleNodeIn(t, Config{
		PublicURL: "https://psirt.example", NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard,
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, Argon2: testArgon2,
	})
	enrolledViewer(t, n, "vera's long password", accounts.LoginMeta{})
	rec := loginForm(t, n, "vera", "vera's long password")
	var session *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == dashboard.SessionCookie {
			session = c
		}
	}
	if rec.Code != http.StatusSeeOther || session == nil || !session.Secure || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode {
		t.Errorf("login on an https node: %d, session cookie %+v; want Secure, HttpOnly, SameSite=Lax", rec.Code, session)
	}
}

// TestSubmitActsOnlyForThePersonsActors checks the node's one path from a
// person to an outbox (submit, under the API's outbox, the dashboard's
// forms and the advisory's publication): an analyst of the coordinator
// cannot have the vendor send anything, and nothing is stored.
func TestSubmitActsOnlyForThePersonsActors(t *testing.T) {
	n := authzNode(t, nil)
	ctx := context.Background()
	cora := addAnalyst(t, n, "cora", "coordinator")
	p, err := n.accounts.Authenticate(ctx, cora.Token)
	if err != nil {
		t.Fatal(err)
	}
	note := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","object":{"type":"Note","content":"x"}}`)
	_, err = n.submit(accounts.WithPrincipal(ctx, p), "vendor", note)
	if problem.Status(err) != http.StatusForbidden || !strings.Contains(problem.Message(err), "cora may act for coordinator only, not for vendor") {
		t.Errorf("cora's activity as the vendor: %v, want 403", err)
	}
	if sent, _, err := n.db.OutboxPage(ctx, "vendor", "", 10); err != nil || len(sent) != 0 {
		t.Errorf("the vendor's outbox holds %d activities after a refusal (%v)", len(sent), err)
	}
}

// TestCollectionMembersForAdmins checks the one check inside a public
// route (isAdmin): a collection's members are listed for a token with the
// admin scope, and refused to a viewer's token and to nobody.
func TestCollectionMembersForAdmins(t *testing.T) {
	n := authzNode(t, nil)
	_, vera := addViewer(t, n)
	for _, tc := range []struct {
		who  who
		want int
	}{
		{who{bearer: n.token}, http.StatusOK},
		{who{bearer: vera.Token}, http.StatusUnauthorized},
		{who{}, http.StatusUnauthorized},
	} {
		if status, _ := serveRaw(n, http.MethodGet, "/actors/vendor/followers?state=pending", tc.who); status != tc.want {
			t.Errorf("the pending followers for %q: %d, want %d", tc.who.bearer, status, tc.want)
		}
	}
	if status, _ := serveRaw(n, http.MethodGet, "/actors/vendor/followers", who{}); status != http.StatusOK {
		t.Errorf("the followers' count for anyone: %d, want 200", status)
	}
}

// TestAnalystRetriesOnlyItsActorsDeadLetters: an analyst who acts for
// one actor retries that actor's dead letters, and not another actor's
// (403, the dead letter stays); an admin retries any.
func TestAnalystRetriesOnlyItsActorsDeadLetters(t *testing.T) {
	n := authzNode(t, nil)
	ctx := context.Background()
	ana := addAnalyst(t, n, "ana", "vendor")
	dead := map[string]uint64{}
	for _, a := range []string{"vendor", "coordinator"} {
		id := n.cfg.PublicURL + "/activities/out-" + a
		if err := n.db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: a, Body: []byte(`{"id":"` + id + `"}`),
			Deliveries: []store.DeliveryTarget{{Recipient: "https://peer.example/actors/finder"}}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	due, _, err := n.db.PendingDeliveries(ctx, 0, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("pending = %d, %v", len(due), err)
	}
	for _, d := range due {
		if err := n.db.DeadLetter(ctx, d.ID, "gone"); err != nil {
			t.Fatal(err)
		}
		dead[d.Actor] = d.ID
	}
	as := who{bearer: ana.Token}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, request(http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", dead["coordinator"]), as))
	status, body := rec.Code, rec.Body.String()
	if status != http.StatusForbidden || !strings.Contains(body, "coordinator") || !strings.Contains(body, `"error"`) {
		t.Errorf("the analyst's retry of another actor's dead letter: %d %s, want 403 naming the actor", status, body)
	}
	if letters, _, err := n.db.DeadLetters(ctx, 0, 10); err != nil || len(letters) != 2 {
		t.Errorf("after the refused retry %d dead letters (%v), want both", len(letters), err)
	}
	if status, _ := serveRaw(n, http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", dead["vendor"]), as); status != http.StatusOK {
		t.Errorf("the analyst's retry of its actor's dead letter: %d", status)
	}
	if status, _ := serveRaw(n, http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", dead["coordinator"]), who{bearer: n.token}); status != http.StatusOK {
		t.Errorf("the admin's retry: %d", status)
	}
}

// TestRetryOfAPendingDelivery: asking to retry a delivery that is still in
// the queue says so, and when it is tried next (409), instead of that
// there is no such dead letter; an analyst who does not act for the
// delivery's actor is refused (403) and not told its schedule.
func TestRetryOfAPendingDelivery(t *testing.T) {
	n := authzNode(t, nil)
	ctx := context.Background()
	cora := addAnalyst(t, n, "cora", "coordinator")
	queued := pendingDelivery(t, n)
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, request(http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", queued.ID), who{bearer: cora.Token}))
	if body := rec.Body.String(); rec.Code != http.StatusForbidden || strings.Contains(body, "attempt") || !strings.Contains(body, "vendor") {
		t.Errorf("the coordinator's analyst's retry of the vendor's pending delivery: %d %s, want 403 naming the actor and not the schedule", rec.Code, body)
	}
	rec = httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, request(http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", queued.ID), who{bearer: n.token}))
	if body := rec.Body.String(); rec.Code != http.StatusConflict || !strings.Contains(body, "is pending, not a dead letter") || !strings.Contains(body, "attempt 1") {
		t.Errorf("retry of a pending delivery: %d %s, want 409 saying it is pending", rec.Code, body)
	}
	if pending, _, err := n.db.PendingDeliveries(ctx, 0, 10); err != nil || len(pending) != 1 || pending[0].ID != queued.ID {
		t.Errorf("after the refused retry: %v, %v", pending, err)
	}
}

// TestLoginThrottleThroughTheForm posts the dashboard's login form to a
// node with no trusted proxy: a client that names another address in
// each request's X-Forwarded-For or Forwarded header is still counted
// under its own, and a name written in other cases or with spaces is
// counted as the one name (three failures free, as for one spelling);
// either way the right password then waits too
// (429 with Retry-After, the login page, no session cookie).
func TestLoginThrottleThroughTheForm(t *testing.T) {
	n := authzNode(t, nil)
	enrolledViewer(t, n, "vera's long password", accounts.LoginMeta{Remote: "203.0.113.1"})
	post := func(name, password, remote string, edit func(*http.Request)) *httptest.ResponseRecorder {
		t.Helper()
		return loginFormFrom(t, n, name, password, remote, edit)
	}
	throttled := func(what string, rec *httptest.ResponseRecorder) {
		t.Helper()
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "Too many failed logins") {
			t.Errorf("%s: %d, Retry-After %q; want 429 with Retry-After and the login page saying so:\n%s", what, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
		for _, c := range rec.Result().Cookies() {
			if c.Name == dashboard.SessionCookie && c.Value != "" {
				t.Errorf("%s: a session cookie was set", what)
			}
		}
	}

	// Forged forwarding headers, a new address in each, over many names.
	for i := range 11 {
		rec := post(fmt.Sprintf("sprayed-%d", i), "not the password", "192.0.2.50:4000", func(r *http.Request) {
			if i%2 == 0 {
				r.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			} else {
				r.Header.Set("Forwarded", fmt.Sprintf("for=198.51.100.%d", i+1))
			}
		})
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong login %d: %d, want 401", i, rec.Code)
		}
	}
	throttled("the right password from the sprayed address, naming another", post("vera", "vera's long password", "192.0.2.50:4001", func(r *http.Request) {
		r.Header.Set("X-Forwarded-For", "198.51.100.200")
	}))

	// One name in other cases and with spaces, from addresses of their own.
	for i, name := range []string{"Vera", "VERA", " vera ", "vERa"} {
		if rec := post(name, "not the password", fmt.Sprintf("192.0.2.%d:4000", 60+i), nil); rec.Code != http.StatusUnauthorized {
			t.Fatalf("wrong password for %q: %d, want 401", name, rec.Code)
		}
	}
	throttled("the right password for a name with four failures", post("vera", "vera's long password", "192.0.2.70:4000", nil))
}

// lockedBuffer is a log's writer for a test to read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMistypedPasswordIsNotRecorded: a person who types their password
// into the login form's name field (and something else, or nothing, as
// the password) is refused, and the refusal, in the node's log and in
// the audit log, does not repeat what they typed as the name, since no
// user has it; a wrong password for a user's name names the user.
func TestMistypedPasswordIsNotRecorded(t *testing.T) {
	logs := &lockedBuffer{}
	n := idleNodeIn(t, Config{
		PublicURL: "http://localhost:7001", NoSync: true, Logger: zerolog.New(logs), Notice: io.Discard,
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, SecondFactorOptional: true, Argon2: testArgon2,
	})
	const secret = "vera's long password"
	enrolledViewer(t, n, secret, accounts.LoginMeta{})
	if rec := loginForm(t, n, secret, ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a password as the name: %d, want 401", rec.Code)
	}
	if rec := loginForm(t, n, "vera", "not vera's password"); rec.Code != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %d, want 401", rec.Code)
	}
	records, _, err := n.db.AuditPage(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	refusals, named := 0, false
	for _, r := range records {
		if strings.Contains(r.Reason, "long password") || strings.Contains(r.Principal, "long password") {
			t.Errorf("the audit log repeats the name field's password: %+v", r)
		}
		if r.Decision == store.DecisionRefused && strings.Contains(r.Reason, "wrong name or password") {
			refusals++
			named = named || strings.Contains(r.Reason, "vera")
		}
	}
	if refusals != 2 || !named {
		t.Errorf("the audit log has %d refused logins (naming vera: %v), want 2, one naming vera:\n%+v", refusals, named, records)
	}
	if strings.Contains(logs.String(), "long password") {
		t.Errorf("the node's log repeats the name field's password:\n%s", logs.String())
	}
}

// TestSSOLoginSurvivesAFloodOfPreLogins: each visit of /login/sso stores
// a pre-login, of which the node keeps MaxPending. One client beginning
// logins over and over, with no intent to finish them, is held to a few
// at a time (429 and Retry-After); and when many clients have filled the
// table, a new pre-login pushes out the one that expires first, not the
// newest, so that a person who began a login after the flood can finish
// it however many more begin meanwhile.
func TestSSOLoginSurvivesAFloodOfPreLogins(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	oc := m.Config()
	roles, err := accounts.ParseRoleMap("psirt=analyst")
	if err != nil {
		t.Fatal(err)
	}
	nd := idleNodeIn(t, Config{
		PublicURL: "http://localhost:7001", NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard,
		Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, Argon2: testArgon2,
		OIDC: &accounts.OIDCConfig{Issuer: oc.Issuer, ClientID: oc.ClientID, ClientSecret: oc.ClientSecret, RoleMap: roles},
	})
	get := func(path, remote string, cookies []*http.Cookie) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = remote
		for _, c := range cookies {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		nd.Handler().ServeHTTP(rec, req)
		return rec
	}
	refused := 0
	for range accounts.MaxPending {
		rec := get("/login/sso", "198.51.100.9:5000", nil)
		switch rec.Code {
		case http.StatusSeeOther:
		case http.StatusTooManyRequests:
			refused++
			if rec.Header().Get("Retry-After") == "" {
				t.Fatal("a refused pre-login without Retry-After")
			}
		default:
			t.Fatalf("GET /login/sso from the flooding client: %d", rec.Code)
		}
	}
	if refused == 0 {
		t.Errorf("one client began %d logins at the provider, none refused", accounts.MaxPending)
	}
	// Many clients fill the table; a person begins a login; more begin.
	flood := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if rec := get("/login/sso", fmt.Sprintf("10.%d.%d.1:5000", i/256, i%256), nil); rec.Code != http.StatusSeeOther {
				t.Fatalf("GET /login/sso from client %d: %d", i, rec.Code)
			}
		}
	}
	flood(0, accounts.MaxPending)
	begun := get("/login/sso?next=%2Fui%2Faccount", "192.0.2.1:4000", nil)
	if begun.Code != http.StatusSeeOther {
		t.Fatalf("GET /login/sso: %d\n%s", begun.Code, begun.Body.String())
	}
	flood(accounts.MaxPending, 10)
	// The person at the provider comes back, and is logged in.
	m.QueueUser(&mockoidc.MockUser{Subject: "s-7", PreferredUsername: "sol", Groups: []string{"psirt"}})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(begun.Header().Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || back.Path != accounts.CallbackPath {
		t.Fatalf("the provider sent the browser to %q (%v)", resp.Header.Get("Location"), err)
	}
	done := get(back.RequestURI(), "192.0.2.1:4001", begun.Result().Cookies())
	session := false
	for _, c := range done.Result().Cookies() {
		session = session || (c.Name == dashboard.SessionCookie && c.Value != "")
	}
	if done.Code != http.StatusSeeOther || done.Header().Get("Location") != "/ui/account" || !session {
		t.Errorf("the callback after the flood: %d, Location %q, session %v; want 303 to /ui/account with a session\n%s",
			done.Code, done.Header().Get("Location"), session, done.Body.String())
	}
}

// TestUnreachableProviderWarnsAtStart: a node whose OpenID provider cannot
// be reached (a typo in --oidc-issuer, the provider down) starts, and says
// so in its log at once, instead of only at the first person's login.
func TestUnreachableProviderWarnsAtStart(t *testing.T) {
	issuer := "http://" + freeAddr(t) + "/realms/psirt" // nothing listens there
	roles, err := accounts.ParseRoleMap("psirt=analyst")
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.InfoLevel)
	startNodeLogged(t, t.TempDir(), nil, Config{OIDC: &accounts.OIDCConfig{Issuer: issuer, ClientID: "vultron", ClientSecret: "s3cret", RoleMap: roles}},
		log, "vendor:Organization")
	waitFor(t, "the node's warning about its provider", func() bool { return strings.Contains(logs.String(), "single sign-on") })
	line := grepLine(logs.String(), "single sign-on")
	if !strings.Contains(line, `"level":"warn"`) || !strings.Contains(line, issuer) || !strings.Contains(line, "cannot be reached") {
		t.Errorf("the warning: %s", line)
	}
}

// grepLine returns the first line of s that holds sub.
func grepLine(s, sub string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}

// TestUnauthorizedSaysWhichToken: a request with no token is told which
// token the route takes, so that a scraper is pointed at the metrics token
// and a calendar client at the feed URL's ?token=, not only at the API
// token.
func TestUnauthorizedSaysWhichToken(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	for _, tt := range []struct{ path, want string }{
		{"/metrics", "metrics-token"},
		{"/calendar.ics", "?token="},
		{"/calendar.ics", "vultron calendar"},
		{"/api/cases", "the node's API token, or a user's: vultron token create"},
	} {
		resp, err := http.Get(n.url + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(e.Error, tt.want) {
			t.Errorf("GET %s with no token: %d %q, want 401 saying %q", tt.path, resp.StatusCode, e.Error, tt.want)
		}
	}
}
