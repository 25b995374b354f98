package store

import (
	"context"
	"encoding/hex"
	"fmt"
	"time"
)

// DeliveryTarget is one recipient of an outbound activity.
type DeliveryTarget struct {
	// Recipient is the IRI of the recipient actor. The outbox resolves its
	// inbox when it delivers, so a peer that is down when the activity is
	// queued still gets it, and a moved inbox is followed.
	Recipient string
	// OrderingKey groups deliveries that must reach Recipient in the order
	// they were queued, typically the case id. Empty means no ordering: the
	// delivery is independent of every other one.
	OrderingKey string
}

// Outbound is an activity written by a local actor, with the recipients it
// must be delivered to.
type Outbound struct {
	// ID is the activity id.
	ID string
	// Actor is the name of the local actor that authored it.
	Actor string
	// Body is the serialized activity, sent byte for byte on every attempt.
	Body []byte
	// Semantic is the Vultron message semantic of the activity, if known.
	Semantic string
	// CreatedAt is when the activity was created; zero means now.
	CreatedAt time.Time
	// Deliveries lists the recipient inboxes. It may be empty for an
	// activity with no remote recipients.
	Deliveries []DeliveryTarget
	// SentBy names the person on whose request the actor sent it
	// (StoredActivity.SentBy); it is also the audit record's principal.
	SentBy string
}

// EnqueueOutbound stores an outbound activity, appends it to its actor's
// outbox and queues one delivery per target, all in one transaction together
// with apply (which may be nil). Each delivery gets a new id and is due at
// once with zero attempts. It returns after the transaction is durable.
//
// An id that is already stored (sent or received) fails with ErrConflict; the
// actor must be a local actor (ErrNotFound otherwise). If apply fails, nothing
// is stored. apply may run more than once (see DB.Update).
func (db *DB) EnqueueOutbound(ctx context.Context, out Outbound, apply func(*Tx) error) error {
	if err := out.validate(); err != nil {
		return fmt.Errorf("store: enqueue outbound: %w", err)
	}
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.EnqueueOutbound(out); err != nil {
			return err
		}
		if apply != nil {
			return apply(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: enqueue outbound %s: %w", out.ID, err)
	}
	return nil
}

func (out *Outbound) validate() error {
	if out.ID == "" || out.Actor == "" {
		return fmt.Errorf("empty id or actor: %w", ErrInvalid)
	}
	if err := checkIDSize("activity id", out.ID); err != nil {
		return err
	}
	for i, t := range out.Deliveries {
		if t.Recipient == "" {
			return fmt.Errorf("activity %s: delivery %d has no recipient: %w", out.ID, i, ErrInvalid)
		}
	}
	return nil
}

// EnqueueOutbound does, inside this transaction, what DB.EnqueueOutbound
// does: it stores the activity, appends it to its actor's outbox and queues
// its deliveries. The inbox uses it to queue the replies an accepted
// activity calls for in the same transaction that stores that activity, so
// a crash can never keep the one without the other.
func (t *Tx) EnqueueOutbound(out Outbound) error {
	if err := out.validate(); err != nil {
		return err
	}
	digest, err := bodyDigest(out.Body, "")
	if err != nil {
		return fmt.Errorf("activity %s: %w", out.ID, err)
	}
	now := t.now()
	if out.CreatedAt.IsZero() {
		out.CreatedAt = now
	}
	if t.bucket(bucketActors).Get([]byte(out.Actor)) == nil {
		return fmt.Errorf("local actor %s: %w", out.Actor, ErrNotFound)
	}
	idKey := []byte(out.ID)
	acts := t.bucket(bucketActivities)
	if acts.Get(idKey) != nil {
		return fmt.Errorf("%w: activity id %s is already stored", ErrConflict, out.ID)
	}
	if err := acts.Put(idKey, encodeActivity(&StoredActivity{
		Direction: DirectionOutbound,
		Actor:     out.Actor,
		Semantic:  out.Semantic,
		Body:      out.Body,
		Time:      out.CreatedAt,
		SentBy:    out.SentBy,
	}, digest)); err != nil {
		return fmt.Errorf("put activity: %w", err)
	}
	if _, err := appendIndex(t, bucketOutbox, out.Actor, out.ID); err != nil {
		return err
	}
	ds := make([]*Delivery, len(out.Deliveries))
	for i, target := range out.Deliveries {
		ds[i] = &Delivery{
			ActivityID:  out.ID,
			Actor:       out.Actor,
			Recipient:   target.Recipient,
			OrderingKey: target.OrderingKey,
			FirstQueued: now,
			NextAttempt: now,
		}
	}
	if err := t.deliveryQueue().addMany(ds); err != nil {
		return err
	}
	_, err = t.AppendAudit(AuditRecord{Kind: AuditOutbound, Time: now, Actor: out.Actor, ActivityID: out.ID, Principal: out.SentBy,
		Digest: hex.EncodeToString(digest), Decision: DecisionEnqueued,
		Reason: queuedFor(len(out.Deliveries))})
	return err
}

// QueueDeliveries queues more deliveries of an outbound activity that
// local actor actor stored (EnqueueOutbound), due at once with zero
// attempts, and audits them: a batch of a fan-out to the actor's
// followers (see FanoutCursor). An activity that is not the actor's
// outbound one is ErrNotFound.
func (t *Tx) QueueDeliveries(actor, activityID string, targets []DeliveryTarget) error {
	for i, target := range targets {
		if target.Recipient == "" {
			return fmt.Errorf("activity %s: delivery %d has no recipient: %w", activityID, i, ErrInvalid)
		}
	}
	v := t.bucket(bucketActivities).Get([]byte(activityID))
	if t.sealErr != nil {
		return t.sealErr
	}
	if v == nil {
		return fmt.Errorf("queue deliveries of %s: the activity: %w", activityID, ErrNotFound)
	}
	a, err := decodeActivity(activityID, v)
	if err != nil {
		return fmt.Errorf("queue deliveries of %s: %w", activityID, err)
	}
	if a.Direction != DirectionOutbound || a.Actor != actor {
		return fmt.Errorf("queue deliveries of %s: no outbound activity of %s: %w", activityID, actor, ErrNotFound)
	}
	if len(targets) == 0 {
		return nil
	}
	now := t.now()
	ds := make([]*Delivery, len(targets))
	for i, target := range targets {
		ds[i] = &Delivery{ActivityID: activityID, Actor: actor, Recipient: target.Recipient, OrderingKey: target.OrderingKey,
			FirstQueued: now, NextAttempt: now}
	}
	if err := t.deliveryQueue().addMany(ds); err != nil {
		return err
	}
	_, err = t.AppendAudit(AuditRecord{Kind: AuditOutbound, Time: now, Actor: actor, ActivityID: activityID,
		Decision: DecisionEnqueued, Reason: queuedFor(len(targets)) + " more (followers)"})
	return err
}

// queuedFor is the reason of an outbound activity's audit record.
func queuedFor(n int) string {
	if n == 1 {
		return "queued for 1 recipient"
	}
	return fmt.Sprintf("queued for %d recipients", n)
}
