package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestCreateOfAnotherHostsObjectIsRefused has an actor send a Create of an
// object on another host, inline and named by its id only (an object the
// node holds, so that it classifies): both are refused with 403, saying
// why, and neither is stored.
func TestCreateOfAnotherHostsObjectIsRefused(t *testing.T) {
	ctx := context.Background()
	const (
		finder  = "https://finder.example/actors/finder"
		mallory = "https://mallory.example/actors/mallory"
		report  = "https://finder.example/objects/r1"
	)
	for _, tt := range []struct {
		name, object string
	}{
		{"inline", fmt.Sprintf(`{"id":%q,"type":"VulnerabilityReport","name":"Overflow","attributedTo":%q}`, report, mallory)},
		{"by id", fmt.Sprintf("%q", report)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newVendorNode(t)
			offer := fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/rs-1","type":"Offer","actor":%q,
				"object":{"id":%q,"type":"VulnerabilityReport","name":"Overflow","attributedTo":%q},
				"to":[%q]}`, vocab.VultronContext, finder, report, finder, n.locals["vendor"].ID)
			n.receive(t, finder, "vendor", offer)

			const createID = "https://mallory.example/activities/c-1"
			create := fmt.Sprintf(`{"@context":%q,"id":%q,"type":"Create","actor":%q,"object":%s,"to":[%q]}`,
				vocab.VultronContext, createID, mallory, tt.object, n.locals["vendor"].ID)
			req := httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/vendor/inbox", bytes.NewBufferString(create))
			req.Header.Set("Content-Type", "application/activity+json")
			req.Header.Set(testSignerHeader, mallory)
			res, err := n.p.Receive(ctx, "vendor", req)
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Status != http.StatusForbidden || !strings.Contains(pe.Msg, "not on the actor's host") {
				t.Fatalf("Receive = %+v, %v; want 403 saying the object is not on the actor's host", res, err)
			}
			if _, err := n.db.Activity(ctx, createID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the refused Create was stored (lookup error %v)", err)
			}
		})
	}
}

// TestAdvisoryOfAnotherActorIsRefused has a followed peer send advisories
// (Create or Update of an Article in a case's context): its own is kept,
// and one of an Article on another host, or attributed to another actor,
// is refused with 403 saying why and not stored.
func TestAdvisoryOfAnotherActorIsRefused(t *testing.T) {
	ctx := context.Background()
	const finder = "https://finder.example/actors/finder"
	for i, tt := range []struct {
		name, typ, articleID, by string
		want                     int // 0: accepted
	}{
		{"own revision", "Update", "https://finder.example/advisories/a1", finder, 0},
		{"revision of another host's article", "Update", "https://other.example/advisories/a1", "https://other.example/actors/o", http.StatusForbidden},
		{"revision of an article on another host, claimed", "Update", "https://other.example/advisories/a1", finder, http.StatusForbidden},
		{"revision attributed to another actor", "Update", "https://finder.example/advisories/a1", "https://finder.example/actors/other", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := newVendorNode(t)
			if err := n.db.Update(ctx, func(tx *store.Tx) error {
				return tx.PutFollow(store.Follow{Local: "vendor", Direction: store.Following, State: store.FollowAccepted,
					Remote: finder, FollowID: vendorNodeURL + "/activities/follow-1", Since: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			id := fmt.Sprintf("https://finder.example/activities/advisory-%d", i)
			body := fmt.Sprintf(`{"@context":%q,"id":%q,"type":%q,"actor":%q,
				"object":{"id":%q,"type":"Article","name":"Advisory","content":"<p>x</p>","attributedTo":%q},
				"context":"https://finder.example/cases/c1","to":[%q]}`,
				vocab.VultronContext, id, tt.typ, finder, tt.articleID, tt.by, n.locals["vendor"].ID)
			req := httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/vendor/inbox", bytes.NewBufferString(body))
			req.Header.Set("Content-Type", "application/activity+json")
			req.Header.Set(testSignerHeader, finder)
			res, err := n.p.Receive(ctx, "vendor", req)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Receive: %v; want the advisory kept", err)
				}
				return
			}
			var pe *problem.Error
			if !errors.As(err, &pe) || pe.Status != tt.want || !strings.Contains(pe.Msg, tt.articleID) {
				t.Fatalf("Receive = %+v, %v; want %d naming %s", res, err, tt.want, tt.articleID)
			}
			if _, err := n.db.Activity(ctx, id); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("the refused advisory was stored (lookup error %v)", err)
			}
		})
	}
}
