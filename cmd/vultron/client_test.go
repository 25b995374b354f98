package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestTokenNotSentWhereTheNodeRedirects checks that a token goes to the
// node's own address only: an answer that redirects elsewhere on the same
// host (another port, another scheme) is not followed with the token,
// whether the token comes from a file or is being checked by vultron
// login, and the command says where the node pointed.
func TestTokenNotSentWhereTheNodeRedirects(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"name":"x","role":"admin","tokens":[]}`))
	}))
	defer other.Close()
	node := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer node.Close()
	const token = "vultron_redirect-test-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{"token file", "", []string{"token", "list", "--node", node.URL, "--token-file", tokenFile}},
		{"login", token + "\n", []string{"login", "--node", node.URL, "--with-token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr strings.Builder
			env := &environment{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(tt.stdin), getenv: func(k string) string {
				if k == "XDG_CONFIG_HOME" {
					return config
				}
				return ""
			}}
			code := run(t.Context(), env, tt.args)
			mu.Lock()
			got := append([]string(nil), seen...)
			seen = nil
			mu.Unlock()
			for _, auth := range got {
				if strings.Contains(auth, token) {
					t.Errorf("the token was sent to %s, where the node redirected", other.URL)
				}
			}
			if code == 0 || !strings.Contains(stderr.String(), other.URL) {
				t.Errorf("exit %d, stderr %q; want a failure that names %s", code, stderr.String(), other.URL)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(config, "vultron", loginFile)); err == nil {
		t.Errorf("the login was saved although the node's answer was a redirect")
	}
}

// TestNodeCommandsTakeTheNodeFromItsDataDirectory is a newcomer who
// started a node with serve --data DIR on a port of its own: every
// command that talks to a node takes --data DIR for both the node's
// address and its token, as backup does; a directory that is not there
// is one sentence, and --node and --token-file still win.
func TestNodeCommandsTakeTheNodeFromItsDataDirectory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "vendor-data")
	missing := filepath.Join(t.TempDir(), "nosuch-data")
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		nowhere := "http://" + closedAddress(t)
		tests := []struct {
			args []string
			code int
			want string
		}{
			{[]string{"case", "list", "--data", data}, 0, "No cases"},
			{[]string{"report", "list", "--data", data}, 0, "No reports."},
			{[]string{"followers", "--data", data}, 0, "vendor has no followers."},
			{[]string{"ready", "--data", data}, 0, " is ready"},
			{[]string{"case", "list", "--data", data, "--node", nowhere}, 1, "nothing answers at " + nowhere},
			{[]string{"case", "list", "--data", missing}, 2, "there is no data directory " + missing},
		}
		for _, tc := range tests {
			code, out, errOut := runCapture(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.want) {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
			}
			if code != 0 && strings.Count(errOut, "\n") != 1 {
				t.Errorf("%v: stderr %q, want one sentence", tc.args, errOut)
			}
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
}

// TestNoTokenSaysWhereOneIs is a newcomer who runs a command in a
// directory with no ./data and names no node: the sentence says what was
// read and every way to name the node's token, --data among them.
func TestNoTokenSaysWhereOneIs(t *testing.T) {
	t.Chdir(t.TempDir())
	code, out, errOut := runCapture(t, "case", "list")
	for _, want := range []string{"read the token for the node at http://127.0.0.1:7001", "./data/api-token", "--token-file", "--data DIR", "vultron login"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 {
		t.Errorf("exit %d, stdout %q, stderr %q; want exit 1 and one sentence", code, out, errOut)
	}
}

// TestReadyWaitsForTheDataDirectory is a script that starts serve in the
// background and runs ready --data at once: serve has not made its data
// directory yet, which ready waits for as it waits for the node, and
// says, when its time runs out, what it waited for.
func TestReadyWaitsForTheDataDirectory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "later-data")
	code, out, errOut := runCapture(t, "ready", "--data", data, "--timeout", "300ms")
	if code != 1 || out != "" || !strings.Contains(errOut, "the node of "+data+" was not ready within 300ms: serve has not written its address to "+filepath.Join(data, nodeURLFile)+" yet") {
		t.Errorf("ready --data before serve made it: exit %d, stdout %q, stderr %q; want exit 1 saying what it waited for", code, out, errOut)
	}
	done := make(chan int, 1)
	var stdout, stderr syncBuffer
	go func() {
		env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
		done <- run(t.Context(), env, []string{"ready", "--data", data, "--timeout", "30s"})
	}()
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		if code := <-done; code != 0 || !strings.Contains(stdout.String(), " is ready") {
			t.Errorf("ready --data started before serve: exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
}

// TestDataTokenNotSentToTheLoginsNode is an admin logged in to a remote
// node who names the data directory of a node that has not started there
// (no node-url): that node's API token is never sent to the login's node,
// and the command says in one sentence what is missing.
func TestDataTokenNotSentToTheLoginsNode(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"cases":[]}`))
	}))
	defer remote.Close()
	const dataToken = "vultron_data-directory-token"
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "api-token"), []byte(dataToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	if err := os.MkdirAll(filepath.Join(config, "vultron"), 0o700); err != nil {
		t.Fatal(err)
	}
	login := `{"default":"` + remote.URL + `","nodes":{"` + remote.URL + `":{"token":"vultron_login-token"}}}`
	if err := os.WriteFile(filepath.Join(config, "vultron", loginFile), []byte(login), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := [][]string{
		{"case", "list", "--data", data},
		{"deliveries", "--data", data},
	}
	for _, args := range tests {
		t.Run(args[0], func(t *testing.T) {
			var stdout, stderr strings.Builder
			env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
				if k == "XDG_CONFIG_HOME" {
					return config
				}
				return ""
			}}
			code := run(t.Context(), env, args)
			mu.Lock()
			got := append([]string(nil), seen...)
			seen = nil
			mu.Unlock()
			for _, auth := range got {
				if strings.Contains(auth, dataToken) {
					t.Errorf("%v sent the API token of %s to the login's node %s", args, data, remote.URL)
				}
			}
			want := data + " has no " + nodeURLFile
			if code == 0 || !strings.Contains(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want a failure in one sentence saying %q", args, code, stdout.String(), stderr.String(), want)
			}
		})
	}
}

