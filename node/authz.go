package node

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/node/dashboard"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// One decision point for who may call what. Every route is registered
// with handle and a guard: the permission it needs (accounts.Permission:
// a scope, and for a route that acts as one of the node's actors the
// route variable naming it) and where its principal's credential is read.
// The guard resolves the principal once, decides with
// accounts.Principal.Allow, and carries the principal (and a dashboard
// request's session) in the request's context for the handler. The
// routes and their guards are kept in Node.guards, which the table test
// of every route × role × scope walks with the router
// (TestEveryRouteDeclaresItsPermission, TestRouteTable): a route without a
// guard fails it.

// source is where a route reads its principal's credential.
type source uint8

const (
	// fromNone: a public route; no credential is read.
	fromNone source = iota
	// fromBearer: the JSON API; "Authorization: Bearer TOKEN".
	fromBearer
	// fromPeerBearer: what peers call; a signature decides, and a bearer
	// token, when one is given, must be valid.
	fromPeerBearer
	// fromFeed: the calendar feeds; a bearer token, or ?token= with the
	// feed token or a personal token, since calendar clients cannot send
	// a header.
	fromFeed
	// fromSession: the dashboard; its session cookie.
	fromSession
)

// guard is what a route declares: the permission it needs, where its
// principal comes from, and the audit kind of its refusals ("" none).
type guard struct {
	perm  accounts.Permission
	from  source
	audit string
}

// Guards of the kinds of routes.
func public() guard { return guard{from: fromNone} }
func peers() guard  { return guard{from: fromPeerBearer, audit: store.AuditInbound} }
func apiNeeds(s accounts.Scope) guard {
	return guard{perm: accounts.Permission{Scope: s}, from: fromBearer, audit: store.AuditAdmin}
}
func apiActsAs(actorVar string) guard {
	return guard{perm: accounts.Permission{Scope: accounts.ScopeAct, ActorVar: actorVar}, from: fromBearer, audit: store.AuditAdmin}
}

// optionalToken is a public route that reads a bearer token when one is
// given (which must then be valid), for a handler that shows more to some
// principals (isAdmin).
func optionalToken() guard { return guard{from: fromPeerBearer, audit: store.AuditAdmin} }
func feedNeeds() guard {
	return guard{perm: accounts.Permission{Scope: accounts.ScopeCalendar}, from: fromFeed, audit: store.AuditAdmin}
}
func uiNeeds(p accounts.Permission, audit bool) guard {
	g := guard{perm: p, from: fromSession}
	if audit || !p.Public() {
		g.audit = store.AuditAccount
	}
	return g
}

// handle registers h for method and path (a prefix when prefix is set)
// behind guard g, and records g for the route table.
func (n *Node) handle(r *mux.Router, method, path string, prefix bool, g guard, h http.Handler) {
	n.guards[method+" "+path] = g
	var route *mux.Route
	if prefix {
		route = r.PathPrefix(path)
	} else {
		route = r.Path(path)
	}
	methods := []string{method}
	if method == http.MethodGet && g.from == fromNone {
		// A public document answers HEAD as GET (net/http drops the
		// body): curl -I, monitoring probes, caches that revalidate.
		methods = append(methods, http.MethodHead)
		n.guards[http.MethodHead+" "+path] = g
	}
	route.Handler(n.guarded(g, h.ServeHTTP)).Methods(methods...)
}

// reqInfo is what the node learns of a request while it is served, for
// its audit record and its log line.
type reqInfo struct {
	ip        string
	principal string // the principal's label, once resolved
	note      string // why a refusal the answer's body does not say was made
	// storeUnavailable says that the request was refused because the
	// store could not serve (store.ErrUnavailable): the node's own
	// failure, not a decision about the request, and not audited.
	storeUnavailable bool
	// refusedStatus is the status of a refusal the answer does not carry:
	// a dashboard form refused is answered with a redirect to the page
	// that shows why (formRefused), and audited as this status.
	refusedStatus int
}

type reqInfoKey struct{}

// info returns the request's reqInfo (a blank one outside the node's
// handler, in tests that call a handler directly).
func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// metricsPrincipal is the metrics token's principal: it reads /metrics
// and nothing else.
var metricsScopes = accounts.ScopeSet{accounts.ScopeMetrics}

// feedScopes are the calendar feed token's.
var feedScopes = accounts.ScopeSet{accounts.ScopeCalendar}

// bearerPrincipal returns the principal of a bearer token: the metrics
// token, or a user's token.
func (n *Node) bearerPrincipal(ctx context.Context, tok string) (accounts.Principal, error) {
	if n.metricsToken.matches(tok) {
		return accounts.Principal{Name: "metrics token", Scopes: metricsScopes, Via: "token"}, nil
	}
	return n.accounts.Authenticate(ctx, tok)
}

