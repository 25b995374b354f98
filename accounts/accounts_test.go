package accounts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// backends are the stores the tests run on: a bbolt file and a database
// of the throw-away PostgreSQL server.
var backends = []struct {
	name string
	url  func(t *testing.T) string
}{
	{"bolt", func(t *testing.T) string { return "bolt:" + filepath.Join(t.TempDir(), "vultron.db") }},
	{"postgres", func(t *testing.T) string { return pgtest.Database(t) }},
}

// forEachBackend runs fn once per store engine.
func forEachBackend(t *testing.T, fn func(t *testing.T, url string)) {
	t.Helper()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { fn(t, be.url(t)) })
	}
}

// fastArgon2 keeps the tests quick; the parameters' cost is measured by
// BenchmarkHashPassword with the defaults.
var fastArgon2 = Argon2Params{Memory: 1024, Time: 1, Threads: 1}

// testService returns accounts over a new store at url, with a first
// admin whose token is apiToken.
func testService(t *testing.T, url string, c *clock, mod func(*Config)) (*Service, *store.DB) {
	t.Helper()
	db, err := store.OpenURL(context.Background(), url, store.Options{NoSync: true, Now: c.Now, DataKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg := Config{Store: db, PublicURL: "http://localhost:7001", Now: c.Now, Argon2: fastArgon2}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

const apiToken = "the-node-api-token-of-at-least-32-characters"

func apiSum() []byte {
	s := sha256.Sum256([]byte(apiToken))
	return s[:]
}

// adminOf returns the principal of the first admin's API token.
func adminOf(t *testing.T, s *Service) Principal {
	t.Helper()
	if _, err := s.Bootstrap(context.Background(), apiSum()); err != nil {
		t.Fatal(err)
	}
	p, err := s.Authenticate(context.Background(), apiToken)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// serviceWithAdmin returns a test clock, accounts over a new store at
// url on that clock (with mod applied to the config, when not nil), and
// the principal of the first admin's API token.
func serviceWithAdmin(t *testing.T, url string, mod func(*Config)) (*clock, *Service, Principal) {
	t.Helper()
	c := newClock()
	s, _ := testService(t, url, c, mod)
	return c, s, adminOf(t, s)
}

func actors(name string) bool { return name == "vendor" || name == "coordinator" }

// wantStatus fails unless err is a refusal with the given status.
func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	if err == nil || problem.Status(err) != status {
		t.Errorf("%s: %v (status %d), want status %d", what, err, problem.Status(err), status)
	}
}

func TestBootstrapMakesTheAPITokenTheFirstAdmins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c := newClock()
		s, db := testService(t, url, c, nil)
		ctx := context.Background()
		link, err := s.Bootstrap(ctx, apiSum())
		if err != nil || !strings.HasPrefix(link, "http://localhost:7001/enroll?code=") {
			t.Fatalf("Bootstrap = %q, %v; want an enrollment link", link, err)
		}
		p, err := s.Authenticate(ctx, apiToken)
		if err != nil || p.Name != "admin" || p.Role != Admin || p.Credential != APITokenID || !p.Can(ScopeAdmin) || !p.Can(ScopeMetrics) || !p.Can(ScopeCalendar) {
			t.Fatalf("the API token authenticates as %+v, %v", p, err)
		}
		// A second start changes nothing and prints no link.
		if link, err := s.Bootstrap(ctx, apiSum()); err != nil || link != "" {
			t.Errorf("second Bootstrap = %q, %v", link, err)
		}
		// A new API token file: its token replaces the old one's hash.
		other := sha256.Sum256([]byte("another-api-token-of-32-or-more-characters"))
		if _, err := s.Bootstrap(ctx, other[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, apiToken); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("the old API token still works: %v", err)
		}
		if p, err := s.Authenticate(ctx, "another-api-token-of-32-or-more-characters"); err != nil || p.Credential != APITokenID {
			t.Errorf("the new API token: %+v, %v", p, err)
		}
		// The store holds the token's hash only, sealed.
		recs, _, err := db.AuditPage(ctx, 0, 10)
		if err != nil || len(recs) != 2 || !strings.Contains(recs[0].Reason, "user admin added") || recs[0].Kind != store.AuditAccount {
			t.Errorf("audit = %+v, %v", recs, err)
		}
	})
}

