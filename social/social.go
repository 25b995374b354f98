// Package social is the plain ActivityPub side of the node's actors: who
// follows them and whom they follow, and the articles (published
// advisories) that travel to followers. The inbox and the outbox call it,
// inside the store transaction that stores the activity, for what
// vocab.ClassifySocial names; nothing here is a Vultron message, and no
// case changes.
//
// Following works as Mastodon and GoToSocial do it. A Follow asks; the
// followed actor answers with Accept or Reject of the Follow (carried
// inline; an answer that names the Follow by id is read too); Undo of the
// Follow ends it. An actor whose manuallyApprovesFollowers is set (every
// actor of a node by default, for a case-facing actor follows only whom an
// admin approved) keeps a Follow pending until an admin accepts or rejects
// it; the others accept at once. A Case Actor is never followed. An answer
// is taken only for a Follow that is still wanted (the W3C primer's rule):
// an Accept of a Follow that was undone, or that another actor sent, is
// refused.
//
// A Follow that the followed actor's server refuses for good fails: when
// its delivery is dead-lettered (a 4xx other than 408 and 429, an actor
// that is gone, or no answer within the retry horizon), no Accept will
// come, and FollowDeadLetter, run by the store in the transaction that
// dead-letters it, keeps the following as failed, with the error the
// delivery recorded and an audit record, rather than pending for ever. A
// failed following is counted in no collection's totalItems; a Follow of
// the same actor sent again asks again, pending; the dead letter retried
// by an operator makes it pending again, in the transaction that requeues
// it, and an Accept of that Follow accepts it.
//
// A follower whose actor is gone is removed: when a delivery to it is
// dead-lettered because its actor document or its own inbox answered 410
// Gone (store.DB.DeadLetterGone), FollowDeadLetter keeps it as gone, with
// the reason and an audit record, and no later announcement goes to it;
// the outbox drops its other pending deliveries. A shared inbox that
// answers 410 names no actor and removes none of the followers behind it:
// they get the later deliveries at their own inboxes.
//
// Delivery to followers: an activity addressed to the acting actor's
// followers collection is delivered to each accepted follower. The
// transaction that stores it records a fan-out (StartFanout, a
// store.FanoutCursor), and later transactions queue the deliveries a
// batch of FanoutBatch followers at a time (AdvanceFanout, RunFanouts),
// read page by page from the store's index of that actor's followers, so
// that no write grows with the number of followers; a crash between two
// batches loses no follower and queues none twice, and the node goes on
// from the cursor when it starts. The followers whose actor document
// names an endpoints.sharedInbox on their own host (as their inbox must
// be; another is not kept) get one delivery per shared inbox, addressed
// by SharedInbox(url), which the outbox's inbox resolver turns back into
// the URL: a server with a thousand followers of the actor gets the
// activity once.
//
// Invariants: every relation is stored with its state in the transaction
// of the activity that changed it, or, for a failed following, of the
// dead letter of its Follow (store.PutFollow keeps the counts the
// collections show); articles and announcements are accepted only from an
// actor the receiving actor follows, and a Create, Update or Delete only of
// the sender's own object (on its host, attributed to no one else), as is
// the object an Announce carries inline (another's is named by id).
package social

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Local is a local actor: its name in the store and its id.
type Local struct {
	Name string
	ID   string
}

// FollowersOf returns the id of a local actor's followers collection.
func FollowersOf(actorID string) string { return actorID + "/followers" }

// FollowingOf returns the id of a local actor's following collection.
func FollowingOf(actorID string) string { return actorID + "/following" }

// sharedInboxPrefix marks a delivery recipient that is a shared inbox
// rather than an actor; it cannot start an actor's http(s) IRI.
const sharedInboxPrefix = "shared-inbox:"

// SharedInbox returns the delivery recipient that stands for the shared
// inbox at inboxURL.
func SharedInbox(inboxURL string) string { return sharedInboxPrefix + inboxURL }

