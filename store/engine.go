package store

import (
	"context"
	"time"
)

// The storage engine. Everything above this file (records, indexes, the
// delivery queue, the audit chain, case buckets, sealing, the group
// committer) is written against the small model below, which is bbolt's:
// nested buckets of ordered key/value pairs, with a sequence per bucket,
// read in read-only transactions and written in read-write ones. Two
// engines implement it: bbolt (engine_bolt.go, the default: one file, one
// process) and PostgreSQL (engine_pg.go: one database shared by several
// processes). The record layout, the sealing of values and every invariant
// of the package doc are the same on both, because they are written once,
// here, over this model.
//
// The model's rules, which both engines keep:
//
//   - Keys are ordered bytewise, shorter first on a common prefix. A bucket
//     holds values and sub-buckets in one key space: a key cannot name both,
//     and a cursor meets sub-buckets in key order with a nil value.
//   - An empty value reads back as a non-nil empty slice; a missing key, or
//     a key that names a sub-bucket, reads as nil.
//   - Slices an engine returns are valid until the transaction ends (bbolt
//     returns views of its pages); callers copy what they keep.
//   - A bucket's sequence starts at 0; NextSequence increments and returns
//     it, and a rolled-back transaction leaves it as it was.
//   - A transaction sees its own writes. A read-only transaction sees one
//     committed state throughout.
//   - An engine that can fail on a read (a lost connection) records the
//     first failure in its transaction and returns it from err(); the store
//     then fails the transaction, so a failed read is never taken for a
//     missing key.

// engine is a storage engine: a set of top-level buckets read and written in
// transactions.
type engine interface {
	// view runs fn in a read-only transaction.
	view(ctx context.Context, fn func(kvTx) error) error
	// update runs fn in a read-write transaction and commits it, durably
	// unless the engine was opened without sync, when fn returns nil. A
	// transient failure of the engine (a serialization conflict) reruns
	// fn, which is why write functions are idempotent.
	update(ctx context.Context, fn func(kvTx) error) error
	// check reports what the engine finds inconsistent in its own
	// structures (bbolt: pages and free lists).
	check(ctx context.Context) []error
	// close releases the engine.
	close() error
	// describe names the database for logs and errors, without secrets.
	describe() string
}

// kvTx is one transaction of an engine.
type kvTx interface {
	// Bucket returns the top-level bucket name, or nil when it does not
	// exist.
	Bucket(name []byte) kvBucket
	// CreateBucketIfNotExists returns the top-level bucket name, creating
	// it first if needed.
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
	// DeleteBucket removes the top-level bucket name and everything in it;
	// errBucketNotFound when there is none.
	DeleteBucket(name []byte) error
	// ForEachBucket calls fn with the name of every top-level bucket, in
	// key order.
	ForEachBucket(fn func(name []byte) error) error
	// Writable reports whether this is a read-write transaction.
	Writable() bool
	// err returns the first failure of a read made in this transaction,
	// if any.
	err() error
}

// kvBucket is a bucket inside a transaction; it is valid only until the
// transaction ends.
type kvBucket interface {
	Get(key []byte) []byte
	Put(key, value []byte) error
	Delete(key []byte) error
	// Bucket returns the sub-bucket name, or nil when there is none.
	Bucket(name []byte) kvBucket
	CreateBucketIfNotExists(name []byte) (kvBucket, error)
	// DeleteBucket removes the sub-bucket name and everything in it;
	// errBucketNotFound when there is none.
	DeleteBucket(name []byte) error
	Cursor() kvCursor
	NextSequence() (uint64, error)
	Sequence() uint64
	SetSequence(seq uint64) error
	Writable() bool
	// ForEach calls fn for every key in order, with a nil value for a
	// sub-bucket.
	ForEach(fn func(k, v []byte) error) error
	// ForEachBucket calls fn with the name of every sub-bucket, in order.
	ForEachBucket(fn func(k []byte) error) error
}

