package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL engine keeps the store's buckets in two tables (see
// pgMigrations):
//
//	vultron_buckets  id, parent, name, seq: one row per bucket (parent 0 for
//	                 a top-level one), unique on (parent, name)
//	vultron_kv       bucket, key, value, lease: one row per key, primary key
//	                 (bucket, key); a sub-bucket has a row with a NULL value
//	                 in its parent, so a cursor meets it in key order as
//	                 bbolt's does
//	vultron_bucket_generation
//	                 g: one row, the number of statements that deleted
//	                 buckets, kept by a trigger (see pgEngine.sub)
//
// bytea compares bytewise (memcmp, then length), so the btree of the primary
// key gives the bucket's key order, and every cursor move is an index range
// scan. One pair of generic tables rather than a table per record keeps the
// layout, the sealing (values are the same sealed bytes as in a bbolt file)
// and every invariant of the package in one place above the engine, and
// makes `store copy` a walk over buckets.
//
// Writes. Every read-write transaction takes one advisory transaction lock
// (pgWriterLock) before it reads anything, so writes are serialized across
// every process on the database exactly as bbolt serializes them within
// one: the audit log is one hash chain and the delivery counts are single
// records, so writes need a total order anyway, and taking it first means a
// transaction never waits on a row lock held by another writer and never
// deadlocks with one. The group committer stays per process; a transaction
// holds the lock for the round trips of its batch. A read-write transaction
// runs in READ COMMITTED: after the lock every statement sees every commit
// made before it. Reads run in REPEATABLE READ READ ONLY transactions, in
// parallel with everything.
//
// Round trips. A transaction caches what it read and what it wrote, by
// bucket and key, so a Get of a key already seen costs nothing; a
// transaction finds the sub-buckets the process met before without asking
// (pgEngine.sub; a read once it has begun, engine_pg_read.go), a read sends
// BEGIN with its first statement, and a write reads the keys and sequences
// recent writes read
// (pgEngine.hot) in the round trip that takes the writer lock; puts and
// deletes are buffered and sent together, in one pipelined batch, with the
// next query that must see them (a cursor move) or with the commit, one
// statement per run of puts or of deletes (arrays of keys and values), and
// a key put twice is sent once. Where the store reads many keys in one
// transaction (the delivery queue's writes for many deliveries) it reads
// them through batchBucket: prefetch reads a set of keys in one statement
// and seekEach finds the first key at or after each of a set in one. A
// read of one key outside a transaction (pointReader: a delivery worker
// loading the activity it sends) and a claim of due deliveries are one
// statement each, without BEGIN and COMMIT around them. Every round trip
// costs both processes a wake-up, and a write transaction makes its round
// trips while holding the writer lock, so these counts, not the statements'
// own work, are what a write costs here (see the tests in
// batchreads_test.go, which count them).
//
// Leases. A delivery handed out by DueDeliveries is leased in the lease
// column of its row of the due index, claimed with FOR UPDATE SKIP LOCKED
// so that two processes polling at once never take the same delivery and
// never wait for each other. Any write of that row (the delivery leaving
// the queue, or its retry moving it) clears the lease. A lease names the
// process that holds it (lease_holder, on which that process holds a
// session advisory lock while it runs): a lease of a process that died
// ends within pgReapEvery of another process's next claim, or at once when
// the process restarts; otherwise a lease ends after Options.LeaseTTL.

// pgWriterLock is the key of the advisory lock every read-write transaction
// takes; pgLeaderLock the key of the session lock of the process that runs
// timers and sweeps; pgMigrateLock the key of the lock held while the
// schema migrates; pgStartupLock the key of the lock a process holds while
// it starts (see StartupLock); pgOpenLock the key of the lock every process
// holds, shared, for as long as it has the database open, and that an
// Options.Exclusive opening (rotate-key) holds alone. Fixed numbers
// ("vultron" w, l, m, s, o), part of the database format: every process of
// a node must use the same.
const (
	pgWriterLock  int64 = 0x76756c7472_6f6e77
	pgLeaderLock  int64 = 0x76756c7472_6f6e6c
	pgMigrateLock int64 = 0x76756c7472_6f6e6d
	pgStartupLock int64 = 0x76756c7472_6f6e73
	pgOpenLock    int64 = 0x76756c7472_6f6e6f
)

// pgChannel is the LISTEN/NOTIFY channel on which every commit is
// announced, so that every process's Changed fires on every write.
const pgChannel = "vultron_changed"

// pgLocks are the advisory lock keys and the notification channel of the
// node whose tables are in one schema. Advisory locks and channels belong
// to the database, not to a schema: two nodes kept in two schemas of one
// database (search_path in the URL) must not share them, or each would
// wait for the other's writes, each commit would wake the other's workers,
// and only one of the two would ever lead, so that the other's timers,
// replica checks and sweeps would never run. Tables in the schema public
// use the fixed keys above, as every release did, so that processes of
// two releases on one database still agree; any other schema gets keys
// derived from its name.
type pgLocks struct {
	writer, leader, migrate, startup, open int64
	channel                                string
}

// pgLocksOf returns the locks of the tables in schema.
func pgLocksOf(schema string) pgLocks {
	if schema == "public" {
		return pgLocks{writer: pgWriterLock, leader: pgLeaderLock, migrate: pgMigrateLock, startup: pgStartupLock, open: pgOpenLock, channel: pgChannel}
	}
	key := func(kind string) int64 {
		h := sha256.Sum256([]byte("vultron " + kind + " lock\x00" + schema))
		return int64(binary.BigEndian.Uint64(h[:8]))
	}
	h := sha256.Sum256([]byte("vultron channel\x00" + schema))
	return pgLocks{writer: key("writer"), leader: key("leader"), migrate: key("migrate"), startup: key("startup"), open: key("open"),
		channel: pgChannel + "_" + hex.EncodeToString(h[:8])}
}

// pgSchemaLocks returns the locks of the schema of the node's tables: the
// schema in which the connection finds them, or, before they exist, the
// one it creates them in (the first schema of its search_path that
// exists). The schema the tables are found in wins, because a schema
// without them can come first in the search_path of one process and not
// of another (one created after the tables, say, under the role's name):
// both use the same tables, so both must take the same locks.
func pgSchemaLocks(ctx context.Context, pool *pgxpool.Pool) (pgLocks, error) {
	var schema *string
	if err := pool.QueryRow(ctx, `SELECT coalesce(
		(SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE c.oid = to_regclass('vultron_schema_migrations')),
		current_schema())`).Scan(&schema); err != nil {
		return pgLocks{}, fmt.Errorf("read the schema of the tables: %w", err)
	}
	if schema == nil {
		return pgLocks{}, invalidf("no schema of the search_path exists to keep the tables in")
	}
	return pgLocksOf(*schema), nil
}

// pgMigrations are the schema versions of the tables, applied in order.
// They are written here rather than run by a migration library: there are
// few of them, each must run under the store's own advisory lock in one
// transaction with its version record, and the store's own schema version
// (the layout of records inside the buckets, SchemaVersion) migrates
// through the engine like a bbolt file.
var pgMigrations = []string{
	1: `CREATE TABLE vultron_buckets (
		id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		parent bigint NOT NULL,
		name   bytea  NOT NULL,
		seq    bigint NOT NULL DEFAULT 0,
		UNIQUE (parent, name)
	);
	CREATE TABLE vultron_kv (
		bucket bigint NOT NULL,
		key    bytea  NOT NULL,
		value  bytea,
		lease  bigint,
		PRIMARY KEY (bucket, key)
	);
	-- Sealed values are random bytes: compressing them is wasted work.
	ALTER TABLE vultron_kv ALTER COLUMN value SET STORAGE EXTERNAL;`,
	// The process that holds a lease (see pgEngine.holder), so that the
	// lease ends with the process; the index finds the few leased rows.
	2: `ALTER TABLE vultron_kv ADD COLUMN lease_holder bigint;
	CREATE INDEX vultron_kv_lease_holder ON vultron_kv (lease_holder) WHERE lease_holder IS NOT NULL;`,
	// A count of the statements that deleted buckets, so that a process
	// may keep the ids of sub-buckets between transactions (pgEngine.sub)
	// and forget them when another process deleted one. A trigger keeps
	// it, so that no deletion, by whatever binary, goes uncounted.
	3: `CREATE TABLE vultron_bucket_generation (g bigint NOT NULL);
	INSERT INTO vultron_bucket_generation VALUES (0);
	CREATE FUNCTION vultron_count_bucket_deletion() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		EXECUTE format('UPDATE %I.vultron_bucket_generation SET g = g + 1', TG_TABLE_SCHEMA);
		RETURN NULL;
	END $$;
	CREATE TRIGGER vultron_buckets_deleted AFTER DELETE ON vultron_buckets
		FOR EACH STATEMENT EXECUTE FUNCTION vultron_count_bucket_deletion();`,
}

// pgSchemaVersion is the newest version of the tables this binary knows.
var pgSchemaVersion = len(pgMigrations) - 1

// pgSubBucketCache bounds the sub-bucket ids a process keeps between write
// transactions: the indexes every write touches, and the buckets of the
// cases and reports written most recently.
const pgSubBucketCache = 4096

// pgDefaultConns is the size of a process's connection pool unless the URL
// sets pool_max_conns. A process also holds one connection to listen for
// commits and, while it leads or starts, one for its lock.
const pgDefaultConns = 16

// pgEngine is the engine of a PostgreSQL database.
type pgEngine struct {
	// passfile is the password file every new session reads its password
	// from, or "" when the password is given otherwise (pgPassfile);
	// lastPassword is the last password read from it (freshPassword).
	passfile     string
	lastPassword atomic.Pointer[string]
	// top caches the ids of top-level buckets, which Open creates and
	// nothing but a schema migration removes, so a transaction does not
	// look them up again.
	topMu sync.Mutex
	top   map[string]int64
	// sub caches the ids of sub-buckets, by parent id and name, for write
	// transactions, which take the writer lock and then read the count of
	// bucket deletions (vultron_bucket_generation): when it moved since
	// subGen, a bucket the cache names may be gone, and the cache is
	// emptied. A transaction adds what it found or created only once it
	// committed. Reads use it on the conditions engine_pg_read.go gives
	// (a snapshot older than an entry may not hold the bucket it names).
	// Bounded, least recently used first out.
	// subMu orders the emptying and the additions: a transaction adds only
	// while subGen is still the count it read.
	subMu  sync.Mutex
	sub    *lru.Cache[string, subEntry]
	subGen int64
	// subEpoch stamps what is added to sub, so that a read transaction
	// uses only entries added before it began (engine_pg_read.go).
	subEpoch atomic.Uint64
	// ids are bucket ids taken from the buckets table's sequence and not
	// used yet; noIDs is set when the role may not take them
	// (pgTx.bucketID).
	idMu  sync.Mutex
	ids   []int64
	noIDs bool
	// hot is what recent write transactions read key by key (counts,
	// sequences, the local actors' records): the next one reads it in the
	// round trip that takes the writer lock, so fresh, but without a round
	// trip of its own for each.
	hot hotReads

	pool   *pgxpool.Pool
	cfg    *pgxpool.Config
	desc   string
	noSync bool
	locks  pgLocks // of the schema the tables are in

	// holder identifies this process's leases: a random positive number
	// on which the process holds a session advisory lock for as long as it
	// runs (holderConn). A lease whose holder's lock is free belongs to a
	// process that is gone, and reapLeases ends it without waiting for its
	// expiry.
	holderMu   sync.Mutex
	holder     int64
	holderConn *pgx.Conn
	lastReap   time.Time
	// startConn holds the migration lock while the process opens the
	// store (lockRecords); nil once the open has ended (endStart).
	startConn *pgx.Conn
	// exclusive: the holder session takes the open lock alone rather than
	// shared (Options.Exclusive).
	exclusive bool
	// sealedWith is the id of the data key this process seals with, once
	// the store is open; every write transaction compares it with the id
	// the database records, and a difference (another process rotated the
	// key) fences the engine: it writes nothing more, and fenced is closed.
	sealedWith atomic.Pointer[sealedWith]
	fenceOnce  sync.Once
	fenced     chan struct{}
	// listener receives the notifications of commits; stop ends it.
	stop   context.CancelFunc
	closed chan struct{}
	// onChange is called for every commit announced on pgChannel, by any
	// process.
	onChange func()
	// trips counts the requests the pool's connections send (a pipelined
	// batch is one), so that tests can assert on the round trips a write
	// or a read costs rather than on its time.
	trips roundTrips
	// writerLocks counts the write transactions that took the writer
	// lock, and writerLockWait sums, in nanoseconds, how long they waited
	// for it, as the server measured (PoolStats).
	writerLocks    atomic.Uint64
	writerLockWait atomic.Int64
}

// roundTrips is a pgx tracer that counts round trips (n: every query, and
// every batch as one) and statements (stmts: every query, in a batch or
// not).
type roundTrips struct{ n, stmts atomic.Uint64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	r.stmts.Add(1)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	r.stmts.Add(1)
}

func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

func (e *pgEngine) topID(name []byte) (int64, bool) {
	e.topMu.Lock()
	defer e.topMu.Unlock()
	id, ok := e.top[string(name)]
	return id, ok
}

func (e *pgEngine) setTopID(name []byte, id int64) {
	e.topMu.Lock()
	defer e.topMu.Unlock()
	if e.top == nil {
		e.top = map[string]int64{}
	}
	e.top[string(name)] = id
}

func (e *pgEngine) forgetTopID(name []byte) {
	e.topMu.Lock()
	defer e.topMu.Unlock()
	delete(e.top, string(name))
}

// isPostgresURL reports whether s names a PostgreSQL database.
func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// describePostgres returns the URL without its password and query.
func describePostgres(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres database"
	}
	u.User = url.User(u.User.Username())
	if u.User.Username() == "" {
		u.User = nil
	}
	u.RawQuery = ""
	return u.String()
}

// parsePostgresURL parses a PostgreSQL connection URL as the driver does.
// The driver's error may quote the URL, password included, so a URL it
// refuses is refused here naming only the database and what is wrong with
// the URL (see pgURLProblem).
func parsePostgresURL(connString string) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		problem := pgURLProblem(connString, func(s string) error {
			_, err := pgxpool.ParseConfig(s)
			return err
		})
		return nil, invalidf("%s is not a valid PostgreSQL connection URL%s", describePostgres(connString), problem)
	}
	return cfg, nil
}

