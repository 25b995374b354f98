package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// RemoteKey is a cached public key of an actor on another server. The caller
// decides how long a cached key may be used, based on FetchedAt.
type RemoteKey struct {
	// KeyID is the key's IRI, as sent in the keyId of HTTP signatures.
	KeyID string
	// Owner is the IRI of the actor that owns the key.
	Owner string
	// PublicKeyPEM is the key in PEM form.
	PublicKeyPEM string
	// FetchedAt is when the key was fetched from its owner's server.
	FetchedAt time.Time
}

func encodeRemoteKey(k RemoteKey) []byte {
	e := newEncoder(tagKey, len(k.Owner)+len(k.PublicKeyPEM)+16)
	e.string(k.Owner)
	e.string(k.PublicKeyPEM)
	e.time(k.FetchedAt)
	return e.buf
}

func decodeRemoteKey(keyID string, v []byte) (RemoteKey, error) {
	d := newDecoder(tagKey, v)
	k := RemoteKey{KeyID: keyID}
	k.Owner = d.string()
	k.PublicKeyPEM = d.string()
	k.FetchedAt = d.time()
	return k, d.finish()
}

// PutRemoteKey creates or replaces the cached key k.KeyID, recording it in
// the audit log in the same transaction as Tx.PutRemoteKey does.
func (db *DB) PutRemoteKey(ctx context.Context, k RemoteKey) error {
	if k.KeyID == "" {
		return fmt.Errorf("store: put remote key: empty key id: %w", ErrInvalid)
	}
	err := db.Update(ctx, func(tx *Tx) error { return tx.PutRemoteKey(k) })
	if err != nil {
		return fmt.Errorf("store: put remote key %s: %w", k.KeyID, err)
	}
	return nil
}

// PutRemoteKey creates or replaces the cached key k.KeyID inside this
// transaction. A key cached for the first time, or whose PEM changed, is
// recorded in the audit log (kind AuditKey, the owner as signer, the hex
// SHA-256 of the PEM as digest, decision DecisionFetched or
// DecisionChanged) in this same transaction, so the cache never holds a
// key the log does not name and the log never names a key that was not
// stored. A refresh with the same PEM adds no record.
func (t *Tx) PutRemoteKey(k RemoteKey) error {
	if k.KeyID == "" {
		return fmt.Errorf("put remote key: empty key id: %w", ErrInvalid)
	}
	if err := checkIDSize("key id", k.KeyID); err != nil {
		return fmt.Errorf("put remote key: %w", err)
	}
	b := t.bucket(bucketRemoteKeys)
	decision := DecisionFetched
	if v := b.Get([]byte(k.KeyID)); v != nil {
		prev, err := decodeRemoteKey(k.KeyID, v)
		switch {
		case err != nil:
			decision = DecisionChanged // an unreadable copy is replaced
		case prev.PublicKeyPEM == k.PublicKeyPEM:
			decision = ""
		default:
			decision = DecisionChanged
		}
	}
	if err := b.Put([]byte(k.KeyID), encodeRemoteKey(k)); err != nil {
		return fmt.Errorf("put remote key %s: %w", k.KeyID, err)
	}
	if decision == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(k.PublicKeyPEM))
	if _, err := t.AppendAudit(AuditRecord{Kind: AuditKey, Signer: k.Owner, KeyID: k.KeyID,
		Digest: hex.EncodeToString(sum[:]), Decision: decision}); err != nil {
		return fmt.Errorf("record remote key %s: %w", k.KeyID, err)
	}
	return nil
}

// RemoteKey returns the cached key with the given id, or ErrNotFound.
// Every verified request reads its key here, so it is one point read (get):
// one round trip on PostgreSQL, not a transaction's three.
func (db *DB) RemoteKey(ctx context.Context, keyID string) (RemoteKey, error) {
	v, err := db.get(ctx, bucketRemoteKeys, []byte(keyID))
	if err == nil && v == nil {
		err = ErrNotFound
	}
	var k RemoteKey
	if err == nil {
		k, err = decodeRemoteKey(keyID, v)
	}
	if err != nil {
		return RemoteKey{}, fmt.Errorf("store: remote key %s: %w", keyID, err)
	}
	return k, nil
}

// DeleteRemoteKey removes the cached key with the given id. Deleting a key
// that is not cached is not an error, so callers can evict unconditionally.
func (db *DB) DeleteRemoteKey(ctx context.Context, keyID string) error {
	err := db.Update(ctx, func(tx *Tx) error {
		return tx.bucket(bucketRemoteKeys).Delete([]byte(keyID))
	})
	if err != nil {
		return fmt.Errorf("store: delete remote key %s: %w", keyID, err)
	}
	return nil
}
