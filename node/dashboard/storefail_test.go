package dashboard

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
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

// TestASecondFactorTheStoreCannotCheckKeepsTheLogin: a code of the
// authenticator app given when the store cannot serve (it failed after
// the pending login was read; here it is closed, as while the node stops)
// is answered 503 with Retry-After on the page that asks for the code
// again, not on the login page, which tells the person that their login
// ended and to give their password again.
func TestASecondFactorTheStoreCannotCheckKeepsTheLogin(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Store: db, PublicURL: "https://v.example"})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{
		Store: db, Accounts: acc, PublicURL: "https://v.example", MaxBody: 1 << 20, Now: time.Now, Logger: zerolog.Nop(),
		Submit: func(context.Context, string, []byte) (outbox.Submitted, error) { return outbox.Submitted{}, nil },
		Resync: func(*store.Tx, string, bool) error { return nil },
		Local:  func(context.Context, string) (actor.Local, bool, error) { return actor.Local{}, false, nil }, LocalByID: func(string) (actor.Local, bool) { return actor.Local{}, false },
		IsLocal:      func(string) bool { return false },
		FetchActor:   func(context.Context, string) (*vocab.Actor, error) { return nil, http.ErrNotSupported },
		LoginRefused: func(*http.Request, error) {}, Denied: func(*http.Request, error) {}, FormRefused: func(*http.Request, error) {}, ClientIP: func(*http.Request) string { return "192.0.2.1" },
		CalendarURL: func(context.Context) string { return "" }, Refused: func(*http.Request, string, error) {},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	const csrf = "the-pending-login's-csrf-token"
	form := url.Values{"csrf": {csrf}, "next": {"/"}, "kind": {"totp"}, "code": {"123456"}}
	r := httptest.NewRequest(http.MethodPost, "/login/factor", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = r.WithContext(accounts.WithSession(context.Background(), accounts.CurrentSession{ID: "a-pending-login",
		State: accounts.SessionState{Session: accounts.Session{Stage: accounts.StageSecondFactor, CSRF: csrf}, UserName: "alice", HasTOTP: true}}))
	w := httptest.NewRecorder()
	d.factorLogin(w, r)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("POST /login/factor with the store closed: %d (Retry-After %q), want 503 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if body := w.Body.String(); strings.Contains(body, `name="password"`) || !strings.Contains(body, `name="code"`) {
		t.Errorf("POST /login/factor with the store closed answered the login page, not the code's:\n%s", body)
	}
}

// TestALiveStreamTheStoreCannotStartSaysWhenToTryAgain: the event stream
// of a live page that starts while the store cannot serve (here it is
// closed, as while the node stops) is answered 503 with Retry-After, the
// node's passing failure, not a bare 500.
func TestALiveStreamTheStoreCannotStartSaysWhenToTryAgain(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	d := &Dashboard{cfg: Config{Store: db, Now: time.Now}}
	for _, path := range []string{"/events", "/events?case=https://v.example/cases/c1"} {
		w := httptest.NewRecorder()
		d.events(w, httptest.NewRequest(http.MethodGet, path, nil), nil)
		if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
			t.Errorf("GET %s with the store closed: %d (Retry-After %q), want 503 with Retry-After", path, w.Code, w.Header().Get("Retry-After"))
		}
	}
}
