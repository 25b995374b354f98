package actor

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dunglas/httpsfv"
)

// TestEd25519MultibaseVectors encodes and decodes fixed Multikeys: the
// public key of RFC 8032 §7.1 TEST 1 and that of RFC 9421 B.1.4, whose
// base58btc forms were computed independently of this package.
func TestEd25519MultibaseVectors(t *testing.T) {
	rfc8032, _ := hex.DecodeString("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
	rfc9421, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Public)
	for _, v := range []struct {
		key       []byte
		multibase string
	}{
		{rfc8032, "z6MktwupdmLXVVqTzCw4i46r4uGyosGXRnR3XjN4Zq7oMMsw"},
		{rfc9421, "z6Mkh4LmfP1ev9MNPGr7JbEbtD6BD4fsu1duEj83PMCs3xHG"},
	} {
		if got := Ed25519Multibase(ed25519.PublicKey(v.key)); got != v.multibase {
			t.Errorf("Ed25519Multibase = %s; want %s", got, v.multibase)
		}
		back, err := ParseEd25519Multibase(v.multibase)
		if err != nil || !bytes.Equal(back, v.key) {
			t.Errorf("ParseEd25519Multibase(%s) = %x, %v; want %x", v.multibase, back, err, v.key)
		}
	}
}

// TestParseEd25519MultibaseRefuses names what is wrong with Multikeys that
// are not Ed25519 keys in base58btc.
func TestParseEd25519MultibaseRefuses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "empty"},
		{"u7QGF", "only base58btc (z)"},
		{"z0OIl", "not base58btc"},
		// A secp256k1-pub (0xe701) key of 33 bytes.
		{"zQ3shbuSXtF4m4h3RFyLcrvNeRqhU93UHnsMQjk7akjgSgXSq", "not an ed25519-pub multicodec key"},
		// The ed25519-pub prefix with 31 key bytes.
		{"z" + strings.Repeat("2", 44), "not an ed25519-pub"},
		{"z" + strings.Repeat("z", 100), "characters long"},
	} {
		_, err := ParseEd25519Multibase(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseEd25519Multibase(%q) = %v; want an error containing %q", c.in, err, c.want)
		}
	}
	short := Ed25519Multibase(make([]byte, 31))
	if _, err := ParseEd25519Multibase(short); err == nil || !strings.Contains(err.Error(), "holds 31 key bytes") {
		t.Errorf("31-byte key: %v", err)
	}
}

