package federation_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/store"
)

// TestSharedStoreDataKeyRotation rotates the data key of a node on
// PostgreSQL with `vultron rotate-key` between real processes: refused, and
// nothing changed, while a serve process has the database open; after the
// database's connections were lost (a failover), the rotation goes through
// although that process is still running, and the process, which could not
// be seen, refuses its next write and exits asking to be started with the
// new key, so that nothing sealed with the old key is written after the
// rotation; started again with the new key, it serves the node's data.
func TestSharedStoreDataKeyRotation(t *testing.T) {
	pgURL := pgtest.Database(t)
	bin := buildVultron(t)
	oldKey := make([]byte, 32)
	if _, err := rand.Read(oldKey); err != nil {
		t.Fatal(err)
	}
	publicHost := freeAddr(t)
	publicURL := "http://" + publicHost
	a := launchShared(t, bin, "a", pgURL, publicURL, base64.StdEncoding.EncodeToString(oldKey))
	keyDir := t.TempDir()
	keyFile := filepath.Join(keyDir, store.DataKeyFile)
	if err := os.WriteFile(keyFile, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	rotate := func() (int, string) {
		t.Helper()
		cmd := exec.Command(bin, "rotate-key", "--store", pgURL, "--data-key-file", keyFile)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + keyDir}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), string(out)
	}
	if code, out := rotate(); code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "stop every process") || strings.Contains(out, pgURL) {
		t.Fatalf("rotate-key while a process serves: exit %d, %q; want exit 1 and one sentence saying to stop every process, without the URL", code, out)
	}
	if got, err := os.ReadFile(keyFile); err != nil || string(got) != string(oldKey) {
		t.Fatalf("a refused rotation changed the key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(keyDir, store.DataKeyPreviousFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused rotation left %s: %v", store.DataKeyPreviousFile, err)
	}

	// Process a stalls (a paused virtual machine, a partition) while the
	// database drops its connections, the session that held its open lock
	// among them: the rotation that runs meanwhile does not see it.
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if err := a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	// The sessions end, and their backends exit (which releases their
	// locks) before the rotation starts.
	pgtest.EndOtherSessions(t, admin)
	code, out := rotate()
	if err := a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	if code != 0 || !strings.Contains(out, "re-encrypted") || !strings.Contains(out, "start the node's processes with the new key") {
		t.Fatalf("rotate-key: exit %d, %q", code, out)
	}
	newKey, err := os.ReadFile(keyFile)
	if err != nil || len(newKey) != 32 || string(newKey) == string(oldKey) {
		t.Fatalf("the key file after the rotation: %v", err)
	}

	// Process a, still running with the old key, writes: it is refused,
	// and the process stops.
	token, err := os.ReadFile(filepath.Join(a.dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(p *sharedProc) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/api/actors/vendor/rotate-key", nil)
		req.Host = publicHost
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0 // the process has stopped
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := write(a); status < 400 {
		t.Errorf("a write of the process that kept the old key: %d, want it refused", status)
	}
	select {
	case <-a.done:
	case <-time.After(clusterWait):
		t.Fatalf("the process that kept the old key is still running:\n%s", tailOf(a.log, logTailLines))
	}
	if code := a.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(readFile(t, a.log), "start this process again with the new key") {
		t.Errorf("the process that kept the old key exited %d; its log:\n%s", code, tailOf(a.log, logTailLines))
	}
	oldID, err := hex.DecodeString(store.KeyID(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	var stale int
	// 0xE5 and the key's id open every value sealed with that key.
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM vultron_kv WHERE substring(value from 1 for $2) = $1`,
		append([]byte{0xE5}, oldID...), 1+len(oldID)).Scan(&stale); err != nil {
		t.Fatal(err)
	}
	if stale != 0 {
		t.Errorf("%d values are sealed with the old key after the rotation", stale)
	}

	// Started again with the new key, the node serves and writes.
	b := launchShared(t, bin, "b", pgURL, publicURL, base64.StdEncoding.EncodeToString(newKey))
	if status := write(b); status != http.StatusOK {
		t.Errorf("a write of the process started with the new key: %d", status)
	}
}
