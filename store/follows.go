package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// Follows are the plain ActivityPub relations of the node's actors: who
// follows each of them (its followers) and whom each follows (its
// following), each pending until the followed side accepts. A following
// whose Follow the followed actor's server refused for good (its delivery
// was dead-lettered) is kept as failed, with the reason, until the actor
// follows again or undoes it. A follower whose actor is gone (a delivery
// to it was answered 410 Gone) is no longer one: it is kept as gone, with
// the reason, so that an admin sees why it left, until it follows again. They live in the bucket "follows", keyed so
// that every question asked of them is a seek and a range of one actor's
// relations, never a scan of all:
//
//	"f" 0 LOCAL 0 DIR 0 STATE 0 REMOTE  → the relation (tagFollow, or
//	                                      tagFollowReason with a reason)
//	"c" 0 LOCAL 0 DIR 0 STATE           → how many (8-byte big-endian)
//	"s" 0 URL                           → when the shared inbox at URL
//	                                      answered 410 Gone (a time)
//
// DIR is FollowerOf or Following, STATE FollowPending, FollowAccepted,
// (Following only) FollowFailed or (FollowerOf only) FollowGone. A relation is in one state at a time.
// The counts are written by PutFollow and DeleteFollow in the transaction
// that changes a relation, so a collection's totalItems costs one read.
// Values are not sealed: a relation is two actor ids, an activity id and
// the error a delivery recorded.

var bucketFollows = []byte("follows")

// tagFollow is a relation's record, and tagFollowReason one of a failed
// or gone relation: the same fields with Reason after Since.
const (
	tagFollow       byte = 0x08
	tagFollowReason byte = 0x0B
	// tagSharedInboxGone is the record of a shared inbox that answered
	// 410 Gone: when.
	tagSharedInboxGone byte = 0x0D
)

// FollowDirection says which side of a relation the local actor is on.
type FollowDirection byte

// The two directions.
const (
	// FollowerOf: Remote follows Local (Local's followers collection).
	FollowerOf FollowDirection = 'r'
	// Following: Local follows Remote (Local's following collection).
	Following FollowDirection = 'g'
)

// FollowState is whether a relation was accepted by the followed side.
type FollowState byte

// The states of a relation.
const (
	FollowPending  FollowState = 'p'
	FollowAccepted FollowState = 'a'
	// FollowFailed is a following whose Follow the followed actor's
	// server refused for good: its delivery was dead-lettered, so no
	// answer will come. Follow.Reason says why.
	FollowFailed FollowState = 'f'
	// FollowGone is a follower whose actor is gone: a delivery to it was
	// answered 410 Gone. It is no longer a follower (no delivery goes to
	// it, no collection counts it among the followers); Follow.Reason
	// says why.
	FollowGone FollowState = 'x'
)

// followStates are the states a relation can be in.
var followStates = [...]FollowState{FollowAccepted, FollowPending, FollowFailed, FollowGone}

// String names the state.
func (s FollowState) String() string {
	switch s {
	case FollowAccepted:
		return "accepted"
	case FollowFailed:
		return "failed"
	case FollowGone:
		return "gone"
	}
	return "pending"
}

// Follow is one relation between a local actor and a remote one.
type Follow struct {
	Local     string // the local actor's name
	Direction FollowDirection
	State     FollowState
	Remote    string // the remote actor's id
	// FollowID is the id of the Follow activity that asked for the
	// relation (sent by Remote for a follower, by Local for a following).
	FollowID string
	// Inbox is the remote actor's inbox and SharedInbox its
	// endpoints.sharedInbox, when its document names one: deliveries to
	// several followers on one server go once to their shared inbox.
	Inbox       string
	SharedInbox string
	// Since is when the relation took its state.
	Since time.Time
	// Reason is why a failed following failed (the error its Follow's
	// delivery was dead-lettered with), or why a gone follower is gone.
	// Empty in the other states.
	Reason string
}

func followKey(local string, dir FollowDirection, state FollowState, remote string) []byte {
	k := make([]byte, 0, len(local)+len(remote)+8)
	k = append(k, 'f', 0)
	k = append(k, local...)
	k = append(k, 0, byte(dir), 0, byte(state), 0)
	return append(k, remote...)
}

