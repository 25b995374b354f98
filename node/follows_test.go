package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// collection reads an actor's followers or following collection, with the
// node's token when admin is set.
func (tn *testNode) collection(t *testing.T, name, what, query string, admin bool) (int, map[string]any) {
	t.Helper()
	if !admin {
		resp, err := http.Get(tn.actorID(name) + "/" + what + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}
	status, b := tn.api(t, http.MethodGet, "/actors/"+name+"/"+what+query, "")
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return status, m
}

func members(m map[string]any) []string {
	var out []string
	items, _ := m["orderedItems"].([]any)
	for _, it := range items {
		if o, ok := it.(map[string]any); ok {
			out = append(out, o["id"].(string))
		}
	}
	return out
}

// jsonOf returns a function that encodes what a builder returned,
// failing t when it failed.
func jsonOf(t *testing.T) func(map[string]any, error) string {
	return func(m map[string]any, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// TestFollowing: a coordinator follows a vendor whose actor approves
// followers by hand and an advisory actor that accepts anyone; the
// collections show their counts to anyone and their members to admins;
// an admin accepts the pending Follow; Undo ends it on both nodes.
func TestFollowing(t *testing.T) {
	vendor := startNode(t, "vendor:Organization", "advisories:Service+open")
	coord := startNode(t, "coord:Organization")
	coordID, vendorID, advID := coord.actorID("coord"), vendor.actorID("vendor"), vendor.actorID("advisories")
	js := jsonOf(t)

	// The actor documents name the collections and who approves by hand.
	for _, tt := range []struct {
		name   string
		manual bool
	}{{"vendor", true}, {"advisories", false}} {
		resp, err := http.Get(vendor.actorID(tt.name))
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if doc["followers"] != vendor.actorID(tt.name)+"/followers" || doc["following"] != vendor.actorID(tt.name)+"/following" || doc["manuallyApprovesFollowers"] != tt.manual {
			t.Errorf("%s's document: followers %v following %v manuallyApprovesFollowers %v", tt.name, doc["followers"], doc["following"], doc["manuallyApprovesFollowers"])
		}
	}

	coord.submit(t, "coord", js(vocab.NewFollow(advID)))
	followVendor := coord.submit(t, "coord", js(vocab.NewFollow(vendorID)))
	// The open actor accepts at once; the vendor's Follow waits.
	waitFor(t, "the advisory actor's Accept at the coordinator", func() bool {
		_, m := coord.collection(t, "coord", "following", "", true)
		return len(members(m)) == 1 && members(m)[0] == advID
	})
	waitFor(t, "the pending Follow at the vendor", func() bool {
		_, m := vendor.collection(t, "vendor", "followers", "?state=pending", true)
		return len(members(m)) == 1 && members(m)[0] == coordID
	})
	if status, m := coord.collection(t, "coord", "following", "?state=pending", true); status != http.StatusOK || len(members(m)) != 1 || members(m)[0] != vendorID {
		t.Fatalf("coordinator's pending followings: %d %v", status, m)
	}
	// Anyone sees the counts, nobody but an admin the members.
	if status, m := vendor.collection(t, "advisories", "followers", "", false); status != http.StatusOK || m["totalItems"] != 1.0 || m["orderedItems"] != nil || m["type"] != "OrderedCollection" {
		t.Errorf("public followers of advisories: %d %v", status, m)
	}
	if status, _ := vendor.collection(t, "vendor", "followers", "?state=pending", false); status != http.StatusUnauthorized {
		t.Errorf("pending followers without the token: %d, want 401", status)
	}

	// The vendor's admin accepts the Follow, as it was received.
	fi := vocab.FollowInfo{ID: followVendor, Actor: coordID, Object: vendorID}
	vendor.submit(t, "vendor", js(vocab.NewFollowAnswer(fi, true)))
	waitFor(t, "the vendor's Accept at the coordinator", func() bool {
		_, m := coord.collection(t, "coord", "following", "", true)
		return len(members(m)) == 2
	})
	if status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", js(vocab.NewFollowAnswer(fi, true))); status != http.StatusConflict {
		t.Errorf("accepting twice: %d %s, want 409", status, body)
	}
	if status, body := coord.api(t, http.MethodPost, "/actors/coord/outbox", js(vocab.NewFollow(vendorID))); status != http.StatusConflict {
		t.Errorf("following twice: %d %s, want 409", status, body)
	}

	// Undo ends it on both sides.
	coord.submit(t, "coord", js(vocab.NewUndo(fi)))
	waitFor(t, "the Undo at the vendor", func() bool {
		_, m := vendor.collection(t, "vendor", "followers", "", false)
		return m["totalItems"] == 0.0
	})
	if _, m := coord.collection(t, "coord", "following", "", true); len(members(m)) != 1 {
		t.Errorf("the coordinator still follows %v", members(m))
	}
}

// TestCaseActorsAreNotFollowed checks that a participant's Follow of the
// Case Actor of a case its node holds is refused, 422, and leaves nothing
// pending, rather than being sent to an inbox that refuses it and staying
// pending for ever.
func TestCaseActorsAreNotFollowed(t *testing.T) {
	finder, vendor, _, c := openedCase(t, Config{}, Config{})
	js := jsonOf(t)
	for _, n := range []*testNode{finder, vendor} {
		name := "finder"
		if n == vendor {
			name = "vendor"
		}
		status, body := n.api(t, http.MethodPost, "/actors/"+name+"/outbox", js(vocab.NewFollow(c.CaseActor)))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), c.CaseActor+" is a Case Actor, which is not followed") {
			t.Errorf("%s's Follow of the Case Actor: %d %s; want 422 saying it is not followed", name, status, body)
		}
		for _, query := range []string{"", "?state=pending"} {
			if _, following := n.collection(t, name, "following", query, true); len(members(following)) != 0 {
				t.Errorf("%s's following%s after the refused Follow: %v; want none", name, query, members(following))
			}
		}
	}
}