// kvCursor walks a bucket's keys in order. Each move returns the key and
// value it lands on, or a nil key past either end; the value of a
// sub-bucket is nil.
type kvCursor interface {
	First() (k, v []byte)
	Last() (k, v []byte)
	Seek(seek []byte) (k, v []byte)
	Next() (k, v []byte)
	Prev() (k, v []byte)
	// Delete removes the key the cursor is on.
	Delete() error
}

// windowedCursor is a cursor that reads its keys in windows, each a round
// trip to a server (PostgreSQL): expect says how many keys the caller will
// walk, so that the first window reads them all. bbolt's cursor reads its
// pages in memory and does not implement it.
type windowedCursor interface {
	expect(n int)
}

// expectKeys tells c, where its keys are read in windows (PostgreSQL),
// that its caller will walk about n keys, so that the first window reads
// them all; elsewhere it does nothing.
func expectKeys(c kvCursor, n int) {
	if wc, ok := c.(windowedCursor); ok && n > 0 {
		wc.expect(n)
	}
}

// batchBucket is a bucket of an engine on which every read is a round trip
// to a server (PostgreSQL). Code that reads many keys in one transaction
// (the delivery queue's writes for many deliveries) reads them through
// prefetch and seekEach, which ask for all of them in one request, so that
// its cost does not grow by a round trip per key. bbolt reads its pages in
// memory and does not implement it; the functions of the same names below
// do what they say on any bucket.
type batchBucket interface {
	// prefetch reads the values of keys, in one request, into the
	// transaction, so that a Get of any of them costs nothing.
	prefetch(keys [][]byte)
	// seekEach returns, for each key of froms, the first key of the bucket
	// at or after it (what a cursor's Seek returns), or nil when there is
	// none; it sees the transaction's own writes.
	seekEach(froms [][]byte) [][]byte
}

// ReadRef names a key that a write will read, so that the group committer
// can read it ahead for a whole batch (see batchTx): a key of a top-level
// bucket, a case namespace (a sub-bucket of the cases bucket), a key in
// one, or the first key of a top-level bucket at or after a key (a seek).
// Outside the package it is made by ReadActivity, ReadCase, ReadCaseKey
// and ReadDeliveryLane.
type ReadRef struct {
	bucket []byte
	// sub, when set, is a sub-bucket of bucket: the ref names the
	// sub-bucket itself when key is nil, and key in it otherwise.
	sub []byte
	key []byte
	// seek makes the ref name the first key of bucket at or after key
	// (what a cursor's Seek, or seekEach, returns) rather than key.
	seek bool
	// whole makes the ref name every key of the sub-bucket sub, for a
	// sub-bucket that holds a few (see ReadTx.ReadAheadCaseContents).
	whole bool
}

// ReadActivity names the stored activity id (Tx.Activity reads it; an
// activity being stored reads whether its id is taken).
func ReadActivity(id string) ReadRef { return ReadRef{bucket: bucketActivities, key: []byte(id)} }

// ReadCase names the case namespace name (Tx.Case opens it), which a
// write may find absent and create.
func ReadCase(name string) ReadRef { return ReadRef{bucket: bucketCases, sub: []byte(name)} }

// ReadCaseContents names every key of the case namespace name, which a
// read that walks the namespace (CaseBucket.ForEach) reads. An engine reads
// a namespace whole only up to a bound (PostgreSQL: pgWholeMax keys); a
// larger one is walked as before.
func ReadCaseContents(name string) ReadRef {
	return ReadRef{bucket: bucketCases, sub: []byte(name), whole: true}
}

// ReadCaseKey names key in the case namespace name (CaseBucket.Get).
func ReadCaseKey(name string, key []byte) ReadRef {
	return ReadRef{bucket: bucketCases, sub: []byte(name), key: key}
}