// TestDataOnTheCommandLineWinsOverTheEnvironment is an admin whose shell
// exports VULTRON_NODE (and perhaps VULTRON_TOKEN_FILE) for another node,
// as the README's walk-through does, and who names a node's data
// directory with --data on the command line: the command talks to that
// node with its token, as a flag wins over the environment, and the data
// directory's token never goes to the node the environment names.
func TestDataOnTheCommandLineWinsOverTheEnvironment(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(w, `{"error":"not this node"}`, http.StatusTeapot)
	}))
	defer remote.Close()
	otherToken := filepath.Join(t.TempDir(), "other-token")
	if err := os.WriteFile(otherToken, []byte("vultron_other-node-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "finder-data")
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		raw, err := os.ReadFile(filepath.Join(data, "api-token"))
		if err != nil {
			t.Fatal(err)
		}
		dataToken := strings.TrimSpace(string(raw))
		tests := []struct {
			name string
			env  map[string]string
			args []string
			ok   bool
			want string
		}{
			{"VULTRON_NODE", map[string]string{"VULTRON_NODE": remote.URL}, []string{"deliveries", "--data", data}, true, "No pending deliveries."},
			{"VULTRON_NODE and VULTRON_TOKEN_FILE", map[string]string{"VULTRON_NODE": remote.URL, "VULTRON_TOKEN_FILE": otherToken}, []string{"deliveries", "--data", data}, true, "No pending deliveries."},
			{"ready", map[string]string{"VULTRON_NODE": remote.URL}, []string{"ready", "--data", data, "--timeout", "5s"}, true, " is ready"},
			{"VULTRON_DATA beside VULTRON_NODE", map[string]string{"VULTRON_NODE": remote.URL, "VULTRON_DATA": data}, []string{"deliveries"}, false, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				t.Chdir(t.TempDir()) // no ./data/api-token to fall back on
				var stdout, stderr strings.Builder
				env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(k string) string { return tc.env[k] }}
				code := run(t.Context(), env, tc.args)
				mu.Lock()
				got := append([]string(nil), seen...)
				seen = nil
				mu.Unlock()
				for _, auth := range got {
					if strings.Contains(auth, dataToken) {
						t.Errorf("%v sent the API token of %s to the node VULTRON_NODE names", tc.args, data)
					}
				}
				if tc.ok && (code != 0 || !strings.Contains(stdout.String(), tc.want) || len(got) != 0) {
					t.Errorf("%v with %v: exit %d, stdout %q, stderr %q, %d requests to %s; want exit 0 from the node of %s",
						tc.args, tc.env, code, stdout.String(), stderr.String(), len(got), remote.URL, data)
				}
			})
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
}