// pgURLProblem says, for a message, which part of the connection URL that
// parse refuses is wrong, or "" when it cannot tell: the first setting
// of its query that parse refuses alone, or else the first that parse
// refuses with those before it; when none does, what parse says of the
// URL without its query and password. It names a setting with its value,
// unless its name says it is a secret (it contains "pass": password,
// sslpassword, passfile), and it never shows the URL's password: parse
// is given the URL without it, and the driver's reason is shown only for a
// setting that is not a secret.
func pgURLProblem(connString string, parse func(string) error) string {
	u, err := url.Parse(connString)
	if err != nil {
		return ""
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	raw := u.RawQuery
	u.RawQuery = ""
	if err := parse(u.String()); err != nil {
		return ": " + pgParseReason(err)
	}
	type setting struct {
		pair, key, value string
		secret, encoded  bool
	}
	var settings []setting
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(p, "=")
		key, kerr := url.QueryUnescape(rawKey)
		value, verr := url.QueryUnescape(rawValue)
		settings = append(settings, setting{pair: p, key: key, value: value,
			secret: strings.Contains(strings.ToLower(key), "pass"), encoded: kerr == nil && verr == nil})
	}
	for _, cumulative := range []bool{false, true} {
		var before []string // the settings before, secrets left out
		for _, s := range settings {
			u.RawQuery = s.pair
			if cumulative {
				u.RawQuery = strings.Join(append(slices.Clip(before), s.pair), "&")
				if !s.secret {
					before = append(before, s.pair)
				}
			}
			err := parse(u.String())
			if err == nil {
				continue
			}
			switch {
			case !s.encoded:
				return ": a setting of its query is not percent-encoded correctly"
			case s.secret:
				return fmt.Sprintf(": the setting %s is not valid (its value is not shown)", s.key)
			}
			with := ""
			if cumulative {
				with = " with the settings before it"
			}
			return fmt.Sprintf(": the setting %s=%q is not valid%s (%s)", s.key, s.value, with, pgParseReason(err))
		}
	}
	return ""
}

// pgParseReason is the driver's reason for refusing a connection string,
// without the connection string it quotes.
func pgParseReason(err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "cannot parse `"); ok {
		if _, reason, ok := strings.Cut(rest, "`: "); ok {
			return reason
		}
	}
	return msg
}

// openPostgres connects to the database at connString and brings its tables
// to pgSchemaVersion.
func openPostgres(ctx context.Context, connString string, noSync, exclusive bool) (*pgEngine, error) {
	e, err := connectPostgres(ctx, connString, noSync)
	if err != nil {
		return nil, err
	}
	e.exclusive = exclusive
	if err := checkTablePrivileges(ctx, e.pool); err != nil {
		e.pool.Close()
		return nil, err
	}
	if err := migratePostgres(ctx, e.pool, e.locks); err != nil {
		e.pool.Close()
		return nil, err
	}
	if e.holder, err = newHolderID(); err != nil {
		e.pool.Close()
		return nil, fmt.Errorf("open %s: %w", e.desc, err)
	}
	if err := e.lockRecords(ctx); err != nil {
		e.pool.Close()
		return nil, err
	}
	if err := e.holdLeases(ctx); err != nil {
		e.endStart()
		e.pool.Close()
		return nil, err
	}
	// A process that restarts takes back at once what it was sending when
	// it stopped.
	if err := e.reapLeases(ctx, e.holder); err != nil {
		e.endStart()
		e.closeHolder()
		e.pool.Close()
		return nil, err
	}
	close(e.closed) // no listener yet; listen replaces it
	return e, nil
}

// lockRecords takes the migration lock on a session of its own, before
// the process has the database open (the open lock, holdLeases), and
// holds it until the open has brought the store's records to this
// binary's SchemaVersion (endStart): processes that start together
// migrate the records one after another, and each after the first finds
// nothing to do. When the records are older than this binary's, and so
// are to be migrated, and another process has the database open (it
// holds the open lock: a process of the release before, which reads the
// old layout and would go on writing it), it refuses to start, saying to
// stop them first; nothing is migrated.
func (e *pgEngine) lockRecords(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, e.connConfig())
	if err != nil {
		return fmt.Errorf("migration lock on %s: %w", e.desc, err)
	}
	if err := waitSessionLock(ctx, conn, e.locks.migrate); err != nil {
		closeConn(conn)
		return fmt.Errorf("migration lock on %s: %w", e.desc, err)
	}
	v, err := pgRecordsVersion(ctx, conn)
	if err == nil && v != 0 && v < SchemaVersion {
		var others int
		if others, err = pgLockHolders(ctx, conn, e.locks.open); err == nil && others > 0 {
			closeConn(conn)
			return &lockedError{msg: fmt.Sprintf("%d other process(es) have the database open, while its records are at version %d, which this release migrates to %d as it starts: stop every process of the node before starting this release (docs/operations.md, Upgrades)", others, v, SchemaVersion)}
		}
	}
	if err != nil {
		closeConn(conn)
		return fmt.Errorf("read the version of the records on %s: %w", e.desc, err)
	}
	e.startConn = conn
	return nil
}

// endStart releases the migration lock lockRecords took, once the open
// has migrated the records (or failed).
func (e *pgEngine) endStart() {
	conn := e.startConn
	if conn == nil {
		return
	}
	e.startConn = nil
	ctx, cancel := context.WithTimeout(context.Background(), pgCloseWait)
	_, _ = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, e.locks.migrate)
	cancel()
	closeConn(conn) // which releases the lock if the unlock did not
}

// pgRecordsVersion reads the schema version of the store's records (the
// meta bucket's schema_version, which is not sealed), 0 when there is
// none yet.
func pgRecordsVersion(ctx context.Context, conn *pgx.Conn) (uint64, error) {
	var raw []byte
	err := conn.QueryRow(ctx, `SELECT k.value FROM vultron_kv k
		JOIN vultron_buckets b ON b.id = k.bucket AND b.parent = 0 AND b.name = $1
		WHERE k.key = $2`, bucketMeta, keySchemaVersion).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("%w: malformed schema version record", ErrSchema)
	}
	return binary.BigEndian.Uint64(raw), nil
}

// pgLockHolders counts the sessions of the database that hold the
// advisory lock key (shared or not), as reapLeases reads the lock table.
func pgLockHolders(ctx context.Context, conn *pgx.Conn, key int64) (int, error) {
	var n int
	err := conn.QueryRow(ctx, `SELECT count(DISTINCT l.pid) FROM pg_locks l
		WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
		AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
		AND ((l.classid::bigint << 32) | l.objid::bigint) = $1`, key).Scan(&n)
	return n, err
}

// openPostgresReadOnly connects to the database at connString to read it
// only (the source of a copy): it creates and migrates no table, takes and
// ends no lease, and refuses a database whose tables are missing or not at
// pgSchemaVersion. Its update must not be called.
func openPostgresReadOnly(ctx context.Context, connString string) (*pgEngine, error) {
	e, err := connectPostgres(ctx, connString, false)
	if err != nil {
		return nil, err
	}
	v, err := pgVersion(ctx, e.pool)
	if err != nil {
		e.pool.Close()
		return nil, fmt.Errorf("%s: %w", e.desc, err)
	}
	if v != pgSchemaVersion {
		e.pool.Close()
		switch {
		case v == 0:
			return nil, fmt.Errorf("%w: source %s has no tables of a store (vultron_*, in the schema of its search_path); it is not a store", ErrSchema, e.desc)
		case v < pgSchemaVersion:
			return nil, fmt.Errorf("%w: the tables of source %s are at version %d, older than this binary's %d; migrate them first with vultron migrate --store and the same URL", ErrSchema, e.desc, v, pgSchemaVersion)
		default:
			return nil, fmt.Errorf("%w: the tables of source %s are at version %d, newer than this binary supports (%d)", ErrSchema, e.desc, v, pgSchemaVersion)
		}
	}
	close(e.closed) // never listens
	return e, nil
}

// connectPostgres connects to the database at connString and finds the
// locks of the schema its tables are in, without creating or changing
// anything.
func connectPostgres(ctx context.Context, connString string, noSync bool) (*pgEngine, error) {
	cfg, err := parsePostgresURL(connString)
	if err != nil {
		return nil, err
	}
	if !strings.Contains(connString, "pool_max_conns") {
		// pgx's default (the number of CPUs, at least 4) would make the
		// HTTP handlers' reads and the delivery workers wait for each other
		// on a small machine; writes take one connection at a time anyway.
		cfg.MaxConns = pgDefaultConns
	}
	if noSync {
		// For tests: a commit returns before its WAL is flushed.
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	// A process cut off from the database (a partition, a frozen VM) in the
	// middle of a transaction holds the writer lock in it for as long as
	// the server keeps its session, which with the system's TCP keepalive
	// is hours: every other process's writes wait that long. Each session
	// the process opens sets pgSessionDefaults, each where the session has
	// none: a setting of the URL (a parameter or options=-c …), PGOPTIONS,
	// ALTER ROLE or ALTER DATABASE wins. They are set once connected, not
	// sent at start-up, which PgBouncer refuses for parameters it does
	// not know.
	cfg.ConnConfig.AfterConnect = setSessionDefaults
	e := &pgEngine{cfg: cfg, desc: describePostgres(connString), noSync: noSync, closed: make(chan struct{}), subGen: -1, fenced: make(chan struct{}),
		passfile: pgPassfile(connString)}
	if e.sub, err = lru.New[string, subEntry](pgSubBucketCache); err != nil {
		return nil, fmt.Errorf("open %s: %w", e.desc, err)
	}
	// Only the pool's connections and the lease holder's, on which the
	// claims run, are counted: the listener's and the locks' (made from
	// e.cfg) poll on timers of their own.
	poolCfg := cfg.Copy()
	poolCfg.ConnConfig.Tracer = &e.trips
	poolCfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		e.freshPassword(cc)
		return nil
	}
	e.pool, err = pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e.desc, err)
	}
	if err := e.pool.Ping(ctx); err != nil {
		e.pool.Close()
		return nil, fmt.Errorf("connect to %s: %w%s", e.desc, oneLineConnectError(err), e.noPasswordHint(err))
	}
	if e.locks, err = pgSchemaLocks(ctx, e.pool); err != nil {
		e.pool.Close()
		return nil, fmt.Errorf("open %s: %w", e.desc, err)
	}
	return e, nil
}

// MigratePostgres brings the tables of the database at connString to the
// newest version this binary knows, and returns the version it found and
// the one it left. Open does the same; this is for `vultron migrate`.
func MigratePostgres(ctx context.Context, connString string) (from, to int, err error) {
	if !isPostgresURL(connString) {
		return 0, 0, fmt.Errorf("store: migrate: %w: want a postgres:// URL", ErrInvalid)
	}
	cfg, err := parsePostgresURL(connString)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate %s: %w", describePostgres(connString), err)
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return 0, 0, fmt.Errorf("store: migrate: connect to %s: %w", describePostgres(connString), oneLineConnectError(err))
	}
	from, err = pgVersion(ctx, pool)
	if err != nil {
		return 0, 0, fmt.Errorf("store: migrate %s: %w", describePostgres(connString), err)
	}
	locks, err := pgSchemaLocks(ctx, pool)
	if err != nil {
		return from, from, fmt.Errorf("store: migrate %s: %w", describePostgres(connString), err)
	}
	if err := migratePostgres(ctx, pool, locks); err != nil {
		return from, from, fmt.Errorf("store: migrate %s: %w", describePostgres(connString), err)
	}
	return from, pgSchemaVersion, nil
}

// connectError is a failed connection told in one line.
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.err }

// oneLineConnectError returns the driver's error of a failed connection
// in one line. The driver puts each attempt on a line of its own: under
// sslmode=prefer, its default, a TLS attempt and a plain one, the first of
// which fails on a server without TLS whatever the second finds. The
// attempt the server answered (a wrong password, a database that does not
// exist) is what is kept, when there is one; otherwise each different
// failure once.
func oneLineConnectError(err error) error {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	inner := ce.Unwrap()
	attempts := []error{inner}
	if j, ok := inner.(interface{ Unwrap() []error }); ok {
		attempts = j.Unwrap()
	}
	var lines []string
	for _, a := range attempts {
		line := strings.ReplaceAll(a.Error(), "\n", "; ")
		var pe *pgconn.PgError
		if errors.As(a, &pe) {
			lines = []string{line}
			break
		}
		if !slices.Contains(lines, line) {
			lines = append(lines, line)
		}
	}
	return &connectError{msg: strings.Join(lines, "; "), err: err}
}

// noPasswordHint says, after a connection refused for its password
// (SQLSTATE 28P01), that no password was offered at all, when none was:
// the driver then offers an empty one, and the server's answer reads as
// a wrong password, when the password file has no line for the session's
// host, port, database and role (a line for another database), or there
// is no file.
func (e *pgEngine) noPasswordHint(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28P01" {
		return ""
	}
	cc := e.connConfig()
	if cc.Password != "" {
		return ""
	}
	where := "the URL or PGPASSWORD"
	if e.passfile != "" {
		where = "the URL, PGPASSWORD or the password file " + e.passfile
	}
	return fmt.Sprintf(" (no password was given: %s has none for host %s, port %d, database %s and role %s)",
		where, cc.Host, cc.Port, cc.Database, cc.User)
}

