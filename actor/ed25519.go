package actor

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dunglas/httpsfv"
	"github.com/mr-tron/base58"
)

// An actor's Ed25519 key.
//
// Every local actor signs with an Ed25519 key beside its RSA key: RFC 9421
// with alg="ed25519" to peers that verify it, draft-cavage RSA to everyone
// else. The Ed25519 key is derived from the actor's RSA private key with
// HKDF-SHA-256 (RFC 5869) under a fixed label (ed25519Label), so it lives
// and dies with that key: it is kept, sealed on a shared store, exactly as
// the RSA key is (it is never written anywhere on its own), an actor that
// existed before Ed25519 keys gets one at its next start without a
// migration, rotate-key replaces both at once, and a crash in a rotation
// leaves the pair of the old ring or the pair of the new one, never one of
// each. HKDF keeps the two keys independent: the Ed25519 key reveals
// nothing of the RSA key.
//
// The public key is published as a FEP-521a Multikey in the actor
// document's assertionMethod; publicKey stays the RSA key, which is what
// Mastodon-era peers read.

// ed25519Label is the HKDF info of an actor's Ed25519 key; changing it
// changes every actor's Ed25519 key.
const ed25519Label = "vultron actor ed25519 key v1"

// Ed25519MainFragment is the fragment of the Ed25519 key id of an actor
// whose RSA key was never rotated (MainKeyFragment).
const Ed25519MainFragment = "ed25519-key"

// Ed25519Fragment returns the fragment of the Ed25519 key id that goes with
// the RSA key fragment rsaFragment: both keys of a ring rotate together,
// so each RSA key id names its Ed25519 key id.
func Ed25519Fragment(rsaFragment string) string {
	if rsaFragment == MainKeyFragment || rsaFragment == "" {
		return Ed25519MainFragment
	}
	return rsaFragment + "-ed25519"
}

