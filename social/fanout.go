package social

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/openvultron/vultron/store"
)

// FanoutBatch is the most followers one transaction of a fan-out queues
// deliveries to (see store.FanoutCursor): the write that stores an
// announcement costs the same with ten followers or a million, and so
// does each batch after it.
const FanoutBatch = 500

// maxSharedPerHost bounds the shared inboxes a fan-out remembers for the
// followers of one host, which it rewrites with every batch. A server
// whose followers name more than that may get the activity once more at
// a shared inbox, which it drops by the activity's id.
const maxSharedPerHost = 64

// StartFanout records, in the transaction that stores activity
// activityID of local actor from, its fan-out to from's accepted
// followers, when the activity is addressed to its followers collection
// (addressed lists its to, cc and audience); the deliveries are queued
// later, a batch per transaction (AdvanceFanout), in lane orderingKey,
// and skip the recipients named, queued with the activity. It reports
// whether a fan-out was recorded.
func StartFanout(tx *store.Tx, from Local, activityID, orderingKey string, addressed, named []string) (bool, error) {
	if !slices.Contains(addressed, FollowersOf(from.ID)) {
		return false, nil
	}
	if _, err := tx.AddFanout(store.NewFanoutCursor(from.Name, activityID, orderingKey, named)); err != nil {
		return false, fmt.Errorf("social: start the fan-out of %s: %w", activityID, err)
	}
	return true, nil
}

// AdvanceFanout queues, in tx, the deliveries to the next batch of at
// most batch followers of the oldest fan-out in progress of local actor
// name (of any actor when name is ""), and moves its cursor past them, or
// ends it with its last batch. Each follower gets one delivery, or one per
// shared inbox for the followers whose document names one on their host.
// It reports whether there was a fan-out to advance; it reads the cursor
// and one page of followers, and writes at most batch deliveries.
func AdvanceFanout(tx *store.Tx, name string, batch int) (bool, error) {
	if batch <= 0 {
		batch = FanoutBatch
	}
	c, ok, err := tx.NextFanout(name)
	if err != nil || !ok {
		return false, err
	}
	page, next, err := tx.Follows(c.Actor, store.FollowerOf, store.FollowAccepted, c.After, batch)
	if err != nil {
		return false, fmt.Errorf("social: read the followers of %s for %s: %w", c.Actor, c.ActivityID, err)
	}
	// Whether each shared inbox of the page was found gone is read at
	// once: one request on a server, not one per server the followers
	// are on.
	inboxes := make([]string, 0, len(page))
	for _, f := range page {
		if shared := sharedInboxOf(f.Remote, f.SharedInbox); shared != "" && (len(inboxes) == 0 || inboxes[len(inboxes)-1] != shared) {
			inboxes = append(inboxes, shared)
		}
	}
	tx.ReadAheadSharedInboxesGone(inboxes)
	var targets []store.DeliveryTarget
	for _, f := range page {
		c.After = f.Remote
		if host := hostOf(f.Remote); host != c.Host {
			c.Host, c.Shared = host, nil
		}
		r, shared := followerRecipient(tx, f)
		if c.Named(r) || c.Named(f.Remote) || (shared != "" && slices.Contains(c.Shared, shared)) {
			continue
		}
		if shared != "" && len(c.Shared) < maxSharedPerHost {
			c.Shared = append(c.Shared, shared)
		}
		targets = append(targets, store.DeliveryTarget{Recipient: r, OrderingKey: c.OrderingKey})
	}
	if err := tx.QueueDeliveries(c.Actor, c.ActivityID, targets); err != nil {
		return false, fmt.Errorf("social: queue the fan-out of %s: %w", c.ActivityID, err)
	}
	if next == "" {
		return true, tx.DeleteFanout(c)
	}
	return true, tx.PutFanout(c)
}

// RunFanouts advances the fan-outs in progress of local actor name (of
// every actor when name is ""), one batch per transaction, until none is
// left or ctx ends; queued, when set, is called after each batch (to wake
// the delivery workers).
func RunFanouts(ctx context.Context, db *store.DB, name string, batch int, queued func()) error {
	if name == "" {
		return runEveryActorsFanouts(ctx, db, batch, queued)
	}
	for {
		// Asked in a read first: with no fan-out in progress, as for
		// nearly every activity sent, no write is made.
		var pending bool
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			_, pending, err = tx.NextFanout(name)
			return err
		}); err != nil {
			return fmt.Errorf("social: look for fan-outs to the followers: %w", err)
		}
		if !pending {
			return nil
		}
		var more bool
		if err := db.Update(ctx, func(tx *store.Tx) error {
			var err error
			more, err = AdvanceFanout(tx, name, batch)
			return err
		}); err != nil {
			return fmt.Errorf("social: fan out to the followers: %w", err)
		}
		if !more {
			return nil
		}
		if queued != nil {
			queued()
		}
	}
}

// runEveryActorsFanouts runs the fan-outs in progress of each actor that
// has some, in name order. One actor's that fails (a damaged cursor, a
// batch that cannot be queued) holds back that actor's later fan-outs, so
// that its followers still get what it sends in order, but not any other
// actor's: the failures are returned together once every actor was
// visited. It reads one key per actor to find the next.
func runEveryActorsFanouts(ctx context.Context, db *store.DB, batch int, queued func()) error {
	var failed []error
	actor := ""
	for {
		var next string
		var ok bool
		if err := db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			next, ok, err = tx.NextFanoutActor(actor)
			return err
		}); err != nil {
			return errors.Join(append(failed, fmt.Errorf("social: look for fan-outs to the followers: %w", err))...)
		}
		if !ok {
			return errors.Join(failed...)
		}
		if err := RunFanouts(ctx, db, next, batch, queued); err != nil {
			if ctx.Err() != nil {
				return err
			}
			failed = append(failed, fmt.Errorf("fan-outs of %s: %w", next, err))
		}
		actor = next
	}
}

// followerRecipient returns the delivery recipient of follower f: its
// shared inbox (SharedInbox), when its document names one on its own
// host that was not found gone, and f itself otherwise; shared is the
// shared inbox's URL, or "".
func followerRecipient(tx *store.Tx, f store.Follow) (recipient, shared string) {
	// Checked again for relations recorded before the Follow's shared
	// inbox was (receiveFollow).
	if shared = sharedInboxOf(f.Remote, f.SharedInbox); shared != "" && !tx.SharedInboxGone(shared) {
		return SharedInbox(shared), shared
	}
	return f.Remote, ""
}

// hostOf returns the host of an actor id, in lower case; "" when it has
// none.
func hostOf(id string) string {
	u, err := url.Parse(id)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}
