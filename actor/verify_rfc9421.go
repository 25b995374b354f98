package actor

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dunglas/httpsfv"

	"github.com/openvultron/vultron/problem"
)

// The RFC 9421 algorithms accepted, each pinned to a key type.
const (
	algRSAv15SHA256 = "rsa-v1_5-sha256"
	algRSAPSSSHA512 = "rsa-pss-sha512"
	algEd25519      = "ed25519"
)

// rfc9421Sig is an RFC 9421 signature that passed the policy checks.
type rfc9421Sig struct {
	kid   string
	alg   string // the alg parameter; may be ""
	base  []byte // the signature base (RFC 9421 §2.5)
	value []byte // the signature
}

func (s *rfc9421Sig) keyID() string { return s.kid }

// rfc9421Params are the parsed signature parameters of one label.
type rfc9421Params struct {
	components []string
	created    int64
	hasCreated bool
	expires    int64
	hasExpires bool
	keyID      string
	alg        string
}

// parseRFC9421 checks an RFC 9421 signature against the policy: exactly
// one signature; covered components @method, @target-uri (or @authority
// with @path, and @query when there is one, or @request-target), and
// content-digest when there is a body; the created parameter within the
// window; expires honoured; signed Host; Content-Digest over body.
func (v *Verifier) parseRFC9421(r *http.Request, body []byte) (parsedSignature, error) {
	inputs, err := httpsfv.UnmarshalDictionary(r.Header.Values("Signature-Input"))
	if err != nil {
		return nil, refuse("Signature-Input is not a structured-field dictionary")
	}
	sigs, err := httpsfv.UnmarshalDictionary(r.Header.Values("Signature"))
	if err != nil {
		return nil, refuse("Signature is not a structured-field dictionary of RFC 9421 signatures")
	}
	labels := inputs.Names()
	if len(labels) != 1 {
		return nil, refuse(fmt.Sprintf("request carries %d RFC 9421 signatures; exactly one is accepted", len(labels)))
	}
	label := labels[0]
	m, _ := inputs.Get(label)
	list, ok := m.(httpsfv.InnerList)
	if !ok {
		return nil, refuse(fmt.Sprintf("Signature-Input %s is not an inner list of components", problem.Printable(label, maxQuoted)))
	}
	sm, ok := sigs.Get(label)
	if !ok {
		return nil, refuse(fmt.Sprintf("Signature has no value for label %s", problem.Printable(label, maxQuoted)))
	}
	sigItem, ok := sm.(httpsfv.Item)
	value, isBytes := sigItem.Value.([]byte)
	if !ok || !isBytes || len(value) == 0 {
		return nil, refuse(fmt.Sprintf("Signature %s is not a byte sequence", problem.Printable(label, maxQuoted)))
	}
	p, err := parseRFC9421Params(list)
	if err != nil {
		return nil, err
	}
	if err := checkRFC9421Coverage(p.components, r, body); err != nil {
		return nil, err
	}
	if !p.hasCreated {
		return nil, refuse("RFC 9421 signature has no created parameter")
	}
	if p.keyID == "" {
		return nil, refuse("RFC 9421 signature has no keyid parameter")
	}
	switch p.alg {
	case "", algRSAv15SHA256, algRSAPSSSHA512, algEd25519:
	default:
		return nil, refuse(fmt.Sprintf("alg %s is not accepted (%s, %s, %s)", problem.Printable(p.alg, maxQuoted), algRSAv15SHA256, algRSAPSSSHA512, algEd25519))
	}
	if err := v.checkHost(r.Host); err != nil {
		return nil, err
	}
	if err := v.checkTime("created", time.Unix(p.created, 0)); err != nil {
		return nil, err
	}
	if p.hasExpires {
		if err := v.checkExpires(time.Unix(p.expires, 0)); err != nil {
			return nil, err
		}
	}
	if covers(p.components, "content-digest") || hasBody(r, body) {
		if err := checkContentDigest(strings.Join(r.Header.Values("Content-Digest"), ", "), body); err != nil {
			return nil, err
		}
	}
	base, err := signatureBase(r, v.scheme, list)
	if err != nil {
		return nil, err
	}
	return &rfc9421Sig{kid: p.keyID, alg: p.alg, base: base, value: value}, nil
}

// parseRFC9421Params reads the components and parameters of a signature.
func parseRFC9421Params(list httpsfv.InnerList) (rfc9421Params, error) {
	var p rfc9421Params
	seen := map[string]bool{}
	for _, it := range list.Items {
		name, ok := it.Value.(string)
		if !ok {
			return p, refuse("Signature-Input lists a component that is not a string")
		}
		if it.Params != nil && len(it.Params.Names()) > 0 {
			return p, refuse(fmt.Sprintf("component %q has parameters, which are not supported", problem.Printable(name, maxQuoted)))
		}
		if seen[name] {
			return p, refuse(fmt.Sprintf("component %q is listed twice", problem.Printable(name, maxQuoted)))
		}
		seen[name] = true
		p.components = append(p.components, name)
	}
	if list.Params == nil {
		return p, nil
	}
	for _, k := range list.Params.Names() {
		val, _ := list.Params.Get(k)
		var ok bool
		switch k {
		case "created":
			p.created, ok = val.(int64)
			p.hasCreated = ok
		case "expires":
			p.expires, ok = val.(int64)
			p.hasExpires = ok
		case "keyid":
			p.keyID, ok = val.(string)
		case "alg":
			p.alg, ok = val.(string)
		default:
			ok = true // nonce, tag: not used here
		}
		if !ok {
			return p, refuse(fmt.Sprintf("signature parameter %s has the wrong type", problem.Printable(k, maxQuoted)))
		}
	}
	return p, nil
}

