package federation_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoScript runs deploy/demo.sh, the script behind `make demo`: three
// `vultron serve` processes and the fv story driven by the command line
// only. The script checks that all three nodes end with the same ledger
// and the final state; the test checks that it said so.
func TestDemoScript(t *testing.T) {
	bin := buildVultron(t)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("bash", filepath.Join(root, "deploy", "demo.sh"), bin)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/demo.sh: %v\n%s", err, msg)
	}
	for _, want := range []string{"== RS: the finder reports", "== CP: the vendor publishes", "fv story complete"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, msg)
		}
	}
}
