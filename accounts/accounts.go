package accounts

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Sub-buckets of the store's accounts bucket. Keys are ids and hashes,
// never a secret: a token, a session id and an enrollment code are kept
// as their SHA-256.
const (
	bUsers        = "users"          // user id → User
	bNames        = "names"          // lowercased name → user id
	bAdmins       = "admins"         // user id of an enabled admin → nothing
	bSubjects     = "subjects"       // issuer "\n" subject → user id
	bTokens       = "tokens"         // SHA-256 of a token → Token
	bTokenIDs     = "token_ids"      // token id → SHA-256 of the token
	bUserTokens   = "user_tokens"    // user id "/" token id → nothing
	bSessions     = "sessions"       // SHA-256 of a session id → Session
	bUserSessions = "user_sessions"  // user id "/" created (8 bytes) SHA-256 → nothing
	bSessionDue   = "session_expiry" // absolute expiry (8 bytes) SHA-256 → nothing
	bEnroll       = "enroll"         // SHA-256 of an enrollment code → user id
	bPending      = "pending"        // SHA-256 of a pre-login id → Pending
	bPendingDue   = "pending_expiry" // expiry (8 bytes) SHA-256 → nothing
)

// Bounds of what the store holds per user and in all.
const (
	// MaxTokensPerUser bounds a user's tokens.
	MaxTokensPerUser = 50
	// MaxSessionsPerUser bounds a user's logged-in dashboard sessions,
	// and apart from them its logins that await a step (a second
	// factor, or one to enrol): a session beyond it ends the user's
	// oldest of the same kind.
	MaxSessionsPerUser = 20
	// MaxPasskeys bounds a user's passkeys.
	MaxPasskeys = 10
	// MaxPending bounds the logins in progress at an identity provider:
	// one beyond it drops the one that expires first (prunePending); a
	// client IP begins at most preLoginsPerIP of them within ssoTTL.
	MaxPending = 1000
	// MaxUsersPage is the largest page of users a list returns.
	MaxUsersPage = 1000
	// pruneBatch is how many expired sessions or pre-logins a write
	// removes at most, so that no write walks a whole index.
	pruneBatch = 32
	// enrollTTL is how long an enrollment link works.
	enrollTTL = 7 * 24 * time.Hour
)

// Defaults of the dashboard's sessions.
const (
	DefaultSessionIdle = time.Hour
	DefaultSessionMax  = 12 * time.Hour
	// DefaultRecentLogin is how recent a session's login must be for it
	// to add a second factor, make recovery codes or create a token.
	DefaultRecentLogin = 15 * time.Minute
)

// Config configures the node's accounts.
type Config struct {
	Store *store.DB
	// PublicURL is the node's base URL: enrollment links start with it,
	// and it is the origin (and its host the relying party id) of the
	// passkeys.
	PublicURL string
	// NodeName names the node in authenticator apps (the TOTP issuer);
	// default the public URL's host.
	NodeName string
	// SecondFactorOptional lets analysts and admins log in to the
	// dashboard with their password alone; by default they need a second
	// factor (TOTP, a passkey or a recovery code). Viewers never do. A
	// user who enrolled a factor is asked for it either way.
	SecondFactorOptional bool
	// SessionIdle and SessionMax end a dashboard session after that long
	// without a request, and that long after the login; defaults
	// DefaultSessionIdle and DefaultSessionMax.
	SessionIdle time.Duration
	SessionMax  time.Duration
	// RecentLogin is how recent a session's login must be for what would
	// let whoever holds the session's cookie keep the account (a second
	// factor of its own, recovery codes, a token): a cookie taken from a
	// browser left logged in does not; default DefaultRecentLogin.
	RecentLogin time.Duration
	// Argon2 is the cost of password hashes; zero means DefaultArgon2.
	Argon2 Argon2Params
	// OIDC, when set, lets people log in through an OpenID provider.
	OIDC *OIDCConfig
	// SSOTokenStanding is how long the tokens of a user of single sign-on
	// keep working after that user's last login through the provider,
	// with or without OIDC (a node that no longer has it keeps such
	// users); zero means DefaultSSOTokenStanding.
	SSOTokenStanding time.Duration
	Now              func() time.Time
	// Logger gets what accounts logs: never a password, a token, a code
	// or a secret.
	Logger zerolog.Logger
}

