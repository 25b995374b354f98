package federation_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/store"
)

// waitLimit bounds every wait on the peer or the node. It is generous:
// the tests wait on conditions, never on time, and a slow machine must not
// make them fail.
const waitLimit = 90 * time.Second

// The two signature specifications, as Fedify's signRequest names them.
const (
	cavage  = "draft-cavage-http-signatures-12"
	rfc9421 = "rfc9421"
)

// vultronContext is the Vultron JSON-LD context, which Vultron peers may
// send instead of the ActivityStreams one.
const vultronContext = "https://certcc.github.io/Vultron/ns/context.jsonld"

// TestInterop runs a node against the Fedify-based foreign peer in
// peer/peer.mjs, in both directions: WebFinger and authorized fetch of
// our actor, signed Offers into our inbox and the Read we deliver back,
// tampered requests, and our fetching and caching of the peer's key.
func TestInterop(t *testing.T) {
	requirePeer(t)
	certs := newTestCerts(t)
	vendor := startNode(t, certs, true)
	p := startPeer(t, certs.caFile)

	t.Run("ActorDiscovery", func(t *testing.T) { testActorDiscovery(t, vendor, p) })
	t.Run("InboundOffer", func(t *testing.T) { testInboundOffer(t, vendor, p) })
	t.Run("TamperedOffer", func(t *testing.T) { testTamperedOffer(t, vendor, p) })
	t.Run("PeerKeyFetch", func(t *testing.T) { testPeerKeyFetch(t, vendor, p) })
	t.Run("Ed25519Delivery", func(t *testing.T) { testEd25519Delivery(t, vendor, p) })
	t.Run("Following", func(t *testing.T) { testFollowing(t, vendor, p) })
}

// testEd25519Delivery: an actor of the peer whose document says (FEP-844e)
// that its server verifies RFC 9421 Ed25519 signatures sends an Offer; our
// node's acknowledgement reaches it signed with RFC 9421 and the vendor's
// Ed25519 Multikey, which Fedify verifies with the key its fetchKey
// resolves from the vendor's assertionMethod. An actor that says so
// without it being true (plain Fedify refuses a Multikey keyid) gets the
// same acknowledgement again at once with draft-cavage RSA, which all
// three verifiers accept, and the next one to that origin (the peer's,
// modern's too) with RSA alone.
func testEd25519Delivery(t *testing.T, n *testNode, p *peer) {
	offerAs := func(t *testing.T, name, as, actorID string) string {
		t.Helper()
		act := p.offer(name, n.actorID("vendor"), actor.ActivityStreamsContext)
		act["actor"] = actorID
		act["object"].(map[string]any)["attributedTo"] = []string{actorID}
		res := p.do(t, map[string]any{"cmd": "post", "url": n.actorID("vendor") + "/inbox", "spec": cavage, "activity": act, "as": as})
		if res.Status != http.StatusAccepted {
			t.Fatalf("POST Offer as %s: status %d (%s), want 202", as, res.Status, res.Response)
		}
		return act["id"].(string)
	}
	readsOf := func(offerID string) []*peerEvent {
		return p.events(func(ev *peerEvent) bool {
			return ev.Event == "received" && ev.activity.Type == "Read" && ev.activity.objectID() == offerID
		})
	}
	edKeyID := n.actorID("vendor") + "#" + actor.Ed25519MainFragment
	ed25519Covered := []string{"@method", "@target-uri", "@authority", "content-digest"}

	t.Run("verified by the peer", func(t *testing.T) {
		offerID := offerAs(t, "ed25519-modern", "modern", p.ready.Modern)
		read := p.waitReceived(t, "Read(Offer "+offerID+")", func(a receivedActivity) bool { return a.Type == "Read" && a.objectID() == offerID })
		if !read.Verified["fedify"] {
			t.Errorf("Fedify did not verify the Ed25519 signature of %s: %s", read.activity.ID, read.Reason)
		}
		if s := read.Signature; s == nil || s.Spec != "rfc9421" || s.KeyID != edKeyID || !slices.Equal(s.Covered, ed25519Covered) {
			t.Errorf("delivery signature = %+v, want RFC 9421 with %s covering %v", read.Signature, edKeyID, ed25519Covered)
		}
		if got := readsOf(offerID); len(got) != 1 {
			t.Errorf("the peer received %d requests for the Read; want 1", len(got))
		}
	})

	t.Run("refused, then RSA", func(t *testing.T) {
		offerID := offerAs(t, "ed25519-liar-1", "liar", p.ready.Liar)
		accepted := p.wait(t, "an accepted Read(Offer "+offerID+")", func(ev *peerEvent) bool {
			return ev.Event == "received" && ev.activity.Type == "Read" && ev.activity.objectID() == offerID && ev.Verified["fedify"]
		})
		checkDelivery(t, n, accepted)
		got := readsOf(offerID)
		if len(got) != 2 || got[0].Signature == nil || got[0].Signature.Spec != "rfc9421" || got[0].Verified["fedify"] {
			t.Fatalf("the peer received %d requests for the Read (first %+v); want an RFC 9421 one it refused, then the RSA one", len(got), got[0].Signature)
		}
		offerID = offerAs(t, "ed25519-modern-2", "modern", p.ready.Modern)
		checkDelivery(t, n, p.wait(t, "an accepted Read(Offer "+offerID+")", func(ev *peerEvent) bool {
			return ev.Event == "received" && ev.activity.Type == "Read" && ev.activity.objectID() == offerID && ev.Verified["fedify"]
		}))
		if got := readsOf(offerID); len(got) != 1 {
			t.Errorf("the peer received %d requests for the next Read; want 1, signed with RSA as its origin asked", len(got))
		}
	})
}

