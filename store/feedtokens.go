package store

import (
	"context"
	"encoding/binary"
	"fmt"
)

// keyFeedTokenGeneration is the key, in the meta bucket, of the generation
// of the node's calendar feed token. The token itself is never stored: the
// node derives it from its API token and this generation, so rotating the
// feed token is bumping the generation, and a copy of the file reveals no
// token.
var keyFeedTokenGeneration = []byte("feed_token_generation")

// FeedTokenGeneration returns the generation of the calendar feed token:
// 0 until the first rotation.
func (r *ReadTx) FeedTokenGeneration() (uint64, error) {
	raw := r.bucket(bucketMeta).Get(keyFeedTokenGeneration)
	switch len(raw) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(raw), nil
	}
	return 0, fmt.Errorf("store: feed token generation: %d bytes, want 8: %w", len(raw), ErrSchema)
}

// RotateFeedToken bumps the generation of the calendar feed token, which
// retires the token of the generation before, and returns the new one. It
// is audited, with by (a principal's label) as who asked.
func (db *DB) RotateFeedToken(ctx context.Context, by string) (uint64, error) {
	var gen uint64
	err := db.Update(ctx, func(tx *Tx) error {
		var err error
		if gen, err = tx.RotateFeedToken(); err != nil {
			return err
		}
		_, err = tx.AppendAudit(AuditRecord{Kind: AuditAdmin, Decision: DecisionDone, Principal: by,
			Reason: fmt.Sprintf("calendar feed token rotated to generation %d", gen)})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: rotate feed token: %w", err)
	}
	return gen, nil
}

// RotateFeedToken bumps the generation of the calendar feed token in this
// transaction, which retires the token of the generation before, and
// returns the new one; the caller audits why.
func (t *Tx) RotateFeedToken() (uint64, error) {
	cur, err := t.FeedTokenGeneration()
	if err != nil {
		return 0, err
	}
	v := make([]byte, 8)
	binary.BigEndian.PutUint64(v, cur+1)
	if err := t.bucket(bucketMeta).Put(keyFeedTokenGeneration, v); err != nil {
		return 0, fmt.Errorf("store: rotate feed token: %w", err)
	}
	return cur + 1, nil
}
