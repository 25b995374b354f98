package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// enqueue queues an outbound activity from "coord" to the given targets.
func enqueue(t *testing.T, db *DB, id string, targets ...DeliveryTarget) {
	t.Helper()
	err := db.EnqueueOutbound(context.Background(), Outbound{
		ID:         id,
		Actor:      "coord",
		Body:       activityBody(id, "out"),
		Deliveries: targets,
	}, nil)
	if err != nil {
		t.Fatalf("EnqueueOutbound(%s): %v", id, err)
	}
}

// dueIDs returns "activity→inbox" for each due delivery, and the deliveries.
func dueIDs(t *testing.T, db *DB, now time.Time) ([]string, []Delivery) {
	t.Helper()
	due, err := db.DueDeliveries(context.Background(), now, 100)
	if err != nil {
		t.Fatalf("DueDeliveries: %v", err)
	}
	var out []string
	for _, d := range due {
		out = append(out, d.ActivityID+"→"+d.Recipient)
	}
	return out, due
}

func find(t *testing.T, ds []Delivery, activity, inbox string) Delivery {
	t.Helper()
	for _, d := range ds {
		if d.ActivityID == activity && d.Recipient == inbox {
			return d
		}
	}
	t.Fatalf("no delivery of %s to %s in %v", activity, inbox, ds)
	return Delivery{}
}

const (
	inboxA = "https://a.example/inbox"
	inboxB = "https://b.example/inbox"
)

func TestDeliveryLanes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: time.Minute})
		ctx := context.Background()
		mustPutActor(t, db, "coord")

		// Two activities for case-1 to inbox A (one lane), an unordered one to
		// A and B, and a case-2 one to A (another lane).
		enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"}, DeliveryTarget{inboxB, "case-1"})
		enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})
		enqueue(t, db, "o3", DeliveryTarget{inboxA, ""}, DeliveryTarget{inboxA, ""})
		enqueue(t, db, "o4", DeliveryTarget{inboxA, "case-2"})
		now := clock.Now()

		if n, err := db.PendingCount(ctx); err != nil || n != 6 {
			t.Fatalf("PendingCount = %d, %v; want 6", n, err)
		}
		got, due := dueIDs(t, db, now)
		want := []string{"o1→" + inboxA, "o1→" + inboxB, "o3→" + inboxA, "o3→" + inboxA, "o4→" + inboxA}
		if !slices.Equal(got, want) {
			t.Fatalf("due = %v, want %v (o2 waits behind o1 in its lane)", got, want)
		}
		for _, d := range due {
			if d.Attempts != 0 || !d.NextAttempt.Equal(now) || !d.FirstQueued.Equal(now) || d.Actor != "coord" {
				t.Errorf("new delivery %+v: want 0 attempts, queued and due now", d)
			}
		}

		// Leased: nothing is handed out twice while the leases hold.
		if got, _ := dueIDs(t, db, now.Add(30*time.Second)); len(got) != 0 {
			t.Errorf("due while leased = %v, want none", got)
		}

		// A failed first attempt keeps o1 at the head of the case-1 lane.
		o1A := find(t, due, "o1", inboxA)
		retryAt := now.Add(10 * time.Minute)
		if err := db.RetryDelivery(ctx, o1A.ID, retryAt, "503 Service Unavailable"); err != nil {
			t.Fatal(err)
		}
		if got, _ := dueIDs(t, db, now.Add(time.Second)); len(got) != 0 {
			t.Errorf("due before the retry time = %v, want none (o2 must wait for o1)", got)
		}
		// After the leases of the others expire they are due again; o1 is due
		// again at its retry time, after them (they have been due since
		// before), and o2 still waits.
		got, due = dueIDs(t, db, retryAt)
		want = []string{"o1→" + inboxB, "o3→" + inboxA, "o3→" + inboxA, "o4→" + inboxA, "o1→" + inboxA}
		if !slices.Equal(got, want) {
			t.Fatalf("due at retry time = %v, want %v", got, want)
		}
		o1A = find(t, due, "o1", inboxA)
		if o1A.Attempts != 1 || o1A.LastError != "503 Service Unavailable" || !o1A.NextAttempt.Equal(retryAt) {
			t.Errorf("retried delivery = %+v", o1A)
		}

		// Completing o1 releases o2.
		for _, d := range due {
			if err := db.CompleteDelivery(ctx, d.ID); err != nil {
				t.Fatal(err)
			}
		}
		got, due = dueIDs(t, db, retryAt)
		if want := []string{"o2→" + inboxA}; !slices.Equal(got, want) {
			t.Fatalf("due after completing o1 = %v, want %v", got, want)
		}
		if err := db.CompleteDelivery(ctx, due[0].ID); err != nil {
			t.Fatal(err)
		}
		if err := db.CompleteDelivery(ctx, due[0].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("second completion = %v, want ErrNotFound", err)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 0 {
			t.Errorf("PendingCount = %d, %v; want 0", n, err)
		}
	})
}

