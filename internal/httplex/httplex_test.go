package httplex

import (
	"errors"
	"testing"
)

func TestValue(t *testing.T) {
	for _, tc := range []struct {
		in, val, rest string
		err           error
	}{
		{`abc;x`, "abc", ";x", nil},
		{`"a,b;c" ,x`, "a,b;c", " ,x", nil},
		{`"a\"b\\c"`, `a"b\c`, "", nil},
		{`"[2001:db8::1]:80";by=x`, "[2001:db8::1]:80", ";by=x", nil},
		{``, "", "", ErrNoValue},
		{`,x`, "", ",x", ErrNoValue},
		{`"open`, "", `"open`, ErrUnterminated},
		{"\"a\x01b\"", "", "\"a\x01b\"", ErrControlChar},
	} {
		val, rest, err := Value(tc.in)
		if val != tc.val || rest != tc.rest || !errors.Is(err, tc.err) {
			t.Errorf("Value(%q) = %q, %q, %v; want %q, %q, %v", tc.in, val, rest, err, tc.val, tc.rest, tc.err)
		}
	}
}

func TestToken(t *testing.T) {
	for _, tc := range []struct{ in, tok, rest string }{
		{"keyId=x", "keyId", "=x"},
		{"(request-target)", "", "(request-target)"},
		{"a:b", "a", ":b"},
	} {
		if tok, rest := Token(tc.in); tok != tc.tok || rest != tc.rest {
			t.Errorf("Token(%q) = %q, %q; want %q, %q", tc.in, tok, rest, tc.tok, tc.rest)
		}
	}
}
