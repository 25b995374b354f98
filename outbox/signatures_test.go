package outbox

import (
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
)

const testEdKeyID = testActorID + "#ed25519-key"

// edTestKeys is a KeySource that also gives testActorName's Ed25519 key.
type edTestKeys struct {
	testKeys
	ed ed25519.PrivateKey
}

func (k edTestKeys) Ed25519Key(name string) (actor.Ed25519Key, bool) {
	if name != testActorName {
		return actor.Ed25519Key{}, false
	}
	return actor.Ed25519Key{KeyID: testEdKeyID, Key: k.ed}, true
}

// capInboxes is mapInboxes whose recipients in ed say they verify RFC 9421
// Ed25519 signatures.
type capInboxes struct {
	*mapInboxes
	ed map[string]bool
}

func (c capInboxes) VerifiesEd25519(iri string) bool { return c.ed[iri] }

// bothKeys resolves the test actor's RSA and Ed25519 key ids.
type bothKeys struct {
	rsa *rsa.PublicKey
	ed  ed25519.PublicKey
}

func (k bothKeys) ResolveKey(_ context.Context, keyID string, _ bool) (actor.PublicKey, error) {
	switch keyID {
	case testKeyID:
		return actor.PublicKey{ID: keyID, Owner: testActorID, Key: k.rsa}, nil
	case testEdKeyID:
		return actor.PublicKey{ID: keyID, Owner: testActorID, Key: k.ed}, nil
	}
	return actor.PublicKey{}, fmt.Errorf("unknown key %s", keyID)
}

// sigServer is an inbox that verifies signatures with the test actor's
// keys and answers status(n, signer): draft-cavage only when rfc9421 is
// false, as a server that does not verify RFC 9421 would (401).
type sigServer struct {
	inbox string
	mu    sync.Mutex
	got   []actor.Signer
}

func newSigServer(t *testing.T, clock *fakeClock, ed ed25519.PublicKey, rfc9421 bool, status func(n int, s actor.Signer) int) *sigServer {
	t.Helper()
	s := &sigServer{}
	srv := httptest.NewUnstartedServer(nil)
	host := srv.Listener.Addr().String()
	v, err := actor.NewVerifier(actor.VerifierOptions{Keys: bothKeys{rsa: &signingKey(t).PublicKey, ed: ed}, Host: host, Scheme: "http", Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !rfc9421 && r.Header.Get("Signature-Input") != "" {
			http.Error(w, "no Signature header", http.StatusUnauthorized)
			return
		}
		signer, err := v.Verify(r.Context(), r, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		s.mu.Lock()
		n := len(s.got)
		s.got = append(s.got, signer)
		s.mu.Unlock()
		w.WriteHeader(status(n, signer))
	})
	srv.Start()
	t.Cleanup(srv.Close)
	s.inbox = "http://" + host + "/actors/coordinator/inbox"
	return s
}

func (s *sigServer) schemes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, g := range s.got {
		out = append(out, g.Scheme+" "+g.KeyID)
	}
	return out
}

