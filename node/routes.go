package node

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// routes builds the HTTP surface.
func (n *Node) routes() http.Handler { return n.withClientIP(n.logRequests(n.router())) }

// router returns the routes of the HTTP surface.
func (n *Node) router() *mux.Router {
	r := mux.NewRouter()
	// Never redirect or rewrite a path: a signed request's (request-target)
	// must be verified against the path it was sent to. Match on the
	// escaped path so that a case id can travel in one path segment.
	r.SkipClean(true)
	r.UseEncodedPath()
	// What peers call (node/federation): the documents anyone may read,
	// and behind fromPeers what a signature decides on.
	r.HandleFunc("/.well-known/webfinger", n.federation.WebFinger).Methods(http.MethodGet)
	r.HandleFunc("/.well-known/nodeinfo", n.federation.NodeInfoLinks).Methods(http.MethodGet)
	r.HandleFunc("/nodeinfo/2.1", n.federation.NodeInfo).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}", n.federation.Actor).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/inbox", n.fromPeers(n.federation.Inbox)).Methods(http.MethodPost)
	r.HandleFunc("/activities/{id}", n.fromPeers(n.federation.Activity)).Methods(http.MethodGet)
	r.HandleFunc("/objects/{id}", n.fromPeers(n.federation.Object)).Methods(http.MethodGet)
	r.HandleFunc("/cases/{cid}", n.fromPeers(n.federation.Case)).Methods(http.MethodGet)
	r.HandleFunc("/cases/{cid}/ledger", n.fromPeers(n.federation.CaseLedger)).Methods(http.MethodGet)
	// The JSON API (node/jsonapi), with the API token only.
	r.HandleFunc("/actors/{name}/inbox", n.requireToken(n.jsonapi.Inbox)).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/outbox", n.requireToken(n.jsonapi.PostOutbox)).Methods(http.MethodPost)
	r.HandleFunc("/actors/{name}/outbox", n.requireToken(n.jsonapi.Outbox)).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/invitations", n.requireToken(n.jsonapi.Invitations)).Methods(http.MethodGet)
	r.HandleFunc("/api/actors/{name}/rotate-key", n.requireToken(n.jsonapi.RotateKey)).Methods(http.MethodPost)
	r.HandleFunc("/api/actors", n.requireToken(n.jsonapi.Actors)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases", n.requireToken(n.jsonapi.Cases)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}", n.requireToken(n.jsonapi.Case)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/ledger", n.requireToken(n.jsonapi.CaseLedger)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/resync", n.requireToken(n.jsonapi.Resync)).Methods(http.MethodPost)
	r.HandleFunc("/api/reports", n.requireToken(n.jsonapi.Reports)).Methods(http.MethodGet)
	r.HandleFunc("/api/reports/{id}", n.requireToken(n.jsonapi.Report)).Methods(http.MethodGet)
	r.HandleFunc("/api/deliveries", n.requireToken(n.jsonapi.Deliveries)).Methods(http.MethodGet)
	r.HandleFunc("/api/deliveries/{id}/retry", n.requireToken(n.jsonapi.RetryDelivery)).Methods(http.MethodPost)
	r.HandleFunc("/api/audit", n.requireToken(n.jsonapi.Audit)).Methods(http.MethodGet)
	r.HandleFunc("/api/audit/verify", n.requireToken(n.jsonapi.VerifyAudit)).Methods(http.MethodGet)
	r.HandleFunc("/api/deadlines", n.requireToken(n.jsonapi.Deadlines)).Methods(http.MethodGet)
	r.HandleFunc("/api/intel", n.requireToken(n.jsonapi.Intel)).Methods(http.MethodGet)
	r.HandleFunc("/api/policy", n.requireToken(n.jsonapi.Policy)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/policy", n.requireToken(n.jsonapi.ExplainPolicy)).Methods(http.MethodGet)
	// The embargo calendars (node/calendar): the feeds check their own
	// feed token (or the API token), the links need the API token.
	r.HandleFunc("/api/cases/{id}/embargo.ics", n.calendar.Case).Methods(http.MethodGet)
	r.HandleFunc("/calendar.ics", n.calendar.All).Methods(http.MethodGet)
	r.HandleFunc("/api/calendar", n.requireToken(n.calendar.Links)).Methods(http.MethodGet)
	r.HandleFunc("/api/calendar/token", n.requireToken(n.calendar.RotateToken)).Methods(http.MethodPost)
	// Operations (ops.go, metrics.go).
	r.HandleFunc("/metrics", n.requireMetricsToken(n.serveMetrics)).Methods(http.MethodGet)
	r.HandleFunc("/readyz", n.serveReady).Methods(http.MethodGet)
	r.PathPrefix("/schemas/").Handler(schemaServer()).Methods(http.MethodGet)
	r.Use(n.countRequests)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	// The dashboard (node/dashboard) guards its pages with its own
	// sessions.
	n.dashboard.Routes(r)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.NotFound("no such resource: %s", r.URL.Path))
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, problem.New(http.StatusMethodNotAllowed, "method %s is not allowed on %s", r.Method, r.URL.Path))
	})
	return r
}

