package cases

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
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
