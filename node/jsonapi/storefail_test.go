package jsonapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/store"
)

// TestAReportNamedByAnOfferTheStoreCannotReadIsNotAbsent: a report asked
// for by the id of the Offer that carried it, whose stored record does
// not decode (a damaged store), is answered 500, the store's failure, not
// 404 "no report ... on this node".
func TestAReportNamedByAnOfferTheStoreCannotReadIsNotAbsent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "vultron.db")
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	const offerID = "https://f.example/activities/offer-1"
	offer := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Offer","actor":"https://f.example/actors/finder","object":{"id":"https://f.example/reports/1","type":"VulnerabilityReport","name":"Overflow"},"to":["https://v.example/actors/vendor"]}`, offerID)
	if _, err := db.AcceptInbound(ctx, store.Inbound{ID: offerID, Recipient: "vendor", Sender: "https://f.example/actors/finder", Body: []byte(offer)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageActivity(t, path, offerID)
	if db, err = store.Open(path, store.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })

	e := &Endpoints{cfg: Config{Store: db}}
	r := httptest.NewRequest(http.MethodGet, "/api/reports/"+url.PathEscape(offerID), nil)
	r = mux.SetURLVars(r, map[string]string{"id": url.PathEscape(offerID)})
	w := httptest.NewRecorder()
	e.Report(w, r)
	if w.Code != http.StatusInternalServerError {
		t.Errorf("GET /api/reports/{the Offer's id} with the Offer's record damaged: %d %s, want 500 (a 404 says there is no such report)", w.Code, w.Body)
	}
}
