package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

// TestBackupOfARunningNode takes a backup of a node while requests keep
// writing to its audit log, checks it with the node's data key, starts a
// node on the restored backup, and checks that the backup is in the
// first node's audit log with who took it. A backup file that exists, a
// key that is not the node's, and a node that does not answer leave no
// file behind.
func TestBackupOfARunningNode(t *testing.T) {
	dir := t.TempDir()
	u, stop := startAuditNode(t, dir)
	n := cliNode{url: u, tokenFile: filepath.Join(dir, "api-token")}

	// Writers: unsigned inbox POSTs, each a refusal the node records.
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				resp, err := http.Post(u+"/actors/vendor/inbox", "application/activity+json", strings.NewReader(`{}`))
				if err != nil {
					t.Errorf("unsigned POST: %v", err)
					return
				}
				resp.Body.Close()
			}
		})
	}
	out := filepath.Join(t.TempDir(), "node.db")
	got := n.ok(t, "backup", "--data", dir, out)
	close(done)
	wg.Wait()
	keyID := keyIDOfDir(t, dir)
	if !regexp.MustCompile(`^wrote .*node\.db: \d+ bytes, sealed with data key ` + keyID + "\n" +
		`the backup opens with data key ` + keyID + `, is consistent, and its audit chain of \d+ records verifies \(head [0-9a-f]+\)\n$`).MatchString(got) {
		t.Errorf("backup said:\n%s", got)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the backup file: %v, %v; want mode 0600", fi, err)
	}
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Error("the .partial file is left beside the backup")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".vultron-backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store", left)
	}
	// The metrics say when the last whole backup was sent, and its size.
	size := regexp.MustCompile(`: (\d+) bytes`).FindStringSubmatch(got)
	metrics := getWithToken(t, u+"/metrics", filepath.Join(dir, "api-token"))
	if size == nil || !strings.Contains(metrics, "\nvultron_store_last_backup_bytes "+size[1]+"\n") ||
		!regexp.MustCompile(`\nvultron_store_last_backup_timestamp_seconds \d\.\d+e\+09\n`).MatchString(metrics) {
		t.Errorf("the metrics do not name the last backup (%v):\n%s", size, grepLines(metrics, "backup"))
	}
	// --data names the node's data directory: its API token there is the
	// one the backup is taken with, when no token file is given, also
	// before the login of a viewer on the same node.
	var added api.AddedUser
	if err := json.Unmarshal([]byte(n.ok(t, "user", "add", "vera", "--role", "viewer", "--json")), &added); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	var stdout, stderr strings.Builder
	env := &environment{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(added.Token + "\n"), getenv: func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return config
		}
		return ""
	}}
	if code := run(t.Context(), env, []string{"login", "--node", u, "--with-token"}); code != 0 {
		t.Fatalf("login as the viewer: exit %d: %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run(t.Context(), env, []string{"backup", "--node", u, "--data", dir, filepath.Join(t.TempDir(), "again.db")}); code != 0 {
		t.Errorf("backup --data DATA without --token-file, logged in as a viewer: exit %d: %s", code, stderr.String())
	}
	audit := n.ok(t, "audit", "show")
	if !regexp.MustCompile(`admin +done .*store .* backup of the store sent: \d+ bytes, sealed with data key `+keyID).MatchString(audit) ||
		!strings.Contains(audit, "admin via token") {
		t.Errorf("the audit log does not record the backup and who took it:\n%s", audit)
	}

	// Refusals leave nothing behind.
	code, _, errOut := n.cli(t, "backup", out)
	if code != 1 || !strings.Contains(errOut, "node.db exists; give a new file for the backup (nothing was written)") {
		t.Errorf("backup to an existing file: exit %d, %q", code, errOut)
	}
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("A", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongKey := filepath.Join(t.TempDir(), "wrong-key.db")
	code, _, errOut = n.cli(t, "backup", "--data-key-file", other, wrongKey)
	if code != 1 || !strings.Contains(errOut, "is sealed with data key "+keyID+", not with the key given") {
		t.Errorf("backup checked with another key: exit %d, %q", code, errOut)
	}

	// The restored node starts on the backup, and its audit chain holds.
	stop()
	restored := t.TempDir()
	for _, name := range []string{"keys", store.DataKeyFile, "api-token"} {
		copyTree(t, filepath.Join(dir, name), filepath.Join(restored, name))
	}
	copyTree(t, out, filepath.Join(restored, "vultron.db"))
	ru, _ := startAuditNode(t, restored)
	rn := cliNode{url: ru, tokenFile: filepath.Join(restored, "api-token")}
	if v := rn.ok(t, "audit", "verify"); !strings.Contains(v, "audit log intact") {
		t.Errorf("audit verify on the restored node: %q", v)
	}

	gone := filepath.Join(t.TempDir(), "gone.db")
	code, _, errOut = n.cli(t, "backup", gone)
	if code != 1 || !strings.Contains(errOut, "no backup taken: nothing answers at "+u) {
		t.Errorf("backup of a stopped node: exit %d, %q", code, errOut)
	}
	if left, _ := filepath.Glob(gone + "*"); len(left) != 0 {
		t.Errorf("a backup that failed left %v", left)
	}
}

// keyIDOfDir returns the id of the data key in a node's data directory.
func keyIDOfDir(t *testing.T, dir string) string {
	t.Helper()
	keys, err := store.LoadDataKeys(dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	return store.KeyID(keys.Current)
}

// copyTree copies the file or directory from to to, keeping modes.
func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if fi.IsDir() {
			return os.MkdirAll(dst, fi.Mode().Perm())
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// getWithToken GETs url with the token in tokenFile and returns the body
// of its 200 answer.
func getWithToken(t *testing.T, url, tokenFile string) string {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestBackupKeepsOnlyANewCheckedFile: a file that appears at FILE while
// the backup is downloaded (another user's, or a symlink planted there)
// is left as it is, with the backup kept in FILE.partial; a backup that
// does not hold is not kept at all; a FILE in a directory that does not
// exist is refused before the node is asked. Each says what to do in one
// sentence.
func TestBackupKeepsOnlyANewCheckedFile(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("vultron_test"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A store file, as a node sends it (not sealed).
	db, err := store.Open(filepath.Join(t.TempDir(), "sent.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	sentPath := db.Path()
	db.Close()
	sent, err := os.ReadFile(sentPath)
	if err != nil {
		t.Fatal(err)
	}

	planted := filepath.Join(dir, "planted.db")
	var (
		asked int
		serve func()
		body  []byte
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked++
		serve()
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	n := cliNode{url: srv.URL, tokenFile: tokenFile}
	plant := func() {
		// Another local user makes FILE while the copy is on its way.
		if err := os.Symlink(filepath.Join(dir, "victim"), planted); err != nil {
			t.Error(err)
		}
	}

	for _, tc := range []struct {
		name, file, stderr string
		serve              func()
		body               []byte
		asks               int
		kept               string // the file the backup is in afterwards, if any
	}{
		{"FILE appears meanwhile", planted, "planted.db appeared while the backup was taken, and is left as it is: the backup is in " + planted + ".partial; move it to a new file",
			plant, sent, 1, planted + ".partial"},
		{"the backup does not hold", filepath.Join(dir, "damaged.db"), "the backup the node sent does not hold, and is not kept: ",
			func() {}, []byte("not a store"), 1, ""},
		{"FILE in a directory that does not exist", filepath.Join(dir, "no", "such", "b.db"), "cannot write the backup to " + filepath.Join(dir, "no", "such", "b.db") + ": the directory " + filepath.Join(dir, "no", "such") + " does not exist; make it, or give a file in a directory that does (nothing was taken)",
			func() {}, sent, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked, serve, body = 0, tc.serve, tc.body
			code, _, errOut := n.cli(t, "backup", tc.file)
			if code != 1 || !strings.Contains(errOut, tc.stderr) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("exit %d, %q; want 1 and one line saying %q", code, errOut, tc.stderr)
			}
			if asked != tc.asks {
				t.Errorf("the node was asked %d times, want %d", asked, tc.asks)
			}
			if target, err := os.Readlink(planted); tc.file == planted && (err != nil || target != filepath.Join(dir, "victim")) {
				t.Errorf("the file planted at FILE is now %q (%v)", target, err)
			}
			left, _ := filepath.Glob(tc.file + "*")
			if tc.file == planted {
				left, _ = filepath.Glob(tc.file + ".*")
			}
			switch {
			case tc.kept == "" && len(left) != 0:
				t.Errorf("%v left", left)
			case tc.kept != "":
				if data, err := os.ReadFile(tc.kept); err != nil || !bytes.Equal(data, tc.body) {
					t.Errorf("the backup in %s: %d bytes, %v", tc.kept, len(data), err)
				}
			}
		})
	}
}

// TestDamagedBackupIsNotAnotherKeys: vultron backup keeps a backup that
// CheckBackup finds sealed with another key (whole, naming the key it
// needs), and never one whose sealed value does not open with its own key,
// which is damage (store.ErrDamaged wrapping store.ErrDataKey): it was
// kept as FILE, with the advice to keep a key the operator already had.
func TestDamagedBackupIsNotAnotherKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		keep bool
	}{
		{"checked whole", nil, false},
		{"another key", fmt.Errorf("store: check backup b.db: %w: it is sealed with data key 1234, not with the key given (abcd)", store.ErrDataKey), true},
		{"a sealed value that does not open", fmt.Errorf("store: check backup: %w", &store.DamagedError{Reason: "value activities x: it does not open", Err: store.ErrDataKey}), false},
		{"damaged pages", fmt.Errorf("store: check backup: %w", &store.DamagedError{Reason: "page 4 says it is page 9"}), false},
	} {
		if got := sealedWithAnotherKey(tc.err); got != tc.keep {
			t.Errorf("%s: kept as sealed with another key: %v, want %v", tc.name, got, tc.keep)
		}
	}
}

// TestBackupFindsTheNodeInItsDataDirectory is an admin who names only the
// node's data directory: serve wrote there the address it serves at, so
// backup --data reaches the node on a port of its own, as it takes its
// token from there; --node still wins.
func TestBackupFindsTheNodeInItsDataDirectory(t *testing.T) {
	if _, _, help := runCapture(t, "serve", "-h"); !strings.Contains(help, "node-url (the URL it serves at, for the command line)") {
		t.Errorf("serve -h does not say that the data directory holds node-url:\n%s", help)
	}
	data := filepath.Join(t.TempDir(), "data")
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		got, err := os.ReadFile(filepath.Join(data, nodeURLFile))
		if err != nil || !regexp.MustCompile(`^http://127\.0\.0\.1:\d+\n$`).Match(got) {
			t.Errorf("serve wrote %q to %s (%v), want the URL it serves at", got, nodeURLFile, err)
		}
		nowhere := "http://" + closedAddress(t)
		tests := []struct {
			name string
			args []string
			code int
			want string
		}{
			{"from the data directory", nil, 0, "the backup opens with data key "},
			{"--node wins", []string{"--node", nowhere}, 1, "nothing answers at " + nowhere},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				dest := filepath.Join(t.TempDir(), "backup.db")
				code, out, errOut := runCapture(t, append([]string{"backup", dest, "--data", data}, tc.args...)...)
				if code != tc.code || !strings.Contains(out+errOut, tc.want) {
					t.Errorf("backup %v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
				}
				if _, err := os.Stat(dest); (err == nil) != (tc.code == 0) {
					t.Errorf("backup %v: exit %d, and the backup file: %v", tc.args, code, err)
				}
			})
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
}