// pgVersion returns the version of the tables, 0 for an empty database.
func pgVersion(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('vultron_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM vultron_schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migratePostgres applies the missing migrations, each in a transaction
// with its version record, under a session advisory lock so that processes
// starting together migrate once. The lock is asked for, not waited for in
// the server (waitSessionLock), so that a statement_timeout or
// lock_timeout of the role or the database does not fail a process that
// starts while another migrates, however long that takes.
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, locks pgLocks) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if err := waitSessionLock(ctx, conn.Conn(), locks.migrate); err != nil {
		return fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		// A lost connection releases the lock by itself.
		_, _ = conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, locks.migrate)
	}()
	// Looked for before it is created: CREATE TABLE IF NOT EXISTS needs
	// the right to create tables even when the table is there, and a role
	// that only reads and writes the tables must be able to start a node
	// whose tables are up to date (docs/operations.md).
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('vultron_schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS vultron_schema_migrations (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("migrate: %w%s", err, privilegeHint(err))
		}
	}
	var have int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM vultron_schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if have > pgSchemaVersion {
		return fmt.Errorf("%w: database tables are at version %d, newer than this binary supports (%d)", ErrSchema, have, pgSchemaVersion)
	}
	for v := have + 1; v <= pgSchemaVersion; v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO vultron_schema_migrations (version) VALUES ($1)`, v)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: tables to version %d: %w%s%s", v, err, privilegeHint(err), timeoutHint(err))
		}
	}
	return nil
}

// privilegeHint says what to do when a migration was refused for lack of
// privilege.
func privilegeHint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "42501" {
		return " (this role may not create or change the tables: run `vultron migrate` once with a role that may, then grant this one SELECT, INSERT, UPDATE, DELETE on them)"
	}
	return ""
}

// timeoutHint says what to do when a migration was stopped by a
// statement_timeout or lock_timeout of the role or the database: the
// statements of a migration change every row of a table or wait for the
// transactions of processes still running.
func timeoutHint(err error) string {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return ""
	}
	const fix = "run `vultron migrate` once with PGOPTIONS='-c statement_timeout=0 -c lock_timeout=0', at a quiet time, then start the processes"
	switch pe.Code {
	case "55P03":
		return " (a lock_timeout of the role or the database stopped it: " + fix + ")"
	case "57014":
		// Also an administrator's pg_cancel_backend, which only the
		// server's message, translated, tells apart.
		return " (a statement_timeout of the role or the database, or an administrator, cancelled it: if the timeout did, " + fix + ")"
	}
	return ""
}

// checkTablePrivileges refuses a role that may not read and write every
// table of the node that exists, naming the tables and the GRANT that
// lets it. Without it such a role would open the store and fail at its
// first use of the table it misses: a table that a migration run by
// another role added after the GRANT, say (docs/operations.md). A
// database without the tables passes: the migration creates them.
func checkTablePrivileges(ctx context.Context, pool *pgxpool.Pool) error {
	var missing []string
	var schema, role string
	rows, err := pool.Query(ctx, `SELECT c.relname, quote_ident(n.nspname), quote_ident(current_user)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.oid = (SELECT relnamespace FROM pg_class WHERE oid = to_regclass('vultron_schema_migrations'))
		  AND c.relkind IN ('r', 'p') AND c.relname LIKE 'vultron\_%'
		  AND NOT (has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
		       AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE'))
		ORDER BY c.relname`)
	if err != nil {
		return fmt.Errorf("read the privileges of the tables: %w", err)
	}
	for rows.Next() {
		var table string
		if err := rows.Scan(&table, &schema, &role); err != nil {
			rows.Close()
			return fmt.Errorf("read the privileges of the tables: %w", err)
		}
		missing = append(missing, table)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the privileges of the tables: %w", err)
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("role %s may not read and write the node's tables %s; as their owner, run GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s",
		role, strings.Join(missing, ", "), schema, role)
}

// listen starts the listener that calls onChange for every commit any
// process announces.
func (e *pgEngine) listen(onChange func()) error {
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := pgx.ConnectConfig(ctx, e.connConfig())
	if err != nil {
		cancel()
		return fmt.Errorf("listen on %s: %w", e.desc, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{e.locks.channel}.Sanitize()); err != nil {
		cancel()
		_ = conn.Close(context.Background())
		return fmt.Errorf("listen on %s: %w", e.desc, err)
	}
	e.stop, e.closed = cancel, make(chan struct{})
	go func() {
		defer close(e.closed)
		defer conn.Close(context.Background())
		for {
			n, err := conn.WaitForNotification(ctx)
			if err == nil && n.Payload == pgDataKeyRotated {
				e.checkSealedWith(ctx, conn)
			}
			if err != nil {
				if ctx.Err() == nil {
					// The connection broke: this process misses other
					// processes' commits until it reconnects, so it
					// reconnects, and wakes its watchers meanwhile so
					// that none waits on a change it cannot hear.
					onChange()
					_ = conn.Close(context.Background())
					for ctx.Err() == nil {
						c, err := pgx.ConnectConfig(ctx, e.connConfig())
						if err == nil {
							if _, err = c.Exec(ctx, "LISTEN "+pgx.Identifier{e.locks.channel}.Sanitize()); err == nil {
								conn = c
								// Its sessions were lost: a rotation of the
								// data key may have run without seeing it.
								e.checkSealedWith(ctx, c)
								break
							}
							_ = c.Close(context.Background())
						}
						select {
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					}
					continue
				}
				return
			}
			onChange()
		}
	}()
	return nil
}

func (e *pgEngine) close() error {
	e.endStart() // an open that failed
	if e.stop != nil {
		e.stop()
	}
	<-e.closed
	e.releaseLeases()
	e.closeHolder()
	// The pool closes a connection whose server does not answer (a
	// partition) only after pgx's own wait for its cancel request, 15 s:
	// the process does not wait for that longer than pgCloseWait, and
	// pgx's goroutines end by themselves.
	closed := make(chan struct{})
	go func() { e.pool.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(pgCloseWait):
	}
	return nil
}

// pgCloseWait bounds each step of a close that waits for the server (the
// release of the session's locks, the pool's connections): answered in
// milliseconds by a server that is there.
const pgCloseWait = 2 * time.Second

// pgReleaseWait bounds how long a stopping process tries to end its
// leases.
const pgReleaseWait = 5 * time.Second

// releaseLeases ends this process's own leases as it stops (the node has
// stopped its delivery workers by then): what it had claimed and not sent
// is due at once for any process, including its own restart, instead of
// after the next look for processes that are gone (reapLeases), which a
// process makes every pgReapEvery. When it fails, that look still frees
// them, since the session of the lease holder ends with the process.
func (e *pgEngine) releaseLeases() {
	e.holderMu.Lock()
	holder, live := e.holder, e.holderConn != nil
	e.holderMu.Unlock()
	if !live {
		return // never claimed anything
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgReleaseWait)
	defer cancel()
	b := &pgx.Batch{}
	b.Queue(`UPDATE vultron_kv SET lease = NULL, lease_holder = NULL WHERE lease_holder = $1`, holder)
	b.Queue(`SELECT pg_notify($1, '')`, e.locks.channel) // wake the other processes' workers
	_ = e.pool.SendBatch(ctx, b).Close()
}

// holdLeases takes, on a session of its own, the advisory lock on holder
// that says this process lives; it keeps the session until close. A
// session that was lost (the server restarted, the network failed) is
// replaced: meanwhile another process may have taken over this one's
// leases, which only makes their deliveries sent twice, and receivers drop
// duplicates by id.
func (e *pgEngine) holdLeases(ctx context.Context) error {
	e.holderMu.Lock()
	defer e.holderMu.Unlock()
	return e.holdLeasesLocked(ctx)
}

// holdLeasesLocked is holdLeases with holderMu held.
func (e *pgEngine) holdLeasesLocked(ctx context.Context) error {
	if e.holderConn != nil && !e.holderConn.IsClosed() {
		return nil
	}
	// Counted with the pool's connections: the claims run on it.
	cc := e.connConfig()
	cc.Tracer = &e.trips
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return fmt.Errorf("lease holder session on %s: %w", e.desc, err)
	}
	// Never wait for the lock: a lost session the server has not noticed
	// yet may still hold it, and a claim must not stall behind it. Such a
	// holder id is given up for a new one; the leases taken under the old
	// one end when that session does.
	for range 3 {
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, e.holder).Scan(&ok); err != nil {
			_ = conn.Close(context.Background())
			return fmt.Errorf("lease holder session on %s: %w", e.desc, err)
		}
		if ok {
			if err := e.takeOpenLock(ctx, conn); err != nil {
				_ = conn.Close(context.Background())
				return err
			}
			e.holderConn = conn
			return nil
		}
		id, err := newHolderID()
		if err != nil {
			_ = conn.Close(context.Background())
			return fmt.Errorf("lease holder session on %s: %w", e.desc, err)
		}
		e.holder = id
	}
	_ = conn.Close(context.Background())
	return fmt.Errorf("lease holder session on %s: no free holder id after three tries", e.desc)
}

// takeOpenLock takes the open lock on the holder session conn: shared, so
// that every process has it while it has the database open, or alone for
// an Exclusive opening. It does not wait: a rotation of the data key under
// way keeps a process from starting, and a process running keeps a
// rotation from starting (ErrLocked, with what to do).
func (e *pgEngine) takeOpenLock(ctx context.Context, conn *pgx.Conn) error {
	q := `SELECT pg_try_advisory_lock_shared($1)`
	if e.exclusive {
		q = `SELECT pg_try_advisory_lock($1)`
	}
	var ok bool
	if err := conn.QueryRow(ctx, q, e.locks.open).Scan(&ok); err != nil {
		return fmt.Errorf("open lock on %s: %w", e.desc, err)
	}
	switch {
	case ok:
		return nil
	case e.exclusive:
		return &lockedError{msg: "other processes have the database open: stop every process of the node first"}
	default:
		return &lockedError{msg: "the data key of the database is being rotated (vultron rotate-key): start the process once the rotation is done, with the new key"}
	}
}

// lockedError is ErrLocked with the words that fit a database.
type lockedError struct{ msg string }

func (e *lockedError) Error() string        { return e.msg }
func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// sealedWith is what a write transaction checks: the id of the data key
// this process seals with (empty: none), recorded under the key
// data_key_id of the meta bucket, whose bucket id is meta.
type sealedWith struct {
	id   []byte
	meta int64
}

// expectDataKey records the id of the data key this process seals with
// (nil: none), which every write transaction from now on checks.
func (e *pgEngine) expectDataKey(ctx context.Context, id []byte) error {
	var meta int64
	if err := e.pool.QueryRow(ctx, `SELECT id FROM vultron_buckets WHERE parent = 0 AND name = $1`, bucketMeta).Scan(&meta); err != nil {
		return fmt.Errorf("find the meta bucket on %s: %w", e.desc, err)
	}
	e.sealedWith.Store(&sealedWith{id: append([]byte{}, id...), meta: meta})
	return nil
}

// pgDataKeyRotated is the payload of the notification RotateDataKey sends
// once the database is sealed with its new key: every process that hears
// it checks the key it seals with (checkSealedWith).
const pgDataKeyRotated = "data-key-rotated"

// announceDataKey tells the processes that listen that the data key was
// rotated.
func (e *pgEngine) announceDataKey(ctx context.Context) error {
	if _, err := e.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, e.locks.channel, pgDataKeyRotated); err != nil {
		return fmt.Errorf("announce the rotation on %s: %w", e.desc, err)
	}
	return nil
}

// checkSealedWith fences the engine when the database is no longer sealed
// with the key this process seals with (see sealedWith), read on conn. A
// process runs it when it hears that a rotation ended, and when it has lost
// its sessions and has them again, so that it stops at once after a
// rotation it could not see, rather than at its next write with its reads
// failing meanwhile. A failure to read leaves the check to the next write.
func (e *pgEngine) checkSealedWith(ctx context.Context, conn *pgx.Conn) {
	want := e.sealedWith.Load()
	if want == nil {
		return
	}
	sealing, err := recordedKey(ctx, conn, want)
	if errors.Is(err, pgx.ErrNoRows) {
		sealing, err = nil, nil
	}
	if err == nil && !bytes.Equal(want.id, sealing) {
		e.fence()
	}
}

// recordedKey reads, through q, the id of the data key the database
// records in its meta bucket (want.meta); pgx.ErrNoRows when it records
// none. The write transaction reads it in its first round trip instead
// (pgReadGenerationAndKeyID).
func recordedKey(ctx context.Context, q pgQuerier, want *sealedWith) ([]byte, error) {
	var sealing []byte
	err := q.QueryRow(ctx, `SELECT value FROM vultron_kv WHERE bucket = $1 AND key = $2`, want.meta, keyDataKeyID).Scan(&sealing)
	return sealing, err
}

// checkRotated is asked when a read finds a value sealed with a key this
// process does not have: when the database records another key than the
// process's, another process rotated it, and the engine is fenced as a
// write would fence it; it returns the fenced error then, nil otherwise
// (the value alone is damaged, or the database does not answer).
func (e *pgEngine) checkRotated() error {
	want := e.sealedWith.Load()
	if want == nil {
		return nil
	}
	select {
	case <-e.fenced:
		return e.fencedError()
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgCheckRotatedWait)
	defer cancel()
	sealing, err := recordedKey(ctx, e.pool, want)
	if err != nil || bytes.Equal(want.id, sealing) {
		return nil
	}
	e.fence()
	return e.fencedError()
}

// pgCheckRotatedWait bounds checkRotated's look at the database.
const pgCheckRotatedWait = 5 * time.Second

// fence stops the engine's writes for good and closes fenced.
func (e *pgEngine) fence() {
	e.fenceOnce.Do(func() { close(e.fenced) })
}

// fencedError is what a write of a fenced engine returns.
func (e *pgEngine) fencedError() error {
	return fmt.Errorf("%w: the data key of %s was rotated by another process; start this process again with the new key", ErrDataKeyRotated, e.desc)
}

// newHolderID returns a random positive lease holder id.
func newHolderID() (int64, error) {
	var h [8]byte
	if _, err := rand.Read(h[:]); err != nil {
		return 0, fmt.Errorf("choose the lease holder id: %w", err)
	}
	return int64(binary.BigEndian.Uint64(h[:])&(1<<63-1)) | 1, nil
}

// closeHolder ends the lease holder session, and with it this process's
// claim on its leases and its open lock. The session's locks are released
// first, in a round trip the server answers: closing the connection alone
// leaves them held until the server has seen the session end, and a
// rotate-key started just after the node stopped would find the database
// still open.
func (e *pgEngine) closeHolder() {
	e.holderMu.Lock()
	defer e.holderMu.Unlock()
	if e.holderConn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), pgCloseWait)
		_, _ = e.holderConn.Exec(ctx, `SELECT pg_advisory_unlock_all()`)
		cancel()
		closeConn(e.holderConn)
		e.holderConn = nil
	}
}

// pgReapEvery is how often a process that claims deliveries looks for
// leases of processes that are gone: how long, at most, a killed process's
// deliveries wait after another process (or its own restart) is there to
// send them.
const pgReapEvery = 2 * time.Second

// reapLeases ends the leases, other than those of holder (this process),
// whose holder no longer holds its advisory lock: the process is gone,
// and so is its attempt. It reads only leased
// rows (an index holds them) and the server's lock table, and writes only
// the rows it frees. Leases of processes older than the lease holder
// column (none recorded) still end by expiring. It is one statement, with
// the lock table in its condition, because a process's claims all follow
// its lock: a row claimed before the statement began names a holder whose
// lock the statement sees, and a row claimed while it runs is checked
// again against the lock table as it is then
// (TestReapingSparesALeaseTakenWhileItRuns).
func (e *pgEngine) reapLeases(ctx context.Context, holder int64) error {
	_, err := e.pool.Exec(ctx, `
		UPDATE vultron_kv SET lease = NULL, lease_holder = NULL
		WHERE lease_holder IS NOT NULL AND lease_holder <> $1
		AND lease_holder NOT IN (
			SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l
			WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, holder)
	if err != nil {
		return fmt.Errorf("end the leases of processes that are gone on %s: %w", e.desc, err)
	}
	return nil
}

func (e *pgEngine) describe() string { return e.desc }

// pgSessionDefaults are the session settings of every connection a
// process makes (connectPostgres): a session idle in a transaction for a
// minute is ended by the server (a transaction's statements follow each
// other within milliseconds; a copy's source waits at most for a batch of
// the destination's), and the server probes a silent client after 15 s
// idle, every 5 s, 4 times. Each is set only where nothing set it (its
// source in pg_settings is the built-in default): the URL, options=-c,
// PGOPTIONS, ALTER ROLE or DATABASE, and the server's configuration file
// win.
const pgSessionDefaults = `SELECT set_config(d.name, d.value, false)
FROM (VALUES ('idle_in_transaction_session_timeout', '60s'), ('tcp_keepalives_idle', '15'),
	('tcp_keepalives_interval', '5'), ('tcp_keepalives_count', '4')) AS d(name, value)
JOIN pg_settings s ON s.name = d.name WHERE s.source = 'default'`

// setSessionDefaults sets pgSessionDefaults on a new connection, in one
// round trip.
func setSessionDefaults(ctx context.Context, conn *pgconn.PgConn) error {
	if err := conn.Exec(ctx, pgSessionDefaults).Close(); err != nil {
		return fmt.Errorf("set the session's timeouts: %w", err)
	}
	return nil
}

// pgRetries bounds how often update reruns a transaction that PostgreSQL
// aborted for a serialization conflict or a deadlock, or that failed on a
// connection the server had ended before the transaction did anything.
const pgRetries = 10

func (e *pgEngine) update(ctx context.Context, fn func(kvTx) error) error {
	for attempt := 0; ; attempt++ {
		err := e.updateOnce(ctx, fn)
		var pe *pgconn.PgError
		if attempt < pgRetries && errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01") {
			continue
		}
		var before *errBeforeWork
		if attempt < pgRetries && errors.As(err, &before) && before.lost && ctx.Err() == nil {
			// The first round trip (BEGIN, the writer lock, reads) failed
			// on a connection the server had ended (a failover, a
			// restart, a terminated session), which the pool still held:
			// nothing of fn ran, so it runs again on another connection.
			continue
		}
		return err
	}
}

