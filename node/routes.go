package node

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/inbox"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// newID returns a fresh IRI on this node under kind ("activities",
// "objects"): 128 random bits, base32 without padding, lower case.
func (n *Node) newID(kind string) string {
	// Six bytes of milliseconds, then ten random ones (80 bits), in an
	// encoding that sorts as the bytes do: the ids a node mints one after
	// another land next to each other in the store's indexes, so a commit
	// rewrites one index page for them instead of one page each.
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.cfg.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		// crypto/rand does not fail on supported platforms; an id that is
		// not random would be worse than stopping.
		panic("node: crypto/rand: " + err.Error())
	}
	return n.cfg.PublicURL + "/" + kind + "/" + strings.ToLower(base32.HexEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

// buildPipelines creates the inbox and outbox pipelines and the delivery
// workers.
func (n *Node) buildPipelines() error {
	engine := cases.NewEngine(cases.Config{
		Now:            n.cfg.Now,
		PublicURL:      n.cfg.PublicURL,
		NewID:          n.newID,
		DefaultEmbargo: n.cfg.DefaultEmbargo,
		MaxEmbargo:     n.cfg.MaxEmbargo,
		Roles:          n.roles,
		Provision:      n.provisionCaseActor,
		Provisioned:    n.provisionedCaseActor,
		IsLocal:        n.isLocal,
		// Every node's inbox takes an activity of the largest size and the
		// margin its announcement needs (see inboxLimit).
		MaxAnnouncement: int(n.inboxLimit()),
		Sync:            n.cfg.ReplicaSync,
	})
	n.engine = engine
	syncer, err := cases.NewSyncer(cases.SyncerConfig{Store: n.db, Engine: engine, Fetch: ledgerFetcher{n: n}, Now: n.cfg.Now, Logger: n.log})
	if err != nil {
		return err
	}
	local := func(name string) (actor.Local, bool) { return n.Local(name) }

	inboxes := outbox.NewActorInboxes(n.policy.FetchFunc(n.fetcher.FetchDocument), 0, n.cfg.Now)
	for _, l := range n.locals {
		if err := inboxes.AddLocal(l.ID, l.Inbox); err != nil {
			return err
		}
	}
	policy := n.cfg.Retry
	if policy == (outbox.RetryPolicy{}) {
		policy = outbox.DefaultRetryPolicy()
	}
	client := actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: n.cfg.AllowPrivatePeers, Timeout: 30 * time.Second, MaxRedirects: -1})
	client.Transport = n.policy.Transport(client.Transport)
	n.deliverer, err = outbox.NewDeliverer(outbox.DelivererConfig{
		Queue:   n.db,
		Keys:    signingKeys{n: n},
		Inboxes: inboxes,
		Client:  client,
		Policy:  policy,
		Workers: n.cfg.DeliveryWorkers,
		// n.inbox is built below, before any service runs.
		Busy:    func() bool { return n.inbox != nil && n.inbox.Busy() },
		Logger:  n.log,
		Now:     n.cfg.Now,
		Version: n.cfg.Version,
	})
	if err != nil {
		return err
	}
	n.services = append(n.services,
		service{name: "delivery", run: n.deliverer.Run},
		service{name: "dedup-prune", run: n.pruneDedup},
		service{name: "audit", run: n.audit.run},
		service{name: "replica-sync", run: func(ctx context.Context) error { syncer.Run(ctx); return nil }})

	n.inbox, err = inbox.New(inbox.Config{
		Store:    n.db,
		Engine:   engine,
		Verifier: n.verifier,
		Local:    local,
		IsLocal:  n.isLocal,
		MaxBody:  n.inboxLimit(),
		NewID:    func() string { return n.newID("activities") },
		Queued:   n.deliverer.Wake,
		Now:      n.cfg.Now,
		Logger:   n.log,
		ClientIP: n.clientIP,
		// A peer's announced key rotation refreshes its cached keys.
		ActorUpdated: n.refreshActorKeys,
	})
	if err != nil {
		return err
	}
	n.submitter, err = outbox.NewSubmitter(outbox.SubmitConfig{
		Store:      n.db,
		Engine:     engine,
		Local:      local,
		NewID:      n.newID,
		Queued:     n.deliverer.Wake,
		FetchActor: n.fetchActor,
		// A copy that may be behind is brought to the Case Actor's tail,
		// within a few seconds, before an action it refused is refused.
		CatchUp: func(ctx context.Context, caseID string) (bool, error) {
			ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return syncer.CatchUp(ctx, caseID)
		},
		// A recipient is resolved as its delivery will resolve it, and the
		// delivery then finds its inbox in the cache.
		ResolveRecipient: func(ctx context.Context, iri string) error {
			if n.isLocal(iri) {
				name := strings.TrimPrefix(iri, n.cfg.PublicURL+"/actors/")
				if _, ok := n.Local(name); !ok {
					return outbox.Permanent(noLocalActor(name))
				}
				return nil
			}
			_, err := inboxes.Inbox(ctx, iri)
			return err
		},
		Now:    n.cfg.Now,
		Logger: n.log,
	})
	return err
}