// TestTokens covers a token's life: issued once with its user, scoped
// within its role as it is at each request, revoked, expired, refused
// once its user is disabled, and never able to mint more than it holds.
func TestTokens(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, nil)
		ctx := context.Background()
		added, err := s.AddUser(ctx, admin, NewUser{Name: "Alice", Role: Analyst, Actors: []string{"vendor"}}, actors, "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if added.User.Name != "alice" || !strings.HasPrefix(added.Token, tokenPrefix) || added.Enroll == "" {
			t.Fatalf("AddUser = %+v", added)
		}
		alice, err := s.Authenticate(ctx, added.Token)
		if err != nil || alice.Name != "alice" || alice.Role != Analyst || !alice.Can(ScopeAct) || alice.Can(ScopeAdmin) {
			t.Fatalf("alice's token: %+v, %v", alice, err)
		}
		if !alice.ActsFor("vendor") || alice.ActsFor("coordinator") {
			t.Errorf("alice acts for vendor %v, coordinator %v; want vendor only", alice.ActsFor("vendor"), alice.ActsFor("coordinator"))
		}
		// A read token of her own; it cannot mint an act token.
		readTok, info, err := s.CreateToken(ctx, alice, TokenSpec{Scopes: ScopeSet{ScopeRead}, Expires: time.Hour, Name: "dashboards"}, "")
		if err != nil || info.Scopes != "read" || info.User != "alice" {
			t.Fatalf("CreateToken = %+v, %v", info, err)
		}
		reader, err := s.Authenticate(ctx, readTok)
		if err != nil || reader.Can(ScopeAct) || !reader.Can(ScopeRead) {
			t.Fatalf("read token: %+v, %v", reader, err)
		}
		_, _, err = s.CreateToken(ctx, reader, TokenSpec{Scopes: ScopeSet{ScopeAct}}, "")
		wantStatus(t, "a read token minting an act token", err, http.StatusForbidden)
		// An analyst cannot hold admin, nor make tokens for others.
		_, _, err = s.CreateToken(ctx, alice, TokenSpec{Scopes: ScopeSet{ScopeAdmin}}, "")
		wantStatus(t, "an analyst's admin token", err, http.StatusForbidden)
		_, _, err = s.CreateToken(ctx, alice, TokenSpec{User: "admin", Scopes: ScopeSet{ScopeRead}}, "")
		wantStatus(t, "an analyst's token for another user", err, http.StatusForbidden)
		// The role is read at every request: demoted to viewer, her act
		// token reads only.
		if _, err := s.SetRole(ctx, admin, "alice", Viewer, nil, actors, ""); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Authenticate(ctx, added.Token); err != nil || p.Can(ScopeAct) || !p.Can(ScopeRead) {
			t.Errorf("a viewer's act token: %+v, %v", p, err)
		}
		// Expiry.
		c.Advance(2 * time.Hour)
		_, err = s.Authenticate(ctx, readTok)
		wantStatus(t, "an expired token", err, http.StatusUnauthorized)
		if err != nil && !strings.Contains(problem.Message(err), "expired") {
			t.Errorf("expired token refused with %q", problem.Message(err))
		}
		// Revocation, by id, by its owner.
		toks, err := s.Tokens(ctx, alice, "")
		if err != nil || len(toks) != 2 {
			t.Fatalf("Tokens = %+v, %v", toks, err)
		}
		if err := s.RevokeToken(ctx, alice, toks[1].ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, alice, toks[1].ID, ""); problem.Status(err) != http.StatusNotFound {
			t.Errorf("revoking twice: %v", err)
		}
		// Disabling ends the rest at once.
		if _, err := s.SetDisabled(ctx, admin, "alice", true, ""); err != nil {
			t.Fatal(err)
		}
		_, err = s.Authenticate(ctx, added.Token)
		wantStatus(t, "a disabled user's token", err, http.StatusUnauthorized)
		if toks, err := s.Tokens(ctx, admin, "alice"); err != nil || len(toks) != 0 {
			t.Errorf("a disabled user keeps tokens %+v, %v", toks, err)
		}
		_, err = s.Authenticate(ctx, "vultron_never-issued")
		wantStatus(t, "an unknown token", err, http.StatusUnauthorized)
	})
}

