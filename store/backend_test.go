package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/pgtest"
)

// The store's conformance suite runs over both engines: a test written as
// forEachBackend(t, func(t *testing.T, be backend) { ... }) runs once on a
// bbolt file and once on a PostgreSQL database of the throw-away server the
// test binary starts (internal/pgtest).

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// backend is one engine the suite runs on.
type backend struct {
	name string
	// newURL returns the store URL of a new, empty store for t.
	newURL func(t testing.TB) string
}

var backends = []backend{
	{name: "bolt", newURL: func(t testing.TB) string {
		return "bolt:" + filepath.Join(t.TempDir(), "vultron.db")
	}},
	{name: "postgres", newURL: func(t testing.TB) string { return pgtest.Database(t) }},
}

// forEachBackend runs fn as a subtest per backend.
func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { fn(t, be) })
	}
}

// open opens a new store of this backend with fsync off and registers a
// cleanup that closes it and runs the consistency check, as openTestDB.
func (be backend) open(t *testing.T, opts Options) *DB {
	t.Helper()
	return be.openURL(t, be.newURL(t), opts)
}

// openURL opens the store at u like open.
func (be backend) openURL(t *testing.T, u string, opts Options) *DB {
	t.Helper()
	if opts.Now == nil {
		opts.Now = newTestClock().Now
	}
	opts.NoSync = true
	db, err := OpenURL(context.Background(), u, opts)
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Check(context.Background()); err != nil && !isClosed(err) {
			t.Errorf("Check: %v", err)
		}
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func isClosed(err error) bool { return errors.Is(err, ErrClosed) }

// leases returns the unexpired and expired leases in the due index, by
// delivery id.
func (e *pgEngine) leases(ctx context.Context) (map[uint64]time.Time, error) {
	rows, err := e.pool.Query(ctx, `SELECT k.key, k.lease FROM vultron_kv k
		JOIN vultron_buckets b ON b.id = k.bucket AND b.parent = 0 AND b.name = $1
		WHERE k.lease IS NOT NULL`, bucketDeliveriesDue)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[uint64]time.Time{}
	for rows.Next() {
		var (
			k     []byte
			lease int64
		)
		if err := rows.Scan(&k, &lease); err != nil {
			return nil, err
		}
		_, id, ok := splitDueKey(k)
		if !ok {
			return nil, fmt.Errorf("due key %x", k)
		}
		out[id] = time.Unix(0, lease)
	}
	return out, rows.Err()
}
