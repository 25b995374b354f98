package cases

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

func product(t *testing.T, actor, fields string) *vocab.Activity {
	return act(t, "Add", actor, fmt.Sprintf(`"object":{"type":"ProductStatus",%s},"target":%q,"context":%q`, fields, caseID, caseID))
}

func article(t *testing.T, typ, actor, id, name string) *vocab.Activity {
	return act(t, typ, actor, fmt.Sprintf(`"object":{"id":%q,"type":"Article","name":%q,"summary":"S","content":"<p>C</p>"},"context":%q`, id, name, caseID))
}

func note(t *testing.T, actor, id, fields string) *vocab.Activity {
	if fields != "" {
		fields = "," + fields
	}
	return act(t, "Add", actor, fmt.Sprintf(`"object":{"id":%q,"type":"Note","content":"c"%s},"target":%q,"context":%q`, id, fields, caseID, caseID))
}

// TestProducts: a vendor states its products' statuses with checked
// identifiers; a later statement of the same product replaces the
// earlier; others may not speak for the vendor.
// TestProductVersions: versions the advisory's documents cannot read
// (">= 1.0", words) are refused by the sender's node and the Case Actor
// (checkProductVersions), never by a replica, which applies what its Case
// Actor recorded: an older one took any versions.
func TestProductVersions(t *testing.T) {
	v := fmt.Sprintf(`"name":"Widget","vendor":%q`, vendor)
	for _, versions := range []string{"between 1 and 2", ">= 1.0", "<= "} {
		a := product(t, vendor, v+fmt.Sprintf(`,"status":"affected","versions":%q`, versions))
		err := checkProductVersions(Message{Activity: a, Class: vocab.Classification{Semantic: vocab.AddProductStatusToCase}})
		if problem.Status(err) != http.StatusUnprocessableEntity || !strings.Contains(problem.Message(err), "versions of product") {
			t.Errorf("versions %q: %v; want 422 naming the product's versions", versions, err)
		}
		c := newCase(t, false)
		must(t, c, vocab.AddProductStatusToCase, a)
	}
	a := product(t, vendor, v+`,"status":"affected","versions":"< 2.0"`)
	if err := checkProductVersions(Message{Activity: a, Class: vocab.Classification{Semantic: vocab.AddProductStatusToCase}}); err != nil {
		t.Errorf("versions < 2.0: %v", err)
	}
}

func TestProducts(t *testing.T) {
	c := newCase(t, false)
	v := fmt.Sprintf(`"name":"Widget","vendor":%q`, vendor)
	refusals := []struct {
		name, actor, fields string
		status              int
		want                string
	}{
		{"bad purl", vendor, v + `,"status":"affected","purl":"widget"`, http.StatusUnprocessableEntity, "is not a package URL"},
		{"bad cpe", vendor, v + `,"status":"affected","cpe":"cpe:widget"`, http.StatusUnprocessableEntity, "is not a CPE name"},
		{"bad status", vendor, v + `,"status":"broken"`, http.StatusUnprocessableEntity, "is not one of affected"},
		{"justification when affected", vendor, v + `,"status":"affected","justification":"component_not_present"`, http.StatusUnprocessableEntity, "not affected"},
		{"vendor not a participant", vendor, `"name":"W","vendor":"https://nobody.example/a","status":"fixed"`, http.StatusUnprocessableEntity, "is not a participant"},
		{"finder speaks for the vendor", finder, v + `,"status":"fixed"`, http.StatusForbidden, "only the vendor itself or the case owner"},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			refused(t, c, vocab.AddProductStatusToCase, product(t, r.actor, r.fields), r.status, r.want)
		})
	}
	must(t, c, vocab.AddProductStatusToCase, product(t, vendor, v+`,"status":"under-investigation","purl":"pkg:npm/widget@1.0.0","versions":"< 2.0"`))
	must(t, c, vocab.AddProductStatusToCase, product(t, vendor, v+`,"status":"affected","purl":"pkg:npm/widget@1.0.0","versions":"< 2.0","content":"Upgrade to 2.0."`))
	must(t, c, vocab.AddProductStatusToCase, product(t, vendor, v+`,"status":"fixed","cpe":"cpe:2.3:a:vendor:widget:2.0:*:*:*:*:*:*:*","versions":"2.0"`))
	must(t, c, vocab.AddProductStatusToCase, product(t, vendor, v+`,"status":"fixed","versions":"<=2.0.1-rc.1"`))
	if len(c.Products) != 3 || c.Products[0].Status != ProductAffected || c.Products[0].Statement != "Upgrade to 2.0." || c.Products[1].Status != ProductFixed {
		t.Fatalf("products = %+v", c.Products)
	}
}

