package vocab

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Limits bounds what Parse accepts before it builds any value.
type Limits struct {
	// MaxBytes is the largest document accepted, in bytes.
	MaxBytes int
	// MaxDepth is the deepest nesting of JSON objects and arrays accepted.
	MaxDepth int
}

// DefaultLimits are the limits Parse applies: 256 KiB and 32 levels.
func DefaultLimits() Limits { return Limits{MaxBytes: 256 << 10, MaxDepth: 32} }

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
