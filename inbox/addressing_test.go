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

// TestAddressedToTheSendersFollowers has a followed actor send an
// Announce addressed to its followers collection only, as a node announces
// to its followers: the collection does not exclude the receiving actor
// (it follows the sender), so the activity is taken, not refused as
// addressed to someone else.
func TestAddressedToTheSendersFollowers(t *testing.T) {
	ctx := context.Background()
	const finder = "https://finder.example/actors/finder"
	n := newVendorNode(t)
	plain, err := social.New(social.Config{ManuallyApproves: func(string) bool { return true }, IsCaseActor: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	n.p.cfg.Social = plain
	if err := n.db.Update(ctx, func(tx *store.Tx) error {
		return tx.PutFollow(store.Follow{Local: "vendor", Direction: store.Following, State: store.FollowAccepted,
			Remote: finder, FollowID: vendorNodeURL + "/activities/follow-1", Since: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/announce-1","type":"Announce","actor":%q,
		"object":"https://other.example/advisories/1","to":[%q]}`, vocab.ActivityStreamsContext, finder, social.FollowersOf(finder))
	req := httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/vendor/inbox", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set(testSignerHeader, finder)
	if _, err := n.p.Receive(ctx, "vendor", req); err != nil {
		t.Fatalf("an Announce to the sender's followers, received by a follower: %v; want it taken", err)
	}
	// Addressed to another actor only, it is still refused.
	body = fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/announce-2","type":"Announce","actor":%q,
		"object":"https://other.example/advisories/1","to":["https://other.example/actors/o"]}`, vocab.ActivityStreamsContext, finder)
	req = httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/vendor/inbox", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set(testSignerHeader, finder)
	if _, err := n.p.Receive(ctx, "vendor", req); err == nil {
		t.Fatal("an Announce addressed to another actor only was taken")
	}
}
