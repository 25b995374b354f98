package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/vocab"
)

// coordinatedCase opens a case at a vendor's node, which hosts its Case
// Actor, from a finder's report on a node of its own, and has a
// coordinator of a third node invited and joined. It returns the
// vendor's and the coordinator's nodes, the case, and the steps that
// follow its ledger.
func coordinatedCase(t *testing.T) (vendor, coord *testNode, c api.Case, steps *caseSteps) {
	t.Helper()
	vendor = startNode(t, "vendor:Organization")
	finder := startNode(t, "finder:Person")
	coord = startNode(t, "coord:Organization")
	vendorID, finderID, coordID := vendor.actorID("vendor"), finder.actorID("finder"), coord.actorID("coord")

	offer := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Stack overflow in the otter codec","content":"A deep nesting overflows the stack."}}`, vendorID))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offer, finderID))
	c = vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	steps = &caseSteps{t: t, host: vendor, length: 2}
	steps.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["coordinator"]}`,
		coordID, c.ID, c.ID))
	invite := coord.awaitInboxItem(t, "coord", "Invite")
	steps.step(coord, "coord", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q}`, invite), coord)
	steps.step(coord, "coord", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, c.ID, c.ID), coord)
	return vendor, coord, c, steps
}

// transferToCoord makes the coordinator of coordinatedCase the owner of
// case caseID: the vendor offers it the case and it accepts.
func (s *caseSteps) transferToCoord(vendor, coord *testNode, caseID string) {
	s.t.Helper()
	transfer := s.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","object":%q,"target":%q,"context":%q}`,
		caseID, coord.actorID("coord"), caseID), coord)
	s.step(coord, "coord", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, transfer, caseID), coord)
}

// transferredCase opens a case as coordinatedCase does and makes the
// coordinator its owner; the vendor publishes the advisory with title
// first, before the transfer, unless it is "".
func transferredCase(t *testing.T, first string) (vendor, coord *testNode, caseID, caseActor string) {
	t.Helper()
	vendor, coord, c, steps := coordinatedCase(t)
	caseID, caseActor = c.ID, c.CaseActor
	if first != "" {
		if status, b := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", fmt.Sprintf(`{"title":%q}`, first)); status != http.StatusCreated {
			t.Fatalf("the vendor's publication: %d %s", status, b)
		}
		steps.length++
		coord.oneCase(t, "the vendor's publication in the coordinator's replica", func(c api.Case) bool { return c.LedgerLength == steps.length })
	}
	steps.transferToCoord(vendor, coord, caseID)
	return vendor, coord, caseID, caseActor
}

