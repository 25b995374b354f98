package cases

import (
	"context"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// invitationsEnded is the bucket whose presence marks a store whose cases
// MigrateEndedInvitations has visited.
const invitationsEnded = "invitations ended under terms in force"

// MigrateEndedInvitations declines, in the cases of a store written by a
// release that left them so, the participants still INVITED or LAPSED
// while terms are in force and no proposal is open (a page of cases per
// transaction), as putting the terms in force now does (acceptEmbargo);
// then marks the store so that later calls return at once. A replay of
// the case's ledger gives the same consent. It returns how many
// participants it declined.
func MigrateEndedInvitations(ctx context.Context, db *store.DB) (int, error) {
	return migratePages(ctx, db, invitationsEnded, "decline the invitations that terms in force ended", func(tx *store.Tx, after string) (int, string, error) {
		cs, next, err := ListCasesPage(&tx.ReadTx, after, 100)
		if err != nil {
			return 0, "", err
		}
		declined := 0
		for _, c := range cs {
			if c.EM != cvdstate.EMActive || len(c.Proposals) > 0 {
				continue
			}
			if n := c.declineUnanswered(); n > 0 {
				if err := saveCase(tx, c); err != nil {
					return 0, "", err
				}
				declined += n
			}
		}
		return declined, next, nil
	})
}
