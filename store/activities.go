package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Direction says whether a stored activity was received or sent by this node.
type Direction uint8

// Directions of stored activities. The values are part of the file format.
const (
	// DirectionInbound activities were received in a local actor's inbox.
	DirectionInbound Direction = 1
	// DirectionOutbound activities were written by a local actor for
	// delivery.
	DirectionOutbound Direction = 2
)

// String returns "inbound", "outbound" or "direction(N)".
func (d Direction) String() string {
	switch d {
	case DirectionInbound:
		return "inbound"
	case DirectionOutbound:
		return "outbound"
	}
	return "direction(" + strconv.Itoa(int(d)) + ")"
}

// StoredActivity is an activity as kept by the store, with its raw body
// exactly as received or sent.
type StoredActivity struct {
	// ID is the activity id (an IRI).
	ID string
	// Direction says whether the activity was received or sent.
	Direction Direction
	// Actor is the local actor it belongs to: the first local recipient of
	// an inbound activity, or the author of an outbound one.
	Actor string
	// Recipients lists every local actor whose inbox holds an inbound
	// activity, in the order they received it; for an outbound one, the local
	// actors it was delivered to.
	Recipients []string
	// Sender is the IRI of the remote actor that sent an inbound activity.
	Sender string
	// KeyID is the key that signed the inbound request.
	KeyID string
	// Digest is the lowercase hex SHA-256 of Body.
	Digest string
	// Semantic is the Vultron message semantic the caller classified the
	// activity as, if any.
	Semantic string
	// Body is the raw JSON body.
	Body []byte
	// Time is when an inbound activity was received or an outbound one was
	// created.
	Time time.Time
	// SentBy names the person (a user of package accounts) on whose
	// request this node's actor sent an outbound activity; "" when the
	// node sent it on its own (a reply, a Case Actor's announcement).
	SentBy string
}

// encodeActivity writes a, with tagActivity when it names no sender (the
// layout from before SentBy, so such records read the same as before)
// and tagActivitySentBy, the same fields and SentBy last, when it does.
func encodeActivity(a *StoredActivity, digest []byte) []byte {
	tag := tagActivity
	if a.SentBy != "" {
		tag = tagActivitySentBy
	}
	e := newEncoder(tag, len(a.Body)+len(a.Sender)+len(a.KeyID)+len(a.Semantic)+len(a.Actor)+len(a.SentBy)+80)
	e.uvarint(uint64(a.Direction))
	e.string(a.Actor)
	e.strings(a.Recipients)
	e.string(a.Sender)
	e.string(a.KeyID)
	e.bytes(digest)
	e.string(a.Semantic)
	e.time(a.Time)
	e.bytes(a.Body)
	if a.SentBy != "" {
		e.string(a.SentBy)
	}
	return e.buf
}

func decodeActivity(id string, v []byte) (StoredActivity, error) {
	tag := tagActivity
	if len(v) > 0 && v[0] == tagActivitySentBy {
		tag = tagActivitySentBy
	}
	d := newDecoder(tag, v)
	a := StoredActivity{ID: id}
	a.Direction = Direction(d.uvarint())
	a.Actor = d.string()
	a.Recipients = d.strings()
	a.Sender = d.string()
	a.KeyID = d.string()
	a.Digest = hex.EncodeToString(d.bytes())
	a.Semantic = d.string()
	a.Time = d.time()
	a.Body = d.bytes()
	if tag == tagActivitySentBy {
		a.SentBy = d.string()
	}
	if len(a.Recipients) == 0 {
		a.Recipients = nil
	}
	return a, d.finish()
}

// bodyDigest returns the SHA-256 of body, checking it against the caller's
// hex digest when one is given.
func bodyDigest(body []byte, claimed string) ([]byte, error) {
	sum := sha256.Sum256(body)
	if claimed != "" {
		want, err := hex.DecodeString(strings.ToLower(claimed))
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("digest %q is not a hex SHA-256: %w", claimed, ErrInvalid)
		}
		if string(want) != string(sum[:]) {
			return nil, fmt.Errorf("digest %s does not match the body (%x): %w", claimed, sum, ErrInvalid)
		}
	}
	return sum[:], nil
}

