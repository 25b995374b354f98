package node

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// BenchmarkCaseOffers measures what deciding the case page's forms costs:
// every action tried for the node's participant on a copy of the case,
// for a case of 2, 1,000 and 10,000 participants (the real case of a
// report, with participants added to the loaded copy), and with cached=
// true what a page view of a case that did not change since the last one
// costs.
func BenchmarkCaseOffers(b *testing.B) {
	p := newReplicaPair(b)
	d := p.vendor.dashboard
	for _, run := range []struct {
		n      int
		cached bool
	}{{2, false}, {1000, false}, {10000, false}, {10000, true}} {
		n := run.n
		b.Run(fmt.Sprintf("participants=%d/cached=%t", n, run.cached), func(b *testing.B) {
			var extra []*cases.Participant
			for i := 2; i < n; i++ {
				actor := fmt.Sprintf("https://n%d.example/actors/vendor", i)
				extra = append(extra, &cases.Participant{Actor: actor, ID: "https://n.example/p/" + fmt.Sprint(i),
					Roles: cvdstate.Vendor, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted, VFD: cvdstate.VFDAware}})
			}
			now := time.Now()
			var offered int
			b.ResetTimer()
			for range b.N {
				// The case is read in the transaction that tries the
				// actions, as the page does; the reading is not timed.
				err := p.vendor.db.View(context.Background(), func(tx *store.ReadTx) error {
					b.StopTimer()
					c, err := cases.Load(tx, p.caseID)
					if err != nil || c == nil {
						return fmt.Errorf("load the case: %v", err)
					}
					c.Participants = append(c.Participants, extra...)
					b.StartTimer()
					o := d.ComputeOffers
					if run.cached {
						o = d.Offers
					}
					offers := o(tx, c, now)
					offered = 0
					for _, as := range offers.As {
						offered += len(as)
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if offered == 0 {
				b.Fatal("no form offered")
			}
		})
	}
}