// IsSharedInbox returns the URL of the shared inbox a delivery recipient
// stands for, and whether it stands for one.
func IsSharedInbox(recipient string) (string, bool) {
	return strings.CutPrefix(recipient, sharedInboxPrefix)
}

// Reply is an activity the node sends in answer to one it received: the
// caller gives it an id, an actor and a publication time, and queues it.
type Reply struct {
	Activity *vocab.Activity
	To       string
	// OrderingKey is the delivery lane to queue it in (see OrderingKey).
	OrderingKey string
}

// Sender is what the inbox learned of a Follow's sender before the
// transaction: its inbox and shared inbox.
type Sender struct {
	Inbox       string
	SharedInbox string
}

// Config configures Inbound and Outbound.
type Config struct {
	// ManuallyApproves reports whether local actor name keeps Follows
	// pending until an admin answers them.
	ManuallyApproves func(name string) bool
	// IsCaseActor reports whether local actor name is a Case Actor, which
	// is never followed.
	IsCaseActor func(name string) bool
	// PublicURL is the node's public URL: what an actor announces from
	// this node must be one of its advisory pages (AdvisoryPath).
	PublicURL string
	// KnownCaseActor reports whether an actor id is the Case Actor of a
	// case this node holds, which a local actor does not follow. Nil: not
	// checked.
	KnownCaseActor func(tx *store.ReadTx, id string) (bool, error)
	// Published reports whether this node serves the published advisory
	// of a tracking id (the first segment after AdvisoryPath), so that an
	// Announce of one it does not serve is refused. Nil: not checked.
	Published func(tx *store.ReadTx, tracking string) (bool, error)
	Now       func() time.Time
}

// AdvisoryPath is where the node serves its published advisories' pages.
const AdvisoryPath = "/advisories/"

// Social applies plain ActivityPub activities to the store.
type Social struct{ cfg Config }

