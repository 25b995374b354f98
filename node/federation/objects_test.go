package federation

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/inbox"
	"github.com/openvultron/vultron/store"
)

// TestAnObjectsPartiesAreLookedUpOutsideItsReadTransaction: GET of an
// object looks up the local actors that are parties to it (Local, which
// reads a Case Actor the process has not loaded from the store) after its
// read transaction has ended. Looked up inside it, on bbolt, a read of
// its own within the first waits behind a write that must grow the file,
// which waits for the first to end: the request and every later write
// hang. Here the lookup itself makes such a write.
func TestAnObjectsPartiesAreLookedUpOutsideItsReadTransaction(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	// Closed at the end only: a request that hangs holds a transaction
	// that Close would wait for.
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "finder", Type: "Organization"}); err != nil {
		t.Fatal(err)
	}
	const public = "https://v.example"
	const reportID = public + "/objects/r1"
	const offerID = public + "/activities/offer-1"
	offer := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Offer","actor":%q,"object":{"id":%q,"type":"VulnerabilityReport","name":"r1"},"to":["https://x.example/actors/vendor"]}`,
		offerID, public+"/actors/finder", reportID)
	if err := db.EnqueueOutbound(ctx, store.Outbound{ID: offerID, Actor: "finder", Body: []byte(offer)}, func(tx *store.Tx) error {
		b, err := tx.Case("report " + reportID)
		if err != nil {
			return err
		}
		return b.Put([]byte("finder"), fmt.Appendf(nil, `{"reportId":%q,"actor":"finder","offerId":%q,"peers":{}}`, reportID, offerID))
	}); err != nil {
		t.Fatal(err)
	}

	local := func(ctx context.Context, name string) (actor.Local, bool, error) {
		// A write that grows the file well past what bbolt has mapped.
		err := db.Update(ctx, func(tx *store.Tx) error {
			b, err := tx.Case("growth")
			if err != nil {
				return err
			}
			for i := range 256 {
				if err := b.Put(fmt.Appendf(nil, "k%03d", i), []byte(strings.Repeat("x", 32<<10))); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return actor.Local{}, false, err
		}
		return actor.Local{Name: name, ID: public + "/actors/" + name}, true, nil
	}
	e, err := New(Config{
		Store:      db,
		Inbox:      noInbox{},
		Verifier:   noVerifier{},
		Local:      local,
		LocalByID:  func(string) (actor.Local, bool) { return actor.Local{}, false },
		Authorized: func(*http.Request) bool { return true },
		Admin:      func(*http.Request) bool { return false },
		Refused:    func(*http.Request, string, error) {},
		Withheld:   func(*http.Request, error) {},
		PublicURL:  public,
		Now:        time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/objects/r1", nil), map[string]string{"id": "r1"})
	w := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Object(w, r)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("GET of the object did not end: the lookup of its parties waits for a write that waits for the object's read transaction")
	}
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), reportID) {
		t.Errorf("GET of the object: %d %s, want 200 and the report", w.Code, w.Body)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

type noInbox struct{}

func (noInbox) Receive(context.Context, string, *http.Request) (inbox.Result, error) {
	return inbox.Result{}, errors.New("no inbox in this test")
}

type noVerifier struct{}

func (noVerifier) Verify(context.Context, *http.Request, []byte) (actor.Signer, error) {
	return actor.Signer{}, errors.New("no signatures in this test")
}
