package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

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
	if left, _ := filepath.Glob(filepath.Join(dir, "backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store", left)
	}
	// The metrics say when the last whole backup was sent, and its size.
	size := regexp.MustCompile(`: (\d+) bytes`).FindStringSubmatch(got)
	metrics := getWithToken(t, u+"/metrics", filepath.Join(dir, "api-token"))
	if size == nil || !strings.Contains(metrics, "\nvultron_store_last_backup_bytes "+size[1]+"\n") ||
		!regexp.MustCompile(`\nvultron_store_last_backup_timestamp_seconds \d\.\d+e\+09\n`).MatchString(metrics) {
		t.Errorf("the metrics do not name the last backup (%v):\n%s", size, grepLines(metrics, "backup"))
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

// TestBackupCutShortIsAudited: a client that goes away in the middle of a
// backup of a store larger than the connection's buffers leaves an audit
// record saying the backup was cut short, and no file beside the store.
func TestBackupCutShortIsAudited(t *testing.T) {
	dir := t.TempDir()
	u, stop := startAuditNode(t, dir)
	stop()
	// About 16 MB of records, written while the node is stopped.
	keys, err := store.LoadDataKeys(dir, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(filepath.Join(dir, "vultron.db"), store.Options{DataKey: keys.Current, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	filler := strings.Repeat("x", 2000)
	for range 8 {
		if err := db.Update(t.Context(), func(tx *store.Tx) error {
			for range 1000 {
				if _, err := tx.AppendAudit(store.AuditRecord{Kind: store.AuditAdmin, Decision: store.DecisionDone, Reason: filler}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	u, _ = startAuditNode(t, dir)

	tok, err := os.ReadFile(filepath.Join(dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, u+"/api/backup", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.ContentLength < 8<<20 {
		t.Fatalf("GET /api/backup: %d, %d bytes", resp.StatusCode, resp.ContentLength)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // gone, with most of the copy unread

	n := cliNode{url: u, tokenFile: filepath.Join(dir, "api-token")}
	cut := regexp.MustCompile(`admin +failed .*backup of the store cut short after \d+ of \d+ bytes`)
	deadline := time.Now().Add(10 * time.Second)
	for !cut.MatchString(n.ok(t, "audit", "show", "--after", "8000")) {
		if time.Now().After(deadline) {
			t.Fatalf("no audit record of the backup cut short:\n%s", n.ok(t, "audit", "show", "--after", "8000"))
		}
		time.Sleep(50 * time.Millisecond) // polling the audit log, with a deadline
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "backup-*")); len(left) != 0 {
		t.Errorf("the node left %v beside its store", left)
	}
}
