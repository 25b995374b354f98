//go:build conformance

package vocab

// The tests in this file check the parser and the classifier against the
// reference implementation's wire corpus, third-party material that stays
// outside the repository. They build only with the conformance tag and run
// with `make conformance`, which sets VULTRON_CONFORMANCE to the directory
// holding corpus/ (../shared by default).

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/openvultron/vultron/internal/recordschemas"
)

// conformanceCorpus returns $VULTRON_CONFORMANCE/corpus, or stops the test
// with a sentence saying what is missing.
func conformanceCorpus(t testing.TB) string {
	t.Helper()
	return recordschemas.Material(t, "corpus", "reference corpus")
}

// corpusFiles lists every JSON file of both corpus folders.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"vultron-wire", "vultron-2023"} {
		m, err := filepath.Glob(filepath.Join(conformanceCorpus(t), sub, "*.json"))
		if err != nil {
			t.Fatalf("glob: %v", err)
		}
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Fatalf("no corpus files found")
	}
	return files
}

func readCorpusFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return data
}

// TestConformanceWireCorpus classifies every current-format document of
// the reference corpus as its expected.tsv says.
func TestConformanceWireCorpus(t *testing.T) {
	dir := filepath.Join(conformanceCorpus(t), "vultron-wire")
	for _, row := range readTSV(t, filepath.Join(dir, "expected.tsv")) {
		t.Run(row["file"], func(t *testing.T) {
			doc, err := Parse(readCorpusFile(t, filepath.Join(dir, row["file"])))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			c := ClassifyDocument(doc, nil)
			if string(c.Semantic) != row["expected_semantic"] {
				t.Errorf("semantic = %s (%s), want %s", c.Semantic, c.Reason, row["expected_semantic"])
			}
			if got := c.FormalMessages(); got != row["formal_message"] {
				t.Errorf("formal messages = %q, want %q", got, row["formal_message"])
			}
		})
	}
}

// TestConformanceLegacyCorpus checks that no 2023 document of the
// reference corpus is taken for a different message: each is understood
// as intended, left unknown with a reason, or refused with a message.
func TestConformanceLegacyCorpus(t *testing.T) {
	dir := filepath.Join(conformanceCorpus(t), "vultron-2023")
	for _, row := range readTSV(t, filepath.Join(dir, "intended.tsv")) {
		t.Run(row["file"], func(t *testing.T) {
			want := row["intended_semantic"]
			doc, err := Parse(readCorpusFile(t, filepath.Join(dir, row["file"])))
			if err != nil {
				var pe *ParseError
				if !errors.As(err, &pe) || pe.Msg == "" {
					t.Fatalf("refusal is not a *ParseError with a message: %v", err)
				}
				return
			}
			c := ClassifyDocument(doc, nil)
			switch {
			case string(c.Semantic) == want:
			case c.Semantic == UnknownUnresolvableObject && c.Unresolved && c.Reason != "":
			case c.Semantic == Unknown && c.Reason != "":
			default:
				t.Errorf("classified as %s, intended %s", c.Semantic, want)
			}
		})
	}
}

// TestConformanceLegacyRefusalReasons pins the refusal messages of
// representative 2023 documents of the reference corpus: each says what
// to write instead.
func TestConformanceLegacyRefusalReasons(t *testing.T) {
	dir := filepath.Join(conformanceCorpus(t), "vultron-2023")
	tests := []struct{ file, want string }{
		{"013_rmclosereport.json", "unknown activity type RmCloseReport"},
		{"008_create.json", "$.asType: asType is not an AS2 property: use type"},
		{"005_caseparticipant.json", "$.participantStatus: participantStatus is the 2023 name: use participantStatuses"},
		{"038_casestatus.json", "$.pxaState: CS_PUBLIC_AWARE__NO_EXPLOIT__NO_ATTACKS is the 2023 spelling of a case state: use Pxa"},
		{"049_participantstatus.json", "$.vfdState: CS_VENDOR_AWARE__FIX_READY__FIX_DEPLOYED is the 2023 spelling of a case state: use VFD"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse(readCorpusFile(t, filepath.Join(dir, tt.file)))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConformanceParseProperties runs the checks of FuzzParse (decoders
// agree, refusals are *ParseError, accepted documents round-trip) on every
// corpus document, and requires every current-format one to parse.
func TestConformanceParseProperties(t *testing.T) {
	for _, path := range corpusFiles(t) {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			data := readCorpusFile(t, path)
			if filepath.Base(filepath.Dir(path)) == "vultron-wire" {
				if _, err := Parse(data); err != nil {
					t.Fatalf("Parse: %v", err)
				}
			}
			checkParseProperties(t, data)
		})
	}
}

// TestConformanceSchemasAcceptWireCorpus checks that document.json accepts
// every current-format corpus document and its re-serialisation.
func TestConformanceSchemasAcceptWireCorpus(t *testing.T) {
	s := compileSchema(t, "document.json")
	files, err := filepath.Glob(filepath.Join(conformanceCorpus(t), "vultron-wire", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no wire corpus files: %v", err)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			data := readCorpusFile(t, path)
			checkSchemaAccepts(t, s, data, marshalParsed(t, data))
		})
	}
}
