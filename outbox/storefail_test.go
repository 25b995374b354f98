package outbox

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// damageOffer replaces the stored record of the finder's Offer in v's
// store with one that does not decode (a damaged store) and opens the
// store again for v's outbox.
func damageOffer(t *testing.T, v *vendorOutbox) {
	t.Helper()
	path := v.db.Path()
	if err := v.db.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageActivity(t, path, offerID)
	db, err := store.Open(path, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	v.db, v.sub.cfg.Store = db, db
}

// TestASubmissionNamingWhatTheStoreCannotReadIsNotRefused: the vendor's
// validation of a report (Accept naming the finder's Offer by id) whose
// Offer's stored record does not decode (a damaged store) is answered
// with the store's damage (500), not 422 "refers to ..., which this node
// does not hold", which tells the client that the vendor never received
// the report.
func TestASubmissionNamingWhatTheStoreCannotReadIsNotRefused(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	damageOffer(t, v)

	_, err := v.validate()
	if !errors.Is(err, store.ErrDamaged) {
		t.Errorf("validation of a report whose Offer the store cannot read: %d (%v), want the store's damage", problem.Status(err), err)
	}
}

// TestAnOfferOfWhatTheStoreCannotReadIsNotTakenForAnActor: the vendor
// passes the finder's report on, naming it by id, when the Offer that
// carried it does not decode (a damaged store). The report is not taken
// for an actor this node does not hold, to be fetched from its address
// and refused 422 when that fails: the answer is the store's damage.
func TestAnOfferOfWhatTheStoreCannotReadIsNotTakenForAnActor(t *testing.T) {
	v := newVendorOutbox(t, nil, nil)
	if err := v.receiveReport(nil); err != nil {
		t.Fatal(err)
	}
	damageOffer(t, v)
	var fetched []string
	v.sub.cfg.FetchActor = func(_ context.Context, id string) (*vocab.Actor, error) {
		fetched = append(fetched, id)
		return nil, fmt.Errorf("GET %s: %w", id, http.ErrNotSupported)
	}

	_, err := v.sub.Submit(context.Background(), "vendor", []byte(fmt.Sprintf(`{"@context":%q,"type":"Offer","object":%q,"to":["https://coord.example/actors/coord"]}`,
		vocab.VultronContext, reportID)))
	if len(fetched) > 0 {
		t.Errorf("the report, whose Offer the store cannot read, was fetched as an actor: %v", fetched)
	}
	if !errors.Is(err, store.ErrDamaged) || problem.Status(err) != http.StatusInternalServerError {
		t.Errorf("an Offer of a report whose Offer the store cannot read: %d (%v), want 500 for the damage", problem.Status(err), err)
	}
}
