// Package recordschemas compiles, for the conformance tests of
// `make conformance`, the official JSON Schemas of the documents the node
// publishes: CSAF 2.0 (with the FIRST CVSS schemas it references), CVE
// JSON 5 (bundled) and OSV. The schemas are third-party material kept
// beside the repository in $VULTRON_CONFORMANCE/schemas, never copied into
// it; Material finds any part of that material. It is used by tests only.
package recordschemas

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Material returns the directory sub of the third-party conformance
// material, $VULTRON_CONFORMANCE/sub (make conformance sets
// VULTRON_CONFORMANCE), and fails the test with a sentence saying what is
// missing (what names what sub holds).
func Material(t testing.TB, sub, what string) string {
	t.Helper()
	root := os.Getenv("VULTRON_CONFORMANCE")
	if root == "" {
		t.Fatalf("VULTRON_CONFORMANCE is not set: run make conformance, or set it to the directory that holds the %s in %s/", what, sub)
	}
	dir := filepath.Join(root, sub)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("no %s at %s: set VULTRON_CONFORMANCE to the directory that holds %s/", what, dir, sub)
	}
	return dir
}

// Dir returns $VULTRON_CONFORMANCE/schemas, the official schemas.
func Dir(t testing.TB) string {
	t.Helper()
	return Material(t, "schemas", "official schemas (csaf-2.0, cve-5, osv)")
}

// compile compiles the schema file at path; urls maps the https ids of
// the schemas it references to files beside it, so that nothing is
// fetched.
func compile(path string, urls map[string]string) (*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	for id, file := range urls {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", file, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("add schema %s as %s: %w", file, id, err)
		}
	}
	s, err := c.Compile(path)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", path, err)
	}
	return s, nil
}

// Schemas returns the compiled official schemas by format: "csaf", "cve"
// and "osv".
func Schemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	dir := Dir(t)
	first := filepath.Join(dir, "csaf-2.0", "first")
	files := map[string]struct {
		path string
		urls map[string]string
	}{
		"cve": {path: filepath.Join(dir, "cve-5", "CVE_Record_Format_bundled.json")},
		"osv": {path: filepath.Join(dir, "osv", "schema.json")},
		"csaf": {path: filepath.Join(dir, "csaf-2.0", "csaf_json_schema.json"), urls: map[string]string{
			"https://www.first.org/cvss/cvss-v2.0.json": filepath.Join(first, "cvss-v2.0.json"),
			"https://www.first.org/cvss/cvss-v3.0.json": filepath.Join(first, "cvss-v3.0.json"),
			"https://www.first.org/cvss/cvss-v3.1.json": filepath.Join(first, "cvss-v3.1.json"),
		}},
	}
	out := map[string]*jsonschema.Schema{}
	for format, f := range files {
		s, err := compile(f.path, f.urls)
		if err != nil {
			t.Fatalf("the official %s schema: %v", format, err)
		}
		out[format] = s
	}
	return out
}

// Validate checks a document against the schema of its format and says
// what fails.
func Validate(schemas map[string]*jsonschema.Schema, format string, doc []byte) error {
	s, ok := schemas[format]
	if !ok {
		return fmt.Errorf("no official schema for format %q", format)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("the %s document is not JSON: %w", format, err)
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("the %s document does not pass its official schema: %w", format, err)
	}
	return nil
}
