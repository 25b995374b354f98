package advisory

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gocsaf/csaf/v3/csaf"

	"github.com/openvultron/vultron/cvdstate"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// example is an advisory as a case of two revisions records it.
func example() *Advisory {
	t1 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	return &Advisory{
		TrackingID: "VULTRON-7Q3X",
		Title:      "Heap overflow in the widget parser",
		Summary:    "A crafted widget file overflows a heap buffer.",
		Details:    "<p>The parser of Widget Server before 4.2.1 trusts a length field.</p>",
		URL:        "https://vendor.example/advisories/VULTRON-7Q3X",
		CSAFURL:    "https://vendor.example/.well-known/csaf/white/2026/vultron-7q3x.json",
		Publisher:  Publisher{Category: "vendor", Name: "vendor", Namespace: "https://vendor.example"},
		Revisions:  []Revision{{1, t1, "Initial publication"}, {2, t1.Add(48 * time.Hour), "Fixed versions added"}},
		Products: []Product{
			{Vendor: "vendor", Name: "Widget Server", PURL: "pkg:npm/widget-server@4.2.0", Versions: "< 4.2.1", Status: "affected", Statement: "Upgrade to 4.2.1."},
			{Vendor: "vendor", Name: "Widget Server", PURL: "pkg:npm/widget-server@4.2.1", Versions: "4.2.1", Status: "fixed"},
			{Vendor: "vendor", Name: "Widget Lite", CPE: "cpe:2.3:a:vendor:widget_lite:1.0:*:*:*:*:*:*:*", Status: "not-affected", Justification: "component_not_present"},
		},
		IDs:    []string{"CVE-2026-1234", "GHSA-2F3Q-X8V6-9C4M"},
		CaseID: "https://vendor.example/cases/7q3x",
		Involvements: []Involvement{
			{Name: "vendor", Roles: cvdstate.Vendor | cvdstate.CaseOwner, State: cvdstate.ParticipantState{RM: cvdstate.RMAccepted, VFD: cvdstate.VFDFixReady}},
			{Name: "finder", Roles: cvdstate.Finder | cvdstate.Reporter, State: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}},
			{Name: "cert", Roles: cvdstate.Coordinator, State: cvdstate.ParticipantState{RM: cvdstate.RMClosed}},
		},
		Generator: "vultron test",
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./advisory -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; got:\n%s", name, got)
	}
}

// TestCSAF: the document is the golden one, passes the official CSAF 2.0
// schema (as gocsaf embeds it) and says what the profile tests of a VEX
// require; without a CVE id it is a security advisory, without products
// csaf_base, and a draft is a draft.
func TestCSAF(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(a *Advisory)
		category string
		status   string
	}{
		{"vex.json", func(*Advisory) {}, "csaf_vex", "final"},
		{"advisory.json", func(a *Advisory) { a.IDs = []string{"GHSA-2F3Q-X8V6-9C4M"} }, "csaf_security_advisory", "final"},
		{"base.json", func(a *Advisory) { a.Products = nil }, "csaf_base", "final"},
		{"draft.json", func(a *Advisory) { a.Draft = true }, "csaf_vex", "draft"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := example()
			tt.edit(a)
			b, err := CSAF(a)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "csaf-"+tt.name, b)
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			errs, err := csaf.ValidateCSAF(doc)
			if err != nil || len(errs) > 0 {
				t.Fatalf("CSAF schema: %v %v", err, errs)
			}
			var d struct {
				Document struct {
					Category string
					Tracking struct {
						Status, Version string
					}
				}
				Vulnerabilities []struct {
					Notes         []any
					ProductStatus map[string][]string `json:"product_status"`
					Remediations  []struct {
						ProductIDs []string `json:"product_ids"`
					}
					Flags []struct {
						ProductIDs []string `json:"product_ids"`
					}
					Involvements []struct{ Party, Status string }
				}
			}
			if err := json.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			// A draft names no URL it is not served at yet; a final
			// document names itself.
			if self := bytes.Contains(b, []byte(`"category": "self"`)); self != (tt.status == "final") {
				t.Errorf("%s document with a self reference: %v", tt.status, self)
			}
			if d.Document.Category != tt.category || d.Document.Tracking.Status != tt.status || d.Document.Tracking.Version != "2" {
				t.Errorf("category %s status %s version %s, want %s %s 2", d.Document.Category, d.Document.Tracking.Status, d.Document.Tracking.Version, tt.category, tt.status)
			}
			v := d.Vulnerabilities[0]
			if len(v.Notes) == 0 || len(v.Involvements) != 3 {
				t.Errorf("notes %v involvements %+v", v.Notes, v.Involvements)
			}
			if tt.category == "csaf_base" {
				return
			}
			// 6.1.27.10 and 6.1.27.9: an action for each affected product,
			// an impact for each product not affected.
			for _, id := range v.ProductStatus["known_affected"] {
				if !slices.ContainsFunc(v.Remediations, func(r struct {
					ProductIDs []string `json:"product_ids"`
				}) bool {
					return slices.Contains(r.ProductIDs, id)
				}) {
					t.Errorf("no remediation for affected %s", id)
				}
			}
			for _, id := range v.ProductStatus["known_not_affected"] {
				if !slices.ContainsFunc(v.Flags, func(f struct {
					ProductIDs []string `json:"product_ids"`
				}) bool {
					return slices.Contains(f.ProductIDs, id)
				}) {
					t.Errorf("no flag for not affected %s", id)
				}
			}
		})
	}
}

