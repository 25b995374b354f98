package federation_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// csafVerdict is csaf-validate.mjs's verdict on one document.
type csafVerdict struct {
	File    string `json:"file"`
	IsValid bool   `json:"isValid"`
	Tests   int    `json:"tests"`
	Failed  []struct {
		Name   string `json:"name"`
		Errors []any  `json:"errors"`
	} `json:"failed"`
}

// validateCSAF runs secvisogram's csaf-validator-lib (its strict CSAF 2.0
// schema test and every mandatory test of section 6.1, pinned in the
// peer's lockfile) over CSAF documents.
func validateCSAF(t *testing.T, docs map[string][]byte) map[string]csafVerdict {
	t.Helper()
	requirePeer(t)
	dir := t.TempDir()
	args := []string{"peer/csaf-validate.mjs"}
	for name, doc := range docs {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, doc, 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, path)
	}
	cmd := exec.Command("node", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node peer/csaf-validate.mjs: %v\n%s", err, stderr.String())
	}
	verdicts := map[string]csafVerdict{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var v csafVerdict
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("validator output %q: %v", sc.Text(), err)
		}
		verdicts[filepath.Base(v.File)] = v
	}
	if len(verdicts) != len(docs) {
		t.Fatalf("the validator judged %d of %d documents:\n%s", len(verdicts), len(docs), out)
	}
	return verdicts
}

// TestCSAFMandatoryTests runs the validator over the CSAF documents the
// advisory package derives (its golden files: a VEX, a security advisory,
// a base document, a draft) and over a VEX whose affected product lost its
// action statement, which test 6.1.27.10 must catch: the validator runs
// and judges.
func TestCSAFMandatoryTests(t *testing.T) {
	files, err := filepath.Glob("../advisory/testdata/csaf-*.json")
	if err != nil || len(files) < 4 {
		t.Fatalf("the advisory package's CSAF golden files: %v %v", files, err)
	}
	docs := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(f)] = b
	}
	var vex map[string]any
	if err := json.Unmarshal(docs["csaf-vex.json"], &vex); err != nil {
		t.Fatal(err)
	}
	vex["vulnerabilities"].([]any)[0].(map[string]any)["remediations"] = []any{}
	delete(vex["vulnerabilities"].([]any)[0].(map[string]any), "remediations")
	broken, _ := json.Marshal(vex)
	docs["broken-vex.json"] = broken

	verdicts := validateCSAF(t, docs)
	for name, v := range verdicts {
		if name == "broken-vex.json" {
			if v.IsValid || len(v.Failed) == 0 || !strings.Contains(v.Failed[0].Name, "6_1_27_10") {
				t.Errorf("a VEX without an action statement for its affected product passed: %+v", v)
			}
			continue
		}
		if !v.IsValid || v.Tests < 40 {
			t.Errorf("%s: valid %v after %d tests, failed %+v", name, v.IsValid, v.Tests, v.Failed)
		}
	}
}
