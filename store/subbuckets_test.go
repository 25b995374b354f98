package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/openvultron/vultron/internal/pgtest"
)

// A PostgreSQL process keeps the ids of sub-buckets between write
// transactions (pgEngine.sub). These tests check that it saves the lookups,
// and that no process ever uses an id of a bucket that is gone: one deleted
// by another process, or one created by a transaction that rolled back.

// putIn writes key=value into the sub-bucket sub of case c, creating both.
func putIn(t *testing.T, db *DB, c, sub, key, value string) {
	t.Helper()
	err := db.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.Case(c)
		if err != nil {
			return err
		}
		s, err := cb.Bucket(sub)
		if err != nil {
			return err
		}
		return s.Put([]byte(key), []byte(value))
	})
	if err != nil {
		t.Fatalf("put %s/%s/%s: %v", c, sub, key, err)
	}
}

// getIn reads key of the sub-bucket sub of case c in a write transaction,
// which is where the cache is used; "" when the bucket or key is missing.
func getIn(t *testing.T, db *DB, c, sub, key string) string {
	t.Helper()
	var v []byte
	err := db.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.ReadTx.Case(c)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		b := cb.b.Bucket([]byte(sub))
		if b == nil {
			return nil
		}
		v = (&CaseBucket{b: b, name: c + "/" + sub, r: &tx.ReadTx, root: cb.root}).Get([]byte(key))
		return nil
	})
	if err != nil {
		t.Fatalf("get %s/%s/%s: %v", c, sub, key, err)
	}
	return string(v)
}

// TestPostgresSubBucketRoundTrips counts what a write into a sub-bucket
// costs once the process has written its case before: BEGIN with the
// writer lock and the count of bucket deletions; the bucket created when
// it is new; the write with the commit's notification; COMMIT. Before the
// cache, a known sub-bucket cost two more (a lookup of the case's bucket
// and one of the sub-bucket) and a new one a lookup that found nothing;
// before BEGIN went with the lock, one more.
func TestPostgresSubBucketRoundTrips(t *testing.T) {
	for _, tt := range []struct {
		name, sub string
		want      uint64
	}{
		{"a sub-bucket written before", "index", 3},
		{"a new sub-bucket", "a new one", 4},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openPostgresTest(t, Options{})
			putIn(t, db, "case-1", "index", "a", "1")
			since := pgTrips(t, db)
			putIn(t, db, "case-1", tt.sub, "b", "2")
			if got := since(); got != tt.want {
				t.Errorf("the write took %d round trips, want %d", got, tt.want)
			}
			if got := getIn(t, db, "case-1", tt.sub, "b"); got != "2" {
				t.Errorf("the write read back %q, want 2", got)
			}
		})
	}
}

func TestPostgresSubBucketDeletedByAnotherProcessIsNotUsed(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	a, b := dbs[0], dbs[1]
	putIn(t, a, "case-1", "index", "k", "old")
	if got := getIn(t, a, "case-1", "index", "k"); got != "old" {
		t.Fatalf("read %q, want old", got)
	}
	// The other process deletes the bucket and makes a new one of the same
	// name, which gets a new id.
	err := b.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		return cb.DeleteBucket("index")
	})
	if err != nil {
		t.Fatal(err)
	}
	putIn(t, b, "case-1", "index", "k", "new")
	if got := getIn(t, a, "case-1", "index", "k"); got != "new" {
		t.Errorf("after another process replaced the bucket, the first read %q, want new", got)
	}
	putIn(t, a, "case-1", "index", "k2", "from a")
	if got := getIn(t, b, "case-1", "index", "k2"); got != "from a" {
		t.Errorf("a write of the first process after the replacement reads back %q in the other, want it written to the new bucket", got)
	}
	if err := a.Check(context.Background()); err != nil {
		t.Errorf("check after the writes: %v", err)
	}
}

