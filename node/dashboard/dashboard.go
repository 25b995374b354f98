// Package dashboard is the node's web interface for people: server-rendered
// pages (html/template) that work without JavaScript, a small script that
// follows changes over Server-Sent Events (live.go), and forms for the
// common protocol actions. Forms go through the same outbox Submitter as
// the client-to-server API, so a person and a script are held to the same
// rules, and a form is shown only when that rule would take it
// (actions.go). Reports are shown with their text (reports.go), actors by
// their names (names.go), each protocol state with a line of plain words
// (explain.go), and the embargo and the case state as inline SVG
// (svg.go).
//
// The dashboard brings its own routes (Routes) and guards them itself: a
// page needs a session, opened by logging in with the node's API token,
// and a form also the session's CSRF token. Every response forbids
// framing, sniffing, referrers and any script but the node's own. It reads
// cases and reports from the store, and the webhooks' state (whether one
// is paused) from the webhook dispatcher, changes nothing but through the
// outbox's Submit and the engine's Resync, and keeps its sessions and caches in
// memory, each bounded: the caches (actors' names, the forms each case
// state offers, cases' histories) are hashicorp/golang-lru LRUs.
package dashboard

import (
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"
	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

//go:embed web
var webFiles embed.FS

// SessionCookie is the name of the cookie that carries a session's id.
const SessionCookie = "vultron_session"

const (
	// timelineLength is how many of the newest ledger entries a case page
	// lists.
	timelineLength = 50
	// participantPage is how many participants a case page lists unless
	// asked for all of them.
	participantPage = 100
	// casePage is how many cases the list shows at once, and notePage
	// how many of its newest notes a case page shows: as many as the API
	// gives by default.
	casePage = 100
	notePage = 100
)

// uiSession is the request's dashboard session, as the node's guard read
// it from the store (accounts.SessionFrom): every process of a node on a
// shared store knows the same sessions.
type uiSession struct {
	id        string
	csrf      string
	flash     string // the outcome of the last form, shown once
	flashOK   bool
	principal accounts.Principal
	state     accounts.SessionState
}

// sessionOf returns the request's session, whatever its stage; nil when
// the browser has none.
func sessionOf(r *http.Request) *uiSession {
	cur, ok := accounts.SessionFrom(r.Context())
	if !ok {
		return nil
	}
	return &uiSession{id: cur.ID, csrf: cur.State.CSRF, flash: cur.State.Flash, flashOK: cur.State.FlashOK,
		principal: cur.State.Principal, state: cur.State}
}

// Config is what the dashboard needs from the node.
type Config struct {
	Store *store.DB
	// Submit sends an activity as a local actor, as the client-to-server
	// API does (outbox.Submitter.Submit).
	Submit func(ctx context.Context, name string, body []byte) (outbox.Submitted, error)
	// Resync checks a replica against its Case Actor's ledger now, or
	// drops it to fetch the ledger again (cases.Engine.Resync).
	Resync func(tx *store.Tx, caseID string, rebuild bool) error
	// Local returns a local actor by name (an error when the store could
	// not be read, as jsonapi.Config.Local), LocalByID by id; IsLocal says
	// whether an actor id is one of this node's.
	Local     func(ctx context.Context, name string) (actor.Local, bool, error)
	LocalByID func(id string) (actor.Local, bool)
	IsLocal   func(id string) bool
	// FetchActor fetches a remote actor's document, for its name.
	FetchActor func(ctx context.Context, iri string) (*vocab.Actor, error)
	// Accounts are the node's people: their logins, sessions and second
	// factors.
	Accounts *accounts.Service
	// LoginRefused logs a refused login step and gives its cause to the
	// request's audit record; the person sees only the sentence.
	LoginRefused func(r *http.Request, err error)
	// Denied logs a form refused for who sent it (an actor its user does
	// not act for) and gives its cause to the request's audit record.
	Denied func(r *http.Request, err error)
	// FormRefused logs a form refused whose answer is a redirect to the
	// page that says why (refuse), and has it audited as a refusal.
	FormRefused func(r *http.Request, err error)
	// ClientIP returns a request's client IP.
	ClientIP func(*http.Request) string
	// Webhooks lists the node's webhooks with whether each is paused
	// (webhook.Dispatcher.Webhooks), for the front page; nil shows none.
	Webhooks func(ctx context.Context) ([]api.Webhook, error)
	// CalendarURL is the link to the node's embargo feed.
	CalendarURL func(ctx context.Context) string
	// Refused logs a refused form with its whole error; the person sees
	// only the sentence.
	Refused func(r *http.Request, where string, err error)
	// PublicURL is the node's base URL; a session cookie is Secure when it
	// is https.
	PublicURL string
	// Stopping is closed when the node shuts down, to end the event
	// streams, which never finish on their own.
	Stopping <-chan struct{}
	// MaxBody is the largest activity a form may send: what the API's
	// outbox takes (the node's --max-body), so that a note the API takes
	// is taken from the case page too.
	MaxBody int64
	// Deadlines are the node's deadline limits and calendar, which the
	// lists of what is due follow.
	Deadlines deadline.Config
	Now       func() time.Time
	Logger    zerolog.Logger
}

// Dashboard holds the web interface's templates and sessions.
type Dashboard struct {
	cfg    Config
	pages  map[string]*template.Template
	static http.Handler

	// histories keeps each case's CS history with the ledger length it
	// was computed over, so that a case page reads only the entries added
	// since its last view.
	histories *lru.Cache[string, caseHistory]

	// names are the actors' names the pages show.
	names *actorNames
	// offerCache keeps the forms each case page offers, by case state.
	offerCache *lru.Cache[string, Offers]
}

// caseHistory is a case's CS history over its first length entries.
type caseHistory struct {
	length  int64
	history cvdstate.History
}

// maxHistories bounds the history cache.
const maxHistories = 1000

// csHistory returns the CS history of c, reading only the ledger entries
// added since the case was last shown.
func (d *Dashboard) csHistory(tx *store.ReadTx, c *cases.Case) (cvdstate.History, error) {
	prev, ok := d.histories.Get(c.ID)
	if !ok || prev.length > c.LedgerLen {
		prev = caseHistory{}
	}
	h, err := cases.CSHistoryFrom(tx, c, prev.length, prev.history)
	if err != nil {
		return nil, err
	}
	d.histories.Add(c.ID, caseHistory{length: c.LedgerLen, history: h})
	return h, nil
}

// New returns the dashboard of cfg. Its actors' names are fetched by Run,
// which the node runs as one of its services.
func New(cfg Config) (*Dashboard, error) {
	if cfg.Store == nil || cfg.Submit == nil || cfg.Resync == nil || cfg.Local == nil || cfg.LocalByID == nil || cfg.IsLocal == nil ||
		cfg.FetchActor == nil || cfg.Accounts == nil || cfg.LoginRefused == nil || cfg.Denied == nil || cfg.FormRefused == nil || cfg.ClientIP == nil || cfg.CalendarURL == nil || cfg.Refused == nil || cfg.Now == nil || cfg.MaxBody <= 0 {
		return nil, errors.New("dashboard: the configuration misses a dependency")
	}
	d := &Dashboard{cfg: cfg, pages: map[string]*template.Template{}}
	var err error
	if d.histories, err = lru.New[string, caseHistory](maxHistories); err != nil {
		return nil, fmt.Errorf("dashboard: history cache: %w", err)
	}
	if d.names, err = newActorNames(cfg.FetchActor, cfg.Now); err != nil {
		return nil, err
	}
	if d.offerCache, err = lru.New[string, Offers](maxCachedOffers); err != nil {
		return nil, fmt.Errorf("dashboard: offer cache: %w", err)
	}
	funcs := template.FuncMap{
		"who":       d.who,
		"meaning":   meaning,
		"short":     cases.ShortID,
		"when":      func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
		"countdown": countdown,
		"pct":       func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
		"signed":    func(f float64) string { return fmt.Sprintf("%+.2f", f) },
		"pathesc":   url.PathEscape,
		"lower":     strings.ToLower,
	}
	for _, page := range []string{"login", "factor", "enroll", "account", "cases", "case"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(webFiles, "web/templates/layout.html", "web/templates/factors.html", "web/templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse the %s page: %w", page, err)
		}
		d.pages[page] = t
	}
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: static files: %w", err)
	}
	d.static = http.StripPrefix("/ui/static/", http.FileServer(http.FS(static)))
	return d, nil
}

