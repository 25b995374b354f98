package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// storedDelivery returns the bytes the engine holds for delivery id, as
// stored (sealed).
func storedDelivery(t *testing.T, db *DB, id uint64) []byte {
	t.Helper()
	var raw []byte
	err := db.eng.view(context.Background(), func(tx kvTx) error {
		raw = cloneBytes(tx.Bucket(bucketDeliveries).Get(seqKey(id)))
		return nil
	})
	if err != nil || raw == nil {
		t.Fatalf("read the stored record of delivery %d: %v (%d bytes)", id, err, len(raw))
	}
	return raw
}

// putStoredDelivery replaces the bytes the engine holds for delivery id,
// under the store's sealing, as a failing disk or a bad copy would.
func putStoredDelivery(t *testing.T, db *DB, id uint64, raw []byte) {
	t.Helper()
	err := db.eng.update(context.Background(), func(tx kvTx) error {
		return tx.Bucket(bucketDeliveries).Put(seqKey(id), raw)
	})
	if err != nil {
		t.Fatalf("damage delivery %d: %v", id, err)
	}
}

// TestADamagedDeliveryIsSetAside: a delivery record that does not open
// (a flipped byte of its sealed value) or does not decode (cut short, or
// written by a newer release under a tag this one does not know) used
// to fail every read of the due deliveries, so that nothing more was
// sent. It is set aside instead, its bytes kept as they were stored and
// counted; the read goes on with the others, and the delivery behind it
// in its lane becomes due. The store's consistency check holds after.
func TestADamagedDeliveryIsSetAside(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, db *DB, id uint64) []byte // returns the bytes stored
	}{
		{"a flipped byte of the sealed value", func(t *testing.T, db *DB, id uint64) []byte {
			raw := storedDelivery(t, db, id)
			raw[len(raw)-3] ^= 0x40
			putStoredDelivery(t, db, id, raw)
			return raw
		}},
		{"a record cut short", func(t *testing.T, db *DB, id uint64) []byte {
			return sealDelivery(t, db, id, func(rec []byte) []byte { return rec[:len(rec)/2] })
		}},
		{"a record of a newer release", func(t *testing.T, db *DB, id uint64) []byte {
			return sealDelivery(t, db, id, func(rec []byte) []byte { return append([]byte{0x7e}, rec[1:]...) })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				clock := newTestClock()
				db := be.open(t, Options{Now: clock.Now, DataKey: testKey(7)})
				ctx := context.Background()
				mustPutActor(t, db, "coord")
				enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
				enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})
				enqueue(t, db, "o3", DeliveryTarget{inboxB, ""})
				pending := allDeliveries(t, db, false)
				o1 := find(t, pending, "o1", inboxA)
				raw := tt.damage(t, db, o1.ID)

				got, _ := dueIDs(t, db, clock.Now())
				if want := []string{"o3→" + inboxB}; !slices.Equal(got, want) {
					t.Fatalf("due with o1 damaged = %v, want %v", got, want)
				}
				got, _ = dueIDs(t, db, clock.Now())
				if want := []string{"o2→" + inboxA}; !slices.Equal(got, want) {
					t.Fatalf("due once o1 is set aside = %v, want %v (the next of its lane)", got, want)
				}
				if n, err := db.PendingCount(ctx); err != nil || n != 2 {
					t.Errorf("PendingCount = %d, %v; want 2 (o2, o3)", n, err)
				}
				if n, err := db.DamagedDeliveryCount(ctx); err != nil || n != 1 {
					t.Errorf("DamagedDeliveryCount = %d, %v; want 1", n, err)
				}
				var kept []byte
				if err := db.eng.view(ctx, func(tx kvTx) error {
					kept = cloneBytes(tx.Bucket(bucketDamagedDeliveries).Get(seqKey(o1.ID)))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(kept, raw) {
					t.Errorf("bytes kept for delivery %d = %x, want them as stored, %x", o1.ID, kept, raw)
				}
				if err := db.Check(ctx); err != nil {
					t.Errorf("Check after the set-aside: %v", err)
				}
			})
		})
	}
}

