package dashboard

import (
	"crypto/subtle"
	"encoding/json"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/problem"
)

// Logins. A person logs in with their name and password and, when they
// enrolled one or the node requires one of their role, a second factor
// (a code of their authenticator app, a passkey or a recovery code), or
// through the node's OpenID provider; a new person first sets a password
// and a second factor through the enrollment link an admin gave them.
// Package accounts decides every step; these handlers carry its forms
// and answers, keep the session id in an HttpOnly cookie (SameSite=Lax,
// so that the provider's redirect back carries the pre-login cookie;
// Secure when the node's URL is https) and protect every form with a
// CSRF token: a session's own once there is a session, before that (the
// login and enrollment forms) a random value in a cookie that the form
// must repeat, so that another site cannot log a browser in as someone
// else.

const (
	// loginCookie carries the login and enrollment forms' CSRF value;
	// ssoCookie the id of a login in progress at the OpenID provider.
	loginCookie = "vultron_login"
	ssoCookie   = "vultron_sso"
	// maxLoginForm bounds a login form's body.
	maxLoginForm = 8 << 10
)

// meta is what a login step is told of the request.
func (d *Dashboard) meta(r *http.Request) accounts.LoginMeta {
	return accounts.LoginMeta{Remote: d.cfg.ClientIP(r), Agent: r.UserAgent()}
}

func (d *Dashboard) secure() bool { return strings.HasPrefix(d.cfg.PublicURL, "https://") }

// setCookie sets an HttpOnly, SameSite=Lax cookie (Secure on https);
// maxAge < 0 deletes it.
func (d *Dashboard) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: path, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: d.secure()}
	if maxAge < 0 {
		c.MaxAge, c.Value = -1, ""
	} else if maxAge > 0 {
		c.MaxAge = int(maxAge.Seconds())
	}
	http.SetCookie(w, c)
}

// startSession gives the browser the session of a login step: a
// logged-in session's cookie lasts as long as the session may, and that
// of a step still awaited (a second factor, or one to set up) as long as
// the browser runs, since accounts ends such a session when its step is
// not taken in time (up to half an hour for one to set up) and the
// cookie must not end first.
func (d *Dashboard) startSession(w http.ResponseWriter, l accounts.Login) {
	var ttl time.Duration
	if l.Stage == accounts.StageFull {
		ttl = accounts.DefaultSessionMax
	}
	d.setCookie(w, SessionCookie, l.SessionID, "/", ttl)
}

// safeNext keeps a post-login redirect on this node: a path that starts
// with one slash and holds no space, control character or backslash.
// Browsers drop tabs and newlines from a URL and read a backslash as a
// slash, so any of those could turn the path into //host, another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c <= ' ' || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	return next
}

// loginCSRF returns the value the login and enrollment forms repeat,
// setting its cookie when the browser has none.
func (d *Dashboard) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	v := randomValue()
	d.setCookie(w, loginCookie, v, "/", time.Hour)
	return v
}

// checkLoginCSRF reports whether a login or enrollment form repeats its
// cookie's value.
func checkLoginCSRF(r *http.Request) bool {
	c, err := r.Cookie(loginCookie)
	return err == nil && len(c.Value) >= 32 && subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostForm.Get("csrf"))) == 1
}

// parseLoginForm reads a bounded login form.
func parseLoginForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxLoginForm)
	return r.ParseForm() == nil
}

// refusedStatus writes the status of a refused login step, with the
// throttle's Retry-After.
func refusedStatus(w http.ResponseWriter, err error) {
	problem.SetRetryAfter(w.Header(), err)
	w.WriteHeader(problem.Status(err))
}

// loginPage shows the login form.
func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if s := sessionOf(r); s != nil && s.state.Stage == accounts.StageFull {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	d.renderLogin(w, r, next, "")
}

func (d *Dashboard) renderLogin(w http.ResponseWriter, r *http.Request, next, msg string) {
	issuer, sso := d.cfg.Accounts.SSO()
	d.render(w, "login", map[string]any{"Next": next, "Error": msg, "LoginCSRF": d.loginCSRF(w, r), "SSO": sso, "Issuer": issuer})
}

