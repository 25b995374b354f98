package cases

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestAnAnswerToAnInvitationTheStoreCannotReadIsNotAConflict: a local
// actor's answer to an invitation whose stored record does not decode (a
// damaged store) is refused with the store's damage (500), not 409 "never
// received the invitation", which tells the person the invitation is not
// theirs to answer.
func TestAnAnswerToAnInvitationTheStoreCannotReadIsNotAConflict(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor2", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	const inviteID = "https://v.example/activities/invite-1"
	invite := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Invite","actor":%q,"object":%q,"target":%q,"to":[%q]}`,
		inviteID, caseActor, vendor2, caseID, vendor2)
	if _, err := db.AcceptInbound(ctx, store.Inbound{ID: inviteID, Recipient: "vendor2", Sender: caseActor, Body: []byte(invite)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageActivity(t, path, inviteID)
	db, err = store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	e := NewEngine(Config{PublicURL: "https://v2.example", IsLocal: func(string) bool { return false }})
	accept := parseActivity(t, fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"https://v2.example/activities/accept-1","type":"Accept","actor":%q,"object":%s,"to":[%q]}`,
		vendor2, invite, caseActor))
	err = db.Update(ctx, func(tx *store.Tx) error {
		return e.ApplyOutbound(tx, LocalActor{Name: "vendor2", ID: vendor2}, []string{caseActor},
			Message{Activity: accept, Class: vocab.Classification{Semantic: vocab.AcceptInviteActorToCase}})
	})
	if problem.Status(err) == http.StatusConflict {
		t.Fatalf("an answer to an invitation the store cannot read: %v, a 409 that says it was never received", err)
	}
	if !errors.Is(err, store.ErrDamaged) || problem.Status(err) != http.StatusInternalServerError {
		t.Errorf("an answer to an invitation the store cannot read: %d (%v), want 500 for the damage", problem.Status(err), err)
	}
}

// TestMigrateSyncStopsAtAReplicaItCannotRead: a replica written before
// sync states whose case record does not decode makes MigrateSync fail,
// as the other migrations of the case buckets do, rather than pass over
// it and mark the store migrated, after which that replica never gets a
// sync state and its missing tail is never looked for.
func TestMigrateSyncStopsAtAReplicaItCannotRead(t *testing.T) {
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") }})
	c := newCase(t, false)
	err := db.Update(ctx, func(tx *store.Tx) error {
		if err := saveReplica(tx, &ledger.Replica{CaseID: c.ID, Genesis: strings.Repeat("a", 64), Next: 2, Tail: strings.Repeat("b", 64)}); err != nil {
			return err
		}
		b, err := tx.Case(c.ID)
		if err != nil {
			return err
		}
		return b.Put(keyCase, []byte(`{"id":`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := e.MigrateSync(ctx, db); err == nil {
		t.Errorf("MigrateSync over a replica whose case record does not decode = %d, nil; want the failure", n)
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		if _, err := tx.Case(syncMigrated); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the store is marked migrated (%v) with a replica left without a sync state", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTheContextOfAnActivityIsCheckedAgainstACaseItCannotRead: an
// activity whose context names one case and which acts in another, whose
// record does not decode, is refused with the store's failure, not let
// through to be recorded in the case its context names.
func TestTheContextOfAnActivityIsCheckedAgainstACaseItCannotRead(t *testing.T) {
	// An acceptance of an embargo invitation of case c1 that says it is
	// of case c2.
	refusedByContextCheck(t, func(acts, other string) *vocab.Activity {
		return act(t, "Accept", vendor, fmt.Sprintf(`"context":%q,"object":{"id":"https://v.example/activities/em-1","type":"Invite","actor":%q,"context":%q,"object":{"id":"%s/embargoes/2","type":"EmbargoEvent"}}`,
			other, caseActor, acts, acts))
	})
}

// refusedByContextCheck checks that checkContext refuses, with the
// store's failure, the activity that build makes of case acts, whose
// record does not decode, and of case other, which reads, rather than let
// it through to be recorded in the case its context names.
func refusedByContextCheck(t *testing.T, build func(acts, other string) *vocab.Activity) {
	t.Helper()
	db := openTestStore(t)
	ctx := context.Background()
	e := NewEngine(Config{PublicURL: "https://v.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://v.example/") }})
	const other = "https://v.example/cases/c2"
	acts := newCase(t, false)
	err := db.Update(ctx, func(tx *store.Tx) error {
		if err := saveCase(tx, &Case{ID: other, Name: "the case the context names"}); err != nil {
			return err
		}
		b, err := tx.Case(acts.ID)
		if err != nil {
			return err
		}
		return b.Put(keyCase, []byte(`{"id":`))
	})
	if err != nil {
		t.Fatal(err)
	}
	a := build(acts.ID, other)
	err = db.View(ctx, func(tx *store.ReadTx) error {
		if err := e.checkContext(tx, a); err == nil {
			t.Errorf("an activity of case %s whose context names %s, with the record of %s unreadable, was let through", acts.ID, other, acts.ID)
		} else if problem.Status(err) < 500 {
			t.Errorf("checkContext = %v (status %d), want the store's failure", err, problem.Status(err))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAReplyToAnActivityTheStoreCannotReadIsNotRefused: a peer's
// acknowledgement of an activity a local actor sent, whose stored record
// does not decode (a damaged store), is refused with the store's damage
// (500), which the peer retries, not 422 "answers ..., which vendor did
// not send", which it does not.
func TestAReplyToAnActivityTheStoreCannotReadIsNotRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	const noteID = "https://v.example/activities/note-1"
	note := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Create","actor":%q,"object":{"id":"https://v.example/notes/1","type":"Note","content":"hi"},"to":[%q]}`,
		noteID, vendor, finder)
	if err := db.EnqueueOutbound(ctx, store.Outbound{ID: noteID, Actor: "vendor", Body: []byte(note)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageActivity(t, path, noteID)
	db, err = store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })

	e := NewEngine(Config{PublicURL: "https://v.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://v.example/") }})
	ack := act(t, "Read", finder, fmt.Sprintf(`"object":%q,"inReplyTo":%q,"to":[%q]`, noteID, noteID, vendor))
	err = db.Update(ctx, func(tx *store.Tx) error {
		_, err := e.ApplyInbound(tx, LocalActor{Name: "vendor", ID: vendor}, finder,
			Message{Activity: ack, Class: vocab.Classification{Semantic: vocab.AckInquiry}})
		return err
	})
	if !errors.Is(err, store.ErrDamaged) || problem.Status(err) != http.StatusInternalServerError {
		t.Errorf("an acknowledgement of an activity the store cannot read: %d (%v), want 500 for the damage", problem.Status(err), err)
	}
}

// TestTheContextOfAnActivityIsCheckedAgainstATargetItCannotRead: an
// activity whose context names one case and whose target names another,
// whose record does not decode, is refused with the store's failure: the
// case it acts on is not known, and it is not let through to be recorded
// in the case its context names as though it acted on none.
func TestTheContextOfAnActivityIsCheckedAgainstATargetItCannotRead(t *testing.T) {
	// An invitation to case c1, which its target names, that says it is
	// of case c2.
	refusedByContextCheck(t, func(acts, other string) *vocab.Activity {
		return act(t, "Invite", caseActor, fmt.Sprintf(`"context":%q,"target":%q,"object":%q`, other, acts, vendor2))
	})
}