// Service is the node's accounts: its users, their credentials, tokens
// and sessions, and the logins that create them.
type Service struct {
	cfg      Config
	db       *store.DB
	now      func() time.Time
	log      zerolog.Logger
	hasher   *hasher
	throttle *throttle
	webauthn *webauthn.WebAuthn
	oidc     *oidcClient
	issuer   string // TOTP issuer
}

// New returns the accounts of cfg.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.PublicURL == "" {
		return nil, errors.New("accounts: a store and the node's public URL are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = DefaultSessionIdle
	}
	if cfg.SessionMax <= 0 {
		cfg.SessionMax = DefaultSessionMax
	}
	if cfg.RecentLogin <= 0 {
		cfg.RecentLogin = DefaultRecentLogin
	}
	if cfg.Argon2 == (Argon2Params{}) {
		cfg.Argon2 = DefaultArgon2
	}
	u, err := url.Parse(cfg.PublicURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("accounts: public URL %q: not an absolute URL", cfg.PublicURL)
	}
	if cfg.NodeName == "" {
		cfg.NodeName = u.Host
	}
	s := &Service{cfg: cfg, db: cfg.Store, now: cfg.Now, log: cfg.Logger, issuer: "Vultron " + cfg.NodeName}
	if s.hasher, err = newHasher(cfg.Argon2); err != nil {
		return nil, err
	}
	if s.throttle, err = newThrottle(cfg.Now); err != nil {
		return nil, err
	}
	if s.webauthn, err = newWebAuthn(u, cfg.NodeName); err != nil {
		return nil, err
	}
	if cfg.OIDC != nil {
		if s.oidc, err = newOIDCClient(*cfg.OIDC, strings.TrimRight(cfg.PublicURL, "/"), cfg.Now); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// SecondFactorRequired reports whether a user of role r needs a second
// factor to log in to the dashboard with a password.
func (s *Service) SecondFactorRequired(r Role) bool {
	return !s.cfg.SecondFactorOptional && r >= Analyst
}

// User is one person who may use the node.
type User struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName,omitempty"`
	Role        Role      `json:"role"`
	Actors      []string  `json:"actors,omitempty"`
	Disabled    bool      `json:"disabled,omitempty"`
	Created     time.Time `json:"created"`
	LastLogin   time.Time `json:"lastLogin,omitzero"`
	// Password is the argon2id PHC string; "" until the person enrolled.
	Password string `json:"password,omitempty"`
	// TOTP is the authenticator app's secret, once confirmed.
	TOTP *TOTPFactor `json:"totp,omitempty"`
	// Passkeys are the WebAuthn credentials the person registered.
	Passkeys []Passkey `json:"passkeys,omitempty"`
	// Recovery are the SHA-256 (hex) of the unused recovery codes.
	Recovery []string `json:"recovery,omitempty"`
	// Issuer and Subject name the person at the OpenID provider that
	// created this user.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	// Enroll is the SHA-256 (hex) of the open enrollment code, and
	// EnrollExpires when it stops working.
	Enroll        string    `json:"enroll,omitempty"`
	EnrollExpires time.Time `json:"enrollExpires,omitzero"`
	// Provisional says that the password, second factors and recovery
	// codes were all set up through an enrollment link used on an account
	// without any, and that no login of the user's own has followed: a
	// new enrollment link removes them (reissueEnrollment).
	Provisional bool `json:"provisional,omitempty"`
}

