package outbox

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
)

// TestArticleFanoutIsBatched checks that an article sent to many
// followers is queued for every one of them by the time Submit returns,
// but in transactions that each queue at most a batch of deliveries: the
// audit log has one record per transaction that queued some, each for at
// most FanoutBatch of them.
func TestArticleFanoutIsBatched(t *testing.T) {
	const as = "https://www.w3.org/ns/activitystreams"
	ctx := context.Background()
	n := 2*fanoutTestBatch + 3
	v := newFollowedOutbox(t, "https://fan.example/actors/f0000", "https://fan.example/follows/0", store.FollowAccepted)
	v.sub.cfg.FanoutBatch = fanoutTestBatch
	want := []string{"https://fan.example/actors/f0000"}
	if err := v.db.Update(ctx, func(tx *store.Tx) error {
		for i := 1; i < n; i++ {
			id := fmt.Sprintf("https://fan%d.example/actors/f", i)
			want = append(want, id)
			if err := tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: id, FollowID: id + "/follow"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s, err := v.sub.Submit(ctx, "vendor", fmt.Appendf(nil, `{"@context":%q,"type":"Create","to":[%q],"object":{"type":"Article","id":%q,"name":"One","content":"first"}}`,
		as, social.FollowersOf(v.vendor.ID), vendorNode+"/blog/1"))
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := v.db.PendingDeliveries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.Recipient)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("queued to %d recipients, want each of the %d followers once", len(got), len(want))
	}
	recs, _, err := v.db.AuditPage(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for _, r := range recs {
		if r.ActivityID != s.ID || r.Decision != store.DecisionEnqueued || !strings.Contains(r.Reason, "queued for") {
			continue
		}
		var k int
		if _, err := fmt.Sscanf(r.Reason[strings.Index(r.Reason, "queued for"):], "queued for %d", &k); err != nil {
			t.Fatalf("audit reason %q: %v", r.Reason, err)
		}
		if k > fanoutTestBatch {
			t.Errorf("one transaction queued %d deliveries (%q), more than the batch of %d", k, r.Reason, fanoutTestBatch)
		}
		writes++
	}
	if writes < 3 {
		t.Errorf("%d transactions queued the deliveries, want at least 3 batches of %d for %d followers", writes, fanoutTestBatch, n)
	}
}

// fanoutTestBatch is the batch of the fan-out tests.
const fanoutTestBatch = 7

// TestFanoutLeftInProgressGoesFirst checks that a fan-out a crash left in
// progress is finished before the actor's next activity is queued: a
// follower that the next activity also names gets the earlier one first.
func TestFanoutLeftInProgressGoesFirst(t *testing.T) {
	const as = "https://www.w3.org/ns/activitystreams"
	ctx := context.Background()
	const follower = "https://fan.example/actors/f"
	v := newFollowedOutbox(t, follower, "https://fan.example/follows/1", store.FollowAccepted)
	const earlier = vendorNode + "/activities/earlier"
	body := fmt.Appendf(nil, `{"@context":%q,"id":%q,"type":"Announce","actor":%q,"object":"https://x.example/advisories/1","to":[%q]}`,
		as, earlier, v.vendor.ID, social.FollowersOf(v.vendor.ID))
	if err := v.db.EnqueueOutbound(ctx, store.Outbound{ID: earlier, Actor: "vendor", Body: body}, func(tx *store.Tx) error {
		_, err := social.StartFanout(tx, social.Local{Name: "vendor", ID: v.vendor.ID}, earlier, "", []string{social.FollowersOf(v.vendor.ID)}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The node stopped here: the fan-out is recorded, nothing queued.
	v.sub.cfg.ResolveRecipient = nil
	s, err := v.sub.Submit(ctx, "vendor", fmt.Appendf(nil, `{"@context":%q,"type":"Create","to":[%q],"cc":[%q],"object":{"type":"Article","id":%q,"name":"One","content":"first"}}`,
		as, social.FollowersOf(v.vendor.ID), follower, vendorNode+"/blog/2"))
	if err != nil {
		t.Fatal(err)
	}
	ds, _, err := v.db.PendingDeliveries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		if d.Recipient == follower {
			got = append(got, d.ActivityID)
		}
	}
	if want := []string{earlier, s.ID}; !slices.Equal(got, want) {
		t.Errorf("the follower's deliveries in queue order: %q, want %q", got, want)
	}
}
