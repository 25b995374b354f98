package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAcceptInbound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		errApply := errors.New("apply refused")
		first := inbound("https://peer.example/activities/1", "coord", "first")
		tests := []struct {
			name        string
			in          Inbound
			apply       func(*Tx) error
			wantErr     error
			wantDup     bool
			wantInbox   int // entries in coord's inbox afterwards
			wantOther   int // entries in other's inbox afterwards
			wantCaseKey bool
			sameID      bool // tt.in has the first activity's id: no new activity is stored
		}{
			{name: "duplicate with the same body is a no-op", in: first, wantDup: true, wantInbox: 1},
			{
				name:      "same id with a different body is a conflict",
				in:        inbound(first.ID, "coord", "tampered"),
				wantErr:   ErrConflict,
				wantInbox: 1,
			},
			{
				name: "same id and body for another local recipient adds an inbox entry and applies it for that recipient",
				in:   inbound(first.ID, "other", "first"),
				apply: func(tx *Tx) error {
					c, err := tx.Case("case-9")
					if err != nil {
						return err
					}
					_, err = c.Append([]byte("applied for other"))
					return err
				},
				wantInbox:   1,
				wantOther:   1,
				wantCaseKey: true,
				sameID:      true,
			},
			{
				name: "a refused apply for another local recipient stores nothing for it",
				in:   inbound(first.ID, "other", "first"),
				apply: func(tx *Tx) error {
					return errApply
				},
				wantErr:   errApply,
				wantInbox: 1,
				sameID:    true,
			},
			{
				name: "new activity runs apply in the same transaction",
				in:   inbound("https://peer.example/activities/2", "coord", "second"),
				apply: func(tx *Tx) error {
					c, err := tx.Case("case-9")
					if err != nil {
						return err
					}
					_, err = c.Append([]byte("https://peer.example/activities/2"))
					return err
				},
				wantInbox:   2,
				wantCaseKey: true,
			},
			{
				name: "apply failure stores nothing",
				in:   inbound("https://peer.example/activities/3", "coord", "third"),
				apply: func(tx *Tx) error {
					c, err := tx.Case("case-9")
					if err != nil {
						return err
					}
					if _, err := c.Append([]byte("partial")); err != nil {
						return err
					}
					return errApply
				},
				wantErr:   errApply,
				wantInbox: 1,
			},
			{
				name:      "unknown recipient is refused",
				in:        inbound("https://peer.example/activities/4", "nobody", "fourth"),
				wantErr:   ErrNotFound,
				wantInbox: 1,
			},
			{
				name: "digest that does not match the body is refused",
				in: func() Inbound {
					in := inbound("https://peer.example/activities/5", "coord", "fifth")
					in.Digest = digestOf([]byte("something else"))
					return in
				}(),
				wantErr:   ErrInvalid,
				wantInbox: 1,
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				db := be.open(t, Options{})
				ctx := context.Background()
				mustPutActor(t, db, "coord")
				mustPutActor(t, db, "other")
				res, err := db.AcceptInbound(ctx, first, nil)
				if err != nil || res.Duplicate || res.InboxSeq != 1 {
					t.Fatalf("first accept = %+v, %v; want new entry 1", res, err)
				}

				res, err = db.AcceptInbound(ctx, tt.in, tt.apply)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("AcceptInbound error = %v, want %v", err, tt.wantErr)
					}
				} else if err != nil {
					t.Fatalf("AcceptInbound: %v", err)
				}
				if res.Duplicate != tt.wantDup {
					t.Errorf("Duplicate = %v, want %v", res.Duplicate, tt.wantDup)
				}
				if got := countBucket(t, db, bucketInbox, "coord"); got != tt.wantInbox {
					t.Errorf("coord inbox entries = %d, want %d", got, tt.wantInbox)
				}
				if got := countBucket(t, db, bucketInbox, "other"); got != tt.wantOther {
					t.Errorf("other inbox entries = %d, want %d", got, tt.wantOther)
				}
				wantActivities := 1
				if tt.wantErr == nil && !tt.wantDup && !tt.sameID {
					wantActivities = 2
				}
				if got := countBucket(t, db, bucketActivities, ""); got != wantActivities {
					t.Errorf("activities = %d, want %d", got, wantActivities)
				}
				// The stored activity is the only record of an id.
				if got := countBucket(t, db, bucketDedup, ""); got != 0 {
					t.Errorf("dedup records = %d, want none", got)
				}
				if got := countBucket(t, db, bucketDedupTime, ""); got != 0 {
					t.Errorf("dedup time index = %d, want none", got)
				}
				err = db.View(ctx, func(tx *ReadTx) error {
					_, err := tx.Case("case-9")
					if got := err == nil; got != tt.wantCaseKey {
						t.Errorf("case-9 exists = %v, want %v", got, tt.wantCaseKey)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}

				// The stored first activity is unchanged, byte for byte.
				a, err := db.Activity(ctx, first.ID)
				if err != nil {
					t.Fatal(err)
				}
				if string(a.Body) != string(first.Body) || a.Digest != first.Digest || a.Direction != DirectionInbound {
					t.Errorf("stored activity = %+v, want the first body", a)
				}
			})
		}
	})
}

