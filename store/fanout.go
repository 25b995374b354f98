package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// A fan-out is the queueing of an outbound activity's deliveries to its
// actor's followers. One transaction never queues more than a batch of
// them: the transaction that stores the activity records a FanoutCursor
// beside it, and each later transaction queues the deliveries to the
// next batch of followers and advances the cursor, or removes it with
// the last batch (package social). A crash between two batches loses
// no follower and queues none twice: the cursor moves in the transaction
// that queues the batch, and a restart goes on from it.
//
// Cursors are kept in the follows bucket, beside the followers they walk:
//
//	"o" 0 LOCAL 0 SEQ  → the cursor (tagFanout)
//
// SEQ is the follows bucket's sequence (8 bytes, big-endian), so an
// actor's fan-outs are walked in the order their activities were sent,
// and the deliveries of a later one to a follower never go before those
// of an earlier one (an article's Update before its Create). The
// recipients the activity named are kept as SHA-256 hashes only: the
// bucket is not sealed, and they include the bto and bcc lists.

// tagFanout is a fan-out cursor's record.
const tagFanout byte = 0x0C

// FanoutCursor is where a fan-out of an outbound activity to its local
// actor's followers stands.
type FanoutCursor struct {
	// Seq orders an actor's fan-outs; AddFanout sets it.
	Seq uint64
	// Actor is the local actor's name, ActivityID the activity's id, and
	// OrderingKey the lane its deliveries are queued in.
	Actor       string
	ActivityID  string
	OrderingKey string
	// After is the id of the last follower the fan-out has passed; ""
	// before the first batch.
	After string
	// Host is the host of the followers of the last batch and Shared the
	// shared inboxes already queued for followers on it: the followers
	// of one server, whose ids sort together, get one delivery per shared
	// inbox across batches.
	Host   string
	Shared []string
	// named holds the hashes of the recipients the activity named, which
	// were queued with it.
	named [][sha256.Size]byte
}

// NewFanoutCursor returns the cursor of a fan-out of activityID, sent by
// local actor actor in lane orderingKey, that skips the recipients named,
// which were queued with the activity.
func NewFanoutCursor(actor, activityID, orderingKey string, named []string) FanoutCursor {
	c := FanoutCursor{Actor: actor, ActivityID: activityID, OrderingKey: orderingKey}
	for _, r := range named {
		c.named = append(c.named, sha256.Sum256([]byte(r)))
	}
	return c
}

// Named reports whether the activity named recipient among those queued
// with it.
func (c FanoutCursor) Named(recipient string) bool {
	h := sha256.Sum256([]byte(recipient))
	for _, n := range c.named {
		if n == h {
			return true
		}
	}
	return false
}

func fanoutPrefix(actor string) []byte {
	k := append([]byte{'o', 0}, actor...)
	return append(k, 0)
}

func fanoutKey(actor string, seq uint64) []byte {
	return append(fanoutPrefix(actor), seqKey(seq)...)
}

func encodeFanout(c FanoutCursor) []byte {
	e := newEncoder(tagFanout, len(c.ActivityID)+len(c.OrderingKey)+len(c.After)+len(c.Host)+len(c.named)*sha256.Size+64)
	e.string(c.ActivityID)
	e.string(c.OrderingKey)
	e.string(c.After)
	e.string(c.Host)
	e.strings(c.Shared)
	flat := make([]byte, 0, len(c.named)*sha256.Size)
	for _, n := range c.named {
		flat = append(flat, n[:]...)
	}
	e.bytes(flat)
	return e.buf
}

