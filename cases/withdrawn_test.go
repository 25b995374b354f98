package cases

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestDeliveriesToARemovedParticipantAreWithdrawn queues nothing but asks
// what Withdrawn says of deliveries of case c1 once the owner removed the
// finder, on both store engines: the case's content to the finder is
// withdrawn, with a reason naming the finder and the case, except the
// announcement of its own removal; what goes to the vendor, to the Case
// Actor, to an invitee and what is no case's goes as queued. A record
// saved before the index of participants existed answers the same.
func TestDeliveriesToARemovedParticipantAreWithdrawn(t *testing.T) {
	for _, engine := range []struct {
		name string
		open func(t *testing.T) *store.DB
	}{{"bolt", openStore}, {"postgres", openPostgresStore}} {
		t.Run(engine.name, func(t *testing.T) {
			db := engine.open(t)
			c := newCase(t, false)
			update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })

			// The announcements of two entries: a note, queued while the
			// finder took part, and the finder's removal.
			note := act(t, "Add", vendor, fmt.Sprintf(`"object":{"id":"https://v.example/notes/1","type":"Note","content":"fixed"},"target":%q,"context":%q`, caseID, caseID))
			removal := act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q,"context":%q`, caseID+"/participants/f", caseID, caseID))
			announce := func(a *vocab.Activity, sem vocab.Semantic, index int64) store.StoredActivity {
				t.Helper()
				payload, err := vocab.Marshal(a)
				if err != nil {
					t.Fatal(err)
				}
				entry, err := ledger.NewEntry(caseID, index, fmt.Sprintf("%064x", index), a.ID, EventType(sem), payload, t0)
				if err != nil {
					t.Fatal(err)
				}
				id := fmt.Sprintf("https://v.example/activities/announce-%d", index)
				body, err := Announcement(caseActor, id, entry, t0)
				if err != nil {
					t.Fatal(err)
				}
				return store.StoredActivity{ID: id, Semantic: string(vocab.AnnounceCaseLedgerEntry), Body: body}
			}
			noteAnn, removalAnn := announce(note, vocab.AddNoteToCase, 1), announce(removal, vocab.RemoveCaseParticipantFromCase, 2)
			invite := store.StoredActivity{ID: "https://v.example/activities/invite", Semantic: string(vocab.InviteActorToCase), Body: []byte(`{}`)}
			to := func(recipient, key string) store.Delivery {
				return store.Delivery{ID: 1, Actor: "case-c1", Recipient: recipient, OrderingKey: key}
			}
			withdrawn := func(d store.Delivery, a store.StoredActivity) string {
				t.Helper()
				var reason string
				if err := db.View(context.Background(), func(tx *store.ReadTx) error {
					var err error
					reason, err = Withdrawn(tx, d, a)
					return err
				}); err != nil {
					t.Fatalf("Withdrawn(%s to %s): %v", a.ID, d.Recipient, err)
				}
				return reason
			}
			if got := withdrawn(to(finder, caseID), noteAnn); got != "" {
				t.Fatalf("a note to the finder, a participant, is withdrawn: %s", got)
			}

			must(t, c, vocab.RemoveCaseParticipantFromCase, removal)
			update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
			tests := []struct {
				name string
				d    store.Delivery
				a    store.StoredActivity
				want bool
			}{
				{"the note to the removed finder", to(finder, caseID), noteAnn, true},
				{"the finder's own removal", to(finder, caseID), removalAnn, false},
				{"the note to the vendor", to(vendor, caseID), noteAnn, false},
				{"the note to the Case Actor", to(caseActor, caseID), noteAnn, false},
				{"an invitation of the removed finder", to(finder, caseID), invite, false},
				{"what is in no case's lane", to(finder, "https://f.example/reports/1"), noteAnn, false},
			}
			check := func(t *testing.T) {
				t.Helper()
				for _, tt := range tests {
					got := withdrawn(tt.d, tt.a)
					if (got != "") != tt.want {
						t.Errorf("%s: withdrawn %q, want withdrawn %v", tt.name, got, tt.want)
					}
					if tt.want && (!strings.Contains(got, finder) || !strings.Contains(got, caseID) || !strings.Contains(got, "removed")) {
						t.Errorf("%s: reason %q does not name the finder, the case and its removal", tt.name, got)
					}
				}
			}
			check(t)

			// A record saved before the index: the case's record alone.
			update(t, db, func(tx *store.Tx) error {
				b, err := tx.Case(caseID)
				if err != nil {
					return err
				}
				return dropParticipantsIndex(b)
			})
			t.Run("without the index", check)
		})
	}
}

// TestDroppedReplicaDropsItsIndexOfParticipants: a replica dropped to be
// rebuilt from its Case Actor's ledger (dropReplica) loses its index of
// participants with its record, so that the index is rebuilt from what
// the ledger says, not kept from the copy that differed.
func TestDroppedReplicaDropsItsIndexOfParticipants(t *testing.T) {
	db := openStore(t)
	c := newCase(t, false)
	must(t, c, vocab.RemoveCaseParticipantFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q,"context":%q`, finder, caseID, caseID)))
	update(t, db, func(tx *store.Tx) error { return saveCase(tx, c) })
	update(t, db, func(tx *store.Tx) error { return dropReplica(tx, caseID) })
	if err := db.View(context.Background(), func(tx *store.ReadTx) error {
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		if b.Get(keyParticipantsIndexed) != nil {
			t.Error("the dropped replica keeps the fingerprint of its index of participants")
		}
		if b.Get(participantKey(finder)) != nil {
			t.Error("the dropped replica keeps its index of participants")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckingADeliveryReadsOnlyWhatItMayWithdraw: the check of each
// delivery before it is sent (CheckWithdrawn) asks the database nothing
// for a delivery it never withdraws (no lane, a lane of the social graph
// such as an article's, which a fan-out to followers fills, an
// invitation, an answer), and for a case's content one request in a read transaction
// that opens the case's bucket, whatever the number of the case's
// participants.
func TestCheckingADeliveryReadsOnlyWhatItMayWithdraw(t *testing.T) {
	db := openPostgresStore(t)
	ctx := context.Background()
	small, large := newCase(t, false), newCase(t, false)
	large.ID = "https://v.example/cases/large"
	for i := range 150 {
		p := *large.Participants[1]
		p.Actor, p.ID = fmt.Sprintf("https://p%d.example/actors/psirt", i), fmt.Sprintf("%s/participants/%d", large.ID, i)
		large.Participants = append(large.Participants, &p)
	}
	update(t, db, func(tx *store.Tx) error {
		if err := saveCase(tx, small); err != nil {
			return err
		}
		return saveCase(tx, large)
	})
	note := store.StoredActivity{ID: "https://v.example/activities/announce", Semantic: string(vocab.AnnounceCaseLedgerEntry), Body: []byte(`{}`)}
	tests := []struct {
		name string
		d    store.Delivery
		a    store.StoredActivity
		read bool // whether it is read from the store
	}{
		{"no case's lane", store.Delivery{Recipient: finder}, note, false},
		{"an invitation", store.Delivery{Recipient: finder, OrderingKey: caseID}, store.StoredActivity{Semantic: string(vocab.InviteActorToCase)}, false},
		{"an answer", store.Delivery{Recipient: finder, OrderingKey: caseID}, store.StoredActivity{Semantic: string(vocab.AckCaseStatus)}, false},
		{"an article to a follower, in the article's lane", store.Delivery{Recipient: finder, OrderingKey: "https://v.example/articles/1"}, store.StoredActivity{Semantic: string(vocab.SocialCreateArticle)}, false},
		{"an answer to a Follow, in the followers' lane", store.Delivery{Recipient: finder, OrderingKey: vendor + "/followers"}, store.StoredActivity{Semantic: string(vocab.SocialAcceptFollow)}, false},
		{"a small case's content", store.Delivery{Recipient: finder, OrderingKey: caseID}, note, true},
		{"a large case's content", store.Delivery{Recipient: "https://p149.example/actors/psirt", OrderingKey: large.ID}, note, true},
	}
	// A read transaction that opens a case's bucket costs requests of its
	// own, whatever it reads there.
	transaction := requestsOf(t, db, func() {
		if err := db.View(ctx, func(tx *store.ReadTx) error { _, err := tx.Case(caseID); return err }); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range tests {
		check := func() {
			if reason, err := CheckWithdrawn(ctx, db, tt.d, tt.a); err != nil || reason != "" {
				t.Errorf("%s: withdrawn %q, %v; want sent", tt.name, reason, err)
			}
		}
		check()
		n := requestsOf(t, db, check)
		want := uint64(0)
		if tt.read {
			want = transaction + 1
		}
		if n > want {
			t.Errorf("%s: %d requests, want at most %d (opening a case's bucket costs %d)", tt.name, n, want, transaction)
		}
	}
}

// TestAnnouncedRemovalPastAGapStopsTheCopy: the Case Actor withdraws what
// it had queued for a participant it removes, but announces the removal
// itself, which then reaches the removed participant's node past entries
// its copy lacks. The copy cannot fetch them (the ledger is not served to
// a removed participant), so it stops there, as at a removal it applies:
// no check of the ledger is scheduled, its earlier failures are
// forgotten, and its status says that its actor was removed, not that it
// is behind. Another entry past a gap still makes it fetch at once.
func TestAnnouncedRemovalPastAGapStopsTheCopy(t *testing.T) {
	remove := act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q,"context":%q`, caseID+"/participants/f", caseID, caseID))
	note := act(t, "Add", vendor, fmt.Sprintf(`"object":{"id":"https://v.example/notes/9","type":"Note","content":"later"},"target":%q,"context":%q`, caseID, caseID))
	for _, tt := range []struct {
		name    string
		a       *vocab.Activity
		sem     vocab.Semantic
		stopped bool
	}{
		{"its own removal", remove, vocab.RemoveCaseParticipantFromCase, true},
		{"another entry", note, vocab.AddNoteToCase, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			now := time.Now().UTC()
			startedReplica(t, db, e, now)
			// An earlier check failed: the ledger was refused.
			update(t, db, func(tx *store.Tx) error {
				s, err := loadSync(&tx.ReadTx, caseID)
				if err != nil {
					return err
				}
				next := *s
				next.Failures, next.LastError, next.NextCheck = 1, "403 Forbidden", now.Add(time.Hour)
				return saveSync(tx, caseID, s, 1, &next, 1)
			})
			payload, err := vocab.Marshal(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := ledger.NewEntry(caseID, 5, fmt.Sprintf("%064x", 4), tt.a.ID, EventType(tt.sem), payload, t0)
			if err != nil {
				t.Fatal(err)
			}
			update(t, db, func(tx *store.Tx) error {
				return e.offerEntries(tx, "finder", caseActor, []ledger.Entry{entry}, now, true)
			})
			var s *SyncState
			var st ReplicaStatus
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				if s, err = loadSync(tx, caseID); err != nil {
					return err
				}
				c, err := loadCase(tx, caseID)
				if err != nil {
					return err
				}
				st, err = Status(tx, c, now, func(id string) bool { return strings.HasPrefix(id, "https://f.example/") })
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if !tt.stopped {
				if s.Known != 6 {
					t.Errorf("after entry 5 past a gap the copy knows of %d entries, want 6", s.Known)
				}
				return
			}
			if !s.NextCheck.IsZero() || s.Failures != 0 || s.Known > 1 {
				t.Errorf("after its own removal past a gap: sync state %+v; want no check scheduled, no failures, nothing more known", s)
			}
			if st.State != ReplicaInSync || !strings.Contains(st.Doing, "removed from the case") {
				t.Errorf("status %+v; want that its actor was removed", st)
			}
		})
	}
}

// TestAnnouncedRemovalOfAnotherLocalActorKeepsTheCopy: a node whose two
// actors take part in a case follows it as one of them (SyncState.Local).
// The announcement of the other's removal past entries the copy lacks
// does not stop the copy: the actor it follows the case as still takes
// part, is served the ledger and fetches the entries at once.
func TestAnnouncedRemovalOfAnotherLocalActorKeepsTheCopy(t *testing.T) {
	const bot = "https://f.example/actors/bot"
	botParticipant := caseID + "/participants/b"
	remove := act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q,"context":%q`, botParticipant, caseID, caseID))
	for _, tt := range []struct {
		name    string
		local   string // the inbox the announcement reached
		stopped bool
	}{
		{"the removal of the actor the copy follows the case as", "finder", true},
		{"the removal of another actor of the node", "bot", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			now := time.Now().UTC()
			startedReplica(t, db, e, now)
			// The node's second actor joined the case too.
			update(t, db, func(tx *store.Tx) error {
				c, err := loadCase(&tx.ReadTx, caseID)
				if err != nil {
					return err
				}
				p := *c.Participant(finder)
				p.Actor, p.ID = bot, botParticipant
				c.Participants = append(c.Participants, &p)
				return saveCase(tx, c)
			})
			target := remove
			if tt.local == "finder" {
				target = act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q,"context":%q`, caseID+"/participants/f", caseID, caseID))
			}
			payload, err := vocab.Marshal(target)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := ledger.NewEntry(caseID, 5, fmt.Sprintf("%064x", 4), target.ID, EventType(vocab.RemoveCaseParticipantFromCase), payload, t0)
			if err != nil {
				t.Fatal(err)
			}
			update(t, db, func(tx *store.Tx) error {
				return e.offerEntries(tx, tt.local, caseActor, []ledger.Entry{entry}, now, true)
			})
			var s *SyncState
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				s, err = loadSync(tx, caseID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if tt.stopped {
				if !s.NextCheck.IsZero() || s.Known > 1 {
					t.Errorf("sync state %+v; want the copy stopped at the removal of the actor it follows the case as", s)
				}
				return
			}
			if s.Known != 6 || s.NextCheck.IsZero() || s.NextCheck.After(now) {
				t.Errorf("sync state %+v; want entries 1 to 5 known and fetched at once for %s, which still takes part", s, s.Local)
			}
		})
	}
}
