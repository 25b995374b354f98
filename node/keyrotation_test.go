package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

// TestRotateActorKey rotates the finder's key on its node: the finder's
// next Offer reaches the vendor's node signed with the new key, a request
// still signed with the old key is accepted inside the overlap, the key
// file is 0600, the actor document lists the old key only inside the
// overlap, and the rotation is refused for unknown actors and bad overlaps.
func TestRotateActorKey(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offer := func(n int) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Report %d","content":"details"}}`, vendorID, n)
	}
	finder.submit(t, "finder", offer(1))
	waitFor(t, "the first offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	before, _ := finder.Local("finder")

	for _, bad := range []struct{ path, want string }{
		{"/api/actors/nobody/rotate-key", "no actor"},
		{"/api/actors/finder/rotate-key?overlap=forever", "overlap"},
		{"/api/actors/finder/rotate-key?overlap=-1h", "overlap"},
	} {
		status, body := finder.api(t, http.MethodPost, bad.path, "")
		if status < 400 || !strings.Contains(string(body), bad.want) {
			t.Errorf("POST %s: %d %s, want a refusal naming %q", bad.path, status, body, bad.want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, finder.url+"/api/actors/finder/rotate-key", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a rotation without the token: %v %v, want 401", resp, err)
	}

	status, body := finder.api(t, http.MethodPost, "/api/actors/finder/rotate-key?overlap=1h", "")
	if status != http.StatusOK {
		t.Fatalf("rotate: %d %s", status, body)
	}
	var rot api.KeyRotation
	if err := json.Unmarshal(body, &rot); err != nil {
		t.Fatal(err)
	}
	after, _ := finder.Local("finder")
	if rot.PreviousKeyID != before.KeyID || rot.KeyID != after.KeyID || after.KeyID == before.KeyID || after.Key.Equal(before.Key) {
		t.Fatalf("rotation answered %+v; the actor now signs as %s (was %s)", rot, after.KeyID, before.KeyID)
	}
	if d := rot.PreviousUntil.Sub(time.Now()); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("the old key is accepted until %s, want in an hour", rot.PreviousUntil)
	}
	info, err := os.Stat(filepath.Join(finder.dir, "keys", "finder.pem"))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("the rotated key file: %v, mode %v, want 0600", err, info)
	}
	// The rotation is in the audit log.
	recs, _, err := finder.db.AuditPage(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, r := range recs {
		if r.Kind == store.AuditAdmin && r.KeyID == after.KeyID && strings.Contains(r.Reason, before.KeyID) {
			audited = true
		}
	}
	if !audited {
		t.Errorf("no audit record of the rotation to %s among %d records", after.KeyID, len(recs))
	}
	keyIDs := func() []string {
		status, body := finder.api(t, http.MethodGet, "/actors/finder", "")
		if status != http.StatusOK {
			t.Fatalf("GET the actor: %d %s", status, body)
		}
		var doc struct {
			PublicKey json.RawMessage `json:"publicKey"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		var keys []actor.PublicKeyDoc
		if err := json.Unmarshal(doc.PublicKey, &keys); err != nil {
			var one actor.PublicKeyDoc
			if err := json.Unmarshal(doc.PublicKey, &one); err != nil {
				t.Fatal(err)
			}
			keys = []actor.PublicKeyDoc{one}
		}
		var ids []string
		for _, k := range keys {
			ids = append(ids, k.ID)
		}
		return ids
	}
	if ids := keyIDs(); len(ids) != 2 || ids[0] != after.KeyID || ids[1] != before.KeyID {
		t.Errorf("inside the overlap the document lists keys %v, want [%s %s]", ids, after.KeyID, before.KeyID)
	}

	// The vendor, which the finder has sent to, receives Update(actor),
	// delivered signed with the new key.
	if rot.Update == "" || rot.Peers != 1 {
		t.Errorf("the rotation queued Update %q to %d peers, want one to the vendor", rot.Update, rot.Peers)
	}
	// The vendor took the Update as the announcement of a rotation: it
	// fetched the finder's keys again, and its copy of the old key now goes
	// stale when the overlap ends, after which it is refused.
	waitFor(t, "the vendor's refreshed copy of the old key", func() bool {
		k, err := vendor.db.RemoteKey(context.Background(), before.KeyID)
		return err == nil && k.FetchedAt.Add(24*time.Hour).Sub(rot.PreviousUntil).Abs() < time.Second
	})
	if _, err := vendor.db.RemoteKey(context.Background(), after.KeyID); err != nil {
		t.Errorf("the vendor holds no copy of the finder's new key: %v", err)
	}

	// The next Offer is signed with the new key and accepted.
	finder.submit(t, "finder", offer(2))
	waitFor(t, "the second offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 2 })

	// A request still signed with the old key is accepted inside the overlap.
	body3 := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/activities/old-key-offer","type":"Offer","actor":%q,"to":[%q],
"object":{"id":"%s/objects/old-key-report","type":"VulnerabilityReport","name":"Old key","content":"details"}}`, finder.url, finderID, vendorID, finder.url))
	post := func(keyID string) int {
		req, _ := http.NewRequest(http.MethodPost, vendorID+"/inbox", bytes.NewReader(body3))
		req.Header.Set("Content-Type", actor.ContentType)
		if err := actor.SignRequest(req, body3, keyID, before.Key, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(before.KeyID); got != http.StatusAccepted {
		t.Errorf("a request signed with the old key inside the overlap: %d, want 202", got)
	}

	// A rotation without overlap retires the key at once: the document no
	// longer lists it.
	if status, body := finder.api(t, http.MethodPost, "/api/actors/finder/rotate-key?overlap=0s", ""); status != http.StatusOK {
		t.Fatalf("second rotation: %d %s", status, body)
	}
	third, _ := finder.Local("finder")
	if ids := keyIDs(); len(ids) != 2 || ids[0] != third.KeyID || ids[1] != before.KeyID {
		t.Errorf("after a rotation without overlap the document lists %v, want [%s %s] (the key retired at once is gone)", ids, third.KeyID, before.KeyID)
	}
}

// TestRotatedKeyRefusedAfterOverlap runs the receiving node on an injected
// clock: a request signed with the finder's rotated-away key is accepted
// inside the overlap and refused once it has ended.
func TestRotatedKeyRefusedAfterOverlap(t *testing.T) {
	finder := startNode(t, "finder:Person")
	before, _ := finder.Local("finder")
	if status, body := finder.api(t, http.MethodPost, "/api/actors/finder/rotate-key?overlap=1h", ""); status != http.StatusOK {
		t.Fatalf("rotate: %d %s", status, body)
	}

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	vendor, err := New(context.Background(), Config{
		DataDir: t.TempDir(), Listener: ln, PublicURL: url,
		Actors:            []ActorConfig{{Name: "vendor", Type: actor.Organization}},
		AllowPrivatePeers: true, NoSync: true, Now: clock,
		Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Notice: io.Discard,
	})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- vendor.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	vendorID := url + "/actors/vendor"
	post := func(n int) (int, string) {
		body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/activities/old-key-%d","type":"Offer","actor":%q,"to":[%q],
"object":{"id":"%s/objects/old-key-report-%d","type":"VulnerabilityReport","name":"Old key","content":"details"}}`, finder.url, n, before.ID, vendorID, finder.url, n))
		req, _ := http.NewRequest(http.MethodPost, vendorID+"/inbox", bytes.NewReader(body))
		req.Header.Set("Content-Type", actor.ContentType)
		if err := actor.SignRequest(req, body, before.KeyID, before.Key, clock()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct {
			Error string `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	if status, msg := post(1); status != http.StatusAccepted {
		t.Fatalf("the old key inside the overlap: %d %s, want 202", status, msg)
	}
	mu.Lock()
	now = now.Add(time.Hour + time.Minute)
	mu.Unlock()
	status, msg := post(2)
	// The answer names the key; the node's log and audit record carry the
	// full sentence ("... was rotated away by ... and stopped being
	// accepted at ...").
	if status != http.StatusUnauthorized || !strings.Contains(msg, before.KeyID) {
		t.Errorf("the old key after the overlap: %d %q, want 401 naming the key", status, msg)
	}
}

// TestActorUpdateWhoseKeysCannotBeRefreshed sends a verified Update of the
// signer's own actor whose document lists a key that cannot be read: the
// node must answer 502, the sender's server's failure, naming what
// failed, so that the peer retries, and cache none of the listed keys
// from that refresh; once the document is fixed, the same Update is
// accepted and every key is cached.
func TestActorUpdateWhoseKeysCannotBeRefreshed(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	vendorID := vendor.actorID("vendor")
	key := sharedKeys.get(t, 0)
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var broken atomic.Bool
	var id, keyID, nextKeyID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/actors/eve" {
			http.NotFound(w, r)
			return
		}
		keys := []map[string]string{{"id": keyID, "owner": id, "publicKeyPem": pemText}}
		next := map[string]string{"id": nextKeyID, "owner": id, "publicKeyPem": pemText}
		if broken.Load() {
			next["publicKeyPem"] = "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n"
		}
		keys = append(keys, next)
		w.Header().Set("Content-Type", actor.ContentType)
		json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{actor.ActivityStreamsContext, actor.SecurityContext},
			"id":       id, "type": "Person", "preferredUsername": "eve",
			"inbox": id + "/inbox", "outbox": id + "/outbox", "publicKey": keys,
		})
	}))
	t.Cleanup(srv.Close)
	id = srv.URL + "/actors/eve"
	keyID, nextKeyID = id+"#main-key", id+"#key-2"

	update := []byte(fmt.Sprintf(`{"@context":["https://www.w3.org/ns/activitystreams","https://w3id.org/security/v1"],
"id":"%[1]s/activities/update-1","type":"Update","actor":%[2]q,"to":[%[3]q],
"object":{"id":%[2]q,"type":"Person","preferredUsername":"eve","inbox":"%[2]s/inbox"}}`, srv.URL, id, vendorID))
	p := &peer{id: id, keyID: keyID, key: key}
	broken.Store(true)
	status, msg := p.post(t, vendorID+"/inbox", update, nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, nextKeyID) {
		t.Fatalf("an Update whose key %s cannot be read: %d %q; want 502 (the sender's server), naming the key", nextKeyID, status, msg)
	}
	if _, err := vendor.db.RemoteKey(context.Background(), nextKeyID); err == nil {
		t.Fatalf("the unreadable key %s was cached", nextKeyID)
	}

	broken.Store(false)
	if status, msg := p.post(t, vendorID+"/inbox", update, nil); status != http.StatusAccepted {
		t.Fatalf("the same Update once the document is fixed: %d %q, want 202", status, msg)
	}
	if _, err := vendor.db.RemoteKey(context.Background(), nextKeyID); err != nil {
		t.Fatalf("after the accepted Update the key %s is not cached: %v", nextKeyID, err)
	}
}

