package actor

import (
	"crypto"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-fed/httpsig"
)

// cavageSig is a draft-cavage signature that passed the policy checks.
type cavageSig struct {
	kid       string
	algorithm string      // the peer's algorithm parameter, lower case; may be ""
	header    http.Header // request headers with Host restored
	method    string
	targets   []url.URL // (request-target) forms to try, in order
}

func (s *cavageSig) keyID() string { return s.kid }

// parseCavage checks a draft-cavage signature against the policy: accepted
// algorithm parameter, covered headers, signed Host, Date or (created)
// window, expires, and the Digest over body.
func (v *Verifier) parseCavage(r *http.Request, body []byte) (parsedSignature, error) {
	raw := r.Header.Get("Signature")
	if raw == "" {
		raw = strings.TrimSpace(r.Header.Get("Authorization")[len("Signature "):])
	}
	params, err := parseCavageParams(raw)
	if err != nil {
		return nil, err
	}
	kid := params["keyid"]
	if kid == "" {
		return nil, refuse("signature has no keyId")
	}
	if params["signature"] == "" {
		return nil, refuse("signature has no signature value")
	}
	alg := strings.ToLower(params["algorithm"])
	switch alg {
	case "", "rsa-sha256", "hs2019", "ed25519":
	default:
		return nil, refuse(fmt.Sprintf("algorithm %s is not accepted (rsa-sha256, hs2019)", sanitize(alg)))
	}
	covered := map[string]bool{}
	list := strings.Fields(strings.ToLower(params["headers"]))
	if len(list) == 0 {
		list = []string{"date"} // the draft's default
	}
	for _, h := range list {
		covered[h] = true
	}
	if !covered[httpsig.RequestTarget] {
		return nil, refuse("signature does not cover (request-target)")
	}
	if !covered["host"] {
		return nil, refuse("signature does not cover the host header")
	}
	if !covered["date"] && !covered["(created)"] {
		return nil, refuse("signature does not cover date or (created)")
	}
	if hasBody(r, body) && !covered["digest"] {
		return nil, refuse("signature does not cover the digest header")
	}

	host := r.Host
	if host == "" {
		host = r.Header.Get("Host")
	}
	if err := v.checkHost(host); err != nil {
		return nil, err
	}
	if covered["date"] {
		d := r.Header.Get("Date")
		if d == "" {
			return nil, refuse("Date header is missing")
		}
		t, err := http.ParseTime(d)
		if err != nil {
			return nil, refuse(fmt.Sprintf("Date %q is not an HTTP date", sanitize(d)))
		}
		if err := v.checkTime("Date", t); err != nil {
			return nil, err
		}
	}
	if covered["(created)"] {
		c, err := strconv.ParseInt(params["created"], 10, 64)
		if err != nil {
			return nil, refuse("signature covers (created) but has no valid created parameter")
		}
		if err := v.checkTime("created", time.Unix(c, 0)); err != nil {
			return nil, err
		}
	}
	if e, ok := params["expires"]; ok {
		exp, err := strconv.ParseInt(e, 10, 64)
		if err != nil {
			return nil, refuse("signature has an invalid expires parameter")
		}
		if err := v.checkExpires(time.Unix(exp, 0)); err != nil {
			return nil, err
		}
	}
	if covered["digest"] || hasBody(r, body) {
		if err := checkDigest(strings.Join(r.Header.Values("Digest"), ","), body); err != nil {
			return nil, err
		}
	}

	h := r.Header.Clone()
	h.Set("Host", host)
	return &cavageSig{kid: kid, algorithm: alg, header: h, method: r.Method, targets: requestTargets(r.URL)}, nil
}

// requestTargets lists the (request-target) forms to try: the path as sent
// with the query, then without it (peers that drop the query), then the
// same with the decoded path when it differs.
func requestTargets(u *url.URL) []url.URL {
	var out []url.URL
	paths := []string{u.EscapedPath()}
	if u.Path != u.EscapedPath() {
		paths = append(paths, u.Path)
	}
	for _, p := range paths {
		if p == "" {
			p = "/"
		}
		out = append(out, url.URL{Path: p, RawQuery: u.RawQuery})
		if u.RawQuery != "" {
			out = append(out, url.URL{Path: p})
		}
	}
	return out
}

// verify checks the signature with key, the algorithm pinned by the key
// type: RSA keys verify RSA-SHA256 only, Ed25519 keys ed25519 only.
// go-fed/httpsig also checks created and expires parameters against the
// system clock (10s tolerance) when a peer sends them; the window
// policy itself was applied by parseCavage with the verifier's clock.
func (s *cavageSig) verify(key crypto.PublicKey) error {
	kind, err := keyAlgorithm(key)
	if err != nil {
		return err
	}
	var algo httpsig.Algorithm
	switch {
	case kind == "rsa" && (s.algorithm == "" || s.algorithm == "rsa-sha256" || s.algorithm == "hs2019"):
		algo = httpsig.RSA_SHA256
	case kind == "ed25519" && (s.algorithm == "" || s.algorithm == "ed25519" || s.algorithm == "hs2019"):
		algo = httpsig.ED25519
	default:
		return refuse(fmt.Sprintf("algorithm %s does not match the %s key %s", s.algorithm, keyTypeName(key), sanitize(s.kid)))
	}
	var lastErr error
	for i := range s.targets {
		req := &http.Request{Method: s.method, URL: &s.targets[i], Header: s.header}
		ver, err := httpsig.NewVerifier(req)
		if err != nil {
			return &VerifyError{Reason: "signature header could not be parsed (or its created/expires parameters are out of range)", Err: err}
		}
		if lastErr = ver.Verify(key, algo); lastErr == nil {
			return nil
		}
	}
	return &VerifyError{Reason: fmt.Sprintf("signature does not verify with key %s (method, path, query or a signed header differs from what was signed)", sanitize(s.kid)), Err: lastErr}
}

// parseCavageParams splits the parameters of a draft-cavage Signature
// header: comma-separated name=value pairs, values quoted or bare. Names
// are returned in lower case.
func parseCavageParams(s string) (map[string]string, error) {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return out, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, refuse("signature header is malformed: want name=\"value\" parameters")
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, refuse("signature header is malformed: unterminated quoted value")
			}
			val, s = s[1:1+end], s[2+end:]
		} else {
			end := strings.IndexByte(s, ',')
			if end < 0 {
				end = len(s)
			}
			val, s = strings.TrimSpace(s[:end]), s[end:]
		}
		if _, dup := out[name]; dup {
			return nil, refuse(fmt.Sprintf("signature header repeats the %s parameter", sanitize(name)))
		}
		out[name] = val
	}
}