// TestForgedRevisionIsNotServed: the vendor's node hosts the Case Actor
// of a case whose ownership passed to a coordinator on another node, which
// published its own Article of the advisory. The vendor's node then lies:
// its Case Actor records an Update of the coordinator's Article that the
// coordinator never sent, as a compromised or malicious Case Actor can
// write its ledger as it likes (the test has it record one by posting the
// Update signed with the coordinator's key, which the Case Actor cannot
// tell from a real one). The coordinator's replica takes the entry, as it
// takes every entry of its Case Actor; but its node serves at its own
// address, as its actor's, only what its actor published: the page, the
// Article, the CSAF document and the list stay revision 2.
func TestForgedRevisionIsNotServed(t *testing.T) {
	_, coord, caseID, caseActor := transferredCase(t, "")
	coordID := coord.actorID("coord")

	revisions := func(n *testNode) int {
		d := n.detail(t, caseID)
		if d.Advisory == nil {
			return 0
		}
		return len(d.Advisory.Revisions)
	}
	publish := func(body string) api.Published {
		t.Helper()
		status, b := coord.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", body)
		if status != http.StatusCreated {
			t.Fatalf("publish: %d %s", status, b)
		}
		var pub api.Published
		if err := json.Unmarshal(b, &pub); err != nil {
			t.Fatal(err)
		}
		return pub
	}
	pub := publish(`{"title":"Otter codec stack overflow"}`)
	waitFor(t, "revision 1 in the coordinator's replica", func() bool { return revisions(coord) == 1 })
	publish(`{"title":"Otter codec stack overflow (all versions)"}`)
	waitFor(t, "revision 2 in the coordinator's replica", func() bool { return revisions(coord) == 2 })
	_, csafBefore := get(t, pub.Links.CSAF, "")

	// The Case Actor records an Update of the coordinator's Article that
	// the coordinator's node never sent.
	const forged = "Forged: no fix is needed"
	self, _ := coord.Local("coord")
	body, err := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "id": coord.url + "/activities/forged-1", "type": "Update",
		"actor": coordID, "context": caseID, "to": []string{caseActor, vocab.PublicCollection},
		"object": map[string]any{"type": "Article", "id": pub.Links.Page, "url": pub.Links.Page, "attributedTo": coordID, "context": caseID,
			"name": forged, "summary": forged, "content": "<p>" + forged + "</p>"}})
	if err != nil {
		t.Fatal(err)
	}
	status, msg := (&peer{keyID: self.KeyID, key: self.Key}).post(t, caseActor+"/inbox", body, nil)
	if status != http.StatusAccepted {
		t.Fatalf("the Case Actor did not record the forged Update: %d %s", status, msg)
	}
	waitFor(t, "the forged revision in the coordinator's replica", func() bool { return revisions(coord) == 3 })

	for _, u := range []struct{ url, accept string }{
		{pub.Links.Page, "application/activity+json"},
		{pub.Links.Page, "text/html"},
		{pub.Links.CSAF, ""},
		{coord.url + "/advisories?format=json", ""},
		{coord.url + "/.well-known/csaf/white/feed-tlp-white.json", ""},
	} {
		status, b := get(t, u.url, u.accept)
		if status != http.StatusOK || strings.Contains(string(b), forged) {
			t.Errorf("GET %s (%s) after the forged revision: %d, serves the forged text: %t\n%s", u.url, u.accept, status, strings.Contains(string(b), forged), b)
		}
	}
	if _, after := get(t, pub.Links.CSAF, ""); !bytes.Equal(after, csafBefore) {
		t.Errorf("the coordinator's CSAF document changed with the forged revision:\n%s", after)
	}
	// The draft of the next revision, and the revision, which says only
	// what changed, start from the text its actor published, not from the
	// forged one; the revision is served as it sent it.
	if status, b := coord.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/advisory/draft", ""); status != http.StatusOK || strings.Contains(string(b), forged) {
		t.Errorf("the draft of revision 4: %d, with the forged text: %t", status, strings.Contains(string(b), forged))
	}
	publish(`{"details":"Fixed in 2.0.1."}`)
	waitFor(t, "the coordinator's revision 4 at its page", func() bool {
		_, b := get(t, pub.Links.Page, "application/activity+json")
		return strings.Contains(string(b), "Fixed in 2.0.1.")
	})
	if _, b := get(t, pub.Links.Page, "application/activity+json"); strings.Contains(string(b), forged) || !strings.Contains(string(b), "Otter codec stack overflow (all versions)") {
		t.Errorf("the coordinator's revision 4 does not start from its revision 2: %s", b)
	}
}

// TestPublishRefusesBadRequests: a publication request the case cannot
// record (a title or text over its bounds, fields it does not know, no
// JSON object, a body over the limit) is refused with a 4xx and a JSON
// error, and nothing is published: no revision, no Article at the node,
// nothing sent to the followers.
func TestPublishRefusesBadRequests(t *testing.T) {
	_, vendor, _, c := openedCase(t, Config{}, Config{})
	path := "/api/cases/" + url.PathEscape(c.ID) + "/advisory/publish"
	for _, tc := range []struct {
		name, body string
		want       int
	}{
		{"a title of 1,000 bytes", fmt.Sprintf(`{"title":%q}`, strings.Repeat("t", 1000)), http.StatusUnprocessableEntity},
		{"a blank title", `{"title":"   "}`, http.StatusUnprocessableEntity},
		{"a summary of 100 KiB", fmt.Sprintf(`{"summary":%q}`, strings.Repeat("s", 100<<10)), http.StatusUnprocessableEntity},
		{"details of 100 KiB", fmt.Sprintf(`{"details":%q}`, strings.Repeat("d", 100<<10)), http.StatusUnprocessableEntity},
		{"an unknown field", `{"tittle":"x"}`, http.StatusBadRequest},
		{"no JSON object", `[1,2]`, http.StatusBadRequest},
		{"no body", ``, http.StatusBadRequest},
		{"two JSON values", `{"title":"One"}{"title":"Two"}`, http.StatusBadRequest},
		{"a body of 1 MiB", fmt.Sprintf(`{"details":%q}`, strings.Repeat("d", 1<<20)), http.StatusRequestEntityTooLarge},
	} {
		status, body := vendor.api(t, http.MethodPost, path, tc.body)
		var e struct {
			Error string `json:"error"`
		}
		if err := json.Unmarshal(body, &e); status != tc.want || err != nil || e.Error == "" {
			t.Errorf("%s: %d %.300s, want %d with a JSON error", tc.name, status, body, tc.want)
		}
	}
	if d := vendor.detail(t, c.ID); d.Advisory != nil && len(d.Advisory.Revisions) > 0 {
		t.Errorf("a refused request published revision(s): %+v", d.Advisory.Revisions)
	}
	if n := countType(vendor.boxItems(t, "vendor", "outbox"), "Create"); n != 0 {
		t.Errorf("the vendor's outbox holds %d Create(s) after refused requests", n)
	}
	if status, body := get(t, vendor.url+"/advisories/"+cases.TrackingID(c.ID), "application/activity+json"); status != http.StatusNotFound {
		t.Errorf("the advisory page after refused requests: %d %.300s", status, body)
	}
}