// hasSecondFactor reports whether the user enrolled a second factor.
func (u *User) hasSecondFactor() bool { return u.TOTP != nil || len(u.Passkeys) > 0 }

// UserInfo is what lists show of a user: no secret, no hash.
type UserInfo struct {
	Name        string    `json:"name"`
	DisplayName string    `json:"displayName,omitempty"`
	Role        Role      `json:"role"`
	Actors      []string  `json:"actors,omitempty"`
	Disabled    bool      `json:"disabled,omitempty"`
	Created     time.Time `json:"created"`
	LastLogin   time.Time `json:"lastLogin,omitzero"`
	Password    bool      `json:"password"`
	TOTP        bool      `json:"totp"`
	Passkeys    int       `json:"passkeys"`
	Recovery    int       `json:"recoveryCodes"`
	SSO         string    `json:"sso,omitempty"`
	Enrolling   bool      `json:"enrolling,omitempty"`
}

// Info returns what lists show of u.
func (u *User) Info() UserInfo {
	return UserInfo{Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Actors: u.Actors, Disabled: u.Disabled, Created: u.Created,
		LastLogin: u.LastLogin, Password: u.Password != "", TOTP: u.TOTP != nil, Passkeys: len(u.Passkeys), Recovery: len(u.Recovery),
		SSO: u.Issuer, Enrolling: u.Enroll != ""}
}

// nameRE is a user name: what a login form, a command line and an audit
// record show without quoting.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// normName returns the lookup key of a user name.
func normName(name string) string { return strings.ToLower(strings.TrimSpace(name)) }

// checkName refuses a name a user may not have.
func checkName(name string) error {
	if !nameRE.MatchString(normName(name)) {
		return problem.BadRequest("user name %q is not 1 to 64 letters, digits, dots, dashes or underscores starting with a letter or digit", problem.Clip(name, 80))
	}
	return nil
}

// sum returns the SHA-256 of a secret, the key it is stored under.
func sum(secret string) []byte {
	s := sha256.Sum256([]byte(secret))
	return s[:]
}

// sumHex returns the hex SHA-256 of a secret.
func sumHex(secret string) string { return hex.EncodeToString(sum(secret)) }

// timeKey encodes t as 8 bytes that sort in time order.
func timeKey(t time.Time) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(max(t.UnixNano(), 0)))
	return b[:]
}

// tx wraps a store transaction with the accounts' record reads and
// writes.
type tx struct {
	r *store.ReadTx
	w *store.Tx // nil in a read-only transaction
}