// testActorDiscovery: the peer finds our vendor through WebFinger, fetches
// its actor document with and without a signed GET, parses it with
// Fedify, and checks with doesActorOwnKey that the actor owns its key.
func testActorDiscovery(t *testing.T, n *testNode, p *peer) {
	acct := "vendor@" + n.host()
	jrdLine := p.do(t, map[string]any{"cmd": "webfinger", "acct": acct})
	if !jrdLine.OK {
		t.Fatalf("Fedify's WebFinger lookup of acct:%s failed: %s", acct, jrdLine.Error)
	}
	var jrd actor.JRD
	if err := json.Unmarshal(jrdLine.JRD, &jrd); err != nil {
		t.Fatalf("decode JRD %s: %v", jrdLine.JRD, err)
	}
	if jrd.Subject != "acct:"+acct {
		t.Errorf("JRD subject = %q, want acct:%s", jrd.Subject, acct)
	}
	var self string
	for _, l := range jrd.Links {
		if l.Rel == "self" && actor.IsActivityPubContentType(l.Type) {
			self = l.Href
		}
	}
	if self != n.actorID("vendor") {
		t.Fatalf("JRD self link = %q, want %s (links %+v)", self, n.actorID("vendor"), jrd.Links)
	}

	tests := []struct {
		name   string
		target string
		signed bool
	}{
		{"signed GET of the self link", self, true},
		{"unsigned GET of the self link", self, false},
		{"acct URI through Fedify's lookupObject", "acct:" + acct, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.do(t, map[string]any{"cmd": "lookup", "url": tt.target, "signed": tt.signed})
			if !got.OK {
				t.Fatalf("Fedify could not look up %s: %s", tt.target, got.Error)
			}
			if !got.IsActor || got.ObjectType != "https://www.w3.org/ns/activitystreams#Organization" {
				t.Errorf("parsed as %q (actor %v), want an Organization actor", got.ObjectType, got.IsActor)
			}
			checks := []struct{ what, got, want string }{
				{"id", got.ObjectID, n.actorID("vendor")},
				{"preferredUsername", got.PreferredUsername, "vendor"},
				{"inbox", got.Inbox, n.actorID("vendor") + "/inbox"},
				{"outbox", got.Outbox, n.actorID("vendor") + "/outbox"},
				{"publicKey id", got.PublicKeyID, n.actorID("vendor") + "#main-key"},
				{"publicKey owner", got.PublicKeyOwner, n.actorID("vendor")},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			if !got.OwnsKey {
				t.Errorf("Fedify's doesActorOwnKey says %s does not own %s", got.ObjectID, got.PublicKeyID)
			}
		})
	}
}

