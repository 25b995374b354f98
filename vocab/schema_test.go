package vocab

import (
	"bytes"
	"io/fs"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const schemaBase = "https://vultron.invalid/schemas/"

func compileSchema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	err := fs.WalkDir(Schemas(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(Schemas(), p)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("schema %s is not JSON: %v", p, err)
		}
		return c.AddResource(schemaBase+p, doc)
	})
	if err != nil {
		t.Fatalf("load schemas: %v", err)
	}
	s, err := c.Compile(schemaBase + name)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return s
}

// TestSchemasAcceptWire checks that document.json accepts every document
// of testdata/wire that Parse accepts, once serialised, and the file
// itself when it is in the current wire format (the 2023 aliases Parse
// still reads are not current spellings, so the schemas refuse them).
func TestSchemasAcceptWire(t *testing.T) {
	s := compileSchema(t, "document.json")
	for _, row := range wireTable(t) {
		if row.Expected == refused {
			continue
		}
		t.Run(row.File, func(t *testing.T) {
			data := readWire(t, row.File)
			docs := [][]byte{marshalParsed(t, data)}
			if row.Format == formatCurrent {
				docs = append(docs, data)
			}
			checkSchemaAccepts(t, s, docs...)
		})
	}
}

// marshalParsed parses data and serialises it again.
func marshalParsed(t *testing.T, data []byte) []byte {
	t.Helper()
	doc, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	out, err := Marshal(doc.Object)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	return out
}

// checkSchemaAccepts validates each document against s.
func checkSchemaAccepts(t *testing.T, s *jsonschema.Schema, docs ...[]byte) {
	t.Helper()
	for _, b := range docs {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("unmarshal: %v", err)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("invalid: %v\n%s", err, b)
		}
	}
}

func TestSchemasRefuse(t *testing.T) {
	s := compileSchema(t, "document.json")
	tests := []struct{ name, doc string }{
		{"asType", `{"@context":"https://www.w3.org/ns/activitystreams","asType":"Offer","type":"Offer"}`},
		{"old role", `{"@context":"https://www.w3.org/ns/activitystreams","type":"CaseParticipant","caseRoles":["CVD_ROLE_VENDOR"]}`},
		{"old pxa", `{"@context":"https://www.w3.org/ns/activitystreams","type":"CaseStatus","pxaState":"CS_PUBLIC_AWARE__NO_EXPLOIT__NO_ATTACKS"}`},
		{"nested bad rm", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","rmState":"OPEN"}}`},
		{"no context", `{"type":"Note"}`},
		{"wrong context", `{"@context":"https://example.org/","type":"Note"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if err := s.Validate(v); err == nil {
				t.Errorf("schema accepted %s", tt.doc)
			}
			if _, err := Parse([]byte(tt.doc)); err == nil {
				t.Errorf("Parse accepted %s", tt.doc)
			}
		})
	}
}

func TestSchemaLookup(t *testing.T) {
	for _, name := range []string{"VulnerabilityReport.json", "VulnerabilityCase.json", "CaseParticipant.json", "ParticipantStatus.json",
		"CaseStatus.json", "EmbargoEvent.json", "CaseProposal.json", "CaseParticipantRole.json", "CaseLedgerEntry.json", "Activity.json", "document.json"} {
		b, ok := Schema(name)
		if !ok || !bytes.Contains(b, []byte(`"$schema": "https://json-schema.org/draft/2020-12/schema"`)) {
			t.Errorf("Schema(%s) missing or not draft 2020-12", name)
		}
	}
	if _, ok := Schema("nope.json"); ok {
		t.Errorf("Schema(nope.json) found")
	}
}

// TestReplySchemas checks that the schemas hold an acknowledgement and an
// error to their shape: a Read or Ignore of an activity needs an actor and
// the message's id, and an error needs its reason.
func TestReplySchemas(t *testing.T) {
	s := compileSchema(t, "document.json")
	const ctx = `"@context":"https://certcc.github.io/Vultron/ns/context.jsonld",`
	tests := []struct {
		name, doc string
		ok        bool
	}{
		{"ack", `{` + ctx + `"type":"Read","actor":"https://a.example/x","inReplyTo":"https://a.example/1","object":{"id":"https://a.example/1","type":"Join","object":"https://a.example/c"}}`, true},
		{"error", `{` + ctx + `"type":"Ignore","actor":"https://a.example/x","summary":"not a participant","object":{"id":"https://a.example/1","type":"Join"}}`, true},
		{"defer is no error", `{` + ctx + `"type":"Ignore","actor":"https://a.example/x","object":{"id":"https://a.example/c","type":"VulnerabilityCase"}}`, true},
		{"error without reason", `{` + ctx + `"type":"Ignore","actor":"https://a.example/x","object":{"id":"https://a.example/1","type":"Join"}}`, false},
		{"error without actor", `{` + ctx + `"type":"Ignore","summary":"no","object":{"id":"https://a.example/1","type":"Join"}}`, false},
		{"ack of an unnamed message", `{` + ctx + `"type":"Read","actor":"https://a.example/x","object":{"type":"Join"}}`, false},
		{"ack with a result that is no status", `{` + ctx + `"type":"Read","actor":"https://a.example/x","object":{"id":"https://a.example/1","type":"Offer"},"result":{"type":"Note"}}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := jsonschema.UnmarshalJSON(strings.NewReader(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(v); (err == nil) != tt.ok {
				t.Errorf("valid = %v (%v), want %v", err == nil, err, tt.ok)
			}
		})
	}
}
