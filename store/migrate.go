package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/rs/zerolog"
)

// Migrations. Open brings a file written with an older schema version to
// SchemaVersion before it serves anything.
//
// Version 1 → 2 builds the delivery index from the queue. The queue may be
// large (a backlog behind a dead peer), and bbolt holds a transaction's
// changes in memory and splits pages only at commit, so the index is built
// in transactions of migrateBatch deliveries. The first one sets the
// version to 2 and records how far the build has gone under
// "delivery_index_through", and each one advances it, so that a crash in
// the middle resumes where the last commit left off, and a binary of
// version 1 (which would change the queue without the index) refuses the
// file from the start. The last one writes the dead letter count and
// removes the marker.
//
// Version 2 → 3 writes the version alone: the new place of a report's
// clocks is read beside the old one (package cases), and the version keeps
// binaries of version 2 from opening the store. Version 3 → 4 writes the
// version alone too, for the index of reports awaiting a decision, which
// package cases re-keys at start.

// migrateBatch is how many deliveries one transaction of the delivery
// index build reads.
const migrateBatch = 10000

// keyIndexThrough, while present, says the delivery index is being built
// and holds the id of the last delivery indexed.
var keyIndexThrough = []byte("delivery_index_through")

// migrateSchema migrates the file to SchemaVersion, batch deliveries per
// transaction.
func migrateSchema(ctx context.Context, eng engine, sl *sealer, batch int, log zerolog.Logger) error {
	var building bool
	if err := eng.update(ctx, func(tx kvTx) error {
		var err error
		building, err = startDeliveryIndex(tx)
		return err
	}); err != nil {
		return fmt.Errorf("migrate to schema version 2: %w", err)
	}
	if !building {
		return toVersion4(ctx, eng)
	}
	indexed, txs := 0, 0
	for done := false; !done; {
		var n int
		if err := eng.update(ctx, func(tx kvTx) error {
			var err error
			done, n, err = stepDeliveryIndex(tx, sl, batch)
			return err
		}); err != nil {
			return fmt.Errorf("migrate to schema version 2: build the delivery index: %w", err)
		}
		indexed += n
		txs++
	}
	log.Info().Int("deliveries", indexed).Int("transactions", txs).Msg("store: delivery index built (schema version 2)")
	return toVersion4(ctx, eng)
}

// toVersion4 moves a file of version 2 or 3 to version 4: neither step
// changes a record of the store's own.
func toVersion4(ctx context.Context, eng engine) error {
	return eng.update(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		if v := binary.BigEndian.Uint64(meta.Get(keySchemaVersion)); v != 2 && v != 3 {
			return nil
		}
		if err := writeCount(meta, keySchemaVersion, 4); err != nil {
			return fmt.Errorf("migrate to schema version 4: %w", err)
		}
		return nil
	})
}

// startDeliveryIndex starts the build of the delivery index of a version 1
// file, and reports whether a build is under way (started now or
// interrupted before).
func startDeliveryIndex(tx kvTx) (bool, error) {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(keyIndexThrough) != nil {
		return true, nil
	}
	if binary.BigEndian.Uint64(meta.Get(keySchemaVersion)) != 1 {
		return false, nil
	}
	// Version 1 has no index: start from empty buckets and zero counts.
	for _, name := range [][]byte{bucketDeliveriesDue, bucketDeliveryLanes} {
		if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, errBucketNotFound) {
			return false, fmt.Errorf("reset bucket %s: %w", name, err)
		}
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return false, fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	for _, key := range [][]byte{keyPendingCount, keyDeadCount, keyIndexThrough} {
		if err := writeCount(meta, key, 0); err != nil {
			return false, err
		}
	}
	if err := writeCount(meta, keySchemaVersion, 2); err != nil {
		return false, err
	}
	return true, nil
}

// stepDeliveryIndex indexes up to batch pending deliveries after the last
// one indexed, and finishes the build when none is left. It returns whether
// the build is done and how many deliveries it indexed.
func stepDeliveryIndex(tx kvTx, sl *sealer, batch int) (done bool, n int, err error) {
	rtx := &ReadTx{tx: tx, sl: sl}
	q := rtx.deliveryQueue()
	through, err := readCount(q.meta, keyIndexThrough)
	if err != nil {
		return false, 0, err
	}
	cur := q.records.Cursor()
	for k, v := cur.Seek(seqKey(through + 1)); k != nil; k, v = cur.Next() {
		if n == batch {
			if err := addCount(q.meta, keyPendingCount, n); err != nil {
				return false, 0, err
			}
			return false, n, writeCount(q.meta, keyIndexThrough, through)
		}
		d, err := decodeDelivery(k, q.records.open(k, v))
		if rtx.sealErr != nil {
			return false, 0, rtx.sealErr
		}
		if err != nil {
			return false, 0, err
		}
		// In id order, so each delivery is newer than its lane's.
		if err := q.index(&d); err != nil {
			return false, 0, err
		}
		through = d.ID
		n++
	}
	if err := addCount(q.meta, keyPendingCount, n); err != nil {
		return false, 0, err
	}
	dead := countKeys(tx.Bucket(bucketDeadLetters))
	if err := writeCount(q.meta, keyDeadCount, dead); err != nil {
		return false, 0, err
	}
	if err := q.meta.Delete(keyIndexThrough); err != nil {
		return false, 0, fmt.Errorf("meta %s: %w", keyIndexThrough, err)
	}
	return true, n, nil
}
