package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/openvultron/vultron/actor"
)

// Senders is a set of foreign actors served on 127.0.0.1: the node under
// test fetches their actor documents to verify their signatures, and
// delivers its replies to their inboxes, which accept everything. All
// senders share one RSA-2048 key (each under its own key id), since
// generating one per sender would only slow the set-up down.
//
// With Ed25519 set, the senders' documents say (FEP-844e, as a Vultron
// node's actors do) that their server verifies RFC 9421 Ed25519
// signatures, so the node signs its replies to them with Ed25519; without
// it, with RSA. Their inboxes verify nothing either way.
type Senders struct {
	URL     string
	Key     *rsa.PrivateKey
	Ed25519 bool
	pem     string
	srv     *http.Server
	ln      net.Listener
	replies atomic.Int64
}

// NewSenders starts the senders' server on a free loopback port.
func NewSenders() (*Senders, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("senders: generate key: %w", err)
	}
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("senders: encode key: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("senders: listen: %w", err)
	}
	s := &Senders{URL: "http://" + ln.Addr().String(), Key: key, pem: pemText, ln: ln}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *Senders) Close() error { return s.srv.Close() }

// Replies returns how many POSTs the senders' inboxes received.
func (s *Senders) Replies() int64 { return s.replies.Load() }

// ActorID returns the id of sender i.
func (s *Senders) ActorID(i int) string { return fmt.Sprintf("%s/users/s%d", s.URL, i) }

func (s *Senders) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		io.Copy(io.Discard, r.Body)
		s.replies.Add(1)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	id := s.URL + r.URL.Path
	var n int
	if _, err := fmt.Sscanf(r.URL.Path, "/users/s%d", &n); err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	doc := map[string]any{
		"@context":          []string{actor.ActivityStreamsContext, actor.SecurityContext},
		"id":                id,
		"type":              "Person",
		"preferredUsername": fmt.Sprintf("s%d", n),
		"inbox":             id + "/inbox",
		"outbox":            id + "/outbox",
		"publicKey":         map[string]string{"id": id + "#main-key", "owner": id, "publicKeyPem": s.pem},
	}
	if s.Ed25519 {
		doc["generator"] = map[string]any{"type": "Application", "implements": []map[string]string{
			{"href": actor.CapabilityRFC9421}, {"href": actor.CapabilityRFC9421Ed25519}}}
	}
	json.NewEncoder(w).Encode(doc)
}

// OfferBody returns an Offer(VulnerabilityReport) from actorID to
// recipient whose ids end in tag.
func OfferBody(actorID, recipient, tag string) []byte {
	return offerBody("https://certcc.github.io/Vultron/ns/context.jsonld", "VulnerabilityReport", actorID, recipient, tag)
}

// NoteOfferBody returns the Offer of OfferBody with its object typed as an
// ActivityStreams Note under the ActivityStreams context, the same ids and
// text otherwise: the load of an inbox whose vocabulary has no Vultron
// types (Fedify's refuses VulnerabilityReport with 400 Invalid activity,
// docs/interop.md).
func NoteOfferBody(actorID, recipient, tag string) []byte {
	return offerBody("https://www.w3.org/ns/activitystreams", "Note", actorID, recipient, tag)
}

func offerBody(jsonldContext, objectType, actorID, recipient, tag string) []byte {
	return []byte(fmt.Sprintf(`{"@context":%[4]q,`+
		`"id":"%[1]s/activities/offer-%[3]s","type":"Offer","actor":"%[1]s","to":["%[2]s"],`+
		`"object":{"id":"%[1]s/reports/%[3]s","type":%[5]q,`+
		`"name":"Heap overflow in the widget parser","content":"A crafted widget file overflows a heap buffer in the parser of version 2.4.",`+
		`"attributedTo":"%[1]s"}}`, actorID, recipient, tag, jsonldContext, objectType))
}

// Post signs body as sender i (draft-cavage, rsa-sha256) and POSTs it to
// inbox; it returns the status.
func (s *Senders) Post(ctx context.Context, c *http.Client, i int, inbox string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, inbox, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", actor.ContentType)
	if err := actor.SignRequest(req, body, s.ActorID(i)+"#main-key", s.Key, time.Now()); err != nil {
		return 0, fmt.Errorf("sign: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}
