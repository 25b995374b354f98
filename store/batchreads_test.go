package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/pgtest"
)

// The queue's writes read several keys at once where a server round trip
// per key would make their cost grow with the number of deliveries
// (batchBucket). These tests check what the batches do on both engines, and,
// on PostgreSQL, how many round trips they take: a count of requests, not a
// time.

// pgTrips returns the PostgreSQL engine of db and a function that reports
// the round trips it made since.
func pgTrips(t *testing.T, db *DB) func() uint64 {
	t.Helper()
	e, ok := db.eng.(*pgEngine)
	if !ok {
		t.Fatalf("engine %T, want PostgreSQL", db.eng)
	}
	start := e.trips.n.Load()
	return func() uint64 { return e.trips.n.Load() - start }
}

// openPostgres opens a new store on the test binary's PostgreSQL server.
func openPostgresTest(t *testing.T, opts Options) *DB {
	t.Helper()
	for _, be := range backends {
		if be.name == "postgres" {
			return be.open(t, opts)
		}
	}
	t.Fatal("no postgres backend")
	return nil
}

// laneTargets returns n targets, each in its own lane of one case, as a
// Case Actor's event to n participants.
func laneTargets(n int) []DeliveryTarget {
	out := make([]DeliveryTarget, n)
	for i := range out {
		out[i] = DeliveryTarget{Recipient: fmt.Sprintf("https://p%d.example/actors/a", i), OrderingKey: "https://node.example/cases/1"}
	}
	return out
}

func TestPostgresEnqueueRoundTripsDoNotGrowWithRecipients(t *testing.T) {
	db := openPostgresTest(t, Options{})
	mustPutActor(t, db, "coord")
	trips := map[int]uint64{}
	for _, n := range []int{10, 300} {
		since := pgTrips(t, db)
		enqueue(t, db, fmt.Sprintf("https://node.example/activities/fan-%d", n), laneTargets(n)...)
		trips[n] = since()
	}
	// Each recipient's lane must be looked up, but not in a request of
	// its own: before, 300 recipients took 290 more round trips than 10.
	if trips[300] > trips[10]+2 {
		t.Errorf("enqueue to 10 recipients: %d round trips, to 300: %d; want the same give or take 2", trips[10], trips[300])
	}
	n, err := db.PendingCount(context.Background())
	if err != nil || n != 310 {
		t.Errorf("PendingCount = %d, %v; want 310", n, err)
	}
}

// pgStatements returns a function that reports the statements db's
// PostgreSQL engine sent since, in batches or not.
func pgStatements(t *testing.T, db *DB) func() uint64 {
	t.Helper()
	e, ok := db.eng.(*pgEngine)
	if !ok {
		t.Fatalf("engine %T, want PostgreSQL", db.eng)
	}
	start := e.trips.stmts.Load()
	return func() uint64 { return e.trips.stmts.Load() - start }
}

func TestPostgresWritesOfManyKeysAreFewStatements(t *testing.T) {
	clock := newTestClock()
	db := openPostgresTest(t, Options{Now: clock.Now, DeferDelay: time.Hour})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	stmts := map[int]uint64{}
	for _, n := range []int{10, 300} {
		since := pgStatements(t, db)
		enqueue(t, db, fmt.Sprintf("https://node.example/activities/fan-%d", n), laneTargets(n)...)
		stmts[n] = since()
	}
	// Each delivery writes its record, its lane key and its due key: the
	// writes of one kind go in one statement. Before, one statement each:
	// 870 more for 300 recipients than for 10.
	if stmts[300] > stmts[10]+4 {
		t.Errorf("enqueue to 10 recipients: %d statements, to 300: %d; want the same give or take 4", stmts[10], stmts[300])
	}
	// The first 10 recipients' second deliveries wait behind their first.
	due, err := db.DueDeliveries(ctx, clock.Now(), 1000)
	if err != nil || len(due) != 300 {
		t.Fatalf("DueDeliveries = %d, %v; want 300", len(due), err)
	}
	since := pgStatements(t, db)
	completeDeferred(t, db, due)
	// 300 completions delete 900 keys, append 300 audit records and make
	// 10 deliveries their lanes' heads.
	if got := since(); got > 40 {
		t.Errorf("%d deferred completions took %d statements; want at most 40", len(due), got)
	}
	if c, err := db.PendingCount(ctx); err != nil || c != 10 {
		t.Errorf("PendingCount = %d, %v; want 10", c, err)
	}
	if due, err := db.DueDeliveries(ctx, clock.Now(), 1000); err != nil || len(due) != 10 {
		t.Errorf("DueDeliveries after the completions = %d, %v; want the 10 that waited", len(due), err)
	}
}

