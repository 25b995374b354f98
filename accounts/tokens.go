package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Tokens are 256 random bits, given to their holder once and stored as
// their SHA-256 only: the store can tell which token a request carries
// (one read under the hash) but holds no token a thief could present.
// Each token has an id that lists, logs and revocations name it by.

// APITokenID is the id of the token in DATA/api-token: the first admin's.
const APITokenID = "api-token"

// tokenPrefix starts every token the accounts issue, so that secret
// scanners recognise one in a repository or a log.
const tokenPrefix = "vultron_"

const (
	// DefaultTokenTTL is how long a token lasts unless told otherwise.
	DefaultTokenTTL = 90 * 24 * time.Hour
	// MaxTokenTTL is the longest a token may last.
	MaxTokenTTL = 2 * 365 * 24 * time.Hour
	// lastUsedEvery is how often a token's last use is written at most,
	// so that a busy token does not write on every request.
	lastUsedEvery = 10 * time.Minute
)

// Token is a stored token: never the token itself.
type Token struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Name     string    `json:"name,omitempty"`
	Scopes   ScopeSet  `json:"scopes"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"` // zero: never
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// TokenInfo is what lists show of a token.
type TokenInfo struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Name     string    `json:"name,omitempty"`
	Scopes   string    `json:"scopes"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// Info returns what lists show of tok, whose user is named userName.
func (tok Token) Info(userName string) TokenInfo {
	return TokenInfo{ID: tok.ID, User: userName, Name: tok.Name, Scopes: tok.Scopes.String(), Created: tok.Created, Expires: tok.Expires, LastUsed: tok.LastUsed}
}

// ParseTTL reads how long a token lasts: whole days ("90d") or a Go
// duration ("720h"), from a minute to MaxTokenTTL; "" is DefaultTokenTTL.
func ParseTTL(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return DefaultTokenTTL, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days such as 90d", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration such as 90d or 720h", s)
		}
	}
	if d < time.Minute || d > MaxTokenTTL {
		return 0, fmt.Errorf("a token lasts from a minute to %d days, not %s", int(MaxTokenTTL.Hours()/24), s)
	}
	return d, nil
}

func ttlOr(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultTokenTTL
	}
	return d
}

// newToken returns a new token for user and its record.
func newToken(user string, scopes ScopeSet, name string, now time.Time, ttl time.Duration) (string, Token) {
	secret := tokenPrefix + randomString(32)
	tok := Token{ID: tokenID(), User: user, Name: name, Scopes: scopes, Created: now}
	if ttl > 0 {
		tok.Expires = now.Add(ttl)
	}
	return secret, tok
}

// tokenID returns a new token id: 8 random base32 characters, lower case.
func tokenID() string {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("accounts: crypto/rand: " + err.Error())
	}
	return strings.ToLower(base32.StdEncoding.EncodeToString(b[:]))
}

// putToken stores tok under the hash of its secret, with its indexes.
func (t tx) putToken(hash []byte, tok Token) error {
	if err := t.putJSON(bTokens, hash, tok); err != nil {
		return err
	}
	if err := t.put(bTokenIDs, []byte(tok.ID), hash); err != nil {
		return err
	}
	return t.put(bUserTokens, []byte(tok.User+"/"+tok.ID), none)
}

// deleteToken removes the token with id, and its indexes.
func (t tx) deleteToken(user, id string) error {
	hash, err := t.get(bTokenIDs, []byte(id))
	if err != nil {
		return err
	}
	if hash != nil {
		if err := t.del(bTokens, hash); err != nil {
			return err
		}
	}
	if err := t.del(bTokenIDs, []byte(id)); err != nil {
		return err
	}
	return t.del(bUserTokens, []byte(user+"/"+id))
}

// userTokens returns the tokens of a user, from its index.
func (t tx) userTokens(user string) ([]Token, error) {
	var out []Token
	prefix := []byte(user + "/")
	var ids []string
	if err := t.rangePrefix(bUserTokens, prefix, func(k, _ []byte) (bool, error) {
		ids = append(ids, string(k[len(prefix):]))
		return true, nil
	}); err != nil {
		return nil, err
	}
	for _, id := range ids {
		hash, err := t.get(bTokenIDs, []byte(id))
		if err != nil {
			return nil, err
		}
		var tok Token
		if ok, err := t.getJSON(bTokens, hash, &tok); err != nil {
			return nil, err
		} else if ok {
			out = append(out, tok)
		}
	}
	return out, nil
}

// revokeUserTokens removes every token of a user and returns how many.
func (t tx) revokeUserTokens(user string) (int, error) {
	toks, err := t.userTokens(user)
	if err != nil {
		return 0, err
	}
	for _, tok := range toks {
		if err := t.deleteToken(user, tok.ID); err != nil {
			return 0, err
		}
	}
	return len(toks), nil
}

// retireFeedToken rotates the node's calendar feed token, which every user
// who reads may have copied (GET /api/calendar, the dashboard's cases
// page): a user whose access ends keeps no feed URL that still works.
func (t tx) retireFeedToken() error {
	if t.w == nil {
		return errors.New("accounts: the calendar feed token is rotated in a write")
	}
	_, err := t.w.RotateFeedToken()
	return err
}

// endAccess ends every session of user and revokes every token of it,
// and returns how many of each: what disabling, removing a user, and its
// provider withdrawing its role all do.
func (t tx) endAccess(user string) (sessions, tokens int, err error) {
	if sessions, err = t.endUserSessions(user); err != nil {
		return 0, 0, err
	}
	if tokens, err = t.revokeUserTokens(user); err != nil {
		return 0, 0, err
	}
	return sessions, tokens, nil
}

// TokenSpec is what a token is asked for with.
type TokenSpec struct {
	// User names the user the token is for; "" for the principal's own.
	User   string
	Scopes ScopeSet
	// Expires is how long it lasts; zero means DefaultTokenTTL.
	Expires time.Duration
	Name    string
}

// CreateToken issues a token and returns its secret, shown once, and its
// record. A principal may ask for a token of its own with scopes it holds
// itself; only an admin for another user, with scopes that user's role
// holds. A token made by a token expires when that token does at the
// latest (a dashboard session's lasts what is asked).
func (s *Service) CreateToken(ctx context.Context, by Principal, spec TokenSpec, remote string) (string, TokenInfo, error) {
	if by.User == "" {
		return "", TokenInfo{}, problem.Forbidden("%s cannot create tokens; a user's token or session can", by.Name)
	}
	if len(spec.Scopes) == 0 {
		return "", TokenInfo{}, problem.BadRequest("name the token's scopes: read, act, admin, metrics or calendar")
	}
	ttl := ttlOr(spec.Expires)
	if ttl < 0 || ttl > MaxTokenTTL {
		return "", TokenInfo{}, problem.BadRequest("a token lasts from a minute to %d days, not %v", int(MaxTokenTTL.Hours()/24), spec.Expires)
	}
	if len(spec.Name) > 200 {
		return "", TokenInfo{}, problem.BadRequest("the token's name has %d bytes; at most 200 are taken", len(spec.Name))
	}
	var (
		secret string
		info   TokenInfo
	)
	err := s.update(ctx, func(t tx) error {
		var u *User
		var err error
		if spec.User == "" {
			if u, err = t.userByID(by.User); err == nil && u == nil {
				err = problem.NotFound("the user %s is gone", by.Name)
			}
		} else {
			u, err = t.mustUser(spec.User)
		}
		if err != nil {
			return err
		}
		if u.ID != by.User {
			if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
				return problem.Forbidden("only an admin creates tokens for another user: %s", problem.Message(err))
			}
		} else if !by.Scopes.covers(spec.Scopes) && !(by.Via == "session" && u.Role >= minRoleOf(spec.Scopes)) {
			// A token mints only what it holds; a dashboard session
			// mints what its user's role holds.
			return problem.Forbidden("this credential grants %s; it cannot create a token with %s", scopeList(by.Scopes), spec.Scopes)
		}
		if u.Disabled {
			return problem.Conflict("%s is disabled", u.Name)
		}
		if minRoleOf(spec.Scopes) > u.Role {
			return problem.Forbidden("%s is %s, which cannot hold a token with %s", u.Name, article(u.Role), spec.Scopes)
		}
		toks, err := t.userTokens(u.ID)
		if err != nil {
			return err
		}
		if len(toks) >= MaxTokensPerUser {
			return problem.Conflict("%s has %d tokens, the most a user may have; revoke one first", u.Name, len(toks))
		}
		now, life := s.now().UTC(), ttl
		if by.Via == "token" {
			// A token's tokens end when it does at the latest: a stolen
			// short-lived token is not turned into a long-lived one.
			if hash, err := t.get(bTokenIDs, []byte(by.Credential)); err != nil {
				return err
			} else if hash != nil {
				var maker Token
				if ok, err := t.getJSON(bTokens, hash, &maker); err != nil {
					return err
				} else if ok && !maker.Expires.IsZero() {
					life = min(life, maker.Expires.Sub(now))
				}
			}
			if life <= 0 {
				return problem.Unauthorized("the token that asks has expired")
			}
		}
		var tok Token
		secret, tok = newToken(u.ID, spec.Scopes, spec.Name, now, life)
		if err := t.putToken(sum(secret), tok); err != nil {
			return err
		}
		info = tok.Info(u.Name)
		return t.audit(by, store.DecisionDone, fmt.Sprintf("token %s created for %s with %s, expires %s", tok.ID, u.Name, tok.Scopes, tok.Expires.Format(time.RFC3339)), remote)
	})
	if err != nil {
		return "", TokenInfo{}, err
	}
	return secret, info, nil
}

func minRoleOf(ss ScopeSet) Role {
	r := Viewer
	for _, s := range ss {
		r = max(r, s.MinRole())
	}
	return r
}

// Tokens lists the tokens of a user: a principal's own (user ""), or,
// for an admin, any user's.
func (s *Service) Tokens(ctx context.Context, by Principal, user string) ([]TokenInfo, error) {
	var out []TokenInfo
	err := s.view(ctx, func(t tx) error {
		out = out[:0]
		u, err := t.subjectUser(by, user)
		if err != nil {
			return err
		}
		toks, err := t.userTokens(u.ID)
		for _, tok := range toks {
			out = append(out, tok.Info(u.Name))
		}
		return err
	})
	return out, err
}

// subjectUser returns the user a request is about: the principal's own
// (name "") or, for an admin only, the named one.
func (t tx) subjectUser(by Principal, name string) (*User, error) {
	if name == "" || normName(name) == by.Name {
		if by.User == "" {
			return nil, problem.Forbidden("%s belongs to no user", by.Name)
		}
		u, err := t.userByID(by.User)
		if err == nil && u == nil {
			err = problem.NotFound("the user %s is gone", by.Name)
		}
		return u, err
	}
	if err := by.Allow(Permission{Scope: ScopeAdmin}, ""); err != nil {
		return nil, problem.Forbidden("only an admin sees another user's tokens and sessions: %s", problem.Message(err))
	}
	return t.mustUser(name)
}

// RevokeToken revokes the token with id: the principal's own, or, for an
// admin, anyone's.
func (s *Service) RevokeToken(ctx context.Context, by Principal, id, remote string) error {
	return s.update(ctx, func(t tx) error {
		hash, err := t.get(bTokenIDs, []byte(id))
		if err != nil {
			return err
		}
		var tok Token
		ok := false
		if hash != nil {
			if ok, err = t.getJSON(bTokens, hash, &tok); err != nil {
				return err
			}
		}
		if !ok || (tok.User != by.User && !by.Can(ScopeAdmin)) {
			// Another user's token is not named to a non-admin.
			return problem.NotFound("there is no token %s of yours", problem.Clip(id, 40))
		}
		u, err := t.userByID(tok.User)
		if err != nil {
			return err
		}
		name := tok.User
		if u != nil {
			name = u.Name
		}
		if err := t.deleteToken(tok.User, tok.ID); err != nil {
			return err
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("token %s of %s revoked", tok.ID, name), remote)
	})
}

// Authenticate returns the principal of a bearer token: its user, with
// the token's scopes within the user's role as it is now. An unknown,
// revoked or expired token, one of a disabled user, and one of a user of
// single sign-on who has not logged in through the provider lately
// (checkSSOStanding), is refused with 401 and a sentence that says which.
func (s *Service) Authenticate(ctx context.Context, secret string) (Principal, error) {
	secret = strings.TrimSpace(secret)
	if secret == "" {
		return Principal{}, problem.Unauthorized("no token given")
	}
	if len(secret) > 512 {
		return Principal{}, problem.Unauthorized("the token is not one of this node's")
	}
	hash := sum(secret)
	var (
		tok Token
		u   *User
	)
	err := s.view(ctx, func(t tx) error {
		ok, err := t.getJSON(bTokens, hash, &tok)
		if err != nil || !ok {
			u = nil
			return err
		}
		u, err = t.userByID(tok.User)
		return err
	})
	if err != nil {
		return Principal{}, unavailable(err)
	}
	now := s.now()
	switch {
	case u == nil:
		return Principal{}, problem.Unauthorized("the token is not one of this node's (revoked, or never issued)")
	case !tok.Expires.IsZero() && now.After(tok.Expires):
		return Principal{}, problem.Unauthorized("token %s expired on %s", tok.ID, tok.Expires.UTC().Format(time.RFC3339))
	case u.Disabled:
		return Principal{}, problem.Unauthorized("token %s belongs to %s, who is disabled", tok.ID, u.Name)
	}
	if err := s.checkSSOStanding(u, tok, now); err != nil {
		return Principal{}, err
	}
	if now.Sub(tok.LastUsed) >= lastUsedEvery {
		s.touchToken(hash, now)
	}
	return Principal{User: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Actors: u.Actors,
		Scopes: tok.Scopes.within(u.Role), Via: "token", Credential: tok.ID}, nil
}

// touchToken records a token's use without waiting for a commit of its
// own: a lost write only makes the last use look older.
func (s *Service) touchToken(hash []byte, now time.Time) {
	s.recordDeferred("a token's last use", func(t tx) error {
		var tok Token
		ok, err := t.getJSON(bTokens, hash, &tok)
		if err != nil || !ok {
			return err // revoked in between: nothing to record
		}
		tok.LastUsed = now.UTC()
		return t.putJSON(bTokens, hash, tok)
	})
}

// recordDeferred writes fn's record of a credential's use without waiting
// for a commit of its own, and logs a failure to write it, what naming
// the record. A store that cannot write now logs that itself, once: a
// line here would come at each request while it lasts, since the use
// stays unrecorded.
func (s *Service) recordDeferred(what string, fn func(t tx) error) {
	logFailure := func(err error) {
		if err != nil && !store.Passing(err) {
			s.log.Warn().Err(err).Msg("accounts: record " + what)
		}
	}
	logFailure(s.db.UpdateDeferred(func(w *store.Tx) error { return fn(tx{r: &w.ReadTx, w: w}) }, logFailure))
}

// unavailable is the refusal of a request whose credential could not be
// checked because the store did not answer: 503, so that a client tries
// again rather than taking its token for a bad one. A store that says why
// (the database refuses the node's credentials, is read-only, cannot be
// reached) has its reason in the sentence, as a write's refusal has.
func unavailable(err error) error {
	why := "its store does not answer"
	var ue *store.UnavailableError
	if errors.As(err, &ue) && ue.Reason != "" {
		why = ue.Reason
	}
	pe := &problem.Error{Status: http.StatusServiceUnavailable, Err: fmt.Errorf("accounts: %w", err),
		Msg: "the node cannot check credentials now: " + why + "; try again"}
	if store.Passing(err) {
		// A failure that passes (or a node stopping): say when to try
		// again; not for one that does not (a damaged record).
		pe.RetryAfter = 10 * time.Second
	}
	return pe
}
