package cases

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestCSHistoryOrdersSimultaneousEvents records ledger entries whose status
// snapshots make several CS events happen at once, as a participant's
// report of "exploit public" does when the vulnerability was not public
// yet: the model makes P follow X at once, so X comes first when both
// appear in one entry; the history read from the ledger must be one the CS
// model accepts.
func TestCSHistoryOrdersSimultaneousEvents(t *testing.T) {
	tests := []struct {
		name      string
		snapshots []string // each entry's object: vfdState and pxaState
		want      string
	}{
		{"exploit public makes the case public", []string{`"vfdState":"Vfd","pxaState":"pxa"`, `"vfdState":"Vfd","pxaState":"PXa"`}, "VXP"},
		{"publication makes the vendor aware", []string{`"vfdState":"vfd","pxaState":"Pxa"`, `"vfdState":"Vfd","pxaState":"Pxa"`}, "PV"},
		{"all at once", []string{`"vfdState":"Vfd","pxaState":"PXa"`}, "VXP"},
		{"in order", []string{`"vfdState":"Vfd","pxaState":"pxa"`, `"vfdState":"VFd","pxaState":"pxa"`, `"vfdState":"VFd","pxaState":"Pxa"`, `"vfdState":"VFd","pxaState":"PXA"`}, "VFPXA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			c := &Case{ID: caseID, CaseActor: caseActor}
			prev := ledger.GenesisHash(caseID, t0, caseActor)
			err := db.Update(context.Background(), func(tx *store.Tx) error {
				for i, snap := range tt.snapshots {
					id := fmt.Sprintf("https://v.example/a/%d", i)
					payload := fmt.Sprintf(`{"id":%q,"type":"Add","object":{"type":"ParticipantStatus",%s}}`, id, snap)
					e, err := ledger.NewEntry(caseID, int64(i), prev, id, "add_status_to_participant", []byte(payload), t0.Add(time.Duration(i)*time.Second))
					if err != nil {
						return err
					}
					if err := appendEntry(tx, e); err != nil {
						return err
					}
					prev = e.EntryHash
					c.LedgerLen, c.TailHash = int64(i+1), prev
				}
				return saveCase(tx, c)
			})
			if err != nil {
				t.Fatal(err)
			}
			var h cvdstate.History
			err = db.View(context.Background(), func(tx *store.ReadTx) error {
				h, err = CSHistoryFrom(tx, c, 0, nil)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if h.String() != tt.want {
				t.Errorf("history %s, want %s", h, tt.want)
			}
			if _, err := h.Final(); err != nil {
				t.Errorf("history %s is not one the CS model accepts: %v", h, err)
			}
		})
	}
}

// TestCSHistoryPlacesVendorAwarenessWhereTheLedgerDoes: in a case its
// coordinator owns, the vendor becomes aware (V) when it joins the case,
// which the ledger records where it happened: after the publication (P)
// that came before it, and before the publication that came after it,
// whether the history is read from the start or continued from a prefix
// of the ledger (as the dashboard does). The history is one the CS model
// accepts: once the public is aware, the model makes the vendor aware
// next (vP is fleeting), before an exploit is public.
func TestCSHistoryPlacesVendorAwarenessWhereTheLedgerDoes(t *testing.T) {
	tests := []struct {
		name   string
		script []string // after the case's opening and validation: invite, join, and statuses (Pxa, PXa)
		want   string
	}{
		{"published before the vendor joined", []string{"Pxa", "invite", "join"}, "PV"},
		{"published after the vendor joined", []string{"invite", "join", "Pxa"}, "VP"},
		{"published, an exploit public, then the vendor joined", []string{"Pxa", "PXa", "invite", "join"}, "PVX"},
	}
	for _, tt := range tests {
		for _, from := range []int64{0, 2} {
			t.Run(fmt.Sprintf("%s, from %d", tt.name, from), func(t *testing.T) {
				db := openStore(t)
				create := newCaseCreate(t, false)
				vc := create.Object.Object.(*vocab.VulnerabilityCase)
				owner := vc.CaseParticipants[0].Object.(*vocab.CaseParticipant)
				owner.CaseRoles = []string{"coordinator", "case_owner"}
				owner.ParticipantStatuses[0].Object.(*vocab.ParticipantStatus).VFDState = "vfd"
				c := &Case{}
				prev := ledger.GenesisHash(caseID, t0, caseActor)
				var entries []ledger.Entry
				var snapshot *Case // the case when the ledger held from entries
				record := func(sem vocab.Semantic, a *vocab.Activity) {
					t.Helper()
					if _, err := c.Apply(EventType(sem), a, t0); err != nil {
						t.Fatalf("%s: %v", sem, err)
					}
					payload, err := vocab.Marshal(a)
					if err != nil {
						t.Fatal(err)
					}
					e, err := ledger.NewEntry(caseID, int64(len(entries)), prev, a.ID, EventType(sem), payload, t0)
					if err != nil {
						t.Fatal(err)
					}
					entries, prev = append(entries, e), e.EntryHash
					if int64(len(entries)) == from {
						snapshot = c.clone()
					}
				}
				record(vocab.CreateCase, create)
				record(vocab.ValidateReport, act(t, "Accept", vendor, fmt.Sprintf(`"object":{"id":"https://f.example/a/offer","type":"Offer","actor":%q,"object":{"id":"https://f.example/reports/1","type":"VulnerabilityReport"}},"context":%q`, finder, caseID)))
				for _, step := range tt.script {
					switch step {
					case "invite":
						record(vocab.InviteActorToCase, act(t, "Invite", vendor, fmt.Sprintf(`"object":%q,"target":%q,"roles":["vendor"]`, vendor2, caseID)))
					case "join":
						record(vocab.AcceptInviteActorToCase, act(t, "Accept", vendor2, ""))
					default:
						record(vocab.AddParticipantStatusToParticipant, status(t, finder, caseID+"/participants/f", "", step))
					}
				}
				// The dashboard's way (from 2): the history of the first
				// entries, read when the ledger held only them, continued
				// with the rest.
				var h cvdstate.History
				for _, part := range [][2]int64{{0, from}, {from, int64(len(entries))}} {
					if part[0] == part[1] {
						continue
					}
					view := c
					if part[1] < int64(len(entries)) {
						view = snapshot
					}
					update(t, db, func(tx *store.Tx) error {
						for _, e := range entries[part[0]:part[1]] {
							if err := appendEntry(tx, e); err != nil {
								return err
							}
						}
						return saveCase(tx, view)
					})
					if err := db.View(context.Background(), func(tx *store.ReadTx) error {
						var err error
						h, err = CSHistoryFrom(tx, view, part[0], h)
						return err
					}); err != nil {
						t.Fatal(err)
					}
				}
				if h.String() != tt.want {
					t.Errorf("history %s, want %s", h, tt.want)
				}
				if _, err := h.Final(); err != nil {
					t.Errorf("history %s is not one the CS model accepts: %v", h, err)
				}
			})
		}
	}
}
