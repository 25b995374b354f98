package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/store"
)

// hostileRow is one row of the bad-input list of
// ../shared/spec/federation-security.md §3.2 sent to a running node.
type hostileRow struct {
	b          string // the row's number, B1 … B30
	name       string
	send       func(t *testing.T) (status int, msg string)
	wantStatus int
	wantError  string
	// notStored are activity ids that must not be in the store afterwards.
	notStored []string
}

// TestHostileInputs sends every row of the bad-input list to a running
// node (or, for B17–B20, through the node's fetch path against test
// servers on 127.0.0.1) and checks the status, the error text, that
// nothing of the refused input was stored, and that the audit log recorded
// the refusal with its status and reason.
func TestHostileInputs(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	vendorID := vendor.actorID("vendor")
	inboxURL := vendorID + "/inbox"
	host := strings.TrimPrefix(vendor.url, "http://")
	peerHost := strings.TrimPrefix(p.srv.URL, "http://")
	good := p.offer(1, vendorID)
	offer1 := p.id + "/activities/offer-1"

	// post sends body signed by the peer, with edit applied after signing.
	post := func(body []byte, edit func(*http.Request)) func(t *testing.T) (int, string) {
		return func(t *testing.T) (int, string) { return p.post(t, inboxURL, body, edit) }
	}
	// forged replaces the signature with one whose parameters are given
	// (the node refuses it on its parameters, before any key is fetched).
	forged := func(sig string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Signature", sig) }
	}
	kid := p.keyID

	// A rogue server for key documents (B13, B14).
	var rogueHits atomic.Int32
	rogueMux := http.NewServeMux()
	rogue := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rogueHits.Add(1)
		rogueMux.ServeHTTP(w, r)
	}))
	t.Cleanup(rogue.Close)
	pemText, _ := actor.PublicKeyPEM(&p.key.PublicKey)
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", actor.ContentType)
		_ = json.NewEncoder(w).Encode(v)
	}
	// B13: a standalone key document claims bob owns it; bob's document
	// lists another key.
	rogueMux.HandleFunc("/keys/claimed", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"@context": actor.SecurityContext, "id": rogue.URL + "/keys/claimed", "owner": rogue.URL + "/actors/bob", "publicKeyPem": pemText})
	})
	rogueMux.HandleFunc("/actors/bob", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"@context": actor.ActivityStreamsContext, "id": rogue.URL + "/actors/bob", "type": "Person", "inbox": rogue.URL + "/actors/bob/inbox",
			"publicKey": map[string]string{"id": rogue.URL + "/actors/bob#other", "owner": rogue.URL + "/actors/bob", "publicKeyPem": pemText}})
	})
	// B14: the key URL redirects to the peer's real actor document.
	rogueMux.HandleFunc("/keys/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, p.id, http.StatusFound)
	})
	asRogue := func(keyID, actorID string, n int) func(t *testing.T) (int, string) {
		return func(t *testing.T) (int, string) {
			body := []byte(strings.ReplaceAll(string(p.offer(n, vendorID)), p.srv.URL, rogue.URL))
			body = []byte(strings.ReplaceAll(string(body), rogue.URL+"/actors/mallory", actorID))
			return p.post(t, inboxURL, body, func(r *http.Request) { resignWithKeyID(t, r, body, keyID, p) })
		}
	}

	createNote := func(n int, attributedTo, objectID string) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/activities/create-%[4]d","type":"Create","actor":"%[1]s","to":["%[2]s"],