// sealDelivery replaces the record of delivery id with what change makes
// of its encoding, sealed as the store seals it, and returns the bytes
// stored.
func sealDelivery(t *testing.T, db *DB, id uint64, change func(rec []byte) []byte) []byte {
	t.Helper()
	d := find(t, allDeliveries(t, db, false), "o1", inboxA)
	sealed, err := db.sl.seal(string(bucketDeliveries), seqKey(id), change(encodeDelivery(&d)))
	if err != nil {
		t.Fatal(err)
	}
	putStoredDelivery(t, db, id, sealed)
	return sealed
}

// TestADamagedDeliveryBehindTheHeadOfItsLane: the completion (or retry
// to the dead letters) of a lane's head makes the next delivery of the
// lane its head, which reads that delivery's due time from its record.
// A record there that does not open failed the completion, again at
// every attempt, so the head was sent again and again and the lane never
// moved. The damaged delivery is now made due at once instead, and the
// next read of the due deliveries sets it aside.
func TestADamagedDeliveryBehindTheHeadOfItsLane(t *testing.T) {
	outcomes := []struct {
		name   string
		record func(db *DB, d Delivery) error
	}{
		{"completed", func(db *DB, d Delivery) error { return db.CompleteDelivery(context.Background(), d.ID) }},
		{"dead-lettered", func(db *DB, d Delivery) error { return db.DeadLetter(context.Background(), d.ID, "410 Gone") }},
	}
	for _, tt := range outcomes {
		t.Run(tt.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				clock := newTestClock()
				db := be.open(t, Options{Now: clock.Now, DataKey: testKey(8)})
				ctx := context.Background()
				mustPutActor(t, db, "coord")
				enqueue(t, db, "o1", DeliveryTarget{inboxA, "case-1"})
				enqueue(t, db, "o2", DeliveryTarget{inboxA, "case-1"})
				enqueue(t, db, "o3", DeliveryTarget{inboxA, "case-1"})
				o2 := find(t, allDeliveries(t, db, false), "o2", inboxA)
				raw := storedDelivery(t, db, o2.ID)
				raw[len(raw)-1] ^= 0x01
				putStoredDelivery(t, db, o2.ID, raw)

				_, due := dueIDs(t, db, clock.Now())
				if len(due) != 1 || due[0].ActivityID != "o1" {
					t.Fatalf("due = %v, want o1, the head of the lane", due)
				}
				if err := tt.record(db, due[0]); err != nil {
					t.Fatalf("the outcome of o1, with o2 behind it damaged: %v", err)
				}
				if got, _ := dueIDs(t, db, clock.Now()); len(got) != 0 {
					t.Fatalf("due once o1 is done = %v, want none (o2 is set aside)", got)
				}
				got, _ := dueIDs(t, db, clock.Now())
				if want := []string{"o3→" + inboxA}; !slices.Equal(got, want) {
					t.Fatalf("due once o2 is set aside = %v, want %v", got, want)
				}
				if n, err := db.DamagedDeliveryCount(ctx); err != nil || n != 1 {
					t.Errorf("DamagedDeliveryCount = %d, %v; want 1", n, err)
				}
			})
		})
	}
}

