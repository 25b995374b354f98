package accounts

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/openvultron/vultron/problem"
)

// Passkeys (WebAuthn) use github.com/go-webauthn/webauthn for the
// ceremonies: the options a browser is given, and the checks of what its
// authenticator answers (challenge, origin, relying party id, signature,
// user presence and verification). A signature counter that did not
// rise since the last login, which the library only flags, the node
// refuses (counterWentBack): it is a copy of the key's. The node is the
// relying party: its id is the host of the public URL (browsers refuse an IP
// address, so a node reached at http://127.0.0.1 has no passkeys; use
// http://localhost for a local one), and its origin the public URL's.
// A ceremony's state (its challenge) is kept in the dashboard session
// that began it, on the server, and used once.

// Passkey is a WebAuthn credential a user registered.
type Passkey struct {
	Name       string              `json:"name"`
	Added      time.Time           `json:"added"`
	LastUsed   time.Time           `json:"lastUsed,omitzero"`
	Credential webauthn.Credential `json:"credential"`
}

// PasskeyInfo is what the account page shows of a passkey.
type PasskeyInfo struct {
	ID       string    `json:"id"` // base64url of the credential id
	Name     string    `json:"name"`
	Added    time.Time `json:"added"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

func (p Passkey) info() PasskeyInfo {
	return PasskeyInfo{ID: base64.RawURLEncoding.EncodeToString(p.Credential.ID), Name: p.Name, Added: p.Added, LastUsed: p.LastUsed}
}

// newWebAuthn returns the relying party of public, or nil when public's
// host is an IP address, where browsers offer no passkeys.
func newWebAuthn(public *url.URL, name string) (*webauthn.WebAuthn, error) {
	if net.ParseIP(public.Hostname()) != nil {
		return nil, nil
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          public.Hostname(),
		RPDisplayName: "Vultron " + name,
		RPOrigins:     []string{public.Scheme + "://" + public.Host},
		// A passkey is the second factor after a password, or the
		// factor of its own: ask for user verification where the
		// authenticator has it, and for a discoverable credential.
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:      protocol.ResidentKeyRequirementPreferred,
			UserVerification: protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: 5 * time.Minute},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: 5 * time.Minute},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("accounts: passkeys for %s: %w", public.Host, err)
	}
	return wa, nil
}

// waUser is a user as go-webauthn sees it.
type waUser struct{ u *User }

func (w waUser) WebAuthnID() []byte          { return []byte(w.u.ID) }
func (w waUser) WebAuthnName() string        { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string { return displayName(w.u) }
func (w waUser) WebAuthnCredentials() []webauthn.Credential {
	out := make([]webauthn.Credential, len(w.u.Passkeys))
	for i, p := range w.u.Passkeys {
		out[i] = p.Credential
	}
	return out
}

// counterWentBack reports whether got, the signature counter of a login
// with credential c, is not above the counter last stored for it: the
// sign of a cloned authenticator (WebAuthn §7.2 step 17). A passkey
// that keeps no counter answers 0 every time, which is not.
func counterWentBack(u *User, c *webauthn.Credential, got uint32) (uint32, uint32, bool) {
	for _, p := range u.Passkeys {
		if bytes.Equal(p.Credential.ID, c.ID) {
			last := p.Credential.Authenticator.SignCount
			return got, last, (got != 0 || last != 0) && got <= last
		}
	}
	return got, 0, false
}

func displayName(u *User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	return u.Name
}

// updatePasskey stores what a login changed of credential c (its counter
// and flags) and when it was used.
func (u *User) updatePasskey(c *webauthn.Credential, now time.Time) {
	for i := range u.Passkeys {
		if bytes.Equal(u.Passkeys[i].Credential.ID, c.ID) {
			u.Passkeys[i].Credential = *c
			u.Passkeys[i].LastUsed = now
		}
	}
}

// Passkeys reports whether the node offers passkeys: not when its public
// URL names an IP address.
func (s *Service) Passkeys() bool { return s.webauthn != nil }

// errNoPasskeys is the refusal of a passkey ceremony on a node reached by
// an IP address.
func errNoPasskeys() error {
	return problem.Conflict("this node is reached by an IP address, where browsers offer no passkeys; use an authenticator app, or reach the node by a domain name (localhost for a local one)")
}
