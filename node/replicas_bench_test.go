package node

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkReplicaCatchUp measures how a replica that lacks the last
// entries of a case catches up: the vendor's node records them while the
// finder's node is down, their announcements are lost (dead letters), the
// finder's node starts again and one more entry is announced. It reports
// the time from that announcement until the finder's replica holds the
// Case Actor's tail (catchup-s), the activities the host stored meanwhile
// (host-activities: the one announcement, when the repair costs the host
// nothing) and the ledger pages the finder fetched (pages). Run it with
// -benchtime 1x; recording the entries first takes most of its time.
func BenchmarkReplicaCatchUp(b *testing.B) {
	for _, entries := range []int{500, 5000} {
		b.Run(fmt.Sprintf("entries=%d", entries), func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				p := newReplicaPair(b)
				p.within = 10 * time.Minute
				p.finder.stop()
				for i := range entries {
					p.vendor.submit(b, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"while the finder is down %d"},"target":%q,"context":%q}`,
						i, p.caseID, p.caseID))
				}
				want := int64(entries + 2)
				waitWithin(b, 10*time.Minute, "the notes recorded", func() bool { return p.vendor.cases(b)[0].LedgerLength == want })
				if lost := p.loseDeliveriesToFinder(); lost != entries {
					b.Fatalf("lost %d announcements, want %d", lost, entries)
				}
				p.startFinder()
				sent := p.hostActivities()
				pages := p.vendor.metricValue(b, ledgerPagesServed)
				b.StartTimer()
				start := time.Now()
				p.note("after the restart")
				p.inStep("the catch-up")
				elapsed := time.Since(start)
				b.StopTimer()
				b.ReportMetric(elapsed.Seconds(), "catchup-s")
				b.ReportMetric(float64(p.hostActivities()-sent), "host-activities")
				b.ReportMetric(p.vendor.metricValue(b, ledgerPagesServed)-pages, "pages")
			}
		})
	}
}
