package accounts

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/openvultron/vultron/problem"
)

// code returns the TOTP code of secret at t.
func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totpOpts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// withApp sets up an authenticator app in the enrollment session id:
// it offers the app, confirms it with the current code and checks that
// the confirmation opens a full session. It returns that login and the
// app's secret.
func withApp(t *testing.T, s *Service, c *clock, id string, m LoginMeta) (Login, string) {
	t.Helper()
	ctx := context.Background()
	offer, err := s.OfferTOTP(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.ConfirmTOTP(ctx, id, code(t, offer.Secret, c.Now()), m)
	if err != nil || done.Stage != StageFull {
		t.Fatalf("ConfirmTOTP = %+v, %v; want a session of stage %s", done, err, StageFull)
	}
	return done, offer.Secret
}

// loginWithApp logs name in with password and the current code of the
// authenticator app with secret, from m, checking that the password opens
// a login that awaits the code and the code a full session; it returns
// that session's login.
func loginWithApp(t *testing.T, s *Service, c *clock, name, password, secret string, m LoginMeta) Login {
	t.Helper()
	ctx := context.Background()
	pending, err := s.PasswordLogin(ctx, name, password, m)
	if err != nil || pending.Stage != StageSecondFactor {
		t.Fatalf("%s's password step = %+v, %v; want a login of stage %s", name, pending, err, StageSecondFactor)
	}
	full, err := s.SecondFactorTOTP(ctx, pending.SessionID, code(t, secret, c.Now()), m)
	if err != nil || full.Stage != StageFull {
		t.Fatalf("%s's code = %+v, %v; want a session of stage %s", name, full, err, StageFull)
	}
	return full
}

// TestTOTPEnrolmentAndLogin follows an analyst from the enrollment link
// through an authenticator app to its logins: a code is taken once, a
// step before or after the current one is taken, two steps away is not,
// and after five wrong factors the pending login ends.
func TestTOTPEnrolmentAndLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		m := LoginMeta{Remote: "192.0.2.10"}
		enroll := enrolled(t, s, admin, "hana", Analyst, "hana's long password")
		if enroll.Stage != StageEnroll {
			t.Fatalf("an analyst's enrollment opened a %s session, want %s", enroll.Stage, StageEnroll)
		}
		// An enroll session grants nothing yet.
		if st, err := s.Session(ctx, enroll.SessionID); err != nil || len(st.Principal.Scopes) != 0 {
			t.Fatalf("enroll session: %+v, %v", st.Principal, err)
		}
		// Without a second factor the password alone does not log in.
		_, err := s.PasswordLogin(ctx, "hana", "hana's long password", m)
		wantStatus(t, "an analyst without a second factor", err, http.StatusForbidden)

		offer, err := s.OfferTOTP(ctx, enroll.SessionID)
		if err != nil || !strings.HasPrefix(offer.URL, "otpauth://totp/") || offer.Secret == "" {
			t.Fatalf("OfferTOTP = %+v, %v", offer, err)
		}
		if again, ok, err := s.PendingTOTP(ctx, enroll.SessionID); err != nil || !ok || again.Secret != offer.Secret {
			t.Errorf("PendingTOTP = %+v, %v, %v", again, ok, err)
		}
		_, err = s.ConfirmTOTP(ctx, enroll.SessionID, "000000", m)
		wantStatus(t, "a wrong confirmation code", err, http.StatusBadRequest)
		done, err := s.ConfirmTOTP(ctx, enroll.SessionID, code(t, offer.Secret, c.Now()), m)
		if err != nil || done.Stage != StageFull || len(done.Recovery) != recoveryCodes || done.SessionID == enroll.SessionID {
			t.Fatalf("ConfirmTOTP = %+v, %v", done, err)
		}
		if _, err := s.Session(ctx, enroll.SessionID); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("the enroll session outlived its promotion: %v", err)
		}
		if st, err := s.Session(ctx, done.SessionID); err != nil || !st.Principal.Can(ScopeAct) || st.Method != "enrollment+authenticator app" {
			t.Errorf("the new session: %+v, %v", st, err)
		}

		// A login: password, then a code of the next step (the one the
		// confirmation used is spent).
		c.Advance(30 * time.Second)
		pending, err := s.PasswordLogin(ctx, "hana", "hana's long password", m)
		if err != nil || pending.Stage != StageSecondFactor {
			t.Fatalf("password step = %+v, %v", pending, err)
		}
		if st, err := s.Session(ctx, pending.SessionID); err != nil || len(st.Principal.Scopes) != 0 {
			t.Fatalf("a session awaiting its second factor grants %+v, %v", st.Principal.Scopes, err)
		}
		now := c.Now()
		full, err := s.SecondFactorTOTP(ctx, pending.SessionID, code(t, offer.Secret, now), m)
		if err != nil || full.Stage != StageFull {
			t.Fatalf("TOTP step = %+v, %v", full, err)
		}
		// The same code again, within its 30 seconds: refused.
		pending, _ = s.PasswordLogin(ctx, "hana", "hana's long password", m)
		_, err = s.SecondFactorTOTP(ctx, pending.SessionID, code(t, offer.Secret, now), m)
		wantStatus(t, "a replayed code", err, http.StatusUnauthorized)
		if !strings.Contains(problem.Message(err), "used already") {
			t.Errorf("replay refused with %q", problem.Message(err))
		}
		// One step ahead is within the window; two steps ahead is not.
		_, err = s.SecondFactorTOTP(ctx, pending.SessionID, code(t, offer.Secret, now.Add(60*time.Second)), m)
		wantStatus(t, "a code two steps ahead", err, http.StatusUnauthorized)
		if _, err := s.SecondFactorTOTP(ctx, pending.SessionID, code(t, offer.Secret, now.Add(30*time.Second)), m); err != nil {
			t.Errorf("a code one step ahead: %v", err)
		}
		// Five wrong factors end the pending login.
		c.Advance(time.Hour)
		pending, _ = s.PasswordLogin(ctx, "hana", "hana's long password", m)
		for wrong := 0; wrong < maxFactorAttempts; {
			_, err = s.SecondFactorTOTP(ctx, pending.SessionID, "123456", LoginMeta{Remote: "192.0.2.99"})
			var pe *problem.Error
			if errors.As(err, &pe) && pe.Status == http.StatusTooManyRequests {
				c.Advance(pe.RetryAfter) // the throttle's wait, seconds
				continue
			}
			wantStatus(t, "a wrong code", err, http.StatusUnauthorized)
			wrong++
		}
		if !strings.Contains(problem.Message(err), "too many wrong second factors") {
			t.Errorf("the fifth wrong code was refused with %q", problem.Message(err))
		}
		if _, err := s.Session(ctx, pending.SessionID); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("the pending login survived %d wrong codes: %v", maxFactorAttempts, err)
		}

		// A recovery code stands in for the app, once.
		c.Advance(time.Hour)
		pending, err = s.PasswordLogin(ctx, "hana", "hana's long password", m)
		if err != nil {
			t.Fatal(err)
		}
		rc := strings.ToLower(done.Recovery[3])
		if _, err := s.SecondFactorRecovery(ctx, pending.SessionID, rc, m); err != nil {
			t.Fatalf("a recovery code: %v", err)
		}
		pending, _ = s.PasswordLogin(ctx, "hana", "hana's long password", m)
		_, err = s.SecondFactorRecovery(ctx, pending.SessionID, rc, m)
		wantStatus(t, "a recovery code used twice", err, http.StatusUnauthorized)

		// An admin resets the second factors: the sessions end, and the
		// enrollment link sets up new ones.
		link, err := s.Reset2FA(ctx, admin, "hana", "")
		if err != nil || !strings.Contains(link, "/enroll?code=") {
			t.Fatalf("Reset2FA = %q, %v", link, err)
		}
		if _, err := s.Session(ctx, full.SessionID); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("a session outlived the reset: %v", err)
		}
		_, err = s.PasswordLogin(ctx, "hana", "hana's long password", m)
		wantStatus(t, "a login after the reset, before a new factor", err, http.StatusForbidden)
		info, err := s.UserInfo(ctx, "hana")
		if err != nil || info.TOTP || info.Recovery != 0 || !info.Enrolling {
			t.Errorf("after the reset: %+v, %v", info, err)
		}
	})
}