// pgNoTimeoutsForTheLock and pgTimeoutsAfterTheLock surround the wait
// for the writer lock in a write transaction: a statement_timeout,
// lock_timeout or (PostgreSQL 17 and later) transaction_timeout set for
// the role or the database (a guard against runaway queries) would
// otherwise cancel the wait, which lasts as long as other processes'
// batches, and fail writes for no fault of theirs. The wait is bounded by
// the committer's own timeout instead; the transaction's statements after
// it run under the timeouts that were set, kept in vultron.* settings of
// the transaction meanwhile (a transaction_timeout put back counts from
// then). A server without transaction_timeout has no such setting, which
// current_setting's missing_ok tells, and the statements leave it alone.
const (
	pgNoTimeoutsForTheLock = `SELECT set_config('vultron.statement_timeout', current_setting('statement_timeout'), true),
		set_config('vultron.lock_timeout', current_setting('lock_timeout'), true),
		CASE WHEN current_setting('transaction_timeout', true) IS NOT NULL
			THEN set_config('vultron.transaction_timeout', current_setting('transaction_timeout'), true) END,
		set_config('statement_timeout', '0', true), set_config('lock_timeout', '0', true),
		CASE WHEN current_setting('transaction_timeout', true) IS NOT NULL
			THEN set_config('transaction_timeout', '0', true) END`
	pgTimeoutsAfterTheLock = `SELECT set_config('statement_timeout', current_setting('vultron.statement_timeout'), true),
		set_config('lock_timeout', current_setting('vultron.lock_timeout'), true),
		CASE WHEN current_setting('transaction_timeout', true) IS NOT NULL
			THEN set_config('transaction_timeout', current_setting('vultron.transaction_timeout'), true) END,
		extract(epoch FROM clock_timestamp() - now())::float8`
)

// errBeforeWork is a write transaction's failure before fn ran: nothing
// of the transaction's work reached the database. lost says that the
// connection it failed on was gone (lostConnection).
type errBeforeWork struct {
	err  error
	lost bool
}

func (e *errBeforeWork) Error() string { return e.err.Error() }
func (e *errBeforeWork) Unwrap() error { return e.err }

// lostConnection reports whether err, on conn, is the end of the
// connection rather than an answer to a statement: pgx has closed the
// connection (a failure to read or write it), or the server said that it
// ended the session or could not keep the connection (connectionEnded).
// A statement's error on a live connection, or a scan error, is not.
func lostConnection(conn *pgconn.PgConn, err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return connectionEnded(pe.Code)
	}
	return err != nil && conn.IsClosed()
}

func (e *pgEngine) updateOnce(ctx context.Context, fn func(kvTx) error) error {
	select {
	case <-e.fenced:
		return e.fencedError()
	default:
	}
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin write transaction on %s: %w", e.desc, err)
	}
	defer conn.Release()
	// BEGIN, the writer lock, the count of bucket deletions, and the keys
	// and sequences recent writes read go in one round trip. Those reads
	// come after the lock: each statement of READ COMMITTED sees what was
	// committed when it starts, and no writer can commit between them.
	ids, keys, seqs, lasts := e.hot.pick()
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	b.Queue(pgNoTimeoutsForTheLock)
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, e.locks.writer)
	b.Queue(pgTimeoutsAfterTheLock)
	want := e.sealedWith.Load()
	if want != nil {
		b.Queue(pgReadGenerationAndKeyID, want.meta, keyDataKeyID)
	} else {
		b.Queue(`SELECT g, NULL::bytea FROM vultron_bucket_generation`)
	}
	if len(keys) > 0 {
		b.Queue(pgReadKeys, ids, keys)
	}
	if len(seqs) > 0 {
		b.Queue(`SELECT id, seq FROM vultron_buckets WHERE id = ANY($1)`, seqs)
	}
	if len(lasts) > 0 {
		b.Queue(pgReadLasts, lasts)
	}
	br := conn.SendBatch(ctx, b)
	tx := br.Tx()
	defer func() {
		// A server that does not answer (a partition) is not waited for:
		// the connection is then closed, which ends the transaction.
		rctx, cancel := context.WithTimeout(context.Background(), pgCloseWait)
		_ = tx.Rollback(rctx)
		cancel()
	}()
	t := newPgTx(ctx, e, tx, true)
	var (
		gen     int64
		sealing []byte
	)
	_, err = br.Exec() // BEGIN
	// The timeouts set aside, the writer lock, the timeouts put back with
	// how long the transaction has run: its wait for the lock, since the
	// statements before it take no time.
	for range 2 {
		if err == nil {
			_, err = br.Exec()
		}
	}
	var waited float64
	if err == nil {
		err = br.QueryRow().Scan(nil, nil, nil, &waited)
	}
	if err == nil {
		e.writerLocks.Add(1)
		e.writerLockWait.Add(int64(waited * float64(time.Second)))
	}
	if err == nil {
		err = br.QueryRow().Scan(&gen, &sealing)
	}
	if err == nil && len(keys) > 0 {
		err = t.readKeys(br, ids, keys)
	}
	if err == nil && len(seqs) > 0 {
		err = t.readSeqs(br)
	}
	if err == nil && len(lasts) > 0 {
		err = t.readLasts(br, lasts)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &errBeforeWork{err: fmt.Errorf("take the writer lock on %s: %w", e.desc, err), lost: lostConnection(conn.Conn().PgConn(), err)}
	}
	if want != nil && !bytes.Equal(want.id, sealing) {
		// Under the writer lock, so that no value sealed with a key the
		// database no longer records is ever committed.
		e.fence()
		return e.fencedError()
	}
	e.subMu.Lock()
	if gen != e.subGen {
		e.sub.Purge()
		e.subGen = gen
	}
	e.subMu.Unlock()
	if err := fn(t); err != nil {
		return err
	}
	if t.failed != nil {
		return t.failed
	}
	t.notify = true
	if err := t.flush(); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) && !errors.Is(err, pgx.ErrTxCommitRollback) {
			// COMMIT was sent and no answer came back: the server may have
			// committed (and then lost the connection), or not.
			return fmt.Errorf("commit on %s: %w (%v)", e.desc, ErrCommitUnknown, err)
		}
		return fmt.Errorf("commit on %s: %w", e.desc, err)
	}
	e.keepSubBuckets(t, gen)
	e.hot.record(t.used, t.usedSeqs, t.usedLasts)
	return nil
}

// pgReadGenerationAndKeyID reads the count of bucket deletions and the id
// of the data key the database is sealed with (the meta bucket $1's
// data_key_id $2; NULL when it is not sealed).
const pgReadGenerationAndKeyID = `SELECT g, (SELECT value FROM vultron_kv WHERE bucket = $1 AND key = $2) FROM vultron_bucket_generation`

// pgReadLasts reads the last key of each of the buckets $1 (by id), and its
// value, one descent of the primary key's index each.
const pgReadLasts = `SELECT l.bucket, k.key, k.value, k.value IS NULL FROM unnest($1::bigint[]) AS l(bucket)
	CROSS JOIN LATERAL (SELECT key, value FROM vultron_kv WHERE bucket = l.bucket ORDER BY key DESC LIMIT 1) k`

// readLasts reads the rows of a pgReadLasts query, asked for the buckets
// ids, into the transaction's lasts: a bucket without a row is empty.
func (t *pgTx) readLasts(rows queryResults, ids []int64) error {
	r, err := rows.Query()
	if err != nil {
		return err
	}
	if t.lasts == nil {
		t.lasts = make(map[int64]kvRow, len(ids))
	}
	for _, id := range ids {
		t.lasts[id] = kvRow{} // empty, unless a row says otherwise
	}
	return scanKeyRows(r, func(id int64, row kvRow, _ bool) { t.lasts[id] = row })
}

// scanKeyRows calls fn with each row of r, whose columns are a bucket id, a
// key, its value and whether the key names a sub-bucket (whose value is
// nil; any other value is never nil), and closes r.
func scanKeyRows(r pgx.Rows, fn func(bucket int64, row kvRow, isBucket bool)) error {
	defer r.Close()
	for r.Next() {
		var (
			id     int64
			row    kvRow
			isNull bool
		)
		if err := r.Scan(&id, &row.k, &row.v, &isNull); err != nil {
			return err
		}
		if !isNull && row.v == nil {
			row.v = []byte{}
		}
		fn(id, row, isNull)
	}
	return r.Err()
}

// pgReadKeys reads the keys of buckets ($1) and keys ($2) given pairwise.
const pgReadKeys = `SELECT k.bucket, k.key, k.value, k.value IS NULL FROM vultron_kv k
	JOIN unnest($1::bigint[], $2::bytea[]) AS w(bucket, key) ON k.bucket = w.bucket AND k.key = w.key`

// readKeys reads the rows of a pgReadKeys query, asked for ids and keys,
// into the transaction's values: what it does not return is absent.
func (t *pgTx) readKeys(rows queryResults, ids []int64, keys [][]byte) error {
	r, err := rows.Query()
	if err != nil {
		return err
	}
	return t.fillKeys(r, ids, keys)
}

// fillKeys is readKeys on rows already asked for.
func (t *pgTx) fillKeys(r pgx.Rows, ids []int64, keys [][]byte) error {
	asked := make(map[string]bool, len(keys))
	for i := range keys {
		asked[cacheKey(ids[i], keys[i])] = true
	}
	err := scanKeyRows(r, func(id int64, row kvRow, isBucket bool) {
		ck := cacheKey(id, row.k)
		delete(asked, ck)
		t.values[ck] = cachedValue{v: row.v, present: true, isBucket: isBucket}
	})
	if err != nil {
		return err
	}
	for ck := range asked {
		t.values[ck] = cachedValue{}
	}
	return nil
}

// readSeqs reads the sequences of buckets, by id, for loadSeq.
func (t *pgTx) readSeqs(rows queryResults) error {
	r, err := rows.Query()
	if err != nil {
		return err
	}
	defer r.Close()
	for r.Next() {
		var id, seq int64
		if err := r.Scan(&id, &seq); err != nil {
			return err
		}
		t.seqs[id] = uint64(seq)
	}
	return r.Err()
}

// hotReads scores what write transactions read: each commit adds one to
// every key and sequence its transaction read and halves every score, so
// that what each of the last transactions read scores near 2 and what one
// transaction alone read (an activity's dedup record, a report's record)
// falls below pgHotMin at once and out of the map soon after.
type hotReads struct {
	mu    sync.Mutex
	keys  map[string]float64 // by cacheKey
	seqs  map[int64]float64  // by bucket id
	lasts map[int64]float64  // buckets whose last key was read, by id
}

// Bounds of hotReads: at most pgHotPick keys and as many sequences are read
// ahead, those scoring pgHotMin or more (read by the last two
// transactions); at most pgHotKeep of each are scored.
const (
	pgHotPick = 32
	pgHotMin  = 1.4
	pgHotKeep = 256
)

// pick returns the keys (as bucket ids and keys), the sequences (bucket
// ids) and the buckets whose last key (bucket ids) to read ahead.
func (h *hotReads) pick() (ids []int64, keys [][]byte, seqs, lasts []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ck, score := range h.keys {
		if score >= pgHotMin && len(keys) < pgHotPick {
			ids = append(ids, cacheBucket(ck))
			keys = append(keys, []byte(ck[8:]))
		}
	}
	for id, score := range h.seqs {
		if score >= pgHotMin && len(seqs) < pgHotPick {
			seqs = append(seqs, id)
		}
	}
	for id, score := range h.lasts {
		if score >= pgHotMin && len(lasts) < pgHotPick {
			lasts = append(lasts, id)
		}
	}
	return ids, keys, seqs, lasts
}

// record scores what a committed transaction read.
func (h *hotReads) record(keys map[string]bool, seqs, lasts map[int64]bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.keys == nil {
		h.keys, h.seqs, h.lasts = map[string]float64{}, map[int64]float64{}, map[int64]float64{}
	}
	decayScores(h.keys)
	decayScores(h.seqs)
	decayScores(h.lasts)
	for ck := range keys {
		h.keys[ck]++
	}
	for id := range seqs {
		h.seqs[id]++
	}
	for id := range lasts {
		h.lasts[id]++
	}
	trimScores(h.keys)
	trimScores(h.seqs)
	trimScores(h.lasts)
}

// decayScores halves every score and drops those that no recent transaction
// read.
func decayScores[K comparable](m map[K]float64) {
	for k, v := range m {
		if v /= 2; v < 0.1 {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
}

// trimScores keeps the pgHotKeep best scores of m.
func trimScores[K comparable](m map[K]float64) {
	if len(m) <= pgHotKeep {
		return
	}
	scores := make([]float64, 0, len(m))
	for _, v := range m {
		scores = append(scores, v)
	}
	slices.Sort(scores)
	cut := scores[len(scores)-pgHotKeep]
	for k, v := range m {
		if v < cut {
			delete(m, k)
		}
	}
}

// keepSubBuckets adds the sub-buckets a committed write transaction found
// or created to the process's cache, unless a later transaction has read
// another count of bucket deletions since this one read gen: the lock was
// released at the commit, so a deletion may have come in between.
func (e *pgEngine) keepSubBuckets(t *pgTx, gen int64) {
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.subGen != gen {
		return
	}
	stamp := e.subEpoch.Add(1)
	for ck, sub := range t.buckets {
		if sub != nil && cacheBucket(ck) != 0 {
			e.sub.Add(ck, subEntry{id: sub.id, stamp: stamp}) // a sub-bucket: top-level ones have e.top
		}
	}
}

// check verifies the tables' own structure: every sub-bucket row names a
// bucket and every bucket has its row in its parent.
func (e *pgEngine) check(ctx context.Context) []error {
	var errs []error
	queries := []struct{ what, sql string }{
		{"sub-bucket rows without a bucket", `SELECT count(*) FROM vultron_kv k WHERE k.value IS NULL
			AND NOT EXISTS (SELECT 1 FROM vultron_buckets b WHERE b.parent = k.bucket AND b.name = k.key)`},
		{"buckets without their row in their parent", `SELECT count(*) FROM vultron_buckets b
			WHERE NOT EXISTS (SELECT 1 FROM vultron_kv k WHERE k.bucket = b.parent AND k.key = b.name AND k.value IS NULL)`},
		{"keys in a bucket that does not exist", `SELECT count(*) FROM vultron_kv k WHERE k.bucket <> 0
			AND NOT EXISTS (SELECT 1 FROM vultron_buckets b WHERE b.id = k.bucket)`},
	}
	for _, q := range queries {
		var n int64
		if err := readRetrying(ctx, func() error { return e.pool.QueryRow(ctx, q.sql).Scan(&n) }); err != nil {
			errs = append(errs, fmt.Errorf("check %s: %w", q.what, err))
			continue
		}
		if n > 0 {
			errs = append(errs, fmt.Errorf("check: %d %s", n, q.what))
		}
	}
	return errs
}

// topBucketID returns the id of the top-level bucket name, from the cache
// or, the first time, from the database.
func (e *pgEngine) topBucketID(ctx context.Context, name []byte) (int64, error) {
	if id, ok := e.topID(name); ok {
		return id, nil
	}
	var id int64
	err := e.pool.QueryRow(ctx, `SELECT id FROM vultron_buckets WHERE parent = 0 AND name = $1`, name).Scan(&id)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, fmt.Errorf("bucket %s is missing", name)
		}
		return 0, fmt.Errorf("bucket %s: %w", name, err)
	}
	e.setTopID(name, id)
	return id, nil
}

