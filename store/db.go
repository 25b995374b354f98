package store

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// SchemaVersion is the version of the bucket layout and record encodings this
// binary reads and writes. It is stored in the meta bucket of every file.
//
//	1  the layout without the delivery index
//	2  adds the delivery index (deliveries_due, delivery_lanes) and the
//	   counts of pending deliveries and dead letters in meta
//	3  package cases keeps a received report's running deadline clocks in
//	   the report's own case bucket; nothing is rewritten (this binary
//	   reads where version 2 kept them), but a binary of version 2 would
//	   read that record as a report record and index the clocks again, so
//	   it must not open the store any more
//	4  package cases keys its index of reports awaiting a decision by
//	   arrival; nothing is rewritten here (package cases moves the keys
//	   at start), but a binary of version 3 would keep the old index and
//	   count a report in both, so it must not open the store any more
const SchemaVersion uint64 = 4

// oldestSchemaVersion is the oldest layout Open migrates to SchemaVersion.
const oldestSchemaVersion uint64 = 1

// Defaults for zero Options fields.
const (
	// DefaultLockTimeout is how long Open waits for the file lock.
	DefaultLockTimeout = 2 * time.Second
	// DefaultLeaseTTL is how long a delivery handed out by DueDeliveries stays
	// leased to its worker.
	DefaultLeaseTTL = 2 * time.Minute
	// DefaultMaxBatch caps the number of write requests merged into one
	// transaction.
	DefaultMaxBatch = 256
	// DefaultDeferDelay bounds how long a deferred write waits for another
	// write to share its commit: about the time of one commit of its own,
	// so a lone deferred write is late by little and, under load, rides
	// along for free.
	DefaultDeferDelay = 2 * time.Millisecond
)

// Bucket names. They are part of the file format.
var (
	bucketMeta        = []byte("meta")
	bucketActors      = []byte("actors")
	bucketActivities  = []byte("activities")
	bucketInbox       = []byte("inbox")
	bucketOutbox      = []byte("outbox")
	bucketDedup       = []byte("dedup")
	bucketDedupTime   = []byte("dedup_time")
	bucketDeliveries  = []byte("deliveries")
	bucketDeadLetters = []byte("dead_letters")
	bucketRemoteKeys  = []byte("remote_keys")
	bucketCases       = []byte("cases")
	bucketAudit       = []byte("audit")
	bucketEvents      = []byte("events")
	bucketWebhooks    = []byte("webhooks")
	// bucketSessions held the dashboard's sessions before they moved to
	// the accounts bucket with the users they belong to; it is no longer
	// written, and a session in it opens nothing.
	bucketSessions = []byte("sessions")

	allBuckets = [][]byte{
		bucketMeta, bucketActors, bucketActivities, bucketInbox, bucketOutbox,
		bucketDedup, bucketDedupTime, bucketDeliveries, bucketDeadLetters,
		bucketRemoteKeys, bucketCases, bucketAudit, bucketEvents, bucketWebhooks,
		bucketDeliveriesDue, bucketDeliveryLanes, bucketFiles, bucketSessions, bucketFollows,
		bucketAccounts, bucketDamagedDeliveries, bucketDamagedNotes,
	}

	keySchemaVersion = []byte("schema_version")
)

// Options configures Open. The zero value is a valid production configuration.
type Options struct {
	// NoSync skips fsync after each commit. A crash of the machine (not just
	// of the process) can then lose or corrupt data. For tests only.
	NoSync bool
	// Logger receives store events. Activity bodies are never logged. The
	// zero Logger discards everything.
	Logger zerolog.Logger
	// Now is the clock used for timestamps the store assigns itself (queue
	// times, dedup first-seen times). Nil means time.Now.
	Now func() time.Time
	// LockTimeout is how long Open waits for the file lock held by another
	// process. Zero means DefaultLockTimeout.
	LockTimeout time.Duration
	// LeaseTTL is how long a delivery returned by DueDeliveries is withheld
	// from other callers. Zero means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// MaxBatch caps how many write requests are merged into one
	// transaction. Zero means DefaultMaxBatch.
	MaxBatch int
	// DeferDelay bounds how long UpdateDeferred's writes wait to share
	// another write's commit. Zero means DefaultDeferDelay.
	DeferDelay time.Duration
	// DataKey, when set, is the 32-byte node data key: content values
	// (activities, deliveries, dead letters, case buckets) are sealed with
	// AES-256-GCM under it (see seal.go). An unencrypted file is encrypted
	// on open. Nil opens an unencrypted file and refuses an encrypted one.
	DataKey []byte
	// PreviousDataKey is the key the file was sealed with before rotation;
	// Open re-encrypts what it sealed with DataKey.
	PreviousDataKey []byte
	// Exclusive opens a PostgreSQL database only when no other process has
	// it open, and keeps every other process from opening it until Close
	// (ErrLocked both ways), as the file lock always does for bbolt.
	// RotateDataKey opens so.
	Exclusive bool

	// keysSwapped, when set (by tests), is called by RotateDataKey once
	// the new key is in the key file and the old one in
	// data-key.previous, before the values are re-encrypted.
	keysSwapped func()
}