// testInboundOffer: the peer signs an Offer(VulnerabilityReport) with
// each specification and posts it to our vendor; the node answers 202,
// stores it, and delivers Read(Offer) back, which all three verifiers of
// the peer accept. The peer then fetches that Read with a signed GET.
func testInboundOffer(t *testing.T, n *testNode, p *peer) {
	tests := []struct {
		name    string
		spec    string
		context string
		query   string // appended to the inbox URL
	}{
		{"draft-cavage", cavage, actor.ActivityStreamsContext, ""},
		{"RFC 9421", rfc9421, actor.ActivityStreamsContext, ""},
		{"draft-cavage, Vultron context", cavage, vultronContext, ""},
		// Fedify's draft-cavage signer leaves the query out of
		// (request-target); RFC 9421's @target-uri includes it.
		{"draft-cavage, query string", cavage, actor.ActivityStreamsContext, "?via=interop"},
		{"RFC 9421, query string", rfc9421, vultronContext, "?via=interop"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act := p.offer(fmt.Sprintf("inbound-%d", i), n.actorID("vendor"), tt.context)
			res := p.do(t, map[string]any{"cmd": "post", "url": n.actorID("vendor") + "/inbox" + tt.query, "spec": tt.spec, "activity": act})
			if res.Status != http.StatusAccepted {
				t.Fatalf("POST %s Offer: status %d (%s), want 202", tt.spec, res.Status, res.Response)
			}
			wantSpec := map[string]string{cavage: "draft-cavage", rfc9421: "rfc9421"}[tt.spec]
			if res.Sent == nil || res.Sent.Spec != wantSpec {
				t.Errorf("the peer sent signature %+v, want a %s one", res.Sent, wantSpec)
			}

			offerID := act["id"].(string)
			stored, err := n.Store().Activity(context.Background(), offerID)
			if err != nil {
				t.Fatalf("the accepted Offer is not in the store: %v", err)
			}
			if stored.Sender != p.ready.Actor || stored.KeyID != p.ready.KeyID || !slices.Contains(stored.Recipients, "vendor") {
				t.Errorf("stored Offer: sender %q key %q recipients %v; want %s, %s, [vendor]", stored.Sender, stored.KeyID, stored.Recipients, p.ready.Actor, p.ready.KeyID)
			}
			if ids := n.inboxIDs(t, "vendor"); !slices.Contains(ids, offerID) {
				t.Errorf("vendor's inbox %v does not list %s", ids, offerID)
			}

			read := p.waitReceived(t, "Read(Offer "+offerID+")", func(a receivedActivity) bool {
				return a.Type == "Read" && a.objectID() == offerID
			})
			checkDelivery(t, n, read)

			// Authorized fetch the other way round: the Read is served to the
			// peer's signed GET (Fedify's authenticated document loader) and
			// refused without a signature.
			readID := read.activity.ID
			if got := p.do(t, map[string]any{"cmd": "lookup", "url": readID, "signed": true}); !got.Fetched || got.DocumentID != readID {
				t.Errorf("signed GET of %s by Fedify: fetched %v, document id %q, error %q; want the Read", readID, got.Fetched, got.DocumentID, got.Error)
			}
			if got := p.do(t, map[string]any{"cmd": "lookup", "url": readID, "signed": false}); got.Fetched || !strings.Contains(got.Error, "401") {
				t.Errorf("unsigned GET of %s: fetched %v, error %q; want a 401 refusal", readID, got.Fetched, got.Error)
			}
		})
	}
}