// Run fetches the names of the actors the pages show, until ctx ends.
func (d *Dashboard) Run(ctx context.Context) error { return d.names.run(ctx) }

// Route is one of the dashboard's routes, with the permission it needs of
// a logged-in session; the node puts it behind its guard. Audit marks the
// login steps, whose refusals go to the audit log.
type Route struct {
	Method, Path string
	Prefix       bool
	Perm         accounts.Permission
	Audit        bool
	Handler      http.Handler
}

// Routes returns the dashboard's routes. The pages need a session that
// reads, the forms that act one that acts (and, in the form, an actor its
// user acts for); the login steps are public and ask accounts for their
// pending session themselves.
func (d *Dashboard) Routes() []Route {
	read := accounts.Permission{Scope: accounts.ScopeRead}
	act := accounts.Permission{Scope: accounts.ScopeAct, ActorVar: "as"}
	get, post := http.MethodGet, http.MethodPost
	h := func(f http.HandlerFunc) http.Handler { return d.securityHeaders(f) }
	return []Route{
		{Method: get, Path: "/", Perm: read, Handler: h(d.page(d.casesPage))},
		{Method: get, Path: "/ui/cases/{id}", Perm: read, Handler: h(d.page(d.casePage))},
		{Method: post, Path: "/ui/cases/{id}", Perm: act, Handler: h(d.form(d.caseAction))},
		{Method: post, Path: "/ui/reports/validate", Perm: act, Handler: h(d.form(d.validateReport))},
		{Method: get, Path: "/ui/events", Perm: read, Handler: h(d.page(d.events))},
		{Method: get, Path: "/ui/account", Perm: read, Handler: h(d.page(d.accountPage))},
		{Method: post, Path: "/ui/account", Perm: read, Handler: h(d.form(d.accountAction))},
		{Method: post, Path: "/logout", Perm: read, Handler: h(d.form(d.logout))},
		{Method: get, Path: "/ui/static/", Prefix: true, Handler: h(d.static.ServeHTTP)},
		{Method: get, Path: "/login", Handler: h(d.loginPage)},
		{Method: post, Path: "/login", Audit: true, Handler: h(d.passwordLogin)},
		{Method: get, Path: "/login/factor", Handler: h(d.factorPage)},
		{Method: post, Path: "/login/factor", Audit: true, Handler: h(d.factorLogin)},
		{Method: post, Path: "/login/passkey/begin", Audit: true, Handler: h(d.passkeyLoginBegin)},
		{Method: post, Path: "/login/passkey/finish", Audit: true, Handler: h(d.passkeyLoginFinish)},
		{Method: get, Path: "/login/sso", Audit: true, Handler: h(d.ssoBegin)},
		{Method: get, Path: accounts.CallbackPath, Audit: true, Handler: h(d.ssoCallback)},
		{Method: get, Path: "/enroll", Handler: h(d.enrollPage)},
		{Method: post, Path: "/enroll", Audit: true, Handler: h(d.enroll)},
		{Method: get, Path: "/enroll/factor", Handler: h(d.enrollFactorPage)},
		{Method: post, Path: "/factor/totp", Audit: true, Handler: h(d.totpFactor)},
		{Method: get, Path: "/factor/totp.png", Handler: h(d.totpImage)},
		{Method: post, Path: "/factor/passkey/begin", Audit: true, Handler: h(d.passkeyRegisterBegin)},
		{Method: post, Path: "/factor/passkey/finish", Audit: true, Handler: h(d.passkeyRegisterFinish)},
	}
}

