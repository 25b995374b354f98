package cases

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// The index of a case's participants lives in the case's bucket, beside
// its record: under participantKey of each participant's actor id, a state
// byte (participantMember or participantRemoved) and the id of its
// CaseParticipant object, by which a Remove may name it. A delivery is
// checked against it before it is sent (Withdrawn), and that check must
// not decode the case's whole record for every delivery of a fan-out. It
// sits in the case's bucket rather than a sub-bucket of it so that the
// check reads it and keyParticipantsIndexed in one request.
const participantKeyPrefix = "participant "

// participantKey is the key of actor's entry in the index of participants.
func participantKey(actor string) []byte { return []byte(participantKeyPrefix + actor) }

// keyParticipantsIndexed holds the fingerprint of the participants the
// index was last written from, so that a save that changes none of them
// costs one read; a case without it (its record saved before the index
// existed, or dropped to be rebuilt) is read from its record.
var keyParticipantsIndexed = []byte("participants indexed")

// The states of the index of participants.
const (
	participantRemoved byte = 0
	participantMember  byte = 1
)

// participantsFingerprint hashes what the index of participants holds.
func participantsFingerprint(c *Case) []byte {
	h := fnv.New64a()
	for _, p := range c.Participants {
		fmt.Fprintf(h, "%s|%s|%t;", p.Actor, p.ID, p.Removed)
	}
	return binary.BigEndian.AppendUint64(nil, h.Sum64())
}

// indexParticipants brings the index of participants of case c, whose
// record is being saved in case bucket b, in line with it. It writes only
// what changed: a case's participants are never dropped from its record,
// only marked removed, so no entry is ever deleted but with the record
// (dropParticipantsIndex).
func indexParticipants(b *store.CaseBucket, c *Case) error {
	fp := participantsFingerprint(c)
	if string(b.Get(keyParticipantsIndexed)) == string(fp) {
		return nil
	}
	keys := make([][]byte, len(c.Participants))
	for i, p := range c.Participants {
		keys[i] = participantKey(p.Actor)
	}
	b.ReadAhead(keys)
	for i, p := range c.Participants {
		want := append([]byte{participantMember}, p.ID...)
		if p.Removed {
			want[0] = participantRemoved
		}
		if string(b.Get(keys[i])) == string(want) {
			continue
		}
		if err := b.Put(keys[i], want); err != nil {
			return err
		}
	}
	return b.Put(keyParticipantsIndexed, fp)
}

// dropParticipantsIndex removes the index of participants from case
// bucket b, whose record is being dropped. It reads the index's entries,
// one per participant the case ever had.
func dropParticipantsIndex(b *store.CaseBucket) error {
	var keys [][]byte
	if err := b.RangePrefix([]byte(participantKeyPrefix), func(k, _ []byte) error {
		keys = append(keys, k)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range append(keys, keyParticipantsIndexed) {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// removedFrom reports whether actor was removed from case caseID and takes
// no part in it now, with the id of its CaseParticipant object, reading
// the index of participants (one read), or, for a case whose record was
// saved before the index existed, its record. An actor the case never had
// is not removed.
func removedFrom(tx *store.ReadTx, caseID, actor string) (removed bool, participantID string, err error) {
	b, err := tx.Case(caseID)
	if errors.Is(err, store.ErrNotFound) {
		return false, "", nil
	}
	if err != nil {
		return false, "", err
	}
	key := participantKey(actor)
	b.ReadAhead([][]byte{keyParticipantsIndexed, key})
	if b.Get(keyParticipantsIndexed) != nil {
		v := b.Get(key)
		if len(v) == 0 || v[0] != participantRemoved {
			return false, "", nil
		}
		return true, string(v[1:]), nil
	}
	c, err := loadCase(tx, caseID)
	if err != nil || c == nil {
		return false, "", err
	}
	if p := c.Participant(actor); p != nil && p.Removed {
		return true, p.ID, nil
	}
	return false, "", nil
}

// Withdrawn returns why queued delivery d of activity a is no longer to be
// sent, "" when it is to be sent as queued. A delivery in a case's lane
// (its ordering key is the case's id, as for every case activity and
// announcement) to an actor the case has removed since it was queued is
// withdrawn: what the case says reaches only its participants. The
// announcement of that actor's own removal is not: it tells its node that
// it is out of the case. Nor are the activities the protocol sends to
// actors that take no part in the case (an invitation, the published
// advisory, an answer to what the actor sent). It reads the case's index
// of participants, not its record.
func Withdrawn(tx *store.ReadTx, d store.Delivery, a store.StoredActivity) (string, error) {
	if !withdrawable(d, a) {
		return "", nil
	}
	removed, participantID, err := removedFrom(tx, d.OrderingKey, d.Recipient)
	if err != nil || !removed {
		return "", err
	}
	if vocab.Semantic(a.Semantic) == vocab.AnnounceCaseLedgerEntry && announcesRemovalOf(a.Body, d.OrderingKey, d.Recipient, participantID) {
		return "", nil
	}
	return fmt.Sprintf("not sent: %s was removed from case %s after this delivery was queued, and a case's content goes only to its participants",
		d.Recipient, d.OrderingKey), nil
}

// withdrawable reports whether Withdrawn may withdraw delivery d of
// activity a at all: one in a lane, of an activity that is not sent to
// actors outside the case on purpose. A Follow, its answers and an
// article outside a case (which names no context) are in lanes of the
// social graph, no case's, and are never withdrawn: a fan-out to followers
// asks the store nothing for them. An Announce may name a case as its
// context, and is checked.
func withdrawable(d store.Delivery, a store.StoredActivity) bool {
	if d.OrderingKey == "" {
		return false
	}
	switch sem := vocab.Semantic(a.Semantic); {
	case sem == vocab.InviteActorToCase, sem == vocab.PublishAdvisory, sem == vocab.ReviseAdvisory, sem.IsReply(),
		sem.IsSocial() && sem != vocab.SocialAnnounce:
		return false
	}
	return true
}

// CheckWithdrawn is Withdrawn in a read transaction of its own on db,
// which it opens only for a delivery Withdrawn may withdraw: the
// deliveries of the node's workers are checked before every attempt, and
// most of what is sent asks nothing of the store.
func CheckWithdrawn(ctx context.Context, db *store.DB, d store.Delivery, a store.StoredActivity) (reason string, err error) {
	if !withdrawable(d, a) {
		return "", nil
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
		reason, err = Withdrawn(tx, d, a)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("check whether %s still takes part in case %s: %w", d.Recipient, d.OrderingKey, err)
	}
	return reason, nil
}

// announcesRemovalOf reports whether body is the announcement of the entry
// of case caseID that removed actor, whose CaseParticipant object is
// participantID, from it.
func announcesRemovalOf(body []byte, caseID, actor, participantID string) bool {
	doc, err := vocab.Parse(body)
	if err != nil || doc.Activity() == nil {
		return false
	}
	entry, err := entryOf(doc.Activity())
	if err != nil || entry.CaseID != caseID || entry.EventType != EventType(vocab.RemoveCaseParticipantFromCase) {
		return false
	}
	return removes(entry, actor, participantID)
}

// removes reports whether the Remove that entry records names actor, by
// its actor id or its participant's id, as the participant it removes.
func removes(entry ledger.Entry, actor, participantID string) bool {
	doc, err := vocab.Parse(entry.PayloadSnapshot)
	if err != nil || doc.Activity() == nil {
		return false
	}
	target := removedTarget(doc.Activity())
	return target == actor || (participantID != "" && target == participantID)
}
