package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestAnActivityNamingWhatTheStoreCannotReadIsNotTaken: the vendor's
// validation of a report (Accept naming the finder's Offer by id) whose
// Offer's stored record does not decode (a damaged store) is refused with
// the store's damage (500), which the vendor's node retries, not taken and
// stored as an activity that names nothing the node holds, which the
// engine ignores and the retry, a duplicate, never mends.
func TestAnActivityNamingWhatTheStoreCannotReadIsNotTaken(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	offerID := finderURL + "/activities/offer-1"
	if err := f.submitOffer(ctx, offerID, nil); err != nil {
		t.Fatal(err)
	}
	path := f.db.Path()
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageActivity(t, path, offerID)
	var err error
	if f.db, err = store.Open(path, store.Options{NoSync: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.db.Close() })

	p, err := New(Config{
		Store: f.db, Engine: f.engine, Verifier: stubVerifier{},
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			return f.finder, name == "finder", nil
		},
		MaxBody: 1 << 20,
		NewID:   func() string { return fmt.Sprintf("%s/activities/reply-%d", finderURL, f.ids.Add(1)) },
		Logger:  zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	const acceptID = "https://vendor.example/activities/rv-1"
	accept := fmt.Sprintf(`{"@context":%q,"id":%q,"type":"Accept","actor":%q,"object":%q,"to":[%q]}`,
		vocab.VultronContext, acceptID, vendorID, offerID, f.finder.ID)
	req := httptest.NewRequest(http.MethodPost, finderURL+"/actors/finder/inbox", bytes.NewBufferString(accept))
	req.Header.Set("Content-Type", "application/activity+json")
	res, err := p.Receive(ctx, "finder", req)
	if !errors.Is(err, store.ErrDamaged) {
		t.Errorf("Receive of an Accept naming an Offer the store cannot read: %v (semantic %s), want the store's damage", err, res.Semantic)
	}
	if _, err := f.db.Activity(ctx, acceptID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the Accept was stored (%v): its retry would be a duplicate, and its meaning lost", err)
	}
}
