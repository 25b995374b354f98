// Package storetest damages the file of a stopped bbolt store as a disk
// would, for the tests of what the node does with a record it holds but
// cannot read. It is used by tests only: like internal/pgtest for
// PostgreSQL, it is the one package besides store that opens the engine's
// files, and it knows one thing of their layout, the bucket that holds
// activities by id.
package storetest

import (
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// DamageActivity replaces the stored record of activity id in the bbolt
// store file at path, which no process may hold open, with a byte that
// does not decode. It fails t when the file holds no such record.
func DamageActivity(t testing.TB, path, id string) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte("activities"))
		if b == nil || b.Get([]byte(id)) == nil {
			return fmt.Errorf("no stored activity %s to damage", id)
		}
		return b.Put([]byte(id), []byte{0xff})
	})
	if cerr := bdb.Close(); err != nil || cerr != nil {
		t.Fatalf("damage activity %s: %v %v", id, err, cerr)
	}
}
