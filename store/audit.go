package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// The audit log is an append-only, hash-chained record of the node's
// decisions: every inbound activity accepted or refused, every outbound
// activity enqueued, delivered, retried or dead-lettered, and every admin
// action. It lives in its own bucket, keyed by a sequence number (SeqKey).
//
// Each record is stored as its canonical encoding followed by its 32-byte
// SHA-256 hash. The canonical encoding is the store's binary record form
// (tag 0x06, then every field in a fixed order, strings length-prefixed) and
// includes the record's own sequence number and the hash of the record
// before it, so changing a record breaks its hash, removing one leaves a gap
// in the sequence numbers or a prev-hash mismatch, and swapping two makes
// their stored sequence numbers disagree with their keys. VerifyAudit
// reports the first of these it meets.
//
// A record holds metadata only (ids, actors, key ids, digests, decisions,
// reasons); never an activity body or a secret.
//
// Records are written in the same transaction as what they record
// (Tx.AppendAudit), so an accepted activity is never stored without its
// record and no record describes a write that was rolled back. A decision
// with no other write (a refused request) is recorded with DB.Audit, which
// goes through the group committer and so batches with other writes.
//
// Retention: the node keeps every record. A record is a few hundred bytes,
// so a node that receives a million activities grows by a few hundred
// megabytes; refusals are recorded within a per-remote, per-minute budget by the
// node (node/audit.go) so a flood cannot grow the log without bound. There is no
// pruning yet: removing a prefix would need a checkpoint record that names
// the hash it continues from, which VerifyAudit would then take as its start.

// tagAudit is the record tag of an audit record, and tagAuditPrincipal
// the tag of one that names a principal: the same fields with Principal
// after Dropped. A record without a principal keeps tagAudit, so the
// chains written before principals verify as they did.
const (
	tagAudit          byte = 0x06
	tagAuditPrincipal byte = 0x09
)

// Audit record kinds.
const (
	AuditInbound  = "inbound"
	AuditOutbound = "outbound"
	AuditKey      = "key"
	AuditAdmin    = "admin"
	// AuditAccount records what happens to the node's people: logins
	// and their refusals, users, roles, tokens and second factors
	// (package accounts).
	AuditAccount = "account"
)

// Audit decisions.
const (
	DecisionAccepted  = "accepted"
	DecisionDuplicate = "duplicate"
	DecisionRefused   = "refused"
	DecisionEnqueued  = "enqueued"
	DecisionDelivered = "delivered"
	DecisionRetrying  = "retrying"
	DecisionDead      = "dead"
	DecisionRequeued  = "requeued"
	DecisionDone      = "done"
	// DecisionFailed records a following that failed: the followed
	// actor's server refused its Follow for good (package social).
	DecisionFailed = "failed"
	// DecisionPaused and DecisionResumed record a webhook the node
	// paused after permanent refusals, and an operator's resumption of
	// it (package webhook).
	DecisionPaused  = "paused"
	DecisionResumed = "resumed"
	// DecisionRemoved records a follower removed because its actor is
	// gone: a delivery to it was answered 410 Gone (package social).
	DecisionRemoved = "removed"
	// DecisionFetched and DecisionChanged record a remote key cached for
	// the first time, and one whose PEM changed.
	DecisionFetched = "fetched"
	DecisionChanged = "changed"
	// DecisionDiscarded records a damaged delivery record an operator
	// discarded (DB.DiscardDamagedDelivery).
	DecisionDiscarded = "discarded"
)

