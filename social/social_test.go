package social

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

const (
	vendorID = "https://v.example/actors/vendor"
	openID   = "https://v.example/actors/advisories"
	caseID   = "https://v.example/actors/case-c1"
	coordID  = "https://c.example/actors/coord"
	otherID  = "https://o.example/actors/other"
)

var (
	vendor = Local{Name: "vendor", ID: vendorID}
	open   = Local{Name: "advisories", ID: openID}
	caseA  = Local{Name: "case-c1", ID: caseID}
)

// fixture is a store with the local actors and a Social over it.
type fixture struct {
	t  *testing.T
	db *store.DB
	s  *Social
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		for _, n := range []string{"vendor", "advisories", "case-c1"} {
			if err := tx.PutLocalActor(store.LocalActor{Name: n, Type: "Organization", KeyID: "k", PublicKeyPEM: "p"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		ManuallyApproves: func(name string) bool { return name != "advisories" },
		IsCaseActor:      func(name string) bool { return name == "case-c1" },
		PublicURL:        "https://v.example",
		Now:              func() time.Time { return time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, db: db, s: s}
}

// activity parses a builder's activity, completed with id and actor.
func activity(t *testing.T, m map[string]any, id, actor string) *vocab.Activity {
	t.Helper()
	m["id"], m["actor"] = id, actor
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := vocab.Parse(b)
	if err != nil {
		t.Fatalf("parse %s: %v", b, err)
	}
	return doc.Activity()
}

// inbound applies act as received by to from sender; it returns the
// replies and the refusal's HTTP status (0 when applied).
func (f *fixture) inbound(to Local, sender string, act *vocab.Activity, sem vocab.Semantic) ([]Reply, int) {
	f.t.Helper()
	var replies []Reply
	err := f.db.Update(context.Background(), func(tx *store.Tx) error {
		var err error
		replies, err = f.s.Inbound(tx, to, sender, act, sem, Sender{Inbox: sender + "/inbox", SharedInbox: "https://c.example/inbox"})
		return err
	})
	if err != nil {
		if st := problem.Status(err); st >= 400 && st < 500 {
			return nil, st
		}
		f.t.Fatalf("Inbound %s: %v", act.Type, err)
	}
	return replies, 0
}

// state returns the state of a relation, none when there is none.
func (f *fixture) state(local string, dir store.FollowDirection, remote string) store.FollowState {
	f.t.Helper()
	var st store.FollowState
	if err := f.db.View(context.Background(), func(tx *store.ReadTx) error {
		r, ok, err := tx.Follow(local, dir, remote)
		if ok {
			st = r.State
		}
		return err
	}); err != nil {
		f.t.Fatal(err)
	}
	return st
}

// TestInboundFollowing: a Follow waits for an admin, or is accepted at
// once with an Accept whose object is the Follow; only the follower undoes
// it; a Case Actor is never followed; an answer comes only from the
// followed actor and only for a Follow still wanted, embedded or named by
// id, and a Reject ends it; articles and announcements come only from
// followed actors. A refusal writes nothing.
func TestInboundFollowing(t *testing.T) {
	f := newFixture(t)
	must := func(m map[string]any, err error) map[string]any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	followVendor := activity(t, must(vocab.NewFollow(vendorID)), "https://c.example/f/1", coordID)
	if replies, st := f.inbound(vendor, coordID, followVendor, vocab.SocialFollow); st != 0 || len(replies) != 0 {
		t.Fatalf("Follow of a manual actor: %d, replies %v; want pending, no reply", st, replies)
	}
	if got := f.state("vendor", store.FollowerOf, coordID); got != store.FollowPending {
		t.Errorf("the manual actor's follower is %v, want pending", got)
	}
	followOpen := activity(t, must(vocab.NewFollow(openID)), "https://c.example/f/2", coordID)
	replies, st := f.inbound(open, coordID, followOpen, vocab.SocialFollow)
	if st != 0 || len(replies) != 1 || replies[0].To != coordID || replies[0].Activity.Type != "Accept" || replies[0].Activity.Object.ID() != followOpen.ID {
		t.Fatalf("Follow of an open actor: %d, replies %+v; want one Accept of the Follow to the follower", st, replies)
	}
	if got := f.state("advisories", store.FollowerOf, coordID); got != store.FollowAccepted {
		t.Errorf("the open actor's follower is %v, want accepted", got)
	}

	for _, tc := range []struct {
		name   string
		to     Local
		sender string
		act    *vocab.Activity
		sem    vocab.Semantic
		want   int
	}{
		{"a Follow of a Case Actor", caseA, coordID, activity(t, must(vocab.NewFollow(caseID)), "https://c.example/f/3", coordID), vocab.SocialFollow, 422},
		{"a Follow of another actor", vendor, coordID, activity(t, must(vocab.NewFollow(openID)), "https://c.example/f/4", coordID), vocab.SocialFollow, 422},
		{"an Undo by another actor", vendor, otherID,
			activity(t, must(vocab.NewUndo(vocab.FollowInfo{ID: followVendor.ID, Actor: coordID, Object: vendorID})), "https://o.example/u/1", otherID), vocab.SocialUndoFollow, 403},
		{"an Accept of a Follow the vendor never sent", vendor, coordID,
			activity(t, must(vocab.NewFollowAnswer(vocab.FollowInfo{ID: "https://v.example/f/none", Actor: vendorID, Object: coordID}, true)), "https://c.example/a/1", coordID), vocab.SocialAcceptFollow, 409},
		{"an Accept by another actor than the followed one", vendor, otherID,
			activity(t, must(vocab.NewFollowAnswer(vocab.FollowInfo{ID: "https://v.example/f/none", Actor: vendorID, Object: coordID}, true)), "https://o.example/a/1", otherID), vocab.SocialAcceptFollow, 403},
		{"an Announce from an actor not followed", vendor, otherID,
			activity(t, must(vocab.NewAnnounce("https://o.example/advisories/1", otherID+"/followers")), "https://o.example/an/1", otherID), vocab.SocialAnnounce, 403},
	} {
		if _, st := f.inbound(tc.to, tc.sender, tc.act, tc.sem); st != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, st, tc.want)
		}
	}
	if f.state("case-c1", store.FollowerOf, coordID) != none || f.state("vendor", store.FollowerOf, coordID) != store.FollowPending {
		t.Errorf("a refusal changed the relations")
	}

	// The vendor follows the coordinator; the coordinator's Accept names the
	// Follow by id only, which is read from the store.
	ctx := context.Background()
	follow := activity(t, must(vocab.NewFollow(coordID)), "https://v.example/f/10", vendorID)
	body, _ := vocab.Marshal(follow)
	if err := f.db.EnqueueOutbound(ctx, store.Outbound{ID: follow.ID, Actor: "vendor", Body: body},
		func(tx *store.Tx) error { return f.s.Outbound(tx, vendor, follow, vocab.SocialFollow) }); err != nil {
		t.Fatal(err)
	}
	byID := activity(t, map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Accept", "object": follow.ID}, "https://c.example/a/2", coordID)
	if _, st := f.inbound(vendor, coordID, byID, vocab.SocialAcceptFollow); st != 0 {
		t.Fatalf("an Accept naming the Follow by id: %d", st)
	}
	if got := f.state("vendor", store.Following, coordID); got != store.FollowAccepted {
		t.Errorf("the vendor's following of the coordinator is %v, want accepted", got)
	}
	// A Reject, with the Follow inline, ends a Follow still pending.
	followOther := activity(t, must(vocab.NewFollow(otherID)), "https://v.example/f/11", vendorID)
	body, _ = vocab.Marshal(followOther)
	if err := f.db.EnqueueOutbound(ctx, store.Outbound{ID: followOther.ID, Actor: "vendor", Body: body},
		func(tx *store.Tx) error { return f.s.Outbound(tx, vendor, followOther, vocab.SocialFollow) }); err != nil {
		t.Fatal(err)
	}
	if got := f.state("vendor", store.Following, otherID); got != store.FollowPending {
		t.Fatalf("the vendor's Follow of other is %v, want pending", got)
	}
	reject := activity(t, must(vocab.NewFollowAnswer(vocab.FollowInfo{ID: followOther.ID, Actor: vendorID, Object: otherID}, false)), "https://o.example/r/1", otherID)
	if _, st := f.inbound(vendor, otherID, reject, vocab.SocialRejectFollow); st != 0 || f.state("vendor", store.Following, otherID) != none {
		t.Errorf("Reject of the Follow: %d, relation %v", st, f.state("vendor", store.Following, otherID))
	}
	// Now the coordinator's announcements are taken.
	announce := activity(t, must(vocab.NewAnnounce("https://c.example/advisories/1", coordID+"/followers")), "https://c.example/an/1", coordID)
	if _, st := f.inbound(vendor, coordID, announce, vocab.SocialAnnounce); st != 0 {
		t.Errorf("an Announce from a followed actor: %d", st)
	}
	// The follower undoes its Follow.
	undo := activity(t, must(vocab.NewUndo(vocab.FollowInfo{ID: followVendor.ID, Actor: coordID, Object: vendorID})), "https://c.example/u/1", coordID)
	if _, st := f.inbound(vendor, coordID, undo, vocab.SocialUndoFollow); st != 0 || f.state("vendor", store.FollowerOf, coordID) != none {
		t.Errorf("Undo by the follower: %d, relation %v", st, f.state("vendor", store.FollowerOf, coordID))
	}
}

// none is the state of a relation that does not exist.
const none store.FollowState = 0

// TestAnnounceSharesWhatIsPublic: an actor announces an advisory page of
// its node, one of its documents, or anything of another server; any
// other object of its node (a case, a report, an activity) is refused,
// and nothing is sent.
func TestAnnounceSharesWhatIsPublic(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		object string
		want   int
	}{
		{"https://v.example/advisories/VULTRON-7Q3X", 0},
		{"https://v.example/advisories/VULTRON-7Q3X/csaf.json", 0},
		{"https://c.example/advisories/1", 0},
		{"https://v.example/cases/c1", http.StatusUnprocessableEntity},
		{"https://v.example/activities/a1", http.StatusUnprocessableEntity},
		{"https://v.example/advisories/", http.StatusUnprocessableEntity},
		{"HTTPS://V.EXAMPLE/cases/c1", http.StatusUnprocessableEntity},
		{"https://v.example:443/cases/c1", http.StatusUnprocessableEntity},
		{"http://v.example/cases/c1", http.StatusUnprocessableEntity},
		{"https://v.example/advisories/VULTRON-7Q3X/../../cases/c1", http.StatusUnprocessableEntity},
		{"https://v.example/advisories/VULTRON-7Q3X/%2e%2e/%2E%2E/cases/c1", http.StatusUnprocessableEntity},
		{"https://v.example/advisories/VULTRON-7Q3X/./csaf.json", 0},
	}
	for i, tt := range tests {
		t.Run(tt.object, func(t *testing.T) {
			m, err := vocab.NewAnnounce(tt.object, vendorID+"/followers")
			if err != nil {
				t.Fatal(err)
			}
			act := activity(t, m, fmt.Sprintf("https://v.example/an/%d", i), vendorID)
			err = f.db.Update(context.Background(), func(tx *store.Tx) error { return f.s.Outbound(tx, vendor, act, vocab.SocialAnnounce) })
			if got := problem.Status(err); (err == nil && tt.want != 0) || (err != nil && got != tt.want) {
				t.Errorf("Announce of %s: %v (status %d), want status %d", tt.object, err, got, tt.want)
			}
		})
	}
}

// TestFollowFailed: the dead letter of a pending Follow's delivery fails
// the following, with the delivery's error; the dead letter of any other
// delivery to the followed actor, or of an accepted Follow's, changes
// nothing. A failed following takes no articles and can be followed
// again; the dead letter retried makes it pending, and an Accept of it
// then accepts it.
func TestFollowFailed(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	send := func(act *vocab.Activity, sem vocab.Semantic) error {
		t.Helper()
		body, _ := vocab.Marshal(act)
		return f.db.EnqueueOutbound(ctx, store.Outbound{ID: act.ID, Actor: "vendor", Body: body},
			func(tx *store.Tx) error { return f.s.Outbound(tx, vendor, act, sem) })
	}
	dead := func(activityID, recipient, reason string) {
		t.Helper()
		if err := f.db.Update(ctx, func(tx *store.Tx) error {
			return f.s.FollowDeadLetter(tx, store.Delivery{ActivityID: activityID, Actor: "vendor", Recipient: recipient, LastError: reason}, false)
		}); err != nil {
			t.Fatal(err)
		}
	}
	following := func(remote string) store.Follow {
		t.Helper()
		var out store.Follow
		if err := f.db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			out, _, err = tx.Follow("vendor", store.Following, remote)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	follow, err := vocab.NewFollow(coordID)
	if err != nil {
		t.Fatal(err)
	}
	first := activity(t, follow, "https://v.example/f/1", vendorID)
	if err := send(first, vocab.SocialFollow); err != nil {
		t.Fatal(err)
	}
	// Another activity's dead letter, to the same actor, is not the Follow's.
	dead("https://v.example/notes/1", coordID, "peer answered 410 Gone")
	if got := f.state("vendor", store.Following, coordID); got != store.FollowPending {
		t.Fatalf("after another activity's dead letter the following is %v, want pending", got)
	}
	dead(first.ID, coordID, "peer answered 403 Forbidden")
	if got := following(coordID); got.State != store.FollowFailed || got.Reason != "peer answered 403 Forbidden" || got.FollowID != first.ID {
		t.Fatalf("after the Follow's dead letter the following is %+v, want failed with the 403", got)
	}
	announce, err := vocab.NewAnnounce("https://c.example/advisories/1", coordID+"/followers")
	if err != nil {
		t.Fatal(err)
	}
	if _, st := f.inbound(vendor, coordID, activity(t, announce, "https://c.example/an/1", coordID), vocab.SocialAnnounce); st != http.StatusForbidden {
		t.Errorf("an Announce from an actor whose Follow failed: %d, want 403", st)
	}

	// The failed Follow's dead letter is retried: pending again.
	if err := f.db.Update(ctx, func(tx *store.Tx) error {
		return f.s.FollowDeadLetter(tx, store.Delivery{ID: 9, ActivityID: first.ID, Actor: "vendor", Recipient: coordID, LastError: "peer answered 403 Forbidden"}, true)
	}); err != nil {
		t.Fatal(err)
	}
	if got := following(coordID); got.State != store.FollowPending || got.Reason != "" || got.FollowID != first.ID {
		t.Fatalf("after the retry of the dead letter the following is %+v, want pending without a reason", got)
	}
	// It was delivered after all, and accepted.
	accept, err := vocab.NewFollowAnswer(vocab.FollowInfo{ID: first.ID, Actor: vendorID, Object: coordID}, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, st := f.inbound(vendor, coordID, activity(t, accept, "https://c.example/a/1", coordID), vocab.SocialAcceptFollow); st != 0 {
		t.Fatalf("an Accept of the failed Follow: %d", st)
	}
	if got := following(coordID); got.State != store.FollowAccepted || got.Reason != "" {
		t.Errorf("after the Accept the following is %+v, want accepted without a reason", got)
	}
	// An accepted following does not fail.
	dead(first.ID, coordID, "peer answered 403 Forbidden")
	if got := f.state("vendor", store.Following, coordID); got != store.FollowAccepted {
		t.Errorf("an accepted following became %v", got)
	}

	// Another actor's Follow fails; following it again asks again.
	followOther, err := vocab.NewFollow(otherID)
	if err != nil {
		t.Fatal(err)
	}
	second := activity(t, followOther, "https://v.example/f/2", vendorID)
	if err := send(second, vocab.SocialFollow); err != nil {
		t.Fatal(err)
	}
	dead(second.ID, otherID, "")
	if got := following(otherID); got.State != store.FollowFailed || got.Reason == "" {
		t.Fatalf("the Follow of other: %+v, want failed with a reason", got)
	}
	followOther, _ = vocab.NewFollow(otherID)
	third := activity(t, followOther, "https://v.example/f/3", vendorID)
	if err := send(third, vocab.SocialFollow); err != nil {
		t.Fatalf("following again after a failed Follow: %v", err)
	}
	if got := following(otherID); got.State != store.FollowPending || got.FollowID != third.ID || got.Reason != "" {
		t.Errorf("after following again: %+v, want pending with %s", got, third.ID)
	}
	// The first Follow's dead letter, late, does not fail the second.
	dead(second.ID, otherID, "peer answered 403 Forbidden")
	if got := f.state("vendor", store.Following, otherID); got != store.FollowPending {
		t.Errorf("the old Follow's dead letter made the new following %v", got)
	}
}

// TestFanoutKeepsSharedInboxesOnTheFollowersHosts: a follower recorded
// with a shared inbox on another host than its own (a relation stored
// before the shared inbox was checked) gets the followers' activities at
// its own inbox; one whose shared inbox is on its host gets them there.
func TestFanoutKeepsSharedInboxesOnTheFollowersHosts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.db.Update(ctx, func(tx *store.Tx) error {
		for _, fl := range []store.Follow{
			{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: coordID, FollowID: "https://c.example/f/1", SharedInbox: "https://o.example/inbox"},
			{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: otherID, FollowID: "https://o.example/f/1", SharedInbox: "https://o.example/inbox"},
		} {
			if err := tx.PutFollow(fl); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const id = "https://v.example/activities/an-1"
	announce(t, f.db, id)
	if err := RunFanouts(ctx, f.db, "vendor", 0, nil); err != nil {
		t.Fatal(err)
	}
	got := queued(t, f.db, id)
	slices.Sort(got)
	if want := []string{coordID, SharedInbox("https://o.example/inbox")}; !slices.Equal(got, want) {
		t.Errorf("Expand = %v, want %v", got, want)
	}
}

// TestFollowAnswersNameAFollow: an Undo of a Follow that never arrived,
// and a Reject of a Follow the actor never sent, are refused (409, B26)
// also when the Follow they carry inline takes the id of another activity
// the node holds from the same actor (a Create it received, a Note it
// sent): that activity is no Follow, received or sent and answered since.
func TestFollowAnswersNameAFollow(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	received := "https://c.example/c/1"
	body := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + received + `","type":"Create","actor":"` + coordID +
		`","to":["` + vendorID + `"],"object":{"id":"https://c.example/notes/1","type":"Note","attributedTo":"` + coordID + `","content":"hello"}}`)
	if _, err := f.db.AcceptInbound(ctx, store.Inbound{ID: received, Recipient: "vendor", Sender: coordID, Body: body, Semantic: "CREATE_NOTE"}, nil); err != nil {
		t.Fatal(err)
	}
	sent := "https://v.example/n/1"
	note := []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + sent + `","type":"Create","actor":"` + vendorID +
		`","to":["` + coordID + `"],"object":{"id":"https://v.example/notes/1","type":"Note","attributedTo":"` + vendorID + `","content":"hi"}}`)
	if err := f.db.EnqueueOutbound(ctx, store.Outbound{ID: sent, Actor: "vendor", Body: note}, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		act  *vocab.Activity
		sem  vocab.Semantic
	}{
		{"an Undo of a 'Follow' that is the Create the vendor received", activity(t, map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Undo",
			"object": map[string]any{"type": "Follow", "id": received, "actor": coordID, "object": vendorID}}, "https://c.example/u/9", coordID), vocab.SocialUndoFollow},
		{"a Reject of a 'Follow' that is the Note the vendor sent", activity(t, map[string]any{"@context": vocab.ActivityStreamsContext, "type": "Reject",
			"object": map[string]any{"type": "Follow", "id": sent, "actor": vendorID, "object": coordID}}, "https://c.example/r/9", coordID), vocab.SocialRejectFollow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, st := f.inbound(vendor, coordID, tc.act, tc.sem); st != http.StatusConflict {
				t.Errorf("status %d, want 409", st)
			}
		})
	}
}