// TestArticleLinkIsHTTP: a new owner on another server publishes its
// Article with an id of the javascript: scheme on its host
// (javascript://HOST/%0A...), which parses as a URL on the owner's host.
// The former owner's page links the new owner's Article: served at the
// former owner's origin (the dashboard's), such a link would run the new
// owner's script when clicked. The Case Actor refuses an Article that is
// not an http(s) URL, and the former owner's page links none.
func TestArticleLinkIsHTTP(t *testing.T) {
	vendor, coord, caseID, caseActor := transferredCase(t, "Otter codec stack overflow")
	coordID := coord.actorID("coord")
	page := vendor.url + "/advisories/" + cases.TrackingID(caseID)
	host := strings.TrimPrefix(coord.url, "http://")
	evil := "javascript://" + host + "/%0Aalert(document.domain)"
	self, _ := coord.Local("coord")
	body, err := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "id": coord.url + "/activities/evil-1", "type": "Create",
		"actor": coordID, "context": caseID, "to": []string{caseActor, vocab.PublicCollection},
		"object": map[string]any{"type": "Article", "id": evil, "attributedTo": coordID, "context": caseID, "name": "Otter codec stack overflow (all versions)"}})
	if err != nil {
		t.Fatal(err)
	}
	status, msg := (&peer{keyID: self.KeyID, key: self.Key}).post(t, caseActor+"/inbox", body, nil)
	// The Case Actor decides before it answers: what it records is
	// recorded by now.
	if d := vendor.detail(t, caseID); d.Advisory != nil && len(d.Advisory.Revisions) > 1 {
		t.Errorf("the Case Actor recorded the javascript: Article as revision %d (%d %s)", len(d.Advisory.Revisions), status, msg)
	}
	if _, b := get(t, page, "text/html"); strings.Contains(strings.ToLower(string(b)), "javascript:") {
		t.Errorf("the former owner's page links a javascript: URL:\n%s", b)
	}
}

// TestAnnounceOfTheCaseByAnotherPath: an actor announces only the
// advisories its node published, nothing else of its node (a case's
// address would reach the followers and the public). The address of the
// case, or of its report's activity, written as a path under a published
// advisory's page that climbs out of it (dot segments, plain or
// percent-encoded), is still the case's: it is refused, 422, and nothing
// is sent.
func TestAnnounceOfTheCaseByAnotherPath(t *testing.T) {
	_, vendor, offer, c := openedCase(t, Config{}, Config{})
	if status, b := vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(c.ID)+"/advisory/publish", `{"title":"Overflow in the parser"}`); status != http.StatusCreated {
		t.Fatalf("publish: %d %s", status, b)
	}
	vendorID := vendor.actorID("vendor")
	page := vendor.url + "/advisories/" + cases.TrackingID(c.ID)
	waitFor(t, "the advisory's page", func() bool { status, _ := get(t, page, ""); return status == http.StatusOK })
	caseURL, err := url.Parse(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	offerURL, err := url.Parse(offer)
	if err != nil {
		t.Fatal(err)
	}
	js := jsonOf(t)
	before := countType(vendor.boxItems(t, "vendor", "outbox"), "Announce")
	for _, object := range []string{
		page + "/../.." + caseURL.Path,
		page + "/%2e%2e/%2E%2E" + caseURL.Path,
		page + "/csaf.json/../../.." + offerURL.Path,
		page + "/.." + "/../" + strings.TrimPrefix(caseURL.Path, "/") + "/ledger",
	} {
		status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", js(vocab.NewAnnounce(object, vendorID+"/followers")))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), `"error"`) {
			t.Errorf("Announce of %s: %d %s; want 422 with a JSON error", object, status, body)
		}
	}
	if after := countType(vendor.boxItems(t, "vendor", "outbox"), "Announce"); after != before {
		t.Errorf("%d Announce(s) sent", after-before)
	}
	// The page itself is announced.
	if status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", js(vocab.NewAnnounce(page, vendorID+"/followers"))); status != http.StatusCreated {
		t.Errorf("Announce of the advisory's page: %d %s", status, body)
	}
}
