package accounts

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/openvultron/vultron/problem"
)

// startProvider runs mockoidc, a real OpenID provider, on 127.0.0.1.
func startProvider(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// ssoService returns accounts that log people in through provider m.
func ssoService(t *testing.T, m *mockoidc.MockOIDC) *Service {
	t.Helper()
	cfg := m.Config()
	roles, err := ParseRoleMap("psirt-admins=admin, psirt=analyst")
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	s, _ := testService(t, backends[0].url(t), c, func(sc *Config) {
		// The provider signs with the real clock.
		sc.Now = time.Now
		sc.OIDC = &OIDCConfig{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RoleMap: roles}
	})
	return s
}

// authorize follows BeginSSO's URL to the provider and returns the
// callback's query: the provider answers at once with the queued user.
func authorize(t *testing.T, authURL string) url.Values {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Path != CallbackPath {
		t.Fatalf("the provider answered %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	return loc.Query()
}

// ssoLogin logs person in through provider m, who answers at once, and
// returns FinishSSO's login.
func ssoLogin(t *testing.T, s *Service, m *mockoidc.MockOIDC, meta LoginMeta, person *mockoidc.MockUser) (Login, error) {
	t.Helper()
	m.QueueUser(person)
	authURL, prelogin, err := s.BeginSSO(context.Background(), "/", meta)
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, authURL)
	l, _, err := s.FinishSSO(context.Background(), prelogin, q.Get("state"), q.Get("code"), meta)
	return l, err
}

func TestSSOLogin(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	meta := LoginMeta{Remote: "192.0.2.20"}
	admin := adminOf(t, s)

	// First login: the user is created with the role its groups map to.
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", Email: "jo.lee@example.com", PreferredUsername: "Jo.Lee", Groups: []string{"staff", "psirt"}})
	authURL, prelogin, err := s.BeginSSO(ctx, "/ui/cases/x", meta)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil || u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("nonce") == "" || u.Query().Get("state") == "" {
		t.Fatalf("the authorization URL %q lacks PKCE, a nonce or a state", authURL)
	}
	q := authorize(t, authURL)
	login, next, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
	if err != nil || login.Stage != StageFull || next != "/ui/cases/x" {
		t.Fatalf("FinishSSO = %+v, %q, %v", login, next, err)
	}
	st, err := s.Session(ctx, login.SessionID)
	if err != nil || st.Principal.Name != "jo.lee" || st.Principal.Role != Analyst || st.Method != "sso" {
		t.Fatalf("the SSO session: %+v, %v", st, err)
	}
	// The callback is used once.
	_, _, err = s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
	wantStatus(t, "a replayed callback", err, http.StatusUnauthorized)

	// The next login sets the role from the claim again.
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-1", PreferredUsername: "jo.lee", Groups: []string{"psirt-admins"}})
	authURL, prelogin, _ = s.BeginSSO(ctx, "/", meta)
	q = authorize(t, authURL)
	if login, _, err = s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Session(ctx, login.SessionID); st.Principal.Role != Admin || st.Principal.Name != "jo.lee" {
		t.Errorf("second login: %+v, want the admin jo.lee", st.Principal)
	}
	// Another person with the same preferred name gets a name of its own.
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-2", PreferredUsername: "jo.lee", Groups: []string{"psirt"}})
	authURL, prelogin, _ = s.BeginSSO(ctx, "/", meta)
	q = authorize(t, authURL)
	if login, _, err = s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta); err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Session(ctx, login.SessionID); st.Principal.Name != "jo.lee-2" {
		t.Errorf("a second jo.lee is named %q", st.Principal.Name)
	}

	// No mapped role: refused, and no user is made.
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-3", PreferredUsername: "outsider", Groups: []string{"marketing"}})
	authURL, prelogin, _ = s.BeginSSO(ctx, "/", meta)
	q = authorize(t, authURL)
	_, _, err = s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
	wantStatus(t, "a person with no mapped role", err, http.StatusForbidden)
	if !strings.Contains(problem.Message(err), "no role on this node") {
		t.Errorf("refused with %q", problem.Message(err))
	}
	if _, err := s.UserInfo(ctx, "outsider"); problem.Status(err) != http.StatusNotFound {
		t.Errorf("a user was made for a person with no role: %v", err)
	}

	// A disabled user stays out, whatever the provider says.
	if _, err := s.SetDisabled(ctx, admin, "jo.lee-2", true, ""); err != nil {
		t.Fatal(err)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-2", PreferredUsername: "jo.lee", Groups: []string{"psirt"}})
	authURL, prelogin, _ = s.BeginSSO(ctx, "/", meta)
	q = authorize(t, authURL)
	_, _, err = s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
	wantStatus(t, "a disabled SSO user", err, http.StatusForbidden)
}

// TestSSORefusals checks the callback's bindings: the pre-login of this
// browser, its state, and in the ID token its nonce; and that a callback
// is taken once, within the pre-login's ten minutes.
func TestSSORefusals(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	meta := LoginMeta{Remote: "192.0.2.21"}
	user := &mockoidc.MockUser{Subject: "sub-9", PreferredUsername: "kim", Groups: []string{"psirt"}}

	t.Run("state mismatch", func(t *testing.T) {
		m.QueueUser(user)
		authURL, prelogin, _ := s.BeginSSO(ctx, "/", meta)
		q := authorize(t, authURL)
		_, _, err := s.FinishSSO(ctx, prelogin, "forged-state", q.Get("code"), meta)
		wantStatus(t, "a forged state", err, http.StatusUnauthorized)
		if !strings.Contains(problem.Message(err), "state mismatch") {
			t.Errorf("refused with %q", problem.Message(err))
		}
	})
	t.Run("another browser", func(t *testing.T) {
		m.QueueUser(user)
		authURL, _, _ := s.BeginSSO(ctx, "/", meta)
		q := authorize(t, authURL)
		_, _, err := s.FinishSSO(ctx, "", q.Get("state"), q.Get("code"), meta)
		wantStatus(t, "a callback without the pre-login cookie", err, http.StatusUnauthorized)
		_, _, err = s.FinishSSO(ctx, "someone-elses", q.Get("state"), q.Get("code"), meta)
		wantStatus(t, "a callback with another pre-login", err, http.StatusUnauthorized)
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		m.QueueUser(user)
		authURL, prelogin, _ := s.BeginSSO(ctx, "/", meta)
		u, _ := url.Parse(authURL)
		v := u.Query()
		v.Set("nonce", "a-nonce-of-another-login")
		u.RawQuery = v.Encode()
		q := authorize(t, u.String())
		_, _, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
		wantStatus(t, "an ID token with another nonce", err, http.StatusUnauthorized)
		if !strings.Contains(problem.Message(err), "nonce mismatch") {
			t.Errorf("refused with %q", problem.Message(err))
		}
	})
	t.Run("replayed callback", func(t *testing.T) {
		m.QueueUser(user)
		authURL, prelogin, _ := s.BeginSSO(ctx, "/", meta)
		q := authorize(t, authURL)
		if _, _, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta); err != nil {
			t.Fatalf("the first callback: %v", err)
		}
		_, _, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
		wantStatus(t, "the same callback again", err, http.StatusUnauthorized)
	})
	t.Run("expired pre-login", func(t *testing.T) {
		m.QueueUser(user)
		authURL, prelogin, _ := s.BeginSSO(ctx, "/", meta)
		q := authorize(t, authURL)
		s.now = func() time.Time { return time.Now().Add(ssoTTL + time.Minute) }
		defer func() { s.now = time.Now }()
		_, _, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta)
		wantStatus(t, "a pre-login past its ten minutes", err, http.StatusUnauthorized)
	})
}