// TestDemotedTokenKeepsWhatItsScopesInclude checks that a token's scopes
// are taken with what they include (act reads, admin acts and reads)
// before the user's role cuts them: a demoted user's act token still
// reads, and an admin-only token of an admin demoted to analyst acts.
func TestDemotedTokenKeepsWhatItsScopesInclude(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		s, _ := testService(t, url, newClock(), nil)
		ctx := context.Background()
		admin := adminOf(t, s)
		for _, name := range []string{"alice", "bob"} {
			if _, err := s.AddUser(ctx, admin, NewUser{Name: name, Role: Admin}, actors, ""); err != nil {
				t.Fatal(err)
			}
		}
		actTok, _, err := s.CreateToken(ctx, admin, TokenSpec{User: "alice", Scopes: ScopeSet{ScopeAct, ScopeMetrics}}, "")
		if err != nil {
			t.Fatal(err)
		}
		adminTok, _, err := s.CreateToken(ctx, admin, TokenSpec{User: "bob", Scopes: ScopeSet{ScopeAdmin}}, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			user   string
			role   Role
			token  string
			scopes string
		}{
			{"alice", Viewer, actTok, "read,metrics"},
			{"bob", Analyst, adminTok, "read,act"},
			{"bob", Viewer, adminTok, "read"},
		} {
			if _, err := s.SetRole(ctx, admin, tc.user, tc.role, nil, actors, ""); err != nil {
				t.Fatal(err)
			}
			p, err := s.Authenticate(ctx, tc.token)
			if err != nil {
				t.Fatalf("%s's token as %s: %v", tc.user, tc.role, err)
			}
			if p.Scopes.String() != tc.scopes {
				t.Errorf("%s's token as %s grants %q, want %q", tc.user, tc.role, p.Scopes, tc.scopes)
			}
			if err := p.Allow(Permission{Scope: ScopeRead}, ""); err != nil {
				t.Errorf("%s's token as %s cannot read: %v", tc.user, tc.role, err)
			}
		}
	})
}

func TestAdminsAreNeverLockedOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		s, _ := testService(t, url, newClock(), nil)
		ctx := context.Background()
		admin := adminOf(t, s)
		_, err := s.SetRole(ctx, admin, "admin", Analyst, nil, actors, "")
		wantStatus(t, "demoting the last admin", err, http.StatusConflict)
		_, err = s.SetDisabled(ctx, admin, "admin", true, "")
		wantStatus(t, "disabling the last admin", err, http.StatusConflict)
		wantStatus(t, "removing the last admin", s.RemoveUser(ctx, admin, "admin", ""), http.StatusConflict)
		if _, err := s.AddUser(ctx, admin, NewUser{Name: "bob", Role: Admin}, actors, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.RemoveUser(ctx, admin, "admin", ""); err != nil {
			t.Errorf("removing an admin with another one left: %v", err)
		}
		_, err = s.Authenticate(ctx, apiToken)
		wantStatus(t, "the removed admin's token", err, http.StatusUnauthorized)
	})
}