// Unauthenticated answers a request of a page or form that needs a
// logged-in session and has none: a page sends the browser to the login
// page, the event stream and a form say so with 401.
func (d *Dashboard) Unauthenticated(w http.ResponseWriter, r *http.Request) {
	d.securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ui/events":
			problem.Write(w, problem.Unauthorized("log in to the dashboard first"))
		case r.Method == http.MethodGet:
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		default:
			d.ErrorPage(w, http.StatusUnauthorized, "Your session has ended; log in again.")
		}
	})).ServeHTTP(w, r)
}

// securityHeaders sets the headers every dashboard response carries: no
// script but the node's own, no framing, no sniffing, no referrer leaving
// the node.
func (d *Dashboard) securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w)
		h.ServeHTTP(w, r)
	})
}

func setSecurityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
}

// page wraps a handler of a page, which the node's guard lets through
// only with a logged-in session.
func (d *Dashboard) page(h func(http.ResponseWriter, *http.Request, *uiSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := sessionOf(r)
		if s == nil {
			d.Unauthenticated(w, r)
			return
		}
		h(w, r, s)
	}
}

// formMargin is what a form may carry besides the text of its activity:
// its other fields and their names.
const formMargin = 16 << 10

// formLimit is the largest form the dashboard reads: one whose text,
// however it is encoded (a byte may take three, %XX), makes an activity as
// large as the API's outbox takes.
func (d *Dashboard) formLimit() int64 { return 3*d.cfg.MaxBody + formMargin }

