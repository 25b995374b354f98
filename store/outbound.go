package store

import (
	"context"
	"fmt"
	"time"
)

// DeliveryTarget is one recipient inbox of an outbound activity.
type DeliveryTarget struct {
	// Inbox is the IRI of the recipient's inbox (or shared inbox).
	Inbox string
	// OrderingKey groups deliveries that must reach Inbox in the order they
	// were queued, typically the case id. Empty means no ordering: the
	// delivery is independent of every other one.
	OrderingKey string
}

// Outbound is an activity written by a local actor, with the inboxes it must
// be delivered to.
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
	if out.ID == "" || out.Actor == "" {
		return fmt.Errorf("store: enqueue outbound: empty id or actor: %w", ErrInvalid)
	}
	for i, t := range out.Deliveries {
		if t.Inbox == "" {
			return fmt.Errorf("store: enqueue outbound %s: delivery %d has no inbox: %w", out.ID, i, ErrInvalid)
		}
	}
	digest, err := bodyDigest(out.Body, "")
	if err != nil {
		return fmt.Errorf("store: enqueue outbound %s: %w", out.ID, err)
	}
	now := db.now()
	if out.CreatedAt.IsZero() {
		out.CreatedAt = now
	}
	idKey := []byte(out.ID)
	actVal := encodeActivity(&StoredActivity{
		Direction: DirectionOutbound,
		Actor:     out.Actor,
		Semantic:  out.Semantic,
		Body:      out.Body,
		Time:      out.CreatedAt,
	}, digest)
	deliveryVals := make([][]byte, len(out.Deliveries))
	for i, t := range out.Deliveries {
		deliveryVals[i] = encodeDelivery(&Delivery{
			ActivityID:  out.ID,
			Actor:       out.Actor,
			Inbox:       t.Inbox,
			OrderingKey: t.OrderingKey,
			FirstQueued: now,
			NextAttempt: now,
		})
	}

	err = db.Update(ctx, func(tx *Tx) error {
		if tx.bucket(bucketActors).Get([]byte(out.Actor)) == nil {
			return fmt.Errorf("local actor %s: %w", out.Actor, ErrNotFound)
		}
		acts := tx.bucket(bucketActivities)
		if acts.Get(idKey) != nil {
			return fmt.Errorf("%w: activity id %s is already stored", ErrConflict, out.ID)
		}
		if err := acts.Put(idKey, actVal); err != nil {
			return fmt.Errorf("put activity: %w", err)
		}
		if _, err := appendIndex(tx, bucketOutbox, out.Actor, out.ID); err != nil {
			return err
		}
		queue := tx.bucket(bucketDeliveries)
		for _, v := range deliveryVals {
			seq, err := queue.NextSequence()
			if err != nil {
				return fmt.Errorf("queue delivery: %w", err)
			}
			if err := queue.Put(seqKey(seq), v); err != nil {
				return fmt.Errorf("queue delivery: %w", err)
			}
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