// TestPublication: no publication while the embargo is in force and the
// case is not public; the owner publishes once, then revises; each
// revision keeps what the case said then.
func TestPublication(t *testing.T) {
	c := newCase(t, true)
	const art = caseID + "/advisory"
	refused(t, c, vocab.PublishAdvisory, article(t, "Create", vendor, art, "T"), http.StatusConflict, "embargo of case")
	must(t, c, vocab.RemoveEmbargoEventFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":"%s/embargoes/1","origin":%q,"context":%q`, caseID, caseID, caseID)))
	refused(t, c, vocab.PublishAdvisory, article(t, "Create", finder, art, "T"), http.StatusForbidden, "only the case owner")
	refused(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor, art, "T"), http.StatusConflict, "not published yet")
	must(t, c, vocab.AddVulnerabilityRecordToCase, act(t, "Add", vendor, fmt.Sprintf(`"object":{"type":"VulnerabilityRecord","name":"CVE-2026-1234"},"target":%q,"context":%q`, caseID, caseID)))
	must(t, c, vocab.PublishAdvisory, article(t, "Create", vendor, art, "Heap overflow"))
	refused(t, c, vocab.PublishAdvisory, article(t, "Create", vendor, art, "T"), http.StatusConflict, "published already")
	must(t, c, vocab.AddProductStatusToCase, product(t, vendor, fmt.Sprintf(`"name":"Widget","vendor":%q,"status":"fixed"`, vendor)))
	refused(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor, caseID+"/other", "T"), http.StatusUnprocessableEntity, "not "+caseID+"/other")
	must(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor, art, "Heap overflow (revised)"))
	revs := c.Advisory.Revisions
	if len(revs) != 2 || revs[0].Title != "Heap overflow" || len(revs[0].Products) != 0 || len(revs[1].Products) != 1 ||
		revs[1].Number != 2 || revs[0].VulnerabilityIDs[0] != "CVE-2026-1234" || len(revs[1].Involvements) != 2 {
		t.Fatalf("revisions = %+v", revs)
	}
}

// TestPublicationAfterTransfer: after the ownership moves to an actor of
// another server, the former owner publishes nothing, the new owner may not
// update the former owner's Article and publishes its revision as an
// Article of its own server; each revision names the Article that published
// it, and a node serves the Article its actor published with the revisions
// up to the latest one it published.
func TestPublicationAfterTransfer(t *testing.T) {
	c := newCase(t, false)
	const art = "https://v.example/advisories/A"
	must(t, c, vocab.PublishAdvisory, article(t, "Create", vendor, art, "Heap overflow"))
	// A revision recorded before revisions named their Article.
	c.Advisory.Revisions[0].Article = ""
	must(t, c, vocab.InviteActorToCase, act(t, "Invite", vendor, fmt.Sprintf(`"object":%q,"target":%q,"roles":["vendor"]`, vendor2, caseID)))
	must(t, c, vocab.AcceptInviteActorToCase, act(t, "Accept", vendor2, ""))
	must(t, c, vocab.EngageCase, join(t, vendor2))
	offer := act(t, "Offer", vendor, fmt.Sprintf(`"object":%q,"target":%q`, caseID, vendor2))
	must(t, c, vocab.OfferCaseOwnershipTransfer, offer)
	must(t, c, vocab.AcceptCaseOwnershipTransfer, act(t, "Accept", vendor2, fmt.Sprintf(`"object":%q`, offer.ID)))

	const art2 = "https://v2.example/advisories/A"
	refused(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor, art, "T"), http.StatusForbidden, "only the case owner")
	refused(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor2, art, "T"), http.StatusUnprocessableEntity, "not on the server of its publisher")
	refused(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor2, art2, "T"), http.StatusConflict, "an Article of its own (Create)")
	refused(t, c, vocab.PublishAdvisory, article(t, "Create", vendor2, "https://elsewhere.example/advisories/A", "T"), http.StatusUnprocessableEntity, "not on the server of its publisher")
	// An id of another scheme on the publisher's host, which the former
	// owner's page would link (a script, run at its origin).
	for _, id := range []string{"javascript://v2.example/%0Aalert(1)", "data://v2.example/x", "ftp://v2.example/A"} {
		refused(t, c, vocab.PublishAdvisory, article(t, "Create", vendor2, id, "T"), http.StatusUnprocessableEntity, "not an http(s) URL")
	}
	must(t, c, vocab.PublishAdvisory, article(t, "Create", vendor2, art2, "Heap overflow (all versions)"))
	refused(t, c, vocab.PublishAdvisory, article(t, "Create", vendor2, art2, "T"), http.StatusConflict, "published already")
	must(t, c, vocab.ReviseAdvisory, article(t, "Update", vendor2, art2, "Heap overflow (fixed in 2.1)"))

	revs := c.Advisory.Revisions
	if len(revs) != 3 || revs[0].Article != art || revs[1].Article != art2 || revs[2].Article != art2 || c.Advisory.ArticleID != art2 || revs[1].By != vendor2 {
		t.Fatalf("revisions = %+v, article %s", revs, c.Advisory.ArticleID)
	}
	for _, tc := range []struct {
		article string
		local   string
		n       int
		by      string
	}{
		{art, vendor, 1, vendor},
		{art2, vendor2, 3, vendor2},
		{art, vendor2, 0, ""},
		{art2, vendor, 0, ""},
	} {
		if n, by, err := c.PublishedAs(tc.article, func(r Revision) (bool, error) { return r.By == tc.local, nil }); err != nil || n != tc.n || by != tc.by {
			t.Errorf("PublishedAs(%s) on the node of %s = %d, %q; want %d, %q", tc.article, tc.local, n, by, tc.n, tc.by)
		}
	}
}

