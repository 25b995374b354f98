package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/internal/pgtest"
)

// dump lists every bucket, key, value and sequence of the store at u, as
// stored (sealed values as they are), in order.
func dump(t *testing.T, u string) string {
	t.Helper()
	eng, err := openRawEngine(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	var out strings.Builder
	var walk func(path string, b kvBucket)
	walk = func(path string, b kvBucket) {
		fmt.Fprintf(&out, "bucket %s seq %d\n", path, b.Sequence())
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				walk(fmt.Sprintf("%s/%x", path, k), b.Bucket(k))
				continue
			}
			fmt.Fprintf(&out, "%s %x = %x\n", path, k, v)
		}
	}
	if err := eng.view(context.Background(), func(tx kvTx) error {
		return tx.ForEachBucket(func(name []byte) error {
			walk(fmt.Sprintf("%x", name), tx.Bucket(name))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestCopyBetweenEngines copies a sealed store from bbolt to PostgreSQL and
// back, and checks that every bucket, key, value and sequence arrived as
// it was, and that each copy opens with the same data key and keeps
// working where the original left off.
func TestCopyBetweenEngines(t *testing.T) {
	ctx := context.Background()
	boltURL := "bolt:" + filepath.Join(t.TempDir(), "vultron.db")
	db, err := OpenURL(ctx, boltURL, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, boltURL)

	pgURL := pgtest.Database(t)
	back := "bolt:" + filepath.Join(t.TempDir(), "back.db")
	for _, hop := range []struct{ from, to string }{{boltURL, pgURL}, {pgURL, back}} {
		st, err := Copy(ctx, hop.from, hop.to)
		if err != nil {
			t.Fatalf("copy %s → %s: %v", hop.from, hop.to, err)
		}
		if st.Keys == 0 || st.Buckets < len(allBuckets) {
			t.Errorf("copy %s → %s: %+v", hop.from, hop.to, st)
		}
		if got := dump(t, hop.to); got != want {
			t.Errorf("copy to %s differs from the source:\n%s", hop.to, firstDiff(want, got))
		}
		if _, err := Copy(ctx, hop.from, hop.to); !errors.Is(err, ErrInvalid) {
			t.Errorf("copy into a store that is not empty: %v, want ErrInvalid", err)
		}
		c, err := OpenURL(ctx, hop.to, Options{DataKey: testKey(2), NoSync: true})
		if err != nil {
			t.Fatalf("open the copy %s: %v", hop.to, err)
		}
		checkStore(t, c)
		if err := c.Check(ctx); err != nil {
			t.Error(err)
		}
		if v, err := c.VerifyAudit(ctx); err != nil || !v.OK {
			t.Errorf("audit of the copy: %+v, %v", v, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The copy keeps working: sequences continue where they were.
	c, err := OpenURL(ctx, back, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, c, "coord")
	enqueue(t, c, "after-copy", DeliveryTarget{Recipient: inboxA})
	ds := allDeliveries(t, c, false)
	if len(ds) != 2 || ds[1].ID <= ds[0].ID || ds[1].ActivityID != "after-copy" {
		t.Errorf("pending after a copy and an enqueue: %+v", ds)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenURL(ctx, back, Options{NoSync: true}); !errors.Is(err, ErrDataKey) {
		t.Errorf("a sealed copy opened without its key: %v, want ErrDataKey", err)
	}
}

func TestCopyRefusesWhatIsNotAStore(t *testing.T) {
	ctx := context.Background()
	emptyPath := filepath.Join(t.TempDir(), "empty.db")
	eng, err := openBolt(emptyPath, true, DefaultLockTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.close(); err != nil {
		t.Fatal(err)
	}
	empty := "bolt:" + emptyPath
	if _, err := Copy(ctx, empty, "bolt:"+filepath.Join(t.TempDir(), "to.db")); !errors.Is(err, ErrSchema) {
		t.Errorf("copy from a bbolt file without buckets: %v, want ErrSchema", err)
	}
	if _, err := Copy(ctx, "mysql://x", empty); !errors.Is(err, ErrInvalid) {
		t.Errorf("copy from an unknown URL: %v, want ErrInvalid", err)
	}
}

// TestCopyOnlyReadsItsSource: a copy refused for its source creates
// nothing, neither in the source (a missing file, the tables of an empty
// database) nor at the destination, and a bbolt source is opened read-only
// (its mode stays what it was).
func TestCopyOnlyReadsItsSource(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dst := filepath.Join(dir, "y.db")
	pgDst := pgtest.Database(t)
	noFile := func(what, path string) {
		t.Helper()
		if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s exists after the copy was refused (%v)", what, path, err)
		}
	}

	// A mistyped bbolt path: "no such file", and no file on either side.
	missing := filepath.Join(dir, "nosuch.db")
	for _, to := range []string{"bolt:" + dst, pgDst} {
		_, err := Copy(ctx, "bolt:"+missing, to)
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "no such file") || !strings.Contains(err.Error(), missing) {
			t.Errorf("copy from a missing file to %s: %v; want a no-such-file error naming it", to, err)
		}
		noFile("missing source", missing)
	}
	noFile("destination of a missing source", dst)
	if tables := vultronTables(t, pgDst); len(tables) != 0 {
		t.Errorf("a copy from a missing file created %v in the destination database", tables)
	}

	// An empty file is not a store either; it stays empty.
	zero := filepath.Join(dir, "zero.db")
	if err := os.WriteFile(zero, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, "bolt:"+zero, "bolt:"+dst); !errors.Is(err, ErrSchema) {
		t.Errorf("copy from an empty file: %v, want ErrSchema", err)
	}
	if fi, err := os.Stat(zero); err != nil || fi.Size() != 0 || fi.Mode().Perm() != 0o644 {
		t.Errorf("the empty source after the copy: %v, %v; want 0 bytes, mode 0644", fi, err)
	}
	noFile("destination of an empty file", dst)

	// An empty PostgreSQL database: refused, and its tables not created.
	pgSrc := pgtest.Database(t)
	_, err := Copy(ctx, pgSrc, "bolt:"+dst)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "no tables") {
		t.Errorf("copy from an empty database: %v; want ErrSchema saying it has no tables", err)
	}
	if tables := vultronTables(t, pgSrc); len(tables) != 0 {
		t.Errorf("a copy from an empty database created %v in it", tables)
	}
	noFile("destination of an empty database", dst)

	// A store: the copy leaves the source file as it was, mode included.
	src := filepath.Join(dir, "src.db")
	db, err := Open(src, Options{DataKey: testKey(1), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, db, "vendor")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(src, 0o640); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(ctx, "bolt:"+src, "bolt:"+dst); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("the copy changed its source file")
	}
	if fi, err := os.Stat(src); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("the source after the copy: %v, %v; want mode 0640", fi, err)
	}

	// A copy that fails once it has created its destination file removes
	// the file.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	dst2 := filepath.Join(dir, "z.db")
	if _, err := Copy(canceled, "bolt:"+src, "bolt:"+dst2); !errors.Is(err, context.Canceled) {
		t.Errorf("copy with a canceled context: %v, want context.Canceled", err)
	}
	noFile("destination of a failed copy", dst2)

	// Tables older than this binary's: refused, not migrated.
	pgOld := pgtest.Database(t)
	odb, err := OpenURL(ctx, pgOld, Options{DataKey: testKey(1), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := odb.Close(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, pgOld)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DELETE FROM vultron_schema_migrations WHERE version = $1`, pgSchemaVersion); err != nil {
		t.Fatal(err)
	}
	_, err = Copy(ctx, pgOld, "bolt:"+dst2)
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "vultron migrate --store") {
		t.Errorf("copy from older tables: %v; want ErrSchema naming vultron migrate", err)
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM vultron_schema_migrations`).Scan(&have); err != nil || have != pgSchemaVersion-1 {
		t.Errorf("tables version after the refused copy: %d, %v; want %d", have, err, pgSchemaVersion-1)
	}
	noFile("destination of older tables", dst2)

	// The same file as source and destination: refused as such, not as a
	// file some node holds.
	if _, err := Copy(ctx, "bolt:"+src, "bolt:"+filepath.Join(dir, ".", "src.db")); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "same store") {
		t.Errorf("copy of a file onto itself: %v; want ErrInvalid saying it is the same store", err)
	}
}

// vultronTables lists the store's tables in the schema of the database
// at u.
func vultronTables(t *testing.T, u string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_name LIKE 'vultron%' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if !bytes.Equal([]byte(al[i]), []byte(bl[i])) {
			return fmt.Sprintf("line %d:\nwant %s\n got %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}
