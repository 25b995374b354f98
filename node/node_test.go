package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// TestInboxRefusals posts hostile or malformed requests to a node's inbox
// and checks the status, the error text, and that nothing was stored.
func TestInboxRefusals(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	inboxURL := vendor.actorID("vendor") + "/inbox"
	good := p.offer(1, vendor.actorID("vendor"))

	tests := []struct {
		name       string
		body       []byte
		url        string
		edit       func(*http.Request)
		wantStatus int
		wantError  string
		storedID   string // an id that must not be stored afterwards
	}{
		{
			name: "unsigned", body: good,
			edit:       func(r *http.Request) { r.Header.Del("Signature") },
			wantStatus: 401, wantError: "request is not signed",
			storedID: p.id + "/activities/offer-1",
		},
		{
			name: "body changed after signing", body: good,
			edit: func(r *http.Request) {
				tampered := strings.Replace(string(good), "Heap overflow", "Heap overfloW", 1)
				r.Body = ioNopCloser(tampered)
				r.ContentLength = int64(len(tampered))
			},
			wantStatus: 401, wantError: "Digest does not match the body",
			storedID: p.id + "/activities/offer-1",
		},
		{
			name: "stale date", body: good,
			edit: func(r *http.Request) {
				r.Header.Set("Date", time.Now().Add(-2*time.Hour).UTC().Format(http.TimeFormat))
			},
			wantStatus: 401, wantError: "old; the allowed window is 5m0s",
		},
		{
			name: "wrong content type", body: good,
			edit:       func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") },
			wantStatus: 415, wantError: "Content-Type text/plain is not accepted",
		},
		{
			name:       "too large",
			body:       []byte(`{"pad":"` + strings.Repeat("x", 400<<10) + `"}`),
			wantStatus: 413, wantError: "the body has",
		},
		{
			name:       "not JSON",
			body:       []byte(`{"type": "Offer",`),
			wantStatus: 400,
		},
		{
			name:       "duplicate keys",
			body:       []byte(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","type":"Accept"}`),
			wantStatus: 400, wantError: "duplicate",
		},
		{
			name:       "bare object",
			body:       []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%s/notes/1","type":"Note","content":"hi"}`, p.id)),
			wantStatus: 422, wantError: "an inbox accepts activities, not a bare Note",
		},
		{
			name:       "actor is not the signer",
			body:       []byte(strings.ReplaceAll(string(good), `"actor": "`+p.id+`"`, `"actor": "`+p.srv.URL+`/actors/bob"`)),
			wantStatus: 401, wantError: "is owned by " + p.id + ", not by the activity's actor",
		},
		{
			name:       "activity id on another host",
			body:       []byte(strings.Replace(string(good), `"id": "`+p.id+`/activities/offer-1"`, `"id": "https://elsewhere.example/activities/offer-1"`, 1)),
			wantStatus: 401, wantError: "activity id host elsewhere.example is not the actor's host",
			storedID: "https://elsewhere.example/activities/offer-1",
		},
		{
			name:       "not addressed to this actor",
			body:       p.offer(2, "https://other.example/actors/someone"),
			wantStatus: 400, wantError: "is not addressed to " + vendor.actorID("vendor"),
			storedID: p.id + "/activities/offer-2",
		},
		{
			name:       "unknown local actor",
			body:       good,
			url:        vendor.actorID("nobody") + "/inbox",
			wantStatus: 404, wantError: `no actor "nobody" on this node`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url := tt.url
			if url == "" {
				url = inboxURL
			}
			status, msg := p.post(t, url, tt.body, tt.edit)
			if status != tt.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, msg, tt.wantStatus)
			}
			if !strings.Contains(msg, tt.wantError) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.wantError)
			}
			if tt.storedID != "" {
				if _, err := vendor.db.Activity(context.Background(), tt.storedID); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("activity %s was stored after a refusal (err %v)", tt.storedID, err)
				}
			}
		})
	}
	if got := len(vendor.inboxItems(t, "vendor")); got != 0 {
		t.Errorf("vendor's inbox holds %d activities after refusals only", got)
	}
}

