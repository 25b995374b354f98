package actor

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-fed/httpsig"
)

// Signed header lists of outgoing requests: the minimum every verifier
// of the fediverse, and this package's own, demands.
var (
	signedHeadersWithBody = []string{httpsig.RequestTarget, "host", "date", "digest"}
	signedHeadersNoBody   = []string{httpsig.RequestTarget, "host", "date"}
)

// SignRequest signs req with the draft-cavage HTTP signature scheme and
// RSA-SHA256 under keyID. It sets Date (now, UTC, http.TimeFormat) and the
// Host header (Go keeps the host outside req.Header, and the signature
// covers it), and when body is not nil a Digest header with its SHA-256.
// Signed headers are "(request-target) host date digest" with a body and
// "(request-target) host date" without one (GET).
//
// The Signature header names algorithm="rsa-sha256". go-fed/httpsig writes
// "hs2019"; the parameter is not part of the signed string, so it is
// replaced: rsa-sha256 says exactly what was used, Mastodon accepts both,
// and some older peers accepted only rsa-sha256.
//
// A new signer is built per call: go-fed/httpsig signers are not safe for
// concurrent use.
func SignRequest(req *http.Request, body []byte, keyID string, key *rsa.PrivateKey, now time.Time) error {
	if key == nil {
		return errors.New("sign request: no private key")
	}
	if keyID == "" {
		return errors.New("sign request: no key id")
	}
	if req.URL == nil || req.URL.Host == "" {
		return errors.New("sign request: the URL has no host")
	}
	headers := signedHeadersNoBody
	if body != nil {
		headers = signedHeadersWithBody
	}
	signer, _, err := httpsig.NewSigner([]httpsig.Algorithm{httpsig.RSA_SHA256}, httpsig.DigestSha256, headers, httpsig.Signature, 0)
	if err != nil {
		return fmt.Errorf("sign request: build signer: %w", err)
	}
	req.Host = req.URL.Host
	req.Header.Set("Host", req.URL.Host)
	req.Header.Set("Date", now.UTC().Format(http.TimeFormat))
	req.Header.Del("Digest")
	req.Header.Del("Signature")
	if err := signer.SignRequest(key, keyID, req, body); err != nil {
		return fmt.Errorf("sign request to %s: %w", req.URL.Redacted(), err)
	}
	sig := req.Header.Get("Signature")
	req.Header.Set("Signature", strings.Replace(sig, `algorithm="hs2019"`, `algorithm="rsa-sha256"`, 1))
	return nil
}
