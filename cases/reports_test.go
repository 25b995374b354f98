package cases

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestReportDecisionsNeverMoveAPeerBack: a peer's RV, RI or RC moves this
// node's model of the peer's RM along an edge of the RM model, or forward
// past steps this node missed, and a repeat of the peer's last step is
// acknowledged; but a message that would move it back (an RI that arrives
// after the RV the peer sent later, when it validated the report it had
// found invalid) is answered with RE and leaves the model as it is.
func TestReportDecisionsNeverMoveAPeerBack(t *testing.T) {
	const (
		reportID = "https://f.example/reports/1"
		offerID  = "https://f.example/activities/offer"
	)
	tests := []struct {
		name  string
		typ   string // Accept (RV), TentativeReject (RI), Reject (RC)
		peer  cvdstate.RMState
		want  cvdstate.RMState
		reply string // Read (RK) or Ignore (RE)
	}{
		{"RV after RI", "Accept", cvdstate.RMInvalid, cvdstate.RMValid, "Read"},
		{"RV from START, the RK lost", "Accept", cvdstate.RMStart, cvdstate.RMValid, "Read"},
		{"RC from RECEIVED, steps missed", "Reject", cvdstate.RMReceived, cvdstate.RMClosed, "Read"},
		{"RV again", "Accept", cvdstate.RMValid, cvdstate.RMValid, "Read"},
		{"RI arriving after the later RV", "TentativeReject", cvdstate.RMValid, cvdstate.RMValid, "Ignore"},
		{"RI after the peer deferred", "TentativeReject", cvdstate.RMDeferred, cvdstate.RMDeferred, "Ignore"},
		{"RV after the peer accepted", "Accept", cvdstate.RMAccepted, cvdstate.RMAccepted, "Ignore"},
		// A closed peer: a repeated RC is acknowledged as other repeats
		// are; an RV from before its RC is older, answered RE; neither
		// is refused on the request, which a sender takes for a delivery
		// that failed for good.
		{"RC again", "Reject", cvdstate.RMClosed, cvdstate.RMClosed, "Read"},
		{"RV arriving after the later RC", "Accept", cvdstate.RMClosed, cvdstate.RMClosed, "Ignore"},
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
			if err != nil || len(replies) != 1 || replies[0].Activity.Type != tt.reply {
				t.Fatalf("%s with the peer in %s: replies %+v, %v; want one %s", tt.typ, tt.peer, replies, err, tt.reply)
			}
			want := map[string]vocab.Semantic{"Read": vocab.AckReport, "Ignore": vocab.ReportError}[tt.reply]
			if got := vocab.Classify(replies[0].Activity, nil).Semantic; got != want {
				t.Errorf("%s with the peer in %s: the reply classifies as %s, want %s", tt.typ, tt.peer, got, want)
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
