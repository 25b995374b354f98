package node

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"

	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestFanoutResumedAtStart: an announcement whose fan-out to the
// followers a stop left in progress (recorded with the activity, nothing
// queued) reaches the followers once the node starts again.
func TestFanoutResumedAtStart(t *testing.T) {
	dir := t.TempDir()
	vendor := startNodeIn(t, dir, nil, "vendor:Organization+open")
	coord := startNode(t, "coord:Organization")
	vendorID := vendor.actorID("vendor")
	js := jsonOf(t)
	coord.submit(t, "coord", js(vocab.NewFollow(vendorID)))
	waitFor(t, "the coordinator among the vendor's followers", func() bool {
		_, m := vendor.collection(t, "vendor", "followers", "", false)
		return m["totalItems"] == 1.0
	})

	id := vendor.url + "/activities/left-in-progress"
	body := fmt.Appendf(nil, `{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Announce","actor":%q,"object":"https://elsewhere.example/advisories/1","to":[%q]}`,
		id, vendorID, social.FollowersOf(vendorID))
	from := social.Local{Name: "vendor", ID: vendorID}
	if err := vendor.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: "vendor", Body: body, Semantic: string(vocab.SocialAnnounce)}, func(tx *store.Tx) error {
		_, err := social.StartFanout(tx, from, id, "", []string{social.FollowersOf(vendorID)}, nil)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	vendor.stop()

	u, err := url.Parse(vendor.url)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	startNodeIn(t, dir, ln, "vendor:Organization+open")
	waitFor(t, "the announcement at the coordinator", func() bool {
		for _, it := range coord.inboxItems(t, "coord") {
			if it["id"] == id {
				return true
			}
		}
		return false
	})
}
