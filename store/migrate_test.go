package store

import (
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	bolt "go.etcd.io/bbolt"
)

// testdata/schema1.db.gz is a store file written by the store at schema
// version 1 (commit c154de2, before the delivery index), with
// Options{DataKey: testKey(1)} and the clock of newTestClock (T = 12:00):
// o1 → A (case-1), o1 → B (case-1), o2 → A (case-1), o2 → B (unordered),
// o3 → A (case-1), o3 → A (case-2) and o4 → B (case-1) queued at T, as
// deliveries 1 to 7; at T+1m a poll handed out 1, 2, 4 and 6, then 1 was
// retried for T+1h1m, 2 dead-lettered and 6 completed.
func TestOpenMigratesSchema1File(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vultron.db")
	gunzipFile(t, "testdata/schema1.db.gz", path)
	clock := newTestClock()
	clock.Advance(time.Minute)
	db, err := Open(path, Options{Now: clock.Now, NoSync: true, DataKey: testKey(1)})
	if err != nil {
		t.Fatalf("Open of a schema 1 file: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := db.PendingCount(ctx); err != nil || n != 5 {
		t.Errorf("PendingCount = %d, %v; want 5", n, err)
	}
	if n, err := db.DeadLetterCount(ctx); err != nil || n != 1 {
		t.Errorf("DeadLetterCount = %d, %v; want 1", n, err)
	}
	// Heads: 1 (case-1 to A, retried for later), 7 (case-1 to B, since 2
	// is a dead letter) and 4 (unordered); 3 and 5 wait behind 1.
	due, err := db.DueDeliveries(ctx, clock.Now(), 10)
	if err != nil || !slices.Equal(ids(due), []uint64{4, 7}) {
		t.Fatalf("due after the migration = %v, %v; want [4 7]", ids(due), err)
	}
	later := clock.Advance(2 * time.Hour)
	due, err = db.DueDeliveries(ctx, later, 10)
	if err != nil || !slices.Equal(ids(due), []uint64{4, 7, 1}) {
		t.Fatalf("due once the retry is due = %v, %v; want [4 7 1]", ids(due), err)
	}
	if due[2].Attempts != 1 || due[2].LastError != "503 Service Unavailable" {
		t.Errorf("retried delivery after the migration = %+v", due[2])
	}
	// The queue keeps working: completing 1 hands out 3, then 5.
	for _, want := range []uint64{3, 5} {
		if err := db.CompleteDelivery(ctx, due[len(due)-1].ID); err != nil {
			t.Fatal(err)
		}
		if due, err = db.DueDeliveries(ctx, later, 10); err != nil || !slices.Equal(ids(due), []uint64{want}) {
			t.Fatalf("due = %v, %v; want [%d]", ids(due), err, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	rawView(t, path, func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if v := binary.BigEndian.Uint64(meta.Get(keySchemaVersion)); v != SchemaVersion {
			t.Errorf("schema version after the migration = %d, want %d", v, SchemaVersion)
		}
		if meta.Get(keyIndexThrough) != nil {
			t.Error("the migration left its progress marker behind")
		}
		return nil
	})
}

// TestDeliveryIndexMigration builds the index of a version 1 queue of 200
// deliveries (lanes, unordered ones, retried heads, dead letters) in one
// transaction, in transactions of 7, and resumed after an interruption,
// and checks each against the queue it was built from.
func TestDeliveryIndexMigration(t *testing.T) {
	key := testKey(5)
	tests := []struct {
		name    string
		migrate func(t *testing.T, path string)
	}{
		{name: "at open, one transaction"},
		{
			name: "transactions of 7",
			migrate: func(t *testing.T, path string) {
				withRaw(t, path, func(eng *boltEngine, sl *sealer) {
					if err := migrateSchema(context.Background(), eng, sl, 7, zerolog.Nop()); err != nil {
						t.Fatal(err)
					}
				})
			},
		},
		{
			name: "interrupted after two transactions, resumed at open",
			migrate: func(t *testing.T, path string) {
				withRaw(t, path, func(eng *boltEngine, sl *sealer) {
					ctx := context.Background()
					if err := eng.update(ctx, func(tx kvTx) error { _, err := startDeliveryIndex(tx); return err }); err != nil {
						t.Fatal(err)
					}
					for range 2 {
						if err := eng.update(ctx, func(tx kvTx) error { _, _, err := stepDeliveryIndex(tx, sl, 7); return err }); err != nil {
							t.Fatal(err)
						}
					}
					// Half-way, the file already says version 2, so a
					// binary that does not keep the index refuses it.
					if err := eng.view(ctx, func(tx kvTx) error {
						meta := tx.Bucket(bucketMeta)
						through, err := readCount(meta, keyIndexThrough)
						indexed := 0
						c := tx.Bucket(bucketDeliveries).Cursor()
						for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= through; k, _ = c.Next() {
							indexed++
						}
						if v := binary.BigEndian.Uint64(meta.Get(keySchemaVersion)); v != 2 || err != nil || indexed != 14 {
							t.Errorf("half-way: version %d, %d deliveries indexed (through %d, %v); want 2 and 14", v, indexed, through, err)
						}
						return nil
					}); err != nil {
						t.Fatal(err)
					}
				})
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "vultron.db")
			clock := newTestClock()
			opts := Options{Now: clock.Now, NoSync: true, DataKey: key}
			db, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			mustPutActor(t, db, "coord")
			queueBehindDeadPeer(t, db, 200, 9, clock.Now().Add(time.Hour))
			enqueue(t, db, "fresh", DeliveryTarget{inboxA, "case-x"}, DeliveryTarget{inboxA, "case-x"}, DeliveryTarget{inboxB, ""})
			for _, d := range allDeliveries(t, db, false)[:12] {
				if err := db.DeadLetter(ctx, d.ID, "410 Gone"); err != nil {
					t.Fatal(err)
				}
			}
			wantPending, wantDead := allDeliveries(t, db, false), allDeliveries(t, db, true)
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			downgradeToSchema1(t, path)

			if tt.migrate != nil {
				tt.migrate(t, path)
			}
			if db, err = Open(path, opts); err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Check(ctx); err != nil {
				t.Fatalf("after the migration: %v", err)
			}
			if n, err := db.PendingCount(ctx); err != nil || n != len(wantPending) {
				t.Errorf("PendingCount = %d, %v; want %d", n, err, len(wantPending))
			}
			if n, err := db.DeadLetterCount(ctx); err != nil || n != len(wantDead) {
				t.Errorf("DeadLetterCount = %d, %v; want %d", n, err, len(wantDead))
			}
			for _, now := range []time.Time{clock.Now(), clock.Now().Add(2 * time.Hour)} {
				want := referenceDue(wantPending, nil, now, 1000)
				got, err := db.DueDeliveries(ctx, now.Add(0), 1000)
				if err != nil || !slices.EqualFunc(got, want, deliveriesEqual) {
					t.Fatalf("due at %s = %v, %v\nwant %v", now.Format(time.TimeOnly), ids(got), err, ids(want))
				}
				db.leaseMu.Lock()
				clear(db.leases)
				db.leaseMu.Unlock()
			}
		})
	}
}

// downgradeToSchema1 turns a store file into the version 1 layout: no
// delivery index, no counts.
func downgradeToSchema1(t testing.TB, path string) {
	t.Helper()
	rawUpdate(t, path, func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketDeliveriesDue, bucketDeliveryLanes} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, key := range [][]byte{keyPendingCount, keyDeadCount} {
			if err := meta.Delete(key); err != nil {
				return err
			}
		}
		return writeCount(boltBkt{meta}, keySchemaVersion, 1)
	})
}

