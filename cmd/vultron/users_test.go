package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
)

// as returns n with the token tok, kept in a file as a person would.
func (n cliNode) as(t *testing.T, tok string) cliNode {
	t.Helper()
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cliNode{url: n.url, tokenFile: f}
}

// fails runs a command that must exit with code and say want on stderr.
func (n cliNode) fails(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	got, out, errOut := n.cli(t, args...)
	if got != code || !strings.Contains(errOut, want) {
		t.Errorf("vultron %s: exit %d, stderr %q (stdout %q); want exit %d saying %q", strings.Join(args, " "), got, errOut, out, code, want)
	}
}

// TestUserAndTokenCommands is a PSIRT lead handing out and taking back
// access on a real node with the command line: users of each role, the
// tokens they hold, what each may do, and a user disabled or removed.
func TestUserAndTokenCommands(t *testing.T) {
	n := startCLINode(t, "vendor:Organization", "coordinator:Service")

	// user add --json prints the fields the issue names, once.
	var alice api.AddedUser
	if err := json.Unmarshal([]byte(n.ok(t, "user", "add", "alice", "--role", "analyst", "--actor", "vendor", "--json")), &alice); err != nil {
		t.Fatal(err)
	}
	if alice.User != "alice" || alice.Role != "analyst" || !strings.HasPrefix(alice.Token, "vultron_") || !strings.Contains(alice.Enroll, "/enroll?code=") {
		t.Fatalf("user add --json = %+v", alice)
	}
	out := n.ok(t, "user", "add", "bob", "--role", "viewer", "--display-name", "Bob B.")
	if !strings.Contains(out, "user bob added as viewer") || !strings.Contains(out, "vultron_") || !strings.Contains(out, "/enroll?code=") {
		t.Errorf("user add (text):\n%s", out)
	}
	bobToken := out[strings.Index(out, "vultron_"):]
	bobToken = strings.Fields(bobToken)[0]
	out = n.ok(t, "user", "list")
	for _, want := range []string{"admin", "alice", "analyst", "vendor", "bob", "viewer", "enrolling"} {
		if !strings.Contains(out, want) {
			t.Errorf("user list lacks %q:\n%s", want, out)
		}
	}

	// Mistakes are refused before anything is sent or stored.
	n.fails(t, 2, "--role", "user", "add", "carol", "--role", "boss")
	n.fails(t, 2, "give the new user a role", "user", "add", "carol")
	n.fails(t, 2, "--scope", "token", "create", "--scope", "everything")
	n.fails(t, 1, "already", "user", "add", "alice", "--role", "viewer")
	n.fails(t, 1, "no actor nobody", "user", "add", "carol", "--role", "analyst", "--actor", "nobody")

	// Each may do what its role and token allow, and no more.
	asAlice, asBob := n.as(t, alice.Token), n.as(t, bobToken)
	asBob.ok(t, "case", "list")
	asBob.fails(t, 1, "(403)", "user", "add", "eve", "--role", "admin")
	asAlice.fails(t, 1, "(403)", "user", "list")
	asAlice.fails(t, 1, "(403)", "audit", "show")
	var read api.CreatedToken
	if err := json.Unmarshal([]byte(asAlice.ok(t, "token", "create", "--scope", "read", "--expires", "30d", "--name", "ci", "--json")), &read); err != nil {
		t.Fatal(err)
	}
	if read.User != "alice" || !strings.HasPrefix(read.Token, "vultron_") {
		t.Fatalf("token create --json = %+v", read)
	}
	asAlice.fails(t, 1, "(403)", "token", "create", "--scope", "admin")
	if out := asAlice.ok(t, "token", "list"); !strings.Contains(out, read.ID) || !strings.Contains(out, "ci") {
		t.Errorf("token list lacks %s:\n%s", read.ID, out)
	}
	asRead := n.as(t, read.Token)
	asRead.ok(t, "case", "list")

	// A token revoked, then a user disabled: refused at once.
	n.ok(t, "token", "revoke", read.ID)
	asRead.fails(t, 1, "refused the token", "case", "list")
	if out := n.ok(t, "user", "disable", "alice"); !strings.Contains(out, "user alice disabled") {
		t.Errorf("user disable: %s", out)
	}
	asAlice.fails(t, 1, "refused the token", "case", "list")
	if out := n.ok(t, "user", "role", "bob", "analyst", "--actor", "coordinator"); !strings.Contains(out, "user bob is analyst for coordinator") {
		t.Errorf("user role: %s", out)
	}
	if out := n.ok(t, "user", "reset-2fa", "bob"); !strings.Contains(out, "/enroll?code=") {
		t.Errorf("user reset-2fa: %s", out)
	}
	n.ok(t, "user", "remove", "bob")
	asBob.fails(t, 1, "refused the token", "case", "list")
	if out := n.ok(t, "user", "list"); strings.Contains(out, "bob") || !strings.Contains(out, "disabled") {
		t.Errorf("user list after remove and disable:\n%s", out)
	}
	// The node's last admin stays.
	n.fails(t, 1, "last", "user", "disable", "admin")
}

