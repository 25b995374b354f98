package node

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/vocab"
)

// TestArticlesOnlyOfTheirAuthors: a coordinator follows a foreign actor,
// whose articles its inbox takes. An actor creates, updates and deletes
// only its own articles, on its own server (B16): an Update or Delete of
// an Article on another server (another organization's published
// advisory), or of one attributed to someone else, would put words in
// another's mouth in the coordinator's feed. Each is refused with 403 and
// a JSON error, and nothing of it is stored; the actor's own Update is
// taken.
func TestArticlesOnlyOfTheirAuthors(t *testing.T) {
	coord := startNode(t, "coord:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	coordID := coord.actorID("coord")
	inbox := coordID + "/inbox"
	js := jsonOf(t)

	follow := coord.submit(t, "coord", js(vocab.NewFollow(p.id)))
	waitFor(t, "the Follow at the peer", func() bool { return p.receivedCount() >= 1 })
	accept, err := vocab.NewFollowAnswer(vocab.FollowInfo{ID: follow, Actor: coordID, Object: p.id}, true)
	if err != nil {
		t.Fatal(err)
	}
	accept["id"], accept["actor"] = p.id+"/activities/accept-1", p.id
	b, _ := json.Marshal(accept)
	if status, msg := p.post(t, inbox, b, nil); status != http.StatusAccepted {
		t.Fatalf("the peer's Accept: %d %s", status, msg)
	}
	waitFor(t, "the coordinator following the peer", func() bool { return len(coord.following(t, "coord", "accepted")) == 1 })

	// Another organization's advisory, which the peer does not publish.
	const theirs = "https://vendor.example/advisories/VULTRON-7Q3X"
	article := func(id, by, name string) map[string]any {
		return map[string]any{"type": "Article", "id": id, "attributedTo": by, "name": name, "content": "<p>" + name + "</p>"}
	}
	activity := func(n, typ string, object any) []byte {
		b, err := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "id": p.id + "/activities/" + n, "type": typ,
			"actor": p.id, "to": []string{vocab.PublicCollection, p.id + "/followers"}, "object": object})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	own := p.srv.URL + "/advisories/1"
	for _, tc := range []struct {
		name, n string
		body    []byte
		want    int
	}{
		{"an Update of another server's Article", "update-theirs", activity("update-theirs", "Update", article(theirs, "https://vendor.example/actors/psirt", "No fix is needed")), http.StatusForbidden},
		{"an Update of another server's Article attributed to the peer", "update-theirs-2", activity("update-theirs-2", "Update", article(theirs, p.id, "No fix is needed")), http.StatusForbidden},
		{"an Update of an Article attributed to another actor", "update-attributed", activity("update-attributed", "Update", article(own, "https://vendor.example/actors/psirt", "No fix is needed")), http.StatusForbidden},
		{"a Delete of another server's Article", "delete-theirs", activity("delete-theirs", "Delete", theirs), http.StatusForbidden},
		{"a Delete of another server's Article inline", "delete-theirs-inline", activity("delete-theirs-inline", "Delete", map[string]any{"type": "Tombstone", "id": theirs}), http.StatusForbidden},
		{"an Announce carrying another server's Article inline", "announce-theirs-inline", activity("announce-theirs-inline", "Announce", article(theirs, "https://vendor.example/actors/psirt", "No fix is needed")), http.StatusForbidden},
		{"the peer's Announce of another server's Article by id", "announce-theirs", activity("announce-theirs", "Announce", theirs), http.StatusAccepted},
		{"the peer's Update of its own Article", "update-own", activity("update-own", "Update", article(own, p.id, "Fixed in 2.0.1")), http.StatusAccepted},
		{"the peer's Delete of its own Article", "delete-own", activity("delete-own", "Delete", own), http.StatusAccepted},
	} {
		status, msg := p.post(t, inbox, tc.body, nil)
		if status != tc.want || (tc.want != http.StatusAccepted && msg == "") {
			t.Errorf("%s: %d %q, want %d with a JSON error", tc.name, status, msg, tc.want)
		}
		_, err := coord.db.Activity(context.Background(), p.id+"/activities/"+tc.n)
		if stored := err == nil; stored != (tc.want == http.StatusAccepted) {
			t.Errorf("%s: stored %t", tc.name, stored)
		}
	}
	for _, it := range coord.inboxItems(t, "coord") {
		if b, _ := json.Marshal(it); strings.Contains(string(b), "No fix is needed") {
			t.Errorf("the coordinator's inbox holds a refused article: %s", b)
		}
	}
}