func TestDeliveryDeadLetterAndRequeue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: 2 * time.Hour})
		ctx := context.Background()
		mustPutActor(t, db, "coord")

		enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
		enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})
		now := clock.Now()
		_, due := dueIDs(t, db, now)
		if len(due) != 1 || due[0].ActivityID != "o1" {
			t.Fatalf("due = %v, want o1 only", due)
		}
		if err := db.RetryDelivery(ctx, due[0].ID, now, "timeout"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeadLetter(ctx, due[0].ID, "410 Gone"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeadLetter(ctx, due[0].ID, "again"); !errors.Is(err, ErrNotFound) {
			t.Errorf("dead-lettering twice = %v, want ErrNotFound", err)
		}

		dead := allDeliveries(t, db, true)
		if len(dead) != 1 || dead[0].ActivityID != "o1" || dead[0].LastError != "410 Gone" || dead[0].Attempts != 1 {
			t.Fatalf("DeadLetters = %+v", dead)
		}
		// The lane is unblocked: o2 is due.
		got, due := dueIDs(t, db, now)
		if want := []string{"o2→" + inboxA}; !slices.Equal(got, want) {
			t.Fatalf("due after dead letter = %v, want %v", got, want)
		}

		// Requeued o1 goes to the end of its lane, due now, with a fresh
		// retry horizon: it waits behind o2.
		later := clock.Advance(time.Hour)
		newID, err := db.RequeueDeadLetter(ctx, dead[0].ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if newID <= due[0].ID {
			t.Errorf("requeued id %d is not after o2's %d", newID, due[0].ID)
		}
		if _, err := db.RequeueDeadLetter(ctx, dead[0].ID, ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("requeue twice = %v, want ErrNotFound", err)
		}
		if dead := allDeliveries(t, db, true); len(dead) != 0 {
			t.Errorf("DeadLetters after requeue = %v; want none", dead)
		}
		if got, _ := dueIDs(t, db, later); len(got) != 0 {
			t.Errorf("due while o2 is leased = %v, want none", got)
		}
		if err := db.CompleteDelivery(ctx, due[0].ID); err != nil {
			t.Fatal(err)
		}
		_, due = dueIDs(t, db, later)
		if len(due) != 1 || due[0].ID != newID || due[0].ActivityID != "o1" || due[0].Attempts != 0 ||
			!due[0].FirstQueued.Equal(later) || !due[0].NextAttempt.Equal(later) || due[0].LastError != "410 Gone" {
			t.Errorf("requeued delivery = %+v", due)
		}
		if pending := allDeliveries(t, db, false); len(pending) != 1 || pending[0].ID != newID {
			t.Errorf("PendingDeliveries = %+v", pending)
		}
	})
}

func TestDueDeliveriesLimitAndLeaseExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: time.Minute})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		for i := range 5 {
			enqueue(t, db, fmt.Sprintf("o%d", i), DeliveryTarget{Recipient: fmt.Sprintf("https://p%d.example/inbox", i)})
		}
		now := clock.Now()
		first, err := db.DueDeliveries(ctx, now, 2)
		if err != nil || len(first) != 2 {
			t.Fatalf("first batch = %d, %v; want 2", len(first), err)
		}
		second, err := db.DueDeliveries(ctx, now, 10)
		if err != nil || len(second) != 3 {
			t.Fatalf("second batch = %d, %v; want the other 3", len(second), err)
		}
		for _, a := range first {
			for _, b := range second {
				if a.ID == b.ID {
					t.Errorf("delivery %d handed out twice", a.ID)
				}
			}
		}
		// A worker that never reports back loses its lease.
		again, err := db.DueDeliveries(ctx, now.Add(time.Minute), 10)
		if err != nil || len(again) != 5 {
			t.Errorf("after lease expiry = %d, %v; want all 5 again", len(again), err)
		}
		if due, err := db.DueDeliveries(ctx, now, 0); err != nil || len(due) != 0 {
			t.Errorf("limit 0 = %v, %v", due, err)
		}
	})
}