// TestRecords: the CVE and OSV records are the golden ones and have the
// structure their schemas require (make conformance checks them against
// the official schemas); no CVE id, no CVE record.
func TestRecords(t *testing.T) {
	a := example()
	cve, err := CVERecord(a)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cve.json", cve)
	osv, err := OSV(a)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "osv.json", osv)
	for _, c := range []struct {
		name string
		doc  []byte
		want []string
	}{
		{"CVE", cve, []string{"dataType", "dataVersion", "cveMetadata.cveId", "cveMetadata.assignerOrgId", "cveMetadata.state",
			"containers.cna.providerMetadata.orgId", "containers.cna.descriptions", "containers.cna.affected", "containers.cna.references"}},
		{"OSV", osv, []string{"id", "modified", "published", "aliases", "affected", "references"}},
	} {
		var m map[string]any
		if err := json.Unmarshal(c.doc, &m); err != nil {
			t.Fatal(err)
		}
		for _, path := range c.want {
			if !has(m, path) {
				t.Errorf("%s record lacks %s", c.name, path)
			}
		}
	}
	a.IDs = nil
	if _, err := CVERecord(a); err != ErrNoCVE {
		t.Errorf("CVERecord without a CVE id: %v, want ErrNoCVE", err)
	}
	if got := FileName("VULTRON-7Q3X"); got != "vultron-7q3x.json" {
		t.Errorf("FileName = %s", got)
	}
}

