package social

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/store"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// engines are the store engines a test runs against: each gives the URL
// of a new, empty store.
var engines = []struct {
	name   string
	newURL func(t *testing.T) string
}{
	{"bolt", func(t *testing.T) string { return "bolt:" + filepath.Join(t.TempDir(), "v.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Database(t) }},
}

// openURL opens the store at u, closed at the end of the test.
func openURL(t *testing.T, u string) *store.DB {
	t.Helper()
	db, err := store.OpenURL(context.Background(), u, store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open %s: %v", u, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// announce stores an outbound activity of vendor addressed to its
// followers and records its fan-out, which skips named.
func announce(t *testing.T, db *store.DB, id string, named ...string) {
	t.Helper()
	body := fmt.Appendf(nil, `{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Announce","actor":%q,"object":"https://v.example/advisories/1","to":[%q]}`,
		id, vendorID, FollowersOf(vendorID))
	var targets []store.DeliveryTarget
	for _, r := range named {
		targets = append(targets, store.DeliveryTarget{Recipient: r})
	}
	if err := db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: "vendor", Body: body, Deliveries: targets}, func(tx *store.Tx) error {
		started, err := StartFanout(tx, vendor, id, "", []string{FollowersOf(vendorID)}, named)
		if err == nil && !started {
			err = fmt.Errorf("no fan-out started for %s", id)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// queued returns the recipients of the pending deliveries of activity id,
// in queue order.
func queued(t *testing.T, db *store.DB, id string) []string {
	t.Helper()
	var out []string
	after := uint64(0)
	for {
		page, next, err := db.PendingDeliveries(context.Background(), after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page {
			if d.ActivityID == id {
				out = append(out, d.Recipient)
			}
		}
		if next == 0 {
			return out
		}
		after = next
	}
}

// putFollowers stores vendor's accepted followers: n on each of hosts,
// those of the even hosts with the host's shared inbox.
func putFollowers(t *testing.T, db *store.DB, hosts, n int) (want []string) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.PutLocalActor(store.LocalActor{Name: "vendor", Type: "Organization", KeyID: "k", PublicKeyPEM: "p"}); err != nil {
			return err
		}
		for h := range hosts {
			shared := ""
			if h%2 == 0 {
				shared = fmt.Sprintf("https://h%d.example/inbox", h)
				want = append(want, SharedInbox(shared))
			}
			for i := range n {
				id := fmt.Sprintf("https://h%d.example/users/%d", h, i)
				if shared == "" {
					want = append(want, id)
				}
				if err := tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: id,
					FollowID: id + "/follow", SharedInbox: shared}); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return want
}

// TestFanoutSurvivesACrashBetweenBatches: the deliveries to an actor's
// followers are queued a batch per transaction, none writing more than
// the batch; a store closed between two batches (a crash) and opened
// again goes on from the cursor, and in the end every follower, or its
// shared inbox, has exactly one delivery, and those the activity named
// none more.
func TestFanoutSurvivesACrashBetweenBatches(t *testing.T) {
	const batch = 4
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			ctx := context.Background()
			u := eng.newURL(t)
			db := openURL(t, u)
			want := putFollowers(t, db, 5, 5) // 15 own inboxes, 3 shared ones
			named := "https://h1.example/users/3"
			want = slices.DeleteFunc(want, func(r string) bool { return r == named })
			const id = "https://v.example/activities/an-1"
			announce(t, db, id, named)
			if got := queued(t, db, id); !slices.Equal(got, []string{named}) {
				t.Fatalf("the activity's own transaction queued %v, want only %s", got, named)
			}
			for i := range 2 {
				before := len(queued(t, db, id))
				if _, err := advanceOnce(ctx, db, batch); err != nil {
					t.Fatal(err)
				}
				if n := len(queued(t, db, id)) - before; n > batch {
					t.Fatalf("batch %d queued %d deliveries, more than %d", i, n, batch)
				}
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			db = openURL(t, u)
			var seen []string
			for {
				before := len(queued(t, db, id))
				more, err := advanceOnce(ctx, db, batch)
				if err != nil {
					t.Fatal(err)
				}
				got := queued(t, db, id)
				if n := len(got) - before; n > batch {
					t.Fatalf("a batch after the restart queued %d deliveries, more than %d", n, batch)
				}
				seen = got
				if !more {
					break
				}
			}
			got := slices.DeleteFunc(slices.Clone(seen), func(r string) bool { return r == named })
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("queued to followers %v,\nwant each once: %v", got, want)
			}
			if err := db.View(ctx, func(tx *store.ReadTx) error {
				if c, ok, err := tx.NextFanout(""); ok || err != nil {
					t.Errorf("a fan-out is left after the last batch: %+v, %v", c, err)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// advanceOnce advances the oldest fan-out by one batch in its own
// transaction and reports whether there was one.
func advanceOnce(ctx context.Context, db *store.DB, batch int) (bool, error) {
	var more bool
	err := db.Update(ctx, func(tx *store.Tx) error {
		var err error
		more, err = AdvanceFanout(tx, "", batch)
		return err
	})
	return more, err
}

// TestFanoutsKeepTheirOrder: the fan-outs of one actor are advanced
// oldest first, so a follower gets the deliveries of a later activity
// after those of an earlier one, whoever advances them.
func TestFanoutsKeepTheirOrder(t *testing.T) {
	db := openURL(t, engines[0].newURL(t))
	putFollowers(t, db, 2, 3)
	announce(t, db, "https://v.example/activities/1")
	announce(t, db, "https://v.example/activities/2")
	if err := RunFanouts(context.Background(), db, "vendor", 2, nil); err != nil {
		t.Fatal(err)
	}
	ds, _, err := db.PendingDeliveries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string]string{}
	for _, d := range ds {
		if _, ok := first[d.Recipient]; !ok {
			first[d.Recipient] = d.ActivityID
		}
	}
	if len(first) != 4 {
		t.Fatalf("deliveries to %d recipients, want 4: %v", len(first), ds)
	}
	for r, a := range first {
		if a != "https://v.example/activities/1" {
			t.Errorf("%s is first queued %s, want the earlier activity", r, a)
		}
	}
}

// TestRunFanoutsWithNoneWritesNothing: with no fan-out in progress, as
// for nearly every activity sent, RunFanouts commits no write.
func TestRunFanoutsWithNoneWritesNothing(t *testing.T) {
	db := openURL(t, engines[0].newURL(t))
	before := db.Commits()
	if err := RunFanouts(context.Background(), db, "vendor", 0, nil); err != nil {
		t.Fatal(err)
	}
	if n := db.Commits() - before; n != 0 {
		t.Errorf("RunFanouts with no fan-out made %d commits, want none", n)
	}
}

// TestFanoutBatchReadsTheGoneSharedInboxesAtOnce: on PostgreSQL, where
// each read is a request, a batch of a fan-out asks whether the shared
// inboxes its followers name were found gone in one request, not one per
// shared inbox: a batch of followers on many servers costs about what a
// batch of followers on one server does, in the store's single write
// path.
func TestFanoutBatchReadsTheGoneSharedInboxesAtOnce(t *testing.T) {
	batch := func(t *testing.T, hosts, perHost int) uint64 {
		t.Helper()
		db := openURL(t, pgtest.Database(t))
		putFollowers(t, db, hosts, perHost)
		announce(t, db, "https://v.example/activities/1")
		before, _, ok := db.RoundTrips()
		if !ok {
			t.Fatal("the store has no server to count requests to")
		}
		if err := db.Update(context.Background(), func(tx *store.Tx) error {
			more, err := AdvanceFanout(tx, "vendor", FanoutBatch)
			if err == nil && !more {
				err = fmt.Errorf("no fan-out to advance")
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		after, _, _ := db.RoundTrips()
		return after - before
	}
	oneServer := batch(t, 1, FanoutBatch)
	for _, tt := range []struct {
		name           string
		hosts, perHost int
	}{
		{"a follower on each of many servers", FanoutBatch, 1},
		{"two followers on each of many servers", FanoutBatch / 2, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := batch(t, tt.hosts, tt.perHost); got > oneServer+5 {
				t.Errorf("a batch of %d followers on %d servers (half of them naming a shared inbox) made %d requests; one on a single server makes %d",
					FanoutBatch, tt.hosts, got, oneServer)
			}
		})
	}
}

// TestADamagedFanoutHoldsBackOnlyItsActor: the fan-out service goes
// through the actors with fan-outs in progress; one actor's cursor that
// does not decode holds back that actor's fan-outs (their order is kept)
// and is reported, and every other actor's still reaches its followers.
func TestADamagedFanoutHoldsBackOnlyItsActor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	db := openURL(t, "bolt:"+path)
	want := putFollowers(t, db, 1, 2)
	ctx := context.Background()
	// "advisories" sorts before "vendor": its damaged fan-out is the
	// first the service meets.
	if err := db.Update(ctx, func(tx *store.Tx) error {
		if err := tx.PutLocalActor(store.LocalActor{Name: "advisories", Type: "Service", KeyID: "k2", PublicKeyPEM: "p"}); err != nil {
			return err
		}
		return tx.PutFollow(store.Follow{Local: "advisories", Direction: store.FollowerOf, State: store.FollowAccepted,
			Remote: "https://h9.example/users/1", FollowID: "https://h9.example/users/1/follow"})
	}); err != nil {
		t.Fatal(err)
	}
	const held = "https://v.example/activities/held"
	if err := db.EnqueueOutbound(ctx, store.Outbound{ID: held, Actor: "advisories",
		Body: []byte(`{"@context":"https://www.w3.org/ns/activitystreams","id":"` + held + `","type":"Announce","actor":"` + openID + `","object":"https://v.example/advisories/1"}`)},
		func(tx *store.Tx) error {
			_, err := StartFanout(tx, open, held, "", []string{FollowersOf(openID)}, nil)
			return err
		}); err != nil {
		t.Fatal(err)
	}
	announce(t, db, "https://v.example/activities/1")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageFanout(t, path, "advisories")
	db = openURL(t, "bolt:"+path)

	err := RunFanouts(ctx, db, "", 0, nil)
	if err == nil || !strings.Contains(err.Error(), "advisories") {
		t.Errorf("RunFanouts with a damaged fan-out: %v, want an error naming it", err)
	}
	if got := queued(t, db, "https://v.example/activities/1"); !slices.Equal(got, want) {
		t.Errorf("vendor's fan-out behind another actor's damaged one queued %v, want %v", got, want)
	}
	if got := queued(t, db, held); len(got) != 0 {
		t.Errorf("the damaged fan-out queued %v", got)
	}
}