// DB is an open store. It is safe for concurrent use by many goroutines.
type DB struct {
	eng        engine
	path       string
	log        zerolog.Logger
	now        func() time.Time
	leaseTTL   time.Duration
	maxBatch   int
	deferDelay time.Duration
	// commitTimeout bounds each of the committer's transactions
	// (defaultCommitTimeout; tests shorten it).
	commitTimeout time.Duration

	// closeMu guards closed and the send side of reqs: senders hold it for
	// reading, Close takes it for writing before closing reqs.
	closeMu sync.RWMutex
	closed  bool
	isDown  atomic.Bool
	reqs    chan *request
	done    chan struct{} // closed when the committer has exited
	// commitCtx is the context of the committer's transactions; Close
	// cancels it when they outlast closeGrace (a database that stopped
	// answering), so that Close returns.
	commitCtx      context.Context
	cancelCommits  context.CancelFunc
	commits        atomic.Uint64  // transactions committed by the committer
	commitFailures atomic.Uint64  // transactions whose commit failed
	failing        failingCommits // the committer's episode of failures
	writesFailing  atomic.Bool    // the last commit failed (WritesFailing)

	// changed is closed (and replaced) after each commit; see Changed.
	changedMu sync.Mutex
	changed   chan struct{}

	// compOpen is the deferred completions' request that later
	// completions join, until the committer takes it (see
	// CompleteDeliveryDeferred); guarded by compMu.
	compMu   sync.Mutex
	compOpen *completionBatch

	leaseMu sync.Mutex
	leases  map[uint64]time.Time // delivery id → lease expiry
	// unrecorded counts, by delivery id, the outcomes in a row that could
	// not be written (shortenLease), until one is (releaseLease).
	unrecorded map[uint64]int
	// shortened is, on an engine that keeps the leases (PostgreSQL), the
	// shorter ends that shortenLease gave leases of this process, by
	// delivery id, to be written with the next claim.
	shortened map[uint64]time.Time
	dueScan   dueScanStats // work done by DueDeliveries; guarded by leaseMu

	sl       *sealer // nil without a data key
	resealed int     // values Open sealed or re-encrypted

	// onDead runs in the transaction of every DeadLetter and
	// RequeueDeadLetter; see OnDeadLetter.
	onDead atomic.Pointer[func(tx *Tx, d Delivery, requeued bool) error]
}

// Open opens the store file at path, creating it with mode 0600 if needed,
// creates any missing buckets and checks the schema version. It waits at most
// Options.LockTimeout for the file lock and then fails with ErrLocked. A
// file it created is removed again when it fails (a full disk), so that
// the next Open starts anew; a file that was there is never removed.
func Open(path string, opts Options) (*DB, error) {
	sl, err := newSealer(opts.DataKey, opts.PreviousDataKey)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	lockTimeout := opts.LockTimeout
	if lockTimeout <= 0 {
		lockTimeout = DefaultLockTimeout
	}
	eng, err := openBolt(path, opts.NoSync, lockTimeout)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return openEngine(context.Background(), eng, sl, opts)
}

