package federation_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// api sends a request with the node's token and returns status and body.
func (n *testNode) api(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, n.url+path, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/activity+json")
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// followers returns the members of the vendor's followers or following
// collection, as its admins see them.
func (n *testNode) followers(t *testing.T, what string) []map[string]any {
	t.Helper()
	status, body := n.api(t, http.MethodGet, "/actors/vendor/"+what, "")
	if status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, status, body)
	}
	var page struct {
		Items []map[string]any `json:"orderedItems"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// waitNode polls a condition on the node with a deadline.
func waitNode(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling the node's API, with a deadline
	}
}

// testFollowing: the peer's two actors follow our vendor, which accepts at
// once with an Accept Fedify's verifiers take; both name the peer's shared
// inbox, so the advisory the vendor publishes reaches the peer there once,
// as a Create(Article) Fedify's vocabulary parses, whose documents load;
// one actor unfollows. Then the vendor follows the peer's finder, which
// accepts, and unfollows it.
func testFollowing(t *testing.T, n *testNode, p *peer) {
	vendorID := n.actorID("vendor")
	for i, as := range []string{"finder", "other"} {
		actorID := p.ready.Actor
		if as == "other" {
			actorID = p.ready.Other
		}
		follow := map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": fmt.Sprintf("%s/activities/follow-%d", p.ready.Base, i),
			"type": "Follow", "actor": actorID, "object": vendorID}
		res := p.do(t, map[string]any{"cmd": "post", "url": vendorID + "/inbox", "activity": follow, "as": as})
		if res.Status != http.StatusAccepted {
			t.Fatalf("%s's Follow: %d %s", as, res.Status, res.Response)
		}
		ev := p.waitReceived(t, "Accept of "+as+"'s Follow", func(a receivedActivity) bool {
			return a.Type == "Accept" && a.objectID() == follow["id"]
		})
		checkDelivery(t, n, ev)
	}
	members := n.followers(t, "followers")
	if len(members) != 2 || members[0]["sharedInbox"] != p.ready.Base+"/inbox" {
		t.Fatalf("the vendor's followers: %v", members)
	}

	// A case with the peer's report, published at once (no embargo).
	offer := p.offer("advisory", vendorID, "https://www.w3.org/ns/activitystreams")
	if res := p.do(t, map[string]any{"cmd": "post", "url": vendorID + "/inbox", "activity": offer}); res.Status != http.StatusAccepted {
		t.Fatalf("Offer: %d %s", res.Status, res.Response)
	}
	status, body := n.api(t, http.MethodPost, "/actors/vendor/outbox",
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offer["id"], p.ready.Actor))
	if status != http.StatusCreated {
		t.Fatalf("validate: %d %s", status, body)
	}
	var caseID string
	waitNode(t, "the case", func() bool {
		_, b := n.api(t, http.MethodGet, "/api/cases", "")
		var page struct {
			Cases []struct {
				ID           string `json:"id"`
				LedgerLength int    `json:"ledgerLength"`
			} `json:"cases"`
		}
		_ = json.Unmarshal(b, &page)
		if len(page.Cases) == 1 && page.Cases[0].LedgerLength >= 2 {
			caseID = page.Cases[0].ID
			return true
		}
		return false
	})
	status, body = n.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(caseID)+"/advisory/publish", `{"title":"Widget parser overflow","summary":"Upgrade the widget parser."}`)
	if status != http.StatusCreated {
		t.Fatalf("publish: %d %s", status, body)
	}
	ev := p.waitReceived(t, "Create(Article) at the shared inbox", func(a receivedActivity) bool { return a.Type == "Create" })
	checkDelivery(t, n, ev)
	if ev.Inbox != "/inbox" {
		t.Errorf("the Create arrived at %s, want the shared inbox", ev.Inbox)
	}
	if !ev.ParsedByFedify {
		t.Errorf("Fedify's vocabulary could not parse the Create(Article): %s", ev.ParseError)
	}
	var create struct {
		Object struct {
			Type       string `json:"type"`
			Name       string `json:"name"`
			Attachment []struct {
				Href string `json:"href"`
			} `json:"attachment"`
		} `json:"object"`
	}
	if err := json.Unmarshal(ev.Body, &create); err != nil || create.Object.Type != "Article" || create.Object.Name != "Widget parser overflow" {
		t.Fatalf("the Create: %s (%v)", ev.Body, err)
	}
	// The documents are served once the case's ledger records the
	// publication, which the Create's delivery may overtake.
	for _, a := range create.Object.Attachment {
		waitNode(t, "attachment "+a.Href, func() bool {
			resp, err := n.client.Get(a.Href)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	}
	// The CSAF document the node serves passes every mandatory test.
	csafResp, err := n.client.Get(create.Object.Attachment[0].Href)
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(csafResp.Body)
	csafResp.Body.Close()
	if v := validateCSAF(t, map[string][]byte{"served.json": served})["served.json"]; !v.IsValid {
		t.Errorf("the served CSAF document fails the mandatory tests: %+v\n%s", v.Failed, served)
	}
	shared := p.events(func(e *peerEvent) bool {
		return e.Event == "received" && e.activity.Type == "Create" && e.Inbox == "/inbox"
	})
	if len(shared) != 1 {
		t.Errorf("the shared inbox got %d Creates, want one for both followers", len(shared))
	}

	// other unfollows, with the Follow inline as Mastodon sends it.
	undo := map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": p.ready.Base + "/activities/undo-1", "type": "Undo",
		"actor": p.ready.Other, "object": map[string]any{"id": p.ready.Base + "/activities/follow-1", "type": "Follow", "actor": p.ready.Other, "object": vendorID}}
	if res := p.do(t, map[string]any{"cmd": "post", "url": vendorID + "/inbox", "activity": undo, "as": "other"}); res.Status != http.StatusAccepted {
		t.Fatalf("Undo: %d %s", res.Status, res.Response)
	}
	if members := n.followers(t, "followers"); len(members) != 1 || members[0]["id"] != p.ready.Actor {
		t.Errorf("followers after other's Undo: %v", members)
	}

	// The vendor follows the peer's finder, which accepts.
	status, body = n.api(t, http.MethodPost, "/actors/vendor/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Follow","object":%q,"to":[%q]}`, p.ready.Actor, p.ready.Actor))
	if status != http.StatusCreated {
		t.Fatalf("follow the peer: %d %s", status, body)
	}
	var sent struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(body, &sent)
	p.waitReceived(t, "the vendor's Follow", func(a receivedActivity) bool { return a.Type == "Follow" && a.ID == sent.ID })
	waitNode(t, "the peer's Accept at the vendor", func() bool {
		for _, m := range n.followers(t, "following") {
			if m["id"] == p.ready.Actor && m["state"] == "accepted" {
				return true
			}
		}
		return false
	})
	undoBody := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Undo","to":[%q],"object":{"id":%q,"type":"Follow","actor":%q,"object":%q}}`,
		p.ready.Actor, sent.ID, vendorID, p.ready.Actor)
	if status, body := n.api(t, http.MethodPost, "/actors/vendor/outbox", undoBody); status != http.StatusCreated {
		t.Fatalf("unfollow the peer: %d %s", status, body)
	}
	p.waitReceived(t, "the vendor's Undo", func(a receivedActivity) bool { return a.Type == "Undo" && strings.Contains(string(a.Object), sent.ID) })
	if ms := n.followers(t, "following"); slices.ContainsFunc(ms, func(m map[string]any) bool { return m["id"] == p.ready.Actor }) {
		t.Errorf("the vendor still follows the peer: %v", ms)
	}
}
