package outbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

const (
	vendorNode = "https://vendor.example"
	finderID   = "https://finder.example/actors/finder"
	offerID    = "https://finder.example/activities/rs-1"
	reportID   = "https://finder.example/objects/r1"
)

// vendorOutbox is a vendor's node with a store, an engine and an outbox.
type vendorOutbox struct {
	db     *store.DB
	engine *cases.Engine
	sub    *Submitter
	vendor actor.Local
}

// newVendorOutbox builds a vendor's node whose Case Actor keys come from
// provision and provisioned (nil: every key exists already).
func newVendorOutbox(t *testing.T, provision func(string) (store.LocalActor, error), provisioned func(string) (store.LocalActor, bool, error)) *vendorOutbox {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	v := &vendorOutbox{db: db, vendor: actor.Local{Name: "vendor", Type: "Organization", ID: vendorNode + "/actors/vendor"}}
	if err := db.PutLocalActor(context.Background(), store.LocalActor{Name: "vendor", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	if provision == nil {
		provision = func(name string) (store.LocalActor, error) { return store.LocalActor{Name: name, Type: "Service"}, nil }
		provisioned = func(name string) (store.LocalActor, bool, error) {
			return store.LocalActor{Name: name, Type: "Service"}, true, nil
		}
	}
	var ids atomic.Int64
	newID := func(kind string) string { return fmt.Sprintf("%s/%s/%d", vendorNode, kind, ids.Add(1)) }
	v.engine = cases.NewEngine(cases.Config{
		PublicURL:   vendorNode,
		NewID:       newID,
		Roles:       func(string) cvdstate.RoleSet { return cvdstate.Vendor },
		Provision:   provision,
		Provisioned: provisioned,
		IsLocal:     func(id string) bool { return len(id) > len(vendorNode) && id[:len(vendorNode)] == vendorNode },
	})
	v.sub, err = NewSubmitter(SubmitConfig{
		Store: db, Engine: v.engine, NewID: newID, Logger: zerolog.Nop(),
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			return v.vendor, name == "vendor", nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// receiveReport stores the finder's report in the vendor's inbox as the
// inbox does; hold, when set, runs inside that write before it commits.
func (v *vendorOutbox) receiveReport(hold func()) error {
	offer := &vocab.Activity{}
	offer.ID, offer.Type, offer.Actor = offerID, "Offer", vocab.RefTo(finderID)
	rep := &vocab.VulnerabilityReport{}
	rep.ID, rep.Type, rep.Name = reportID, vocab.TypeVulnerabilityReport, "Overflow"
	offer.Object = vocab.Inline(rep)
	offer.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(v.vendor.ID)}}
	body, err := vocab.Marshal(offer)
	if err != nil {
		return err
	}
	_, err = v.db.AcceptInbound(context.Background(), store.Inbound{ID: offerID, Recipient: "vendor", Sender: finderID, Body: body,
		Semantic: string(vocab.SubmitReport)}, func(tx *store.Tx) error {
		r := cases.NewResolver(&tx.ReadTx)
		if _, err := v.engine.ApplyInbound(tx, cases.LocalActor{Name: "vendor", ID: v.vendor.ID}, finderID,
			cases.Message{Activity: offer, Class: vocab.Classify(offer, r), Resolver: r}); err != nil {
			return err
		}
		if hold != nil {
			hold()
		}
		return nil
	})
	return err
}

// validate submits the vendor's validation of the finder's report.
func (v *vendorOutbox) validate() (Submitted, error) {
	return v.sub.Submit(context.Background(), "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Accept","object":%q,"to":[%q]}`,
		vocab.VultronContext, offerID, finderID)))
}

// inCase checks that the vendor's record of the report is VALID, in a case.
func (v *vendorOutbox) inCase(t *testing.T) {
	t.Helper()
	err := v.db.View(context.Background(), func(tx *store.ReadTx) error {
		rec, ok, err := cases.Report(tx, reportID, "vendor")
		if err == nil && (!ok || rec.RM != cvdstate.RMValid || rec.CaseID == "") {
			t.Errorf("report record = %+v (found %v); want VALID with a case", rec, ok)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSubmitClassifiesInTheApplyingTransaction has a vendor validate a
// report (Accept naming the finder's Offer by id) while the write that
// stores the Offer in its inbox is still open: the outbox must decide what
// the Accept means from what the transaction that stores it holds.
func TestSubmitClassifiesInTheApplyingTransaction(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	holding, release := make(chan struct{}), make(chan struct{})
	received := make(chan error, 1)
	go func() {
		received <- v.receiveReport(func() {
			select {
			case <-holding:
			default:
				close(holding)
			}
			<-release
		})
	}()
	<-holding

	type result struct {
		s   Submitted
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := v.validate()
		done <- result{s, err}
	}()
	// Release the report's write once the validation waits for the store.
	deadline := time.Now().Add(10 * time.Second)
	for v.db.QueuedWrites() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the submission never reached the store's write queue")
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-received; err != nil {
		t.Fatalf("receive the report: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("Submit: %v", r.err)
	}
	if r.s.Semantic != vocab.ValidateReport {
		t.Errorf("semantic = %s, want %s", r.s.Semantic, vocab.ValidateReport)
	}
	v.inCase(t)
}

// TestCaseActorKeyMadeOutsideTheWritePath validates a report, which opens
// a case and makes its Case Actor's key: while the key is being made, other
// writes go through.
func TestCaseActorKeyMadeOutsideTheWritePath(t *testing.T) {
	var (
		mu           sync.Mutex
		keys         = map[string]bool{}
		provisioning = make(chan struct{})
		release      = make(chan struct{})
	)
	v := newVendorOutbox(t, func(name string) (store.LocalActor, error) {
		close(provisioning)
		<-release // making the key takes this long
		mu.Lock()
		defer mu.Unlock()
		keys[name] = true
		return store.LocalActor{Name: name, Type: "Service"}, nil
	}, func(name string) (store.LocalActor, bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return store.LocalActor{Name: name, Type: "Service"}, keys[name], nil
	})
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := v.validate()
		done <- err
	}()
	<-provisioning
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := v.db.Update(ctx, func(tx *store.Tx) error {
		_, err := tx.Case("another write")
		return err
	}); err != nil {
		t.Fatalf("a write while the Case Actor's key is being made: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Submit: %v", err)
	}
	v.inCase(t)
}

// TestSubmitResolvesRecipientsFirst submits activities whose recipients
// resolve, are gone, cannot be delivered to, are no actor's id (a node's
// address, whose dashboard redirects), are on loopback, or whose node does
// not answer now: the outbox refuses the second to the fifth with 422 and
// the reason (for loopback, the flag that allows it) and stores and queues
// nothing for them; the last is queued, its delivery retried until the
// node answers.
func TestSubmitResolvesRecipientsFirst(t *testing.T) {
	ctx := context.Background()
	const node = "https://finder.example"
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	finder := actor.Local{Name: "finder", Type: "Person", ID: node + "/actors/finder"}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "finder", Type: "Person"}); err != nil {
		t.Fatal(err)
	}
	var ids atomic.Int64
	newID := func(kind string) string { return fmt.Sprintf("%s/%s/%d", node, kind, ids.Add(1)) }
	engine := cases.NewEngine(cases.Config{PublicURL: node, NewID: newID,
		Roles:   func(string) cvdstate.RoleSet { return cvdstate.Finder },
		IsLocal: func(id string) bool { return len(id) > len(node) && id[:len(node)] == node }})
	var asked []string
	sub, err := NewSubmitter(SubmitConfig{
		Store: db, Engine: engine, NewID: newID, Logger: zerolog.Nop(),
		Local: func(_ context.Context, name string) (actor.Local, bool, error) { return finder, name == "finder", nil },
		ResolveRecipient: func(_ context.Context, iri string) error {
			asked = append(asked, iri)
			switch iri {
			case "https://vendor.example/actors/nobody":
				return Permanent(fmt.Errorf("fetch %s: status 404", iri))
			case "https://vendor.example/actors/elsewhere":
				return Permanent(fmt.Errorf("actor document %s: inbox is not on the actor's host", iri))
			case "https://vendor.example":
				// The node's own address: its dashboard redirects to a login.
				return Permanent(&actor.DocumentError{URL: iri, Reason: `redirected (303) to "/login?next=%2F"; canonical ids must not redirect`})
			case "http://127.0.0.1:7001/actors/vendor":
				// A node on loopback, which a node started without
				// --allow-private-peers does not fetch from.
				return Permanent(fmt.Errorf("fetch %s: dial tcp 127.0.0.1:7001: %w", iri,
					fmt.Errorf("127.0.0.1 is a loopback address (127.0.0.0/8): %w", actor.ErrAddressRefused)))
			case "https://down.example/actors/vendor":
				return fmt.Errorf("dial tcp: connection refused")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	offer := func(to string) []byte {
		return []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Overflow","content":"details"}}`, to))
	}
	tests := []struct {
		to     string
		status int
		want   string
	}{
		{"https://vendor.example/actors/nobody", 422, "there is no actor at https://vendor.example/actors/nobody (404)"},
		{"https://vendor.example/actors/elsewhere", 422, "https://vendor.example/actors/elsewhere cannot be delivered to: actor document"},
		{"https://vendor.example", 422, `https://vendor.example is not an actor's id: redirected (303) to "/login?next=%2F"; canonical ids must not redirect (an actor's id is the URL of its document, such as https://cvd.vendor.example/actors/psirt); nothing was sent`},
		{"http://127.0.0.1:7001/actors/vendor", 422, "http://127.0.0.1:7001/actors/vendor is on an address this node does not deliver to: 127.0.0.1 is a loopback address (127.0.0.0/8); a node for local set-ups and tests delivers to loopback and private addresses when serve is given --allow-private-peers; nothing was sent"},
		{"https://down.example/actors/vendor", 0, ""},
		{"https://vendor.example/actors/vendor", 0, ""},
	}
	for _, tt := range tests {
		_, err := sub.Submit(ctx, "finder", offer(tt.to))
		if tt.status == 0 {
			if err != nil {
				t.Errorf("to %s: %v", tt.to, err)
			}
			continue
		}
		if problem.Status(err) != tt.status || !strings.Contains(problem.Message(err), tt.want) {
			t.Errorf("to %s: %d %v, want %d saying %q", tt.to, problem.Status(err), err, tt.status, tt.want)
		}
	}
	if len(asked) != 6 {
		t.Errorf("resolved %q, want each recipient once", asked)
	}
	pending, err := db.PendingCount(ctx)
	if err != nil || pending != 2 {
		t.Errorf("%d deliveries queued (%v), want the two to actors not refused", pending, err)
	}
}

