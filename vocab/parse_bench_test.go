package vocab

import (
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkParse decodes activities of the wire examples, a report's
// submission and a case's announcement among them: what the inbox does
// with every activity it accepts.
func BenchmarkParse(b *testing.B) {
	for _, name := range []string{"submit_report.json", "announce_case.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "wire", name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
