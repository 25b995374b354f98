package node

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// routes builds the HTTP surface.
func (n *Node) routes() http.Handler { return n.withClientIP(n.logRequests(n.router())) }

// router returns the routes of the HTTP surface, each behind the guard
// that says who may call it (authz.go).
func (n *Node) router() *mux.Router {
	r := mux.NewRouter()
	n.guards = map[string]guard{}
	// Never redirect or rewrite a path: a signed request's (request-target)
	// must be verified against the path it was sent to. Match on the
	// escaped path so that a case id can travel in one path segment.
	r.SkipClean(true)
	r.UseEncodedPath()
	get, post, del := http.MethodGet, http.MethodPost, http.MethodDelete
	read, act, admin := apiNeeds(accounts.ScopeRead), apiActsAs("name"), apiNeeds(accounts.ScopeAdmin)
	route := func(method, path string, g guard, h http.HandlerFunc) { n.handle(r, method, path, false, g, h) }
	// What peers call (node/federation): the documents anyone may read,
	// and behind fromPeers what a signature decides on (or a token that
	// reads).
	route(get, "/.well-known/webfinger", public(), n.federation.WebFinger)
	route(get, "/.well-known/nodeinfo", public(), n.federation.NodeInfoLinks)
	route(get, "/nodeinfo/2.1", public(), n.federation.NodeInfo)
	route(get, "/actors/{name}", public(), n.federation.Actor)
	route(post, "/actors/{name}/inbox", peers(), n.fromPeers(n.federation.Inbox))
	// The collections' counts are public, their members the admins'
	// (isAdmin: a token with the admin scope).
	route(get, "/actors/{name}/followers", optionalToken(), n.federation.Followers)
	route(get, "/actors/{name}/following", optionalToken(), n.federation.Following)
	route(get, "/activities/{id}", peers(), n.fromPeers(n.federation.Activity))
	route(get, "/objects/{id}", peers(), n.fromPeers(n.federation.Object))
	route(get, "/cases/{cid}", peers(), n.fromPeers(n.federation.Case))
	route(get, "/cases/{cid}/ledger", peers(), n.fromPeers(n.federation.CaseLedger))
	// The JSON API (node/jsonapi), with a token of the scope each needs.
	route(get, "/actors/{name}/inbox", read, n.jsonapi.Inbox)
	route(post, "/actors/{name}/outbox", act, n.jsonapi.PostOutbox)
	route(get, "/actors/{name}/outbox", read, n.jsonapi.Outbox)
	route(get, "/actors/{name}/invitations", read, n.jsonapi.Invitations)
	route(post, "/api/actors/{name}/rotate-key", admin, n.jsonapi.RotateKey)
	route(get, "/api/actors", read, n.jsonapi.Actors)
	route(get, "/api/cases", read, n.jsonapi.Cases)
	route(get, "/api/cases/{id}", read, n.jsonapi.Case)
	route(get, "/api/cases/{id}/ledger", read, n.jsonapi.CaseLedger)
	route(post, "/api/cases/{id}/resync", apiNeeds(accounts.ScopeAct), n.jsonapi.Resync)
	route(get, "/api/reports", read, n.jsonapi.Reports)
	route(get, "/api/reports/{id}", read, n.jsonapi.Report)
	route(get, "/api/deliveries", read, n.jsonapi.Deliveries)
	route(post, "/api/deliveries/{id}/retry", apiNeeds(accounts.ScopeAct), n.jsonapi.RetryDelivery)
	route(get, "/api/deliveries/damaged", admin, n.jsonapi.DamagedDeliveries)
	route(del, "/api/deliveries/damaged/{id}", admin, n.jsonapi.DiscardDamagedDelivery)
	// Admins', as their configuration is: a URL may carry the
	// receiver's credential in its path, which the list shows.
	route(get, "/api/webhooks", admin, n.jsonapi.Webhooks)
	route(post, "/api/webhooks/{id}/resume", admin, n.jsonapi.ResumeWebhook)
	route(get, "/api/audit", admin, n.jsonapi.Audit)
	route(get, "/api/audit/verify", admin, n.jsonapi.VerifyAudit)
	route(get, "/api/backup", admin, n.jsonapi.Backup)
	route(get, "/api/deadlines", read, n.jsonapi.Deadlines)
	route(get, "/api/intel", read, n.jsonapi.Intel)
	route(get, "/api/policy", read, n.jsonapi.Policy)
	route(get, "/api/cases/{id}/policy", read, n.jsonapi.ExplainPolicy)
	// People (node/jsonapi/users.go): who asks, the users (admins), the
	// tokens (a user's own; an admin's of anyone).
	route(get, "/api/whoami", read, n.jsonapi.WhoAmI)
	route(get, "/api/users", admin, n.jsonapi.Users)
	route(post, "/api/users", admin, n.jsonapi.AddUser)
	route(get, "/api/users/{user}", admin, n.jsonapi.User)
	route(del, "/api/users/{user}", admin, n.jsonapi.RemoveUser)
	route(post, "/api/users/{user}/role", admin, n.jsonapi.SetRole)
	route(post, "/api/users/{user}/disable", admin, n.jsonapi.DisableUser)
	route(post, "/api/users/{user}/enable", admin, n.jsonapi.EnableUser)
	route(post, "/api/users/{user}/reset-2fa", admin, n.jsonapi.Reset2FA)
	route(post, "/api/users/{user}/enroll", admin, n.jsonapi.Enroll)
	route(get, "/api/users/{user}/sessions", admin, n.jsonapi.UserSessions)
	route(del, "/api/users/{user}/sessions/{handle}", admin, n.jsonapi.RevokeSession)
	route(get, "/api/tokens", read, n.jsonapi.Tokens)
	route(post, "/api/tokens", read, n.jsonapi.CreateToken)
	route(del, "/api/tokens/{id}", read, n.jsonapi.RevokeToken)
	// The published advisories and the CSAF provider (node/publication):
	// anyone reads them; drafting reads a case, publishing acts as the
	// case's owner, which the person must act for (submit).
	route(get, "/advisories", public(), n.publication.List)
	route(get, "/advisories/{tracking}", public(), n.publication.Page)
	route(get, "/advisories/{tracking}/{file}", public(), n.publication.Document)
	route(get, "/.well-known/csaf/provider-metadata.json", public(), n.publication.ProviderMetadata)
	route(get, "/.well-known/csaf/white/feed-tlp-white.json", public(), n.publication.Feed)
	route(get, "/.well-known/csaf/white/index.txt", public(), n.publication.Index)
	route(get, "/.well-known/csaf/white/changes.csv", public(), n.publication.Index)
	route(get, "/.well-known/csaf/white/{year:[0-9]{4}}/{file}", public(), n.publication.WellKnownFile)
	route(get, "/api/cases/{id}/advisory/draft", read, n.publication.Draft)
	route(post, "/api/cases/{id}/advisory/publish", apiNeeds(accounts.ScopeAct), n.publication.Publish)
	// The embargo calendars (node/calendar): the feeds take the feed
	// token in the URL too; the links and the rotation need a token.
	route(get, "/api/cases/{id}/embargo.ics", feedNeeds(), n.calendar.Case)
	route(get, "/calendar.ics", feedNeeds(), n.calendar.All)
	route(get, "/api/calendar", read, n.calendar.Links)
	route(post, "/api/calendar/token", admin, n.calendar.RotateToken)
	// Operations (ops.go, metrics.go).
	route(get, "/metrics", apiNeeds(accounts.ScopeMetrics), n.serveMetrics)
	route(get, "/readyz", public(), n.serveReady)
	n.handle(r, get, "/schemas/", true, public(), schemaServer())
	r.Use(n.countRequests)
	route(get, "/healthz", public(), func(w http.ResponseWriter, _ *http.Request) {
		problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	// The dashboard (node/dashboard): its pages need a logged-in session,
	// its login steps are public and check their own pending session.
	for _, dr := range n.dashboard.Routes() {
		n.handle(r, dr.Method, dr.Path, dr.Prefix, uiNeeds(dr.Perm, dr.Audit), dr.Handler)
	}
	// What no route takes is counted too, as route "unmatched". A path of
	// the dashboard's is a browser's: it gets a page that says so.
	r.NotFoundHandler = n.countRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
			n.dashboard.ErrorPage(w, http.StatusNotFound, "The dashboard has no page at this address.")
			return
		}
		problem.Write(w, problem.NotFound("no such resource: %s", r.URL.Path))
	}))
	router := r
	r.MethodNotAllowedHandler = n.countRequests(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		allow := allowedMethods(router, r)
		w.Header().Set("Allow", allow)
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method %s is not allowed on %s: it takes %s", r.Method, r.URL.Path, allow))
	}))
	return r
}