func followCountKey(local string, dir FollowDirection, state FollowState) []byte {
	k := append([]byte{'c', 0}, local...)
	return append(k, 0, byte(dir), 0, byte(state))
}

// encodeFollow writes f, with tagFollow when it has no reason (the layout
// from before failed followings, so such records read as before) and
// tagFollowReason, the same fields and Reason last, when it has one.
func encodeFollow(f Follow) []byte {
	tag := tagFollow
	if f.Reason != "" {
		tag = tagFollowReason
	}
	e := newEncoder(tag, len(f.FollowID)+len(f.Inbox)+len(f.SharedInbox)+len(f.Reason)+20)
	e.string(f.FollowID)
	e.string(f.Inbox)
	e.string(f.SharedInbox)
	e.time(f.Since)
	if f.Reason != "" {
		e.string(f.Reason)
	}
	return e.buf
}

func decodeFollow(local string, dir FollowDirection, state FollowState, remote string, v []byte) (Follow, error) {
	tag := tagFollow
	if len(v) > 0 && v[0] == tagFollowReason {
		tag = tagFollowReason
	}
	d := newDecoder(tag, v)
	f := Follow{Local: local, Direction: dir, State: state, Remote: remote}
	f.FollowID = d.string()
	f.Inbox = d.string()
	f.SharedInbox = d.string()
	f.Since = d.time()
	if tag == tagFollowReason {
		f.Reason = d.string()
	}
	if err := d.finish(); err != nil {
		return Follow{}, fmt.Errorf("follow %s %c %s: %w", local, dir, remote, err)
	}
	return f, nil
}

// Follow returns the relation of local actor local with remote in
// direction dir, whatever its state; ok is false when there is none.
func (r *ReadTx) Follow(local string, dir FollowDirection, remote string) (Follow, bool, error) {
	b := r.bucket(bucketFollows)
	for _, st := range followStates {
		if v := b.Get(followKey(local, dir, st, remote)); v != nil {
			f, err := decodeFollow(local, dir, st, remote, v)
			return f, err == nil, err
		}
	}
	return Follow{}, false, nil
}

// PutFollow stores a relation, replacing the one of the same local
// actor, direction and remote actor in any state, and keeps the counts.
// Only a following fails, only a follower is gone, and only a failed or
// gone one has a reason.
func (t *Tx) PutFollow(f Follow) error {
	if f.Local == "" || f.Remote == "" || (f.Direction != FollowerOf && f.Direction != Following) ||
		(f.State != FollowPending && f.State != FollowAccepted && f.State != FollowFailed && f.State != FollowGone) ||
		(f.State == FollowFailed && f.Direction != Following) || (f.State == FollowGone && f.Direction != FollowerOf) ||
		(f.Reason != "" && f.State != FollowFailed && f.State != FollowGone) {
		return fmt.Errorf("put follow %+v: %w", f, ErrInvalid)
	}
	if len(f.Remote) > MaxIDSize || len(f.FollowID) > MaxIDSize {
		return fmt.Errorf("put follow of %s: an id is longer than %d bytes: %w", f.Local, MaxIDSize, ErrInvalid)
	}
	if err := t.DeleteFollow(f.Local, f.Direction, f.Remote); err != nil {
		return err
	}
	b := t.bucket(bucketFollows)
	if err := b.Put(followKey(f.Local, f.Direction, f.State, f.Remote), encodeFollow(f)); err != nil {
		return fmt.Errorf("put follow of %s: %w", f.Local, err)
	}
	return t.addFollowCount(f.Local, f.Direction, f.State, 1)
}

// DeleteFollow removes the relation of local with remote in direction
// dir, in whatever state it is; removing none is no error.
func (t *Tx) DeleteFollow(local string, dir FollowDirection, remote string) error {
	b := t.bucket(bucketFollows)
	for _, st := range followStates {
		k := followKey(local, dir, st, remote)
		if b.Get(k) == nil {
			continue
		}
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete follow of %s: %w", local, err)
		}
		if err := t.addFollowCount(local, dir, st, -1); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tx) addFollowCount(local string, dir FollowDirection, state FollowState, delta int64) error {
	b := t.bucket(bucketFollows)
	k := followCountKey(local, dir, state)
	var n int64
	if v := b.Get(k); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += delta
	if n < 0 {
		n = 0
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, uint64(n))
	return b.Put(k, v)
}