// AuditRecord is one entry of the audit log. Seq, Prev and Hash are set by
// AppendAudit; Time is set to the store's clock when zero.
type AuditRecord struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	// Kind is AuditInbound, AuditOutbound, AuditKey, AuditAdmin or
	// AuditAccount.
	Kind string `json:"kind"`
	// Actor is the local actor concerned (recipient, author), or the
	// admin principal ("api-token") for admin actions.
	Actor string `json:"actor,omitempty"`
	// Signer is the remote actor that signed an inbound request, or the
	// recipient of an outbound delivery.
	Signer     string `json:"signer,omitempty"`
	KeyID      string `json:"keyId,omitempty"`
	ActivityID string `json:"activityId,omitempty"`
	// Digest is the lowercase hex SHA-256 of the activity body.
	Digest   string `json:"digest,omitempty"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
	Status   int    `json:"status,omitempty"`
	// Remote is the client IP of an inbound request or the host of a
	// delivery's recipient.
	Remote string `json:"remote,omitempty"`
	// Dropped counts refusals from the same remote that were not recorded
	// one by one in the node's refusal budget (see node/audit.go).
	Dropped uint64 `json:"dropped,omitempty"`
	// Principal is who made the request: a user of package accounts and
	// the credential it came with ("alice via token 3f9a2c1b", "alice via
	// session 9e1d44a0"), or a token of the node ("metrics token"); for
	// an outbound activity, the person who had it sent.
	Principal string `json:"principal,omitempty"`
	// Prev is the hex hash of the record before (empty for the first).
	Prev string `json:"prev,omitempty"`
	// Hash is the hex SHA-256 of the canonical encoding of this record.
	Hash string `json:"hash"`
}

// canonical returns the canonical encoding of rec with the given previous
// hash: every field but Hash, in a fixed order.
func (rec *AuditRecord) canonical(prev []byte) []byte {
	tag := tagAudit
	if rec.Principal != "" {
		tag = tagAuditPrincipal
	}
	e := newEncoder(tag, 256)
	e.uvarint(rec.Seq)
	e.time(rec.Time)
	e.string(rec.Kind)
	e.string(rec.Actor)
	e.string(rec.Signer)
	e.string(rec.KeyID)
	e.string(rec.ActivityID)
	e.string(rec.Digest)
	e.string(rec.Decision)
	e.string(rec.Reason)
	e.uvarint(uint64(max(rec.Status, 0)))
	e.string(rec.Remote)
	e.uvarint(rec.Dropped)
	if rec.Principal != "" {
		e.string(rec.Principal)
	}
	e.bytes(prev)
	return e.buf
}

// decodeAudit splits a stored value into the record and its stored hash.
func decodeAudit(v []byte) (AuditRecord, []byte, []byte, error) {
	if len(v) < sha256.Size+1 {
		return AuditRecord{}, nil, nil, fmt.Errorf("%w: audit record too short", errCorrupt)
	}
	body, sum := v[:len(v)-sha256.Size], v[len(v)-sha256.Size:]
	tag := tagAudit
	if body[0] == tagAuditPrincipal {
		tag = tagAuditPrincipal
	}
	d := newDecoder(tag, body)
	var rec AuditRecord
	rec.Seq = d.uvarint()
	rec.Time = d.time()
	rec.Kind = d.string()
	rec.Actor = d.string()
	rec.Signer = d.string()
	rec.KeyID = d.string()
	rec.ActivityID = d.string()
	rec.Digest = d.string()
	rec.Decision = d.string()
	rec.Reason = d.string()
	rec.Status = int(d.uvarint())
	rec.Remote = d.string()
	rec.Dropped = d.uvarint()
	if tag == tagAuditPrincipal {
		rec.Principal = d.string()
	}
	prev := d.bytes()
	if err := d.finish(); err != nil {
		return AuditRecord{}, nil, nil, err
	}
	rec.Prev = hex.EncodeToString(prev)
	rec.Hash = hex.EncodeToString(sum)
	return rec, prev, cloneBytes(sum), nil
}

// AppendAudit appends rec to the audit log in this transaction, so it
// commits together with the writes it records, and returns its sequence
// number. It never changes an earlier record. Like every write function it
// may run more than once; it derives everything from the Tx.
func (t *Tx) AppendAudit(rec AuditRecord) (uint64, error) {
	if rec.Kind == "" || rec.Decision == "" {
		return 0, fmt.Errorf("audit: record without kind or decision: %w", ErrInvalid)
	}
	b := t.bucket(bucketAudit)
	if !t.auditKnown {
		if _, v := b.Cursor().Last(); v != nil {
			if len(v) < sha256.Size {
				return 0, fmt.Errorf("audit: last record: %w", errCorrupt)
			}
			t.auditPrev = cloneBytes(v[len(v)-sha256.Size:])
		}
		t.auditKnown = true
	}
	prev := t.auditPrev
	seq, err := b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("audit: next sequence: %w", err)
	}
	rec.Seq = seq
	if rec.Time.IsZero() {
		rec.Time = t.now()
	}
	rec.Time = rec.Time.UTC()
	body := rec.canonical(prev)
	sum := sha256.Sum256(body)
	if err := b.Put(seqKey(seq), append(body, sum[:]...)); err != nil {
		return 0, fmt.Errorf("audit: put record %d: %w", seq, err)
	}
	t.auditPrev = sum[:]
	return seq, nil
}

// Audit appends rec in a transaction of its own, for a decision that writes
// nothing else (a refused request). It goes through the group committer, so
// concurrent records share a commit.
func (db *DB) Audit(ctx context.Context, rec AuditRecord) error {
	err := db.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendAudit(rec)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditPage returns up to limit records with sequence numbers after after,
// oldest first (limit ≤ 0 means 100), and the sequence number to pass as
// after for the next page (0 when there is none).
func (db *DB) AuditPage(ctx context.Context, after uint64, limit int) ([]AuditRecord, uint64, error) {
	if limit <= 0 {
		limit = 100
	}
	var (
		out  []AuditRecord
		next uint64
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		out, next = out[:0], 0
		c := tx.bucket(bucketAudit).Cursor()
		expectKeys(c, limit+1)
		for k, v := c.Seek(seqKey(after + 1)); k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = out[len(out)-1].Seq
				return nil
			}
			rec, _, _, err := decodeAudit(v)
			if err != nil {
				return fmt.Errorf("audit record %x: %w", k, err)
			}
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("store: audit page: %w", err)
	}
	return out, next, nil
}

// AuditVerdict is the outcome of VerifyAudit.
type AuditVerdict struct {
	// OK is true when the whole chain verified.
	OK bool `json:"ok"`
	// Records is the number of records checked.
	Records uint64 `json:"records"`
	// Head is the hash of the last record; an operator who keeps it
	// elsewhere can later detect a rewrite of the whole chain.
	Head string `json:"head,omitempty"`
	// BrokenSeq is the sequence number of the first record that does not
	// verify (or of the first missing one), when OK is false.
	BrokenSeq uint64 `json:"brokenSeq,omitempty"`
	// Reason says what is wrong with it.
	Reason string `json:"reason,omitempty"`
}

// VerifyAudit walks the audit log from its first record and checks that
// the sequence numbers run from 1 without a gap, that each record's stored
// sequence number matches its key, that its hash matches its canonical
// encoding and that it names the hash of the record before. It returns the
// first break it finds; an error only when the log cannot be read.
func (db *DB) VerifyAudit(ctx context.Context) (AuditVerdict, error) {
	var v AuditVerdict
	err := db.View(ctx, func(tx *ReadTx) error {
		v = AuditVerdict{}
		b := tx.bucket(bucketAudit)
		var (
			prev []byte
			want uint64 = 1
		)
		broken := func(seq uint64, format string, args ...any) error {
			v.BrokenSeq, v.Reason = seq, fmt.Sprintf(format, args...)
			return nil
		}
		c := b.Cursor()
		for k, val := c.First(); k != nil; k, val = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			seq, ok := keySeq(k)
			if !ok {
				return broken(want, "a record has a malformed key %x", k)
			}
			if seq != want {
				return broken(want, "record %d is missing (the next record is %d)", want, seq)
			}
			rec, gotPrev, sum, err := decodeAudit(val)
			if err != nil {
				return broken(seq, "record %d cannot be decoded: %v", seq, err)
			}
			if rec.Seq != seq {
				return broken(seq, "record %d holds the record numbered %d: records were reordered or copied", seq, rec.Seq)
			}
			calc := sha256.Sum256(val[:len(val)-sha256.Size])
			if !bytes.Equal(calc[:], sum) {
				return broken(seq, "record %d was changed: its hash does not match its content", seq)
			}
			if !bytes.Equal(gotPrev, prev) {
				return broken(seq, "record %d does not follow record %d: its previous hash does not match", seq, seq-1)
			}
			prev = sum
			v.Records++
			want++
		}
		if last := b.Sequence(); last >= want {
			return broken(want, "record %d is missing (records up to %d were written)", want, last)
		}
		v.OK = true
		v.Head = hex.EncodeToString(prev)
		return nil
	})
	if err != nil {
		return AuditVerdict{}, fmt.Errorf("store: verify audit: %w", err)
	}
	return v, nil
}
