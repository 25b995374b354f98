package store

import (
	"context"
	"testing"
)

// TestFeedTokenGeneration checks that the generation starts at 0, that each
// rotation bumps it by one, and that it survives a reopen.
func TestFeedTokenGeneration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		ctx := context.Background()
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		read := func(db *DB) uint64 {
			t.Helper()
			var gen uint64
			if err := db.View(ctx, func(tx *ReadTx) error {
				var err error
				gen, err = tx.FeedTokenGeneration()
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return gen
		}
		if g := read(db); g != 0 {
			t.Fatalf("a new store's generation is %d, want 0", g)
		}
		for want := uint64(1); want <= 2; want++ {
			got, err := db.RotateFeedToken(ctx, "")
			if err != nil || got != want || read(db) != want {
				t.Fatalf("rotation %d: got %d (%v), read %d", want, got, err, read(db))
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		db, err = OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if g := read(db); g != 2 {
			t.Errorf("after a reopen the generation is %d, want 2", g)
		}
	})
}
