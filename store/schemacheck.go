package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// SchemaStatus is what versions a store is at, beside this binary's: for
// `vultron migrate --check`, which a deployment runs before it replaces
// the processes.
type SchemaStatus struct {
	// Desc names the store, without a password.
	Desc string
	// Tables is the version of a PostgreSQL store's tables (0: none yet)
	// and TablesWant this binary's; both are 0 on bbolt.
	Tables, TablesWant int
	// Records is the version of the layout of the records inside the
	// store (0: none yet, a store no node has opened), RecordsWant this
	// binary's (SchemaVersion). RecordsKnown is false when the records
	// could not be read: a database whose tables are at another version
	// than this binary's.
	Records, RecordsWant uint64
	RecordsKnown         bool
}

// UpToDate reports whether the store is at this binary's versions.
func (s SchemaStatus) UpToDate() bool {
	return s.Tables == s.TablesWant && s.RecordsKnown && s.Records == s.RecordsWant
}

// Newer reports whether the store is at a newer version than this binary
// supports: a newer binary migrated it, and this one must not serve it.
func (s SchemaStatus) Newer() bool {
	return s.Tables > s.TablesWant || s.RecordsKnown && s.Records > s.RecordsWant
}

// CheckSchema reads the versions of the store at rawURL (as for OpenURL)
// without creating, migrating or locking anything but for the read: a
// bbolt file is opened read-only (a node that holds it makes the check
// wait DefaultLockTimeout and fail with ErrLocked), a database's tables
// are read as they are. A bbolt file that does not exist is an error, not
// a store at version 0.
func CheckSchema(ctx context.Context, rawURL string) (SchemaStatus, error) {
	st := SchemaStatus{RecordsWant: SchemaVersion}
	var eng engine
	switch {
	case strings.HasPrefix(rawURL, "bolt:") && len(rawURL) > len("bolt:"):
		path := strings.TrimPrefix(rawURL, "bolt:")
		st.Desc = path
		if _, err := statStoreFile(path); err != nil {
			return st, fmt.Errorf("store: check %s: %w", path, err)
		}
		be, err := openBoltReadOnly(path, DefaultLockTimeout)
		if err != nil {
			return st, fmt.Errorf("store: check %s: %w", path, err)
		}
		eng = be
	case isPostgresURL(rawURL):
		st.TablesWant = pgSchemaVersion
		e, err := connectPostgres(ctx, rawURL, false)
		if err != nil {
			return st, fmt.Errorf("store: check: %w", err)
		}
		st.Desc = e.desc
		if st.Tables, err = pgVersion(ctx, e.pool); err != nil {
			err = grantHint(ctx, e, err)
			e.pool.Close()
			return st, fmt.Errorf("store: check %s: %w", e.desc, err)
		}
		if st.Tables != pgSchemaVersion {
			// Records are read through tables of this binary's version
			// only; those of no tables yet are none.
			e.pool.Close()
			st.RecordsKnown = st.Tables == 0
			return st, nil
		}
		close(e.closed) // never listens
		eng = e
	default:
		return st, invalidf("the store URL must start with bolt: or postgres://")
	}
	defer eng.close()
	err := eng.view(ctx, func(tx kvTx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil && len(meta.Get(keySchemaVersion)) > 0 {
			v, ok := schemaVersionOf(meta)
			if !ok {
				return &DamagedError{Path: st.Desc, Reason: "its schema version record is malformed"}
			}
			st.Records = v
		}
		return tx.err()
	})
	if err != nil {
		if pe, ok := eng.(*pgEngine); ok {
			err = grantHint(ctx, pe, err)
		}
		return st, fmt.Errorf("store: check %s: %w", st.Desc, err)
	}
	st.RecordsKnown = true
	return st, nil
}

// grantHint turns a read the database refused for lack of privilege
// (SQLSTATE 42501) into checkTablePrivileges' sentence, which names the
// tables the role may not use and the GRANT to run, as a start of the
// node with that role says; any other error it returns as it is.
func grantHint(ctx context.Context, e *pgEngine, err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		return err
	}
	if perr := checkTablePrivileges(ctx, e.pool); perr != nil {
		return perr
	}
	return err
}
