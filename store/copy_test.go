package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/internal/pgtest"
)

// dump lists every bucket, key, value and sequence of the store at u, as
// stored (sealed values as they are), in order.
func dump(t *testing.T, u string) string {
	t.Helper()
	eng, err := openRawEngine(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.close()
	var out strings.Builder
	var walk func(path string, b kvBucket)
	walk = func(path string, b kvBucket) {
		fmt.Fprintf(&out, "bucket %s seq %d\n", path, b.Sequence())
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				walk(fmt.Sprintf("%s/%x", path, k), b.Bucket(k))
				continue
			}
			fmt.Fprintf(&out, "%s %x = %x\n", path, k, v)
		}
	}
	if err := eng.view(context.Background(), func(tx kvTx) error {
		return tx.ForEachBucket(func(name []byte) error {
			walk(fmt.Sprintf("%x", name), tx.Bucket(name))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestCopyBetweenEngines copies a sealed store from bbolt to PostgreSQL and
// back, and checks that every bucket, key, value and sequence arrived as
// it was, and that each copy opens with the same data key and keeps
// working where the original left off.
func TestCopyBetweenEngines(t *testing.T) {
	ctx := context.Background()
	boltURL := "bolt:" + filepath.Join(t.TempDir(), "vultron.db")
	db, err := OpenURL(ctx, boltURL, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	fillStore(t, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	want := dump(t, boltURL)

	pgURL := pgtest.Database(t)
	back := "bolt:" + filepath.Join(t.TempDir(), "back.db")
	for _, hop := range []struct{ from, to string }{{boltURL, pgURL}, {pgURL, back}} {
		st, err := Copy(ctx, hop.from, hop.to)
		if err != nil {
			t.Fatalf("copy %s → %s: %v", hop.from, hop.to, err)
		}
		if st.Keys == 0 || st.Buckets < len(allBuckets) {
			t.Errorf("copy %s → %s: %+v", hop.from, hop.to, st)
		}
		if got := dump(t, hop.to); got != want {
			t.Errorf("copy to %s differs from the source:\n%s", hop.to, firstDiff(want, got))
		}
		if _, err := Copy(ctx, hop.from, hop.to); !errors.Is(err, ErrInvalid) {
			t.Errorf("copy into a store that is not empty: %v, want ErrInvalid", err)
		}
		c, err := OpenURL(ctx, hop.to, Options{DataKey: testKey(2), NoSync: true})
		if err != nil {
			t.Fatalf("open the copy %s: %v", hop.to, err)
		}
		checkStore(t, c)
		if err := c.Check(ctx); err != nil {
			t.Error(err)
		}
		if v, err := c.VerifyAudit(ctx); err != nil || !v.OK {
			t.Errorf("audit of the copy: %+v, %v", v, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// The copy keeps working: sequences continue where they were.
	c, err := OpenURL(ctx, back, Options{DataKey: testKey(2), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	mustPutActor(t, c, "coord")
	enqueue(t, c, "after-copy", DeliveryTarget{Recipient: inboxA})
	ds := allDeliveries(t, c, false)
	if len(ds) != 2 || ds[1].ID <= ds[0].ID || ds[1].ActivityID != "after-copy" {
		t.Errorf("pending after a copy and an enqueue: %+v", ds)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenURL(ctx, back, Options{NoSync: true}); !errors.Is(err, ErrDataKey) {
		t.Errorf("a sealed copy opened without its key: %v, want ErrDataKey", err)
	}
}

func TestCopyRefusesWhatIsNotAStore(t *testing.T) {
	ctx := context.Background()
	empty := "bolt:" + filepath.Join(t.TempDir(), "empty.db")
	if _, err := Copy(ctx, empty, "bolt:"+filepath.Join(t.TempDir(), "to.db")); !errors.Is(err, ErrSchema) {
		t.Errorf("copy from an empty file: %v, want ErrSchema", err)
	}
	if _, err := Copy(ctx, "mysql://x", empty); !errors.Is(err, ErrInvalid) {
		t.Errorf("copy from an unknown URL: %v, want ErrInvalid", err)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if !bytes.Equal([]byte(al[i]), []byte(bl[i])) {
			return fmt.Sprintf("line %d:\nwant %s\n got %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d lines", len(al), len(bl))
}