func TestOnlyAdminsManageUsers(t *testing.T) {
	s, _ := testService(t, backends[0].url(t), newClock(), nil)
	ctx := context.Background()
	admin := adminOf(t, s)
	added, err := s.AddUser(ctx, admin, NewUser{Name: "carol", Role: Analyst}, actors, "")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := s.Authenticate(ctx, added.Token)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddUser(ctx, carol, NewUser{Name: "mallory", Role: Admin}, actors, "")
	wantStatus(t, "an analyst adding a user", err, http.StatusForbidden)
	_, err = s.SetRole(ctx, carol, "carol", Admin, nil, actors, "")
	wantStatus(t, "an analyst promoting itself", err, http.StatusForbidden)
	_, err = s.AddUser(ctx, admin, NewUser{Name: "carol", Role: Viewer}, actors, "")
	wantStatus(t, "a name taken twice", err, http.StatusConflict)
	_, err = s.AddUser(ctx, admin, NewUser{Name: "../etc", Role: Viewer}, actors, "")
	wantStatus(t, "a name with a slash", err, http.StatusBadRequest)
	_, err = s.AddUser(ctx, admin, NewUser{Name: "dave", Role: Analyst, Actors: []string{"nobody"}}, actors, "")
	wantStatus(t, "an actor the node does not have", err, http.StatusBadRequest)
	users, next, err := s.Users(ctx, "", 1)
	if err != nil || len(users) != 1 || users[0].Name != "admin" || next != "admin" {
		t.Fatalf("first page = %+v, %q, %v", users, next, err)
	}
	if users, next, err = s.Users(ctx, next, 1); err != nil || len(users) != 1 || users[0].Name != "carol" || next != "" {
		t.Fatalf("second page = %+v, %q, %v", users, next, err)
	}
}

func TestPermissions(t *testing.T) {
	viewer := Principal{Name: "v", Role: Viewer, Scopes: roleScopes(Viewer)}
	analyst := Principal{Name: "a", Role: Analyst, Scopes: roleScopes(Analyst), Actors: []string{"vendor"}}
	admin := Principal{Name: "root", Role: Admin, Scopes: roleScopes(Admin)}
	metrics := Principal{Name: "metrics token", Scopes: ScopeSet{ScopeMetrics}}
	adminRead := Principal{Name: "root", Role: Admin, Scopes: ScopeSet{ScopeRead}}
	for _, tc := range []struct {
		who   Principal
		perm  Permission
		actor string
		ok    bool
	}{
		{viewer, Permission{Scope: ScopeRead}, "", true},
		{viewer, Permission{Scope: ScopeAct, ActorVar: "name"}, "vendor", false},
		{analyst, Permission{Scope: ScopeAct, ActorVar: "name"}, "vendor", true},
		{analyst, Permission{Scope: ScopeAct, ActorVar: "name"}, "coordinator", false},
		{analyst, Permission{Scope: ScopeAdmin}, "", false},
		{admin, Permission{Scope: ScopeAct, ActorVar: "name"}, "coordinator", true},
		{admin, Permission{Scope: ScopeMetrics}, "", false},
		{metrics, Permission{Scope: ScopeMetrics}, "", true},
		{metrics, Permission{Scope: ScopeRead}, "", false},
		{adminRead, Permission{Scope: ScopeAct}, "", false},
		{Principal{}, Permission{}, "", true},
	} {
		err := tc.who.Allow(tc.perm, tc.actor)
		if (err == nil) != tc.ok {
			t.Errorf("%s (%v) for %s as %q: %v, want allowed %v", tc.who.Name, tc.who.Scopes, tc.perm, tc.actor, err, tc.ok)
		}
		if err != nil && problem.Status(err) != http.StatusForbidden {
			t.Errorf("refusal status %d, want 403", problem.Status(err))
		}
	}
	if _, err := ParseScopes("read,bogus"); err == nil {
		t.Error("ParseScopes took an unknown scope")
	}
	if ss, err := ParseScopes(" act , read,act"); err != nil || ss.String() != "read,act" {
		t.Errorf("ParseScopes = %v, %v", ss, err)
	}
}

