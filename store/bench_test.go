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

			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			commitsBefore := db.commits.Load()
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Go(func() {
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						id := fmt.Sprintf("https://peer.example/activities/%d", i)
						body := activityBody(id, filler)
						_, err := db.AcceptInbound(ctx, Inbound{
							ID: id, Recipient: "coord", Sender: sender, KeyID: sender + "#main-key",
							Body: body, Semantic: "RmSubmitReport",
						}, nil)
						if err != nil {
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
			commits := db.commits.Load() - commitsBefore
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "accepts/s")
			if commits > 0 {
				b.ReportMetric(float64(b.N)/float64(commits), "accepts/commit")
			}
		})
	}
}
