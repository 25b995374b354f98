package cases

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
)

// On PostgreSQL every read the package makes is a round trip to the
// server. The tests here run on the throw-away server of the test binary
// (internal/pgtest) and count the requests a read or a write sends, with
// store.DB.RoundTrips, so that what a page or a sweep costs the database
// does not grow with what it shows or handles.

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// openPostgresStore opens a store in a new database of the test binary's
// PostgreSQL server.
func openPostgresStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.OpenURL(context.Background(), pgtest.Database(t), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// requestsOf returns the requests db sends to its server while fn runs.
func requestsOf(t *testing.T, db *store.DB, fn func()) uint64 {
	t.Helper()
	before, _, ok := db.RoundTrips()
	if !ok {
		t.Fatal("the store has no server to count requests to")
	}
	fn()
	after, _, _ := db.RoundTrips()
	return after - before
}

// TestTimelineReadsItsSendersInOneRequest: the case page's timeline says
// who asked for each entry the node sent, which is a read of each entry's
// activity. Those reads are one request however long the timeline, and
// each entry still names its sender.
func TestTimelineReadsItsSendersInOneRequest(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	const caseID = "https://v.example/cases/timeline"
	const entries = 40
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "vendor"}) })
	for i := range entries {
		id := fmt.Sprintf("https://v.example/activities/%d", i)
		update(t, db, func(tx *store.Tx) error {
			if i%2 == 0 {
				// The node sent it on alice's request; the others are
				// peers', of which the node keeps no record here.
				if err := tx.EnqueueOutbound(store.Outbound{ID: id, Actor: "vendor", Body: []byte(`{}`), SentBy: "alice"}); err != nil {
					return err
				}
			}
			return appendEntry(tx, ledger.Entry{CaseID: caseID, LogIndex: int64(i), Disposition: "recorded", LogObjectID: id,
				EventType: "add_note_to_case", PayloadSnapshot: []byte(`{}`), PrevLogHash: fmt.Sprintf("%064x", i+1000), EntryHash: fmt.Sprintf("%064x", i),
				ReceivedAt: ledger.FormatTime(time.Unix(1700000000+int64(i), 0))})
		})
	}
	timeline := func(n int) []TimelineEntry {
		t.Helper()
		var out []TimelineEntry
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			out, err = Timeline(tx, caseID, entries, n)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	timeline(1) // the first read also finds the buckets
	var long []TimelineEntry
	short := requestsOf(t, db, func() { timeline(2) })
	full := requestsOf(t, db, func() { long = timeline(entries) })
	if len(long) != entries {
		t.Fatalf("timeline of %d entries has %d", entries, len(long))
	}
	for _, e := range long {
		want := ""
		if e.Index%2 == 0 {
			want = "alice"
		}
		if e.By != want {
			t.Errorf("entry %d: By = %q, want %q", e.Index, e.By, want)
		}
	}
	// The ledger's entries are read in one window (store.CaseBucket.RangeN),
	// and the senders in one request, however many entries are shown.
	if full > short {
		t.Errorf("a timeline of %d entries took %d requests, of 2 entries %d: the entries or their senders are read in pieces", entries, full, short)
	}
}

