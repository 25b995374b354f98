package accounts

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/pquerna/otp"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Enrollment: an admin adds a user (or resets its second factors) and
// hands the person a link with a one-time code (192 random bits, stored
// as its SHA-256, valid for seven days). The link's page sets the
// person's password and opens a session of stage enroll, in which the
// person adds a second factor (an authenticator app or a passkey) when
// the node requires one of its role, and is shown recovery codes once.
// The code is used up when the password is set, not when the page is
// opened, so that a link previewer does not spend it.
//
// A link sets a password and nothing more: it never opens a session that
// skips a second factor the account has. Used on an account with second
// factors (or recovery codes), as a new link for a forgotten password
// is, it opens a session that awaits one of them, as the password step
// of a login does. Using a link ends every other session of the user, as
// a password change does.
//
// On an account without any, the link's holder sets up the first factors
// on trust, and what they set up stays provisional (User.Provisional)
// until the first login of the user's own (the password, and a factor
// when the account has one). A new link for the user (Enrollment,
// Reset2FA) ends every session opened through an earlier link, with the
// factor enrollment it was in; and when the earlier link's enrollment is
// still provisional, it also removes the password, second factors and
// recovery codes set up through it and ends every session of the user:
// an admin issues a new link when the old one went astray, and whoever
// used that link keeps nothing. Once a login of the user's own has
// followed, a new link leaves the factors in place and asks for one of
// them; an admin who wants them gone runs Reset2FA.

// Enroll sets the password of the user an enrollment code was issued
// for, ends the user's other sessions and opens a session: of stage
// second-factor when the account has second factors or recovery codes,
// of stage enroll when the user must still add a second factor, full
// otherwise.
func (s *Service) Enroll(ctx context.Context, code, password string, m LoginMeta) (Login, error) {
	if err := s.throttle.check("", m.Remote); err != nil {
		return Login{}, err
	}
	if err := checkNewPassword(password); err != nil {
		return Login{}, problem.BadRequest("%s", err.Error())
	}
	now := s.now().UTC()
	// The code is checked before the password is hashed, so that a wrong
	// code costs no hashing.
	err := s.view(ctx, func(t tx) error {
		_, err := t.enrolling(code, now)
		return err
	})
	if err != nil {
		if problem.Status(err) == http.StatusUnauthorized {
			s.throttle.fail("", m.Remote)
		}
		return Login{}, err
	}
	hash, err := s.hasher.hash(ctx, password)
	if err != nil {
		return Login{}, err
	}
	var login Login
	err = s.update(ctx, func(t tx) error {
		cur, err := t.enrolling(code, now)
		if err != nil {
			return err
		}
		cur.Password = hash
		if err := t.delEnroll(cur.Enroll); err != nil {
			return err
		}
		cur.Enroll, cur.EnrollExpires = "", time.Time{}
		hasFactors := cur.hasSecondFactor() || len(cur.Recovery) > 0
		stage, ttl, asked := StageFull, s.cfg.SessionMax, ""
		switch {
		case hasFactors:
			stage, ttl, asked = StageSecondFactor, secondFactorTTL, ", a second factor asked"
		case s.SecondFactorRequired(cur.Role):
			stage, ttl = StageEnroll, enrollSessionTTL
		}
		cur.Provisional = !hasFactors
		if err := t.putUser(cur); err != nil {
			return err
		}
		ended, err := t.endUserSessions(cur.ID)
		if err != nil {
			return err
		}
		id, err := t.createSession(cur, Session{Stage: stage, Method: "enrollment", Link: true}, m, now, ttl)
		login = Login{SessionID: id, Stage: stage}
		if err != nil {
			return err
		}
		return t.audit(Principal{User: cur.ID, Name: cur.Name, Via: "enrollment"}, store.DecisionDone,
			fmt.Sprintf("enrollment: password set, %d other sessions ended%s", ended, asked), m.Remote)
	})
	if err != nil {
		return Login{}, err
	}
	return login, nil
}

// enrolling returns the user whose open enrollment code is code.
func (t tx) enrolling(code string, now time.Time) (*User, error) {
	id, err := t.get(bEnroll, sum(code))
	if err != nil {
		return nil, err
	}
	var u *User
	if id != nil {
		if u, err = t.userByID(string(id)); err != nil {
			return nil, err
		}
	}
	switch {
	case u == nil || u.Enroll != sumHex(code):
		return nil, problem.Unauthorized("this enrollment link is not valid (used already, replaced, or never issued); ask an admin for a new one")
	case now.After(u.EnrollExpires):
		return nil, problem.Unauthorized("this enrollment link expired on %s; ask an admin for a new one", u.EnrollExpires.Format(time.RFC3339))
	case u.Disabled:
		return nil, problem.Unauthorized("%s is disabled", u.Name)
	}
	return u, nil
}

