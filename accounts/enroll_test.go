package accounts

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/problem"
)

// linkCode returns the enrollment code of a link.
func linkCode(link string) string {
	return strings.TrimPrefix(link, "http://localhost:7001/enroll?code=")
}

// wantSessions fails unless the user's live sessions are exactly the
// methods given, oldest first.
func wantSessions(t *testing.T, s *Service, admin Principal, name string, methods ...string) {
	t.Helper()
	list, err := s.Sessions(context.Background(), admin, name)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ss := range list {
		got = append(got, ss.Method)
	}
	if strings.Join(got, ", ") != strings.Join(methods, ", ") {
		t.Errorf("sessions of %s: %q, want %q", name, got, methods)
	}
}

// TestNewLinkEndsTheEnrollmentOfTheOldOne: someone (X) uses an analyst's
// first link and is offered an authenticator app; the admin issues a new
// link. X's session and the app it was offered end with the old link,
// and so does the password X set: the new link's holder sets up the
// account from nothing.
func TestNewLinkEndsTheEnrollmentOfTheOldOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		added, err := s.AddUser(ctx, admin, NewUser{Name: "alice", Role: Analyst, Actors: []string{"vendor"}}, actors, "")
		if err != nil {
			t.Fatal(err)
		}
		mx := LoginMeta{Remote: "203.0.113.66", Agent: "X"}
		x, err := s.Enroll(ctx, linkCode(added.Enroll), "the password X chose", mx)
		if err != nil || x.Stage != StageEnroll {
			t.Fatalf("X's use of the first link = %+v, %v", x, err)
		}
		offer, err := s.OfferTOTP(ctx, x.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		link, err := s.Enrollment(ctx, admin, "alice", "")
		if err != nil {
			t.Fatal(err)
		}

		_, err = s.ConfirmTOTP(ctx, x.SessionID, code(t, offer.Secret, c.Now()), mx)
		wantStatus(t, "X confirms the app offered in the replaced link's session", err, http.StatusUnauthorized)
		_, err = s.Session(ctx, x.SessionID)
		wantStatus(t, "the replaced link's session", err, http.StatusUnauthorized)
		info, err := s.UserInfo(ctx, "alice")
		if err != nil || info.Password || info.TOTP || info.Passkeys != 0 || info.Recovery != 0 || !info.Enrolling {
			t.Errorf("alice after the new link: %+v, %v; want no password, no factor, enrolling", info, err)
		}
		_, err = s.PasswordLogin(ctx, "alice", "the password X chose", mx)
		wantStatus(t, "X's password after the new link", err, http.StatusUnauthorized)

		a, err := s.Enroll(ctx, linkCode(link), "alice's own password", LoginMeta{Remote: "192.0.2.5"})
		if err != nil || a.Stage != StageEnroll {
			t.Fatalf("alice's use of the new link = %+v, %v; want a session of stage %s", a, err, StageEnroll)
		}
		wantSessions(t, s, admin, "alice", "enrollment")
	})
}

// TestNewLinkUndoesAnUnfinishedEnrollment: X used the first link to the
// end (a password, an authenticator app, recovery codes) but never logged
// in on its own; the admin's new link removes what X set up, and the new
// link's holder is asked to set up a factor of their own, not handed a
// session.
func TestNewLinkUndoesAnUnfinishedEnrollment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		mx := LoginMeta{Remote: "203.0.113.66", Agent: "X"}
		x := enrolled(t, s, admin, "alice", Analyst, "the password X chose")
		xfull, _ := withApp(t, s, c, x.SessionID, mx)
		if len(xfull.Recovery) != recoveryCodes {
			t.Fatalf("X's authenticator app = %+v; want %d recovery codes", xfull, recoveryCodes)
		}
		link, err := s.Enrollment(ctx, admin, "alice", "")
		if err != nil {
			t.Fatal(err)
		}

		_, err = s.Session(ctx, xfull.SessionID)
		wantStatus(t, "X's full session from the replaced link", err, http.StatusUnauthorized)
		info, err := s.UserInfo(ctx, "alice")
		if err != nil || info.Password || info.TOTP || info.Recovery != 0 {
			t.Errorf("alice after the new link: %+v, %v; want X's password, app and recovery codes removed", info, err)
		}
		_, err = s.PasswordLogin(ctx, "alice", "the password X chose", mx)
		wantStatus(t, "X's password after the new link", err, http.StatusUnauthorized)

		a, err := s.Enroll(ctx, linkCode(link), "alice's own password", LoginMeta{Remote: "192.0.2.5"})
		if err != nil || a.Stage != StageEnroll {
			t.Fatalf("alice's use of the new link = %+v, %v; want a session of stage %s, asked for a factor of her own", a, err, StageEnroll)
		}
		wantSessions(t, s, admin, "alice", "enrollment")
	})
}

