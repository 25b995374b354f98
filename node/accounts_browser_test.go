package node

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/openvultron/vultron/accounts"
)

// The people's logins in headless Chromium, on nodes that require a
// second factor of analysts and admins: an enrollment link to a password
// and an authenticator app, then a login with password and code; a
// passkey enrolled and used through Chromium's DevTools virtual
// authenticator; and single sign-on through a real OpenID provider on
// 127.0.0.1.

// strictNode starts a node that requires a second factor, reached at
// host ("127.0.0.1" or "localhost", where browsers offer passkeys).
func strictNode(t *testing.T, host string, extra Config) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	extra.PublicURL = "http://" + net.JoinHostPort(host, port)
	return startNodeStrict(t, t.TempDir(), ln, extra, "vendor:Organization")
}

// enrollment adds a user and returns its enrollment link.
func enrollment(t *testing.T, n *testNode, name string, role accounts.Role) string {
	t.Helper()
	ctx := context.Background()
	admin, err := n.accounts.Authenticate(ctx, n.token)
	if err != nil {
		t.Fatal(err)
	}
	added, err := n.accounts.AddUser(ctx, admin, accounts.NewUser{Name: name, DisplayName: "Ana Lyst", Role: role}, func(string) bool { return true }, "")
	if err != nil {
		t.Fatal(err)
	}
	return added.Enroll
}

// setPassword opens an enrollment link and sets the password.
func setPassword(link, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.SendKeys(chromedp.ID("password2"), password),
		chromedp.Click(chromedp.ID("enroll")),
	)
}

// passwordLogin logs in with the login form.
func passwordLogin(base, name, password string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Navigate(base+"/login"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
	)
}

// logout sends the header's logout form.
func logout() chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Click(chromedp.CSS("form.logout button")), chromedp.WaitVisible(chromedp.ID("name")))
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTOTPInBrowser: an analyst opens the enrollment link, sets a
// password, scans the authenticator app's secret and confirms it with a
// code, and is shown recovery codes once; logged out, the password alone
// leads to the second step, a wrong code is refused there, and the next
// code logs in.
func TestTOTPInBrowser(t *testing.T) {
	n := strictNode(t, "127.0.0.1", Config{})
	link := enrollment(t, n, "ana", accounts.Analyst)
	ctx, cancel := context.WithTimeout(browserTab(t), 30*time.Second)
	defer cancel()
	const password = "ana's long password"
	err := chromedp.Do(ctx,
		setPassword(link, password),
		chromedp.WaitVisible(chromedp.ID("totp-offer")),
		chromedp.Click(chromedp.ID("totp-offer")),
		chromedp.WaitVisible(chromedp.ID("totp-secret")),
	)
	if err != nil {
		t.Fatalf("enrollment up to the authenticator app's secret: %v", err)
	}
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("totp-secret")))
	if err != nil || len(secret) < 16 {
		t.Fatalf("the page shows the secret %q (%v)", secret, err)
	}
	// The QR code of the secret is an image the page loads, awaited: it
	// may still be loading when the secret shows.
	if ok, err := chromedp.Run(ctx, chromedp.Poll[bool](`(() => { const i = document.querySelector("#totp img"); return !!i && i.complete && i.naturalWidth > 100 })()`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(10*time.Second))); err != nil || !ok {
		t.Errorf("the QR code did not load within 10s (%v)", err)
	}
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("totp-code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.ID("totp-confirm")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	if err != nil {
		t.Fatalf("confirm the authenticator app: %v", err)
	}
	codes, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes li code").length`))
	if err != nil || codes != 10 {
		t.Errorf("the page shows %d recovery codes (%v), want 10", codes, err)
	}
	// Shown once: the account page again has none.
	if err := chromedp.Do(ctx, chromedp.Navigate(n.url+"/ui/account"), chromedp.WaitVisible(chromedp.ID("role"))); err != nil {
		t.Fatal(err)
	}
	if again, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#recovery-codes").length`)); again != 0 {
		t.Error("the recovery codes are shown a second time")
	}
	err = chromedp.Do(ctx,
		logout(),
		passwordLogin(n.url, "ana", password),
		chromedp.WaitVisible(chromedp.ID("code")),
		chromedp.SendKeys(chromedp.ID("code"), "000000"),
		chromedp.Click(chromedp.ID("verify")),
		waitContains("#factor-error", "Wrong code"),
		// The next step's code is within the window, and after the step
		// the confirmation used.
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Click(chromedp.ID("verify")),
		chromedp.WaitVisible(chromedp.CSS("a.me")),
	)
	if err != nil {
		t.Fatalf("log in with password and code: %v", err)
	}
	if who, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("a.me"))); err != nil || who != "Ana Lyst" {
		t.Errorf("logged in as %q (%v), want Ana Lyst", who, err)
	}
}