// checkDelivery asserts that an activity our node delivered to the peer
// was signed as the node promises and accepted by every verifier.
func checkDelivery(t *testing.T, n *testNode, ev *peerEvent) {
	t.Helper()
	for _, v := range []string{"fedify", "misskey", "peertube"} {
		if !ev.Verified[v] {
			t.Errorf("%s did not verify our delivery of %s (Fedify: %s); the peer log has details", v, ev.activity.ID, ev.Reason)
		}
	}
	want := &sigInfo{Spec: "draft-cavage", KeyID: n.actorID("vendor") + "#main-key", Algorithm: "rsa-sha256",
		Covered: []string{"(request-target)", "host", "date", "digest"}}
	if ev.Signature == nil || ev.Signature.Spec != want.Spec || ev.Signature.KeyID != want.KeyID ||
		ev.Signature.Algorithm != want.Algorithm || !slices.Equal(ev.Signature.Covered, want.Covered) {
		t.Errorf("delivery signature = %+v, want %+v", ev.Signature, want)
	}
	if !actor.IsActivityPubContentType(ev.ContentType) {
		t.Errorf("delivery Content-Type %q is not an ActivityPub type", ev.ContentType)
	}
	if ev.activity.Actor != n.actorID("vendor") {
		t.Errorf("delivered activity's actor = %q, want %s", ev.activity.Actor, n.actorID("vendor"))
	}
	// Not a failure: Fedify's typed vocabulary has no Vultron types (see
	// docs/interop.md); recorded so a change shows in the verbose log.
	t.Logf("Fedify's vocabulary parsed the delivered %s: %v %s", ev.activity.Type, ev.ParsedByFedify, ev.ParseError)
}

// testTamperedOffer: requests that must not pass, each refused with 401
// and the reason our verifier gives, and nothing stored.
func testTamperedOffer(t *testing.T, n *testNode, p *peer) {
	tests := []struct {
		name      string
		spec      string
		tamper    string
		wantError []string // substrings of the error text
	}{
		{"body changed after signing, draft-cavage", cavage, "body", []string{"Digest does not match the body"}},
		{"body changed after signing, RFC 9421", rfc9421, "body", []string{"Content-Digest does not match the body"}},
		{"Date two hours old, draft-cavage", cavage, "date", []string{"Date is 2h", "old; the allowed window is 5m0s"}},
		{"created two hours old, RFC 9421", rfc9421, "date", []string{"created is 2h", "old; the allowed window is 5m0s"}},
		{"key not listed by the actor, draft-cavage", cavage, "wrong-key", []string{"key " + p.ready.RogueKeyID + " could not be resolved"}},
		{"key not listed by the actor, RFC 9421", rfc9421, "wrong-key", []string{"key " + p.ready.RogueKeyID + " could not be resolved"}},
		{"signed by another actor, draft-cavage", cavage, "other-actor", []string{
			"key " + p.ready.OtherKeyID + " is owned by " + p.ready.Other + ", not by the activity's actor " + p.ready.Actor}},
		{"signed by another actor, RFC 9421", rfc9421, "other-actor", []string{
			"key " + p.ready.OtherKeyID + " is owned by " + p.ready.Other + ", not by the activity's actor " + p.ready.Actor}},
		{"RFC 9421 covering only date", rfc9421, "date-only-9421", []string{"RFC 9421 signature does not cover @method"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act := p.offer(fmt.Sprintf("tampered-%d", i), n.actorID("vendor"), actor.ActivityStreamsContext)
			res := p.do(t, map[string]any{"cmd": "post", "url": n.actorID("vendor") + "/inbox", "spec": tt.spec, "tamper": tt.tamper, "activity": act})
			if res.Status != http.StatusUnauthorized {
				t.Errorf("status %d (%s), want 401", res.Status, res.Response)
			}
			for _, w := range tt.wantError {
				if !strings.Contains(res.Error, w) {
					t.Errorf("error %q does not say %q", res.Error, w)
				}
			}
			id := act["id"].(string)
			if _, err := n.Store().Activity(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused Offer %s: store lookup error %v, want store.ErrNotFound", id, err)
			}
			if ids := n.inboxIDs(t, "vendor"); slices.Contains(ids, id) {
				t.Errorf("refused Offer %s is in vendor's inbox", id)
			}
		})
	}
}