// TestSSOTokenChecks signs ID tokens that must be refused: by another
// provider, for another client, expired, and without a mapped role.
func TestSSOTokenChecks(t *testing.T) {
	m := startProvider(t)
	other := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	_, verifier, err := s.oidc.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := m.Config()
	now := time.Now()
	// mockoidc signs with one default key; a key of its own stands for a
	// key the provider does not publish.
	stranger, err := mockoidc.RandomKeypair(2048)
	if err != nil {
		t.Fatal(err)
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": cfg.Issuer, "aud": cfg.ClientID, "sub": "sub-5", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"nonce": "n-1", "groups": []string{"psirt"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	sign := func(kp *mockoidc.Keypair, c jwt.MapClaims) string {
		raw, err := kp.SignJWT(c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if _, _, role, err := s.oidc.checkIDToken(ctx, verifier, sign(m.Keypair, claims(nil)), "n-1"); err != nil || role != Analyst {
		t.Fatalf("a good token: role %v, %v", role, err)
	}
	for _, tc := range []struct {
		name   string
		raw    string
		status int
	}{
		{"another issuer's token", sign(other.Keypair, claims(func(c jwt.MapClaims) { c["iss"] = other.Config().Issuer })), http.StatusUnauthorized},
		{"a key the provider does not publish", sign(stranger, claims(nil)), http.StatusUnauthorized},
		{"another issuer named", sign(m.Keypair, claims(func(c jwt.MapClaims) { c["iss"] = other.Config().Issuer })), http.StatusUnauthorized},
		{"another audience", sign(m.Keypair, claims(func(c jwt.MapClaims) { c["aud"] = "some-other-client" })), http.StatusUnauthorized},
		{"expired", sign(m.Keypair, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), http.StatusUnauthorized},
		{"another nonce", sign(m.Keypair, claims(func(c jwt.MapClaims) { c["nonce"] = "n-2" })), http.StatusUnauthorized},
		{"no mapped role", sign(m.Keypair, claims(func(c jwt.MapClaims) { c["groups"] = "marketing" })), http.StatusForbidden},
	} {
		_, _, _, err := s.oidc.checkIDToken(ctx, verifier, tc.raw, "n-1")
		wantStatus(t, tc.name, err, tc.status)
	}
	if _, err := ParseRoleMap("psirt=overlord"); err == nil {
		t.Error("a role map with an unknown role was taken")
	}
}

// TestSSOUserGetsNoEnrollmentLink: a person who logs in through the
// identity provider has no password on the node and no factors of its
// own (the provider's login stands in for them). Neither a new link nor
// a reset of second factors gives them one: a link would set a password
// that logs in past the provider, and still would once the provider has
// shut the person out.
func TestSSOUserGetsNoEnrollmentLink(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	admin := adminOf(t, s)
	meta := LoginMeta{Remote: "192.0.2.22"}
	m.QueueUser(&mockoidc.MockUser{Subject: "sub-77", PreferredUsername: "kai", Groups: []string{"psirt"}})
	authURL, prelogin, err := s.BeginSSO(ctx, "/", meta)
	if err != nil {
		t.Fatal(err)
	}
	q := authorize(t, authURL)
	if _, _, err := s.FinishSSO(ctx, prelogin, q.Get("state"), q.Get("code"), meta); err != nil {
		t.Fatal(err)
	}
	_, err = s.Enrollment(ctx, admin, "kai", "")
	wantStatus(t, "an enrollment link for an SSO user", err, http.StatusConflict)
	_, err = s.Reset2FA(ctx, admin, "kai", "")
	wantStatus(t, "a reset of an SSO user's second factors", err, http.StatusConflict)
	if info, err := s.UserInfo(ctx, "kai"); err != nil || info.Enrolling || info.Password {
		t.Errorf("kai after the refusals: %+v, %v", info, err)
	}
}

// TestSSORoleWithdrawnEndsWhatTheUserHeld: when the identity provider no
// longer maps a person to any role (they left the PSIRT), the login is
// refused, and the sessions and tokens the person held end with it: the
// provider said the person has no part here any more.
func TestSSORoleWithdrawnEndsWhatTheUserHeld(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	meta := LoginMeta{Remote: "192.0.2.21"}
	login := func(groups ...string) (Login, error) {
		t.Helper()
		return ssoLogin(t, s, m, meta, &mockoidc.MockUser{Subject: "sub-9", PreferredUsername: "kim", Groups: groups})
	}
	first, err := login("psirt")
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Session(ctx, first.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateToken(ctx, st.Principal, TokenSpec{Scopes: ScopeSet{ScopeRead}, Name: "laptop"}, meta.Remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}

	_, err = login("marketing")
	wantStatus(t, "a person whose role the provider withdrew", err, http.StatusForbidden)
	if _, err := s.Session(ctx, first.SessionID); problem.Status(err) != http.StatusUnauthorized {
		t.Errorf("the session of a person whose role was withdrawn: %v, want it ended", err)
	}
	if _, err := s.Authenticate(ctx, secret); problem.Status(err) != http.StatusUnauthorized {
		t.Errorf("the token of a person whose role was withdrawn: %v, want it revoked", err)
	}
	// Mapped to a role again, the person logs in again.
	if _, err := login("psirt"); err != nil {
		t.Errorf("a login once the role is back: %v", err)
	}
}

// TestSSOTokensNeedARecentLogin: the tokens of a user who logs in through
// the identity provider work while that user has logged in there within
// the token standing (Config.SSOTokenStanding), since the node hears of a
// person the provider shut out only at a login: a person who left and
// never logs in again keeps no working token for longer. A login renews
// them; a password user's tokens are not touched.
func TestSSOTokensNeedARecentLogin(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	meta := LoginMeta{Remote: "192.0.2.22"}
	admin := adminOf(t, s)
	login := func() Login {
		t.Helper()
		l, err := ssoLogin(t, s, m, meta, &mockoidc.MockUser{Subject: "sub-11", PreferredUsername: "ana", Groups: []string{"psirt"}})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	st, err := s.Session(ctx, login().SessionID)
	if err != nil {
		t.Fatal(err)
	}
	secret, info, err := s.CreateToken(ctx, st.Principal, TokenSpec{Scopes: ScopeSet{ScopeRead}, Name: "ticket sync"}, meta.Remote)
	if err != nil {
		t.Fatal(err)
	}
	adminSecret, _, err := s.CreateToken(ctx, admin, TokenSpec{Scopes: ScopeSet{ScopeRead}, Name: "admin's"}, meta.Remote)
	if err != nil {
		t.Fatal(err)
	}

	at := func(d time.Duration) { s.now = func() time.Time { return time.Now().Add(d) } }
	defer func() { s.now = time.Now }()
	at(DefaultSSOTokenStanding - time.Hour)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Errorf("within the standing: %v", err)
	}
	at(DefaultSSOTokenStanding + time.Hour)
	_, err = s.Authenticate(ctx, secret)
	wantStatus(t, "a token of an SSO user who has not logged in for longer than the standing", err, http.StatusUnauthorized)
	want := "token " + info.ID + " belongs to ana, who has not logged in through " + m.Config().Issuer + " for 30 days"
	if msg := problem.Message(err); !strings.Contains(msg, want) || !strings.Contains(msg, "log in through single sign-on") {
		t.Errorf("refused with %q, want it to say %q and what to do", msg, want)
	}
	if _, err := s.Authenticate(ctx, adminSecret); err != nil {
		t.Errorf("a password user's token: %v", err)
	}

	// A login renews the standing of the user's tokens.
	s.now = time.Now
	login()
	at(DefaultSSOTokenStanding - time.Hour)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Errorf("after a new login: %v", err)
	}

	// The node's own standing; and a provider that is no longer the
	// node's cannot renew it.
	s.cfg.SSOTokenStanding = 48 * time.Hour
	at(49 * time.Hour)
	_, err = s.Authenticate(ctx, secret)
	if msg := problem.Message(err); !strings.Contains(msg, "for 2 days (the tokens of a user of single sign-on work for 2 days after a login there") {
		t.Errorf("with a standing of 2 days, refused with %q", msg)
	}
	s.oidc = &oidcClient{cfg: OIDCConfig{Issuer: "https://idp.example/new"}}
	_, err = s.Authenticate(ctx, secret)
	if msg := problem.Message(err); !strings.Contains(msg, "single sign-on is now through https://idp.example/new") {
		t.Errorf("after the provider changed, refused with %q", msg)
	}
	s.oidc = nil
	_, err = s.Authenticate(ctx, secret)
	if msg := problem.Message(err); !strings.Contains(msg, "no longer has single sign-on") {
		t.Errorf("on a node without single sign-on, refused with %q", msg)
	}
}

// TestSSOLoginKeepsTheLastAdmin: the provider's role claim sets a user's
// role at each login, but it does not demote the node's last enabled
// admin, which would leave nobody to manage the node: such a login is
// refused, saying what to do, and the user stays admin until another
// user is; then the same login demotes it.
func TestSSOLoginKeepsTheLastAdmin(t *testing.T) {
	m := startProvider(t)
	s := ssoService(t, m)
	ctx := context.Background()
	meta := LoginMeta{Remote: "192.0.2.23"}
	admin := adminOf(t, s)
	ada := func(groups ...string) (Login, error) {
		t.Helper()
		return ssoLogin(t, s, m, meta, &mockoidc.MockUser{Subject: "sub-ada", PreferredUsername: "ada", Groups: groups})
	}
	if _, err := ada("psirt-admins"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, admin, "admin", true, ""); err != nil {
		t.Fatal(err) // ada is now the only enabled admin
	}

	_, err := ada("psirt")
	wantStatus(t, "a login that would demote the last admin", err, http.StatusConflict)
	if msg := problem.Message(err); !strings.Contains(msg, "last enabled admin") {
		t.Errorf("refused with %q; want it to say ada is the last enabled admin", msg)
	}
	if info, err := s.UserInfo(ctx, "ada"); err != nil || info.Role != Admin {
		t.Fatalf("ada after the refused login: %+v, %v; want still admin", info, err)
	}

	// Another admin logs in; then ada's login demotes her.
	if _, err := ssoLogin(t, s, m, meta, &mockoidc.MockUser{Subject: "sub-bo", PreferredUsername: "bo", Groups: []string{"psirt-admins"}}); err != nil {
		t.Fatal(err)
	}
	l, err := ada("psirt")
	if err != nil {
		t.Fatalf("ada's login once bo is admin: %v", err)
	}
	if st, err := s.Session(ctx, l.SessionID); err != nil || st.Principal.Role != Analyst {
		t.Errorf("ada's session: %+v, %v; want analyst", st.Principal, err)
	}
}