// form wraps a handler of a POSTed form: it needs a session and the
// session's CSRF token in the form.
func (d *Dashboard) form(h func(http.ResponseWriter, *http.Request, *uiSession)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, d.formLimit())
		s := sessionOf(r)
		if s == nil {
			d.ErrorPage(w, http.StatusUnauthorized, "Your session has ended; log in again.")
			return
		}
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				d.ErrorPage(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is too large: this node reads forms of at most %d bytes, "+
					"for an activity of at most %d bytes (its --max-body); nothing was sent.", d.formLimit(), d.cfg.MaxBody))
				return
			}
			d.ErrorPage(w, http.StatusBadRequest, "The form could not be read.")
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
			d.ErrorPage(w, http.StatusForbidden, "The form's security token is missing or stale; reload the page and try again.")
			return
		}
		h(w, r, s)
	}
}

// ErrorPage answers with a small HTML page that says what went wrong.
func (d *Dashboard) ErrorPage(w http.ResponseWriter, status int, msg string) {
	setSecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html><title>%d</title><p>%s</p><p><a href=\"/\">Back to the cases</a></p>", status, template.HTMLEscapeString(msg))
}

// render writes a page.
func (d *Dashboard) render(w http.ResponseWriter, page string, data map[string]any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := d.pages[page].ExecuteTemplate(w, "layout.html", data); err != nil {
		d.cfg.Logger.Error().Err(err).Str("page", page).Msg("dashboard: render")
	}
}

// takeFlash returns and clears the session's message for the next page.
func (d *Dashboard) takeFlash(s *uiSession) (string, bool) {
	f, ok := s.flash, s.flashOK
	if f == "" {
		return "", false
	}
	s.flash, s.flashOK = "", false
	if err := d.cfg.Accounts.UpdateSession(context.Background(), s.id, func(st *accounts.Session) { st.Flash, st.FlashOK = "", false }); err != nil {
		d.cfg.Logger.Warn().Err(err).Msg("dashboard: clear the session's message")
	}
	return f, ok
}

func (d *Dashboard) setFlash(s *uiSession, msg string, ok bool) {
	s.flash, s.flashOK = msg, ok
	if err := d.cfg.Accounts.UpdateSession(context.Background(), s.id, func(st *accounts.Session) { st.Flash, st.FlashOK = msg, ok }); err != nil {
		d.cfg.Logger.Warn().Err(err).Msg("dashboard: keep the session's message")
	}
}

// caseRow is a case in the list.
type caseRow struct {
	ID, Name, EM, PXA string
	EMState           cvdstate.EMState
	PXAState          cvdstate.PXA
	Participants      int
	EmbargoEnd        *time.Time
	LedgerLength      int64
	Closed, Hosted    bool
	Mine              []cases.Participant // local actors' participation
	// Replica says how this node's copy compares with the Case Actor's
	// ledger.
	Replica cases.ReplicaStatus
}

// casesPage is the list of cases and of reports waiting for a decision.
func (d *Dashboard) casesPage(w http.ResponseWriter, r *http.Request, s *uiSession) {
	after := r.URL.Query().Get("after")
	var rows []caseRow
	var next string
	var pending []dashboardReport
	var pendingTotal int
	var liveState string
	var deadlines deadlineLists
	err := d.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		page, cursor, err := cases.ListCasesPage(tx, after, casePage)
		if err != nil {
			return err
		}
		next = cursor
		for _, c := range page {
			st, err := cases.Status(tx, c, d.cfg.Now(), d.cfg.IsLocal)
			if err != nil {
				return err
			}
			row := caseRow{ID: c.ID, Name: c.Name, EM: c.EM.String(), PXA: c.PXA.String(), EMState: c.EM, PXAState: c.PXA, LedgerLength: c.LedgerLen,
				Closed: c.Closed(), Hosted: st.State == cases.ReplicaHosted, Replica: st}
			if c.Embargo != nil && c.EM.InForce() {
				end := c.Embargo.End
				row.EmbargoEnd = &end
			}
			for _, p := range c.Participants {
				if !p.Removed {
					row.Participants++
				}
				if d.cfg.IsLocal(p.Actor) {
					row.Mine = append(row.Mine, *p)
				}
			}
			rows = append(rows, row)
		}
		reports, total, err := cases.PendingReports(tx, maxPendingShown)
		if err != nil {
			return err
		}
		liveState = d.pageState(listLiveState(page, reports, total))
		pending, pendingTotal = pendingViews(tx, reports), total
		for i := range pending {
			if !s.principal.ActsFor(pending[i].Actor) {
				pending[i].Decisions = nil // a viewer's, or another analyst's actor
			}
		}
		deadlines, err = d.deadlineLists(tx)
		return err
	})
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The cases could not be read: "+problem.Message(err))
		return
	}
	var hooks []api.Webhook
	paused := 0
	if d.cfg.Webhooks != nil {
		// The page is still of use without them: a store that fails
		// here failed the cases' read above already.
		if hooks, err = d.cfg.Webhooks(r.Context()); err != nil {
			d.cfg.Logger.Warn().Err(err).Msg("dashboard: list the webhooks")
		}
		for _, h := range hooks {
			if h.Paused != nil {
				paused++
			}
		}
		if !s.principal.Can(accounts.ScopeAdmin) {
			// Everyone learns that one is paused; the list, whose URLs
			// may carry a receiver's credential in their path, is an
			// admin's, as GET /api/webhooks is.
			hooks = nil
		}
	}
	flash, ok := d.takeFlash(s)
	d.render(w, "cases", map[string]any{"Cases": rows, "Next": next, "Reports": pending, "MoreReports": pendingTotal - len(pending), "ListTextBytes": listTextBytes, "CSRF": s.csrf, "LiveState": liveState, "CalendarURL": d.cfg.CalendarURL(r.Context()),
		"Flash": flash, "FlashOK": ok, "Now": d.cfg.Now(), "Me": s.principal, "Deadlines": deadlines, "Webhooks": hooks, "PausedWebhooks": paused})
}