// completeDeferred completes every delivery of due as deferred and commits
// them with one empty write (the tests open the store with a DeferDelay
// far longer than they run, so nothing else commits them), then checks
// that each completion succeeded.
func completeDeferred(t *testing.T, db *DB, due []Delivery) {
	t.Helper()
	done := make(chan error, len(due))
	for _, d := range due {
		if err := db.CompleteDeliveryDeferred(d.ID, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Update(context.Background(), func(*Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	for range due {
		if err := <-done; err != nil {
			t.Fatalf("deferred completion: %v", err)
		}
	}
}

func TestPostgresDeferredCompletionsReadInBatches(t *testing.T) {
	clock := newTestClock()
	db := openPostgresTest(t, Options{Now: clock.Now, DeferDelay: time.Hour})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	const n = 100
	enqueue(t, db, "https://node.example/activities/fan", laneTargets(n)...)
	due, err := db.DueDeliveries(ctx, clock.Now(), n)
	if err != nil || len(due) != n {
		t.Fatalf("DueDeliveries = %d, %v; want %d", len(due), err, n)
	}
	since := pgTrips(t, db)
	completeDeferred(t, db, due)
	// Before, each completion read its record, its due key and its lane
	// key in a round trip each: 300 and more for 100.
	if got := since(); got > 12 {
		t.Errorf("%d deferred completions took %d round trips; want at most 12", n, got)
	}
	if c, err := db.PendingCount(ctx); err != nil || c != 0 {
		t.Errorf("PendingCount = %d, %v; want 0", c, err)
	}
}

func TestPostgresClaimIsOneRoundTrip(t *testing.T) {
	clock := newTestClock()
	db := openPostgresTest(t, Options{Now: clock.Now})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	enqueue(t, db, "https://node.example/activities/fan", laneTargets(20)...)
	fewest := uint64(1 << 63)
	for _, want := range []int{8, 8, 4, 0} {
		since := pgTrips(t, db)
		due, err := db.DueDeliveries(ctx, clock.Now(), 8)
		if err != nil || len(due) != want {
			t.Fatalf("DueDeliveries = %d, %v; want %d", len(due), err, want)
		}
		// Before: BEGIN, the claim, COMMIT. A claim may also end the
		// leases of processes that are gone, every pgReapEvery.
		got := since()
		if got > 2 {
			t.Errorf("a claim of %d took %d round trips, want 1 (2 with a reap)", want, got)
		}
		fewest = min(fewest, got)
	}
	if fewest != 1 {
		t.Errorf("the fewest round trips a claim took: %d, want 1", fewest)
	}
}

func TestPostgresActivityReadIsOneRoundTrip(t *testing.T) {
	db := openPostgresTest(t, Options{DataKey: testKey(3)})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	id := "https://node.example/activities/1"
	enqueue(t, db, id, DeliveryTarget{Recipient: inboxA})
	since := pgTrips(t, db)
	a, err := db.Activity(ctx, id)
	if err != nil || string(a.Body) != string(activityBody(id, "out")) {
		t.Fatalf("Activity = %q, %v", a.Body, err)
	}
	// Before: BEGIN, the read, COMMIT.
	if got := since(); got != 1 {
		t.Errorf("reading an activity took %d round trips, want 1", got)
	}
	if _, err := db.Activity(ctx, id+"/missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Activity of a missing id = %v, want ErrNotFound", err)
	}
}

// TestBatchedQueueWritesKeepLanes checks the batched enqueue and completion
// against what one delivery at a time does: deliveries of one lane queued
// by one activity, a lane's head and the delivery behind it completed in
// one commit, a delivery completed twice and one that does not exist.
func TestBatchedQueueWritesKeepLanes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, DeferDelay: time.Hour, DataKey: testKey(4)})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		now := clock.Now()
		enqueue(t, db, "o1",
			DeliveryTarget{inboxA, "case-1"}, // 1: heads lane A/case-1
			DeliveryTarget{inboxA, "case-1"}, // 2: behind 1
			DeliveryTarget{inboxB, "case-1"}, // 3: heads lane B/case-1
			DeliveryTarget{inboxA, ""},       // 4: a lane of its own
			DeliveryTarget{inboxA, "case-1"}, // 5: behind 2
		)
		enqueue(t, db, "o2", DeliveryTarget{inboxB, "case-1"}) // 6: behind 3

		got, due := dueIDs(t, db, now)
		if want := []string{"o1→" + inboxA, "o1→" + inboxB, "o1→" + inboxA}; !slices.Equal(got, want) {
			t.Fatalf("due = %v, want %v", got, want)
		}
		ids := []uint64{due[0].ID, due[1].ID, due[2].ID}
		if !slices.Equal(ids, []uint64{1, 3, 4}) {
			t.Fatalf("due ids = %v, want [1 3 4]", ids)
		}

		// One commit: 1 (head of A), 2 (behind it, not leased), 3 twice,
		// and 99, which was never queued.
		type result struct {
			id  uint64
			err error
		}
		done := make(chan result, 5)
		for _, id := range []uint64{1, 2, 3, 3, 99} {
			if err := db.CompleteDeliveryDeferred(id, func(err error) { done <- result{id, err} }); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Update(ctx, func(*Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		var ok, missing []uint64
		for range 5 {
			r := <-done
			switch {
			case r.err == nil:
				ok = append(ok, r.id)
			case errors.Is(r.err, ErrNotFound):
				missing = append(missing, r.id)
			default:
				t.Fatalf("completion of %d: %v", r.id, r.err)
			}
		}
		slices.Sort(ok)
		slices.Sort(missing)
		if !slices.Equal(ok, []uint64{1, 2, 3}) || !slices.Equal(missing, []uint64{3, 99}) {
			t.Errorf("completed %v, not found %v; want [1 2 3] and [3 99]", ok, missing)
		}
		// 4 is still leased; 5 now heads lane A, 6 lane B.
		_, due = dueIDs(t, db, now)
		var dueNow []uint64
		for _, d := range due {
			dueNow = append(dueNow, d.ID)
		}
		if !slices.Equal(dueNow, []uint64{5, 6}) {
			t.Errorf("due after the commit = %v, want [5 6]", dueNow)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 3 {
			t.Errorf("PendingCount = %d, %v; want 3", n, err)
		}
		recs, _, err := db.AuditPage(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var delivered []string
		for _, r := range recs {
			if r.Decision == DecisionDelivered {
				delivered = append(delivered, r.ActivityID+"→"+r.Signer)
			}
		}
		if want := []string{"o1→" + inboxA, "o1→" + inboxA, "o1→" + inboxB}; !slices.Equal(delivered, want) {
			t.Errorf("delivered audit records = %v, want %v", delivered, want)
		}
	})
}

// TestPostgresClaimPlanReadsOnlyWhatItClaims checks the claim's plan as
// the server may cache it for every later claim (a generic plan, which
// knows none of the parameters): each read of the queue must go through
// the primary key, to the few rows claimed, not scan the due index's or
// the records' whole bucket. The plan of the claim as first written
// joined the claimed keys to their bucket and records with hash joins
// over bitmap scans of both whole buckets.
func TestPostgresClaimPlanReadsOnlyWhatItClaims(t *testing.T) {
	clock := newTestClock()
	db := openPostgresTest(t, Options{Now: clock.Now})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	enqueue(t, db, "https://node.example/activities/fan", laneTargets(2000)...)
	e := db.eng.(*pgEngine)
	due, err := e.topBucketID(ctx, bucketDeliveriesDue)
	if err != nil {
		t.Fatal(err)
	}
	records, err := e.topBucketID(ctx, bucketDeliveries)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `ANALYZE vultron_kv`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `BEGIN; SET LOCAL plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	defer conn.Exec(ctx, `ROLLBACK`)
	if _, err := conn.Exec(ctx, `PREPARE claim AS `+pgClaimSQL); err != nil {
		t.Fatal(err)
	}
	var plan string
	// EXPLAIN EXECUTE takes its arguments as literals.
	explain := fmt.Sprintf(`EXPLAIN (FORMAT JSON) EXECUTE claim(%d, '\x%x'::bytea, %d, %d, %d, %d, %d)`,
		due, dueKey(clock.Now(), math.MaxUint64), clock.Now().UnixNano(), 8, clock.Now().Add(time.Minute).UnixNano(), records, e.holder)
	if err := conn.QueryRow(ctx, explain).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	var nodes []map[string]any
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["Node Type"]; ok {
				nodes = append(nodes, v)
			}
			for _, c := range v {
				walk(c)
			}
		case []any:
			for _, c := range v {
				walk(c)
			}
		}
	}
	var doc any
	if err := json.Unmarshal([]byte(plan), &doc); err != nil {
		t.Fatal(err)
	}
	walk(doc)
	scans := 0
	for _, n := range nodes {
		switch n["Node Type"] {
		case "Index Scan", "Index Only Scan":
			scans++
		case "Seq Scan", "Bitmap Heap Scan", "Bitmap Index Scan", "Hash Join", "Merge Join":
			t.Errorf("the claim's generic plan has a %s (on %v): it reads more than the rows it claims\n%s", n["Node Type"], n["Relation Name"], plan)
		}
	}
	if scans == 0 {
		t.Errorf("the claim's generic plan reads no index:\n%s", plan)
	}
}

// acceptBatch accepts n new activities for coord in one batch of the group
// committer (held busy until all n are queued) and returns the round trips
// the batch took.
func acceptBatch(t *testing.T, db *DB, prefix string, n int) uint64 {
	t.Helper()
	return acceptBatchWith(t, db, prefix, n, nil)
}

// acceptBatchWith is acceptBatch where, when with is set, accept i is
// given what with returns: its apply function and what it names to read
// ahead.
func acceptBatchWith(t *testing.T, db *DB, prefix string, n int, with func(i int) (func(*Tx) error, []ReadRef)) uint64 {
	t.Helper()
	ctx := context.Background()
	release, held := make(chan struct{}), make(chan struct{})
	blocker := make(chan error, 1)
	go func() {
		blocker <- db.Update(ctx, func(*Tx) error {
			select {
			case held <- struct{}{}:
			default:
			}
			<-release
			return nil
		})
	}()
	<-held
	errs := make(chan error, n)
	for i := range n {
		go func() {
			in := inbound(fmt.Sprintf("%s/%d", prefix, i), "coord", "n")
			var apply func(*Tx) error
			if with != nil {
				apply, in.ReadAhead = with(i)
			}
			_, err := db.AcceptInbound(ctx, in, apply)
			errs <- err
		}()
	}
	for len(db.reqs) < n {
		runtime.Gosched()
	}
	// Counted from before the held commit ends: the batch starts at once
	// after it. Both batches count that commit alike.
	since := pgTrips(t, db)
	close(release)
	if err := <-blocker; err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	return since()
}

// TestPostgresAcceptsOfABatchReadAhead accepts one activity and then
// twenty in one batch: the keys each accept reads first (its recipient
// and its activity) are read for the whole batch in one request.
func TestPostgresAcceptsOfABatchReadAhead(t *testing.T) {
	db := openPostgresTest(t, Options{})
	mustPutActor(t, db, "coord")
	one := acceptBatch(t, db, "https://peer.example/a/one", 1)
	twenty := acceptBatch(t, db, "https://peer.example/a/twenty", 20)
	t.Logf("round trips: a batch of one %d, of twenty %d", one, twenty)
	// Before: two more round trips for each accept of the batch.
	if twenty > one+3 {
		t.Errorf("a batch of one accept took %d round trips, of twenty %d; want at most 3 more", one, twenty)
	}
	for _, id := range []string{"https://peer.example/a/one/0", "https://peer.example/a/twenty/0", "https://peer.example/a/twenty/19"} {
		if _, err := db.Activity(context.Background(), id); err != nil {
			t.Errorf("Activity(%s): %v", id, err)
		}
	}
	if res, err := db.AcceptInbound(context.Background(), inbound("https://peer.example/a/twenty/7", "coord", "n"), nil); err != nil || !res.Duplicate {
		t.Errorf("accepting one of the batch again = %+v, %v; want a duplicate", res, err)
	}
}

// TestPostgresAcceptsReadAheadWhatTheyName: each accept of a batch reads,
// as a received report does, a case namespace that does not exist yet
// (and then creates it) and a key of a shared index. Named in ReadAhead,
// those reads are made for the whole batch in two requests, and the
// namespaces are created with the commit's writes; not named, they cost
// three requests each, while the writer lock is held.
func TestPostgresAcceptsReadAheadWhatTheyName(t *testing.T) {
	db := openPostgresTest(t, Options{DataKey: testKey(3)})
	mustPutActor(t, db, "coord")
	with := func(prefix string, named bool) func(i int) (func(*Tx) error, []ReadRef) {
		return func(i int) (func(*Tx) error, []ReadRef) {
			name := fmt.Sprintf("report %s/%d", prefix, i)
			key := []byte(fmt.Sprintf("%s-%d", prefix, i))
			apply := func(tx *Tx) error {
				if _, err := tx.ReadTx.Case(name); !errors.Is(err, ErrNotFound) {
					return fmt.Errorf("namespace %s before it was made: %v, want ErrNotFound", name, err)
				}
				b, err := tx.Case(name)
				if err != nil {
					return err
				}
				if err := b.Put([]byte("coord"), []byte("record")); err != nil {
					return err
				}
				idx, err := tx.Case("short ids")
				if err != nil {
					return err
				}
				if idx.Get(key) != nil {
					return fmt.Errorf("short id %s taken", key)
				}
				return idx.Put(key, []byte(name))
			}
			if !named {
				return apply, nil
			}
			return apply, []ReadRef{ReadCase(name), ReadCaseKey("short ids", key)}
		}
	}
	acceptBatchWith(t, db, "https://peer.example/a/warm", 1, with("warm", true)) // makes the index
	one := acceptBatchWith(t, db, "https://peer.example/a/one", 1, with("one", true))
	unnamed := acceptBatchWith(t, db, "https://peer.example/a/unnamed", 20, with("unnamed", false))
	named := acceptBatchWith(t, db, "https://peer.example/a/named", 20, with("named", true))
	t.Logf("round trips: a batch of one %d, of twenty with their reads named %d, not named %d", one, named, unnamed)
	// The new namespaces, known absent, are created with the commit's
	// writes, under ids taken ahead.
	if named > one+3 {
		t.Errorf("a batch of one accept took %d round trips, of twenty that name their reads %d; want at most 3 more", one, named)
	}
	if unnamed < named+30 {
		t.Errorf("twenty accepts that do not name their reads took %d round trips, that do %d: the test no longer measures the reads", unnamed, named)
	}
	err := db.View(context.Background(), func(tx *ReadTx) error {
		for _, prefix := range []string{"named", "unnamed"} {
			for _, i := range []int{0, 19} {
				name := fmt.Sprintf("report %s/%d", prefix, i)
				b, err := tx.Case(name)
				if err != nil {
					return err
				}
				if v := b.Get([]byte("coord")); string(v) != "record" {
					t.Errorf("%s holds %q, want the record", name, v)
				}
			}
		}
		idx, err := tx.Case("short ids")
		if err != nil {
			return err
		}
		if v := idx.Get([]byte("named-7")); string(v) != "report named/7" {
			t.Errorf("short id named-7 = %q", v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresRemoteKeyReadIsOneRoundTrip: every verified request reads its
// signer's cached key, so the read is one statement, not BEGIN, the read
// and COMMIT.
func TestPostgresRemoteKeyReadIsOneRoundTrip(t *testing.T) {
	db := openPostgresTest(t, Options{DataKey: testKey(5)})
	ctx := context.Background()
	k := RemoteKey{KeyID: "https://peer.example/actors/vendor#main-key", Owner: "https://peer.example/actors/vendor",
		PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n", FetchedAt: time.Unix(1700000000, 0).UTC()}
	if err := db.PutRemoteKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	since := pgTrips(t, db)
	got, err := db.RemoteKey(ctx, k.KeyID)
	if err != nil || got.PublicKeyPEM != k.PublicKeyPEM || got.Owner != k.Owner || !got.FetchedAt.Equal(k.FetchedAt) {
		t.Fatalf("RemoteKey = %+v, %v; want %+v", got, err, k)
	}
	if n := since(); n != 1 {
		t.Errorf("reading a cached key took %d round trips, want 1", n)
	}
	if _, err := db.RemoteKey(ctx, k.KeyID+"-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoteKey of a key not cached = %v, want ErrNotFound", err)
	}
}

// TestPostgresRangeNReadsAPageInOneRequest: a page of 50 keys walked with
// Range reads windows of 4, 16 and 64 keys, three requests; RangeN, told
// the page's size, reads it in one, and still walks on past it when its
// caller does.
func TestPostgresRangeNReadsAPageInOneRequest(t *testing.T) {
	db := openPostgresTest(t, Options{DataKey: testKey(4)})
	ctx := context.Background()
	err := db.Update(ctx, func(tx *Tx) error {
		b, err := tx.Case("https://node.example/cases/1")
		if err != nil {
			return err
		}
		for i := range 200 {
			if _, err := b.Append([]byte(fmt.Sprintf("entry %d", i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	errPage := errors.New("page full")
	walk := func(n, stop int) (got []string, requests uint64) {
		t.Helper()
		since := pgTrips(t, db)
		err := db.View(ctx, func(tx *ReadTx) error {
			b, err := tx.Case("https://node.example/cases/1")
			if err != nil {
				return err
			}
			since = pgTrips(t, db) // the walk alone
			fn := func(_, v []byte) error {
				if len(got) == stop {
					return errPage
				}
				got = append(got, string(v))
				return nil
			}
			if n == 0 {
				err = b.Range(SeqKey(10), fn)
			} else {
				err = b.RangeN(SeqKey(10), n, fn)
			}
			requests = since()
			if errors.Is(err, errPage) {
				err = nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, requests
	}
	ranged, rangeRequests := walk(0, 50)
	page, pageRequests := walk(51, 50)
	if !slices.Equal(page, ranged) || len(page) != 50 || page[0] != "entry 9" || page[49] != "entry 58" {
		t.Fatalf("RangeN walked %d values %q…, Range %d; want the same 50 from entry 9", len(page), page[:min(len(page), 1)], len(ranged))
	}
	if pageRequests != 1 || rangeRequests < 3 {
		t.Errorf("a page of 50 took %d requests with RangeN, %d with Range; want 1, and Range's growing windows", pageRequests, rangeRequests)
	}
	if past, _ := walk(5, 120); len(past) != 120 || past[119] != "entry 128" {
		t.Errorf("RangeN(5) walked on to %d values, want 120 up to entry 128", len(past))
	}
}

// TestPostgresSeeksReadAheadStayRightUnderTheTransactionsWrites: the seeks a
// batch names (ReadDeliveryLane) are answered once for the batch, and each
// answer is then kept right by the transaction's own puts, deletes and
// bucket creations, or forgotten when a delete leaves it unknown. After
// every write, the answers seekEach gives are compared with those of a
// sorted model of the bucket and with the server's own, asked without the
// transaction's answers.
func TestPostgresSeeksReadAheadStayRightUnderTheTransactionsWrites(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	pg := db.eng.(*pgEngine)
	name := []byte("seeks under test")
	key := func(i int) []byte { return []byte(fmt.Sprintf("k%03d", i)) }
	model := map[string]bool{}
	err := pg.update(ctx, func(tx kvTx) error {
		b, err := tx.CreateBucketIfNotExists(name)
		if err != nil {
			return err
		}
		for i := 10; i < 200; i += 10 {
			model[string(key(i))] = true
			if err := b.Put(key(i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var froms [][]byte
	for i := 0; i < 210; i += 7 {
		froms = append(froms, key(i))
	}
	want := func() [][]byte {
		keys := slices.Sorted(maps.Keys(model))
		out := make([][]byte, len(froms))
		for i, f := range froms {
			if j, _ := slices.BinarySearch(keys, string(f)); j < len(keys) {
				out[i] = []byte(keys[j])
			}
		}
		return out
	}
	rng := rand.New(rand.NewPCG(7, 11))
	err = pg.update(ctx, func(tx kvTx) error {
		refs := make([]ReadRef, len(froms))
		for i, f := range froms {
			refs[i] = ReadRef{bucket: name, key: f, seek: true}
		}
		b := tx.Bucket(name).(*pgBucket)
		// A write before the read-ahead, which its seeks must see.
		model[string(key(3))] = true
		if err := b.Put(key(3), []byte("w")); err != nil {
			return err
		}
		tx.(batchTx).prefetchKeys(refs)
		before, _, _ := db.RoundTrips()
		got := seekEach(b, froms)
		if after, _, _ := db.RoundTrips(); after != before {
			t.Errorf("the seeks read ahead took %d round trips, want none", after-before)
		}
		if w := want(); !slices.EqualFunc(got, w, bytes.Equal) {
			t.Fatalf("seeks read ahead = %q, want %q", got, w)
		}
		buckets := map[string]bool{} // keys that name a sub-bucket: neither put nor deleted
		for step := range 300 {
			k := key(rng.IntN(210))
			if buckets[string(k)] {
				continue
			}
			var op string
			switch r := rng.IntN(10); {
			case r < 5:
				op = "put"
				model[string(k)] = true
				if err := b.Put(k, []byte("w")); err != nil {
					return err
				}
			case r < 9:
				op = "delete"
				delete(model, string(k))
				if err := b.Delete(k); err != nil {
					return err
				}
			default:
				if model[string(k)] {
					continue
				}
				op = "create bucket"
				model[string(k)], buckets[string(k)] = true, true
				if _, err := b.CreateBucketIfNotExists(k); err != nil {
					return err
				}
			}
			got := seekEach(b, froms)
			server := b.seekServer(froms)
			w := want()
			if !slices.EqualFunc(got, w, bytes.Equal) || !slices.EqualFunc(server, w, bytes.Equal) {
				t.Fatalf("step %d, %s %s: seeks = %q, the server's %q, want %q", step, op, k, got, server, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresReadAheadOfABatchIsOneRequest: what the requests of a batch
// name (namespaces to find, keys of namespaces the process knows, seeks) is
// read in one request; only keys in namespaces that request found need a
// second. Each is then read from the transaction.
func TestPostgresReadAheadOfABatchIsOneRequest(t *testing.T) {
	u := pgtest.Database(t)
	writer := backends[1].openURL(t, u, Options{})
	ctx := context.Background()
	err := writer.Update(ctx, func(tx *Tx) error {
		for _, name := range []string{"known", "found"} {
			b, err := tx.Case(name)
			if err != nil {
				return err
			}
			if err := b.Put([]byte("k"), []byte("v of "+name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		refs  []ReadRef
		trips uint64
		keyOf []string // the namespaces whose key k the refs name
	}{
		{"namespaces, keys of known ones, a seek", []ReadRef{ReadCase("new"), ReadCase("found"), ReadCaseKey("known", []byte("k")),
			ReadActivity("https://peer.example/a/1"), ReadDeliveryLane("https://peer.example/actors/p", "case 1")}, 1, []string{"known"}},
		{"and a key of a namespace found by the first request", []ReadRef{ReadCase("new"), ReadCaseKey("found", []byte("k")),
			ReadCaseKey("known", []byte("k"))}, 2, []string{"known", "found"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A process that knows only the namespace "known".
			db := backends[1].openURL(t, u, Options{})
			if err := db.View(ctx, func(tx *ReadTx) error { _, err := tx.Case("known"); return err }); err != nil {
				t.Fatal(err)
			}
			err := db.eng.update(ctx, func(kt kvTx) error {
				trips := pgTrips(t, db)
				kt.(batchTx).prefetchKeys(tc.refs)
				if n := trips(); n != tc.trips {
					t.Errorf("read ahead in %d requests, want %d", n, tc.trips)
				}
				// What was read ahead is read from the transaction.
				tx := &Tx{ReadTx: ReadTx{tx: kt, sl: db.sl}, now: db.now}
				before := trips()
				if _, err := tx.ReadTx.Case("new"); !errors.Is(err, ErrNotFound) {
					t.Errorf("namespace new: %v, want ErrNotFound", err)
				}
				for _, name := range tc.keyOf {
					b, err := tx.ReadTx.Case(name)
					if err != nil {
						return err
					}
					if v := b.Get([]byte("k")); string(v) != "v of "+name {
						t.Errorf("%s/k = %q, want %q", name, v, "v of "+name)
					}
				}
				if n := trips() - before; n != 0 {
					t.Errorf("reading what was read ahead took %d requests, want none", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPostgresNamespacesReadWholeWalkAsRead: namespaces read whole ahead
// (ReadAheadCaseContents) are walked in memory, and every walk (ForEach,
// and a cursor's First, Next, Last, Prev and Seek from every key, between
// keys and past both ends) gives what the same walk of the database gives;
// a namespace larger than the bound is walked from the database. In a
// write transaction, a write to a namespace read whole is seen by the
// next walk.
func TestPostgresNamespacesReadWholeWalkAsRead(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	sizes := map[string]int{"empty": 0, "one": 1, "five": 5, "full": pgWholeMax, "over": pgWholeMax + 1}
	var names []string
	err := db.Update(ctx, func(tx *Tx) error {
		for name, n := range sizes {
			names = append(names, name)
			b, err := tx.Case(name)
			if err != nil {
				return err
			}
			for i := range n {
				if err := b.Put([]byte(fmt.Sprintf("k%03d", 2*i)), []byte(fmt.Sprintf("v%d", i))); err != nil {
					return err
				}
			}
			if n == 5 { // and a sub-bucket among the keys
				if _, err := b.b.CreateBucketIfNotExists([]byte("k003")); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	// walks records every walk of a namespace's cursor, as text.
	walks := func(tx *ReadTx, name string) []string {
		cb, err := tx.Case(name)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		rec := func(what string, k, v []byte) { out = append(out, fmt.Sprintf("%s %q=%q", what, k, v)) }
		_ = cb.b.ForEach(func(k, v []byte) error { rec("each", k, v); return nil })
		c := cb.b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			rec("next", k, v)
		}
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			rec("prev", k, v)
		}
		for i := -1; i <= 2*sizes[name]+1; i++ {
			from := []byte(fmt.Sprintf("k%03d", i))
			if i < 0 {
				from = []byte("a")
			}
			k, v := c.Seek(from)
			rec("seek "+string(from), k, v)
			k, v = c.Prev()
			rec("then prev", k, v)
			c.Seek(from)
			k, v = c.Next()
			rec("then next", k, v)
		}
		return out
	}
	want := map[string][]string{}
	if err := db.View(ctx, func(tx *ReadTx) error {
		for _, name := range names {
			want[name] = walks(tx, name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	trips := pgTrips(t, db)
	if err := db.View(ctx, func(tx *ReadTx) error {
		tx.ReadAheadCaseContents(names)
		for _, name := range names {
			before := trips()
			got := walks(tx, name)
			if n := trips() - before; (n == 0) != (name != "over") {
				t.Errorf("walking namespace %s (%d keys) after it was read ahead took %d requests", name, sizes[name], n)
			}
			if !slices.Equal(got, want[name]) {
				t.Errorf("walks of namespace %s read whole differ from the database's:\n got %q\nwant %q", name, got, want[name])
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx *Tx) error {
		tx.ReadAheadCaseContents(names)
		b, err := tx.Case("five")
		if err != nil {
			return err
		}
		if err := b.Put([]byte("k001"), []byte("new")); err != nil {
			return err
		}
		if err := b.Delete([]byte("k000")); err != nil {
			return err
		}
		var keys []string
		_ = b.b.ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
		if want := []string{"k001", "k002", "k003", "k004", "k006", "k008"}; !slices.Equal(keys, want) {
			t.Errorf("after a put and a delete, the namespace read whole walks %q, want %q", keys, want)
		}
		return errors.New("roll back")
	})
	if err == nil || err.Error() != "roll back" {
		t.Fatal(err)
	}
}

// TestPostgresPagesReadInAFewRequests: a page of an actor's inbox or
// outbox, of the audit log or of the delivery queue reads its keys in one
// window and the inbox's activities together, so that a page of a hundred
// asks the server as often as a page of ten, and holds what a walk of the
// whole finds.
func TestPostgresPagesReadInAFewRequests(t *testing.T) {
	db := openPostgresTest(t, Options{})
	ctx := context.Background()
	mustPutActor(t, db, "vendor")
	const n = 150
	for i := range n {
		if _, err := db.AcceptInbound(ctx, inbound(fmt.Sprintf("https://peer.example/a/%03d", i), "vendor", "n"), nil); err != nil {
			t.Fatal(err)
		}
	}
	err := db.Update(ctx, func(tx *Tx) error {
		for i := range n {
			if err := tx.EnqueueOutbound(Outbound{ID: fmt.Sprintf("https://v.example/o/%03d", i), Actor: "vendor", Body: []byte(`{}`),
				Deliveries: []DeliveryTarget{{Recipient: "https://peer.example/actors/p"}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		page func(limit int) (int, error) // how many it listed
	}{
		{"inbox", func(limit int) (int, error) { p, _, err := db.InboxPage(ctx, "vendor", "", limit); return len(p), err }},
		{"outbox", func(limit int) (int, error) { p, _, err := db.OutboxPage(ctx, "vendor", "", limit); return len(p), err }},
		{"audit log", func(limit int) (int, error) { p, _, err := db.AuditPage(ctx, 0, limit); return len(p), err }},
		{"pending deliveries", func(limit int) (int, error) { p, _, err := db.PendingDeliveries(ctx, 0, limit); return len(p), err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			count := func(limit int) uint64 {
				t.Helper()
				trips := pgTrips(t, db)
				got, err := tc.page(limit)
				if err != nil {
					t.Fatal(err)
				}
				if got != limit {
					t.Errorf("a page of %d listed %d", limit, got)
				}
				return trips()
			}
			count(10) // the first read also finds the buckets
			ten, hundred := count(10), count(100)
			t.Logf("requests: a page of 10 %d, of 100 %d", ten, hundred)
			if hundred > ten {
				t.Errorf("a page of 100 took %d requests, of 10 %d", hundred, ten)
			}
		})
	}
}

// TestActivitiesReadTogether: Activities returns the stored activities it
// is asked for (sealed ones opened), leaves out an id it does not hold, and
// on PostgreSQL reads them in one request.
func TestActivitiesReadTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{DataKey: testKey(9)})
		ctx := context.Background()
		mustPutActor(t, db, "vendor")
		var ids []string
		for i := range 5 {
			id := fmt.Sprintf("https://v.example/o/%d", i)
			ids = append(ids, id)
			if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "vendor", Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}, nil); err != nil {
				t.Fatal(err)
			}
		}
		ask := append(slices.Clone(ids), "https://v.example/o/missing")
		if _, err := db.Activities(ctx, ask); err != nil { // the first read also looks up the bucket
			t.Fatal(err)
		}
		before, _, _ := db.RoundTrips()
		got, err := db.Activities(ctx, ask)
		if err != nil {
			t.Fatal(err)
		}
		after, _, pg := db.RoundTrips()
		if pg && after-before != 1 {
			t.Errorf("reading %d activities took %d requests, want 1", len(ask), after-before)
		}
		if len(got) != len(ids) {
			t.Errorf("Activities returned %d, want the %d stored", len(got), len(ids))
		}
		for i, id := range ids {
			if a, ok := got[id]; !ok || string(a.Body) != fmt.Sprintf(`{"n":%d}`, i) || a.Direction != DirectionOutbound {
				t.Errorf("activity %s = %+v, %v; want its body", id, a, ok)
			}
		}
	})
}
