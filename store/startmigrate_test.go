package store

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/openvultron/vultron/internal/pgtest"
)

// recordsVersion reads the schema version of db's records.
func recordsVersion(t *testing.T, db *DB) uint64 {
	t.Helper()
	var v uint64
	err := db.eng.view(context.Background(), func(tx kvTx) error {
		v, _ = schemaVersionOf(tx.Bucket(bucketMeta))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// setRecordsVersion writes v as the schema version of db's records, as a
// release that reads version v would have left it.
func setRecordsVersion(t *testing.T, db *DB, v uint64) {
	t.Helper()
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	if err := db.eng.update(context.Background(), func(tx kvTx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, b)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRecordsAreNotMigratedUnderAProcessThatServesThem: on PostgreSQL a
// process of a new release migrated the store's records at its start
// while processes of the release before still served them, and these
// went on reading and writing the old layout (docs/operations.md,
// Upgrades: "stop every process before starting the new ones", which
// nothing enforced). A process that must migrate the records now
// refuses to start while another process has the database open, saying
// to stop them; once they are stopped it migrates. Processes of the new
// release that start together still all start: the first migrates,
// under the migration lock, and the others find nothing to migrate.
func TestRecordsAreNotMigratedUnderAProcessThatServesThem(t *testing.T) {
	pg := backends[1]
	ctx := context.Background()
	t.Run("a process of the release before serves", func(t *testing.T) {
		u := pgtest.Database(t)
		old := pg.openURL(t, u, Options{})
		setRecordsVersion(t, old, SchemaVersion-1)

		db, err := OpenURL(ctx, u, Options{NoSync: true})
		if err == nil {
			db.Close()
			t.Fatal("a process migrated the records while another served them")
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "stop every process") {
			t.Fatalf("OpenURL while an older process serves = %v, want ErrLocked saying to stop every process", err)
		}
		if v := recordsVersion(t, old); v != SchemaVersion-1 {
			t.Fatalf("records at version %d after the refused start, want %d as they were", v, SchemaVersion-1)
		}
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}
		db = pg.openURL(t, u, Options{})
		if v := recordsVersion(t, db); v != SchemaVersion {
			t.Fatalf("records at version %d once the older process stopped, want %d", v, SchemaVersion)
		}
	})
	t.Run("processes of this release start together", func(t *testing.T) {
		u := pgtest.Database(t)
		first := pg.openURL(t, u, Options{})
		setRecordsVersion(t, first, SchemaVersion-1)
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		const n = 3
		dbs := make([]*DB, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { dbs[i], errs[i] = OpenURL(ctx, u, Options{NoSync: true}) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Errorf("process %d of %d starting together: %v", i+1, n, errs[i])
				continue
			}
			if v := recordsVersion(t, dbs[i]); v != SchemaVersion {
				t.Errorf("process %d: records at version %d, want %d", i+1, v, SchemaVersion)
			}
			dbs[i].Close()
		}
	})
}