// withRaw opens the store file at path with bbolt and the test data key,
// without Open, and passes both to fn.
func withRaw(t *testing.T, path string, fn func(*boltEngine, *sealer)) {
	t.Helper()
	sl, err := newSealer(testKey(5), nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := openBolt(path, true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	if err := eng.update(context.Background(), initSchema); err != nil {
		t.Fatal(err)
	}
	fn(eng, sl)
}

func gunzipFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, zr); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkOpenMigratesDeliveryIndex measures the Open of a version 1 file
// whose queue holds 100,000 deliveries behind a dead peer (see
// BenchmarkDueDeliveries): the build of their index in transactions of
// 10,000, with fsync.
func BenchmarkOpenMigratesDeliveryIndex(b *testing.B) {
	const n = 100000
	dir := b.TempDir()
	v1 := filepath.Join(dir, "v1.db")
	clock := newTestClock()
	opts := Options{Now: clock.Now, DataKey: testKey(9)}
	db, err := Open(v1, Options{Now: clock.Now, NoSync: true, DataKey: testKey(9)})
	if err != nil {
		b.Fatal(err)
	}
	mustPutActor(b, db, "coord")
	fillDeadBacklog(b, db, n, clock.Now())
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	downgradeToSchema1(b, v1)
	raw, err := os.ReadFile(v1)
	if err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, "vultron.db")
	for b.Loop() {
		b.StopTimer()
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		db, err := Open(path, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if n, err := db.PendingCount(context.Background()); err != nil || n != 100000 {
			b.Fatalf("PendingCount after the migration = %d, %v", n, err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// TestMigrateBolt migrates a schema 1 file to SchemaVersion without
// serving it, which a copy then accepts where it refused the old file with
// the command that migrates it; it refuses a missing file (creating
// none) and a file a node holds.
func TestMigrateBolt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "vultron.db")
	gunzipFile(t, "testdata/schema1.db.gz", path)
	to := "bolt:" + filepath.Join(dir, "copy.db")

	_, err := Copy(ctx, "bolt:"+path, to)
	if want := "vultron migrate --store bolt:" + path; !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), want) {
		t.Fatalf("copy of a schema 1 file: %v; want ErrSchema naming %q", err, want)
	}

	held, err := Open(filepath.Join(dir, "other.db"), Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if _, _, err := MigrateBolt(ctx, filepath.Join(dir, "other.db"), Options{LockTimeout: 10 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("migrate of a file held open: %v, want ErrLocked", err)
	}

	missing := filepath.Join(dir, "nosuch.db")
	if _, _, err := MigrateBolt(ctx, missing, Options{}); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("migrate of a missing file: %v; want no such file", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("migrate of a missing file created it (%v)", err)
	}

	if _, _, err := MigrateBolt(ctx, path, Options{NoSync: true}); !errors.Is(err, ErrDataKey) {
		t.Errorf("migrate of a sealed file without its key: %v, want ErrDataKey", err)
	}
	from, ver, err := MigrateBolt(ctx, path, Options{DataKey: testKey(1), NoSync: true})
	if err != nil || from != 1 || ver != SchemaVersion {
		t.Fatalf("migrate of a schema 1 file: %d → %d, %v; want 1 → %d", from, ver, err, SchemaVersion)
	}
	from, ver, err = MigrateBolt(ctx, path, Options{DataKey: testKey(1), NoSync: true})
	if err != nil || from != SchemaVersion || ver != SchemaVersion {
		t.Errorf("migrate again: %d → %d, %v; want %d → %d", from, ver, err, SchemaVersion, SchemaVersion)
	}
	if _, err := Copy(ctx, "bolt:"+path, to); err != nil {
		t.Fatalf("copy of the migrated file: %v", err)
	}
	db, err := OpenURL(ctx, to, Options{DataKey: testKey(1), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if n, err := db.PendingCount(ctx); err != nil || n != 5 {
		t.Errorf("PendingCount of the copy = %d, %v; want 5", n, err)
	}
}