// noLocalActor is the error of a recipient on this node that is not one of
// its actors: what fetching its document would answer, 404.
type noLocalActor string

func (e noLocalActor) Error() string   { return fmt.Sprintf("this node has no actor %q", string(e)) }
func (e noLocalActor) StatusCode() int { return http.StatusNotFound }

// fetchActor fetches an actor's document (with a signed GET through the
// SSRF-safe client) and returns the part of it a message carries inline.
func (n *Node) fetchActor(ctx context.Context, iri string) (*vocab.Actor, error) {
	var body []byte
	if l, ok := n.localByID(iri); ok {
		doc, err := l.Document()
		if err != nil {
			return nil, err
		}
		body = doc
	} else {
		if err := n.policy.CheckURL(iri); err != nil {
			return nil, err
		}
		var err error
		if body, err = n.fetcher.FetchDocument(ctx, iri); err != nil {
			return nil, err
		}
	}
	doc, err := vocab.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("the document at %s is not ActivityStreams: %w", iri, err)
	}
	a, ok := doc.Object.(*vocab.Actor)
	if !ok {
		return nil, fmt.Errorf("%s is a %s, not an actor", iri, doc.Object.Common().Type)
	}
	out := &vocab.Actor{}
	out.ID, out.Type, out.Name, out.PreferredUsername = a.ID, a.Type, a.Name, a.PreferredUsername
	return out, nil
}

// localByID returns the configured local actor with the given id.
func (n *Node) localByID(id string) (actor.Local, bool) {
	n.localsMu.RLock()
	defer n.localsMu.RUnlock()
	for _, l := range n.locals {
		if l.ID == id {
			return l, true
		}
	}
	return actor.Local{}, false
}

// roles returns the CVD roles a configured local actor takes in the cases
// it opens.
func (n *Node) roles(name string) cvdstate.RoleSet {
	for _, ac := range n.cfg.Actors {
		if ac.Name == name {
			if ac.Roles != 0 {
				return ac.Roles
			}
			return DefaultRoles(ac.Type)
		}
	}
	return cvdstate.Observer
}

// isLocal reports whether an actor id is one of this node's actors.
func (n *Node) isLocal(id string) bool {
	return strings.HasPrefix(id, n.cfg.PublicURL+"/actors/")
}

// provisionCaseActor creates (or loads) the key of a new Case Actor and
// returns its store record; the engine stores the record in the
// transaction that opens the case.
func (n *Node) provisionCaseActor(name string) (store.LocalActor, error) {
	key, _, err := actor.LoadOrCreateKey(n.keyDir, name)
	if err != nil {
		return store.LocalActor{}, err
	}
	return n.caseActorRecord(name, key)
}

// provisionedCaseActor returns the record of a Case Actor whose key
// provisionCaseActor made; it never makes a key.
func (n *Node) provisionedCaseActor(name string) (store.LocalActor, bool, error) {
	key, found, err := actor.LoadKey(n.keyDir, name)
	if err != nil || !found {
		return store.LocalActor{}, false, err
	}
	la, err := n.caseActorRecord(name, key)
	return la, err == nil, err
}

// caseActorRecord is the store's record of Case Actor name with key.
func (n *Node) caseActorRecord(name string, key *rsa.PrivateKey) (store.LocalActor, error) {
	l, err := actor.NewLocal(n.cfg.PublicURL, name, actor.Service, key)
	if err != nil {
		return store.LocalActor{}, err
	}
	pem, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		return store.LocalActor{}, err
	}
	return store.LocalActor{Name: name, Type: string(actor.Service), KeyID: l.KeyID, PublicKeyPEM: pem, CreatedAt: n.cfg.Now().UTC()}, nil
}