// bucket returns a sub-bucket: nil (reads find nothing) when a read-only
// transaction meets one no write created.
func (t tx) bucket(name string) (*store.AccountsBucket, error) {
	if t.w != nil {
		return t.w.Accounts(name)
	}
	b, err := t.r.Accounts(name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

func (t tx) get(bucket string, key []byte) ([]byte, error) {
	b, err := t.bucket(bucket)
	if err != nil || b == nil {
		return nil, err
	}
	return b.Get(key), nil
}

func (t tx) put(bucket string, key, value []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Put(key, value)
}

func (t tx) del(bucket string, key []byte) error {
	b, err := t.bucket(bucket)
	if err != nil {
		return err
	}
	return b.Delete(key)
}

// getJSON reads the record under key into v; false when there is none.
func (t tx) getJSON(bucket string, key []byte, v any) (bool, error) {
	raw, err := t.get(bucket, key)
	if err != nil || raw == nil {
		return false, err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("accounts: %s record: %w", bucket, err)
	}
	return true, nil
}

func (t tx) putJSON(bucket string, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("accounts: encode %s record: %w", bucket, err)
	}
	return t.put(bucket, key, raw)
}

// rangePrefix calls fn for every key with the prefix, in order, until fn
// returns false.
func (t tx) rangePrefix(bucket string, prefix []byte, fn func(k, v []byte) (bool, error)) error {
	b, err := t.bucket(bucket)
	if err != nil || b == nil {
		return err
	}
	err = b.RangePrefix(prefix, func(k, v []byte) error {
		more, err := fn(k, v)
		if err != nil {
			return err
		}
		if !more {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}

var errStop = errors.New("stop")

// userByID reads a user; nil when there is none.
func (t tx) userByID(id string) (*User, error) {
	var u User
	ok, err := t.getJSON(bUsers, []byte(id), &u)
	if err != nil || !ok {
		return nil, err
	}
	return &u, nil
}

// userByName reads a user by name; nil when there is none.
func (t tx) userByName(name string) (*User, error) {
	id, err := t.get(bNames, []byte(normName(name)))
	if err != nil || id == nil {
		return nil, err
	}
	return t.userByID(string(id))
}

// mustUser reads a user by name or refuses with 404.
func (t tx) mustUser(name string) (*User, error) {
	u, err := t.userByName(name)
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, problem.NotFound("there is no user %s on this node", problem.Clip(name, 80))
	}
	return u, nil
}

// putUser stores u and keeps the index of enabled admins.
func (t tx) putUser(u *User) error {
	if u.Role == Admin && !u.Disabled {
		if err := t.put(bAdmins, []byte(u.ID), none); err != nil {
			return err
		}
	} else if err := t.del(bAdmins, []byte(u.ID)); err != nil {
		return err
	}
	return t.putJSON(bUsers, []byte(u.ID), u)
}

// audit appends a record of what a principal did, in this transaction.
func (t tx) audit(by Principal, decision, reason, remote string) error {
	_, err := t.w.AppendAudit(store.AuditRecord{Kind: store.AuditAccount, Decision: decision, Reason: problem.Clip(reason, 300),
		Principal: by.Label(), Remote: remote})
	return err
}

// view runs fn in a read-only transaction.
func (s *Service) view(ctx context.Context, fn func(tx) error) error {
	return s.db.View(ctx, func(r *store.ReadTx) error { return fn(tx{r: r}) })
}

// update runs fn in a read-write transaction; fn may run more than once.
func (s *Service) update(ctx context.Context, fn func(tx) error) error {
	return s.db.Update(ctx, func(w *store.Tx) error { return fn(tx{r: &w.ReadTx, w: w}) })
}

// otherAdmins counts the enabled admins other than the user with id
// except, from their index.
func (t tx) otherAdmins(except string) (int, error) {
	n := 0
	err := t.rangePrefix(bAdmins, nil, func(k, _ []byte) (bool, error) {
		if string(k) != except {
			n++
		}
		return true, nil
	})
	return n, err
}

// NewUser is what an admin gives to add a user.
type NewUser struct {
	Name        string
	DisplayName string
	Role        Role
	// Actors are the local actors an analyst acts for; none means all.
	Actors []string
	// TokenExpires is how long the user's first token lasts; zero means
	// DefaultTokenTTL.
	TokenExpires time.Duration
}

// Added is what AddUser hands out once: the user's first token and the
// link that lets the person set a password and a second factor.
type Added struct {
	User   UserInfo  `json:"user"`
	Token  string    `json:"token"`
	TokenI TokenInfo `json:"tokenInfo"`
	Enroll string    `json:"enroll"`
}

// AddUser adds a user, with a personal token of the scopes its role
// holds and an enrollment link, both shown once. Only an admin may; the
// actors must be the node's (known reports whether a name is one).
func (s *Service) AddUser(ctx context.Context, by Principal, nu NewUser, known func(string) bool, remote string) (Added, error) {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return Added{}, err
	}
	if err := checkName(nu.Name); err != nil {
		return Added{}, err
	}
	if nu.Role == RoleNone {
		return Added{}, problem.BadRequest("give the user a role: viewer, analyst or admin")
	}
	if err := checkActors(nu.Actors, known); err != nil {
		return Added{}, err
	}
	if len(nu.DisplayName) > 200 {
		return Added{}, problem.BadRequest("the display name has %d bytes; at most 200 are taken", len(nu.DisplayName))
	}
	now := s.now().UTC()
	id := "u_" + randomString(12)
	secret, token := newToken(id, roleScopes(nu.Role), "first token", now, ttlOr(nu.TokenExpires))
	code := randomString(24)
	u := &User{ID: id, Name: normName(nu.Name), DisplayName: strings.TrimSpace(nu.DisplayName), Role: nu.Role, Actors: slices.Clone(nu.Actors),
		Created: now, Enroll: sumHex(code), EnrollExpires: now.Add(enrollTTL)}
	err := s.update(ctx, func(t tx) error {
		if old, err := t.userByName(u.Name); err != nil {
			return err
		} else if old != nil {
			return problem.Conflict("there is already a user %s", u.Name)
		}
		if err := t.put(bNames, []byte(u.Name), []byte(u.ID)); err != nil {
			return err
		}
		if err := t.putUser(u); err != nil {
			return err
		}
		if err := t.put(bEnroll, sum(code), []byte(u.ID)); err != nil {
			return err
		}
		if err := t.putToken(sum(secret), token); err != nil {
			return err
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("user %s added as %s%s, with token %s", u.Name, u.Role, actorsNote(u.Actors), token.ID), remote)
	})
	if err != nil {
		return Added{}, fmt.Errorf("accounts: add user %s: %w", u.Name, err)
	}
	return Added{User: u.Info(), Token: secret, TokenI: token.Info(u.Name), Enroll: s.enrollLink(code)}, nil
}

func actorsNote(actors []string) string {
	if len(actors) == 0 {
		return ""
	}
	return " for " + strings.Join(actors, ", ")
}

// checkActors refuses actor names that are not the node's.
func checkActors(actors []string, known func(string) bool) error {
	for _, a := range actors {
		if known == nil || !known(a) {
			return problem.BadRequest("there is no actor %s on this node", problem.Clip(a, 80))
		}
	}
	return nil
}

// enrollLink is the dashboard's page for an enrollment code.
func (s *Service) enrollLink(code string) string {
	return strings.TrimRight(s.cfg.PublicURL, "/") + "/enroll?code=" + url.QueryEscape(code)
}

// Users returns a page of users in name order, after the name after;
// next is the name to pass for the next page, "" at the end.
func (s *Service) Users(ctx context.Context, after string, limit int) (users []UserInfo, next string, err error) {
	if limit <= 0 || limit > MaxUsersPage {
		limit = MaxUsersPage
	}
	err = s.view(ctx, func(t tx) error {
		users, next = users[:0], ""
		from := []byte(normName(after))
		return t.rangePrefix(bNames, nil, func(k, v []byte) (bool, error) {
			if after != "" && string(k) <= string(from) {
				return true, nil
			}
			if len(users) == limit {
				next = users[len(users)-1].Name
				return false, nil
			}
			u, err := t.userByID(string(v))
			if err != nil || u == nil {
				return err == nil, err
			}
			users = append(users, u.Info())
			return true, nil
		})
	})
	if err != nil {
		return nil, "", fmt.Errorf("accounts: list users: %w", err)
	}
	return users, next, nil
}

// UserInfo returns one user.
func (s *Service) UserInfo(ctx context.Context, name string) (UserInfo, error) {
	var info UserInfo
	err := s.view(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err == nil {
			info = u.Info()
		}
		return err
	})
	return info, err
}

// SetRole changes a user's role and, when actors is not nil, the actors
// an analyst acts for. The last enabled admin keeps its role. A role that
// needs a second factor ends the user's sessions logged in without one.
func (s *Service) SetRole(ctx context.Context, by Principal, name string, role Role, actors []string, known func(string) bool, remote string) (UserInfo, error) {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return UserInfo{}, err
	}
	if role == RoleNone {
		return UserInfo{}, problem.BadRequest("give a role: viewer, analyst or admin")
	}
	if actors != nil {
		if err := checkActors(actors, known); err != nil {
			return UserInfo{}, err
		}
	}
	var info UserInfo
	err := s.update(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		if u.Role == Admin && role != Admin && !u.Disabled {
			if n, err := t.otherAdmins(u.ID); err != nil {
				return err
			} else if n == 0 {
				return problem.Conflict("%s is the node's last admin; make another user admin first", u.Name)
			}
		}
		was := u.Role
		u.Role = role
		if actors != nil {
			u.Actors = slices.Clone(actors)
		}
		if err := t.putUser(u); err != nil {
			return err
		}
		ended := ""
		if s.SecondFactorRequired(role) {
			// Its sessions logged in without a second factor end: the
			// new role needs one (loadSession refuses them anyway).
			n, err := t.endSessionsWhere(u.ID, func(h []byte) (bool, error) {
				var ss Session
				ok, err := t.getJSON(bSessions, h, &ss)
				return ok && ss.Stage == StageFull && !ss.gaveSecondFactor(), err
			})
			if err != nil {
				return err
			}
			if n > 0 {
				ended = fmt.Sprintf(", %d sessions without a second factor ended", n)
			}
		}
		info = u.Info()
		return t.audit(by, store.DecisionDone, fmt.Sprintf("user %s: role %s → %s%s%s", u.Name, was, role, actorsNote(u.Actors), ended), remote)
	})
	return info, err
}