// passwordLogin checks a name and password.
func (d *Dashboard) passwordLogin(w http.ResponseWriter, r *http.Request) {
	if !parseLoginForm(w, r) {
		d.ErrorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !checkLoginCSRF(r) {
		d.cfg.LoginRefused(r, problem.Forbidden("login form without its CSRF value"))
		w.WriteHeader(http.StatusForbidden)
		d.renderLogin(w, r, next, "The form's security token is missing or stale; try again.")
		return
	}
	l, err := d.cfg.Accounts.PasswordLogin(r.Context(), r.PostForm.Get("name"), r.PostForm.Get("password"), d.meta(r))
	if err != nil {
		d.cfg.LoginRefused(r, err)
		refusedStatus(w, err)
		d.renderLogin(w, r, next, sentence(err))
		return
	}
	d.startSession(w, l)
	if l.Stage == accounts.StageSecondFactor {
		http.Redirect(w, r, "/login/factor?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// sentence is what a page says of a refusal.
func sentence(err error) string {
	msg := problem.Message(err)
	if msg == "" {
		return ""
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}

// pending returns the request's session when it is at stage want.
func pending(r *http.Request, want accounts.Stage) *uiSession {
	s := sessionOf(r)
	if s == nil || s.state.Stage != want {
		return nil
	}
	return s
}

// factorPage asks for the second factor after the password.
func (d *Dashboard) factorPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	s := pending(r, accounts.StageSecondFactor)
	if s == nil {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		return
	}
	d.renderFactor(w, s, next, "")
}

func (d *Dashboard) renderFactor(w http.ResponseWriter, s *uiSession, next, msg string) {
	d.render(w, "factor", map[string]any{"Next": next, "Error": msg, "CSRF": s.csrf, "Name": s.state.UserName, "Link": s.state.Link,
		"TOTP": s.state.HasTOTP, "Passkeys": len(s.state.Passkeys) > 0, "Recovery": s.state.RecoveryLeft, "PasskeysOK": d.cfg.Accounts.Passkeys()})
}

// factorLogin checks a code of the authenticator app or a recovery code.
func (d *Dashboard) factorLogin(w http.ResponseWriter, r *http.Request) {
	if !parseLoginForm(w, r) {
		d.ErrorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	s := pending(r, accounts.StageSecondFactor)
	if s == nil {
		d.cfg.LoginRefused(r, problem.Unauthorized("second factor without a pending login"))
		w.WriteHeader(http.StatusUnauthorized)
		d.renderLogin(w, r, next, "Your login has ended; log in again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		d.ErrorPage(w, http.StatusForbidden, "The form's security token is missing or stale; reload the page and try again.")
		return
	}
	var (
		l   accounts.Login
		err error
	)
	if r.PostForm.Get("kind") == "recovery" {
		l, err = d.cfg.Accounts.SecondFactorRecovery(r.Context(), s.id, r.PostForm.Get("code"), d.meta(r))
	} else {
		l, err = d.cfg.Accounts.SecondFactorTOTP(r.Context(), s.id, r.PostForm.Get("code"), d.meta(r))
	}
	if err != nil {
		d.cfg.LoginRefused(r, err)
		refusedStatus(w, err)
		if _, gone := d.cfg.Accounts.Session(r.Context(), s.id); gone != nil && problem.Status(gone) < 500 {
			// The pending login ended (too many wrong codes, expired):
			// the password again. One the store could not read now is
			// not known to have ended: the code is asked for again.
			d.renderLogin(w, r, next, sentence(err))
			return
		}
		d.renderFactor(w, s, next, sentence(err))
		return
	}
	d.startSession(w, l)
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// ceremonyRequest checks a passkey ceremony's request (the session's
// CSRF token in X-CSRF-Token) and reads its bounded body.
func ceremonyRequest(w http.ResponseWriter, r *http.Request, s *uiSession) ([]byte, error) {
	if s == nil {
		return nil, problem.Unauthorized("there is no login or session for this step; log in again")
	}
	if subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(s.csrf)) != 1 {
		return nil, problem.Forbidden("the request's security token is missing or stale; reload the page")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		return nil, problem.TooLarge("the passkey's answer is larger than 64 KiB")
	}
	return body, nil
}

// writeCeremony answers a passkey ceremony's request with JSON.
func (d *Dashboard) writeCeremony(w http.ResponseWriter, r *http.Request, out []byte, err error) {
	w.Header().Set("Cache-Control", "no-store")
	if err != nil {
		d.cfg.LoginRefused(r, err)
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
}

// passkeyLoginBegin answers the options of a passkey login.
func (d *Dashboard) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	s := pending(r, accounts.StageSecondFactor)
	_, err := ceremonyRequest(w, r, s)
	var out []byte
	if err == nil {
		out, err = d.cfg.Accounts.BeginPasskeyLogin(r.Context(), s.id)
	}
	d.writeCeremony(w, r, out, err)
}

// passkeyLoginFinish checks the browser's answer and completes the login.
func (d *Dashboard) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	s := pending(r, accounts.StageSecondFactor)
	body, err := ceremonyRequest(w, r, s)
	var out []byte
	if err == nil {
		var l accounts.Login
		if l, err = d.cfg.Accounts.FinishPasskeyLogin(r.Context(), s.id, body, d.meta(r)); err == nil {
			d.startSession(w, l)
			out, err = json.Marshal(map[string]string{"redirect": safeNext(r.URL.Query().Get("next"))})
		}
	}
	d.writeCeremony(w, r, out, err)
}

// ssoBegin sends the browser to the OpenID provider.
func (d *Dashboard) ssoBegin(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	to, prelogin, err := d.cfg.Accounts.BeginSSO(r.Context(), next, d.meta(r))
	if err != nil {
		d.cfg.LoginRefused(r, err)
		refusedStatus(w, err)
		d.renderLogin(w, r, next, sentence(err))
		return
	}
	d.setCookie(w, ssoCookie, prelogin, accounts.CallbackPath, 10*time.Minute)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// ssoCallback completes a login at the OpenID provider.
func (d *Dashboard) ssoCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	prelogin := ""
	if c, err := r.Cookie(ssoCookie); err == nil {
		prelogin = c.Value
	}
	d.setCookie(w, ssoCookie, "", accounts.CallbackPath, -1)
	if e := q.Get("error"); e != "" {
		err := problem.Unauthorized("the identity provider refused the login: %s", problem.Printable(e+" "+q.Get("error_description"), 200))
		d.cfg.LoginRefused(r, err)
		refusedStatus(w, err)
		d.renderLogin(w, r, "/", sentence(err))
		return
	}
	l, next, err := d.cfg.Accounts.FinishSSO(r.Context(), prelogin, q.Get("state"), q.Get("code"), d.meta(r))
	if err != nil {
		d.cfg.LoginRefused(r, err)
		refusedStatus(w, err)
		d.renderLogin(w, r, "/", sentence(err))
		return
	}
	d.startSession(w, l)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

// logout ends the session.
func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, s *uiSession) {
	if err := d.cfg.Accounts.Logout(r.Context(), s.id, d.cfg.ClientIP(r)); err != nil {
		d.cfg.Logger.Error().Err(err).Msg("dashboard: end session")
		d.ErrorPage(w, http.StatusInternalServerError, "The session could not be ended; try again.")
		return
	}
	d.setCookie(w, SessionCookie, "", "/", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// enrollPage shows the form of an enrollment link: the person's new
// password.
func (d *Dashboard) enrollPage(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("code")
	name, err := d.cfg.Accounts.EnrollmentUser(r.Context(), code)
	if err != nil {
		refusedStatus(w, err)
		d.render(w, "enroll", map[string]any{"Error": sentence(err)})
		return
	}
	d.render(w, "enroll", map[string]any{"Code": code, "Name": name, "LoginCSRF": d.loginCSRF(w, r), "Min": accounts.MinPasswordLength})
}

// enroll sets the person's password and opens their session: one that
// awaits a factor to add, one that awaits one of the account's factors,
// or a full one.
func (d *Dashboard) enroll(w http.ResponseWriter, r *http.Request) {
	if !parseLoginForm(w, r) {
		d.ErrorPage(w, http.StatusBadRequest, "The form could not be read.")
		return
	}
	f := r.PostForm
	code := f.Get("code")
	again := func(status int, msg string) {
		w.WriteHeader(status)
		name, _ := d.cfg.Accounts.EnrollmentUser(r.Context(), code)
		d.render(w, "enroll", map[string]any{"Code": code, "Name": name, "LoginCSRF": d.loginCSRF(w, r), "Min": accounts.MinPasswordLength, "Error": msg})
	}
	if !checkLoginCSRF(r) {
		d.cfg.LoginRefused(r, problem.Forbidden("enrollment form without its CSRF value"))
		again(http.StatusForbidden, "The form's security token is missing or stale; try again.")
		return
	}
	if f.Get("password") != f.Get("password2") {
		again(http.StatusBadRequest, "The two passwords differ.")
		return
	}
	l, err := d.cfg.Accounts.Enroll(r.Context(), code, f.Get("password"), d.meta(r))
	if err != nil {
		d.cfg.LoginRefused(r, err)
		if ra := problem.RetryAfter(err); ra > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ra/time.Second)+1))
		}
		again(problem.Status(err), sentence(err))
		return
	}
	d.startSession(w, l)
	switch l.Stage {
	case accounts.StageEnroll:
		http.Redirect(w, r, "/enroll/factor", http.StatusSeeOther)
	case accounts.StageSecondFactor:
		// The account has second factors: the link set the password, and
		// one of them is asked, as after a login's password.
		http.Redirect(w, r, "/login/factor?next=%2F", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/", http.StatusSeeOther)
	}
}

// factorSession returns the request's session when it may add second
// factors: one of stage enroll, or a logged-in one.
func factorSession(r *http.Request) *uiSession {
	s := sessionOf(r)
	if s == nil || (s.state.Stage != accounts.StageEnroll && s.state.Stage != accounts.StageFull) {
		return nil
	}
	return s
}

// enrollFactorPage lets a person who set their password add the second
// factor the node requires.
func (d *Dashboard) enrollFactorPage(w http.ResponseWriter, r *http.Request) {
	s := factorSession(r)
	if s == nil {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if s.state.Stage == accounts.StageFull {
		http.Redirect(w, r, "/ui/account", http.StatusSeeOther)
		return
	}
	offer, offered, err := d.cfg.Accounts.PendingTOTP(r.Context(), s.id)
	if err != nil {
		problem.SetRetryAfter(w.Header(), err)
		d.ErrorPage(w, problem.Status(err), "The enrollment could not be read: "+problem.Message(err))
		return
	}
	flash, ok := d.takeFlash(s)
	d.render(w, "enroll", map[string]any{"Factor": true, "Name": s.state.UserName, "CSRF": s.csrf, "Offer": offer, "Offered": offered,
		"Flash": flash, "FlashOK": ok, "PasskeysOK": d.cfg.Accounts.Passkeys()})
}

// back is where a factor's form returns to: the enrollment page, or the
// account page.
func back(s *uiSession) string {
	if s.state.Stage == accounts.StageEnroll {
		return "/enroll/factor"
	}
	return "/ui/account"
}

// totpFactor offers a new authenticator app's secret, or confirms it with
// a code.
func (d *Dashboard) totpFactor(w http.ResponseWriter, r *http.Request) {
	s := factorSession(r)
	if s == nil {
		d.ErrorPage(w, http.StatusUnauthorized, "Your session has ended; log in again.")
		return
	}
	if !parseLoginForm(w, r) || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrf)) != 1 {
		d.ErrorPage(w, http.StatusForbidden, "The form's security token is missing or stale; reload the page and try again.")
		return
	}
	if r.PostForm.Get("action") == "offer" {
		if _, err := d.cfg.Accounts.OfferTOTP(r.Context(), s.id); err != nil {
			d.refuse(r, s, err, "")
		}
		http.Redirect(w, r, back(s)+"#totp", http.StatusSeeOther)
		return
	}
	l, err := d.cfg.Accounts.ConfirmTOTP(r.Context(), s.id, r.PostForm.Get("code"), d.meta(r))
	if err != nil {
		d.refuse(r, s, err, "")
		http.Redirect(w, r, back(s)+"#totp", http.StatusSeeOther)
		return
	}
	d.factorDone(w, r, l, "Your authenticator app is set up.")
}

// factorDone gives the browser the session after a factor was added and
// shows the new recovery codes once, on the account page.
func (d *Dashboard) factorDone(w http.ResponseWriter, r *http.Request, l accounts.Login, said string) {
	d.startSession(w, l)
	err := d.cfg.Accounts.UpdateSession(r.Context(), l.SessionID, func(st *accounts.Session) {
		st.Flash, st.FlashOK, st.ShowRecovery = said, true, l.Recovery
	})
	if err != nil {
		d.cfg.Logger.Warn().Err(err).Msg("dashboard: keep the new recovery codes for the next page")
	}
	http.Redirect(w, r, "/ui/account", http.StatusSeeOther)
}

// passkeyRegisterBegin answers the options of a passkey's registration.
func (d *Dashboard) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request) {
	s := factorSession(r)
	_, err := ceremonyRequest(w, r, s)
	var out []byte
	if err == nil {
		out, err = d.cfg.Accounts.BeginPasskeyRegistration(r.Context(), s.id)
	}
	d.writeCeremony(w, r, out, err)
}

// passkeyRegisterFinish adds the passkey the browser made.
func (d *Dashboard) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request) {
	s := factorSession(r)
	body, err := ceremonyRequest(w, r, s)
	var out []byte
	if err == nil {
		var l accounts.Login
		if l, err = d.cfg.Accounts.FinishPasskeyRegistration(r.Context(), s.id, r.URL.Query().Get("name"), body, d.meta(r)); err == nil {
			d.startSession(w, l)
			if err = d.cfg.Accounts.UpdateSession(r.Context(), l.SessionID, func(st *accounts.Session) {
				st.Flash, st.FlashOK, st.ShowRecovery = "Your passkey is added.", true, l.Recovery
			}); err == nil {
				out, err = json.Marshal(map[string]string{"redirect": "/ui/account"})
			}
		}
	}
	d.writeCeremony(w, r, out, err)
}

// totpImage answers the QR code of the authenticator app's secret being
// set up in the session, for a phone's camera.
func (d *Dashboard) totpImage(w http.ResponseWriter, r *http.Request) {
	s := factorSession(r)
	if s == nil {
		d.ErrorPage(w, http.StatusUnauthorized, "Your session has ended; log in again.")
		return
	}
	offer, ok, err := d.cfg.Accounts.PendingTOTP(r.Context(), s.id)
	if err != nil {
		// The session ended since it was checked (401), or the store
		// cannot serve (503, with Retry-After when that passes).
		problem.SetRetryAfter(w.Header(), err)
		d.ErrorPage(w, problem.Status(err), "The authenticator app being set up could not be read: "+problem.Message(err))
		return
	}
	if !ok {
		d.ErrorPage(w, http.StatusNotFound, "No authenticator app is being set up.")
		return
	}
	key, err := otp.NewKeyFromURL(offer.URL)
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The QR code could not be drawn.")
		return
	}
	pic, err := key.Image(240, 240)
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The QR code could not be drawn.")
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	if err := png.Encode(w, pic); err != nil {
		d.cfg.Logger.Warn().Err(err).Msg("dashboard: write the TOTP QR code")
	}
}