// FollowCount returns how many relations local has in direction dir and
// state, from the kept count.
func (r *ReadTx) FollowCount(local string, dir FollowDirection, state FollowState) int {
	if v := r.bucket(bucketFollows).Get(followCountKey(local, dir, state)); len(v) == 8 {
		return int(binary.BigEndian.Uint64(v))
	}
	return 0
}

// Follows returns up to limit relations of local in direction dir and
// state, in order of the remote actor's id, starting after the remote
// actor after ("" for the first), and the remote actor to give as after
// for the next page ("" when there is none). It reads only the page.
func (r *ReadTx) Follows(local string, dir FollowDirection, state FollowState, after string, limit int) ([]Follow, string, error) {
	if limit <= 0 {
		return nil, "", nil
	}
	prefix := followKey(local, dir, state, "")
	c := r.bucket(bucketFollows).Cursor()
	k, v := c.Seek(append(bytes.Clone(prefix), after...))
	if after != "" && k != nil && bytes.Equal(k, followKey(local, dir, state, after)) {
		k, v = c.Next()
	}
	var out []Follow
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(out) == limit {
			return out, out[len(out)-1].Remote, nil
		}
		f, err := decodeFollow(local, dir, state, string(k[len(prefix):]), v)
		if err != nil {
			return nil, "", err
		}
		out = append(out, f)
	}
	return out, "", nil
}

func goneSharedInboxKey(inbox string) []byte {
	return append([]byte{'s', 0}, inbox...)
}

// PutSharedInboxGone records that the shared inbox at inbox answered 410
// Gone at at: the followers that name it get their deliveries at their
// own inboxes from then on, until a Follow names it again
// (DeleteSharedInboxGone).
func (t *Tx) PutSharedInboxGone(inbox string, at time.Time) error {
	if inbox == "" || len(inbox) > MaxIDSize {
		return fmt.Errorf("put gone shared inbox: an empty or too long URL: %w", ErrInvalid)
	}
	e := newEncoder(tagSharedInboxGone, 12)
	e.time(at)
	if err := t.bucket(bucketFollows).Put(goneSharedInboxKey(inbox), e.buf); err != nil {
		return fmt.Errorf("put gone shared inbox: %w", err)
	}
	return nil
}

// DeleteSharedInboxGone forgets that the shared inbox at inbox was gone;
// forgetting one never recorded is no error.
func (t *Tx) DeleteSharedInboxGone(inbox string) error {
	b := t.bucket(bucketFollows)
	k := goneSharedInboxKey(inbox)
	if b.Get(k) == nil {
		return nil
	}
	if err := b.Delete(k); err != nil {
		return fmt.Errorf("forget the gone shared inbox: %w", err)
	}
	return nil
}

// ReadAheadSharedInboxesGone reads, where each read is a round trip to a
// server (PostgreSQL), whether each of inboxes was recorded gone, in one
// request, so that SharedInboxGone of any of them answers from the
// transaction; elsewhere it does nothing. A batch of a fan-out to
// followers calls it with the shared inboxes its followers name.
func (r *ReadTx) ReadAheadSharedInboxesGone(inboxes []string) {
	keys := make([][]byte, 0, len(inboxes))
	for _, inbox := range inboxes {
		if inbox != "" {
			keys = append(keys, goneSharedInboxKey(inbox))
		}
	}
	prefetch(r.bucket(bucketFollows).engineBucket, keys)
}

// SharedInboxGone reports whether the shared inbox at inbox was recorded
// gone (PutSharedInboxGone).
func (r *ReadTx) SharedInboxGone(inbox string) bool {
	return inbox != "" && r.bucket(bucketFollows).Get(goneSharedInboxKey(inbox)) != nil
}
