package federation

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
)

// TestActorDocumentIsRevalidated checks that the actor document, which
// carries the actor's public keys, tells every cache to ask again before
// it serves a stored copy: a peer that refused a signature (401) and
// fetches the key again after a rotation must get the current key, not
// what a proxy kept of the old one.
func TestActorDocumentIsRevalidated(t *testing.T) {
	e, _ := newActorEndpoints(t, false)
	r := mux.SetURLVars(httptest.NewRequest(http.MethodGet, "/actors/vendor", nil), map[string]string{"name": "vendor"})
	w := httptest.NewRecorder()
	e.Actor(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("GET the actor: %d %s", w.Code, w.Body)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache", got)
	}
}

// newActorEndpoints returns the endpoints over a new store whose every
// actor name is a local actor of https://v.example; admin says whether
// every request is an admin's.
func newActorEndpoints(t *testing.T, admin bool) (*Endpoints, *store.DB) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const public = "https://v.example"
	e, err := New(Config{
		Store:    db,
		Inbox:    noInbox{},
		Verifier: noVerifier{},
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			id := public + "/actors/" + name
			return actor.Local{Name: name, Type: "Organization", ID: id, Inbox: id + "/inbox", Outbox: id + "/outbox", KeyID: id + "#main-key", Key: key}, true, nil
		},
		LocalByID:  func(string) (actor.Local, bool) { return actor.Local{}, false },
		Authorized: func(*http.Request) bool { return true },
		Admin:      func(*http.Request) bool { return admin },
		Refused:    func(*http.Request, string, error) {},
		Withheld:   func(*http.Request, error) {},
		PublicURL:  public,
		Now:        time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e, db
}
