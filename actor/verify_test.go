package actor

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-fed/httpsig"
)

const (
	aliceID  = "https://peer.example/actors/alice"
	aliceKey = aliceID + "#main-key"
	inboxURL = "http://node.example/actors/vendor/inbox"
	objURL   = "http://node.example/cases/42?page=2"
	testBody = `{"type":"Offer","id":"https://peer.example/activities/1","actor":"https://peer.example/actors/alice"}`
)

// signedRequest builds a server-side request for target signed by
// SignRequest at when. A nil body makes a GET.
func signedRequest(t *testing.T, target string, body []byte, key *rsa.PrivateKey, when time.Time) *http.Request {
	t.Helper()
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	r := httptest.NewRequest(method, target, strings.NewReader(string(body)))
	if err := SignRequest(r, body, aliceKey, key, when); err != nil {
		t.Fatal(err)
	}
	r.Header.Del("Host") // a server keeps the host in r.Host only
	return r
}

// customSigned signs with go-fed/httpsig directly, covering headers, and
// sets the algorithm parameter to alg ("" removes it).
func customSigned(t *testing.T, target string, body []byte, headers []string, alg string) *http.Request {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, target, strings.NewReader(string(body)))
	r.Header.Set("Date", testNow.Format(http.TimeFormat))
	r.Header.Set("Host", r.Host)
	signer, _, err := httpsig.NewSigner([]httpsig.Algorithm{httpsig.RSA_SHA256}, httpsig.DigestSha256, headers, httpsig.Signature, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := signer.SignRequest(rsaKey(t, 0), aliceKey, r, body); err != nil {
		t.Fatal(err)
	}
	repl := ""
	if alg != "" {
		repl = `algorithm="` + alg + `",`
	}
	r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), `algorithm="hs2019",`, repl, 1))
	r.Header.Del("Host")
	return r
}

func aliceKeys(t *testing.T) *staticKeys {
	return &staticKeys{keys: map[string]PublicKey{aliceKey: pub(aliceKey, aliceID, rsaKey(t, 0))}}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	v := newTestVerifier(t, aliceKeys(t))
	for _, tc := range []struct {
		name   string
		target string
		body   []byte
	}{
		{"POST", inboxURL, []byte(testBody)},
		{"GET", objURL, nil},
		{"GET without query", "http://node.example/cases/42", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := signedRequest(t, tc.target, tc.body, rsaKey(t, 0), testNow.Add(-time.Minute))
			sig := r.Header.Get("Signature")
			if !strings.Contains(sig, `algorithm="rsa-sha256"`) {
				t.Errorf("Signature header %q does not name rsa-sha256", sig)
			}
			want := `headers="(request-target) host date digest"`
			if tc.body == nil {
				want = `headers="(request-target) host date"`
			}
			if !strings.Contains(sig, want) {
				t.Errorf("Signature header %q; want %s", sig, want)
			}
			if tc.body != nil && r.Header.Get("Digest") != DigestHeader(tc.body) {
				t.Errorf("Digest %q", r.Header.Get("Digest"))
			}
			if d := r.Header.Get("Date"); d != testNow.Add(-time.Minute).Format(http.TimeFormat) {
				t.Errorf("Date %q", d)
			}
			s, err := v.Verify(context.Background(), r, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if s != (Signer{KeyID: aliceKey, Owner: aliceID, Scheme: SchemeCavage}) {
				t.Fatalf("signer %+v", s)
			}
		})
	}
}

