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

// TestCaseActorAnswersWhatHasAFormalType: the Case Actor acknowledges
// only an activity that carries a protocol message, and every answer it
// queues is a reply its sender reads as one (an acknowledgement or an
// error). A Create(Note) is no protocol message (the reference's
// registry gives CREATE_NOTE none; GI is Add(Note) to the case): recorded,
// it gets no K, which no node could read as an acknowledgement of it;
// refused, its error is GE.
func TestCaseActorAnswersWhatHasAFormalType(t *testing.T) {
	db := openStore(t)
	n := 0
	e := NewEngine(Config{PublicURL: "https://v.example", NewID: func(kind string) string { n++; return fmt.Sprintf("https://v.example/%s/%d", kind, n) },
		Roles: func(string) cvdstate.RoleSet { return cvdstate.Vendor }, IsLocal: func(string) bool { return false }})
	c := newCase(t, false)
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "case-c1"}) })
	note := func(verb string) *vocab.Activity {
		return act(t, verb, finder, fmt.Sprintf(`"object":{"id":"https://f.example/n/%s","type":"Note","content":"x"},"target":%q,"context":%q`, verb, caseID, caseID))
	}
	tests := []struct {
		name     string
		act      *vocab.Activity
		refusal  error  // nil: recorded
		messages string // of the reply queued; "" for none
	}{
		{"a recorded Add(Note)", note("Add"), nil, "GK"},
		{"a recorded Create(Note)", note("Create"), nil, ""},
		{"a refused Create(Note)", note("Create"), problem.Forbidden("not a participant"), "GE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := n
			update(t, db, func(tx *store.Tx) error {
				received := c.received(EventType(vocab.Classify(tt.act, NewResolver(&tx.ReadTx)).Semantic), tt.act)
				if tt.refusal == nil {
					return e.answerRecorded(tx, c, "case-c1", finder, tt.act, received, cvdstate.CaseState{}, t0)
				}
				return e.answerRefused(tx, c, "case-c1", finder, tt.act, received, cvdstate.CaseState{}, tt.refusal, t0)
			})
			if tt.messages == "" {
				if n != before {
					stored, _ := db.Activity(context.Background(), fmt.Sprintf("https://v.example/activities/%d", n))
					t.Fatalf("the Case Actor answers %s with %s; want no answer", tt.act.Type, stored.Body)
				}
				return
			}
			if n != before+1 {
				t.Fatalf("%d replies queued, want 1", n-before)
			}
			stored, err := db.Activity(context.Background(), fmt.Sprintf("https://v.example/activities/%d", n))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := vocab.Parse(stored.Body)
			if err != nil {
				t.Fatal(err)
			}
			cl := vocab.Classify(doc.Activity(), nil)
			if !cl.Semantic.IsReply() || cl.Messages.String() != tt.messages {
				t.Errorf("the answer %s reads as %s (%s); want a reply, %s", stored.Body, cl.Semantic, cl.Messages, tt.messages)
			}
		})
	}
}

// TestProposalRefusedOnceTheAdvisoryIsPublic: the receiver tables answer
// an embargo proposal (EP) that arrives when the case is no longer secret
// with ER, and a published advisory makes it so whatever the case state
// says: the Case Actor rejects such a proposal (Reject(Invite), ER) as it
// does one in a case whose public is aware, and answers a proposal it
// refuses for another reason in a secret case with the error (EE).
func TestProposalRefusedOnceTheAdvisoryIsPublic(t *testing.T) {
	db := openStore(t)
	n := 0
	e := NewEngine(Config{PublicURL: "https://v.example", NewID: func(kind string) string { n++; return fmt.Sprintf("https://v.example/%s/%d", kind, n) },
		Roles: func(string) cvdstate.RoleSet { return cvdstate.Vendor }, IsLocal: func(string) bool { return false }})
	update(t, db, func(tx *store.Tx) error { return tx.PutLocalActor(store.LocalActor{Name: "case-c1"}) })
	proposal := embargoInvite(t, finder, "https://f.example/a/ep", "2027-02-01T00:00:00Z")
	tests := []struct {
		name      string
		published bool
		typ, msgs string
	}{
		{"the advisory is public", true, "Reject", "ER|EJ"},
		{"the case is secret", false, "Ignore", "EE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(t, false)
			var refusal error = problem.Conflict("refused")
			if tt.published {
				c.Advisory = &Advisory{ArticleID: "https://v.example/advisories/1", Revisions: []Revision{{Number: 1, At: t0, By: vendor, Article: "https://v.example/advisories/1"}}}
				refusal = checkEmbargoAndAdvisory(c, Message{Activity: proposal, Class: vocab.Classify(proposal, nil)})
				if problem.Status(refusal) != 409 {
					t.Fatalf("the proposal after the advisory: %v, want a 409", refusal)
				}
			}
			before := n
			update(t, db, func(tx *store.Tx) error {
				received := c.received(EventType(vocab.InviteToEmbargoOnCase), proposal)
				return e.answerRefused(tx, c, "case-c1", finder, proposal, received, c.state(), refusal, t0)
			})
			if n != before+1 {
				t.Fatalf("%d replies queued, want 1", n-before)
			}
			stored, err := db.Activity(context.Background(), fmt.Sprintf("https://v.example/activities/%d", n))
			if err != nil {
				t.Fatal(err)
			}
			doc, err := vocab.Parse(stored.Body)
			if err != nil {
				t.Fatal(err)
			}
			r := doc.Activity()
			if cl := vocab.Classify(r, nil); r.Type != tt.typ || cl.Messages.String() != tt.msgs || r.Summary != problem.Message(refusal) {
				t.Errorf("the answer %s is a %s (%s); want a %s (%s) saying why", stored.Body, r.Type, cl.Messages, tt.typ, tt.msgs)
			}
		})
	}
}
