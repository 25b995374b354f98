package vultron

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDeployHealthChecksProbeReadiness checks that every health check the
// deployment files give a node asks /readyz, which answers 200 only while
// the node's store answers, and not /healthz, which a process cut off
// from its database still answers: an orchestrator waiting for healthy
// nodes would otherwise send work to one that cannot store it.
func TestDeployHealthChecksProbeReadiness(t *testing.T) {
	files, err := filepath.Glob("deploy/*")
	if err != nil {
		t.Fatal(err)
	}
	checks := 0
	for _, f := range files {
		if !strings.HasSuffix(f, ".yaml") && filepath.Base(f) != "Dockerfile" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if !strings.Contains(line, "curl") || !strings.Contains(line, "127.0.0.1:7001/") {
				continue
			}
			checks++
			if !strings.Contains(line, "/readyz") {
				t.Errorf("%s:%d: the health check does not ask /readyz: %s", f, i+1, strings.TrimSpace(line))
			}
		}
	}
	if checks < 3 {
		t.Errorf("found %d health checks in deploy/, want those of the Dockerfile and both compose files", checks)
	}
}