// TestDeliverySignatureChoice checks which signature each delivery carries
// and what the Deliverer remembers: Ed25519 (RFC 9421) to a recipient
// whose document says its server verifies it, RSA (draft-cavage) to every
// other; a server that refuses Ed25519 with 401 gets the same delivery
// again with RSA at once, and RSA only from then on, until the memory's
// TTL ends; a refusal of both signatures, or a failure that is not 400 or
// 401, changes nothing.
func TestDeliverySignatureChoice(t *testing.T) {
	_, ed, _ := ed25519.GenerateKey(nil)
	edPub := ed.Public().(ed25519.PublicKey)
	accept := func(int, actor.Signer) int { return http.StatusAccepted }
	cavage := actor.SchemeCavage + " " + testKeyID
	rfc := actor.SchemeRFC9421 + " " + testEdKeyID

	type step struct {
		advance     time.Duration // of the clock before the attempt
		wantSeen    []string      // the signatures the server accepted in this attempt
		wantOutcome string
	}
	for _, c := range []struct {
		name       string
		advertised bool
		rfc9421    bool
		status     func(int, actor.Signer) int
		steps      []step
		wantKnocks uint64
	}{
		{"advertised and verified", true, true, accept,
			[]step{{0, []string{rfc}, "delivered"}, {0, []string{rfc}, "delivered"}}, 0},
		{"not advertised", false, true, accept,
			[]step{{0, []string{cavage}, "delivered"}}, 0},
		{"advertised, refused, then RSA until the memory ends", true, false, accept,
			[]step{{0, []string{cavage}, "delivered"}, {0, []string{cavage}, "delivered"},
				{SignatureMemoryTTL, []string{cavage}, "delivered"}}, 2},
		{"both refused with 400: nothing remembered", true, true, func(int, actor.Signer) int { return http.StatusBadRequest },
			[]step{{0, []string{rfc, cavage}, "permanent"}, {0, []string{rfc, cavage}, "permanent"}}, 2},
		{"a 503 is retried later, not knocked", true, true, func(int, actor.Signer) int { return http.StatusServiceUnavailable },
			[]step{{0, []string{rfc}, "retry"}}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newSigServer(t, clock, edPub, c.rfc9421, c.status)
			f := newFixture(t, clock, srv.inbox, func(cfg *DelivererConfig) {
				cfg.Keys = edTestKeys{testKeys: testKeys{key: signingKey(t)}, ed: ed}
			})
			f.d = f.deliverer(t, func(cfg *DelivererConfig) {
				cfg.Keys = edTestKeys{testKeys: testKeys{key: signingKey(t)}, ed: ed}
				cfg.Inboxes = capInboxes{mapInboxes: f.inboxes, ed: map[string]bool{testRecipient: c.advertised}}
			})
			seen := 0
			for i, st := range c.steps {
				clock.Advance(st.advance)
				f.enqueue(t, i+1, fmt.Sprintf("lane-%d", i))
				f.d.attempt(context.Background(), f.due(t))
				got := srv.schemes()[seen:]
				seen += len(got)
				if strings.Join(got, ", ") != strings.Join(st.wantSeen, ", ") {
					t.Fatalf("step %d: the server accepted %v; want %v", i, got, st.wantSeen)
				}
				lines := f.logs.lines(t)
				last := lines[len(lines)-1]
				if last["outcome"] != st.wantOutcome {
					t.Fatalf("step %d: outcome %v; want %s", i, last["outcome"], st.wantOutcome)
				}
				wantSig := SignatureCavageRSA
				if st.wantSeen[len(st.wantSeen)-1] == rfc {
					wantSig = SignatureRFC9421Ed25519
				}
				if last["signature"] != wantSig {
					t.Fatalf("step %d: log names signature %v; want %s", i, last["signature"], wantSig)
				}
			}
			if k := f.d.Stats().Knocks; k != c.wantKnocks {
				t.Fatalf("%d knocks; want %d", k, c.wantKnocks)
			}
		})
	}
}

// TestActorInboxesCapability reads the FEP-844e capability from fetched
// actor documents: only the Ed25519 capability of RFC 9421, in the
// generator's implements, counts.
func TestActorInboxesCapability(t *testing.T) {
	docs := map[string]any{
		"ed":        map[string]any{"type": "Application", "implements": []any{map[string]string{"href": actor.CapabilityRFC9421}, map[string]string{"href": actor.CapabilityRFC9421Ed25519}}},
		"rfc-only":  map[string]any{"type": "Application", "implements": []any{map[string]string{"href": actor.CapabilityRFC9421}}},
		"list":      []any{map[string]any{"type": "Application", "implements": []any{map[string]string{"href": actor.CapabilityRFC9421Ed25519}}}},
		"garbage":   map[string]any{"implements": "yes"},
		"no-gen":    nil,
		"multikey":  nil, // lists an Ed25519 Multikey but not the capability
		"reference": "https://peer.example/app",
	}
	fetch := func(_ context.Context, iri string) ([]byte, error) {
		name := iri[strings.LastIndex(iri, "/")+1:]
		doc := map[string]any{"id": iri, "inbox": iri + "/inbox"}
		if g := docs[name]; g != nil {
			doc["generator"] = g
		}
		if name == "multikey" {
			doc["assertionMethod"] = []any{map[string]string{"id": iri + "#ed", "type": "Multikey", "controller": iri, "publicKeyMultibase": "z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"}}
		}
		return json.Marshal(doc)
	}
	now := time.Now()
	a := NewActorInboxes(fetch, time.Hour, func() time.Time { return now })
	for name, want := range map[string]bool{"ed": true, "rfc-only": false, "list": true, "garbage": false, "no-gen": false, "multikey": false, "reference": false} {
		iri := "https://peer.example/actors/" + name
		if a.VerifiesEd25519(iri) {
			t.Errorf("%s: capability known before its document was fetched", name)
		}
		if _, err := a.Inbox(context.Background(), iri); err != nil {
			t.Fatal(err)
		}
		if got := a.VerifiesEd25519(iri); got != want {
			t.Errorf("%s: VerifiesEd25519 = %t; want %t", name, got, want)
		}
	}
	now = now.Add(2 * time.Hour)
	if a.VerifiesEd25519("https://peer.example/actors/ed") {
		t.Error("an expired document still says its server verifies Ed25519")
	}
	if err := a.AddLocal("https://node.example/actors/vendor", "https://node.example/actors/vendor/inbox"); err != nil {
		t.Fatal(err)
	}
	if !a.VerifiesEd25519("https://node.example/actors/vendor") {
		t.Error("a local actor's node does not verify Ed25519")
	}
}
