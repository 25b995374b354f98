// Package httplex scans the pieces of HTTP header values that the node's
// own header parsers share: tokens and quoted strings (RFC 9110 §5.6.2 and
// §5.6.4) and optional whitespace. The actor package reads draft-cavage
// Signature parameters with it and the policy package RFC 7239 Forwarded
// elements; neither header is an RFC 8941 structured field, so httpsfv
// cannot read them, and the standard library exports no such scanner.
//
// It is pure: no I/O, no state.
package httplex

import (
	"errors"
	"strings"
)

// IsTokenChar reports whether c may appear in a token.
func IsTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// TrimOWS removes leading spaces and tabs.
func TrimOWS(s string) string { return strings.TrimLeft(s, " \t") }

// Token returns the token at the start of s ("" if there is none) and the
// rest of s.
func Token(s string) (tok, rest string) {
	i := 0
	for i < len(s) && IsTokenChar(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// Errors of Value.
var (
	ErrNoValue      = errors.New("a parameter has no value")
	ErrControlChar  = errors.New("a control character in a quoted value")
	ErrUnterminated = errors.New("an unterminated quoted value")
)

// Value reads a token or a quoted string at the start of s and returns its
// value (a quoted string unquoted, its backslash escapes resolved) and the
// rest of s after it.
func Value(s string) (val, rest string, err error) {
	if s == "" || s[0] != '"' {
		tok, rest := Token(s)
		if tok == "" {
			return "", s, ErrNoValue
		}
		return tok, rest, nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return b.String(), s[i+1:], nil
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", s, ErrControlChar
		default:
			b.WriteByte(c)
		}
	}
	return "", s, ErrUnterminated
}
