package actor

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// signOver signs the draft-cavage signing string made of lines with
// alice's key and returns the base64 signature.
func signOver(t *testing.T, lines ...string) string {
	t.Helper()
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	sig, err := rsa.SignPKCS1v15(rand.Reader, rsaKey(t, 0), crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// TestCavageHeaderParsedOnce sends Signature headers that a parser
// splitting on every comma, or reading parameter names case-sensitively,
// reads differently from one that honours quoted strings: the policy
// checks and the signature check must read the same covered headers, so
// a header is accepted only when its signature covers what the policy
// demands, and a well-formed header is not refused for its spelling.
func TestCavageHeaderParsedOnce(t *testing.T) {
	body := []byte(testBody)
	date := testNow.Format(http.TimeFormat)
	full := []string{
		"(request-target): post /actors/vendor/inbox",
		"host: node.example",
		"date: " + date,
		"digest: " + DigestHeader(body),
	}
	fullSig := signOver(t, full...)
	dateOnlySig := signOver(t, "date: "+date) // covers nothing the policy demands but the date
	const covered = `"(request-target) host date digest"`
	for _, tc := range []struct {
		name      string
		signature string
		reason    string // "" means accepted
	}{
		{
			// The policy reads headers= case-insensitively; a parser that
			// does not falls back to the default list (date) and
			// verifies a signature over the Date alone.
			name:      "Headers= spelled with a capital, signature over date only",
			signature: `keyId="` + aliceKey + `",algorithm="rsa-sha256",Headers=` + covered + `,signature="` + dateOnlySig + `"`,
			reason:    "signature does not verify with key " + aliceKey,
		},
		{
			// A comma inside a quoted value: split on every comma, the
			// value smuggles in a second headers parameter (date only)
			// that wins over the real one.
			name:      "quoted comma smuggles a second headers parameter",
			signature: `keyId="` + aliceKey + `",algorithm="rsa-sha256",headers=` + covered + `,signature="` + dateOnlySig + `",x="a,headers=date"`,
			reason:    "signature does not verify with key " + aliceKey,
		},
		{
			name:      "duplicate headers parameter",
			signature: `keyId="` + aliceKey + `",headers="date",headers=` + covered + `,signature="` + dateOnlySig + `"`,
			reason:    "signature header repeats the headers parameter",
		},
		{
			name:      "duplicate headers parameter in other case",
			signature: `keyId="` + aliceKey + `",headers=` + covered + `,HEADERS="date",signature="` + fullSig + `"`,
			reason:    "signature header repeats the headers parameter",
		},
		{
			// Spaces after the commas are allowed list syntax; a parser
			// that does not trim them loses headers= and signature=.
			name:      "spaces after commas",
			signature: `keyId="` + aliceKey + `", algorithm="rsa-sha256", headers=` + covered + `, signature="` + fullSig + `"`,
		},
		{
			name:      "parameter names in other case",
			signature: `KeyId="` + aliceKey + `",Algorithm="rsa-sha256",Headers=` + covered + `,Signature="` + fullSig + `"`,
		},
		{
			name:      "quoted comma in an unknown parameter",
			signature: `keyId="` + aliceKey + `",headers=` + covered + `,signature="` + fullSig + `",x="a,headers=date"`,
		},
		{
			name:      "text after a quoted value",
			signature: `keyId="` + aliceKey + `"x,headers=` + covered + `,signature="` + fullSig + `"`,
			reason:    "signature header is malformed",
		},
		{
			name:      "signature value not base64",
			signature: `keyId="` + aliceKey + `",headers=` + covered + `,signature="` + fullSig[:20] + `*"`,
			reason:    "signature value is not base64",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, inboxURL, strings.NewReader(testBody))
			r.Header.Set("Date", date)
			r.Header.Set("Digest", DigestHeader(body))
			r.Header.Set("Signature", tc.signature)
			_, err := newTestVerifier(t, aliceKeys(t)).Verify(context.Background(), r, body)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			wantReason(t, err, tc.reason)
		})
	}
}

// TestCavageEd25519 verifies a draft-cavage signature made with an Ed25519
// key, with the algorithm named or hidden behind hs2019.
func TestCavageEd25519(t *testing.T) {
	pubKey, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(testBody)
	date := testNow.Format(http.TimeFormat)
	base := strings.Join([]string{
		"(request-target): post /actors/vendor/inbox",
		"host: node.example",
		"date: " + date,
		"digest: " + DigestHeader(body),
	}, "\n")
	sig := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, []byte(base)))
	keys := &staticKeys{keys: map[string]PublicKey{aliceKey: {ID: aliceKey, Owner: aliceID, Key: pubKey}}}
	for _, alg := range []string{"ed25519", "hs2019"} {
		r := httptest.NewRequest(http.MethodPost, inboxURL, strings.NewReader(testBody))
		r.Header.Set("Date", date)
		r.Header.Set("Digest", DigestHeader(body))
		r.Header.Set("Signature", `keyId="`+aliceKey+`",algorithm="`+alg+`",headers="(request-target) host date digest",signature="`+sig+`"`)
		if _, err := newTestVerifier(t, keys).Verify(context.Background(), r, body); err != nil {
			t.Errorf("algorithm %s: %v", alg, err)
		}
		r.Header.Set("Date", testNow.Add(time.Second).Format(http.TimeFormat))
		_, err := newTestVerifier(t, keys).Verify(context.Background(), r, body)
		wantReason(t, err, "signature does not verify with key "+aliceKey)
	}
}

func TestClaimedKeyID(t *testing.T) {
	for _, tc := range []struct{ header, value, want string }{
		{"Signature", `keyId="https://a.example/actors/x#main-key",algorithm="rsa-sha256"`, "https://a.example/actors/x#main-key"},
		{"Signature", `x="keyId=\"https://evil.example/k\"", keyId="https://a.example/k"`, "https://a.example/k"},
		{"Authorization", `Signature keyId="https://c.example/k",signature="AAAA"`, "https://c.example/k"},
		{"Signature-Input", `sig1=("@method");created=1;keyid="https://b.example/k"`, "https://b.example/k"},
		{"Signature", `garbage`, ""},
	} {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		if got := ClaimedKeyID(h); got != tc.want {
			t.Errorf("ClaimedKeyID(%s: %s) = %q, want %q", tc.header, tc.value, got, tc.want)
		}
	}
}