"object":{"id":"%[5]s","type":"Note","content":"hello","attributedTo":"%[3]s"}}`, p.id, vendorID, attributedTo, n, objectID))
	}

	rows := []hostileRow{
		{b: "B1", name: "no signature", send: post(good, func(r *http.Request) { r.Header.Del("Signature") }),
			wantStatus: 401, wantError: "request is not signed: no Signature or Signature-Input header", notStored: []string{offer1}},
		{b: "B2", name: "body modified after signing", send: post(good, func(r *http.Request) {
			tampered := strings.Replace(string(good), "Heap overflow", "Heap overfloW", 1)
			r.Body, r.ContentLength = ioNopCloser(tampered), int64(len(tampered))
		}), wantStatus: 401, wantError: "Digest does not match the body", notStored: []string{offer1}},
		{b: "B3", name: "Digest not among the signed headers", send: post(good, forged(`keyId="`+kid+`",algorithm="rsa-sha256",headers="(request-target) host date",signature="AAAA"`)),
			wantStatus: 401, wantError: "signature does not cover the digest header", notStored: []string{offer1}},
		{b: "B4", name: "SHA-512 digest only", send: post(good, func(r *http.Request) { r.Header.Set("Digest", "SHA-512=AAAA") }),
			wantStatus: 401, wantError: "SHA-256", notStored: []string{offer1}},
		{b: "B5", name: "signed headers lack date", send: post(good, forged(`keyId="`+kid+`",algorithm="rsa-sha256",headers="(request-target) host digest",signature="AAAA"`)),
			wantStatus: 401, wantError: "does not cover date", notStored: []string{offer1}},
		{b: "B6", name: "signed Host is another host", send: post(good, func(r *http.Request) {
			// Signed for other.example (never contacted) and sent with that Host.
			other, _ := http.NewRequest(http.MethodPost, "http://other.example/actors/vendor/inbox", strings.NewReader(string(good)))
			if err := actor.SignRequest(other, good, kid, p.key, time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, h := range []string{"Signature", "Date", "Digest"} {
				r.Header.Set(h, other.Header.Get(h))
			}
			r.Host = "other.example"
		}), wantStatus: 401, wantError: "signed Host other.example is not this node (" + host + ")", notStored: []string{offer1}},
		{b: "B7", name: "signature made for another path", send: func(t *testing.T) (int, string) {
			return p.post(t, inboxURL, good, func(r *http.Request) {
				other, _ := http.NewRequest(http.MethodPost, vendorID+"/outbox", strings.NewReader(string(good)))
				other.Header.Set("Content-Type", actor.ContentType)
				if err := actor.SignRequest(other, good, kid, p.key, time.Now()); err != nil {
					t.Fatal(err)
				}
				for _, h := range []string{"Signature", "Date", "Digest"} {
					r.Header.Set(h, other.Header.Get(h))
				}
			})
		}, wantStatus: 401, wantError: "signature does not verify", notStored: []string{offer1}},
		{b: "B8", name: "Date two hours old", send: post(good, func(r *http.Request) {
			r.Header.Set("Date", time.Now().Add(-2*time.Hour).UTC().Format(http.TimeFormat))
		}), wantStatus: 401, wantError: "old; the allowed window is 5m0s", notStored: []string{offer1}},
		{b: "B9", name: "RFC 9421 signature covering only date", send: post(good, func(r *http.Request) {
			r.Header.Del("Signature")
			r.Header.Set("Signature-Input", fmt.Sprintf(`sig1=("date");created=%d;keyid=%q`, time.Now().Unix(), kid))
			r.Header.Set("Signature", "sig1=:AAAA:")
		}), wantStatus: 401, wantError: "RFC 9421 signature does not cover @method", notStored: []string{offer1}},
		{b: "B10", name: "algorithm hmac-sha256", send: post(good, func(r *http.Request) {
			sig := r.Header.Get("Signature")
			r.Header.Set("Signature", strings.Replace(sig, `algorithm="rsa-sha256"`, `algorithm="hmac-sha256"`, 1))
		}), wantStatus: 401, wantError: "hmac-sha256", notStored: []string{offer1}},
		{b: "B11", name: "key on one host, actor on another", send: post([]byte(strings.ReplaceAll(string(good), `"actor": "`+p.id+`"`, `"actor": "`+rogue.URL+`/actors/mallory"`)), nil),
			wantStatus: 401, wantError: "is owned by " + p.id + ", not by the activity's actor", notStored: []string{offer1}},
		{b: "B12", name: "alice's key, bob as actor on the same host", send: post([]byte(strings.ReplaceAll(string(good), `"actor": "`+p.id+`"`, `"actor": "`+p.srv.URL+`/actors/bob"`)), nil),
			wantStatus: 401, wantError: "is owned by " + p.id + ", not by the activity's actor", notStored: []string{offer1}},
		{b: "B13", name: "key document claims an owner that does not list it", send: asRogue(rogue.URL+"/keys/claimed", rogue.URL+"/actors/bob", 13),
			wantStatus: 401, wantError: "could not be resolved", notStored: []string{rogue.URL + "/activities/offer-13"}},
		{b: "B14", name: "key URL redirects", send: asRogue(rogue.URL+"/keys/moved", rogue.URL+"/actors/mallory", 14),
			wantStatus: 401, wantError: "could not be resolved", notStored: []string{rogue.URL + "/activities/offer-14"}},
		{b: "B15", name: "activity id on another host", send: post([]byte(strings.Replace(string(good), `"id": "`+offer1+`"`, `"id": "https://elsewhere.example/activities/offer-1"`, 1)), nil),
			wantStatus: 401, wantError: "activity id host elsewhere.example is not the actor's host", notStored: []string{"https://elsewhere.example/activities/offer-1"}},
		{b: "B15", name: "activity without id", send: post([]byte(strings.Replace(string(good), `"id": "`+offer1+`",`, ``, 1)), nil),
			wantStatus: 401, wantError: "id", notStored: []string{offer1}},
		{b: "B16", name: "Create of a note attributed to someone else", send: post(createNote(16, p.srv.URL+"/actors/bob", p.id+"/notes/16"), nil),
			wantStatus: 403, wantError: "attributed to", notStored: []string{p.id + "/activities/create-16"}},
		{b: "B16", name: "Create of an object on another host", send: post(createNote(17, p.id, "https://elsewhere.example/notes/17"), nil),
			wantStatus: 403, wantError: "elsewhere.example", notStored: []string{p.id + "/activities/create-17"}},
		{b: "B21", name: "body over the limit", send: post([]byte(`{"pad":"`+strings.Repeat("x", 400<<10)+`"}`), nil),
			wantStatus: 413, wantError: "the limit is 327680"},
		{b: "B21", name: "chunked body over the limit", send: post([]byte(`{"pad":"`+strings.Repeat("x", 400<<10)+`"}`), func(r *http.Request) { r.ContentLength = -1 }),
			wantStatus: 413, wantError: "larger than the limit of 327680 bytes"},
		{b: "B22", name: "duplicate keys", send: post([]byte(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","type":"Accept"}`), nil),
			wantStatus: 400, wantError: "duplicate"},
		{b: "B22", name: "nesting 10,000 deep", send: post([]byte(strings.Repeat(`{"a":`, 10000)+"1"+strings.Repeat("}", 10000)), nil),
			wantStatus: 400, wantError: "deep"},
		{b: "B22", name: "not UTF-8", send: post([]byte(strings.Replace(string(good), "Heap overflow", "Heap \xff\xfe overflow", 1)), nil),
			wantStatus: 400, wantError: "the body is not valid UTF-8", notStored: []string{offer1}},
		{b: "B23", name: "remote @context", send: post([]byte(strings.Replace(string(good), `"https://certcc.github.io/Vultron/ns/context.jsonld"`, `"https://evil.example/context.jsonld"`, 1)), nil),
			wantStatus: 400, wantError: "context", notStored: []string{offer1}},
		{b: "B23", name: "@context array redefining type as @id", send: post([]byte(strings.Replace(string(good), `"https://certcc.github.io/Vultron/ns/context.jsonld"`, `["https://www.w3.org/ns/activitystreams", {"type": "@id"}]`, 1)), nil),
			wantStatus: 400, wantError: `$.@context[1].type: the context redefines "type"`, notStored: []string{offer1}},
		{b: "B23", name: "@context array pointing Offer elsewhere", send: post([]byte(strings.Replace(string(good), `"https://certcc.github.io/Vultron/ns/context.jsonld"`, `["https://certcc.github.io/Vultron/ns/context.jsonld", {"Offer": "https://evil.example/ns#Offer"}]`, 1)), nil),
			wantStatus: 400, wantError: `the context redefines "Offer", which this node reads as https://www.w3.org/ns/activitystreams#Offer, as https://evil.example/ns#Offer`, notStored: []string{offer1}},
		{b: "B23", name: "@context aliasing actor", send: post([]byte(strings.Replace(string(good), `"https://certcc.github.io/Vultron/ns/context.jsonld"`, `["https://www.w3.org/ns/activitystreams", {"sender": "as:actor"}]`, 1)), nil),
			wantStatus: 400, wantError: `the context makes "sender" another name of`, notStored: []string{offer1}},
		{b: "B30", name: "unsigned GET of an object", send: func(t *testing.T) (int, string) {
			resp, err := http.Get(vendor.url + "/objects/anything")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			msg, _ := decodeReader(resp)
			return resp.StatusCode, msg
		}, wantStatus: 401, wantError: "objects are served only to signed requests"},
	}
	for _, row := range rows {
		t.Run(row.b+" "+row.name, func(t *testing.T) {
			before := lastAuditSeq(t, vendor.db)
			status, msg := row.send(t)
			if status != row.wantStatus {
				t.Fatalf("status = %d (%q), want %d", status, msg, row.wantStatus)
			}
			assertRefusalAudited(t, vendor.db, before, status, msg)
			if !strings.Contains(msg, row.wantError) {
				t.Errorf("error = %q, want it to contain %q", msg, row.wantError)
			}
			for _, id := range row.notStored {
				if _, err := vendor.db.Activity(context.Background(), id); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("activity %s was stored after a refusal (err %v)", id, err)
				}
			}
		})
	}
	if got := len(vendor.inboxItems(t, "vendor")); got != 0 {
		t.Errorf("the inbox holds %d activities after refusals only", got)
	}
	_ = peerHost
}

