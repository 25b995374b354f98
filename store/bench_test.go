package store

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/pgtest"
)

// BenchmarkAcceptInbound measures durable inbox accepts (real fsync) with 1,
// 16 and 64 concurrent writers, each accept a new activity of about 1 KiB. It
// reports accepts/s and the mean number of accepts per commit.
func BenchmarkAcceptInbound(b *testing.B) {
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db, err := Open(filepath.Join(b.TempDir(), "vultron.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			mustPutActor(b, db, "coord")
			filler := strings.Repeat("x", 900)
			sender := "https://peer.example/actors/vendor"

			commitsBefore := db.commits.Load()
			elapsed := concurrently(b, writers, func(i int64) error {
				id := fmt.Sprintf("https://peer.example/activities/%d", i)
				_, err := db.AcceptInbound(ctx, Inbound{
					ID: id, Recipient: "coord", Sender: sender, KeyID: sender + "#main-key",
					Body: activityBody(id, filler), Semantic: "RmSubmitReport",
				}, nil)
				return err
			})
			commits := db.commits.Load() - commitsBefore
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
			if commits > 0 {
				b.ReportMetric(float64(b.N)/float64(commits), "accepts/commit")
			}
		})
	}
}

// BenchmarkDueDeliveries measures one poll of a worker pool (8 deliveries)
// with 1,000, 10,000 and 100,000 deliveries pending behind a dead peer and
// queued before 8 that are due. The dead peer's deliveries are left as a
// node leaves them after one failed attempt each: half of them unordered,
// each retried an hour later; half in lanes of 100, whose heads are retried
// an hour later. The store is sealed with a data key, as a node ships.
func BenchmarkDueDeliveries(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			clock := newTestClock()
			db, err := Open(filepath.Join(b.TempDir(), "vultron.db"), Options{Now: clock.Now, NoSync: true, DataKey: testKey(9)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			mustPutActor(b, db, "coord")
			now := clock.Now()
			fillDeadBacklog(b, db, n, now)
			for i := range 8 {
				id := fmt.Sprintf("https://node.example/activities/ok-%d", i)
				if err := db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, "to a live peer"),
					Deliveries: []DeliveryTarget{{Recipient: fmt.Sprintf("https://p%d.example/actors/a", i)}}}, nil); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				due, err := db.DueDeliveries(ctx, now, 8)
				if err != nil || len(due) != 8 {
					b.Fatalf("DueDeliveries = %d deliveries, %v; want the 8 healthy ones", len(due), err)
				}
				for _, d := range due {
					if d.Recipient == "https://dead.example/actors/gone" {
						b.Fatalf("DueDeliveries handed out %+v, which waits for its retry", d)
					}
					db.releaseLease(d.ID) // as their completion would
				}
			}
		})
	}
}

