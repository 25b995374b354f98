package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// idleNode is a node that is built but not served: no delivery worker or
// other service runs, so nothing but the test's requests reads the store.
type idleNode struct {
	*Node
	token string
	dir   string
}

func newIdleNode(t testing.TB, extra Config) *idleNode {
	t.Helper()
	dir := t.TempDir()
	cfg := extra
	cfg.DataDir = dir
	cfg.PublicURL = "http://127.0.0.1:7001"
	cfg.Actors = []ActorConfig{{Name: "vendor", Type: actor.Organization}}
	cfg.NoSync = true
	cfg.Logger = zerolog.Nop()
	cfg.Notice = io.Discard
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	token, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &idleNode{Node: n, token: strings.TrimSpace(string(token)), dir: dir}
}

// serve sends a request to the node's handler with the given bearer token
// ("" for none) and returns the status and body.
func (n *idleNode) serve(t testing.TB, method, path, token string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// addCases stores cases from..to-1, spread over the embargo and world
// states, as the engine would (through cases.Save).
func addCases(t testing.TB, db *store.DB, from, to int) {
	t.Helper()
	ems := cvdstate.EMStates()
	for lo := from; lo < to; lo += 1000 {
		err := db.Update(context.Background(), func(tx *store.Tx) error {
			for i := lo; i < min(lo+1000, to); i++ {
				c := &cases.Case{ID: fmt.Sprintf("http://127.0.0.1:7001/cases/c%06d", i), Name: "case",
					EM: ems[i%len(ems)], PXA: cvdstate.PXA(i % 8)}
				if err := cases.Save(tx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// addDeadLetters queues n activities of the node's vendor to one recipient
// each and gives every delivery up.
func addDeadLetters(t testing.TB, db *store.DB, tag string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("http://127.0.0.1:7001/activities/%s-%d", tag, i)
		err := db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: "vendor", Body: fmt.Appendf(nil, `{"id":%q,"type":"Note"}`, id),
			Deliveries: []store.DeliveryTarget{{Recipient: "https://peer.example/actors/p"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	pending, err := db.PendingDeliveries(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range pending {
		if err := db.DeadLetter(ctx, d.ID, "gone"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScrapeReadsDoNotGrowWithTheData scrapes a node with few cases and
// dead letters and again with many: the values the store decrypts for a
// scrape must be the same number, since every count is kept, not
// recounted. (It grows with the states some case is in, at most 5 embargo
// × 8 world states: the 40 first cases are in all of them.)
func TestScrapeReadsDoNotGrowWithTheData(t *testing.T) {
	n := newIdleNode(t, Config{})
	scrape := func() (uint64, string) {
		t.Helper()
		before := n.db.ValuesOpened()
		status, body := n.serve(t, http.MethodGet, "/metrics", n.token)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", status, body)
		}
		return n.db.ValuesOpened() - before, body
	}
	addCases(t, n.db, 0, 40)
	addDeadLetters(t, n.db, "a", 3)
	scrape() // the first scrape may warm something up; compare the next ones
	small, body := scrape()
	if !strings.Contains(body, "vultron_dead_letters 3\n") {
		t.Fatalf("metrics with 3 dead letters:\n%s", body)
	}
	addCases(t, n.db, 40, 1000)
	addDeadLetters(t, n.db, "b", 60)
	big, body := scrape()
	if !strings.Contains(body, "vultron_dead_letters 63\n") {
		t.Fatalf("metrics with 63 dead letters:\n%s", body)
	}
	if big != small {
		t.Errorf("a scrape decrypted %d store values with 40 cases and 3 dead letters, %d with 1,000 and 63", small, big)
	}
	t.Logf("values decrypted per scrape: %d, then %d", small, big)
}