// TestRefusalNamesWhoHoldsTheScope: a 403 for a scope the principal's role
// does not reach names the roles that hold it (every role above the
// least one too), and tells the holder of the metrics token, which is no
// user, which token to give instead.
func TestRefusalNamesWhoHoldsTheScope(t *testing.T) {
	viewer := Principal{Name: "v", Role: Viewer, Scopes: roleScopes(Viewer)}
	analyst := Principal{Name: "a", Role: Analyst, Scopes: roleScopes(Analyst)}
	metrics := Principal{Name: "metrics token", Scopes: ScopeSet{ScopeMetrics}}
	for _, tc := range []struct {
		who  Principal
		perm Permission
		want string
	}{
		{viewer, Permission{Scope: ScopeAct}, "v is a viewer; this needs the act scope, which analysts and admins hold"},
		{analyst, Permission{Scope: ScopeAdmin}, "a is an analyst; this needs the admin scope, which only admins hold"},
		{metrics, Permission{Scope: ScopeRead}, "metrics token is no user of this node; this needs the read scope, which a user's token holds (the node's API token, or one made with vultron token create)"},
	} {
		err := tc.who.Allow(tc.perm, "")
		if err == nil || problem.Message(err) != tc.want {
			t.Errorf("%s for %s: %v, want %q", tc.who.Name, tc.perm, err, tc.want)
		}
	}
}

// enrolled adds a user and sets its password through its enrollment
// link; it returns the session the enrollment opened.
func enrolled(t *testing.T, s *Service, admin Principal, name string, role Role, password string) Login {
	t.Helper()
	ctx := context.Background()
	added, err := s.AddUser(ctx, admin, NewUser{Name: name, Role: role}, actors, "")
	if err != nil {
		t.Fatal(err)
	}
	code := strings.TrimPrefix(added.Enroll, "http://localhost:7001/enroll?code=")
	login, err := s.Enroll(ctx, code, password, LoginMeta{Remote: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	// The code works once.
	_, err = s.Enroll(ctx, code, password, LoginMeta{Remote: "192.0.2.1"})
	wantStatus(t, "an enrollment code used twice", err, http.StatusUnauthorized)
	return login
}

func TestPasswordLoginAndThrottle(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), func(cfg *Config) { cfg.SecondFactorOptional = true })
	ctx := context.Background()
	login := enrolled(t, s, admin, "erin", Analyst, "correct horse battery")
	if login.Stage != StageFull {
		t.Fatalf("enrollment without a required second factor: stage %s", login.Stage)
	}
	m := LoginMeta{Remote: "198.51.100.7", Agent: "test"}
	if l, err := s.PasswordLogin(ctx, "Erin", "correct horse battery", m); err != nil || l.Stage != StageFull {
		t.Fatalf("login = %+v, %v", l, err)
	}
	// A wrong password and an unknown name: the same answer, and the same
	// work (one argon2id computation each).
	before := s.hasher.computed.Load()
	_, errWrong := s.PasswordLogin(ctx, "erin", "wrong password!!", m)
	mid := s.hasher.computed.Load()
	_, errUnknown := s.PasswordLogin(ctx, "nobody", "wrong password!!", m)
	after := s.hasher.computed.Load()
	if problem.Message(errWrong) != wrongLogin || problem.Message(errUnknown) != wrongLogin || problem.Status(errWrong) != problem.Status(errUnknown) {
		t.Errorf("wrong password: %q; unknown name: %q; want both %q", problem.Message(errWrong), problem.Message(errUnknown), wrongLogin)
	}
	if mid-before != 1 || after-mid != 1 {
		t.Errorf("argon2id computations: %d for a wrong password, %d for an unknown name; want 1 each", mid-before, after-mid)
	}
	// Three failures are free; the fourth starts the backoff, for a known
	// and an unknown name alike, and then even the right password waits.
	for _, name := range []string{"erin", "nobody"} {
		for range freeNameFailures {
			if _, err := s.PasswordLogin(ctx, name, "wrong password!!", m); problem.Message(err) != wrongLogin {
				t.Fatalf("failure of %s: %v", name, err)
			}
		}
		_, err := s.PasswordLogin(ctx, name, "correct horse battery", m)
		wantStatus(t, "a throttled name ("+name+")", err, http.StatusTooManyRequests)
		var pe *problem.Error
		if !errors.As(err, &pe) || pe.RetryAfter <= 0 {
			t.Errorf("the throttle's refusal of %s has no Retry-After: %v", name, err)
		}
	}
	c.Advance(2 * time.Second)
	if _, err := s.PasswordLogin(ctx, "erin", "correct horse battery", m); err != nil {
		t.Errorf("after the backoff: %v", err)
	}
	// Another address, many names: the address is throttled too.
	other := LoginMeta{Remote: "203.0.113.9"}
	var err error
	for i := range freeIPFailures + 1 {
		_, err = s.PasswordLogin(ctx, "sprayed-"+string(rune('a'+i)), "x", other)
	}
	if _, err = s.PasswordLogin(ctx, "erin", "correct horse battery", other); problem.Status(err) != http.StatusTooManyRequests {
		t.Errorf("a sprayed address: %v, want 429", err)
	}
}

func TestDisabledUsersSessionEndsAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		_, s, admin := serviceWithAdmin(t, url, func(cfg *Config) { cfg.SecondFactorOptional = true })
		ctx := context.Background()
		login := enrolled(t, s, admin, "frank", Viewer, "a long enough password")
		st, err := s.Session(ctx, login.SessionID)
		if err != nil || st.Principal.Name != "frank" || !st.Principal.Can(ScopeRead) || st.Principal.Can(ScopeAct) {
			t.Fatalf("session = %+v, %v", st.Principal, err)
		}
		sessions, err := s.Sessions(ctx, admin, "frank")
		if err != nil || len(sessions) != 1 || sessions[0].Method != "enrollment" {
			t.Fatalf("Sessions = %+v, %v", sessions, err)
		}
		if _, err := s.SetDisabled(ctx, admin, "frank", true, ""); err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, login.SessionID)
		wantStatus(t, "a disabled user's session", err, http.StatusUnauthorized)
		if sessions, err := s.Sessions(ctx, admin, "frank"); err != nil || len(sessions) != 0 {
			t.Errorf("a disabled user keeps sessions %+v, %v", sessions, err)
		}
		// Enabled again, it logs in anew.
		if _, err := s.SetDisabled(ctx, admin, "frank", false, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PasswordLogin(ctx, "frank", "a long enough password", LoginMeta{}); err != nil {
			t.Errorf("login after enabling: %v", err)
		}
	})
}