// OpenURL opens the store named by rawURL: "bolt:PATH" for a bbolt file
// (as Open), or a "postgres://" (or "postgresql://") connection URL for a
// PostgreSQL database, whose tables it creates or migrates first. Several
// processes may open the same PostgreSQL database; see the package doc.
func OpenURL(ctx context.Context, rawURL string, opts Options) (*DB, error) {
	switch {
	case strings.HasPrefix(rawURL, "bolt:"):
		path := strings.TrimPrefix(rawURL, "bolt:")
		if path == "" {
			return nil, fmt.Errorf("store: open %q: %w: bolt: needs a file path (bolt:/var/lib/vultron/vultron.db)", rawURL, ErrInvalid)
		}
		return Open(path, opts)
	case isPostgresURL(rawURL):
		sl, err := newSealer(opts.DataKey, opts.PreviousDataKey)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", describePostgres(rawURL), err)
		}
		eng, err := openPostgres(ctx, rawURL, opts.NoSync, opts.Exclusive)
		if err != nil {
			return nil, fmt.Errorf("store: open %s: %w", describePostgres(rawURL), err)
		}
		return openEngine(ctx, eng, sl, opts)
	}
	return nil, fmt.Errorf("store: open: %w: the store URL must start with bolt: or postgres://", ErrInvalid)
}