// TestActorUpdateListingAKeyOnAnotherHost sends a verified Update of the
// signer's own actor whose document lists, beside its own key, a key id on
// another host: the node must refuse the refresh, naming that key, without
// fetching anything from the other host (an actor's keys live on its own
// server, and a listed key id must not make the node fetch elsewhere), and
// cache none of the listed keys.
func TestActorUpdateListingAKeyOnAnotherHost(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	vendorID := vendor.actorID("vendor")
	key := sharedKeys.get(t, 0)
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var elsewhere atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		http.NotFound(w, r)
	}))
	t.Cleanup(other.Close)
	foreignKeyID := other.URL + "/actors/victim#main-key"
	var id, keyID string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/actors/eve" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", actor.ContentType)
		json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{actor.ActivityStreamsContext, actor.SecurityContext},
			"id":       id, "type": "Person", "preferredUsername": "eve",
			"inbox": id + "/inbox", "outbox": id + "/outbox",
			"publicKey": []map[string]string{
				{"id": keyID, "owner": id, "publicKeyPem": pemText},
				{"id": foreignKeyID, "owner": id, "publicKeyPem": pemText},
			},
		})
	}))
	t.Cleanup(srv.Close)
	id = srv.URL + "/actors/eve"
	keyID = id + "#main-key"

	update := []byte(fmt.Sprintf(`{"@context":["https://www.w3.org/ns/activitystreams","https://w3id.org/security/v1"],
"id":"%[1]s/activities/update-1","type":"Update","actor":%[2]q,"to":[%[3]q],
"object":{"id":%[2]q,"type":"Person","preferredUsername":"eve","inbox":"%[2]s/inbox"}}`, srv.URL, id, vendorID))
	p := &peer{id: id, keyID: keyID, key: key}
	status, msg := p.post(t, vendorID+"/inbox", update, nil)
	if status != http.StatusBadGateway || !strings.Contains(msg, foreignKeyID) {
		t.Errorf("an Update listing the key %s of another host: %d %q; want 502 naming that key", foreignKeyID, status, msg)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the node made %d requests to the other host for a key the actor listed", n)
	}
	if _, err := vendor.db.RemoteKey(context.Background(), foreignKeyID); err == nil {
		t.Errorf("the key %s of another host was cached", foreignKeyID)
	}
}

