// Package publication serves the advisories the node's actors published,
// and publishes them: the list (/advisories, HTML or JSON), each
// advisory's page (which is also its ActivityPub Article), its CSAF 2.0,
// CVE JSON 5 and OSV documents with .sha256 and .sha512 files, and the
// node as a CSAF provider (/.well-known/csaf/provider-metadata.json, a
// ROLIE feed of the TLP:WHITE documents, the documents under
// /.well-known/csaf/white/YEAR/, index.txt and changes.csv). For the
// owner's admins, the draft documents of a case and the publication:
// Create(Article) the first time, Update(Article) for a revision, sent
// through the owner's outbox to its followers and the case's participants
// (the case's Case Actor records it in the ledger first).
//
// Invariants: nothing of a case is served before its advisory is published
// (the index of published advisories is the only way in, and a case whose
// embargo is in force and whose public is not aware cannot record a
// publication); every document is derived from the case's recorded
// revision by package advisory, so its bytes and hashes stay the same;
// only the Articles this node's actors published are served, each with the
// revisions up to the last one its actor published, so that a case's former
// owner goes on serving what it published after the case changed owner; a
// revision is its actor's only as the node's own record of what the actor
// sent shows it (cases.SentRevision), never on a replica's ledger alone. OpenPGP
// signatures (.asc), which a trusted provider adds, are not made: the node
// holds no OpenPGP key, and CSAF requires them of trusted providers only.
package publication

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"html"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/advisory"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Config is what the publication endpoints need of the node.
type Config struct {
	Store     *store.DB
	PublicURL string
	// LocalByID returns a local actor by id: an advisory is served when
	// its case's owner is one.
	LocalByID func(id string) (actor.Local, bool)
	// Roles returns the CVD roles of a local actor, for the CSAF
	// publisher's category.
	Roles func(name string) cvdstate.RoleSet
	// Submit sends an activity through a local actor's outbox.
	Submit func(ctx context.Context, name string, body []byte) (string, error)
	// CaseID reads the case a request's {id} names.
	CaseID  func(r *http.Request) (string, error)
	Version string
	Now     func() time.Time
}

// Endpoints are the publication handlers.
type Endpoints struct{ cfg Config }

// New returns the endpoints of cfg.
func New(cfg Config) (*Endpoints, error) {
	if cfg.Store == nil || cfg.LocalByID == nil || cfg.Roles == nil || cfg.Submit == nil || cfg.CaseID == nil || cfg.Now == nil {
		return nil, errors.New("publication: the configuration misses a dependency")
	}
	return &Endpoints{cfg: cfg}, nil
}

// The formats of an advisory's documents, by file name.
const (
	fileCSAF = "csaf.json"
	fileCVE  = "cve.json"
	fileOSV  = "osv.json"
)

// maxListed bounds the advisories one list, feed or index shows.
const maxListed = 1000

// published is an advisory as served: its case, the revision its Article
// on this node shows, its documents and, once another server's owner has
// published a revision since, that revision and its Article.
type published struct {
	c        *cases.Case
	rev      cases.Revision
	tracking string
	owner    actor.Local
	doc      *advisory.Advisory
	// latest and latestArticle are the advisory's latest revision and
	// its Article when this node's Article is not the latest.
	latest        *cases.Revision
	latestArticle string
}

// first is the advisory's first revision.
func (p *published) first() cases.Revision { return p.c.Advisory.Revisions[0] }

func (e *Endpoints) pageURL(tracking string) string {
	return e.cfg.PublicURL + "/advisories/" + tracking
}

func (e *Endpoints) csafFileURL(tracking string, initial time.Time) string {
	return fmt.Sprintf("%s/.well-known/csaf/white/%d/%s", e.cfg.PublicURL, initial.UTC().Year(), advisory.FileName(tracking))
}

func (e *Endpoints) feedURL() string {
	return e.cfg.PublicURL + "/.well-known/csaf/white/feed-tlp-white.json"
}

// publisher returns the CSAF publisher of an advisory by owner.
func (e *Endpoints) publisher(owner actor.Local) advisory.Publisher {
	return advisory.Publisher{Category: advisory.PartyOf(e.cfg.Roles(owner.Name)), Name: owner.Name, Namespace: e.cfg.PublicURL}
}

