package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

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

// MigrateBolt brings the bbolt store file at path to SchemaVersion as Open
// does (with opts, whose DataKey must open a sealed file), and closes it;
// it returns the version it found and the one it left. It is for
// `vultron migrate`: a store to copy must be at SchemaVersion, and a node
// need not be started to get it there. Unlike Open it creates nothing: a
// missing file, an empty one or one without a schema version is refused.
// A file a running node holds is refused with ErrLocked after
// opts.LockTimeout.
func MigrateBolt(ctx context.Context, path string, opts Options) (from, to uint64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // "no such file or directory", without "stat"
		}
		return 0, 0, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	switch {
	case fi.IsDir():
		return 0, 0, fmt.Errorf("store: migrate %s: %w: it is a directory, not a store file", path, ErrInvalid)
	case fi.Size() == 0:
		return 0, 0, fmt.Errorf("store: migrate %s: %w: it is an empty file, not a store", path, ErrSchema)
	}
	sl, err := newSealer(opts.DataKey, opts.PreviousDataKey)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	lockTimeout := opts.LockTimeout
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	eng, err := openBolt(path, opts.NoSync, lockTimeout)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	if err := eng.view(ctx, func(tx kvTx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: it has no schema version; it is not a store", ErrSchema)
		}
		var ok bool
		if from, ok = schemaVersionOf(meta); !ok {
			return fmt.Errorf("%w: malformed schema version record", ErrSchema)
		}
		return nil
	}); err != nil {
		_ = eng.close()
		return 0, 0, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	db, err := openEngine(ctx, eng, sl, opts) // migrates, or closes eng
	if err != nil {
		return from, from, err
	}
	if err := db.Close(); err != nil {
		return from, SchemaVersion, fmt.Errorf("store: migrate %s: %w", path, err)
	}
	return from, SchemaVersion, nil
}

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