// TestSetClockFlagsReadsTheClocksAtOnce: a sweep of the deadline watcher
// may announce thousands of deadlines in one write, which holds the
// PostgreSQL writer lock throughout; its reads of the clocks are one
// request however many there are. Each announced clock is flagged, the
// passed ones are counted once, and a clock gone from the index is left
// alone.
func TestSetClockFlagsReadsTheClocksAtOnce(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clocks := make([]Clock, 65)
	update(t, db, func(tx *store.Tx) error {
		root, err := tx.Case(clockBucket)
		if err != nil {
			return err
		}
		index, err := root.Bucket("index")
		if err != nil {
			return err
		}
		for i := range clocks {
			clocks[i] = Clock{Kind: ClockValidate, Start: start.Add(time.Duration(i) * time.Minute),
				Subject: fmt.Sprintf("https://v.example/cases/%d", i), Participant: "https://f.example/actors/finder"}
			clocks[i].Key = indexKey(clocks[i])
			if err := putClock(index, clocks[i]); err != nil {
				return err
			}
		}
		return nil
	})
	flag := func(cls []Clock, passed bool) (applied []bool, requests uint64) {
		t.Helper()
		flags := make([]ClockFlags, len(cls))
		for i, cl := range cls {
			flags[i] = ClockFlags{Key: cl.Key, Near: !passed, Passed: passed}
		}
		requests = requestsOf(t, db, func() {
			update(t, db, func(tx *store.Tx) error {
				var err error
				applied, err = SetClockFlags(tx, flags)
				return err
			})
		})
		return applied, requests
	}
	flag(clocks[:1], false) // the first write also finds the buckets
	_, few := flag(clocks[1:5], true)
	gone := Clock{Kind: ClockValidate, Start: start, Subject: "https://v.example/cases/gone"}
	gone.Key = indexKey(gone)
	applied, many := flag(append(slices.Clone(clocks[5:]), clocks[1], gone), true)
	if many > few+1 {
		t.Errorf("flagging %d clocks took %d requests, 4 clocks %d: the clocks are read one by one", len(clocks)-3, many, few)
	}
	for i, ok := range applied {
		if want := i < len(applied)-1; ok != want {
			t.Errorf("applied[%d] = %v, want %v (the last clock is not in the index)", i, ok, want)
		}
	}
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		seen := 0
		err := Clocks(tx, ClockValidate, nil, func(cl Clock) bool {
			first := string(cl.Key) == string(clocks[0].Key)
			if cl.Near != first || cl.Passed == first {
				t.Errorf("clock %s: near %v, passed %v; want the first near, every other passed", cl.Subject, cl.Near, cl.Passed)
			}
			seen++
			return true
		})
		if seen != len(clocks) {
			t.Errorf("saw %d clocks, want %d", seen, len(clocks))
		}
		counts, cerr := ClockCounts(tx)
		if cerr != nil {
			return cerr
		}
		// clocks[1] was announced as passed twice, and counted once.
		if got := counts[ClockValidate].Passed; got != int64(len(clocks)-1) {
			t.Errorf("passed validate clocks counted %d, want %d", got, len(clocks)-1)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCaseListReadsAPageInAFewRequests: the dashboard's and the API's case
// list reads a page of cases (each's record, whether this node hosts it,
// its replica's state) ahead, together: a page of a hundred cases, with
// each one's replica state, asks the server as often as a page of ten.
func TestCaseListReadsAPageInAFewRequests(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	update(t, db, func(tx *store.Tx) error {
		for i := range 150 {
			if err := saveCase(tx, &Case{ID: fmt.Sprintf("https://v.example/cases/%04d", i), Owner: "https://v.example/actors/vendor"}); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(n int) {
		t.Helper()
		err := db.View(ctx, func(tx *store.ReadTx) error {
			page, next, err := ListCasesPage(tx, "", n)
			if err == nil && (len(page) != n || next != page[n-1].ID) {
				t.Errorf("a page of %d cases has %d, next %q", n, len(page), next)
			}
			for _, c := range page { // and each one's replica state, as the API shows it
				if _, err := Status(tx, c, time.Now(), func(string) bool { return false }); err != nil {
					return err
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	list(10) // the first read also finds the buckets
	ten := requestsOf(t, db, func() { list(10) })
	hundred := requestsOf(t, db, func() { list(100) })
	t.Logf("requests: a page of 10 cases %d, of 100 %d", ten, hundred)
	if hundred > ten {
		t.Errorf("a page of 100 cases took %d requests, of 10 %d: the cases are read one by one", hundred, ten)
	}
}

// TestReportsPageReadsAPageInAFewRequests: a page of the report list reads
// its reports' records together, so that a page of a hundred reports asks
// the server as often as a page of ten; the pages chain by their cursor
// and hold every report once, in id order.
func TestReportsPageReadsAPageInAFewRequests(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	const reports = 150
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "vendor"}) })
	update(t, db, func(tx *store.Tx) error {
		for i := range reports {
			reportID, offerID := fmt.Sprintf("https://f.example/reports/%04d", i), fmt.Sprintf("https://f.example/offers/%04d", i)
			body := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","id":%q,"actor":"https://f.example/actors/f",
				"object":{"type":"VulnerabilityReport","id":%q,"name":"report %d"}}`, offerID, reportID, i)
			if err := tx.EnqueueOutbound(store.Outbound{ID: offerID, Actor: "vendor", Body: []byte(body)}); err != nil {
				return err
			}
			for _, actor := range []string{"vendor", "coordinator"} {
				if _, err := putRecord(tx, ReportRecord{ReportID: reportID, OfferID: offerID, Actor: actor}); err != nil {
					return err
				}
			}
		}
		return nil
	})
	// page lists a page of vendor's reports with their details, as the API
	// and the dashboard do.
	page := func(after string, n int) ([]ReportRecord, string) {
		t.Helper()
		var recs []ReportRecord
		var next string
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			if recs, next, err = ReportsPage(tx, after, n, "vendor"); err != nil {
				return err
			}
			ReadAheadDetails(tx, recs)
			for _, r := range recs {
				var i int
				fmt.Sscanf(r.ReportID, "https://f.example/reports/%d", &i)
				if d := DetailOf(tx, r); d.Report == nil || d.Report.Name != fmt.Sprintf("report %d", i) {
					t.Errorf("detail of %s: report %+v, want the one its Offer carried", r.ReportID, d.Report)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return recs, next
	}
	page("", 10) // the first read also finds the buckets
	ten := requestsOf(t, db, func() { page("", 10) })
	hundred := requestsOf(t, db, func() { page("", 100) })
	t.Logf("requests: a page of 10 reports %d, of 100 %d", ten, hundred)
	if hundred > ten {
		t.Errorf("a page of 100 reports took %d requests, of 10 %d: the reports are read one by one", hundred, ten)
	}
	var ids []string
	for after := ""; ; {
		recs, next := page(after, 64)
		for _, r := range recs {
			if r.Actor != "vendor" {
				t.Errorf("report %s: a record of %s in vendor's list", r.ReportID, r.Actor)
			}
			ids = append(ids, r.ReportID)
		}
		if next == "" {
			break
		}
		if next != recs[len(recs)-1].ReportID {
			t.Fatalf("a page ending with %s has the cursor %s", recs[len(recs)-1].ReportID, next)
		}
		after = next
	}
	if len(ids) != reports || !slices.IsSorted(ids) || ids[0] != "https://f.example/reports/0000" {
		t.Errorf("the pages of 64 hold %d reports (sorted %v, first %s); want the %d, in order", len(ids), slices.IsSorted(ids), ids[0], reports)
	}
}

// TestPendingReportsReadInAFewRequests: the dashboard's list of reports
// awaiting a decision reads the records its index names together: a list
// of a hundred asks the server as often as a list of ten, oldest first.
func TestPendingReportsReadInAFewRequests(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	const reports = 150
	start := time.Unix(1700000000, 0).UTC()
	update(t, db, func(tx *store.Tx) error {
		for i := range reports {
			r := ReportRecord{ReportID: fmt.Sprintf("https://f.example/reports/%04d", reports-i), Actor: "vendor",
				Role: Receiver, RM: cvdstate.RMReceived, ReceivedAt: start.Add(time.Duration(i) * time.Second)}
			if err := writeNewReport(tx, r); err != nil {
				return err
			}
		}
		return nil
	})
	list := func(n int) []ReportRecord {
		t.Helper()
		var recs []ReportRecord
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var total int
			var err error
			recs, total, err = PendingReports(tx, n)
			if err == nil && (len(recs) != n || total != reports) {
				t.Errorf("a list of %d reports awaiting a decision: %d listed, %d counted; want %d and %d", n, len(recs), total, n, reports)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return recs
	}
	list(10) // the first read also finds the buckets
	ten := requestsOf(t, db, func() { list(10) })
	var recs []ReportRecord
	hundred := requestsOf(t, db, func() { recs = list(100) })
	t.Logf("requests: a list of 10 reports %d, of 100 %d", ten, hundred)
	if hundred > ten {
		t.Errorf("a list of 100 reports took %d requests, of 10 %d: the records are read one by one", hundred, ten)
	}
	for i, r := range recs {
		if want := fmt.Sprintf("https://f.example/reports/%04d", reports-i); r.ReportID != want {
			t.Fatalf("report %d of the list is %s, want %s (the oldest first)", i, r.ReportID, want)
		}
	}
}