func TestSessionExpiryAndRevocation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, func(cfg *Config) {
			cfg.SecondFactorOptional = true
			cfg.SessionIdle = 30 * time.Minute
			cfg.SessionMax = 2 * time.Hour
		})
		ctx := context.Background()
		enrolled(t, s, admin, "gina", Viewer, "a long enough password")
		login := func() string {
			t.Helper()
			l, err := s.PasswordLogin(ctx, "gina", "a long enough password", LoginMeta{Remote: "192.0.2.5", Agent: "Firefox"})
			if err != nil {
				t.Fatal(err)
			}
			return l.SessionID
		}
		// Idle expiry: a request within the idle time keeps it alive.
		id := login()
		c.Advance(20 * time.Minute)
		if _, err := s.Session(ctx, id); err != nil {
			t.Fatalf("a session used after 20 minutes: %v", err)
		}
		waitLastSeen(t, s, id, c.Now())
		c.Advance(20 * time.Minute)
		if _, err := s.Session(ctx, id); err != nil {
			t.Fatalf("a session used 20 minutes after its last request: %v", err)
		}
		c.Advance(31 * time.Minute)
		_, err := s.Session(ctx, id)
		wantStatus(t, "an idle session", err, http.StatusUnauthorized)
		// Absolute expiry, however busy.
		id = login()
		for range 5 {
			c.Advance(25 * time.Minute)
			if _, err := s.Session(ctx, id); err != nil {
				break
			}
			waitLastSeen(t, s, id, c.Now())
		}
		_, err = s.Session(ctx, id)
		wantStatus(t, "a session past its absolute expiry", err, http.StatusUnauthorized)
		// Listed and revoked by its handle.
		id = login()
		gina, err := s.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		list, err := s.Sessions(ctx, gina.Principal, "")
		if err != nil || len(list) == 0 || list[len(list)-1].Agent != "Firefox" || list[len(list)-1].Remote != "192.0.2.5" {
			t.Fatalf("Sessions = %+v, %v", list, err)
		}
		if err := s.RevokeSession(ctx, gina.Principal, "", gina.Principal.Credential, ""); err != nil {
			t.Fatal(err)
		}
		_, err = s.Session(ctx, id)
		wantStatus(t, "a revoked session", err, http.StatusUnauthorized)
		// A viewer sees no one else's sessions.
		_, err = s.Sessions(ctx, gina.Principal, "admin")
		wantStatus(t, "a viewer listing another's sessions", err, http.StatusForbidden)
		// At most MaxSessionsPerUser per user: the oldest goes.
		first := login()
		for range MaxSessionsPerUser {
			c.Advance(time.Second)
			login()
		}
		_, err = s.Session(ctx, first)
		wantStatus(t, "the oldest of too many sessions", err, http.StatusUnauthorized)
		if list, err := s.Sessions(ctx, admin, "gina"); err != nil || len(list) != MaxSessionsPerUser {
			t.Errorf("%d sessions kept (%v), want %d", len(list), err, MaxSessionsPerUser)
		}
	})
}