func TestAcceptInboundStoredFields(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		mustPutActor(t, db, "other")
		in := inbound("https://peer.example/activities/1", "coord", "x")
		in.ReceivedAt = time.Date(2026, 2, 3, 4, 5, 6, 7, time.UTC)
		in.Digest = ""
		if _, err := db.AcceptInbound(ctx, in, nil); err != nil {
			t.Fatal(err)
		}
		in.Recipient = "other"
		if _, err := db.AcceptInbound(ctx, in, nil); err != nil {
			t.Fatal(err)
		}
		a, err := db.Activity(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := StoredActivity{
			ID: in.ID, Direction: DirectionInbound, Actor: "coord", Recipients: []string{"coord", "other"},
			Sender: in.Sender, KeyID: in.KeyID, Digest: digestOf(in.Body), Semantic: in.Semantic,
			Body: in.Body, Time: in.ReceivedAt,
		}
		if fmt.Sprint(a) != fmt.Sprint(want) {
			t.Errorf("Activity =\n%+v\nwant\n%+v", a, want)
		}
		if _, err := db.Activity(ctx, "https://peer.example/missing"); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing activity error = %v, want ErrNotFound", err)
		}
	})
}

// TestSameActivityAcceptedConcurrentlyIsStoredOnce sends one activity
// from many goroutines at once, so that copies of it share a commit: the
// activity a copy stores is what the next copy of the same transaction
// finds, and only one is stored, with one inbox entry.
func TestSameActivityAcceptedConcurrentlyIsStoredOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		const copies = 32
		in := inbound("https://peer.example/activities/once", "coord", "n")
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			accepted int
		)
		for range copies {
			wg.Go(func() {
				res, err := db.AcceptInbound(ctx, in, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if !res.Duplicate {
					mu.Lock()
					accepted++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if accepted != 1 {
			t.Errorf("%d of %d copies accepted as new, want 1", accepted, copies)
		}
		if got := countBucket(t, db, bucketInbox, "coord"); got != 1 {
			t.Errorf("inbox entries = %d, want 1", got)
		}
		if got := countBucket(t, db, bucketActivities, ""); got != 1 {
			t.Errorf("activities = %d, want 1", got)
		}
	})
}

func TestAcceptInboundConcurrentDurable(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		path := be.newURL(t)
		db, err := OpenURL(context.Background(), path, Options{}) // real fsync
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		const writers, each = 64, 8
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("https://peer.example/activities/%d-%d", w, i)
					res, err := db.AcceptInbound(ctx, inbound(id, "coord", "n"), nil)
					if err == nil && (res.Duplicate || res.InboxSeq == 0) {
						err = fmt.Errorf("%s: result %+v", id, res)
					}
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}

		db, err = OpenURL(context.Background(), path, Options{NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Check(ctx); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		cursor := ""
		for {
			page, next, err := db.InboxPage(ctx, "coord", cursor, 100)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range page {
				if seen[a.ID] {
					t.Errorf("%s listed twice", a.ID)
				}
				seen[a.ID] = true
			}
			if next == "" {
				break
			}
			cursor = next
		}
		if len(seen) != writers*each {
			t.Errorf("inbox holds %d activities after reopen, want %d", len(seen), writers*each)
		}
		if got := countBucket(t, db, bucketActivities, ""); got != writers*each {
			t.Errorf("activities = %d, want %d", got, writers*each)
		}
	})
}

func TestInboxPageOrderAndCursor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		for i := 1; i <= 7; i++ {
			if _, err := db.AcceptInbound(ctx, inbound(fmt.Sprintf("a%d", i), "coord", "n"), nil); err != nil {
				t.Fatal(err)
			}
		}
		var got [][]string
		cursor := ""
		for {
			page, next, err := db.InboxPage(ctx, "coord", cursor, 3)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, a := range page {
				ids = append(ids, a.ID)
			}
			got = append(got, ids)
			if next == "" {
				break
			}
			cursor = next
		}
		want := "[[a7 a6 a5] [a4 a3 a2] [a1]]"
		if fmt.Sprint(got) != want {
			t.Errorf("pages = %v, want %v", got, want)
		}

		if page, next, err := db.InboxPage(ctx, "coord", "", 0); err != nil || len(page) != 7 || next != "" {
			t.Errorf("default page = %d entries, next %q, err %v; want 7, \"\", nil", len(page), next, err)
		}
		if page, _, err := db.OutboxPage(ctx, "coord", "", 10); err != nil || len(page) != 0 {
			t.Errorf("empty outbox = %d entries, %v", len(page), err)
		}
		if _, _, err := db.InboxPage(ctx, "coord", "not a cursor!", 3); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad cursor error = %v, want ErrInvalid", err)
		}
		if _, _, err := db.InboxPage(ctx, "nobody", "", 3); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown actor error = %v, want ErrNotFound", err)
		}
	})
}