// TestPasskeyInBrowser: an admin enrols with a passkey of Chromium's
// virtual authenticator (CTAP2, internal, resident key, user
// verification), and logs in again with password and passkey.
func TestPasskeyInBrowser(t *testing.T) {
	n := strictNode(t, "localhost", Config{})
	link := enrollment(t, n, "pat", accounts.Admin)
	ctx, cancel := context.WithTimeout(browserTab(t), 30*time.Second)
	defer cancel()
	const password = "pat's long password"
	if err := chromedp.Do(ctx, chromedp.Navigate(n.url+"/login")); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatalf("enable the DevTools WebAuthn domain: %v", err)
	}
	_, err := chromedp.Call(ctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21, Transport: cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
	err = chromedp.Do(ctx,
		setPassword(link, password),
		chromedp.WaitVisible(chromedp.ID("passkey-add")),
		chromedp.SetValue(chromedp.ID("passkey-name"), "test key"),
		chromedp.Click(chromedp.ID("passkey-add")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")),
	)
	if err != nil {
		dbg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.body.innerText.slice(0, 800)`))
		t.Fatalf("enrol a passkey: %v\n%s", err, dbg)
	}
	if names, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("table.passkeys"))); err != nil || !strings.Contains(names, "test key") {
		t.Errorf("the account page lists the passkeys %q (%v)", names, err)
	}
	err = chromedp.Do(ctx,
		logout(),
		passwordLogin(n.url, "pat", password),
		chromedp.WaitVisible(chromedp.ID("passkey-login")),
		chromedp.Click(chromedp.ID("passkey-login")),
		chromedp.WaitVisible(chromedp.CSS("a.me")),
	)
	if err != nil {
		dbg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.body.innerText.slice(0, 800)`))
		t.Fatalf("log in with password and passkey: %v\n%s", err, dbg)
	}
	sessions, err := n.accounts.Sessions(context.Background(), adminPrincipal(t, n), "pat")
	if err != nil || len(sessions) == 0 || sessions[len(sessions)-1].Method != "password+passkey" {
		t.Errorf("pat's sessions: %+v, %v; want the last one by password+passkey", sessions, err)
	}
}

func adminPrincipal(t *testing.T, n *testNode) accounts.Principal {
	t.Helper()
	p, err := n.accounts.Authenticate(context.Background(), n.token)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSSOInBrowser logs in through mockoidc, a real OpenID provider on
// 127.0.0.1: the node sends the browser there with PKCE, a state and a
// nonce, the provider sends it back with a code, and the person is a user
// of the role its group maps to; a person whose groups map to no role is
// shown why, and gets no user.
func TestSSOInBrowser(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	cfg := m.Config()
	roles, err := accounts.ParseRoleMap("psirt-admins=admin,psirt=analyst")
	if err != nil {
		t.Fatal(err)
	}
	n := strictNode(t, "127.0.0.1", Config{OIDC: &accounts.OIDCConfig{Issuer: cfg.Issuer, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RoleMap: roles}})
	ctx, cancel := context.WithTimeout(browserTab(t), 30*time.Second)
	defer cancel()

	m.QueueUser(&mockoidc.MockUser{Subject: "s-42", PreferredUsername: "sam", Email: "sam@psirt.example", Groups: []string{"psirt"}})
	casePath := "/ui/cases/" + url.PathEscape("no-such-case")
	err = chromedp.Do(ctx,
		chromedp.Navigate(n.url+casePath),
		chromedp.WaitVisible(chromedp.ID("sso")),
		chromedp.Click(chromedp.ID("sso")),
		chromedp.WaitReady(chromedp.CSS("body")),
	)
	if err != nil {
		t.Fatalf("single sign-on: %v", err)
	}
	// Back on the page the login began at, logged in.
	if err := chromedp.Do(ctx, waitContains("body", "There is no case no-such-case on this node")); err != nil {
		dbg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.body.innerText.slice(0, 500)`))
		t.Fatalf("after single sign-on: %v\n%s", err, dbg)
	}
	info, err := n.accounts.UserInfo(context.Background(), "sam")
	if err != nil || info.Role != accounts.Analyst || info.SSO != cfg.Issuer {
		t.Errorf("the user made at the first login: %+v, %v", info, err)
	}
	// A person of no mapped group is told so.
	m.QueueUser(&mockoidc.MockUser{Subject: "s-43", PreferredUsername: "max", Groups: []string{"marketing"}})
	err = chromedp.Do(ctx,
		chromedp.Navigate(n.url+"/login/sso"),
		waitContains("#login-error", "has no role on this node"),
	)
	if err != nil {
		t.Fatalf("a person with no role: %v", err)
	}
	if _, err := n.accounts.UserInfo(context.Background(), "max"); err == nil {
		t.Error("a user was made for a person with no role")
	}
}

// TestLivePageAfterItsSessionEnds: a page left open follows the node's
// changes only while its session lives. Once the session has ended
// elsewhere (revoked here; a logout in another tab or through another
// process of the node is the same), the next change sends the browser to
// the login page, which will bring it back, rather than putting the login
// form inside the page it was showing.
func TestLivePageAfterItsSessionEnds(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	password := vendor.person(t, "vic", accounts.Analyst, "vendor")
	tab := browserTab(t)
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	err := chromedp.Do(ctx,
		passwordLogin(vendor.url, "vic", password),
		chromedp.WaitVisible(chromedp.CSS("form.logout")),
		waitContains("main", "No cases yet"),
	)
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	vendor.revokeSessions(t, "vic")

	// A report arrives: the case list changes. (The page's stream, whenever
	// it opens, compares the list with the one the page was rendered from.)
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"After the session","content":"text"}}`, vendor.actorID("vendor")))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })

	err = chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for {
			loc, err := chromedp.Run(ctx, chromedp.Location())
			if err == nil && strings.HasPrefix(loc, vendor.url+"/login?next=") {
				return nil
			}
			select {
			case <-ctx.Done():
				dctx, dcancel := context.WithTimeout(tab, 5*time.Second)
				defer dcancel()
				page, _ := chromedp.Run(dctx, chromedp.Evaluate[string](`document.body.innerText`))
				return fmt.Errorf("the browser is at %s (%v), showing %q: %w", loc, err, page, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}))
	if err != nil {
		t.Fatalf("the open page once its session ended: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("form.logout, #pending").length`)); err != nil || n != 0 {
		t.Errorf("the login page still shows %d parts of the page before it (%v)", n, err)
	}
}
