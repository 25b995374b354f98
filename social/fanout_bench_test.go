package social

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/openvultron/vultron/store"
)

// BenchmarkFanoutBatch measures one batch of a fan-out (one transaction
// that queues FanoutBatch deliveries and moves the cursor) for actors
// with more and more followers: the cost of a batch stays flat, for it
// reads the cursor and one page of followers and writes one batch,
// whatever comes before or after it.
//
//	go test -run '^$' -bench BenchmarkFanoutBatch -benchtime 100x ./social
func BenchmarkFanoutBatch(b *testing.B) {
	for _, followers := range []int{1_000, 10_000, 100_000} {
		b.Run(fmt.Sprintf("followers=%d", followers), func(b *testing.B) {
			ctx := context.Background()
			db, err := store.Open(filepath.Join(b.TempDir(), "v.db"), store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = db.Close() })
			if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization", KeyID: "k", PublicKeyPEM: "p"}); err != nil {
				b.Fatal(err)
			}
			const perTx = 5_000
			for from := 0; from < followers; from += perTx {
				if err := db.Update(ctx, func(tx *store.Tx) error {
					for i := from; i < min(from+perTx, followers); i++ {
						id := fmt.Sprintf("https://f%06d.example/actors/f", i)
						if err := tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: id, FollowID: id + "/follow"}); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			n := 0
			start := func() {
				n++
				id := fmt.Sprintf("https://v.example/activities/%d", n)
				body := fmt.Appendf(nil, `{"id":%q,"type":"Announce","actor":%q,"object":"https://v.example/advisories/1","to":[%q]}`, id, vendorID, FollowersOf(vendorID))
				if err := db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: "vendor", Body: body}, func(tx *store.Tx) error {
					_, err := StartFanout(tx, vendor, id, "", []string{FollowersOf(vendorID)}, nil)
					return err
				}); err != nil {
					b.Fatal(err)
				}
			}
			start()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				var more bool
				if err := db.Update(ctx, func(tx *store.Tx) error {
					var err error
					more, err = AdvanceFanout(tx, "vendor", FanoutBatch)
					return err
				}); err != nil {
					b.Fatal(err)
				}
				if !more {
					b.StopTimer()
					start()
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(FanoutBatch), "deliveries/batch")
		})
	}
}
