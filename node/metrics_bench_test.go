package node

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/openvultron/vultron/bench"
)

// BenchmarkScrape measures one GET /metrics (with the metrics token) on a
// node holding 1,000 and then 30,000 open cases of 3 participants and 5
// ledger entries (bench.StoreManyCases), and one dead letter per hundred
// cases. The cost must not grow with the cases: it reports the values the
// store decrypted per scrape beside the time.
//
//	go test -run '^$' -bench BenchmarkScrape -benchtime 2000x ./node/
func BenchmarkScrape(b *testing.B) {
	for _, cases := range []int{1000, 30000} {
		b.Run(fmt.Sprintf("cases=%d", cases), func(b *testing.B) {
			n := newIdleNode(b, Config{})
			if err := bench.StoreManyCases(context.Background(), n.db, n.cfg.PublicURL, cases, 3, 5); err != nil {
				b.Fatal(err)
			}
			addDeadLetters(b, n.db, "d", cases/100)
			if status, body := n.serve(b, http.MethodGet, "/metrics", n.token); status != http.StatusOK {
				b.Fatalf("GET /metrics: %d %s", status, body)
			}
			before := n.db.ValuesOpened()
			for b.Loop() {
				if status, body := n.serve(b, http.MethodGet, "/metrics", n.token); status != http.StatusOK {
					b.Fatalf("GET /metrics: %d %s", status, body)
				}
			}
			b.ReportMetric(float64(n.db.ValuesOpened()-before)/float64(b.N), "decrypts/op")
		})
	}
}
