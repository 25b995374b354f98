package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Inbound is an activity received in a local actor's inbox, after its HTTP
// signature has been verified.
type Inbound struct {
	// ID is the activity id.
	ID string
	// Recipient is the name of the local actor whose inbox received it.
	Recipient string
	// Sender is the IRI of the remote actor that sent it.
	Sender string
	// KeyID is the key that signed the request.
	KeyID string
	// Digest is the lowercase hex SHA-256 of Body. If set, it must match
	// Body; if empty, the store computes it.
	Digest string
	// Body is the raw request body.
	Body []byte
	// Semantic is the Vultron message semantic of the activity, if known.
	Semantic string
	// Classify, when set, gives the activity's semantic from what the
	// accepting transaction holds; it runs in that transaction, before
	// apply, and its answer is stored instead of Semantic. Deciding what an
	// activity means in the transaction that applies it keeps the two from
	// disagreeing when another write lands in between.
	Classify func(tx *ReadTx) string
	// ReceivedAt is when the request arrived; zero means now.
	ReceivedAt time.Time
	// Local is set when the sender is a local actor of this node: the
	// activity is then already stored as sent, and receiving it with the
	// same body records the recipient instead of refusing the id.
	Local bool
	// Remote is the client IP the request came from, for the audit log;
	// may be empty.
	Remote string
	// ReadAhead names what apply will read first, as far as the activity
	// shows it before any read (a received report's namespace, its short
	// id's key). Where each read is a round trip (PostgreSQL), the group
	// committer reads them for a whole batch in one request, instead of
	// one request per read while it holds the writer lock. Naming a key
	// apply does not read costs a little; naming none is always correct.
	ReadAhead []ReadRef
}

// AcceptResult reports what AcceptInbound did.
type AcceptResult struct {
	// Duplicate is true when the recipient already holds the activity (the
	// same id with the same body). Nothing was written and apply did not
	// run.
	Duplicate bool
	// Semantic is the semantic stored with the activity: Classify's answer
	// when it ran, else Inbound.Semantic.
	Semantic string
	// InboxSeq is the position of the new entry in the recipient's inbox,
	// or 0 when no entry was written because the recipient already had it.
	InboxSeq uint64
}

// dedup records: activity id → body digest and first-seen time, plus an index
// ordered by first-seen time for PruneDedup. Versions before this one wrote
// one for every accepted activity, beside the activity itself, which holds
// the same digest and time and is never removed; the record told nothing
// the activity did not, and cost every accept two more trees to write (one
// of them under a random key). They are no longer written; those a store
// holds are pruned as before.

// dedupTimeKey is first-seen time (big-endian Unix nanoseconds, clamped at 0)
// followed by the activity id.
func dedupTimeKey(t time.Time, id string) []byte {
	n := max(t.UnixNano(), 0)
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(n))
	return append(k, id...)
}

