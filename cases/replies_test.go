package cases

import (
	"context"
	"fmt"
	"testing"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestCaseActorAnswers checks what the Case Actor queues in answer to an
// activity: the acknowledgement the receiver tables give the messages it
// carried when it records it, the error of their model when it refuses
// it, and ER for a proposal refused because the case is no longer secret,
// in the reference's form of ER; each to the sender alone, in reply to
// the activity.
func TestCaseActorAnswers(t *testing.T) {
	db := openStore(t)
	n := 0
	e := NewEngine(Config{PublicURL: "https://v.example", NewID: func(kind string) string { n++; return fmt.Sprintf("https://v.example/%s/%d", kind, n) },
		Roles: func(string) cvdstate.RoleSet { return cvdstate.Vendor }, IsLocal: func(string) bool { return false }})
	c := newCase(t, false)
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "case-c1"}) })
	proposal := embargoInvite(t, finder, "https://f.example/a/ep", "2027-02-01T00:00:00Z")
	tests := []struct {
		name     string
		act      *vocab.Activity
		before   cvdstate.CaseState
		refusal  error // nil: recorded
		typ, sem string
		messages string
	}{
		{"a recorded note", act(t, "Add", finder, fmt.Sprintf(`"object":{"id":"https://f.example/n/1","type":"Note","content":"x"},"target":%q`, caseID)), cvdstate.CaseState{}, nil, "Read", "ACK_INQUIRY", "GK"},
		{"a recorded product status", product(t, finder, fmt.Sprintf(`"name":"Widget","vendor":%q,"status":"fixed"`, vendor)), cvdstate.CaseState{}, nil, "Read", "ACK_INQUIRY", "GK"},
		{"a recorded proposal", proposal, cvdstate.CaseState{}, nil, "Read", "ACK_EMBARGO", "EK"},
		{"a refused status", status(t, finder, caseID+"/participants/f", "", "Pxa"), cvdstate.CaseState{}, problem.Conflict("changes nothing"), "Ignore", "CASE_STATUS_ERROR", "CE"},
		{"a proposal refused in a secret case", proposal, cvdstate.CaseState{}, problem.Forbidden("not a participant"), "Ignore", "EMBARGO_ERROR", "EE"},
		{"a proposal refused once public", proposal, cvdstate.CaseState{PXA: cvdstate.PXAPublic}, problem.Conflict("the case state is Pxa"), "Reject", "REJECT_INVITE_TO_EMBARGO_ON_CASE", "ER|EJ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var id string
			update(t, db, func(tx *store.Tx) error {
				received := c.received(EventType(vocab.Classify(tt.act, NewResolver(&tx.ReadTx)).Semantic), tt.act)
				before := n
				var err error
				if tt.refusal == nil {
					err = e.answerRecorded(tx, c, "case-c1", finder, tt.act, received, tt.before, t0)
				} else {
					err = e.answerRefused(tx, c, "case-c1", finder, tt.act, received, tt.before, tt.refusal, t0)
				}
				if n != before+1 {
					t.Fatalf("%d replies queued, want 1", n-before)
				}
				id = fmt.Sprintf("https://v.example/activities/%d", n)
				return err
			})
			stored, err := db.Activity(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := vocab.Parse(stored.Body)
			if err != nil {
				t.Fatal(err)
			}
			r := doc.Activity()
			cl := vocab.Classify(r, nil)
			if r.Type != tt.typ || string(cl.Semantic) != tt.sem || cl.Messages.String() != tt.messages || r.InReplyTo.ID() != tt.act.ID ||
				len(r.To.IDs()) != 1 || r.To.IDs()[0] != finder {
				t.Errorf("the answer = %s (%s %s); want a %s to the finder in reply, %s %s", stored.Body, cl.Semantic, cl.Messages, tt.typ, tt.sem, tt.messages)
			}
			if tt.refusal != nil && r.Summary != problem.Message(tt.refusal) {
				t.Errorf("the answer's summary %q, want the reason %q", r.Summary, problem.Message(tt.refusal))
			}
		})
	}
}