// sentByOwnActor reports whether revision r (its Article set) is by one of
// this node's actors (local) and, if so, whether the node's own store
// shows that actor sent it (cases.SentRevision).
func (e *Endpoints) sentByOwnActor(tx *store.ReadTx, r cases.Revision) (local, sent bool, err error) {
	l, ok := e.cfg.LocalByID(r.By)
	if !ok {
		return false, false, nil
	}
	sent, err = cases.SentRevision(tx, r, l.Name)
	return true, sent, err
}

// Published reports whether this node serves the advisory of tracking id
// tracking (any case): the Article of its page, published by one of its
// actors (load's rule), for what an Announce may share (package social).
func (e *Endpoints) Published(tx *store.ReadTx, tracking string) (bool, error) {
	c, err := cases.PublishedAdvisory(tx, tracking)
	if c == nil || err != nil {
		return false, err
	}
	n, _, err := c.PublishedAs(e.pageURL(cases.TrackingID(c.ID)), func(r cases.Revision) (bool, error) {
		_, sent, err := e.sentByOwnActor(tx, r)
		return sent, err
	})
	return n > 0, err
}

// load returns the published advisory of case c as this node serves it:
// the revisions up to the latest one a local actor published as the
// Article at this node's page (cases.Case.PublishedAs), by that actor, as
// the node's own record of what its actor sent shows it
// (cases.SentRevision): a replica's Case Actor does not put words in the
// mouth of this node's actor at this node's address.
func (e *Endpoints) load(tx *store.ReadTx, c *cases.Case) (*published, bool, error) {
	if c == nil || c.Advisory == nil || len(c.Advisory.Revisions) == 0 {
		return nil, false, nil
	}
	tracking := cases.TrackingID(c.ID)
	page := e.pageURL(tracking)
	n, by, err := c.PublishedAs(page, func(r cases.Revision) (bool, error) {
		_, sent, err := e.sentByOwnActor(tx, r)
		return sent, err
	})
	if n == 0 || err != nil {
		return nil, false, err
	}
	owner, _ := e.cfg.LocalByID(by)
	revs := c.Advisory.Revisions
	doc, ok := c.AdvisoryDocument(n, nil, e.publisher(owner), page, e.csafFileURL(tracking, revs[0].At), "vultron "+e.cfg.Version)
	if !ok {
		return nil, false, nil
	}
	p := &published{c: c, rev: revs[n-1], tracking: tracking, owner: owner, doc: doc}
	if latest := c.Advisory.ArticleOf(len(revs) - 1); n < len(revs) && latest != page && isHTTP(latest) {
		p.latest, p.latestArticle = &revs[len(revs)-1], latest
	}
	return p, true, nil
}

// isHTTP reports whether s is an http(s) URL with a host: the only kind
// of another server's Article a page links (a javascript: one would run
// at this node's origin when clicked).
func isHTTP(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// byTracking finds the published advisory with a tracking id.
func (e *Endpoints) byTracking(ctx context.Context, tracking string) (*published, error) {
	short, ok := strings.CutPrefix(strings.ToUpper(tracking), "VULTRON-")
	if !ok || short == "" {
		return nil, problem.NotFound("no advisory %s on this node", problem.Clip(tracking, 80))
	}
	var out *published
	err := e.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		ids, err := cases.ResolveShortID(tx, strings.ToLower(short), "case")
		if err != nil {
			return err
		}
		for _, id := range ids {
			c, err := cases.Load(tx, id)
			if err != nil {
				return err
			}
			p, ok, err := e.load(tx, c)
			if err != nil {
				return err
			}
			if ok && strings.EqualFold(p.tracking, tracking) {
				out = p
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		return nil, problem.NotFound("no advisory %s on this node", problem.Clip(tracking, 80))
	}
	return out, nil
}

// list returns the published advisories after a case id, a page of at
// most limit.
func (e *Endpoints) list(ctx context.Context, after string, limit int) ([]*published, string, error) {
	var out []*published
	var next string
	err := e.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		cs, n, err := cases.PublishedAdvisories(tx, after, limit)
		if err != nil {
			return err
		}
		next = n
		out, err = e.loadAll(tx, cs)
		return err
	})
	return out, next, err
}

