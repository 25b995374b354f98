package vultron

import (
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// TestGitignoreCoversDataDirs checks that every data directory the README
// and the Makefile have a node create inside the checkout (--data DIR) is
// ignored by git: such a directory holds private keys and API tokens,
// which "git add ." must not commit.
func TestGitignoreCoversDataDirs(t *testing.T) {
	ignore, err := os.ReadFile(".gitignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(ignore), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.Trim(line, "/"))
		}
	}
	dataFlag := regexp.MustCompile(`--data[ =](\S+)`)
	var dirs []string
	for _, file := range []string{"README.md", "Makefile"} {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range dataFlag.FindAllStringSubmatch(string(text), -1) {
			dir := strings.TrimPrefix(strings.Trim(m[1], "\"'`.,;:)"), "./")
			if strings.HasPrefix(dir, "/") || strings.Contains(dir, "$") {
				continue // outside the checkout, or a temporary directory
			}
			if dir == strings.ToUpper(dir) {
				continue // a placeholder the prose names, such as DIR or DATA
			}
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		t.Fatal("found no --data DIR in README.md or the Makefile; the test reads them to know the data directories")
	}
	for _, dir := range dirs {
		first := strings.Split(dir, "/")[0]
		ignored := false
		for _, p := range patterns {
			if ok, _ := path.Match(p, first); ok {
				ignored = true
			}
		}
		if !ignored {
			t.Errorf("the data directory %s is not ignored by .gitignore: its keys and tokens would be committed by git add", dir)
		}
	}
}
