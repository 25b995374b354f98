package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
)

// vultron login keeps, like `gh auth login`, a token per node in the
// user's configuration directory, so that the other commands find the
// node and its token without flags: CONFIG/vultron/login.json, mode 0600
// in a directory of mode 0700, where CONFIG is $XDG_CONFIG_HOME, else
// $HOME/.config (on macOS and Windows, Go's os.UserConfigDir). The file
// holds {"default": NODE, "nodes": {NODE: {"token": ..., "user": ...}}};
// the last node logged in to is the default one.

// loginFile is the file's name inside CONFIG/vultron.
const loginFile = "login.json"

// savedLogins is the login file.
type savedLogins struct {
	Default string                `json:"default,omitempty"`
	Nodes   map[string]savedLogin `json:"nodes"`
	path    string
}

type savedLogin struct {
	Token string    `json:"token"`
	User  string    `json:"user,omitempty"`
	At    time.Time `json:"at"`
}

// loginPath returns where the login file is, "" when the environment
// names no home or configuration directory.
func loginPath(env *environment) string {
	if dir := env.getenv("XDG_CONFIG_HOME"); dir != "" {
		return filepath.Join(dir, "vultron", loginFile)
	}
	home := env.getenv("HOME")
	if home == "" {
		return ""
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "windows" {
		if dir, err := os.UserConfigDir(); err == nil {
			return filepath.Join(dir, "vultron", loginFile)
		}
	}
	return filepath.Join(home, ".config", "vultron", loginFile)
}

// readLogins reads the login file; nil when there is none. A file that
// others may read is refused, as the node refuses such a token file.
func readLogins(env *environment) (*savedLogins, error) {
	if env == nil {
		return nil, nil
	}
	path := loginPath(env)
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the login file: %w", err)
	}
	if info, err := os.Stat(path); err == nil && info.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("the login file %s can be read by other users (mode %v); run chmod 600 %s", path, info.Mode().Perm(), path)
	}
	l := &savedLogins{path: path}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("the login file %s is not valid JSON: %w", path, err)
	}
	if l.Nodes == nil {
		l.Nodes = map[string]savedLogin{}
	}
	return l, nil
}

// write stores the login file with mode 0600, through a temporary file
// and a rename.
func (l *savedLogins) write() error {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o700); err != nil {
		return fmt.Errorf("create the configuration directory: %w", err)
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(l.path, append(data, '\n')); err != nil {
		return fmt.Errorf("write the login file: %w", err)
	}
	return nil
}

