package cases

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// hostedLedger stores a hosted case of n entries, each with a payload of
// about size bytes, and returns the case and its entries.
func hostedLedger(t *testing.T, db *store.DB, n, size int) (*Case, []ledger.Entry) {
	t.Helper()
	c := &Case{ID: caseID, CaseActor: caseActor}
	genesis := ledger.GenesisHash(caseID, t0, caseActor)
	prev := genesis
	var entries []ledger.Entry
	for i := range n {
		payload := fmt.Sprintf(`{"id":"https://v.example/a/%d","type":"Add","content":%q}`, i, strings.Repeat("n", size))
		e, err := ledger.NewEntry(caseID, int64(i), prev, fmt.Sprintf("https://v.example/a/%d", i), "add_note_to_case", []byte(payload), t0.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		entries, prev = append(entries, e), e.EntryHash
	}
	c.LedgerLen, c.TailHash = int64(n), prev
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		for _, e := range entries {
			if err := appendEntry(tx, e); err != nil {
				return err
			}
		}
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		if err := b.Put(keyHost, []byte("case-c1")); err != nil {
			return err
		}
		return saveCase(tx, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	return c, entries
}

// TestReadLedgerPage reads pages of a hosted ledger as replicas ask for
// them: bounded in entries and bytes, at least one entry, and a 409 when
// the entry before the page is not the one the replica names.
func TestReadLedgerPage(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, entries := hostedLedger(t, db, 700, 2000)
	read := func(from int64, prev string, limit, maxBytes int) (LedgerPage, error) {
		var page LedgerPage
		err := db.View(context.Background(), func(tx *store.ReadTx) error {
			var err error
			page, err = ReadLedgerPage(tx, c, from, prev, limit, maxBytes)
			return err
		})
		return page, err
	}
	genesis := entries[0].PrevLogHash
	raw, err := ledger.Marshal(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	fourAndAHalf := len(raw)*4 + len(raw)/2
	tests := []struct {
		name               string
		from               int64
		prev               string
		limit, maxBytes    int
		wantFirst, wantLen int
		wantStatus         int
		wantError          string
	}{
		{name: "from the start, naming the genesis", from: 0, prev: genesis, limit: 10, maxBytes: 1 << 20, wantFirst: 0, wantLen: 10},
		{name: "after an entry, naming it", from: 100, prev: entries[99].EntryHash, limit: 50, maxBytes: 1 << 20, wantFirst: 100, wantLen: 50},
		{name: "no more than MaxLedgerPage", from: 0, limit: 100000, maxBytes: 1 << 30, wantFirst: 0, wantLen: MaxLedgerPage},
		{name: "no more than the bytes, but one", from: 0, limit: 100, maxBytes: 10, wantFirst: 0, wantLen: 1},
		{name: "a few entries' worth of bytes", from: 0, limit: 100, maxBytes: fourAndAHalf, wantFirst: 0, wantLen: 4},
		{name: "at the tail: none", from: 700, prev: entries[699].EntryHash, limit: 10, maxBytes: 1 << 20, wantLen: 0},
		{name: "another entry before the page", from: 100, prev: strings.Repeat("0", 64), limit: 10, maxBytes: 1 << 20,
			wantStatus: 409, wantError: "entry 99 of case " + caseID + " has hash " + entries[99].EntryHash},
		{name: "another genesis", from: 0, prev: strings.Repeat("1", 64), limit: 10, maxBytes: 1 << 20,
			wantStatus: 409, wantError: "the ledgers differ"},
		{name: "a replica longer than the ledger", from: 701, limit: 10, maxBytes: 1 << 20,
			wantStatus: 409, wantError: "has 700 ledger entries, and the replica says it holds 701"},
		{name: "a negative index", from: -1, limit: 10, maxBytes: 1 << 20, wantStatus: 400, wantError: "log index"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := read(tt.from, tt.prev, tt.limit, tt.maxBytes)
			if tt.wantStatus != 0 {
				if problem.Status(err) != tt.wantStatus || !strings.Contains(problem.Message(err), tt.wantError) {
					t.Fatalf("error %v (status %d), want %d containing %q", err, problem.Status(err), tt.wantStatus, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) != tt.wantLen || page.Length != 700 || page.Tail != c.TailHash {
				t.Fatalf("page of %d entries, length %d, tail %s; want %d entries of a 700-entry ledger", len(page.Entries), page.Length, page.Tail, tt.wantLen)
			}
			for i, e := range page.Entries {
				if e.LogIndex != int64(tt.wantFirst+i) || e.EntryHash != entries[tt.wantFirst+i].EntryHash {
					t.Fatalf("entry %d of the page is %d (%s), want %d", i, e.LogIndex, e.EntryHash, tt.wantFirst+i)
				}
			}
		})
	}
}

// TestLedgerPageRoundTrip encodes a page as the host serves it and decodes
// it as a replica reads it, and refuses pages that do not say what they
// must.
func TestLedgerPageRoundTrip(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, entries := hostedLedger(t, db, 5, 100)
	page := LedgerPage{Entries: entries[2:4], Length: c.LedgerLen, Tail: c.TailHash}
	body, err := EncodeLedgerPage(caseID, caseID+"/ledger?from=2", caseID+"/ledger?from=4", 2, page)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeLedgerPage(body, caseID, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 2 || got.Entries[1].EntryHash != entries[3].EntryHash || got.Length != 5 || got.Tail != c.TailHash {
		t.Fatalf("decoded %+v", got)
	}
	for _, tt := range []struct {
		name string
		from int64
		body string
		want string
	}{
		{"asked from elsewhere", 1, string(body), "starting at 2, not an OrderedCollectionPage starting at 1"},
		{"another case", 2, strings.ReplaceAll(string(body), caseID, "https://v.example/cases/other"), "not entry"},
		{"a length shorter than its entries", 2, strings.Replace(string(body), `"totalItems":5`, `"totalItems":3`, 1), "says the ledger has 3 entries"},
		{"not JSON", 2, "<html>", "not JSON"},
	} {
		if _, err := DecodeLedgerPage([]byte(tt.body), caseID, tt.from); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// failingFetcher fails every fetch and counts them.
type failingFetcher struct{ calls atomic.Int64 }

func (f *failingFetcher) FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (LedgerPage, error) {
	f.calls.Add(1)
	return LedgerPage{}, errors.New("the Case Actor's node did not answer")
}

// TestSyncerRunsACheckThatFellDueWhileItRan keeps a replica's check due
// again the moment it fails (no back-off to speak of): the syncer must run
// it again at once, not wait for an unrelated write or its idle wake-up a
// minute later, even when the check fell due while it was still running.
func TestSyncerRunsACheckThatFellDueWhileItRan(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(string) bool { return false },
		Sync: SyncTiming{RetryMin: time.Nanosecond, RetryMax: time.Nanosecond}})
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		return saveSync(tx, caseID, nil, 0, &SyncState{Local: "finder", CaseActor: caseActor, Known: 3, NextCheck: time.Now()}, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &failingFetcher{}
	// A slow log: the worker logs each check after its write commits and
	// before it is done, which leaves the scan woken by that write time to
	// find the check still running.
	slowLog := zerolog.New(writerFunc(func(p []byte) (int, error) {
		time.Sleep(5 * time.Millisecond)
		return len(p), nil
	}))
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: f, Rate: 1000, Workers: 1, Logger: slowLog})
	if err != nil {
		t.Fatal(err)
	}
	runSyncer(t, s)
	deadline := time.Now().Add(5 * time.Second)
	for f.calls.Load() < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the syncer checked %d times in 5 s a replica whose check is due again at once", f.calls.Load())
		}
		time.Sleep(time.Millisecond)
	}
	behind, _, err := func() (int64, int64, error) {
		var b, fk int64
		err := db.View(context.Background(), func(tx *store.ReadTx) error {
			var err error
			b, fk, err = ReplicaCounts(tx)
			return err
		})
		return b, fk, err
	}()
	if err != nil || behind != 1 {
		t.Errorf("replicas behind = %d (%v), want the one", behind, err)
	}
}

// runSyncer runs s until the test ends.
func runSyncer(t *testing.T, s *Syncer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// openTestStore opens a store in a temporary directory.
func openTestStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrateSyncGivesOldReplicasAState stores a replica as nodes did
// before sync states: MigrateSync gives it one, with a check scheduled,
// once; a hosted case gets none.
func TestMigrateSyncGivesOldReplicasAState(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	c := newCase(t, false)
	err := db.Update(ctx, func(tx *store.Tx) error {
		if err := saveCase(tx, c); err != nil {
			return err
		}
		return saveReplica(tx, &ledger.Replica{CaseID: c.ID, Genesis: strings.Repeat("a", 64), Next: 2, Tail: strings.Repeat("b", 64)})
	})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.MigrateSync(ctx, db)
	if err != nil || n != 1 {
		t.Fatalf("MigrateSync = %d, %v; want the one replica", n, err)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		s, err := loadSync(tx, c.ID)
		if err != nil {
			return err
		}
		if s == nil || s.Local != "finder" || s.CaseActor != caseActor || s.Known != 2 || s.NextCheck.IsZero() {
			t.Errorf("sync state = %+v", s)
			return nil
		}
		checks, err := tx.Case(replicaChecks)
		if err != nil {
			return err
		}
		var keys []string
		if err := checks.Range(nil, func(k, _ []byte) error {
			keys = append(keys, string(k))
			return nil
		}); err != nil {
			return err
		}
		if len(keys) != 1 || keys[0] != string(checkKey(s.NextCheck, c.ID)) {
			t.Errorf("scheduled checks = %q, want the replica's at its next check", keys)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.MigrateSync(ctx, db); err != nil || n != 0 {
		t.Errorf("a second MigrateSync = %d, %v; want nothing to do", n, err)
	}
}

// TestUntrustedCaseIsForgotten has a node follow a case it was announced
// but has no business in: the first entry, fetched from the Case Actor,
// says so, and the node forgets the case instead of asking again.
func TestUntrustedCaseIsForgotten(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://s.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://s.example/") }})
	create := newCaseCreate(t, false)
	payload, err := vocab.Marshal(create)
	if err != nil {
		t.Fatal(err)
	}
	first, err := ledger.NewEntry(caseID, 0, strings.Repeat("a", 64), create.ID, EventType(vocab.CreateCase), payload, t0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = db.Update(ctx, func(tx *store.Tx) error {
		return saveSync(tx, caseID, nil, 0, &SyncState{Local: "stranger", CaseActor: caseActor, Known: 3, BehindSince: now, NextCheck: now}, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 0, LedgerPage{Entries: []ledger.Entry{first}, Length: 3}, nil, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		s, err := loadSync(tx, caseID)
		if err != nil {
			return err
		}
		behind, _, err := ReplicaCounts(tx)
		if s != nil || behind != 0 {
			t.Errorf("after an untrusted first entry: sync state %+v, %d behind; want the case forgotten", s, behind)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAcceptedInvitationIsLookedFor accepts an invitation on a node that
// holds nothing of the case: a check is scheduled (the announcement of
// the joining may be lost), the replica counts as behind, a refused check
// is retried, and once JoinHorizon has passed without a replica the node
// gives the case up. A node that already follows the case schedules
// nothing more.
func TestAcceptedInvitationIsLookedFor(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	now := time.Now().UTC()
	state := func() (s *SyncState, behind int64, checks int) {
		t.Helper()
		err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			if s, err = loadSync(tx, caseID); err != nil {
				return err
			}
			if behind, _, err = ReplicaCounts(tx); err != nil {
				return err
			}
			b, err := tx.Case(replicaChecks)
			if errors.Is(err, store.ErrNotFound) {
				return nil
			} else if err != nil {
				return err
			}
			return b.Range(nil, func(k, _ []byte) error { checks++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return s, behind, checks
	}
	update := func(f func(tx *store.Tx) error) {
		t.Helper()
		if err := db.Update(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *store.Tx) error { return e.expectCase(tx, caseID, "finder", caseActor, now) })
	s, behind, checks := state()
	if s == nil || s.Local != "finder" || s.CaseActor != caseActor || behind != 1 || checks != 1 {
		t.Fatalf("after accepting: sync state %+v, %d behind, %d checks; want one check, behind", s, behind, checks)
	}
	if wait := s.NextCheck.Sub(now); wait < DefaultIdleMin*8/10 || wait > DefaultIdleMin*12/10 {
		t.Errorf("the first check is %s after accepting, want about %s", wait, DefaultIdleMin)
	}

	refused := errors.New("the Case Actor's node answered 403: not a participant")
	update(func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 0, LedgerPage{}, refused, now.Add(time.Hour))
		return err
	})
	if s, behind, checks = state(); s == nil || s.Failures != 1 || !s.NextCheck.After(now.Add(time.Hour)) || behind != 1 || checks != 1 {
		t.Fatalf("after a refused check: sync state %+v, %d behind, %d checks; want it retried later", s, behind, checks)
	}
	update(func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 0, LedgerPage{}, refused, now.Add(JoinHorizon+time.Hour))
		return err
	})
	if s, behind, checks = state(); s != nil || behind != 0 || checks != 0 {
		t.Fatalf("after %s of refusals: sync state %+v, %d behind, %d checks; want the case given up", JoinHorizon, s, behind, checks)
	}

	c := newCase(t, false)
	update(func(tx *store.Tx) error {
		if err := saveCase(tx, c); err != nil {
			return err
		}
		return saveReplica(tx, &ledger.Replica{CaseID: c.ID, Genesis: strings.Repeat("a", 64), Next: 2, Tail: strings.Repeat("b", 64)})
	})
	update(func(tx *store.Tx) error { return e.expectCase(tx, c.ID, "finder", caseActor, now) })
	if s, behind, checks = state(); s != nil || behind != 0 || checks != 0 {
		t.Errorf("accepting an invitation to a case the node follows: sync state %+v, %d behind, %d checks; want nothing scheduled", s, behind, checks)
	}
}

// TestAnnouncementEndsTheWaitOfAnAcceptedInvitation has the checks of a
// case an actor accepted an invitation to fail while its Case Actor has
// not recorded the joining; the announcement that it did arrives later
// and must start the fetch at once, not at the failed check's back-off.
func TestAnnouncementEndsTheWaitOfAnAcceptedInvitation(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	now := time.Now().UTC()
	refused := errors.New("the Case Actor's node answered 403: not a participant")
	steps := []func(tx *store.Tx) error{
		func(tx *store.Tx) error {
			if err := setInvited(tx, caseID, "finder", caseActor); err != nil {
				return err
			}
			return e.expectCase(tx, caseID, "finder", caseActor, now)
		},
		func(tx *store.Tx) error {
			_, err := e.applyCheck(tx, caseID, 0, LedgerPage{}, refused, now.Add(time.Minute))
			return err
		},
		func(tx *store.Tx) error {
			_, err := e.applyCheck(tx, caseID, 0, LedgerPage{}, refused, now.Add(2*time.Minute))
			return err
		},
	}
	for _, step := range steps {
		if err := db.Update(ctx, step); err != nil {
			t.Fatal(err)
		}
	}
	joined := now.Add(3 * time.Minute)
	entry, err := ledger.NewEntry(caseID, 5, strings.Repeat("c", 64), "https://v.example/activities/join", EventType(vocab.AcceptInviteActorToCase), []byte(`{"type":"Accept"}`), joined)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx *store.Tx) error {
		return e.offerEntries(tx, "finder", caseActor, []ledger.Entry{entry}, joined, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		s, err := loadSync(tx, caseID)
		if err != nil {
			return err
		}
		if s == nil || s.Known != 6 || !s.NextCheck.Equal(joined) {
			t.Errorf("after the announcement of entry 5: sync state %+v; want 6 entries known and the check due at once (%s)", s, joined)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSyncerScanGapBoundsScansUnderCommits commits as fast as the store
// takes writes: every commit wakes the syncer, which must read its schedule
// at most once per ScanGap rather than once per commit.
func TestSyncerScanGapBoundsScansUnderCommits(t *testing.T) {
	db := openTestStore(t)
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(string) bool { return false }})
	const gap = 100 * time.Millisecond
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: &failingFetcher{}, ScanGap: gap, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	runSyncer(t, s)
	for s.scans.Load() == 0 {
		runtime.Gosched() // the first scan, at start
	}
	start, before := time.Now(), s.scans.Load()
	const commits = 400
	for i := range commits {
		err := db.Update(context.Background(), func(tx *store.Tx) error {
			b, err := tx.Case("unrelated")
			if err != nil {
				return err
			}
			return b.Put([]byte("n"), []byte(strconv.Itoa(i)))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	scans := s.scans.Load() - before
	if limit := int64(elapsed/gap) + 2; scans > limit {
		t.Errorf("%d commits in %v woke %d scans of the schedule, want at most %d (one per %v)", commits, elapsed, scans, limit, gap)
	}
}

// TestValidationNamesTheCaseTheReporterLooksFor has the reporter's node
// receive the vendor's validation (RV) of its report, naming as its
// context the case it opened, before any announcement of that case: the
// node schedules a check of the case's ledger, with its Case Actor still
// unknown, and a first page whose creation is by an actor of the case's
// host starts the replica and names the Case Actor. A context on another
// host than the validator's schedules nothing, nor does a validation by a
// peer that had validated the report already, and a creation by an actor
// of another host is not taken.
func TestValidationNamesTheCaseTheReporterLooksFor(t *testing.T) {
	const (
		reportID = "https://f.example/reports/1"
		offerID  = "https://f.example/activities/offer"
	)
	tests := []struct {
		name      string
		context   string // the validation's context
		creator   string // the actor of the case's first entry
		peer      cvdstate.RMState
		scheduled bool
		started   bool
	}{
		{"the case on the validator's host", caseID, caseActor, cvdstate.RMReceived, true, true},
		{"a case on another host", "https://elsewhere.example/cases/c1", caseActor, cvdstate.RMReceived, false, false},
		{"a creation by an actor of another host", caseID, "https://elsewhere.example/actors/case-c1", cvdstate.RMReceived, true, false},
		{"a validation by a peer that validated before", caseID, caseActor, cvdstate.RMValid, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			now := time.Now().UTC()
			rec := ReportRecord{ReportID: reportID, Actor: "finder", Role: Reporter, RM: cvdstate.RMAccepted, OfferID: offerID,
				Peers: map[string]cvdstate.RMState{vendor: tt.peer}, UpdatedAt: now}
			if err := db.Update(ctx, func(tx *store.Tx) error { return writeNewReport(tx, rec) }); err != nil {
				t.Fatal(err)
			}
			rv := act(t, "Accept", vendor, fmt.Sprintf(`"context":%q,"object":{"id":%q,"type":"Offer","actor":%q,
"object":{"id":%q,"type":"VulnerabilityReport","name":"SQLi","content":"details"}}`, tt.context, offerID, finder, reportID))
			err := db.Update(ctx, func(tx *store.Tx) error {
				r := NewResolver(&tx.ReadTx)
				class := vocab.Classify(rv, r)
				if class.Semantic != vocab.ValidateReport {
					return fmt.Errorf("the validation classifies as %s", class.Semantic)
				}
				_, err := e.ApplyInbound(tx, LocalActor{Name: "finder", ID: finder}, vendor, Message{Activity: rv, Class: class, Resolver: r})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var s *SyncState
			load := func() {
				t.Helper()
				if err := db.View(ctx, func(tx *store.ReadTx) error {
					var err error
					s, err = loadSync(tx, tt.context)
					return err
				}); err != nil {
					t.Fatal(err)
				}
			}
			load()
			if got := s != nil && !s.NextCheck.IsZero(); got != tt.scheduled {
				t.Fatalf("after the validation: sync state %+v; want a check scheduled: %v", s, tt.scheduled)
			}
			if !tt.scheduled {
				return
			}
			if s.Local != "finder" || s.CaseActor != "" {
				t.Errorf("the scheduled check: %+v; want it for finder, with the Case Actor unknown", s)
			}

			// The check's first page: the case's creation and nothing else.
			entry := creationEntry(t, tt.creator, reportID)
			if err := db.Update(ctx, func(tx *store.Tx) error {
				_, err := e.applyCheck(tx, caseID, 0, LedgerPage{Entries: []ledger.Entry{entry}, Length: 1}, nil, now.Add(time.Minute))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var r *ledger.Replica
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				r, err = loadReplica(tx, caseID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			load()
			if got := r != nil && r.Next == 1; got != tt.started {
				t.Fatalf("after the first page: replica %+v; want it started: %v", r, tt.started)
			}
			if tt.started && (s == nil || s.CaseActor != caseActor) {
				t.Errorf("after the first page: sync state %+v; want the Case Actor %s", s, caseActor)
			}
			if !tt.started && (s == nil || s.CaseActor != "" || s.Failures == 0) {
				t.Errorf("after a first page by another host's actor: sync state %+v; want the check failed, the Case Actor unknown", s)
			}
		})
	}
}

// creationEntry is the first ledger entry of caseID: its creation by
// creator, published at t0, with the report reportID.
func creationEntry(t *testing.T, creator, reportID string) ledger.Entry {
	t.Helper()
	create := newCaseCreate(t, false)
	create.Actor = vocab.RefTo(creator)
	vc := create.Object.Object.(*vocab.VulnerabilityCase)
	vc.VulnerabilityReports = []vocab.Ref{vocab.RefTo(reportID)}
	vc.GenesisHash = ledger.GenesisHash(caseID, t0, creator)
	payload, err := vocab.Marshal(create)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := ledger.NewEntry(caseID, 0, vc.GenesisHash, create.ID, EventType(vocab.CreateCase), payload, t0)
	if err != nil {
		t.Fatal(err)
	}
	return entry
}

// startedReplica gives the finder's node a replica of caseID holding the
// case's creation, as the check a validation scheduled starts it.
func startedReplica(t *testing.T, db *store.DB, e *Engine, now time.Time) {
	t.Helper()
	ctx := context.Background()
	const reportID = "https://f.example/reports/1"
	rec := ReportRecord{ReportID: reportID, Actor: "finder", Role: Reporter, RM: cvdstate.RMAccepted,
		OfferID: "https://f.example/activities/offer", Peers: map[string]cvdstate.RMState{vendor: cvdstate.RMValid}, UpdatedAt: now}
	err := db.Update(ctx, func(tx *store.Tx) error {
		if err := writeNewReport(tx, rec); err != nil {
			return err
		}
		return saveSync(tx, caseID, nil, 0, &SyncState{Local: "finder", CaseActor: caseActor, NextCheck: now, BehindSince: now}, 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	entry := creationEntry(t, caseActor, reportID)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.applyCheck(tx, caseID, 0, LedgerPage{Entries: []ledger.Entry{entry}, Length: 1}, nil, now)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if r := loadTestReplica(t, db); r == nil || r.Next != 1 {
		t.Fatalf("the replica after its first page: %+v, want one entry", r)
	}
}

func loadTestReplica(t *testing.T, db *store.DB) *ledger.Replica {
	t.Helper()
	var r *ledger.Replica
	if err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		r, err = loadReplica(tx, caseID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRebuildAskedDuringACheckIsKept asks for a rebuild while a check
// that began from the replica's tail is still fetching: that check's
// outcome (nothing new, or a ledger that differs) says nothing of the
// rebuild, which must still happen at once, and must not be taken for a
// fork that stops the replica.
func TestRebuildAskedDuringACheckIsKept(t *testing.T) {
	for _, tt := range []struct {
		name     string
		fetchErr error
	}{
		{"nothing new", nil},
		{"a ledger that differs", fmt.Errorf("entry 0 is not the one this copy holds: %w", ErrLedgerDiffers)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			now := time.Now().UTC()
			startedReplica(t, db, e, now)
			if err := db.Update(ctx, func(tx *store.Tx) error { return e.Resync(tx, caseID, true) }); err != nil {
				t.Fatal(err)
			}
			var more bool
			if err := db.Update(ctx, func(tx *store.Tx) error {
				var err error
				more, err = e.applyCheck(tx, caseID, 1, LedgerPage{Length: 1}, tt.fetchErr, now.Add(time.Second))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var s *SyncState
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				s, err = loadSync(tx, caseID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if !more || s == nil || !s.Rebuild || s.Fork != nil || s.NextCheck.IsZero() || s.NextCheck.After(now.Add(time.Second)) {
				t.Errorf("after a check that began before the rebuild was asked: more %v, sync state %+v; want the rebuild still due now", more, s)
			}
		})
	}
}

// TestReplicaStatusOfAParticipantNotAtWork checks the status of a replica
// whose local participant no longer takes part in all of the case. Removed,
// it is sent nothing more, so the copy stops at the removal and the case's
// ledger is no longer checked. Having closed its part or left active work,
// it is announced only some entries, so the copy may lack the others until
// its next check, and the status says when that is. Neither says that the
// copy is in step, which it says of an engaged participant's.
func TestReplicaStatusOfAParticipantNotAtWork(t *testing.T) {
	accepted := cvdstate.ParticipantState{RM: cvdstate.RMAccepted}
	for _, tt := range []struct {
		name   string
		finder Participant
		next   bool   // a check of the ledger is scheduled
		want   string // in what the status says it is doing
	}{
		{"engaged", Participant{Actor: finder, ParticipantState: accepted}, true, "in step with the Case Actor; next check of its ledger"},
		{"removed", Participant{Actor: finder, ParticipantState: accepted, Removed: true}, false, "removed from the case"},
		{"closed its part", Participant{Actor: finder, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMClosed}}, true,
			"closed its part of the case or left active work"},
		{"left active work", Participant{Actor: finder, ParticipantState: accepted, Disengaged: true}, true,
			"closed its part of the case or left active work"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			now := time.Now().UTC()
			var next time.Time
			if tt.next {
				next = now.Add(time.Hour)
			}
			c := &Case{ID: caseID, CaseActor: caseActor, Owner: vendor, LedgerLen: 7}
			c.Participants = []*Participant{{Actor: vendor, ParticipantState: accepted}, &tt.finder}
			var st ReplicaStatus
			err := db.Update(context.Background(), func(tx *store.Tx) error {
				if err := saveSync(tx, caseID, nil, 0, &SyncState{Local: "finder", CaseActor: caseActor, Known: 7, NextCheck: next}, 7); err != nil {
					return err
				}
				var err error
				st, err = Status(&tx.ReadTx, c, now, func(id string) bool { return id == finder })
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.State != ReplicaInSync || !strings.Contains(st.Doing, tt.want) {
				t.Errorf("status %+v; want in sync as far as known, doing %q", st, tt.want)
			}
			if when := next.Format(time.RFC3339); tt.next && !strings.Contains(st.Doing, when) {
				t.Errorf("status says %q; want the next check, at %s", st.Doing, when)
			}
			if tt.name != "engaged" && strings.Contains(st.Doing, "in step") {
				t.Errorf("status says %q; want it not to say the copy is in step", st.Doing)
			}
		})
	}
}

// refusingFetcher answers every fetch as a Case Actor's node answers an
// actor that is no participant of the case, and counts them.
type refusingFetcher struct{ calls atomic.Int64 }

func (f *refusingFetcher) FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (LedgerPage, error) {
	f.calls.Add(1)
	return LedgerPage{}, fmt.Errorf("the Case Actor's node answered 404: this node hosts no case %s: %w", caseID, ErrLedgerRefused)
}

// TestSyncerEndsAReplicaTheCaseActorRefuses: a replica whose local actor
// was removed, with the announcement of the removal lost, is refused the
// ledger by its Case Actor at every check. After EndAfter such answers in
// a row the syncer records the replica as ended and checks it no more; its
// status says so, it counts as neither behind nor forked, and a resync
// checks it again.
func TestSyncerEndsAReplicaTheCaseActorRefuses(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") },
		Sync: SyncTiming{RetryMin: time.Nanosecond, RetryMax: time.Nanosecond}})
	now := time.Now().UTC()
	startedReplica(t, db, e, now)
	// The Case Actor recorded more than this copy holds: the copy is
	// behind, as a lost removal leaves it.
	if err := db.Update(ctx, func(tx *store.Tx) error {
		_, held, v, err := loadReplicaView(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		e.learn(v, 5, held, now)
		return v.save(tx, held)
	}); err != nil {
		t.Fatal(err)
	}
	f := &refusingFetcher{}
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: f, Rate: 1000, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	runSyncer(t, s)
	state := func() *SyncState {
		t.Helper()
		var st *SyncState
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			st, err = loadSync(tx, caseID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return st
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := state(); st.Ended.IsZero(); st = state() {
		if time.Now().After(deadline) {
			t.Fatalf("after %d refused checks the replica is not ended: %+v", f.calls.Load(), st)
		}
		time.Sleep(time.Millisecond)
	}
	if got := f.calls.Load(); got != DefaultEndAfter {
		t.Errorf("the replica ended after %d refused checks, want %d", got, DefaultEndAfter)
	}
	// Scans of the schedule go on (a write wakes one), and ask nothing.
	scans := s.scans.Load()
	for i := 0; s.scans.Load() < scans+3; i++ {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			b, err := tx.Case("unrelated")
			if err != nil {
				return err
			}
			return b.Put([]byte("k"), []byte{byte(i)})
		}); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the syncer does not scan its schedule")
		}
	}
	if got := f.calls.Load(); got != DefaultEndAfter {
		t.Errorf("the ended replica was checked again: %d fetches, want %d", got, DefaultEndAfter)
	}

	var st ReplicaStatus
	var behind, forked int64
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		c, err := loadCase(tx, caseID)
		if err != nil {
			return err
		}
		if st, err = Status(tx, c, time.Now(), e.cfg.IsLocal); err != nil {
			return err
		}
		behind, forked, err = ReplicaCounts(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st.State != ReplicaEnded || st.NextCheck != (time.Time{}) || !strings.Contains(st.Doing, "refused this node's actor its ledger") ||
		!strings.Contains(st.Doing, "vultron case resync") || !strings.Contains(st.LastError, "this node hosts no case") {
		t.Errorf("status %+v; want ended, no check scheduled, saying why and how to check again", st)
	}
	if behind != 0 || forked != 0 {
		t.Errorf("replicas behind %d, forked %d; an ended replica is neither", behind, forked)
	}

	// A resync checks it again.
	if err := db.Update(ctx, func(tx *store.Tx) error { return e.Resync(tx, caseID, false) }); err != nil {
		t.Fatal(err)
	}
	for f.calls.Load() <= DefaultEndAfter {
		if time.Now().After(deadline) {
			t.Fatal("the resync did not check the ended replica again")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRebuildTheCaseActorRefusesEnds: a rebuild an operator asked for of
// a replica whose actor the Case Actor no longer serves is refused the
// ledger at every check; after EndAfter refusals the replica is ended,
// and its status says so, where it said that the node was fetching the
// ledger from its first entry now, which it no longer did.
func TestRebuildTheCaseActorRefusesEnds(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	now := time.Now().UTC()
	startedReplica(t, db, e, now)
	update(t, db, func(tx *store.Tx) error { return e.Resync(tx, caseID, true) })
	refused := fmt.Errorf("the Case Actor's node answered 404: %w", ErrLedgerRefused)
	for i := range DefaultEndAfter {
		update(t, db, func(tx *store.Tx) error {
			_, err := e.applyCheck(tx, caseID, 0, LedgerPage{}, refused, now.Add(time.Duration(i)*time.Hour))
			return err
		})
	}
	var st ReplicaStatus
	var behind, forked int64
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		c, err := loadCase(tx, caseID)
		if err != nil {
			return err
		}
		if st, err = Status(tx, c, now.Add(24*time.Hour), e.cfg.IsLocal); err != nil {
			return err
		}
		behind, forked, err = ReplicaCounts(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if st.State != ReplicaEnded || !st.NextCheck.IsZero() || !strings.Contains(st.Doing, "vultron case resync") {
		t.Errorf("status %+v; want ended, no check scheduled, saying how to check again", st)
	}
	if behind != 0 || forked != 0 {
		t.Errorf("replicas behind %d, forked %d; an ended replica is neither", behind, forked)
	}
}
