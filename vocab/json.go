package vocab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits bounds what Parse accepts before it builds any value.
type Limits struct {
	// MaxBytes is the largest document accepted, in bytes.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted.
	MaxDepth int
}

// DefaultLimits are the limits Parse applies: 1 MiB and 32 levels. The
// size is a bound on documents a node already holds (an activity, a ledger
// entry's payload, an announcement); what it takes from the network is
// bounded first by its own, smaller limits, with ParseWithLimits.
func DefaultLimits() Limits { return Limits{MaxBytes: 1 << 20, MaxDepth: 32} }

// ParseError reports why a document was refused. Path is the JSON path of
// the offending member ("$" for the whole document, "$.object.caseRoles[0]"
// for a nested one); Msg says what is wrong in words a sender can act on.
type ParseError struct {
	Path string
	Msg  string
	Err  error // underlying error, if any
}

// Error returns the message, prefixed by the path when the problem is not
// at the top of the document.
func (e *ParseError) Error() string {
	if e.Path == "" || e.Path == "$" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

func parseErr(path, format string, args ...any) *ParseError {
	return &ParseError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// decodeStrict decodes data into a tree of map[string]any, []any, string,
// json.Number, bool and nil. It refuses documents over the size limit,
// nesting deeper than the depth limit, duplicate member names at any depth,
// a top-level value that is not an object, and anything after that value.
func decodeStrict(data []byte, lim Limits) (map[string]any, error) {
	if lim.MaxBytes > 0 && len(data) > lim.MaxBytes {
		return nil, parseErr("$", "document is %d bytes, more than the limit of %d", len(data), lim.MaxBytes)
	}
	if json.Valid(data) {
		// The syntax is right: build the tree in one pass over the bytes.
		// The token decoder below allocates for every token and is kept for
		// documents that are not valid JSON, to say where they go wrong.
		return decodeValid(data, lim)
	}
	return decodeTokens(data, lim)
}

// decodeTokens is decodeStrict by encoding/json's token decoder.
func decodeTokens(data []byte, lim Limits) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	d := &strictDecoder{dec: dec, maxDepth: lim.MaxDepth}
	tok, err := d.token("$")
	if err != nil {
		return nil, err
	}
	if delim, ok := tok.(json.Delim); !ok || delim != '{' {
		return nil, parseErr("$", "document must be a JSON object")
	}
	root, err := d.object("$", 1)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, parseErr("$", "unexpected data after the JSON object at byte %d", dec.InputOffset())
	}
	return root, nil
}

type strictDecoder struct {
	dec      *json.Decoder
	maxDepth int
}

func (d *strictDecoder) token(path string) (json.Token, error) {
	tok, err := d.dec.Token()
	if err == io.EOF {
		return nil, &ParseError{Path: path, Msg: "unexpected end of JSON input", Err: err}
	}
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, &ParseError{Path: path, Msg: fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error()), Err: err}
		}
		return nil, &ParseError{Path: path, Msg: "invalid JSON: " + err.Error(), Err: err}
	}
	return tok, nil
}

// value decodes the value that starts with tok.
func (d *strictDecoder) value(tok json.Token, path string, depth int) (any, error) {
	switch t := tok.(type) {
	case json.Delim:
		if d.maxDepth > 0 && depth > d.maxDepth {
			return nil, parseErr(path, "nesting is deeper than the limit of %d levels", d.maxDepth)
		}
		switch t {
		case '{':
			return d.object(path, depth)
		case '[':
			return d.array(path, depth)
		}
		return nil, parseErr(path, "unexpected %q", string(t))
	default:
		return t, nil // string, json.Number, bool or nil
	}
}

func (d *strictDecoder) object(path string, depth int) (map[string]any, error) {
	m := make(map[string]any)
	for {
		tok, err := d.token(path)
		if err != nil {
			return nil, err
		}
		if delim, ok := tok.(json.Delim); ok && delim == '}' {
			return m, nil
		}
		key, ok := tok.(string)
		if !ok {
			return nil, parseErr(path, "expected a member name")
		}
		child := memberPath(path, key)
		if _, dup := m[key]; dup {
			return nil, parseErr(child, "duplicate member %q", key)
		}
		tok, err = d.token(child)
		if err != nil {
			return nil, err
		}
		v, err := d.value(tok, child, depth+1)
		if err != nil {
			return nil, err
		}
		m[key] = v
	}
}