// TestSubmitByNamesThePerson checks what SubmitBy keeps of the person
// who asked: the user's name with the stored activity and in its audit
// record, and, when a display name is given, an AS2 Person with that name
// (and no id) as the activity's attributedTo, in place of whatever the
// client put there, while the actor stays the organization's.
func TestSubmitByNamesThePerson(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"@context":%q,"type":"Accept","object":%q,"to":[%q],"attributedTo":{"type":"Person","name":"Someone Else"}}`,
		vocab.VultronContext, offerID, finderID)
	sub, err := v.sub.SubmitBy(context.Background(), "vendor", []byte(body), By{Name: "alice", DisplayName: "Alice Liddell"})
	if err != nil {
		t.Fatal(err)
	}
	var sent map[string]any
	if err := json.Unmarshal(sub.Body, &sent); err != nil {
		t.Fatal(err)
	}
	if by, _ := sent["attributedTo"].(map[string]any); len(by) != 2 || by["type"] != "Person" || by["name"] != "Alice Liddell" {
		t.Errorf("attributedTo = %v, want only a Person named Alice Liddell", sent["attributedTo"])
	}
	if sent["actor"] != v.vendor.ID {
		t.Errorf("actor = %v, want the vendor's", sent["actor"])
	}
	err = v.db.View(context.Background(), func(tx *store.ReadTx) error {
		a, err := tx.Activity(sub.ID)
		if err == nil && (a.SentBy != "alice" || !bytes.Equal(a.Body, sub.Body)) {
			t.Errorf("stored activity sent by %q; want alice, with the body sent", a.SentBy)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAnswersCarryWhatTheyAnswer submits answers that name what they
// answer by id, as clients do: the activity sent must carry it inline
// (reduced to its id, type and what it is about) so that any receiver, and
// the case's ledger, can tell what it means without this node's store, and
// an answer to an Offer or Invite must name it in inReplyTo (§6.3).
func TestAnswersCarryWhatTheyAnswer(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	rv, err := v.validate()
	if err != nil {
		t.Fatalf("validate: %v", err)
	}
	caseID := standalone(t, rv.Body, vocab.ValidateReport, offerID)

	join, err := v.sub.Submit(context.Background(), "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Join","object":%q,"context":%q}`,
		vocab.VultronContext, caseID, caseID)))
	if err != nil {
		t.Fatalf("engage: %v", err)
	}
	standalone(t, join.Body, vocab.EngageCase, "")

	// A client's inReplyTo that names something else than the answered
	// activity is refused, and nothing is sent.
	v2 := newVendorOutbox(t, nil, nil)
	if err := v2.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	_, err = v2.sub.Submit(context.Background(), "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Accept","object":%q,"inReplyTo":"https://finder.example/activities/other","to":[%q]}`,
		vocab.VultronContext, offerID, finderID)))
	if problem.Status(err) != 422 || !strings.Contains(err.Error(), offerID) {
		t.Errorf("Accept with another inReplyTo: %v (status %d), want 422 naming %s", err, problem.Status(err), offerID)
	}
}

// standalone parses an activity the outbox sent and checks that it
// classifies as want with no store to resolve ids, that its object is
// inline, and that it is in reply to inReplyTo ("" for none). It returns
// the activity's context.
func standalone(t *testing.T, body []byte, want vocab.Semantic, inReplyTo string) string {
	t.Helper()
	doc, err := vocab.Parse(body)
	if err != nil {
		t.Fatalf("parse what was sent: %v", err)
	}
	act := doc.Activity()
	if act.Object.Object == nil {
		t.Errorf("%s sent its object as the bare id %s: %s", act.Type, act.Object.IRI, body)
	}
	if got := vocab.Classify(act, nil).Semantic; got != want {
		t.Errorf("%s classified without a store as %s, want %s: %s", act.Type, got, want, body)
	}
	if got := act.InReplyTo.ID(); got != inReplyTo {
		t.Errorf("%s inReplyTo = %q, want %q", act.Type, got, inReplyTo)
	}
	return act.Context.ID()
}

// TestACatchUpTheStoreCannotTakeIsNotAConflict: a submission this node's
// copy of a case refuses (it names what the copy does not hold) makes the
// copy catch up with the Case Actor; when that fails because this node's
// store cannot write now, the client is answered 507 (or 503) with
// Retry-After, as for any write the store could not take, not 409 ("try
// again once the Case Actor answers"), which a client takes as final.
func TestACatchUpTheStoreCannotTakeIsNotAConflict(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	const caseID = "https://coord.example/cases/1"
	const owner = "https://coord.example/actors/case-1"
	c := &cases.Case{ID: caseID, Owner: owner, UpdatedAt: time.Now()}
	c.Participants = []*cases.Participant{{Actor: v.vendor.ID, ID: caseID + "/participants/v", Roles: cvdstate.Vendor,
		ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}}}
	if err := v.db.Update(context.Background(), func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
	full := &store.UnavailableError{Reason: "the node's disk is full", Full: true, Err: errors.New("write vultron.db: no space left on device")}
	caughtUp := 0
	sub, err := NewSubmitter(SubmitConfig{
		Store: v.db, Engine: v.engine, Logger: zerolog.Nop(),
		NewID: func(kind string) string { return vendorNode + "/" + kind + "/catch-up" },
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			return v.vendor, name == "vendor", nil
		},
		CatchUp: func(context.Context, string) (bool, error) {
			caughtUp++
			return false, fmt.Errorf("check the ledger of %s: %w", caseID, full)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = sub.Submit(context.Background(), "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Accept","object":"https://coord.example/activities/invite-not-held","context":%q,"to":[%q]}`,
		vocab.VultronContext, caseID, owner)))
	if caughtUp == 0 {
		t.Fatalf("the refused submission did not make the copy catch up: %v", err)
	}
	if problem.Status(err) != http.StatusInsufficientStorage || problem.RetryAfter(err) == 0 {
		t.Errorf("answered %d (%v), want 507 with Retry-After", problem.Status(err), err)
	}
}

