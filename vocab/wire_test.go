package vocab

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

var updateTestdata = flag.Bool("update", false, "rewrite testdata/wire from the examples of wire_examples_test.go")

// wireDir holds the project's own wire examples and expected.tsv.
const wireDir = "testdata/wire"

// wireColumns are the columns of testdata/wire/expected.tsv. A cell with
// nothing to say holds "-".
var wireColumns = []string{"file", "format", "shape", "held", "expected", "messages", "reason"}

// wireRow is one row of expected.tsv.
type wireRow struct {
	File     string
	Format   string   // formatCurrent or format2023
	Shape    string   // what the document is, for a reader of the table
	Held     []string // files whose top-level objects the node holds
	Expected string   // a Semantic, or refused
	Messages string   // Classification.FormalMessages
	Reason   string   // Classification.Reason, or the refusal's text
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func undash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

// renderWire builds the contents of testdata/wire, file name to bytes,
// from the examples.
func renderWire(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var rows []string
	for _, ex := range wireExamples(t) {
		if _, dup := out[ex.file]; dup {
			t.Fatalf("two examples are named %s", ex.file)
		}
		var data []byte
		switch {
		case ex.object != nil && ex.raw == "":
			b, err := Marshal(ex.object)
			if err != nil {
				t.Fatalf("%s: %v", ex.file, err)
			}
			data = b
		case ex.object == nil && ex.raw != "":
			data = []byte(ex.raw)
		default:
			t.Fatalf("%s: an example has either an object or a raw document", ex.file)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, compactJSON(t, ex.file, data), "", "  "); err != nil {
			t.Fatalf("%s: %v", ex.file, err)
		}
		pretty.WriteByte('\n')
		out[ex.file] = pretty.Bytes()
		messages := ex.messages
		if messages == "" && ex.want != refused {
			messages = "-" // a bare object carries no message
		}
		cells := []string{ex.file, ex.format, shapeOf(t, ex.file, data), strings.Join(ex.held, ","), ex.want, messages, ex.reason}
		for i, c := range cells {
			if strings.ContainsAny(c, "\t\n") {
				t.Fatalf("%s: cell %s holds a tab or a newline", ex.file, wireColumns[i])
			}
			cells[i] = dash(c)
		}
		rows = append(rows, strings.Join(cells, "\t"))
	}
	sort.Strings(rows)
	out["expected.tsv"] = []byte(strings.Join(wireColumns, "\t") + "\n" + strings.Join(rows, "\n") + "\n")
	return out
}

func compactJSON(t testing.TB, name string, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		t.Fatalf("%s is not JSON: %v", name, err)
	}
	return b.Bytes()
}

// shapeOf describes a document as Type(Type(...)) with its target,
// context and origin, <iri> standing for a bare reference.
func shapeOf(t testing.TB, name string, data []byte) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	s := shapeValue(m)
	for _, k := range []string{"target", "context", "origin"} {
		if v, ok := m[k]; ok {
			s += " " + k + "=" + shapeValue(v)
		}
	}
	return s
}

func shapeValue(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "<iri>"
	}
	typ, _ := m["type"].(string)
	if typ == "" {
		if at, ok := m["asType"].(string); ok {
			typ = "asType:" + at
		} else {
			typ = "?"
		}
	}
	if o, ok := m["object"]; ok {
		return typ + "(" + shapeValue(o) + ")"
	}
	for _, k := range []string{"oneOf", "anyOf"} {
		if opts, ok := m[k].([]any); ok {
			parts := make([]string, 0, len(opts))
			for _, o := range opts {
				parts = append(parts, shapeValue(o))
			}
			return typ + "(" + k + ":" + strings.Join(parts, ",") + ")"
		}
	}
	return typ
}