// covers reports whether components lists name.
func covers(components []string, name string) bool {
	for _, c := range components {
		if c == name {
			return true
		}
	}
	return false
}

// checkRFC9421Coverage enforces the minimum set of covered components.
func checkRFC9421Coverage(c []string, r *http.Request, body []byte) error {
	if !covers(c, "@method") {
		return refuse("RFC 9421 signature does not cover @method")
	}
	target := covers(c, "@target-uri") ||
		covers(c, "@authority") && (covers(c, "@request-target") ||
			covers(c, "@path") && (r.URL.RawQuery == "" || covers(c, "@query")))
	if !target {
		return refuse("RFC 9421 signature does not cover @target-uri (or @authority, @path and @query)")
	}
	if hasBody(r, body) && !covers(c, "content-digest") {
		return refuse("RFC 9421 signature does not cover content-digest")
	}
	return nil
}

// signatureBase builds the signature base of RFC 9421 §2.5 for the
// components and parameters of list, scheme being the scheme of the
// target URI.
func signatureBase(r *http.Request, scheme string, list httpsfv.InnerList) ([]byte, error) {
	var b strings.Builder
	for _, it := range list.Items {
		name, _ := it.Value.(string)
		val, err := componentValue(r, scheme, name)
		if err != nil {
			return nil, err
		}
		b.WriteString(`"` + name + `": ` + val + "\n")
	}
	params, err := httpsfv.Marshal(list)
	if err != nil {
		return nil, refuse("Signature-Input cannot be serialized")
	}
	b.WriteString(`"@signature-params": ` + params)
	return []byte(b.String()), nil
}

// componentValue returns the value of one covered component.
func componentValue(r *http.Request, scheme, name string) (string, error) {
	authority := strings.ToLower(r.Host)
	authority = strings.TrimSuffix(authority, map[string]string{"https": ":443", "http": ":80"}[scheme])
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	requestTarget := path
	if r.URL.RawQuery != "" {
		requestTarget += "?" + r.URL.RawQuery
	}
	switch name {
	case "@method":
		return r.Method, nil
	case "@target-uri":
		return scheme + "://" + authority + requestTarget, nil
	case "@authority":
		return authority, nil
	case "@scheme":
		return scheme, nil
	case "@request-target":
		return requestTarget, nil
	case "@path":
		return path, nil
	case "@query":
		return "?" + r.URL.RawQuery, nil
	}
	if strings.HasPrefix(name, "@") {
		return "", refuse(fmt.Sprintf("component %s is not supported", problem.Printable(name, maxQuoted)))
	}
	if name != strings.ToLower(name) {
		return "", refuse(fmt.Sprintf("component %q is not lower case", problem.Printable(name, maxQuoted)))
	}
	var vals []string
	if name == "host" {
		vals = []string{r.Host}
	} else {
		vals = r.Header.Values(name)
	}
	if len(vals) == 0 {
		return "", refuse(fmt.Sprintf("covered header %s is missing", problem.Printable(name, maxQuoted)))
	}
	for i := range vals {
		vals[i] = strings.TrimSpace(vals[i])
	}
	return strings.Join(vals, ", "), nil
}

// verify checks the signature with key; the algorithm is pinned by the
// key type and, when present, must agree with the alg parameter.
func (s *rfc9421Sig) verify(key crypto.PublicKey) error {
	kind, err := keyAlgorithm(key)
	if err != nil {
		return err
	}
	bad := func(err error) error {
		return &VerifyError{Reason: fmt.Sprintf("RFC 9421 signature does not verify with key %s (method, target or a covered header differs from what was signed)", problem.Printable(s.kid, maxQuoted)), Err: err}
	}
	switch {
	case kind == "rsa" && (s.alg == "" || s.alg == algRSAv15SHA256):
		h := sha256.Sum256(s.base)
		if err := rsa.VerifyPKCS1v15(key.(*rsa.PublicKey), crypto.SHA256, h[:], s.value); err != nil {
			return bad(err)
		}
	case kind == "rsa" && s.alg == algRSAPSSSHA512:
		h := sha512.Sum512(s.base)
		if err := rsa.VerifyPSS(key.(*rsa.PublicKey), crypto.SHA512, h[:], s.value, &rsa.PSSOptions{SaltLength: 64}); err != nil {
			return bad(err)
		}
	case kind == "ed25519" && (s.alg == "" || s.alg == algEd25519):
		if !ed25519.Verify(key.(ed25519.PublicKey), s.base, s.value) {
			return bad(nil)
		}
	default:
		return refuse(fmt.Sprintf("alg %s does not match the %s key %s", s.alg, keyTypeName(key), problem.Printable(s.kid, maxQuoted)))
	}
	return nil
}
