package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestCaseBucket(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		err := db.Update(ctx, func(tx *Tx) error {
			c, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			if err := c.Put([]byte("status"), []byte("RM.Accepted")); err != nil {
				return err
			}
			ledger, err := c.Bucket("ledger")
			if err != nil {
				return err
			}
			for i := 1; i <= 5; i++ {
				seq, err := ledger.Append(fmt.Appendf(nil, "event-%d", i))
				if err != nil {
					return err
				}
				if seq != uint64(i) {
					return fmt.Errorf("Append seq = %d, want %d", seq, i)
				}
			}
			other, err := tx.Case("case-2")
			if err != nil {
				return err
			}
			return other.Put([]byte("status"), []byte("RM.Start"))
		})
		if err != nil {
			t.Fatal(err)
		}

		var (
			status    []byte
			fromThree []string
			cases     []string
		)
		err = db.View(ctx, func(tx *ReadTx) error {
			c, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			status = c.Get([]byte("status"))
			if c.Get([]byte("missing")) != nil {
				t.Error("Get of a missing key returned a value")
			}
			ledger, err := c.Bucket("ledger")
			if err != nil {
				return err
			}
			if got := ledger.Sequence(); got != 5 {
				t.Errorf("Sequence = %d, want 5", got)
			}
			if err := ledger.Range(SeqKey(3), func(k, v []byte) error {
				seq, ok := KeySeq(k)
				if !ok {
					return fmt.Errorf("bad key %x", k)
				}
				fromThree = append(fromThree, fmt.Sprintf("%d:%s", seq, v))
				return nil
			}); err != nil {
				return err
			}
			// Writes are refused in a read transaction.
			if err := c.Put([]byte("x"), []byte("y")); err == nil {
				t.Error("Put in a read transaction succeeded")
			}
			if _, err := c.Bucket("nope"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing sub-bucket in read tx = %v, want ErrNotFound", err)
			}
			if _, err := tx.Case("case-404"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing case = %v, want ErrNotFound", err)
			}
			return tx.Cases(func(id string) error { cases = append(cases, id); return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		// Values were copied out and are still valid after the transaction.
		if string(status) != "RM.Accepted" {
			t.Errorf("status = %q", status)
		}
		if want := []string{"3:event-3", "4:event-4", "5:event-5"}; !slices.Equal(fromThree, want) {
			t.Errorf("Range from 3 = %v, want %v", fromThree, want)
		}
		if want := []string{"case-1", "case-2"}; !slices.Equal(cases, want) {
			t.Errorf("Cases = %v, want %v", cases, want)
		}

		// Range skips sub-buckets; RangePrefix stops at the prefix; Delete works.
		err = db.Update(ctx, func(tx *Tx) error {
			c, err := tx.Case("case-1")
			if err != nil {
				return err
			}
			for _, k := range []string{"p/a", "p/b", "q/a"} {
				if err := c.Put([]byte(k), []byte(k)); err != nil {
					return err
				}
			}
			if err := c.Delete([]byte("status")); err != nil {
				return err
			}
			var all, prefixed []string
			if err := c.ForEach(func(k, _ []byte) error { all = append(all, string(k)); return nil }); err != nil {
				return err
			}
			if err := c.RangePrefix([]byte("p/"), func(k, _ []byte) error { prefixed = append(prefixed, string(k)); return nil }); err != nil {
				return err
			}
			if want := []string{"p/a", "p/b", "q/a"}; !slices.Equal(all, want) {
				t.Errorf("ForEach = %v, want %v (no sub-buckets, no deleted key)", all, want)
			}
			if want := []string{"p/a", "p/b"}; !slices.Equal(prefixed, want) {
				t.Errorf("RangePrefix = %v, want %v", prefixed, want)
			}
			return tx.DeleteCase("case-2")
		})
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(ctx, func(tx *Tx) error { return tx.DeleteCase("case-2") })
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting a missing case = %v, want ErrNotFound", err)
		}
	})
}

func TestLocalActorsAndRemoteKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "vendor")
		mustPutActor(t, db, "coord")
		a, err := db.LocalActor(ctx, "coord")
		if err != nil {
			t.Fatal(err)
		}
		if a.Name != "coord" || a.Type != "Organization" || a.KeyID == "" || a.PublicKeyPEM == "" || a.CreatedAt.IsZero() {
			t.Errorf("LocalActor = %+v", a)
		}
		all, err := db.LocalActors(ctx)
		if err != nil || len(all) != 2 || all[0].Name != "coord" || all[1].Name != "vendor" {
			t.Errorf("LocalActors = %+v, %v", all, err)
		}
		if _, err := db.LocalActor(ctx, "ghost"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing actor = %v, want ErrNotFound", err)
		}
		if err := db.DeleteLocalActor(ctx, "vendor"); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteLocalActor(ctx, "vendor"); !errors.Is(err, ErrNotFound) {
			t.Errorf("second delete = %v, want ErrNotFound", err)
		}

		k := RemoteKey{
			KeyID:        "https://peer.example/actors/v#main-key",
			Owner:        "https://peer.example/actors/v",
			PublicKeyPEM: "PEM",
			FetchedAt:    newTestClock().Now(),
		}
		if err := db.PutRemoteKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		got, err := db.RemoteKey(ctx, k.KeyID)
		if err != nil || got != k {
			t.Errorf("RemoteKey = %+v, %v; want %+v", got, err, k)
		}
		if err := db.DeleteRemoteKey(ctx, k.KeyID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.RemoteKey(ctx, k.KeyID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted key = %v, want ErrNotFound", err)
		}
		if err := db.PutRemoteKey(ctx, RemoteKey{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("empty key id = %v, want ErrInvalid", err)
		}
	})
}

func TestDecodeRejectsDamagedRecords(t *testing.T) {
	good := encodeDelivery(&Delivery{ActivityID: "a", Recipient: "i", Attempts: 3})
	tests := []struct {
		name string
		v    []byte
	}{
		{"empty", nil},
		{"wrong tag", append([]byte{tagActor}, good[1:]...)},
		{"truncated", good[:len(good)-2]},
		{"trailing bytes", append(append([]byte{}, good...), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeDelivery(seqKey(1), tt.v); !errors.Is(err, errCorrupt) {
				t.Errorf("decode = %v, want errCorrupt", err)
			}
		})
	}
	d, err := decodeDelivery(seqKey(9), good)
	if err != nil || d.ID != 9 || d.ActivityID != "a" || d.Attempts != 3 || !d.NextAttempt.IsZero() {
		t.Errorf("decode good = %+v, %v", d, err)
	}
}