// EnrollmentUser names the user of an open enrollment code, for the
// enrollment page's greeting.
func (s *Service) EnrollmentUser(ctx context.Context, code string) (string, error) {
	var name string
	err := s.view(ctx, func(t tx) error {
		u, err := t.enrolling(code, s.now())
		if err == nil {
			name = u.Name
		}
		return err
	})
	return name, err
}

// factorSession loads a session that may add or change second factors:
// a full session, or one of stage enroll.
func (s *Service) factorSession(t tx, id string, now time.Time) (*Session, *User, error) {
	ss, u, err := s.loadSession(t, id, now)
	if err != nil {
		return nil, nil, err
	}
	if ss.Stage != StageFull && ss.Stage != StageEnroll {
		return nil, nil, problem.Forbidden("log in first")
	}
	if err := s.recent(ss, now); err != nil {
		return nil, nil, err
	}
	return ss, u, nil
}

// recent refuses a full session whose login is older than
// Config.RecentLogin: what would let whoever holds its cookie keep the
// account (a factor, recovery codes, a token) needs a login of now. A
// session in its enrolment has just been opened by the link.
func (s *Service) recent(ss *Session, now time.Time) error {
	if ss.Stage != StageFull || now.Sub(ss.Created) <= s.cfg.RecentLogin {
		return nil
	}
	return problem.Forbidden("this needs a recent login: you logged in at %s, more than %v ago; log out and log in again, then do it within %v",
		ss.Created.UTC().Format("15:04 UTC"), s.cfg.RecentLogin, s.cfg.RecentLogin)
}

// RecentLogin reports (a 403 saying to log in again) whether session id's
// login is too old for what would let whoever holds its cookie keep the
// account, such as creating a token: see Config.RecentLogin.
func (s *Service) RecentLogin(ctx context.Context, id string) error {
	now := s.now()
	return s.view(ctx, func(t tx) error {
		ss, _, err := s.loadSession(t, id, now)
		if err != nil {
			return err
		}
		return s.recent(ss, now)
	})
}

// factorAdded finishes the enrolment of a factor of u: the user's first
// factor comes with recovery codes, and an enroll session becomes a full
// one. It returns the session id to use from now on (id, or the new full
// session's) and the recovery codes to show once.
func (s *Service) factorAdded(t tx, id string, ss *Session, u *User, what string, m LoginMeta, now time.Time) (Login, error) {
	login := Login{SessionID: id, Stage: ss.Stage}
	if len(u.Recovery) == 0 {
		codes, hashes := newRecoveryCodes()
		u.Recovery, login.Recovery = hashes, codes
	}
	if err := t.putUser(u); err != nil {
		return Login{}, err
	}
	if err := t.audit(Principal{User: u.ID, Name: u.Name, Via: "session", Credential: handleOf(sessionKey(id))}, store.DecisionDone, what+" enrolled", m.Remote); err != nil {
		return Login{}, err
	}
	if ss.Stage == StageEnroll {
		full, err := s.promote(t, id, ss, u, what, m, now)
		if err != nil {
			return Login{}, err
		}
		login.SessionID, login.Stage = full, StageFull
		return login, nil
	}
	ss.TOTPPending, ss.Ceremony, ss.CeremonyKind = "", nil, ""
	return login, t.putJSON(bSessions, sessionKey(id), ss)
}

// TOTPOffer is a new TOTP secret offered to a person for their
// authenticator app, until they confirm it with a code.
type TOTPOffer struct {
	Secret string // base32
	URL    string // otpauth://totp/...
}

// OfferTOTP makes a new TOTP secret for the session's user and keeps it
// in the session until ConfirmTOTP. The user's current app, if any,
// works until then.
func (s *Service) OfferTOTP(ctx context.Context, id string) (TOTPOffer, error) {
	now := s.now()
	var offer TOTPOffer
	err := s.update(ctx, func(t tx) error {
		ss, u, err := s.factorSession(t, id, now)
		if err != nil {
			return err
		}
		if u.Issuer != "" {
			return problem.Conflict("you log in through %s, which has its own second factor", u.Issuer)
		}
		key, err := s.newTOTPKey(u.Name)
		if err != nil {
			return err
		}
		ss.TOTPPending = key.URL()
		offer = TOTPOffer{Secret: key.Secret(), URL: key.URL()}
		return t.putJSON(bSessions, sessionKey(id), ss)
	})
	return offer, err
}

