package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
//
// The syntax is checked by encoding/json; the canonical form is then
// written in one pass over the checked text.
func Canonicalize(v []byte) ([]byte, error) {
	if !json.Valid(v) {
		var x any
		err := json.Unmarshal(v, &x)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return nil, fmt.Errorf("%w: %w", ErrNotCanonicalizable, err)
	}
	if !utf8.Valid(v) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrNotCanonicalizable)
	}
	return appendCanonical(make([]byte, 0, len(v)), v)
}

// appendCanonical appends the canonical form of v, which is valid JSON and
// valid UTF-8, to dst.
func appendCanonical(dst, v []byte) ([]byte, error) {
	p := parser{data: v}
	out, err := p.value(dst, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotCanonicalizable, err)
	}
	return out, nil
}

// parser writes the canonical form of JSON text that encoding/json has
// already found valid, so it need not report syntax errors: it only
// refuses what JSON allows and I-JSON does not.
type parser struct {
	data    []byte
	pos     int
	scratch []byte // decoded string contents
	// Per nesting depth, the buffer and member list of the object open at
	// that depth: objects at one depth never overlap, so they share them.
	bufs    [][]byte
	members [][]member
	names   []byte // decoded member names that had escapes
}

// member is one object member during canonicalization: its name and the
// span of its canonical value in the object's scratch buffer.
type member struct {
	name       []byte
	start, end int
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// value appends the canonical form of the value at p.pos to dst.
func (p *parser) value(dst []byte, depth int) ([]byte, error) {
	p.skipSpace()
	switch c := p.data[p.pos]; {
	case c == '{':
		if depth >= maxDepth {
			return dst, fmt.Errorf("nesting deeper than %d", maxDepth)
		}
		return p.object(dst, depth+1)
	case c == '[':
		if depth >= maxDepth {
			return dst, fmt.Errorf("nesting deeper than %d", maxDepth)
		}
		return p.array(dst, depth+1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return dst, err
		}
		return appendString(dst, s), nil
	case c == 't':
		p.pos += len("true")
		return append(dst, "true"...), nil
	case c == 'f':
		p.pos += len("false")
		return append(dst, "false"...), nil
	case c == 'n':
		p.pos += len("null")
		return append(dst, "null"...), nil
	default:
		return p.number(dst)
	}
}

func (p *parser) array(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipSpace()
	if p.data[p.pos] == ']' {
		p.pos++
		return append(dst, ']'), nil
	}
	for {
		var err error
		if dst, err = p.value(dst, depth); err != nil {
			return dst, err
		}
		p.skipSpace()
		c := p.data[p.pos]
		p.pos++
		if c == ']' {
			return append(dst, ']'), nil
		}
		dst = append(dst, ',')
	}
}

func (p *parser) object(dst []byte, depth int) ([]byte, error) {
	p.pos++ // '{'
	p.skipSpace()
	if p.data[p.pos] == '}' {
		p.pos++
		return append(dst, '{', '}'), nil
	}
	for len(p.bufs) <= depth {
		p.bufs = append(p.bufs, nil)
		p.members = append(p.members, nil)
	}
	buf, members := p.bufs[depth][:0], p.members[depth][:0]
	for {
		p.skipSpace()
		name, err := p.str()
		if err != nil {
			return dst, err
		}
		if len(name) > 0 && len(p.scratch) > 0 && &name[0] == &p.scratch[0] { // escaped: keep a copy
			at := len(p.names)
			p.names = append(p.names, name...)
			name = p.names[at:len(p.names):len(p.names)]
		}
		m := member{name: name, start: len(buf)}
		p.skipSpace()
		p.pos++ // ':'
		if buf, err = p.value(buf, depth); err != nil {
			return dst, err
		}
		m.end = len(buf)
		members = append(members, m)
		p.skipSpace()
		c := p.data[p.pos]
		p.pos++
		if c == '}' {
			break
		}
	}
	p.bufs[depth], p.members[depth] = buf, members
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			if bytes.Equal(members[i-1].name, m.name) {
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

// str decodes the string at p.pos. The result aliases the input when the
// string has no escapes, and p.scratch otherwise; it is valid until the
// next call.
func (p *parser) str() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	for {
		c := p.data[p.pos]
		if c == '"' {
			p.pos++
			return p.data[start : p.pos-1], nil
		}
		if c == '\\' {
			break
		}
		p.pos++
	}
	out := append(p.scratch[:0], p.data[start:p.pos]...)
	for {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			p.scratch = out
			return out, nil
		case c != '\\':
			out = append(out, c)
			p.pos++
			continue
		}
		esc := p.data[p.pos+1]
		p.pos += 2
		switch esc {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := hex4(p.data[p.pos:])
			p.pos += 4
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 {
					return nil, fmt.Errorf("lone low surrogate \\u%04x", r)
				}
				lo := rune(-1)
				if p.pos+6 <= len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					lo, _ = hex4(p.data[p.pos+2:])
				}
				if lo < 0xdc00 || lo > 0xdfff {
					return nil, fmt.Errorf("lone high surrogate \\u%04x", r)
				}
				p.pos += 6
				r = utf16.DecodeRune(r, lo)
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, esc)
		}
	}
}

// number appends the canonical form of the number at p.pos.
func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.pos
	plain := true // an optional minus sign and digits only
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c >= '0' && c <= '9' || c == '-' {
			p.pos++
			continue
		}
		if c == '.' || c == 'e' || c == 'E' || c == '+' {
			plain = false
			p.pos++
			continue
		}
		break
	}
	text := p.data[start:p.pos]
	digits := len(text)
	if text[0] == '-' {
		digits--
	}
	// Integers of up to 15 digits are exact doubles that ECMAScript
	// writes as they are; JSON has no leading zeros, so only -0 changes.
	if plain && digits <= 15 {
		if string(text) == "-0" {
			return append(dst, '0'), nil
		}
		return append(dst, text...), nil
	}
	return appendNumberText(dst, string(text))
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
func compareUTF16(a, b []byte) int {
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
		ra, na := utf8.DecodeRune(a[i:])
		rb, _ := utf8.DecodeRune(b[i:])
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
func appendString[S ~string | ~[]byte](dst []byte, s S) []byte {
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
