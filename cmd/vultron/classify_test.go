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

// TestClassifyReplies checks that vultron classify names the replies the
// node sends, as they are on the wire, with the message types each
// carries: the acknowledgements and errors of the four models, the
// vendor's awareness riding on its RK, and a report with an embargo
// proposal.
func TestClassifyReplies(t *testing.T) {
	wire := filepath.Join("..", "..", "vocab", "testdata", "wire")
	want := map[string]string{
		"ack_engage_case.json":            "ACK_REPORT RK",
		"ack_embargo_proposal.json":       "ACK_EMBARGO EK",
		"ack_fix_ready.json":              "ACK_CASE_STATUS CK",
		"ack_note.json":                   "ACK_INQUIRY GK",
		"ack_report_with_embargo.json":    "ACK_REPORT RK|EK|CV",
		"ack_vendor_awareness.json":       "ACK_CASE_STATUS CK",
		"error_engage_case.json":          "REPORT_ERROR RE",
		"error_embargo_proposal.json":     "EMBARGO_ERROR EE",
		"error_fix_ready.json":            "CASE_STATUS_ERROR CE",
		"error_note.json":                 "GENERAL_ERROR GE",
		"submit_report_with_embargo.json": "SUBMIT_REPORT RS|EP",
	}
	var files []string
	for f := range want {
		files = append(files, filepath.Join(wire, f))
	}
	code, out, errOut := classifyCapture(t, append([]string{"classify", "--json"}, files...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var results []classifyResult
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if got := r.Semantic + " " + r.Messages; got != want[filepath.Base(r.File)] {
			t.Errorf("%s: %s (%s), want %s", filepath.Base(r.File), got, r.Reason, want[filepath.Base(r.File)])
		}
	}
	if len(results) != len(want) {
		t.Errorf("%d results, want %d", len(results), len(want))
	}
}