// getOne implements pointReader: one statement, which sees one committed
// state as a read-only transaction would, in one round trip instead of
// three (BEGIN, the read, COMMIT).
func (e *pgEngine) getOne(ctx context.Context, bucket, key []byte) ([]byte, error) {
	id, err := e.topBucketID(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", e.desc, err)
	}
	var v []byte
	err = readRetrying(ctx, func() error {
		return e.pool.QueryRow(ctx, `SELECT value FROM vultron_kv WHERE bucket = $1 AND key = $2 AND value IS NOT NULL`, id, key).Scan(&v)
	})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, unavailable(ctx, fmt.Errorf("store: %s: get: %w", e.desc, err))
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// readRetrying runs read, a read outside a transaction, and again, up to
// pgRetries times, while it fails as readAgain says.
func readRetrying(ctx context.Context, read func() error) error {
	for attempt := 0; ; attempt++ {
		err := read()
		if attempt < pgRetries && readAgain(ctx, err) {
			continue
		}
		return err
	}
}

// readAgain reports whether a read outside a transaction failed on a
// connection the server had ended (a failover, a restart, a terminated
// session: connectionEnded), which the pool still held: the read is made
// again on another connection, as a write whose first round trip failed
// so is.
func readAgain(ctx context.Context, err error) bool {
	if ctx.Err() != nil || err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return connectionEnded(pe.Code)
	}
	// pgx found the connection closed (its own check, or the statements
	// it cleans up first): nothing of the read was answered.
	return pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed)
}

// getMany implements pointReader: one statement (per pgBatchKeys), which
// sees one committed state, without a transaction around it.
func (e *pgEngine) getMany(ctx context.Context, bucket []byte, keys [][]byte) (map[string][]byte, error) {
	id, err := e.topBucketID(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", e.desc, err)
	}
	out := make(map[string][]byte, len(keys))
	for start := 0; start < len(keys); start += pgBatchKeys {
		chunk := keys[start:min(len(keys), start+pgBatchKeys)]
		ids := make([]int64, len(chunk))
		for i := range ids {
			ids[i] = id
		}
		err := readRetrying(ctx, func() error {
			// A try's rows are kept only when the whole try succeeds:
			// two tries may see two committed states.
			got := make(map[string][]byte, len(chunk))
			rows, err := e.pool.Query(ctx, pgReadKeys, ids, chunk)
			if err == nil {
				err = scanKeyRows(rows, func(_ int64, row kvRow, isBucket bool) {
					if !isBucket {
						got[string(row.k)] = row.v
					}
				})
			}
			if err == nil {
				maps.Copy(out, got)
			}
			return err
		})
		if err != nil {
			return nil, unavailable(ctx, fmt.Errorf("store: %s: get: %w", e.desc, err))
		}
	}
	return out, nil
}

// pgClaimSQL leases, until $5 and for holder $7, up to $4 keys of the due
// index (bucket $1) at or before $2 whose lease ended by $3, skipping rows
// another claim has locked, and returns them with their records (bucket
// $6). The keys are picked in a CTE, which the server runs once (it holds
// FOR UPDATE), so a claim never takes more than $4, and every read goes
// through the primary key to the rows claimed, whatever plan the server
// keeps for the statement. With the pick as a subquery of the UPDATE's
// WHERE, a picked row that another transaction had changed after the
// statement began made the UPDATE re-check its condition, subquery
// included, and lease more keys than $4; the deliverer sent only what it
// had asked for, and the rest, with their lanes, waited out the lease (the
// fault harness on PostgreSQL: 9 such claims and 4 failed seeds in 30).
const pgClaimSQL = `
	WITH picked AS (
		SELECT key FROM vultron_kv
		WHERE bucket = $1 AND key <= $2 AND (lease IS NULL OR lease <= $3)
		ORDER BY key
		LIMIT $4
		FOR UPDATE SKIP LOCKED),
	claimed AS (
		UPDATE vultron_kv SET lease = $5, lease_holder = $7
		WHERE bucket = $1 AND key = ANY (ARRAY(SELECT key FROM picked))
		RETURNING key)
	SELECT c.key, r.value FROM claimed c
	LEFT JOIN LATERAL (SELECT value FROM vultron_kv
		WHERE bucket = $6 AND key = substring(c.key FROM 9 FOR 8)) r ON true
	ORDER BY c.key`

// claimDue implements leaseEngine in one statement, which is its own
// transaction: one round trip (and the commit's WAL flush) per claim. A
// claim whose answer is lost (its context ends while the rows come back)
// may have leased deliveries nobody sends: the process that holds them
// still runs, so they are sent once their lease expires.
func (e *pgEngine) claimDue(ctx context.Context, bound []byte, limit int, now, exp time.Time, shorten map[uint64]time.Time) ([]claimedDelivery, error) {
	due, err := e.topBucketID(ctx, bucketDeliveriesDue)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	records, err := e.topBucketID(ctx, bucketDeliveries)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	// The claim runs on the session that holds the lease holder lock: a
	// claim that succeeds was made while that lock was held, so no other
	// process takes its leases for those of a process that is gone. A
	// session the server ended (a failover, a cut) fails the claim; it is
	// replaced and the claim made again, once.
	e.holderMu.Lock()
	defer e.holderMu.Unlock()
	for try := 0; ; try++ {
		if err := e.holdLeasesLocked(ctx); err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if len(shorten) > 0 {
			if err := e.shortenLeases(ctx, due, shorten); err != nil {
				if e.holderConn.IsClosed() && try == 0 && ctx.Err() == nil {
					continue
				}
				return nil, fmt.Errorf("claim deliveries: %w", err)
			}
			shorten = nil
		}
		if time.Since(e.lastReap) >= pgReapEvery {
			e.lastReap = time.Now()
			if err := e.reapLeases(ctx, e.holder); err != nil {
				return nil, fmt.Errorf("claim deliveries: %w", err)
			}
		}
		out, err := e.claimOn(ctx, e.holderConn, due, records, bound, limit, now, exp)
		if err != nil && e.holderConn.IsClosed() && try == 0 && ctx.Err() == nil {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		return out, nil
	}
}

// pgShortenSQL brings forward the end of leases of holder $2 in the due
// index (bucket $1): of the delivery $3[i] (its 8-byte id, the due key's
// last 8 bytes) to $4[i], where the lease would end later. It reads the
// rows of the holder's leases only (the lease_holder index).
const pgShortenSQL = `
	UPDATE vultron_kv k SET lease = s.at
	FROM unnest($3::bytea[], $4::bigint[]) AS s(id, at)
	WHERE k.bucket = $1 AND k.lease_holder = $2
	AND substring(k.key FROM 9 FOR 8) = s.id AND k.lease > s.at`

// shortenLeases runs pgShortenSQL for shorten (delivery id → the lease's
// new end) on the lease holder session, which holderMu guards.
func (e *pgEngine) shortenLeases(ctx context.Context, due int64, shorten map[uint64]time.Time) error {
	ids := make([][]byte, 0, len(shorten))
	ats := make([]int64, 0, len(shorten))
	for id, at := range shorten {
		ids = append(ids, seqKey(id))
		ats = append(ats, at.UnixNano())
	}
	if _, err := e.holderConn.Exec(ctx, pgShortenSQL, due, e.holder, ids, ats); err != nil {
		return fmt.Errorf("shorten the leases of deliveries whose outcome was not written: %w", unavailable(ctx, err))
	}
	return nil
}

// claimOn runs pgClaimSQL on conn for this process's holder id.
func (e *pgEngine) claimOn(ctx context.Context, conn *pgx.Conn, due, records int64, bound []byte, limit int, now, exp time.Time) ([]claimedDelivery, error) {
	rows, err := conn.Query(ctx, pgClaimSQL,
		due, bound, now.UnixNano(), limit, exp.UnixNano(), records, e.holder)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []claimedDelivery
	for rows.Next() {
		var c claimedDelivery
		if err := rows.Scan(&c.dueKey, &c.record); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// lead implements leaderEngine: it waits for the session advisory lock
// pgLeaderLock on a connection of its own, asking for it every pgLockPoll
// (waitSessionLock says why it does not wait in the server). A process
// that dies loses its session, and with it the lock, so another one takes
// over; a process whose connection fails stops leading before another can
// start, since a new leader waits pgLeaderTakeover before it leads.
func (e *pgEngine) lead(ctx context.Context) (context.Context, func(), error) {
	conn, err := pgx.ConnectConfig(ctx, e.connConfig())
	if err != nil {
		return nil, nil, fmt.Errorf("leader election on %s: %w", e.desc, err)
	}
	// The leader's session is never idle longer than pgLeaderCheck: one
	// the server hears nothing from for pgLeaderIdle (a leader cut off by
	// the network) is ended, and its lock with it, so that another process
	// leads within seconds rather than when TCP gives up. Servers before
	// PostgreSQL 14 have no such setting; there the keepalives end it.
	_, _ = conn.Exec(ctx, fmt.Sprintf("SET idle_session_timeout = %d", pgLeaderIdle.Milliseconds()))
	if err := waitSessionLock(ctx, conn, e.locks.leader); err != nil {
		closeConn(conn)
		return nil, nil, fmt.Errorf("leader election on %s: %w", e.desc, err)
	}
	// A leader whose session the server ended (a terminated backend, a
	// failover) learns of it only at its next check: the new one waits
	// that long before it leads, so that two never lead at once. It checks
	// its own session meanwhile, which also keeps it from being idle.
	takeover := time.NewTimer(pgLeaderTakeover)
	defer takeover.Stop()
	check := time.NewTicker(pgLeaderCheck)
	defer check.Stop()
	for waiting := true; waiting; {
		select {
		case <-ctx.Done():
			closeConn(conn)
			return nil, nil, fmt.Errorf("leader election on %s: %w", e.desc, ctx.Err())
		case <-check.C:
			pctx, pcancel := context.WithTimeout(ctx, pgLeaderCheck)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				closeConn(conn)
				return nil, nil, fmt.Errorf("leader election on %s: the session that took the lock was lost: %w", e.desc, err)
			}
		case <-takeover.C:
			waiting = false
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer closeConn(conn)
		t := time.NewTicker(pgLeaderCheck)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				uctx, ucancel := context.WithTimeout(context.Background(), pgLeaderCheck)
				_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, e.locks.leader)
				ucancel()
				return
			case <-t.C:
				pctx, pcancel := context.WithTimeout(lctx, pgLeaderCheck)
				err := conn.Ping(pctx)
				pcancel()
				if err != nil && lctx.Err() == nil {
					cancel() // the session, and the lock, may be gone
					return
				}
			}
		}
	}()
	return lctx, func() { cancel(); <-done }, nil
}

// sessionLock takes the session advisory lock key on a connection of its
// own, waiting for it, and returns the function that releases it.
func (e *pgEngine) sessionLock(ctx context.Context, key int64) (func(), error) {
	conn, err := pgx.ConnectConfig(ctx, e.connConfig())
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", e.desc, err)
	}
	if err := waitSessionLock(ctx, conn, key); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("lock on %s: %w", e.desc, err)
	}
	return func() {
		// Closing the session releases the lock even if the unlock fails.
		uctx, cancel := context.WithTimeout(context.Background(), pgLeaderCheck)
		_, _ = conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key)
		cancel()
		closeConn(conn)
	}, nil
}

// closeConn closes a connection of the engine's own without waiting for a
// server that does not answer (a partition) longer than pgLeaderCheck.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), pgLeaderCheck)
	defer cancel()
	_ = conn.Close(ctx)
}

// waitSessionLock takes the session advisory lock key on conn, asking
// every pgLockPoll until it is free or ctx ends. It does not wait in
// pg_advisory_lock: a statement keeps its snapshot while it waits, and a
// snapshot held for as long as another process leads (days) would hold
// back the xmin horizon of the whole database, so that no row version
// written meanwhile could be pruned and every lookup of a key written
// often (a bucket's sequence, a count, the lease of a due delivery) would
// walk all its dead versions. pg_try_advisory_lock returns at once.
func waitSessionLock(ctx context.Context, conn *pgx.Conn, key int64) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		var ok bool
		if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
			return err
		}
		if ok {
			return nil
		}
		t.Reset(pgLockPoll)
	}
}

// pgLockPoll is how often a process waiting for a session lock (to lead,
// or to start while another starts) asks for it again: how long a lead a
// dead process held can stay free.
const pgLockPoll = 500 * time.Millisecond

// pgLeaderCheck is how often the leader checks that its session, which
// holds the leader lock, is alive.
const pgLeaderCheck = 2 * time.Second

// pgLeaderTakeover is how long a process that took the leader lock waits
// before it leads: longer than a leader whose session ended takes to find
// out (its next check, and the check's own timeout).
const pgLeaderTakeover = 2*pgLeaderCheck + pgLockPoll

// pgLeaderIdle is how long the server keeps a leader's session it hears
// nothing from (idle_session_timeout): several of the leader's checks,
// which come every pgLeaderCheck from the lock on (at most two of them
// apart when a check meets the first tick after the takeover wait).
const pgLeaderIdle = 5 * pgLeaderCheck

// pgTx is a transaction on PostgreSQL with its caches and buffered writes.
type pgTx struct {
	ctx      context.Context
	e        *pgEngine
	tx       pgQuerier
	writable bool
	// readEpoch and useSub are a read transaction's: the cache epoch read
	// before it began, and whether its snapshot may use the cache of
	// sub-bucket ids (engine_pg_read.go).
	readEpoch uint64
	useSub    bool
	failed    error
	notify    bool // announce the commit on pgChannel

	buckets map[string]*pgBucket // parent id + name → bucket; nil value: known missing
	values  map[string]cachedValue
	pending []pendingWrite
	// pendingAt is the index in pending of the last buffered write of
	// each key: a put over a buffered put replaces its value, so a key
	// written many times in a transaction (a count, once per delivery a
	// batch queues) is sent once.
	pendingAt map[string]int
	dirty     []*pgBucket // buckets whose sequence changed
	// fresh holds the buckets this transaction created: what they hold
	// is what it wrote into them, so reading a key or sub-bucket it did
	// not write asks the database nothing.
	fresh map[int64]bool
	// seqs holds the sequences read ahead, by bucket id; used and usedSeqs
	// what a write transaction read key by key and the sequences it
	// needed, for the process's scores (hotReads).
	seqs     map[int64]uint64
	used     map[string]bool
	usedSeqs map[int64]bool
	// lasts holds the last key of buckets read ahead, by bucket id (an
	// empty row: the bucket was empty), until the transaction writes in
	// the bucket; usedLasts the buckets whose last key it read, for the
	// scores. Both are made when first needed: most transactions need
	// neither.
	lasts     map[int64]kvRow
	usedLasts map[int64]bool
	// seeks holds, by bucket id and then by the key a seek started from,
	// the answers of the seeks the transaction read ahead (prefetchKeys),
	// kept right by its own writes (wrote): seekEach from one of them
	// costs nothing. It holds no more than a batch's refs name.
	seeks map[int64]map[string][]byte
	// whole holds, by bucket id, every key of the buckets read whole
	// (ReadCaseContents), in key order, until the transaction writes in
	// one: a cursor walks them in memory.
	whole map[int64][]kvRow
}

