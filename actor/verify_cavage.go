package actor

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/internal/httplex"
	"github.com/openvultron/vultron/problem"
)

// Draft-cavage signatures are parsed once, by parseCavageHeader, and that
// one parse feeds both the policy (covered headers, algorithm, keyId,
// created, expires) and the signing string that is verified. Verification
// does not go through go-fed/httpsig: its verifier re-parses the header
// itself (splitting on every comma, even inside quoted values, and matching
// parameter names case-sensitively), so it could verify a signature over
// another list of covered headers than the one the policy checked, and it
// cannot be handed a parsed header. The signing string is therefore built
// here and checked with the standard library (RSA PKCS #1 v1.5 with
// SHA-256, Ed25519). go-fed/httpsig still signs outgoing requests
// (sign.go), where no parse is involved.

// cavageRequestTarget is the pseudo-header of the method and path.
const cavageRequestTarget = "(request-target)"

// cavageHeader is one parse of a draft-cavage Signature header (or of an
// Authorization: Signature header's parameters).
type cavageHeader struct {
	keyID     string
	algorithm string   // lower case; may be ""
	headers   []string // covered headers, lower case, in signed order
	signature []byte
	created   int64
	expires   int64
	// hasCreated and hasExpires say whether the parameters were present.
	hasCreated bool
	hasExpires bool
}

// covers reports whether the signature covers header name (lower case).
func (h *cavageHeader) covers(name string) bool {
	for _, c := range h.headers {
		if c == name {
			return true
		}
	}
	return false
}

// parseCavageHeader parses the parameters of a draft-cavage signature:
// a comma-separated list of name=value pairs, with optional whitespace
// around the commas, each value a token or a quoted string (with
// backslash escapes, as in RFC 9110 §5.6.4). Parameter names are matched
// case-insensitively, and a name given twice in any case is refused, so no
// reader can pick another one of two values. Unknown parameters are
// ignored. The header is not an RFC 8941 structured field (its names are
// mixed case), so httpsfv cannot read it; internal/httplex scans it.
func parseCavageHeader(s string) (cavageHeader, error) {
	var h cavageHeader
	seen := map[string]bool{}
	hasHeaders := false
	for {
		s = httplex.TrimOWS(s)
		if s == "" {
			break
		}
		if s[0] == ',' {
			s = s[1:] // empty list elements are allowed
			continue
		}
		tok, rest := httplex.Token(s)
		if tok == "" || rest == "" || rest[0] != '=' {
			return h, refuse("signature header is malformed: want name=\"value\" parameters")
		}
		name := strings.ToLower(tok)
		val, rest, err := httplex.Value(rest[1:])
		if err != nil {
			return h, refuse(fmt.Sprintf("signature header is malformed: parameter %s: %v", problem.Printable(name, maxQuoted), err))
		}
		s = httplex.TrimOWS(rest)
		if s != "" && s[0] != ',' {
			return h, refuse(fmt.Sprintf("signature header is malformed: unexpected text after the %s parameter", problem.Printable(name, maxQuoted)))
		}
		if seen[name] {
			return h, refuse(fmt.Sprintf("signature header repeats the %s parameter", problem.Printable(name, maxQuoted)))
		}
		seen[name] = true
		switch name {
		case "keyid":
			h.keyID = val
		case "algorithm":
			h.algorithm = strings.ToLower(val)
		case "headers":
			hasHeaders = true
			h.headers = strings.Fields(strings.ToLower(val))
		case "signature":
			sig, err := base64.StdEncoding.Strict().DecodeString(val)
			if err != nil {
				return h, refuse("signature value is not base64")
			}
			h.signature = sig
		case "created", "expires":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n <= 0 {
				return h, refuse(fmt.Sprintf("signature has an invalid %s parameter", name))
			}
			if name == "created" {
				h.created, h.hasCreated = n, true
			} else {
				h.expires, h.hasExpires = n, true
			}
		}
	}
	if h.keyID == "" {
		return h, refuse("signature has no keyId")
	}
	if len(h.signature) == 0 {
		return h, refuse("signature has no signature value")
	}
	if !hasHeaders || len(h.headers) == 0 {
		h.headers = []string{"date"} // the draft's default
	}
	dup := map[string]bool{}
	for _, c := range h.headers {
		if dup[c] {
			return h, refuse(fmt.Sprintf("signature covers %s twice", problem.Printable(c, maxQuoted)))
		}
		dup[c] = true
	}
	return h, nil
}

// cavageSig is a draft-cavage signature that passed the policy checks,
// with the signing strings it may have been made over.
type cavageSig struct {
	kid       string
	algorithm string
	signature []byte
	// bases are the signing strings to try, one per (request-target) form.
	bases []string
}

func (s *cavageSig) keyID() string { return s.kid }