// testPeerKeyFetch: our node fetches the peer's actor and key with a GET
// that Fedify verifies (the peer requires signed fetches), and caches the
// key. A node without the loopback exemption refuses to fetch it at all.
func testPeerKeyFetch(t *testing.T, n *testNode, p *peer) {
	strict := startNode(t, nil, false)
	tests := []struct {
		name      string
		node      *testNode
		wantCode  int
		wantError string
	}{
		{"node allowing private peers", n, http.StatusAccepted, ""},
		{"node refusing private peers", strict, http.StatusUnauthorized,
			"key " + p.ready.KeyID + " could not be resolved"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nodeKey := tt.node.actorID("vendor") + "#main-key"
			fetchedByNode := func(ev *peerEvent) bool {
				return ev.Event == "request" && ev.Path == "/users/finder" && ev.Signature != nil && ev.Signature.KeyID == nodeKey
			}
			act := p.offer(fmt.Sprintf("keyfetch-%d", i), tt.node.actorID("vendor"), actor.ActivityStreamsContext)
			res := p.do(t, map[string]any{"cmd": "post", "url": tt.node.actorID("vendor") + "/inbox", "spec": cavage, "activity": act})
			if res.Status != tt.wantCode || !strings.Contains(res.Error, tt.wantError) {
				t.Fatalf("POST: status %d error %q, want %d and %q", res.Status, res.Error, tt.wantCode, tt.wantError)
			}
			key, err := tt.node.Store().RemoteKey(context.Background(), p.ready.KeyID)
			if tt.wantCode != http.StatusAccepted {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("key cache after a refused fetch: %+v, %v; want store.ErrNotFound", key, err)
				}
				if evs := p.events(fetchedByNode); len(evs) != 0 {
					t.Errorf("the node reached the peer %d times although private peers are refused", len(evs))
				}
				return
			}
			if err != nil {
				t.Fatalf("the peer's key is not cached: %v", err)
			}
			if key.Owner != p.ready.Actor || strings.TrimSpace(key.PublicKeyPEM) != strings.TrimSpace(p.ready.PublicKeyPem) {
				t.Errorf("cached key: owner %q PEM %q; want %s and the peer's PEM", key.Owner, key.PublicKeyPEM, p.ready.Actor)
			}
			offerID := act["id"].(string)
			p.waitReceived(t, "Read(Offer "+offerID+")", func(a receivedActivity) bool { return a.Type == "Read" && a.objectID() == offerID })
			fetches := p.events(fetchedByNode)
			if len(fetches) == 0 {
				t.Fatalf("the peer saw no signed GET of its actor from %s", nodeKey)
			}
			for _, ev := range fetches {
				if !ev.Verified["fedify"] {
					t.Errorf("Fedify refused the node's signed GET of %s (signature %+v)", ev.Path, ev.Signature)
				}
				if ev.Signature.Spec != "draft-cavage" || !slices.Equal(ev.Signature.Covered, []string{"(request-target)", "host", "date"}) {
					t.Errorf("the node's GET was signed %+v, want draft-cavage over (request-target) host date", ev.Signature)
				}
			}

			// Both the key and the inbox are cached now: another Offer and
			// its Read go through without a new fetch.
			again := p.offer(fmt.Sprintf("keyfetch-%d-again", i), tt.node.actorID("vendor"), actor.ActivityStreamsContext)
			if res := p.do(t, map[string]any{"cmd": "post", "url": tt.node.actorID("vendor") + "/inbox", "spec": rfc9421, "activity": again}); res.Status != http.StatusAccepted {
				t.Fatalf("second POST: status %d (%s), want 202", res.Status, res.Response)
			}
			againID := again["id"].(string)
			p.waitReceived(t, "Read(Offer "+againID+")", func(a receivedActivity) bool { return a.Type == "Read" && a.objectID() == againID })
			if after := p.events(fetchedByNode); len(after) != len(fetches) {
				t.Errorf("the node fetched the peer's actor %d more times; the key and inbox should be cached", len(after)-len(fetches))
			}
		})
	}
}

// requirePeer fails the test when the foreign peer cannot run: the
// interoperability tests are never skipped.
func requirePeer(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node (Node.js 20 or later) is not on PATH (%v): install it, then run `make test`, which installs the peer's packages with npm ci", err)
	}
	if _, err := os.Stat(filepath.Join("peer", "node_modules", ".package-lock.json")); err != nil {
		t.Fatalf("the peer's packages are not installed (%v): run `make test` (or `make peer-deps`), which runs npm ci in federation_test/peer", err)
	}
}