func TestTOTPWindow(t *testing.T) {
	secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	now := time.Unix(1_800_000_015, 0)
	cur := now.Unix() / totpPeriod
	for _, tc := range []struct {
		at             time.Time
		last           int64
		ok, replayed   bool
		wantStepOffset int64
	}{
		{now, 0, true, false, 0},
		{now.Add(-30 * time.Second), 0, true, false, -1},
		{now.Add(30 * time.Second), 0, true, false, 1},
		{now.Add(-60 * time.Second), 0, false, false, 0},
		{now.Add(90 * time.Second), 0, false, false, 0},
		{now, cur, false, true, 0},
		{now.Add(-30 * time.Second), cur, false, true, -1},
	} {
		c, err := totp.GenerateCodeCustom(secret, tc.at, totpOpts)
		if err != nil {
			t.Fatal(err)
		}
		step, ok, replay := totpStep(secret, c, now, tc.last)
		if ok != tc.ok || replay != tc.replayed || ((ok || replay) && step != cur+tc.wantStepOffset) {
			t.Errorf("code of %v (last step %d): step %d ok %v replay %v; want ok %v replay %v step %d", tc.at.Sub(now), tc.last-cur, step-cur, ok, replay, tc.ok, tc.replayed, tc.wantStepOffset)
		}
	}
	if _, ok, _ := totpStep(secret, "12345", now, 0); ok {
		t.Error("a five-digit code was taken")
	}
}

