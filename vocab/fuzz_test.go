package vocab

import (
	"bytes"
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts
// serialises to a document that parses to the same value and serialises
// to the same bytes. The corpus files are the seeds.
func FuzzParse(f *testing.F) {
	for _, path := range corpusFiles(f) {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatalf("read %s: %v", path, err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc, err := Parse(data)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("error is a %T, not a *ParseError: %v", err, err)
			}
			return
		}
		_ = ClassifyDocument(doc, nil)
		out, err := Marshal(doc.Object)
		if err != nil {
			t.Fatalf("Marshal of a parsed document: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal(doc)): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(doc, again) {
			t.Fatalf("parse → marshal → parse changed the value\n%s", out)
		}
		out2, err := Marshal(again.Object)
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("serialisation not stable: %v", err)
		}
	})
}