// participantRow is a participant on the case page.
type participantRow struct {
	cases.Participant
	RoleNames []string
	Local     bool
	Name      string // the local actor's name, for forms
	// FixPath is the participant's part of the case state: a vendor's
	// vfd, a deployer's own d or D, "" for the others.
	FixPath string
	// RSVPBy is when an invited participant is to answer the open embargo
	// proposals; its consent (PEC) is as of now, DECLINED once that passed.
	RSVPBy time.Time
}

// legendEntry explains one state that the participants table shows.
type legendEntry struct{ Column, Term, Meaning string }

// participantLegend explains each RM, vfd and embargo consent state the
// participant rows show, in the protocol's order of each.
func participantLegend(rows []participantRow) []legendEntry {
	var out []legendEntry
	for _, s := range cvdstate.RMStates() {
		if slices.ContainsFunc(rows, func(r participantRow) bool { return r.RM == s }) {
			out = append(out, legendEntry{"RM", s.String(), meaning(s)})
		}
	}
	for _, s := range cvdstate.VFDs() {
		if slices.ContainsFunc(rows, func(r participantRow) bool { return r.VFD == s && tracksVFD(r.Roles) }) {
			out = append(out, legendEntry{"vfd", s.String(), meaning(s)})
		}
	}
	for _, s := range cvdstate.PECs() {
		if slices.ContainsFunc(rows, func(r participantRow) bool { return r.PEC == s }) {
			out = append(out, legendEntry{"Embargo consent", s.String(), meaning(s)})
		}
	}
	return out
}

// tracksVFD reports whether a participant with roles has a fix path of
// its own (vfd): vendors and deployers.
func tracksVFD(roles cvdstate.RoleSet) bool { return roles&(cvdstate.Vendor|cvdstate.Deployer) != 0 }

// embargoLine is what the case page says of the case's embargo beside its
// state.
type embargoLine struct {
	InForce bool
	End     time.Time
	// EndedAt is when an embargo no longer in force ended, and Reason why;
	// Early when that was before its end.
	EndedAt time.Time
	Reason  string
	Early   bool
}

// embargoLineOf describes c's embargo; nil when it never had one.
func embargoLineOf(c *cases.Case) *embargoLine {
	if c.Embargo == nil {
		return nil
	}
	l := &embargoLine{InForce: c.EM.InForce(), End: c.Embargo.End}
	if !l.InForce {
		for _, h := range c.History {
			if h.To == cvdstate.EMExited {
				l.EndedAt, l.Reason = h.At, h.Reason
			}
		}
		l.Early = !l.EndedAt.IsZero() && l.EndedAt.Before(l.End)
	}
	return l
}

// who is how the pages show the actor with the given id.
func (d *Dashboard) who(id string) actorName {
	if d.cfg.IsLocal(id) {
		// This node's actors are named by their local name, as their
		// documents say, without a fetch.
		name := strings.TrimPrefix(id, d.cfg.PublicURL+"/actors/")
		return nameOf(id, name, name)
	}
	return d.names.lookup(id)
}

// pageState is a page's live state: what it shows in summary, and the
// names known, so that a name learnt after the page was drawn updates it.
func (d *Dashboard) pageState(summary string) string {
	return fmt.Sprintf("%s names:%d", summary, d.names.generation())
}

// caseInPath returns the id of the case the path names ({id}: its
// path-escaped id, or its short id, read as the API reads it with
// httpreq.CaseID), and whether the path named it by that id. When it names
// no case, or several, it answers the request itself with a page that
// says so (that a form was refused, for a form) and returns "".
func (d *Dashboard) caseInPath(w http.ResponseWriter, r *http.Request, form bool) (id string, canonical bool) {
	given, _ := url.PathUnescape(mux.Vars(r)["id"])
	id, err := httpreq.CaseID(r, d.cfg.Store)
	if problem.Status(err) == http.StatusNotFound {
		err = noCase(given)
	}
	if err != nil {
		d.refusedPage(w, err, form)
		return "", false
	}
	return id, given == id
}

