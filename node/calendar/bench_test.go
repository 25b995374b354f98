package calendar

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// BenchmarkFeed measures GET /calendar.ics on a node holding N cases whose
// embargoes ended over the past years, 50 of them within FeedHistory or
// ahead: the feed's cost follows those 50, not N.
func BenchmarkFeed(b *testing.B) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("cases=%d", n), func(b *testing.B) {
			db, err := store.Open(filepath.Join(b.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			for start := 0; start < n; start += 500 {
				err := db.Update(context.Background(), func(tx *store.Tx) error {
					for i := start; i < min(start+500, n); i++ {
						end := now.Add(-time.Duration(i) * 24 * time.Hour / 5) // 5 a day, going back
						c := &cases.Case{ID: fmt.Sprintf("https://vendor.example/cases/%06d", i), EM: cvdstate.EMExited,
							Embargo: &cases.Embargo{ID: fmt.Sprintf("https://vendor.example/embargoes/%06d", i), End: end}}
						if i < 50 {
							c.EM, c.Embargo.End = cvdstate.EMActive, now.Add(time.Duration(i+1)*24*time.Hour)
						}
						if err := cases.Save(tx, c); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			f, err := New(Config{Store: db, PublicURL: "https://vendor.example", Host: "vendor.example", Version: "bench",
				FeedKey: []byte("k"), Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				rec := httptest.NewRecorder()
				f.All(rec, httptest.NewRequest(http.MethodGet, "/calendar.ics", nil))
				if rec.Code != http.StatusOK {
					b.Fatalf("GET /calendar.ics: %d", rec.Code)
				}
			}
		})
	}
}
