package store

import (
	"context"
	"fmt"
	"time"
)

// DeliveryCounts returns the number of pending deliveries (leased or not)
// and of dead letters, as kept by the writes that change them (see
// deliveryindex.go): reading them costs the same for any length of queue.
func (r *ReadTx) DeliveryCounts() (pending, dead uint64) {
	meta := r.bucket(bucketMeta).engineBucket
	pending, _ = readCount(meta, keyPendingCount)
	dead, _ = readCount(meta, keyDeadCount)
	return pending, dead
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

// PageWrites returns the page writes of the bbolt store's commits since
// Open (each page, or a page with its overflow pages, and each commit's
// meta page), and whether the engine writes pages of its own: PostgreSQL
// reports false. Over Commits, it is what a commit costs the disk, which
// grows with the buckets and pages a transaction touches, and is what an
// fsync waits for.
func (db *DB) PageWrites() (uint64, bool) {
	be, ok := db.eng.(*boltEngine)
	if !ok {
		return 0, false
	}
	st := be.db.Stats()
	return uint64(st.TxStats.GetWrite()), true
}

// RoundTrips returns the requests this process has sent to its database
// since Open (a pipelined batch counts once) and the statements they
// carried, and whether the engine has a server to ask at all: bbolt reads
// its pages in memory, so it reports false. On PostgreSQL every round trip
// made while the writer lock is held costs every other writer the
// network's latency; the node exports both counts so that an operator can
// see what a page view or an accepted activity costs the database.
func (db *DB) RoundTrips() (requests, statements uint64, ok bool) {
	pg, isPG := db.eng.(*pgEngine)
	if !isPG {
		return 0, 0, false
	}
	return pg.trips.n.Load(), pg.trips.stmts.Load(), true
}

// PoolStats is what a PostgreSQL store's connections and writer lock did:
// the pool's size and use now, and since Open the acquisitions of a
// connection that found none idle and how long they waited, for one
// another request freed or for a new one to be opened (the pool opens its
// connections as requests need them, and opens them again after the
// driver retires them, after an hour or half an hour idle: these count
// too, however large the pool), and the write transactions that took the
// writer lock, which the processes sharing the database take in turn, and
// how long they waited for it.
type PoolStats struct {
	MaxConns, AcquiredConns, IdleConns int32
	EmptyAcquires                      int64
	EmptyAcquireWait                   time.Duration
	WriterLocks                        uint64
	WriterLockWait                     time.Duration
}

// PoolStats returns the store's PoolStats, and whether it has a pool at
// all: bbolt reports false.
func (db *DB) PoolStats() (PoolStats, bool) {
	pg, ok := db.eng.(*pgEngine)
	if !ok {
		return PoolStats{}, false
	}
	s := pg.pool.Stat()
	return PoolStats{
		MaxConns: s.MaxConns(), AcquiredConns: s.AcquiredConns(), IdleConns: s.IdleConns(),
		EmptyAcquires: s.EmptyAcquireCount(), EmptyAcquireWait: s.EmptyAcquireWaitTime(),
		WriterLocks: pg.writerLocks.Load(), WriterLockWait: time.Duration(pg.writerLockWait.Load()),
	}, true
}

// Ready reports whether the store can serve this process: it answers a
// read, and its records are at the version this binary reads
// (SchemaVersion). A store whose records a newer release migrated since
// this process opened it (another process of a shared database) is
// ErrSchema, with a sentence that names both versions and what to do;
// one that does not answer is the read's error.
func (db *DB) Ready(ctx context.Context) error {
	var (
		v  uint64
		ok bool
	)
	err := db.View(ctx, func(tx *ReadTx) error {
		v, ok = schemaVersionOf(tx.bucket(bucketMeta).engineBucket)
		return nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("store: ready: %w", err)
	case !ok:
		return fmt.Errorf("%w: the store has no schema version record", ErrSchema)
	case v > SchemaVersion:
		return fmt.Errorf("%w: a newer release migrated the store's records to version %d, and this binary reads version %d: replace this process with that release", ErrSchema, v, SchemaVersion)
	case v < SchemaVersion:
		return fmt.Errorf("%w: the store's records are at version %d and this binary's at %d: a migration is pending; start the process again to migrate them", ErrSchema, v, SchemaVersion)
	}
	return nil
}
