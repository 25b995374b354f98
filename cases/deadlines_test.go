package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/openvultron/vultron/vocab"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

func openClockStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true, DataKey: testDataKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func saveAt(t *testing.T, db *store.DB, c *Case, at time.Time) {
	t.Helper()
	c.UpdatedAt = at
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
}

func clocksOf(t *testing.T, db *store.DB, subject string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		cls, err := SubjectClocks(tx, subject)
		for _, cl := range cls {
			out[cl.Kind+" "+cl.Participant+cl.Local] = cl.Start
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestClocksFollowTheCase walks one case through a vendor's work and
// checks which clocks run, from when, and that they stop.
func TestClocksFollowTheCase(t *testing.T) {
	db := openClockStore(t)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	day := func(n int) time.Time { return t0.Add(time.Duration(n) * 24 * time.Hour) }
	vendor, finder := "https://v.example/actors/psirt", "https://f.example/actors/alice"
	c := &Case{ID: "https://v.example/cases/1", Name: "one", Owner: vendor, Published: t0}
	c.Participants = []*Participant{
		{Actor: vendor, Roles: cvdstate.Vendor | cvdstate.CaseOwner, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMReceived, VFD: cvdstate.VFDAware}},
		{Actor: finder, Roles: cvdstate.Finder | cvdstate.Reporter, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}},
	}
	saveAt(t, db, c, day(0))
	want := map[string]time.Time{"acknowledge " + vendor: day(0), "validate " + vendor: day(0)}
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after creation: %v, want %v", got, want)
	}
	c.Name = "renamed" // changes no clock: the fingerprint spares the write
	saveAt(t, db, c, day(1))
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after a save that changed nothing: %v, want %v", got, want)
	}
	c.Participants[0].RM = cvdstate.RMValid
	saveAt(t, db, c, day(2))
	want = map[string]time.Time{"engage " + vendor: day(2)}
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after validation: %v, want %v", got, want)
	}
	c.Participants[0].RM = cvdstate.RMAccepted
	c.EM, c.Embargo = cvdstate.EMActive, &Embargo{ID: "e1", End: day(92)}
	saveAt(t, db, c, day(3))
	want = map[string]time.Time{"fix " + vendor: day(3), "embargo_end ": day(92)}
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after engagement and embargo: %v, want %v", got, want)
	}
	c.PXA = cvdstate.PXAAttacks
	saveAt(t, db, c, day(10))
	want = map[string]time.Time{"fix " + vendor: day(3), "embargo_end ": day(92),
		"cra_early_warning " + vendor: day(10), "cra_notification " + vendor: day(10)}
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after attacks: %v, want %v", got, want)
	}
	c.Participants[0].VFD = cvdstate.VFDFixReady
	c.Embargo = &Embargo{ID: "e2", End: day(60)} // revised
	saveAt(t, db, c, day(20))
	want = map[string]time.Time{"embargo_end ": day(60), "cra_early_warning " + vendor: day(10),
		"cra_notification " + vendor: day(10), "cra_final_report " + vendor: day(20)}
	if got := clocksOf(t, db, c.ID); !maps.Equal(got, want) {
		t.Fatalf("after the fix and a revision: %v, want %v", got, want)
	}
	c.Participants[0].RM, c.Participants[1].RM = cvdstate.RMClosed, cvdstate.RMClosed
	saveAt(t, db, c, day(30))
	if got := clocksOf(t, db, c.ID); len(got) != 0 {
		t.Fatalf("after everyone closed: %v, want none", got)
	}
	checkClockIndex(t, db)
}