// DeriveEd25519Key returns the Ed25519 key of the actor whose RSA private
// key is key (see the comment at the top of this file).
func DeriveEd25519Key(key *rsa.PrivateKey) (ed25519.PrivateKey, error) {
	if key == nil || key.D == nil || key.N == nil {
		return nil, errors.New("derive Ed25519 key: no RSA private key")
	}
	// The private exponent, at the modulus's width, is the secret;
	// the modulus as salt binds the result to this key pair.
	size := (key.N.BitLen() + 7) / 8
	secret := key.D.FillBytes(make([]byte, size))
	seed, err := hkdf.Key(sha256.New, secret, key.N.Bytes(), ed25519Label, ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("derive Ed25519 key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// ed25519MulticodecPrefix is the multicodec code of ed25519-pub (0xed) as
// an unsigned varint, the prefix of a Multikey's key bytes.
var ed25519MulticodecPrefix = []byte{0xed, 0x01}

// Ed25519Multibase encodes an Ed25519 public key as a Multikey's
// publicKeyMultibase: "z" (base58btc) then the base58 of the ed25519-pub
// multicodec prefix and the 32 key bytes.
func Ed25519Multibase(pub ed25519.PublicKey) string {
	b := make([]byte, 0, len(ed25519MulticodecPrefix)+len(pub))
	b = append(append(b, ed25519MulticodecPrefix...), pub...)
	return "z" + base58.Encode(b)
}

// ParseEd25519Multibase decodes a Multikey's publicKeyMultibase that holds
// an Ed25519 public key, refusing every other encoding or key type by name.
func ParseEd25519Multibase(s string) (ed25519.PublicKey, error) {
	if s == "" {
		return nil, errors.New("publicKeyMultibase is empty")
	}
	if s[0] != 'z' {
		return nil, fmt.Errorf("publicKeyMultibase uses multibase %q; only base58btc (z) is accepted", s[:1])
	}
	// 34 bytes are 47 or 48 base58 digits; anything much longer is not a
	// key and is refused before it is decoded.
	if len(s) > 64 {
		return nil, fmt.Errorf("publicKeyMultibase is %d characters long; an Ed25519 Multikey has 48", len(s))
	}
	b, err := base58.Decode(s[1:])
	if err != nil {
		return nil, fmt.Errorf("publicKeyMultibase is not base58btc: %w", err)
	}
	if len(b) < 2 || b[0] != ed25519MulticodecPrefix[0] || b[1] != ed25519MulticodecPrefix[1] {
		return nil, errors.New("publicKeyMultibase is not an ed25519-pub multicodec key (prefix 0xed01); only Ed25519 Multikeys are accepted")
	}
	if len(b)-2 != ed25519.PublicKeySize {
		return nil, fmt.Errorf("publicKeyMultibase holds %d key bytes; an Ed25519 key has %d", len(b)-2, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b[2:]), nil
}

// The FEP-844e capabilities a node's actor documents advertise, and that
// a peer's actor document must list for this node to sign to it with
// RFC 9421 and Ed25519.
const (
	CapabilityRFC9421        = "https://datatracker.ietf.org/doc/html/rfc9421"
	CapabilityRFC9421Ed25519 = "https://datatracker.ietf.org/doc/html/rfc9421#name-eddsa-using-curve-edwards25"
)

// rfc9421Label is the label of the signatures SignRequestEd25519 makes.
const rfc9421Label = "sig1"

// SignRequestEd25519 signs req with an RFC 9421 HTTP message signature
// made with the Ed25519 key under keyID (the id of the actor's Multikey):
// alg="ed25519", keyid and created (now) as parameters, covering @method,
// @target-uri and @authority, and content-digest when body is not nil (a
// Content-Digest header with the SHA-256 of body is set). These are the
// components the Verifier of this package and Mastodon demand. Any earlier
// signature headers of req are replaced.
func SignRequestEd25519(req *http.Request, body []byte, keyID string, key ed25519.PrivateKey, now time.Time) error {
	if len(key) != ed25519.PrivateKeySize {
		return errors.New("sign request: no Ed25519 private key")
	}
	if keyID == "" {
		return errors.New("sign request: no key id")
	}
	if req.URL == nil || req.URL.Host == "" {
		return errors.New("sign request: the URL has no host")
	}
	components := []string{"@method", "@target-uri", "@authority"}
	req.Host = req.URL.Host
	req.Header.Del("Digest")
	req.Header.Del("Signature")
	req.Header.Del("Content-Digest")
	if body != nil {
		components = append(components, "content-digest")
		req.Header.Set("Content-Digest", ContentDigestHeader(body))
	}
	params := httpsfv.NewParams()
	params.Add("created", now.Unix())
	params.Add("keyid", keyID)
	params.Add("alg", algEd25519)
	if err := signRFC9421(req, req.URL.Scheme, components, params, func(base []byte) []byte { return ed25519.Sign(key, base) }); err != nil {
		return fmt.Errorf("sign request to %s: %w", req.URL.Redacted(), err)
	}
	return nil
}

// signRFC9421 sets the Signature-Input and Signature headers of req for one
// signature under rfc9421Label over components with params, sign turning
// the signature base into the signature. The base is built by the same
// function the Verifier uses.
func signRFC9421(req *http.Request, scheme string, components []string, params *httpsfv.Params, sign func(base []byte) []byte) error {
	list := httpsfv.InnerList{Params: params}
	for _, c := range components {
		list.Items = append(list.Items, httpsfv.NewItem(c))
	}
	base, err := signatureBase(req, scheme, list)
	if err != nil {
		return err
	}
	input := httpsfv.NewDictionary()
	input.Add(rfc9421Label, list)
	in, err := httpsfv.Marshal(input)
	if err != nil {
		return fmt.Errorf("serialize Signature-Input: %w", err)
	}
	sig := httpsfv.NewDictionary()
	sig.Add(rfc9421Label, httpsfv.NewItem(sign(base)))
	out, err := httpsfv.Marshal(sig)
	if err != nil {
		return fmt.Errorf("serialize Signature: %w", err)
	}
	req.Header.Set("Signature-Input", in)
	req.Header.Set("Signature", out)
	return nil
}

// MultikeyDoc is a FEP-521a Multikey in an actor document's
// assertionMethod.
type MultikeyDoc struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase"`
	// Expires is when a retired key stops being accepted (RFC 3339).
	Expires string `json:"expires,omitempty"`
}

// MultikeyType is the type of a Multikey.
const MultikeyType = "Multikey"

// Ed25519Key is the Ed25519 key a local actor signs RFC 9421 requests with.
type Ed25519Key struct {
	KeyID string
	Key   ed25519.PrivateKey
}

// Ed25519 returns the actor's Ed25519 key and its key id; ok is false for
// an actor without one (a Local not built by NewLocal).
func (l Local) Ed25519() (Ed25519Key, bool) {
	if len(l.EdKey) != ed25519.PrivateKeySize || l.EdKeyID == "" {
		return Ed25519Key{}, false
	}
	return Ed25519Key{KeyID: l.EdKeyID, Key: l.EdKey}, true
}

// retiredEd25519 returns the Multikey a retired RSA key's ring entry
// names, or false for an entry made before actors had Ed25519 keys.
func (l Local) retiredEd25519(k RetiredKey) (MultikeyDoc, bool) {
	if k.Ed25519Multibase == "" {
		return MultikeyDoc{}, false
	}
	return MultikeyDoc{ID: l.ID + "#" + Ed25519Fragment(k.Fragment), Type: MultikeyType, Controller: l.ID,
		PublicKeyMultibase: k.Ed25519Multibase, Expires: k.Until.UTC().Format(time.RFC3339)}, true
}