// CheckURL reports what is wrong with a store URL without opening the
// store or connecting to anything: a bolt: URL without a path, a
// PostgreSQL URL that its driver refuses (naming the wrong setting, never
// the password), or a URL of no known kind; all are ErrInvalid. A URL it
// accepts may still fail to open.
func CheckURL(rawURL string) error {
	switch {
	case strings.HasPrefix(rawURL, "bolt:"):
		if rawURL == "bolt:" {
			return fmt.Errorf("store: %w: bolt: needs a file path (bolt:/var/lib/vultron/vultron.db)", ErrInvalid)
		}
		return nil
	case isPostgresURL(rawURL):
		if _, err := parsePostgresURL(rawURL); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
	return fmt.Errorf("store: %w: the store URL must start with bolt: or postgres://", ErrInvalid)
}

// Shared reports whether other processes may use the same database (it is
// PostgreSQL), so that timers and sweeps must run under Lead.
func (db *DB) Shared() bool {
	_, ok := db.eng.(leaderEngine)
	return ok
}

// Fenced returns a channel that is closed once the store refuses every
// write because another process rotated the data key of the PostgreSQL
// database under this one (ErrDataKeyRotated), found by a write or by a
// read of a value sealed with the new key; the process should stop
// and be started again with the new key. Nil (never closed) for bbolt,
// whose file no other process opens.
func (db *DB) Fenced() <-chan struct{} {
	if pg, ok := db.eng.(*pgEngine); ok {
		return pg.fenced
	}
	return nil
}

// Lead blocks until this process leads the processes that share the
// database, or ctx ends. It returns a context that ends when the lead is
// lost (or ctx ends), and a function that gives the lead up. The leader
// runs the node's timers and sweeps, so exactly one process does. A DB that
// no other process can open (a bbolt file, which is locked) leads at once.
func (db *DB) Lead(ctx context.Context) (context.Context, func(), error) {
	if le, ok := db.eng.(leaderEngine); ok {
		lctx, stop, err := le.lead(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("store: lead: %w", err)
		}
		return lctx, stop, nil
	}
	lctx, cancel := context.WithCancel(ctx)
	return lctx, cancel, nil
}

// openEngine prepares an opened engine for use: it creates the buckets,
// checks the schema version and the data key, migrates, and starts the
// group committer. It closes the engine when it fails, and discards it
// (a bbolt file the open created is removed) if the engine can.
func openEngine(ctx context.Context, eng engine, sl *sealer, opts Options) (*DB, error) {
	name := eng.describe()
	fail := func(err error) (*DB, error) {
		if d, ok := eng.(interface{ discard() error }); ok {
			_ = d.discard()
		} else {
			_ = eng.close()
		}
		if de := (*DamagedError)(nil); errors.As(err, &de) && de.Path == "" {
			de.Path = name // found in a record, which does not know where it is
		}
		return nil, fmt.Errorf("store: open %s: %w", name, err)
	}
	if err := eng.update(ctx, initSchema); err != nil {
		return fail(err)
	}
	var sealed int
	if err := eng.update(ctx, func(tx kvTx) error {
		var err error
		sealed, err = checkDataKey(tx, sl)
		return err
	}); err != nil {
		return fail(err)
	}
	// After checkDataKey, so that the migration reads values sealed with
	// the current key.
	if err := migrateSchema(ctx, eng, sl, migrateBatch, opts.Logger); err != nil {
		return fail(err)
	}
	if s, ok := eng.(interface{ endStart() }); ok {
		// The records are at this binary's version: the next process
		// that starts may go on (PostgreSQL, lockRecords).
		s.endStart()
	}

	db := &DB{
		eng:           eng,
		path:          name,
		log:           opts.Logger,
		now:           opts.Now,
		leaseTTL:      opts.LeaseTTL,
		maxBatch:      opts.MaxBatch,
		deferDelay:    opts.DeferDelay,
		commitTimeout: defaultCommitTimeout,
		leases:        make(map[uint64]time.Time),
		done:          make(chan struct{}),
		sl:            sl,
		resealed:      sealed,
	}
	if db.now == nil {
		db.now = time.Now
	}
	if db.leaseTTL <= 0 {
		db.leaseTTL = DefaultLeaseTTL
	}
	if db.maxBatch <= 0 {
		db.maxBatch = DefaultMaxBatch
	}
	if db.deferDelay <= 0 {
		db.deferDelay = DefaultDeferDelay
	}
	if pg, ok := eng.(*pgEngine); ok {
		// From now on each write checks that the database is still sealed
		// with this key (another process may rotate it).
		var id []byte
		if sl != nil {
			id = sl.curID[:]
		}
		if err := pg.expectDataKey(ctx, id); err != nil {
			return fail(err)
		}
		if sl != nil {
			// A read of a value sealed with a key this process does not
			// have fences it too, when the database records another key.
			check := pg.checkRotated
			sl.unknownKey.Store(&check)
		}
	}
	db.reqs = make(chan *request, db.maxBatch)
	db.commitCtx, db.cancelCommits = context.WithCancel(context.Background())
	if ce, ok := eng.(changeEngine); ok {
		// Other processes' commits wake this one's watchers too.
		if err := ce.listen(db.notifyChanged); err != nil {
			return fail(err)
		}
	}
	go db.commitLoop()

	if sealed > 0 {
		db.log.Info().Str("path", name).Int("values", sealed).Str("data_key_id", KeyID(opts.DataKey)).Msg("store: values sealed with the current data key")
	}
	ev := db.log.Info().Str("path", name).Uint64("schema_version", SchemaVersion).Bool("no_sync", opts.NoSync).Bool("encrypted", sl != nil)
	if sl != nil {
		// The key's id, never the key: operators keep it with the key, to
		// tell which key a backup needs.
		ev = ev.Str("data_key_id", KeyID(opts.DataKey))
	}
	ev.Msg("store opened")
	return db, nil
}

// initSchema checks or writes the schema version and creates every bucket.
func initSchema(tx kvTx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// A file without a meta bucket is either new or not ours.
		empty := true
		if err := tx.ForEachBucket(func(name []byte) error {
			empty = false
			return nil
		}); err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: file has buckets but no schema version; it is not a store file", ErrSchema)
		}
		var err error
		if meta, err = tx.CreateBucketIfNotExists(bucketMeta); err != nil {
			return fmt.Errorf("create meta bucket: %w", err)
		}
		v := make([]byte, 8)
		binary.BigEndian.PutUint64(v, SchemaVersion)
		if err := meta.Put(keySchemaVersion, v); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	}
	v, ok := schemaVersionOf(meta)
	if !ok {
		return fmt.Errorf("%w: malformed schema version record", ErrSchema)
	}
	switch {
	case v > SchemaVersion:
		return fmt.Errorf("%w: database schema version %d is newer than this binary supports (%d): a newer release opened it; run that release, or restore a backup made before it", ErrSchema, v, SchemaVersion)
	case v < oldestSchemaVersion:
		return fmt.Errorf("%w: database schema version %d is older than this binary can migrate (%d to %d)", ErrSchema, v, oldestSchemaVersion, SchemaVersion)
	}
	// An older version is migrated by migrateSchema once the data key is
	// checked.
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

// Path returns the file the DB was opened from, or the database it is
// connected to (without credentials).
func (db *DB) Path() string { return db.path }

