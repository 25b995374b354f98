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