// TestSharedInboxOnAnotherHost: a follower's actor document names as its
// endpoints.sharedInbox an inbox on another server. Like its inbox, a
// shared inbox must be on the actor's host: otherwise any follower would
// have the node post, signed, every activity it addresses to its
// followers to a server of the follower's choosing. The follower is
// accepted, with no shared inbox, and gets the followers' activities at
// its own inbox; the other server gets nothing.
func TestSharedInboxOnAnotherHost(t *testing.T) {
	vendor := startNode(t, "vendor:Organization+open")
	vendorID := vendor.actorID("vendor")
	var otherHits atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherHits.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(other.Close)

	key := sharedKeys.get(t, 1)
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	eve := &peer{key: key, hits: map[string]int{}}
	var mu sync.Mutex
	var received []string
	eve.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/actors/eve":
			w.Header().Set("Content-Type", actor.ContentType)
			json.NewEncoder(w).Encode(map[string]any{
				"@context": []string{actor.ActivityStreamsContext, actor.SecurityContext},
				"id":       eve.id, "type": "Organization", "preferredUsername": "eve",
				"inbox": eve.id + "/inbox", "outbox": eve.id + "/outbox",
				"endpoints": map[string]string{"sharedInbox": other.URL + "/inbox"},
				"publicKey": map[string]string{"id": eve.keyID, "owner": eve.id, "publicKeyPem": pemText},
			})
		case "/actors/eve/inbox":
			b, _ := io.ReadAll(r.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			typ, _ := m["type"].(string)
			mu.Lock()
			received = append(received, typ)
			mu.Unlock()
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(eve.srv.Close)
	eve.id = eve.srv.URL + "/actors/eve"
	eve.keyID = eve.id + "#main-key"
	got := func(typ string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(received, typ)
	}

	follow, err := vocab.NewFollow(vendorID)
	if err != nil {
		t.Fatal(err)
	}
	follow["id"], follow["actor"] = eve.id+"/activities/follow-1", eve.id
	b, _ := json.Marshal(follow)
	if status, msg := eve.post(t, vendorID+"/inbox", b, nil); status != http.StatusAccepted {
		t.Fatalf("eve's Follow: %d %s", status, msg)
	}
	waitFor(t, "the Accept at eve's inbox", func() bool { return got("Accept") })
	_, m := vendor.collection(t, "vendor", "followers", "", true)
	items, _ := m["orderedItems"].([]any)
	if len(items) != 1 {
		t.Fatalf("the vendor's followers: %v", m)
	}
	if f, _ := items[0].(map[string]any); f["sharedInbox"] != nil {
		t.Errorf("eve's shared inbox is %v, on another host than eve", f["sharedInbox"])
	}
	vendor.submit(t, "vendor", jsonOf(t)(vocab.NewAnnounce("https://c.example/advisories/1", vendorID+"/followers")))
	waitFor(t, "the Announce at eve's inbox", func() bool { return got("Announce") })
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the other server got %d requests", n)
	}
}