// pendingTOTPKey parses the otpauth:// URL of a session's pending TOTP
// secret. A URL that does not parse (a damaged record) is an error that
// does not quote it: its query is the secret, and the error is logged.
func pendingTOTPKey(raw string) (*otp.Key, error) {
	key, err := otp.NewKeyFromURL(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return nil, fmt.Errorf("accounts: the session's pending TOTP secret does not parse: %w", err)
	}
	return key, nil
}

// PendingTOTP returns the offer OfferTOTP keeps in the session, for the
// page that shows it again (after a wrong code).
func (s *Service) PendingTOTP(ctx context.Context, id string) (TOTPOffer, bool, error) {
	st, err := s.Session(ctx, id)
	if err != nil || st.TOTPPending == "" {
		return TOTPOffer{}, false, err
	}
	key, err := pendingTOTPKey(st.TOTPPending)
	if err != nil {
		return TOTPOffer{}, false, err
	}
	return TOTPOffer{Secret: key.Secret(), URL: key.URL()}, true, nil
}

// ConfirmTOTP checks a code of the offered secret and makes it the
// user's authenticator app, replacing the one before.
func (s *Service) ConfirmTOTP(ctx context.Context, id, code string, m LoginMeta) (Login, error) {
	now := s.now()
	var login Login
	err := s.update(ctx, func(t tx) error {
		login = Login{}
		ss, u, err := s.factorSession(t, id, now)
		if err != nil {
			return err
		}
		if ss.TOTPPending == "" {
			return problem.Conflict("no authenticator app is being set up in this session; start again")
		}
		key, err := pendingTOTPKey(ss.TOTPPending)
		if err != nil {
			return err
		}
		step, ok, _ := totpStep(key.Secret(), code, now, 0)
		if !ok {
			return problem.BadRequest("wrong code: check the authenticator app's clock, and that it shows the account just added")
		}
		u.TOTP = &TOTPFactor{Secret: key.Secret(), Added: now.UTC(), LastStep: step}
		ss.TOTPPending = ""
		login, err = s.factorAdded(t, id, ss, u, "authenticator app", m, now)
		return err
	})
	return login, err
}

// BeginPasskeyRegistration starts the registration of a passkey for the
// session's user and returns the options for navigator.credentials.create,
// as JSON.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, id string) ([]byte, error) {
	if s.webauthn == nil {
		return nil, errNoPasskeys()
	}
	now := s.now()
	var out []byte
	err := s.update(ctx, func(t tx) error {
		ss, u, err := s.factorSession(t, id, now)
		if err != nil {
			return err
		}
		if len(u.Passkeys) >= MaxPasskeys {
			return problem.Conflict("you have %d passkeys, the most a user may have; remove one first", len(u.Passkeys))
		}
		creation, sd, err := s.webauthn.BeginRegistration(waUser{u}, webauthn.WithExclusions(webauthn.Credentials(waUser{u}.WebAuthnCredentials()).CredentialDescriptors()))
		if err != nil {
			return fmt.Errorf("accounts: begin passkey registration: %w", err)
		}
		if err := s.keepCeremony(ss, sd, "register"); err != nil {
			return err
		}
		if out, err = json.Marshal(creation); err != nil {
			return err
		}
		return t.putJSON(bSessions, sessionKey(id), ss)
	})
	return out, err
}

func (s *Service) keepCeremony(ss *Session, sd *webauthn.SessionData, kind string) error {
	raw, err := json.Marshal(sd)
	if err != nil {
		return fmt.Errorf("accounts: keep the passkey ceremony: %w", err)
	}
	ss.Ceremony, ss.CeremonyKind = raw, kind
	return nil
}

// ceremony returns the passkey ceremony of kind the session began.
func ceremony(ss *Session, kind string) (webauthn.SessionData, error) {
	var sd webauthn.SessionData
	if ss.CeremonyKind != kind || len(ss.Ceremony) == 0 {
		return sd, problem.Conflict("no passkey %s was begun in this session; start again", kind)
	}
	if err := json.Unmarshal(ss.Ceremony, &sd); err != nil {
		return sd, fmt.Errorf("accounts: read the passkey ceremony: %w", err)
	}
	return sd, nil
}

// maxCeremonyBody bounds a browser's answer to a passkey ceremony.
const maxCeremonyBody = 64 << 10