// SetDisabled disables a user, which ends its sessions and revokes its
// tokens and its open enrollment link in the same transaction, or
// enables it again (with no session, no token and no link: it logs in
// again and is given new ones, or a new link). The last enabled admin
// cannot be disabled.
func (s *Service) SetDisabled(ctx context.Context, by Principal, name string, disabled bool, remote string) (UserInfo, error) {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return UserInfo{}, err
	}
	var info UserInfo
	err := s.update(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		if disabled && u.Role == Admin && !u.Disabled {
			if n, err := t.otherAdmins(u.ID); err != nil {
				return err
			} else if n == 0 {
				return problem.Conflict("%s is the node's last enabled admin; it cannot be disabled", u.Name)
			}
		}
		u.Disabled = disabled
		what := "enabled"
		if disabled {
			what = "disabled"
			sessions, tokens, err := t.endAccess(u.ID)
			if err != nil {
				return err
			}
			if err := t.retireFeedToken(); err != nil {
				return err
			}
			what += fmt.Sprintf(" (%d sessions ended, %d tokens revoked, the calendar feed token rotated", sessions, tokens)
			if u.Enroll != "" {
				if err := t.delEnroll(u.Enroll); err != nil {
					return err
				}
				u.Enroll, u.EnrollExpires = "", time.Time{}
				what += ", its enrollment link revoked"
			}
			what += ")"
		}
		if err := t.putUser(u); err != nil {
			return err
		}
		info = u.Info()
		return t.audit(by, store.DecisionDone, "user "+u.Name+" "+what, remote)
	})
	return info, err
}