// allowedMethods lists, as the Allow header of a 405 does, the methods
// router takes on r's path.
func allowedMethods(router *mux.Router, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if router.Match(probe, &match) && match.MatchErr == nil {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

// withClientIP computes the client IP of every request once, with
// policy.Policy.ClientIP (which honours the forwarding headers of trusted
// proxies only), and carries it in the request's context (reqInfo): the
// per-IP rate limit, the audit records and the request log all read it
// from there.
func (n *Node) withClientIP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := &reqInfo{ip: n.policy.ClientIP(r)}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri)))
	})
}

// clientIP returns the client IP of r that withClientIP computed.
func (n *Node) clientIP(r *http.Request) string {
	if ri, ok := r.Context().Value(reqInfoKey{}).(*reqInfo); ok {
		return ri.ip
	}
	return n.policy.ClientIP(r)
}

// fromPeers guards a route peers call (inbox POSTs, signed GETs): a
// request without a token that reads is first held to the per-IP rate
// limit, before its body is read or its signature looked at. Its
// refusals are recorded in the audit log (its guard, peers()).
func (n *Node) fromPeers(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !n.reads(r) {
			if err := n.policy.AdmitIP(n.clientIP(r)); err != nil {
				n.federationRefused(r, "federation", err)
				problem.Write(w, err)
				return
			}
		}
		h(w, r)
	}
}

