package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gocsaf/csaf/v3/csaf"
	"github.com/gorilla/mux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/vocab"
)

// get fetches a URL without credentials and returns status and body.
func get(t *testing.T, u string, accept string) (int, []byte) {
	t.Helper()
	status, _, body := getWith(t, u, "Accept", accept)
	return status, body
}

// getIfNoneMatch GETs u, with If-None-Match when etags is not empty, and
// returns the status, the ETag and the body.
func getIfNoneMatch(t *testing.T, u, etags string) (int, string, []byte) {
	t.Helper()
	status, h, body := getWith(t, u, "If-None-Match", etags)
	return status, h.Get("ETag"), body
}

// getWith fetches a URL without credentials, with the header name set to
// value when value is not empty, and returns status, headers and body.
func getWith(t *testing.T, u, name, value string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if value != "" {
		req.Header.Set(name, value)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// detail reads a case with the node's token.
func (tn *testNode) detail(t *testing.T, id string) api.CaseDetail {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(id), "")
	if status != http.StatusOK {
		t.Fatalf("case %s: %d %s", id, status, body)
	}
	var d api.CaseDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// withContext gives a builder's activity the ActivityStreams context.
func withContext(m map[string]any) map[string]any {
	m["@context"] = vocab.ActivityStreamsContext
	return m
}

// TestPublication runs a case with an embargo to its advisory: a
// coordinator follows the vendor; products and a CVE id are recorded; while
// the embargo is in force every unauthenticated route and every delivery
// to the follower is searched for the case's title, product and CVE id and
// nothing is found, and publishing is refused; the draft goes to the
// finder for review, publishing before its answer needs force; once the
// embargo ends the advisory is published, reaches the follower as
// Create(Article) whose links work, and its CSAF document, the provider
// metadata and the ROLIE feed pass the schemas; a revision is an Update.
func TestPublication(t *testing.T) {
	const (
		title   = "Zebra heap overflow in the quagga parser"
		product = "Quagga Zebra Server"
		cve     = "CVE-2026-48213"
	)
	vendor := startNodeWith(t, Config{DefaultEmbargo: 60 * 24 * time.Hour}, "vendor:Organization")
	finder := startNode(t, "finder:Person")
	coord := startNode(t, "coord:Organization")
	js := jsonOf(t)
	vendorID, finderID, coordID := vendor.actorID("vendor"), finder.actorID("finder"), coord.actorID("coord")

	// The coordinator follows the vendor, whose admin accepts.
	follow := coord.submit(t, "coord", js(vocab.NewFollow(vendorID)))
	waitFor(t, "the Follow at the vendor", func() bool {
		_, m := vendor.collection(t, "vendor", "followers", "?state=pending", true)
		return len(members(m)) == 1
	})
	vendor.submit(t, "vendor", js(vocab.NewFollowAnswer(vocab.FollowInfo{ID: follow, Actor: coordID, Object: vendorID}, true)))
	waitFor(t, "the coordinator following the vendor", func() bool {
		_, m := coord.collection(t, "coord", "following", "", true)
		return len(members(m)) == 1
	})

	offer := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"A crafted file overflows the heap."}}`, vendorID, title))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offer, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength >= 2 })
	caseID := c.ID
	steps := []string{
		string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
			"object": map[string]any{"type": "ProductStatus", "name": product, "vendor": vendorID, "purl": "pkg:npm/quagga-zebra@2.0.0",
				"versions": "< 2.0.1", "status": "affected", "content": "Upgrade to 2.0.1."}}, nil)),
		string(js(withContext(vocab.AddVulnerabilityIDs(caseID, cve, nil)), nil)),
	}
	for _, s := range steps {
		vendor.submit(t, "vendor", s)
	}
	waitFor(t, "the product and the CVE id in the case", func() bool {
		d := vendor.detail(t, caseID)
		return len(d.Products) == 1 && len(d.VulnerabilityIDs) == 1
	})
	finder.oneCase(t, "the finder's replica with the product", func(c api.Case) bool { return c.LedgerLength >= 4 })

	// Publishing is refused while the embargo is in force.
	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{}`); status != http.StatusConflict || !strings.Contains(string(body), "can be published once the embargo has ended") {
		t.Fatalf("publish under embargo: %d %s, want 409", status, body)
	}
	leaks := regexp.MustCompile(regexp.QuoteMeta(title) + "|" + regexp.QuoteMeta(product) + "|" + cve + "|quagga")
	tracking := cases.TrackingID(caseID)
	checkNoLeak := func(when string) {
		t.Helper()
		// Every GET route of the router, with each variable filled in with
		// what an outsider could guess of the case.
		vars := map[string]string{"name": "vendor", "id": url.PathEscape(caseID), "cid": url.PathEscape(caseID), "tracking": tracking,
			"file": "csaf.json", "year": time.Now().UTC().Format("2006"), "path": "x"}
		walked := 0
		err := vendor.router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
			tpl, err := route.GetPathTemplate()
			if err != nil {
				return nil
			}
			methods, _ := route.GetMethods()
			if len(methods) > 0 && !strings.Contains(strings.Join(methods, ","), http.MethodGet) {
				return nil
			}
			path := regexp.MustCompile(`\{([a-z]+)(:[^}]*)?\}`).ReplaceAllStringFunc(tpl, func(v string) string {
				name := strings.TrimSuffix(strings.TrimPrefix(v, "{"), "}")
				name, _, _ = strings.Cut(name, ":")
				return vars[name]
			})
			for _, accept := range []string{"", "application/activity+json", "application/json"} {
				status, body := get(t, vendor.url+path, accept)
				if leaks.Match(body) {
					t.Errorf("%s: GET %s (%s) without credentials answered %d with the case's content: %s", when, path, accept, status, body)
				}
			}
			walked++
			return nil
		})
		if err != nil || walked < 20 {
			t.Fatalf("walked %d routes (%v)", walked, err)
		}
		for _, it := range coord.inboxItems(t, "coord") {
			if b, _ := json.Marshal(it); leaks.Match(b) {
				t.Errorf("%s: the follower received the case's content: %s", when, b)
			}
		}
	}
	// The outbox enforces it too: the advisory's Create straight through
	// the outbox is refused, and so is a case's message addressed to the
	// followers or the public, which would carry the case to them.
	for _, tc := range []struct {
		name string
		act  map[string]any
		want int
	}{
		{"Create(Article) under embargo", map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Create", "context": caseID,
			"to":     []string{vocab.PublicCollection, vendorID + "/followers"},
			"object": map[string]any{"type": "Article", "id": vendor.url + "/advisories/" + tracking, "name": title}}, http.StatusConflict},
		{"a note to the followers", map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
			"to": []string{vendorID + "/followers"}, "object": map[string]any{"type": "Note", "content": "About " + title}}, http.StatusUnprocessableEntity},
		{"a note to the public", map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
			"cc": []string{vocab.PublicCollection}, "object": map[string]any{"type": "Note", "content": "About " + title}}, http.StatusUnprocessableEntity},
		{"a report to the followers", map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Offer", "to": []string{vendorID + "/followers"},
			"object": map[string]any{"type": "VulnerabilityReport", "name": title, "content": "x"}}, http.StatusUnprocessableEntity},
	} {
		status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", string(js(tc.act, nil)))
		if status != tc.want || !json.Valid(body) || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: %d %s, want %d with a JSON error", tc.name, status, body, tc.want)
		}
	}
	checkNoLeak("under embargo")

	// The draft goes to the finder for review.
	vendor.submit(t, "vendor", string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
		"object": map[string]any{"type": "Note", "content": "The draft advisory, for your review.", "audience": []string{finderID},
			"attachment": []any{map[string]any{"type": "Article", "name": title, "summary": "A heap overflow; upgrade to 2.0.1.", "content": "The parser trusts a length field."}}}}, nil)))
	var draftNote string
	waitFor(t, "the draft at the finder", func() bool {
		d := finder.detail(t, caseID)
		if d.Advisory != nil && d.Advisory.Draft != nil {
			draftNote = d.Advisory.Draft.NoteID
			return true
		}
		return false
	})
	if status, body := vendor.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/advisory/draft?format=csaf", ""); status != http.StatusOK || !strings.Contains(string(body), `"status": "draft"`) {
		t.Errorf("draft CSAF: %d %s", status, body)
	}
	// The embargo ends early, so that the advisory may be published.
	d := vendor.detail(t, caseID)
	vendor.submit(t, "vendor", string(js(withContext(vocab.TerminateEmbargo(caseID, d.Embargo.ID, "the fix is out")), nil)))
	waitFor(t, "the embargo's end", func() bool { return vendor.detail(t, caseID).Case.EMState != "ACTIVE" })
	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{}`); status != http.StatusConflict || !strings.Contains(string(body), finderID) {
		t.Fatalf("publish before the review: %d %s, want 409 naming the reviewer", status, body)
	}
	// A request for changes stands against publishing until the reviewer
	// answers again (or a revised draft is shared).
	finder.submit(t, "finder", string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
		"object": map[string]any{"type": "Note", "content": "Name the affected versions.", "inReplyTo": draftNote, "review": "request-changes"}}, nil)))
	waitFor(t, "the finder's request for changes at the vendor", func() bool {
		d := vendor.detail(t, caseID)
		return d.Advisory != nil && d.Advisory.Draft != nil && len(d.Advisory.Draft.ChangesRequested()) == 1
	})
	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{}`); status != http.StatusConflict ||
		!strings.Contains(string(body), finderID) || !strings.Contains(string(body), "asked for changes") || !strings.Contains(string(body), "Name the affected versions.") {
		t.Fatalf("publish against a request for changes: %d %s, want 409 naming the reviewer and the comment", status, body)
	}
	finder.submit(t, "finder", string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
		"object": map[string]any{"type": "Note", "content": "Looks right.", "inReplyTo": draftNote, "review": "approve"}}, nil)))
	waitFor(t, "the finder's approval at the vendor", func() bool {
		d := vendor.detail(t, caseID)
		return d.Advisory != nil && d.Advisory.Draft != nil && len(d.Advisory.Draft.ChangesRequested()) == 0
	})

	// The case page shows the products and each reviewer's answer.
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	page := b.get("/ui/cases/" + url.PathEscape(caseID))
	if !strings.Contains(page, product) || !strings.Contains(page, "pkg:npm/quagga-zebra@2.0.0") || !strings.Contains(page, cve) ||
		!strings.Contains(page, "review-approve") || !strings.Contains(page, "Looks right.") {
		t.Errorf("the case page lacks the products, the CVE id or the review:\n%s", section(page, `id="advisory"`))
	}

	// The participants agree on a publication time to come: publishing
	// before it needs force, although the embargo ended (the case is not
	// public: the agreement still holds).
	at := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	vendor.submit(t, "vendor", string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
		"object": map[string]any{"type": "Note", "content": "Proposed publication time: " + at, "publicationTime": at}}, nil)))
	var timeNote string
	waitFor(t, "the proposed time at the finder", func() bool {
		d := finder.detail(t, caseID)
		if d.Advisory != nil && d.Advisory.PublishAt != nil {
			timeNote = d.Advisory.PublishAt.NoteID
			return true
		}
		return false
	})
	finder.submit(t, "finder", string(js(map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Add", "target": caseID, "context": caseID,
		"object": map[string]any{"type": "Note", "content": "Publication time accepted: " + at, "publicationTime": at, "inReplyTo": timeNote}}, nil)))
	waitFor(t, "the finder's acceptance of the time at the vendor", func() bool {
		d := vendor.detail(t, caseID)
		return d.Advisory != nil && d.Advisory.PublishAt != nil && len(d.Advisory.PublishAt.Accepted) == 1
	})
	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{}`); status != http.StatusConflict ||
		!strings.Contains(string(body), at) || !strings.Contains(string(body), "force") {
		t.Fatalf("publish before the agreed time: %d %s, want 409 naming the time and force", status, body)
	}

	status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{"force":true}`)
	if status != http.StatusCreated {
		t.Fatalf("publish: %d %s", status, body)
	}
	var pub api.Published
	if err := json.Unmarshal(body, &pub); err != nil || pub.Links.CVE == "" {
		t.Fatalf("publish answer %s (%v)", body, err)
	}
	var article map[string]any
	waitFor(t, "Create(Article) at the follower", func() bool {
		for _, it := range coord.inboxItems(t, "coord") {
			if it["type"] == "Create" {
				article, _ = it["object"].(map[string]any)
				return true
			}
		}
		return false
	})
	if article["name"] != title || article["url"] != pub.Links.Page {
		t.Errorf("the Article: %v", article)
	}
	links := 0
	for _, a := range article["attachment"].([]any) {
		href := a.(map[string]any)["href"].(string)
		// Served once the case's ledger records the publication, which
		// the Create's delivery to the follower may overtake.
		waitFor(t, "attachment "+href, func() bool {
			status, body := get(t, href, "")
			return status == http.StatusOK && json.Valid(body)
		})
		links++
	}
	if links != 3 || !strings.Contains(fmt.Sprint(article["tag"]), "#"+cve) {
		t.Errorf("attachments %d, tags %v", links, article["tag"])
	}

	// The documents pass their schemas, the hashes match.
	_, doc := get(t, pub.Links.CSAF, "")
	var v any
	_ = json.Unmarshal(doc, &v)
	if errs, err := csaf.ValidateCSAF(v); err != nil || len(errs) > 0 {
		t.Errorf("the served CSAF: %v %v", err, errs)
	}
	_, sum := get(t, pub.Links.CSAF+".sha256", "")
	want := sha256.Sum256(doc)
	if !strings.HasPrefix(string(sum), hex.EncodeToString(want[:])) {
		t.Errorf("csaf.json.sha256 = %s", sum)
	}
	_, meta := get(t, vendor.url+"/.well-known/csaf/provider-metadata.json", "")
	_ = json.Unmarshal(meta, &v)
	if errs, err := csaf.ValidateProviderMetadata(v); err != nil || len(errs) > 0 {
		t.Errorf("provider metadata: %v %v\n%s", err, errs, meta)
	}
	_, feed := get(t, vendor.url+"/.well-known/csaf/white/feed-tlp-white.json", "")
	// The ROLIE schema wants https links, which a node serving on https
	// (any production node) writes; this test node listens on http.
	_ = json.Unmarshal([]byte(strings.ReplaceAll(string(feed), "http://127.0.0.1", "https://127.0.0.1")), &v)
	if errs, err := csaf.ValidateROLIE(v); err != nil || len(errs) > 0 || !strings.Contains(string(feed), tracking) {
		t.Errorf("ROLIE feed: %v %v\n%s", err, errs, feed)
	}
	var entry struct {
		Feed struct {
			Entry []struct {
				Content struct{ Src string }
			}
		}
	}
	_ = json.Unmarshal(feed, &entry)
	if len(entry.Feed.Entry) != 1 {
		t.Fatalf("feed entries: %s", feed)
	}
	if status, b := get(t, entry.Feed.Entry[0].Content.Src, ""); status != http.StatusOK || string(b) != string(doc) {
		t.Errorf("the feed's CSAF file %s: %d", entry.Feed.Entry[0].Content.Src, status)
	}
	if status, b := get(t, vendor.url+"/advisories?format=json", ""); status != http.StatusOK || !strings.Contains(string(b), tracking) {
		t.Errorf("the list: %d %s", status, b)
	}
	// The Article's hashtag links the list of the advisories of its id.
	if status, b := get(t, vendor.url+"/advisories?format=json&tag="+cve, ""); status != http.StatusOK || !strings.Contains(string(b), tracking) {
		t.Errorf("the list of %s: %d %s", cve, status, b)
	}
	if status, b := get(t, vendor.url+"/advisories?format=json&tag=CVE-2026-00001", ""); status != http.StatusOK || strings.Contains(string(b), tracking) {
		t.Errorf("the list of another CVE id: %d %s", status, b)
	}
	if status, b := get(t, pub.Links.Page, "application/activity+json"); status != http.StatusOK || !strings.Contains(string(b), `"type":"Article"`) {
		t.Errorf("the Article at its id: %d %s", status, b)
	}
	// An ActivityPub client that looks the Article up by its id gets an
	// ActivityStreams document: its media type and its @context.
	for _, accept := range []string{"application/activity+json", `application/ld+json; profile="https://www.w3.org/ns/activitystreams"`} {
		req, err := http.NewRequest(http.MethodGet, pub.Links.Page, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || resp.Header.Get("Content-Type") != "application/activity+json" || doc["@context"] == nil || doc["type"] != "Article" || doc["id"] != pub.Links.Page {
			t.Errorf("the Article for Accept %s: %s, %v, @context %v; want an ActivityStreams document", accept, resp.Header.Get("Content-Type"), err, doc["@context"])
		}
	}

	// What CSAF aggregators and feed readers poll is served with an ETag:
	// asked again with it, 304 and no body, while it is what it was.
	polled := []string{
		vendor.url + "/.well-known/csaf/provider-metadata.json",
		vendor.url + "/.well-known/csaf/white/feed-tlp-white.json",
		vendor.url + "/.well-known/csaf/white/index.txt",
		vendor.url + "/.well-known/csaf/white/changes.csv",
		entry.Feed.Entry[0].Content.Src,
		entry.Feed.Entry[0].Content.Src + ".sha512",
		pub.Links.CSAF, pub.Links.CSAF + ".sha256", pub.Links.OSV,
	}
	etags := map[string]string{}
	for _, u := range polled {
		status, tag, body := getIfNoneMatch(t, u, "")
		if status != http.StatusOK || tag == "" || len(body) == 0 {
			t.Errorf("GET %s: %d, ETag %q, %d bytes; want 200 with an ETag", u, status, tag, len(body))
			continue
		}
		etags[u] = tag
		if status, again, body := getIfNoneMatch(t, u, `"other", `+tag); status != http.StatusNotModified || again != tag || len(body) != 0 {
			t.Errorf("GET %s with its ETag %s: %d, ETag %q, %d bytes; want 304, the same ETag and no body", u, tag, status, again, len(body))
		}
		if status, _, body := getIfNoneMatch(t, u, `"other"`); status != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s with another ETag: %d, %d bytes; want 200 and the body", u, status, len(body))
		}
	}

	// An id the case records after the publication is in the Article once
	// a revision publishes it, not before: the Article at its id is the
	// published revision's.
	const later = "CVE-2026-48299"
	vendor.submit(t, "vendor", string(js(withContext(vocab.AddVulnerabilityIDs(caseID, later, nil)), nil)))
	waitFor(t, "the later CVE id in the case", func() bool { return len(vendor.detail(t, caseID).VulnerabilityIDs) == 2 })
	if _, b := get(t, pub.Links.Page, "application/activity+json"); strings.Contains(string(b), later) {
		t.Errorf("the Article of revision 1 names %s, which only the case knows yet: %s", later, b)
	}

	if status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{"summary":"Fixed in 2.0.1; every version before is affected."}`); status != http.StatusCreated {
		t.Fatalf("revise: %d %s", status, body)
	}
	waitFor(t, "Update(Article) at the follower", func() bool { return countType(coord.inboxItems(t, "coord"), "Update") == 1 })
	waitFor(t, "the Article of revision 2", func() bool {
		_, b := get(t, pub.Links.Page, "application/activity+json")
		return strings.Contains(string(b), "#"+later)
	})
	waitFor(t, "the CSAF of revision 2", func() bool {
		_, b := get(t, pub.Links.CSAF, "")
		return strings.Contains(string(b), `"version": "2"`) && strings.Contains(string(b), "every version before is affected")
	})
	// Revision 2 changes what the pollers read: their old ETags fetch it.
	// (The provider metadata and changes.csv say times to the second,
	// which this test's two revisions may share.)
	for _, u := range []string{
		vendor.url + "/.well-known/csaf/white/feed-tlp-white.json",
		pub.Links.CSAF, pub.Links.CSAF + ".sha256",
	} {
		if old := etags[u]; old != "" {
			if status, tag, _ := getIfNoneMatch(t, u, old); status != http.StatusOK || tag == old {
				t.Errorf("GET %s after revision 2 with the ETag of revision 1: %d, ETag %q; want 200 and a new ETag", u, status, tag)
			}
		}
	}
	// The coordinator shares it with its own followers.
	coord.submit(t, "coord", js(vocab.NewAnnounce(pub.Links.Page, coordID+"/followers", vocab.PublicCollection)))
	// The vendor shares what it published, and no advisory page it does
	// not serve.
	for _, tc := range []struct {
		object string
		status int
	}{
		{pub.Links.Page, http.StatusCreated},
		{pub.Links.CSAF, http.StatusCreated},
		{vendor.url + "/advisories/VULTRON-NOSUCHCASE", http.StatusUnprocessableEntity},
		{vendor.url + "/advisories/VULTRON-NOSUCHCASE/csaf.json", http.StatusUnprocessableEntity},
		{vendor.url + "/advisories/nothing", http.StatusUnprocessableEntity},
	} {
		status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", js(vocab.NewAnnounce(tc.object, vendorID+"/followers")))
		if status != tc.status || (status != http.StatusCreated && !strings.Contains(string(body), "is no advisory this node has published")) {
			t.Errorf("the vendor's Announce of %s: %d %s; want %d", tc.object, status, body, tc.status)
		}
	}
	// Nor the case itself: the refusal says what an Announce shares.
	status, body = vendor.api(t, http.MethodPost, "/actors/vendor/outbox", js(vocab.NewAnnounce(caseID, vendorID+"/followers")))
	if want := "shares a published advisory, not " + caseID; status != http.StatusUnprocessableEntity || !strings.Contains(string(body), want) {
		t.Errorf("the vendor's Announce of its case: %d %s; want 422 saying %q", status, body, want)
	}
	// What the vendor sent (the product, the draft, the Create and Update
	// of the Article) and what the Case Actor recorded match the served
	// schemas.
	schema := servedSchema(t, vendor)
	for _, a := range []string{"vendor", "case-" + cases.ShortID(caseID)} {
		status, body := vendor.api(t, http.MethodGet, "/actors/"+a+"/outbox?limit=200", "")
		var page struct {
			Items []json.RawMessage `json:"orderedItems"`
		}
		if err := json.Unmarshal(body, &page); status != http.StatusOK || err != nil || len(page.Items) == 0 {
			t.Fatalf("outbox of %s: %d %v", a, status, err)
		}
		for i, it := range page.Items {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(it))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(v); err != nil {
				t.Errorf("%s's outbox item %d does not match the served schema: %v\n%s", a, i, err, it)
			}
		}
	}
}

// TestAdvisoryAfterOwnershipTransfer publishes a case's advisory, then
// moves the case's ownership to a coordinator on another node. The vendor's
// node goes on serving the Article its followers hold, at its address and
// with the same documents, and says who carries the advisory on once the
// new owner has published; the new owner's first revision is an Article of
// its own (Create, on its node), which its node serves with every revision.
func TestAdvisoryAfterOwnershipTransfer(t *testing.T) {
	vendor, coord, c, steps := coordinatedCase(t)
	vendorID, coordID, caseID := vendor.actorID("vendor"), coord.actorID("coord"), c.ID
	js := jsonOf(t)

	publish := func(n *testNode, body string) api.Published {
		t.Helper()
		status, b := n.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", body)
		if status != http.StatusCreated {
			t.Fatalf("publish at %s: %d %s", n.url, status, b)
		}
		var pub api.Published
		if err := json.Unmarshal(b, &pub); err != nil {
			t.Fatal(err)
		}
		return pub
	}
	revisions := func(n *testNode) int {
		d := n.detail(t, caseID)
		if d.Advisory == nil {
			return 0
		}
		return len(d.Advisory.Revisions)
	}
	first := publish(vendor, `{"title":"Otter codec stack overflow"}`)
	waitFor(t, "the first revision in the vendor's and the coordinator's copies", func() bool { return revisions(vendor) == 1 && revisions(coord) == 1 })
	steps.length++
	status, csafBefore := get(t, first.Links.CSAF, "")
	if status != http.StatusOK {
		t.Fatalf("the vendor's CSAF document: %d %s", status, csafBefore)
	}

	steps.transferToCoord(vendor, coord, caseID)
	if o := coord.detail(t, caseID).Case.Owner; o != coordID {
		t.Fatalf("after the transfer the owner is %s, want %s", o, coordID)
	}

	// The Article the vendor published is still served at its address,
	// as the vendor's, with the same documents.
	status, body := get(t, first.Links.Page, "application/activity+json")
	var art map[string]any
	if status != http.StatusOK || json.Unmarshal(body, &art) != nil || art["id"] != first.Links.Page || art["attributedTo"] != vendorID {
		t.Fatalf("the vendor's Article after the transfer: %d %s; want 200 with id %s attributed to %s", status, body, first.Links.Page, vendorID)
	}
	if status, after := get(t, first.Links.CSAF, ""); status != http.StatusOK || !bytes.Equal(after, csafBefore) {
		t.Errorf("the vendor's CSAF document after the transfer: %d, changed: %t", status, !bytes.Equal(after, csafBefore))
	}
	// The new owner has published nothing yet: its node serves no
	// advisory of the case.
	if status, body := get(t, coord.url+"/advisories/"+cases.TrackingID(caseID), ""); status != http.StatusNotFound {
		t.Errorf("the coordinator's page before it published: %d %s, want 404", status, body)
	}

	// The new owner's revision is an Article of its own.
	next := publish(coord, `{"title":"Otter codec stack overflow (all versions)"}`)
	if next.Links.Page == first.Links.Page || !strings.HasPrefix(next.Links.Page, coord.url+"/") {
		t.Fatalf("the new owner's revision is at %s, want a page of its own node", next.Links.Page)
	}
	waitFor(t, "the second revision in the vendor's and the coordinator's copies", func() bool { return revisions(vendor) == 2 && revisions(coord) == 2 })
	if d := vendor.detail(t, caseID); d.Advisory.Revisions[1].By != coordID {
		t.Errorf("revision 2 was published by %s, want %s", d.Advisory.Revisions[1].By, coordID)
	}
	var created bool
	for _, it := range coord.boxItems(t, "coord", "outbox") {
		if o, _ := it["object"].(map[string]any); o["id"] == next.Links.Page {
			created = it["type"] == "Create"
		}
	}
	if !created {
		t.Errorf("the new owner did not publish its Article with Create")
	}
	status, body = get(t, next.Links.Page, "application/activity+json")
	if err := json.Unmarshal(body, &art); status != http.StatusOK || err != nil || art["name"] != "Otter codec stack overflow (all versions)" || art["attributedTo"] != coordID {
		t.Errorf("the new owner's Article: %d %s", status, body)
	}
	var doc struct {
		Document struct {
			Tracking struct {
				RevisionHistory []any `json:"revision_history"`
			} `json:"tracking"`
		} `json:"document"`
	}
	if status, b := get(t, next.Links.CSAF, ""); status != http.StatusOK || json.Unmarshal(b, &doc) != nil || len(doc.Document.Tracking.RevisionHistory) != 2 {
		t.Errorf("the new owner's CSAF document: %d, %d revisions, want 2", status, len(doc.Document.Tracking.RevisionHistory))
	}
	// The vendor's node still serves the vendor's Article as it was, and
	// its page leads to where the advisory goes on.
	status, body = get(t, first.Links.Page, "application/activity+json")
	if err := json.Unmarshal(body, &art); status != http.StatusOK || err != nil || art["name"] != "Otter codec stack overflow" {
		t.Errorf("the vendor's Article after the new owner's revision: %d %s", status, body)
	}
	if status, after := get(t, first.Links.CSAF, ""); status != http.StatusOK || !bytes.Equal(after, csafBefore) {
		t.Errorf("the vendor's CSAF document after the new owner's revision: %d, changed: %t", status, !bytes.Equal(after, csafBefore))
	}
	if status, page := get(t, first.Links.Page, "text/html"); status != http.StatusOK || !strings.Contains(string(page), next.Links.Page) {
		t.Errorf("the vendor's page does not lead to the new owner's: %d\n%s", status, page)
	}
	// Each may share the Article its node serves with its followers.
	for _, tc := range []struct {
		n          *testNode
		name, page string
	}{{vendor, "vendor", first.Links.Page}, {coord, "coord", next.Links.Page}} {
		if status, body := tc.n.api(t, http.MethodPost, "/actors/"+tc.name+"/outbox", js(vocab.NewAnnounce(tc.page, tc.n.actorID(tc.name)+"/followers"))); status != http.StatusCreated {
			t.Errorf("%s's Announce of %s: %d %s", tc.name, tc.page, status, body)
		}
	}
	// The former owner cannot revise it any more.
	if status, b := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{}`); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("the former owner's publication: %d %s, want it refused", status, b)
	}
}

