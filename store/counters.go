package store

import (
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// The store keeps the number of pending deliveries and of dead letters in
// the meta bucket, so that a metrics scrape or a readiness probe reads two
// keys instead of walking (and decrypting) the queues. Every write that adds
// or removes a delivery or a dead letter adjusts its count in the same
// transaction, so a count never drifts across a crash. A file written before
// the counts existed gets them from countQueues at Open, which counts keys
// only (no value is opened) in pages of countPage keys.

// Meta keys of the counts.
var (
	keyPendingCount = []byte("pending_deliveries")
	keyDeadCount    = []byte("dead_letters")
)

// countPage is how many queue keys one read transaction of countQueues
// counts, so that counting a long queue never pins one transaction for long.
const countPage = 10_000

// addCount adds delta to the count under key in the meta bucket. A count
// that would fall below zero was not kept by some writer (a binary older
// than the counts wrote to the file after they were made): it is recounted
// from bucket, in this transaction.
func (t *Tx) addCount(key, bucket []byte, delta int64) error {
	meta := t.bucket(bucketMeta)
	n := int64(decodeCount(meta.Get(key))) + delta
	if n < 0 {
		c, _ := countKeys(t.bucket(bucket).Cursor(), nil, -1)
		n = int64(c)
	}
	if err := meta.Put(key, encodeCount(uint64(n))); err != nil {
		return fmt.Errorf("count %s: %w", key, err)
	}
	return nil
}

// addPending and addDead keep the counts of the deliveries and dead-letters
// buckets; call them in the transaction that adds or removes a record.
func (t *Tx) addPending(delta int64) error {
	return t.addCount(keyPendingCount, bucketDeliveries, delta)
}
func (t *Tx) addDead(delta int64) error { return t.addCount(keyDeadCount, bucketDeadLetters, delta) }

// DeliveryCounts returns the number of pending deliveries (leased or not)
// and of dead letters, as kept by the writes that change them.
func (r *ReadTx) DeliveryCounts() (pending, dead uint64) {
	meta := r.bucket(bucketMeta)
	return decodeCount(meta.Get(keyPendingCount)), decodeCount(meta.Get(keyDeadCount))
}

// DeliveryCounts is ReadTx.DeliveryCounts in a transaction of its own.
func (db *DB) DeliveryCounts(ctx context.Context) (pending, dead uint64, err error) {
	err = db.View(ctx, func(tx *ReadTx) error {
		pending, dead = tx.DeliveryCounts()
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: delivery counts: %w", err)
	}
	return pending, dead, nil
}

func encodeCount(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// decodeCount reads a count; a missing or malformed one reads as zero.
func decodeCount(v []byte) uint64 {
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// countKeys counts the keys of a cursor's bucket after after (from the
// first when after is nil), at most limit of them (all when limit < 0), and
// returns how many it counted and the last of them (a copy); values are not
// read.
func countKeys(c *bolt.Cursor, after []byte, limit int) (n int, last []byte) {
	k, _ := c.First()
	if after != nil {
		if k, _ = c.Seek(after); k != nil && string(k) == string(after) {
			k, _ = c.Next()
		}
	}
	for ; k != nil && (limit < 0 || n < limit); k, _ = c.Next() {
		n, last = n+1, k
	}
	return n, append([]byte(nil), last...)
}

// countQueues writes the counts of pending deliveries and dead letters into
// a file that has none yet. Open calls it before the committer starts, so
// nothing else writes meanwhile: it counts each queue in read transactions
// of countPage keys, then writes both counts, after counting once more what
// lies past the last page, in one short write transaction.
func countQueues(bdb *bolt.DB) error { return countQueuesPaged(bdb, countPage) }

// countQueuesPaged is countQueues with page keys per read transaction.
func countQueuesPaged(bdb *bolt.DB, page int) error {
	missing := false
	if err := bdb.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		missing = meta.Get(keyPendingCount) == nil || meta.Get(keyDeadCount) == nil
		return nil
	}); err != nil || !missing {
		return err
	}
	type queue struct {
		bucket, key []byte
		n           uint64
		last        []byte // the last key counted
	}
	queues := []*queue{{bucket: bucketDeliveries, key: keyPendingCount}, {bucket: bucketDeadLetters, key: keyDeadCount}}
	for _, q := range queues {
		for {
			var n int
			if err := bdb.View(func(tx *bolt.Tx) error {
				var last []byte
				if n, last = countKeys(tx.Bucket(q.bucket).Cursor(), q.last, page); n > 0 {
					q.last = last
				}
				return nil
			}); err != nil {
				return fmt.Errorf("count %s: %w", q.bucket, err)
			}
			q.n += uint64(n)
			if n < page {
				break
			}
		}
	}
	return bdb.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, q := range queues {
			rest, _ := countKeys(tx.Bucket(q.bucket).Cursor(), q.last, -1)
			n := q.n + uint64(rest)
			if err := meta.Put(q.key, encodeCount(n)); err != nil {
				return fmt.Errorf("count %s: %w", q.bucket, err)
			}
		}
		return nil
	})
}

// ValuesOpened returns how many sealed values the store has decrypted since
// Open: the read work of everything the node looked at, which a metrics
// scrape must not grow with the data it summarises. It is 0 for a store
// without a data key.
func (db *DB) ValuesOpened() uint64 {
	if db.sl == nil {
		return 0
	}
	return db.sl.opened.Load()
}
