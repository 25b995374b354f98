package cases

import (
	"context"
	"fmt"
	"strings"
	"testing"

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
				if err := b.DeleteBucket(bucketParticipants); err != nil {
					return err
				}
				return b.Delete(keyParticipantsIndexed)
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
		if _, err := b.Bucket(bucketParticipants); err == nil {
			t.Error("the dropped replica keeps its index of participants")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}
