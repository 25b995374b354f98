package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node"
)

// startAuditNode starts a node on 127.0.0.1 in dir and returns its URL
// and a function that stops it and waits until its store is closed.
func startAuditNode(t *testing.T, dir string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + ln.Addr().String()
	n, err := node.New(t.Context(), node.Config{DataDir: dir, Listener: ln, PublicURL: u,
		Actors:            []node.ActorConfig{{Name: "vendor", Type: "Organization"}},
		AllowPrivatePeers: true, NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", u, err)
		}
	}
	t.Cleanup(stop)
	return u, stop
}

// TestAuditCommand runs audit show and verify against a real node, then
// changes a record in the node's file, as someone with access to the disk
// would, and checks that verify names it.
func TestAuditCommand(t *testing.T) {
	dir := t.TempDir()
	u, stop := startAuditNode(t, dir)
	n := cliNode{url: u, tokenFile: filepath.Join(dir, "api-token")}

	// Three refusals the node records: unsigned inbox POSTs.
	for range 3 {
		resp, err := http.Post(u+"/actors/vendor/inbox", "application/activity+json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("unsigned POST: %d, want 401", resp.StatusCode)
		}
	}
	out := n.ok(t, "audit", "show")
	// Who did it: the first admin was made by the node itself.
	if !regexp.MustCompile(`REMOTE +BY +REASON`).MatchString(out) || !regexp.MustCompile(`account +done .* node +first start: user admin added`).MatchString(out) {
		t.Errorf("audit show does not say who did what:\n%s", out)
	}
	if !strings.Contains(out, "SEQ") || strings.Count(out, "refused") != 3 || !strings.Contains(out, "request is not signed") || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("audit show:\n%s", out)
	}
	var rows []api.AuditRecord
	if err := json.Unmarshal([]byte(n.ok(t, "audit", "show", "--after", "1", "--limit", "1", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Seq != 2 || rows[0].Status != 401 || rows[0].Kind != "inbound" || rows[0].Hash == "" || rows[0].Prev == "" {
		t.Fatalf("audit show --after 1 --limit 1 --json = %+v", rows)
	}
	// The first record is the account kind's: the node's start made the
	// API token's holder its first admin.
	if err := json.Unmarshal([]byte(n.ok(t, "audit", "show", "--limit", "1", "--json")), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Seq != 1 || rows[0].Kind != "account" {
		t.Fatalf("audit show --limit 1 --json = %+v, want the first admin's record", rows)
	}
	if out := n.ok(t, "audit", "verify"); !strings.Contains(out, "audit log intact: 4 records") {
		t.Fatalf("audit verify: %q", out)
	}
	if code, _, errOut := n.cli(t, "audit", "frob"); code != 2 || !strings.Contains(errOut, `unknown audit command "frob"`) {
		t.Fatalf("audit frob: exit %d, %q", code, errOut)
	}

	// Change one byte of record 2 in the stopped node's file.
	stop()
	bdb, err := bolt.Open(filepath.Join(dir, "vultron.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		k := binary.BigEndian.AppendUint64(nil, 2)
		v := append([]byte(nil), b.Get(k)...)
		i := strings.Index(string(v), "request is not signed")
		if i < 0 {
			t.Fatal("record 2 does not hold its reason in the clear")
		}
		v[i] = 'R'
		return b.Put(k, v)
	})
	if cerr := bdb.Close(); err != nil || cerr != nil {
		t.Fatalf("tamper: %v %v", err, cerr)
	}

	u, _ = startAuditNode(t, dir)
	n.url = u
	code, _, errOut := n.cli(t, "audit", "verify")
	if code != 1 || errOut != "vultron audit: the audit log is broken at record 2: record 2 was changed: its hash does not match its content.\n" {
		t.Fatalf("audit verify after tampering: exit %d, %q", code, errOut)
	}
}
