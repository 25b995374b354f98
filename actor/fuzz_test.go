package actor

import (
	"context"
	"crypto/rsa"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzVerify feeds the verifier signature headers, digests, dates and bodies
// it was not made for. It must never panic, and it must accept a request
// only when everything it checks is exactly what was signed: the fuzzer
// mutates what a valid request carries, so an accepted mutation must leave
// the signed parts unchanged.
func FuzzVerify(f *testing.F) {
	key := func() PublicKey {
		ks, err := testKeys()
		if err != nil {
			f.Fatal(err)
		}
		return pub(aliceKey, aliceID, ks[0])
	}()
	ks, _ := testKeys()
	good := httpRequestParts(f, ks[0])
	f.Add(good.signature, good.digest, good.date, testBody, "")
	f.Add(good.signature, good.digest, good.date, testBody+" ", "")
	f.Add(`keyId="x",algorithm="hmac-sha256",headers="(request-target)",signature="AAAA"`, good.digest, good.date, testBody, "")
	f.Add(`keyId="`+aliceKey+`",headers="date",signature="!!"`, "SHA-512=abc", "yesterday", "{}", "")
	f.Add("", "", good.date, testBody, `sig1=("@method");created=1;keyid="`+aliceKey+`"`)
	verify := func(signature, digest, date, body, sigInput string) (Signer, error) {
		v, err := NewVerifier(VerifierOptions{
			Keys: &staticKeys{keys: map[string]PublicKey{aliceKey: key}},
			Host: "node.example", Now: func() time.Time { return testNow },
		})
		if err != nil {
			return Signer{}, err
		}
		r, err := http.NewRequest(http.MethodPost, inboxURL, strings.NewReader(body))
		if err != nil {
			return Signer{}, &VerifyError{Reason: "unusable request"}
		}
		r.Host = "node.example"
		r.Header.Set("Signature", signature)
		r.Header.Set("Digest", digest)
		r.Header.Set("Date", date)
		if sigInput != "" {
			r.Header.Set("Signature-Input", sigInput)
		}
		return v.Verify(context.Background(), r, []byte(body))
	}
	// The unmutated request verifies; otherwise the property below would
	// hold vacuously.
	if _, err := verify(good.signature, good.digest, good.date, testBody, ""); err != nil {
		f.Fatalf("the valid seed request is refused: %v", err)
	}
	f.Fuzz(func(t *testing.T, signature, digest, date, body, sigInput string) {
		s, err := verify(signature, digest, date, body, sigInput)
		if err != nil {
			if _, ok := err.(*VerifyError); !ok {
				t.Fatalf("refusal %T %v is not a *VerifyError", err, err)
			}
			return
		}
		if body != testBody || digest != good.digest || date != good.date {
			t.Fatalf("accepted a request whose body, digest or date differs from what was signed (signer %+v)", s)
		}
	})
}

type signedParts struct{ signature, digest, date string }

// httpRequestParts signs the test body for the test inbox and returns the
// headers a verifier reads.
func httpRequestParts(f *testing.F, k *rsa.PrivateKey) signedParts {
	r, err := http.NewRequest(http.MethodPost, inboxURL, strings.NewReader(testBody))
	if err != nil {
		f.Fatal(err)
	}
	if err := SignRequest(r, []byte(testBody), aliceKey, k, testNow); err != nil {
		f.Fatal(err)
	}
	return signedParts{r.Header.Get("Signature"), r.Header.Get("Digest"), r.Header.Get("Date")}
}
