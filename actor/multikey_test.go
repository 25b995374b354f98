package actor

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// httpsInboxURL is the inbox of the node.example verifiers, whose scheme
// is https: the target URI an RFC 9421 signature covers.
const httpsInboxURL = "https://node.example/actors/vendor/inbox"

// edActorDoc is an actor document at base+path with the RSA key of test
// key 0 in publicKey and the Multikeys ms in assertionMethod.
func edActorDoc(base, path string, ms ...map[string]any) map[string]any {
	doc := actorDocMap(base, path)
	doc["assertionMethod"] = ms
	return doc
}

func actorDocMap(base, path string) map[string]any {
	k, _ := testKeys()
	pemText, _ := PublicKeyPEM(&k[0].PublicKey)
	return map[string]any{
		"@context":  []string{ActivityStreamsContext, SecurityContext, MultikeyContext},
		"id":        base + path,
		"type":      "Organization",
		"inbox":     base + path + "/inbox",
		"publicKey": map[string]string{"id": base + path + "#main-key", "owner": base + path, "publicKeyPem": pemText},
	}
}

// multikey is a Multikey entry.
func multikey(id, controller string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"id": id, "type": "Multikey", "controller": controller, "publicKeyMultibase": Ed25519Multibase(pub)}
}

// signedEdPost signs a POST to node.example with RFC 9421 and Ed25519
// as keyID with key; alg, when not "ed25519", replaces the alg parameter.
func signedEdPost(t *testing.T, keyID string, key ed25519.PrivateKey, alg string) (*http.Request, []byte) {
	t.Helper()
	body := []byte(testBody)
	r := httptest.NewRequest(http.MethodPost, httpsInboxURL, strings.NewReader(testBody))
	if err := SignRequestEd25519(r, body, keyID, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	if alg != "ed25519" {
		r.Header.Set("Signature-Input", strings.Replace(r.Header.Get("Signature-Input"), `alg="ed25519"`, `alg="`+alg+`"`, 1))
	}
	return r, body
}

// TestVerifyEd25519Multikey verifies RFC 9421 Ed25519 signatures whose
// keyid is a Multikey, resolved through a real fetch, and refuses every
// key whose controller, type, encoding or listing does not make it the
// signing actor's, and every signature whose algorithm is not the key's.
func TestVerifyEd25519Multikey(t *testing.T) {
	_, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	edPub := edPriv.Public().(ed25519.PublicKey)
	p := newPeer(t)
	const alice = "/actors/alice"
	p.serve(alice, ContentType, func(base string) any {
		return edActorDoc(base, alice, multikey(base+alice+"#ed", base+alice, edPub), multikey(base+"/keys/ed", base+alice, edPub))
	})
	// bob lists a Multikey whose controller is alice.
	p.serve("/actors/bob", ContentType, func(base string) any {
		return edActorDoc(base, "/actors/bob", multikey(base+"/actors/bob#ed", base+alice, edPub))
	})
	// carol lists one id both as her RSA key and as an Ed25519 Multikey.
	p.serve("/actors/carol", ContentType, func(base string) any {
		doc := edActorDoc(base, "/actors/carol", multikey(base+"/actors/carol#main-key", base+"/actors/carol", edPub))
		return doc
	})
	// dave's Multikey is typed as something else.
	p.serve("/actors/dave", ContentType, func(base string) any {
		m := multikey(base+"/actors/dave#ed", base+"/actors/dave", edPub)
		m["type"] = "Ed25519VerificationKey2020"
		return edActorDoc(base, "/actors/dave", m)
	})
	// erin's Multikey is a secp256k1 key.
	p.serve("/actors/erin", ContentType, func(base string) any {
		m := multikey(base+"/actors/erin#ed", base+"/actors/erin", edPub)
		m["publicKeyMultibase"] = "zQ3shbuSXtF4m4h3RFyLcrvNeRqhU93UHnsMQjk7akjgSgXSq"
		return edActorDoc(base, "/actors/erin", m)
	})
	// A standalone Multikey controlled by alice, which alice lists.
	p.serve("/keys/ed", ContentType, func(base string) any {
		m := multikey(base+"/keys/ed", base+alice, edPub)
		m["@context"] = MultikeyContext
		return m
	})
	// A standalone Multikey that claims alice, who does not list it.
	p.serve("/keys/rogue", ContentType, func(base string) any {
		m := multikey(base+"/keys/rogue", base+alice, otherPriv.Public().(ed25519.PublicKey))
		return m
	})
	// frank retired his Multikey an hour ago.
	p.serve("/actors/frank", ContentType, func(base string) any {
		m := multikey(base+"/actors/frank#ed", base+"/actors/frank", edPub)
		m["expires"] = time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
		return edActorDoc(base, "/actors/frank", m)
	})
	base := p.srv.URL

	newV := func() *Verifier {
		v, err := NewVerifier(VerifierOptions{Keys: newTestKeyFetcher(t, NewMemoryKeyCache(), nil), Host: "node.example"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name, keyID string
		key         ed25519.PrivateKey
		alg         string
		owner       string // "" means refused
		reason      string
	}{
		{"Multikey in the actor's assertionMethod", base + alice + "#ed", edPriv, "ed25519", base + alice, ""},
		{"standalone Multikey its controller lists", base + "/keys/ed", edPriv, "ed25519", base + alice, ""},
		{"wrong controller", base + "/actors/bob#ed", edPriv, "ed25519", "", "names the controller"},
		{"one id in publicKey and assertionMethod", base + "/actors/carol#main-key", edPriv, "ed25519", "", "both in publicKey and in assertionMethod"},
		{"not a Multikey", base + "/actors/dave#ed", edPriv, "ed25519", "", "not Multikey"},
		{"not an Ed25519 key", base + "/actors/erin#ed", edPriv, "ed25519", "", "not an ed25519-pub multicodec key"},
		{"standalone Multikey its controller does not list", base + "/keys/rogue", otherPriv, "ed25519", "", "does not list Multikey"},
		{"retired Multikey past its expiry", base + "/actors/frank#ed", edPriv, "ed25519", "", "rotated away"},
		{"another key's signature", base + alice + "#ed", otherPriv, "ed25519", "", "does not verify"},
		{"alg names RSA for an Ed25519 key", base + alice + "#ed", edPriv, "rsa-v1_5-sha256", "", `alg rsa-v1_5-sha256 does not match the Ed25519 key`},
		{"alg names RSA-PSS for an Ed25519 key", base + alice + "#ed", edPriv, "rsa-pss-sha512", "", `alg rsa-pss-sha512 does not match the Ed25519 key`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, body := signedEdPost(t, c.keyID, c.key, c.alg)
			s, err := newV().Verify(context.Background(), r, body)
			if c.owner != "" {
				if err != nil {
					t.Fatal(err)
				}
				if s.Owner != c.owner || s.KeyID != c.keyID || s.Scheme != SchemeRFC9421 {
					t.Fatalf("signer %+v", s)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("got %v; want a refusal containing %q", err, c.reason)
			}
		})
	}

	// Downgrade: the RSA key id signed with alg="ed25519" is refused, as is
	// the Ed25519 Multikey used for a draft-cavage RSA signature.
	r := httptest.NewRequest(http.MethodPost, httpsInboxURL, strings.NewReader(testBody))
	r.Header.Set("Content-Digest", ContentDigestHeader([]byte(testBody)))
	sign9421(t, r, []string{"@method", "@target-uri", "content-digest"}, fmt.Sprintf(";created=%d;keyid=%q;alg=\"ed25519\"", time.Now().Unix(), base+alice+"#main-key"), rsaKey(t, 0))
	_, err := newV().Verify(context.Background(), r, []byte(testBody))
	wantReason(t, err, "alg ed25519 does not match the RSA key")

	rc, body := signedInboxPost(t, base+alice+"#ed", rsaKey(t, 0))
	_, err = newV().Verify(context.Background(), rc, body)
	wantReason(t, err, "algorithm rsa-sha256 does not match the Ed25519 key")
}
