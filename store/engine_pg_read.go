package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Read transactions on PostgreSQL. A read transaction is BEGIN, its
// statements and COMMIT; BEGIN is sent with its first statement, in the
// same round trip, rather than in one of its own, and so is a read of the
// count of bucket deletions (vultron_bucket_generation) in the
// transaction's snapshot. With that count the transaction may use the
// process's cache of sub-bucket ids (pgEngine.sub), which only write
// transactions used before, on two conditions that keep it exact:
//
//   - the count in its snapshot is the count the cache is valid at
//     (pgEngine.subGen): no bucket the cache names was deleted before the
//     snapshot;
//   - an entry was added before the transaction began (its stamp is at
//     most the epoch read before BEGIN): the bucket it names was committed
//     before the snapshot, which a bucket created by a later write would
//     not be.
//
// A read transaction that found sub-buckets adds them to the cache, with a
// new stamp, when its snapshot's count is still the cache's.

// pgQuerier is what a transaction sends its statements through: a pgx.Tx
// for a write, a lazyRead for a read.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// subEntry is a sub-bucket id in the process's cache, with the epoch at
// which it was added (see pgEngine.subEpoch).
type subEntry struct {
	id    int64
	stamp uint64
}

// lazyRead is a REPEATABLE READ READ ONLY transaction on one connection
// that begins with its first request (pgx's Batch.BeginTx).
type lazyRead struct {
	conn *pgxpool.Conn
	// pool gives another connection when the first round trip finds
	// conn's session ended (begin).
	pool *pgxpool.Pool
	// tx is the transaction once begun, nil before.
	tx pgx.Tx
	// gen is the count of bucket deletions in the snapshot, once begun.
	gen int64
	// onBegin is called once the transaction has begun, with gen.
	onBegin func(gen int64)
}

// begin sends BEGIN and the read of the count of bucket deletions ahead of
// b's statements, in one round trip, and returns b's results. When that
// round trip fails on a connection whose session the server had ended (a
// failover, a restart), which the pool still held, it is sent again on
// another connection, up to pgRetries times: nothing of it reached the
// transaction's function, as nothing of a write's first round trip did.
func (l *lazyRead) begin(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	var br pgx.BatchResults
	for attempt := 0; ; attempt++ {
		// A batch of its own each time: pgx keeps in a batch's queries
		// the statements it prepared on the connection it was sent on.
		nb := &pgx.Batch{}
		nb.BeginTx(pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		nb.Queue(`SELECT g FROM vultron_bucket_generation`)
		for _, q := range b.QueuedQueries {
			nb.QueuedQueries = append(nb.QueuedQueries, &pgx.QueuedQuery{SQL: q.SQL, Arguments: q.Arguments, Fn: q.Fn})
		}
		br = l.conn.SendBatch(ctx, nb)
		l.tx = br.Tx()
		_, err := br.Exec()
		if err == nil {
			break
		}
		br.Close()
		if attempt < pgRetries && l.pool != nil && ctx.Err() == nil && lostConnection(l.conn.Conn().PgConn(), err) {
			// Given back (closed: the pool lets it go) before another is
			// asked for: a pool at its size, such as one whose every
			// connection a read like this one holds after a failover, has
			// no other to give while it is held.
			l.conn.Release()
			conn, aerr := l.pool.Acquire(ctx)
			if aerr == nil {
				l.conn = conn
				continue
			}
			err = errors.Join(err, aerr)
		}
		return failedBatch{fmt.Errorf("begin read transaction: %w", err)}
	}
	if err := br.QueryRow().Scan(&l.gen); err != nil {
		br.Close()
		return failedBatch{fmt.Errorf("begin read transaction: %w", err)}
	}
	if l.onBegin != nil {
		l.onBegin(l.gen)
	}
	return br
}

func (l *lazyRead) begun() bool { return l.tx != nil }

func (l *lazyRead) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if l.begun() {
		return l.tx.SendBatch(ctx, b)
	}
	return l.begin(ctx, b)
}

func (l *lazyRead) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if l.begun() {
		return l.tx.Query(ctx, sql, args...)
	}
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	br := l.begin(ctx, b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (l *lazyRead) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if l.begun() {
		return l.tx.QueryRow(ctx, sql, args...)
	}
	rows, err := l.Query(ctx, sql, args...)
	return firstRow{rows: rows, err: err}
}

// end ends the transaction, if it began (commit: the read went well), and
// gives the connection back to the pool. A connection whose transaction
// did not end is closed by the pool rather than reused.
func (l *lazyRead) end(ctx context.Context, commit bool) error {
	defer l.conn.Release()
	if !l.begun() {
		return nil
	}
	if !commit {
		return l.tx.Rollback(ctx)
	}
	if err := l.tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit read transaction: %w", err)
	}
	return nil
}

// batchRows are the rows of the first statement of a read transaction,
// sent in a batch behind BEGIN: the batch ends when they do.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) endBatch() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	if err := r.br.Close(); err != nil && r.err == nil {
		r.err = err
	}
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.endBatch()
	return false
}

func (r *batchRows) Close() { r.endBatch() }

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// firstRow is pgx.Row over rows: the first row, or pgx.ErrNoRows.
type firstRow struct {
	rows pgx.Rows
	err  error
}

func (r firstRow) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// failedBatch is the results of a batch that could not be sent.
type failedBatch struct{ err error }

func (f failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, f.err }
func (f failedBatch) Query() (pgx.Rows, error)         { return nil, f.err }
func (f failedBatch) QueryRow() pgx.Row                { return firstRow{err: f.err} }
func (f failedBatch) Close() error                     { return f.err }
func (f failedBatch) Tx() pgx.Tx                       { return nil }

// view runs fn in a read transaction that begins with its first request
// (lazyRead), and gives the process's cache of sub-bucket ids what fn
// found.
func (e *pgEngine) view(ctx context.Context, fn func(kvTx) error) error {
	// Read before the snapshot: cache entries stamped after it may name
	// buckets the snapshot does not hold.
	epoch := e.subEpoch.Load()
	conn, err := e.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("begin read transaction on %s: %w", e.desc, err)
	}
	lr := &lazyRead{conn: conn, pool: e.pool}
	t := newPgTx(ctx, e, lr, false)
	t.readEpoch = epoch
	lr.onBegin = t.readBegan
	defer func() {
		// A panic in fn still gives the connection back to the pool,
		// which Close would otherwise wait for.
		if r := recover(); r != nil {
			_ = lr.end(context.Background(), false)
			panic(r)
		}
	}()
	err = fn(t)
	if err == nil {
		err = t.failed
	}
	if err != nil {
		_ = lr.end(context.Background(), false)
		return err
	}
	if err := lr.end(ctx, true); err != nil {
		return fmt.Errorf("%s: %w", e.desc, err)
	}
	if lr.begun() {
		e.keepSubBuckets(t, lr.gen)
	}
	return nil
}

// readBegan is called when a read transaction has begun, with the count of
// bucket deletions in its snapshot: the transaction may use the cache of
// sub-bucket ids when the cache is valid at that count. A count the cache
// has not seen yet (another process deleted a bucket) empties it.
func (t *pgTx) readBegan(gen int64) {
	e := t.e
	e.subMu.Lock()
	defer e.subMu.Unlock()
	if gen > e.subGen {
		e.sub.Purge()
		e.subGen = gen
	}
	t.useSub = gen == e.subGen
}