// TestHostileFetches covers B17–B20 through the node's fetch path (the
// signed, SSRF-safe fetcher it uses for keys and actor documents) against
// test servers on 127.0.0.1. Literal private and special-use addresses are
// refused before any packet is sent.
func TestHostileFetches(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	var hits atomic.Int32
	mux := http.NewServeMux()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	doc := func(ct, id string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", ct)
			_, _ = io.WriteString(w, `{"@context":"https://www.w3.org/ns/activitystreams","type":"Note","id":"`+id+`"}`)
		}
	}
	mux.HandleFunc("/json", doc("application/json", srv.URL+"/json"))
	mux.HandleFunc("/html", doc("text/html", srv.URL+"/html"))
	mux.HandleFunc("/other-id", doc(actor.ContentType, srv.URL+"/somewhere-else"))
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, srv.URL+"/json", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/to-file", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, srv.URL+"/loop", http.StatusFound) })
	mux.HandleFunc("/ok", doc(actor.ContentType, srv.URL+"/ok"))

	// The production fetcher: the node's own, but without
	// --allow-private-peers.
	local, _ := vendor.Local("vendor")
	strict, err := actor.NewFetcher(actor.FetcherOptions{KeyID: local.KeyID, Key: local.Key, PlainHTTP: true})
	if err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		b, name, url string
		fetch        func(ctx context.Context, url string) ([]byte, error)
		wantError    string
	}{
		{"B17", "application/json answer", srv.URL + "/json", vendor.fetcher.FetchDocument, `Content-Type "application/json" is not an ActivityPub type`},
		{"B17", "text/html answer", srv.URL + "/html", vendor.fetcher.FetchDocument, `Content-Type "text/html" is not an ActivityPub type`},
		{"B18", "id differs from the URL", srv.URL + "/other-id", vendor.fetcher.FetchDocument, "id"},
		{"B18", "canonical id answered with a redirect", srv.URL + "/moved", vendor.fetcher.FetchDocument, "canonical ids must not redirect"},
		{"B20", "redirect to file:", srv.URL + "/to-file", vendor.fetcher.FetchDocument, "canonical ids must not redirect"},
		{"B20", "redirect loop", srv.URL + "/loop", vendor.fetcher.FetchDocument, "canonical ids must not redirect"},
		{"B19", "loopback", srv.URL + "/ok", strict.FetchDocument, "not a public unicast address"},
		{"B19", "unspecified [::]", "http://[::]:1/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "0.0.0.0", "http://0.0.0.0:1/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "10/8", "http://10.1.2.3/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "100.64/10", "http://100.64.0.1/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "metadata 169.254.169.254", "http://169.254.169.254/latest", strict.FetchDocument, "not a public unicast address"},
		{"B19", "198.18/15", "http://198.18.0.1/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "IPv4-mapped loopback", "http://[::ffff:127.0.0.1]:1/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "NAT64 of loopback", "http://[64:ff9b::7f00:1]/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "6to4 of loopback", "http://[2002:7f00:1::]/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "unique local fd00::1", "http://[fd00::1]/x", strict.FetchDocument, "not a public unicast address"},
		{"B19", "IPv6 loopback", "http://[::1]:1/x", strict.FetchDocument, "not a public unicast address"},
	}
	for _, row := range rows {
		t.Run(row.b+" "+row.name, func(t *testing.T) {
			before := hits.Load()
			body, err := row.fetch(context.Background(), row.url)
			if err == nil {
				t.Fatalf("fetch %s succeeded with %q", row.url, body)
			}
			if !strings.Contains(err.Error(), row.wantError) {
				t.Errorf("err = %v, want it to contain %q", err, row.wantError)
			}
			if row.b == "B19" && hits.Load() != before {
				t.Errorf("a refused address was contacted")
			}
		})
	}
	if _, err := vendor.fetcher.FetchDocument(context.Background(), srv.URL+"/ok"); err != nil {
		t.Errorf("a well-formed document was refused: %v", err)
	}
}

// TestHostileReplayAndOrder covers B24–B26: replays change nothing, a
// changed body under a known id is a conflict, and an Undo or Delete that
// arrives before its original is not applied and does not stop the
// original from being applied when it comes.
func TestHostileReplayAndOrder(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	vendorID := vendor.actorID("vendor")
	inboxURL := vendorID + "/inbox"

	// B26: Undo and Delete of an offer the node has not seen yet.
	undo := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/activities/undo-5","type":"Undo","actor":"%[1]s","to":["%[2]s"],"object":"%[1]s/activities/offer-5"}`, p.id, vendorID))
	del := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/activities/delete-5","type":"Delete","actor":"%[1]s","to":["%[2]s"],"object":"%[1]s/reports/5"}`, p.id, vendorID))
	for _, early := range []struct {
		name string
		body []byte
		id   string
	}{{"Undo", undo, p.id + "/activities/undo-5"}, {"Delete", del, p.id + "/activities/delete-5"}} {
		status, msg := p.post(t, inboxURL, early.body, nil)
		if status < 400 || status >= 500 || msg == "" {
			t.Errorf("B26 %s before the original: %d %q, want a 4xx refusal that says why", early.name, status, msg)
		}
		if _, err := vendor.db.Activity(context.Background(), early.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("B26 %s before the original was stored (err %v)", early.name, err)
		}
	}
	offer := p.offer(5, vendorID)
	if status, msg := p.post(t, inboxURL, offer, nil); status != http.StatusAccepted {
		t.Fatalf("B26 the original after the early Undo/Delete: %d %q, want 202", status, msg)
	}
	if got := vendor.inboxItems(t, "vendor"); len(got) != 1 || got[0]["type"] != "Offer" {
		t.Errorf("B26 inbox after the original = %v, want just the offer", got)
	}

	// B24: the same bytes again, and the same activity re-signed later.
	for i := range 2 {
		status, msg := p.post(t, inboxURL, offer, func(r *http.Request) {
			if i == 1 {
				r.Header.Del("Signature")
				if err := actor.SignRequest(r, offer, p.keyID, p.key, time.Now().Add(time.Second)); err != nil {
					t.Fatal(err)
				}
			}
		})
		if status != http.StatusAccepted {
			t.Errorf("B24 replay %d: %d %q, want 202", i, status, msg)
		}
	}
	if got := len(vendor.inboxItems(t, "vendor")); got != 1 {
		t.Errorf("B24 inbox holds %d activities after replays, want 1", got)
	}
	waitFor(t, "the acknowledgement", func() bool { return p.receivedCount() >= 1 })
	// Every reply a replay would have queued is in the queue by its 202:
	// once the queue is empty, all of them have been sent.
	waitFor(t, "the delivery queue to empty", func() bool {
		due, _, err := vendor.db.PendingDeliveries(context.Background(), 0, 10)
		return err == nil && len(due) == 0
	})
	if n := p.receivedCount(); n != 1 {
		t.Errorf("B24 the peer received %d acknowledgements, want 1 (replays have no side effects)", n)
	}

	// B25: same id, other body.
	changed := []byte(strings.Replace(string(offer), "Heap overflow", "Stack overflow", 1))
	if status, msg := p.post(t, inboxURL, changed, nil); status != http.StatusConflict || !strings.Contains(msg, "already received with a different body") {
		t.Errorf("B25 same id, other body: %d %q, want 409", status, msg)
	}
	stored, err := vendor.db.Activity(context.Background(), p.id+"/activities/offer-5")
	if err != nil || !strings.Contains(string(stored.Body), "Heap overflow") {
		t.Errorf("B25 the stored offer changed: %v %s", err, stored.Body)
	}
}

// TestHostilePolicy covers B27–B29: a peer off the allow-list is refused
// before its key is fetched; a flood is answered with 429 and Retry-After;
// failing key ids are fetched once, not once per request; and the state
// kept per peer is bounded.
func TestHostilePolicy(t *testing.T) {
	p := newPeer(t, sharedKeys.get(t, 0))

	t.Run("B27 peer off the allow-list", func(t *testing.T) {
		vendor := startNodeWith(t, Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization")
		before := p.hitCount("/actors/mallory")
		seq := lastAuditSeq(t, vendor.db)
		status, msg := p.post(t, vendor.actorID("vendor")+"/inbox", p.offer(27, vendor.actorID("vendor")), nil)
		if status != http.StatusForbidden || !strings.Contains(msg, "is not on this node's federation allow-list; its key was not fetched") {
			t.Fatalf("status %d %q, want 403", status, msg)
		}
		assertRefusalAudited(t, vendor.db, seq, status, msg)
		if p.hitCount("/actors/mallory") != before {
			t.Error("the key of a peer off the allow-list was fetched")
		}
		if _, err := vendor.db.Activity(context.Background(), p.id+"/activities/offer-27"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("refused activity stored (err %v)", err)
		}
	})

	t.Run("B28 flood and fake key ids", func(t *testing.T) {
		vendor := startNodeWith(t, Config{PeerRate: 1, PeerBurst: 20}, "vendor:Organization")
		inbox := vendor.actorID("vendor") + "/inbox"
		// Distinct fake key ids on the peer's host: each is fetched at
		// most once (negative cache), and the flood hits the peer's limit.
		var limited int
		var retryAfter string
		for i := range 40 {
			body := p.offer(1000+i, vendor.actorID("vendor"))
			keyID := fmt.Sprintf("%s/keys/fake-%d#k", p.srv.URL, i%5)
			status, _, h := p.postHeader(t, inbox, body, func(r *http.Request) { resignWithKeyID(t, r, body, keyID, p) })
			switch status {
			case http.StatusTooManyRequests:
				limited++
				retryAfter = h.Get("Retry-After")
			case http.StatusUnauthorized:
			default:
				t.Fatalf("request %d: status %d", i, status)
			}
		}
		if limited < 15 || retryAfter == "" {
			t.Errorf("%d of 40 requests limited (Retry-After %q), want at least 15 with Retry-After", limited, retryAfter)
		}
		for i := range 5 {
			if n := p.hitCount(fmt.Sprintf("/keys/fake-%d", i)); n > 1 {
				t.Errorf("fake key %d fetched %d times, want at most once", i, n)
			}
		}
	})

	t.Run("B28 fake key ids under the default limits", func(t *testing.T) {
		// A node left at its defaults (no --peer-rate) fetches the keys
		// of one host at a bounded rate: requests naming ever new key
		// ids on a host (another's, which the node would be made to
		// flood) get 429 with Retry-After once the host's fetches are
		// spent, instead of one fetch each.
		vendor := startNodeWith(t, Config{}, "vendor:Organization")
		inbox := vendor.actorID("vendor") + "/inbox"
		if status, msg := p.post(t, inbox, p.offer(2999, vendor.actorID("vendor")), nil); status != http.StatusAccepted {
			t.Fatalf("a request signed with the peer's key: %d %s, want 202", status, msg)
		}
		const requests = 3 * policy.DefaultKeyFetchBurst
		var limited int
		var retryAfter string
		start := time.Now()
		for i := range requests {
			body := p.offer(3000+i, vendor.actorID("vendor"))
			keyID := fmt.Sprintf("%s/keys/amplified-%d#k", p.srv.URL, i)
			status, _, h := p.postHeader(t, inbox, body, func(r *http.Request) { resignWithKeyID(t, r, body, keyID, p) })
			switch status {
			case http.StatusTooManyRequests:
				limited++
				retryAfter = h.Get("Retry-After")
			case http.StatusUnauthorized:
			default:
				t.Fatalf("request %d: status %d", i, status)
			}
		}
		// The burst, and what the rate refilled while the requests ran.
		allowed := policy.DefaultKeyFetchBurst + int(policy.DefaultKeyFetchRate*time.Since(start).Seconds()) + 1
		fetched := 0
		for i := range requests {
			fetched += p.hitCount(fmt.Sprintf("/keys/amplified-%d", i))
		}
		if fetched > allowed || limited == 0 || retryAfter == "" {
			t.Errorf("%d distinct fake key ids on one host: %d fetched, %d answered 429 (Retry-After %q); want at most %d fetched and the rest 429",
				requests, fetched, limited, retryAfter, allowed)
		}
		// The peer's own key, fetched before, still verifies: only
		// fetches are limited.
		if status, msg := p.post(t, inbox, p.offer(3999, vendor.actorID("vendor")), nil); status != http.StatusAccepted {
			t.Errorf("a request signed with the peer's known key after the fetches ran out: %d %s, want 202", status, msg)
		}
	})

	t.Run("B29 bounded per-peer state", func(t *testing.T) {
		vendor := startNodeWith(t, Config{PeerRate: 100, PeerBurst: 100}, "vendor:Organization")
		inbox := vendor.actorID("vendor") + "/inbox"
		for i := range 30 {
			body := p.offer(2000+i, vendor.actorID("vendor"))
			keyID := fmt.Sprintf("%s/keys/gone-%d#k", p.srv.URL, i)
			if status, _, _ := p.postHeader(t, inbox, body, func(r *http.Request) { resignWithKeyID(t, r, body, keyID, p) }); status != http.StatusUnauthorized {
				t.Fatalf("request %d with a missing key: %d, want 401", i, status)
			}
		}
		peers, _, failed := vendor.policy.Tracked()
		if peers != 1 || failed != 30 {
			t.Errorf("tracked %d peer hosts and %d failed keys, want 1 and 30", peers, failed)
		}
		if failed > policy.DefaultMaxEntries || peers > policy.DefaultMaxEntries {
			t.Errorf("state beyond its bound of %d", policy.DefaultMaxEntries)
		}
		// Eviction past the bound and expiry are proven in
		// policy.TestStateIsBounded; the inbox cache's bound in
		// outbox's resolve tests.
	})
}
