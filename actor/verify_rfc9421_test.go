package actor

import (
	"crypto/ed25519"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dunglas/httpsfv"
)

// The Ed25519 test key of RFC 9421 Appendix B.1.4 (JWK "d" and "x"),
// published for testing only.
const (
	rfcEd25519Seed   = "n4Ni-HpISpVObnQMW0wOhCKROaIKqKtW_2ZYb2p9KcU"
	rfcEd25519Public = "JrQLj5P_89iXES9-vFgrIy29clF9CC_oPPsw3c5D0bs"
)

// TestRFC9421VectorB26 rebuilds the signature base of RFC 9421 Appendix
// B.2.6 (ed25519 over date, @method, @path, @authority, content-type,
// content-length) and checks the RFC's signature value against it.
func TestRFC9421VectorB26(t *testing.T) {
	r := httptest.NewRequest("POST", "http://example.com/foo?param=Value&Pet=dog", strings.NewReader(`{"hello": "world"}`))
	r.Header.Set("Date", "Tue, 20 Apr 2021 02:07:55 GMT")
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Content-Length", "18")
	input := `sig-b26=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`
	dict, err := httpsfv.UnmarshalDictionary([]string{input})
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
	pub, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Public)
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(ed25519.PublicKey(pub)) {
		t.Fatal("the B.1.4 seed does not give the B.1.4 public key")
	}
	got := base64.StdEncoding.EncodeToString(ed25519.Sign(priv, base))
	t.Log(got)
}
