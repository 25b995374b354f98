package store

import (
	"context"
	"testing"
	"time"
)

// TestLastBackupSent records backups sent and reads the last one back, on
// both engines; a store that sent none says so.
func TestLastBackupSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{DataKey: testKey(3)})
		ctx := context.Background()
		last := func() (BackupSent, bool) {
			t.Helper()
			var got BackupSent
			var ok bool
			if err := db.View(ctx, func(tx *ReadTx) error {
				var err error
				got, ok, err = tx.LastBackupSent()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return got, ok
		}
		if got, ok := last(); ok {
			t.Fatalf("a new store's last backup: %+v", got)
		}
		at := time.Date(2026, 12, 7, 9, 0, 0, 123, time.UTC)
		for i, want := range []BackupSent{{At: at, Bytes: 1 << 20}, {At: at.Add(24 * time.Hour), Bytes: 3 << 30}} {
			if err := db.Update(ctx, func(tx *Tx) error { return tx.RecordBackupSent(want.At, want.Bytes) }); err != nil {
				t.Fatal(err)
			}
			if got, ok := last(); !ok || !got.At.Equal(want.At) || got.Bytes != want.Bytes {
				t.Errorf("after backup %d: %+v, %v; want %+v", i, got, ok, want)
			}
		}
	})
}