// Activity returns the stored activity with the given id, or ErrNotFound.
// It is one read of one key (a delivery worker reads the activity it sends
// for every delivery), so it goes through get.
func (db *DB) Activity(ctx context.Context, id string) (StoredActivity, error) {
	v, err := db.get(ctx, bucketActivities, []byte(id))
	if err != nil {
		return StoredActivity{}, err
	}
	if v == nil {
		return StoredActivity{}, fmt.Errorf("store: activity %s: %w", id, ErrNotFound)
	}
	a, err := decodeActivity(id, v)
	if err != nil {
		return StoredActivity{}, fmt.Errorf("store: activity %s: %w", id, err)
	}
	return a, nil
}

// Activities returns the stored activities ids that the store holds, by
// id (an id it does not hold is absent), read together: on PostgreSQL in
// one request. The delivery workers read the activities of the deliveries
// they claimed at once through it.
func (db *DB) Activities(ctx context.Context, ids []string) (map[string]StoredActivity, error) {
	keys := make([][]byte, 0, len(ids))
	for _, id := range ids {
		keys = append(keys, []byte(id))
	}
	values, err := db.getMany(ctx, bucketActivities, keys)
	if err != nil {
		return nil, err
	}
	out := make(map[string]StoredActivity, len(values))
	for id, v := range values {
		a, err := decodeActivity(id, v)
		if err != nil {
			return nil, fmt.Errorf("store: activity %s: %w", id, err)
		}
		out[id] = a
	}
	return out, nil
}

// getMany returns copies of the values under keys in the top-level bucket,
// opened if the bucket is sealed, by key (a key with no value is absent).
// On an engine that reads keys without a transaction (pointReader) it
// costs one round trip; elsewhere it is a View.
func (db *DB) getMany(ctx context.Context, bucket []byte, keys [][]byte) (map[string][]byte, error) {
	pr, ok := db.eng.(pointReader)
	if !ok {
		out := make(map[string][]byte, len(keys))
		err := db.View(ctx, func(tx *ReadTx) error {
			b := tx.bucket(bucket)
			for _, k := range keys {
				if v := b.Get(k); v != nil {
					out[string(k)] = cloneBytes(v)
				}
			}
			return tx.sealErr
		})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return out, nil
	}
	if err := db.pointReady(ctx); err != nil {
		return nil, err
	}
	values, err := pr.getMany(ctx, bucket, keys)
	if err != nil {
		return nil, err
	}
	for k, v := range values {
		if values[k], err = db.openPoint(bucket, []byte(k), v); err != nil {
			return nil, err
		}
	}
	return values, nil
}

// pointReady says whether a point read may be made now: not once ctx is
// done, nor after the store was closed.
func (db *DB) pointReady(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.isDown.Load() {
		return ErrClosed
	}
	return nil
}

// openPoint opens v, read by a point read under key in the top-level
// bucket, if the bucket is sealed.
func (db *DB) openPoint(bucket, key, v []byte) ([]byte, error) {
	if db.sl == nil || !isSealedBucket(bucket) {
		return v, nil
	}
	plain, err := db.sl.open(string(bucket), key, v)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if plain == nil {
		plain = []byte{} // an empty value is not a missing one
	}
	return plain, nil
}

