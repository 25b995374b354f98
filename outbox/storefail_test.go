package outbox

import (
	"errors"
	"testing"

	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

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
	v.sub.cfg.Store = db

	_, err = v.validate()
	if !errors.Is(err, store.ErrDamaged) {
		t.Errorf("validation of a report whose Offer the store cannot read: %d (%v), want the store's damage", problem.Status(err), err)
	}
}