// reads reports whether r's principal holds the read scope: a token
// reads what the federation serves to parties.
func (n *Node) reads(r *http.Request) bool {
	p, ok := accounts.PrincipalFrom(r.Context())
	return ok && p.Can(accounts.ScopeRead)
}

// isAdmin reports whether a request's principal holds the admin scope.
// Every check of an admin's right that is not a whole route's permission
// (the members of the followers and following collections) asks here.
func (n *Node) isAdmin(r *http.Request) bool {
	p, ok := accounts.PrincipalFrom(r.Context())
	return ok && p.Can(accounts.ScopeAdmin)
}

// federationRefused logs a refused federation request and counts it in the
// metrics.
func (n *Node) federationRefused(r *http.Request, where string, err error) {
	n.metrics.inboxRefused(problem.Status(err))
	n.refused(r, where, err)
}

// withheld logs a federation GET refused for who signed it but answered
// as for what the node does not hold (so that the answer does not tell
// what the node holds), and has it audited as the refusal it is.
func (n *Node) withheld(r *http.Request, err error) {
	ri := info(r)
	ri.note = problem.Clip(problem.Message(err), 300)
	ri.refusedStatus = problem.Status(err)
	n.refused(r, "federation", err)
}

// loginRefused logs a refused login step and makes its whole error the
// reason of the request's audit record: the page says "wrong name or
// password", the log and the audit log say which (never the password or
// the code, which accounts' errors do not quote).
func (n *Node) loginRefused(r *http.Request, err error) {
	info(r).note = problem.Clip(err.Error(), 300)
	n.refused(r, "login", err)
}

// formRefused logs a dashboard form the node refused, whose answer is a
// redirect to a page that says why, and has it audited as the refusal it
// is, with its sentence as the reason.
func (n *Node) formRefused(r *http.Request, err error) {
	ri := info(r)
	ri.note = problem.Clip(problem.Message(err), 300)
	ri.refusedStatus = problem.Status(err)
	n.refused(r, "dashboard", err)
}

// denied logs a dashboard form refused for who sent it and makes its
// sentence the reason of the request's audit record.
func (n *Node) denied(r *http.Request, err error) {
	info(r).note = problem.Clip(problem.Message(err), 300)
	n.refused(r, "dashboard", err)
}

// refused logs a refused request with its full error chain; the client saw
// only the safe sentence.
func (n *Node) refused(r *http.Request, where string, err error) {
	ev := n.log.Warn()
	switch {
	case errors.Is(err, store.ErrUnavailable):
		// The store logs when it stops taking writes and when it takes
		// them again; a line per request refused meanwhile would be a
		// flood of the same cause.
		ev = n.log.Debug()
		info(r).storeUnavailable = true
	case problem.Status(err) >= 500:
		ev = n.log.Error()
	}
	ev.Str("where", where).Str("path", r.URL.Path).Str("remote", n.clientIP(r)).Int("status", problem.Status(err)).Err(err).Msg("request refused")
}

// logRequests writes one log line per request: method, path, status,
// bytes and duration; never a body or a signature.
func (n *Node) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		ev := n.log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.Status()).
			Int("bytes", rec.bytes).Dur("duration", time.Since(start)).Str("remote", n.clientIP(r)).Str("peer", r.RemoteAddr)
		if p := info(r).principal; p != "" {
			ev = ev.Str("principal", p)
		}
		ev.Msg("request")
	})
}
