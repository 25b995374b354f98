package accounts

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Single sign-on through an OpenID provider: the authorization code flow
// with PKCE (S256), a state and a nonce, with golang.org/x/oauth2 for the
// flow and github.com/coreos/go-oidc for discovery and the ID token's
// checks (signature by the provider's published keys, issuer, audience =
// the client id, expiry). Each login begins with a pre-login record in the
// store, under the SHA-256 of a random id the browser keeps in a cookie:
// the state, nonce and PKCE verifier it sent, the page to return to, and
// an expiry ten minutes on. The callback is taken only with that cookie,
// that state and, in the ID token, that nonce, and uses the record up
// before it asks the provider anything, so that a callback cannot be
// replayed or carried to another browser.
//
// The role comes from a claim of the ID token (Config.RoleClaim, such as
// groups) through the node's role map ('psirt-admins=admin,psirt=analyst';
// of several mapped values the highest role wins). A person is created as
// a user at the first login and their role set from the claim at every
// login, so that the provider's groups stay the truth; an admin may still
// disable such a user, which the node checks before the provider's word,
// or restrict an analyst's actors, which a login keeps. A person whose
// claim maps to no role is refused and no user is created. The provider
// is asked for its discovery document once the node serves (CheckSSO,
// which only warns) and at the first login until it answers, so a node
// starts while its provider is down.

// OIDCConfig is the node's OpenID provider.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer/.well-known/openid-configuration.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RoleClaim names the ID token claim that carries the person's
	// groups or roles; default "groups".
	RoleClaim string
	// RoleMap maps the claim's values to roles.
	RoleMap map[string]Role
	// HTTPClient talks to the provider; default a client with a 10 s
	// timeout. The operator names the provider, so it may be on a private
	// address.
	HTTPClient *http.Client
}

// DefaultSSOTokenStanding is how long the tokens of a user of single
// sign-on keep working after the user's last login through the provider
// (Config.SSOTokenStanding). The node hears that the provider shut a
// person out only at a login, and a person who left does not log in
// again: without a bound, the tokens they made (up to MaxTokenTTL) would
// outlive their place at the provider.
const DefaultSSOTokenStanding = 30 * 24 * time.Hour

// ssoStanding returns how long an SSO user's tokens work after a login;
// also on a node that no longer has single sign-on, where such a user
// cannot log in to renew them.
func (s *Service) ssoStanding() time.Duration {
	if s.cfg.SSOTokenStanding > 0 {
		return s.cfg.SSOTokenStanding
	}
	return DefaultSSOTokenStanding
}

// checkSSOStanding refuses a token of u, a user of single sign-on who has
// not logged in through the provider within the standing, with 401 and
// what to do.
func (s *Service) checkSSOStanding(u *User, tok Token, now time.Time) error {
	standing := s.ssoStanding()
	if u.Issuer == "" || now.Sub(u.LastLogin) <= standing {
		return nil
	}
	todo := "log in through single sign-on to this node's dashboard, and its tokens work again"
	switch {
	case s.oidc == nil:
		todo = "this node no longer has single sign-on, so ask its admin"
	case s.oidc.cfg.Issuer != u.Issuer:
		todo = "this node's single sign-on is now through " + s.oidc.cfg.Issuer + ", whose logins are users of their own, so ask its admin"
	}
	return problem.Unauthorized("token %s belongs to %s, who has not logged in through %s for %s (the tokens of a user of single sign-on work for %s after a login there, so that they end with the person's place at the provider); %s",
		tok.ID, u.Name, u.Issuer, days(now.Sub(u.LastLogin)), days(standing), todo)
}

// days says d in whole days ("30 days", "1 day"), or as a duration when
// it is shorter than a day.
func days(d time.Duration) string {
	n := int(d / (24 * time.Hour))
	switch {
	case n == 1:
		return "1 day"
	case n > 1:
		return fmt.Sprintf("%d days", n)
	}
	return d.Round(time.Minute).String()
}

