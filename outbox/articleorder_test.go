package outbox

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
)

// TestArticleActivitiesKeepTheirOrder checks that the Create, Update and
// Delete of one article reach each follower in the order they were sent:
// a Delete that overtook the Create still waiting for a retry would leave
// the follower's server with the article the actor deleted.
func TestArticleActivitiesKeepTheirOrder(t *testing.T) {
	const (
		follower = "https://fan.example/actors/f"
		as       = "https://www.w3.org/ns/activitystreams"
	)
	ctx := context.Background()
	v := newFollowedOutbox(t, follower, "https://fan.example/activities/follow-1", store.FollowAccepted)
	article := vendorNode + "/blog/1"
	followers := social.FollowersOf(v.vendor.ID)
	var ids []string
	for _, body := range []string{
		fmt.Sprintf(`{"@context":%q,"type":"Create","to":[%q],"object":{"type":"Article","id":%q,"name":"One","content":"first"}}`, as, followers, article),
		fmt.Sprintf(`{"@context":%q,"type":"Update","to":[%q],"object":{"type":"Article","id":%q,"name":"One","content":"second"}}`, as, followers, article),
		fmt.Sprintf(`{"@context":%q,"type":"Delete","to":[%q],"object":%q}`, as, followers, article),
	} {
		s, err := v.sub.Submit(ctx, "vendor", []byte(body))
		if err != nil {
			t.Fatalf("submit %s: %v", body, err)
		}
		ids = append(ids, s.ID)
	}
	due, err := v.db.DueDeliveries(ctx, time.Now().Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 1 || due[0].ActivityID != ids[0] || due[0].Recipient != follower {
		t.Errorf("due first: %+v; want only the Create %s to %s, the Update and the Delete behind it", due, ids[0], follower)
	}
}