// TestDamagedDeliveriesAreListedAndDiscarded: the delivery records set
// aside as damaged could be found only by reading the store's bucket
// with the data key. They are listed, a bounded page at a time, with
// when each was set aside, its size and why it did not open, never its
// bytes; an operator who has looked discards one, which is audited with
// who asked, and the count and the consistency check follow.
func TestDamagedDeliveriesAreListedAndDiscarded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now, DataKey: testKey(9)})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		if got, next, err := db.DamagedDeliveries(ctx, 0, 10); err != nil || len(got) != 0 || next != 0 {
			t.Fatalf("DamagedDeliveries of a store with none = %+v, %d, %v; want none", got, next, err)
		}
		enqueue(t, db, "o1", DeliveryTarget{inboxA, ""})
		enqueue(t, db, "o2", DeliveryTarget{inboxB, ""})
		enqueue(t, db, "o3", DeliveryTarget{"https://c.example/inbox", ""})
		pending := allDeliveries(t, db, false)
		var damaged []uint64
		var sizes []int
		for _, d := range pending {
			raw := storedDelivery(t, db, d.ID)
			raw[len(raw)-2] ^= 0x10
			putStoredDelivery(t, db, d.ID, raw)
			damaged = append(damaged, d.ID)
			sizes = append(sizes, len(raw))
		}
		setAside := clock.Advance(time.Minute)
		if got, _ := dueIDs(t, db, clock.Now()); len(got) != 0 {
			t.Fatalf("due = %v, want none (all three are damaged)", got)
		}

		var listed []DamagedDelivery
		for after, pages := uint64(0), 0; ; pages++ {
			if pages > len(damaged) {
				t.Fatalf("more than %d pages of 2", pages)
			}
			page, next, err := db.DamagedDeliveries(ctx, after, 2)
			if err != nil {
				t.Fatalf("DamagedDeliveries after %d: %v", after, err)
			}
			if len(page) > 2 {
				t.Fatalf("page of %d, want at most the limit of 2", len(page))
			}
			listed = append(listed, page...)
			if next == 0 {
				break
			}
			after = next
		}
		if len(listed) != len(damaged) {
			t.Fatalf("listed %+v, want the %d damaged deliveries", listed, len(damaged))
		}
		for i, dd := range listed {
			if dd.ID != damaged[i] || dd.Bytes != sizes[i] || !dd.SetAside.Equal(setAside) {
				t.Errorf("damaged delivery %d = %+v, want id %d, %d bytes, set aside at %s", i, dd, damaged[i], sizes[i], setAside)
			}
			if !strings.Contains(dd.Reason, "does not open with data key") {
				t.Errorf("reason of damaged delivery %d = %q, want why it did not open", dd.ID, dd.Reason)
			}
		}

		// A record set aside by a release that kept no note is listed
		// all the same, without a time, its reason not noted.
		if err := db.eng.update(ctx, func(tx kvTx) error {
			return tx.Bucket(bucketDamagedNotes).Delete(seqKey(damaged[2]))
		}); err != nil {
			t.Fatal(err)
		}
		if page, _, err := db.DamagedDeliveries(ctx, damaged[1], 10); err != nil || len(page) != 1 ||
			page[0].Reason != UnknownDamage || !page[0].SetAside.IsZero() || page[0].Bytes != sizes[2] {
			t.Errorf("a damaged delivery without a note: %+v, %v; want it with %q, no time, %d bytes", page, err, UnknownDamage, sizes[2])
		}

		if err := db.DiscardDamagedDelivery(ctx, damaged[1], "alice via token 1"); err != nil {
			t.Fatalf("DiscardDamagedDelivery: %v", err)
		}
		if err := db.DiscardDamagedDelivery(ctx, damaged[1], "alice via token 1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("a second discard of %d: %v, want ErrNotFound", damaged[1], err)
		}
		if err := db.DiscardDamagedDelivery(ctx, 1<<40, "alice via token 1"); !errors.Is(err, ErrNotFound) {
			t.Errorf("discard of a delivery never set aside: %v, want ErrNotFound", err)
		}
		left, _, err := db.DamagedDeliveries(ctx, 0, 10)
		if err != nil || len(left) != 2 || left[0].ID != damaged[0] || left[1].ID != damaged[2] {
			t.Errorf("after the discard: %+v, %v; want %d and %d", left, err, damaged[0], damaged[2])
		}
		if n, err := db.DamagedDeliveryCount(ctx); err != nil || n != 2 {
			t.Errorf("DamagedDeliveryCount = %d, %v; want 2", n, err)
		}
		recs, _, err := db.AuditPage(ctx, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, r := range recs {
			if r.Decision == DecisionDiscarded {
				found = true
				if r.Principal != "alice via token 1" || !strings.Contains(r.Reason, fmt.Sprint(damaged[1])) {
					t.Errorf("audit record of the discard = %+v, want alice's, naming delivery %d", r, damaged[1])
				}
			}
		}
		if !found {
			t.Errorf("no audit record of the discard in %+v", recs)
		}
		if err := db.Check(ctx); err != nil {
			t.Errorf("Check after the discard: %v", err)
		}
	})
}