// clientIPKey is the request context key of the client IP.
type clientIPKey struct{}

// withClientIP computes the client IP of every request once, with
// policy.Policy.ClientIP (which honours the forwarding headers of trusted
// proxies only), and carries it in the request's context: the per-IP rate
// limit, the audit records and the request log all read it from there.
func (n *Node) withClientIP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := n.policy.ClientIP(r)
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
	})
}

// clientIP returns the client IP of r that withClientIP computed.
func (n *Node) clientIP(r *http.Request) string {
	if ip, ok := r.Context().Value(clientIPKey{}).(string); ok {
		return ip
	}
	return n.policy.ClientIP(r)
}

// fromPeers guards a route peers call (inbox POSTs, signed GETs): a
// request without the node's API token is first held to the per-IP rate
// limit, before its body is read or its signature looked at. Its
// refusals are recorded in the audit log.
func (n *Node) fromPeers(h http.HandlerFunc) http.HandlerFunc {
	return n.auditRefusals(store.AuditInbound, func(w http.ResponseWriter, r *http.Request) {
		if !n.token.check(r) {
			if err := n.policy.AdmitIP(n.clientIP(r)); err != nil {
				n.federationRefused(r, "federation", err)
				problem.Write(w, err)
				return
			}
		}
		h(w, r)
	})
}

// requireToken lets a request through only with the node's API token; the
// metrics token gets 403. A request without it, and a refused POST with it,
// are recorded in the audit log.
func (n *Node) requireToken(h http.HandlerFunc) http.HandlerFunc {
	return n.auditRefusals(store.AuditAdmin, func(w http.ResponseWriter, r *http.Request) {
		if !n.token.check(r) {
			if n.metricsToken.check(r) {
				problem.Write(w, problem.Forbidden("the metrics token reads GET /metrics and nothing else; this endpoint needs the node's API token"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="vultron"`)
			problem.Write(w, problem.Unauthorized("this endpoint needs the node's API token as Authorization: Bearer <token>"))
			return
		}
		h(w, r)
	})
}

// federationRefused logs a refused federation request and counts it in the
// metrics.
func (n *Node) federationRefused(r *http.Request, where string, err error) {
	n.metrics.inboxRefused(problem.Status(err))
	n.refused(r, where, err)
}

// refused logs a refused request with its full error chain; the client saw
// only the safe sentence.
func (n *Node) refused(r *http.Request, where string, err error) {
	ev := n.log.Warn()
	if problem.Status(err) >= 500 {
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
		n.log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.Status()).
			Int("bytes", rec.bytes).Dur("duration", time.Since(start)).Str("remote", n.clientIP(r)).Str("peer", r.RemoteAddr).Msg("request")
	})
}
