package actor

import (
	"crypto/sha512"
	"testing"
)

func sha512Sum(b []byte) []byte {
	s := sha512.Sum512(b)
	return s[:]
}

func TestCheckContentDigest(t *testing.T) {
	body := []byte(testBody)
	for _, tc := range []struct {
		name, header, reason string
	}{
		{"sha-256", ContentDigestHeader(body), ""},
		{"unknown algorithm ignored beside sha-256", "md5=:AAAA:, " + ContentDigestHeader(body), ""},
		{"only unknown", "md5=:AAAA:", "Content-Digest has no sha-256 or sha-512 value"},
		{"not a dictionary", "sha-256", "Content-Digest sha-256 value is not a byte sequence"},
		{"garbage", "???", "Content-Digest header is not a structured-field dictionary"},
		{"short", "sha-256=:AAAA:", "Content-Digest sha-256 value is 3 bytes; want 32"},
		{"mismatch", ContentDigestHeader([]byte("x")), "Content-Digest does not match the body"},
		{"missing", "", "Content-Digest header is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkContentDigest(tc.header, body)
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tc.reason)
		})
	}
}
