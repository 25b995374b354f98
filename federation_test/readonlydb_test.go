package federation_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
)

// TestANodeOnADatabaseThatTurnsReadOnly runs a `vultron serve` process on
// a PostgreSQL database that turns read-only, as after a failover onto a
// standby, while peers post to it: each write is answered 503 with
// Retry-After and a sentence that says why, also for a sender whose key
// the node had not seen and could not keep meanwhile (a 401 would have
// made that sender give its delivery up for good, and the node kept
// answering it so for minutes after the database was back); reads and
// /readyz go on; the log says it once; once the database takes writes
// again, both senders' Offers are accepted, without a restart.
func TestANodeOnADatabaseThatTurnsReadOnly(t *testing.T) {
	pgURL := pgtest.Database(t)
	bin := buildVultron(t)
	rawKey := make([]byte, 32)
	if _, err := rand.Read(rawKey); err != nil {
		t.Fatal(err)
	}
	proxyLn := listenLoopback(t)
	publicURL := "http://" + proxyLn.Addr().String()
	a := launchShared(t, bin, "a", pgURL, publicURL, base64.StdEncoding.EncodeToString(rawKey))
	proxy := &failoverProxy{backends: []string{a.addr}, client: &http.Client{Timeout: 10 * time.Second}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(proxyLn) }()
	t.Cleanup(func() { _ = srv.Close() })
	token, err := os.ReadFile(filepath.Join(a.dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	vendorID := publicURL + "/actors/vendor"
	client := &http.Client{Timeout: 30 * time.Second}
	getBody := func(path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, publicURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		return resp.StatusCode, string(body)
	}
	get := func(path string) int {
		t.Helper()
		status, _ := getBody(path)
		return status
	}

	known, stranger := newCrashPeer(t), newCrashPeer(t)
	if status, said, _ := known.postOffer(t, client, vendorID, "before", "x"); status != http.StatusAccepted {
		t.Fatalf("an Offer before: %d %s", status, said)
	}
	// A node on PostgreSQL exports its pool and its waits for the writer
	// lock.
	status, metrics := getBody("/metrics")
	for _, want := range []string{"\nvultron_store_pool_max_connections 16\n", "\nvultron_store_pool_connections{state=\"idle\"} ",
		"\nvultron_store_pool_waits_total ", "\nvultron_store_writer_locks_total ", "\nvultron_store_writer_lock_wait_seconds_total "} {
		if status != http.StatusOK || !strings.Contains(metrics, want) {
			t.Errorf("GET /metrics: %d, without %q:\n%s", status, strings.TrimSpace(want), grepLines(metrics, "vultron_store_"))
		}
	}
	if strings.Contains(metrics, "\nvultron_store_writer_locks_total 0\n") {
		t.Errorf("no writer lock taken after an accepted Offer:\n%s", grepLines(metrics, "vultron_store_"))
	}

	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	pgtest.AlterDatabase(t, admin, `SET default_transaction_read_only = on`)
	for _, o := range []struct {
		peer *crashPeer
		name string
	}{{known, "read-only"}, {stranger, "stranger-read-only"}} {
		status, said, h := o.peer.postOffer(t, client, vendorID, o.name, "x")
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(string(said), "read-only") || !strings.Contains(string(said), "nothing was stored") {
			t.Errorf("Offer %s to a node on a read-only database: %d %s (Retry-After %q), want 503 with Retry-After saying the database is read-only and nothing was stored",
				o.name, status, said, h.Get("Retry-After"))
		}
	}
	if status := get("/actors/vendor/inbox"); status != http.StatusOK {
		t.Errorf("a read on a read-only database: %d", status)
	}
	if status := get("/readyz"); status != http.StatusOK {
		t.Errorf("/readyz on a read-only database: %d", status)
	}

	pgtest.AlterDatabase(t, admin, `RESET default_transaction_read_only`)
	for _, o := range []struct {
		peer *crashPeer
		name string
	}{{stranger, "stranger-read-only"}, {known, "read-only"}} {
		if status, said, _ := o.peer.postOffer(t, client, vendorID, o.name, "x"); status != http.StatusAccepted {
			t.Errorf("Offer %s again once the database takes writes: %d %s, want 202", o.name, status, said)
		}
	}
	logged := readFile(t, a.log)
	if got := strings.Count(logged, "store: commit failed"); got != 1 {
		t.Errorf("%d log lines say that a commit failed; want 1:\n%s", got, grepLines(logged, "store:"))
	}
	if got := strings.Count(logged, "audit: refusal"); got > 0 {
		t.Errorf("%d log lines say that refusals were not audited: a request the store could not serve is the node's failure, not a refusal to audit:\n%s", got, grepLines(logged, "audit:"))
	}
	if got := strings.Count(logged, `"request refused"`); got > 0 {
		t.Errorf("%d requests refused for the read-only database logged one by one, want none:\n%s", got, grepLines(logged, "request refused"))
	}
}