// TestInboxAcceptsAndAcknowledges delivers a report from a foreign peer:
// the node answers 202 after storing it, replays are no-ops, a changed body
// under the same id is a conflict, and the acknowledgement (RK) reaches
// the peer's inbox signed by the vendor.
func TestInboxAcceptsAndAcknowledges(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	inboxURL := vendor.actorID("vendor") + "/inbox"
	body := p.offer(1, vendor.actorID("vendor"))

	if status, msg := p.post(t, inboxURL, body, nil); status != http.StatusAccepted {
		t.Fatalf("first post: %d %s", status, msg)
	}
	stored, err := vendor.db.Activity(context.Background(), p.id+"/activities/offer-1")
	if err != nil {
		t.Fatalf("offer not stored: %v", err)
	}
	if got, want := stored.Semantic, "SUBMIT_REPORT"; got != want {
		t.Errorf("semantic = %s, want %s", got, want)
	}
	if status, msg := p.post(t, inboxURL, body, nil); status != http.StatusAccepted {
		t.Fatalf("replay: %d %s", status, msg)
	}
	changed := []byte(strings.Replace(string(body), "Heap overflow", "Stack overflow", 1))
	if status, msg := p.post(t, inboxURL, changed, nil); status != http.StatusConflict || !strings.Contains(msg, "already received with a different body") {
		t.Fatalf("same id, other body: %d %q, want 409", status, msg)
	}
	if got := len(vendor.inboxItems(t, "vendor")); got != 1 {
		t.Errorf("vendor's inbox holds %d activities, want 1", got)
	}

	waitFor(t, "the acknowledgement at the peer", func() bool { return p.receivedCount() >= 1 })
	p.mu.Lock()
	ack, err := decode(p.received[0])
	p.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if ack["type"] != "Read" || ack["actor"] != vendor.actorID("vendor") || ack["inReplyTo"] != p.id+"/activities/offer-1" {
		t.Errorf("acknowledgement = %v, want Read by the vendor in reply to the offer", ack)
	}
	if p.receivedCount() != 1 {
		t.Errorf("peer received %d activities, want exactly one acknowledgement", p.receivedCount())
	}
}

// TestReportFlowBetweenNodes runs the pre-case report exchange between two
// nodes through their outboxes only: the finder submits (RS), the vendor
// acknowledges automatically (RK), validates (RV) and the finder
// acknowledges that; an action the vendor's RM state forbids is refused
// with 409.
func TestReportFlowBetweenNodes(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{
  "@context": "https://certcc.github.io/Vultron/ns/context.jsonld",
  "type": "Offer",
  "to": [%q],
  "object": {"type": "VulnerabilityReport", "name": "SQL injection in login", "content": "The login form concatenates the user name into SQL."}
}`, vendorID))

	waitFor(t, "the offer in the vendor's inbox", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	waitFor(t, "the acknowledgement in the finder's inbox", func() bool { return len(finder.inboxItems(t, "finder")) == 1 })
	if got := finder.inboxItems(t, "finder")[0]; got["type"] != "Read" || got["inReplyTo"] != offerID {
		t.Fatalf("finder received %v, want Read in reply to %s", got, offerID)
	}

	// Closing straight from RECEIVED is not a valid RM transition.
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox",
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Reject","object":%q,"to":[%q]}`, offerID, finderID))
	if status != http.StatusConflict || !strings.Contains(string(body), "close is not allowed from RECEIVED") {
		t.Fatalf("close from RECEIVED: %d %s, want 409 naming the RM rule", status, body)
	}

	rvID := vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	waitFor(t, "the validation at the finder", func() bool { return countType(finder.inboxItems(t, "finder"), "Accept") == 1 })
	vendor.inboxReply(t, "vendor", "Read", rvID) // the finder's acknowledgement of the validation

	// Validating twice is refused: the vendor is in VALID now.
	status, body = vendor.api(t, http.MethodPost, "/actors/vendor/outbox",
		fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	if status != http.StatusConflict {
		t.Fatalf("second validation: %d %s, want 409", status, body)
	}

	// The report is served to its parties only: the vendor with a signed
	// GET, the finder's node with its token; a stranger is refused.
	reportID := reportIDOf(t, finder, offerID)
	vendorLocal, _ := vendor.Local("vendor")
	if status := signedGet(t, reportID, vendorLocal.KeyID, vendorLocal.Key); status != http.StatusOK {
		t.Errorf("vendor's signed GET of the report: %d, want 200", status)
	}
	stranger := newPeer(t, sharedKeys.get(t, 1))
	if status := signedGet(t, reportID, stranger.keyID, stranger.key); status != http.StatusForbidden {
		t.Errorf("stranger's signed GET of the report: %d, want 403", status)
	}
	if status, _ := finder.api(t, http.MethodGet, strings.TrimPrefix(reportID, finder.url), ""); status != http.StatusOK {
		t.Errorf("GET of the report with the token: %d, want 200", status)
	}

	// Nothing is left undelivered.
	waitFor(t, "empty delivery queues", func() bool {
		a, _ := finder.db.PendingCount(context.Background())
		b, _ := vendor.db.PendingCount(context.Background())
		return a == 0 && b == 0
	})
}