func TestVerifyAcceptsVariants(t *testing.T) {
	v := newTestVerifier(t, aliceKeys(t))
	body := []byte(testBody)
	t.Run("peer dropped the query from (request-target)", func(t *testing.T) {
		r := signedRequest(t, "http://node.example/cases/42", nil, rsaKey(t, 0), testNow)
		r.URL.RawQuery = "page=2"
		if _, err := v.Verify(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Authorization: Signature", func(t *testing.T) {
		r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
		r.Header.Set("Authorization", "Signature "+r.Header.Get("Signature"))
		r.Header.Del("Signature")
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatal(err)
		}
	})
	for _, alg := range []string{"", "hs2019", "rsa-sha256"} {
		t.Run("algorithm="+alg, func(t *testing.T) {
			r := customSigned(t, inboxURL, body, []string{"(request-target)", "host", "date", "digest"}, alg)
			if _, err := v.Verify(context.Background(), r, body); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("Digest list with SHA-512 and SHA-256", func(t *testing.T) {
		r := customSigned(t, inboxURL, body, []string{"(request-target)", "host", "date", "digest"}, "hs2019")
		if err := checkDigest("SHA-512=abc, "+DigestHeader(body), body); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(context.Background(), r, body); err != nil {
			t.Fatal(err)
		}
	})
}

// TestVerifyRefusesCavage lists the draft-cavage refusals of the bad-input
// list (B1-B10), each with the reason it must give.
func TestVerifyRefusesCavage(t *testing.T) {
	body := []byte(testBody)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	full := []string{"(request-target)", "host", "date", "digest"}
	for _, tc := range []struct {
		name   string
		req    func(t *testing.T) (*http.Request, []byte)
		keys   map[string]PublicKey // default: alice's key
		reason string
	}{
		{"B1 no signature", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			r.Header.Del("Signature")
			return r, body
		}, nil, "request is not signed: no Signature or Signature-Input header"},
		{"B2 body modified after signing", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			return r, []byte(strings.Replace(testBody, "Offer", "Delete", 1))
		}, nil, "Digest does not match the body"},
		{"B3 Digest not covered", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, []string{"(request-target)", "host", "date"}, "hs2019"), body
		}, nil, "signature does not cover the digest header"},
		{"B3 Digest not covered, header absent", func(t *testing.T) (*http.Request, []byte) {
			r := customSigned(t, inboxURL, body, []string{"(request-target)", "host", "date"}, "hs2019")
			r.Header.Del("Digest")
			return r, body
		}, nil, "signature does not cover the digest header"},
		{"B4 SHA-512 only", digestRow(t, body, "SHA-512=z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="), nil, "Digest has no SHA-256 value (got SHA-512); SHA-256 is required"},
		{"B4 MD5", digestRow(t, body, "MD5=rL0Y20zC+Fzt72VPzMSk2A=="), nil, "Digest has no SHA-256 value (got MD5)"},
		{"B4 malformed base64", digestRow(t, body, "SHA-256=not*base64!"), nil, "Digest SHA-256 value is not valid base64"},
		{"B4 31-byte digest", digestRow(t, body, "SHA-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=="), nil, "Digest SHA-256 value is 31 bytes; a SHA-256 digest is 32"},
		{"B4 missing Digest", digestRow(t, body, ""), nil, "Digest header is missing"},
		{"B5 no (request-target)", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, []string{"host", "date", "digest"}, "hs2019"), body
		}, nil, "signature does not cover (request-target)"},
		{"B5 no host", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, []string{"(request-target)", "date", "digest"}, "hs2019"), body
		}, nil, "signature does not cover the host header"},
		{"B5 no date", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, []string{"(request-target)", "host", "digest"}, "hs2019"), body
		}, nil, "signature does not cover date or (created)"},
		{"B5 no headers parameter (defaults to date)", func(t *testing.T) (*http.Request, []byte) {
			r := customSigned(t, inboxURL, body, full, "hs2019")
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), `headers="(request-target) host date digest",`, "", 1))
			return r, body
		}, nil, "signature does not cover (request-target)"},
		{"B6 wrong Host", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, "http://other.example/actors/vendor/inbox", body, rsaKey(t, 0), testNow), body
		}, nil, "signed Host other.example is not this node (node.example)"},
		{"B7 different path", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			r.URL.Path = "/actors/coordinator/inbox"
			return r, body
		}, nil, "signature does not verify with key " + aliceKey},
		{"B7 different method", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			r.Method = http.MethodPut
			return r, body
		}, nil, "signature does not verify"},
		{"B7 different query", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, objURL, nil, rsaKey(t, 0), testNow)
			r.URL.RawQuery = "page=3"
			return r, nil
		}, nil, "signature does not verify"},
		{"B8 Date 2h old", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow.Add(-2*time.Hour)), body
		}, nil, "Date is 2h0m0s old; the allowed window is 5m0s"},
		{"B8 Date 10min in the future", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow.Add(10*time.Minute)), body
		}, nil, "Date is 10m0s in the future; the allowed window is 5m0s"},
		{"B8 unparsable Date", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			r.Header.Set("Date", "yesterday")
			return r, body
		}, nil, `Date "yesterday" is not an HTTP date`},
		{"B8 expires in the past", func(t *testing.T) (*http.Request, []byte) {
			r := signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
			r.Header.Set("Signature", r.Header.Get("Signature")+`,expires="1000"`)
			return r, body
		}, nil, "signature expired"},
		{"B10 hmac-sha256", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, full, "hmac-sha256"), body
		}, nil, "algorithm hmac-sha256 is not accepted (rsa-sha256, hs2019)"},
		{"B10 unknown algorithm", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, full, "rsa-sha1"), body
		}, nil, "algorithm rsa-sha1 is not accepted"},
		{"B10 hs2019 with an ECDSA key", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, full, "hs2019"), body
		}, map[string]PublicKey{aliceKey: {ID: aliceKey, Owner: aliceID, Key: &ecKey.PublicKey}}, "ECDSA keys are not accepted (RSA or Ed25519 only)"},
		{"B10 rsa-sha256 with an Ed25519 key", func(t *testing.T) (*http.Request, []byte) {
			return customSigned(t, inboxURL, body, full, "rsa-sha256"), body
		}, map[string]PublicKey{aliceKey: {ID: aliceKey, Owner: aliceID, Key: edPub}}, "algorithm rsa-sha256 does not match the Ed25519 key"},
		{"RSA key under 2048 bits", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, inboxURL, body, small, testNow), body
		}, map[string]PublicKey{aliceKey: pub(aliceKey, aliceID, small)}, "RSA key has 1024 bits; at least 2048 are required"},
		{"unknown key", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow), body
		}, map[string]PublicKey{}, "key " + aliceKey + " could not be resolved"},
		{"signed by another key than the one published", func(t *testing.T) (*http.Request, []byte) {
			return signedRequest(t, inboxURL, body, rsaKey(t, 1), testNow), body
		}, nil, "signature does not verify with key " + aliceKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := aliceKeys(t)
			if tc.keys != nil {
				keys = &staticKeys{keys: tc.keys}
			}
			r, b := tc.req(t)
			_, err := newTestVerifier(t, keys).Verify(context.Background(), r, b)
			wantReason(t, err, tc.reason)
		})
	}
}

