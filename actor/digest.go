package actor

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/dunglas/httpsfv"

	"github.com/openvultron/vultron/problem"
)

// DigestHeader returns the value of the Digest header (RFC 3230) for body:
// "SHA-256=" and the base64 of its SHA-256 hash.
func DigestHeader(body []byte) string {
	sum := sha256.Sum256(body)
	return "SHA-256=" + base64.StdEncoding.EncodeToString(sum[:])
}

// ContentDigestHeader returns the value of the Content-Digest header
// (RFC 9530) for body with its SHA-256 hash.
func ContentDigestHeader(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}

// checkDigest compares a Digest header with the SHA-256 of body. The
// header may list several comma-separated digests; a SHA-256 one is
// required, must be strict base64 of 32 bytes and must match. Other
// algorithms are ignored: they are neither trusted nor needed.
func checkDigest(header string, body []byte) error {
	if strings.TrimSpace(header) == "" {
		return refuse("Digest header is missing")
	}
	var found bool
	var others []string
	for _, part := range strings.Split(header, ",") {
		alg, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return refuse("Digest header is malformed: want ALGORITHM=BASE64")
		}
		if !strings.EqualFold(alg, "SHA-256") {
			others = append(others, alg)
			continue
		}
		found = true
		got, err := base64.StdEncoding.Strict().DecodeString(val)
		if err != nil {
			return refuse("Digest SHA-256 value is not valid base64")
		}
		if len(got) != sha256.Size {
			return refuse(fmt.Sprintf("Digest SHA-256 value is %d bytes; a SHA-256 digest is 32", len(got)))
		}
		want := sha256.Sum256(body)
		if subtle.ConstantTimeCompare(got, want[:]) != 1 {
			return refuse("Digest does not match the body")
		}
	}
	if !found {
		return refuse(fmt.Sprintf("Digest has no SHA-256 value (got %s); SHA-256 is required", problem.Printable(strings.Join(others, ", "), maxQuoted)))
	}
	return nil
}

// checkContentDigest compares a Content-Digest header (RFC 9530) with body.
// sha-256 and sha-512 are understood; at least one must be present and
// every one present must match. Other algorithms are ignored.
func checkContentDigest(header string, body []byte) error {
	if strings.TrimSpace(header) == "" {
		return refuse("Content-Digest header is missing")
	}
	dict, err := httpsfv.UnmarshalDictionary([]string{header})
	if err != nil {
		return refuse("Content-Digest header is not a structured-field dictionary")
	}
	var found bool
	for _, alg := range dict.Names() {
		m, _ := dict.Get(alg)
		var want []byte
		switch alg {
		case "sha-256":
			s := sha256.Sum256(body)
			want = s[:]
		case "sha-512":
			s := sha512.Sum512(body)
			want = s[:]
		default:
			continue
		}
		found = true
		item, ok := m.(httpsfv.Item)
		got, isBytes := item.Value.([]byte)
		if !ok || !isBytes {
			return refuse(fmt.Sprintf("Content-Digest %s value is not a byte sequence", alg))
		}
		if len(got) != len(want) {
			return refuse(fmt.Sprintf("Content-Digest %s value is %d bytes; want %d", alg, len(got), len(want)))
		}
		if subtle.ConstantTimeCompare(got, want) != 1 {
			return refuse("Content-Digest does not match the body")
		}
	}
	if !found {
		return refuse("Content-Digest has no sha-256 or sha-512 value")
	}
	return nil
}

// maxQuoted bounds the peer-supplied text a refusal reason quotes.
const maxQuoted = 80
