package cases

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// pageFetcher answers every fetch with the same page and counts them.
type pageFetcher struct {
	page  LedgerPage
	calls atomic.Int64
}

func (f *pageFetcher) FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (LedgerPage, error) {
	f.calls.Add(1)
	return f.page, nil
}

func loadTestSync(t *testing.T, db *store.DB) *SyncState {
	t.Helper()
	var s *SyncState
	if err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		s, err = loadSync(tx, caseID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCaseActorCountingEntriesItDoesNotSend has a Case Actor answer that
// its ledger is longer than the replica's but send no entry from the
// replica's tail: the check makes no progress, so it fails once, says why
// and is retried after the back-off, instead of asking again and again.
func TestCaseActorCountingEntriesItDoesNotSend(t *testing.T) {
	db := openTestStore(t)
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") },
		Now: func() time.Time { return now }})
	startedReplica(t, db, e, now)
	f := &pageFetcher{page: LedgerPage{Length: 50}}
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: f, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.check(context.Background(), caseID)
	if n := f.calls.Load(); n != 1 {
		t.Errorf("one check fetched %d pages that held no entry; want it to stop after the first", n)
	}
	st := loadTestSync(t, db)
	if st.Failures != 1 || !strings.Contains(st.LastError, "50") || !st.NextCheck.After(now) {
		t.Errorf("sync state %+v; want a failed check that names the length claimed, retried later", st)
	}
}

// TestCaseActorAnswerEndsAnOverstatedLength has the replica believe the
// Case Actor's ledger longer than it is (an announcement or an answer
// overstated it); once the Case Actor answers that the replica holds its
// whole ledger, the replica is in step and checked at idle intervals, not
// behind for ever and checked at once again and again.
func TestCaseActorAnswerEndsAnOverstatedLength(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, _, v, err := loadReplicaView(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		e.learn(v, 100, 1, now)
		return v.save(tx, 1)
	}); err != nil {
		t.Fatal(err)
	}
	var more bool
	later := now.Add(time.Second)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		var err error
		more, err = e.applyCheck(tx, caseID, 1, LedgerPage{Length: 1, Tail: loadTestReplica(t, db).Tail}, nil, later)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st := loadTestSync(t, db)
	if more || st.Known != 1 || !st.BehindSince.IsZero() || !st.NextCheck.After(later) {
		t.Errorf("after the Case Actor answered it has 1 entry: more %v, sync state %+v; want in step, checked later", more, st)
	}
}

// TestRebuildFromARefusedLedgerKeepsTheCopy asks for a rebuild of a
// replica and has the Case Actor serve a ledger whose first entry the
// node refuses (not the case's creation by its Case Actor): the check
// fails and says why, and the copy the node held stays until a ledger it
// accepts replaces it.
func TestRebuildFromARefusedLedgerKeepsTheCopy(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	if err := db.Update(ctx, func(tx *store.Tx) error { return e.Resync(tx, caseID, true) }); err != nil {
		t.Fatal(err)
	}
	other := creationEntry(t, "https://v.example/actors/someone-else", "https://f.example/reports/1")
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 0, LedgerPage{Entries: []ledger.Entry{other}, Length: 1}, nil, now.Add(time.Second))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := loadTestReplica(t, db); r == nil || r.Next != 1 {
		t.Errorf("the replica after a rebuild from a refused ledger: %+v; want the copy held before", r)
	}
	var c *Case
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		c, err = loadCase(tx, caseID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Error("the case is gone after a rebuild from a refused ledger; want the copy held before")
	}
	st := loadTestSync(t, db)
	if st == nil || !st.Rebuild || st.Failures != 1 || !strings.Contains(st.LastError, "refused") {
		t.Errorf("sync state %+v; want the rebuild still asked for, and a failed check that says the ledger was refused", st)
	}
}

// TestCheckThatCannotBeAppliedBacksOff has the node fail to apply what the
// Case Actor answered (the case's record here cannot be read): the check
// counts as failed, says why and is retried after the back-off, rather
// than fetching the same page again and again with nothing recorded.
func TestCheckThatCannotBeAppliedBacksOff(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		if err := e.Resync(tx, caseID, false); err != nil {
			return err
		}
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		return b.Put(keyCase, []byte("{"))
	}); err != nil {
		t.Fatal(err)
	}
	f := &pageFetcher{page: LedgerPage{Length: 1}}
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: f, Rate: 1000, Workers: 1, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	runSyncer(t, s)
	time.Sleep(500 * time.Millisecond)
	if n := f.calls.Load(); n > 2 {
		t.Errorf("the syncer fetched %d pages in 0.5 s that it could not apply; want it to back off after the first", n)
	}
	st := loadTestSync(t, db)
	if st == nil || st.Failures == 0 || st.LastError == "" || !st.NextCheck.After(time.Now()) {
		t.Errorf("sync state %+v; want a failed check that says why, retried later", st)
	}
}