// accountPage shows the person's account: their factors, sessions and
// tokens, and the recovery codes or token just made, once.
func (d *Dashboard) accountPage(w http.ResponseWriter, r *http.Request, s *uiSession) {
	d.renderAccount(w, r, s, nil, "")
}

func (d *Dashboard) renderAccount(w http.ResponseWriter, r *http.Request, s *uiSession, codes []string, token string) {
	ctx := r.Context()
	if len(codes) == 0 && len(s.state.ShowRecovery) > 0 {
		codes = s.state.ShowRecovery
		if err := d.cfg.Accounts.UpdateSession(ctx, s.id, func(st *accounts.Session) { st.ShowRecovery = nil }); err != nil {
			d.cfg.Logger.Warn().Err(err).Msg("dashboard: clear the shown recovery codes")
		}
	}
	sessions, err := d.cfg.Accounts.Sessions(ctx, s.principal, "")
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The account could not be read: "+problem.Message(err))
		return
	}
	tokens, err := d.cfg.Accounts.Tokens(ctx, s.principal, "")
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The account could not be read: "+problem.Message(err))
		return
	}
	offer, offered, err := d.cfg.Accounts.PendingTOTP(ctx, s.id)
	if err != nil {
		d.ErrorPage(w, http.StatusInternalServerError, "The account could not be read: "+problem.Message(err))
		return
	}
	var scopes []accounts.Scope
	for _, sc := range accounts.AllScopes() {
		if s.principal.Role >= sc.MinRole() {
			scopes = append(scopes, sc)
		}
	}
	flash, ok := d.takeFlash(s)
	d.render(w, "account", map[string]any{"Me": s.principal, "State": s.state, "HasTOTP": s.state.HasTOTP, "CSRF": s.csrf, "Sessions": sessions, "Tokens": tokens,
		"Codes": codes, "NewToken": token, "Offer": offer, "Offered": offered, "Scopes": scopes, "Flash": flash, "FlashOK": ok,
		"Min": accounts.MinPasswordLength, "PasskeysOK": d.cfg.Accounts.Passkeys()})
}