// putOldDedupRecord writes the dedup record, and its entry in the time
// index, that versions before this one wrote beside every accepted
// activity: tag 0x02, the body's digest and the first-seen time.
func putOldDedupRecord(t *testing.T, db *DB, in Inbound) {
	t.Helper()
	digest, err := bodyDigest(in.Body, in.Digest)
	if err != nil {
		t.Fatal(err)
	}
	e := newEncoder(tagDedup, len(digest)+12)
	e.bytes(digest)
	e.time(in.ReceivedAt)
	err = db.Update(context.Background(), func(tx *Tx) error {
		if err := tx.bucket(bucketDedup).Put([]byte(in.ID), e.buf); err != nil {
			return err
		}
		return tx.bucket(bucketDedupTime).Put(dedupTimeKey(in.ReceivedAt, in.ID), nil)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestOlderStoresDedupRecordsArePruned checks a store that an older
// version wrote, with a dedup record beside each activity: its records
// are pruned by age, and every id, pruned or not, is still recognised
// through its activity.
func TestOlderStoresDedupRecordsArePruned(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now})
		ctx := context.Background()
		mustPutActor(t, db, "coord")

		old := inbound("https://peer.example/old", "coord", "old")
		old.ReceivedAt = clock.Now().Add(-40 * 24 * time.Hour)
		recent := inbound("https://peer.example/recent", "coord", "recent")
		recent.ReceivedAt = clock.Now().Add(-2 * 24 * time.Hour)
		for _, in := range []Inbound{old, recent} {
			if _, err := db.AcceptInbound(ctx, in, nil); err != nil {
				t.Fatal(err)
			}
			putOldDedupRecord(t, db, in)
		}
		n, err := db.PruneDedup(ctx, clock.Now().Add(-30*24*time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PruneDedup = %d, %v; want 1", n, err)
		}
		if got := countBucket(t, db, bucketDedup, ""); got != 1 {
			t.Errorf("dedup records after prune = %d, want 1", got)
		}
		if got := countBucket(t, db, bucketDedupTime, ""); got != 1 {
			t.Errorf("dedup time index after prune = %d, want 1", got)
		}
		for _, in := range []Inbound{old, recent} {
			if res, err := db.AcceptInbound(ctx, in, nil); err != nil || !res.Duplicate {
				t.Errorf("replay of %s = %+v, %v; want duplicate", in.ID, res, err)
			}
			if _, err := db.AcceptInbound(ctx, inbound(in.ID, "coord", "changed"), nil); !errors.Is(err, ErrConflict) {
				t.Errorf("changed body for %s = %v, want ErrConflict", in.ID, err)
			}
		}
		if got := countBucket(t, db, bucketInbox, "coord"); got != 2 {
			t.Errorf("inbox entries = %d, want 2", got)
		}
		// Nothing new is recorded beside the activities.
		if _, err := db.AcceptInbound(ctx, inbound("https://peer.example/new", "coord", "new"), nil); err != nil {
			t.Fatal(err)
		}
		if got := countBucket(t, db, bucketDedup, ""); got != 1 {
			t.Errorf("dedup records after a new accept = %d, want 1", got)
		}
	})
}

