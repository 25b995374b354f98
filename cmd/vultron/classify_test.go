package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func classifyCapture(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := &environment{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	code := run(context.Background(), env, args)
	return code, out.String(), errOut.String()
}

func writeDoc(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestClassifyCommand(t *testing.T) {
	dir := t.TempDir()
	offer := writeDoc(t, dir, "offer.json", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","actor":"https://x/a","object":{"type":"VulnerabilityReport","id":"https://x/r"}}`)
	legacy := writeDoc(t, dir, "legacy.json", `{"@context":"https://www.w3.org/ns/activitystreams","asType":"Offer"}`)
	bare := writeDoc(t, dir, "bare.json", `{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","object":"https://x/unknown"}`)

	code, out, _ := classifyCapture(t, "classify", offer, legacy, bare)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := offer + "\tSUBMIT_REPORT\n" +
		legacy + "\tREFUSED: $.asType: asType is not an AS2 property: use type\n" +
		bare + "\tUNKNOWN_UNRESOLVABLE_OBJECT\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}

	code, out, _ = classifyCapture(t, "classify", "--json", offer, bare)
	if code != 0 {
		t.Fatalf("--json exit %d", code)
	}
	var results []classifyResult
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("--json output is not a JSON array: %v\n%s", err, out)
	}
	if len(results) != 2 || results[0].Semantic != "SUBMIT_REPORT" || results[0].Messages != "RS" ||
		results[1].Unresolved != "https://x/unknown" {
		t.Errorf("--json results: %+v", results)
	}
}

func TestClassifyCommandErrors(t *testing.T) {
	code, _, errOut := classifyCapture(t, "classify", filepath.Join(t.TempDir(), "missing.json"))
	if code != 1 || !strings.Contains(errOut, "cannot read") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
	code, _, errOut = classifyCapture(t, "classify")
	if code != 2 || !strings.Contains(errOut, "needs at least one file") {
		t.Errorf("no files: exit %d, stderr %q", code, errOut)
	}
}
