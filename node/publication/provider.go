package publication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/advisory"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// providerPublisher is the node as a CSAF publisher: named by its host.
func (e *Endpoints) providerPublisher() map[string]string {
	name := e.cfg.PublicURL
	if u, err := url.Parse(e.cfg.PublicURL); err == nil {
		name = u.Host
	}
	return map[string]string{"category": "other", "name": name, "namespace": e.cfg.PublicURL}
}

// all returns the published advisories the lists show: the maxListed
// latest revised, newest update first.
func (e *Endpoints) all(r *http.Request) ([]*published, error) {
	var out []*published
	err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		cs, err := cases.RecentAdvisories(tx, maxListed)
		if err != nil {
			return err
		}
		out, err = e.loadAll(tx, cs)
		return err
	})
	if err != nil {
		return nil, err
	}
	// The revision a list shows is the latest this node published, which
	// may be older than the case's latest.
	slices.SortStableFunc(out, func(a, b *published) int { return b.rev.At.Compare(a.rev.At) })
	return out, nil
}

// ProviderMetadata serves /.well-known/csaf/provider-metadata.json: the
// node as a CSAF provider whose TLP:WHITE documents are in one ROLIE feed.
func (e *Endpoints) ProviderMetadata(w http.ResponseWriter, r *http.Request) {
	ps, err := e.all(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	updated := time.Unix(0, 0).UTC()
	if len(ps) > 0 {
		updated = ps[0].rev.At
	}
	doc := map[string]any{
		"canonical_url":              e.cfg.PublicURL + "/.well-known/csaf/provider-metadata.json",
		"distributions":              []any{map[string]any{"rolie": map[string]any{"feeds": []any{map[string]any{"summary": "The TLP:WHITE advisories of " + e.providerPublisher()["name"], "tlp_label": "WHITE", "url": e.feedURL()}}}}},
		"last_updated":               updated.UTC().Format("2006-01-02T15:04:05Z"),
		"list_on_CSAF_aggregators":   true,
		"metadata_version":           "2.0",
		"mirror_on_CSAF_aggregators": true,
		"publisher":                  e.providerPublisher(),
		"role":                       "csaf_provider",
	}
	serveJSON(w, r, doc)
}

// Feed serves the ROLIE feed of the TLP:WHITE CSAF documents, newest
// first, with the links to each document and its hashes.
func (e *Endpoints) Feed(w http.ResponseWriter, r *http.Request) {
	ps, err := e.all(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	updated := time.Unix(0, 0).UTC()
	if len(ps) > 0 {
		updated = ps[0].rev.At
	}
	entries := []any{}
	for _, p := range ps {
		file := e.csafFileURL(p.tracking, p.first().At)
		entries = append(entries, map[string]any{
			"id":        p.tracking,
			"title":     p.rev.Title,
			"link":      []any{map[string]string{"rel": "self", "href": file}, map[string]string{"rel": "hash", "href": file + ".sha256"}, map[string]string{"rel": "hash", "href": file + ".sha512"}},
			"published": p.first().At.UTC().Format("2006-01-02T15:04:05Z"),
			"updated":   p.rev.At.UTC().Format("2006-01-02T15:04:05Z"),
			"summary":   map[string]string{"content": advisory.Text(p.rev.Summary)},
			"content":   map[string]string{"type": "application/json", "src": file},
			"format":    map[string]string{"schema": "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json", "version": "2.0"},
		})
	}
	feed := map[string]any{"feed": map[string]any{
		"id":       "vultron-csaf-feed-tlp-white",
		"title":    "TLP:WHITE CSAF advisories of " + e.providerPublisher()["name"],
		"link":     []any{map[string]string{"rel": "self", "href": e.feedURL()}},
		"category": []any{map[string]string{"scheme": "urn:ietf:params:rolie:category:information-type", "term": "csaf"}},
		"updated":  updated.UTC().Format("2006-01-02T15:04:05Z"),
		"entry":    entries,
	}}
	serveJSON(w, r, feed)
}

// Index serves index.txt (each document's path under the white
// directory) and changes.csv (path and last change, newest first).
func (e *Endpoints) Index(w http.ResponseWriter, r *http.Request) {
	ps, err := e.all(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	changes := strings.HasSuffix(r.URL.Path, "changes.csv")
	var b strings.Builder
	for _, p := range ps {
		path := fmt.Sprintf("%d/%s", p.first().At.UTC().Year(), advisory.FileName(p.tracking))
		if changes {
			fmt.Fprintf(&b, "%q,%q\n", path, p.rev.At.UTC().Format("2006-01-02T15:04:05Z"))
		} else {
			b.WriteString(path + "\n")
		}
	}
	serveBody(w, r, "text/plain; charset=utf-8", []byte(b.String()))
}

// ownedCase loads the case a token request names, and its owner, which
// must be an actor of this node.
func (e *Endpoints) ownedCase(r *http.Request) (*cases.Case, *published, error) {
	id, err := e.cfg.CaseID(r)
	if err != nil {
		return nil, nil, err
	}
	var c *cases.Case
	if err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		c, err = cases.Load(tx, id)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if c == nil {
		return nil, nil, problem.NotFound("no case %s on this node", id)
	}
	owner, ok := e.cfg.LocalByID(c.Owner)
	if !ok {
		return nil, nil, problem.Forbidden("the owner of case %s, %s, is not an actor of this node: its advisory is published by its owner's node", c.ID, c.Owner)
	}
	return c, &published{c: c, owner: owner, tracking: cases.TrackingID(c.ID)}, nil
}

// Draft serves GET /api/cases/{id}/advisory/draft?format=csaf|cve|osv:
// the documents a publication now would publish, marked as a draft. Any
// other format is refused with 400.
func (e *Endpoints) Draft(w http.ResponseWriter, r *http.Request) {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "csaf"
	}
	if format != "csaf" && format != "cve" && format != "osv" {
		problem.Write(w, problem.BadRequest("format %q is not one the node writes: ask for csaf, cve or osv", problem.Clip(format, 80)))
		return
	}
	c, p, err := e.ownedCase(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	next := c.DraftRevision(e.cfg.Now().UTC(), p.owner.ID)
	if c.Advisory != nil && c.Advisory.Draft == nil && len(c.Advisory.Revisions) > 0 {
		// What a publication now would say (Publish).
		if next.Text, err = e.latestText(r.Context(), c); err != nil {
			problem.Write(w, err)
			return
		}
	}
	var initial time.Time = next.At
	if c.Advisory != nil && len(c.Advisory.Revisions) > 0 {
		initial = c.Advisory.Revisions[0].At
	}
	p.doc, _ = c.AdvisoryDocument(0, &next, e.publisher(p.owner), e.pageURL(p.tracking), e.csafFileURL(p.tracking, initial), "vultron "+e.cfg.Version)
	doc, err := document(p, format+".json")
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc)
}

// latestText returns the text of the latest revision of c's advisory that
// is not one the case says an actor of this node published but the node's
// store does not show it sent (a Case Actor's forgery): a revision by
// another server's actor is the case's word, as every replica takes it.
// With none, the case's name is the title.
func (e *Endpoints) latestText(ctx context.Context, c *cases.Case) (cases.Text, error) {
	out := cases.Text{Title: c.Name}
	err := e.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		revs := c.Advisory.Revisions
		for i := len(revs) - 1; i >= 0; i-- {
			r := revs[i]
			r.Article = c.Advisory.ArticleOf(i)
			local, sent, err := e.sentByOwnActor(tx, r)
			if err != nil {
				return err
			}
			if local && !sent {
				continue
			}
			out = r.Text
			return nil
		}
		return nil
	})
	return out, err
}

