package vocab

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// serialises to a document that parses to the same value and serialises
// to the same bytes. The documents of testdata/wire are the seeds.
func FuzzParse(f *testing.F) {
	for _, path := range wireFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatalf("read %s: %v", path, err)
		}
		f.Add(data)
	}
	f.Fuzz(checkParseProperties)
}

// checkParseProperties checks what FuzzParse checks for one document.
func checkParseProperties(t *testing.T, data []byte) {
	checkDecodersAgree(t, data)
	doc, err := Parse(data)
	if err != nil {
		if _, ok := err.(*ParseError); !ok {
			t.Fatalf("error is a %T, not a *ParseError: %v", err, err)
		}
		return
	}
	_ = ClassifyDocument(doc, nil)
	checkRoundTrip(t, doc)
}

// checkDecodersAgree checks that the one-pass decoder of valid JSON builds
// the tree the token decoder builds, or refuses with the same error.
func checkDecodersAgree(t *testing.T, data []byte) {
	t.Helper()
	if !json.Valid(data) {
		return
	}
	lim := DefaultLimits()
	fast, fastErr := decodeValid(data, lim)
	slow, slowErr := decodeTokens(data, lim)
	if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
		t.Fatalf("decoders disagree on the error: one pass %v, tokens %v\n%q", fastErr, slowErr, data)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("decoders build different trees\n%q\none pass %#v\ntokens %#v", data, fast, slow)
	}
}

func TestDecodersAgree(t *testing.T) {
	ctx := `"@context":"https://www.w3.org/ns/activitystreams"`
	deep := strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40)
	docs := []string{
		`{}`, ` { } `, `[]`, `"s"`, `1`, `null`,
		`{` + ctx + `,"type":"Note","type":"Note"}`,
		`{"a":{"b":[1,{"c":2,"c":3}]}}`,
		`{"a\u0062":1,"ab":2}`,
		`{"k":"\ud83d\ude00 \u00e9 \n \" \\ \/"}`,
		`{"k":"\ud800"}`,
		"{\"k\":\"\xff\xfe\"}",
		`{"n":-1.5e+10,"m":0,"e":1E3,"t":true,"f":false,"z":null,"arr":[[],{},[[]]]}`,
		`{"odd key!":{"":[{"x y":1,"x y":2}]}}`,
		deep,
		`{"a":[` + strings.Repeat(`[`, 35) + strings.Repeat(`]`, 35) + `]}`,
	}
	for _, path := range wireFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(data))
	}
	for _, d := range docs {
		if !json.Valid([]byte(d)) {
			t.Fatalf("test document is not valid JSON: %q", d)
		}
		checkDecodersAgree(t, []byte(d))
	}
}