// get returns a copy of the value under key in the top-level bucket,
// opened if the bucket is sealed, or nil when there is none. On an engine
// that reads one key without a transaction (pointReader) it costs one
// round trip; elsewhere it is a View.
func (db *DB) get(ctx context.Context, bucket, key []byte) ([]byte, error) {
	pr, ok := db.eng.(pointReader)
	if !ok {
		var out []byte
		err := db.View(ctx, func(tx *ReadTx) error {
			out = cloneBytes(tx.bucket(bucket).Get(key))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		return out, nil
	}
	if err := db.pointReady(ctx); err != nil {
		return nil, err
	}
	v, err := pr.getOne(ctx, bucket, key)
	if err != nil || v == nil {
		return nil, err
	}
	return db.openPoint(bucket, key, v)
}

// Page sizes for InboxPage and OutboxPage.
const (
	defaultPageSize = 20
	maxPageSize     = 1000
)

// InboxPage returns up to limit activities from the inbox of the local actor,
// newest first, starting at cursor ("" for the newest). next is the cursor of
// the following page, or "" when there are no older entries. Cursors are
// opaque strings. A limit ≤ 0 means 20; limits above 1000 are capped.
func (db *DB) InboxPage(ctx context.Context, actor, cursor string, limit int) ([]StoredActivity, string, error) {
	page, next, err := db.indexPage(ctx, bucketInbox, actor, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("store: inbox page of %s: %w", actor, err)
	}
	return page, next, nil
}

// OutboxPage returns up to limit activities from the outbox of the local
// actor, newest first, with the same cursor rules as InboxPage.
func (db *DB) OutboxPage(ctx context.Context, actor, cursor string, limit int) ([]StoredActivity, string, error) {
	page, next, err := db.indexPage(ctx, bucketOutbox, actor, cursor, limit)
	if err != nil {
		return nil, "", fmt.Errorf("store: outbox page of %s: %w", actor, err)
	}
	return page, next, nil
}

func (db *DB) indexPage(ctx context.Context, index []byte, actor, cursor string, limit int) ([]StoredActivity, string, error) {
	if limit <= 0 {
		limit = defaultPageSize
	}
	limit = min(limit, maxPageSize)
	var start []byte
	if cursor != "" {
		seq, err := strconv.ParseUint(cursor, 36, 64)
		if err != nil {
			return nil, "", fmt.Errorf("bad cursor %q: %w", cursor, ErrInvalid)
		}
		start = seqKey(seq)
	}
	var (
		page []StoredActivity
		next string
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		page, next = page[:0], ""
		if _, err := tx.LocalActor(actor); err != nil {
			return err
		}
		b := tx.bucket(index).Bucket([]byte(actor))
		if b == nil {
			return nil // no entries yet
		}
		cur := b.Cursor()
		expectKeys(cur, limit+2)
		var k, v []byte
		if start == nil {
			k, v = cur.Last()
		} else {
			k, v = cur.Seek(start)
			if k == nil {
				k, v = cur.Last()
			} else if string(k) != string(start) {
				k, v = cur.Prev()
			}
		}
		// The page's ids first, then their activities, read together
		// (on PostgreSQL one request, not one per activity).
		var ids []string
		for ; k != nil && len(ids) < limit; k, v = cur.Prev() {
			ids = append(ids, string(v))
		}
		if k != nil {
			seq, _ := keySeq(k)
			next = strconv.FormatUint(seq, 36)
		}
		tx.ReadAheadActivities(ids)
		for _, id := range ids {
			a, err := tx.Activity(id)
			if err != nil {
				return err
			}
			page = append(page, a)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return page, next, nil
}

// appendIndex appends id to the named per-actor index (inbox or outbox) and
// returns its sequence number.
func appendIndex(tx *Tx, index []byte, actor, id string) (uint64, error) {
	b, err := tx.bucket(index).CreateBucketIfNotExists([]byte(actor))
	if err != nil {
		return 0, fmt.Errorf("%s index of %s: %w", index, actor, err)
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("%s index of %s: %w", index, actor, err)
	}
	if err := b.Put(seqKey(seq), []byte(id)); err != nil {
		return 0, fmt.Errorf("%s index of %s: %w", index, actor, err)
	}
	return seq, nil
}

// hasRecipient reports whether name is among recipients.
func hasRecipient(recipients []string, name string) bool {
	return slices.Contains(recipients, name)
}
