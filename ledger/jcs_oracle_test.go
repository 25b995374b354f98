package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// This file keeps a second, independent canonicalizer built on the
// encoding/json token stream. It is slower than Canonicalize but shares
// only the string, number and ordering primitives with it; the tests and
// the fuzz target check that the two agree on every input.

func canonicalizeTokens(v []byte) ([]byte, error) {
	if !utf8.Valid(v) {
		return nil, errors.New("not valid UTF-8")
	}
	if err := checkSurrogates(v); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	c := tokenCanonicalizer{dec: dec}
	out, err := c.value(nil, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("after the top-level value: %v", err)
	}
	return out, nil
}

type tokenCanonicalizer struct {
	dec *json.Decoder
}

func (c *tokenCanonicalizer) value(dst []byte, depth int) ([]byte, error) {
	tok, err := c.dec.Token()
	if err != nil {
		return dst, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return dst, errors.New("too deep")
		}
		if t == '[' {
			dst = append(dst, '[')
			for n := 0; c.dec.More(); n++ {
				if n > 0 {
					dst = append(dst, ',')
				}
				if dst, err = c.value(dst, depth+1); err != nil {
					return dst, err
				}
			}
			_, err = c.dec.Token()
			return append(dst, ']'), err
		}
		var buf []byte
		type member struct {
			name       string
			start, end int
		}
		var members []member
		for c.dec.More() {
			tok, err := c.dec.Token()
			if err != nil {
				return dst, err
			}
			start := len(buf)
			if buf, err = c.value(buf, depth+1); err != nil {
				return dst, err
			}
			members = append(members, member{name: tok.(string), start: start, end: len(buf)})
		}
		if _, err := c.dec.Token(); err != nil {
			return dst, err
		}
		slices.SortFunc(members, func(a, b member) int { return compareUTF16([]byte(a.name), []byte(b.name)) })
		dst = append(dst, '{')
		for i, m := range members {
			if i > 0 {
				if members[i-1].name == m.name {
					return dst, errors.New("duplicate")
				}
				dst = append(dst, ',')
			}
			dst = appendString(dst, m.name)
			dst = append(dst, ':')
			dst = append(dst, buf[m.start:m.end]...)
		}
		return append(dst, '}'), nil
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return appendNumberText(dst, string(t))
	case bool:
		return fmt.Append(dst, t), nil
	case nil:
		return append(dst, "null"...), nil
	}
	return dst, fmt.Errorf("unexpected token %v", tok)
}

// checkSurrogates refuses \u escapes that encode a lone UTF-16 surrogate,
// which encoding/json would silently turn into U+FFFD. Escapes are found
// without tracking string boundaries: a backslash outside a string is a
// syntax error the decoder reports anyway.
func checkSurrogates(v []byte) error {
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			continue
		}
		i++ // the escaped character, which may itself be a backslash
		if i >= len(v) || v[i] != 'u' {
			continue
		}
		r, ok := hex4(v[i+1:])
		if !ok {
			continue
		}
		i += 4
		switch {
		case utf16.IsSurrogate(r) && r < 0xdc00:
			if len(v) < i+7 || v[i+1] != '\\' || v[i+2] != 'u' {
				return fmt.Errorf("lone high surrogate \\u%04x", r)
			}
			lo, ok := hex4(v[i+3:])
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return fmt.Errorf("lone high surrogate \\u%04x", r)
			}
			i += 6
		case utf16.IsSurrogate(r):
			return fmt.Errorf("lone low surrogate \\u%04x", r)
		}
	}
	return nil
}