// wrote keeps what the transaction read ahead right after it put
// (present) or deleted key in bucket. The bucket's last key, and its
// contents if it was read whole, are forgotten.
// A put between a seek's start and its answer becomes the answer; a
// delete of an answer leaves the next key unknown, so that seek is
// forgotten and asked again.
func (t *pgTx) wrote(bucket int64, key []byte, present bool) {
	delete(t.lasts, bucket)
	delete(t.whole, bucket)
	for from, answer := range t.seeks[bucket] {
		switch {
		case present && bytes.Compare([]byte(from), key) <= 0 && (answer == nil || bytes.Compare(key, answer) < 0):
			t.seeks[bucket][from] = cloneBytes(key)
		case !present && answer != nil && bytes.Equal(answer, key):
			delete(t.seeks[bucket], from)
		}
	}
}

// knownSeek returns the answer of a seek from from in bucket (nil: no key
// at or after it), when the transaction knows it.
func (t *pgTx) knownSeek(bucket int64, from []byte) (key []byte, ok bool) {
	key, ok = t.seeks[bucket][string(from)]
	return key, ok
}

// rememberSeek records key, the answer of a seek from from in bucket.
func (t *pgTx) rememberSeek(bucket int64, from, key []byte) {
	if t.seeks == nil {
		t.seeks = map[int64]map[string][]byte{}
	}
	m := t.seeks[bucket]
	if m == nil {
		m = map[string][]byte{}
		t.seeks[bucket] = m
	}
	m[string(from)] = cloneBytes(key)
}

type cachedValue struct {
	v        []byte
	present  bool
	isBucket bool
}

type pendingWrite struct {
	bucket int64
	key    []byte
	value  []byte // nil: delete
	// create, when not 0, makes this write the creation of the
	// sub-bucket key of bucket with that id (bucketIDs gave it).
	create int64
}

// kind is the kind of statement a write goes into: 'p'ut, 'd'elete or
// 'c'reate.
func (w pendingWrite) kind() byte {
	switch {
	case w.create != 0:
		return 'c'
	case w.value == nil:
		return 'd'
	}
	return 'p'
}

func newPgTx(ctx context.Context, e *pgEngine, tx pgQuerier, writable bool) *pgTx {
	return &pgTx{ctx: ctx, e: e, tx: tx, writable: writable,
		buckets: map[string]*pgBucket{}, values: map[string]cachedValue{}, pendingAt: map[string]int{}, fresh: map[int64]bool{},
		seqs: map[int64]uint64{}, used: map[string]bool{}, usedSeqs: map[int64]bool{}}
}

var errTxNotWritable = errors.New("store: write in a read-only transaction")

func (t *pgTx) err() error { return t.failed }

// fail records the first failure of the transaction.
func (t *pgTx) fail(err error) {
	if t.failed == nil {
		t.failed = fmt.Errorf("store: %s: %w", t.e.desc, err)
	}
}

func (t *pgTx) Writable() bool { return t.writable }

func (t *pgTx) root() *pgBucket { return &pgBucket{t: t, id: 0} }

func (t *pgTx) Bucket(name []byte) kvBucket {
	return t.root().Bucket(name)
}

func (t *pgTx) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	return t.root().CreateBucketIfNotExists(name)
}

func (t *pgTx) DeleteBucket(name []byte) error { return t.root().DeleteBucket(name) }

func (t *pgTx) ForEachBucket(fn func(name []byte) error) error {
	return t.root().ForEachBucket(fn)
}

func cacheKey(bucket int64, key []byte) string {
	b := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(b, uint64(bucket))
	return string(append(b, key...))
}

// cacheBucket returns the bucket id of a cacheKey.
func cacheBucket(ck string) int64 { return int64(binary.BigEndian.Uint64([]byte(ck[:8]))) }

// flush sends the buffered writes and sequences (and, at commit, the
// notification) in one batch, followed by query when it is not nil, whose
// rows it returns. The caller must close them.
func (t *pgTx) flushWith(query string, args ...any) (pgx.Rows, error) {
	if len(t.pending) == 0 && len(t.dirty) == 0 && !t.notify {
		if query == "" {
			return nil, nil
		}
		return t.tx.Query(t.ctx, query, args...)
	}
	b := &pgx.Batch{}
	// The writes go in runs of one kind (puts, or deletes) over distinct
	// keys, in order, one statement per run: a key written twice, or a put
	// after a delete, starts a new run, so that the database sees them in
	// the order they were made. A transaction that queues N deliveries
	// sends three statements, not 3N.
	type check struct {
		keys    int    // the puts or creates of the run, each of which must land
		first   []byte // the run's first key, for the error
		creates bool
	}
	var puts []check // per run; keys 0 for a run of deletes
	for start := 0; start < len(t.pending); {
		kind := t.pending[start].kind()
		del := kind == 'd'
		end := start
		seen := make(map[string]bool)
		for end < len(t.pending) && t.pending[end].kind() == kind && end-start < pgBatchKeys {
			ck := cacheKey(t.pending[end].bucket, t.pending[end].key)
			if seen[ck] {
				break
			}
			seen[ck] = true
			end++
		}
		run := t.pending[start:end]
		start = end
		if kind == 'c' {
			// Sub-buckets this transaction knows are absent, with ids it
			// took from the table's sequence: each gets its row in its
			// parent (which fails when the name holds a value) and its
			// row in the buckets table, in one statement.
			parents := make([]int64, len(run))
			names := make([][]byte, len(run))
			ids := make([]int64, len(run))
			for i, w := range run {
				parents[i], names[i], ids[i] = w.bucket, w.key, w.create
			}
			b.Queue(pgCreateBuckets, parents, names, ids)
			puts = append(puts, check{keys: len(run), first: run[0].key, creates: true})
			continue
		}
		if len(run) == 1 {
			w := run[0]
			if del {
				b.Queue(`DELETE FROM vultron_kv WHERE bucket = $1 AND key = $2 AND value IS NOT NULL`, w.bucket, w.key)
				puts = append(puts, check{})
				continue
			}
			b.Queue(`INSERT INTO vultron_kv (bucket, key, value) VALUES ($1, $2, $3)
				ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, lease = NULL, lease_holder = NULL
				WHERE vultron_kv.value IS NOT NULL`, w.bucket, w.key, w.value)
			puts = append(puts, check{keys: 1, first: w.key})
			continue
		}
		ids := make([]int64, len(run))
		keys := make([][]byte, len(run))
		values := make([][]byte, len(run))
		for i, w := range run {
			ids[i], keys[i], values[i] = w.bucket, w.key, w.value
		}
		if del {
			b.Queue(`DELETE FROM vultron_kv k USING unnest($1::bigint[], $2::bytea[]) AS d(bucket, key)
				WHERE k.bucket = d.bucket AND k.key = d.key AND k.value IS NOT NULL`, ids, keys)
			puts = append(puts, check{})
			continue
		}
		b.Queue(`INSERT INTO vultron_kv (bucket, key, value)
			SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bytea[])
			ON CONFLICT (bucket, key) DO UPDATE SET value = excluded.value, lease = NULL, lease_holder = NULL
			WHERE vultron_kv.value IS NOT NULL`, ids, keys, values)
		puts = append(puts, check{keys: len(run), first: run[0].key})
	}
	for _, bk := range t.dirty {
		b.Queue(`UPDATE vultron_buckets SET seq = $2 WHERE id = $1`, bk.id, int64(bk.seq))
	}
	if t.notify {
		b.Queue(`SELECT pg_notify($1, '')`, t.e.locks.channel)
	}
	if query != "" {
		b.Queue(query, args...)
	}
	for _, bk := range t.dirty {
		bk.seqDirty = false
	}
	t.pending, t.dirty = t.pending[:0], t.dirty[:0]
	clear(t.pendingAt)
	br := t.tx.SendBatch(t.ctx, b)
	for _, p := range puts {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, err
		}
		if n := tag.RowsAffected(); n < int64(p.keys) {
			_ = br.Close()
			if p.creates {
				return nil, fmt.Errorf("create of %d buckets from %x: %d of their names hold a value", p.keys, p.first, int64(p.keys)-n)
			}
			if p.keys == 1 {
				return nil, fmt.Errorf("put %x: the key names a bucket", p.first)
			}
			return nil, fmt.Errorf("put of %d keys from %x: %d of them name a bucket", p.keys, p.first, int64(p.keys)-n)
		}
	}
	n := b.Len() - len(puts)
	if query != "" {
		n--
	}
	for range n {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return nil, err
		}
	}
	if query == "" {
		return nil, br.Close()
	}
	rows, err := br.Query()
	if err != nil {
		_ = br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// pgCreateBuckets creates the sub-buckets named $2 of the buckets $1, with
// the ids $3: a row in the parent first, which a value of the same name
// keeps out, and then the bucket's row, for those whose first row went in.
const pgCreateBuckets = `WITH c AS (SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bigint[]) AS c(parent, name, id)),
	m AS (INSERT INTO vultron_kv (bucket, key, value) SELECT parent, name, NULL FROM c ON CONFLICT DO NOTHING RETURNING bucket, key)
	INSERT INTO vultron_buckets (id, parent, name) OVERRIDING SYSTEM VALUE
	SELECT c.id, c.parent, c.name FROM c JOIN m ON m.bucket = c.parent AND m.key = c.name`

// pgBucketIDs is how many bucket ids a process takes from the table's
// sequence at a time, for the sub-buckets its writes create (bucketID).
const pgBucketIDs = 64

// bucketID returns an id for a new bucket, from those the process took
// from the buckets table's sequence ahead: a round trip per pgBucketIDs
// new buckets instead of one per bucket. Ids taken and not used are
// skipped, as a rolled-back insert's are. ok is false when the role may
// not take ids from the sequence (inserting into the table does not need
// that privilege, and docs/operations.md asks only for reading and
// writing the tables): its buckets are then created one request each.
func (t *pgTx) bucketID() (id int64, ok bool, err error) {
	e := t.e
	e.idMu.Lock()
	defer e.idMu.Unlock()
	if e.noIDs {
		return 0, false, nil
	}
	if len(e.ids) == 0 {
		rows, err := t.tx.Query(t.ctx, `SELECT nextval(pg_get_serial_sequence('vultron_buckets', 'id')) FROM generate_series(1, $1)
			WHERE has_sequence_privilege(pg_get_serial_sequence('vultron_buckets', 'id'), 'USAGE')`, pgBucketIDs)
		if err != nil {
			return 0, false, fmt.Errorf("bucket ids: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return 0, false, fmt.Errorf("bucket ids: %w", err)
		}
		if len(ids) == 0 {
			e.noIDs = true
			return 0, false, nil
		}
		e.ids = ids
	}
	id = e.ids[0]
	e.ids = e.ids[1:]
	return id, true, nil
}

// flush sends the buffered writes.
func (t *pgTx) flush() error {
	_, err := t.flushWith("")
	return err
}

// pgBucket is a bucket in a pgTx. The root (id 0) holds the top-level
// buckets.
type pgBucket struct {
	t         *pgTx
	id        int64
	seq       uint64
	seqLoaded bool
	seqDirty  bool
}

func (b *pgBucket) Writable() bool { return b.t.writable }

func (b *pgBucket) Get(key []byte) []byte {
	t := b.t
	if t.failed != nil {
		return nil
	}
	ck := cacheKey(b.id, key)
	if t.writable && !t.fresh[b.id] {
		t.used[ck] = true
	}
	if c, ok := t.values[ck]; ok {
		return c.v
	}
	if t.fresh[b.id] {
		return nil
	}
	var (
		v      []byte
		isNull bool
	)
	err := t.tx.QueryRow(t.ctx, `SELECT value, value IS NULL FROM vultron_kv WHERE bucket = $1 AND key = $2`, b.id, key).Scan(&v, &isNull)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		t.values[ck] = cachedValue{}
		return nil
	case err != nil:
		t.fail(fmt.Errorf("get: %w", err))
		return nil
	}
	if isNull {
		t.values[ck] = cachedValue{present: true, isBucket: true}
		return nil
	}
	if v == nil {
		v = []byte{}
	}
	t.values[ck] = cachedValue{v: v, present: true}
	return v
}

// pgBatchKeys bounds the keys one statement of prefetch or seekEach sends.
const pgBatchKeys = 1000

// pgFindBuckets finds the sub-buckets of $1 named in $2, each by its own
// descent of the (parent, name) index. The plain form, parent = $1 AND
// name = ANY($2), is planned well for given values, but the driver
// prepares its statements and the server soon plans them once for any
// values: that plan expects a parent to have few children, reads all of
// the parent's children and filters them by name, which for the bucket of
// every case and report of a store of 100,000 cases was hundreds of
// thousands of index entries per batch of received reports. The LIMIT
// keeps the server from turning the per-name lookup into one scan.
const pgFindBuckets = `SELECT n.name, b.id, b.seq FROM unnest($2::bytea[]) AS n(name)
	CROSS JOIN LATERAL (SELECT id, seq FROM vultron_buckets WHERE parent = $1 AND name = n.name LIMIT 1) b`

// findSubBuckets looks up the sub-buckets names of p that neither the
// transaction nor the process knows, in one statement per pgBatchKeys, so
// that opening any of them, or finding it absent, asks nothing more.
func (t *pgTx) findSubBuckets(p *pgBucket, names [][]byte) {
	var want [][]byte
	for _, n := range names {
		if _, ok := p.known(n); !ok {
			want = append(want, n)
		}
	}
	for len(want) > 0 && t.failed == nil {
		chunk := want[:min(len(want), pgBatchKeys)]
		want = want[len(chunk):]
		rows, err := t.tx.Query(t.ctx, pgFindBuckets, p.id, chunk)
		if err == nil {
			err = t.fillSubBuckets(queried{rows}, p, chunk)
		}
		if err != nil {
			t.fail(fmt.Errorf("buckets: %w", err))
			return
		}
	}
}

// queryResults gives the rows of a statement: the next result of a batch
// (pgx.BatchResults), or rows already asked for (queried).
type queryResults interface{ Query() (pgx.Rows, error) }

// queried hands rows already asked for to a fill function that takes
// them from a batch's results.
type queried struct{ rows pgx.Rows }

func (q queried) Query() (pgx.Rows, error) { return q.rows, nil }

// fillSubBuckets reads the rows of a pgFindBuckets query, asked for names
// of p, into the transaction's buckets: a name without a row has none.
func (t *pgTx) fillSubBuckets(results queryResults, p *pgBucket, names [][]byte) error {
	rows, err := results.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	found := make(map[string]bool, len(names))
	for rows.Next() {
		var (
			name    []byte
			id, seq int64
		)
		if err := rows.Scan(&name, &id, &seq); err != nil {
			return err
		}
		found[string(name)] = true
		t.buckets[cacheKey(p.id, name)] = &pgBucket{t: t, id: id, seq: uint64(seq), seqLoaded: true}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if !found[string(n)] {
			t.buckets[cacheKey(p.id, n)] = nil
		}
	}
	return nil
}

// prefetchKeys implements batchTx in one request where it can: the
// sub-buckets the refs name that neither the transaction nor the process
// knows (pgFindBuckets), the keys the transaction has not read yet in
// buckets it knows (pgReadKeys), and the seeks it has no answer for
// (pgSeekEach) go in one batch. The keys of sub-buckets that batch found
// are read in a second request, when there are any.
func (t *pgTx) prefetchKeys(refs []ReadRef) {
	if t.failed != nil {
		return
	}
	root := t.root()
	var (
		ids  []int64 // the keys to read, pairwise: bucket id and key
		keys [][]byte
		// later: the refs to keys in sub-buckets that the batch finds
		later []ReadRef
		// wholes: the sub-buckets to read whole, by id
		wholes []int64
		// finds: by parent, the names of sub-buckets to find, each once
		finds     = map[*pgBucket][][]byte{}
		seeks     = map[*pgBucket][][]byte{}
		parents   = map[int64]*pgBucket{}
		asked     = map[string]bool{}
		theBucket = func(b *pgBucket) *pgBucket { // one *pgBucket per id, as map keys
			if p, ok := parents[b.id]; ok {
				return p
			}
			parents[b.id] = b
			return b
		}
	)
	for _, r := range refs {
		if r.bucket == nil {
			continue // a ref that names nothing
		}
		b := root.lookup(r.bucket) // a top-level bucket: known, asks nothing
		if b == nil {
			continue
		}
		switch {
		case r.seek:
			ck := "s" + cacheKey(b.id, r.key)
			if _, known := t.knownSeek(b.id, r.key); !known && !asked[ck] {
				asked[ck] = true
				b = theBucket(b)
				seeks[b] = append(seeks[b], r.key)
			}
		case r.sub == nil:
			ids, keys = append(ids, b.id), append(keys, r.key)
		default:
			sub, known := b.known(r.sub)
			if !known {
				if ck := "b" + cacheKey(b.id, r.sub); !asked[ck] {
					asked[ck] = true
					b = theBucket(b)
					finds[b] = append(finds[b], r.sub)
				}
			}
			switch {
			case r.whole && !known:
				later = append(later, r)
			case r.whole && sub != nil:
				if _, read := t.whole[sub.id]; !read {
					wholes = append(wholes, sub.id)
				}
			case r.whole:
				// A namespace known to be absent: nothing to read.
			case r.key == nil:
				// The sub-bucket alone; and whether its name holds
				// anything at all, so that a write that creates it need
				// not ask (pgBucket.CreateBucketIfNotExists).
				ids, keys = append(ids, b.id), append(keys, r.sub)
			case !known:
				later = append(later, r)
			case sub != nil:
				ids, keys = append(ids, sub.id), append(keys, r.key)
			}
		}
	}
	if len(t.pending) > 0 || len(t.dirty) > 0 {
		// Seeks must see the buffered writes, which a batch of reads
		// does not send: ask them as seekEach does, after the rest.
		after := seeks
		defer func() {
			for b, froms := range after {
				answers := b.seekServer(froms)
				if t.failed != nil {
					return
				}
				for j, k := range answers {
					t.rememberSeek(b.id, froms[j], k)
				}
			}
		}()
		seeks = nil
	}
	wantIDs, wantKeys := t.unread(ids, keys)
	batch := &pgx.Batch{}
	type findAsk struct {
		p     *pgBucket
		names [][]byte
	}
	type seekAsk struct {
		b     *pgBucket
		froms [][]byte
	}
	var (
		findAsks []findAsk
		seekAsks []seekAsk
		pairAsks [][2]int // start and end in wantIDs of each statement
	)
	for p, names := range finds {
		for start := 0; start < len(names); start += pgBatchKeys {
			chunk := names[start:min(len(names), start+pgBatchKeys)]
			batch.Queue(pgFindBuckets, p.id, chunk)
			findAsks = append(findAsks, findAsk{p, chunk})
		}
	}
	for start := 0; start < len(wantIDs); start += pgBatchKeys {
		end := min(len(wantIDs), start+pgBatchKeys)
		batch.Queue(pgReadKeys, wantIDs[start:end], wantKeys[start:end])
		pairAsks = append(pairAsks, [2]int{start, end})
	}
	for b, froms := range seeks {
		for start := 0; start < len(froms); start += pgBatchKeys {
			chunk := froms[start:min(len(froms), start+pgBatchKeys)]
			batch.Queue(pgSeekEach, b.id, chunk)
			seekAsks = append(seekAsks, seekAsk{b, chunk})
		}
	}
	var wholeAsks [][]int64
	for start := 0; start < len(wholes); start += pgWholeBuckets {
		chunk := wholes[start:min(len(wholes), start+pgWholeBuckets)]
		batch.Queue(pgReadWhole, chunk, pgWholeMax+1)
		wholeAsks = append(wholeAsks, chunk)
	}
	if batch.Len() > 0 {
		br := t.tx.SendBatch(t.ctx, batch)
		err := func() error {
			for _, f := range findAsks {
				if err := t.fillSubBuckets(br, f.p, f.names); err != nil {
					return fmt.Errorf("buckets: %w", err)
				}
			}
			for _, a := range pairAsks {
				if err := t.readKeys(br, wantIDs[a[0]:a[1]], wantKeys[a[0]:a[1]]); err != nil {
					return fmt.Errorf("get: %w", err)
				}
			}
			for _, a := range seekAsks {
				answers, err := fillSeeks(br, len(a.froms))
				if err != nil {
					return fmt.Errorf("seek: %w", err)
				}
				for j, k := range answers {
					t.rememberSeek(a.b.id, a.froms[j], k)
				}
			}
			for _, ids := range wholeAsks {
				if err := t.fillWhole(br, ids); err != nil {
					return fmt.Errorf("read whole: %w", err)
				}
			}
			return nil
		}()
		if cerr := br.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("read ahead: %w", cerr)
		}
		if err != nil {
			t.fail(err)
			return
		}
	}
	ids, keys, wholes = ids[:0], keys[:0], wholes[:0]
	for _, r := range later {
		sub := root.lookup(r.bucket).lookup(r.sub) // found above: asks nothing
		switch {
		case sub == nil:
		case r.whole:
			if _, read := t.whole[sub.id]; !read && !slices.Contains(wholes, sub.id) {
				wholes = append(wholes, sub.id)
			}
		default:
			ids, keys = append(ids, sub.id), append(keys, r.key)
		}
	}
	t.readPairs(ids, keys)
	t.readWhole(wholes)
}