// checkClockIndex fails the test unless the index holds exactly the
// clocks the subjects run, in start order per kind, and the counts count
// them.
func checkClockIndex(t *testing.T, db *store.DB) {
	t.Helper()
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		counts, err := ClockCounts(tx)
		if err != nil {
			return err
		}
		for _, kind := range ClockKinds() {
			var n int64
			var last time.Time
			err := Clocks(tx, kind, nil, func(cl Clock) bool {
				n++
				if cl.Kind != kind || cl.Start.Before(last) {
					t.Errorf("index of %s out of order at %s %v", kind, cl.Kind, cl.Start)
				}
				last = cl.Start
				open, err := SubjectClocks(tx, cl.Subject)
				if err != nil || !slices.ContainsFunc(open, func(o Clock) bool { return string(o.Key) == string(cl.Key) }) {
					t.Errorf("indexed clock %s of %s %s is not among its subject's running clocks (%v)", kind, cl.Subject, cl.Participant, err)
				}
				return true
			})
			if err != nil {
				return err
			}
			if counts[kind].Running != n {
				t.Errorf("%s: counted %d, indexed %d", kind, counts[kind].Running, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestClockIndexUnderRandomChanges saves random cases in random states,
// several in a transaction and some in transactions that fail, and checks
// after each step that every case runs exactly the clocks its state calls
// for and that the index and the counts agree.
func TestClockIndexUnderRandomChanges(t *testing.T) {
	db := openClockStore(t)
	rng := rand.New(rand.NewPCG(3, 4))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]*Case{}
	rms := cvdstate.RMStates()
	for step := range 300 {
		at := t0.Add(time.Duration(step) * time.Hour)
		fail := rng.IntN(6) == 0
		staged := map[string]*Case{}
		err := db.Update(context.Background(), func(tx *store.Tx) error {
			for range 1 + rng.IntN(3) {
				id := fmt.Sprintf("https://n.example/cases/%d", rng.IntN(12))
				c := cases[id]
				if c == nil {
					c = &Case{ID: id, Owner: "https://n.example/actors/a"}
					for i := range 1 + rng.IntN(3) {
						c.Participants = append(c.Participants, &Participant{Actor: fmt.Sprintf("https://p%d.example/a", i)})
					}
				} else {
					c = c.clone()
				}
				for _, p := range c.Participants {
					p.RM = rms[rng.IntN(len(rms))]
					p.VFD = cvdstate.VFD(rng.IntN(4))
					p.Roles = cvdstate.RoleSet(rng.IntN(8))
				}
				c.PXA = cvdstate.PXA(rng.IntN(8))
				c.EM = cvdstate.EMStates()[rng.IntN(5)]
				c.Embargo = &Embargo{ID: "e", End: t0.Add(time.Duration(rng.IntN(5)) * 24 * time.Hour)}
				c.UpdatedAt = at
				if err := saveCase(tx, c); err != nil {
					return err
				}
				staged[id] = c
			}
			if fail {
				return fmt.Errorf("fail on purpose")
			}
			return nil
		})
		if fail != (err != nil) {
			t.Fatalf("step %d: update = %v", step, err)
		}
		if !fail {
			maps.Copy(cases, staged)
		}
		for id, c := range cases {
			got := clocksOf(t, db, id)
			want := wantedClocks(c)
			if len(got) != len(want) {
				t.Fatalf("step %d: case %s runs %v, its state calls for %v", step, id, got, want)
			}
			for k, fixed := range want {
				start, ok := got[k.Kind+" "+k.Participant]
				if !ok || (!fixed.IsZero() && !start.Equal(fixed)) {
					t.Fatalf("step %d: case %s: clock %v runs %v (from %v), want from %v", step, id, k, ok, start, fixed)
				}
			}
		}
		checkClockIndex(t, db)
	}
}

// TestReportClocks checks the clocks of a received report before a case:
// they run for its receiver until it validates, and the case takes over.
func TestReportClocks(t *testing.T) {
	db := openClockStore(t)
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	r := ReportRecord{ReportID: "https://f.example/objects/r1", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived, Name: "XSS", UpdatedAt: t0}
	put := func(r ReportRecord) {
		t.Helper()
		if err := db.Update(context.Background(), func(tx *store.Tx) error { return writeReport(tx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	put(r)
	put(ReportRecord{ReportID: r.ReportID, Actor: "bot", Role: Receiver, RM: cvdstate.RMReceived, UpdatedAt: t0.Add(time.Hour)})
	want := map[string]time.Time{"acknowledge vendor": t0, "validate vendor": t0,
		"acknowledge bot": t0.Add(time.Hour), "validate bot": t0.Add(time.Hour)}
	if got := clocksOf(t, db, r.ReportID); !maps.Equal(got, want) {
		t.Fatalf("received: %v, want %v", got, want)
	}
	r.RM, r.UpdatedAt = cvdstate.RMInvalid, t0.Add(48*time.Hour)
	put(r)
	delete(want, "acknowledge vendor")
	if got := clocksOf(t, db, r.ReportID); !maps.Equal(got, want) {
		t.Fatalf("invalid: %v, want %v", got, want)
	}
	r.RM, r.CaseID = cvdstate.RMValid, "https://v.example/cases/9"
	put(r)
	delete(want, "validate vendor")
	if got := clocksOf(t, db, r.ReportID); !maps.Equal(got, want) {
		t.Fatalf("validated: %v, want %v", got, want)
	}
	checkClockIndex(t, db)
}

// TestMigrateClocks indexes a store whose cases and reports were written
// before the index: the same clocks run as if it had always been kept.
func TestMigrateClocks(t *testing.T) {
	db := openClockStore(t)
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	c := &Case{ID: "https://v.example/cases/7", Owner: "https://v.example/actors/v"}
	c.Participants = []*Participant{{Actor: "https://v.example/actors/v", Roles: cvdstate.Vendor, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}}}
	saveAt(t, db, c, t0)
	r := ReportRecord{ReportID: "https://f.example/objects/r2", Actor: "v", Role: Receiver, RM: cvdstate.RMReceived, UpdatedAt: t0}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return writeReport(tx, r) }); err != nil {
		t.Fatal(err)
	}
	before := map[string]map[string]time.Time{c.ID: clocksOf(t, db, c.ID), r.ReportID: clocksOf(t, db, r.ReportID)}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return tx.DeleteCase(clockBucket) }); err != nil {
		t.Fatal(err)
	}
	n, err := MigrateClocks(context.Background(), db)
	if err != nil || n != 2 {
		t.Fatalf("MigrateClocks = %d, %v; want 2 subjects", n, err)
	}
	for subject, want := range before {
		if got := clocksOf(t, db, subject); !maps.Equal(got, want) || len(got) == 0 {
			t.Errorf("%s after migration: %v, want %v", subject, got, want)
		}
	}
	checkClockIndex(t, db)
	if n, err := MigrateClocks(context.Background(), db); err != nil || n != 0 {
		t.Errorf("second MigrateClocks = %d, %v; want nothing to do", n, err)
	}
}

// TestReportClocksLiveWithTheReport checks where the running clocks of a
// received report are kept: beside its records in the report's own
// bucket, which its transaction writes anyway, not under the report's id
// in the index's open/ bucket, which cost a page at a random place of a
// growing tree for every report received. A report whose clocks an older
// node kept in open/ keeps them, and they move on its next change.
func TestReportClocksLiveWithTheReport(t *testing.T) {
	db := openClockStore(t)
	ctx := context.Background()
	t0 := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
	put := func(r ReportRecord) {
		t.Helper()
		if err := db.Update(ctx, func(tx *store.Tx) error { return writeReport(tx, r) }); err != nil {
			t.Fatal(err)
		}
	}
	inOpen := func(subject string) bool {
		t.Helper()
		found := false
		err := db.View(ctx, func(tx *store.ReadTx) error {
			openB, err := clockSub(tx, "open")
			if openB != nil {
				found = openB.Get([]byte(subject)) != nil
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return found
	}
	r := ReportRecord{ReportID: "https://f.example/objects/r1", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived, Name: "XSS in search", UpdatedAt: t0}
	put(r)
	if inOpen(r.ReportID) {
		t.Errorf("a received report's clocks are kept in open/, want them in the report's bucket")
	}
	err := db.View(ctx, func(tx *store.ReadTx) error {
		recs, err := ReportRecords(tx, r.ReportID)
		if err != nil || len(recs) != 1 || recs[0].Actor != "vendor" {
			t.Errorf("ReportRecords = %+v, %v; want the vendor's one record", recs, err)
		}
		locals, _, err := ReportParties(tx, r.ReportID)
		if err != nil || !slices.Equal(locals, []string{"vendor"}) {
			t.Errorf("ReportParties = %v, %v; want the vendor", locals, err)
		}
		cls, err := SubjectClocks(tx, r.ReportID)
		if err != nil || len(cls) != 2 {
			t.Fatalf("SubjectClocks = %+v, %v; want two", cls, err)
		}
		for _, cl := range cls {
			if cl.Name != r.Name || !cl.Report || cl.Subject != r.ReportID || cl.Local != "vendor" || !cl.Start.Equal(t0) {
				t.Errorf("clock %+v: want the report's, named, started %s", cl, t0)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A report whose clocks an older node kept in open/ (the record holds
	// whole clocks there).
	old := ReportRecord{ReportID: "https://f.example/objects/r2", Actor: "vendor", Role: Receiver, RM: cvdstate.RMReceived, Name: "Old", UpdatedAt: t0}
	err = db.Update(ctx, func(tx *store.Tx) error {
		if err := writeReport(tx, old); err != nil {
			return err
		}
		b, err := tx.Case(reportBucket(old.ReportID))
		if err != nil {
			return err
		}
		v := b.Get(keyReportClocks)
		if v == nil {
			return nil // the test already failed above
		}
		var compact openClocks
		if err := json.Unmarshal(v, &compact); err != nil {
			return err
		}
		whole := map[string]Clock{}
		for name, cl := range compact.Clocks {
			whole[name] = Clock{Kind: cl.Kind, Start: cl.Start, Subject: old.ReportID, Report: true, Name: old.Name, Local: cl.Local}
		}
		legacy, err := json.Marshal(map[string]any{"fp": compact.Fingerprint, "clocks": whole})
		if err != nil {
			return err
		}
		_, openB, err := clockOpen(tx)
		if err != nil {
			return err
		}
		if err := openB.Put([]byte(old.ReportID), legacy); err != nil {
			return err
		}
		return b.Delete(keyReportClocks)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The node moves it when it starts, once.
	if moved, err := MoveReportClocks(ctx, db); err != nil || moved != 1 {
		t.Fatalf("MoveReportClocks = %d, %v; want 1", moved, err)
	}
	if inOpen(old.ReportID) {
		t.Errorf("the report's clocks stayed in open/ after the move")
	}
	if got, want := clocksOf(t, db, old.ReportID), map[string]time.Time{"acknowledge vendor": t0, "validate vendor": t0}; !maps.Equal(got, want) {
		t.Fatalf("clocks moved from open/: %v, want %v", got, want)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		cls, err := SubjectClocks(tx, old.ReportID)
		if err == nil && (len(cls) != 2 || cls[0].Name != "Old") {
			t.Errorf("SubjectClocks after the move = %+v, want the two, named", cls)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if again, err := MoveReportClocks(ctx, db); err != nil || again != 0 {
		t.Errorf("second MoveReportClocks = %d, %v; want 0 (the store is marked)", again, err)
	}
	old.RM, old.UpdatedAt = cvdstate.RMInvalid, t0.Add(time.Hour)
	put(old)
	if got, want := clocksOf(t, db, old.ReportID), map[string]time.Time{"validate vendor": t0}; !maps.Equal(got, want) {
		t.Errorf("after the report changed: %v, want %v", got, want)
	}
	checkClockIndex(t, db)
}

// TestSubjectClocksReadOnlyTheOpenRecord lists a case's clocks with the
// index gone: SubjectClocks reads the subject's open record alone, one
// read whatever the number of clocks (a case of thousands of participants
// runs thousands, and a read per clock is a round trip on PostgreSQL),
// and the clocks still carry the case's name.
func TestSubjectClocksReadOnlyTheOpenRecord(t *testing.T) {
	db := openClockStore(t)
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	c := &Case{ID: "https://v.example/cases/many", Name: "Many vendors", Owner: "https://v.example/actors/v"}
	for i := range 50 {
		c.Participants = append(c.Participants, &Participant{Actor: fmt.Sprintf("https://p%d.example/actors/v", i), Roles: cvdstate.Vendor,
			ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}})
	}
	saveAt(t, db, c, t0)
	err := db.Update(context.Background(), func(tx *store.Tx) error {
		root, err := tx.Case(clockBucket)
		if err != nil {
			return err
		}
		return root.DeleteBucket("index")
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(context.Background(), func(tx *store.ReadTx) error {
		cls, err := SubjectClocks(tx, c.ID)
		if err != nil {
			return err
		}
		if len(cls) != 50 {
			t.Errorf("SubjectClocks without the index: %d clocks, want the 50 fix clocks", len(cls))
		}
		for _, cl := range cls {
			if cl.Name != c.Name || cl.Kind != ClockFix || !cl.Start.Equal(t0) || cl.Subject != c.ID {
				t.Errorf("clock %+v: want the case's fix clock, named %q, from %s", cl, c.Name, t0)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMoveReportClocksAcrossPages moves the open records of more reports
// than one transaction takes, kept in open/ beside cases' records: the
// reports' go to their buckets, a report whose bucket holds a newer record
// keeps that one, and the cases' stay.
func TestMoveReportClocksAcrossPages(t *testing.T) {
	db := openClockStore(t)
	ctx := context.Background()
	legacy := []byte(`{"fp":1,"clocks":{"validate vendor":{"kind":"validate","start":"2026-05-01T08:00:00Z","local":"vendor","name":"Old"}}}`)
	newer := []byte(`{"fp":2,"name":"New","clocks":{}}`)
	n := migrateCountsPage + 7
	err := db.Update(ctx, func(tx *store.Tx) error {
		_, openB, err := clockOpen(tx)
		if err != nil {
			return err
		}
		for i := range n {
			id := fmt.Sprintf("https://f.example/objects/r%04d", i)
			b, err := tx.Case(reportBucket(id))
			if err != nil {
				return err
			}
			if i == 3 {
				if err := b.Put(keyReportClocks, newer); err != nil {
					return err
				}
			}
			if err := openB.Put([]byte(id), legacy); err != nil {
				return err
			}
		}
		return openB.Put([]byte("https://v.example/cases/1"), []byte(`{"fp":9,"clocks":{}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	moved, err := MoveReportClocks(ctx, db)
	if err != nil || moved != n {
		t.Fatalf("MoveReportClocks = %d, %v; want %d", moved, err, n)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		openB, err := clockSub(tx, "open")
		if err != nil {
			return err
		}
		left := 0
		if err := openB.ForEach(func(k, _ []byte) error { left++; return nil }); err != nil {
			return err
		}
		if left != 1 || openB.Get([]byte("https://v.example/cases/1")) == nil {
			t.Errorf("open/ keeps %d records, want the case's alone", left)
		}
		for i, want := range map[int][]byte{0: legacy, 3: newer, n - 1: legacy} {
			b, err := tx.Case(reportBucket(fmt.Sprintf("https://f.example/objects/r%04d", i)))
			if err != nil {
				return err
			}
			if got := b.Get(keyReportClocks); string(got) != string(want) {
				t.Errorf("report %d keeps %s, want %s", i, got, want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRSVPClock: a participant invited to an open embargo proposal runs
// an embargo_rsvp clock due at the proposal's RSVP deadline; the proposer
// runs none, and the clock stops when the invitee answers.
func TestRSVPClock(t *testing.T) {
	c := newCase(t, false)
	ep := embargoInviteBy(t, finder, "https://f.example/a/ep1", "2027-02-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ep)
	due := time.Date(2026, 11, 8, 13, 0, 0, 0, time.UTC)
	want := wantedClocks(c)
	if got, ok := want[clockOf{ClockEmbargoRSVP, vendor}]; !ok || !got.Equal(due) {
		t.Errorf("the invitee's clocks %v; want embargo_rsvp from %s", want, due)
	}
	if _, ok := want[clockOf{ClockEmbargoRSVP, finder}]; ok {
		t.Error("the proposer runs an RSVP clock for its own proposal")
	}
	before := caseFingerprint(c)
	must(t, c, vocab.AcceptInviteToEmbargoOnCase, act(t, "Accept", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ep.ID, caseID)))
	if _, ok := wantedClocks(c)[clockOf{ClockEmbargoRSVP, vendor}]; ok || caseFingerprint(c) == before {
		t.Error("the RSVP clock runs on after the invitee answered")
	}
}