func TestPostgresSubBucketOfARolledBackWriteIsNotKept(t *testing.T) {
	db := openPostgresTest(t, Options{})
	putIn(t, db, "case-1", "index", "k", "v")
	errRollBack := errors.New("roll back")
	err := db.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		s, err := cb.Bucket("made and undone")
		if err != nil {
			return err
		}
		if err := s.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		return errRollBack
	})
	if !errors.Is(err, errRollBack) {
		t.Fatalf("Update = %v, want the function's error", err)
	}
	err = db.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.ReadTx.Case("case-1")
		if err != nil {
			return err
		}
		if cb.b.Bucket([]byte("made and undone")) != nil {
			t.Error("a bucket created by a transaction that rolled back is found by the next one")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPostgresSubBucketMadeByAnotherProcessIsFound(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	putIn(t, dbs[0], "case-1", "index", "k", "from the first")
	// The second process knows neither bucket: its create finds them.
	putIn(t, dbs[1], "case-1", "index", "k2", "from the second")
	for _, db := range dbs {
		if got := getIn(t, db, "case-1", "index", "k"); got != "from the first" {
			t.Errorf("k = %q, want the first process's value", got)
		}
		if got := getIn(t, db, "case-1", "index", "k2"); got != "from the second" {
			t.Errorf("k2 = %q, want the second process's value", got)
		}
	}
	if err := dbs[0].Check(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestPostgresSubBucketsOfAnOlderCountAreNotKept: a transaction commits,
// and before it adds what it found to the cache, another transaction of
// the process has read a newer count of bucket deletions and emptied it.
// What the first found may be gone; it must not come back.
func TestPostgresSubBucketsOfAnOlderCountAreNotKept(t *testing.T) {
	e := &pgEngine{subGen: 5}
	var err error
	if e.sub, err = lru.New[string, subEntry](8); err != nil {
		t.Fatal(err)
	}
	tx := &pgTx{e: e, buckets: map[string]*pgBucket{cacheKey(7, []byte("index")): {id: 9}}}
	e.keepSubBuckets(tx, 4)
	if e.sub.Len() != 0 {
		t.Errorf("a transaction that read count 4 added %d buckets to a cache at count 5", e.sub.Len())
	}
	e.keepSubBuckets(tx, 5)
	if ent, ok := e.sub.Get(cacheKey(7, []byte("index"))); !ok || ent.id != 9 {
		t.Errorf("a transaction at the cache's count kept %d, %v; want 9", ent.id, ok)
	}
}

// TestPostgresNewBucketIsReadWithoutAsking reads keys and a sub-bucket of a
// bucket the same transaction created: nothing can be there but what it
// wrote, so no read goes to the server.
func TestPostgresNewBucketIsReadWithoutAsking(t *testing.T) {
	db := openPostgresTest(t, Options{})
	putIn(t, db, "case-1", "index", "a", "1") // the write lock's first use
	since := pgTrips(t, db)
	err := db.Update(context.Background(), func(tx *Tx) error {
		cb, err := tx.Case("case-2")
		if err != nil {
			return err
		}
		if v := cb.Get([]byte("k")); v != nil {
			t.Errorf("Get in a new bucket = %q, want nil", v)
		}
		if cb.b.Bucket([]byte("sub")) != nil {
			t.Error("a new bucket has a sub-bucket")
		}
		if err := cb.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		if v := cb.Get([]byte("k")); string(v) != "v" {
			t.Errorf("Get after Put = %q, want v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// BEGIN with the writer lock; the bucket created; the write with the
	// notification; COMMIT. Before: a read of k and a lookup of sub too.
	if got := since(); got != 4 {
		t.Errorf("the transaction took %d round trips, want 4", got)
	}
	err = db.View(context.Background(), func(tx *ReadTx) error {
		cb, err := tx.Case("case-2")
		if err != nil {
			return err
		}
		if v := cb.Get([]byte("k")); string(v) != "v" {
			t.Errorf("after the commit k = %q, want v", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresWritesReadWhatTheyReadBeforeWithTheLock repeats a write that
// reads a count and takes a number from a bucket's sequence, as the
// node's writes do: once two transactions have read them, the next reads
// both in the round trip that takes the writer lock, and still sees what
// another process wrote in between.
func TestPostgresWritesReadWhatTheyReadBeforeWithTheLock(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	db, other := dbs[0], dbs[1]
	step := func(d *DB) (count string, seq uint64) {
		t.Helper()
		err := d.Update(context.Background(), func(tx *Tx) error {
			cb, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			s, err := cb.Bucket("log")
			if err != nil {
				return err
			}
			count = string(cb.Get([]byte("count")))
			if seq, err = s.NextSequence(); err != nil {
				return err
			}
			return cb.Put([]byte("count"), []byte(fmt.Sprint(seq)))
		})
		if err != nil {
			t.Fatal(err)
		}
		return count, seq
	}
	for range 3 {
		step(db)
	}
	since := pgTrips(t, db)
	if count, seq := step(db); count != "3" || seq != 4 {
		t.Fatalf("fourth step read count %q and took %d; want 3 and 4", count, seq)
	}
	// BEGIN with the lock, the count and the sequence; the writes with the
	// notification; COMMIT. Before: a round trip for each of the two reads.
	if got := since(); got != 3 {
		t.Errorf("the fourth step took %d round trips, want 3", got)
	}
	// Another process takes a number and writes the count: the next step
	// here reads both as that process left them.
	if count, seq := step(other); count != "4" || seq != 5 {
		t.Fatalf("the other process read count %q and took %d; want 4 and 5", count, seq)
	}
	if count, seq := step(db); count != "5" || seq != 6 {
		t.Errorf("after the other process, the step read count %q and took %d; want 5 and 6", count, seq)
	}
}

// TestPostgresReadAheadCases reads a page of twenty cases, each's bucket
// and two keys of it: in two requests, not sixty.
func TestPostgresReadAheadCases(t *testing.T) {
	db := openPostgresTest(t, Options{})
	var ids []string
	for i := range 20 {
		id := fmt.Sprintf("https://v.example/cases/%02d", i)
		ids = append(ids, id)
		putIn(t, db, id, "sub", "k", "v") // the case's bucket, with a sub-bucket
		err := db.Update(context.Background(), func(tx *Tx) error {
			cb, err := tx.Case(id)
			if err != nil {
				return err
			}
			return cb.Put([]byte("case"), []byte(id))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ids = append(ids, "https://v.example/cases/missing")
	since := pgTrips(t, db)
	err := db.View(context.Background(), func(tx *ReadTx) error {
		tx.ReadAheadCases(ids, []byte("case"), []byte("host"))
		for _, id := range ids {
			cb, err := tx.Case(id)
			if id == "https://v.example/cases/missing" {
				if !errors.Is(err, ErrNotFound) {
					t.Errorf("Case(%s) = %v, want ErrNotFound", id, err)
				}
				continue
			}
			if err != nil {
				return err
			}
			if got := string(cb.Get([]byte("case"))); got != id {
				t.Errorf("case record of %s = %q", id, got)
			}
			if cb.Get([]byte("host")) != nil {
				t.Errorf("%s has a host key", id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// BEGIN with the buckets; their keys; COMMIT.
	if got := since(); got != 3 {
		t.Errorf("reading twenty cases ahead took %d round trips, want 3", got)
	}
}

// TestPostgresReadBeginsWithItsFirstRequest: a read transaction sends
// BEGIN with its first statement, not alone, and one that asks nothing
// sends nothing.
func TestPostgresReadBeginsWithItsFirstRequest(t *testing.T) {
	db := openPostgresTest(t, Options{DataKey: testKey(6)})
	ctx := context.Background()
	if err := db.PutRemoteKey(ctx, RemoteKey{KeyID: "https://peer.example/actors/a#main-key", Owner: "https://peer.example/actors/a",
		PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		read func(tx *ReadTx) error
		want uint64
	}{
		{"nothing", func(*ReadTx) error { return nil }, 0},
		{"one key", func(tx *ReadTx) error {
			if tx.bucket(bucketRemoteKeys).Get([]byte("https://peer.example/actors/a#main-key")) == nil {
				return errors.New("the key is not there")
			}
			return nil
		}, 2}, // BEGIN with the read; COMMIT
	} {
		since := pgTrips(t, db)
		if err := db.View(ctx, c.read); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := since(); got != c.want {
			t.Errorf("a read transaction that reads %s took %d round trips, want %d", c.name, got, c.want)
		}
	}
}

// TestPostgresReadsUseTheSubBucketsTheProcessKnows: a read transaction
// finds the namespaces the process wrote or read before without asking
// for each, once its snapshot shows that no bucket was deleted since.
func TestPostgresReadsUseTheSubBucketsTheProcessKnows(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ids := []string{"case-1", "case-2", "case-3", "case-4", "case-5"}
	for _, id := range ids {
		putIn(t, db, id, "index", "k", id)
	}
	open := func() uint64 {
		t.Helper()
		since := pgTrips(t, db)
		err := db.View(context.Background(), func(tx *ReadTx) error {
			for _, id := range ids {
				if _, err := tx.Case(id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return since()
	}
	// The first lookup begins the transaction and is asked; the other
	// four answer from the process's cache; COMMIT.
	if got := open(); got != 2 {
		t.Errorf("opening five namespaces the process wrote took %d round trips, want 2", got)
	}
	for _, id := range ids {
		if got := getIn(t, db, id, "index", "k"); got != id {
			t.Errorf("%s/index/k = %q", id, got)
		}
	}
}

// TestPostgresReadDoesNotSeeANamespaceMadeAfterItBegan: a namespace
// created, and cached by the process, after a read transaction took its
// snapshot is not in that snapshot, and the read does not see it.
func TestPostgresReadDoesNotSeeANamespaceMadeAfterItBegan(t *testing.T) {
	db := openPostgresTest(t, Options{})
	putIn(t, db, "case-1", "index", "k", "v")
	ctx := context.Background()
	err := db.View(ctx, func(tx *ReadTx) error {
		if _, err := tx.Case("case-1"); err != nil { // the snapshot is taken
			return err
		}
		putIn(t, db, "case-2", "index", "k", "v") // committed, and cached
		if _, err := tx.Case("case-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a read that began before case-2 was made opens it: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := getIn(t, db, "case-2", "index", "k"); got != "v" {
		t.Errorf("a later read finds case-2/index/k = %q, want v", got)
	}
}

// TestPostgresReadAfterAnotherProcessDeletedANamespace: another process
// deletes a namespace this process has cached; this process's next read
// sees in its snapshot that a bucket was deleted, and asks.
func TestPostgresReadAfterAnotherProcessDeletedANamespace(t *testing.T) {
	dbs := openShared(t, 2, Options{})
	a, b := dbs[0], dbs[1]
	putIn(t, a, "case-1", "index", "k", "v")
	putIn(t, a, "case-2", "index", "k", "v")
	if err := b.Update(context.Background(), func(tx *Tx) error { return tx.DeleteCase("case-2") }); err != nil {
		t.Fatal(err)
	}
	err := a.View(context.Background(), func(tx *ReadTx) error {
		if _, err := tx.Case("case-1"); err != nil { // begins: reads the count of deletions
			return err
		}
		if _, err := tx.Case("case-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("after another process deleted case-2, a read opens it from the cache: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresFindBucketsUsesItsIndexUnderAGenericPlan: the driver prepares
// its statements, and after a few runs the server may plan one once for
// any values. The lookup of many sub-buckets by name must then still
// descend the (parent, name) index once per name, and not read every child
// of the parent: the bucket that holds every case and report has as many
// children as the node has cases and reports.
func TestPostgresFindBucketsUsesItsIndexUnderAGenericPlan(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	// Each namespace has a sub-bucket of its own, as a case has its
	// ledger: most parents have one child, which is what a plan for any
	// parent expects.
	const children = 3000
	err := db.Update(ctx, func(tx *Tx) error {
		for i := range children {
			cb, err := tx.Case(fmt.Sprintf("report https://peer.example/reports/%d", i))
			if err != nil {
				return err
			}
			if _, err := cb.Bucket("ledger"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e := db.eng.(*pgEngine)
	parent, ok := e.topID(bucketCases)
	if !ok {
		t.Fatal("the cases bucket's id is not known")
	}
	// A connection of its own, taken out of the pool and closed at the
	// end: the settings below must not reach the store's connections.
	pooled, err := e.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	for _, q := range []string{
		`ANALYZE vultron_buckets`,
		`ANALYZE vultron_kv`,
		`SET plan_cache_mode = force_generic_plan`,
		`PREPARE find_buckets(bigint, bytea[]) AS ` + pgFindBuckets,
		`PREPARE read_keys(bigint[], bytea[]) AS ` + pgReadKeys,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	names := `ARRAY[convert_to('report https://peer.example/reports/7', 'UTF8'), convert_to('report https://peer.example/reports/none', 'UTF8')]`
	for _, c := range []struct{ what, explain string }{
		{"finding 2 of 3000 sub-buckets", fmt.Sprintf(`EXECUTE find_buckets(%d, %s)`, parent, names)},
		{"reading 2 of 3000 keys", fmt.Sprintf(`EXECUTE read_keys(ARRAY[%d, %d]::bigint[], %s)`, parent, parent, names)},
	} {
		checkPlan(t, conn, c.what, c.explain)
	}
}

// checkPlan runs EXPLAIN ANALYZE of a prepared statement's execution and
// fails the test when the plan filtered rows out or read more than a few
// buffers: what a lookup by index does not do.
func checkPlan(t *testing.T, conn *pgx.Conn, what, execute string) {
	t.Helper()
	var plan []byte
	if err := conn.QueryRow(context.Background(), `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) `+execute).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var out []struct {
		Plan map[string]any `json:"Plan"`
	}
	if err := json.Unmarshal(plan, &out); err != nil || len(out) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	// Every node of the plan: what its filters removed, and the buffers
	// the whole statement read.
	removed := 0.0
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		if r, ok := n["Rows Removed by Filter"].(float64); ok {
			removed += r
		}
		subs, _ := n["Plans"].([]any)
		for _, s := range subs {
			if m, ok := s.(map[string]any); ok {
				walk(m)
			}
		}
	}
	walk(out[0].Plan)
	hits, _ := out[0].Plan["Shared Hit Blocks"].(float64)
	reads, _ := out[0].Plan["Shared Read Blocks"].(float64)
	if removed > 0 || hits+reads > 50 {
		t.Errorf("%s read %v buffers and filtered out %v rows, want a few buffers and none: %s", what, hits+reads, removed, plan)
	}
}

// TestPostgresBucketsCreatedWithTheCommit: a sub-bucket made in a bucket
// the same transaction made is created with the transaction's other
// writes, under an id taken ahead. Its sequence, its keys and its own
// sub-buckets are there after the commit; one made and deleted in the same
// transaction is not; and the tables stay consistent.
func TestPostgresBucketsCreatedWithTheCommit(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	var seq uint64
	err := db.Update(ctx, func(tx *Tx) error {
		cb, err := tx.Case("case-new")
		if err != nil {
			return err
		}
		log, err := cb.Bucket("log")
		if err != nil {
			return err
		}
		for range 3 {
			if seq, err = log.NextSequence(); err != nil {
				return err
			}
		}
		if err := log.Put([]byte("k"), []byte("v")); err != nil {
			return err
		}
		deep, err := log.Bucket("deep")
		if err != nil {
			return err
		}
		if err := deep.Put([]byte("k"), []byte("deep")); err != nil {
			return err
		}
		if _, err := cb.Bucket("gone"); err != nil {
			return err
		}
		return cb.DeleteBucket("gone")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *ReadTx) error {
		cb, err := tx.Case("case-new")
		if err != nil {
			return err
		}
		log, err := cb.Bucket("log")
		if err != nil {
			return err
		}
		if got := log.Sequence(); got != seq || seq != 3 {
			t.Errorf("the new bucket's sequence is %d after three NextSequence (last %d), want 3", got, seq)
		}
		if v := log.Get([]byte("k")); string(v) != "v" {
			t.Errorf("log/k = %q, want v", v)
		}
		deep, err := log.Bucket("deep")
		if err != nil {
			return err
		}
		if v := deep.Get([]byte("k")); string(v) != "deep" {
			t.Errorf("log/deep/k = %q, want deep", v)
		}
		if _, err := cb.Bucket("gone"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a bucket made and deleted in one transaction: %v, want ErrNotFound", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
}

// TestPostgresRoleThatOnlyReadsAndWritesTheTables: docs/operations.md asks
// of the node's role, once the tables exist, only to read and write them.
// Such a role may insert into the buckets table but not take ids from its
// sequence ahead (pgTx.bucketID): the node then creates its buckets one
// request each, and works.
func TestPostgresRoleThatOnlyReadsAndWritesTheTables(t *testing.T) {
	ctx := context.Background()
	u := pgtest.Database(t)
	roleURL, role, schema := readWriteRole(t, u)
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// No tables yet: the role may not make them, and is told what to do.
	if db, err := OpenURL(ctx, roleURL, Options{NoSync: true}); err == nil {
		db.Close()
		t.Fatal("a role that may not create tables opened a store without tables")
	} else if !strings.Contains(err.Error(), "run `vultron migrate` once with a role that may") {
		t.Errorf("opening without tables as %s: %v; want it to say to run vultron migrate", role, err)
	}
	admin, err := OpenURL(ctx, u, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, admin, "coord")
	if err := admin.Close(); err != nil {
		t.Fatal(err)
	}
	grant := `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ` + schema + ` TO ` + role
	if _, err := conn.Exec(ctx, grant); err != nil {
		t.Fatalf("%s: %v", grant, err)
	}
	db, err := OpenURL(ctx, roleURL, Options{NoSync: true})
	if err != nil {
		t.Fatalf("open as %s: %v", role, err)
	}
	defer db.Close()
	err = db.Update(ctx, func(tx *Tx) error {
		cb, err := tx.Case("case-1")
		if err != nil {
			return err
		}
		log, err := cb.Bucket("log") // in a bucket this transaction made
		if err != nil {
			return err
		}
		return log.Put([]byte("k"), []byte("v"))
	})
	if err != nil {
		t.Fatalf("a write that makes buckets, as a role that only reads and writes the tables: %v", err)
	}
	if got := getIn(t, db, "case-1", "log", "k"); got != "v" {
		t.Errorf("case-1/log/k = %q, want v", got)
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
}