// inboxLimit is the largest body the inbox takes: the largest activity
// (MaxInboxBytes) and the margin a Case Actor's announcement of such an
// activity needs, so that whatever a Case Actor records reaches every
// participant whose node has the same limit.
func (n *Node) inboxLimit() int64 { return n.cfg.MaxInboxBytes + cases.AnnouncementMargin }

// signingKeys gives the delivery workers the keys of the local actors.
type signingKeys struct{ n *Node }

func (k signingKeys) SigningKey(name string) (string, *rsa.PrivateKey, bool) {
	l, ok := k.n.Local(name)
	if !ok {
		return "", nil, false
	}
	return l.KeyID, l.Key, true
}

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
	r.HandleFunc("/.well-known/webfinger", n.serveWebFinger).Methods(http.MethodGet)
	r.HandleFunc("/.well-known/nodeinfo", n.serveNodeInfoLinks).Methods(http.MethodGet)
	r.HandleFunc("/nodeinfo/2.1", n.serveNodeInfo).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}", n.serveActor).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/inbox", n.federation(n.postInbox)).Methods(http.MethodPost)
	r.HandleFunc("/actors/{name}/inbox", n.requireToken(n.getInbox)).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/outbox", n.requireToken(n.postOutbox)).Methods(http.MethodPost)
	r.HandleFunc("/actors/{name}/outbox", n.requireToken(n.getOutbox)).Methods(http.MethodGet)
	r.HandleFunc("/actors/{name}/invitations", n.requireToken(n.listInvitations)).Methods(http.MethodGet)
	r.HandleFunc("/api/actors/{name}/rotate-key", n.requireToken(n.rotateActorKey)).Methods(http.MethodPost)
	r.HandleFunc("/api/actors", n.requireToken(n.listActors)).Methods(http.MethodGet)
	r.HandleFunc("/activities/{id}", n.federation(n.getActivity)).Methods(http.MethodGet)
	r.HandleFunc("/objects/{id}", n.federation(n.getObject)).Methods(http.MethodGet)
	r.HandleFunc("/cases/{cid}", n.federation(n.getCase)).Methods(http.MethodGet)
	r.HandleFunc("/cases/{cid}/ledger", n.federation(n.getCaseLedgerPage)).Methods(http.MethodGet)
	r.HandleFunc("/api/deliveries", n.requireToken(n.listDeliveries)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases", n.requireToken(n.listCases)).Methods(http.MethodGet)
	r.HandleFunc("/api/reports", n.requireToken(n.listReports)).Methods(http.MethodGet)
	r.HandleFunc("/api/reports/{id}", n.requireToken(n.showReport)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}", n.requireToken(n.showCase)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/ledger", n.requireToken(n.caseLedger)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/resync", n.requireToken(n.resyncCase)).Methods(http.MethodPost)
	r.HandleFunc("/api/cases/{id}/embargo.ics", n.serveCaseCalendar).Methods(http.MethodGet)
	r.HandleFunc("/calendar.ics", n.serveCalendar).Methods(http.MethodGet)
	r.HandleFunc("/api/calendar", n.requireToken(n.calendarLinks)).Methods(http.MethodGet)
	r.HandleFunc("/api/calendar/token", n.requireToken(n.rotateCalendarToken)).Methods(http.MethodPost)
	r.HandleFunc("/api/deliveries/{id}/retry", n.requireToken(n.retryDelivery)).Methods(http.MethodPost)
	r.HandleFunc("/api/audit", n.requireToken(n.listAudit)).Methods(http.MethodGet)
	r.HandleFunc("/api/deadlines", n.requireToken(n.listDeadlines)).Methods(http.MethodGet)
	r.HandleFunc("/api/intel", n.requireToken(n.listIntel)).Methods(http.MethodGet)
	r.HandleFunc("/api/policy", n.requireToken(n.showPolicy)).Methods(http.MethodGet)
	r.HandleFunc("/api/cases/{id}/policy", n.requireToken(n.explainPolicy)).Methods(http.MethodGet)
	r.HandleFunc("/api/audit/verify", n.requireToken(n.verifyAudit)).Methods(http.MethodGet)
	r.HandleFunc("/metrics", n.requireMetricsToken(n.serveMetrics)).Methods(http.MethodGet)
	r.HandleFunc("/readyz", n.serveReady).Methods(http.MethodGet)
	r.PathPrefix("/schemas/").Handler(schemaServer()).Methods(http.MethodGet)
	r.Use(n.countRequests)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	n.dashboard.routes(r)
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

// federation guards a route peers call (inbox POSTs, signed GETs): a
// request without the node's API token is first held to the per-IP rate
// limit, before its body is read or its signature looked at. Its
// refusals are recorded in the audit log.
func (n *Node) federation(h http.HandlerFunc) http.HandlerFunc {
	return n.auditRefusals(store.AuditInbound, func(w http.ResponseWriter, r *http.Request) {
		if !n.token.check(r) {
			if err := n.policy.AdmitIP(n.clientIP(r)); err != nil {
				n.metrics.inboxRefused(problem.Status(err))
				n.refused(r, "federation", err)
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

func (n *Node) serveWebFinger(w http.ResponseWriter, r *http.Request) {
	resource := r.URL.Query().Get("resource")
	if resource == "" {
		problem.Write(w, problem.BadRequest("the resource parameter is missing; ask for acct:NAME@%s", n.host))
		return
	}
	var l actor.Local
	var ok bool
	if name, host, err := actor.ParseAcct(resource); err == nil {
		if !strings.EqualFold(host, n.host) {
			problem.Write(w, problem.NotFound("%s is not on this node (%s)", resource, n.host))
			return
		}
		l, ok = n.Local(name)
	} else {
		// WebFinger also answers for an actor's id.
		for _, cand := range n.locals {
			if cand.ID == resource {
				l, ok = cand, true
			}
		}
		if !ok {
			problem.Write(w, problem.BadRequest("%v", err))
			return
		}
	}
	if !ok {
		problem.Write(w, problem.NotFound("no actor %s on this node", resource))
		return
	}
	w.Header().Set("Content-Type", actor.JRDContentType)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(actor.WebFingerJRD(l, n.host))
}

func (n *Node) serveActor(w http.ResponseWriter, r *http.Request) {
	l, ok := n.Local(mux.Vars(r)["name"])
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", mux.Vars(r)["name"]))
		return
	}
	// A retired key is listed only until its overlap window ends.
	l.Retired = actor.KeyRing{Retired: l.Retired}.Published(n.cfg.Now())
	doc, err := l.Document()
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(doc)
}

func (n *Node) postInbox(w http.ResponseWriter, r *http.Request) {
	res, err := n.inbox.Receive(r.Context(), mux.Vars(r)["name"], r)
	if err != nil {
		n.metrics.inboxRefused(problem.Status(err))
		n.refused(r, "inbox", err)
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusAccepted, map[string]any{"id": res.ID, "semantic": res.Semantic, "duplicate": res.Duplicate})
}

func (n *Node) postOutbox(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, n.cfg.MaxInboxBytes+1))
	if err != nil {
		problem.Write(w, problem.BadRequest("the request body could not be read"))
		return
	}
	if int64(len(body)) > n.cfg.MaxInboxBytes {
		problem.Write(w, problem.TooLarge("the body is larger than the limit of %d bytes", n.cfg.MaxInboxBytes))
		return
	}
	sub, err := n.submitter.Submit(r.Context(), mux.Vars(r)["name"], body)
	if err != nil {
		n.refused(r, "outbox", err)
		problem.Write(w, err)
		return
	}
	w.Header().Set("Location", sub.ID)
	w.Header().Set("Content-Type", actor.ContentType)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(sub.Body)
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

// collectionPage is one page of an inbox or outbox as an ActivityStreams
// OrderedCollectionPage. Items are the stored activities themselves.
func (n *Node) writePage(w http.ResponseWriter, r *http.Request, page func(actor, cursor string, limit int) ([]store.StoredActivity, string, error)) {
	name := mux.Vars(r)["name"]
	l, ok := n.Local(name)
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", name))
		return
	}
	limit := 20
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			problem.Write(w, problem.BadRequest("limit %q must be a number from 1 to 200", v))
			return
		}
		limit = n
	}
	cursor := r.URL.Query().Get("cursor")
	acts, next, err := page(l.Name, cursor, limit)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			problem.Write(w, problem.BadRequest("cursor %q is not valid", cursor))
			return
		}
		problem.Write(w, err)
		return
	}
	items := make([]json.RawMessage, len(acts))
	for i, a := range acts {
		items[i] = json.RawMessage(a.Body)
	}
	self := n.cfg.PublicURL + r.URL.Path
	doc := map[string]any{
		"@context":     vocab.ActivityStreamsContext,
		"id":           self + "?cursor=" + cursor,
		"type":         "OrderedCollectionPage",
		"partOf":       self,
		"orderedItems": items,
	}
	if next != "" {
		doc["next"] = self + "?cursor=" + next
	}
	problem.WriteTyped(w, http.StatusOK, actor.ContentType, doc)
}