// Bounds of a whole read: a bucket is read whole when it holds at most
// pgWholeMax keys (a report's records: one per local actor, and its
// clocks), and one statement reads at most pgWholeBuckets buckets, so that
// it returns at most pgWholeBuckets × (pgWholeMax + 1) rows.
const (
	pgWholeMax     = 64
	pgWholeBuckets = 256
)

// pgReadWhole reads, for each bucket of $1 (by id), its first $2 keys and
// their values.
const pgReadWhole = `SELECT w.id, k.key, k.value, k.value IS NULL FROM unnest($1::bigint[]) AS w(id)
	CROSS JOIN LATERAL (SELECT key, value FROM vultron_kv WHERE bucket = w.id ORDER BY key LIMIT $2) k`

// readWhole reads the buckets ids whole, in one statement per
// pgWholeBuckets.
func (t *pgTx) readWhole(ids []int64) {
	for start := 0; start < len(ids) && t.failed == nil; start += pgWholeBuckets {
		chunk := ids[start:min(len(ids), start+pgWholeBuckets)]
		rows, err := t.tx.Query(t.ctx, pgReadWhole, chunk, pgWholeMax+1)
		if err == nil {
			err = t.fillWhole(queried{rows}, chunk)
		}
		if err != nil {
			t.fail(fmt.Errorf("read whole: %w", err))
		}
	}
}

// fillWhole reads the rows of a pgReadWhole query, asked for the buckets
// ids, into the transaction's values, and into whole for each bucket that
// holds no more than pgWholeMax keys (a larger one is walked by its
// cursors as any bucket is).
func (t *pgTx) fillWhole(results queryResults, ids []int64) error {
	r, err := results.Query()
	if err != nil {
		return err
	}
	got := make(map[int64][]kvRow, len(ids))
	err = scanKeyRows(r, func(id int64, row kvRow, isBucket bool) {
		ck := cacheKey(id, row.k)
		if _, ok := t.values[ck]; !ok {
			t.values[ck] = cachedValue{v: row.v, present: true, isBucket: isBucket}
		}
		got[id] = append(got[id], row)
	})
	if err != nil {
		return err
	}
	if t.whole == nil {
		t.whole = map[int64][]kvRow{}
	}
	for _, id := range ids {
		rows := got[id]
		if len(rows) > pgWholeMax {
			continue // too large to keep: walked as before
		}
		slices.SortFunc(rows, func(a, b kvRow) int { return bytes.Compare(a.k, b.k) })
		t.whole[id] = rows
	}
	return nil
}

// readPairs reads the keys the transaction has not read yet of buckets
// ids and keys, given pairwise, into its values, in one statement per
// pgBatchKeys; what a statement does not return is absent.
func (t *pgTx) readPairs(ids []int64, keys [][]byte) {
	wantIDs, wantKeys := t.unread(ids, keys)
	for len(wantIDs) > 0 && t.failed == nil {
		n := min(len(wantIDs), pgBatchKeys)
		rows, err := t.tx.Query(t.ctx, pgReadKeys, wantIDs[:n], wantKeys[:n])
		if err == nil {
			err = t.fillKeys(rows, wantIDs[:n], wantKeys[:n])
		}
		if err != nil {
			t.fail(fmt.Errorf("get: %w", err))
			return
		}
		wantIDs, wantKeys = wantIDs[n:], wantKeys[n:]
	}
}

// unread returns the keys of ids and keys, given pairwise, that the
// transaction has not read or written yet, each once.
func (t *pgTx) unread(ids []int64, keys [][]byte) (wantIDs []int64, wantKeys [][]byte) {
	asked := make(map[string]bool, len(keys))
	for i, k := range keys {
		ck := cacheKey(ids[i], k)
		if _, ok := t.values[ck]; ok || asked[ck] || t.fresh[ids[i]] {
			continue
		}
		asked[ck] = true
		wantIDs, wantKeys = append(wantIDs, ids[i]), append(wantKeys, k)
	}
	return wantIDs, wantKeys
}

// prefetch implements batchBucket: the keys the transaction has not read
// or written yet are read in one statement (per pgBatchKeys) and cached
// as Get caches them. It sends no buffered write: a key not in the cache
// was not written in this transaction.
func (b *pgBucket) prefetch(keys [][]byte) {
	if b.t.failed != nil {
		return
	}
	ids := make([]int64, len(keys))
	for i := range ids {
		ids[i] = b.id
	}
	b.t.readPairs(ids, keys)
}

// seekEach implements batchBucket: the seeks the transaction read ahead
// (and kept right through its writes) cost nothing; the others go in one
// statement per pgBatchKeys, sent with the buffered writes so that it
// sees them.
func (b *pgBucket) seekEach(froms [][]byte) [][]byte {
	t := b.t
	out := make([][]byte, len(froms))
	var ask [][]byte
	var at []int // index in froms of each of ask
	for i, from := range froms {
		if k, ok := t.knownSeek(b.id, from); ok {
			out[i] = cloneBytes(k)
			continue
		}
		ask, at = append(ask, from), append(at, i)
	}
	if len(ask) == 0 {
		return out
	}
	answers := b.seekServer(ask)
	if t.failed != nil {
		return make([][]byte, len(froms))
	}
	for j, k := range answers {
		out[at[j]] = k
	}
	return out
}

// seekServer asks the database for the answers of seeks from froms, in one
// statement per pgBatchKeys, sent with the buffered writes.
func (b *pgBucket) seekServer(froms [][]byte) [][]byte {
	t := b.t
	out := make([][]byte, 0, len(froms))
	for start := 0; start < len(froms) && t.failed == nil; start += pgBatchKeys {
		chunk := froms[start:min(len(froms), start+pgBatchKeys)]
		rows, err := t.flushWith(pgSeekEach, b.id, chunk)
		var answers [][]byte
		if err == nil {
			answers, err = fillSeeks(queried{rows}, len(chunk))
		}
		if err != nil {
			t.fail(fmt.Errorf("seek: %w", err))
			return make([][]byte, len(froms))
		}
		out = append(out, answers...)
	}
	if t.failed != nil {
		return make([][]byte, len(froms))
	}
	return out
}

// pgSeekEach answers, for each key of $2 in order (its ordinality), the
// first key of bucket $1 at or after it, or NULL.
const pgSeekEach = `SELECT f.i, (SELECT k.key FROM vultron_kv k
		WHERE k.bucket = $1 AND k.key >= f.k ORDER BY k.key LIMIT 1)
	FROM unnest($2::bytea[]) WITH ORDINALITY AS f(k, i)`

// fillSeeks reads the rows of a pgSeekEach query asked for n keys.
func fillSeeks(results queryResults, n int) ([][]byte, error) {
	rows, err := results.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([][]byte, n)
	for rows.Next() {
		var (
			i int64
			k []byte
		)
		if err := rows.Scan(&i, &k); err != nil {
			return nil, err
		}
		if i < 1 || int(i) > n {
			return nil, fmt.Errorf("the server answered for key %d of %d", i, n)
		}
		out[i-1] = k
	}
	return out, rows.Err()
}

func (b *pgBucket) Put(key, value []byte) error {
	t := b.t
	if !t.writable {
		return errTxNotWritable
	}
	if t.failed != nil {
		return t.failed
	}
	if len(key) == 0 {
		return fmt.Errorf("put: empty key: %w", ErrInvalid)
	}
	ck := cacheKey(b.id, key)
	if c, ok := t.values[ck]; ok && c.isBucket {
		return fmt.Errorf("put %x: the key names a bucket", key)
	}
	v := make([]byte, len(value)) // never nil: an empty value is a value
	copy(v, value)
	k := cloneBytes(key)
	t.values[ck] = cachedValue{v: v, present: true}
	t.wrote(b.id, k, true)
	if i, ok := t.pendingAt[ck]; ok && t.pending[i].value != nil {
		t.pending[i].value = v
		return nil
	}
	t.pendingAt[ck] = len(t.pending)
	t.pending = append(t.pending, pendingWrite{bucket: b.id, key: k, value: v})
	return nil
}

func (b *pgBucket) Delete(key []byte) error {
	t := b.t
	if !t.writable {
		return errTxNotWritable
	}
	if t.failed != nil {
		return t.failed
	}
	ck := cacheKey(b.id, key)
	if c, ok := t.values[ck]; ok && c.isBucket {
		return fmt.Errorf("delete %x: the key names a bucket", key)
	}
	t.values[ck] = cachedValue{}
	t.wrote(b.id, key, false)
	t.pendingAt[ck] = len(t.pending)
	t.pending = append(t.pending, pendingWrite{bucket: b.id, key: cloneBytes(key)})
	return nil
}

func (b *pgBucket) Bucket(name []byte) kvBucket {
	sub := b.lookup(name)
	if sub == nil {
		return nil
	}
	return sub
}

// known returns the sub-bucket name as the transaction or the process
// already knows it, without asking the database: the bucket, or nil when
// it is known to be missing, and whether it is known at all.
func (b *pgBucket) known(name []byte) (*pgBucket, bool) {
	t := b.t
	ck := cacheKey(b.id, name)
	if sub, ok := t.buckets[ck]; ok {
		return sub, true
	}
	id, ok := int64(0), false
	if b.id == 0 {
		id, ok = t.e.topID(name)
	} else if t.writable || t.useSub {
		var ent subEntry
		ent, ok = t.e.sub.Get(ck)
		// A read uses only what was cached before it began.
		ok = ok && (t.writable || ent.stamp <= t.readEpoch)
		id = ent.id
	}
	if !ok {
		return nil, false
	}
	sub := &pgBucket{t: t, id: id}
	t.buckets[ck] = sub
	return sub, true
}

