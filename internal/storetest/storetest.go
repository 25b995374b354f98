// Package storetest damages the file of a stopped bbolt store as a disk
// would, for the tests of what the node does with a record it holds but
// cannot read. It is used by tests only: like internal/pgtest for
// PostgreSQL, it is the one package besides store that opens the engine's
// files, and it knows three things of their layout: the buckets that hold
// activities by id, local actors by name, pending deliveries by id (an
// 8-byte big-endian number) and an actor's fan-outs to its followers
// ("o", 0, the actor's name, 0, then a sequence number, in the follows
// bucket).
package storetest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// DamageActivity replaces the stored record of activity id in the bbolt
// store file at path, which no process may hold open, with a byte that
// does not decode. It fails t when the file holds no such record.
func DamageActivity(t testing.TB, path, id string) {
	t.Helper()
	damage(t, path, "activities", id)
}

// DamageLocalActor does to the record of local actor name (a configured
// actor or a Case Actor) what DamageActivity does to an activity's.
func DamageLocalActor(t testing.TB, path, name string) {
	t.Helper()
	damage(t, path, "actors", name)
}

// DamageDelivery does to the record of the pending delivery id what
// DamageActivity does to an activity's.
func DamageDelivery(t testing.TB, path string, id uint64) {
	t.Helper()
	damage(t, path, "deliveries", string(binary.BigEndian.AppendUint64(nil, id)))
}

// DamageFanout does to the record of the oldest fan-out in progress of
// local actor name what DamageActivity does to an activity's.
func DamageFanout(t testing.TB, path, name string) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	prefix := append(append([]byte{'o', 0}, name...), 0)
	var key []byte
	err = bdb.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("follows")); b != nil {
			if k, _ := b.Cursor().Seek(prefix); bytes.HasPrefix(k, prefix) {
				key = bytes.Clone(k)
			}
		}
		return nil
	})
	if cerr := bdb.Close(); err != nil || cerr != nil {
		t.Fatalf("find the fan-out of %s: %v %v", name, err, cerr)
	}
	if key == nil {
		t.Fatalf("no fan-out of %s to damage", name)
	}
	damage(t, path, "follows", string(key))
}

// damage replaces the value of key in the top-level bucket of the bbolt
// store file at path with a byte that does not decode.
func damage(t testing.TB, path, bucket, key string) {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = bdb.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil || b.Get([]byte(key)) == nil {
			return fmt.Errorf("no record %q in bucket %s to damage", key, bucket)
		}
		return b.Put([]byte(key), []byte{0xff})
	})
	if cerr := bdb.Close(); err != nil || cerr != nil {
		t.Fatalf("damage %s %s: %v %v", bucket, key, err, cerr)
	}
}
