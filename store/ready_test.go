package store

import (
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// TestReadySaysWhySchemaIsNotServed: a store whose records another
// process of a newer release migrated after this one opened it is not
// ready for this process, and the error names both versions; at the
// binary's version it is ready. Once closed, it is not ready either.
func TestReadySaysWhySchemaIsNotServed(t *testing.T) {
	tests := []struct {
		name    string
		version uint64
		want    string // in the error; "" for ready
	}{
		{"at this binary's version", SchemaVersion, ""},
		{"migrated by a newer release", SchemaVersion + 1, "a newer release migrated"},
		{"older than this binary", SchemaVersion - 1, "a migration is pending"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				db := be.open(t, Options{})
				ctx := context.Background()
				v := make([]byte, 8)
				binary.BigEndian.PutUint64(v, tt.version)
				if err := db.eng.update(ctx, func(tx kvTx) error {
					return tx.Bucket(bucketMeta).Put(keySchemaVersion, v)
				}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { // for the consistency check at the end
					binary.BigEndian.PutUint64(v, SchemaVersion)
					_ = db.eng.update(ctx, func(tx kvTx) error { return tx.Bucket(bucketMeta).Put(keySchemaVersion, v) })
				})
				err := db.Ready(ctx)
				switch {
				case tt.want == "" && err != nil:
					t.Fatalf("Ready = %v, want ready", err)
				case tt.want != "" && (!errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), tt.want)):
					t.Fatalf("Ready = %v, want ErrSchema saying %q", err, tt.want)
				}
			})
		})
	}
}