// ParseRoleMap parses 'VALUE=ROLE,VALUE=ROLE', such as
// 'psirt-admins=admin,psirt=analyst'.
func ParseRoleMap(s string) (map[string]Role, error) {
	out := map[string]Role{}
	for _, pair := range strings.Split(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		value, role, ok := strings.Cut(pair, "=")
		if !ok || strings.TrimSpace(value) == "" {
			return nil, fmt.Errorf("role map entry %q is not VALUE=ROLE", pair)
		}
		r, err := ParseRole(role)
		if err != nil {
			return nil, fmt.Errorf("role map entry %q: %w", pair, err)
		}
		out[strings.TrimSpace(value)] = r
	}
	if len(out) == 0 {
		return nil, errors.New("the role map is empty: give VALUE=ROLE pairs, such as psirt-admins=admin,psirt=analyst")
	}
	return out, nil
}

const (
	// ssoTTL bounds a login at the provider.
	ssoTTL = 10 * time.Minute
	// preLoginsPerIP bounds the logins one client IP begins at the
	// provider within ssoTTL (throttle.begin).
	preLoginsPerIP = 20
	// CallbackPath is where the provider sends the browser back.
	CallbackPath = "/login/sso/callback"
)

type oidcClient struct {
	cfg      OIDCConfig
	redirect string
	now      func() time.Time

	mu       sync.Mutex
	oauth    *oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// CheckIssuer returns an error that names issuer unless it is an http(s)
// URL with a host, as an OpenID provider's issuer is.
func CheckIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("OIDC issuer %q is not an http(s) URL such as https://idp.example/realms/psirt", issuer)
	}
	return nil
}

func newOIDCClient(cfg OIDCConfig, publicURL string, now func() time.Time) (*oidcClient, error) {
	if err := CheckIssuer(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, errors.New("accounts: OIDC needs a client id and a client secret")
	}
	if len(cfg.RoleMap) == 0 {
		return nil, errors.New("accounts: OIDC needs a role map, or nobody could log in")
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "groups"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return &oidcClient{cfg: cfg, redirect: publicURL + CallbackPath, now: now}, nil
}

// ready fetches the provider's discovery document once.
func (c *oidcClient) ready(ctx context.Context) (*oauth2.Config, *oidc.IDTokenVerifier, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.oauth != nil {
		return c.oauth, c.verifier, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, c.cfg.HTTPClient), c.cfg.Issuer)
	if err != nil {
		return nil, nil, problem.Wrap(http.StatusBadGateway, err, "the identity provider "+c.cfg.Issuer+" cannot be reached; try again later")
	}
	scopes := []string{oidc.ScopeOpenID, "profile", "email"}
	if c.cfg.RoleClaim == "groups" {
		scopes = append(scopes, "groups")
	}
	c.oauth = &oauth2.Config{ClientID: c.cfg.ClientID, ClientSecret: c.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: c.redirect, Scopes: scopes}
	c.verifier = p.Verifier(&oidc.Config{ClientID: c.cfg.ClientID, Now: c.now})
	return c.oauth, c.verifier, nil
}

// CheckSSO asks the node's OpenID provider for its discovery document,
// as the first login would, and returns why it cannot be had (an error
// that names the provider); nil on a node without single sign-on. The
// document, once had, is kept for the logins.
func (s *Service) CheckSSO(ctx context.Context) error {
	if s.oidc == nil {
		return nil
	}
	_, _, err := s.oidc.ready(ctx)
	return err
}

// pendingSSO is a login in progress at the provider.
type pendingSSO struct {
	State    string    `json:"state"`
	Nonce    string    `json:"nonce"`
	Verifier string    `json:"verifier"`
	Next     string    `json:"next,omitempty"`
	Expires  time.Time `json:"expires"`
}

// SSO reports whether the node logs people in through an OpenID
// provider, and names it.
func (s *Service) SSO() (issuer string, ok bool) {
	if s.oidc == nil {
		return "", false
	}
	return s.oidc.cfg.Issuer, true
}

