package inbox

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// TestReceivedReportsOfABatchReadAhead: on PostgreSQL the store's committer
// holds the writer lock while it runs a batch of accepts one after the
// other, and every read it makes then is a round trip that every other
// writer waits for. A received report's first reads (its namespace, which
// does not exist yet, and its short id) and the id of its acknowledgement
// are named before the accept (cases.InboundReads) and read for the whole
// batch at once. The count of
// requests is the measure, not a time.
func TestReceivedReportsOfABatchReadAhead(t *testing.T) {
	n := newVendorNodeAt(t, pgtest.Database(t))
	const finder = "https://finder.example/actors/finder"
	offer := func(prefix string, i int) string {
		return fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/%[2]s-%[3]d","type":"Offer","actor":%[4]q,
			"object":{"id":"https://finder.example/reports/%[2]s-%[3]d","type":"VulnerabilityReport","name":"Overflow","attributedTo":%[4]q},
			"to":[%[5]q]}`, vocab.VultronContext, prefix, i, finder, n.locals["vendor"].ID)
	}
	// batch receives count offers in one batch of the committer and
	// returns the requests sent to the database from the batch's start.
	batch := func(prefix string, count int) uint64 {
		t.Helper()
		ctx := context.Background()
		release, held := make(chan struct{}), make(chan struct{})
		blocker := make(chan error, 1)
		go func() {
			blocker <- n.db.Update(ctx, func(*store.Tx) error {
				select {
				case held <- struct{}{}:
				default:
				}
				<-release
				return nil
			})
		}()
		<-held
		results := make(chan Result, count)
		for i := range count {
			go func() { results <- n.receive(t, finder, "vendor", offer(prefix, i)) }()
		}
		for n.db.QueuedWrites() < count {
			runtime.Gosched()
		}
		before, _, _ := n.db.RoundTrips()
		close(release)
		if err := <-blocker; err != nil {
			t.Fatal(err)
		}
		for range count {
			if res := <-results; res.Duplicate || res.Replies != 1 {
				t.Errorf("offer: %+v; want a new report, acknowledged", res)
			}
		}
		after, _, _ := n.db.RoundTrips()
		return after - before
	}
	batch("warm", 1) // makes the indexes
	ten := batch("ten", 10)
	twenty := batch("twenty", 20)
	perReport := (float64(twenty) - float64(ten)) / 10
	t.Logf("requests: a batch of ten reports %d, of twenty %d (%.1f per report more)", ten, twenty, perReport)
	// What a report reads first, its RK's id and the delivery lane of
	// its RK are read ahead for the batch, and its namespace is created
	// with the commit's writes: a report more asks nothing more. Before
	// any of that, each report cost six requests: its namespace was
	// created in a request of its own, and its place in the index of
	// reports awaiting a decision and its RK's lane were looked for.
	if perReport > 0.5 {
		t.Errorf("each report of a batch cost %.1f requests more, want at most 0.5", perReport)
	}
	err := n.db.View(context.Background(), func(tx *store.ReadTx) error {
		// Every received report awaits the vendor's decision, counted once.
		pending, total, err := cases.PendingReports(tx, 100)
		if err != nil {
			return err
		}
		if len(pending) != 31 || total != 31 {
			t.Errorf("reports awaiting a decision: %d listed, %d counted; want the 31 received", len(pending), total)
		}
		for _, i := range []int{0, 19} {
			rec, ok, err := cases.Report(tx, fmt.Sprintf("https://finder.example/reports/twenty-%d", i), "vendor")
			if err != nil {
				return err
			}
			if !ok || rec.RM != cvdstate.RMReceived {
				t.Errorf("report twenty-%d: found %v, RM %s; want RECEIVED", i, ok, rec.RM)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