// lookup returns the sub-bucket name, or nil.
func (b *pgBucket) lookup(name []byte) *pgBucket {
	t := b.t
	if t.failed != nil {
		return nil
	}
	if sub, ok := b.known(name); ok {
		return sub
	}
	ck := cacheKey(b.id, name)
	if t.fresh[b.id] {
		t.buckets[ck] = nil
		return nil
	}
	var (
		id  int64
		seq int64
	)
	err := t.tx.QueryRow(t.ctx, `SELECT id, seq FROM vultron_buckets WHERE parent = $1 AND name = $2`, b.id, name).Scan(&id, &seq)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		t.buckets[ck] = nil
		return nil
	case err != nil:
		t.fail(fmt.Errorf("bucket %s: %w", bucketLabel(name), err))
		return nil
	}
	sub := &pgBucket{t: t, id: id, seq: uint64(seq), seqLoaded: true}
	t.buckets[ck] = sub
	if b.id == 0 {
		t.e.setTopID(name, id)
	}
	return sub
}

func (b *pgBucket) CreateBucketIfNotExists(name []byte) (kvBucket, error) {
	t := b.t
	if !t.writable {
		return nil, errTxNotWritable
	}
	if len(name) == 0 {
		return nil, fmt.Errorf("create bucket: empty name: %w", ErrInvalid)
	}
	if t.failed != nil {
		return nil, t.failed
	}
	// A bucket neither the transaction nor the process knows is most often
	// a new one (a received report's): it is created first, in one round
	// trip, and looked up only when the create found its name taken.
	sub, isKnown := b.known(name)
	if sub != nil {
		return sub, nil
	}
	// A name this transaction knows holds nothing (read ahead under the
	// writer lock, or in a bucket it created) is created with the next
	// flush, under an id taken ahead: no round trip of its own.
	ck := cacheKey(b.id, name)
	if v, read := t.values[ck]; t.fresh[b.id] || (isKnown && read && !v.present) {
		id, ok, err := t.bucketID()
		if err != nil {
			t.fail(fmt.Errorf("create bucket %s: %w", bucketLabel(name), err))
			return nil, t.failed
		}
		if ok {
			return b.createWithCommit(name, id), nil
		}
	}
	if !isKnown && b.id == 0 {
		if sub := b.lookup(name); sub != nil {
			return sub, nil
		}
		if t.failed != nil {
			return nil, t.failed
		}
	}
	rows, err := t.flushWith(`WITH m AS (
			INSERT INTO vultron_kv (bucket, key, value) VALUES ($1, $2, NULL)
			ON CONFLICT DO NOTHING RETURNING 1)
		INSERT INTO vultron_buckets (parent, name) SELECT $1, $2 FROM m RETURNING id`, b.id, name)
	if err != nil {
		t.fail(fmt.Errorf("create bucket %s: %w", bucketLabel(name), err))
		return nil, t.failed
	}
	var id int64
	found := false
	for rows.Next() {
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			t.fail(fmt.Errorf("create bucket %s: %w", bucketLabel(name), err))
			return nil, t.failed
		}
		found = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.fail(fmt.Errorf("create bucket %s: %w", bucketLabel(name), err))
		return nil, t.failed
	}
	if !found {
		if !isKnown {
			if sub := b.lookup(name); sub != nil {
				return sub, nil
			}
			if t.failed != nil {
				return nil, t.failed
			}
		}
		return nil, fmt.Errorf("create bucket %s: the key holds a value", bucketLabel(name))
	}
	return b.created(name, id), nil
}

// createWithCommit makes the sub-bucket name, with id, part of the
// transaction's buffered writes (pgCreateBuckets).
func (b *pgBucket) createWithCommit(name []byte, id int64) *pgBucket {
	b.t.pending = append(b.t.pending, pendingWrite{bucket: b.id, key: cloneBytes(name), create: id})
	return b.created(name, id)
}

// created records in the transaction that it made the sub-bucket name of
// b, with id: what the new bucket holds is what the transaction writes
// into it.
func (b *pgBucket) created(name []byte, id int64) *pgBucket {
	t := b.t
	ck := cacheKey(b.id, name)
	sub := &pgBucket{t: t, id: id, seqLoaded: true}
	t.fresh[id] = true
	t.buckets[ck] = sub
	t.values[ck] = cachedValue{present: true, isBucket: true}
	t.wrote(b.id, name, true) // a sub-bucket's name is a key a seek meets
	return sub
}

func (b *pgBucket) DeleteBucket(name []byte) error {
	t := b.t
	if !t.writable {
		return errTxNotWritable
	}
	if sub := b.lookup(name); sub == nil {
		if t.failed != nil {
			return t.failed
		}
		return errBucketNotFound
	}
	rows, err := t.flushWith(`WITH RECURSIVE sub(id) AS (
			SELECT id FROM vultron_buckets WHERE parent = $1 AND name = $2
			UNION ALL
			SELECT c.id FROM vultron_buckets c JOIN sub ON c.parent = sub.id),
		dk AS (DELETE FROM vultron_kv WHERE bucket IN (SELECT id FROM sub)),
		dm AS (DELETE FROM vultron_kv WHERE bucket = $1 AND key = $2 AND value IS NULL)
		DELETE FROM vultron_buckets WHERE id IN (SELECT id FROM sub) RETURNING id`, b.id, name)
	if err != nil {
		t.fail(fmt.Errorf("delete bucket %s: %w", bucketLabel(name), err))
		return t.failed
	}
	gone := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			t.fail(fmt.Errorf("delete bucket %s: %w", bucketLabel(name), err))
			return t.failed
		}
		gone[id] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.fail(fmt.Errorf("delete bucket %s: %w", bucketLabel(name), err))
		return t.failed
	}
	// Forget what the transaction knew of the deleted buckets.
	for k, sub := range t.buckets {
		if sub != nil && gone[sub.id] {
			delete(t.buckets, k)
		}
	}
	for k := range t.values {
		if gone[cacheBucket(k)] {
			delete(t.values, k)
		}
	}
	for id := range gone {
		delete(t.seeks, id)
		delete(t.lasts, id)
		delete(t.whole, id)
	}
	t.buckets[cacheKey(b.id, name)] = nil
	t.values[cacheKey(b.id, name)] = cachedValue{}
	t.wrote(b.id, name, false)
	if b.id == 0 {
		t.e.forgetTopID(name)
	}
	return nil
}

func (b *pgBucket) NextSequence() (uint64, error) {
	if !b.t.writable {
		return 0, errTxNotWritable
	}
	if b.id == 0 {
		return 0, fmt.Errorf("next sequence: the root has none")
	}
	if !b.loadSeq() {
		return 0, b.t.failed
	}
	b.seq++
	b.markDirty()
	return b.seq, nil
}

func (b *pgBucket) Sequence() uint64 {
	if !b.loadSeq() {
		return 0
	}
	return b.seq
}

func (b *pgBucket) SetSequence(seq uint64) error {
	if !b.t.writable {
		return errTxNotWritable
	}
	b.seq, b.seqLoaded = seq, true
	b.markDirty()
	return nil
}

// loadSeq reads the bucket's sequence once per transaction; it reports
// false when the read failed.
func (b *pgBucket) loadSeq() bool {
	t := b.t
	if b.seqLoaded {
		return true
	}
	if t.failed != nil || b.id == 0 {
		return false
	}
	if t.writable {
		t.usedSeqs[b.id] = true
	}
	if seq, ok := t.seqs[b.id]; ok {
		b.seq, b.seqLoaded = seq, true
		return true
	}
	var seq int64
	if err := t.tx.QueryRow(t.ctx, `SELECT seq FROM vultron_buckets WHERE id = $1`, b.id).Scan(&seq); err != nil {
		t.fail(fmt.Errorf("sequence: %w", err))
		return false
	}
	b.seq, b.seqLoaded = uint64(seq), true
	return true
}

func (b *pgBucket) markDirty() {
	if !b.seqDirty {
		b.seqDirty = true
		b.t.dirty = append(b.t.dirty, b)
	}
}

func (b *pgBucket) ForEach(fn func(k, v []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return b.t.failed
}

func (b *pgBucket) ForEachBucket(fn func(k []byte) error) error {
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v != nil {
			continue
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return b.t.failed
}

func (b *pgBucket) Cursor() kvCursor { return &pgCursor{b: b, window: pgFirstWindow} }

// Cursor windows: a cursor reads rows in windows that grow from
// pgFirstWindow to pgMaxWindow, so a seek for one key reads a few rows and a
// long scan few round trips.
const (
	pgFirstWindow = 4
	pgMaxWindow   = 512
)

type kvRow struct{ k, v []byte }

// pgCursor reads its bucket in windows of rows held in key order.
type pgCursor struct {
	b      *pgBucket
	rows   []kvRow
	pos    int  // index in rows of the current key; -1 or len(rows) off the ends
	before bool // rows may exist before rows[0]
	after  bool // rows may exist after rows[len-1]
	window int
	// from is where the last window started, for a Prev after a Seek
	// past the last key.
	from []byte
}

// expect implements windowedCursor: the next window reads n keys (within
// pgFirstWindow and pgMaxWindow).
func (c *pgCursor) expect(n int) { c.window = min(max(n, pgFirstWindow), pgMaxWindow) }

// fetch reads a window: keys after (or at, when inclusive) from going up,
// or before from going down; a nil from starts at the end.
func (c *pgCursor) fetch(from []byte, up, inclusive bool) {
	t := c.b.t
	c.rows = c.rows[:0]
	if t.failed != nil {
		return
	}
	if all, ok := t.whole[c.b.id]; ok {
		c.fetchFrom(all, from, up, inclusive)
		return
	}
	var (
		q    string
		args = []any{c.b.id, c.window}
	)
	switch {
	case up && from == nil:
		q = `SELECT key, value, value IS NULL FROM vultron_kv WHERE bucket = $1 ORDER BY key LIMIT $2`
	case up && inclusive:
		q = `SELECT key, value, value IS NULL FROM vultron_kv WHERE bucket = $1 AND key >= $3 ORDER BY key LIMIT $2`
	case up:
		q = `SELECT key, value, value IS NULL FROM vultron_kv WHERE bucket = $1 AND key > $3 ORDER BY key LIMIT $2`
	case from == nil:
		q = `SELECT key, value, value IS NULL FROM vultron_kv WHERE bucket = $1 ORDER BY key DESC LIMIT $2`
	default:
		q = `SELECT key, value, value IS NULL FROM vultron_kv WHERE bucket = $1 AND key < $3 ORDER BY key DESC LIMIT $2`
	}
	if from != nil {
		args = append(args, from)
	}
	rows, err := t.flushWith(q, args...)
	if err != nil {
		t.fail(fmt.Errorf("cursor: %w", err))
		return
	}
	for rows.Next() {
		var (
			r      kvRow
			isNull bool
		)
		if err := rows.Scan(&r.k, &r.v, &isNull); err != nil {
			rows.Close()
			t.fail(fmt.Errorf("cursor: %w", err))
			c.rows = c.rows[:0]
			return
		}
		if !isNull && r.v == nil {
			r.v = []byte{}
		}
		c.rows = append(c.rows, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		t.fail(fmt.Errorf("cursor: %w", err))
		c.rows = c.rows[:0]
		return
	}
	full := len(c.rows) == c.window
	c.window = min(c.window*4, pgMaxWindow)
	c.from = from
	if up {
		c.before, c.after = from != nil, full
		c.pos = 0
	} else {
		slices.Reverse(c.rows)
		c.before, c.after = full, from != nil
		c.pos = len(c.rows) - 1
	}
}

// fetchFrom is fetch from all, the whole of the cursor's bucket as the
// transaction read it (pgTx.whole), instead of from the database.
func (c *pgCursor) fetchFrom(all []kvRow, from []byte, up, inclusive bool) {
	// at: the index in all of the first key at or after from (after it
	// when going up exclusively).
	at := 0
	if from != nil {
		at, _ = slices.BinarySearchFunc(all, from, func(r kvRow, k []byte) int { return bytes.Compare(r.k, k) })
		if up && !inclusive && at < len(all) && bytes.Equal(all[at].k, from) {
			at++
		}
	}
	start, end := at, min(at+c.window, len(all))
	if !up {
		if from == nil {
			at = len(all)
		}
		start, end = max(at-c.window, 0), at
	}
	c.rows = append(c.rows, all[start:end]...)
	c.window = min(c.window*4, pgMaxWindow)
	c.from = from
	c.before, c.after = start > 0, end < len(all)
	if up {
		c.pos = 0
	} else {
		c.pos = len(c.rows) - 1
	}
}

func (c *pgCursor) at() ([]byte, []byte) {
	if c.pos < 0 || c.pos >= len(c.rows) {
		return nil, nil
	}
	r := c.rows[c.pos]
	return r.k, r.v
}

func (c *pgCursor) First() ([]byte, []byte) {
	c.fetch(nil, true, false)
	return c.at()
}

func (c *pgCursor) Last() ([]byte, []byte) {
	t := c.b.t
	if t.writable {
		if t.usedLasts == nil {
			t.usedLasts = map[int64]bool{}
		}
		t.usedLasts[c.b.id] = true
	}
	if r, ok := t.lasts[c.b.id]; ok && t.failed == nil {
		// Read ahead with the writer lock, and not written since: the
		// cursor stands on it as a fetch from the end would leave it.
		c.rows, c.from = c.rows[:0], nil
		if r.k != nil {
			c.rows = append(c.rows, r)
		}
		c.before, c.after = r.k != nil, false
		c.pos = len(c.rows) - 1
		return c.at()
	}
	c.fetch(nil, false, false)
	return c.at()
}

func (c *pgCursor) Seek(seek []byte) ([]byte, []byte) {
	c.fetch(cloneBytes(seek), true, true)
	return c.at()
}

func (c *pgCursor) Next() ([]byte, []byte) {
	if c.pos+1 < len(c.rows) {
		c.pos++
		return c.at()
	}
	if !c.after || len(c.rows) == 0 {
		c.pos = len(c.rows)
		return nil, nil
	}
	c.fetch(c.rows[len(c.rows)-1].k, true, false)
	return c.at()
}

func (c *pgCursor) Prev() ([]byte, []byte) {
	if c.pos-1 >= 0 && c.pos-1 < len(c.rows) {
		c.pos--
		return c.at()
	}
	switch {
	case len(c.rows) == 0 && c.before && c.from != nil:
		// A seek went past the last key: step back from where it
		// started, as bbolt does.
		c.fetch(c.from, false, false)
		return c.at()
	case !c.before || len(c.rows) == 0:
		c.pos = -1
		return nil, nil
	}
	c.fetch(c.rows[0].k, false, false)
	return c.at()
}

func (c *pgCursor) Delete() error {
	k, v := c.at()
	if k == nil {
		return fmt.Errorf("cursor delete: not on a key")
	}
	if v == nil {
		return fmt.Errorf("cursor delete %x: the key names a bucket", k)
	}
	return c.b.Delete(k)
}
