package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// openTestDB opens a store in a fresh temporary directory with fsync off and
// registers a cleanup that closes it and runs the consistency check.
func openTestDB(t *testing.T, opts Options) *DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "vultron.db")
	if opts.Now == nil {
		opts.Now = newTestClock().Now
	}
	opts.NoSync = true
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil {
			t.Errorf("Check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// mustPutActor creates a local actor.
func mustPutActor(t testing.TB, db *DB, name string) {
	t.Helper()
	err := db.PutLocalActor(context.Background(), LocalActor{
		Name:         name,
		Type:         "Organization",
		KeyID:        "https://node.example/actors/" + name + "#main-key",
		PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
		CreatedAt:    time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
	})
	if err != nil {
		t.Fatalf("PutLocalActor(%s): %v", name, err)
	}
}

// activityBody returns a plausible activity body for id.
func activityBody(id, note string) []byte {
	return fmt.Appendf(nil, `{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Offer","actor":"https://peer.example/actors/vendor","content":%q}`, id, note)
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// inbound builds an Inbound for recipient with a body derived from note.
func inbound(id, recipient, note string) Inbound {
	body := activityBody(id, note)
	return Inbound{
		ID:        id,
		Recipient: recipient,
		Sender:    "https://peer.example/actors/vendor",
		KeyID:     "https://peer.example/actors/vendor#main-key",
		Digest:    digestOf(body),
		Body:      body,
		Semantic:  "RmSubmitReport",
	}
}

// countBucket returns the number of keys in a top-level bucket, or in the
// sub-bucket sub of it when sub is not empty.
func countBucket(t *testing.T, db *DB, bucket []byte, sub string) int {
	t.Helper()
	n := 0
	err := db.View(context.Background(), func(tx *ReadTx) error {
		b := tx.bucket(bucket).engineBucket
		if sub != "" {
			b = b.Bucket([]byte(sub))
			if b == nil {
				return nil
			}
		}
		n = int(countKeys(b))
		return nil
	})
	if err != nil {
		t.Fatalf("count %s/%s: %v", bucket, sub, err)
	}
	return n
}

// allDeliveries reads every pending delivery (or every dead letter, when dead
// is true) page by page, with a small page so that the cursor is exercised.
func allDeliveries(t testing.TB, db *DB, dead bool) []Delivery {
	t.Helper()
	page := db.PendingDeliveries
	if dead {
		page = db.DeadLetters
	}
	var out []Delivery
	for after := uint64(0); ; {
		ds, next, err := page(context.Background(), after, 7)
		if err != nil {
			t.Fatalf("read deliveries after %d: %v", after, err)
		}
		out = append(out, ds...)
		if next == 0 {
			return out
		}
		after = next
	}
}

// waitFor polls cond until it holds, failing t after limit with what it
// waited for.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond) // a poll interval, not a wait for an event
	}
}

// withPoolSize returns the PostgreSQL URL u with the pool of a process
// that opens it bounded to n connections (pool_max_conns).
func withPoolSize(t *testing.T, u string, n int) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := pu.Query()
	q.Set("pool_max_conns", strconv.Itoa(n))
	pu.RawQuery = q.Encode()
	return pu.String()
}

// holdWriterLock begins a transaction on admin that holds db's writer
// lock, as another process's batch would, and returns it with the lock's
// key; the transaction is rolled back at the end of the test unless the
// test ends it first.
func holdWriterLock(t *testing.T, admin *pgx.Conn, db *DB) (pgx.Tx, int64) {
	t.Helper()
	ctx := context.Background()
	holder, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Rollback(ctx) })
	writer := db.eng.(*pgEngine).locks.writer
	if _, err := holder.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, writer); err != nil {
		t.Fatal(err)
	}
	return holder, writer
}
