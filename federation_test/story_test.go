package federation_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// storyScript returns the path of deploy/story.sh, the fv story that both
// `make demo` (deploy/demo.sh) and the compose deployment's story service
// run.
func storyScript(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "deploy", "story.sh")
}

// runStory runs the story script with /bin/sh, as the compose story
// container does (a POSIX shell, not bash), with env added to the test's
// environment. The context bounds it in case the script's own bounds fail.
func runStory(t *testing.T, env []string, limit time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", storyScript(t))
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the story script was still running after %s, its own bounds did not stop it:\n%s", limit, out)
	}
	return string(out), err
}

// storyCaseRe finds the line where the story names the case it opened.
var storyCaseRe = regexp.MustCompile(`(?m)^story case: (\S+)$`)

// TestStoryScript runs the fv story of deploy/story.sh against three local
// nodes twice, as the compose story does when it is run again on kept
// volumes: the second run must find the case it opened itself, not the first
// run's closed case, and each run must end with the three nodes agreeing on
// the case's ledger and final state.
func TestStoryScript(t *testing.T) {
	bin := buildVultron(t)
	// No default embargo: the story proposes one itself.
	c := newCluster(t, bin, "finder:Person --default-embargo 0d", "vendor:Organization --default-embargo 0d", "coordinator:Service --default-embargo 0d")
	var env []string
	for _, name := range []string{"finder", "vendor", "coordinator"} {
		n := c.node(name)
		prefix := strings.ToUpper(name)
		env = append(env, prefix+"_URL="+n.url, prefix+"_TOKEN_FILE="+filepath.Join(n.dir, "api-token"))
	}
	env = append(env, "VULTRON="+bin, "STORY_TIMEOUT=30")
	var cases []string
	for run := 1; run <= 2; run++ {
		out, err := runStory(t, env, 5*time.Minute)
		if err != nil {
			t.Fatalf("run %d of deploy/story.sh: %v\n%s", run, err, out)
		}
		m := storyCaseRe.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("run %d does not say which case it opened (a line \"story case: ID\"):\n%s", run, out)
		}
		for _, want := range []string{"== RS: the finder reports", "== CP: the vendor publishes", "on all three nodes; fv story complete"} {
			if !strings.Contains(out, want) {
				t.Errorf("run %d's output lacks %q:\n%s", run, want, out)
			}
		}
		cases = append(cases, m[1])
	}
	if cases[0] == cases[1] {
		t.Fatalf("both runs followed case %s; the second must open and follow its own", cases[0])
	}
	for _, id := range cases {
		cs, ok := c.caseOn("vendor", id)
		if !ok || !cs.Closed {
			t.Errorf("case %s on the vendor's node: found %v, closed %v; want it found and closed", id, ok, cs.Closed)
		}
	}
}

// TestStoryScriptRefuses checks that the story stops with one sentence
// naming what is wrong or what it waited for, within its bound, when it is
// not told where the nodes are or when a node never becomes ready.
func TestStoryScriptRefuses(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "api-token")
	if err := os.WriteFile(token, []byte("not-a-real-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The script never gets as far as running the binary; false fails at
	// once if it did.
	fail, err := exec.LookPath("false")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens at these addresses.
	silent := map[string]string{}
	nodes := []string{"VULTRON=" + fail}
	for _, name := range []string{"finder", "vendor", "coordinator"} {
		silent[name] = "http://" + freeAddr(t)
		p := strings.ToUpper(name)
		nodes = append(nodes, p+"_URL="+silent[name], p+"_TOKEN_FILE="+token)
	}
	// with returns the nodes' settings less the variable drop (if any),
	// plus extra.
	with := func(drop string, extra ...string) []string {
		var out []string
		for _, kv := range nodes {
			if drop == "" || !strings.HasPrefix(kv, drop+"=") {
				out = append(out, kv)
			}
		}
		return append(out, extra...)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want []string
	}{
		{"no vendor URL", with("VENDOR_URL", "STORY_TIMEOUT=2"), []string{"VENDOR_URL"}},
		{"a token file that is not there", with("COORDINATOR_TOKEN_FILE", "COORDINATOR_TOKEN_FILE="+filepath.Join(dir, "missing"), "STORY_TIMEOUT=2"),
			[]string{"COORDINATOR_TOKEN_FILE", filepath.Join(dir, "missing")}},
		{"a timeout that is not a number", with("", "STORY_TIMEOUT=soon"), []string{"STORY_TIMEOUT", "soon"}},
		{"no node answers", with("", "STORY_TIMEOUT=2"), []string{"gave up after 2s", "finder node", silent["finder"] + "/readyz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runStory(t, tc.env, time.Minute)
			if err == nil {
				t.Fatalf("the story succeeded, want a refusal:\n%s", out)
			}
			for _, want := range tc.want {
				if !strings.Contains(out, want) {
					t.Errorf("the refusal does not say %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "== RS") {
				t.Errorf("the story started acting before it refused:\n%s", out)
			}
		})
	}
}