// TestLongRetryWaitsStayInTheFuture fails the check of a replica again and
// again with long retry waits: however many failures, the next check is
// RetryMax away at most and never in the past.
func TestLongRetryWaitsStayInTheFuture(t *testing.T) {
	for _, tt := range []struct {
		name     string
		min, max time.Duration
	}{
		{"defaults", DefaultRetryMin, DefaultRetryMax},
		{"hours", 3 * time.Hour, 24 * time.Hour},
		{"days", 100 * time.Hour, 1000 * time.Hour},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := NewEngine(Config{PublicURL: "https://f.example", Sync: SyncTiming{RetryMin: tt.min, RetryMax: tt.max}})
			now := time.Now().UTC()
			s := &SyncState{}
			for n := 1; n <= 70; n++ {
				e.retry(s, caseID, "down", now)
				if wait := s.NextCheck.Sub(now); wait <= 0 || wait > tt.max+tt.max/4 {
					t.Fatalf("after %d failures the next check is %v away; want within (0, %v]", n, wait, tt.max)
				}
			}
		})
	}
}

// TestForkInAPageNamesTheEntryThatDiffers has the Case Actor send, after
// the replica's last entry, one that chains to another entry at that
// position: the ledgers differ at the replica's last entry (the one the
// replica holds and the Case Actor's names another), and the fork says so,
// not the position the replica holds nothing at.
func TestForkInAPageNamesTheEntryThatDiffers(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	other := strings.Repeat("ab", 32)
	next, err := ledger.NewEntry(caseID, 1, other, "https://v.example/a/1", "add_note_to_case",
		[]byte(`{"id":"https://v.example/a/1","type":"Add","actor":"https://v.example/actors/vendor"}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 1, LedgerPage{Entries: []ledger.Entry{next}, Length: 2}, nil, now.Add(time.Second))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	st := loadTestSync(t, db)
	if st == nil || st.Fork == nil || st.Fork.Index != 0 {
		t.Errorf("sync state %+v; want a fork at entry 0, the last the replica holds", st)
	}
	if r := loadTestReplica(t, db); r == nil || r.Next != 1 {
		t.Errorf("replica %+v; want it unchanged at one entry", r)
	}
}

// TestRejectedEntryChangesNothing has the Case Actor's ledger record that
// it rejected an activity: the replica keeps the entry in its chain but
// does not carry the activity out, as the Case Actor did not.
func TestRejectedEntryChangesNothing(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	engage := join(t, vendor)
	payload, err := vocab.Marshal(engage)
	if err != nil {
		t.Fatal(err)
	}
	canon, err := ledger.Canonicalize(payload)
	if err != nil {
		t.Fatal(err)
	}
	rejected := ledger.Entry{CaseID: caseID, LogIndex: 1, Disposition: ledger.Rejected, LogObjectID: engage.ID,
		EventType: EventType(vocab.EngageCase), PayloadSnapshot: canon, PrevLogHash: loadTestReplica(t, db).Tail,
		ReceivedAt: ledger.FormatTime(now), ReasonCode: "not_allowed", ReasonDetail: "refused"}
	if err := rejected.Seal(); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 1, LedgerPage{Entries: []ledger.Entry{rejected}, Length: 2}, nil, now.Add(time.Second))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := loadTestReplica(t, db); r == nil || r.Next != 2 {
		t.Fatalf("replica %+v; want the rejected entry in its chain", r)
	}
	var c *Case
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		c, err = loadCase(tx, caseID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if c.LedgerLen != 2 {
		t.Errorf("case ledger length %d, want 2", c.LedgerLen)
	}
	if p := c.Participant(vendor); p == nil || p.RM != cvdstate.RMReceived {
		t.Errorf("vendor after a rejected engagement: %+v; want it still RECEIVED", p)
	}
}

// TestRejoiningLooksForTheCaseAgain has the node's participant removed
// from a case (its replica then checks the ledger no more) and invited
// back: accepting schedules a check again, so that the replica catches up
// even if the announcement of the joining is lost.
func TestRejoiningLooksForTheCaseAgain(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	startedReplica(t, db, e, now)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, _, v, err := loadReplicaView(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		v.s.NextCheck = time.Time{} // as once the removal was applied (idleChecks)
		return v.save(tx, 1)
	}); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	if err := db.Update(ctx, func(tx *store.Tx) error { return e.expectCase(tx, caseID, "finder", caseActor, later) }); err != nil {
		t.Fatal(err)
	}
	st := loadTestSync(t, db)
	if st == nil || st.NextCheck.IsZero() || st.NextCheck.After(later.Add(2*DefaultIdleMin)) {
		t.Errorf("sync state after accepting an invitation back %+v; want a check soon", st)
	}
}
