package vocab

import (
	"bytes"
	"encoding/json"
	"testing"
)

// jsonString is what encoding/json writes for s with HTML escaping off.
func jsonString(t testing.TB, s string) string {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

func TestEncodeStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"",
		"https://vendor.example/actors/vendor",
		`a "quoted" \ backslash`,
		"tab\tnew\nline\rreturn\bback\fform",
		"\x00\x01\x1f\x7f",
		"<script>&amp;</script>",
		"café — ünïcödé 🐛",
		"line\u2028and\u2029paragraph separators",
		"invalid \xff\xfe utf-8 \xc3",
		"\xed\xa0\x80 surrogate half",
	} {
		var got bytes.Buffer
		if err := encodeString(&got, s); err != nil {
			t.Fatalf("encodeString(%q): %v", s, err)
		}
		if want := jsonString(t, s); got.String() != want {
			t.Errorf("encodeString(%q) = %s, encoding/json writes %s", s, got.String(), want)
		}
	}
}

func FuzzEncodeString(f *testing.F) {
	f.Add("plain")
	f.Add("\"\\\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		var got bytes.Buffer
		if err := encodeString(&got, s); err != nil {
			t.Fatal(err)
		}
		if want := jsonString(t, s); got.String() != want {
			t.Fatalf("encodeString(%q) = %s, encoding/json writes %s", s, got.String(), want)
		}
	})
}

func BenchmarkMarshalReply(b *testing.B) {
	a := &Activity{ObjectBase: ObjectBase{ID: "https://vendor.example/activities/0f8e7d6c", Type: "Read",
		Published: "2026-12-06T12:00:00Z"},
		Actor:  RefTo("https://vendor.example/actors/vendor"),
		Object: RefTo("https://finder.example/activities/offer-1"),
	}
	a.To = Refs{Items: []Ref{RefTo("https://finder.example/actors/finder")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(a); err != nil {
			b.Fatal(err)
		}
	}
}
