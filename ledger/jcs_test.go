package ledger

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// canon canonicalizes in with Canonicalize and checks that the
// token-based canonicalizer agrees.
func canon(t *testing.T, in string) string {
	t.Helper()
	out, err := Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize(%q): %v", in, err)
	}
	if ref, err := canonicalizeTokens([]byte(in)); err != nil || string(ref) != string(out) {
		t.Fatalf("Canonicalize(%q) = %s; the token-based canonicalizer gives %s, %v", in, out, ref, err)
	}
	return string(out)
}

// TestCanonicalizeRFC8785Example is the example of RFC 8785 §3.2.2.
func TestCanonicalizeRFC8785Example(t *testing.T) {
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	if got := canon(t, in); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCanonicalizeRFC8785Sorting is the sorting example of RFC 8785 §3.2.3.
func TestCanonicalizeRFC8785Sorting(t *testing.T) {
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\"," +
		"\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	if got := canon(t, in); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestCanonicalNumbers is the number table of RFC 8785 Appendix B.
func TestCanonicalNumbers(t *testing.T) {
	for _, tc := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(tc.bits)
		got, err := appendNumber(nil, f)
		if err != nil || string(got) != tc.want {
			t.Errorf("%#016x: got %q, %v; want %q", tc.bits, got, err, tc.want)
		}
		// The same number written as JSON text in Go's own spelling
		// canonicalizes to the same form.
		text := strconv.FormatFloat(f, 'g', -1, 64)
		if got := canon(t, text); got != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", text, got, tc.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if _, err := appendNumber(nil, f); err == nil {
			t.Errorf("appendNumber(%v) succeeded, want an error", f)
		}
	}
}

