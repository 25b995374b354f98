package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/store"
)

// deliveriesPage is the body of GET /api/deliveries.
type deliveriesPage struct {
	Pending      []api.Delivery `json:"pending"`
	Dead         []api.Delivery `json:"dead"`
	PendingCount *int           `json:"pendingCount"`
	DeadCount    *int           `json:"deadCount"`
	PendingNext  uint64         `json:"pendingNext"`
	DeadNext     uint64         `json:"deadNext"`
}

// TestDeliveriesAPIPages checks that GET /api/deliveries reads a bounded
// page of the dead letters (as of the pending deliveries), says where the
// next page starts and how many there are, and refuses a malformed cursor.
func TestDeliveriesAPIPages(t *testing.T) {
	// Deliveries to hosts off the allow-list become dead letters at once,
	// without a request.
	vendor := startNodeWith(t, Config{Federation: policy.Allowlist, AllowPeers: []string{"cvd.partner.example"}}, "vendor:Organization")
	const letters = 5
	for i := range letters {
		id := fmt.Sprintf("%s/activities/paged-%d", vendor.url, i)
		err := vendor.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: "vendor",
			Body:       fmt.Appendf(nil, `{"id":%q,"type":"Note"}`, id),
			Deliveries: []store.DeliveryTarget{{Recipient: fmt.Sprintf("http://elsewhere.example/actors/%d", i)}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	get := func(query string) (int, deliveriesPage, string) {
		t.Helper()
		status, body := vendor.api(t, http.MethodGet, "/api/deliveries"+query, "")
		var page deliveriesPage
		if status == http.StatusOK {
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatalf("GET /api/deliveries%s: %v\n%s", query, err, body)
			}
		}
		return status, page, string(body)
	}
	waitFor(t, "every delivery to be dead-lettered", func() bool {
		_, page, _ := get("")
		return len(page.Dead) == letters && len(page.Pending) == 0
	})

	var ids []uint64
	after := ""
	for pageNo := 1; ; pageNo++ {
		status, page, body := get("?limit=2" + after)
		if status != http.StatusOK {
			t.Fatalf("page %d: %d %s", pageNo, status, body)
		}
		if len(page.Dead) > 2 {
			t.Fatalf("page %d holds %d dead letters, want at most the limit of 2", pageNo, len(page.Dead))
		}
		if page.DeadCount == nil || *page.DeadCount != letters || page.PendingCount == nil || *page.PendingCount != 0 {
			t.Fatalf("page %d counts: %s, want deadCount %d and pendingCount 0", pageNo, body, letters)
		}
		if page.Pending == nil || !strings.Contains(body, `"pending":[]`) {
			t.Errorf("page %d: pending is not an empty list: %s", pageNo, body)
		}
		for _, d := range page.Dead {
			ids = append(ids, d.ID)
		}
		if page.DeadNext == 0 {
			break
		}
		if want := page.Dead[len(page.Dead)-1].ID; page.DeadNext != want {
			t.Fatalf("page %d: deadNext %d, want the last id on the page, %d", pageNo, page.DeadNext, want)
		}
		after = fmt.Sprintf("&deadAfter=%d", page.DeadNext)
	}
	if len(ids) != letters {
		t.Fatalf("the pages held %d dead letters (%v), want %d", len(ids), ids, letters)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("dead letters out of order across pages: %v", ids)
		}
	}

	for _, query := range []string{"?deadAfter=x", "?pendingAfter=-1", "?limit=0", "?limit=1001"} {
		status, _, body := get(query)
		if status != http.StatusBadRequest || !strings.Contains(body, `"error"`) {
			t.Errorf("GET /api/deliveries%s: %d %s, want 400 with an error", query, status, body)
		}
	}
}