// FinishPasskeyRegistration checks the browser's answer to the
// registration begun in the session and adds the passkey, named name.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, id, name string, body []byte, m LoginMeta) (Login, error) {
	if s.webauthn == nil {
		return Login{}, errNoPasskeys()
	}
	if len(body) > maxCeremonyBody {
		return Login{}, problem.TooLarge("the passkey's answer has %d bytes; at most %d are taken", len(body), maxCeremonyBody)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return Login{}, problem.Wrap(http.StatusBadRequest, err, "the browser's answer is not a passkey registration")
	}
	if name == "" {
		name = "passkey"
	}
	now := s.now()
	var login Login
	err = s.update(ctx, func(t tx) error {
		login = Login{}
		ss, u, err := s.factorSession(t, id, now)
		if err != nil {
			return err
		}
		sd, err := ceremony(ss, "register")
		if err != nil {
			return err
		}
		ss.Ceremony, ss.CeremonyKind = nil, ""
		cred, err := s.webauthn.CreateCredential(waUser{u}, sd, parsed)
		if err != nil {
			return problem.Wrap(http.StatusBadRequest, err, "the passkey was not accepted")
		}
		u.Passkeys = append(u.Passkeys, Passkey{Name: problem.Printable(name, 64), Added: now.UTC(), Credential: *cred})
		login, err = s.factorAdded(t, id, ss, u, "passkey", m, now)
		return err
	})
	return login, err
}

// BeginPasskeyLogin starts the second step of a login with a passkey
// and returns the options for navigator.credentials.get, as JSON.
func (s *Service) BeginPasskeyLogin(ctx context.Context, id string) ([]byte, error) {
	if s.webauthn == nil {
		return nil, errNoPasskeys()
	}
	now := s.now()
	var out []byte
	err := s.update(ctx, func(t tx) error {
		ss, u, err := s.pendingStep(t, id, StageSecondFactor, now)
		if err != nil {
			return err
		}
		if len(u.Passkeys) == 0 {
			return problem.Conflict("you have no passkey; use your authenticator app or a recovery code")
		}
		assertion, sd, err := s.webauthn.BeginLogin(waUser{u})
		if err != nil {
			return fmt.Errorf("accounts: begin passkey login: %w", err)
		}
		if err := s.keepCeremony(ss, sd, "login"); err != nil {
			return err
		}
		if out, err = json.Marshal(assertion); err != nil {
			return err
		}
		return t.putJSON(bSessions, sessionKey(id), ss)
	})
	return out, err
}

// FinishPasskeyLogin checks the browser's answer to the passkey login
// begun in the session and completes the login.
func (s *Service) FinishPasskeyLogin(ctx context.Context, id string, body []byte, m LoginMeta) (Login, error) {
	if s.webauthn == nil {
		return Login{}, errNoPasskeys()
	}
	if len(body) > maxCeremonyBody {
		return Login{}, problem.TooLarge("the passkey's answer has %d bytes; at most %d are taken", len(body), maxCeremonyBody)
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return Login{}, problem.Wrap(http.StatusBadRequest, err, "the browser's answer is not a passkey login")
	}
	done, err := s.factorAttempt(ctx, id, m)
	if err != nil {
		return Login{}, err
	}
	defer done()
	now := s.now()
	var (
		login Login
		name  string
		cause error
		shown string
	)
	err = s.update(ctx, func(t tx) error {
		login, cause, shown = Login{}, nil, "the passkey was not accepted"
		ss, u, err := s.pendingStep(t, id, StageSecondFactor, now)
		if err != nil {
			return err
		}
		name = u.Name
		sd, err := ceremony(ss, "login")
		if err != nil {
			return err
		}
		ss.Ceremony, ss.CeremonyKind = nil, ""
		cred, err := s.webauthn.ValidateLogin(waUser{u}, sd, parsed)
		if err == nil {
			// go-webauthn only flags a counter that did not rise
			// (Authenticator.CloneWarning); the node refuses it.
			if got, last, back := counterWentBack(u, cred, parsed.Response.AuthenticatorData.Counter); back {
				err = fmt.Errorf("signature counter %d is not above %d, the last one seen: a copy of the passkey", got, last)
				shown = "the passkey's signature counter went back, as a copy of the passkey's would; use another factor, and remove this passkey if you did not copy it"
			}
		}
		if err != nil {
			cause = err
			return t.putJSON(bSessions, sessionKey(id), ss)
		}
		u.updatePasskey(cred, now.UTC())
		full, err := s.promote(t, id, ss, u, "passkey", m, now)
		login = Login{SessionID: full, Stage: StageFull}
		return err
	})
	if err != nil {
		return Login{}, err
	}
	if cause != nil {
		return Login{}, s.wrongFactor(ctx, id, name, m, shown, "passkey of "+name+" refused: "+cause.Error())
	}
	s.throttle.succeed(name)
	return login, nil
}