// followingMember is one member of an actor's following collection as
// its node's admins see it.
type followingMember struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Follow string `json:"follow"`
	Reason string `json:"reason"`
}

// following returns the members of local actor name's following
// collection in a state, as the node's admins see them.
func (tn *testNode) following(t *testing.T, name, state string) []followingMember {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/actors/"+name+"/following?state="+state, "")
	if status != http.StatusOK {
		t.Fatalf("%s's following (%s): %d %s", name, state, status, body)
	}
	var page struct {
		Items []followingMember `json:"orderedItems"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("%s's following (%s): %v: %s", name, state, err, body)
	}
	return page.Items
}

// TestFollowRefusedForGood: the vendor's node federates only with a
// partner, so it answers the coordinator's Follow with 403 and the
// delivery is dead-lettered. The following does not stay pending: it
// fails, with the answer the delivery recorded, is listed as failed to
// the admins and counted nowhere else, and an audit record says so. A
// later Follow of the same actor asks again, pending.
func TestFollowRefusedForGood(t *testing.T) {
	vendor := startNodeWith(t, Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization+open")
	coord := startNode(t, "coord:Organization")
	vendorID := vendor.actorID("vendor")
	js := jsonOf(t)

	followID := coord.submit(t, "coord", js(vocab.NewFollow(vendorID)))
	var failed []followingMember
	waitFor(t, "the refused Follow to fail", func() bool {
		failed = coord.following(t, "coord", "failed")
		return len(failed) == 1
	})
	if f := failed[0]; f.ID != vendorID || f.State != "failed" || f.Follow != followID ||
		!strings.Contains(f.Reason, "403") || !strings.Contains(f.Reason, "allow-list") {
		t.Errorf("the failed following = %+v; want %s, failed, %s, with the vendor's 403 and its reason", f, vendorID, followID)
	}
	if pending := coord.following(t, "coord", "pending"); len(pending) != 0 {
		t.Errorf("the refused Follow is still pending: %+v", pending)
	}
	if _, m := coord.collection(t, "coord", "following", "", false); m["totalItems"] != 0.0 {
		t.Errorf("the public following collection counts %v, want 0", m["totalItems"])
	}

	records := coord.auditRecords(t)
	found := false
	for _, r := range records {
		if r.ActivityID == followID && r.Decision == store.DecisionFailed {
			found = true
			if r.Kind != store.AuditOutbound || r.Actor != "coord" || r.Signer != vendorID || !strings.Contains(r.Reason, "403") {
				t.Errorf("the audit record of the failed Follow: %+v", r)
			}
		}
	}
	if !found {
		t.Errorf("no audit record of the failed Follow %s in %d records", followID, len(records))
	}

	// A Follow of the same actor asks again: with the vendor's node
	// stopped, its delivery waits for a retry and the following is
	// pending, the failed one gone.
	vendor.stop()
	again := coord.submit(t, "coord", js(vocab.NewFollow(vendorID)))
	if pending := coord.following(t, "coord", "pending"); len(pending) != 1 || pending[0].ID != vendorID || pending[0].Follow != again || pending[0].Reason != "" {
		t.Errorf("the following after a second Follow: %+v; want %s pending with %s", pending, vendorID, again)
	}
	if failed := coord.following(t, "coord", "failed"); len(failed) != 0 {
		t.Errorf("the failed Follow is still listed after the second one: %+v", failed)
	}
}

// TestRetriedFollowIsPendingAgain: an operator retries the dead letter of
// a Follow the vendor's node refused; the following is pending again, with
// the same Follow and no reason, while its delivery is retried.
func TestRetriedFollowIsPendingAgain(t *testing.T) {
	vendor := startNodeWith(t, Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization")
	coord := startNode(t, "coord:Organization")
	vendorID := vendor.actorID("vendor")
	followID := coord.submit(t, "coord", jsonOf(t)(vocab.NewFollow(vendorID)))
	waitFor(t, "the refused Follow to fail", func() bool { return len(coord.following(t, "coord", "failed")) == 1 })

	var dead deliveriesPage
	status, body := coord.api(t, http.MethodGet, "/api/deliveries", "")
	if err := json.Unmarshal(body, &dead); status != http.StatusOK || err != nil || len(dead.Dead) != 1 || dead.Dead[0].Activity != followID {
		t.Fatalf("the coordinator's dead letters: %d %s (%v); want the Follow's", status, body, err)
	}
	// With the vendor's node stopped the retried delivery waits for its
	// next attempt.
	vendor.stop()
	if status, body := coord.api(t, http.MethodPost, fmt.Sprintf("/api/deliveries/%d/retry", dead.Dead[0].ID), ""); status != http.StatusOK {
		t.Fatalf("retry the dead letter: %d %s", status, body)
	}
	if pending := coord.following(t, "coord", "pending"); len(pending) != 1 || pending[0].ID != vendorID || pending[0].Follow != followID || pending[0].Reason != "" {
		t.Errorf("the following after the retry: %+v; want %s pending with %s", pending, vendorID, followID)
	}
	if failed := coord.following(t, "coord", "failed"); len(failed) != 0 {
		t.Errorf("the retried Follow is still listed as failed: %+v", failed)
	}
}

// TestCollectionsAreServedAsActivityStreams reads an actor's followers and
// following collections as a peer does: each answer is an ActivityStreams
// document, with the ActivityPub media type that peers (and this node's
// own fetcher) require of what they dereference.
func TestCollectionsAreServedAsActivityStreams(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	for _, what := range []string{"followers", "following"} {
		resp, err := http.Get(vendor.actorID("vendor") + "/" + what)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !actor.IsActivityPubContentType(ct) {
			t.Errorf("GET %s: %d with Content-Type %q; want 200 with %s", what, resp.StatusCode, ct, actor.ContentType)
		}
	}
}