// parseCavage parses the request's draft-cavage signature once, checks it
// against the policy (accepted algorithm parameter, covered headers,
// signed Host, Date or (created) window, expires, the Digest over body)
// and builds from the same parse the signing strings its signature is
// verified against.
func (v *Verifier) parseCavage(r *http.Request, body []byte) (parsedSignature, error) {
	raw := r.Header.Get("Signature")
	if raw == "" {
		raw = strings.TrimSpace(r.Header.Get("Authorization")[len("Signature "):])
	}
	h, err := parseCavageHeader(raw)
	if err != nil {
		return nil, err
	}
	switch h.algorithm {
	case "", "rsa-sha256", "hs2019", "ed25519":
	default:
		return nil, refuse(fmt.Sprintf("algorithm %s is not accepted (rsa-sha256, hs2019)", problem.Printable(h.algorithm, maxQuoted)))
	}
	if !h.covers(cavageRequestTarget) {
		return nil, refuse("signature does not cover (request-target)")
	}
	if !h.covers("host") {
		return nil, refuse("signature does not cover the host header")
	}
	if !h.covers("date") && !h.covers("(created)") {
		return nil, refuse("signature does not cover date or (created)")
	}
	if hasBody(r, body) && !h.covers("digest") {
		return nil, refuse("signature does not cover the digest header")
	}

	host := r.Host
	if host == "" {
		host = r.Header.Get("Host")
	}
	if err := v.checkHost(host); err != nil {
		return nil, err
	}
	if h.covers("date") {
		d := r.Header.Get("Date")
		if d == "" {
			return nil, refuse("Date header is missing")
		}
		t, err := http.ParseTime(d)
		if err != nil {
			return nil, refuse(fmt.Sprintf("Date %q is not an HTTP date", problem.Printable(d, maxQuoted)))
		}
		if err := v.checkTime("Date", t); err != nil {
			return nil, err
		}
	}
	if h.covers("(created)") {
		if !h.hasCreated {
			return nil, refuse("signature covers (created) but has no valid created parameter")
		}
		if err := v.checkTime("created", time.Unix(h.created, 0)); err != nil {
			return nil, err
		}
	}
	if h.covers("(expires)") && !h.hasExpires {
		return nil, refuse("signature covers (expires) but has no expires parameter")
	}
	if h.hasExpires {
		if err := v.checkExpires(time.Unix(h.expires, 0)); err != nil {
			return nil, err
		}
	}
	if h.covers("digest") || hasBody(r, body) {
		if err := checkDigest(strings.Join(r.Header.Values("Digest"), ","), body); err != nil {
			return nil, err
		}
	}

	sig := &cavageSig{kid: h.keyID, algorithm: h.algorithm, signature: h.signature}
	for _, target := range requestTargets(r.URL) {
		base, err := h.signingString(r.Method, target, host, r.Header)
		if err != nil {
			return nil, err
		}
		sig.bases = append(sig.bases, base)
	}
	return sig, nil
}

// signingString builds the draft-cavage signing string of the covered
// headers, in their order: each a line "name: value", the pseudo-headers
// from method and target (path and query) and the created and expires
// parameters, Host from the request's host, and every other header from
// its values, trimmed and joined with ", ".
func (h *cavageHeader) signingString(method, target, host string, header http.Header) (string, error) {
	var b strings.Builder
	for i, name := range h.headers {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(name)
		b.WriteString(": ")
		switch name {
		case cavageRequestTarget:
			b.WriteString(strings.ToLower(method) + " " + target)
		case "(created)":
			b.WriteString(strconv.FormatInt(h.created, 10))
		case "(expires)":
			b.WriteString(strconv.FormatInt(h.expires, 10))
		case "host":
			b.WriteString(host)
		default:
			if strings.HasPrefix(name, "(") {
				return "", refuse(fmt.Sprintf("signature covers %s, which is not a known pseudo-header", problem.Printable(name, maxQuoted)))
			}
			vals := header.Values(name)
			if len(vals) == 0 {
				return "", refuse(fmt.Sprintf("covered header %s is missing", problem.Printable(name, maxQuoted)))
			}
			for j, v := range vals {
				if j > 0 {
					b.WriteString(", ")
				}
				b.WriteString(strings.TrimSpace(v))
			}
		}
	}
	return b.String(), nil
}

// requestTargets lists the (request-target) paths to try: the path as sent
// with the query, then without it (peers that drop the query), then the
// same with the decoded path when it differs.
func requestTargets(u *url.URL) []string {
	var out []string
	paths := []string{u.EscapedPath()}
	if u.Path != u.EscapedPath() {
		paths = append(paths, u.Path)
	}
	for _, p := range paths {
		if p == "" {
			p = "/"
		}
		if u.RawQuery != "" {
			out = append(out, p+"?"+u.RawQuery)
		}
		out = append(out, p)
	}
	return out
}

// verify checks the signature with key, the algorithm pinned by the key
// type: RSA keys verify RSA-SHA256 (PKCS #1 v1.5) only, Ed25519 keys
// ed25519 only.
func (s *cavageSig) verify(key crypto.PublicKey) error {
	kind, err := keyAlgorithm(key)
	if err != nil {
		return err
	}
	var check func(base string) error
	switch {
	case kind == "rsa" && (s.algorithm == "" || s.algorithm == "rsa-sha256" || s.algorithm == "hs2019"):
		pub := key.(*rsa.PublicKey)
		check = func(base string) error {
			sum := sha256.Sum256([]byte(base))
			return rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], s.signature)
		}
	case kind == "ed25519" && (s.algorithm == "" || s.algorithm == "ed25519" || s.algorithm == "hs2019"):
		pub := key.(ed25519.PublicKey)
		check = func(base string) error {
			if !ed25519.Verify(pub, []byte(base), s.signature) {
				return errEd25519Mismatch
			}
			return nil
		}
	default:
		return refuse(fmt.Sprintf("algorithm %s does not match the %s key %s", s.algorithm, keyTypeName(key), problem.Printable(s.kid, maxQuoted)))
	}
	var lastErr error
	for _, base := range s.bases {
		if lastErr = check(base); lastErr == nil {
			return nil
		}
	}
	return &VerifyError{Reason: fmt.Sprintf("signature does not verify with key %s (method, path, query or a signed header differs from what was signed)", problem.Printable(s.kid, maxQuoted)), Err: lastErr}
}

// errEd25519Mismatch is the error of an Ed25519 signature that does not
// verify (the standard library reports a bool).
var errEd25519Mismatch = errors.New("ed25519: signature does not verify")