// replaceFile writes data to path, mode 0600, through a temporary file in
// its directory and a rename, so that a reader finds the old contents or
// the new ones, never a file cut short, and the mode whatever the old
// file's was.
func replaceFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func runLogin(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("login", "vultron login --node URL [--token-file F | --with-token] | --data DIR",
		"Store a token of the node for the other commands, in the login file of your\n"+
			"configuration directory (CONFIG/vultron/login.json, mode 0600), after checking it\n"+
			"with the node. The token is read from --token-file, or from standard input with\n"+
			"--with-token (for example: vultron login --node URL --with-token < token.txt); make\n"+
			"one in the dashboard's account page or with vultron token create. The node becomes\n"+
			"the default one. Flags and VULTRON_NODE / VULTRON_TOKEN_FILE still win over it.\n"+
			"--data DIR logs in to the node serve runs on this host with that data directory: its\n"+
			"address (DIR/node-url) and its API token (DIR/api-token), unless --node and --token-file\n"+
			"name others.", env)
	node := fs.String("node", "", "base URL of the node (required without --data)")
	tokenFile := fs.String("token-file", "", "file holding the token")
	withToken := fs.Bool("with-token", false, "read the token from standard input")
	dataDir := fs.String("data", "", "data directory of a node serve runs on this host: its node-url and api-token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("login takes no arguments")
	}
	if *dataDir != "" {
		// The node and the token of a data directory, as every command
		// that talks to a node takes them (nodeFlags).
		u, err := nodeFlags{dataDir: dataDir}.dataNode()
		if err != nil {
			return err
		}
		if *node == "" {
			if u == "" {
				return noNodeURL(*dataDir)
			}
			*node = u
		}
		if *tokenFile == "" && !*withToken {
			*tokenFile = filepath.Join(*dataDir, "api-token")
		}
	}
	if *node == "" {
		return usageError("give the node with --node URL, or its data directory with --data DIR")
	}
	base, err := nodeURL(*node)
	if err != nil {
		return err
	}
	var raw []byte
	from := "standard input"
	switch {
	case *tokenFile != "" && *withToken:
		return usageError("give the token with --token-file or --with-token, not both")
	case *tokenFile != "":
		if raw, err = os.ReadFile(*tokenFile); err != nil {
			return fmt.Errorf("read the token: %w", err)
		}
		from = *tokenFile
	case *withToken:
		if env.stdin == nil {
			return usageError("--with-token reads standard input, which this command has none of")
		}
		line, err := bufio.NewReader(io.LimitReader(env.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read the token from standard input: %w", err)
		}
		raw = []byte(line)
	default:
		return usageError("give the token with --token-file F or --with-token (on standard input)")
	}
	token := strings.TrimSpace(string(raw))
	if token == "" {
		return usageError("the token is empty")
	}
	if !isTokenText(token) {
		return usageError("the token from %s is not one (a token is one line of letters, digits and punctuation)", from)
	}
	c := &client{base: base, token: token, tokenFile: from, refusedHint: "give a token of that node", http: apiHTTPClient()}
	if *withToken {
		c.tokenSource = "read from standard input"
	}
	var who api.WhoAmI
	if err := c.call(ctx, http.MethodGet, "/api/whoami", nil, &who); err != nil {
		return err
	}
	logins, err := readLogins(env)
	if err != nil {
		return err
	}
	if logins == nil {
		path := loginPath(env)
		if path == "" {
			return errors.New("neither XDG_CONFIG_HOME nor HOME is set: there is no configuration directory to keep the login in")
		}
		logins = &savedLogins{Nodes: map[string]savedLogin{}, path: path}
	}
	logins.Nodes[base] = savedLogin{Token: token, User: who.Name, At: time.Now().UTC()}
	logins.Default = base
	if err := logins.write(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "logged in to %s as %s (%s, token %s with %s); saved in %s\n", base, who.Name, who.Role, who.Credential, who.Scopes, logins.path)
	return nil
}

func runLogout(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("logout", "vultron logout [--node URL] [--revoke]",
		"Forget the token the login file keeps for a node (the default one unless --node\n"+
			"names another). With --revoke the node revokes the token first, so that no copy of\n"+
			"it works any more.", env)
	node := fs.String("node", "", "base URL of the node (default: the login file's default)")
	revoke := fs.Bool("revoke", false, "revoke the token on the node too")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("logout takes no arguments")
	}
	logins, err := readLogins(env)
	if err != nil {
		return err
	}
	if logins == nil {
		return errors.New("there is no login to forget")
	}
	base := logins.Default
	if *node != "" {
		if base, err = nodeURL(*node); err != nil {
			return err
		}
	}
	if base == "" {
		// The default login was forgotten: the others, if any, are
		// named by --node.
		if len(logins.Nodes) == 0 {
			return errors.New("there is no login to forget")
		}
		return fmt.Errorf("no login in %s is the default one; give --node, one of %s", logins.path, strings.Join(slices.Sorted(maps.Keys(logins.Nodes)), ", "))
	}
	saved, ok := logins.Nodes[base]
	if !ok {
		return fmt.Errorf("there is no login for %s in %s", base, logins.path)
	}
	if *revoke {
		c := &client{base: base, token: saved.Token, tokenFile: logins.path, http: apiHTTPClient()}
		var who api.WhoAmI
		if err := c.call(ctx, http.MethodGet, "/api/whoami", nil, &who); err != nil {
			return err
		}
		if err := c.call(ctx, http.MethodDelete, "/api/tokens/"+who.Credential, nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "token %s revoked on %s\n", who.Credential, base)
	}
	delete(logins.Nodes, base)
	if logins.Default == base {
		logins.Default = ""
	}
	if err := logins.write(); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "logged out of %s\n", base)
	return nil
}
