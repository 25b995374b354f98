package vultron

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/openvultron/vultron"

type listedPackage struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

// listPackages runs `go list` over the module and returns its packages.
func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// TestLayering keeps dependencies pointing one way: the protocol core
// imports nothing of the project, and only the store touches bbolt and
// PostgreSQL.
func TestLayering(t *testing.T) {
	// leaves import no project package; pure packages also do no I/O.
	leaves := map[string]bool{module + "/cvdstate": true, module + "/vocab": true, module + "/problem": true, module + "/ledger": true}
	pure := map[string]bool{module + "/cvdstate": true, module + "/vocab": true, module + "/ledger": true, module + "/rules": true}
	for _, p := range listPackages(t) {
		for _, dep := range p.Deps {
			if leaves[p.ImportPath] && strings.HasPrefix(dep, module+"/") {
				t.Errorf("%s must not depend on project package %s", p.ImportPath, dep)
			}
		}
		for _, imp := range p.Imports {
			// internal/storetest damages a stopped store's file for tests.
			if strings.HasPrefix(imp, "go.etcd.io/bbolt") && p.ImportPath != module+"/store" && p.ImportPath != module+"/internal/storetest" {
				t.Errorf("%s imports bbolt; only %s/store may", p.ImportPath, module)
			}
			if imp == module+"/internal/storetest" {
				t.Errorf("%s imports internal/storetest, which only tests may", p.ImportPath)
			}
			// The test server of internal/pgtest connects to create
			// databases; nothing else but the store talks to PostgreSQL.
			if strings.HasPrefix(imp, "github.com/jackc/pgx") && p.ImportPath != module+"/store" && p.ImportPath != module+"/internal/pgtest" {
				t.Errorf("%s imports pgx; only %s/store may", p.ImportPath, module)
			}
			if pure[p.ImportPath] {
				for _, io := range []string{"os", "net", "net/http", "os/exec", "io/ioutil"} {
					if imp == io {
						t.Errorf("%s imports %s: it must do no I/O", p.ImportPath, imp)
					}
				}
			}
			if p.ImportPath != module+"/cmd/vultron" && imp == module+"/cmd/vultron" {
				t.Errorf("%s imports the command package", p.ImportPath)
			}
			// The wire types are shapes only: a client that reads them does
			// not depend on the server or on HTTP.
			if p.ImportPath == module+"/api" && (imp == "net/http" || isNode(imp)) {
				t.Errorf("%s imports %s: the wire types must not depend on the server or on HTTP", p.ImportPath, imp)
			}
		}
	}
}

// surfaces are the node's HTTP surfaces: each is filled in by node with
// what it needs, and none knows another.
var surfaces = []string{module + "/node/federation", module + "/node/jsonapi", module + "/node/dashboard", module + "/node/calendar", module + "/node/publication"}

// isNode reports whether path is node or one of its packages.
func isNode(path string) bool {
	return path == module+"/node" || strings.HasPrefix(path, module+"/node/")
}

// TestNodeLayering keeps the node's dependencies pointing one way: node
// wires the HTTP surfaces, the surfaces use the domain packages, and the
// domain packages know neither; a surface imports neither node nor
// another surface; only node and the command import node's packages.
func TestNodeLayering(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			switch {
			case !isNode(imp):
			case slices.Contains(surfaces, p.ImportPath) && (imp == module+"/node" || slices.Contains(surfaces, imp)):
				t.Errorf("surface %s imports %s: node wires the surfaces, and a surface knows no other", p.ImportPath, imp)
			case !isNode(p.ImportPath) && p.ImportPath != module+"/cmd/vultron" && !strings.HasPrefix(p.ImportPath, module+"/bench"):
				t.Errorf("%s imports %s: only node, the command and the benchmarks depend on the node", p.ImportPath, imp)
			case !isNode(p.ImportPath) && imp != module+"/node":
				t.Errorf("%s imports %s: outside node, only node itself is imported, not its parts", p.ImportPath, imp)
			}
		}
	}
}

// TestAccountsLayering keeps the people's package beside the store: it
// uses only the store and the refusals of the project, knows nothing of
// the node or its surfaces, and is used only by the node, its surfaces,
// the wire types and the command; the protocol and the pipelines below
// know nothing of people (the outbox is told a name, not a user).
func TestAccountsLayering(t *testing.T) {
	accounts := module + "/accounts"
	users := []string{module + "/node", module + "/node/dashboard", module + "/node/jsonapi", module + "/node/calendar", module + "/api", module + "/cmd/vultron"}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if p.ImportPath == accounts && strings.HasPrefix(imp, module+"/") && imp != module+"/store" && imp != module+"/problem" {
				t.Errorf("accounts imports %s: it depends on the store and problem only", imp)
			}
			if imp == accounts && !slices.Contains(users, p.ImportPath) && !strings.HasPrefix(p.ImportPath, module+"/bench") {
				t.Errorf("%s imports accounts: only node, its surfaces, api and the command may", p.ImportPath)
			}
		}
	}
}
