package store

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BenchmarkBackupUnderWrites takes a backup of a sealed bbolt store of
// about 20 and 100 MB to a local file while one writer keeps committing
// durable writes (fsync on), as a running node does. It reports the
// backup's MB/s and the writer's commits during it with their p50, p99
// and longest latency: a write that needs the file to grow waits for the
// backup's read transaction to end (bbolt remaps the file under a lock
// that readers hold).
func BenchmarkBackupUnderWrites(b *testing.B) {
	for _, mb := range []int{20, 100} {
		b.Run(fmt.Sprintf("store=%dMB", mb), func(b *testing.B) {
			ctx := context.Background()
			path := filepath.Join(b.TempDir(), "vultron.db")
			fill, err := Open(path, Options{DataKey: testKey(2), NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			mustPutActor(b, fill, "coord")
			value := strings.Repeat("v", 2000)
			const perTx = 1000
			for i := 0; i < mb*1000*1000/len(value); i += perTx {
				err := fill.Update(ctx, func(tx *Tx) error {
					for j := i; j < i+perTx; j++ {
						if _, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Decision: DecisionDone, Reason: fmt.Sprintf("%d %s", j, value)}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if err := fill.Close(); err != nil {
				b.Fatal(err)
			}
			db, err := Open(path, Options{DataKey: testKey(2)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()

			var bytes int64
			var took time.Duration
			var lat []time.Duration
			for b.Loop() {
				stop := make(chan struct{})
				var mu sync.Mutex
				var wg sync.WaitGroup
				wg.Go(func() {
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						start := time.Now()
						err := db.Update(ctx, func(tx *Tx) error {
							_, err := tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Decision: DecisionDone, Reason: fmt.Sprintf("during %d %s", i, value)})
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
						mu.Lock()
						lat = append(lat, time.Since(start))
						mu.Unlock()
					}
				})
				f, err := os.CreateTemp(b.TempDir(), "backup-*")
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				info, err := db.Backup(ctx, func(BackupInfo) (io.Writer, error) { return f, nil })
				took += time.Since(start)
				close(stop)
				wg.Wait()
				if err != nil {
					b.Fatal(err)
				}
				bytes += info.Bytes
				f.Close()
				os.Remove(f.Name())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(bytes)/1e6/took.Seconds(), "backup_MB/s")
			b.ReportMetric(float64(len(lat))/float64(b.N), "writes/backup")
			if len(lat) > 0 {
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "write_p50_ms")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "write_p99_ms")
				b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "write_max_ms")
			}
		})
	}
}