// TestDraftReviewAndPublicationTime: the owner shares a draft with chosen
// reviewers, who answer; only they may; the owner proposes a time that
// participants accept.
func TestDraftReviewAndPublicationTime(t *testing.T) {
	c := newCase(t, true)
	draft := fmt.Sprintf(`"audience":[%q],"attachment":[{"type":"Article","name":"Draft title","content":"Draft"}]`, finder)
	refused(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n0", draft), http.StatusForbidden, "only the case owner")
	must(t, c, vocab.AddNoteToCase, note(t, vendor, caseID+"/n1", draft))
	if d := c.Advisory.Draft; d == nil || d.Title != "Draft title" || len(d.Pending()) != 1 {
		t.Fatalf("draft = %+v", c.Advisory.Draft)
	}
	refused(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n2", `"review":"maybe","inReplyTo":"`+caseID+`/n1"`), http.StatusUnprocessableEntity, "a review is")
	refused(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n2", `"review":"approve","inReplyTo":"`+caseID+`/nX"`), http.StatusConflict, "answers no draft")
	refused(t, c, vocab.AddNoteToCase, note(t, vendor, caseID+"/n2", `"review":"approve","inReplyTo":"`+caseID+`/n1"`), http.StatusForbidden, "was not asked")
	must(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n2", `"review":"request-changes","inReplyTo":"`+caseID+`/n1"`))
	if d := c.Advisory.Draft; len(d.Pending()) != 0 || d.Reviews[0].State != ReviewChangesRequested || d.Reviews[0].Comment != "c" ||
		len(d.ChangesRequested()) != 1 || d.ChangesRequested()[0].Actor != finder {
		t.Fatalf("reviews = %+v", d.Reviews)
	}
	// A revised draft asks its reviewers again: the request for changes
	// no longer stands.
	must(t, c, vocab.AddNoteToCase, note(t, vendor, caseID+"/n1b", draft))
	if d := c.Advisory.Draft; len(d.ChangesRequested()) != 0 || len(d.Pending()) != 1 {
		t.Fatalf("after a revised draft, reviews = %+v", d.Reviews)
	}
	must(t, c, vocab.AddNoteToCase, note(t, vendor, caseID+"/n3", `"publicationTime":"2027-01-30T12:00:00Z"`))
	refused(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n4", `"publicationTime":"2027-01-31T12:00:00Z","inReplyTo":"`+caseID+`/n3"`), http.StatusConflict, "is 2027-01-30T12:00:00Z")
	must(t, c, vocab.AddNoteToCase, note(t, finder, caseID+"/n4", `"publicationTime":"2027-01-30T12:00:00Z","inReplyTo":"`+caseID+`/n3"`))
	if pt := c.Advisory.PublishAt; pt == nil || len(pt.Accepted) != 1 || pt.Accepted[0] != finder {
		t.Fatalf("publication time = %+v", pt)
	}
}

// TestProposedTimeThatHasPassed: the check a node runs on its own actors'
// activities refuses a proposal of a publication time that has passed,
// not one to come nor an acceptance; the case itself (what every replica
// applies from the ledger) takes a past time.
func TestProposedTimeThatHasPassed(t *testing.T) {
	now := t0.Add(time.Hour)
	msg := func(a *vocab.Activity) Message {
		return Message{Activity: a, Class: vocab.Classification{Semantic: vocab.AddNoteToCase}}
	}
	past := note(t, vendor, caseID+"/n1", `"publicationTime":"2026-10-01T12:00:00Z"`)
	err := checkProposedTime(msg(past), now)
	if problem.Status(err) != http.StatusUnprocessableEntity || !strings.Contains(err.Error(), "the proposed publication time 2026-10-01T12:00:00Z has passed") {
		t.Errorf("a past proposal: %v, want 422 saying it has passed", err)
	}
	for _, ok := range []*vocab.Activity{
		note(t, vendor, caseID+"/n2", `"publicationTime":"2027-01-30T12:00:00Z"`),
		note(t, finder, caseID+"/n3", `"publicationTime":"2026-10-01T12:00:00Z","inReplyTo":"`+caseID+`/n1"`),
		note(t, finder, caseID+"/n4", ""),
	} {
		if err := checkProposedTime(msg(ok), now); err != nil {
			t.Errorf("%s: %v, want no refusal", ok.Object.ID(), err)
		}
	}
	c := newCase(t, true)
	must(t, c, vocab.AddNoteToCase, past)
	if pt := c.Advisory.PublishAt; pt == nil || pt.Time.Year() != 2026 {
		t.Errorf("the ledger's past proposal: %+v, want it applied", pt)
	}
}

// TestCheckVersions: a product's versions are "< V", "<= V" or one version,
// as the documents read them; anything else would reach CVE and OSV
// records as the name of a single version.
func TestCheckVersions(t *testing.T) {
	for _, ok := range []string{"", "4.2.0", "< 4.2.1", "<4.2.1", "<= 2.0.1-rc.1", " 1.0 "} {
		if err := CheckVersions(ok); err != nil {
			t.Errorf("CheckVersions(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"between 1 and 2", ">= 1.0", "> 1.0", "=1.0", "<", "<= ", "1.0, 2.0", "< 2.0 || 3.x", "<< 2"} {
		if err := CheckVersions(bad); err == nil || !strings.Contains(err.Error(), "< V") {
			t.Errorf("CheckVersions(%q) = %v, want an error naming the forms", bad, err)
		}
	}
}

// TestPublicationAgreed: an accepted publication time still to come holds
// the first publication back; a proposal nobody accepted, a time passed,
// a public case or an advisory already published do not.
func TestPublicationAgreed(t *testing.T) {
	at := time.Date(2027, 6, 15, 14, 0, 0, 0, time.UTC)
	before := at.Add(-time.Hour)
	tests := []struct {
		name string
		mod  func(c *Case)
		now  time.Time
		want bool
	}{
		{"agreed, to come", func(*Case) {}, before, true},
		{"nobody accepted", func(c *Case) { c.Advisory.PublishAt.Accepted = nil }, before, false},
		{"the time passed", func(*Case) {}, at, false},
		{"public", func(c *Case) { c.PXA |= cvdstate.PXAPublic }, before, false},
		{"published already", func(c *Case) { c.Advisory.Revisions = []Revision{{Number: 1}} }, before, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Case{Advisory: &Advisory{PublishAt: &PublicationTime{Time: at, By: vendor, Accepted: []string{finder}}}}
			tt.mod(c)
			if _, got := c.PublicationAgreed(tt.now); got != tt.want {
				t.Errorf("PublicationAgreed = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestSentRevision: a revision is a local actor's when the store holds the
// activity it sent for it, by it, with the revision's Article and text;
// not when the activity is another actor's or was received, nor when the
// revision's text or Article differs from what the actor sent (a Case
// Actor that changed it), nor when the store has no such activity.
func TestSentRevision(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	const (
		art  = "https://v.example/advisories/VULTRON-ABC"
		sent = "https://v.example/activities/1"
	)
	body := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,
"object":{"type":"Article","id":%q,"name":" Heap overflow ","summary":"Upgrade.","content":"<p>Details</p>"}}`, sent, vendor, art)
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "vendor"}) })
	if err := db.EnqueueOutbound(ctx, store.Outbound{ID: sent, Actor: "vendor", Body: []byte(body)}, nil); err != nil {
		t.Fatal(err)
	}
	received := "https://o.example/activities/2"
	if _, err := db.AcceptInbound(ctx, store.Inbound{ID: received, Recipient: "vendor", Sender: "https://o.example/actors/o",
		Body: []byte(strings.ReplaceAll(body, sent, received)), Classify: func(*store.ReadTx) string { return "" }}, nil); err != nil {
		t.Fatal(err)
	}
	genuine := Revision{By: vendor, ActivityID: sent, Article: art, Text: Text{Title: "Heap overflow", Summary: "Upgrade.", Details: "<p>Details</p>"}}
	for _, tc := range []struct {
		name string
		edit func(r *Revision)
		as   string
		want bool
	}{
		{"the revision as sent", func(*Revision) {}, "vendor", true},
		{"as another local actor's", func(*Revision) {}, "coordinator", false},
		{"by another actor", func(r *Revision) { r.By = "https://v.example/actors/other" }, "vendor", false},
		{"with another title", func(r *Revision) { r.Title = "No fix is needed" }, "vendor", false},
		{"with another summary", func(r *Revision) { r.Summary = "No fix is needed." }, "vendor", false},
		{"with other details", func(r *Revision) { r.Details = "<p>None</p>" }, "vendor", false},
		{"of another Article", func(r *Revision) { r.Article = art + "X" }, "vendor", false},
		{"of an activity never sent", func(r *Revision) { r.ActivityID = sent + "0" }, "vendor", false},
		{"of an activity received", func(r *Revision) { r.ActivityID = received }, "vendor", false},
		{"of no activity", func(r *Revision) { r.ActivityID = "" }, "vendor", false},
	} {
		r := genuine
		tc.edit(&r)
		var got bool
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			got, err = SentRevision(tx, r, tc.as)
			return err
		}); err != nil || got != tc.want {
			t.Errorf("%s: %t, %v; want %t", tc.name, got, err, tc.want)
		}
	}
}

// TestProductCPE: a CPE name the advisory's documents cannot carry (an
// unescaped "+" or "/", a language that is no tag) is refused by the
// sender's node and the Case Actor (checkProductCPE), never by a replica,
// which applies what its Case Actor recorded: an older one took it.
func TestProductCPE(t *testing.T) {
	v := fmt.Sprintf(`"name":"Widget","vendor":%q`, vendor)
	for _, cpe := range []string{"cpe:2.3:a:vendor:widget++:1.0:*:*:*:*:*:*:*", "cpe:2.3:a:ven/dor:widget:1.0:*:*:*:*:*:*:*",
		"cpe:2.3:a:vendor:widget:1.0:*:*:english:*:*:*:*"} {
		a := product(t, vendor, v+fmt.Sprintf(`,"status":"affected","cpe":%q`, cpe))
		err := checkProductCPE(Message{Activity: a, Class: vocab.Classification{Semantic: vocab.AddProductStatusToCase}})
		if problem.Status(err) != http.StatusUnprocessableEntity || !strings.Contains(problem.Message(err), cpe) {
			t.Errorf("cpe %q: %v; want 422 naming it", cpe, err)
		}
		c := newCase(t, false)
		must(t, c, vocab.AddProductStatusToCase, a)
	}
	a := product(t, vendor, v+`,"status":"affected","cpe":"cpe:2.3:a:vendor:widget\\+\\+:1.0:*:*:*:*:*:*:*"`)
	if err := checkProductCPE(Message{Activity: a, Class: vocab.Classification{Semantic: vocab.AddProductStatusToCase}}); err != nil {
		t.Errorf("an escaped CPE: %v", err)
	}
}
