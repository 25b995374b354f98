package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// walkthroughMarker precedes each block of the README that the walk-through
// test runs.
const walkthroughMarker = "<!-- walkthrough -->"

// readmeWalkthrough returns the shell blocks of the README that follow a
// walkthrough marker, in order.
func readmeWalkthrough(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	readme := filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "README.md")
	f, err := os.Open(readme)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []string
	var cur []string
	state := 0 // 0: prose, 1: marker seen, 2: in a marked block
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case state == 0 && strings.TrimSpace(line) == walkthroughMarker:
			state = 1
		case state == 1 && strings.HasPrefix(line, "```sh"):
			state, cur = 2, nil
		case state == 1 && strings.TrimSpace(line) != "":
			t.Fatalf("README: %s is not followed by a ```sh block but by %q", walkthroughMarker, line)
		case state == 2 && strings.HasPrefix(line, "```"):
			blocks, state = append(blocks, strings.Join(cur, "\n")), 0
		case state == 2:
			cur = append(cur, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("README: no walk-through blocks")
	}
	return blocks
}

// TestReadmeWalkthrough runs the README's walk-through as it stands, block
// by block in one shell, against two real nodes on free loopback ports, and
// checks what each block prints.
func TestReadmeWalkthrough(t *testing.T) {
	blocks := readmeWalkthrough(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "vultron")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	// The README's ports, on this machine free ones.
	free := freeLoopbacks(t, 3)
	ports := map[string]string{"127.0.0.1:7001": free[0], "127.0.0.1:7002": free[1], "127.0.0.1:7003": free[2]}
	var script strings.Builder
	script.WriteString("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n")
	for i, b := range blocks {
		for from, to := range ports {
			b = strings.ReplaceAll(b, from, to)
		}
		fmt.Fprintf(&script, "echo '::step %d'\n%s\n", i+1, b)
	}
	fmt.Fprintf(&script, "echo '::end'\n")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "VULTRON_NODE=", "VULTRON_TOKEN_FILE=", "VULTRON_AS=", "VULTRON_DATA=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the walk-through failed: %v\n%s\nvendor's log:\n%s", err, out, tail(filepath.Join(dir, "vendor.log")))
	}
	steps := regexp.MustCompile(`(?m)^::step \d+$|^::end$`).Split(string(out), -1)[1:]
	if len(steps) != len(blocks)+1 {
		t.Fatalf("the walk-through printed %d steps, want %d:\n%s", len(steps)-1, len(blocks), out)
	}
	// What each block must print, in order within the block.
	want := [][]string{
		{" is ready", " is ready"},
		{"report "},
		{"SQL injection in login", "The login form builds SQL from the user name.", "RECEIVED"},
		{"case ", "RA sent", "recorded in case", "EP sent", "EM PROPOSED"},
		{"EA sent", "EA sent", "EM ACTIVE", "CF sent", "replica", "hosted"},
		{`"orderedItems"`, "pending"},
		{" is ready", "asked to follow", "accepted the Follow of", "/actors/coordinator", "accepted"},
		{"GI sent", "recorded in case", "recorded in case", "is in force", "nothing was published", "GI sent", "recorded in case"},
		{"reached draft", "recorded in case"},
		{"reached reviewed", "EM EXITED", "revision 1 published", "recorded in case", "csaf ", "cve  ", "osv  ", "/vultron-"},
	}
	if len(want) != len(blocks) {
		t.Fatalf("the README has %d walk-through blocks; the test knows what %d of them print: update the test with the README", len(blocks), len(want))
	}
	for i, w := range want {
		got := steps[i]
		at := 0
		for _, s := range w {
			j := strings.Index(got[at:], s)
			if j < 0 {
				t.Errorf("step %d of the walk-through does not print %q (after what came before it):\n%s", i+1, s, got)
				break
			}
			at += j + len(s)
		}
	}
}

// TestReadmeWalkthroughStartsFromAClone checks that the walk-through,
// which runs bin/vultron from the checkout, says before its first block how
// that binary is made (the Makefile's build target writes it) and that a
// node make run started holds the port the walk-through's vendor takes.
func TestReadmeWalkthroughStartsFromAClone(t *testing.T) {
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(strings.TrimSpace(string(root)))
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	makefile, err := os.ReadFile(filepath.Join(dir, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^BIN\s+:?= bin/vultron$`).Match(makefile) || !regexp.MustCompile(`(?m)^build:`).Match(makefile) {
		t.Fatal("the Makefile has no build target writing bin/vultron; update this test with the README")
	}
	text := string(readme)
	start := strings.Index(text, "## Two nodes and a first report")
	first := strings.Index(text, walkthroughMarker)
	if start < 0 || first < start {
		t.Fatal("README: no walk-through section before the first walk-through block")
	}
	before := text[start:first]
	for _, want := range []string{"`make build`", "`bin/vultron`", "`make run`", "7001"} {
		if !strings.Contains(before, want) {
			t.Errorf("README: the walk-through does not say, before its first block, %s (how bin/vultron is made, and that a make run node holds port 7001)", want)
		}
	}
}

// freeLoopback returns a loopback address with a port nothing listens on.
func freeLoopback(t *testing.T) string {
	t.Helper()
	return freeLoopbacks(t, 1)[0]
}

// freeLoopbacks returns n loopback addresses with distinct ports nothing
// listens on. The ports are held together until all are found: the kernel
// often gives a port just closed to the next listener on port 0.
func freeLoopbacks(t *testing.T, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// tail returns the end of a file, for a failure message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// TestReadyCommand waits for a node that serves, and gives up in one
// sentence on one that does not.
func TestReadyCommand(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	// A node that is not ready says which check failed and why; ready
	// gives up with that sentence.
	notReady := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"status":"not ready","check":"schema","error":"the store's records are at version 9, this binary's at 8"}`)
	}))
	t.Cleanup(notReady.Close)
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"ready", "--node", n.url}, 0, n.url + " is ready"},
		{[]string{"ready", "--node", "http://" + freeLoopback(t), "--timeout", "300ms"}, 1, "was not ready within 300ms"},
		{[]string{"ready", "--node", notReady.URL, "--timeout", "300ms"}, 1, "it answered 503: schema: the store's records are at version 9, this binary's at 8"},
		{[]string{"ready", "--node", "127.0.0.1:7001"}, 2, "scheme"},
		{[]string{"ready", "--node", n.url, "--timeout", "0s"}, 2, "--timeout must be positive"},
		{[]string{"ready", "extra"}, 2, "ready takes no arguments"},
	} {
		var stdout, stderr strings.Builder
		env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		code := run(t.Context(), env, tt.args)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, %q %q; want exit %d and %q", tt.args, code, stdout.String(), stderr.String(), tt.code, tt.want)
		}
	}
}
