package actor

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// The Ed25519 test key of RFC 9421 Appendix B.1.4 (JWK "d" and "x"),
// published for testing only, and the signature of Appendix B.2.6.
const (
	rfcEd25519Seed   = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
	rfcEd25519Public = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
	rfcB26Signature  = "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)

// rfcB26Request is the request of RFC 9421 Appendix B.2 with the signature
// of B.2.6.
func rfcB26Request() *http.Request {
	r := httptest.NewRequest("POST", "http://example.com/foo?param=Value&Pet=dog", strings.NewReader(`{"hello": "world"}`))
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "18")
	r.Header.Set("Signature-Input", `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`)
	r.Header.Set("Signature", "sig-b26=:"+rfcB26Signature+":")
	return r
}

// TestRFC9421VectorB26 rebuilds the signature base of RFC 9421 Appendix
// B.2.6 and verifies the RFC's signature with the B.1.4 key; the policy
// then refuses that request, which covers no content-digest.
func TestRFC9421VectorB26(t *testing.T) {
	r := rfcB26Request()
	dict, err := httpsfv.UnmarshalDictionary(r.Header.Values("Signature-Input"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := dict.Get("sig-b26")
	base, err := signatureBase(r, "https", m.(httpsfv.InnerList))
	if err != nil {
		t.Fatal(err)
	}
	wantBase := `"date": Tue, 20 Apr 2021 02:07:55 GMT
"@method": POST
"@path": /foo
"@authority": example.com
"content-type": application/json
"content-length": 18
"@signature-params": ("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	if string(base) != wantBase {
		t.Fatalf("signature base:\n%s\nwant:\n%s", base, wantBase)
	}
	seed, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Seed)
	pubBytes, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Public)
	edPub := ed25519.PublicKey(pubBytes)
	if !ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey).Equal(edPub) {
		t.Fatal("the B.1.4 seed does not give the B.1.4 public key")
	}
	sigBytes, _ := base64.StdEncoding.DecodeString(rfcB26Signature)
	s := &rfc9421Sig{kid: "test-key-ed25519", base: base, value: sigBytes}
	if err := s.verify(edPub); err != nil {
		t.Fatalf("RFC signature does not verify: %v", err)
	}
	s.base = append([]byte{}, base...)
	s.base[len(s.base)-2] ^= 1
	wantReason(t, s.verify(edPub), "RFC 9421 signature does not verify with key test-key-ed25519")

	keys := &staticKeys{keys: map[string]PublicKey{"test-key-ed25519": {ID: "test-key-ed25519", Owner: "https://example.com/actors/test", Key: edPub}}}
	v, err := NewVerifier(VerifierOptions{Keys: keys, Host: "example.com", Now: func() time.Time { return time.Unix(1618884473, 0) }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), rfcB26Request(), []byte(`{"hello": "world"}`))
	wantReason(t, err, "RFC 9421 signature does not cover @target-uri")
}

// sign9421 signs r per RFC 9421 under label sig1 with the components and
// parameters given (params is the text after the inner list, such as
// `;created=1;keyid="k"`). key is an *rsa.PrivateKey (rsa-v1_5-sha256) or
// an ed25519.PrivateKey.
func sign9421(t *testing.T, r *http.Request, components []string, params string, key crypto.Signer) {
	t.Helper()
	quoted := make([]string, len(components))
	for i, c := range components {
		quoted[i] = `"` + c + `"`
	}
	input := "sig1=(" + strings.Join(quoted, " ") + ")" + params
	dict, err := httpsfv.UnmarshalDictionary([]string{input})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := dict.Get("sig1")
	base, err := signatureBase(r, "https", m.(httpsfv.InnerList))
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		h := sha256.Sum256(base)
		sig, err = rsa.SignPKCS1v15(nil, k, crypto.SHA256, h[:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, base)
	}
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Signature-Input", input)
	r.Header.Set("Signature", "sig1=:"+base64.StdEncoding.EncodeToString(sig)+":")
}

// rfcPost returns a POST to the inbox with a Content-Digest of body.
func rfcPost(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "https://node.example/actors/vendor/inbox", strings.NewReader(body))
	r.Header.Set("Content-Type", ContentType)
	r.Header.Set("Content-Digest", ContentDigestHeader([]byte(body)))
	r.Header.Set("Date", testNow.Format(http.TimeFormat))
	return r
}

func TestVerifyRFC9421(t *testing.T) {
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edKey := "https://peer.example/actors/bob#ed"
	keys := &staticKeys{keys: map[string]PublicKey{
		aliceKey: pub(aliceKey, aliceID, rsaKey(t, 0)),
		edKey:    {ID: edKey, Owner: "https://peer.example/actors/bob", Key: edPriv.Public()},
	}}
	v := newTestVerifier(t, keys)
	created := fmt.Sprintf(";created=%d;keyid=%q", testNow.Unix(), aliceKey)
	post := []string{"@method", "@target-uri", "content-digest"}

	type row struct {
		name   string
		req    func(t *testing.T) *http.Request
		reason string // "" means accepted
	}
	rows := []row{
		{"POST rsa-v1_5-sha256", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created+`;alg="rsa-v1_5-sha256"`, rsaKey(t, 0))
			return r
		}, ""},
		{"POST without alg", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created, rsaKey(t, 0))
			return r
		}, ""},
		{"POST ed25519 with sha-512 Content-Digest", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			r.Header.Set("Content-Digest", "sha-512=:"+base64.StdEncoding.EncodeToString(sha512Sum([]byte(testBody)))+":")
			sign9421(t, r, post, fmt.Sprintf(";created=%d;keyid=%q;alg=\"ed25519\"", testNow.Unix(), edKey), edPriv)
			return r
		}, ""},
		{"GET @authority @path @query", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "https://node.example/cases/42?page=2", nil)
			sign9421(t, r, []string{"@method", "@authority", "@path", "@query"}, created, rsaKey(t, 0))
			return r
		}, ""},
		{"B9 covers only date", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, []string{"date"}, created, rsaKey(t, 0))
			return r
		}, "RFC 9421 signature does not cover @method"},
		{"B9 lacks @target-uri", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, []string{"@method", "content-digest"}, created, rsaKey(t, 0))
			return r
		}, "RFC 9421 signature does not cover @target-uri (or @authority, @path and @query)"},
		{"B9 GET lacks @query", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodGet, "https://node.example/cases/42?page=2", nil)
			sign9421(t, r, []string{"@method", "@authority", "@path"}, created, rsaKey(t, 0))
			return r
		}, "does not cover @target-uri"},
		{"B9 lacks content-digest", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, []string{"@method", "@target-uri"}, created, rsaKey(t, 0))
			return r
		}, "RFC 9421 signature does not cover content-digest"},
		{"B9 no created", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, fmt.Sprintf(";keyid=%q", aliceKey), rsaKey(t, 0))
			return r
		}, "RFC 9421 signature has no created parameter"},
		{"B9 two signatures", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created, rsaKey(t, 0))
			r.Header.Add("Signature-Input", `sig2=("date");created=1;keyid="x"`)
			return r
		}, "request carries 2 RFC 9421 signatures; exactly one is accepted"},
		{"B8 created 2h old", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, fmt.Sprintf(";created=%d;keyid=%q", testNow.Add(-2*time.Hour).Unix(), aliceKey), rsaKey(t, 0))
			return r
		}, "created is 2h0m0s old; the allowed window is 5m0s"},
		{"B8 created in the future", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, fmt.Sprintf(";created=%d;keyid=%q", testNow.Add(10*time.Minute).Unix(), aliceKey), rsaKey(t, 0))
			return r
		}, "created is 10m0s in the future"},
		{"B8 expired", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created+fmt.Sprintf(";expires=%d", testNow.Add(-time.Minute).Unix()), rsaKey(t, 0))
			return r
		}, "signature expired 1m0s ago"},
		{"B10 hmac-sha256", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created+`;alg="hmac-sha256"`, rsaKey(t, 0))
			return r
		}, "alg hmac-sha256 is not accepted"},
		{"B10 ed25519 alg with an RSA key", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created+`;alg="ed25519"`, rsaKey(t, 0))
			return r
		}, "alg ed25519 does not match the RSA key"},
		{"B2 body modified", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created, rsaKey(t, 0))
			r.Header.Set("Content-Digest", ContentDigestHeader([]byte("{}")))
			return r
		}, "Content-Digest does not match the body"},
		{"B6 wrong authority", func(t *testing.T) *http.Request {
			r := httptest.NewRequest(http.MethodPost, "https://other.example/actors/vendor/inbox", strings.NewReader(testBody))
			r.Header.Set("Content-Digest", ContentDigestHeader([]byte(testBody)))
			sign9421(t, r, post, created, rsaKey(t, 0))
			return r
		}, "signed Host other.example is not this node (node.example)"},
		{"B7 different method", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			sign9421(t, r, post, created, rsaKey(t, 0))
			r.Method = http.MethodPut
			return r
		}, "RFC 9421 signature does not verify with key " + aliceKey},
		{"component with parameters", func(t *testing.T) *http.Request {
			r := rfcPost(testBody)
			r.Header.Set("Signature-Input", `sig1=("@method" "@target-uri" "content-digest";sf);created=1;keyid="k"`)
			r.Header.Set("Signature", "sig1=:AAAA:")
			return r
		}, `component "content-digest" has parameters`},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.req(t)
			body := []byte(testBody)
			if r.Method == http.MethodGet {
				body = nil
			}
			s, err := v.Verify(context.Background(), r, body)
			if tc.reason != "" {
				wantReason(t, err, tc.reason)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Scheme != SchemeRFC9421 || s.Owner == "" {
				t.Fatalf("signer %+v", s)
			}
		})
	}
}