// maxPublishBody bounds a publication request.
const maxPublishBody = 256 << 10

// Publish serves POST /api/cases/{id}/advisory/publish (api.PublishRequest):
// the owner's Create(Article), or Update(Article) once published, through
// its outbox. Refused with 409, and nothing sent, while the embargo is in
// force and the case is not public; and, unless force is set, while an
// invited reviewer has not answered, while a reviewer's request for
// changes to the draft stands, or before the publication time the
// participants agreed on (Case.PublicationAgreed). What the request
// leaves out of the text comes from the draft shared last, or else from
// the latest revision (latestText).
func (e *Endpoints) Publish(w http.ResponseWriter, r *http.Request) {
	var req api.PublishRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPublishBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			problem.Write(w, problem.TooLarge("the publication request is larger than %d bytes", maxPublishBody))
			return
		}
		problem.Write(w, problem.BadRequest("the publication request is not a JSON object of title, summary, details and force: %v", err))
		return
	}
	if _, err := dec.Token(); err != io.EOF {
		problem.Write(w, problem.BadRequest("the publication request holds more than one JSON object"))
		return
	}
	c, p, err := e.ownedCase(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if why := c.PublicationBlocked(); why != "" {
		problem.Write(w, problem.Conflict("%s; nothing was published", why))
		return
	}
	if pt, ok := c.PublicationAgreed(e.cfg.Now()); ok && !req.Force {
		problem.Write(w, problem.Conflict("the participants of case %s agreed to publish its advisory at %s (proposed by %s, accepted by %s), and the case is not public: publish with force (vultron advisory publish --force) to publish before it; nothing was published",
			c.ID, pt.Time.UTC().Format(time.RFC3339), pt.By, strings.Join(pt.Accepted, ", ")))
		return
	}
	if c.Advisory != nil && c.Advisory.Draft != nil && !req.Force {
		if pending := c.Advisory.Draft.Pending(); len(pending) > 0 {
			problem.Write(w, problem.Conflict("reviewers %s have not answered the draft advisory of case %s yet: publish with force (vultron advisory publish --force) to publish before them; nothing was published",
				strings.Join(pending, ", "), c.ID))
			return
		}
		if changes := c.Advisory.Draft.ChangesRequested(); len(changes) > 0 {
			var who []string
			for _, r := range changes {
				who = append(who, fmt.Sprintf("%s (%q)", r.Actor, problem.Clip(r.Comment, 200)))
			}
			problem.Write(w, problem.Conflict("reviewers %s asked for changes to the draft advisory of case %s: share a revised draft (vultron advisory share) for them to review again, or publish with force (vultron advisory publish --force); nothing was published",
				strings.Join(who, ", "), c.ID))
			return
		}
	}
	t := c.DraftRevision(e.cfg.Now(), p.owner.ID).Text
	if c.Advisory != nil && c.Advisory.Draft == nil && len(c.Advisory.Revisions) > 0 {
		// No draft: the revision starts from the latest one's text, but
		// not from one the case says this node's actor published and its
		// actor never sent (cases.SentRevision).
		if t, err = e.latestText(r.Context(), c); err != nil {
			problem.Write(w, err)
			return
		}
	}
	if req.Title != "" {
		t.Title = req.Title
	}
	if req.Summary != "" {
		t.Summary = req.Summary
	}
	if req.Details != "" {
		t.Details = req.Details
	}
	// A revision updates this node's Article; the first revision of an
	// owner that took the case over from another server's creates one.
	update := c.Advisory != nil && c.Advisory.ArticleID == e.pageURL(p.tracking)
	var cc []string
	for _, q := range c.Participants {
		if !q.Removed {
			cc = append(cc, q.Actor)
		}
	}
	act, err := e.article(c, p.owner, t, c.VulnerabilityIDs, cc, update)
	if err != nil {
		problem.Write(w, problem.Unprocessable("the advisory cannot be built: %v", err))
		return
	}
	body, err := json.Marshal(act)
	if err != nil {
		problem.Write(w, err)
		return
	}
	id, err := e.cfg.Submit(r.Context(), p.owner.Name, body)
	if err != nil {
		problem.Write(w, err)
		return
	}
	rev := 1
	if c.Advisory != nil {
		rev = len(c.Advisory.Revisions) + 1
	}
	page := e.pageURL(p.tracking)
	links := api.AdvisoryLinks{Page: page, CSAF: page + "/" + fileCSAF, OSV: page + "/" + fileOSV}
	for _, v := range c.VulnerabilityIDs {
		if strings.HasPrefix(v, "CVE-") {
			links.CVE = page + "/" + fileCVE
		}
	}
	problem.WriteJSON(w, http.StatusCreated, api.Published{Activity: id, TrackingID: p.tracking, Revision: rev, Links: links})
}