// RemovePasskey removes one of the session's user's passkeys, named by
// its id (PasskeyInfo.ID). A user the node requires a second factor of
// keeps at least one.
func (s *Service) RemovePasskey(ctx context.Context, id, passkey string, m LoginMeta) error {
	raw, err := base64.RawURLEncoding.DecodeString(passkey)
	if err != nil {
		return problem.BadRequest("that is not a passkey's id")
	}
	now := s.now()
	return s.update(ctx, func(t tx) error {
		ss, u, err := s.loadSession(t, id, now)
		if err != nil {
			return err
		}
		if ss.Stage != StageFull {
			return problem.Forbidden("log in first")
		}
		i := -1
		for j, p := range u.Passkeys {
			if bytes.Equal(p.Credential.ID, raw) {
				i = j
			}
		}
		if i < 0 {
			return problem.NotFound("you have no such passkey")
		}
		if s.SecondFactorRequired(u.Role) && u.TOTP == nil && len(u.Passkeys) == 1 {
			return problem.Conflict("this is your only second factor, which the node requires; add another first")
		}
		name := u.Passkeys[i].Name
		u.Passkeys = append(u.Passkeys[:i:i], u.Passkeys[i+1:]...)
		if err := t.putUser(u); err != nil {
			return err
		}
		return t.audit(principalOf(u, sessionKey(id)), store.DecisionDone, "passkey "+name+" removed", m.Remote)
	})
}

// NewRecoveryCodes replaces the session's user's recovery codes and
// returns the new ones, to be shown once.
func (s *Service) NewRecoveryCodes(ctx context.Context, id string, m LoginMeta) ([]string, error) {
	now := s.now()
	var codes []string
	err := s.update(ctx, func(t tx) error {
		ss, u, err := s.loadSession(t, id, now)
		if err != nil {
			return err
		}
		if ss.Stage != StageFull {
			return problem.Forbidden("log in first")
		}
		if err := s.recent(ss, now); err != nil {
			return err
		}
		if !u.hasSecondFactor() {
			return problem.Conflict("recovery codes stand in for a second factor; enrol one first")
		}
		var hashes []string
		codes, hashes = newRecoveryCodes()
		u.Recovery = hashes
		if err := t.putUser(u); err != nil {
			return err
		}
		return t.audit(principalOf(u, sessionKey(id)), store.DecisionDone, "new recovery codes", m.Remote)
	})
	return codes, err
}

// ChangePassword replaces the session's user's password, given the
// current one.
func (s *Service) ChangePassword(ctx context.Context, id, current, next string, m LoginMeta) error {
	if err := checkNewPassword(next); err != nil {
		return problem.BadRequest("%s", err.Error())
	}
	st, err := s.Session(ctx, id)
	if err != nil {
		return err
	}
	if st.Stage != StageFull {
		return problem.Forbidden("log in first")
	}
	done, err := s.throttle.attempt(st.UserName, m.Remote)
	if err != nil {
		return err
	}
	defer done()
	var old string
	if err := s.view(ctx, func(t tx) error {
		u, err := t.userByID(st.User)
		if err == nil && u != nil {
			old = u.Password
		}
		return err
	}); err != nil {
		return err
	}
	ok, _, err := s.hasher.verify(ctx, old, current)
	if err != nil {
		return err
	}
	if !ok {
		s.throttle.fail(st.UserName, m.Remote)
		return refusal(http.StatusForbidden, "the current password is wrong", "wrong current password for "+st.UserName)
	}
	hash, err := s.hasher.hash(ctx, next)
	if err != nil {
		return err
	}
	return s.update(ctx, func(t tx) error {
		u, err := t.userByID(st.User)
		if err != nil {
			return err
		}
		if u == nil || u.Password != old {
			return problem.Conflict("the password changed in the meantime; try again")
		}
		u.Password = hash
		if err := t.putUser(u); err != nil {
			return err
		}
		// Whoever else was logged in with the old password is not any
		// more.
		ended, err := t.endOtherSessions(u.ID, sessionKey(id))
		if err != nil {
			return err
		}
		return t.audit(principalOf(u, sessionKey(id)), store.DecisionDone, fmt.Sprintf("password changed, %d other sessions ended", ended), m.Remote)
	})
}