func TestPruneDedupManyChunks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		clock := newTestClock()
		db := be.open(t, Options{Now: clock.Now})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		const n = pruneChunk*2 + 17
		for i := range n {
			in := inbound(fmt.Sprintf("a%d", i), "coord", "n")
			in.ReceivedAt = clock.Now().Add(-time.Duration(i+1) * time.Minute)
			putOldDedupRecord(t, db, in)
		}
		got, err := db.PruneDedup(ctx, clock.Now())
		if err != nil || got != n {
			t.Fatalf("PruneDedup = %d, %v; want %d", got, err, n)
		}
		if left := countBucket(t, db, bucketDedup, ""); left != 0 {
			t.Errorf("%d dedup records left", left)
		}
		if left := countBucket(t, db, bucketDedupTime, ""); left != 0 {
			t.Errorf("%d dedup time index entries left", left)
		}
	})
}

// TestLongIDsAreRefusedOnEveryEngine checks that an id longer than
// MaxIDSize is refused as invalid, and stores nothing, on both engines
// (PostgreSQL's index could not hold it).
func TestLongIDsAreRefusedOnEveryEngine(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		db := be.open(t, Options{})
		ctx := context.Background()
		mustPutActor(t, db, "coord")
		long := "https://peer.example/activities/" + strings.Repeat("x", MaxIDSize)
		if _, err := db.AcceptInbound(ctx, inbound(long, "coord", "n"), nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("AcceptInbound of a %d-byte id: %v, want ErrInvalid", len(long), err)
		}
		if err := db.EnqueueOutbound(ctx, Outbound{ID: long, Actor: "coord", Body: []byte("{}")}, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("EnqueueOutbound of a %d-byte id: %v, want ErrInvalid", len(long), err)
		}
		if err := db.PutRemoteKey(ctx, RemoteKey{KeyID: long, Owner: "https://peer.example/a"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("PutRemoteKey of a %d-byte key id: %v, want ErrInvalid", len(long), err)
		}
		if got := countBucket(t, db, bucketActivities, ""); got != 0 {
			t.Errorf("%d activities stored", got)
		}
		// The longest id allowed is stored.
		ok := long[:MaxIDSize]
		if _, err := db.AcceptInbound(ctx, inbound(ok, "coord", "n"), nil); err != nil {
			t.Errorf("AcceptInbound of a %d-byte id: %v", len(ok), err)
		}
	})
}