// AcceptInbound stores an inbound activity in one transaction: it looks the
// id up among stored activities, stores the activity by id, appends it to
// the recipient's inbox and runs apply (which may be nil) so the caller's
// own writes commit atomically with the accept. It returns after the
// transaction is durable, so the caller may then answer 202.
//
// An id seen before with the same body digest is a duplicate for a
// recipient that holds it already: the result has Duplicate set and
// nothing is written. A local recipient that does not hold it yet gets an
// inbox entry, and apply runs for it, in the same transaction: an activity
// addressed to two local actors takes effect for each of them, once. An id
// seen before with a
// different digest, or the id of an outbound activity, fails with ErrConflict
// and is logged. If apply fails, nothing is stored and its error is returned.
// The recipient must be a local actor (ErrNotFound otherwise).
//
// Duplicates are detected through the stored activity, which keeps the
// body's digest and is never removed, so the same id is never stored
// twice. apply may run more than once (see DB.Update).
func (db *DB) AcceptInbound(ctx context.Context, in Inbound, apply func(*Tx) error) (AcceptResult, error) {
	if in.ID == "" || in.Recipient == "" {
		return AcceptResult{}, fmt.Errorf("store: accept inbound: empty id or recipient: %w", ErrInvalid)
	}
	if err := checkIDSize("activity id", in.ID); err != nil {
		return AcceptResult{}, fmt.Errorf("store: accept inbound: %w", err)
	}
	digest, err := bodyDigest(in.Body, in.Digest)
	if err != nil {
		return AcceptResult{}, fmt.Errorf("store: accept inbound %s: %w", in.ID, err)
	}
	if in.ReceivedAt.IsZero() {
		in.ReceivedAt = db.now()
	}
	idKey := []byte(in.ID)
	stored := StoredActivity{
		Direction:  DirectionInbound,
		Actor:      in.Recipient,
		Recipients: []string{in.Recipient},
		Sender:     in.Sender,
		KeyID:      in.KeyID,
		Semantic:   in.Semantic,
		Body:       in.Body,
		Time:       in.ReceivedAt,
	}

	var (
		res      AcceptResult
		conflict *conflictInfo
	)
	accept := func(tx *Tx) error {
		res, conflict = AcceptResult{Semantic: in.Semantic}, nil
		if tx.bucket(bucketActors).Get([]byte(in.Recipient)) == nil {
			return fmt.Errorf("local actor %s: %w", in.Recipient, ErrNotFound)
		}
		seen, c, err := checkSeen(tx, in.ID, digest, in.Local)
		if err != nil {
			return err
		}
		if c != nil {
			conflict = c
			return c.err(in.ID)
		}
		if seen != nil && hasRecipient(seen.Recipients, in.Recipient) {
			res.Duplicate, res.Semantic = true, seen.Semantic
			return nil
		}
		if in.Classify != nil {
			res.Semantic = in.Classify(&tx.ReadTx)
		}
		if seen != nil {
			// Stored already for another local recipient (or sent by a
			// local actor, such as a Case Actor, to this one): the stored
			// activity gains this recipient, and takes effect for it.
			if err := addRecipient(tx, seen, digest, in.Recipient, &res); err != nil {
				return err
			}
			if apply != nil {
				return apply(tx)
			}
			return nil
		}
		seq, err := appendIndex(tx, bucketInbox, in.Recipient, in.ID)
		if err != nil {
			return err
		}
		rec := stored
		rec.Semantic = res.Semantic
		if err := tx.bucket(bucketActivities).Put(idKey, encodeActivity(&rec, digest)); err != nil {
			return fmt.Errorf("put activity: %w", err)
		}
		if apply != nil {
			if err := apply(tx); err != nil {
				return err
			}
		}
		res.InboxSeq = seq
		return nil
	}
	// What accept reads first, read for the whole batch at once.
	reads := append([]ReadRef{{bucket: bucketActors, key: []byte(in.Recipient)},
		{bucket: bucketActivities, key: idKey}}, in.ReadAhead...)
	err = db.update(ctx, reads, func(tx *Tx) error {
		if err := accept(tx); err != nil {
			return err
		}
		// The audit record commits with the accept (see audit.go).
		decision := DecisionAccepted
		if res.Duplicate {
			decision = DecisionDuplicate
		}
		_, err := tx.AppendAudit(AuditRecord{Kind: AuditInbound, Time: in.ReceivedAt, Actor: in.Recipient,
			Signer: in.Sender, KeyID: in.KeyID, ActivityID: in.ID, Digest: hex.EncodeToString(digest),
			Decision: decision, Status: 202, Remote: in.Remote})
		return err
	})
	if err != nil {
		if conflict != nil && errors.Is(err, ErrConflict) {
			db.log.Warn().
				Str("activity_id", in.ID).
				Str("recipient", in.Recipient).
				Str("sender", in.Sender).
				Str("key_id", in.KeyID).
				Str("stored_digest", conflict.storedDigest).
				Str("digest", fmt.Sprintf("%x", digest)).
				Str("reason", conflict.reason).
				Msg("inbound activity id reused with a different body; refused")
		}
		return AcceptResult{}, fmt.Errorf("store: accept inbound %s: %w", in.ID, err)
	}
	return res, nil
}

