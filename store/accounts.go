package store

import (
	"errors"
	"fmt"
)

// The accounts bucket holds the node's people: users, their password
// hashes and second factors, their tokens and dashboard sessions, pending
// logins and login throttles. Package accounts owns the records and their
// indexes; the store gives it named sub-buckets of one top-level bucket,
// "accounts", each a sealed, ordered namespace like a case's (CaseBucket):
// every value is sealed with the data key, with "accounts/" and the
// sub-bucket's name as additional data, and keys stay plain, so accounts
// keys what a key may show (hashes, ids) and never a secret.

var bucketAccounts = []byte("accounts")

// AccountsBucket is a sub-bucket of the accounts bucket: the same sealed,
// ordered key/value namespace as a case's bucket.
type AccountsBucket = CaseBucket

// Accounts returns the named sub-bucket of the accounts bucket, or
// ErrNotFound when no write has created it.
func (r *ReadTx) Accounts(name string) (*AccountsBucket, error) {
	if name == "" {
		return nil, fmt.Errorf("accounts: empty sub-bucket name: %w", ErrInvalid)
	}
	b := r.bucket(bucketAccounts).Bucket([]byte(name))
	if b == nil {
		return nil, fmt.Errorf("accounts bucket %s: %w", name, ErrNotFound)
	}
	return &AccountsBucket{b: b, name: name, r: r, root: string(bucketAccounts)}, nil
}

// Accounts returns the named sub-bucket of the accounts bucket, creating
// it if it does not exist yet.
func (t *Tx) Accounts(name string) (*AccountsBucket, error) {
	if name == "" {
		return nil, fmt.Errorf("accounts: empty sub-bucket name: %w", ErrInvalid)
	}
	b, err := t.bucket(bucketAccounts).CreateBucketIfNotExists([]byte(name))
	if err != nil {
		return nil, fmt.Errorf("accounts bucket %s: %w", name, err)
	}
	return &AccountsBucket{b: b, name: name, r: &t.ReadTx, root: string(bucketAccounts)}, nil
}

// AccountsView calls fn with the named sub-bucket of the accounts bucket,
// or does nothing when no write has created it: a read of an empty
// namespace finds nothing.
func (r *ReadTx) AccountsView(name string, fn func(*AccountsBucket) error) error {
	b, err := r.Accounts(name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return fn(b)
}