// TestLoginCommand logs in to a node with a user's token, uses the login
// from the configuration directory with no flags, and logs out revoking
// the token.
func TestLoginCommand(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	var dave api.AddedUser
	if err := json.Unmarshal([]byte(n.ok(t, "user", "add", "dave", "--role", "analyst", "--json")), &dave); err != nil {
		t.Fatal(err)
	}
	config := t.TempDir()
	run1 := func(stdin string, args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr strings.Builder
		env := &environment{stdout: &stdout, stderr: &stderr, stdin: strings.NewReader(stdin), getenv: func(k string) string {
			if k == "XDG_CONFIG_HOME" {
				return config
			}
			return ""
		}}
		code := run(t.Context(), env, args)
		return code, stdout.String(), stderr.String()
	}
	code, out, errOut := run1(dave.Token+"\n", "login", "--node", n.url+"/", "--with-token")
	if code != 0 || !strings.Contains(out, "logged in to "+n.url+" as dave (analyst") {
		t.Fatalf("login: exit %d, %q %q", code, out, errOut)
	}
	file := filepath.Join(config, "vultron", "login.json")
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("login file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
	// No flags: the login's node and token.
	if code, out, errOut := run1("", "token", "list"); code != 0 || !strings.Contains(out, "dave") {
		t.Errorf("token list after login: exit %d, %q %q", code, out, errOut)
	}
	// A wrong token is not saved.
	if code, _, errOut := run1("vultron_not-a-token\n", "login", "--node", n.url, "--with-token"); code != 1 || !strings.Contains(errOut, "refused the token") {
		t.Errorf("login with a wrong token: exit %d, %q", code, errOut)
	}
	if code, out, errOut := run1("", "logout", "--revoke"); code != 0 || !strings.Contains(out, "revoked") || !strings.Contains(out, "logged out of "+n.url) {
		t.Fatalf("logout --revoke: exit %d, %q %q", code, out, errOut)
	}
	n.as(t, dave.Token).fails(t, 1, "refused the token", "case", "list")
	if code, _, errOut := run1("", "logout"); code != 1 || !strings.Contains(errOut, "there is no login to forget") {
		t.Errorf("second logout: exit %d, %q; want it to say there is no login to forget", code, errOut)
	}
	// A login file others may read is refused.
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := run1("", "token", "list"); code != 1 || !strings.Contains(errOut, "chmod 600") {
		t.Errorf("with a readable login file: exit %d, %q", code, errOut)
	}
}

// TestServeRefusesBadAccountFlags checks the account flags of serve: a
// mistake is one sentence and a non-zero exit, before the node creates
// anything.
func TestServeRefusesBadAccountFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sso := func(roleMap, secretFile string) []string {
		return []string{"--oidc-issuer", "https://idp.example", "--oidc-client-id", "vultron", "--oidc-client-secret-file", secretFile, "--oidc-role-map", roleMap}
	}
	tests := []struct {
		name  string
		flags []string
		code  int
		want  string
	}{
		{"issuer alone", []string{"--oidc-issuer", "https://idp.example"}, 2, "single sign-on needs --oidc-issuer, --oidc-client-id, --oidc-client-secret-file and --oidc-role-map together"},
		{"bad role map", sso("psirt=boss", secret), 2, `role map entry "psirt=boss"`},
		{"readable secret", sso("psirt=analyst", secret), 1, "chmod 600"},
		{"missing secret", sso("psirt=analyst", secret+"-none"), 1, "the OpenID client secret file " + secret + "-none cannot be read (no such file or directory); give the file that holds the node's client secret at the provider with --oidc-client-secret-file"},
		{"second factor", []string{"--second-factor", "sometimes"}, 2, `--second-factor is required or optional, not "sometimes"`},
		{"token standing too short", append(sso("psirt=analyst", secret), "--oidc-token-standing", "10m"), 2, "--oidc-token-standing is from an hour to 730d, not 10m."},
		{"token standing too long", append(sso("psirt=analyst", secret), "--oidc-token-standing", "800d"), 2, "--oidc-token-standing is from an hour to 730d, not 800d"},
		{"token standing in hours and minutes", append(sso("psirt=analyst", secret), "--oidc-token-standing", "59m30s"), 2, "--oidc-token-standing is from an hour to 730d, not 59m30s."},
		{"token standing in hours too long", append(sso("psirt=analyst", secret), "--oidc-token-standing", "17530h"), 2, "--oidc-token-standing is from an hour to 730d, not 17530h."},
		{"token standing not a duration", append(sso("psirt=analyst", secret), "--oidc-token-standing", "a month"), 2, `"a month"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			code, _, errOut := runCapture(t, append([]string{"serve", "--data", dataDir, "--listen", "127.0.0.1:0"}, tt.flags...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("exit %d, %q; want exit %d saying %q in one line", code, errOut, tt.code, tt.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("serve created its data directory before refusing: %v", err)
			}
		})
	}
}

// TestTokenCreateTakesRepeatedScopes checks that --scope given more than
// once adds up, as the comma-separated form does, and that an unknown
// scope in any of them is a bad command line that creates no token.
func TestTokenCreateTakesRepeatedScopes(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	for _, args := range [][]string{
		{"--scope", "read", "--scope", "metrics"},
		{"--scope", "read,metrics"},
		{"--scope", "metrics", "--scope", "read,metrics"},
	} {
		var tok api.CreatedToken
		out := n.ok(t, append([]string{"token", "create", "--name", "y", "--json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &tok); err != nil {
			t.Fatal(err)
		}
		if tok.Scopes != "read,metrics" {
			t.Errorf("token create %s: scopes %q, want read,metrics", strings.Join(args, " "), tok.Scopes)
		}
	}
	ids := func() string {
		var toks []api.TokenInfo
		if err := json.Unmarshal([]byte(n.ok(t, "token", "list", "--json")), &toks); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tok := range toks {
			out = append(out, tok.ID)
		}
		return strings.Join(out, ",")
	}
	before := ids()
	n.fails(t, 2, `--scope: scope "bogus" is not one of`, "token", "create", "--scope", "read", "--scope", "bogus")
	if after := ids(); after != before {
		t.Errorf("a refused token create changed the tokens: %s, was %s", after, before)
	}
}

// TestDemotedUsersActTokenStillReads is the walk-through of a user given
// an act token and then demoted to viewer: the token reads, as a
// viewer's, and no longer acts.
func TestDemotedUsersActTokenStillReads(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	n.ok(t, "user", "add", "alice", "--role", "analyst")
	var tok api.CreatedToken
	if err := json.Unmarshal([]byte(n.ok(t, "token", "create", "--user", "alice", "--scope", "act", "--json")), &tok); err != nil {
		t.Fatal(err)
	}
	n.ok(t, "user", "role", "alice", "viewer")
	asAlice := n.as(t, tok.Token)
	asAlice.ok(t, "case", "list")
	asAlice.fails(t, 1, "(403)", "report", "submit", "--as", "vendor", "--to", "http://127.0.0.1:1/actors/coordinator", "--name", "x")
}

// TestHelpListsEveryUserAndCaseAction: "vultron help" names every
// action of vultron user, among them enroll, which a node's first start
// points to for a new enrollment link, and of vultron case, among them
// resync, which the README sends a replica that is behind to.
func TestHelpListsEveryUserAndCaseAction(t *testing.T) {
	code, out, errOut := runCLI(t, "help")
	for cmd, actions := range map[string][]string{
		"user": {"add", "list", "role", "disable", "enable", "remove", "reset-2fa", "enroll", "sessions"},
		"case": {"list", "show", "wait", "ledger", "resync", "engage", "defer", "close", "note", "cve", "transfer", "link", "engagement"},
	} {
		var line string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), cmd+" ") {
				line = l
			}
		}
		for _, action := range actions {
			if code != 0 || !regexp.MustCompile(`[ ,]`+regexp.QuoteMeta(action)+`\b([^-]|$)`).MatchString(line) {
				t.Errorf("vultron help: exit %d, its %s line %q does not name %s (stderr %q)", code, cmd, line, action, errOut)
			}
		}
	}
}

// TestUserSessionsWithoutANameAreYours checks that user sessions with no
// user name lists the sessions of the user whose token the command
// carries, as token list does, and says whose they are.
func TestUserSessionsWithoutANameAreYours(t *testing.T) {
	n := startCLINode(t, "vendor:Organization")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"user", "sessions"}, 0, "admin has no dashboard sessions.\n"},
		{[]string{"user", "sessions", "admin"}, 0, "admin has no dashboard sessions.\n"},
		{[]string{"user", "sessions", "admin", "bob"}, 2, "vultron user: user sessions takes a user name, or none for yours.\n"},
	}
	for _, tc := range tests {
		code, out, errOut := n.cli(t, tc.args...)
		if code != tc.code || out+errOut != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}
}

// TestLoginWithTheDataDirectory is a newcomer who logs in to the node
// serve runs on this host by its data directory, as every other command
// takes it: the node's address and its API token come from there, and
// the commands that follow need no flag.
func TestLoginWithTheDataDirectory(t *testing.T) {
	data := filepath.Join(t.TempDir(), "vendor-data")
	config := t.TempDir()
	run1 := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr strings.Builder
		env := &environment{stdout: &stdout, stderr: &stderr, getenv: func(k string) string {
			if k == "XDG_CONFIG_HOME" {
				return config
			}
			return ""
		}}
		code := run(t.Context(), env, args)
		return code, stdout.String(), stderr.String()
	}
	serveWhileStarted(t, func(string) string { return "" }, func(*syncBuffer) {
		url, err := os.ReadFile(filepath.Join(data, nodeURLFile))
		if err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := run1("login", "--data", data); code != 0 || !strings.Contains(out, "logged in to "+strings.TrimSpace(string(url))+" as admin") {
			t.Fatalf("login --data: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if code, out, errOut := run1("case", "list"); code != 0 || !strings.HasPrefix(out, "No cases") {
			t.Errorf("case list after login --data: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	}, "--data", data, "--listen", "127.0.0.1:0", "--log-format", "console")
	if code, _, errOut := run1("login", "--data", filepath.Join(t.TempDir(), "nosuch")); code != 2 || !strings.Contains(errOut, "there is no data directory") {
		t.Errorf("login --data of no directory: exit %d, stderr %q; want exit 2", code, errOut)
	}
}