// guarded wraps h in g's decision.
func (n *Node) guarded(g guard, h http.HandlerFunc) http.HandlerFunc {
	decide := func(w http.ResponseWriter, r *http.Request) {
		if g.from == fromSession {
			n.decideSession(g, h, w, r)
			return
		}
		var (
			p   accounts.Principal
			ok  bool
			err error
		)
		switch tok := bearer(r); {
		case g.from == fromNone:
		case tok != "":
			p, err = n.bearerPrincipal(r.Context(), tok)
			ok = err == nil
		case g.from == fromFeed && r.URL.Query().Get("token") != "":
			p, ok, err = n.feedPrincipal(r)
		}
		if err != nil {
			if problem.Status(err) == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vultron", error="invalid_token"`)
			}
			problem.Write(w, err)
			return
		}
		if ok {
			info(r).principal = p.Label()
			r = r.WithContext(accounts.WithPrincipal(r.Context(), p))
		}
		if !g.perm.Public() {
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vultron"`)
				problem.Write(w, problem.Unauthorized("%s needs a token with the %s scope %s", r.URL.Path, g.perm.Scope, whichToken(g)))
				return
			}
			if err := p.Allow(g.perm, mux.Vars(r)[g.perm.ActorVar]); err != nil {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="vultron", error="insufficient_scope", scope=%q`, g.perm.Scope))
				problem.Write(w, err)
				return
			}
		}
		h(w, r)
	}
	if g.audit == "" {
		return decide
	}
	return n.auditRefusals(g.audit, decide)
}

// whichToken says, in a 401 to a request without a token, how to give
// one and which tokens the route takes: besides the API token and users'
// tokens, the metrics token for /metrics and the feed token in ?token=
// for the calendar feeds, which scrapers and calendar clients hold.
func whichToken(g guard) string {
	switch {
	case g.perm.Scope == accounts.ScopeMetrics:
		return "as Authorization: Bearer <token> (the node's metrics token, in its data directory's metrics-token file unless --metrics-token-file names another; the node's API token; or a user's: vultron token create)"
	case g.from == fromFeed:
		return "as ?token=<token> or Authorization: Bearer <token> (the feed URLs vultron calendar prints carry the feed token; or the node's API token, or a user's: vultron token create)"
	}
	return "as Authorization: Bearer <token> (the node's API token, or a user's: vultron token create)"
}

// feedPrincipal reads the ?token= of a calendar feed: the node's feed
// token, or a user's token (one with the calendar scope, made for
// calendar clients).
func (n *Node) feedPrincipal(r *http.Request) (accounts.Principal, bool, error) {
	tok := r.URL.Query().Get("token")
	ok, err := n.calendar.FeedToken(r.Context(), tok)
	if err != nil {
		return accounts.Principal{}, false, err
	}
	if ok {
		return accounts.Principal{Name: "calendar feed token", Scopes: feedScopes, Via: "token"}, true, nil
	}
	if !strings.HasPrefix(tok, "vultron_") {
		return accounts.Principal{}, false, problem.Unauthorized("the feed token in the URL is not this node's (rotated, or never issued)")
	}
	p, err := n.accounts.Authenticate(r.Context(), tok)
	return p, err == nil, err
}

// decideSession is the guard of the dashboard's routes: the session
// cookie names a session, which grants its user's role once its login is
// complete. A route that needs a principal answers a browser without a
// complete session as the dashboard does (the login page for a page, 401
// for a form), and one whose role falls short with 403.
func (n *Node) decideSession(g guard, h http.HandlerFunc, w http.ResponseWriter, r *http.Request) {
	var (
		cur    accounts.CurrentSession
		hasSes bool
		why    string
	)
	if c, err := r.Cookie(dashboard.SessionCookie); err == nil && c.Value != "" {
		st, err := n.accounts.Session(r.Context(), c.Value)
		switch {
		case err == nil:
			cur, hasSes = accounts.CurrentSession{ID: c.Value, State: st}, true
		case problem.Status(err) >= 500:
			n.refused(r, "dashboard session", err)
			if problem.RetryAfter(err) > 0 {
				// The store cannot serve now (or the node is stopping):
				// 503, and when to try again.
				problem.SetRetryAfter(w.Header(), err)
				n.dashboard.ErrorPage(w, http.StatusServiceUnavailable, "The session could not be read now; try again in a moment.")
				return
			}
			n.dashboard.ErrorPage(w, http.StatusInternalServerError, "The session could not be read; try again.")
			return
		default:
			why = problem.Message(err)
		}
	}
	full := hasSes && cur.State.Stage == accounts.StageFull
	if hasSes {
		r = r.WithContext(accounts.WithSession(r.Context(), cur))
	}
	if full {
		p := cur.State.Principal
		info(r).principal = p.Label()
		r = r.WithContext(accounts.WithPrincipal(r.Context(), p))
	}
	if !g.perm.Public() {
		if !full {
			info(r).note = "no logged-in session"
			if why != "" {
				info(r).note += ": " + why
			}
			n.dashboard.Unauthenticated(w, r)
			return
		}
		if err := cur.State.Principal.Allow(g.perm, mux.Vars(r)[g.perm.ActorVar]); err != nil {
			info(r).note = problem.Message(err)
			n.dashboard.ErrorPage(w, http.StatusForbidden, problem.Message(err)+".")
			return
		}
	}
	h(w, r)
}