// RemoveUser removes a user with its tokens, sessions and credentials.
// The last enabled admin cannot be removed. The audit log keeps its name.
func (s *Service) RemoveUser(ctx context.Context, by Principal, name, remote string) error {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return err
	}
	return s.update(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		if u.Role == Admin && !u.Disabled {
			if n, err := t.otherAdmins(u.ID); err != nil {
				return err
			} else if n == 0 {
				return problem.Conflict("%s is the node's last enabled admin; it cannot be removed", u.Name)
			}
		}
		sessions, tokens, err := t.endAccess(u.ID)
		if err != nil {
			return err
		}
		if err := t.retireFeedToken(); err != nil {
			return err
		}
		for _, del := range []struct {
			bucket string
			key    []byte
		}{{bUsers, []byte(u.ID)}, {bAdmins, []byte(u.ID)}, {bNames, []byte(u.Name)}, {bSubjects, subjectKey(u.Issuer, u.Subject)}} {
			if err := t.del(del.bucket, del.key); err != nil {
				return err
			}
		}
		if u.Enroll != "" {
			if err := t.delEnroll(u.Enroll); err != nil {
				return err
			}
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("user %s removed (%d sessions ended, %d tokens revoked, the calendar feed token rotated)", u.Name, sessions, tokens), remote)
	})
}

