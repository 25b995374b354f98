//go:build conformance

package advisory

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaDir returns the official schemas kept beside the repository in
// $VULTRON_CONFORMANCE/schemas (make conformance sets it).
func schemaDir(t *testing.T) string {
	t.Helper()
	root := os.Getenv("VULTRON_CONFORMANCE")
	if root == "" {
		t.Fatal("VULTRON_CONFORMANCE is not set: run make conformance, or set it to the directory that holds schemas/")
	}
	dir := filepath.Join(root, "schemas")
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("no schemas at %s: set VULTRON_CONFORMANCE to the directory that holds schemas/ (csaf-2.0, cve-5, osv)", dir)
	}
	return dir
}

// compile compiles the schema file at path; urls maps the https ids of
// the schemas it references to files beside it.
func compile(t *testing.T, path string, urls map[string]string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	for id, file := range urls {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile(path)
	if err != nil {
		t.Fatalf("compile %s: %v", path, err)
	}
	return s
}

// TestConformanceRecordSchemas checks the documents the node derives
// against the official schemas: CVE JSON 5 (bundled), OSV 1.7 and CSAF
// 2.0 with the FIRST CVSS schemas it references.
func TestConformanceRecordSchemas(t *testing.T) {
	dir := schemaDir(t)
	first := filepath.Join(dir, "csaf-2.0", "first")
	schemas := map[string]*jsonschema.Schema{
		"cve": compile(t, filepath.Join(dir, "cve-5", "CVE_Record_Format_bundled.json"), nil),
		"osv": compile(t, filepath.Join(dir, "osv", "schema.json"), nil),
		"csaf": compile(t, filepath.Join(dir, "csaf-2.0", "csaf_json_schema.json"), map[string]string{
			"https://www.first.org/cvss/cvss-v2.0.json": filepath.Join(first, "cvss-v2.0.json"),
			"https://www.first.org/cvss/cvss-v3.0.json": filepath.Join(first, "cvss-v3.0.json"),
			"https://www.first.org/cvss/cvss-v3.1.json": filepath.Join(first, "cvss-v3.1.json"),
		}),
	}
	variants := map[string]func(*Advisory){
		"full":        func(*Advisory) {},
		"no products": func(a *Advisory) { a.Products = nil },
		"draft":       func(a *Advisory) { a.Draft = true },
	}
	for name, edit := range variants {
		a := example()
		edit(a)
		for format, build := range map[string]func(*Advisory) ([]byte, error){"csaf": CSAF, "cve": CVERecord, "osv": OSV} {
			t.Run(name+"/"+format, func(t *testing.T) {
				b, err := build(a)
				if err != nil {
					t.Fatal(err)
				}
				doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				if err := schemas[format].Validate(doc); err != nil {
					t.Errorf("%s does not pass its official schema: %v\n%s", format, err, b)
				}
			})
		}
	}
}