// BeginSSO starts a login at the provider: it stores a pre-login record
// and returns the provider's URL to send the browser to and the
// pre-login id to keep in the browser's cookie. next is where the
// browser goes after the login. A client IP begins at most
// preLoginsPerIP logins within ssoTTL; beyond, 429 with Retry-After.
func (s *Service) BeginSSO(ctx context.Context, next string, m LoginMeta) (authURL, prelogin string, err error) {
	if s.oidc == nil {
		return "", "", problem.NotFound("this node has no single sign-on")
	}
	oauth, _, err := s.oidc.ready(ctx)
	if err != nil {
		return "", "", err
	}
	if err := s.throttle.begin(m.Remote, preLoginsPerIP, ssoTTL); err != nil {
		return "", "", err
	}
	now := s.now().UTC()
	rec := pendingSSO{State: randomString(24), Nonce: randomString(24), Verifier: oauth2.GenerateVerifier(), Next: next, Expires: now.Add(ssoTTL)}
	prelogin = randomString(32)
	err = s.update(ctx, func(t tx) error {
		if err := t.prunePending(now); err != nil {
			return err
		}
		if err := t.putJSON(bPending, sum(prelogin), rec); err != nil {
			return err
		}
		return t.put(bPendingDue, append(timeKey(rec.Expires), sum(prelogin)...), none)
	})
	if err != nil {
		return "", "", fmt.Errorf("accounts: begin single sign-on: %w", err)
	}
	return oauth.AuthCodeURL(rec.State, oidc.Nonce(rec.Nonce), oauth2.S256ChallengeOption(rec.Verifier)), prelogin, nil
}

// prunePending removes the expired pre-logins and, while MaxPending
// others are kept, the one that expires first (the login begun longest
// ago, the likeliest to have been given up), reading the expiry index,
// which holds at most MaxPending keys past the expired ones.
func (t tx) prunePending(now time.Time) error {
	var keys [][]byte
	var first []byte
	n := 0
	if err := t.rangePrefix(bPendingDue, nil, func(k, _ []byte) (bool, error) {
		n++
		if string(k[:8]) <= string(timeKey(now)) {
			keys = append(keys, append([]byte(nil), k...))
		} else if first == nil {
			first = append([]byte(nil), k...)
		}
		return true, nil
	}); err != nil {
		return err
	}
	if first != nil && n-len(keys) >= MaxPending {
		keys = append(keys, first)
	}
	for _, k := range keys {
		if err := t.del(bPending, k[8:]); err != nil {
			return err
		}
		if err := t.del(bPendingDue, k); err != nil {
			return err
		}
	}
	return nil
}

// takePending removes the pre-login with the given id and returns it.
func (t tx) takePending(prelogin string) (*pendingSSO, error) {
	var rec pendingSSO
	ok, err := t.getJSON(bPending, sum(prelogin), &rec)
	if err != nil || !ok {
		return nil, err
	}
	if err := t.del(bPending, sum(prelogin)); err != nil {
		return nil, err
	}
	return &rec, t.del(bPendingDue, append(timeKey(rec.Expires), sum(prelogin)...))
}

// ssoClaims are the ID token's claims the node reads.
type ssoClaims struct {
	Subject           string `json:"sub"`
	Email             string `json:"email"`
	Name              string `json:"name"`
	PreferredUsername string `json:"preferred_username"`
}