func TestEnqueueOutbound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		errApply := errors.New("apply refused")
		tests := []struct {
			name    string
			out     Outbound
			apply   func(*Tx) error
			wantErr error
			stored  bool
		}{
			{
				name: "stores activity, outbox entry and deliveries",
				out: Outbound{ID: "o2", Actor: "coord", Body: []byte(`{"id":"o2"}`),
					Deliveries: []DeliveryTarget{{inboxA, "c"}, {inboxB, "c"}}},
				apply: func(tx *Tx) error {
					c, err := tx.Case("c")
					if err != nil {
						return err
					}
					return c.Put([]byte("last"), []byte("o2"))
				},
				stored: true,
			},
			{
				name:    "duplicate outbound id is a conflict",
				out:     Outbound{ID: "o1", Actor: "coord", Body: []byte(`{"id":"o1","v":2}`), Deliveries: []DeliveryTarget{{inboxA, ""}}},
				wantErr: ErrConflict,
			},
			{
				name:    "id of an inbound activity is a conflict",
				out:     Outbound{ID: "in1", Actor: "coord", Body: []byte(`{}`), Deliveries: []DeliveryTarget{{inboxA, ""}}},
				wantErr: ErrConflict,
			},
			{
				name:    "apply failure stores nothing",
				out:     Outbound{ID: "o3", Actor: "coord", Body: []byte(`{}`), Deliveries: []DeliveryTarget{{inboxA, ""}}},
				apply:   func(*Tx) error { return errApply },
				wantErr: errApply,
			},
			{
				name:    "unknown actor",
				out:     Outbound{ID: "o4", Actor: "ghost", Body: []byte(`{}`), Deliveries: []DeliveryTarget{{inboxA, ""}}},
				wantErr: ErrNotFound,
			},
			{
				name:    "target without inbox",
				out:     Outbound{ID: "o5", Actor: "coord", Body: []byte(`{}`), Deliveries: []DeliveryTarget{{"", "c"}}},
				wantErr: ErrInvalid,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := be.open(t, Options{})
				ctx := context.Background()
				mustPutActor(t, db, "coord")
				enqueue(t, db, "o1", DeliveryTarget{inboxA, ""})
				if _, err := db.AcceptInbound(ctx, inbound("in1", "coord", "x"), nil); err != nil {
					t.Fatal(err)
				}

				err := db.EnqueueOutbound(ctx, tt.out, tt.apply)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("EnqueueOutbound = %v, want %v", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				wantPending, wantOutbox := 1, 1
				if tt.stored {
					wantPending += len(tt.out.Deliveries)
					wantOutbox++
				}
				if n, err := db.PendingCount(ctx); err != nil || n != wantPending {
					t.Errorf("PendingCount = %d, %v; want %d", n, err, wantPending)
				}
				page, _, err := db.OutboxPage(ctx, "coord", "", 10)
				if err != nil || len(page) != wantOutbox {
					t.Fatalf("outbox = %d entries, %v; want %d", len(page), err, wantOutbox)
				}
				if !tt.stored {
					if _, err := db.Activity(ctx, tt.out.ID); tt.out.ID != "o1" && tt.out.ID != "in1" && !errors.Is(err, ErrNotFound) {
						t.Errorf("activity %s after refusal: %v, want ErrNotFound", tt.out.ID, err)
					}
					return
				}
				a := page[0]
				if a.ID != tt.out.ID || a.Direction != DirectionOutbound || string(a.Body) != string(tt.out.Body) || a.Actor != "coord" {
					t.Errorf("newest outbox entry = %+v", a)
				}
				err = db.View(ctx, func(tx *ReadTx) error {
					c, err := tx.Case("c")
					if err != nil {
						return err
					}
					if got := string(c.Get([]byte("last"))); got != tt.out.ID {
						t.Errorf("case value = %q, want %q", got, tt.out.ID)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

// TestReplyQueuedWithInbound checks that a reply queued with
// Tx.EnqueueOutbound inside AcceptInbound commits with the inbound activity,
// and that neither is kept when the apply step fails.
func TestReplyQueuedWithInbound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		db := be.open(t, Options{})
		mustPutActor(t, db, "coord")
		reply := func(id string) func(*Tx) error {
			return func(tx *Tx) error {
				return tx.EnqueueOutbound(Outbound{
					ID: id, Actor: "coord", Body: activityBody(id, "ack"),
					Deliveries: []DeliveryTarget{{Recipient: inboxA, OrderingKey: "case-1"}},
				})
			}
		}
		in := inbound("https://peer.example/activities/offer", "coord", "offer")
		if _, err := db.AcceptInbound(ctx, in, reply("https://node.example/activities/ack")); err != nil {
			t.Fatalf("AcceptInbound: %v", err)
		}
		ids, _ := dueIDs(t, db, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		if want := []string{"https://node.example/activities/ack→" + inboxA}; !slices.Equal(ids, want) {
			t.Fatalf("due = %v, want %v", ids, want)
		}

		failing := func(tx *Tx) error {
			if err := reply("https://node.example/activities/ack2")(tx); err != nil {
				return err
			}
			return errors.New("state check refused")
		}
		in2 := inbound("https://peer.example/activities/offer2", "coord", "offer2")
		if _, err := db.AcceptInbound(ctx, in2, failing); err == nil {
			t.Fatal("AcceptInbound with a failing apply succeeded")
		}
		if _, err := db.Activity(ctx, in2.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("inbound activity stored after a failed apply: %v", err)
		}
		if _, err := db.Activity(ctx, "https://node.example/activities/ack2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("reply stored after a failed apply: %v", err)
		}
		if n, err := db.PendingCount(ctx); err != nil || n != 1 {
			t.Errorf("PendingCount = %d, %v; want 1", n, err)
		}
	})
}

// TestDeferredCompletionKeepsLaneUntilCommit checks that a delivery
// completed without a commit of its own stays leased, and its lane
// blocked, until another write carries its removal.
func TestDeferredCompletionKeepsLaneUntilCommit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, LeaseTTL: time.Minute, DeferDelay: time.Hour})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
		enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})
		now := clock.Now()

		_, due := dueIDs(t, db, now)
		if len(due) != 1 {
			t.Fatalf("due = %v, want o1 only", due)
		}
		done := make(chan error, 1)
		if err := db.CompleteDeliveryDeferred(due[0].ID, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if got, _ := dueIDs(t, db, now); len(got) != 0 {
			t.Fatalf("due before the completion committed = %v, want none (o1 leased, o2 behind it)", got)
		}
		// Any other write commits the completion.
		enqueue(t, db, "o3", DeliveryTarget{inboxB, ""})
		if err := <-done; err != nil {
			t.Fatalf("deferred completion: %v", err)
		}
		got, _ := dueIDs(t, db, now)
		if want := []string{"o2→" + inboxA, "o3→" + inboxB}; !slices.Equal(got, want) {
			t.Errorf("due after the completion committed = %v, want %v", got, want)
		}
		// Completing a delivery that is no longer pending reports it.
		if err := db.CompleteDeliveryDeferred(due[0].ID, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := db.Update(ctx, func(*Tx) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, ErrNotFound) {
			t.Errorf("second deferred completion = %v, want ErrNotFound", err)
		}
	})
}

