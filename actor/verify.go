package actor

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/openvultron/vultron/problem"
)

// The signature schemes a Signer may come from.
const (
	SchemeCavage  = "cavage"  // draft-cavage-http-signatures (Signature header)
	SchemeRFC9421 = "rfc9421" // RFC 9421 (Signature-Input and Signature)
)

// DefaultWindow is how far Date or created may lie from the local clock.
const DefaultWindow = 5 * time.Minute

// PublicKey is a peer's public key and the actor that owns it.
type PublicKey struct {
	ID    string
	Owner string
	Key   crypto.PublicKey
}

// KeyResolver finds the public key named by a signature's key id. With
// refresh it must not answer from a cache: the verifier asks for a fresh
// copy once when a cached key fails to verify (the peer may have rotated
// it).
type KeyResolver interface {
	ResolveKey(ctx context.Context, keyID string, refresh bool) (PublicKey, error)
}

// VerifierOptions configures a Verifier.
type VerifierOptions struct {
	// Keys resolves key ids to keys; required.
	Keys KeyResolver
	// Window is how far the signed Date or created may be from Now, in
	// either direction. Default DefaultWindow.
	Window time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Host is this node's public host (host[:port] of the public URL); the
	// signed Host must equal it. Required.
	Host string
	// Scheme is the scheme of the public URL, used to rebuild the target
	// URI of RFC 9421 signatures; default "https".
	Scheme string
	// Admit, when set, is called with the signature's key id after every
	// check that needs no key and before the key is resolved (fetched);
	// an error it returns is returned by Verify unchanged. The node's
	// federation policy (allow-list, per-peer rate limit) goes here, so
	// that a refused peer never makes the node fetch anything.
	Admit func(ctx context.Context, keyID string) error
}

// Signer identifies who signed a verified request.
type Signer struct {
	KeyID  string
	Owner  string // the actor that owns the key
	Scheme string // SchemeCavage or SchemeRFC9421
}

// VerifyError is a refused signature, or a signer that does not match what
// it signed. Callers answer it with HTTP 401. Reason says exactly what was
// wrong and is safe to return to the peer and to log: it never contains a
// signature value or key material.
type VerifyError struct {
	Reason string
	Err    error // the underlying error, if any
}

// Error returns the reason.
func (e *VerifyError) Error() string {
	if e.Err != nil {
		return "signature refused: " + e.Reason + ": " + e.Err.Error()
	}
	return "signature refused: " + e.Reason
}

// Unwrap returns the underlying error.
func (e *VerifyError) Unwrap() error { return e.Err }

// refuse returns a *VerifyError with reason.
func refuse(reason string) error { return &VerifyError{Reason: reason} }

// Verifier checks the HTTP signatures of incoming requests. It is safe for
// concurrent use.
type Verifier struct {
	keys   KeyResolver
	window time.Duration
	now    func() time.Time
	host   string
	scheme string
	admit  func(ctx context.Context, keyID string) error
}