// testCerts is a test certificate authority and a certificate for
// 127.0.0.1 that it signed. caFile holds the CA in PEM form for the peer
// (NODE_EXTRA_CA_CERTS).
type testCerts struct {
	server tls.Certificate
	pool   *x509.CertPool
	caFile string
}

// newTestCerts makes a CA and a server certificate for 127.0.0.1. The node
// is served over TLS because Fedify, following RFC 7033, resolves acct:
// WebFinger resources over https only.
func newTestCerts(t *testing.T) *testCerts {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("CA key: %v", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vultron interop test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("server key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatalf("server certificate: %v", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatalf("write CA file: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &testCerts{server: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool: pool, caFile: caFile}
}

// testNode is an in-process node with one actor, vendor:Organization.
type testNode struct {
	*node.Node
	url    string
	token  string
	client *http.Client
}

// startNode starts a node on 127.0.0.1, over TLS when certs is set, and
// stops it when the test ends. allowPrivate is the test-only exemption
// that lets it fetch from and deliver to loopback peers.
func startNode(t *testing.T, certs *testCerts, allowPrivate bool) *testNode {
	t.Helper()
	var ln net.Listener = listenLoopback(t)
	base := "http://" + ln.Addr().String()
	client := &http.Client{Timeout: waitLimit}
	if certs != nil {
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{certs.server}, MinVersion: tls.VersionTLS12})
		base = "https://" + ln.Addr().String()
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: certs.pool, MinVersion: tls.VersionTLS12}}
	}
	dir := t.TempDir()
	n, err := node.New(context.Background(), node.Config{
		DataDir:   dir,
		Listener:  ln,
		PublicURL: base,
		// vendor accepts every Follow, as a public advisory actor does.
		Actors:            []node.ActorConfig{{Name: "vendor", Type: actor.Organization, OpenFollowers: true}},
		AllowPrivatePeers: allowPrivate,
		NoSync:            true,
		RootCAs:           rootCAs(certs),
		Logger:            zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel),
		Notice:            io.Discard,
	})
	if err != nil {
		ln.Close()
		t.Fatalf("node.New: %v", err)
	}
	token, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatalf("read API token: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node Serve: %v", err)
		}
	})
	return &testNode{Node: n, url: base, token: strings.TrimSpace(string(token)), client: client}
}

// rootCAs returns the test CA's pool, which the node trusts for its own
// requests to itself (a Case Actor's deliveries), or nil.
func rootCAs(certs *testCerts) *x509.CertPool {
	if certs == nil {
		return nil
	}
	return certs.pool
}

// host returns host:port of the node's public URL.
func (n *testNode) host() string {
	return strings.TrimPrefix(strings.TrimPrefix(n.url, "https://"), "http://")
}

func (n *testNode) actorID(name string) string { return n.url + "/actors/" + name }

// inboxIDs returns the ids of the activities in a local actor's inbox,
// read through the node's API.
func (n *testNode) inboxIDs(t *testing.T, name string) []string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.actorID(name)+"/inbox?limit=200", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	resp, err := n.client.Do(req)
	if err != nil {
		t.Fatalf("GET inbox of %s: %v", name, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET inbox of %s: status %d: %s", name, resp.StatusCode, body)
	}
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"orderedItems"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatalf("decode inbox page: %v", err)
	}
	ids := make([]string, len(page.Items))
	for i, it := range page.Items {
		ids[i] = it.ID
	}
	return ids
}

// sigInfo describes a signature as the peer saw or sent it.
type sigInfo struct {
	Spec      string   `json:"spec"` // "draft-cavage" or "rfc9421"
	KeyID     string   `json:"keyId"`
	Algorithm string   `json:"algorithm"`
	Covered   []string `json:"covered"`
}