func (d *strictDecoder) array(path string, depth int) ([]any, error) {
	a := []any{}
	for i := 0; ; i++ {
		child := path + "[" + strconv.Itoa(i) + "]"
		tok, err := d.token(child)
		if err != nil {
			return nil, err
		}
		if delim, ok := tok.(json.Delim); ok && delim == ']' {
			return a, nil
		}
		v, err := d.value(tok, child, depth+1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
	}
}

// decodeValid is decodeStrict for data that json.Valid accepts: one JSON
// value and nothing but white space around it. It builds the same tree as
// decodeTokens and refuses the same documents with the same errors; the
// path of the value being read is kept as a stack and spelled out only for
// an error.
func decodeValid(data []byte, lim Limits) (map[string]any, error) {
	s := &validScanner{data: data, maxDepth: lim.MaxDepth}
	s.space()
	if s.data[s.i] != '{' {
		return nil, parseErr("$", "document must be a JSON object")
	}
	return s.object(1)
}

// validScanner reads a document json.Valid accepted.
type validScanner struct {
	data     []byte
	i        int
	maxDepth int
	path     []pathStep
}

// pathStep is one step of a JSON path: a member name, or an array index.
type pathStep struct {
	member bool
	key    string
	index  int
}

func (s *validScanner) pathString() string {
	p := "$"
	for _, st := range s.path {
		if st.member {
			p = memberPath(p, st.key)
		} else {
			p = itemPath(p, st.index)
		}
	}
	return p
}

func (s *validScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value reads the value at s.i, which starts after white space.
func (s *validScanner) value(depth int) (any, error) {
	switch c := s.data[s.i]; c {
	case '{', '[':
		if s.maxDepth > 0 && depth > s.maxDepth {
			return nil, parseErr(s.pathString(), "nesting is deeper than the limit of %d levels", s.maxDepth)
		}
		if c == '{' {
			return s.object(depth)
		}
		return s.array(depth)
	case '"':
		return s.string()
	case 't':
		s.i += len("true")
		return true, nil
	case 'f':
		s.i += len("false")
		return false, nil
	case 'n':
		s.i += len("null")
		return nil, nil
	}
	start := s.i
	for s.i < len(s.data) && strings.IndexByte("+-.0123456789eE", s.data[s.i]) >= 0 {
		s.i++
	}
	return json.Number(s.data[start:s.i]), nil
}

// string reads the string at s.i as encoding/json does: a string with
// escapes or invalid UTF-8 goes through json.Unmarshal.
func (s *validScanner) string() (string, error) {
	start, escaped := s.i, false
	s.i++
	for s.data[s.i] != '"' {
		if s.data[s.i] == '\\' {
			escaped = true
			s.i++
		}
		s.i++
	}
	s.i++
	raw := s.data[start:s.i]
	if inner := raw[1 : len(raw)-1]; !escaped && utf8.Valid(inner) {
		return string(inner), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", parseErr(s.pathString(), "invalid JSON string: %v", err)
	}
	return v, nil
}

func (s *validScanner) object(depth int) (map[string]any, error) {
	m := make(map[string]any)
	s.i++ // {
	s.space()
	if s.data[s.i] == '}' {
		s.i++
		return m, nil
	}
	for {
		s.space()
		key, err := s.string()
		if err != nil {
			return nil, err
		}
		s.path = append(s.path, pathStep{member: true, key: key})
		if _, dup := m[key]; dup {
			return nil, parseErr(s.pathString(), "duplicate member %q", key)
		}
		s.space()
		s.i++ // :
		s.space()
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		m[key] = v
		s.path = s.path[:len(s.path)-1]
		s.space()
		c := s.data[s.i]
		s.i++ // , or }
		if c == '}' {
			return m, nil
		}
	}
}

func (s *validScanner) array(depth int) ([]any, error) {
	a := []any{}
	s.i++ // [
	s.space()
	if s.data[s.i] == ']' {
		s.i++
		return a, nil
	}
	for i := 0; ; i++ {
		s.space()
		s.path = append(s.path, pathStep{index: i})
		v, err := s.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		s.path = s.path[:len(s.path)-1]
		s.space()
		c := s.data[s.i]
		s.i++ // , or ]
		if c == ']' {
			return a, nil
		}
	}
}

// memberPath appends a member name to a JSON path, quoting names that are
// not plain identifiers.
func memberPath(path, key string) string {
	plain := key != ""
	for _, r := range key {
		if !(r == '_' || r == '@' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// itemPath returns the path of element i of the array at path.
func itemPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// jsonKind names the JSON kind of a decoded value for error messages.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", v), "*")
}