// Close waits for every queued write to commit (on a database that stopped
// answering, for closeGrace: the transaction in flight is then canceled and
// its writes fail with ErrClosed), then closes the file. Calls
// made after Close has begun fail with ErrClosed. Close is safe to call more
// than once; later calls return nil.
func (db *DB) Close() error {
	db.closeMu.Lock()
	if db.closed {
		db.closeMu.Unlock()
		return nil
	}
	db.closed = true
	db.isDown.Store(true)
	close(db.reqs)
	db.closeMu.Unlock()

	// The committer ends once what was queued is committed; a transaction
	// that a database which stopped answering keeps waiting is canceled
	// after closeGrace, which fails its writes.
	if _, waitsOnServer := db.eng.(*pgEngine); !waitsOnServer {
		<-db.done // a bbolt commit waits on the disk alone, and ignores ctx
	} else {
		select {
		case <-db.done:
		case <-time.After(closeGrace):
			db.log.Warn().Str("path", db.path).Dur("waited", closeGrace).Msg("store: a commit outlasted the close; it is canceled")
			db.cancelCommits()
			<-db.done
		}
	}
	db.cancelCommits()
	if err := db.eng.close(); err != nil {
		return fmt.Errorf("store: close %s: %w", db.path, err)
	}
	db.log.Info().Str("path", db.path).Msg("store closed")
	return nil
}

// closeGrace bounds how long Close waits for the committer's transaction
// in flight before it cancels it.
const closeGrace = 5 * time.Second

// View runs fn in a read-only transaction. fn must not keep the ReadTx or any
// value it read without copying after it returns, and must not do network or
// other slow I/O: an open read transaction pins pages and grows the file.
// Every getter of ReadTx already returns copies.
func (db *DB) View(ctx context.Context, fn func(*ReadTx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if db.isDown.Load() {
		return ErrClosed
	}
	return unavailable(ctx, db.eng.view(ctx, func(t kvTx) error {
		rtx := &ReadTx{tx: t, sl: db.sl}
		err := fn(rtx)
		if rtx.sealErr != nil {
			return rtx.sealErr // a value did not open; never act on it
		}
		if e := t.err(); e != nil {
			return e // a read failed; what fn saw is not the store's state
		}
		return err
	}))
}

// checkNotMade returns, of the errors of a check, the first that says the
// check could not be made rather than what it found: the database did not
// answer, or cancelled a query on a timeout (ErrUnavailable), or ctx
// ended. Such an error is the check's failure, never the store's damage.
func checkNotMade(ctx context.Context, errs ...error) error {
	for _, err := range errs {
		if u := unavailable(ctx, err); Passing(u) || ctx.Err() != nil {
			return fmt.Errorf("the check could not be made: %w", u)
		}
	}
	return nil
}

// Check runs the engine's own consistency check (bbolt: every page of the
// file, walked first from the file itself, with bounds, so that pages that
// do not form a tree are damage rather than a check without end; see
// walkBoltPages), checks that the delivery index and counts agree with the queue
// (checkDeliveryIndex), and, in a sealed store, that every sealed value
// opens with the data key; it returns every problem it finds, joined in a
// DamagedError, or nil if the store is consistent. A check the database
// could not answer (out of reach, a query cancelled on a timeout) fails
// with that (ErrUnavailable, checkNotMade), not as damage. It reads the
// whole store.
func (db *DB) Check(ctx context.Context) error {
	if db.isDown.Load() {
		return ErrClosed
	}
	errs := db.eng.check(ctx)
	if err := checkNotMade(ctx, errs...); err != nil {
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	if len(errs) == 0 {
		err := db.View(ctx, func(rtx *ReadTx) error {
			if err := checkDeliveryIndex(rtx); err != nil {
				errs = append(errs, err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: check: %w", err)
		}
	}
	if len(errs) == 0 && db.sl != nil {
		// A flipped byte in a value no other check reads.
		if err := db.eng.view(ctx, func(tx kvTx) error { return openAll(tx, db.sl) }); err != nil {
			if nerr := checkNotMade(ctx, err); nerr != nil {
				return fmt.Errorf("store: check %s: %w", db.path, nerr)
			}
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		err := errors.Join(errs...)
		if len(errs) == 1 && errors.Is(err, ErrDamaged) {
			err = errs[0]
		} else {
			err = &DamagedError{Path: db.path, Reason: "its consistency check fails: " + err.Error(), Err: err}
		}
		return fmt.Errorf("store: check %s: %w", db.path, err)
	}
	return nil
}

// schemaVersionOf reads the schema version record of the meta bucket,
// and whether it holds one: false when it is missing or is not a version.
func schemaVersionOf(meta kvBucket) (uint64, bool) {
	raw := meta.Get(keySchemaVersion)
	if len(raw) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(raw), true
}