// TestOutboxRefusals checks the client-to-server refusals.
func TestOutboxRefusals(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	tests := []struct {
		name, token, body string
		wantStatus        int
		wantError         string
	}{
		{"no token", "", `{}`, 401, "needs a token with the act scope"},
		{"wrong token", "nope", `{}`, 401, "is not one of this node's"},
		{"client-chosen id", "ok", `{"@context":"https://www.w3.org/ns/activitystreams","id":"https://x.example/1","type":"Create","object":{"type":"Note","content":"x"}}`, 400, "the node assigns ids"},
		{"other actor", "ok", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","actor":"https://x.example/actors/eve","object":{"type":"Note","content":"x"}}`, 403, "is not " + vendor.actorID("vendor")},
		{"unknown semantic", "ok", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Like","object":"https://x.example/notes/1"}`, 422, "not a Vultron message"},
		{"malformed", "ok", `{"type":`, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, vendor.url+"/actors/vendor/outbox", strings.NewReader(tt.body))
			switch tt.token {
			case "ok":
				req.Header.Set("Authorization", "Bearer "+vendor.token)
			case "":
			default:
				req.Header.Set("Authorization", "Bearer "+tt.token)
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
			if resp.StatusCode != tt.wantStatus || !strings.Contains(e.Error, tt.wantError) {
				t.Errorf("got %d %q, want %d containing %q", resp.StatusCode, e.Error, tt.wantStatus, tt.wantError)
			}
		})
	}
	if n, _ := vendor.db.PendingCount(context.Background()); n != 0 {
		t.Errorf("%d deliveries queued after refusals only", n)
	}
}

// TestPublicSurface checks WebFinger, NodeInfo and the actor document, and
// that objects need a signed GET or the token.
func TestPublicSurface(t *testing.T) {
	vendor := startNode(t, "vendor:Organization", "psirt-bot:Service")
	host := strings.TrimPrefix(vendor.url, "http://")
	get := func(path string) (*http.Response, map[string]any) {
		resp, err := http.Get(vendor.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, jrd := get("/.well-known/webfinger?resource=acct:psirt-bot@" + host)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/jrd+json" || jrd["subject"] != "acct:psirt-bot@"+host {
		t.Errorf("webfinger: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), jrd)
	}
	if resp, _ := get("/.well-known/webfinger?resource=acct:nobody@" + host); resp.StatusCode != 404 {
		t.Errorf("webfinger for an unknown actor: %d, want 404", resp.StatusCode)
	}
	resp, doc := get("/actors/vendor")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/activity+json" || doc["inbox"] != vendor.actorID("vendor")+"/inbox" {
		t.Errorf("actor document: %d %v", resp.StatusCode, doc)
	}
	if pk, _ := doc["publicKey"].(map[string]any); pk["id"] != vendor.actorID("vendor")+"#main-key" || pk["owner"] != vendor.actorID("vendor") {
		t.Errorf("publicKey = %v", doc["publicKey"])
	}
	resp, links := get("/.well-known/nodeinfo")
	if resp.StatusCode != 200 || !strings.Contains(fmt.Sprint(links), "/nodeinfo/2.1") {
		t.Errorf("nodeinfo links: %v", links)
	}
	resp, ni := get("/nodeinfo/2.1")
	if resp.StatusCode != 200 || ni["version"] != "2.1" || !strings.Contains(fmt.Sprint(ni["usage"]), "total:0") {
		t.Errorf("nodeinfo: %v", ni)
	}

	id := vendor.submit(t, "vendor", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Create","object":{"type":"Note","content":"internal"}}`)
	path := strings.TrimPrefix(id, vendor.url)
	if resp, body := get(path); resp.StatusCode != 401 || !strings.Contains(fmt.Sprint(body["error"]), "not signed") {
		t.Errorf("unsigned GET of %s: %d %v, want 401", path, resp.StatusCode, body)
	}
	if status, _ := vendor.api(t, http.MethodGet, path, ""); status != 200 {
		t.Errorf("GET with the token: %d, want 200", status)
	}
	if status, _ := vendor.api(t, http.MethodGet, "/actors/vendor/inbox", ""); status != 200 {
		t.Errorf("inbox with the token: %d", status)
	}
	if resp, _ := get("/actors/vendor/inbox"); resp.StatusCode != 401 {
		t.Errorf("inbox without the token: %d, want 401", resp.StatusCode)
	}

	// Operations: readiness, schemas, metrics (behind the token).
	if resp, body := get("/readyz"); resp.StatusCode != 200 || body["status"] != "ready" {
		t.Errorf("readyz: %d %v", resp.StatusCode, body)
	}
	if resp, body := get("/schemas/"); resp.StatusCode != 200 || !strings.Contains(fmt.Sprint(body["schemas"]), "VulnerabilityCase.json") {
		t.Errorf("schema list: %d %v", resp.StatusCode, body)
	}
	if resp, body := get("/schemas/VulnerabilityCase.json"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/schema+json" || body["$schema"] == nil {
		t.Errorf("schema: %d %s %v", resp.StatusCode, resp.Header.Get("Content-Type"), body["$schema"])
	}
	if resp, _ := get("/metrics"); resp.StatusCode != 401 {
		t.Errorf("metrics without the token: %d, want 401", resp.StatusCode)
	}
	status, metricsBody := vendor.api(t, http.MethodGet, "/metrics", "")
	for _, want := range []string{`vultron_http_requests_total{method="GET",route="/actors/{name}",status="200"}`, "vultron_delivery_queue_depth 0", `vultron_deliveries_total{outcome="delivered"}`} {
		if status != 200 || !strings.Contains(string(metricsBody), want) {
			t.Errorf("metrics lack %q:\n%s", want, metricsBody)
		}
	}
	// The node has written (its actors, the exchange above): the commit
	// counter says so.
	if m := regexp.MustCompile(`(?m)^vultron_store_commits_total ([0-9]+)$`).FindSubmatch(metricsBody); m == nil || string(m[1]) == "0" {
		t.Errorf("metrics lack a positive vultron_store_commits_total:\n%s", metricsBody)
	}
}

// TestInvalidateAndCloseReport takes a report down the other path of the
// RM model before any case exists: the vendor finds it invalid (RI), then
// closes it (RC); the finder is told of each and acknowledges it, and no
// case is opened.
func TestInvalidateAndCloseReport(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Not a bug","content":"works as designed"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	answer := func(typ string) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":%q,"object":%q,"to":[%q]}`, typ, offerID, finderID)
	}
	vendor.submit(t, "vendor", answer("TentativeReject"))
	if status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", answer("TentativeReject")); status != http.StatusConflict || !strings.Contains(string(body), "invalidate is not allowed from INVALID") {
		t.Errorf("invalidating twice: %d %s, want 409", status, body)
	}
	vendor.submit(t, "vendor", answer("Reject"))
	waitFor(t, "the invalidation and the closure at the finder", func() bool {
		items := finder.inboxItems(t, "finder")
		return countType(items, "TentativeReject") == 1 && countType(items, "Reject") == 1
	})
	// RK of the RI and of the RC, and CK of the vendor's awareness (CV).
	waitFor(t, "the finder's acknowledgements", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Read") == 3 })
	if status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", answer("Accept")); status != http.StatusConflict || !strings.Contains(string(body), "CLOSED") {
		t.Errorf("validating a closed report: %d %s, want 409", status, body)
	}
	if n := len(vendor.cases(t)); n != 0 {
		t.Errorf("the vendor's node holds %d cases; an invalid report opens none", n)
	}
}