// batchTx is a transaction of an engine on which every read is a round trip
// to a server (PostgreSQL): the group committer reads ahead, in one request,
// the keys that the requests of a batch said they will read.
type batchTx interface {
	// prefetchKeys reads the values of refs, in one request, into the
	// transaction, so that a Get of any of them costs nothing; and the
	// answers of the seeks among them, so that a seekEach from any of
	// them costs nothing either, for as long as the transaction's own
	// writes leave the answer known.
	prefetchKeys(refs []ReadRef)
}

// prefetch reads keys of b ahead of their Gets where that saves round
// trips (see batchBucket); elsewhere it does nothing.
func prefetch(b kvBucket, keys [][]byte) {
	if bb, ok := b.(batchBucket); ok && len(keys) > 1 {
		bb.prefetch(keys)
	}
}

// seekEach returns, for each key of froms, the first key of b at or after
// it, or nil; on a batchBucket in one request, or none for the seeks its
// transaction read ahead.
func seekEach(b kvBucket, froms [][]byte) [][]byte {
	if bb, ok := b.(batchBucket); ok && len(froms) > 0 {
		return bb.seekEach(froms)
	}
	out := make([][]byte, len(froms))
	for i, from := range froms {
		// A key a cursor returns is valid until the transaction ends,
		// but not necessarily after the bucket is written: keep a copy.
		k, _ := b.Cursor().Seek(from)
		out[i] = cloneBytes(k)
	}
	return out
}

// pointReader is an engine that reads one key of a top-level bucket in one
// request, without a transaction around it (PostgreSQL: one statement sees
// one committed state). See DB.get.
type pointReader interface {
	// getOne returns the value under key in the top-level bucket, or nil
	// when there is none (or key names a sub-bucket).
	getOne(ctx context.Context, bucket, key []byte) ([]byte, error)
	// getMany returns the values under keys in the top-level bucket, in
	// one statement, by key; a key with no value is absent.
	getMany(ctx context.Context, bucket []byte, keys [][]byte) (map[string][]byte, error)
}

// errBucketNotFound is the error of DeleteBucket for a missing bucket, the
// same on every engine.
var errBucketNotFound = bucketNotFoundError{}

type bucketNotFoundError struct{}

func (bucketNotFoundError) Error() string { return "bucket not found" }

// leaseEngine is an engine that keeps the leases of handed-out deliveries
// itself, shared by every process on the database, instead of the DB's
// memory (PostgreSQL). See DueDeliveries.
type leaseEngine interface {
	// claimDue leases, until exp, up to limit keys of the due index
	// (bucket deliveries_due) that sort at or before bound and hold no
	// lease that is still valid at now, in key order, skipping keys
	// another process is claiming at the same moment, and returns them
	// with their deliveries' records. The leases are committed when it
	// returns; any later write of a key drops its lease. First it brings
	// forward the end of this process's leases that shorten names (by
	// delivery id) to the time it gives, where the lease would end later
	// (see DB.shortenLease).
	claimDue(ctx context.Context, bound []byte, limit int, now, exp time.Time, shorten map[uint64]time.Time) ([]claimedDelivery, error)
}

// claimedDelivery is a key of the due index a leaseEngine leased, with the
// stored (sealed) record of its delivery, nil if there is none.
type claimedDelivery struct {
	dueKey []byte
	record []byte
}

// changeEngine is an engine on which other processes write too: it tells
// the DB of every commit, its own and theirs, so that Changed fires for
// both.
type changeEngine interface {
	listen(onChange func()) error
}

// leaderEngine is an engine shared by several processes, of which one at a
// time runs the node's timers and sweeps.
type leaderEngine interface {
	// lead blocks until this process is the leader or ctx ends, then
	// returns a context that ends when it stops being the leader (its
	// hold on the database is lost) or ctx ends, and a function that
	// gives the leadership up.
	lead(ctx context.Context) (context.Context, func(), error)
}

// countKeys returns the number of values (not sub-buckets) in b.
func countKeys(b kvBucket) uint64 {
	var n uint64
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			n++
		}
	}
	return n
}
