package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned when a requested record (local actor, activity,
// delivery, dead letter, remote key or case) does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned when a write would replace a record that must be
// immutable: an inbound activity id seen before with a different body digest,
// or an outbound activity id that is already stored.
var ErrConflict = errors.New("store: conflict")

// ErrClosed is returned by every method called after Close has begun, and
// by a write Close canceled after waiting for it: the process is
// stopping. A request it fails is answered 503 with Retry-After (package
// problem), since another process of the node, or this one once
// restarted, serves it.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string { return "store: database is closed" }

// Unavailable says what a client is told of a request the store could not
// serve because the process is stopping (see package problem).
func (closedError) Unavailable() (sentence string, full bool, retryAfter time.Duration) {
	return "the node is stopping; try again shortly", false, 10 * time.Second
}

// ErrCommitUnknown is the failure of a write whose COMMIT was sent to
// PostgreSQL and not answered (the connection was lost in between): the
// write may be in the database or not. The store never sends it again; a
// caller that retries a write which is not idempotent must first read
// whether it took effect.
var ErrCommitUnknown = errors.New("the database did not confirm the commit, which may have taken effect")

// ErrLocked is returned by Open when another process (or another DB in this
// process) holds the lock on the database file.
var ErrLocked = errors.New("store: data directory is in use by another process")

// ErrDataKeyRotated is returned by every write of a process on PostgreSQL
// whose data key another process has since replaced (vultron rotate-key):
// the process writes nothing more, and DB.Fenced is closed.
var ErrDataKeyRotated = errors.New("store: data key rotated")

// ErrPending is returned by RequeueDeadLetter for a delivery that is
// still in the queue rather than a dead letter (a *PendingError).
var ErrPending = errors.New("store: delivery pending")

// PendingError says that a delivery asked to be requeued is still in the
// queue, and when it is tried next.
type PendingError struct {
	ID          uint64
	NextAttempt int       // the number of the next attempt
	At          time.Time // when it is made
}

func (e *PendingError) Error() string {
	return fmt.Sprintf("delivery %d is pending, not a dead letter: it is tried again on its own (attempt %d, at %s)",
		e.ID, e.NextAttempt, e.At.UTC().Format(time.RFC3339))
}

// Is makes a PendingError ErrPending.
func (e *PendingError) Is(target error) bool { return target == ErrPending }

// ErrInvalid is returned when a caller passes a record that cannot be stored,
// such as an empty id or a digest that does not match the body.
var ErrInvalid = errors.New("store: invalid argument")

// invalidError is an ErrInvalid whose message is a whole sentence for the
// person who gave the argument, without the sentinel's "store: invalid
// argument" in front of it.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }

// Is makes an invalidError ErrInvalid.
func (e *invalidError) Is(target error) bool { return target == ErrInvalid }

// invalidf returns an ErrInvalid that says what was wrong in its own words.
func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// ErrSchema is returned by Open when the file's schema version is not one this
// binary supports, or when the file is not a store file at all.
var ErrSchema = errors.New("store: unsupported database schema")

// ErrDamaged is returned when a store is not what the node wrote: a bbolt
// file shorter than the pages its own header says it holds (a copy that
// stopped, a disk that filled up), a page or meta page of it that is not
// what bbolt wrote (a flipped byte), a record that does not decode or a
// sealed value that does not open with the key that sealed it. The errors
// that say so are DamagedErrors, naming what is damaged, except that of a
// record that does not decode (errCorrupt). The store is to be restored
// from a backup.
var ErrDamaged = errors.New("store: damaged file")

// MaxIDSize is the longest activity id or key id the store keeps, in bytes.
// Ids are keys, and PostgreSQL's btree refuses keys of more than about
// 2,700 bytes; both engines refuse what is longer than this, so that a node
// behaves the same on either, with ErrInvalid rather than a database error.
// Real ids are a few hundred bytes at most.
const MaxIDSize = 2048

func checkIDSize(what, id string) error {
	if len(id) > MaxIDSize {
		return fmt.Errorf("%s is %d bytes, longer than the %d the store keeps: %w", what, len(id), MaxIDSize, ErrInvalid)
	}
	return nil
}

// ErrUnavailable is wrapped by the error of a read or write that failed
// because the store cannot serve now, for a reason outside the node that
// passes once the machine or the database is set right: the disk (the
// node's or the database's) is full, the store file reached the process's
// file size limit, the database is read-only (a standby after a failover),
// does not answer or refuses connections, or cancelled the statement on a
// timeout set for the role or the database. Nothing of the write was
// stored, and the same request can be made again later. Its errors are
// UnavailableErrors.
var ErrUnavailable = errors.New("store: unavailable")

// Passing reports whether err says that the store could not serve now,
// for a reason that passes without anything of the request changing: it
// cannot (ErrUnavailable), or the process is stopping (ErrClosed). Whoever
// answers such a failure answers it as the node's own, to be tried again.
func Passing(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, ErrClosed)
}