// TestLinkOnAnAccountWithFactorsAsksForOne: an analyst who set up an
// authenticator app and logged in with it is given a new link (a
// forgotten password). Issuing it ends the session the first link
// opened; using it sets the password, ends every other session, and
// opens a session that awaits the app's code, not a full one.
func TestLinkOnAnAccountWithFactorsAsksForOne(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		m := LoginMeta{Remote: "192.0.2.10"}
		enroll := enrolled(t, s, admin, "hana", Analyst, "hana's first password")
		first, secret := withApp(t, s, c, enroll.SessionID, m)
		c.Advance(30 * time.Second)
		own := loginWithApp(t, s, c, "hana", "hana's first password", secret, m)

		link, err := s.Enrollment(ctx, admin, "hana", "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, first.SessionID)
		wantStatus(t, "the first link's session after a new link", err, http.StatusUnauthorized)
		if _, err := s.Session(ctx, own.SessionID); err != nil {
			t.Errorf("issuing a link ended a session of a login of hana's own: %v", err)
		}
		if info, err := s.UserInfo(ctx, "hana"); err != nil || !info.TOTP || info.Recovery != recoveryCodes || !info.Password {
			t.Errorf("hana after the new link: %+v, %v; want her app, recovery codes and password kept", info, err)
		}

		c.Advance(30 * time.Second)
		reset, err := s.Enroll(ctx, linkCode(link), "hana's second password", m)
		if err != nil || reset.Stage != StageSecondFactor {
			t.Fatalf("the new link on an account with an app = %+v, %v; want a session of stage %s", reset, err, StageSecondFactor)
		}
		_, err = s.Session(ctx, own.SessionID)
		wantStatus(t, "a session of hana's after she used a new link", err, http.StatusUnauthorized)
		if st, err := s.Session(ctx, reset.SessionID); err != nil || len(st.Principal.Scopes) != 0 {
			t.Errorf("the link's session before the app's code grants %+v, %v", st.Principal.Scopes, err)
		}
		_, err = s.OfferTOTP(ctx, reset.SessionID)
		wantStatus(t, "a new app offered before the app's code", err, http.StatusForbidden)
		full, err := s.SecondFactorTOTP(ctx, reset.SessionID, code(t, secret, c.Now()), m)
		if err != nil || full.Stage != StageFull {
			t.Fatalf("the app's code after the link = %+v, %v", full, err)
		}
		wantSessions(t, s, admin, "hana", "enrollment+totp")
		_, err = s.PasswordLogin(ctx, "hana", "hana's first password", m)
		wantStatus(t, "the password the link replaced", err, http.StatusUnauthorized)
	})
}

// TestLinkEndsOtherSessions: a viewer (no second factor) given a new link
// keeps the session of its own login until it uses the link, and loses
// it then.
func TestLinkEndsOtherSessions(t *testing.T) {
	_, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	first := enrolled(t, s, admin, "vic", Viewer, "vic's first password")
	if first.Stage != StageFull {
		t.Fatalf("a viewer's enrollment opened a %s session", first.Stage)
	}
	own, err := s.PasswordLogin(ctx, "vic", "vic's first password", LoginMeta{})
	if err != nil {
		t.Fatal(err)
	}
	link, err := s.Enrollment(ctx, admin, "vic", "")
	if err != nil {
		t.Fatal(err)
	}
	wantSessions(t, s, admin, "vic", "password")
	l, err := s.Enroll(ctx, linkCode(link), "vic's second password", LoginMeta{})
	if err != nil || l.Stage != StageFull {
		t.Fatalf("the new link = %+v, %v", l, err)
	}
	_, err = s.Session(ctx, own.SessionID)
	wantStatus(t, "vic's own session after vic used a new link", err, http.StatusUnauthorized)
	wantSessions(t, s, admin, "vic", "enrollment")
	if _, err := s.PasswordLogin(ctx, "vic", "vic's second password", LoginMeta{}); err != nil {
		t.Errorf("the link's password: %v", err)
	}
}

// TestDisableRevokesTheEnrollmentLink: disabling a user revokes its open
// enrollment link with its sessions and tokens, so that a link that went
// astray (the reason to disable a user not yet enrolled) does not work
// again once the user is enabled; a new link does.
func TestDisableRevokesTheEnrollmentLink(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		_, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		added, err := s.AddUser(ctx, admin, NewUser{Name: "gus", Role: Analyst}, actors, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetDisabled(ctx, admin, "gus", true, ""); err != nil {
			t.Fatal(err)
		}
		if info, err := s.UserInfo(ctx, "gus"); err != nil || info.Enrolling {
			t.Errorf("a disabled user: %+v, %v; want no open enrollment", info, err)
		}
		if _, err := s.SetDisabled(ctx, admin, "gus", false, ""); err != nil {
			t.Fatal(err)
		}
		m := LoginMeta{Remote: "192.0.2.30"}
		_, err = s.Enroll(ctx, linkCode(added.Enroll), "whoever found the link", m)
		wantStatus(t, "a link issued before the user was disabled", err, http.StatusUnauthorized)
		if _, err := s.PasswordLogin(ctx, "gus", "whoever found the link", m); problem.Message(err) != wrongLogin {
			t.Errorf("the old link set a password: %v", err)
		}
		link, err := s.Enrollment(ctx, admin, "gus", "")
		if err != nil {
			t.Fatal(err)
		}
		if l, err := s.Enroll(ctx, linkCode(link), "gus's own long password", m); err != nil || l.Stage != StageEnroll {
			t.Errorf("a new link after enabling: %+v, %v", l, err)
		}
	})
}