// peerEvent is one JSON line from the peer: an event ("ready", "request",
// "received", "log", "error") or the "result" of a command. Each kind
// uses some of the fields.
type peerEvent struct {
	Event string `json:"event"`
	ID    int    `json:"id"`
	Cmd   string `json:"cmd"`

	// ready
	Base         string `json:"base"`
	Actor        string `json:"actor"`
	KeyID        string `json:"keyId"`
	PublicKeyPem string `json:"publicKeyPem"`
	Other        string `json:"other"`
	OtherKeyID   string `json:"otherKeyId"`
	RogueKeyID   string `json:"rogueKeyId"`
	Modern       string `json:"modern"`
	Liar         string `json:"liar"`

	// accepted: the peer's Accept of a Follow it received
	Follow string `json:"follow"`

	// results of every command
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	// post
	Status   int      `json:"status"`
	Response string   `json:"response"`
	Sent     *sigInfo `json:"sent"`
	// webfinger
	JRD json.RawMessage `json:"jrd"`
	// lookup
	Fetched           bool   `json:"fetched"`
	DocumentID        string `json:"documentId"`
	ObjectID          string `json:"objectId"`
	ObjectType        string `json:"objectType"`
	IsActor           bool   `json:"isActor"`
	PreferredUsername string `json:"preferredUsername"`
	Inbox             string `json:"inbox"` // also the inbox path of "received"
	Outbox            string `json:"outbox"`
	PublicKeyID       string `json:"publicKeyId"`
	PublicKeyOwner    string `json:"publicKeyOwner"`
	OwnsKey           bool   `json:"ownsKey"`

	// request and received
	Method      string          `json:"method"`
	Path        string          `json:"path"`
	Signature   *sigInfo        `json:"signature"`
	Verified    map[string]bool `json:"verified"`
	Reason      string          `json:"reason"`
	ContentType string          `json:"contentType"`
	Body        json.RawMessage `json:"body"`
	// Whether Fedify's vocabulary parsed a received activity, and why not.
	ParsedByFedify bool   `json:"parsedByFedify"`
	ParseError     string `json:"parseError"`

	activity receivedActivity // Body decoded, for "received"
}

// receivedActivity is the part of an activity the tests look at.
type receivedActivity struct {
	ID     string          `json:"id"`
	Type   string          `json:"type"`
	Actor  string          `json:"actor"`
	Object json.RawMessage `json:"object"`
}

// objectID returns the id of the activity's object, given inline or by
// reference.
func (a receivedActivity) objectID() string {
	var id string
	if json.Unmarshal(a.Object, &id) == nil {
		return id
	}
	var obj struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(a.Object, &obj)
	return obj.ID
}

// peer is the running peer process.
type peer struct {
	ready peerEvent
	stdin io.WriteCloser
	done  chan struct{} // closed when the process has exited

	mu      sync.Mutex
	lines   []*peerEvent
	changed chan struct{} // closed and replaced whenever a line arrives
	nextID  int
	stderr  bytes.Buffer
	waitErr error
}

// startPeer starts peer/peer.mjs, trusting the CA in caFile, and waits for
// it to report ready. It is stopped (by closing its stdin) when the test
// ends, and any error it reported fails the test.
func startPeer(t *testing.T, caFile string) *peer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "peer/peer.mjs")
	cmd.Env = append(os.Environ(), "NODE_EXTRA_CA_CERTS="+caFile, "PEER_PORT=0")
	cmd.WaitDelay = 10 * time.Second
	p := &peer{done: make(chan struct{}), changed: make(chan struct{})}
	cmd.Stderr = lockedWriter{&p.mu, &p.stderr}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatalf("peer stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatalf("peer stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the peer (node peer/peer.mjs): %v", err)
	}
	p.stdin = stdin
	go p.read(stdout, cmd)
	t.Cleanup(func() {
		defer cancel()
		stdin.Close()
		select {
		case <-p.done:
		case <-time.After(waitLimit):
			t.Errorf("the peer did not exit after its stdin was closed")
			cancel()
			<-p.done
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.waitErr != nil {
			t.Errorf("peer exited with %v\nstderr:\n%s", p.waitErr, p.stderr.String())
		}
		for _, ev := range p.lines {
			if ev.Event == "error" {
				t.Errorf("the peer reported an error: %s", ev.Error)
			}
		}
		if t.Failed() {
			for _, ev := range p.lines {
				raw, _ := json.Marshal(ev)
				t.Logf("peer: %s", raw)
			}
		}
	})
	p.ready = *p.wait(t, "the peer to be ready", func(ev *peerEvent) bool { return ev.Event == "ready" })
	if !strings.HasPrefix(p.ready.Base, "http://127.0.0.1:") {
		t.Fatalf("the peer listens on %q; it must bind 127.0.0.1 only", p.ready.Base)
	}
	return p
}

