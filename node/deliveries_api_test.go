package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/internal/storetest"
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

// TestDamagedDeliveriesAPI: the delivery records the node set aside as
// damaged were counted (vultron_deliveries_damaged) but shown nowhere.
// GET /api/deliveries/damaged lists them to an admin, a bounded page at
// a time, with when each was set aside, its size and why it did not
// open, and never its bytes; DELETE /api/deliveries/damaged/ID discards
// one, audited with who asked. Malformed ids and cursors, an id that is
// not set aside and a token without the admin scope are refused with a
// JSON error, and nothing is removed.
func TestDamagedDeliveriesAPI(t *testing.T) {
	dir := t.TempDir()
	first := startNodeConfig(t, dir, nil, Config{Retry: fastRetry()}, "vendor:Organization")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	const damaged = 3
	for i := range damaged {
		id := fmt.Sprintf("%s/activities/damaged-%d", first.url, i)
		err := first.db.EnqueueOutbound(context.Background(), store.Outbound{ID: id, Actor: "vendor",
			Body:       fmt.Appendf(nil, `{"id":%q,"type":"Note"}`, id),
			Deliveries: []store.DeliveryTarget{{Recipient: fmt.Sprintf("%s/actors/%d", closed, i)}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	pending, _, err := first.db.PendingDeliveries(context.Background(), 0, 10)
	if err != nil || len(pending) != damaged {
		t.Fatalf("pending = %+v, %v; want %d", pending, err, damaged)
	}
	first.stop()
	var ids []uint64
	for _, d := range pending {
		storetest.DamageDelivery(t, filepath.Join(dir, "vultron.db"), d.ID)
		ids = append(ids, d.ID)
	}
	// The same address, so that the node is where its store says it was.
	again, err := net.Listen("tcp", strings.TrimPrefix(first.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	n := startNodeConfig(t, dir, again, Config{Retry: fastRetry()}, "vendor:Organization")
	waitFor(t, "the damaged deliveries to be set aside", func() bool {
		c, err := n.db.DamagedDeliveryCount(context.Background())
		return err == nil && c == damaged
	})

	list := func(t *testing.T, query string) api.DamagedDeliveries {
		t.Helper()
		page := apiGet[api.DamagedDeliveries](t, n, "/api/deliveries/damaged"+query)
		_, body := n.api(t, http.MethodGet, "/api/deliveries/damaged"+query, "")
		var raw struct {
			Damaged []map[string]json.RawMessage `json:"damaged"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, d := range raw.Damaged {
			for k := range d {
				if k != "id" && k != "setAside" && k != "bytes" && k != "reason" {
					t.Errorf("a damaged delivery is shown with %q: %s", k, body)
				}
			}
		}
		return page
	}
	var seen []uint64
	for after, pages := "", 0; ; pages++ {
		if pages > damaged {
			t.Fatalf("more than %d pages", pages)
		}
		page := list(t, "?limit=2"+after)
		if page.Count != damaged || len(page.Damaged) > 2 {
			t.Fatalf("page %d: %+v, want at most 2 of a count of %d", pages, page, damaged)
		}
		for _, d := range page.Damaged {
			seen = append(seen, d.ID)
			if d.SetAside.IsZero() || d.Bytes != 1 || !strings.Contains(d.Reason, "not sealed") {
				t.Errorf("damaged delivery %+v: want when it was set aside, 1 byte and why it did not open", d)
			}
		}
		if page.Next == 0 {
			break
		}
		after = fmt.Sprintf("&after=%d", page.Next)
	}
	if !slices.Equal(seen, ids) {
		t.Fatalf("listed %v, want %v", seen, ids)
	}

	ctx := context.Background()
	admin, err := n.accounts.Authenticate(ctx, n.token)
	if err != nil {
		t.Fatal(err)
	}
	reader, _, err := n.accounts.CreateToken(ctx, admin, accounts.TokenSpec{Scopes: accounts.ScopeSet{accounts.ScopeRead}}, "")
	if err != nil {
		t.Fatal(err)
	}
	refusals := []struct {
		name, tok, method, path string
		status                  int
	}{
		{"a limit of 0", n.token, http.MethodGet, "/api/deliveries/damaged?limit=0", http.StatusBadRequest},
		{"a cursor that is no id", n.token, http.MethodGet, "/api/deliveries/damaged?after=x", http.StatusBadRequest},
		{"an id that is no number", n.token, http.MethodDelete, "/api/deliveries/damaged/x", http.StatusBadRequest},
		{"an id not set aside", n.token, http.MethodDelete, "/api/deliveries/damaged/999999", http.StatusNotFound},
		{"a reader's list", reader, http.MethodGet, "/api/deliveries/damaged", http.StatusForbidden},
		{"a reader's discard", reader, http.MethodDelete, fmt.Sprintf("/api/deliveries/damaged/%d", ids[0]), http.StatusForbidden},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			status, body := n.apiAs(t, tt.tok, tt.method, tt.path, "")
			var e struct {
				Error string `json:"error"`
			}
			if status != tt.status || json.Unmarshal(body, &e) != nil || e.Error == "" {
				t.Errorf("%s %s: %d %s, want %d with a JSON error", tt.method, tt.path, status, body, tt.status)
			}
		})
	}
	if c, err := n.db.DamagedDeliveryCount(ctx); err != nil || c != damaged {
		t.Fatalf("after the refusals: %d damaged, %v; want %d (nothing discarded)", c, err, damaged)
	}

	status, body := n.api(t, http.MethodDelete, fmt.Sprintf("/api/deliveries/damaged/%d", ids[1]), "")
	var out api.DamagedDiscarded
	if status != http.StatusOK || json.Unmarshal(body, &out) != nil || out.Discarded != ids[1] {
		t.Fatalf("DELETE damaged delivery %d: %d %s", ids[1], status, body)
	}
	if page := list(t, ""); page.Count != damaged-1 || len(page.Damaged) != damaged-1 || page.Damaged[0].ID != ids[0] || page.Damaged[1].ID != ids[2] {
		t.Errorf("after the discard: %+v, want %d and %d", page, ids[0], ids[2])
	}
	var audited bool
	for _, r := range n.auditRecords(t) {
		if r.Decision == store.DecisionDiscarded {
			audited = strings.HasPrefix(r.Principal, "admin") && strings.Contains(r.Reason, fmt.Sprint(ids[1]))
			if !audited {
				t.Errorf("audit record of the discard: %+v, want the admin's, naming delivery %d", r, ids[1])
			}
		}
	}
	if !audited {
		t.Error("the discard is not in the audit log")
	}

	empty := startNode(t, "vendor:Organization")
	if status, body := empty.api(t, http.MethodGet, "/api/deliveries/damaged", ""); status != http.StatusOK || !strings.Contains(string(body), `"damaged":[]`) {
		t.Errorf("GET /api/deliveries/damaged of a node with none: %d %s, want an empty list", status, body)
	}
}