// TestFollowAnswersBeforeTheirFollow covers B26 for following: an Undo of
// a Follow that never arrived, and an Accept or Reject of a Follow the node
// never sent, are refused with a 4xx that says why and are not remembered;
// the Follow that arrives after the early Undo still applies. An answer to
// a Follow the node did send and then undid is taken (nothing is wanted
// any more) without changing anything.
func TestFollowAnswersBeforeTheirFollow(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 1))
	vendorID := vendor.actorID("vendor")
	inbox := vendorID + "/inbox"
	follow := func(id, by, of string) map[string]any {
		return map[string]any{"type": "Follow", "id": id, "actor": by, "object": of}
	}
	activity := func(n, typ string, object any) []byte {
		b, err := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "id": p.id + "/activities/" + n, "type": typ,
			"actor": p.id, "to": []string{vendorID}, "object": object})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	stored := func(n string) bool {
		_, err := vendor.db.Activity(context.Background(), p.id+"/activities/"+n)
		return err == nil
	}
	peerFollow := p.id + "/activities/follow-9"
	for _, tc := range []struct {
		name, n string
		body    []byte
	}{
		{"an Undo of a Follow that never arrived", "undo-early", activity("undo-early", "Undo", follow(peerFollow, p.id, vendorID))},
		{"an Accept of a Follow never sent", "accept-unsent", activity("accept-unsent", "Accept", follow(vendorID+"/activities/never", vendorID, p.id))},
		{"a Reject of a Follow never sent", "reject-unsent", activity("reject-unsent", "Reject", follow(vendorID+"/activities/never", vendorID, p.id))},
	} {
		status, msg := p.post(t, inbox, tc.body, nil)
		if status < 400 || status >= 500 || msg == "" {
			t.Errorf("%s: %d %q, want a 4xx that says why", tc.name, status, msg)
		}
		if stored(tc.n) {
			t.Errorf("%s was stored", tc.name)
		}
	}
	// The Follow itself, after its early Undo, applies.
	b, _ := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "id": peerFollow, "type": "Follow", "actor": p.id, "object": vendorID})
	if status, msg := p.post(t, inbox, b, nil); status != http.StatusAccepted {
		t.Fatalf("the Follow after its early Undo: %d %q", status, msg)
	}
	waitFor(t, "the peer as a pending follower", func() bool {
		_, m := vendor.collection(t, "vendor", "followers", "?state=pending", true)
		return len(members(m)) == 1
	})

	// A Follow the vendor sent and undid: the peer's late Reject is taken.
	js := jsonOf(t)
	sent := vendor.submit(t, "vendor", js(vocab.NewFollow(p.id)))
	waitFor(t, "the vendor's Follow at the peer", func() bool { return p.receivedCount() >= 1 })
	undo, err := vocab.NewUndo(vocab.FollowInfo{ID: sent, Actor: vendorID, Object: p.id})
	if err != nil {
		t.Fatal(err)
	}
	vendor.submit(t, "vendor", js(undo, nil))
	if status, msg := p.post(t, inbox, activity("reject-late", "Reject", follow(sent, vendorID, p.id)), nil); status != http.StatusAccepted {
		t.Errorf("a Reject of a Follow the vendor sent and undid: %d %q, want 202", status, msg)
	}
	if got := vendor.following(t, "vendor", ""); len(got) != 0 {
		t.Errorf("after the late Reject the vendor follows %v", got)
	}
}

// TestNoAdvisoryOutsideItsCase: an Article at this node's /advisories/
// path is the advisory of a case, which is published with its case (the
// embargo and the review checked, the ledger recording it). An actor's
// Create, Update or Delete of such an Article as a plain article, naming
// no case, would reach the followers and the public apart from all that:
// each is refused with 422 and nothing is sent.
func TestNoAdvisoryOutsideItsCase(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	vendorID := vendor.actorID("vendor")
	page := vendor.url + "/advisories/VULTRON-ABCDEFGHIJKLMNOP"
	article := map[string]any{"type": "Article", "id": page, "attributedTo": vendorID, "name": "Heap overflow in the quagga parser", "content": "<p>Upgrade.</p>"}
	before := len(vendor.boxItems(t, "vendor", "outbox"))
	for _, tc := range []struct {
		typ    string
		object any
	}{
		{"Create", article},
		{"Update", article},
		{"Delete", page},
		{"Create", map[string]any{"type": "Article", "id": vendor.url + "/advisories/x/../VULTRON-ABCDEFGHIJKLMNOP", "name": "T", "content": "<p>T</p>"}},
	} {
		b, _ := json.Marshal(map[string]any{"@context": vocab.ActivityStreamsContext, "type": tc.typ,
			"to": []string{vocab.PublicCollection, vendorID + "/followers"}, "object": tc.object})
		status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", string(b))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "advisory publish") {
			t.Errorf("%s of an advisory page's Article without its case: %d %s, want 422 naming advisory publish", tc.typ, status, body)
		}
	}
	if after := len(vendor.boxItems(t, "vendor", "outbox")); after != before {
		t.Errorf("the refused articles are in the outbox: %d items, %d before", after, before)
	}
}