// noCase is the refusal of a page or form for a case this node does not
// hold, named id in the address.
func noCase(id string) error {
	return problem.NotFound("there is no case %s on this node", problem.Clip(id, 300))
}

// refusedPage answers with a page that says what err refused, and, for
// a form, that the form was refused: the sentence is shown where the
// person is, never kept for the next page.
func (d *Dashboard) refusedPage(w http.ResponseWriter, err error, form bool) {
	msg := sentence(err)
	if form {
		msg = "Refused: " + problem.Message(err) + "."
	}
	d.ErrorPage(w, problem.Status(err), msg)
}

// casePath is the address of case id's page.
func casePath(id string) string { return "/ui/cases/" + url.PathEscape(id) }

// noteRow is a note of the case page, with the person of this node who
// wrote it, when one did.
type noteRow struct {
	cases.Note
	By string
}

// notesOf returns the last notePage notes of c, each with the person on
// whose request this node's actor sent it (cases.SentBy), read together.
func (d *Dashboard) notesOf(tx *store.ReadTx, c *cases.Case) ([]noteRow, error) {
	notes, err := c.NotesPage(tx, c.NoteCount-notePage, notePage)
	if err != nil {
		return nil, err
	}
	by, err := cases.NotesSentBy(tx, notes, d.cfg.IsLocal)
	if err != nil {
		return nil, err
	}
	out := make([]noteRow, len(notes))
	for i, n := range notes {
		out[i] = noteRow{Note: n, By: by[n.ID]}
	}
	return out, nil
}

// casePage shows one case. A short id sends the browser to the case's
// own address.
func (d *Dashboard) casePage(w http.ResponseWriter, r *http.Request, s *uiSession) {
	id, canonical := d.caseInPath(w, r, false)
	if id == "" {
		return
	}
	if !canonical {
		to := casePath(id)
		if r.URL.RawQuery != "" {
			to += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	var c *cases.Case
	var timeline []cases.TimelineEntry
	var history cvdstate.History
	var notes []noteRow
	var replica cases.ReplicaStatus
	var related []cases.CaseLink
	var reports []dashboardReport
	var offers Offers
	var deadlines []deadlineRow
	var deadlineTotal int
	var signals []intel.Offered
	now := d.cfg.Now()
	err := d.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		if c, err = cases.Load(tx, id); err != nil || c == nil {
			return err
		}
		reports = caseReports(tx, c)
		offers = d.Offers(tx, c, now).For(s.principal)
		if replica, err = cases.Status(tx, c, d.cfg.Now(), d.cfg.IsLocal); err != nil {
			return err
		}
		if timeline, err = cases.CaseTimeline(tx, c, timelineLength); err != nil {
			return err
		}
		if related, err = cases.Related(tx, c.ID); err != nil {
			return err
		}
		if notes, err = d.notesOf(tx, c); err != nil {
			return err
		}
		limit := caseDeadlineRows
		if r.URL.Query().Get("deadlines") == "all" {
			limit = 0
		}
		if deadlines, deadlineTotal, err = d.caseDeadlines(tx, c.ID, limit); err != nil {
			return err
		}
		if signals, err = intel.OfferedFor(tx, c.ID); err != nil {
			return err
		}
		history, err = d.csHistory(tx, c)
		return err
	})
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The case could not be read: "+problem.Message(err))
		return
	}
	if c == nil {
		d.refusedPage(w, noCase(id), false)
		return
	}
	// A case with thousands of participants lists the node's own and the
	// first participantPage others unless all are asked for.
	all := r.URL.Query().Get("participants") == "all"
	var parts []participantRow
	hidden := 0
	for _, p := range c.Participants {
		row := participantRow{Participant: *p, RoleNames: p.Roles.Names(), FixPath: cvdstate.FixPath(p.Roles, p.VFD), RSVPBy: c.RSVPDeadline(p)}
		row.PEC = c.ConsentAt(p, now)
		if l, ok := d.cfg.LocalByID(p.Actor); ok && !p.Removed {
			row.Local, row.Name = true, l.Name
		}
		if !all && !row.Local && len(parts) >= participantPage {
			hidden++
			continue
		}
		parts = append(parts, row)
	}
	var assessment *cvdstate.Assessment
	if a, err := cvdstate.Assess(history); err == nil {
		assessment = &a
	}
	flash, ok := d.takeFlash(s)
	d.render(w, "case", map[string]any{
		"Case": c, "Replica": replica, "LiveState": d.pageState(caseLiveState(c, replica)), "HiddenParticipants": hidden, "CasePath": casePath(c.ID),
		"Participants": parts, "Legend": participantLegend(parts), "Reports": reports, "Offers": offers, "Embargo": embargoLineOf(c),
		"Timeline": timeline, "Notes": notes, "NotesTotal": c.NoteCount, "History": history.String(), "Related": related,
		"Assessment": assessment, "CSRF": s.csrf, "Flash": flash, "FlashOK": ok, "Now": now, "Me": s.principal, "CanAct": s.principal.Can(accounts.ScopeAct),
		"EmbargoSVG": embargoSVG(c, now), "StateSVG": stateSVG(c, d.who), "StepForms": stepForms,
		"DefaultEnd": defaultEmbargoEnd(now), "NoteMax": d.noteLimit(c.ID), "Deadlines": deadlines, "MoreDeadlines": deadlineTotal - len(deadlines), "Signals": signals,
	})
}