// UnavailableError is an ErrUnavailable: Reason says why in a few words
// a client may read ("the node's disk is full"), Err is the engine's error.
type UnavailableError struct {
	Reason string
	// Full says that the store ran out of space, rather than out of reach.
	Full bool
	Err  error
}

func (e *UnavailableError) Error() string { return "store: " + e.Reason + ": " + e.Err.Error() }

// Unwrap returns the engine's error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is makes an UnavailableError ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unavailable says what a client of the node is told about a request
// the store could not serve (package problem answers 507 when full, 503
// otherwise): a sentence that says that nothing was stored and why, and
// how long to wait before trying again.
func (e *UnavailableError) Unavailable() (sentence string, full bool, retryAfter time.Duration) {
	if e.Full {
		return "the node cannot store anything now: " + e.Reason + "; nothing was stored, try again later", true, time.Minute
	}
	return "the node cannot use its store now: " + e.Reason + "; nothing was stored, try again later", false, 10 * time.Second
}

// unavailable wraps err in an UnavailableError when it is one of the
// failures ErrUnavailable describes, and returns it as it is otherwise. ctx
// is the operation's: a statement cancelled because ctx ended is the
// caller's doing, not the database's.
func unavailable(ctx context.Context, err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	var (
		reason string
		full   bool
	)
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		reason, full = "the node's disk is full", true
	case errors.Is(err, syscall.EFBIG):
		reason, full = "the store file reached the largest file the node's process may write (its file size limit)", true
	case errors.As(err, &pe):
		switch c := pe.Code; {
		case c == "53100":
			reason, full = "the database's disk is full", true
		case c == "25006":
			reason = "the database is read-only (a standby, as after a failover)"
		case c == "53300":
			reason = "the database refuses more connections"
		case c == "28P01", c == "28000":
			reason = "the database refuses the node's credentials"
		case c == "57P03":
			reason = "the database is starting or shutting down"
		case connectionEnded(c):
			reason = "the database ended the connection"
		case (c == "57014" || c == "55P03") && ctx.Err() == nil:
			reason = "the database cancelled the statement on a timeout set for the node's role or database"
		}
	case errors.As(err, &ce):
		reason = "the database cannot be reached"
	case errors.Is(err, pgconn.ErrConnClosed):
		reason = "the database ended the connection"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller's own end (a deadline is a net.Error too), or the
		// committer's bound on a write, which commit says itself.
	case errors.As(err, &ne):
		if _, errno := ne.(syscall.Errno); !errno {
			// A file's error carries an Errno, which is a net.Error
			// too; only a connection's is the database out of reach.
			reason = "the database does not answer"
		}
	}
	if reason == "" {
		return err
	}
	return &UnavailableError{Reason: reason, Full: full, Err: err}
}

// connectionEnded reports whether SQLSTATE code says that the server ended
// the connection or could not keep it: a connection exception (08000,
// 08003, 08006, 08001, 08004) or a session the server terminated (57P01
// admin shutdown, 57P02 crash shutdown, 57P04 database dropped, 57P05
// idle session timeout). Not 08P01, a protocol violation, which a live
// connection answers to a malformed request.
func connectionEnded(code string) bool {
	switch code {
	case "08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P04", "57P05":
		return true
	}
	return false
}