// FinishSSO completes a login at the provider: the callback's state must
// be the pre-login's (whose id the browser's cookie holds), the code is
// exchanged with the PKCE verifier, and the ID token must verify and
// carry the pre-login's nonce and a claim that maps to a role. It opens a
// full session for the person's user, created on their first login, and
// returns it with the page to go to.
func (s *Service) FinishSSO(ctx context.Context, prelogin, state, code string, m LoginMeta) (Login, string, error) {
	if s.oidc == nil {
		return Login{}, "", problem.NotFound("this node has no single sign-on")
	}
	oauth, verifier, err := s.oidc.ready(ctx)
	if err != nil {
		return Login{}, "", err
	}
	now := s.now().UTC()
	var rec *pendingSSO
	if prelogin != "" {
		err = s.update(ctx, func(t tx) error {
			var err error
			rec, err = t.takePending(prelogin)
			return err
		})
		if err != nil {
			return Login{}, "", fmt.Errorf("accounts: single sign-on: %w", err)
		}
	}
	switch {
	case rec == nil:
		return Login{}, "", refusal(http.StatusUnauthorized, "this login did not begin in this browser, or was used already; log in again", "no pre-login for the callback's cookie")
	case now.After(rec.Expires):
		return Login{}, "", refusal(http.StatusUnauthorized, "the login at the identity provider took too long; log in again", "pre-login expired")
	case subtle.ConstantTimeCompare([]byte(state), []byte(rec.State)) != 1:
		return Login{}, "", refusal(http.StatusUnauthorized, "the identity provider's answer does not belong to this login (state mismatch); log in again", "state mismatch")
	case code == "":
		return Login{}, "", refusal(http.StatusUnauthorized, "the identity provider sent no authorization code; log in again", "no code in the callback")
	}
	hctx := oidc.ClientContext(ctx, s.oidc.cfg.HTTPClient)
	tok, err := oauth.Exchange(hctx, code, oauth2.VerifierOption(rec.Verifier))
	if err != nil {
		return Login{}, "", problem.Wrap(http.StatusUnauthorized, err, "the identity provider refused the login's code; log in again")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Login{}, "", refusal(http.StatusUnauthorized, "the identity provider sent no ID token", "token response without id_token")
	}
	issuer, claims, role, err := s.oidc.checkIDToken(hctx, verifier, raw, rec.Nonce)
	if err != nil && role == RoleNone && issuer != "" {
		// A verified token of a person the provider maps to no role any
		// more (they left the team): the sessions and tokens of that
		// person's user end with the refusal, since the node hears of it
		// only at a login.
		if werr := s.update(ctx, func(t tx) error { return t.roleWithdrawn(issuer, claims.Subject, m.Remote) }); werr != nil {
			return Login{}, "", werr
		}
	}
	if err != nil {
		return Login{}, "", err
	}
	var login Login
	err = s.update(ctx, func(t tx) error {
		login = Login{}
		u, err := t.ssoUser(issuer, claims, role, now)
		if err != nil {
			return err
		}
		u.LastLogin = now
		if err := t.putUser(u); err != nil {
			return err
		}
		id, err := t.createSession(u, Session{Stage: StageFull, Method: "sso"}, m, now, s.cfg.SessionMax)
		if err != nil {
			return err
		}
		login = Login{SessionID: id, Stage: StageFull}
		return t.audit(principalOf(u, sessionKey(id)), store.DecisionAccepted, "logged in through "+issuer+" as "+u.Role.String(), m.Remote)
	})
	if err != nil {
		return Login{}, "", err
	}
	return login, rec.Next, nil
}

// checkIDToken verifies a raw ID token (go-oidc: the provider's
// signature, the issuer, the audience = the client id, the expiry),
// compares its nonce with the pre-login's, and maps its role claim to a
// role; a person with no mapped role is refused with 403.
func (c *oidcClient) checkIDToken(ctx context.Context, verifier *oidc.IDTokenVerifier, raw, nonce string) (string, ssoClaims, Role, error) {
	var claims ssoClaims
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return "", claims, RoleNone, problem.Wrap(http.StatusUnauthorized, err, "the identity provider's ID token was refused (issuer, audience, signature or expiry)")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return "", claims, RoleNone, refusal(http.StatusUnauthorized, "the ID token does not belong to this login (nonce mismatch); log in again", "nonce mismatch")
	}
	var all map[string]json.RawMessage
	if err := idt.Claims(&claims); err != nil {
		return "", claims, RoleNone, problem.Wrap(http.StatusBadGateway, err, "the ID token's claims cannot be read")
	}
	if err := idt.Claims(&all); err != nil {
		return "", claims, RoleNone, problem.Wrap(http.StatusBadGateway, err, "the ID token's claims cannot be read")
	}
	claims.Subject = idt.Subject
	values := claimValues(all[c.cfg.RoleClaim])
	role := c.role(values)
	if role == RoleNone {
		// The issuer and the claims go with the refusal: a user the
		// provider maps to no role any more loses what it held.
		return idt.Issuer, claims, RoleNone, refusal(http.StatusForbidden, fmt.Sprintf("your account at %s has no role on this node: none of its %s (%s) is mapped to one; ask this node's admin",
			idt.Issuer, c.cfg.RoleClaim, problem.Clip(strings.Join(values, ", "), 200)), "no mapped role for "+idt.Subject)
	}
	return idt.Issuer, claims, role, nil
}

// role maps a claim's values to the highest role the map gives them.
func (c *oidcClient) role(values []string) Role {
	r := RoleNone
	for _, v := range values {
		r = max(r, c.cfg.RoleMap[v])
	}
	return r
}