// lockedWriter serializes writes to w with mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// read collects the peer's JSON lines until its stdout closes, then waits
// for the process.
func (p *peer) read(stdout io.Reader, cmd *exec.Cmd) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		ev := &peerEvent{}
		if err := json.Unmarshal(sc.Bytes(), ev); err != nil {
			ev = &peerEvent{Event: "error", Error: fmt.Sprintf("not a JSON line: %q", sc.Text())}
		}
		if ev.Event == "received" {
			_ = json.Unmarshal(ev.Body, &ev.activity)
		}
		p.mu.Lock()
		p.lines = append(p.lines, ev)
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	err := cmd.Wait()
	p.mu.Lock()
	p.waitErr = err
	p.mu.Unlock()
	close(p.done)
}

// events returns the lines seen so far that match.
func (p *peer) events(match func(*peerEvent) bool) []*peerEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*peerEvent
	for _, ev := range p.lines {
		if match(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// wait returns the first line that matches, waiting for it up to
// waitLimit.
func (p *peer) wait(t *testing.T, what string, match func(*peerEvent) bool) *peerEvent {
	t.Helper()
	timeout := time.NewTimer(waitLimit)
	defer timeout.Stop()
	for {
		p.mu.Lock()
		for _, ev := range p.lines {
			if match(ev) {
				p.mu.Unlock()
				return ev
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.done:
			// Lines read before exit are already recorded; look once more.
			if evs := p.events(match); len(evs) > 0 {
				return evs[0]
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			t.Fatalf("the peer exited (%v) while the test waited for %s\nstderr:\n%s", p.waitErr, what, p.stderr.String())
		case <-timeout.C:
			t.Fatalf("timed out after %v waiting for %s", waitLimit, what)
		}
	}
}

// waitReceived waits until the peer's inbox has received an activity that
// matches.
func (p *peer) waitReceived(t *testing.T, what string, match func(receivedActivity) bool) *peerEvent {
	t.Helper()
	return p.wait(t, what+" in the peer's inbox", func(ev *peerEvent) bool { return ev.Event == "received" && match(ev.activity) })
}

// do sends a command to the peer and returns its result.
func (p *peer) do(t *testing.T, cmd map[string]any) *peerEvent {
	t.Helper()
	p.mu.Lock()
	p.nextID++
	id := p.nextID
	p.mu.Unlock()
	cmd["id"] = id
	line, err := json.Marshal(cmd)
	if err != nil {
		t.Fatalf("encode peer command: %v", err)
	}
	if _, err := p.stdin.Write(append(line, '\n')); err != nil {
		t.Fatalf("send %s to the peer: %v", cmd["cmd"], err)
	}
	return p.wait(t, fmt.Sprintf("the result of %s", line), func(ev *peerEvent) bool { return ev.Event == "result" && ev.ID == id })
}

// offer returns an Offer(VulnerabilityReport) from the peer's finder to
// recipient in the Vultron wire format, with ids on the peer's host.
func (p *peer) offer(name, recipient, context string) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	reportID := p.ready.Base + "/reports/" + url.PathEscape(name)
	return map[string]any{
		"@context":  context,
		"id":        p.ready.Base + "/activities/offer-" + url.PathEscape(name),
		"type":      "Offer",
		"name":      p.ready.Actor + " Offer FDR-" + name,
		"published": now,
		"actor":     p.ready.Actor,
		"to":        []string{recipient},
		"object": map[string]any{
			"@context":     context,
			"id":           reportID,
			"type":         "VulnerabilityReport",
			"name":         "FDR-" + name,
			"published":    now,
			"content":      "A crafted widget file overflows a heap buffer in the parser.",
			"attributedTo": []string{p.ready.Actor},
		},
	}
}
