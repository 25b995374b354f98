package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"
)

// Dashboard sessions live in the store, so that a browser logged in
// through one process of a node is logged in on every process behind the
// same URL, and a restart logs nobody out. The bucket "sessions" is keyed
// by the SHA-256 of the session id (the cookie's value), so the store holds
// no id a browser could present; values are sealed like case content (a
// session's message may quote a case).

var bucketSessions = []byte("sessions")

// Session is one logged-in browser of the dashboard.
type Session struct {
	CSRF    string
	Expires time.Time
	// Flash is the outcome of the last form, shown once.
	Flash   string
	FlashOK bool
}

func sessionKey(id string) []byte {
	sum := sha256.Sum256([]byte(id))
	return sum[:]
}

func encodeSession(s Session) []byte {
	e := newEncoder(tagSession, len(s.CSRF)+len(s.Flash)+24)
	e.string(s.CSRF)
	e.time(s.Expires)
	e.string(s.Flash)
	if s.FlashOK {
		e.uvarint(1)
	} else {
		e.uvarint(0)
	}
	return e.buf
}

func decodeSession(v []byte) (Session, error) {
	d := newDecoder(tagSession, v)
	var s Session
	s.CSRF = d.string()
	s.Expires = d.time()
	s.Flash = d.string()
	s.FlashOK = d.uvarint() == 1
	return s, d.finish()
}

// CreateSession stores a new session under id. In the same transaction it
// removes the sessions expired at now and, when max are left, the one that
// expires first, so the bucket never holds more than max sessions and a
// login reads at most max of them.
func (db *DB) CreateSession(ctx context.Context, id string, s Session, now time.Time, max int) error {
	if id == "" {
		return fmt.Errorf("store: create session: empty id: %w", ErrInvalid)
	}
	err := db.Update(ctx, func(tx *Tx) error {
		b := tx.bucket(bucketSessions)
		var (
			expired  [][]byte
			oldest   []byte
			oldestAt time.Time
			live     int
			c        = b.Cursor()
		)
		for k, v := c.First(); k != nil; k, v = c.Next() {
			old, err := decodeSession(b.open(k, v))
			if tx.sealErr != nil {
				return tx.sealErr
			}
			if err != nil || now.After(old.Expires) {
				expired = append(expired, cloneBytes(k))
				continue
			}
			live++
			if oldest == nil || old.Expires.Before(oldestAt) {
				oldest, oldestAt = cloneBytes(k), old.Expires
			}
		}
		if max > 0 && live >= max && oldest != nil {
			expired = append(expired, oldest)
		}
		for _, k := range expired {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return b.Put(sessionKey(id), encodeSession(s))
	})
	if err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	return nil
}

// Session returns the session under id, unless there is none or it
// expired at now.
func (db *DB) Session(ctx context.Context, id string, now time.Time) (Session, bool, error) {
	var (
		s     Session
		found bool
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		v := tx.bucket(bucketSessions).Get(sessionKey(id))
		if v == nil {
			return nil
		}
		var err error
		s, err = decodeSession(v)
		found = err == nil && !now.After(s.Expires)
		return err
	})
	if err != nil {
		return Session{}, false, fmt.Errorf("store: session: %w", err)
	}
	return s, found, nil
}

// UpdateSession changes the session under id with fn; a session that is
// gone is left gone (ErrNotFound).
func (db *DB) UpdateSession(ctx context.Context, id string, fn func(*Session)) error {
	err := db.Update(ctx, func(tx *Tx) error {
		b := tx.bucket(bucketSessions)
		v := b.Get(sessionKey(id))
		if v == nil {
			return ErrNotFound
		}
		s, err := decodeSession(v)
		if err != nil {
			return err
		}
		fn(&s)
		return b.Put(sessionKey(id), encodeSession(s))
	})
	if err != nil {
		return fmt.Errorf("store: update session: %w", err)
	}
	return nil
}

// DeleteSession ends the session under id; ending one that is gone is not
// an error.
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	err := db.Update(ctx, func(tx *Tx) error {
		return tx.bucket(bucketSessions).Delete(sessionKey(id))
	})
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}