// claimValues reads a claim that is a string or a list of strings.
func claimValues(raw json.RawMessage) []string {
	var one string
	if json.Unmarshal(raw, &one) == nil && one != "" {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		sort.Strings(many)
		return slices.Compact(many)
	}
	return nil
}

// subjectKey is the key under which bSubjects maps a person at a provider
// to its user.
func subjectKey(issuer, subject string) []byte { return []byte(issuer + "\n" + subject) }

// roleWithdrawn ends the sessions and revokes the tokens of the user that
// the provider issuer's subject is, if there is one, and audits it.
func (t tx) roleWithdrawn(issuer, subject, remote string) error {
	id, err := t.get(bSubjects, subjectKey(issuer, subject))
	if err != nil || id == nil {
		return err
	}
	u, err := t.userByID(string(id))
	if err != nil || u == nil {
		return err
	}
	sessions, tokens, err := t.endAccess(u.ID)
	if err != nil {
		return err
	}
	if sessions == 0 && tokens == 0 {
		return nil
	}
	if err := t.retireFeedToken(); err != nil {
		return err
	}
	return t.audit(Principal{User: u.ID, Name: u.Name, Via: "sso"}, store.DecisionRefused,
		fmt.Sprintf("%s maps %s to no role any more: %d sessions ended, %d tokens revoked, the calendar feed token rotated", issuer, u.Name, sessions, tokens), remote)
}

// ssoUser returns the user of a person at the provider, creating it at
// the first login, with role set from the claim.
func (t tx) ssoUser(issuer string, c ssoClaims, role Role, now time.Time) (*User, error) {
	key := subjectKey(issuer, c.Subject)
	id, err := t.get(bSubjects, key)
	if err != nil {
		return nil, err
	}
	if id != nil {
		u, err := t.userByID(string(id))
		if err != nil {
			return nil, err
		}
		if u != nil {
			if u.Disabled {
				return nil, refusal(http.StatusForbidden, u.Name+" is disabled on this node; ask its admin", "SSO user "+u.Name+" is disabled")
			}
			if u.Role == Admin && role != Admin {
				// The provider's claim does not demote the last enabled
				// admin, which would leave nobody to manage the node.
				if n, err := t.otherAdmins(u.ID); err != nil {
					return nil, err
				} else if n == 0 {
					return nil, refusal(http.StatusConflict, fmt.Sprintf("%s now maps you to %s, but you are this node's last enabled admin, so you stay admin and are not logged in: have another person mapped to admin log in first (or make a user admin with the node's API token), then log in again",
						issuer, role), "SSO login would demote "+u.Name+", the last enabled admin, to "+role.String())
				}
			}
			u.Role = role
			if c.Name != "" {
				u.DisplayName = problem.Printable(c.Name, 200)
			}
			return u, nil
		}
	}
	name, err := t.freeName(c)
	if err != nil {
		return nil, err
	}
	u := &User{ID: "u_" + randomString(12), Name: name, DisplayName: problem.Printable(c.Name, 200), Role: role, Created: now,
		Issuer: issuer, Subject: c.Subject}
	if err := t.put(bNames, []byte(name), []byte(u.ID)); err != nil {
		return nil, err
	}
	if err := t.put(bSubjects, key, []byte(u.ID)); err != nil {
		return nil, err
	}
	return u, t.audit(Principal{Name: "node"}, store.DecisionDone, "user "+name+" added as "+role.String()+" at the first login through "+issuer, "")
}

// freeName picks a user name for a person new from the provider: their
// preferred user name or the local part of their email, made a valid
// name, with a number added when another user has it.
func (t tx) freeName(c ssoClaims) (string, error) {
	base := c.PreferredUsername
	if base == "" {
		base, _, _ = strings.Cut(c.Email, "@")
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '-' || r == '_' {
			b.WriteRune(r)
		}
	}
	name := strings.TrimLeft(b.String(), ".-_")
	if len(name) > 56 {
		name = name[:56]
	}
	if name == "" {
		name = "sso-user"
	}
	for i := 1; i <= 100; i++ {
		try := name
		if i > 1 {
			try = fmt.Sprintf("%s-%d", name, i)
		}
		taken, err := t.get(bNames, []byte(try))
		if err != nil {
			return "", err
		}
		if taken == nil {
			return try, nil
		}
	}
	return name + "-" + strings.ToLower(randomString(4)), nil
}
