package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// ReadTx is a read-only view of the store, valid only inside the function
// passed to DB.View (or, embedded in Tx, inside a write function). Every value
// it returns is a copy that stays valid after the transaction ends.
type ReadTx struct {
	tx kvTx
	sl *sealer // nil when the store has no data key
	// sealErr is the first value that failed to open; View and the
	// committer return it, so a read of a sealed value never yields garbage.
	sealErr error
}

// Tx is a read-write transaction, valid only inside the function passed to
// DB.Update or given as the apply argument of AcceptInbound and
// EnqueueOutbound. Its writes commit atomically with the rest of that call.
// It also offers every read of ReadTx.
type Tx struct {
	ReadTx
	now func() time.Time // the store's clock
	// auditPrev is the hash of the last audit record, once this
	// transaction has read or written it (auditKnown): the records a batch
	// appends chain on each other without reading the log again.
	auditPrev  []byte
	auditKnown bool
}

// bucket returns a top-level bucket that Open created. Get and Put of a
// bucket that holds content (see sealedBuckets) open and seal its values.
func (r *ReadTx) bucket(name []byte) *kv {
	b := r.tx.Bucket(name)
	if b == nil {
		if err := r.tx.err(); err != nil {
			// The engine failed (a lost connection to PostgreSQL): the
			// transaction is gone, and View or the committer returns
			// err; until fn returns, it reads nothing and writes nothing.
			return &kv{engineBucket: failedBucket{err: err}, r: r}
		}
		// Open creates every bucket, so this is a programming error or a
		// damaged file; fail loudly rather than write elsewhere.
		panic(fmt.Sprintf("store: bucket %q missing", name))
	}
	k := &kv{engineBucket: b, r: r}
	if isSealedBucket(name) {
		k.path = string(name)
	}
	return k
}

// engineBucket names the engine's bucket type so kv can embed it without
// its field hiding the Bucket method.
type engineBucket = kvBucket

// kv is a top-level bucket whose Get and Put seal and open values when path
// is set. Its other methods, and the sub-buckets it returns, are the
// engine's.
type kv struct {
	engineBucket
	r    *ReadTx
	path string // bucket path used as additional data; "" for plain buckets
}

// Get returns the value under key, opened if the bucket is sealed. A value
// that does not open reads as nil and fails the transaction.
func (b *kv) Get(key []byte) []byte {
	v := b.engineBucket.Get(key)
	if b.path == "" || v == nil {
		return v
	}
	return b.r.openValue(b.path, key, v)
}

// Put stores value under key, sealed if the bucket is sealed.
func (b *kv) Put(key, value []byte) error {
	if b.path != "" {
		sealed, err := b.r.sealValue(b.path, key, value)
		if err != nil {
			return err
		}
		value = sealed
	}
	return b.engineBucket.Put(key, value)
}

// open returns the plaintext of a value read directly from the bucket (for
// example through a cursor); like Get, a failure reads as nil and fails the
// transaction.
func (b *kv) open(key, v []byte) []byte {
	if b.path == "" || v == nil {
		return v
	}
	return b.r.openValue(b.path, key, v)
}

// openValue opens v read under key in the bucket at path. Without a data key
// the store reads values as they are (Open has refused an encrypted file).
func (r *ReadTx) openValue(path string, key, v []byte) []byte {
	if r.sl == nil {
		return v
	}
	plain, err := r.sl.open(path, key, v)
	if err != nil {
		if r.sealErr == nil {
			r.sealErr = err
			if !errors.Is(err, ErrDamaged) { // which says "store:" itself
				r.sealErr = fmt.Errorf("store: %w", err)
			}
		}
		return nil
	}
	if plain == nil {
		plain = []byte{} // an empty value is not a missing one
	}
	return plain
}

// sealValue seals v for key in the bucket at path, or returns it unchanged
// when the store has no data key.
func (r *ReadTx) sealValue(path string, key, v []byte) ([]byte, error) {
	if r.sl == nil {
		return v, nil
	}
	return r.sl.seal(path, key, v)
}

// Activity returns the stored activity with the given id, or ErrNotFound.
func (r *ReadTx) Activity(id string) (StoredActivity, error) {
	v := r.bucket(bucketActivities).Get([]byte(id))
	if v == nil {
		return StoredActivity{}, fmt.Errorf("activity %s: %w", id, ErrNotFound)
	}
	a, err := decodeActivity(id, v)
	if err != nil {
		return StoredActivity{}, fmt.Errorf("activity %s: %w", id, err)
	}
	return a, nil
}

