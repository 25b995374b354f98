package accounts

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Dashboard sessions live in the store, so that every process of a node
// on a shared store knows them and a restart logs nobody out. A session
// id is 256 random bits, given to the browser in a cookie and stored as
// its SHA-256 only. A session ends at the first of: its absolute expiry
// (Config.SessionMax after the login), an idle time without a request
// (Config.SessionIdle), a logout, its revocation from the account page or
// by an admin, the disabling or removal of its user, the reset of its
// user's second factors, a change of its user's password from another
// session or through an enrollment link, and, for a session opened
// through an enrollment link, a new link for its user. Whether the user
// is still enabled is read on every request, not only at the login.
//
// A login that needs a second step (a second factor after the password
// or after an enrollment link, a second factor to enrol after an
// enrollment link) is a session of its own stage that grants nothing but
// that step; it lasts minutes, and the step ends it and opens a new full
// session under a new id, so that an id seen before the login completed
// is worth nothing after.

// Stage is how far a session's login has come.
type Stage string

// The stages.
const (
	// StageFull is a logged-in session.
	StageFull Stage = "full"
	// StageSecondFactor has passed the password (or set it through an
	// enrollment link) and awaits a second factor.
	StageSecondFactor Stage = "second-factor"
	// StageEnroll used an enrollment link and set a password; it awaits
	// a second factor to enrol.
	StageEnroll Stage = "enroll"
)

const (
	// secondFactorTTL and enrollTTLSession bound the pending stages.
	secondFactorTTL  = 10 * time.Minute
	enrollSessionTTL = 30 * time.Minute
	// maxFactorAttempts is how many wrong second factors a pending
	// session takes before it ends.
	maxFactorAttempts = 5
	// lastSeenEvery is how often a session's last request is written at
	// most.
	lastSeenEvery = time.Minute
)

