package cases

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// olderCaseActorEntries chains acts onto the replica's tail as a Case
// Actor of an earlier release recorded them: every one applied
// (ledger.Recorded), whatever this release's Apply says of it.
func olderCaseActorEntries(t *testing.T, prev string, from int64, at time.Time, acts []recordedAct) []ledger.Entry {
	t.Helper()
	var out []ledger.Entry
	for i, a := range acts {
		payload, err := vocab.Marshal(a.act)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ledger.NewEntry(caseID, from+int64(i), prev, a.act.ID, EventType(a.sem), payload, at.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, e), e.EntryHash
	}
	return out
}

type recordedAct struct {
	sem vocab.Semantic
	act *vocab.Activity
}

// TestReplicaFollowsTheCaseActorOnLaterRefusals: a Case Actor of an
// earlier release recorded, as applied, activities this release's Apply
// refuses (a participant that closed the case answering an embargo
// proposal, or taking the ownership it was offered). The Case Actor is
// authoritative for its ledger, so a replica of this release applies them
// as that Case Actor did and does not mark the case diverged. A refusal
// every release makes still marks it diverged, and an entry altered after
// the Case Actor sealed it is not taken at all.
func TestReplicaFollowsTheCaseActorOnLaterRefusals(t *testing.T) {
	ep := embargoInvite(t, vendor, "https://v.example/a/ep1", "2027-02-01T00:00:00Z")
	offer := act(t, "Offer", vendor, fmt.Sprintf(`"id":"https://v.example/a/offer1","object":%q,"target":%q`, caseID, finder))
	answer := func(typ, object string) *vocab.Activity {
		return act(t, typ, finder, fmt.Sprintf(`"object":%q,"context":%q`, object, caseID))
	}
	tests := []struct {
		name     string
		acts     []recordedAct
		forge    bool // alter the last entry's payload after it was sealed
		next     int64
		diverged string // what Diverged contains, "" for none
		check    func(t *testing.T, c *Case)
	}{
		{
			name: "a closed participant accepts an embargo proposal",
			acts: []recordedAct{{vocab.InviteToEmbargoOnCase, ep}, {vocab.CloseCase, leave(t, finder)}, {vocab.AcceptInviteToEmbargoOnCase, answer("Accept", ep.ID)}},
			next: 4,
			check: func(t *testing.T, c *Case) {
				if f := c.Participant(finder); f.PEC != cvdstate.PECSignatory || f.AcceptedEmbargo != ep.Object.ID() {
					t.Errorf("the finder is %s of %q, want SIGNATORY of %s as the Case Actor recorded", f.PEC, f.AcceptedEmbargo, ep.Object.ID())
				}
			},
		},
		{
			name: "a closed participant declines an embargo proposal",
			acts: []recordedAct{{vocab.InviteToEmbargoOnCase, ep}, {vocab.CloseCase, leave(t, finder)}, {vocab.RejectInviteToEmbargoOnCase, answer("Reject", ep.ID)}},
			next: 4,
			check: func(t *testing.T, c *Case) {
				if f := c.Participant(finder); f.PEC != cvdstate.PECDeclined {
					t.Errorf("the finder is %s, want DECLINED as the Case Actor recorded", f.PEC)
				}
			},
		},
		{
			name: "a closed transferee takes the ownership",
			acts: []recordedAct{{vocab.OfferCaseOwnershipTransfer, offer}, {vocab.CloseCase, leave(t, finder)}, {vocab.AcceptCaseOwnershipTransfer, answer("Accept", offer.ID)}},
			next: 4,
			check: func(t *testing.T, c *Case) {
				if c.Owner != finder || !c.Participant(finder).Roles.Has(cvdstate.CaseOwner) || c.Participant(vendor).Roles.Has(cvdstate.CaseOwner) || c.Transfer != nil {
					t.Errorf("owner %s, transfer %+v; want the finder owner as the Case Actor recorded", c.Owner, c.Transfer)
				}
			},
		},
		{
			name:     "a refusal of every release",
			acts:     []recordedAct{{vocab.CloseCase, leave(t, finder)}, {vocab.AcceptInviteToEmbargoOnCase, answer("Accept", ep.ID)}},
			next:     3,
			diverged: "not an open embargo proposal",
			check: func(t *testing.T, c *Case) {
				if f := c.Participant(finder); f.PEC != cvdstate.PECNoEmbargo {
					t.Errorf("the finder is %s, want NO_EMBARGO", f.PEC)
				}
			},
		},
		{
			name:  "an entry altered after it was sealed",
			acts:  []recordedAct{{vocab.InviteToEmbargoOnCase, ep}, {vocab.CloseCase, leave(t, finder)}, {vocab.AcceptInviteToEmbargoOnCase, answer("Accept", ep.ID)}},
			forge: true,
			next:  3,
			check: func(t *testing.T, c *Case) {
				if f := c.Participant(finder); f.PEC != cvdstate.PECInvited {
					t.Errorf("the finder is %s, want INVITED: the altered entry must not be applied", f.PEC)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			now := time.Now().UTC()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
			startedReplica(t, db, e, now)
			entries := olderCaseActorEntries(t, loadTestReplica(t, db).Tail, 1, now, tt.acts)
			if tt.forge {
				last := &entries[len(entries)-1]
				last.PayloadSnapshot = []byte(strings.Replace(string(last.PayloadSnapshot), `"Accept"`, `"Reject"`, 1))
			}
			if err := db.Update(ctx, func(tx *store.Tx) error {
				_, err := e.applyCheck(tx, caseID, 1, LedgerPage{Entries: entries, Length: int64(1 + len(entries))}, nil, now.Add(time.Second))
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if r := loadTestReplica(t, db); r.Next != tt.next {
				t.Errorf("the replica holds %d entries, want %d", r.Next, tt.next)
			}
			var c *Case
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				c, err = loadCase(tx, caseID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if tt.diverged == "" && c.Diverged != "" {
				t.Errorf("the replica is marked diverged: %s", c.Diverged)
			}
			if tt.diverged != "" && !strings.Contains(c.Diverged, tt.diverged) {
				t.Errorf("diverged = %q, want it to say %q", c.Diverged, tt.diverged)
			}
			tt.check(t, c)
		})
	}
}
