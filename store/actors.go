package store

import (
	"context"
	"fmt"
	"time"
)

// LocalActor is the public record of an actor hosted by this node. Its
// private key is not stored here; the actor package keeps it in a file.
type LocalActor struct {
	// Name is the actor's local name (the last path segment of its IRI).
	Name string
	// Type is the ActivityStreams actor type, such as "Organization".
	Type string
	// KeyID is the IRI of the actor's public key.
	KeyID string
	// PublicKeyPEM is the actor's public key in PEM form.
	PublicKeyPEM string
	// CreatedAt is when the actor was created.
	CreatedAt time.Time
}

func encodeActor(a LocalActor) []byte {
	e := newEncoder(tagActor, len(a.Name)+len(a.Type)+len(a.KeyID)+len(a.PublicKeyPEM)+24)
	e.string(a.Type)
	e.string(a.KeyID)
	e.string(a.PublicKeyPEM)
	e.time(a.CreatedAt)
	return e.buf
}

func decodeActor(name string, v []byte) (LocalActor, error) {
	d := newDecoder(tagActor, v)
	a := LocalActor{Name: name}
	a.Type = d.string()
	a.KeyID = d.string()
	a.PublicKeyPEM = d.string()
	a.CreatedAt = d.time()
	return a, d.finish()
}

// PutLocalActor creates or replaces the local actor a.
func (db *DB) PutLocalActor(ctx context.Context, a LocalActor) error {
	if a.Name == "" {
		return fmt.Errorf("store: put local actor: empty name: %w", ErrInvalid)
	}
	err := db.Update(ctx, func(tx *Tx) error { return tx.PutLocalActor(a) })
	if err != nil {
		return fmt.Errorf("store: put local actor %s: %w", a.Name, err)
	}
	return nil
}

// PutLocalActor creates or replaces the local actor a inside this
// transaction, so that an actor created by a write (the Case Actor of a new
// case) exists exactly when that write commits.
func (t *Tx) PutLocalActor(a LocalActor) error {
	if a.Name == "" {
		return fmt.Errorf("put local actor: empty name: %w", ErrInvalid)
	}
	return t.bucket(bucketActors).Put([]byte(a.Name), encodeActor(a))
}

// LocalActor returns the local actor with the given name, or ErrNotFound.
func (db *DB) LocalActor(ctx context.Context, name string) (LocalActor, error) {
	var a LocalActor
	err := db.View(ctx, func(tx *ReadTx) error {
		var err error
		a, err = tx.LocalActor(name)
		return err
	})
	if err != nil {
		return LocalActor{}, fmt.Errorf("store: %w", err)
	}
	return a, nil
}

// LocalActor returns the local actor with the given name, or ErrNotFound.
func (r *ReadTx) LocalActor(name string) (LocalActor, error) {
	v := r.bucket(bucketActors).Get([]byte(name))
	if v == nil {
		return LocalActor{}, fmt.Errorf("local actor %s: %w", name, ErrNotFound)
	}
	a, err := decodeActor(name, v)
	if err != nil {
		return LocalActor{}, fmt.Errorf("local actor %s: %w", name, err)
	}
	return a, nil
}

// LocalActors returns every local actor, ordered by name.
func (db *DB) LocalActors(ctx context.Context) ([]LocalActor, error) {
	var out []LocalActor
	err := db.View(ctx, func(tx *ReadTx) error {
		out = out[:0]
		return tx.bucket(bucketActors).ForEach(func(k, v []byte) error {
			a, err := decodeActor(string(k), v)
			if err != nil {
				return fmt.Errorf("local actor %s: %w", k, err)
			}
			out = append(out, a)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: local actors: %w", err)
	}
	return out, nil
}

// DeleteLocalActor removes the local actor record with the given name, or
// returns ErrNotFound. Its activities and index entries stay.
func (db *DB) DeleteLocalActor(ctx context.Context, name string) error {
	err := db.Update(ctx, func(tx *Tx) error {
		b := tx.bucket(bucketActors)
		if b.Get([]byte(name)) == nil {
			return ErrNotFound
		}
		return b.Delete([]byte(name))
	})
	if err != nil {
		return fmt.Errorf("store: delete local actor %s: %w", name, err)
	}
	return nil
}
