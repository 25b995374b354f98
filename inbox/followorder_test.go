package inbox

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestAutomaticAcceptKeepsItsLane checks that the Accept an actor that
// approves its followers at once answers a Follow with is queued in the
// lane of the actor's followers, where the actor's later Reject of that
// follower (queued by the outbox there) waits behind it: the follower
// must not be told it was removed before it is told it was accepted.
func TestAutomaticAcceptKeepsItsLane(t *testing.T) {
	ctx := context.Background()
	const finder = "https://finder.example/actors/finder"
	n := newVendorNode(t)
	plain, err := social.New(social.Config{ManuallyApproves: func(string) bool { return false }, IsCaseActor: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	n.p.cfg.Social = plain
	vendor := social.Local{Name: "vendor", ID: vendorNodeURL + "/actors/vendor"}
	body := fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/follow-1","type":"Follow","actor":%q,"object":%q,"to":[%q]}`,
		vocab.ActivityStreamsContext, finder, vendor.ID, vendor.ID)
	req := httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/vendor/inbox", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set(testSignerHeader, finder)
	res, err := n.p.Receive(ctx, "vendor", req)
	if err != nil || res.Replies != 1 {
		t.Fatalf("the Follow: %+v, %v; want it taken with one Accept", res, err)
	}
	// The actor removes the follower at once, as the outbox queues it.
	if err := n.db.EnqueueOutbound(ctx, store.Outbound{ID: vendorNodeURL + "/activities/reject-1", Actor: "vendor", Body: []byte(`{}`),
		Deliveries: []store.DeliveryTarget{{Recipient: finder, OrderingKey: social.OrderingKey(vendor, nil, vocab.SocialRejectFollow)}}}, nil); err != nil {
		t.Fatal(err)
	}
	due, err := n.db.DueDeliveries(ctx, time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ActivityID == vendorNodeURL+"/activities/reject-1" {
		t.Errorf("due: %+v; want the Accept alone, the Reject behind it", due)
	}
}
