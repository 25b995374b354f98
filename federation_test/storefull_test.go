//go:build linux

package federation_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestANodeWhoseStoreIsFull runs a `vultron serve` process whose store
// file can no longer grow (its file size limit, set from outside with
// prlimit, stands for a full disk), while peers keep posting: every write
// is refused with 507, a sentence that says why and that nothing was
// stored, and Retry-After, which a peer retries, rather than a bare 500;
// a sender whose key the node had not seen gets the same answer, not a
// 401 that would make it give up its delivery for good; reads go on; the
// log says it once, not once per refusal, and the metrics show it; once
// the store can grow again, writes succeed without a restart, and every
// acknowledged Offer is there while no refused one is.
func TestANodeWhoseStoreIsFull(t *testing.T) {
	bin := buildVultron(t)
	c := newClusterWith(t, bin, clusterOptions{pipeLogs: true}, "vendor:Organization")
	n := c.node("vendor")
	known, stranger := newCrashPeer(t), newCrashPeer(t)
	client := &http.Client{Timeout: 10 * time.Second}
	// Reports of 200 KiB, so that the store file grows at every few.
	content := strings.Repeat("x", 200<<10)
	post := func(p *crashPeer, name string) (int, []byte, http.Header) {
		t.Helper()
		return p.postOffer(t, client, n.actorID(), name, content)
	}
	acked := map[string]bool{}
	if status, said, _ := post(known, "before"); status != http.StatusAccepted {
		t.Fatalf("the first Offer: %d %s", status, said)
	}
	acked["before"] = true
	pid := n.cmd.Process.Pid
	var was unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &was); err != nil {
		t.Fatalf("read the node's file size limit: %v", err)
	}
	limitTo := func(size uint64) {
		t.Helper()
		if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: size, Max: was.Max}, nil); err != nil {
			t.Fatalf("limit the node's file size to %d: %v", size, err)
		}
	}
	refusedWell := func(what string, status int, said []byte, h http.Header) bool {
		t.Helper()
		if status != http.StatusInsufficientStorage {
			return false
		}
		if !strings.Contains(string(said), "nothing was stored") || !strings.Contains(string(said), "file size limit") || h.Get("Retry-After") == "" {
			t.Errorf("%s: %d %s (Retry-After %q), want a sentence that says why and that nothing was stored, and Retry-After",
				what, status, said, h.Get("Retry-After"))
		}
		return true
	}

	// Nearly full: the store file may not grow, and what fits in its
	// free pages is still written.
	dbInfo, err := os.Stat(filepath.Join(n.dir, "vultron.db"))
	if err != nil {
		t.Fatal(err)
	}
	limitTo(uint64(dbInfo.Size()))
	var refused []string
	for i := 0; len(refused) < 3; i++ {
		if i == 200 {
			t.Fatalf("200 Offers of 200 KiB accepted by a node whose store file may not grow past %d bytes", dbInfo.Size())
		}
		name := fmt.Sprintf("nearly-full-%d", i)
		status, said, h := post(known, name)
		switch {
		case status == http.StatusAccepted:
			acked[name] = true
		case refusedWell("an Offer to a nearly full store", status, said, h):
			refused = append(refused, name)
		default:
			t.Fatalf("Offer %s to a nearly full store: %d %s, want 202 or 507", name, status, said)
		}
	}

	// Full: no page past the two meta pages may be written.
	limitTo(8192)
	for _, p := range []struct {
		peer *crashPeer
		name string
	}{{known, "full"}, {stranger, "stranger-full"}} {
		// The sender the node has not seen before: its key cannot be
		// kept either, which is the node's failure, not the sender's.
		status, said, h := post(p.peer, p.name)
		if !refusedWell("Offer "+p.name+" to a full store", status, said, h) {
			t.Errorf("Offer %s to a full store: %d %s, want 507", p.name, status, said)
		}
		refused = append(refused, p.name)
	}
	if status, body := c.api(n, http.MethodGet, "/actors/vendor/inbox", nil); status != http.StatusOK {
		t.Errorf("a read while the store is full: %d %s", status, body)
	}

	// Space again.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &was, nil); err != nil {
		t.Fatalf("restore the node's file size limit: %v", err)
	}
	for _, p := range []struct {
		peer *crashPeer
		name string
	}{{known, "after"}, {stranger, "stranger-after"}} {
		status, said, _ := post(p.peer, p.name)
		if status != http.StatusAccepted {
			t.Fatalf("Offer %s once the store may grow again: %d %s, want 202 without a restart", p.name, status, said)
		}
		acked[p.name] = true
	}
	if status, body := c.api(n, http.MethodGet, "/metrics", nil); status != http.StatusOK || !strings.Contains(string(body), "\nvultron_store_writes_failing 0\n") ||
		strings.Contains(string(body), "\nvultron_store_commit_failures_total 0\n") {
		t.Errorf("metrics once writes succeed: %d, want vultron_store_writes_failing 0 and commit failures counted:\n%s", status, grepLines(string(body), "vultron_store_"))
	}

	inbox := map[string]bool{}
	for _, a := range c.inbox("vendor") {
		if id, ok := a["id"].(string); ok {
			inbox[id[strings.LastIndex(id, "/")+1:]] = true
		}
	}
	for name := range acked {
		if !inbox[name] {
			t.Errorf("Offer %s was acknowledged and is not in the inbox", name)
		}
	}
	for _, name := range refused {
		if inbox[name] {
			t.Errorf("Offer %s was refused and is in the inbox", name)
		}
	}
	var logged []byte
	c.waitFor("a log line that says that commits succeed again", func() bool {
		logged, _ = os.ReadFile(n.log) // copied from the process's pipe
		return strings.Contains(string(logged), "store: commits succeed again")
	}, func() string { return grepLines(string(logged), "store:") })
	if got := strings.Count(string(logged), "store: commit failed"); got != 1 {
		t.Errorf("%d log lines say that a commit failed, for %d refused writes; want 1:\n%s", got, len(refused), grepLines(string(logged), "store:"))
	}
	if got := strings.Count(string(logged), "audit: refusal"); got > 0 {
		t.Errorf("%d log lines say that refusals were not audited: a request the store could not serve is the node's failure, not a refusal to audit:\n%s", got, grepLines(string(logged), "audit:"))
	}
	if got := strings.Count(string(logged), `"request refused"`); got > 0 {
		t.Errorf("%d requests refused for the full store logged one by one, want none:\n%s", got, grepLines(string(logged), "request refused"))
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