// TestKeyRotationIsOneTransaction stops a rotation of the finder's key
// after each of its steps, as a crash there would, restarts the node on
// the same data and checks that it holds either the whole old state (old
// key signing and published alone, no audit record, no Update queued) or
// the whole new state (new key signing, old key published with its
// expiry, the audit record, the Update delivered to the peer), and never
// a mix; the prepared key files of an uncommitted rotation are gone.
func TestKeyRotationIsOneTransaction(t *testing.T) {
	for _, tc := range []struct {
		step    string
		rotated bool
	}{
		{"prepared", false}, // the new key files written, nothing committed
		{"stored", false},   // inside the transaction, after the actor record
		{"committed", true}, // committed, key files not yet installed
	} {
		t.Run(tc.step, func(t *testing.T) {
			p := newPeer(t, sharedKeys.get(t, 1))
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			dir := t.TempDir()
			finder := startNodeIn(t, dir, ln, "finder:Person")
			finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Report","content":"details"}}`, p.id))
			waitFor(t, "the offer at the peer", func() bool { return p.receivedCount() == 1 })
			before, _ := finder.Local("finder")

			stop := errors.New("stopped after " + tc.step)
			hook := func(step string) error {
				if step == tc.step {
					return stop
				}
				return nil
			}
			finder.rotationStep.Store(&hook)
			status, body := finder.api(t, http.MethodPost, "/api/actors/finder/rotate-key?overlap=1h", "")
			if !tc.rotated && status < 500 {
				t.Fatalf("a rotation that failed after %s answered %d %s, want an error", tc.step, status, body)
			}
			finder.stop()

			ln2, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			again := startNodeIn(t, dir, ln2, "finder:Person")
			now, _ := again.Local("finder")

			status, body = again.api(t, http.MethodGet, "/actors/finder", "")
			if status != http.StatusOK {
				t.Fatalf("GET the actor: %d %s", status, body)
			}
			var doc struct {
				PublicKey []actor.PublicKeyDoc `json:"publicKey"`
			}
			if err := json.Unmarshal(body, &doc); err != nil {
				var one struct {
					PublicKey actor.PublicKeyDoc `json:"publicKey"`
				}
				if err := json.Unmarshal(body, &one); err != nil {
					t.Fatal(err)
				}
				doc.PublicKey = []actor.PublicKeyDoc{one.PublicKey}
			}
			var published []string
			for _, k := range doc.PublicKey {
				published = append(published, k.ID)
			}
			recs, _, err := again.db.AuditPage(context.Background(), 0, 1000)
			if err != nil {
				t.Fatal(err)
			}
			audited := 0
			for _, r := range recs {
				if r.Kind == store.AuditAdmin && strings.Contains(r.Reason, "rotated") {
					audited++
				}
			}
			updates := countType(again.boxItems(t, "finder", "outbox"), "Update")
			leftovers, _ := filepath.Glob(filepath.Join(dir, "keys", "finder.next*"))

			if !tc.rotated {
				if now.KeyID != before.KeyID || !now.Key.Equal(before.Key) || len(published) != 1 || published[0] != before.KeyID || audited != 0 || updates != 0 {
					t.Fatalf("after a rotation stopped at %s: signs as %s (was %s), publishes %v, %d audit records, %d Updates queued; want the old state only",
						tc.step, now.KeyID, before.KeyID, published, audited, updates)
				}
			} else {
				if now.KeyID == before.KeyID || now.Key.Equal(before.Key) || len(published) != 2 || published[0] != now.KeyID || published[1] != before.KeyID || audited != 1 || updates != 1 {
					t.Fatalf("after a rotation committed before its files were installed: signs as %s (was %s), publishes %v, %d audit records, %d Updates queued; want the new state whole",
						now.KeyID, before.KeyID, published, audited, updates)
				}
				if doc.PublicKey[1].Expires == "" {
					t.Errorf("the old key is published without its expiry: %+v", doc.PublicKey[1])
				}
				waitFor(t, "the Update at the peer", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					for _, b := range p.received {
						if strings.Contains(string(b), `"type":"Update"`) {
							return true
						}
					}
					return false
				})
			}
			if len(leftovers) != 0 {
				t.Errorf("key files of the rotation left behind: %v", leftovers)
			}
			// The restarted node rotates normally.
			if status, body := again.api(t, http.MethodPost, "/api/actors/finder/rotate-key?overlap=1h", ""); status != http.StatusOK {
				t.Fatalf("a rotation after the restart: %d %s", status, body)
			}
		})
	}
}