func (n *Node) getInbox(w http.ResponseWriter, r *http.Request) {
	n.writePage(w, r, func(a, c string, l int) ([]store.StoredActivity, string, error) {
		return n.db.InboxPage(r.Context(), a, c, l)
	})
}

func (n *Node) getOutbox(w http.ResponseWriter, r *http.Request) {
	n.writePage(w, r, func(a, c string, l int) ([]store.StoredActivity, string, error) {
		return n.db.OutboxPage(r.Context(), a, c, l)
	})
}

// getActivity serves a stored activity to the node's API token or to a
// signed GET from an actor that took part in it (its sender or one of its
// addressees); an activity a case recorded also to the case's participants,
// and never to a participant removed from it. An unsigned GET gets 401, a
// signed GET from anyone else 403.
func (n *Node) getActivity(w http.ResponseWriter, r *http.Request) {
	id := n.cfg.PublicURL + "/activities/" + mux.Vars(r)["id"]
	stored, err := n.db.Activity(r.Context(), id)
	if !n.token.check(r) {
		signer, verr := n.verifier.Verify(r.Context(), r, nil)
		if verr != nil {
			problem.Write(w, unauthorizedGET(verr))
			return
		}
		var c *cases.Case
		if err == nil {
			if cerr := n.db.View(r.Context(), func(tx *store.ReadTx) error {
				var e error
				c, e = cases.CaseOf(tx, id)
				if e == nil && c == nil {
					// An activity the case did not record, such as the
					// Case Actor's copy of an invitation, belongs to the
					// case it names as its context.
					if doc, perr := vocab.Parse(stored.Body); perr == nil && doc.Activity() != nil && doc.Activity().Context.ID() != "" {
						c, e = cases.Load(tx, doc.Activity().Context.ID())
					}
				}
				return e
			}); cerr != nil {
				problem.Write(w, cerr)
				return
			}
		}
		if err == nil && !(c == nil && takesPart(stored, signer.Owner) || c != nil && c.MayRead(signer.Owner, takesPart(stored, signer.Owner))) {
			problem.Write(w, problem.Forbidden("%s is not a party to %s", signer.Owner, id))
			return
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, problem.NotFound("no activity %s on this node", id))
		return
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(stored.Body)
}

// getObject serves an object minted by this node, such as a report one of
// its actors submitted, to the API token or to a signed GET from a party to
// it; an object a case recorded (a report, a note) also to the case's
// participants, and never to a participant removed from it. An unsigned GET
// gets 401, a signed GET from anyone else 403.
func (n *Node) getObject(w http.ResponseWriter, r *http.Request) {
	id := n.cfg.PublicURL + "/objects/" + mux.Vars(r)["id"]
	var obj vocab.Object
	var parties []string
	var c *cases.Case // the case that recorded the object, if any
	err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		o, ok := cases.NewResolver(tx).Resolve(id)
		if !ok {
			return nil
		}
		locals, peers, err := cases.ReportParties(tx, id)
		if err != nil {
			return err
		}
		for _, name := range locals {
			if l, ok := n.Local(name); ok {
				parties = append(parties, l.ID)
			}
		}
		obj, parties = o, append(parties, peers...)
		c, err = cases.CaseOf(tx, id)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	if !n.token.check(r) {
		signer, verr := n.verifier.Verify(r.Context(), r, nil)
		if verr != nil {
			problem.Write(w, unauthorizedGET(verr))
			return
		}
		party := slices.Contains(parties, signer.Owner)
		if obj != nil && !(c == nil && party || c != nil && c.MayRead(signer.Owner, party)) {
			problem.Write(w, problem.Forbidden("%s is not a party to %s", signer.Owner, id))
			return
		}
	}
	if obj == nil {
		problem.Write(w, problem.NotFound("no object %s on this node", id))
		return
	}
	body, err := vocab.Marshal(obj)
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(body)
}

// takesPart reports whether actorID sent the stored activity or is among
// its addressees.
func takesPart(a store.StoredActivity, actorID string) bool {
	doc, err := vocab.Parse(a.Body)
	if err != nil {
		return false
	}
	act := doc.Activity()
	if act == nil {
		return false
	}
	if act.Actor.ID() == actorID {
		return true
	}
	for _, refs := range []vocab.Refs{act.To, act.Cc, act.Audience} {
		for _, id := range refs.IDs() {
			if id == actorID {
				return true
			}
		}
	}
	return false
}

func unauthorizedGET(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return err // the federation policy's 403 or 429
	}
	var ve *actor.VerifyError
	if errors.As(err, &ve) {
		return problem.Wrap(http.StatusUnauthorized, err, ve.Reason+"; objects are served only to signed requests from their participants or with the node's API token")
	}
	return problem.Wrap(http.StatusUnauthorized, err, "objects are served only to signed requests from their participants or with the node's API token")
}

