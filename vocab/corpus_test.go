package vocab

import (
	"bytes"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// corpusDir finds ../shared/corpus: VULTRON_CORPUS if set, otherwise the
// first directory upwards from the working directory that has
// shared/corpus beside it. The corpus is test data that stays outside the
// repository, so a test that cannot find it fails.
func corpusDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("VULTRON_CORPUS"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "corpus")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Fatalf("corpus not found: set VULTRON_CORPUS or check out shared/ beside the repository (searched upwards from %s)", wd)
	return ""
}

// readTable reads a tab-separated corpus table into rows keyed by header.
func readTable(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comma = '\t'
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if len(recs) < 2 {
		t.Fatalf("%s has no rows", path)
	}
	var rows []map[string]string
	for _, rec := range recs[1:] {
		row := map[string]string{}
		for i, h := range recs[0] {
			if i < len(rec) {
				row[h] = rec[i]
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func parseFile(t *testing.T, path string) (*Document, []byte, error) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	doc, err := Parse(data)
	return doc, data, err
}

func TestWireCorpus(t *testing.T) {
	dir := filepath.Join(corpusDir(t), "vultron-wire")
	for _, row := range readTable(t, filepath.Join(dir, "expected.tsv")) {
		t.Run(row["file"], func(t *testing.T) {
			doc, _, err := parseFile(t, filepath.Join(dir, row["file"]))
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

func TestLegacyCorpus(t *testing.T) {
	dir := filepath.Join(corpusDir(t), "vultron-2023")
	for _, row := range readTable(t, filepath.Join(dir, "intended.tsv")) {
		t.Run(row["file"], func(t *testing.T) {
			want := row["intended_semantic"]
			doc, _, err := parseFile(t, filepath.Join(dir, row["file"]))
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

// TestLegacyRefusalReasons pins the refusal messages of representative
// 2023 documents: each says what to write instead.
func TestLegacyRefusalReasons(t *testing.T) {
	dir := filepath.Join(corpusDir(t), "vultron-2023")
	tests := []struct{ file, want string }{
		{"013_rmclosereport.json", "unknown activity type RmCloseReport"},
		{"008_create.json", "$.asType: asType is not an AS2 property: use type"},
		{"005_caseparticipant.json", "$.participantStatus: participantStatus is the 2023 name: use participantStatuses"},
		{"038_casestatus.json", "$.pxaState: CS_PUBLIC_AWARE__NO_EXPLOIT__NO_ATTACKS is the 2023 spelling of a case state: use Pxa"},
		{"049_participantstatus.json", "$.vfdState: CS_VENDOR_AWARE__FIX_READY__FIX_DEPLOYED is the 2023 spelling of a case state: use VFD"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, _, err := parseFile(t, filepath.Join(dir, tt.file))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error = %v, want %q", err, tt.want)
			}
		})
	}
}

// corpusFiles lists every JSON file of both corpus folders.
func corpusFiles(t testing.TB) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"vultron-wire", "vultron-2023"} {
		m, err := filepath.Glob(filepath.Join(corpusDir(t), sub, "*.json"))
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

func TestRoundTrip(t *testing.T) {
	parsed := 0
	for _, path := range corpusFiles(t) {
		t.Run(filepath.Base(filepath.Dir(path))+"/"+filepath.Base(path), func(t *testing.T) {
			doc, _, err := parseFile(t, path)
			if err != nil {
				if strings.Contains(path, "vultron-wire") {
					t.Fatalf("Parse: %v", err)
				}
				return // refused legacy documents have nothing to round-trip
			}
			parsed++
			out, err := Marshal(doc.Object)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.HasPrefix(out, []byte(`{"@context":"`+VultronContext+`","id":`)) {
				t.Errorf("serialised document does not start with the Vultron context and id: %.80s", out)
			}
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("Parse(Marshal): %v\n%s", err, out)
			}
			if !reflect.DeepEqual(doc, again) {
				t.Errorf("parse → marshal → parse changed the value\n%s", out)
			}
			out2, err := Marshal(again.Object)
			if err != nil || !bytes.Equal(out, out2) {
				t.Errorf("serialisation is not stable: %v", err)
			}
		})
	}
	if parsed < 60 {
		t.Errorf("only %d corpus files parsed", parsed)
	}
}
