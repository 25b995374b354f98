package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects Canonicalize accepts,
// matching the limit of encoding/json.
const maxDepth = 10000

// ErrNotCanonicalizable is wrapped by every error of Canonicalize: the
// input is not JSON text, or it is JSON that RFC 8785 cannot serialize
// (duplicate member names, lone surrogates, numbers out of double range).
var ErrNotCanonicalizable = errors.New("JSON cannot be canonicalized")

// Canonicalize returns the RFC 8785 (JCS) serialization of the JSON text v:
// object members sorted by the UTF-16 code units of their names, no
// insignificant whitespace, strings escaped as ECMAScript JSON.stringify
// escapes them, and numbers written as ECMAScript writes the IEEE-754
// double they denote.
//
// v must be I-JSON (RFC 7493): valid UTF-8, no lone surrogate escapes, no
// duplicate member names within an object, and no number whose magnitude
// exceeds the largest double. Numbers too small for a double become 0, as
// they do in ECMAScript.
func Canonicalize(v []byte) ([]byte, error) {
	if !utf8.Valid(v) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrNotCanonicalizable)
	}
	if err := checkSurrogates(v); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonicalizable, err)
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	c := canonicalizer{dec: dec}
	out, err := c.value(make([]byte, 0, len(v)), 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonicalizable, err)
	}
	switch _, err := dec.Token(); {
	case err == io.EOF:
		return out, nil
	case err == nil:
		return nil, fmt.Errorf("%w: data after the top-level value", ErrNotCanonicalizable)
	default:
		return nil, fmt.Errorf("%w: after the top-level value: %w", ErrNotCanonicalizable, err)
	}
}

type canonicalizer struct {
	dec *json.Decoder
}

// member is one object member during canonicalization: its name and the
// span of its canonical value in the object's scratch buffer.
type member struct {
	name       string
	start, end int
}

// value reads one JSON value from the decoder and appends its canonical
// form to dst.
func (c *canonicalizer) value(dst []byte, depth int) ([]byte, error) {
	tok, err := c.dec.Token()
	if err == io.EOF {
		return dst, io.ErrUnexpectedEOF
	}
	if err != nil {
		return dst, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return dst, fmt.Errorf("nesting deeper than %d", maxDepth)
		}
		switch t {
		case '{':
			return c.object(dst, depth+1)
		case '[':
			return c.array(dst, depth+1)
		}
		return dst, fmt.Errorf("unexpected %q", rune(t))
	case string:
		return appendString(dst, t), nil
	case json.Number:
		return appendNumberText(dst, string(t))
	case bool:
		if t {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case nil:
		return append(dst, "null"...), nil
	}
	return dst, fmt.Errorf("unexpected token %v", tok)
}

func (c *canonicalizer) array(dst []byte, depth int) ([]byte, error) {
	dst = append(dst, '[')
	for n := 0; c.dec.More(); n++ {
		if n > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = c.value(dst, depth); err != nil {
			return dst, err
		}
	}
	if _, err := c.dec.Token(); err != nil { // the closing ']'
		return dst, err
	}
	return append(dst, ']'), nil
}

func (c *canonicalizer) object(dst []byte, depth int) ([]byte, error) {
	var (
		buf     []byte
		members []member
	)
	for c.dec.More() {
		tok, err := c.dec.Token()
		if err != nil {
			return dst, err
		}
		name, ok := tok.(string)
		if !ok {
			return dst, fmt.Errorf("object member name is %v, not a string", tok)
		}
		start := len(buf)
		if buf, err = c.value(buf, depth); err != nil {
			return dst, err
		}
		members = append(members, member{name: name, start: start, end: len(buf)})
	}
	if _, err := c.dec.Token(); err != nil { // the closing '}'
		return dst, err
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if members[i-1].name == m.name {
				return dst, fmt.Errorf("duplicate object member name %q", m.name)
			}
			dst = append(dst, ',')
		}
		dst = appendString(dst, m.name)
		dst = append(dst, ':')
		dst = append(dst, buf[m.start:m.end]...)
	}
	return append(dst, '}'), nil
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

// hex4 decodes four hexadecimal digits at the start of b.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785
// sorts member names. UTF-8 byte order is code point order, which differs
// from UTF-16 order only between U+E000–U+FFFF and the supplementary
// planes (encoded as surrogates, U+D800–U+DFFF).
func compareUTF16(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) {
		ca, cb := a[i], b[i]
		if ca < utf8.RuneSelf && cb < utf8.RuneSelf {
			if ca != cb {
				return int(ca) - int(cb)
			}
			i++
			continue
		}
		ra, na := utf8.DecodeRuneInString(a[i:])
		rb, _ := utf8.DecodeRuneInString(b[i:])
		if ra != rb {
			ua, ub := firstUnit(ra), firstUnit(rb)
			if ua != ub {
				return int(ua) - int(ub)
			}
			return int(ra) - int(rb) // same high surrogate: low surrogates follow code points
		}
		i += na
	}
	return len(a) - len(b)
}

// firstUnit returns the first UTF-16 code unit of r's encoding.
func firstUnit(r rune) rune {
	if r >= 0x10000 {
		hi, _ := utf16.EncodeRune(r)
		return hi
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way JCS writes it: only the
// quotation mark, the backslash and control characters are escaped, with
// the short forms \b \t \n \f \r where they exist and \u00xx otherwise.
// s must be valid UTF-8.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\t':
			dst = append(dst, '\\', 't')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\r':
			dst = append(dst, '\\', 'r')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendNumberText appends the canonical form of the JSON number text s.
func appendNumberText(dst []byte, s string) ([]byte, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return dst, fmt.Errorf("number %s is not representable as an IEEE-754 double", s)
	}
	return appendNumber(dst, f)
}

// appendNumber appends f as ECMAScript's Number.prototype.toString writes
// it: the shortest digits that round-trip, in plain notation when the
// decimal exponent is in [-6, 21) and in exponent notation otherwise.
func appendNumber(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, fmt.Errorf("%v is not a JSON number", f)
	}
	if f == 0 { // also -0
		return append(dst, '0'), nil
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var scratch [32]byte
	b := strconv.AppendFloat(scratch[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	e := bytes.IndexByte(b, 'e')
	var digits []byte
	var digitBuf [24]byte
	digits = append(digitBuf[:0], b[0])
	if e > 1 {
		digits = append(digits, b[2:e]...)
	}
	exp := 0
	for _, c := range b[e+2:] {
		exp = exp*10 + int(c-'0')
	}
	if b[e+1] == '-' {
		exp = -exp
	}
	// The value is 0.digits × 10^n.
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst, nil
}