// ReadAheadActivities reads, where each read is a round trip to a server
// (PostgreSQL), the stored activities ids in one request, so that Activity
// of any of them answers from the transaction; elsewhere it does nothing.
// A page that shows something of each of many activities (the timeline's
// senders) calls it with their ids.
func (r *ReadTx) ReadAheadActivities(ids []string) {
	keys := make([][]byte, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			keys = append(keys, []byte(id))
		}
	}
	prefetch(r.bucket(bucketActivities).engineBucket, keys)
}

// Case returns the bucket of the case with the given id, or ErrNotFound if no
// write has created it.
func (r *ReadTx) Case(id string) (*CaseBucket, error) {
	if id == "" {
		return nil, fmt.Errorf("case: empty id: %w", ErrInvalid)
	}
	b := r.bucket(bucketCases).Bucket([]byte(id))
	if b == nil {
		return nil, fmt.Errorf("case %s: %w", id, ErrNotFound)
	}
	return &CaseBucket{b: b, name: id, r: r}, nil
}

// ReadAheadCaseContents reads, where each read is a round trip to a
// server (PostgreSQL), the whole of each namespace names (a report's
// records: a few keys each) in about two requests, so that walking each
// of them (CaseBucket.ForEach, Range) asks nothing more. A namespace larger
// than the engine's bound is walked as without it. On bbolt it does
// nothing: its reads are in memory.
func (r *ReadTx) ReadAheadCaseContents(names []string) {
	bt, ok := r.tx.(batchTx)
	if !ok || len(names) < 2 {
		return
	}
	refs := make([]ReadRef, len(names))
	for i, name := range names {
		refs[i] = ReadCaseContents(name)
	}
	bt.prefetchKeys(refs)
}

// ReadAheadCases reads, where each read is a round trip to a server
// (PostgreSQL), the buckets of the cases ids and the given keys of each, in
// two requests, so that Case and a Get of those keys answer from the
// transaction; elsewhere it does nothing. A page of a list of cases calls
// it with the page's ids.
func (r *ReadTx) ReadAheadCases(ids []string, keys ...[]byte) {
	bt, ok := r.tx.(batchTx)
	if !ok || len(ids) < 2 {
		return
	}
	refs := make([]ReadRef, 0, len(ids)*(1+len(keys)))
	for _, id := range ids {
		refs = append(refs, ReadCase(id))
		for _, k := range keys {
			refs = append(refs, ReadCaseKey(id, k))
		}
	}
	bt.prefetchKeys(refs)
}

// Cases calls fn with the id of every case, in byte order of the ids. An error
// from fn stops the iteration and is returned.
func (r *ReadTx) Cases(fn func(id string) error) error {
	return r.bucket(bucketCases).ForEachBucket(func(k []byte) error {
		return fn(string(k))
	})
}

// CasesAfter calls fn with the id of every case whose id sorts after after
// ("" for the first), in byte order, until fn returns false or an error.
// It seeks to after instead of scanning, so a page of a long list costs
// only that page.
func (r *ReadTx) CasesAfter(after string, fn func(id string) (bool, error)) error {
	return r.CasesAfterN(after, 0, fn)
}