// TestCaseMessagesGoOnlyToTheCase has the vendor, owner of the case its
// validation opened, address case activities to actors of the case and
// to others: an actor that is neither a participant nor the Case Actor is
// refused with 422 naming it, and nothing is stored or queued, except
// where the protocol addresses a non-participant on purpose (the invitee
// of an Invite).
func TestCaseMessagesGoOnlyToTheCase(t *testing.T) {
	ctx := context.Background()
	v := newVendorOutbox(t, nil, nil)
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := v.validate(); err != nil {
		t.Fatal(err)
	}
	var caseID string
	if err := v.db.View(ctx, func(tx *store.ReadTx) error {
		rec, _, err := cases.Report(tx, reportID, "vendor")
		caseID = rec.CaseID
		return err
	}); err != nil || caseID == "" {
		t.Fatalf("the validation opened no case (%v)", err)
	}
	const stranger = "https://elsewhere.example/actors/stranger"
	const invitee = "https://coord.example/actors/coord"
	// The invitee travels inline: this node holds no document of it.
	invite := func(who string) map[string]any {
		m := vocab.InviteToCase(caseID, who, nil)
		m["object"] = map[string]any{"id": who, "type": "Organization"}
		return m
	}
	addressed := func(m map[string]any, to ...string) []byte {
		t.Helper()
		m["@context"] = vocab.VultronContext
		if len(to) > 0 {
			m["to"] = to
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		body []byte
		want string // "" when it is accepted
	}{
		{"a note to an actor outside the case", addressed(vocab.AddNote(caseID, "the fix is ready"), stranger), stranger},
		{"a note to the case and an actor outside it", addressed(vocab.AddNote(caseID, "the fix is ready"), finderID, stranger), stranger},
		{"an invitation addressed to another than its invitee", addressed(invite(invitee), stranger), stranger},
		{"a note to a participant", addressed(vocab.AddNote(caseID, "thanks"), finderID), ""},
		{"a note to the case alone", addressed(vocab.AddNote(caseID, "noted")), ""},
		{"an invitation to its invitee", addressed(invite(invitee), invitee), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pendingBefore, err := v.db.PendingCount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := v.sub.Submit(ctx, "vendor", tt.body)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Submit: %v", err)
				}
				return
			}
			if problem.Status(err) != http.StatusUnprocessableEntity || !strings.Contains(problem.Message(err), tt.want) ||
				!strings.Contains(problem.Message(err), "not a participant of case "+caseID) {
				t.Fatalf("Submit to %q: %d %v; want 422 naming %s as no participant of %s", sub.Recipients, problem.Status(err), err, tt.want, caseID)
			}
			if pending, err := v.db.PendingCount(ctx); err != nil || pending != pendingBefore {
				t.Errorf("%d deliveries queued after the refusal (%v), want %d as before", pending, err, pendingBefore)
			}
		})
	}
}
