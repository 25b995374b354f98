package federation

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/store"
)

// TestGoneFollowersShown: the followers removed because their actor is
// gone are shown to the admins with ?state=gone, each with its reason,
// and counted neither among the followers nor in the public totalItems;
// an unknown state is refused with 400 and a JSON error.
func TestGoneFollowersShown(t *testing.T) {
	e, db := newActorEndpoints(t, true)
	const gone, kept = "https://c.example/actors/gone", "https://c.example/actors/kept"
	since := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowAccepted, Remote: kept, FollowID: kept + "/f/1", Since: since}); err != nil {
			return err
		}
		return tx.PutFollow(store.Follow{Local: "vendor", Direction: store.FollowerOf, State: store.FollowGone, Remote: gone, FollowID: gone + "/f/1",
			Since: since, Reason: "peer answered 410 Gone"})
	}); err != nil {
		t.Fatal(err)
	}
	get := func(query string) (int, map[string]any) {
		t.Helper()
		r := mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/actors/vendor/followers"+query, nil), map[string]string{"name": "vendor"})
		w := httptest.NewRecorder()
		e.Followers(w, r)
		var doc map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
			t.Fatalf("GET followers%s: %d %s is no JSON object", query, w.Code, w.Body)
		}
		return w.Code, doc
	}
	tests := []struct {
		query      string
		wantStatus int
		wantTotal  float64
		wantIDs    []string
		wantReason string
	}{
		{query: "", wantStatus: 200, wantTotal: 1, wantIDs: []string{kept}},
		{query: "?state=gone", wantStatus: 200, wantTotal: 1, wantIDs: []string{gone}, wantReason: "410 Gone"},
		{query: "?state=vanished", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			status, doc := get(tt.query)
			if status != tt.wantStatus {
				t.Fatalf("status %d (%v), want %d", status, doc, tt.wantStatus)
			}
			if status != 200 {
				if msg, _ := doc["error"].(string); !strings.Contains(msg, "gone") {
					t.Errorf("error %q does not list the states", msg)
				}
				return
			}
			if doc["totalItems"] != tt.wantTotal {
				t.Errorf("totalItems = %v, want %v", doc["totalItems"], tt.wantTotal)
			}
			items, _ := doc["orderedItems"].([]any)
			if len(items) != len(tt.wantIDs) {
				t.Fatalf("orderedItems = %v, want %v", items, tt.wantIDs)
			}
			for i, it := range items {
				m, _ := it.(map[string]any)
				if m["id"] != tt.wantIDs[i] {
					t.Errorf("member %d = %v, want %s", i, m, tt.wantIDs[i])
				}
				if reason, _ := m["reason"].(string); !strings.Contains(reason, tt.wantReason) || (tt.wantReason == "" && reason != "") {
					t.Errorf("member %v: reason %q, want %q", m, reason, tt.wantReason)
				}
			}
		})
	}
}