// TestWireTestdataCurrent checks that testdata/wire holds exactly what
// wireExamples builds, so the files cannot drift from this package's
// types and builders. With -update it rewrites them.
func TestWireTestdataCurrent(t *testing.T) {
	want := renderWire(t)
	if *updateTestdata {
		if err := os.MkdirAll(wireDir, 0o755); err != nil {
			t.Fatal(err)
		}
		old, err := filepath.Glob(filepath.Join(wireDir, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range old {
			if _, keep := want[filepath.Base(p)]; !keep {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(wireDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	entries, err := os.ReadDir(wireDir)
	if err != nil {
		t.Fatalf("read %s: %v (go test ./vocab -run TestWireTestdataCurrent -update writes it)", wireDir, err)
	}
	onDisk := map[string]bool{}
	for _, e := range entries {
		onDisk[e.Name()] = true
		if _, ok := want[e.Name()]; !ok {
			t.Errorf("%s/%s is not built by wireExamples: remove it or run with -update", wireDir, e.Name())
		}
	}
	for name, data := range want {
		if !onDisk[name] {
			t.Errorf("%s/%s is missing: run go test ./vocab -run TestWireTestdataCurrent -update", wireDir, name)
			continue
		}
		got, err := os.ReadFile(filepath.Join(wireDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s/%s differs from what wireExamples builds: run go test ./vocab -run TestWireTestdataCurrent -update", wireDir, name)
		}
	}
}

// readTSV reads a tab-separated table whose first line names the columns;
// every row must have as many cells as the header.
func readTSV(t testing.TB, path string) []map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("%s has no rows", path)
	}
	header := strings.Split(lines[0], "\t")
	rows := make([]map[string]string, 0, len(lines)-1)
	for i, line := range lines[1:] {
		cells := strings.Split(line, "\t")
		if len(cells) != len(header) {
			t.Fatalf("%s line %d has %d cells, want %d", path, i+2, len(cells), len(header))
		}
		row := make(map[string]string, len(header))
		for j, h := range header {
			row[h] = cells[j]
		}
		rows = append(rows, row)
	}
	return rows
}

// wireTable reads testdata/wire/expected.tsv.
func wireTable(t testing.TB) []wireRow {
	t.Helper()
	var out []wireRow
	for _, r := range readTSV(t, filepath.Join(wireDir, "expected.tsv")) {
		row := wireRow{File: r["file"], Format: r["format"], Shape: r["shape"], Expected: r["expected"],
			Messages: undash(r["messages"]), Reason: undash(r["reason"])}
		if h := undash(r["held"]); h != "" {
			row.Held = strings.Split(h, ",")
		}
		if row.File == "" || row.Expected == "" || (row.Format != formatCurrent && row.Format != format2023) {
			t.Fatalf("expected.tsv: incomplete row %v", r)
		}
		out = append(out, row)
	}
	return out
}

func readWire(t testing.TB, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(wireDir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return data
}

// wireResolver holds the top-level objects of the given files.
func wireResolver(t testing.TB, files []string) Resolver {
	t.Helper()
	if len(files) == 0 {
		return nil
	}
	r := mapResolver{}
	for _, f := range files {
		d, err := Parse(readWire(t, f))
		if err != nil {
			t.Fatalf("held file %s: %v", f, err)
		}
		r[d.Object.Common().ID] = d.Object
	}
	return r
}

// TestWireTestdata classifies every document of testdata/wire and checks
// the semantic, the formal messages and the reason of expected.tsv, or
// that Parse refuses it with exactly the reason given.
func TestWireTestdata(t *testing.T) {
	for _, row := range wireTable(t) {
		t.Run(row.File, func(t *testing.T) {
			doc, err := Parse(readWire(t, row.File))
			if row.Expected == refused {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("Parse error = %v, want a *ParseError", err)
				}
				if err.Error() != row.Reason {
					t.Errorf("refusal = %q, want %q", err, row.Reason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			c := ClassifyDocument(doc, wireResolver(t, row.Held))
			if string(c.Semantic) != row.Expected {
				t.Errorf("semantic = %s (%s), want %s", c.Semantic, c.Reason, row.Expected)
			}
			if got := c.FormalMessages(); got != dash(row.Messages) {
				t.Errorf("formal messages = %q, want %q", got, dash(row.Messages))
			}
			if c.Reason != row.Reason {
				t.Errorf("reason = %q, want %q", c.Reason, row.Reason)
			}
			if c.Unresolved != (c.Semantic == UnknownUnresolvableObject) || c.Unresolved != (c.UnresolvedID != "") {
				t.Errorf("unresolved = %v with id %q for %s", c.Unresolved, c.UnresolvedID, c.Semantic)
			}
		})
	}
}

// TestWireTestdataCoverage checks that testdata/wire exercises every
// pattern of the classifier, every semantic it can return, a bare object
// of every Vultron type (one per schema file) and of every actor type,
// and refusals of 2023 shapes.
func TestWireTestdataCoverage(t *testing.T) {
	pats := patterns()
	matched := make([]bool, len(pats))
	semantics := map[string]bool{}
	refusals := 0
	for _, row := range wireTable(t) {
		semantics[row.Expected] = true
		if row.Expected == refused {
			if row.Format == format2023 {
				refusals++
			}
			continue
		}
		doc, err := Parse(readWire(t, row.File))
		if err != nil {
			t.Fatalf("%s: %v", row.File, err)
		}
		a := doc.Activity()
		if a == nil {
			continue
		}
		c := classifier{r: wireResolver(t, row.Held)}
		for i, p := range pats {
			if p.activity == a.Type && c.match(p, a, 0).ok {
				matched[i] = true
				break // Classify takes the first pattern that matches
			}
		}
	}
	for i, p := range pats {
		if !matched[i] {
			t.Errorf("no document of %s is a %s of %s (the %s pattern)", wireDir, p.activity, p.object, p.sem)
		}
	}
	want := []string{string(EngageCase), string(ChoosePreferredEmbargo), string(Unknown), string(UnknownUnresolvableObject), refused,
		string(AckEmbargo), string(AckCaseStatus), string(AckInquiry), string(ReportError), string(EmbargoError), string(CaseStatusError), string(GeneralError)}
	for _, p := range pats {
		want = append(want, string(p.sem))
	}
	err := fs.WalkDir(Schemas(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := strings.TrimSuffix(p, ".json")
		// Activity and Actor are checked below type by type, and the
		// replies by their semantics; the other files hold shared
		// definitions, not a type.
		if !slices.Contains([]string{"Activity", "Actor", "Acknowledgement", "ProtocolError", "common", "document", "enums", "object"}, name) {
			want = append(want, string(ObjectSemantic(name)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, actor := range []string{"Person", "Organization", "Service", "Application", "Group"} {
		want = append(want, string(ObjectSemantic(actor)))
	}
	for _, s := range want {
		if !semantics[s] {
			t.Errorf("no document of %s is expected to be %s", wireDir, s)
		}
	}
	if refusals == 0 {
		t.Errorf("no 2023-shaped document of %s is refused", wireDir)
	}
}

// TestRoundTrip checks that every document Parse accepts serialises to
// the Vultron form, parses back to the same value and serialises to the
// same bytes again.
func TestRoundTrip(t *testing.T) {
	for _, row := range wireTable(t) {
		if row.Expected == refused {
			continue
		}
		t.Run(row.File, func(t *testing.T) {
			doc, err := Parse(readWire(t, row.File))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			checkRoundTrip(t, doc)
		})
	}
}

// checkRoundTrip checks that a parsed document serialises in the Vultron
// form to bytes that parse to the same value and serialise the same again.
func checkRoundTrip(t *testing.T, doc *Document) {
	t.Helper()
	out, err := Marshal(doc.Object)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.HasPrefix(out, []byte(`{"@context":"`+VultronContext+`",`)) {
		t.Errorf("serialised document does not start with the Vultron context: %.80s", out)
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
}

// wireFiles lists every JSON document of testdata/wire.
func wireFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(wireDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no documents in %s: %v", wireDir, err)
	}
	return files
}