// has reports whether a dotted path names a present, non-empty member.
func has(m map[string]any, path string) bool {
	var cur any = m
	for _, k := range splitDots(path) {
		obj, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = obj[k]; !ok || cur == nil {
			return false
		}
	}
	if l, ok := cur.([]any); ok {
		return len(l) > 0
	}
	return true
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// TestClippedTextKeepsWholeCharacters: a title or description longer than
// a record allows is cut between characters, never inside one, so that a
// record says no replacement character where the text had a letter.
func TestClippedTextKeepsWholeCharacters(t *testing.T) {
	a := example()
	a.Title = strings.Repeat("a", 119) + strings.Repeat("é", 200) // 119 + 400 bytes
	a.Summary = strings.Repeat("ü", 3000)                         // 6000 bytes
	a.Details = ""
	tests := []struct {
		name  string
		build func(*Advisory) ([]byte, error)
		texts func(m map[string]any) []string
	}{
		{"CVE", CVERecord, func(m map[string]any) []string {
			cna := m["containers"].(map[string]any)["cna"].(map[string]any)
			return []string{cna["title"].(string), cna["descriptions"].([]any)[0].(map[string]any)["value"].(string)}
		}},
		{"OSV", OSV, func(m map[string]any) []string { return []string{m["summary"].(string)} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.build(a)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			for _, s := range tt.texts(m) {
				if strings.ContainsRune(s, utf8.RuneError) {
					t.Errorf("%s record text ends in a broken character: …%q", tt.name, s[max(0, len(s)-12):])
				}
			}
		})
	}
}

// TestCPENames: a CPE name in its formatted-string form (CPE 2.3: eleven
// attributes, each a value of letters, digits, "-", "." and "_", other
// printable characters escaped with a backslash, "*" or "?" wildcards at
// its ends, or ANY "*" or NA "-"; the language a tag such as en or en-US)
// or its URI form (CPE 2.2) is one, and the documents name a product by
// its CPE only when it is one: CSAF and CVE JSON accept no other.
func TestCPENames(t *testing.T) {
	for _, tc := range []struct {
		cpe  string
		want bool
	}{
		{"cpe:2.3:a:vendor:widget_lite:1.0:*:*:*:*:*:*:*", true},
		{`cpe:2.3:a:notepad-plus-plus:notepad\+\+:8.6.2:*:*:*:*:*:*:*`, true},
		{"cpe:2.3:o:vendor:firmware:1.?:-:*:en-US:*:*:x86:*", true},
		{"cpe:2.3:h:vendor:*router*:-:*:*:*:*:*:*:*", true},
		{"cpe:/a:vendor:widget:1.0", true},
		{"cpe:/a:vendor:widget%20lite:1.0::~~~~x86~", true},
		{"cpe:2.3:a:vendor:widget++:1.0:*:*:*:*:*:*:*", false},     // "+" not escaped
		{"cpe:2.3:a:ven/dor:widget:1.0:*:*:*:*:*:*:*", false},      // "/" not escaped
		{"cpe:2.3:a:vendor:widget:1.0:*:*:english:*:*:*:*", false}, // no language tag
		{"cpe:2.3:a:vendor:widget:1.0:*:*:*:*:*:*", false},         // ten attributes
		{"cpe:2.3:a:vendor:wid*get:1.0:*:*:*:*:*:*:*", false},      // a wildcard inside
		{"cpe:2.3:a:vendor:widget:1.0:*:*:*:*:*:*:*\\", false},
		{"cpe:/a:vendor:widget:1.0:!!", false},
		{"cpe:widget", false},
	} {
		if got := IsCPE(tc.cpe); got != tc.want {
			t.Errorf("IsCPE(%q) = %v, want %v", tc.cpe, got, tc.want)
		}
	}
	a := example()
	a.Products[2].CPE = "cpe:2.3:a:vendor:widget++:1.0:*:*:*:*:*:*:*"
	for name, build := range map[string]func(*Advisory) ([]byte, error){"CSAF": CSAF, "CVE": CVERecord} {
		b, err := build(a)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("widget++")) {
			t.Errorf("the %s document names a product by a CPE that is none:\n%s", name, b)
		}
	}
}

// TestTextKeepsComparisons: Text strips HTML tags and nothing else, so
// that a summary or details written as text keeps its comparisons of
// versions and lengths; HTML still reads as its text.
func TestTextKeepsComparisons(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Versions < 4.2.1 are affected; later ones (> 4.2.0) are not.", "Versions < 4.2.1 are affected; later ones (> 4.2.0) are not."},
		{"A length <= 16 or >= 4096 is not checked.", "A length <= 16 or >= 4096 is not checked."},
		{"if (n<0 || n>max) return", "if (n<0 || n>max) return"},
		{"<p>The parser of Widget &lt; 4.2.1 trusts a <em>length</em>.</p><p>Upgrade.</p>", "The parser of Widget < 4.2.1 trusts a length.\n\nUpgrade."},
		{"Line one<br/>line two <!-- a comment --> end", "Line one\nline two  end"},
	} {
		if got := Text(tc.in); got != tc.want {
			t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	a := example()
	a.Details = "Widget Server < 4.2.1 trusts a length field > 16 bits."
	b, err := CSAF(a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`Widget Server \u003c 4.2.1 trusts a length field \u003e 16 bits.`)) {
		t.Errorf("the CSAF description lost the details' text:\n%s", b)
	}
}