// Session is a dashboard session as stored.
type Session struct {
	User     string    `json:"user"`
	CSRF     string    `json:"csrf"`
	Stage    Stage     `json:"stage"`
	Method   string    `json:"method"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	Expires  time.Time `json:"expires"`
	Remote   string    `json:"remote,omitempty"`
	Agent    string    `json:"agent,omitempty"`
	// Flash is the outcome of the last form, shown once.
	Flash   string `json:"flash,omitempty"`
	FlashOK bool   `json:"flashOK,omitempty"`
	// Ceremony is the state of a passkey ceremony in progress (its
	// challenge), of the kind CeremonyKind: "login" or "register".
	Ceremony     json.RawMessage `json:"ceremony,omitempty"`
	CeremonyKind string          `json:"ceremonyKind,omitempty"`
	// TOTPPending is the otpauth:// URL of a TOTP secret offered to the
	// person and not yet confirmed with a code.
	TOTPPending string `json:"totpPending,omitempty"`
	// Attempts counts wrong second factors in this session.
	Attempts int `json:"attempts,omitempty"`
	// ShowRecovery are new recovery codes the next page shows once and
	// clears: the dashboard redirects after the step that made them.
	ShowRecovery []string `json:"showRecovery,omitempty"`
	// Link marks a session opened through an enrollment link, and the
	// full session its second step opens: a new link for the user ends
	// it.
	Link bool `json:"link,omitempty"`
}

// SessionInfo is what lists show of a session: never its id.
type SessionInfo struct {
	// Handle names the session for its revocation: the start of the hex
	// SHA-256 of its id.
	Handle   string    `json:"handle"`
	User     string    `json:"user"`
	Method   string    `json:"method"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"lastSeen"`
	Expires  time.Time `json:"expires"`
	Remote   string    `json:"remote,omitempty"`
	Agent    string    `json:"agent,omitempty"`
}

func handleOf(hash []byte) string { return hex.EncodeToString(hash[:6]) }

// LoginMeta is what a login is told of the request: the client IP and
// the browser's user agent, kept in the session for its list.
type LoginMeta struct {
	Remote string
	Agent  string
}

// Login is the outcome of a login step: the id of the session the
// browser is given (its cookie) and its stage.
type Login struct {
	SessionID string
	Stage     Stage
	// Recovery are new recovery codes, to be shown once: when the step
	// enrolled the user's first second factor.
	Recovery []string
}

// sessionKey returns the SHA-256 of a session id, its key.
func sessionKey(id string) []byte { return sum(id) }

// createSession stores a new session of u, of the stage, method and link
// of like, and returns its id. It first removes a few expired sessions
// and, when u has MaxSessionsPerUser of the new session's kind, the
// oldest of them. Logged-in sessions and those that await a step are
// counted apart: a login that awaits a second factor takes only a
// password, and must not push a logged-in session out.
func (t tx) createSession(u *User, like Session, m LoginMeta, now time.Time, ttl time.Duration) (string, error) {
	if err := t.pruneSessions(now); err != nil {
		return "", err
	}
	prefix := []byte(u.ID + "/")
	var mine [][]byte // the user's sessions of the new one's kind, oldest first
	if err := t.rangePrefix(bUserSessions, prefix, func(k, _ []byte) (bool, error) {
		var ss Session
		ok, err := t.getJSON(bSessions, k[len(k)-32:], &ss)
		if err != nil {
			return false, err
		}
		if !ok || (ss.Stage == StageFull) == (like.Stage == StageFull) {
			mine = append(mine, k)
		}
		return true, nil
	}); err != nil {
		return "", err
	}
	for len(mine) >= MaxSessionsPerUser {
		if err := t.deleteSession(mine[0][len(mine[0])-32:]); err != nil {
			return "", err
		}
		mine = mine[1:]
	}
	id := randomString(32)
	hash := sessionKey(id)
	ss := Session{User: u.ID, CSRF: randomString(32), Stage: like.Stage, Method: like.Method, Link: like.Link, Created: now.UTC(), LastSeen: now.UTC(),
		Expires: now.UTC().Add(ttl), Remote: problem.Clip(m.Remote, 64), Agent: problem.Printable(m.Agent, 200)}
	if err := t.putJSON(bSessions, hash, ss); err != nil {
		return "", err
	}
	if err := t.put(bUserSessions, append(append(prefix, timeKey(ss.Created)...), hash...), none); err != nil {
		return "", err
	}
	return id, t.put(bSessionDue, append(timeKey(ss.Expires), hash...), none)
}

// deleteSession removes the session under hash with its indexes.
func (t tx) deleteSession(hash []byte) error {
	var ss Session
	ok, err := t.getJSON(bSessions, hash, &ss)
	if err != nil {
		return err
	}
	if ok {
		if err := t.del(bUserSessions, append(append([]byte(ss.User+"/"), timeKey(ss.Created)...), hash...)); err != nil {
			return err
		}
		if err := t.del(bSessionDue, append(timeKey(ss.Expires), hash...)); err != nil {
			return err
		}
	}
	return t.del(bSessions, hash)
}

// pruneSessions removes up to pruneBatch sessions past their absolute
// expiry, from the expiry index.
func (t tx) pruneSessions(now time.Time) error {
	var due [][]byte
	if err := t.rangePrefix(bSessionDue, nil, func(k, _ []byte) (bool, error) {
		if len(due) == pruneBatch || string(k[:8]) > string(timeKey(now)) {
			return false, nil
		}
		due = append(due, k[8:])
		return true, nil
	}); err != nil {
		return err
	}
	for _, hash := range due {
		if err := t.deleteSession(hash); err != nil {
			return err
		}
	}
	return nil
}

// endUserSessions removes every session of a user and returns how many.
func (t tx) endUserSessions(user string) (int, error) { return t.endOtherSessions(user, nil) }

// endOtherSessions removes every session of a user but the one under
// keep and returns how many.
func (t tx) endOtherSessions(user string, keep []byte) (int, error) {
	return t.endSessionsWhere(user, func(h []byte) (bool, error) { return string(h) != string(keep), nil })
}

// endLinkSessions removes every session of a user opened through an
// enrollment link (Session.Link) and returns how many.
func (t tx) endLinkSessions(user string) (int, error) {
	return t.endSessionsWhere(user, func(h []byte) (bool, error) {
		var ss Session
		ok, err := t.getJSON(bSessions, h, &ss)
		return ok && ss.Link, err
	})
}

// endSessionsWhere removes the sessions of a user, found by its index of
// sessions, for whose hash end says so, and returns how many.
func (t tx) endSessionsWhere(user string, end func(hash []byte) (bool, error)) (int, error) {
	var hashes [][]byte
	if err := t.rangePrefix(bUserSessions, []byte(user+"/"), func(k, _ []byte) (bool, error) {
		h := k[len(k)-32:]
		yes, err := end(h)
		if yes {
			hashes = append(hashes, h)
		}
		return err == nil, err
	}); err != nil {
		return 0, err
	}
	for _, h := range hashes {
		if err := t.deleteSession(h); err != nil {
			return 0, err
		}
	}
	return len(hashes), nil
}

// errNoSession is the refusal of a request whose session is gone; the
// dashboard sends the browser to the login page.
func errNoSession(why string) error { return problem.Unauthorized("%s; log in again", why) }

// loadSession reads the live session id and its user: it refuses one that
// is unknown, expired (absolutely or idle), whose user is disabled or
// gone, or that was logged in without a second factor while its user's
// role now needs one.
func (s *Service) loadSession(t tx, id string, now time.Time) (*Session, *User, error) {
	if id == "" || len(id) > 128 {
		return nil, nil, errNoSession("there is no session")
	}
	var ss Session
	ok, err := t.getJSON(bSessions, sessionKey(id), &ss)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !ok:
		return nil, nil, errNoSession("the session has ended")
	case now.After(ss.Expires):
		return nil, nil, errNoSession("the session expired")
	case ss.Stage == StageFull && now.Sub(ss.LastSeen) > s.cfg.SessionIdle:
		return nil, nil, errNoSession(fmt.Sprintf("the session was idle for more than %v", s.cfg.SessionIdle))
	}
	u, err := t.userByID(ss.User)
	if err != nil {
		return nil, nil, err
	}
	if u == nil {
		return nil, nil, errNoSession("the session's user was removed")
	}
	if u.Disabled {
		return nil, nil, problem.Unauthorized("%s is disabled", u.Name)
	}
	if ss.Stage == StageFull && s.SecondFactorRequired(u.Role) && !ss.gaveSecondFactor() {
		// Logged in without a second factor, as a viewer may (or while
		// the node did not require one), and since made a role that
		// needs one: the session does not carry the new role.
		return nil, nil, errNoSession(fmt.Sprintf("the session was opened without a second factor, which %s, now %s, needs", u.Name, article(u.Role)))
	}
	return &ss, u, nil
}

// gaveSecondFactor reports whether the login that opened the session
// gave a second factor (its method names a step after the password or
// the enrollment link, as in "password+totp") or went through the
// identity provider, whose own login stands in for one.
func (ss *Session) gaveSecondFactor() bool {
	return ss.Method == "sso" || strings.Contains(ss.Method, "+")
}

// principalOf returns the principal of a full session of u.
func principalOf(u *User, hash []byte) Principal {
	return Principal{User: u.ID, Name: u.Name, DisplayName: u.DisplayName, Role: u.Role, Actors: u.Actors,
		Scopes: roleScopes(u.Role), Via: "session", Credential: handleOf(hash)}
}

// SessionState is a session as a request sees it.
type SessionState struct {
	Session
	// Principal is the session's principal once its stage is full; its
	// scopes are empty before.
	Principal Principal
	// UserName and DisplayName name the session's user.
	UserName    string
	DisplayName string
	// HasTOTP, Passkeys and RecoveryLeft describe the user's factors.
	HasTOTP      bool
	Passkeys     []PasskeyInfo
	RecoveryLeft int
	// SecondFactorRequired says whether the user must keep a factor.
	SecondFactorRequired bool
	// SSO names the identity provider the user logs in through.
	SSO string
}

// Session returns the live session with the given id. A session of a
// disabled user, an expired or revoked one and an unknown id are refused
// with 401; the session's last request is recorded at most once a minute,
// without a commit of its own.
func (s *Service) Session(ctx context.Context, id string) (SessionState, error) {
	now := s.now()
	var st SessionState
	err := s.view(ctx, func(t tx) error {
		ss, u, err := s.loadSession(t, id, now)
		if err != nil {
			return err
		}
		st = SessionState{Session: *ss, UserName: u.Name, DisplayName: displayName(u), HasTOTP: u.TOTP != nil,
			RecoveryLeft: len(u.Recovery), SecondFactorRequired: s.SecondFactorRequired(u.Role), SSO: u.Issuer}
		for _, p := range u.Passkeys {
			st.Passkeys = append(st.Passkeys, p.info())
		}
		if ss.Stage == StageFull {
			st.Principal = principalOf(u, sessionKey(id))
		}
		return nil
	})
	if err != nil {
		if problem.Status(err) >= 500 {
			return SessionState{}, unavailable(err)
		}
		return SessionState{}, err
	}
	if st.Stage == StageFull && now.Sub(st.LastSeen) >= lastSeenEvery {
		s.touchSession(sessionKey(id), now)
	}
	return st, nil
}

// CheckSession reports whether the session id still holds (401 when it
// has ended), as Session does, without counting as a request of its
// person: a page's event stream asks it each time the case changes, and
// must not keep an idle session from ending.
func (s *Service) CheckSession(ctx context.Context, id string) error {
	now := s.now()
	err := s.view(ctx, func(t tx) error {
		_, _, err := s.loadSession(t, id, now)
		return err
	})
	if err != nil && problem.Status(err) >= 500 {
		return unavailable(err)
	}
	return err
}

// touchSession records a session's last request without waiting for a
// commit of its own.
func (s *Service) touchSession(hash []byte, now time.Time) {
	s.recordDeferred("a session's last request", func(t tx) error {
		var ss Session
		ok, err := t.getJSON(bSessions, hash, &ss)
		if err != nil || !ok {
			return err
		}
		ss.LastSeen = now.UTC()
		return t.putJSON(bSessions, hash, ss)
	})
}

// UpdateSession changes the session with the given id with fn (its
// message for the next page); a session that is gone stays gone.
func (s *Service) UpdateSession(ctx context.Context, id string, fn func(*Session)) error {
	return s.update(ctx, func(t tx) error {
		var ss Session
		ok, err := t.getJSON(bSessions, sessionKey(id), &ss)
		if err != nil || !ok {
			return err
		}
		fn(&ss)
		return t.putJSON(bSessions, sessionKey(id), ss)
	})
}

// Logout ends the session with the given id.
func (s *Service) Logout(ctx context.Context, id, remote string) error {
	return s.update(ctx, func(t tx) error {
		var ss Session
		ok, err := t.getJSON(bSessions, sessionKey(id), &ss)
		if err != nil || !ok {
			return err
		}
		if err := t.deleteSession(sessionKey(id)); err != nil {
			return err
		}
		u, err := t.userByID(ss.User)
		if err != nil || u == nil || ss.Stage != StageFull {
			return err
		}
		return t.audit(principalOf(u, sessionKey(id)), store.DecisionDone, "logged out", remote)
	})
}

// Sessions lists the sessions of a user, oldest first: the principal's
// own (user ""), or, for an admin, anyone's.
func (s *Service) Sessions(ctx context.Context, by Principal, user string) ([]SessionInfo, error) {
	now := s.now()
	var out []SessionInfo
	err := s.view(ctx, func(t tx) error {
		out = out[:0]
		u, err := t.subjectUser(by, user)
		if err != nil {
			return err
		}
		return t.rangePrefix(bUserSessions, []byte(u.ID+"/"), func(k, _ []byte) (bool, error) {
			hash := k[len(k)-32:]
			var ss Session
			ok, err := t.getJSON(bSessions, hash, &ss)
			if err != nil || !ok || now.After(ss.Expires) || (ss.Stage == StageFull && now.Sub(ss.LastSeen) > s.cfg.SessionIdle) {
				return err == nil, err
			}
			out = append(out, SessionInfo{Handle: handleOf(hash), User: u.Name, Method: ss.Method, Created: ss.Created,
				LastSeen: ss.LastSeen, Expires: ss.Expires, Remote: ss.Remote, Agent: ss.Agent})
			return true, nil
		})
	})
	return out, err
}

// RevokeSession ends the session with the given handle: one of the
// principal's own, or, for an admin, anyone's.
func (s *Service) RevokeSession(ctx context.Context, by Principal, user, handle, remote string) error {
	return s.update(ctx, func(t tx) error {
		u, err := t.subjectUser(by, user)
		if err != nil {
			return err
		}
		var found []byte
		if err := t.rangePrefix(bUserSessions, []byte(u.ID+"/"), func(k, _ []byte) (bool, error) {
			if hash := k[len(k)-32:]; handleOf(hash) == handle {
				found = hash
				return false, nil
			}
			return true, nil
		}); err != nil {
			return err
		}
		if found == nil {
			return problem.NotFound("%s has no session %s", u.Name, problem.Clip(handle, 20))
		}
		if err := t.deleteSession(found); err != nil {
			return err
		}
		return t.audit(by, store.DecisionDone, fmt.Sprintf("session %s of %s ended", handle, u.Name), remote)
	})
}

// refusal is a failed login step: the sentence the person sees, and the
// cause the node's log and audit record keep (never a password or code,
// nor a name no user has, which may be a password in the wrong field).
func refusal(status int, shown, cause string) error {
	return problem.Wrap(status, errors.New(cause), shown)
}

// wrongLogin is the one answer to a wrong name, a wrong password, and a
// disabled or password-less user, so that an answer tells no name apart.
const wrongLogin = "wrong name or password"

// PasswordLogin checks a name and password, throttled per name and per
// client IP, and opens a session: a full one, or one that awaits the
// second factor the user enrolled (or must have). A name with no user
// costs the same work and gets the same answer as a wrong password.
func (s *Service) PasswordLogin(ctx context.Context, name, password string, m LoginMeta) (Login, error) {
	done, err := s.throttle.attempt(name, m.Remote)
	if err != nil {
		return Login{}, err
	}
	defer done()
	if len(name) > 128 || len(password) > 4*MaxPasswordLength {
		s.throttle.fail(name, m.Remote)
		return Login{}, refusal(http.StatusUnauthorized, wrongLogin, "name or password too long")
	}
	var u *User
	if err := s.view(ctx, func(t tx) error {
		var err error
		u, err = t.userByName(name)
		return err
	}); err != nil {
		return Login{}, fmt.Errorf("accounts: login: %w", err)
	}
	encoded := ""
	if u != nil {
		encoded = u.Password
	}
	ok, weaker, err := s.hasher.verify(ctx, encoded, password)
	if err != nil {
		return Login{}, fmt.Errorf("accounts: login: %w", err)
	}
	switch {
	case u == nil:
		s.throttle.fail(name, m.Remote)
		// What was typed as the name is not kept: no user has it, and a
		// person who typed their password into the name field would
		// find it in the log and in the audit log, whose hash chain
		// keeps it for good.
		return Login{}, refusal(http.StatusUnauthorized, wrongLogin, "no user of the name given (not recorded)")
	case u.Password == "":
		s.throttle.fail(name, m.Remote)
		return Login{}, refusal(http.StatusUnauthorized, wrongLogin, "user "+u.Name+" has no password (not enrolled, or logs in through SSO)")
	case !ok:
		s.throttle.fail(name, m.Remote)
		return Login{}, refusal(http.StatusUnauthorized, wrongLogin, "wrong password for "+u.Name)
	case u.Disabled:
		s.throttle.fail(name, m.Remote)
		return Login{}, refusal(http.StatusUnauthorized, wrongLogin, "user "+u.Name+" is disabled")
	}
	if s.SecondFactorRequired(u.Role) && !u.hasSecondFactor() && len(u.Recovery) == 0 {
		return Login{}, refusal(http.StatusForbidden, "you have no second factor yet, which this node requires of "+u.Role.String()+"s; ask an admin for an enrollment link (vultron user enroll "+u.Name+")",
			"user "+u.Name+" has no second factor")
	}
	rehash := ""
	if weaker {
		if rehash, err = s.hasher.hash(ctx, password); err != nil {
			return Login{}, err
		}
	}
	now := s.now().UTC()
	var login Login
	err = s.update(ctx, func(t tx) error {
		cur, err := t.userByID(u.ID)
		if err != nil {
			return err
		}
		if cur == nil || cur.Disabled || cur.Password != u.Password {
			return refusal(http.StatusUnauthorized, wrongLogin, "user "+u.Name+" changed during the login")
		}
		if rehash != "" {
			cur.Password = rehash
		}
		if cur.hasSecondFactor() || len(cur.Recovery) > 0 {
			if err := t.putUser(cur); err != nil {
				return err
			}
			id, err := t.createSession(cur, Session{Stage: StageSecondFactor, Method: "password"}, m, now, secondFactorTTL)
			login = Login{SessionID: id, Stage: StageSecondFactor}
			return err
		}
		// A login of the user's own finishes an enrollment.
		cur.LastLogin, cur.Provisional = now, false
		if err := t.putUser(cur); err != nil {
			return err
		}
		id, err := t.createSession(cur, Session{Stage: StageFull, Method: "password"}, m, now, s.cfg.SessionMax)
		login = Login{SessionID: id, Stage: StageFull}
		if err != nil {
			return err
		}
		return t.audit(principalOf(cur, sessionKey(id)), store.DecisionAccepted, "logged in with a password", m.Remote)
	})
	if err != nil {
		return Login{}, err
	}
	// Only a completed login clears the name's failures: a right
	// password before a second factor does not, or whoever has the
	// password could guess the factor at the name's first waits for
	// ever, five codes a pending login.
	if login.Stage == StageFull {
		s.throttle.succeed(name)
	}
	return login, nil
}

// pendingStep loads a session of stage want for a step of the login.
func (s *Service) pendingStep(t tx, id string, want Stage, now time.Time) (*Session, *User, error) {
	ss, u, err := s.loadSession(t, id, now)
	if err != nil {
		return nil, nil, err
	}
	if ss.Stage != want {
		return nil, nil, problem.Conflict("this session is not waiting for that step")
	}
	return ss, u, nil
}

// promote ends the pending session ss under id and opens a full session
// of u, whose method is the pending session's and the step's (as in
// "password+totp"), and which was opened through an enrollment link when
// ss was. A second factor given after the password is a login of the
// user's own, which finishes an enrollment (User.Provisional).
func (s *Service) promote(t tx, id string, ss *Session, u *User, step string, m LoginMeta, now time.Time) (string, error) {
	if err := t.deleteSession(sessionKey(id)); err != nil {
		return "", err
	}
	u.LastLogin = now.UTC()
	if ss.Stage == StageSecondFactor {
		u.Provisional = false
	}
	if err := t.putUser(u); err != nil {
		return "", err
	}
	method := ss.Method + "+" + step
	full, err := t.createSession(u, Session{Stage: StageFull, Method: method, Link: ss.Link}, m, now, s.cfg.SessionMax)
	if err != nil {
		return "", err
	}
	return full, t.audit(principalOf(u, sessionKey(full)), store.DecisionAccepted, "logged in with "+method, m.Remote)
}

// factorAttempt lets a second factor for the pending login id through
// the throttle of its user's name and of m's address (throttle.attempt)
// before the step's transaction, so that wrong factors sent all at once
// are held to it as factors sent one after the other are; done is to be
// called once a wrong factor is counted (wrongFactor).
func (s *Service) factorAttempt(ctx context.Context, id string, m LoginMeta) (done func(), err error) {
	name := ""
	err = s.view(ctx, func(t tx) error {
		_, u, err := s.pendingStep(t, id, StageSecondFactor, s.now())
		if err == nil {
			name = u.Name
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s.throttle.attempt(name, m.Remote)
}

// wrongFactor counts a wrong second factor against the pending session
// under id (which ends at maxFactorAttempts) and the user's name.
func (s *Service) wrongFactor(ctx context.Context, id, name string, m LoginMeta, shown, cause string) error {
	s.throttle.fail(name, m.Remote)
	ended := false
	err := s.update(ctx, func(t tx) error {
		var ss Session
		ok, err := t.getJSON(bSessions, sessionKey(id), &ss)
		if err != nil || !ok {
			return err
		}
		ss.Attempts++
		if ended = ss.Attempts >= maxFactorAttempts; ended {
			return t.deleteSession(sessionKey(id))
		}
		return t.putJSON(bSessions, sessionKey(id), ss)
	})
	if err != nil {
		return err
	}
	if ended {
		return refusal(http.StatusUnauthorized, "too many wrong second factors; log in again", cause+"; the pending login ended")
	}
	return refusal(http.StatusUnauthorized, shown, cause)
}

// SecondFactorTOTP completes a login with a code of the user's
// authenticator app. A code is taken once: a replay, even within its 30
// seconds, is refused.
func (s *Service) SecondFactorTOTP(ctx context.Context, id, code string, m LoginMeta) (Login, error) {
	now := s.now()
	var (
		login      Login
		name       string
		bad, cause string
	)
	done, err := s.factorAttempt(ctx, id, m)
	if err != nil {
		return Login{}, err
	}
	defer done()
	err = s.update(ctx, func(t tx) error {
		login, bad, cause = Login{}, "", ""
		ss, u, err := s.pendingStep(t, id, StageSecondFactor, now)
		if err != nil {
			return err
		}
		name = u.Name
		if u.TOTP == nil {
			bad, cause = "you have no authenticator app enrolled; use a passkey or a recovery code", "no TOTP enrolled for "+u.Name
			return nil
		}
		step, ok, replay := totpStep(u.TOTP.Secret, code, now, u.TOTP.LastStep)
		switch {
		case replay:
			bad, cause = "that code was used already; wait for the next one", "replayed TOTP code of step "+fmt.Sprint(step)+" for "+u.Name
			return nil
		case !ok:
			bad, cause = "wrong code", "wrong or out-of-window TOTP code for "+u.Name
			return nil
		}
		u.TOTP.LastStep = step
		full, err := s.promote(t, id, ss, u, "totp", m, now)
		login = Login{SessionID: full, Stage: StageFull}
		return err
	})
	if err != nil {
		return Login{}, err
	}
	if bad != "" {
		return Login{}, s.wrongFactor(ctx, id, name, m, bad, cause)
	}
	s.throttle.succeed(name)
	return login, nil
}

// SecondFactorRecovery completes a login with one of the user's recovery
// codes, which is used up.
func (s *Service) SecondFactorRecovery(ctx context.Context, id, code string, m LoginMeta) (Login, error) {
	now := s.now()
	var (
		login Login
		name  string
		left  int
		wrong bool
	)
	done, err := s.factorAttempt(ctx, id, m)
	if err != nil {
		return Login{}, err
	}
	defer done()
	err = s.update(ctx, func(t tx) error {
		login, wrong = Login{}, false
		ss, u, err := s.pendingStep(t, id, StageSecondFactor, now)
		if err != nil {
			return err
		}
		name = u.Name
		rest, ok := useRecovery(u.Recovery, code)
		if !ok {
			wrong = true
			return nil
		}
		u.Recovery, left = rest, len(rest)
		full, err := s.promote(t, id, ss, u, fmt.Sprintf("recovery code (%d left)", left), m, now)
		login = Login{SessionID: full, Stage: StageFull}
		return err
	})
	if err != nil {
		return Login{}, err
	}
	if wrong {
		return Login{}, s.wrongFactor(ctx, id, name, m, "that is not one of your unused recovery codes", "wrong recovery code for "+name)
	}
	s.throttle.succeed(name)
	return login, nil
}