// digestRow returns a request whose signature covers a Digest header set
// to value (deleted when empty) before signing.
func digestRow(t *testing.T, body []byte, value string) func(t *testing.T) (*http.Request, []byte) {
	return func(t *testing.T) (*http.Request, []byte) {
		r := httptest.NewRequest(http.MethodPost, inboxURL, strings.NewReader(string(body)))
		r.Header.Set("Date", testNow.Format(http.TimeFormat))
		r.Header.Set("Host", r.Host)
		if value != "" {
			r.Header.Set("Digest", value)
		}
		headers := []string{"(request-target)", "host", "date"}
		if value != "" {
			headers = append(headers, "digest")
		} else {
			headers = append(headers, "content-length")
			r.Header.Set("Content-Length", "1")
		}
		signer, _, err := httpsig.NewSigner([]httpsig.Algorithm{httpsig.RSA_SHA256}, httpsig.DigestSha256, headers, httpsig.Signature, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A nil body keeps the signer from adding its own Digest.
		if err := signer.SignRequest(rsaKey(t, 0), aliceKey, r, nil); err != nil {
			t.Fatal(err)
		}
		if value == "" {
			// Claim digest coverage without sending the header.
			r.Header.Set("Signature", strings.Replace(r.Header.Get("Signature"), "content-length", "digest", 1))
		}
		r.Header.Del("Host")
		return r, body
	}
}

// TestVerifyRefreshesRotatedKey checks that a key that fails is fetched
// again once, and that the fresh key is used.
func TestVerifyRefreshesRotatedKey(t *testing.T) {
	keys := &staticKeys{
		keys:  map[string]PublicKey{aliceKey: pub(aliceKey, aliceID, rsaKey(t, 0))},
		fresh: map[string]PublicKey{aliceKey: pub(aliceKey, aliceID, rsaKey(t, 1))},
	}
	v := newTestVerifier(t, keys)
	body := []byte(testBody)
	r := signedRequest(t, inboxURL, body, rsaKey(t, 1), testNow)
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	if keys.refreshes != 1 {
		t.Fatalf("%d refreshes; want 1", keys.refreshes)
	}
	// A request that verifies with the cached key does not refresh.
	r = signedRequest(t, inboxURL, body, rsaKey(t, 0), testNow)
	if _, err := v.Verify(context.Background(), r, body); err != nil {
		t.Fatal(err)
	}
	if keys.refreshes != 1 {
		t.Fatalf("%d refreshes after a good signature; want still 1", keys.refreshes)
	}
}

func TestVerifyErrorText(t *testing.T) {
	err := error(&VerifyError{Reason: "Digest does not match the body"})
	if err.Error() != "signature refused: Digest does not match the body" {
		t.Fatalf("Error() = %q", err.Error())
	}
}