// deliveryView is a delivery as the API shows it.
type deliveryView struct {
	ID          uint64    `json:"id"`
	Activity    string    `json:"activity"`
	Actor       string    `json:"actor"`
	Recipient   string    `json:"recipient"`
	OrderingKey string    `json:"orderingKey,omitempty"`
	Attempts    int       `json:"attempts"`
	FirstQueued time.Time `json:"firstQueued"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

func viewDeliveries(ds []store.Delivery) []deliveryView {
	out := make([]deliveryView, len(ds))
	for i, d := range ds {
		out[i] = deliveryView{ID: d.ID, Activity: d.ActivityID, Actor: d.Actor, Recipient: d.Recipient, OrderingKey: d.OrderingKey,
			Attempts: d.Attempts, FirstQueued: d.FirstQueued, NextAttempt: d.NextAttempt, LastError: d.LastError}
	}
	return out
}

// Page size of GET /api/deliveries.
const maxDeliveryPage = 1000

// listDeliveries answers GET /api/deliveries?limit=N&pendingAfter=ID&deadAfter=ID:
// a page of the pending deliveries and one of the dead letters, oldest
// first, with their counts. pendingNext and deadNext, when present, are
// the pendingAfter and deadAfter of the following pages.
func (n *Node) listDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", maxDeliveryPage, 1, maxDeliveryPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var after [2]uint64
	for i, name := range []string{"pendingAfter", "deadAfter"} {
		if s := q.Get(name); s != "" {
			if after[i], err = strconv.ParseUint(s, 10, 64); err != nil {
				problem.Write(w, problem.BadRequest("%s must be a delivery id (a whole number), not %q", name, s))
				return
			}
		}
	}
	pending, pendingNext, err := n.db.PendingDeliveries(r.Context(), after[0], limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	dead, deadNext, err := n.db.DeadLetters(r.Context(), after[1], limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	pendingCount, err := n.db.PendingCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	deadCount, err := n.db.DeadLetterCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	body := map[string]any{"pending": viewDeliveries(pending), "dead": viewDeliveries(dead),
		"pendingCount": pendingCount, "deadCount": deadCount}
	if pendingNext != 0 {
		body["pendingNext"] = pendingNext
	}
	if deadNext != 0 {
		body["deadNext"] = deadNext
	}
	problem.WriteJSON(w, http.StatusOK, body)
}

// retryDelivery answers POST /api/deliveries/{id}/retry: it moves a dead
// letter back into the queue.
func (n *Node) retryDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		problem.Write(w, problem.BadRequest("delivery id %q is not a number", mux.Vars(r)["id"]))
		return
	}
	newID, err := n.db.RequeueDeadLetter(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, problem.NotFound("no dead letter %d", id))
		return
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	n.deliverer.Wake()
	n.log.Info().Uint64("dead_letter", id).Uint64("delivery", newID).Msg("dead letter requeued")
	problem.WriteJSON(w, http.StatusOK, map[string]any{"requeued": id, "delivery": newID})
}

// logRequests writes one log line per request: method, path, status,
// bytes and duration; never a body or a signature.
func (n *Node) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		n.log.Info().Str("method", r.Method).Str("path", r.URL.Path).Int("status", rec.status).
			Int("bytes", rec.bytes).Dur("duration", time.Since(start)).Str("remote", n.clientIP(r)).Str("peer", r.RemoteAddr).Msg("request")
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wrote = true
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