// waitLastSeen waits until the deferred write of a session's last
// request at t has committed.
func waitLastSeen(t *testing.T, s *Service, id string, at time.Time) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		var ss Session
		err := s.view(context.Background(), func(tx tx) error {
			_, err := tx.getJSON(bSessions, sessionKey(id), &ss)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if !ss.LastSeen.Before(at) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the session's last request at %v was not recorded", at)
}

// BenchmarkAuthenticate measures the check of a bearer token on every API
// request, on a bbolt store that holds 2,000 tokens of 40 users: a look-up by the
// token's hash and of its user, the same however many tokens there are.
func BenchmarkAuthenticate(b *testing.B) {
	ctx := context.Background()
	c := newClock()
	db, err := store.OpenURL(ctx, "bolt:"+filepath.Join(b.TempDir(), "vultron.db"), store.Options{NoSync: true, Now: c.Now, DataKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := New(Config{Store: db, PublicURL: "http://localhost:7001", Now: c.Now, Argon2: fastArgon2})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Bootstrap(ctx, apiSum()); err != nil {
		b.Fatal(err)
	}
	admin, err := s.Authenticate(ctx, apiToken)
	if err != nil {
		b.Fatal(err)
	}
	// 40 users of 50 tokens each, the most a user may hold.
	var tok string
	for u := range 40 {
		name := fmt.Sprintf("user%02d", u)
		if _, err := s.AddUser(ctx, admin, NewUser{Name: name, Role: Viewer}, actors, ""); err != nil {
			b.Fatal(err)
		}
		for range 49 {
			if tok, _, err = s.CreateToken(ctx, admin, TokenSpec{User: name, Scopes: ScopeSet{ScopeRead}}, ""); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokenCannotOutliveTheTokenThatMadeIt: a token that mints another
// (of its own user, or an admin's of anyone) gives it at most its own
// expiry, so that a short-lived token, stolen, cannot be turned into one
// that lasts two years; a dashboard session's tokens last what is asked.
func TestTokenCannotOutliveTheTokenThatMadeIt(t *testing.T) {
	c, s, admin := serviceWithAdmin(t, backends[0].url(t), nil)
	ctx := context.Background()
	added, err := s.AddUser(ctx, admin, NewUser{Name: "bob", Role: Admin, TokenExpires: 24 * time.Hour}, actors, "")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := s.Authenticate(ctx, added.Token)
	if err != nil {
		t.Fatal(err)
	}
	parent := added.TokenI.Expires
	for _, spec := range []TokenSpec{
		{Scopes: ScopeSet{ScopeRead}, Expires: MaxTokenTTL},
		{Scopes: ScopeSet{ScopeRead}},
		{User: "admin", Scopes: ScopeSet{ScopeRead}, Expires: 30 * 24 * time.Hour},
	} {
		secret, info, err := s.CreateToken(ctx, bob, spec, "")
		if err != nil {
			t.Fatal(err)
		}
		if info.Expires.IsZero() || info.Expires.After(parent) {
			t.Errorf("a token bob's 24-hour token made for %q with %v expires %v, after its maker's %v", spec.User, spec.Expires, info.Expires, parent)
		}
		c.Advance(time.Minute)
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Errorf("the new token: %v", err)
		}
	}
	short, info, err := s.CreateToken(ctx, bob, TokenSpec{Scopes: ScopeSet{ScopeRead}, Expires: time.Hour}, "")
	if err != nil || !info.Expires.Equal(c.Now().Add(time.Hour)) {
		t.Fatalf("a token shorter than its maker: %+v, %v", info, err)
	}
	c.Advance(2 * time.Hour)
	_, err = s.Authenticate(ctx, short)
	wantStatus(t, "a short token past its hour", err, http.StatusUnauthorized)
	// A session mints what it is asked: it ends in hours, and its user
	// logged in to make the token.
	login := enrolled(t, s, admin, "vera", Viewer, "vera's long password")
	st, err := s.Session(ctx, login.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, info, err := s.CreateToken(ctx, st.Principal, TokenSpec{Scopes: ScopeSet{ScopeRead}, Expires: 30 * 24 * time.Hour}, ""); err != nil || !info.Expires.Equal(c.Now().Add(30*24*time.Hour)) {
		t.Errorf("a session's 30-day token: %+v, %v", info, err)
	}
}

// TestCheckingASessionIsNoRequest: a page's open event stream asks
// whether its session still holds each time the case changes; that is no
// request of the person's, so it does not keep the session from ending
// when idle, where Session, a request, does.
func TestCheckingASessionIsNoRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		c, s, admin := serviceWithAdmin(t, url, func(cfg *Config) {
			cfg.SecondFactorOptional = true
			cfg.SessionIdle = 30 * time.Minute
		})
		ctx := context.Background()
		enrolled(t, s, admin, "hugo", Viewer, "a long enough password")
		l, err := s.PasswordLogin(ctx, "hugo", "a long enough password", LoginMeta{Remote: "192.0.2.5"})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			c.Advance(5 * time.Minute)
			if err := s.CheckSession(ctx, l.SessionID); err != nil {
				t.Fatalf("a check within the idle time: %v", err)
			}
		}
		c.Advance(6 * time.Minute) // 31 minutes after the last request
		if err := s.CheckSession(ctx, l.SessionID); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("a check 31 minutes after the last request: %v, want the session ended", err)
		}
		if _, err := s.Session(ctx, l.SessionID); problem.Status(err) != http.StatusUnauthorized {
			t.Errorf("a request after the checks: %v, want the session ended", err)
		}
	})
}
