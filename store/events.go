package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The events bucket is the node's change feed: one record, under a
// sequential key, for every ledger entry a case on this node records or
// replicates, and for every step of a report before or as it joins a case,
// written in the same transaction as the entry or the step, and for every
// deadline and threat-intelligence signal the node announces (packages
// deadline and intel). Integrations
// (webhooks) follow it with a durable cursor each, in the webhooks bucket.
// Its values are sealed like case content.

// Event is one entry of the change feed: a ledger entry of a case, or,
// when Report is set, a step in the life of a report (LogIndex is then
// meaningless and CaseID the case the report is in, if any).
type Event struct {
	Seq    uint64 `json:"-"`
	Report string `json:"report,omitempty"`
	CaseID string `json:"case"`
	// LogIndex is the index of the ledger entry the event reports; nil
	// for every other event (a report's step, a deadline, a signal).
	LogIndex  *int64          `json:"logIndex,omitempty"`
	EventType string          `json:"event"`
	Actor     string          `json:"actor,omitempty"`
	Time      time.Time       `json:"time"`
	State     json.RawMessage `json:"state,omitempty"` // the states after the entry
}

// AppendEvent adds e to the change feed, in the transaction of the ledger
// write it reports.
func (t *Tx) AppendEvent(e Event) error {
	b := t.bucket(bucketEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("change feed: %w", err)
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("change feed: encode: %w", err)
	}
	return b.Put(seqKey(seq), v)
}

// EventsAfter returns at most limit events of the change feed whose
// sequence number is greater than after, in order.
func (db *DB) EventsAfter(ctx context.Context, after uint64, limit int) ([]Event, error) {
	var out []Event
	err := db.View(ctx, func(tx *ReadTx) error {
		b := tx.bucket(bucketEvents)
		c := b.Cursor()
		for k, v := c.Seek(seqKey(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			seq, ok := keySeq(k)
			if !ok {
				continue
			}
			var e Event
			if err := json.Unmarshal(b.open(k, v), &e); err != nil {
				return fmt.Errorf("change feed: event %d: %w", seq, err)
			}
			e.Seq = seq
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// LastEventSeq returns the sequence number of the newest event, 0 if none.
func (db *DB) LastEventSeq(ctx context.Context) (uint64, error) {
	var last uint64
	err := db.View(ctx, func(tx *ReadTx) error {
		last = tx.bucket(bucketEvents).Sequence()
		return nil
	})
	return last, err
}

// PruneEvents deletes the events up to and including seq that are older
// than before, and returns how many it deleted.
func (db *DB) PruneEvents(ctx context.Context, seq uint64, before time.Time) (int, error) {
	n := 0
	err := db.Update(ctx, func(tx *Tx) error {
		n = 0
		b := tx.bucket(bucketEvents)
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			s, ok := keySeq(k)
			if !ok || s > seq {
				break
			}
			var e Event
			if err := json.Unmarshal(b.open(k, v), &e); err != nil {
				return fmt.Errorf("change feed: event %d: %w", s, err)
			}
			if !e.Time.Before(before) {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// WebhookCursor is where a webhook is in the change feed.
type WebhookCursor struct {
	// Seq is the last event delivered (or given up on).
	Seq uint64 `json:"seq"`
	// Skipped counts the events given up on after the retry horizon.
	Skipped uint64 `json:"skipped"`
	// LastError is the last failure, "" after a success.
	LastError string `json:"lastError,omitempty"`
	// Paused, when set, says that the webhook answered the event after
	// Seq with a permanent refusal too many times in a row: nothing is
	// sent to it, and its events are kept, until an operator resumes it.
	Paused *WebhookPause `json:"paused,omitempty"`
}

// WebhookPause says why and since when a webhook is paused.
type WebhookPause struct {
	// Since is when the node paused it.
	Since time.Time `json:"since"`
	// Status is the HTTP status of the webhook's last answer, and Error
	// the sentence that says what it answered to which event.
	Status int    `json:"status"`
	Error  string `json:"error"`
	// Event is the id of the event it refused, the first it is sent
	// once resumed.
	Event string `json:"event"`
}

// ErrWebhookNotPaused is what ResumeWebhook returns (wrapped) for a
// webhook that is not paused.
var ErrWebhookNotPaused = errors.New("the webhook is not paused")

// WebhookCursor returns the cursor of the webhook at url; a webhook never
// seen starts at the end of the feed as it is now (ok is false).
func (db *DB) WebhookCursor(ctx context.Context, url string) (c WebhookCursor, ok bool, err error) {
	err = db.View(ctx, func(tx *ReadTx) error {
		v := tx.bucket(bucketWebhooks).Get([]byte(url))
		if v == nil {
			c.Seq = tx.bucket(bucketEvents).Sequence()
			return nil
		}
		ok = true
		return json.Unmarshal(v, &c)
	})
	if err != nil {
		return WebhookCursor{}, false, fmt.Errorf("webhook cursor of %s: %w", url, err)
	}
	return c, ok, nil
}

// SetWebhookCursor stores the cursor of the webhook at url.
func (db *DB) SetWebhookCursor(ctx context.Context, url string, c WebhookCursor) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return db.Update(ctx, func(tx *Tx) error {
		return tx.bucket(bucketWebhooks).Put([]byte(url), v)
	})
}

// PauseWebhook stores the cursor c of the webhook at url, whose Paused
// says why it is paused, and the audit record rec of the pause, in one
// transaction, so that a pause is never in force without its record.
func (db *DB) PauseWebhook(ctx context.Context, url string, c WebhookCursor, rec AuditRecord) error {
	if c.Paused == nil {
		return fmt.Errorf("pause webhook: a cursor without a pause: %w", ErrInvalid)
	}
	v, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("pause webhook: %w", err)
	}
	err = db.Update(ctx, func(tx *Tx) error {
		if err := tx.bucket(bucketWebhooks).Put([]byte(url), v); err != nil {
			return err
		}
		_, err := tx.AppendAudit(rec)
		return err
	})
	if err != nil {
		return fmt.Errorf("pause webhook: %w", err)
	}
	return nil
}

// ResumeWebhook lifts the pause of the webhook at url, whose delivery
// starts again with the event it refused, and appends the audit record
// rec of the resumption, in one transaction; the record takes the status
// of the pause it lifts and, unless rec has one, a reason that says
// since when it was paused and why. It returns the pause it lifted;
// ErrWebhookNotPaused (wrapped) when the webhook is not paused.
func (db *DB) ResumeWebhook(ctx context.Context, url string, rec AuditRecord) (WebhookPause, error) {
	var lifted WebhookPause
	err := db.Update(ctx, func(tx *Tx) error {
		b := tx.bucket(bucketWebhooks)
		v := b.Get([]byte(url))
		var c WebhookCursor
		if v != nil {
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
		}
		if c.Paused == nil {
			return ErrWebhookNotPaused
		}
		lifted, c.Paused = *c.Paused, nil
		rec := rec
		rec.Status = lifted.Status
		if rec.Reason == "" {
			rec.Reason = fmt.Sprintf("resumed the webhook paused since %s: %s", lifted.Since.UTC().Format(time.RFC3339), lifted.Error)
		}
		nv, err := json.Marshal(c)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(url), nv); err != nil {
			return err
		}
		_, err = tx.AppendAudit(rec)
		return err
	})
	if err != nil {
		return WebhookPause{}, fmt.Errorf("resume webhook: %w", err)
	}
	return lifted, nil
}