// accountAction carries out a form of the account page.
func (d *Dashboard) accountAction(w http.ResponseWriter, r *http.Request, s *uiSession) {
	ctx, f, m := r.Context(), r.PostForm, d.meta(r)
	var (
		err   error
		said  string
		codes []string
	)
	switch f.Get("action") {
	case "password":
		if f.Get("password") != f.Get("password2") {
			err = problem.BadRequest("the two new passwords differ")
		} else if err = d.cfg.Accounts.ChangePassword(ctx, s.id, f.Get("current"), f.Get("password"), m); err == nil {
			said = "Your password is changed; your other sessions ended."
		}
	case "recovery":
		if codes, err = d.cfg.Accounts.NewRecoveryCodes(ctx, s.id, m); err == nil {
			d.renderAccount(w, r, s, codes, "")
			return
		}
	case "remove-passkey":
		if err = d.cfg.Accounts.RemovePasskey(ctx, s.id, f.Get("passkey"), m); err == nil {
			said = "The passkey is removed."
		}
	case "revoke-session":
		if err = d.cfg.Accounts.RevokeSession(ctx, s.principal, "", f.Get("handle"), m.Remote); err == nil {
			said = "The session is ended."
		}
	case "revoke-token":
		if err = d.cfg.Accounts.RevokeToken(ctx, s.principal, f.Get("token"), m.Remote); err == nil {
			said = "The token is revoked."
		}
	case "create-token":
		var (
			scopes accounts.ScopeSet
			ttl    time.Duration
		)
		if scopes, err = accounts.ParseScopes(strings.Join(f["scope"], ",")); err != nil {
			err = problem.BadRequest("%s", err.Error())
		} else if err = d.cfg.Accounts.RecentLogin(ctx, s.id); err != nil {
			// A token outlives the session: one made from a cookie taken
			// from a browser left logged in would keep the account.
		} else if ttl, err = accounts.ParseTTL(f.Get("expires")); err != nil {
			err = problem.BadRequest("%s", err.Error())
		} else {
			var secret string
			if secret, _, err = d.cfg.Accounts.CreateToken(ctx, s.principal, accounts.TokenSpec{Scopes: scopes, Expires: ttl, Name: f.Get("name")}, m.Remote); err == nil {
				d.renderAccount(w, r, s, nil, secret)
				return
			}
		}
	default:
		err = problem.BadRequest("the form names no action this page knows")
	}
	if err != nil {
		d.refuse(r, s, err, "")
	} else {
		d.setFlash(s, said, true)
	}
	http.Redirect(w, r, "/ui/account", http.StatusSeeOther)
}

// randomValue returns 256 random bits in base64url.
func randomValue() string { return accounts.RandomID() }