func (t tx) delEnroll(hexSum string) error {
	raw, err := hex.DecodeString(hexSum)
	if err != nil {
		return nil // nothing was stored under a malformed hash
	}
	return t.del(bEnroll, raw)
}

// Reset2FA removes a user's second factors and recovery codes (for a
// lost device, or factors someone else set up), ends its sessions, and
// returns a new enrollment link with which the person sets a password
// and a second factor again; a password set through a provisional
// enrollment is removed too (reissueEnrollment). Its tokens stay. A user
// who logs in through the identity provider is refused (409), as by
// Enrollment: a link would give it a password past the provider.
func (s *Service) Reset2FA(ctx context.Context, by Principal, name, remote string) (string, error) {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return "", err
	}
	code := randomString(24)
	err := s.update(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		if u.Issuer != "" {
			// Its link would set a password that logs in past the
			// provider.
			return problem.Conflict("%s logs in through the identity provider %s, whose login stands in for a second factor; it has none here to reset (end its sessions with vultron user sessions, or disable it)", u.Name, u.Issuer)
		}
		u.TOTP, u.Passkeys, u.Recovery = nil, nil, nil
		sessions, err := t.endUserSessions(u.ID)
		if err != nil {
			return err
		}
		undone, _, err := t.reissueEnrollment(u, code, s.now())
		if err != nil {
			return err
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("user %s: second factors reset, %d sessions ended, %senrollment link issued", u.Name, sessions, undone), remote)
	})
	if err != nil {
		return "", err
	}
	return s.enrollLink(code), nil
}

// Enrollment issues a new enrollment link for a user (the old one stops
// working), for a person who lost theirs, never used it, or forgot the
// password. It ends the sessions opened through earlier links and, when
// the earlier link's enrollment is still provisional, removes what was
// set up through it (reissueEnrollment); second factors that were used
// in a login of the user's own stay, and the new link asks for one.
func (s *Service) Enrollment(ctx context.Context, by Principal, name, remote string) (string, error) {
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return "", err
	}
	code := randomString(24)
	err := s.update(ctx, func(t tx) error {
		u, err := t.mustUser(name)
		if err != nil {
			return err
		}
		if u.Issuer != "" {
			return problem.Conflict("%s logs in through the identity provider %s; it has no password to set", u.Name, u.Issuer)
		}
		undone, sessions, err := t.reissueEnrollment(u, code, s.now())
		if err != nil {
			return err
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("user %s: %senrollment link issued, %d sessions of earlier links ended", u.Name, undone, sessions), remote)
	})
	if err != nil {
		return "", err
	}
	return s.enrollLink(code), nil
}

// reissueEnrollment replaces u's enrollment code with code, ends what
// the earlier links began, and stores u. Every session opened through a
// link ends, and with it any factor enrollment it was in. When the
// earlier link's enrollment is provisional (User.Provisional), the
// password, second factors and recovery codes set up through it are
// removed too, and every session of u ends. It returns what it undid, as
// the start of a phrase of the audit record ("" when nothing), and how
// many sessions it ended.
func (t tx) reissueEnrollment(u *User, code string, now time.Time) (string, int, error) {
	undone := ""
	var (
		ended int
		err   error
	)
	if u.Provisional {
		undone = "the earlier link's unfinished enrollment undone (its password, second factors and recovery codes removed), "
		u.Password, u.TOTP, u.Passkeys, u.Recovery, u.Provisional = "", nil, nil, nil, false
		ended, err = t.endUserSessions(u.ID)
	} else {
		ended, err = t.endLinkSessions(u.ID)
	}
	if err != nil {
		return "", 0, err
	}
	return undone, ended, t.openEnrollment(u, code, now)
}