// TestRequeueDeadLetterIfRefusesAPendingDeliveryOfAnotherActor: a caller
// that may retry only some actors' dead letters learns nothing of another
// actor's pending delivery (its attempt and when it is tried next): allow
// refuses it as it refuses that actor's dead letter, and the delivery stays
// pending; one allow accepts is said to be pending.
func TestRequeueDeadLetterIfRefusesAPendingDeliveryOfAnotherActor(t *testing.T) {
	db := openTestDB(t, Options{})
	ctx := context.Background()
	mustPutActor(t, db, "coord")
	enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
	pending := allDeliveries(t, db, false)
	if len(pending) != 1 {
		t.Fatalf("pending = %+v, want one", pending)
	}
	errNotYours := errors.New("not yours")
	for _, tc := range []struct {
		name    string
		allow   func(string) error
		want    error
		pending bool // whether the answer is a PendingError
	}{
		{"another actor's", func(string) error { return errNotYours }, errNotYours, false},
		{"its own actor's", func(a string) error {
			if a != "coord" {
				return errNotYours
			}
			return nil
		}, ErrPending, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := db.RequeueDeadLetterIf(ctx, pending[0].ID, "", tc.allow)
			var pe *PendingError
			if !errors.Is(err, tc.want) || errors.As(err, &pe) != tc.pending {
				t.Errorf("RequeueDeadLetterIf of a pending delivery = %v, want %v", err, tc.want)
			}
			if got := allDeliveries(t, db, false); len(got) != 1 || got[0].ID != pending[0].ID {
				t.Errorf("pending after the refused retry = %+v", got)
			}
		})
	}
}