// New returns a Social.
func New(cfg Config) (*Social, error) {
	if cfg.ManuallyApproves == nil || cfg.IsCaseActor == nil {
		return nil, fmt.Errorf("social: ManuallyApproves and IsCaseActor are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Social{cfg: cfg}, nil
}

// follow returns the Follow an activity of semantic sem is or carries,
// reading the stored activity when it is named by id only.
func (s *Social) follow(tx *store.ReadTx, act *vocab.Activity, sem vocab.Semantic) (vocab.FollowInfo, error) {
	if sem == vocab.SocialFollow {
		return vocab.FollowInfo{ID: act.ID, Actor: act.Actor.ID(), Object: act.Object.ID()}, nil
	}
	raw, err := toMap(act)
	if err != nil {
		return vocab.FollowInfo{}, err
	}
	fi, err := vocab.ReadFollow(context.Background(), raw)
	if err != nil {
		return vocab.FollowInfo{}, problem.Unprocessable("%s: %v", act.Type, err)
	}
	if fi.Actor != "" {
		return fi, nil
	}
	stored, err := tx.Activity(fi.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return vocab.FollowInfo{}, fmt.Errorf("read the Follow %s: %w", fi.ID, err)
	}
	if err != nil {
		return vocab.FollowInfo{}, problem.Conflict("%s names the Follow %s, which this node does not hold", act.Type, problem.Clip(fi.ID, 200))
	}
	var m map[string]any
	if err := json.Unmarshal(stored.Body, &m); err != nil {
		return vocab.FollowInfo{}, fmt.Errorf("read the stored Follow %s: %w", fi.ID, err)
	}
	return vocab.ReadFollow(context.Background(), m)
}

func toMap(act *vocab.Activity) (map[string]any, error) {
	b, err := vocab.Marshal(act)
	if err != nil {
		return nil, problem.Unprocessable("the activity cannot be serialised: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("social: decode %s: %w", act.ID, err)
	}
	return m, nil
}

// Inbound applies a plain ActivityPub activity of semantic sem that local
// actor to received from sender (verified), and returns the replies it
// calls for. A refusal is a *problem.Error and nothing is written.
func (s *Social) Inbound(tx *store.Tx, to Local, sender string, act *vocab.Activity, sem vocab.Semantic, from Sender) ([]Reply, error) {
	if s.cfg.IsCaseActor(to.Name) && sem != vocab.SocialAcceptFollow && sem != vocab.SocialRejectFollow {
		return nil, problem.Unprocessable("%s is a Case Actor, which is not followed and reads no articles", to.ID)
	}
	switch sem {
	case vocab.SocialFollow:
		return s.receiveFollow(tx, to, sender, act, from)
	case vocab.SocialAcceptFollow, vocab.SocialRejectFollow:
		fi, err := s.follow(&tx.ReadTx, act, sem)
		if err != nil {
			return nil, err
		}
		if fi.Actor != to.ID || fi.Object != sender {
			return nil, problem.Forbidden("%s answers a Follow of %s by %s; only the followed actor answers a Follow, and only one %s sent", sender, problem.Clip(fi.Object, 200), problem.Clip(fi.Actor, 200), to.ID)
		}
		f, ok, err := tx.Follow(to.Name, store.Following, sender)
		if err != nil {
			return nil, err
		}
		if !ok || f.FollowID != fi.ID {
			if sem == vocab.SocialRejectFollow {
				// A Follow this actor sent and undid since: nothing is
				// wanted any more, nothing to end. One it never sent is
				// refused and not remembered (B26).
				sent, err := heldFollow(&tx.ReadTx, fi.ID, func(a store.StoredActivity) bool {
					return a.Direction == store.DirectionOutbound && a.Actor == to.Name
				})
				if err != nil || sent {
					return nil, err
				}
				return nil, problem.Conflict("%s never sent the Follow %s of %s that %s rejects", to.ID, problem.Clip(fi.ID, 200), sender, sender)
			}
			return nil, problem.Conflict("%s does not ask to follow %s with %s (it was undone, or never sent)", to.ID, sender, problem.Clip(fi.ID, 200))
		}
		if sem == vocab.SocialRejectFollow {
			return nil, tx.DeleteFollow(to.Name, store.Following, sender)
		}
		if f.State == store.FollowAccepted {
			return nil, nil
		}
		f.State, f.Since, f.Reason = store.FollowAccepted, s.cfg.Now().UTC(), ""
		return nil, tx.PutFollow(f)
	case vocab.SocialUndoFollow:
		fi, err := s.follow(&tx.ReadTx, act, sem)
		if err != nil {
			return nil, err
		}
		if fi.Actor != sender {
			return nil, problem.Forbidden("%s undoes a Follow %s sent; an actor undoes only its own", sender, problem.Clip(fi.Actor, 200))
		}
		f, ok, err := tx.Follow(to.Name, store.FollowerOf, sender)
		if err != nil {
			return nil, err
		}
		if !ok {
			// A Follow that arrived and was answered or removed since:
			// nothing to undo. One that never arrived is refused and not
			// remembered, and applies when it comes (B26).
			seen, err := heldFollow(&tx.ReadTx, fi.ID, func(a store.StoredActivity) bool {
				return a.Direction == store.DirectionInbound && a.Sender == sender
			})
			if err != nil || seen {
				return nil, err
			}
			return nil, problem.Conflict("%s undoes the Follow %s, which %s has not received: there is nothing to undo", sender, problem.Clip(fi.ID, 200), to.ID)
		}
		if f.FollowID != fi.ID && fi.Object != to.ID {
			return nil, problem.Conflict("%s undoes %s, which is not its Follow of %s", sender, problem.Clip(fi.ID, 200), to.ID)
		}
		return nil, tx.DeleteFollow(to.Name, store.FollowerOf, sender)
	case vocab.SocialAnnounce, vocab.SocialCreateArticle, vocab.SocialUpdateArticle, vocab.SocialDeleteArticle:
		if err := checkOwnObject(sender, act, sem); err != nil {
			return nil, err
		}
		f, ok, err := tx.Follow(to.Name, store.Following, sender)
		if err != nil {
			return nil, err
		}
		if !ok || f.State != store.FollowAccepted {
			return nil, problem.Forbidden("%s does not follow %s, so it takes no %s from it", to.ID, sender, act.Type)
		}
		return nil, nil // kept in the inbox, the actor's feed
	}
	return nil, problem.Unprocessable("this node does not act on %s activities", sem)
}

// checkOwnObject refuses a Create, Update or Delete whose object is not
// the sender's own: an object on another host than the sender's, or
// attributed to another actor (B16); and an Announce that carries such an
// object inline rather than naming it by id. An actor changes only what it
// published, on its own server; another server's Article (another
// organization's advisory) updated, deleted or copied by it would put
// words in its author's mouth in the receiving actor's feed.
func checkOwnObject(sender string, act *vocab.Activity, sem vocab.Semantic) error {
	why := "an actor creates, updates and deletes only its own objects"
	if sem == vocab.SocialAnnounce {
		if act.Object.Object == nil {
			return nil
		}
		why = "an Announce names another's object by its id, and carries inline only the announcer's own"
	}
	id := act.Object.ID()
	if !urlhost.Same(id, sender) {
		return problem.Forbidden("%s of %s by %s: the object is not on the sender's server; %s", act.Type, problem.Clip(id, 200), sender, why)
	}
	if act.Object.Object != nil {
		for _, by := range act.Object.Object.Common().AttributedTo.IDs() {
			if by != sender {
				return problem.Forbidden("%s of %s by %s: the object is attributed to %s; %s", act.Type, problem.Clip(id, 200), sender, problem.Clip(by, 200), why)
			}
		}
	}
	return nil
}

// receiveFollow records a Follow of local actor to: accepted at once, with
// an Accept to send, unless the actor approves its followers by hand.
func (s *Social) receiveFollow(tx *store.Tx, to Local, sender string, act *vocab.Activity, from Sender) ([]Reply, error) {
	if act.Object.ID() != to.ID {
		return nil, problem.Unprocessable("the Follow is of %s, not of %s", problem.Clip(act.Object.ID(), 200), to.ID)
	}
	if sender == to.ID {
		return nil, problem.Unprocessable("%s cannot follow itself", to.ID)
	}
	f, ok, err := tx.Follow(to.Name, store.FollowerOf, sender)
	if err != nil {
		return nil, err
	}
	state := store.FollowPending
	if (ok && f.State == store.FollowAccepted) || !s.cfg.ManuallyApproves(to.Name) {
		state = store.FollowAccepted
	}
	nf := store.Follow{Local: to.Name, Direction: store.FollowerOf, State: state, Remote: sender, FollowID: act.ID,
		Inbox: from.Inbox, SharedInbox: sharedInboxOf(sender, from.SharedInbox), Since: s.cfg.Now().UTC()}
	// A Follow whose sender's document names a shared inbox once gone
	// says that its server serves it again.
	if err := tx.DeleteSharedInboxGone(nf.SharedInbox); err != nil {
		return nil, err
	}
	if ok && f.State == state {
		nf.Since = f.Since
	}
	if err := tx.PutFollow(nf); err != nil {
		return nil, err
	}
	if state != store.FollowAccepted {
		return nil, nil
	}
	accept, err := Answer(vocab.FollowInfo{ID: act.ID, Actor: sender, Object: to.ID}, true)
	if err != nil {
		return nil, err
	}
	return []Reply{{Activity: accept, To: sender, OrderingKey: OrderingKey(to, act, vocab.SocialAcceptFollow)}}, nil
}

// sharedInboxOf returns the shared inbox a follower's actor document
// names, when it is one the node delivers to: an http(s) URL on the
// follower's host (plain http only for a plain http actor), as its inbox
// must be. Otherwise "": the follower's activities go to its own inbox,
// and a follower cannot have the node post what it sends its followers to
// another server.
func sharedInboxOf(follower, shared string) string {
	if shared == "" || !urlhost.Same(shared, follower) {
		return ""
	}
	fu, err1 := url.Parse(follower)
	su, err2 := url.Parse(shared)
	if err1 != nil || err2 != nil || (su.Scheme != "https" && su.Scheme != "http") || (fu.Scheme == "https" && su.Scheme != "https") {
		return ""
	}
	return shared
}

// Answer returns Accept(Follow) or Reject(Follow) as an activity, without
// id, actor and publication time.
func Answer(fi vocab.FollowInfo, accept bool) (*vocab.Activity, error) {
	m, err := vocab.NewFollowAnswer(fi, accept)
	if err != nil {
		return nil, problem.Unprocessable("answer the Follow %s: %v", problem.Clip(fi.ID, 200), err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("social: encode the answer: %w", err)
	}
	doc, err := vocab.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("social: parse the answer: %w", err)
	}
	return doc.Activity(), nil
}

// Outbound checks a plain ActivityPub activity of semantic sem that local
// actor from sends, and records what it changes: a Follow asks (pending);
// an Undo of a Follow ends the following; an Accept or Reject of a Follow
// it received decides a follower. Announcements and articles change
// nothing here.
func (s *Social) Outbound(tx *store.Tx, from Local, act *vocab.Activity, sem vocab.Semantic) error {
	if s.cfg.IsCaseActor(from.Name) {
		return problem.Unprocessable("a Case Actor neither follows nor publishes articles")
	}
	switch sem {
	case vocab.SocialFollow:
		target := act.Object.ID()
		if target == from.ID {
			return problem.Unprocessable("%s cannot follow itself", from.ID)
		}
		if u, err := url.Parse(target); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return problem.Unprocessable("%q is not an actor's URL", problem.Clip(target, 200))
		}
		if s.cfg.KnownCaseActor != nil {
			if is, err := s.cfg.KnownCaseActor(&tx.ReadTx, target); err != nil {
				return err
			} else if is {
				return problem.Unprocessable("%s is a Case Actor, which is not followed: its case's participants receive its entries, and its advisory comes from the case's owner", target)
			}
		}
		if f, ok, err := tx.Follow(from.Name, store.Following, target); err != nil {
			return err
		} else if ok && f.State != store.FollowFailed {
			return problem.Conflict("%s already follows %s (%s)", from.ID, target, f.State)
		}
		return tx.PutFollow(store.Follow{Local: from.Name, Direction: store.Following, State: store.FollowPending,
			Remote: target, FollowID: act.ID, Since: s.cfg.Now().UTC()})
	case vocab.SocialUndoFollow:
		fi, err := s.follow(&tx.ReadTx, act, sem)
		if err != nil {
			return err
		}
		if fi.Actor != from.ID {
			return problem.Forbidden("%s can undo only its own Follow, not one by %s", from.ID, problem.Clip(fi.Actor, 200))
		}
		f, ok, err := tx.Follow(from.Name, store.Following, fi.Object)
		if err != nil {
			return err
		}
		if !ok || f.FollowID != fi.ID {
			return problem.Conflict("%s does not follow %s with %s", from.ID, problem.Clip(fi.Object, 200), problem.Clip(fi.ID, 200))
		}
		return tx.DeleteFollow(from.Name, store.Following, fi.Object)
	case vocab.SocialAcceptFollow, vocab.SocialRejectFollow:
		fi, err := s.follow(&tx.ReadTx, act, sem)
		if err != nil {
			return err
		}
		if fi.Object != from.ID {
			return problem.Forbidden("%s can answer only a Follow of itself, not of %s", from.ID, problem.Clip(fi.Object, 200))
		}
		f, ok, err := tx.Follow(from.Name, store.FollowerOf, fi.Actor)
		if err != nil {
			return err
		}
		if !ok || f.FollowID != fi.ID {
			return problem.Conflict("%s has no Follow %s from %s to answer", from.ID, problem.Clip(fi.ID, 200), problem.Clip(fi.Actor, 200))
		}
		if sem == vocab.SocialRejectFollow {
			return tx.DeleteFollow(from.Name, store.FollowerOf, fi.Actor)
		}
		if f.State == store.FollowAccepted {
			return problem.Conflict("%s already follows %s", fi.Actor, from.ID)
		}
		f.State, f.Since = store.FollowAccepted, s.cfg.Now().UTC()
		return tx.PutFollow(f)
	case vocab.SocialAnnounce:
		return s.checkAnnounced(&tx.ReadTx, act.Object.ID())
	case vocab.SocialCreateArticle, vocab.SocialUpdateArticle, vocab.SocialDeleteArticle:
		// An Article at an advisory page is a case's advisory, published
		// with its case (the embargo and the review checked, the ledger
		// recording it), never as a plain article.
		if page, ok := s.nodePath(act.Object.ID()); ok && strings.HasPrefix(page, AdvisoryPath) {
			return problem.Unprocessable("%s is an advisory page of this node: a case's advisory is published with its case (vultron advisory publish), not as an article of its own",
				problem.Clip(act.Object.ID(), 200))
		}
		return nil
	}
	return problem.Unprocessable("this node does not send %s activities", sem)
}

// Counterpart returns the actor that a plain ActivityPub activity of
// semantic sem is for, whom it must reach whatever else it is addressed
// to: the followed actor of a Follow and of its Undo, the follower for an
// Accept or a Reject of a Follow. It is "" for other activities. A Follow
// named by id only is read from the store; its errors are those Outbound
// gives for the same activity.
func (s *Social) Counterpart(tx *store.ReadTx, act *vocab.Activity, sem vocab.Semantic) (string, error) {
	switch sem {
	case vocab.SocialFollow:
		return act.Object.ID(), nil
	case vocab.SocialUndoFollow:
		fi, err := s.follow(tx, act, sem)
		return fi.Object, err
	case vocab.SocialAcceptFollow, vocab.SocialRejectFollow:
		fi, err := s.follow(tx, act, sem)
		return fi.Actor, err
	}
	return "", nil
}

// OrderingKey returns the delivery lane (store.DeliveryTarget's
// OrderingKey) of a plain ActivityPub activity act, of semantic sem, that
// local actor from sends: what changes whom it follows (a Follow, its
// Undo) is sent in order in the lane of its following collection, what
// decides its followers (an Accept or a Reject of a Follow) in that of
// its followers collection, and the Create, Update and Delete of an
// article in the lane of the article, so that an Undo never reaches the
// followed actor before the Follow it undoes, nor a Reject the follower
// before the Accept it revokes, nor a Delete a follower before the Create
// it deletes. It is "" for the other activities, which need no order.
func OrderingKey(from Local, act *vocab.Activity, sem vocab.Semantic) string {
	switch sem {
	case vocab.SocialFollow, vocab.SocialUndoFollow:
		return FollowingOf(from.ID)
	case vocab.SocialAcceptFollow, vocab.SocialRejectFollow:
		return FollowersOf(from.ID)
	case vocab.SocialCreateArticle, vocab.SocialUpdateArticle, vocab.SocialDeleteArticle:
		return act.Object.ID()
	}
	return ""
}

// heldFollow reports whether the store holds the activity id as a Follow
// that match accepts (by its direction and who sent it). Another activity
// under that id (an answer whose inline Follow takes the id of a Create
// the node holds) is none.
func heldFollow(tx *store.ReadTx, id string, match func(store.StoredActivity) bool) (bool, error) {
	a, err := tx.Activity(id)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !match(a) {
		return false, nil
	}
	var held struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(a.Body, &held); err != nil {
		return false, nil // a stored body that is no JSON object is no Follow
	}
	return held.Type == "Follow", nil
}

// maxFailReason bounds the reason a failed following keeps.
const maxFailReason = 500

// FollowDeadLetter is run in the transaction that moves delivery d to the
// dead letters, or (requeued) back into the queue when an operator retries
// it (store.DB.OnDeadLetter). When d carries the Follow by which its local
// actor asks to follow its recipient, and the following is still that
// Follow's, the following follows the delivery: dead-lettered, it fails,
// kept as failed with the error d recorded as its reason, and an audit
// record says so; requeued, a failed one is pending again (the requeue
// has its own audit record), and the requeue of a Follow the actor has
// undone since is refused (409): sent after the Undo, it would ask again
// what the actor no longer wants. An accepted following, and every other
// delivery, is left as it is. A delivery given up because its recipient's
// actor is gone (d.Gone) also removes that follower (removeGoneFollower).
func (s *Social) FollowDeadLetter(tx *store.Tx, d store.Delivery, requeued bool) error {
	if d.Gone && !requeued {
		if err := s.removeGoneFollower(tx, d); err != nil {
			return err
		}
	}
	f, ok, err := tx.Follow(d.Actor, store.Following, d.Recipient)
	if err == nil && !ok && requeued {
		// A Follow of the recipient that the actor undid since: sent
		// again, after the Undo, it would make the actor a follower on
		// the other side against its wish.
		if undone, err := followOf(&tx.ReadTx, d); err != nil || undone {
			if err != nil {
				return err
			}
			return problem.Conflict("%s no longer asks to follow %s: the Follow %s was undone since it failed, and is not sent again",
				d.Actor, problem.Clip(d.Recipient, 200), problem.Clip(d.ActivityID, 200))
		}
	}
	if err != nil || !ok || f.FollowID != d.ActivityID || f.State == store.FollowAccepted {
		return err
	}
	if requeued {
		if f.State != store.FollowFailed {
			return nil
		}
		f.State, f.Since, f.Reason = store.FollowPending, s.cfg.Now().UTC(), ""
		return tx.PutFollow(f)
	}
	reason := problem.Clip(d.LastError, maxFailReason)
	if reason == "" {
		reason = "the delivery failed for good"
	}
	f.State, f.Since, f.Reason = store.FollowFailed, s.cfg.Now().UTC(), reason
	if err := tx.PutFollow(f); err != nil {
		return fmt.Errorf("social: fail the following of %s by %s: %w", d.Recipient, d.Actor, err)
	}
	host := ""
	if u, err := url.Parse(d.Recipient); err == nil {
		host = u.Host
	}
	_, err = tx.AppendAudit(store.AuditRecord{Kind: store.AuditOutbound, Actor: d.Actor, Signer: d.Recipient,
		ActivityID: d.ActivityID, Decision: store.DecisionFailed, Remote: host,
		Reason: fmt.Sprintf("the Follow of %s failed: its delivery was given up: %s", d.Recipient, reason)})
	return err
}

// removeGoneFollower removes the recipient of delivery d, given up
// because its actor is gone (store.DB.DeadLetterGone), from the followers
// of d's local actor: it is kept as gone, with the reason, which the
// followers collection shows its admins (?state=gone), and an audit
// record says so. A shared inbox names no actor: that it is gone says
// nothing of the followers on its host, each removed only when a delivery
// to its own actor finds it gone. It is recorded gone instead (with an
// audit record), and the followers that name it get their deliveries at
// their own inboxes from then on (AdvanceFanout), until a Follow names it
// again. A follower already gone, or a recipient that follows no one
// here, is left as it is.
func (s *Social) removeGoneFollower(tx *store.Tx, d store.Delivery) error {
	if inbox, shared := IsSharedInbox(d.Recipient); shared {
		if tx.SharedInboxGone(inbox) {
			return nil
		}
		if err := tx.PutSharedInboxGone(inbox, s.cfg.Now().UTC()); err != nil {
			return fmt.Errorf("social: record the gone shared inbox %s: %w", inbox, err)
		}
		_, err := tx.AppendAudit(store.AuditRecord{Kind: store.AuditOutbound, Actor: d.Actor, Signer: inbox,
			ActivityID: d.ActivityID, Decision: store.DecisionRemoved, Remote: hostOf(inbox),
			Reason: fmt.Sprintf("the shared inbox %s is gone: %s; the followers that name it get their deliveries at their own inboxes", inbox, problem.Clip(d.LastError, maxFailReason))})
		return err
	}
	f, ok, err := tx.Follow(d.Actor, store.FollowerOf, d.Recipient)
	if err != nil || !ok || f.State == store.FollowGone {
		return err
	}
	reason := problem.Clip(d.LastError, maxFailReason)
	if reason == "" {
		reason = "its actor is gone"
	}
	f.State, f.Since, f.Reason = store.FollowGone, s.cfg.Now().UTC(), reason
	if err := tx.PutFollow(f); err != nil {
		return fmt.Errorf("social: remove the gone follower %s of %s: %w", d.Recipient, d.Actor, err)
	}
	host := ""
	if u, err := url.Parse(d.Recipient); err == nil {
		host = u.Host
	}
	_, err = tx.AppendAudit(store.AuditRecord{Kind: store.AuditOutbound, Actor: d.Actor, Signer: d.Recipient,
		ActivityID: d.ActivityID, Decision: store.DecisionRemoved, Remote: host,
		Reason: fmt.Sprintf("%s was removed from the followers: its actor is gone: %s", d.Recipient, reason)})
	return err
}

// followOf reports whether delivery d carries a Follow of its recipient
// that its local actor sent.
func followOf(tx *store.ReadTx, d store.Delivery) (bool, error) {
	a, err := tx.Activity(d.ActivityID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("social: read the activity %s: %w", d.ActivityID, err)
	}
	if a.Direction != store.DirectionOutbound || a.Actor != d.Actor {
		return false, nil
	}
	var held struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	if json.Unmarshal(a.Body, &held) != nil || held.Type != "Follow" {
		return false, nil
	}
	var object string
	if json.Unmarshal(held.Object, &object) != nil {
		var inline struct {
			ID string `json:"id"`
		}
		if json.Unmarshal(held.Object, &inline) != nil {
			return false, nil
		}
		object = inline.ID
	}
	return object == d.Recipient, nil
}

// checkAnnounced refuses an Announce of an object of this node that is
// not one of its advisory pages: followers and the public read only what
// the node publishes, and an announced case, report or activity would
// give them its address. Objects of other servers are theirs to serve.
func (s *Social) checkAnnounced(tx *store.ReadTx, object string) error {
	if object == "" {
		return problem.Unprocessable("an Announce names the object it shares")
	}
	p, onNode := s.nodePath(object)
	if !onNode {
		return nil
	}
	if strings.HasPrefix(p, AdvisoryPath) && len(p) > len(AdvisoryPath) {
		// The page, or one of its documents, of an advisory published.
		tracking, _, _ := strings.Cut(p[len(AdvisoryPath):], "/")
		if s.cfg.Published == nil {
			return nil
		}
		ok, err := s.cfg.Published(tx, tracking)
		if err != nil {
			return err
		}
		if !ok {
			return problem.Unprocessable("%s is no advisory this node has published: an Announce shares a published advisory with the followers and the public",
				problem.Clip(object, 200))
		}
		return nil
	}
	return problem.Unprocessable("%s is on this node and is not an advisory page (%s%sTRACKING): an Announce shares a published advisory with the followers and the public, nothing else of this node",
		problem.Clip(object, 200), s.cfg.PublicURL, AdvisoryPath)
}

// nodePath reports whether id is a URL of this node, and its path as a
// client resolves it: without its dot segments, so that an advisory's page
// does not lead out of itself to a case.
func (s *Social) nodePath(id string) (string, bool) {
	if s.cfg.PublicURL == "" || id == "" || !(sameOrigin(id, s.cfg.PublicURL) || urlhost.Same(id, s.cfg.PublicURL)) {
		return "", false
	}
	u, err := url.Parse(id)
	if err != nil {
		return "", true
	}
	return path.Clean("/" + u.Path), true
}

// sameOrigin reports whether a and b have the same scheme and host.
func sameOrigin(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}