// caseAction carries out a form of the case page through the outbox and
// sends the browser back to the case's page, which says how it went. A
// form for a case this node does not hold is refused on the page it
// answers with.
func (d *Dashboard) caseAction(w http.ResponseWriter, r *http.Request, s *uiSession) {
	id, _ := d.caseInPath(w, r, true)
	if id == "" {
		return
	}
	c, err := httpreq.LoadCase(r.Context(), d.cfg.Store, id)
	if err == nil && c == nil {
		err = noCase(id)
	}
	if err != nil {
		d.refusedPage(w, err, true)
		return
	}
	back := casePath(id)
	if action := r.PostForm.Get("action"); action == "resync" || action == "rebuild" {
		// Not a protocol action: the node checks its copy of the case.
		err := d.cfg.Store.Update(r.Context(), func(tx *store.Tx) error { return d.cfg.Resync(tx, id, action == "rebuild") })
		if err != nil {
			d.refuse(r, s, err, "")
		} else {
			d.setFlash(s, map[string]string{"resync": "This node checks its copy against the Case Actor's ledger now.",
				"rebuild": "This node's copy was dropped; it fetches the Case Actor's ledger from its start."}[action], true)
		}
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	as := r.PostForm.Get("as")
	if !s.principal.ActsFor(as) {
		d.notActingFor(w, r, s, as)
		return
	}
	said, sent, err := d.submitCaseAction(r, c, as)
	if err != nil {
		d.refuse(r, s, err, "")
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	// The page it redirects to shows the case as this node's copy has it:
	// wait (a little) until that copy recorded the activity, as "vultron"
	// waits for an action's outcome.
	out, done, err := d.awaitOutcome(r.Context(), id, sent.ID)
	switch {
	case err != nil:
		d.cfg.Logger.Warn().Err(err).Str("case", id).Str("activity", sent.ID).Msg("dashboard: read whether the case recorded a form's activity")
		fallthrough
	case !done:
		d.setFlash(s, said.Sent+" sent; the Case Actor has not recorded it yet, and this page shows it once the Case Actor records it.", true)
	case out.Refused != nil:
		d.refuse(r, s, problem.Conflict("the Case Actor refused %s: %s", sent.ID, problem.Clip(out.Refused.Reason, 500)),
			"Refused by the Case Actor: "+problem.Clip(out.Refused.Reason, 500))
	default:
		d.setFlash(s, said.Done, true)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

const (
	// recordWait bounds how long a form waits for this node's copy of
	// the case to record its activity before the page says it was sent.
	recordWait = 5 * time.Second
	// recordRecheck is how often that wait looks again when no write of
	// this process woke it (another process of the node may record it).
	recordRecheck = 250 * time.Millisecond
)

// awaitOutcome waits until this node's copy of case caseID recorded the
// activity id, or the Case Actor's refusal of it arrived, for at most
// recordWait and no longer than ctx lasts or the node runs: every durable
// write wakes it to look again (cases.OutcomeOf, which the API's
// ledger?activity= answers from). done is false when neither happened.
func (d *Dashboard) awaitOutcome(ctx context.Context, caseID, id string) (out cases.Outcome, done bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, recordWait)
	defer cancel()
	recheck := time.NewTicker(recordRecheck)
	defer recheck.Stop()
	for {
		changed := d.cfg.Store.Changed()
		err := d.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
			var err error
			out, err = cases.OutcomeOf(tx, caseID, id)
			return err
		})
		switch {
		case ctx.Err() != nil:
			return out, false, nil
		case err != nil:
			return out, false, err
		case out.Recorded || out.Refused != nil:
			return out, true, nil
		}
		select {
		case <-ctx.Done():
			return out, false, nil
		case <-d.cfg.Stopping:
			return out, false, nil
		case <-changed:
		case <-recheck.C:
		}
	}
}

// submitCaseAction builds the activity a form asks for in case c and
// submits it as local actor as. It returns what to tell the person, and
// what the outbox accepted.
func (d *Dashboard) submitCaseAction(r *http.Request, c *cases.Case, as string) (outcomeWords, outbox.Submitted, error) {
	var none outcomeWords
	l, ok, err := d.cfg.Local(r.Context(), as)
	if err != nil {
		return none, outbox.Submitted{}, err
	}
	if !ok {
		return none, outbox.Submitted{}, problem.BadRequest("choose which of this node's actors acts")
	}
	act, said, err := d.buildCaseAction(c, l, r.PostForm, d.cfg.Now())
	if err != nil {
		return none, outbox.Submitted{}, err
	}
	sent, err := d.submit(r, as, act)
	if err != nil {
		return none, outbox.Submitted{}, err
	}
	return said, sent, nil
}

// submit sends an activity through the outbox Submitter, as the C2S API
// does, and returns what it accepted.
func (d *Dashboard) submit(r *http.Request, as string, act map[string]any) (outbox.Submitted, error) {
	body, err := activityJSON(act)
	if err != nil {
		return outbox.Submitted{}, err
	}
	sent, err := d.cfg.Submit(r.Context(), as, body)
	if err != nil {
		d.cfg.Refused(r, "dashboard", err)
	}
	return sent, err
}

// refuse shows err on the next page the session sees, as "Refused: " and
// what err says (or shown, when set), and has the refusal logged and
// audited: the form's answer is the redirect to that page.
func (d *Dashboard) refuse(r *http.Request, s *uiSession, err error, shown string) {
	if shown == "" {
		shown = "Refused: " + problem.Message(err)
	}
	d.cfg.FormRefused(r, err)
	d.setFlash(s, shown, false)
}

// notActingFor refuses a form that acts as an actor its user does not act
// for, which the pages do not offer: 403, as the API's guard answers the
// same request, with its cause in the request's audit record.
func (d *Dashboard) notActingFor(w http.ResponseWriter, r *http.Request, s *uiSession, as string) {
	err := problem.Forbidden("%s does not act for %s", s.principal.Name, problem.Clip(as, 80))
	d.cfg.Denied(r, err)
	d.ErrorPage(w, http.StatusForbidden, problem.Message(err)+".")
}

// validateReport answers a received report's Offer (RV, RI or RC).
func (d *Dashboard) validateReport(w http.ResponseWriter, r *http.Request, s *uiSession) {
	f := r.PostForm
	reportID, as := f.Get("report"), f.Get("as")
	if !s.principal.ActsFor(as) {
		d.notActingFor(w, r, s, as)
		return
	}
	var rec cases.ReportRecord
	var found bool
	err := d.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		rec, found, err = cases.Report(tx, reportID, as)
		return err
	})
	switch {
	case err != nil:
		d.refuse(r, s, err, "")
	case !found:
		d.refuse(r, s, problem.NotFound("%s holds no report %s", as, problem.Clip(reportID, 200)), "")
	default:
		var typ, said string
		switch decision := f.Get("decision"); decision {
		case "validate":
			typ, said = "Accept", "Report validated (RV); the case opens."
		case "invalidate":
			typ, said = "TentativeReject", "Report found invalid (RI)."
		case "close":
			typ, said = "Reject", "Report closed (RC)."
		default:
			// Nothing is decided for a form that does not say what.
			d.refuse(r, s, problem.BadRequest("the decision %q is none of validate, invalidate or close", problem.Clip(decision, 40)), "")
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		act := map[string]any{"type": typ, "object": rec.OfferID}
		if peers := sortedKeys(rec.Peers); len(peers) > 0 {
			act["to"] = peers
		}
		if _, err := d.submit(r, as, act); err != nil {
			d.refuse(r, s, err, "")
		} else {
			d.setFlash(s, said, true)
		}
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// countdown says how long until t (a time.Time or *time.Time), in days
// or hours.
func countdown(t any, now time.Time) string {
	var end time.Time
	switch v := t.(type) {
	case time.Time:
		end = v
	case *time.Time:
		if v == nil {
			return ""
		}
		end = *v
	default:
		return ""
	}
	d := end.Sub(now)
	switch {
	case d <= 0:
		return "ended"
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh left", int(d.Hours()))
	}
	return fmt.Sprintf("%dd left", int(d.Hours()/24))
}