// NewVerifier returns a Verifier; Keys and Host are required.
func NewVerifier(opts VerifierOptions) (*Verifier, error) {
	if opts.Keys == nil {
		return nil, errors.New("verifier: no key resolver")
	}
	if opts.Host == "" {
		return nil, errors.New("verifier: no public host")
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Scheme == "" {
		opts.Scheme = "https"
	}
	return &Verifier{keys: opts.Keys, window: opts.Window, now: opts.Now, host: strings.ToLower(opts.Host), scheme: opts.Scheme, admit: opts.Admit}, nil
}

// parsedSignature is a signature that passed the policy checks and only
// needs its cryptographic check.
type parsedSignature interface {
	keyID() string
	// verify checks the signature with key; it returns a *VerifyError.
	verify(key crypto.PublicKey) error
}

// Verify checks the HTTP signature of r, whose raw body is body (read by
// the caller under its size limit; nil or empty for GET). A request with a
// Signature-Input header is checked as RFC 9421, otherwise as draft-cavage
// (Signature or Authorization: Signature). Before any key is fetched it
// checks the covered components, the signed Host, the Date or created
// window and the Digest or Content-Digest over body, and calls
// VerifierOptions.Admit with the key id; then it verifies the
// signature with the resolved key, and once more with a refreshed key if
// that fails. Every refusal is a *VerifyError.
//
// Verify does not bind the signer to an activity: the caller does that
// with CheckBinding once it has parsed the body.
func (v *Verifier) Verify(ctx context.Context, r *http.Request, body []byte) (Signer, error) {
	var (
		sig    parsedSignature
		scheme string
		err    error
	)
	switch {
	case r.Header.Get("Signature-Input") != "":
		scheme = SchemeRFC9421
		sig, err = v.parseRFC9421(r, body)
	case r.Header.Get("Signature") != "" || hasSignatureAuthorization(r):
		scheme = SchemeCavage
		sig, err = v.parseCavage(r, body)
	default:
		return Signer{}, refuse("request is not signed: no Signature or Signature-Input header")
	}
	if err != nil {
		return Signer{}, err
	}
	if v.admit != nil {
		if err := v.admit(ctx, sig.keyID()); err != nil {
			return Signer{}, err
		}
	}
	key, err := v.keys.ResolveKey(ctx, sig.keyID(), false)
	if err != nil {
		return Signer{}, &VerifyError{Reason: fmt.Sprintf("key %s could not be resolved", problem.Printable(sig.keyID(), maxQuoted)), Err: err}
	}
	if err = sig.verify(key.Key); err != nil {
		fresh, ferr := v.keys.ResolveKey(ctx, sig.keyID(), true)
		if ferr != nil {
			return Signer{}, &VerifyError{Reason: fmt.Sprintf("key %s could not be refreshed after a failed verification", problem.Printable(sig.keyID(), maxQuoted)), Err: ferr}
		}
		if err = sig.verify(fresh.Key); err != nil {
			return Signer{}, err
		}
		key = fresh
	}
	if key.ID != sig.keyID() {
		return Signer{}, refuse(fmt.Sprintf("resolved key %s is not the signature's key %s", problem.Printable(key.ID, maxQuoted), problem.Printable(sig.keyID(), maxQuoted)))
	}
	if key.Owner == "" {
		return Signer{}, refuse(fmt.Sprintf("key %s has no owner", problem.Printable(key.ID, maxQuoted)))
	}
	return Signer{KeyID: key.ID, Owner: key.Owner, Scheme: scheme}, nil
}

// ClaimedKeyID returns the key id a request's signature names, unverified
// and read by the same parsers the Verifier uses: the keyId of a
// draft-cavage Signature (or Authorization: Signature) header, or the
// keyid of an RFC 9421 Signature-Input with one signature. It is "" when
// the header cannot be read that far. It is meant for records of a
// refusal, which may be that the signature does not verify.
func ClaimedKeyID(h http.Header) string {
	r := &http.Request{Header: h}
	switch {
	case h.Get("Signature-Input") != "":
		inputs, err := httpsfv.UnmarshalDictionary(h.Values("Signature-Input"))
		if err != nil || len(inputs.Names()) != 1 {
			return ""
		}
		m, _ := inputs.Get(inputs.Names()[0])
		list, ok := m.(httpsfv.InnerList)
		if !ok || list.Params == nil {
			return ""
		}
		v, _ := list.Params.Get("keyid")
		id, _ := v.(string)
		return id
	case h.Get("Signature") != "":
		c, _ := parseCavageHeader(h.Get("Signature"))
		return c.keyID
	case hasSignatureAuthorization(r):
		c, _ := parseCavageHeader(strings.TrimSpace(h.Get("Authorization")[len("Signature "):]))
		return c.keyID
	}
	return ""
}

// hasSignatureAuthorization reports whether r carries
// "Authorization: Signature ...".
func hasSignatureAuthorization(r *http.Request) bool {
	a := r.Header.Get("Authorization")
	return len(a) > len("Signature ") && strings.EqualFold(a[:len("Signature ")], "Signature ")
}

// hasBody reports whether the request carries a body that a digest must
// cover.
func hasBody(r *http.Request, body []byte) bool {
	if len(body) > 0 || r.ContentLength > 0 {
		return true
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		return true
	}
	return false
}

// checkHost refuses a signed Host that is not this node.
func (v *Verifier) checkHost(signedHost string) error {
	if !strings.EqualFold(signedHost, v.host) {
		return refuse(fmt.Sprintf("signed Host %s is not this node (%s)", problem.Printable(signedHost, maxQuoted), v.host))
	}
	return nil
}

// checkTime refuses a time (named what: "Date", "created") outside the
// window around now.
func (v *Verifier) checkTime(what string, t time.Time) error {
	now := v.now()
	switch d := now.Sub(t); {
	case d > v.window:
		return refuse(fmt.Sprintf("%s is %s old; the allowed window is %s", what, d.Truncate(time.Second), v.window))
	case -d > v.window:
		return refuse(fmt.Sprintf("%s is %s in the future; the allowed window is %s", what, (-d).Truncate(time.Second), v.window))
	}
	return nil
}

// checkExpires refuses a signature whose expires time has passed.
func (v *Verifier) checkExpires(expires time.Time) error {
	if d := v.now().Sub(expires); d > 0 {
		return refuse(fmt.Sprintf("signature expired %s ago", d.Truncate(time.Second)))
	}
	return nil
}

// keyAlgorithm names the only algorithm a key may verify with: the
// algorithm is pinned by the key, never chosen by the peer.
func keyAlgorithm(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < MinRSABits {
			return "", refuse(fmt.Sprintf("RSA key has %d bits; at least %d are required", k.N.BitLen(), MinRSABits))
		}
		return "rsa", nil
	case ed25519.PublicKey:
		return "ed25519", nil
	default:
		return "", refuse(fmt.Sprintf("%s keys are not accepted (RSA or Ed25519 only)", keyTypeName(key)))
	}
}