// CasesAfterN is CasesAfter for a caller that stops after about n ids (a
// page of a list): where the names are read in windows, each a round trip
// to a server (PostgreSQL), the first window holds n names instead of a
// few that grow, so that a page's names are one request.
func (r *ReadTx) CasesAfterN(after string, n int, fn func(id string) (bool, error)) error {
	c := r.bucket(bucketCases).Cursor()
	expectKeys(c, n)
	k, v := c.First()
	if after != "" {
		k, v = c.Seek([]byte(after))
		if k != nil && string(k) == after {
			k, v = c.Next()
		}
	}
	for ; k != nil; k, v = c.Next() {
		if v != nil {
			continue // a value, not a case's bucket
		}
		more, err := fn(string(k))
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// Case returns the bucket of the case with the given id, creating it if it
// does not exist yet.
func (t *Tx) Case(id string) (*CaseBucket, error) {
	if id == "" {
		return nil, fmt.Errorf("case: empty id: %w", ErrInvalid)
	}
	b, err := t.bucket(bucketCases).CreateBucketIfNotExists([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("case %s: %w", id, err)
	}
	return &CaseBucket{b: b, name: id, r: &t.ReadTx}, nil
}

// DeleteCase removes the case with the given id and everything in it, or
// returns ErrNotFound.
func (t *Tx) DeleteCase(id string) error {
	err := t.bucket(bucketCases).DeleteBucket([]byte(id))
	if errors.Is(err, errBucketNotFound) {
		return fmt.Errorf("case %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete case %s: %w", id, err)
	}
	return nil
}

// CaseBucket is a key/value namespace belonging to one case, or a named
// sub-bucket inside one. Keys are ordered bytewise. A key and a sub-bucket in
// the same CaseBucket cannot share a name. A CaseBucket obtained from a
// ReadTx rejects writes. Like its transaction, it is valid only inside the
// function that received the transaction. When the store has a data key,
// every value is sealed on Put and opened on Get, Range and RangePrefix, with
// "cases/" and the bucket's name as part of the additional data; keys stay
// plain.
type CaseBucket struct {
	b    kvBucket
	name string
	r    *ReadTx
	// root is the top-level bucket the namespace is in, for the
	// additional data: "" for the cases bucket, "accounts" for the
	// accounts' (accounts.go).
	root string
}

func (c *CaseBucket) path() string {
	if c.root != "" {
		return c.root + "/" + c.name
	}
	return "cases/" + c.name
}

// Bucket returns the named sub-bucket. In a read-write transaction it is
// created if missing; in a read-only one a missing sub-bucket is ErrNotFound.
func (c *CaseBucket) Bucket(name string) (*CaseBucket, error) {
	if name == "" {
		return nil, fmt.Errorf("case bucket %s: empty sub-bucket name: %w", c.name, ErrInvalid)
	}
	full := c.name + "/" + name
	if !c.b.Writable() {
		b := c.b.Bucket([]byte(name))
		if b == nil {
			return nil, fmt.Errorf("case bucket %s: %w", full, ErrNotFound)
		}
		return &CaseBucket{b: b, name: full, r: c.r, root: c.root}, nil
	}
	b, err := c.b.CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("case bucket %s: %w", full, err)
	}
	return &CaseBucket{b: b, name: full, r: c.r, root: c.root}, nil
}

// ReadAhead reads keys, where each read is a round trip to a server
// (PostgreSQL), in one request, so that a Get of any of them answers from
// the transaction; elsewhere it does nothing. Code that reads many keys it
// knows beforehand (a batch of deadline clocks) calls it first.
func (c *CaseBucket) ReadAhead(keys [][]byte) { prefetch(c.b, keys) }

// Get returns a copy of the value stored under key, or nil if there is none
// (or key names a sub-bucket). A value that does not open with the node's
// data keys reads as nil and fails the transaction.
func (c *CaseBucket) Get(key []byte) []byte {
	return c.value(key, c.b.Get(key))
}

// value returns a copy of the plaintext of v, stored under key.
func (c *CaseBucket) value(key, v []byte) []byte {
	if v == nil {
		return nil
	}
	if c.r == nil || c.r.sl == nil {
		return cloneBytes(v)
	}
	return c.r.openValue(c.path(), key, v) // open allocates a new slice
}

// Put stores value under key, replacing any previous value.
func (c *CaseBucket) Put(key, value []byte) error {
	if c.r != nil {
		sealed, err := c.r.sealValue(c.path(), key, value)
		if err != nil {
			return fmt.Errorf("case bucket %s: put: %w", c.name, err)
		}
		value = sealed
	}
	if err := c.b.Put(key, value); err != nil {
		return fmt.Errorf("case bucket %s: put: %w", c.name, err)
	}
	return nil
}

// Delete removes key. Deleting a missing key is not an error.
func (c *CaseBucket) Delete(key []byte) error {
	if err := c.b.Delete(key); err != nil {
		return fmt.Errorf("case bucket %s: delete: %w", c.name, err)
	}
	return nil
}

// DeleteBucket removes the named sub-bucket and everything in it; a
// missing one is not an error.
func (c *CaseBucket) DeleteBucket(name string) error {
	err := c.b.DeleteBucket([]byte(name))
	if err != nil && !errors.Is(err, errBucketNotFound) {
		return fmt.Errorf("case bucket %s: delete %s: %w", c.name, name, err)
	}
	return nil
}

// NextSequence increments and returns the bucket's sequence number, starting
// at 1.
func (c *CaseBucket) NextSequence() (uint64, error) {
	seq, err := c.b.NextSequence()
	if err != nil {
		return 0, fmt.Errorf("case bucket %s: next sequence: %w", c.name, err)
	}
	return seq, nil
}

// Sequence returns the bucket's current sequence number without changing it.
func (c *CaseBucket) Sequence() uint64 {
	return c.b.Sequence()
}

// Append stores value under the next sequence number, encoded with SeqKey, and
// returns that number. Appended entries read back in order with Range.
func (c *CaseBucket) Append(value []byte) (uint64, error) {
	seq, err := c.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := c.Put(SeqKey(seq), value); err != nil {
		return 0, err
	}
	return seq, nil
}

// Range calls fn for each key ≥ from in key order (all keys when from is nil),
// skipping sub-buckets. key and value are copies fn may keep. An error from
// fn stops the iteration and is returned. fn must not write to this bucket.
func (c *CaseBucket) Range(from []byte, fn func(key, value []byte) error) error {
	return c.scan(from, nil, fn)
}

// RangeN is Range for a caller that stops after about n keys (a page of a
// list): where the keys are read in windows, each a round trip to a
// server (PostgreSQL), the first window holds n keys instead of a few that
// grow, so that a page is one request. fn may still stop earlier or go on
// later.
func (c *CaseBucket) RangeN(from []byte, n int, fn func(key, value []byte) error) error {
	return c.scanN(from, nil, n, fn)
}

// RangePrefix calls fn for each key that starts with prefix, in key order,
// with the same rules as Range.
func (c *CaseBucket) RangePrefix(prefix []byte, fn func(key, value []byte) error) error {
	return c.scan(prefix, prefix, fn)
}

// scan calls fn for each key ≥ from (all keys when from is nil) that
// starts with prefix, in key order, skipping sub-buckets: what Range and
// RangePrefix do.
func (c *CaseBucket) scan(from, prefix []byte, fn func(key, value []byte) error) error {
	return c.scanN(from, prefix, 0, fn)
}

// scanN is scan whose cursor expects n keys (n ≤ 0: no expectation).
func (c *CaseBucket) scanN(from, prefix []byte, n int, fn func(key, value []byte) error) error {
	cur := c.b.Cursor()
	if wc, ok := cur.(windowedCursor); ok && n > 0 {
		wc.expect(n)
	}
	var k, v []byte
	if from == nil {
		k, v = cur.First()
	} else {
		k, v = cur.Seek(from)
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = cur.Next() {
		if v == nil { // sub-bucket
			continue
		}
		val := c.value(k, v)
		if val == nil && c.r != nil && c.r.sealErr != nil {
			return c.r.sealErr
		}
		if err := fn(cloneBytes(k), val); err != nil {
			return err
		}
	}
	return nil
}

// ForEach calls fn for every key/value pair, in key order; it is Range(nil, fn).
func (c *CaseBucket) ForEach(fn func(key, value []byte) error) error {
	return c.Range(nil, fn)
}

// SeqKey encodes a sequence number as the 8-byte big-endian key used by
// Append, so callers can Range from a given sequence number.
func SeqKey(seq uint64) []byte { return seqKey(seq) }

// KeySeq decodes a key written by SeqKey; ok is false if key is not 8 bytes.
func KeySeq(key []byte) (seq uint64, ok bool) { return keySeq(key) }

// failedBucket stands for a bucket of a transaction the engine failed: it
// holds nothing, and every write returns the engine's error.
type failedBucket struct{ err error }

func (b failedBucket) Get([]byte) []byte                     { return nil }
func (b failedBucket) Put(_, _ []byte) error                 { return b.err }
func (b failedBucket) Delete([]byte) error                   { return b.err }
func (b failedBucket) Bucket([]byte) kvBucket                { return nil }
func (b failedBucket) DeleteBucket([]byte) error             { return b.err }
func (b failedBucket) Cursor() kvCursor                      { return failedCursor{err: b.err} }
func (b failedBucket) NextSequence() (uint64, error)         { return 0, b.err }
func (b failedBucket) Sequence() uint64                      { return 0 }
func (b failedBucket) SetSequence(uint64) error              { return b.err }
func (b failedBucket) Writable() bool                        { return false }
func (b failedBucket) ForEach(func(k, v []byte) error) error { return b.err }
func (b failedBucket) ForEachBucket(func(k []byte) error) error {
	return b.err
}
func (b failedBucket) CreateBucketIfNotExists([]byte) (kvBucket, error) { return nil, b.err }

// failedCursor walks a failedBucket: there is nothing to find.
type failedCursor struct{ err error }

func (failedCursor) First() (k, v []byte)      { return nil, nil }
func (failedCursor) Last() (k, v []byte)       { return nil, nil }
func (failedCursor) Seek([]byte) (k, v []byte) { return nil, nil }
func (failedCursor) Next() (k, v []byte)       { return nil, nil }
func (failedCursor) Prev() (k, v []byte)       { return nil, nil }
func (c failedCursor) Delete() error           { return c.err }
