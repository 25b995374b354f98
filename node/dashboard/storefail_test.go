package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/store"
)

// TestEnrolmentPagesTheStoreCannotRead: the enrolment of a second factor
// and the QR code of the authenticator app being set up, asked for when
// the store cannot serve (it failed after the session was read; here it
// is closed, as while the node stops), are answered 503 with Retry-After,
// not 404 "no authenticator app is being set up" nor a bare 500.
func TestEnrolmentPagesTheStoreCannotRead(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Store: db, PublicURL: "https://v.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	d := &Dashboard{cfg: Config{Store: db, Accounts: acc}}
	for _, tt := range []struct {
		path    string
		handler http.HandlerFunc
	}{
		{"/factor/totp.png", d.totpImage},
		{"/enroll/factor", d.enrollFactorPage},
	} {
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		r = r.WithContext(accounts.WithSession(context.Background(), accounts.CurrentSession{ID: "a-session-being-enrolled",
			State: accounts.SessionState{Session: accounts.Session{Stage: accounts.StageEnroll}}}))
		w := httptest.NewRecorder()
		tt.handler(w, r)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("GET %s with the store closed: %d (Retry-After %q) %s, want 503 with Retry-After", tt.path, w.Code, w.Header().Get("Retry-After"), w.Body)
		}
	}
}