// loadAll returns the published advisories of cases cs (load), in order.
func (e *Endpoints) loadAll(tx *store.ReadTx, cs []*cases.Case) ([]*published, error) {
	out := make([]*published, 0, len(cs))
	for _, c := range cs {
		p, ok, err := e.load(tx, c)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// document returns one of an advisory's documents.
func document(p *published, file string) ([]byte, error) {
	switch file {
	case fileCSAF:
		return advisory.CSAF(p.doc)
	case fileCVE:
		b, err := advisory.CVERecord(p.doc)
		if errors.Is(err, advisory.ErrNoCVE) {
			return nil, problem.NotFound("advisory %s has no CVE record: its case records no CVE id", p.tracking)
		}
		return b, err
	case fileOSV:
		return advisory.OSV(p.doc)
	}
	return nil, problem.NotFound("an advisory has csaf.json, cve.json and osv.json, not %s", problem.Clip(file, 80))
}

func (e *Endpoints) links(p *published) api.AdvisoryLinks {
	page := e.pageURL(p.tracking)
	l := api.AdvisoryLinks{Page: page, CSAF: page + "/" + fileCSAF, OSV: page + "/" + fileOSV}
	if p.doc.CVE() != "" {
		l.CVE = page + "/" + fileCVE
	}
	return l
}

// serveFile writes a document, or its .sha256 or .sha512 file.
func serveFile(w http.ResponseWriter, r *http.Request, name string, doc []byte, hashExt string) {
	var h hash.Hash
	switch hashExt {
	case "":
		serveBody(w, r, "application/json", doc)
		return
	case ".sha256":
		h = sha256.New()
	case ".sha512":
		h = sha512.New()
	default:
		problem.Write(w, problem.NotFound("no such file"))
		return
	}
	h.Write(doc)
	serveBody(w, r, "text/plain; charset=utf-8", []byte(hex.EncodeToString(h.Sum(nil))+"  "+name+"\n"))
}

// splitHash splits "csaf.json.sha256" into the file and its hash suffix.
func splitHash(file string) (string, string) {
	for _, ext := range []string{".sha256", ".sha512"} {
		if f, ok := strings.CutSuffix(file, ext); ok {
			return f, ext
		}
	}
	return file, ""
}

// Document serves /advisories/{tracking}/{file}: csaf.json, cve.json,
// osv.json and their .sha256 and .sha512.
func (e *Endpoints) Document(w http.ResponseWriter, r *http.Request) {
	p, err := e.byTracking(r.Context(), mux.Vars(r)["tracking"])
	if err != nil {
		problem.Write(w, err)
		return
	}
	file, ext := splitHash(mux.Vars(r)["file"])
	doc, err := document(p, file)
	if err != nil {
		problem.Write(w, err)
		return
	}
	serveFile(w, r, file, doc, ext)
}

// WellKnownFile serves /.well-known/csaf/white/{year}/{file}: the CSAF
// documents under their CSAF file names, with their hashes.
func (e *Endpoints) WellKnownFile(w http.ResponseWriter, r *http.Request) {
	name, ext := splitHash(mux.Vars(r)["file"])
	base, ok := strings.CutSuffix(name, ".json")
	if !ok {
		problem.Write(w, problem.NotFound("no such file"))
		return
	}
	p, err := e.byTracking(r.Context(), strings.ReplaceAll(base, "_", "-"))
	if err != nil {
		problem.Write(w, err)
		return
	}
	if advisory.FileName(p.tracking) != name || strconv.Itoa(p.first().At.UTC().Year()) != mux.Vars(r)["year"] {
		problem.Write(w, problem.NotFound("no such file"))
		return
	}
	doc, err := advisory.CSAF(p.doc)
	if err != nil {
		problem.Write(w, err)
		return
	}
	serveFile(w, r, name, doc, ext)
}

// wantsJSON reports whether a request asks for JSON rather than a page.
func wantsJSON(r *http.Request) bool {
	if r.URL.Query().Get("format") == "json" {
		return true
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "json") && !strings.Contains(a, "text/html")
}

// List serves /advisories: JSON (?format=json, or an Accept of JSON) or
// an HTML page, a page of at most 100 (?after=). ?tag=ID (the href of an
// Article's hashtag) keeps the advisories of that vulnerability id; the
// page is filtered, so a page may hold fewer than it could while next
// still leads on.
func (e *Endpoints) List(w http.ResponseWriter, r *http.Request) {
	ps, next, err := e.list(r.Context(), r.URL.Query().Get("after"), 100)
	if err != nil {
		problem.Write(w, err)
		return
	}
	tag := strings.TrimPrefix(r.URL.Query().Get("tag"), "#")
	out := api.AdvisoryList{Advisories: []api.AdvisorySummary{}, Next: next}
	for _, p := range ps {
		if tag != "" && !slices.ContainsFunc(p.rev.VulnerabilityIDs, func(id string) bool { return strings.EqualFold(id, tag) }) {
			continue
		}
		out.Advisories = append(out.Advisories, api.AdvisorySummary{TrackingID: p.tracking, Title: p.rev.Title, Summary: advisory.Text(p.rev.Summary),
			Revision: p.rev.Number, Published: p.first().At, Updated: p.rev.At, IDs: p.rev.VulnerabilityIDs, Links: e.links(p)})
	}
	if wantsJSON(r) {
		problem.WriteJSON(w, http.StatusOK, out)
		return
	}
	var b strings.Builder
	b.WriteString(pageHead("Advisories"))
	b.WriteString("<h1>Advisories</h1>\n<p>Machine-readable: <a href=\"/.well-known/csaf/provider-metadata.json\">CSAF provider metadata</a>, <a href=\"" + html.EscapeString(e.feedURL()) + "\">ROLIE feed</a>, <a href=\"/advisories?format=json\">this list as JSON</a>.</p>\n<ul>\n")
	for _, a := range out.Advisories {
		fmt.Fprintf(&b, "<li><a href=\"%s\">%s</a> %s (revision %d, %s): <a href=\"%s\">CSAF</a>",
			html.EscapeString(a.Links.Page), html.EscapeString(a.TrackingID), html.EscapeString(a.Title), a.Revision, a.Updated.UTC().Format("2006-01-02"), html.EscapeString(a.Links.CSAF))
		if a.Links.CVE != "" {
			fmt.Fprintf(&b, ", <a href=\"%s\">CVE</a>", html.EscapeString(a.Links.CVE))
		}
		fmt.Fprintf(&b, ", <a href=\"%s\">OSV</a></li>\n", html.EscapeString(a.Links.OSV))
	}
	b.WriteString("</ul>\n</body></html>\n")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

func pageHead(title string) string {
	return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + html.EscapeString(title) +
		"</title></head><body>\n"
}

// Page serves /advisories/{tracking}: the advisory's page, or, to an
// ActivityPub client, its Article.
func (e *Endpoints) Page(w http.ResponseWriter, r *http.Request) {
	p, err := e.byTracking(r.Context(), mux.Vars(r)["tracking"])
	if err != nil {
		problem.Write(w, err)
		return
	}
	if actor.IsActivityPubContentType(r.Header.Get("Accept")) || strings.Contains(r.Header.Get("Accept"), "activity+json") {
		var cc []string
		for _, i := range p.rev.Involvements {
			cc = append(cc, i.Actor)
		}
		act, err := e.article(p.c, p.owner, p.rev.Text, p.rev.VulnerabilityIDs, cc, p.rev.Number > 1)
		if err != nil {
			problem.Write(w, err)
			return
		}
		// The Article alone, as a document of its own: with the
		// activity's @context, in ActivityPub's media type.
		obj, ok := act["object"].(map[string]any)
		if !ok {
			problem.Write(w, fmt.Errorf("publication: the Article of %s is no object", p.tracking))
			return
		}
		doc := make(map[string]any, len(obj)+1)
		maps.Copy(doc, obj)
		doc["@context"] = act["@context"]
		problem.WriteTyped(w, http.StatusOK, actor.ContentType, doc)
		return
	}
	l := e.links(p)
	var b strings.Builder
	b.WriteString(pageHead(p.rev.Title))
	fmt.Fprintf(&b, "<h1>%s</h1>\n<p>%s, revision %d of %s; first published %s.</p>\n", html.EscapeString(p.rev.Title), html.EscapeString(p.tracking),
		p.rev.Number, p.rev.At.UTC().Format(time.RFC3339), p.first().At.UTC().Format(time.RFC3339))
	if p.latest != nil {
		fmt.Fprintf(&b, "<p>The case has passed to %s, who carries this advisory on: revision %d of %s is at <a href=\"%s\">%s</a>.</p>\n",
			html.EscapeString(p.c.ActorName(p.latest.By)), p.latest.Number, p.latest.At.UTC().Format(time.RFC3339),
			html.EscapeString(p.latestArticle), html.EscapeString(p.latestArticle))
	}
	if len(p.rev.VulnerabilityIDs) > 0 {
		fmt.Fprintf(&b, "<p>Known as %s.</p>\n", html.EscapeString(strings.Join(p.rev.VulnerabilityIDs, ", ")))
	}
	fmt.Fprintf(&b, "<p>%s</p>\n<div>%s</div>\n", html.EscapeString(advisory.Text(p.rev.Summary)), paragraphs(advisory.Text(p.rev.Details)))
	b.WriteString("<h2>Products</h2>\n<table><tr><th>Vendor</th><th>Product</th><th>Versions</th><th>Status</th><th>Statement</th></tr>\n")
	for _, pr := range p.doc.Products {
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", html.EscapeString(pr.Vendor), html.EscapeString(pr.Name),
			html.EscapeString(pr.Versions), html.EscapeString(pr.Status), html.EscapeString(advisory.Text(pr.Statement)+" "+pr.Justification))
	}
	fmt.Fprintf(&b, "</table>\n<p>Documents: <a href=\"%s\">CSAF 2.0</a>", html.EscapeString(l.CSAF))
	if l.CVE != "" {
		fmt.Fprintf(&b, ", <a href=\"%s\">CVE JSON 5</a>", html.EscapeString(l.CVE))
	}
	fmt.Fprintf(&b, ", <a href=\"%s\">OSV</a>.</p>\n</body></html>\n", html.EscapeString(l.OSV))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// paragraphs writes text as HTML paragraphs.
func paragraphs(text string) string {
	var b strings.Builder
	for _, p := range strings.Split(text, "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			b.WriteString("<p>" + strings.ReplaceAll(html.EscapeString(p), "\n", "<br>") + "</p>")
		}
	}
	return b.String()
}

// article builds the Create(Article), or Update(Article) for a revision,
// that publishes a case's advisory with text t, the vulnerability ids ids
// and the participants cc: the case's now when it is published, the
// revision's when its Article is served.
func (e *Endpoints) article(c *cases.Case, owner actor.Local, t cases.Text, ids, cc []string, update bool) (map[string]any, error) {
	tracking := cases.TrackingID(c.ID)
	page := e.pageURL(tracking)
	a := vocab.Article{ID: page, URL: page, Name: t.Title, Summary: advisory.Text(t.Summary), Content: paragraphs(advisory.Text(t.Details)),
		AttributedTo: owner.ID, Context: c.ID, Update: update, HashtagBaseURL: e.cfg.PublicURL + "/advisories?tag=",
		To: []string{vocab.PublicCollection, social.FollowersOf(owner.ID)}}
	if a.Content == "" {
		a.Content = "<p>" + html.EscapeString(t.Title) + "</p>"
	}
	for _, p := range cc {
		if p != owner.ID {
			a.Cc = append(a.Cc, p)
		}
	}
	a.Attachments = []vocab.ArticleLink{
		{Href: page + "/" + fileCSAF, MediaType: "application/json", Name: "CSAF 2.0 " + tracking},
		{Href: page + "/" + fileOSV, MediaType: "application/json", Name: "OSV " + tracking},
	}
	for _, id := range ids {
		if strings.HasPrefix(id, "CVE-") {
			a.Hashtags = append(a.Hashtags, id)
			if len(a.Attachments) == 2 {
				a.Attachments = append(a.Attachments, vocab.ArticleLink{Href: page + "/" + fileCVE, MediaType: "application/json", Name: "CVE JSON 5 " + id})
			}
		}
	}
	return vocab.NewArticle(a)
}