// conflictInfo describes why an id cannot be accepted.
type conflictInfo struct {
	reason       string
	storedDigest string
}

func (c *conflictInfo) err(id string) error {
	return fmt.Errorf("%w: activity %s %s", ErrConflict, id, c.reason)
}

// checkSeen looks the id up among stored activities. It returns the
// stored activity if the id is a duplicate, a conflict if it may not be
// accepted, or neither if it is new. A dedup record an older version
// wrote is not read: its activity was stored in the same transaction, with
// the same digest.
func checkSeen(tx *Tx, id string, digest []byte, local bool) (*StoredActivity, *conflictInfo, error) {
	v := tx.bucket(bucketActivities).Get([]byte(id))
	if v == nil {
		return nil, nil, nil
	}
	a, err := decodeActivity(id, v)
	if err != nil {
		return nil, nil, fmt.Errorf("activity %s: %w", id, err)
	}
	if a.Direction != DirectionInbound {
		if local && a.Digest == fmt.Sprintf("%x", digest) {
			return &a, nil, nil
		}
		return nil, &conflictInfo{reason: "is the id of an activity sent by this node", storedDigest: a.Digest}, nil
	}
	if a.Digest != fmt.Sprintf("%x", digest) {
		return nil, &conflictInfo{
			reason:       fmt.Sprintf("was received at %s with body digest %s, this body has digest %x", a.Time.Format(time.RFC3339), a.Digest, digest),
			storedDigest: a.Digest,
		}, nil
	}
	return &a, nil, nil
}

// addRecipient records that another local actor received an activity that is
// already stored.
func addRecipient(tx *Tx, a *StoredActivity, digest []byte, recipient string, res *AcceptResult) error {
	seq, err := appendIndex(tx, bucketInbox, recipient, a.ID)
	if err != nil {
		return err
	}
	updated := *a
	updated.Recipients = append(slices.Clone(a.Recipients), recipient)
	if err := tx.bucket(bucketActivities).Put([]byte(a.ID), encodeActivity(&updated, digest)); err != nil {
		return fmt.Errorf("put activity: %w", err)
	}
	res.InboxSeq = seq
	return nil
}

// pruneChunk bounds the number of dedup records removed per transaction, so a
// large prune does not hold the writer (and every other writer) for long.
const pruneChunk = 1000

// PruneDedup removes dedup records (which versions before this one wrote)
// first seen before olderThan and returns how many it removed, a bounded
// number per transaction. The activities themselves stay, and every id is
// recognised through its stored activity. Once the records a store holds
// are older than olderThan, a prune finds none in one read.
func (db *DB) PruneDedup(ctx context.Context, olderThan time.Time) (int, error) {
	limit := dedupTimeKey(olderThan, "")
	total := 0
	for {
		n := 0
		err := db.Update(ctx, func(tx *Tx) error {
			n = 0
			idx := tx.bucket(bucketDedupTime)
			dedup := tx.bucket(bucketDedup)
			// Collect first: deleting through a cursor while iterating
			// skips entries.
			var expired [][]byte
			cur := idx.Cursor()
			for k, _ := cur.First(); k != nil && len(expired) < pruneChunk; k, _ = cur.Next() {
				if len(k) < 8 {
					return fmt.Errorf("dedup time index: %w: short key", errCorrupt)
				}
				if bytes.Compare(k[:8], limit[:8]) >= 0 {
					break
				}
				expired = append(expired, cloneBytes(k))
			}
			for _, k := range expired {
				if err := dedup.Delete(k[8:]); err != nil {
					return err
				}
				if err := idx.Delete(k); err != nil {
					return err
				}
			}
			n = len(expired)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("store: prune dedup records before %s: %w", olderThan.Format(time.RFC3339), err)
		}
		total += n
		if n < pruneChunk {
			break
		}
	}
	if total > 0 {
		db.log.Info().Int("removed", total).Time("older_than", olderThan).Msg("pruned dedup records")
	}
	return total, nil
}