// fillDeadBacklog queues n deliveries to a dead peer in the state
// BenchmarkDueDeliveries describes, in transactions of 1,000, on a store
// whose queue is empty.
func fillDeadBacklog(tb testing.TB, db *DB, n int, now time.Time) {
	tb.Helper()
	retry := func(tx *Tx, d *Delivery) (*Delivery, error) {
		d.Attempts, d.NextAttempt, d.LastError = 1, now.Add(time.Hour), "503 Service Unavailable"
		return d, nil
	}
	const perTx = 1000
	for start := 0; start < n; start += perTx {
		err := db.Update(context.Background(), func(tx *Tx) error {
			for i := start; i < min(start+perTx, n); i++ {
				key := ""
				if i%2 == 0 {
					key = fmt.Sprintf("https://node.example/cases/%d", (i/2)/100)
				}
				id := fmt.Sprintf("https://node.example/activities/dead-%d", i)
				if err := tx.EnqueueOutbound(Outbound{ID: id, Actor: "coord", Body: activityBody(id, "to a dead peer"),
					Deliveries: []DeliveryTarget{{Recipient: "https://dead.example/actors/gone", OrderingKey: key}}}); err != nil {
					return err
				}
			}
			// Delivery ids follow the loop: i+1. Fail the unordered ones
			// and the lane heads.
			for i := start; i < min(start+perTx, n); i++ {
				if i%2 == 1 || (i/2)%100 == 0 {
					if err := deliveryUpdate(uint64(i+1), retry)(tx); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
	}
}

// BenchmarkEnqueueOutbound measures durable enqueues (real fsync) from 16
// concurrent writers, each an activity of about 1 KiB to two recipients,
// one in a case's lane and one unordered, as the queue's write path costs.
func BenchmarkEnqueueOutbound(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "vultron.db"), Options{DataKey: testKey(9)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	mustPutActor(b, db, "coord")
	filler := strings.Repeat("x", 900)
	elapsed := concurrently(b, 16, func(i int64) error {
		id := fmt.Sprintf("https://node.example/activities/%d", i)
		return db.EnqueueOutbound(ctx, Outbound{ID: id, Actor: "coord", Body: activityBody(id, filler),
			Deliveries: []DeliveryTarget{
				{Recipient: fmt.Sprintf("https://p%d.example/actors/a", i%50), OrderingKey: fmt.Sprintf("https://node.example/cases/%d", i%20)},
				{Recipient: fmt.Sprintf("https://q%d.example/actors/a", i%50)},
			}}, nil)
	})
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "enqueues/s")
	st := db.eng.(*boltEngine).db.Stats().TxStats
	b.ReportMetric(float64(st.GetWrite())/float64(b.N), "page-writes/enqueue")
	b.ReportMetric(float64(st.GetPageAlloc())/1024/float64(b.N), "KiB-alloc/enqueue")
}

// BenchmarkAcceptWithReply measures what the index costs the inbox's store
// work: 16 concurrent writers accept an inbound activity of about 1 KiB
// and queue, in the same transaction, a reply to its sender in a lane of
// its own (as an acknowledgement is queued, in its report's lane), while a
// worker hands the replies out and completes them with deferred writes, as
// the deliverer does (real fsync).
func BenchmarkAcceptWithReply(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "vultron.db"), Options{DataKey: testKey(9)})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	mustPutActor(b, db, "coord")
	filler := strings.Repeat("x", 900)
	sender := "https://peer.example/actors/vendor"
	stop := make(chan struct{})
	drained := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				drained <- nil
				return
			case <-db.Changed():
			}
			due, err := db.DueDeliveries(ctx, time.Now(), 64)
			if err != nil {
				drained <- err
				return
			}
			for _, d := range due {
				if err := db.CompleteDeliveryDeferred(d.ID, nil); err != nil {
					drained <- err
					return
				}
			}
		}
	}()
	before := db.eng.(*boltEngine).db.Stats().TxStats
	elapsed := concurrently(b, 16, func(i int64) error {
		id := fmt.Sprintf("https://peer.example/activities/%d", i)
		_, err := db.AcceptInbound(ctx, Inbound{ID: id, Recipient: "coord", Sender: sender, KeyID: sender + "#main-key",
			Body: activityBody(id, filler), Semantic: "RmSubmitReport"}, func(tx *Tx) error {
			reply := fmt.Sprintf("https://node.example/activities/ack-%d", i)
			return tx.EnqueueOutbound(Outbound{ID: reply, Actor: "coord", Body: activityBody(reply, "ack"),
				Deliveries: []DeliveryTarget{{Recipient: sender, OrderingKey: fmt.Sprintf("https://node.example/reports/%d", i)}}})
		})
		return err
	})
	close(stop)
	if err := <-drained; err != nil {
		b.Fatal(err)
	}
	st := db.eng.(*boltEngine).db.Stats().TxStats
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
	b.ReportMetric(float64(st.GetWrite()-before.GetWrite())/float64(b.N), "page-writes/accept")
}

// concurrently runs write(i) for i from 1 to b.N from the given number of
// goroutines, with the benchmark timer running, stops the timer and
// returns the time it took; the first error fails the benchmark.
func concurrently(b *testing.B, writers int, write func(i int64) error) time.Duration {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if err := write(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkAcceptInboundPostgres is BenchmarkAcceptInbound on PostgreSQL:
// a server of its own with PostgreSQL's default durability (fsync,
// synchronous commit), on loopback, the accepts spread over one or two
// DBs on the database (each with its pool and committer, as a process
// has). It reports accepts/s and, with two, how the writes of the two
// interleave (accepts per commit).
func BenchmarkAcceptInboundPostgres(b *testing.B) {
	srv, err := pgtest.StartDurable(context.Background())
	if err != nil {
		b.Skip(err)
	}
	defer srv.Stop()
	for _, procs := range []int{1, 2} {
		for _, writers := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("processes=%d/writers=%d", procs, writers), func(b *testing.B) {
				u := srv.NewDatabase(b)
				dbs := make([]*DB, procs)
				for i := range dbs {
					if dbs[i], err = OpenURL(context.Background(), u, Options{}); err != nil {
						b.Fatal(err)
					}
					defer dbs[i].Close()
				}
				ctx := context.Background()
				mustPutActor(b, dbs[0], "coord")
				filler := strings.Repeat("x", 900)
				sender := "https://peer.example/actors/vendor"
				var commitsBefore uint64
				for _, db := range dbs {
					commitsBefore += db.commits.Load()
				}
				elapsed := concurrently(b, writers, func(i int64) error {
					id := fmt.Sprintf("https://peer.example/activities/%d", i)
					_, err := dbs[int(i)%procs].AcceptInbound(ctx, Inbound{
						ID: id, Recipient: "coord", Sender: sender, KeyID: sender + "#main-key",
						Body: activityBody(id, filler), Semantic: "RmSubmitReport",
					}, nil)
					return err
				})
				var commits uint64
				for _, db := range dbs {
					commits += db.commits.Load()
				}
				commits -= commitsBefore
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
				if commits > 0 {
					b.ReportMetric(float64(b.N)/float64(commits), "accepts/commit")
				}
			})
		}
	}
}
