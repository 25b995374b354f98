package cases

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/vocab"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
)

// ledgerEvents returns the log indexes of the change-feed events of
// caseID's ledger entries, in feed order.
func ledgerEvents(t *testing.T, db *store.DB) []int64 {
	t.Helper()
	evs, err := db.EventsAfter(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, ev := range evs {
		if ev.CaseID == caseID && ev.Report == "" && ev.LogIndex != nil {
			out = append(out, *ev.LogIndex)
		}
	}
	return out
}

// TestRebuildEmitsNoEventTwice rebuilds a replica from the Case Actor's
// ledger: an entry the replica held already, which comes back unchanged,
// was announced on the change feed when it was first applied and is not
// announced again (a webhook would deliver it twice); an entry the copy
// did not hold is announced once.
func TestRebuildEmitsNoEventTwice(t *testing.T) {
	for _, tt := range []struct {
		name     string
		rebuilds int
		extra    bool    // the Case Actor's ledger has an entry the copy lacked
		want     []int64 // the ledger events after the rebuilds
	}{
		{"the same ledger", 1, false, []int64{0}},
		{"the same ledger, rebuilt twice", 2, false, []int64{0}},
		{"a ledger with one more entry", 1, true, []int64{0, 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			now := time.Now().UTC()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			startedReplica(t, db, e, now)
			if got := ledgerEvents(t, db); len(got) != 1 || got[0] != 0 {
				t.Fatalf("ledger events after the replica started: %v; want entry 0", got)
			}
			before, err := db.LastEventSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			page := []ledger.Entry{creationEntry(t, caseActor, "https://f.example/reports/1")}
			if tt.extra {
				next, err := ledger.NewEntry(caseID, 1, page[0].EntryHash, "https://v.example/a/1", "add_note_to_case",
					[]byte(`{"id":"https://v.example/a/1","type":"Add","actor":"https://v.example/actors/vendor"}`), now)
				if err != nil {
					t.Fatal(err)
				}
				page = append(page, next)
			}
			for i := range tt.rebuilds {
				at := now.Add(time.Duration(i+1) * time.Second)
				if err := db.Update(ctx, func(tx *store.Tx) error { return e.Resync(tx, caseID, true) }); err != nil {
					t.Fatal(err)
				}
				if err := db.Update(ctx, func(tx *store.Tx) error {
					_, err := e.applyCheck(tx, caseID, 0, LedgerPage{Entries: page, Length: int64(len(page))}, nil, at)
					return err
				}); err != nil {
					t.Fatal(err)
				}
				if r := loadTestReplica(t, db); r == nil || r.Next != int64(len(page)) {
					t.Fatalf("the replica after rebuild %d: %+v; want the Case Actor's %d entries", i+1, r, len(page))
				}
			}
			if got := ledgerEvents(t, db); !slices.Equal(got, tt.want) {
				t.Errorf("ledger events after the rebuild: %v; want %v", got, tt.want)
			}
			if after, err := db.LastEventSeq(ctx); err != nil || after-before != uint64(len(tt.want)-1) {
				t.Errorf("the rebuilds added %d events to the change feed (%v); want %d", after-before, err, len(tt.want)-1)
			}
		})
	}
}

// TestRebuildKeepsTheAnnouncedDeadlines rebuilds, over two pages, a
// replica whose embargo proposal's RSVP deadlines the node had announced
// as near and passed. The first page holds only the case's creation, so
// the copy applied so far has no proposal and no RSVP clock; the clocks
// must come back with the rebuilt copy as they were, announced, or the
// deadline sweep announces them again to every webhook.
func TestRebuildKeepsTheAnnouncedDeadlines(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	first := creationEntry(t, caseActor, "https://f.example/reports/1")
	proposal := olderCaseActorEntries(t, first.EntryHash, 1, now, []recordedAct{
		{vocab.InviteToEmbargoOnCase, embargoInvite(t, vendor, "https://v.example/a/ep1", "2027-02-01T00:00:00Z")}})[0]
	check := func(from int64, entries ...ledger.Entry) {
		t.Helper()
		if err := db.Update(ctx, func(tx *store.Tx) error {
			_, err := e.applyCheck(tx, caseID, from, LedgerPage{Entries: entries, Length: 2}, nil, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	rsvpClocks := func() []Clock {
		t.Helper()
		var out []Clock
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			return Clocks(tx, ClockEmbargoRSVP, nil, func(cl Clock) bool {
				if cl.Subject == caseID {
					out = append(out, cl)
				}
				return true
			})
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	check(1, proposal)
	before := rsvpClocks()
	if len(before) == 0 {
		t.Fatal("the proposal started no RSVP clock on the replica")
	}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		var flags []ClockFlags
		for _, cl := range before {
			flags = append(flags, ClockFlags{Key: cl.Key, Near: true, Passed: true})
		}
		_, err := SetClockFlags(tx, flags)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if got := rsvpClocks(); len(got) != len(before) || !got[0].Passed {
		t.Fatalf("RSVP clocks announced: %+v", got)
	}

	if got := rsvpClocks(); len(got) != len(before) || !got[0].Passed {
		t.Fatalf("RSVP clocks announced: %+v", got)
	}

	if err := db.Update(ctx, func(tx *store.Tx) error { return e.Resync(tx, caseID, true) }); err != nil {
		t.Fatal(err)
	}
	check(0, first)
	check(1, proposal)
	if r := loadTestReplica(t, db); r == nil || r.Next != 2 {
		t.Fatalf("the rebuilt replica: %+v; want the Case Actor's 2 entries", r)
	}
	after := rsvpClocks()
	if len(after) != len(before) {
		t.Fatalf("RSVP clocks after the rebuild: %+v; want %d", after, len(before))
	}
	for _, cl := range after {
		if !cl.Near || !cl.Passed {
			t.Errorf("the RSVP clock of %s lost its announcements in the rebuild: near %v, passed %v", cl.Participant, cl.Near, cl.Passed)
		}
	}
	var counts map[string]ClockCount
	if err := db.View(ctx, func(tx *store.ReadTx) (err error) { counts, err = ClockCounts(tx); return err }); err != nil {
		t.Fatal(err)
	}
	if c := counts[ClockEmbargoRSVP]; c.Running != int64(len(before)) || c.Passed != int64(len(before)) {
		t.Errorf("RSVP clock counts after the rebuild: %+v; want %d running, all passed", c, len(before))
	}
}