func TestEnrollmentLinks(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	added, err := s.AddUser(ctx, admin, NewUser{Name: "ivan", Role: Viewer}, actors, "")
	if err != nil {
		t.Fatal(err)
	}
	code := strings.TrimPrefix(added.Enroll, "http://localhost:7001/enroll?code=")
	if name, err := s.EnrollmentUser(ctx, code); err != nil || name != "ivan" {
		t.Errorf("EnrollmentUser = %q, %v", name, err)
	}
	_, err = s.Enroll(ctx, code, "short", LoginMeta{})
	wantStatus(t, "a short password", err, http.StatusBadRequest)
	// A new link replaces the old one.
	link, err := s.Enrollment(ctx, admin, "ivan", "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Enroll(ctx, code, "a long enough password", LoginMeta{})
	wantStatus(t, "a replaced enrollment link", err, http.StatusUnauthorized)
	c.Advance(enrollTTL + time.Minute)
	_, err = s.Enroll(ctx, strings.TrimPrefix(link, "http://localhost:7001/enroll?code="), "a long enough password", LoginMeta{})
	wantStatus(t, "an expired enrollment link", err, http.StatusUnauthorized)
	if err != nil && !strings.Contains(problem.Message(err), "expired") {
		t.Errorf("expired link refused with %q", problem.Message(err))
	}
}

func TestPasswordHashes(t *testing.T) {
	h, err := newHasher(fastArgon2)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	enc, err := h.hash(ctx, "a long enough password")
	if err != nil || !strings.HasPrefix(enc, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("hash = %q, %v", enc, err)
	}
	if ok, weaker, err := h.verify(ctx, enc, "a long enough password"); !ok || weaker || err != nil {
		t.Errorf("verify = %v, %v, %v", ok, weaker, err)
	}
	if ok, _, _ := h.verify(ctx, enc, "a long enough passwore"); ok {
		t.Error("a wrong password verified")
	}
	if ok, _, err := h.verify(ctx, "", "anything"); ok || err != nil {
		t.Errorf("the dummy hash verified: %v, %v", ok, err)
	}
	stronger, err := newHasher(Argon2Params{Memory: 2048, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ok, weaker, _ := stronger.verify(ctx, enc, "a long enough password"); !ok || !weaker {
		t.Errorf("a hash of lower cost: ok %v, weaker %v; want both", ok, weaker)
	}
	for _, bad := range []string{"$argon2i$v=19$m=1,t=1,p=1$AA$AA", "plain", "$argon2id$v=19$m=x$AA$AA"} {
		if _, _, err := h.verify(ctx, bad, "x"); err == nil {
			t.Errorf("malformed hash %q verified without an error", bad)
		}
	}
}

// BenchmarkHashPassword measures one password hash at the node's
// parameters (DefaultArgon2), the cost of every login.
func BenchmarkHashPassword(b *testing.B) {
	h, err := newHasher(DefaultArgon2)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.hash(ctx, "a long enough password"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestHasherComputesNothingAtStart opens a hasher: the dummy hash that a
// login of an unknown name is checked against is made of random bytes,
// not computed, since an argon2id hash at start took its 46 MiB from the
// node's memory for good (the node's idle RSS went from 16 to 73 MiB). It
// still costs a check what a real one costs, and matches nothing.
func TestHasherComputesNothingAtStart(t *testing.T) {
	h, err := newHasher(Argon2Params{Memory: 1024, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if n := h.computed.Load(); n != 0 {
		t.Errorf("newHasher computed %d argon2id hashes, want none", n)
	}
	p, salt, sum, err := parsePHC(h.dummy)
	if err != nil || p != h.params || len(salt) != saltSize || len(sum) != hashSize {
		t.Fatalf("dummy %q: params %+v, salt %d bytes, hash %d bytes, %v; want the hasher's, %d and %d", h.dummy, p, len(salt), len(sum), err, saltSize, hashSize)
	}
	if ok, _, err := h.verify(context.Background(), "", "anything"); ok || err != nil || h.computed.Load() != 1 {
		t.Errorf("a check against the dummy: %v, %v, %d computations; want no match after one", ok, err, h.computed.Load())
	}
}

// TestPasswordAloneEndsNoSession: whoever has a user's password but not
// the second factor can open logins that await the factor, as many as
// they like; those are counted apart from the user's logged-in sessions,
// so that they never push one of them out as the oldest of too many.
// Logins that await a factor are bounded too: the oldest of them goes.
func TestPasswordAloneEndsNoSession(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	m := LoginMeta{Remote: "192.0.2.40"}
	enroll := enrolled(t, s, admin, "hana", Analyst, "hana's long password")
	hers, _ := withApp(t, s, c, enroll.SessionID, m)
	var first string
	for i := range MaxSessionsPerUser + 5 {
		c.Advance(time.Second)
		l, err := s.PasswordLogin(ctx, "hana", "hana's long password", LoginMeta{Remote: "198.51.100.66"})
		if err != nil || l.Stage != StageSecondFactor {
			t.Fatalf("password step %d = %+v, %v", i, l, err)
		}
		if i == 0 {
			first = l.SessionID
		}
	}
	if st, err := s.Session(ctx, hers.SessionID); err != nil || st.Stage != StageFull {
		t.Errorf("hana's session after %d logins with her password alone: %+v, %v", MaxSessionsPerUser+5, st.Stage, err)
	}
	_, err := s.Session(ctx, first)
	wantStatus(t, "the oldest of too many logins awaiting a factor", err, http.StatusUnauthorized)
	if n := countSessions(t, s, "hana"); n != MaxSessionsPerUser+1 {
		t.Errorf("hana has %d sessions, want her own and %d awaiting a factor", n, MaxSessionsPerUser)
	}
}

// countSessions counts a user's stored sessions, of every stage.
func countSessions(t *testing.T, s *Service, name string) int {
	t.Helper()
	n := 0
	if err := s.view(context.Background(), func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		return t.rangePrefix(bUserSessions, []byte(u.ID+"/"), func(_, _ []byte) (bool, error) { n++; return true, nil })
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPromotionNeedsASecondFactor: a viewer logs in with the password
// alone, as viewers may. Made an analyst (or an admin), whose role needs
// a second factor, that session does not carry the new role: it is
// refused, and so is what it would do next (set up a factor, mint a
// token); the person logs in again, with a factor once they have one.
// A session that gave a second factor keeps working across a role
// change.
func TestPromotionNeedsASecondFactor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		m := LoginMeta{Remote: "192.0.2.50"}
		enroll := enrolled(t, s, admin, "vic", Viewer, "vic's long password")
		pw, err := s.PasswordLogin(ctx, "vic", "vic's long password", m)
		if err != nil || pw.Stage != StageFull || enroll.Stage != StageFull {
			t.Fatalf("a viewer's logins: %+v, %+v, %v", enroll, pw, err)
		}
		if _, err := s.SetRole(ctx, admin, "vic", Analyst, nil, actors, ""); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{enroll.SessionID, pw.SessionID} {
			st, err := s.Session(ctx, id)
			wantStatus(t, "a password-only session of a viewer made analyst", err, http.StatusUnauthorized)
			if st.Principal.Can(ScopeAct) {
				t.Errorf("the session acts: %+v", st.Principal)
			}
			_, err = s.OfferTOTP(ctx, id)
			wantStatus(t, "setting up a factor in that session", err, http.StatusUnauthorized)
		}
		if n := countSessions(t, s, "vic"); n != 0 {
			t.Errorf("vic keeps %d sessions opened without a second factor", n)
		}
		_, err = s.PasswordLogin(ctx, "vic", "vic's long password", m)
		wantStatus(t, "a password login of an analyst without a factor", err, http.StatusForbidden)

		// hana gave her code: her session lives on as she is made admin.
		hanaEnroll := enrolled(t, s, admin, "hana", Analyst, "hana's long password")
		hana, _ := withApp(t, s, c, hanaEnroll.SessionID, m)
		if _, err := s.SetRole(ctx, admin, "hana", Admin, nil, actors, ""); err != nil {
			t.Fatal(err)
		}
		if st, err := s.Session(ctx, hana.SessionID); err != nil || !st.Principal.Can(ScopeAdmin) {
			t.Errorf("hana's session after she was made admin: %+v, %v", st.Principal, err)
		}
	})
}

// TestRequiringSecondFactorsEndsPasswordOnlySessions: an analyst logged
// in with the password alone on a node run with --second-factor
// optional; the node, started again requiring a second factor, refuses
// that session.
func TestRequiringSecondFactorsEndsPasswordOnlySessions(t *testing.T) {
	c := newClock()
	lax, db := testService(t, backends[0].url(t), c, func(cfg *Config) { cfg.SecondFactorOptional = true })
	ctx := context.Background()
	admin := adminOf(t, lax)
	enrolled(t, lax, admin, "erin", Analyst, "erin's long password")
	l, err := lax.PasswordLogin(ctx, "erin", "erin's long password", LoginMeta{})
	if err != nil || l.Stage != StageFull {
		t.Fatalf("a password login with factors optional: %+v, %v", l, err)
	}
	strict, err := New(Config{Store: db, PublicURL: "http://localhost:7001", Now: c.Now, Argon2: fastArgon2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Session(ctx, l.SessionID)
	wantStatus(t, "a password-only analyst session on a node that requires a factor", err, http.StatusUnauthorized)
	if st, err := lax.Session(ctx, l.SessionID); err != nil || !st.Principal.Can(ScopeAct) {
		t.Errorf("the same session where factors are optional: %+v, %v", st.Principal, err)
	}
}

// TestFactorsAndRecoveryNeedARecentLogin: a session whose login is older
// than Config.RecentLogin (a cookie taken from a browser left logged in)
// enrols no authenticator app or passkey and makes no recovery codes:
// each is refused with 403 saying to log in again, and nothing changes;
// a new login does them. A session still in its enrolment is recent.
func TestFactorsAndRecoveryNeedARecentLogin(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		m := LoginMeta{Remote: "192.0.2.10"}
		enroll := enrolled(t, s, admin, "ines", Analyst, "ines's long password")
		done, secret := withApp(t, s, c, enroll.SessionID, m)
		// Kept in use, the session is not idle; its login grows old.
		for range 4 {
			c.Advance(5 * time.Minute)
			if _, err := s.Session(ctx, done.SessionID); err != nil {
				t.Fatal(err)
			}
		}
		_, err := s.NewRecoveryCodes(ctx, done.SessionID, m)
		wantStatus(t, "new recovery codes on an old login", err, http.StatusForbidden)
		if !strings.Contains(problem.Message(err), "log in again") {
			t.Errorf("the refusal says %q, want it to say to log in again", problem.Message(err))
		}
		_, err = s.OfferTOTP(ctx, done.SessionID)
		wantStatus(t, "a new authenticator app on an old login", err, http.StatusForbidden)
		if s.Passkeys() {
			_, err = s.BeginPasskeyRegistration(ctx, done.SessionID)
			wantStatus(t, "a new passkey on an old login", err, http.StatusForbidden)
		}
		if err := s.RecentLogin(ctx, done.SessionID); problem.Status(err) != http.StatusForbidden {
			t.Errorf("RecentLogin of an old login: %v, want 403", err)
		}
		if st, err := s.Session(ctx, done.SessionID); err != nil || st.RecoveryLeft != recoveryCodes || st.TOTPPending != "" {
			t.Errorf("after the refusals: %d recovery codes, pending app %q, %v", st.RecoveryLeft, st.TOTPPending, err)
		}

		// Logged in again, it may.
		c.Advance(30 * time.Second)
		full := loginWithApp(t, s, c, "ines", "ines's long password", secret, m)
		if err := s.RecentLogin(ctx, full.SessionID); err != nil {
			t.Errorf("RecentLogin of a new login: %v", err)
		}
		if codes, err := s.NewRecoveryCodes(ctx, full.SessionID, m); err != nil || len(codes) != recoveryCodes {
			t.Errorf("new recovery codes on a new login: %d, %v", len(codes), err)
		}
		if _, err := s.OfferTOTP(ctx, full.SessionID); err != nil {
			t.Errorf("a new authenticator app on a new login: %v", err)
		}
	})
}

// TestADamagedPendingTOTPKeepsItsSecret: a session whose pending
// authenticator app's record (an otpauth:// URL) does not parse is the
// node's failure, and the error, which the node logs, does not hold the
// URL, whose query is the secret; the driver's parse error quoted it.
func TestADamagedPendingTOTPKeepsItsSecret(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		_, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		enroll := enrolled(t, s, admin, "hana", Analyst, "hana's long password")
		if _, err := s.OfferTOTP(ctx, enroll.SessionID); err != nil {
			t.Fatal(err)
		}
		const secret = "JBSWY3DPEHPK3PXPSECRET"
		err := s.update(ctx, func(t tx) error {
			var ss Session
			if _, err := t.getJSON(bSessions, sessionKey(enroll.SessionID), &ss); err != nil {
				return err
			}
			ss.TOTPPending = "otpauth://totp/vultron:hana?secret=" + secret + "\x7f"
			return t.putJSON(bSessions, sessionKey(enroll.SessionID), ss)
		})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.PendingTOTP(ctx, enroll.SessionID)
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("PendingTOTP of a damaged record: %v; want an error without the secret", err)
		}
		_, err = s.ConfirmTOTP(ctx, enroll.SessionID, "123456", LoginMeta{})
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Errorf("ConfirmTOTP of a damaged record: %v; want an error without the secret", err)
		}
	})
}