func decodeFanout(k, v []byte) (FanoutCursor, error) {
	rest, ok := bytes.CutPrefix(k, []byte{'o', 0})
	i := bytes.IndexByte(rest, 0)
	if !ok || i < 0 || len(rest)-i-1 != 8 {
		return FanoutCursor{}, fmt.Errorf("fan-out key %s: %w", hex.EncodeToString(k), errCorrupt)
	}
	seq, _ := keySeq(rest[i+1:])
	c := FanoutCursor{Actor: string(rest[:i]), Seq: seq}
	d := newDecoder(tagFanout, v)
	c.ActivityID = d.string()
	c.OrderingKey = d.string()
	c.After = d.string()
	c.Host = d.string()
	c.Shared = d.strings()
	flat := d.bytes()
	if err := d.finish(); err != nil {
		return FanoutCursor{}, fmt.Errorf("fan-out %d of %s: %w", c.Seq, c.Actor, err)
	}
	if len(flat)%sha256.Size != 0 {
		return FanoutCursor{}, fmt.Errorf("fan-out %d of %s (%s): named hashes: %w", c.Seq, c.Actor, c.ActivityID, errCorrupt)
	}
	for ; len(flat) > 0; flat = flat[sha256.Size:] {
		c.named = append(c.named, [sha256.Size]byte(flat[:sha256.Size]))
	}
	return c, nil
}

// AddFanout records a new fan-out, after every other of its actor, and
// returns it with its Seq.
func (t *Tx) AddFanout(c FanoutCursor) (FanoutCursor, error) {
	if c.Actor == "" || c.ActivityID == "" {
		return c, fmt.Errorf("add fan-out: no actor or activity: %w", ErrInvalid)
	}
	b := t.bucket(bucketFollows)
	seq, err := b.NextSequence()
	if err != nil {
		return c, fmt.Errorf("add fan-out of %s: %w", c.ActivityID, err)
	}
	c.Seq = seq
	if err := b.Put(fanoutKey(c.Actor, seq), encodeFanout(c)); err != nil {
		return c, fmt.Errorf("add fan-out of %s: %w", c.ActivityID, err)
	}
	return c, nil
}

// PutFanout stores where fan-out c now stands.
func (t *Tx) PutFanout(c FanoutCursor) error {
	if err := t.bucket(bucketFollows).Put(fanoutKey(c.Actor, c.Seq), encodeFanout(c)); err != nil {
		return fmt.Errorf("advance the fan-out of %s: %w", c.ActivityID, err)
	}
	return nil
}

// DeleteFanout removes fan-out c, which has queued its last batch.
func (t *Tx) DeleteFanout(c FanoutCursor) error {
	if err := t.bucket(bucketFollows).Delete(fanoutKey(c.Actor, c.Seq)); err != nil {
		return fmt.Errorf("end the fan-out of %s: %w", c.ActivityID, err)
	}
	return nil
}

// NextFanout returns the oldest fan-out in progress: of local actor
// actor, or of any actor when actor is "". ok is false when there is none.
// It reads one record.
func (r *ReadTx) NextFanout(actor string) (FanoutCursor, bool, error) {
	prefix := []byte{'o', 0}
	if actor != "" {
		prefix = fanoutPrefix(actor)
	}
	k, v := r.bucket(bucketFollows).Cursor().Seek(prefix)
	if k == nil || !bytes.HasPrefix(k, prefix) {
		return FanoutCursor{}, false, nil
	}
	c, err := decodeFanout(k, v)
	return c, err == nil, err
}

// NextFanoutActor returns the first local actor, in name order, after
// actor ("" for the first of all) that has a fan-out in progress; ok is
// false when none has. It reads one key and decodes no fan-out, so an
// actor whose fan-out is damaged does not hide the others.
func (r *ReadTx) NextFanoutActor(actor string) (next string, ok bool, err error) {
	from := []byte{'o', 0}
	if actor != "" {
		// Past every key of actor: its prefix ends in 0, so 1 sorts after.
		from = append([]byte{'o', 0}, actor...)
		from = append(from, 1)
	}
	k, _ := r.bucket(bucketFollows).Cursor().Seek(from)
	rest, found := bytes.CutPrefix(k, []byte{'o', 0})
	if k == nil || !found {
		return "", false, nil
	}
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", false, fmt.Errorf("fan-out key %s: %w", hex.EncodeToString(k), errCorrupt)
	}
	return string(rest[:i]), true, nil
}