func TestCanonicalizeNumberSpellings(t *testing.T) {
	for in, want := range map[string]string{
		"-0":                   "0",
		"-0.0e5":               "0",
		"1.0":                  "1",
		"100":                  "100",
		"1e2":                  "100",
		"1E+2":                 "100",
		"1e21":                 "1e+21",
		"1e20":                 "100000000000000000000",
		"1e-7":                 "1e-7",
		"0.0000001":            "1e-7",
		"0.000001":             "0.000001",
		"123e-20":              "1.23e-18",
		"1e-400":               "0",
		"-1.5e300":             "-1.5e+300",
		"12345678901234567890": "12345678901234567000",
		"[0.1,0.2]":            "[0.1,0.2]",
	} {
		if got := canon(t, in); got != want {
			t.Errorf("Canonicalize(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestCanonicalizeStrings(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`"\u0000\u0001\u001f"`, `"\u0000\u0001\u001f"`},
		{`"\b\t\n\f\r"`, `"\b\t\n\f\r"`},
		{`"\u0008\u0009\u000A\u000c\u000D"`, `"\b\t\n\f\r"`},
		{`"\"\\\/"`, `"\"\\/"`},
		{`"\u007f\u0080"`, "\"\u007f\u0080\""},
		{`"\u2028\u2029"`, "\"\u2028\u2029\""},
		{`"\u00e9\u20ac\ud83d\ude00"`, `"é€😀"`},
		{`"é€😀"`, `"é€😀"`},
		{`"<&>"`, `"<&>"`},
		{`"\u003c\u0026\u003e"`, `"<&>"`},
	} {
		if got := canon(t, tc.in); got != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalizeStructure(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{" \t\r\n{ \"b\" : [ 1 , { } , [ ] ] , \"a\" : null } \n", `{"a":null,"b":[1,{},[]]}`},
		{`{"b":{"d":1,"c":2},"a":[{"z":true,"y":false}]}`, `{"a":[{"y":false,"z":true}],"b":{"c":2,"d":1}}`},
		{`{"aa":1,"a":2,"":3,"b":4,"ab":5}`, `{"":3,"a":2,"aa":1,"ab":5,"b":4}`},
		// UTF-16 order: U+E9 < U+20AC < U+1F600 (D83D…) < U+FB33 < U+FFFD.
		{`{"\ufffd":5,"\ufb33":4,"\ud83d\ude00":3,"\u20ac":2,"\u00e9":1}`,
			`{"é":1,"€":2,"😀":3,"` + "\ufb33" + `":4,"` + "\ufffd" + `":5}`},
		// Same high surrogate: the low surrogate decides (U+1F600 < U+1F601).
		{`{"\ud83d\ude01":2,"\ud83d\ude00":1}`, `{"😀":1,"😁":2}`},
		{`"top"`, `"top"`},
		{`true`, `true`},
		{`null`, `null`},
	} {
		if got := canon(t, tc.in); got != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestCanonicalizeRefuses(t *testing.T) {
	for _, tc := range []struct{ name, in, why string }{
		{"empty", ``, ""},
		{"whitespace only", "  ", ""},
		{"duplicate", `{"a":1,"a":2}`, "duplicate"},
		{"duplicate via escape", `{"a":1,"\u0061":2}`, "duplicate"},
		{"nested duplicate", `{"x":[{"k":1,"k":1}]}`, "duplicate"},
		{"lone high surrogate", `"\ud83d"`, "surrogate"},
		{"lone high surrogate before a letter", `"\ud83dx"`, "surrogate"},
		{"reversed pair", `"\ude00\ud83d"`, "surrogate"},
		{"lone low surrogate", `"\udc00"`, "surrogate"},
		{"invalid UTF-8", "\"\xff\"", "UTF-8"},
		{"number too large", `1e400`, "not representable"},
		{"negative number too large", `[-1e400]`, "not representable"},
		{"trailing comma in array", `[1,]`, ""},
		{"trailing comma in object", `{"a":1,}`, ""},
		{"missing colon", `{"a" 1}`, ""},
		{"two values", `{} {}`, "after top-level value"},
		{"unterminated", `{"a":[1`, ""},
		{"bare word", `nul`, ""},
		{"NaN", `NaN`, ""},
		{"leading zero", `01`, ""},
		{"single quotes", `{'a':1}`, ""},
		{"too deep", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), "depth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := Canonicalize([]byte(tc.in))
			if err == nil {
				t.Fatalf("Canonicalize(%.40q) = %s, want an error", tc.in, out)
			}
			if !errors.Is(err, ErrNotCanonicalizable) {
				t.Errorf("error %v does not wrap ErrNotCanonicalizable", err)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not mention %q", err, tc.why)
			}
			if ref, err := canonicalizeTokens([]byte(tc.in)); err == nil {
				t.Errorf("the token-based canonicalizer accepts %.40q: %s", tc.in, ref)
			}
		})
	}
	// Escaped backslashes before a "u" are not escapes.
	if got := canon(t, `"\\ud800"`); got != `"\\ud800"` {
		t.Errorf(`Canonicalize("\\ud800") = %s`, got)
	}
}

func TestCompareUTF16(t *testing.T) {
	ordered := []string{"", "\r", "1", "A", "a", "aa", "\u0080", "é", "\u20ac", "\U0001F600", "\U0001F601", "\U0010FFFF", "\ue000", "\ufb33", "\uffff"}
	for i := range ordered {
		for j := range ordered {
			got := compareUTF16([]byte(ordered[i]), []byte(ordered[j]))
			if (i < j) != (got < 0) || (i == j) != (got == 0) {
				t.Errorf("compareUTF16(%q, %q) = %d", ordered[i], ordered[j], got)
			}
		}
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
		`{"\u20ac":1,"\ud83d\ude00":2,"\u00e9":3,"":[{},[]]}`,
		`[1e21,1e-7,-0,5e-324,1.7976931348623157e308]`,
		`"\u2028\t\u0001"`, `{"a":1,"a":2}`, `1e400`, `{"b":{"a":{"c":[true,false,null]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := Canonicalize(in)
		ref, refErr := canonicalizeTokens(in)
		if (err == nil) != (refErr == nil) || string(out) != string(ref) {
			t.Fatalf("Canonicalize(%q) = %q, %v; the token-based canonicalizer gives %q, %v", in, out, err, ref, refErr)
		}
		if err != nil {
			return
		}
		again, err := Canonicalize(out)
		if err != nil {
			t.Fatalf("canonical output %q does not canonicalize: %v", out, err)
		}
		if string(again) != string(out) {
			t.Fatalf("not idempotent:\n%q\n%q", out, again)
		}
		var a, b any
		if err := json.Unmarshal(in, &a); err != nil {
			t.Fatalf("input accepted by Canonicalize is refused by encoding/json: %v", err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatalf("output %q does not parse: %v", out, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("output %q parses to %v, input to %v", out, b, a)
		}
	})
}