// openEnrollment replaces u's enrollment code with code and stores u.
func (t tx) openEnrollment(u *User, code string, now time.Time) error {
	if u.Enroll != "" {
		if err := t.delEnroll(u.Enroll); err != nil {
			return err
		}
	}
	u.Enroll, u.EnrollExpires = sumHex(code), now.UTC().Add(enrollTTL)
	if err := t.put(bEnroll, sum(code), []byte(u.ID)); err != nil {
		return err
	}
	return t.putUser(u)
}

// Bootstrap makes sure the node has a user: on a store without any, it
// adds the first admin, "admin", whose token is the node's API token (its
// SHA-256 apiTokenSum, read from DATA/api-token), so that a node started
// as before keeps working with that token; it returns an enrollment link
// for the admin's dashboard login then, "" otherwise. On every start the
// API token's record follows the file: a new file (its old token deleted)
// replaces the hash, as long as the token record was not revoked.
func (s *Service) Bootstrap(ctx context.Context, apiTokenSum []byte) (string, error) {
	if len(apiTokenSum) != sha256.Size {
		return "", errors.New("accounts: bootstrap: the API token's hash is not a SHA-256")
	}
	code := randomString(24)
	created := false
	err := s.update(ctx, func(t tx) error {
		created = false
		empty := true
		if err := t.rangePrefix(bUsers, nil, func(_, _ []byte) (bool, error) { empty = false; return false, nil }); err != nil {
			return err
		}
		if empty {
			return t.createFirstAdmin(apiTokenSum, code, s.now().UTC(), &created)
		}
		// The API token's record follows the file.
		old, err := t.get(bTokenIDs, []byte(APITokenID))
		if err != nil || old == nil || string(old) == string(apiTokenSum) {
			return err
		}
		var tok Token
		if ok, err := t.getJSON(bTokens, old, &tok); err != nil || !ok {
			return err
		}
		if err := t.del(bTokens, old); err != nil {
			return err
		}
		if err := t.putToken(apiTokenSum, tok); err != nil {
			return err
		}
		return t.audit(Principal{Name: "node"}, store.DecisionChanged, "the API token file holds a new token; the admin's token "+APITokenID+" is now that one", "")
	})
	if err != nil {
		return "", fmt.Errorf("accounts: bootstrap: %w", err)
	}
	if !created {
		return "", nil
	}
	return s.enrollLink(code), nil
}

// createFirstAdmin adds the user "admin" with the API token.
func (t tx) createFirstAdmin(apiTokenSum []byte, code string, now time.Time, created *bool) error {
	u := &User{ID: "u_" + randomString(12), Name: "admin", DisplayName: "Administrator", Role: Admin, Created: now}
	if err := t.put(bNames, []byte(u.Name), []byte(u.ID)); err != nil {
		return err
	}
	if err := t.openEnrollment(u, code, now); err != nil {
		return err
	}
	tok := Token{ID: APITokenID, User: u.ID, Name: "the node's API token (DATA/api-token)",
		Scopes: ScopeSet{ScopeRead, ScopeAct, ScopeAdmin, ScopeMetrics, ScopeCalendar}, Created: now}
	if err := t.putToken(apiTokenSum, tok); err != nil {
		return err
	}
	*created = true
	return t.audit(Principal{Name: "node"}, store.DecisionDone, "first start: user admin added, with the node's API token as its token "+APITokenID, "")
}

// none is the value of an index key that carries nothing.
var none = []byte{}
