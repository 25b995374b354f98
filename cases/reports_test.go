package cases

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestReportDecisionsNeverMoveAPeerBack: a peer's RV, RI or RC moves this
// node's model of the peer's RM along an edge of the RM model, or forward
// past steps this node missed, and a repeat of the peer's last step is
// acknowledged; but a message that would move it back (an RI that arrives
// after the RV the peer sent later, when it validated the report it had
// found invalid) is refused and leaves the model as it is.
func TestReportDecisionsNeverMoveAPeerBack(t *testing.T) {
	const (
		reportID = "https://f.example/reports/1"
		offerID  = "https://f.example/activities/offer"
	)
	tests := []struct {
		name   string
		typ    string // Accept (RV), TentativeReject (RI), Reject (RC)
		peer   cvdstate.RMState
		want   cvdstate.RMState
		status int // 0: acknowledged
	}{
		{"RV after RI", "Accept", cvdstate.RMInvalid, cvdstate.RMValid, 0},
		{"RV from START, the RK lost", "Accept", cvdstate.RMStart, cvdstate.RMValid, 0},
		{"RC from RECEIVED, steps missed", "Reject", cvdstate.RMReceived, cvdstate.RMClosed, 0},
		{"RV again", "Accept", cvdstate.RMValid, cvdstate.RMValid, 0},
		{"RI arriving after the later RV", "TentativeReject", cvdstate.RMValid, cvdstate.RMValid, 409},
		{"RI after the peer deferred", "TentativeReject", cvdstate.RMDeferred, cvdstate.RMDeferred, 409},
		{"RV after the peer accepted", "Accept", cvdstate.RMAccepted, cvdstate.RMAccepted, 409},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openTestStore(t)
			ctx := context.Background()
			e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return false }})
			rec := ReportRecord{ReportID: reportID, Actor: "finder", Role: Reporter, RM: cvdstate.RMAccepted, OfferID: offerID,
				Peers: map[string]cvdstate.RMState{vendor: tt.peer}, UpdatedAt: time.Now().UTC()}
			if err := db.Update(ctx, func(tx *store.Tx) error { return writeNewReport(tx, rec) }); err != nil {
				t.Fatal(err)
			}
			decision := act(t, tt.typ, vendor, fmt.Sprintf(`"object":{"id":%q,"type":"Offer","actor":%q,
"object":{"id":%q,"type":"VulnerabilityReport","name":"SQLi","content":"details"}}`, offerID, finder, reportID))
			var replies []Reply
			err := db.Update(ctx, func(tx *store.Tx) error {
				r := NewResolver(&tx.ReadTx)
				var err error
				replies, err = e.ApplyInbound(tx, LocalActor{Name: "finder", ID: finder}, vendor, Message{Activity: decision, Class: vocab.Classify(decision, r), Resolver: r})
				return err
			})
			if got := problem.Status(err); tt.status != 0 && got != tt.status {
				t.Fatalf("%s with the peer in %s: %v; want %d", tt.typ, tt.peer, err, tt.status)
			}
			if tt.status == 0 && (err != nil || len(replies) != 1) {
				t.Fatalf("%s with the peer in %s: replies %d, %v; want it acknowledged", tt.typ, tt.peer, len(replies), err)
			}
			var got ReportRecord
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				var err error
				got, _, err = readReport(tx, reportID, "finder")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if got.Peers[vendor] != tt.want {
				t.Errorf("%s with the peer in %s: the peer's model is %s, want %s", tt.typ, tt.peer, got.Peers[vendor], tt.want)
			}
		})
	}
}
