//go:build conformance

package advisory

import (
	"testing"

	"github.com/openvultron/vultron/internal/recordschemas"
)

// TestConformanceRecordSchemas checks the documents the node derives
// against the official schemas: CVE JSON 5 (bundled), OSV 1.7 and CSAF
// 2.0 with the FIRST CVSS schemas it references.
func TestConformanceRecordSchemas(t *testing.T) {
	schemas := recordschemas.Schemas(t)
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
				if err := recordschemas.Validate(schemas, format, b); err != nil {
					t.Errorf("%v\n%s", err, b)
				}
			})
		}
	}
}
