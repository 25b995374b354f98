package node

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/store"
)

// TestFederationAllowlist runs a node that federates only with
// cvd.partner.example: a correctly signing peer on another host is refused
// with 403 before its key is fetched, nothing is stored, and the node
// delivers nothing to it either.
func TestFederationAllowlist(t *testing.T) {
	vendor := startNodeWith(t, Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	status, msg := p.post(t, vendor.actorID("vendor")+"/inbox", p.offer(1, vendor.actorID("vendor")), nil)
	host := strings.TrimPrefix(p.srv.URL, "http://")
	if status != http.StatusForbidden || msg != "peer "+host+" is not on this node's federation allow-list; its key was not fetched" {
		t.Fatalf("post from a peer off the list: %d %q, want 403", status, msg)
	}
	if n := p.docFetches.Load(); n != 0 {
		t.Errorf("the node fetched the refused peer's key %d times", n)
	}
	if _, err := vendor.db.Activity(context.Background(), p.id+"/activities/offer-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("refused activity stored (err %v)", err)
	}
	// A signed GET from the peer is refused the same way.
	if got := signedGet(t, vendor.url+"/objects/x", p.keyID, p.key); got != http.StatusForbidden {
		t.Errorf("signed GET from a peer off the list: %d, want 403", got)
	}
	// Outbound: the outbox refuses an offer to the peer, naming the
	// allow-list, and queues nothing.
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":["`+p.id+`"],
"object":{"type":"VulnerabilityReport","name":"n","content":"c"}}`)
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "allow-list") {
		t.Errorf("an offer to a peer off the list: %d %s, want 422 naming the allow-list", status, body)
	}
	if n, err := vendor.db.PendingCount(context.Background()); err != nil || n != 0 {
		t.Errorf("%d deliveries queued to the peer off the list (%v)", n, err)
	}
	if p.receivedCount() != 0 || p.docFetches.Load() != 0 {
		t.Errorf("the peer off the list received %d deliveries and %d fetches", p.receivedCount(), p.docFetches.Load())
	}
}

// TestFederationRateLimits checks the per-peer and per-IP limits: 429
// with Retry-After, before the body is read (per IP) or the key fetched
// (per peer); requests with the node's token are not limited.
func TestFederationRateLimits(t *testing.T) {
	t.Run("per peer", func(t *testing.T) {
		vendor := startNodeWith(t, Config{PeerRate: 0.01, PeerBurst: 2}, "vendor:Organization")
		p := newPeer(t, sharedKeys.get(t, 0))
		inbox := vendor.actorID("vendor") + "/inbox"
		for i := 1; i <= 2; i++ {
			if status, msg := p.post(t, inbox, p.offer(i, vendor.actorID("vendor")), nil); status != http.StatusAccepted {
				t.Fatalf("post %d within the burst: %d %s", i, status, msg)
			}
		}
		// The third request names a key the node has never seen: over the
		// limit it must not be fetched.
		probeKey := p.srv.URL + "/keys/probe#k"
		status, msg, h := p.postHeader(t, inbox, p.offer(3, vendor.actorID("vendor")), func(r *http.Request) {
			resignWithKeyID(t, r, p.offer(3, vendor.actorID("vendor")), probeKey, p)
		})
		host := strings.TrimPrefix(p.srv.URL, "http://")
		if status != http.StatusTooManyRequests || !strings.Contains(msg, "peer "+host+" is over its rate limit") {
			t.Fatalf("third post: %d %q, want 429", status, msg)
		}
		if secs, err := strconv.Atoi(h.Get("Retry-After")); err != nil || secs < 1 {
			t.Errorf("Retry-After = %q, want a number of seconds", h.Get("Retry-After"))
		}
		if n := p.hitCount("/keys/probe"); n != 0 {
			t.Errorf("the node fetched the key of a request over the rate limit (%d times)", n)
		}
		if _, err := vendor.db.Activity(context.Background(), p.id+"/activities/offer-3"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("activity over the limit stored (err %v)", err)
		}
	})
	t.Run("per IP", func(t *testing.T) {
		vendor := startNodeWith(t, Config{IPRate: 0.01, IPBurst: 1}, "vendor:Organization")
		post := func() (*http.Response, string) {
			resp, err := http.Post(vendor.actorID("vendor")+"/inbox", "application/activity+json", strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			m, _ := decodeReader(resp)
			return resp, m
		}
		if resp, msg := post(); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("first unsigned post: %d %s, want 401 (within the IP limit)", resp.StatusCode, msg)
		}
		resp, msg := post()
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(msg, "client 127.0.0.1 is over its rate limit") || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("second post: %d %q Retry-After %q, want 429 with Retry-After", resp.StatusCode, msg, resp.Header.Get("Retry-After"))
		}
		// The node's own API token is not limited.
		for range 3 {
			if status, body := vendor.api(t, http.MethodGet, "/objects/none", ""); status != http.StatusNotFound {
				t.Errorf("GET with the token: %d %s, want 404", status, body)
			}
		}
	})
}

// decodeReader returns the "error" of a JSON answer.
func decodeReader(resp *http.Response) (string, error) {
	var e struct {
		Error string `json:"error"`
	}
	err := json.NewDecoder(resp.Body).Decode(&e)
	return e.Error, err
}

// resignWithKeyID signs r again, naming keyID (with the peer's key).
func resignWithKeyID(t *testing.T, r *http.Request, body []byte, keyID string, p *peer) {
	t.Helper()
	r.Header.Del("Signature")
	if err := actor.SignRequest(r, body, keyID, p.key, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestClientIPBehindTrustedProxy runs a node behind a reverse proxy on
// 127.0.0.1 (the test client plays it): two clients the proxy forwards get
// separate per-IP rate buckets, the audit records of their refusals and of
// an accepted activity carry the forwarded client IP, and the same headers
// from a peer that is not a trusted proxy are ignored.
func TestClientIPBehindTrustedProxy(t *testing.T) {
	vendor := startNodeWith(t, Config{IPRate: 0.01, IPBurst: 1, TrustedProxies: []string{"127.0.0.0/8"}, TrustedProxyHeaders: []string{"X-Forwarded-For", "Forwarded"}}, "vendor:Organization")
	inbox := vendor.actorID("vendor") + "/inbox"
	post := func(header, value string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, inbox, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/activity+json")
		req.Header.Set(header, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := decodeReader(resp)
		return resp.StatusCode, msg
	}
	// Two clients, one named by X-Forwarded-For and one by Forwarded:
	// each has its own bucket of one request.
	if status, msg := post("X-Forwarded-For", "198.51.100.7"); status != http.StatusUnauthorized {
		t.Fatalf("first request of client 198.51.100.7: %d %q, want 401 (within its limit)", status, msg)
	}
	if status, msg := post("Forwarded", `for="[2001:db8:cafe::17]:4711";proto=https`); status != http.StatusUnauthorized {
		t.Fatalf("first request of client 2001:db8:cafe::17, behind the same proxy: %d %q, want 401 (its own bucket)", status, msg)
	}
	if status, msg := post("X-Forwarded-For", "203.0.113.9, 198.51.100.7"); status != http.StatusTooManyRequests || !strings.Contains(msg, "client 198.51.100.7 is over its rate limit") {
		t.Fatalf("second request of client 198.51.100.7: %d %q, want 429 naming it", status, msg)
	}
	recs, _, err := vendor.db.AuditPage(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var remotes []string
	for _, r := range recs {
		if r.Kind == store.AuditInbound && r.Decision == store.DecisionRefused {
			remotes = append(remotes, r.Remote)
		}
	}
	if strings.Join(remotes, " ") != "198.51.100.7 2001:db8:cafe::17 198.51.100.7" {
		t.Errorf("the refusals are recorded from %v, want the forwarded clients", remotes)
	}

	// An accepted activity forwarded by the proxy is recorded with its
	// client's IP.
	p := newPeer(t, sharedKeys.get(t, 0))
	status, msg := p.post(t, inbox, p.offer(1, vendor.actorID("vendor")), func(r *http.Request) {
		r.Header.Set("X-Forwarded-For", "192.0.2.44")
	})
	if status != http.StatusAccepted {
		t.Fatalf("a signed offer through the proxy: %d %q", status, msg)
	}
	recs, _, err = vendor.db.AuditPage(context.Background(), 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	accepted := ""
	for _, r := range recs {
		if r.Kind == store.AuditInbound && r.Decision == store.DecisionAccepted {
			accepted = r.Remote
		}
	}
	if accepted != "192.0.2.44" {
		t.Errorf("the accepted offer is recorded from %q, want the forwarded client 192.0.2.44", accepted)
	}

	// Without a trusted proxy the same headers are a client's claim: they
	// are ignored, and both "clients" share the bucket of 127.0.0.1.
	direct := startNodeWith(t, Config{IPRate: 0.01, IPBurst: 1}, "vendor:Organization")
	inbox = direct.actorID("vendor") + "/inbox"
	if status, msg := post("X-Forwarded-For", "198.51.100.7"); status != http.StatusUnauthorized {
		t.Fatalf("first request to the node without a proxy: %d %q", status, msg)
	}
	if status, msg := post("Forwarded", "for=198.51.100.8"); status != http.StatusTooManyRequests || !strings.Contains(msg, "client 127.0.0.1 is over its rate limit") {
		t.Fatalf("a spoofed Forwarded header from an untrusted peer: %d %q, want 429 for 127.0.0.1", status, msg)
	}
}