// TestDeriveEd25519Key checks that an actor's Ed25519 key is a function of
// its RSA key alone, and differs between RSA keys.
func TestDeriveEd25519Key(t *testing.T) {
	a1, err := DeriveEd25519Key(rsaKey(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := DeriveEd25519Key(rsaKey(t, 0))
	b, _ := DeriveEd25519Key(rsaKey(t, 1))
	if !a1.Equal(a2) {
		t.Fatal("the same RSA key derived two Ed25519 keys")
	}
	if a1.Equal(b) {
		t.Fatal("two RSA keys derived one Ed25519 key")
	}
	if _, err := DeriveEd25519Key(nil); err == nil {
		t.Fatal("derived a key from no RSA key")
	}
	l, err := NewLocal("https://node.example", "vendor", Organization, rsaKey(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	ed, ok := l.Ed25519()
	if !ok || ed.KeyID != "https://node.example/actors/vendor#ed25519-key" || !ed.Key.Equal(a1) {
		t.Fatalf("NewLocal's Ed25519 key: %v %s", ok, ed.KeyID)
	}
}

// TestSignRFC9421VectorB26 signs the components of RFC 9421 Appendix B.2.6
// with the B.1.4 key through the signer SignRequestEd25519 uses: Ed25519 is
// deterministic, so it must produce the RFC's signature byte for byte.
func TestSignRFC9421VectorB26(t *testing.T) {
	r := rfcB26Request()
	r.Header.Del("Signature")
	r.Header.Del("Signature-Input")
	seed, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Seed)
	key := ed25519.NewKeyFromSeed(seed)
	params := httpsfv.NewParams()
	params.Add("created", int64(1618884473))
	params.Add("keyid", "test-key-ed25519")
	components := []string{"date", "@method", "@path", "@authority", "content-type", "content-length"}
	if err := signRFC9421(r, "https", components, params, func(base []byte) []byte { return ed25519.Sign(key, base) }); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Header.Get("Signature-Input"), `sig1=("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"`; got != want {
		t.Errorf("Signature-Input %s; want %s", got, want)
	}
	if got, want := r.Header.Get("Signature"), "sig1=:"+rfcB26Signature+":"; got != want {
		t.Errorf("Signature %s; want %s", got, want)
	}
}

// TestSignRequestEd25519 signs a POST and a GET as a delivery and a fetch
// are signed, checks the exact parameters and covered components, and
// verifies both with the Verifier; a changed body or target is refused.
func TestSignRequestEd25519(t *testing.T) {
	seed, _ := base64.RawURLEncoding.DecodeString(rfcEd25519Seed)
	key := ed25519.NewKeyFromSeed(seed)
	const keyID = "https://peer.example/actors/bob#ed25519-key"
	keys := &staticKeys{keys: map[string]PublicKey{keyID: {ID: keyID, Owner: "https://peer.example/actors/bob", Key: key.Public()}}}
	v := newTestVerifier(t, keys)

	post := httptest.NewRequest(http.MethodPost, "https://node.example/actors/vendor/inbox", nil)
	post.Header.Set("Signature", "stale")
	if err := SignRequestEd25519(post, []byte(testBody), keyID, key, testNow); err != nil {
		t.Fatal(err)
	}
	wantInput := `sig1=("@method" "@target-uri" "@authority" "content-digest");created=1795341600;keyid="https://peer.example/actors/bob#ed25519-key";alg="ed25519"`
	if got := post.Header.Get("Signature-Input"); got != wantInput {
		t.Fatalf("Signature-Input %s; want %s", got, wantInput)
	}
	if got := post.Header.Get("Content-Digest"); got != ContentDigestHeader([]byte(testBody)) {
		t.Fatalf("Content-Digest %s", got)
	}
	signer, err := v.Verify(context.Background(), post, []byte(testBody))
	if err != nil {
		t.Fatal(err)
	}
	if signer.Scheme != SchemeRFC9421 || signer.KeyID != keyID || signer.Owner != "https://peer.example/actors/bob" {
		t.Fatalf("signer %+v", signer)
	}
	if _, err := v.Verify(context.Background(), post, []byte(testBody+" ")); err == nil {
		t.Fatal("a changed body verified")
	}

	get := httptest.NewRequest(http.MethodGet, "https://node.example/cases/42?page=2", nil)
	if err := SignRequestEd25519(get, nil, keyID, key, testNow); err != nil {
		t.Fatal(err)
	}
	if got := get.Header.Get("Signature-Input"); !strings.HasPrefix(got, `sig1=("@method" "@target-uri" "@authority");`) {
		t.Fatalf("GET Signature-Input %s", got)
	}
	if _, err := v.Verify(context.Background(), get, nil); err != nil {
		t.Fatal(err)
	}
	get.URL.RawQuery = "page=3"
	if _, err := v.Verify(context.Background(), get, nil); err == nil {
		t.Fatal("a changed query verified")
	}

	if err := SignRequestEd25519(post, nil, keyID, nil, testNow); err == nil {
		t.Fatal("signed without a key")
	}
}

// TestDocumentMultikey checks the actor document's Ed25519 Multikey, the
// retired ones, and the FEP-844e capabilities, and that publicKey stays
// the RSA key.
func TestDocumentMultikey(t *testing.T) {
	l, err := NewLocal("https://node.example", "vendor", Organization, rsaKey(t, 0))
	if err != nil {
		t.Fatal(err)
	}
	oldEd, _ := DeriveEd25519Key(rsaKey(t, 1))
	until := testNow.Add(time.Hour)
	l = l.WithRing(KeyRing{Current: rsaKey(t, 0), Fragment: "key-2", Retired: []RetiredKey{
		{Fragment: "main-key", PublicKeyPEM: "x", Until: until, Ed25519Multibase: Ed25519Multibase(oldEd.Public().(ed25519.PublicKey))},
		{Fragment: "key-0", PublicKeyPEM: "y", Until: until}, // retired before Ed25519 keys
	}}, testNow)
	raw, err := l.Document()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Context         []any             `json:"@context"`
		PublicKey       []PublicKeyDoc    `json:"publicKey"`
		AssertionMethod []MultikeyDoc     `json:"assertionMethod"`
		Generator       map[string]any    `json:"generator"`
		Extra           map[string]string `json:"-"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	cur, _ := DeriveEd25519Key(rsaKey(t, 0))
	want := []MultikeyDoc{
		{ID: l.ID + "#key-2-ed25519", Type: "Multikey", Controller: l.ID, PublicKeyMultibase: Ed25519Multibase(cur.Public().(ed25519.PublicKey))},
		{ID: l.ID + "#ed25519-key", Type: "Multikey", Controller: l.ID, PublicKeyMultibase: Ed25519Multibase(oldEd.Public().(ed25519.PublicKey)), Expires: until.Format(time.RFC3339)},
	}
	if len(doc.AssertionMethod) != len(want) {
		t.Fatalf("assertionMethod %+v; want %+v", doc.AssertionMethod, want)
	}
	for i := range want {
		if doc.AssertionMethod[i] != want[i] {
			t.Errorf("assertionMethod[%d] %+v; want %+v", i, doc.AssertionMethod[i], want[i])
		}
	}
	if len(doc.PublicKey) != 3 || doc.PublicKey[0].ID != l.ID+"#key-2" {
		t.Fatalf("publicKey %+v", doc.PublicKey)
	}
	if pub, err := ParsePublicKeyPEM(doc.PublicKey[0].PublicKeyPem); err != nil || keyTypeName(pub) != "RSA" {
		t.Fatalf("publicKey is not the RSA key: %v", err)
	}
	if !strings.Contains(string(raw), `"implements":[{"href":"`+CapabilityRFC9421+`"`) || !strings.Contains(string(raw), CapabilityRFC9421Ed25519) {
		t.Fatalf("generator lacks the FEP-844e capabilities: %s", raw)
	}
	if !strings.Contains(string(raw), MultikeyContext) {
		t.Fatal("the Multikey context is missing")
	}
}