// TestNoEmbargoAroundAPublishedAdvisory: an advisory is not published while
// an embargo proposal waits for answers, and once it is published no
// embargo is proposed or accepted: an embargo would keep from the public
// what it reads already. Refused by the sender's node with 409, nothing
// sent.
func TestNoEmbargoAroundAPublishedAdvisory(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	finder := startNode(t, "finder:Person")
	vendorID, finderID := vendor.actorID("vendor"), finder.actorID("finder")
	offer := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Path traversal in the badger upload","content":"../ in a name escapes the upload directory."}}`, vendorID))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offer, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	propose := func() string {
		end := time.Now().Add(45 * 24 * time.Hour).UTC().Format(time.RFC3339)
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
			time.Now().UTC().Format(time.RFC3339), end, caseID)
	}
	publish := func() (int, string) {
		status, body := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{"title":"Badger upload path traversal"}`)
		return status, string(body)
	}

	proposal := finder.submit(t, "finder", propose())
	waitFor(t, "the proposal at the vendor", func() bool { return len(vendor.detail(t, caseID).Proposals) == 1 })
	if status, body := publish(); status != http.StatusConflict || !strings.Contains(body, proposal) || !strings.Contains(body, "waits for answers") {
		t.Fatalf("publish while an embargo proposal waits: %d %s, want 409 naming the proposal", status, body)
	}
	if d := vendor.detail(t, caseID); d.Advisory != nil && len(d.Advisory.Revisions) > 0 {
		t.Fatalf("the refused publication was recorded: %+v", d.Advisory)
	}
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Reject","object":%q,"context":%q}`, proposal, caseID))
	waitFor(t, "the proposal rejected", func() bool { return len(vendor.detail(t, caseID).Proposals) == 0 })
	if status, body := publish(); status != http.StatusCreated {
		t.Fatalf("publish: %d %s", status, body)
	}
	waitFor(t, "the publication in the finder's replica", func() bool {
		d := finder.detail(t, caseID)
		return d.Advisory != nil && len(d.Advisory.Revisions) == 1
	})
	for _, n := range []struct {
		node *testNode
		name string
	}{{finder, "finder"}, {vendor, "vendor"}} {
		before := len(n.node.boxItems(t, n.name, "outbox"))
		status, body := n.node.api(t, http.MethodPost, "/actors/"+n.name+"/outbox", propose())
		if status != http.StatusConflict || !strings.Contains(string(body), "is public") || !json.Valid(body) {
			t.Errorf("%s's embargo proposal after the publication: %d %s, want 409 saying the advisory is public", n.name, status, body)
		}
		if after := len(n.node.boxItems(t, n.name, "outbox")); after != before {
			t.Errorf("%s's refused proposal is in its outbox (%d items, %d before)", n.name, after, before)
		}
	}
	if d := vendor.detail(t, caseID); d.Case.EMState != "NONE" || len(d.Proposals) != 0 {
		t.Errorf("after the refused proposals the case is EM %s with %d proposals", d.Case.EMState, len(d.Proposals))
	}
}

// TestDraftOfAnUnknownFormat: a draft asked for in a format the node does
// not write is refused with 400, naming the formats it writes; a draft
// in one of them is served.
func TestDraftOfAnUnknownFormat(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Heap overflow","content":"A heap overflow."}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	draft := "/api/cases/" + url.PathEscape(caseID) + "/advisory/draft"
	for _, format := range []string{"pdf", "csaf.json.sha256", "../csaf"} {
		status, body := vendor.api(t, http.MethodGet, draft+"?format="+url.QueryEscape(format), "")
		if status != http.StatusBadRequest || !json.Valid(body) || !strings.Contains(string(body), `"error"`) || !strings.Contains(string(body), "csaf, cve or osv") {
			t.Errorf("draft in format %q: %d %s; want 400 naming csaf, cve or osv", format, status, body)
		}
	}
	for _, format := range []string{"", "csaf", "osv"} {
		if status, body := vendor.api(t, http.MethodGet, draft+"?format="+format, ""); status != http.StatusOK || !json.Valid(body) {
			t.Errorf("draft in format %q: %d %s", format, status, body)
		}
	}
}
