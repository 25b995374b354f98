//go:build conformance

package federation_test

import (
	"testing"

	"github.com/openvultron/vultron/internal/recordschemas"
)

// TestConformancePublishedRecords runs the whole publication network
// (publicationNetwork) and checks the CSAF document, CVE record and OSV
// record the vendor's node served against their official schemas. A CVE
// record without its metadata must fail them: the schemas judge.
func TestConformancePublishedRecords(t *testing.T) {
	schemas := recordschemas.Schemas(t)
	if err := recordschemas.Validate(schemas, "cve", []byte(`{"dataType":"CVE_RECORD","dataVersion":"5.1","containers":{}}`)); err == nil {
		t.Fatal("a CVE record without cveMetadata passed the official schema")
	}
	docs := publicationNetwork(t)
	for _, format := range []string{"csaf", "cve", "osv"} {
		if err := recordschemas.Validate(schemas, format, docs[format]); err != nil {
			t.Errorf("served by the vendor's node: %v\n%s", err, docs[format])
		}
	}
}
