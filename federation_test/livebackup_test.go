package federation_test

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBackupOfANodeProcessUnderLoad takes a backup of a `vultron serve`
// process with `vultron backup` while a peer streams signed Offers into
// it, SIGKILLs the process once the stream has ended, puts the backup in
// place of its store and starts it again: the restored node holds every
// Offer it had acknowledged before the backup began, its audit chain
// verifies, and it accepts new Offers. What it acknowledged after the
// backup began is not promised (docs/operations.md: a restore goes back
// to the backup).
func TestBackupOfANodeProcessUnderLoad(t *testing.T) {
	bin := buildVultron(t)
	p := newCrashPeer(t)
	c := newCluster(t, bin, "vendor:Organization")
	n := c.node("vendor")
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	const offers = 120

	var acked sync.Map
	var wg sync.WaitGroup
	wg.Go(func() {
		p.postOffers(t, client, n.actorID(), "backup-offer", offers, deadline, &acked, 20*time.Millisecond)
	})
	ids := func() []string {
		var out []string
		acked.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
		return out
	}
	c.waitFor("a third of the Offers acknowledged", func() bool { return len(ids()) >= offers/3 }, func() string { return "" })
	before := ids()

	out := filepath.Join(t.TempDir(), "vendor-backup.db")
	cmd := exec.Command(bin, "backup", "--node", n.url, "--token-file", filepath.Join(n.dir, "api-token"), "--data", n.dir, out)
	said, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(said), "its audit chain of") {
		t.Fatalf("vultron backup under load: %v\n%s", err, said)
	}
	wg.Wait()
	if got := len(ids()); got != offers {
		t.Fatalf("%d of %d Offers acknowledged while the backup was taken", got, offers)
	}

	// The machine is lost: SIGKILL, and the store replaced by the backup.
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-n.done
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.dir, "vultron.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.restart("vendor")

	inbox := map[string]bool{}
	for _, a := range c.inbox("vendor") {
		if id, ok := a["id"].(string); ok {
			inbox[id] = true
		}
	}
	for _, id := range before {
		if !inbox[id] {
			t.Errorf("the restored node lacks %s, acknowledged before the backup began", id)
		}
	}
	t.Logf("%d Offers acknowledged before the backup began, %d in the restored inbox, %d acknowledged in all", len(before), len(inbox), offers)
	if len(inbox) < len(before) || len(inbox) > offers {
		t.Errorf("the restored inbox holds %d Offers, want between %d and %d", len(inbox), len(before), offers)
	}
	verify := exec.Command(bin, "audit", "verify", "--node", n.url, "--token-file", filepath.Join(n.dir, "api-token"))
	if said, err := verify.CombinedOutput(); err != nil || !strings.Contains(string(said), "audit log intact") {
		t.Errorf("audit verify on the restored node: %v\n%s", err, said)
	}
	var after sync.Map
	p.postOffers(t, client, n.actorID(), "after-restore", 3, time.Now().Add(20*time.Second), &after, 20*time.Millisecond)
	count := 0
	after.Range(func(_, _ any) bool { count++; return true })
	if count != 3 {
		t.Errorf("the restored node acknowledged %d of 3 new Offers", count)
	}
}
