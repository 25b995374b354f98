package cases

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// TestMigrateEndedInvitations: a case stored by an earlier release, whose
// terms are in force with no proposal open, kept participants INVITED or
// LAPSED with nothing left to answer; the migration declines them as
// putting the terms in force now does, and leaves every other case and
// participant as it was.
func TestMigrateEndedInvitations(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	end := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	participants := func() []*Participant {
		return []*Participant{
			{Actor: "https://v.example/vendor", ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECSignatory}},
			{Actor: "https://i.example/invited", ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECInvited}},
			{Actor: "https://l.example/lapsed", ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECLapsed}},
		}
	}
	inForce := &Case{ID: "https://v.example/cases/in-force", EM: cvdstate.EMActive, Embargo: &Embargo{ID: "e1", End: end}, Participants: participants()}
	revising := &Case{ID: "https://v.example/cases/revising", EM: cvdstate.EMRevise, Embargo: &Embargo{ID: "e1", End: end},
		Proposals: []Proposal{{InviteID: "i2", Terms: Embargo{ID: "e2", End: end.AddDate(0, 0, 7)}}}, Participants: participants()}
	for _, c := range []*Case{inForce, revising} {
		if err := db.Update(ctx, func(tx *store.Tx) error { return saveCase(tx, c) }); err != nil {
			t.Fatal(err)
		}
	}

	n, err := MigrateEndedInvitations(ctx, db)
	if err != nil || n != 2 {
		t.Fatalf("MigrateEndedInvitations = %d, %v; want 2 participants declined", n, err)
	}
	want := map[string][]cvdstate.PEC{
		inForce.ID:  {cvdstate.PECSignatory, cvdstate.PECDeclined, cvdstate.PECDeclined},
		revising.ID: {cvdstate.PECSignatory, cvdstate.PECInvited, cvdstate.PECLapsed},
	}
	for id, pecs := range want {
		var c *Case
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			c, err = loadCase(tx, id)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for i, p := range c.Participants {
			if p.PEC != pecs[i] {
				t.Errorf("%s: %s is %v, want %v", id, p.Actor, p.PEC, pecs[i])
			}
		}
	}
	if n, err := MigrateEndedInvitations(ctx, db); err != nil || n != 0 {
		t.Errorf("a second MigrateEndedInvitations = %d, %v; want 0", n, err)
	}
}
