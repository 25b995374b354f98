package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/openvultron/vultron/problem"
)

// nodeFlags are the flags of every command that talks to a running node
// through its API.
type nodeFlags struct {
	node      *string
	tokenFile *string
	config    *string
	env       *environment
	// dataDir, when not empty, is the node's data directory a command
	// names (--data): its api-token is then the token file when none is
	// named, in place of ./data/api-token, and the URL serve wrote to its
	// node-url the node when none is named.
	dataDir *string
}

// nodeURLFile is the file in a node's data directory where serve writes
// the URL it serves its API at on this host, so that a command given the
// data directory (--data) finds the node as it finds its token.
const nodeURLFile = "node-url"

// Defaults of the node and token a command uses when nothing names them.
const (
	defaultNode      = "http://127.0.0.1:7001"
	defaultTokenFile = "./data/api-token"
)

func addNodeFlags(fs *flag.FlagSet) nodeFlags {
	return nodeFlags{
		node:      fs.String("node", defaultNode, "base URL of the node"),
		tokenFile: fs.String("token-file", defaultTokenFile, "file holding a token of the node (the node's API token, or a user's)"),
		config:    fs.String("config", "", "JSON file of settings (keys are the flag names)"),
		dataDir:   fs.String("data", "", "data directory of a node serve runs on this host (serve --data): the node is the one serve started\nthere and the token its api-token, unless --node and --token-file name others"),
	}
}

// client talks to a node's API with a token.
type client struct {
	base      string
	token     string
	tokenFile string // where the token was read, for the sentence of a 401
	// tokenSource, when set, says where the token came from in the
	// sentence of a 401 in place of "from" tokenFile.
	tokenSource string
	// refusedHint ends the sentence of a 401: what to do about a token the
	// node refused. Empty: give another token file, or log in.
	refusedHint string
	http        *http.Client
}

// parse parses a node command's flags, completes them from the
// environment and the config file, and returns a client for the node.
//
// The node and the token come, in this order, from the command line
// (--node, --token-file), the environment (VULTRON_NODE,
// VULTRON_TOKEN_FILE), the --config file, the login that `vultron login`
// stored (its node, and its token when the node is that login's), and
// last the defaults (http://127.0.0.1:7001 and ./data/api-token, what
// `make run` makes); a command's --data that holds an api-token (and a
// node-url) comes before the login, and, given on the command line,
// before the environment and the config file: a token named for a
// command wins over a login, a login's token is only ever sent to the
// node it was made for, and a data directory's to its node or to the one
// --node names.
func (f nodeFlags) parse(fs *flag.FlagSet, env *environment, args []string) (*client, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	onCommandLine := setFlags(fs)
	if err := applySettings(fs, env.getenv, *f.config); err != nil {
		return nil, err
	}
	f.env = env
	set := setFlags(fs)
	nodeSet, tokenSet := set["node"], set["token-file"]
	if f.dataOverSettings(onCommandLine, set) {
		// A --data on the command line wins over the node and token file
		// of the environment and the config file, as a flag wins over
		// them: its node, and its token, are the ones the command names.
		nodeSet, tokenSet = false, onCommandLine["token-file"]
	}
	return f.newClient(nodeSet, tokenSet, onCommandLine["node"])
}

// setFlags returns the names of the flags of fs that are set.
func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	return set
}

// dataOverSettings reports whether the node is the one of the data
// directory --data names, rather than the one the environment or the
// config file names: --data is on the command line (onCommandLine) and
// --node is not, or nothing else names the node (set, after the
// settings).
func (f nodeFlags) dataOverSettings(onCommandLine, set map[string]bool) bool {
	return *f.dataDir != "" && !onCommandLine["node"] && (onCommandLine["data"] || !set["node"])
}

// newClient checks the node's URL, finds the token and returns a client.
// nodeSet and tokenSet say whether the command line, the environment or
// the config file named the node and the token file, nodeNamed whether
// the command line named the node (--node).
func (f nodeFlags) newClient(nodeSet, tokenSet, nodeNamed bool) (*client, error) {
	var login *savedLogins
	if !nodeSet || !tokenSet {
		var err error
		if login, err = readLogins(f.env); err != nil {
			return nil, err
		}
	}
	raw := *f.node
	dataNode := "" // the node serve wrote to the data directory
	if *f.dataDir != "" {
		// The data directory a command names is the node's: the address
		// serve wrote there wins over a login's, as its token does.
		u, err := f.dataNode()
		if err != nil {
			return nil, err
		}
		if !nodeSet && u == "" {
			// Not the login's node: the directory's token would go to
			// a node it is not the token of.
			return nil, noNodeURL(*f.dataDir)
		}
		if u != "" {
			if dataNode, err = nodeURL(u); err != nil {
				return nil, err
			}
		}
		if !nodeSet {
			raw, nodeSet = u, true
		}
	}
	if !nodeSet && login != nil && login.Default != "" {
		raw = login.Default
	}
	base, err := nodeURL(raw)
	if err != nil {
		return nil, err
	}
	if !tokenSet && *f.dataDir != "" && (base == dataNode || nodeNamed) {
		// The node's own API token in the data directory the command
		// names wins over a login, which may be a viewer's. It goes to
		// that node, or to the one --node names beside it, never to
		// one the environment or the config file names.
		if tf := filepath.Join(*f.dataDir, "api-token"); statOK(tf) {
			*f.tokenFile, tokenSet = tf, true
		}
	}
	if !tokenSet && login != nil {
		if saved, ok := login.Nodes[base]; ok && saved.Token != "" {
			return &client{base: base, token: saved.Token, tokenFile: "the login of " + login.path, http: apiHTTPClient()}, nil
		}
	}
	data, err := os.ReadFile(*f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the token for the node at %s: %w (give a token file with --token-file or VULTRON_TOKEN_FILE, the data directory of a node serve runs on this host with --data DIR, or log in with vultron login --node %s)", base, err, base)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return nil, fmt.Errorf("token file %s is empty", *f.tokenFile)
	}
	if !isTokenText(token) {
		return nil, fmt.Errorf("%s does not hold a token (a token is one line of letters, digits and punctuation); give the file the node wrote its API token to, such as DATA/api-token, with --token-file or VULTRON_TOKEN_FILE", *f.tokenFile)
	}
	return &client{base: base, token: token, tokenFile: *f.tokenFile, http: apiHTTPClient()}, nil
}

// dataNode returns the URL serve wrote to the node-url of the data
// directory --data names, "" when there is no such file (a node that has
// not started there yet). A directory that is not there is a bad command
// line.
func (f nodeFlags) dataNode() (string, error) {
	if info, err := os.Stat(*f.dataDir); err != nil || !info.IsDir() {
		return "", usageError("there is no data directory %s: give --data the directory serve --data made", *f.dataDir)
	}
	return readNodeURL(*f.dataDir)
}

// noNodeURL is the failure of a command given the data directory dir of
// a node that has not written its address there, and no node.
func noNodeURL(dir string) error {
	return fmt.Errorf("%s has no %s: serve has not started there yet; start it, or give the node with --node", dir, nodeURLFile)
}

// readNodeURL returns the URL serve wrote to dataDir/node-url, "" when
// there is no such file, or no such directory yet.
func readNodeURL(dataDir string) (string, error) {
	path := filepath.Join(dataDir, nodeURLFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the node's URL from %s: %w", path, err)
	}
	u := strings.TrimSpace(string(data))
	if _, err := nodeURL(u); err != nil {
		return "", fmt.Errorf("%s does not hold the node's URL (%q): remove it, or give the node with --node", path, u)
	}
	return u, nil
}

// apiHTTPClient returns the HTTP client that carries a token to a node:
// it follows a redirect within the node's origin (its scheme, host and
// port) only, since net/http would send the Authorization header on to
// another port or scheme of the same host (a plain-http one, or another
// service), and to a subdomain.
func apiHTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, CheckRedirect: sameOrigin}
}

// redirectError is a redirect off the node's origin, not followed.
type redirectError struct {
	from, to string
}

func (e *redirectError) Error() string {
	return fmt.Sprintf("the node at %s redirected to %s, another address, which the token is not sent to; if the node is there, give that address with --node", e.from, e.to)
}

// sameOrigin is an http.Client's CheckRedirect that refuses a redirect
// whose scheme, host or port is not the first request's.
func sameOrigin(req *http.Request, via []*http.Request) error {
	first := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
		return &redirectError{from: first.Scheme + "://" + first.Host, to: req.URL.Scheme + "://" + req.URL.Host}
	}
	if len(via) >= 10 {
		return errors.New("the node redirected 10 times")
	}
	return nil
}

// isTokenText reports whether token can be a token: one line of visible
// ASCII, which an Authorization header can carry.
func isTokenText(token string) bool {
	for i := 0; i < len(token); i++ {
		if token[i] < 0x21 || token[i] > 0x7e {
			return false
		}
	}
	return token != ""
}

// nodeURL checks --node: an http or https URL with a host, such as
// http://127.0.0.1:7001, and returns it without a trailing slash.
func nodeURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return "", usageError("--node must be the node's URL with its scheme, such as http://127.0.0.1:7001, not %q", raw)
	}
	return strings.TrimRight(raw, "/"), nil
}

// do sends a request with an activity body (or none) and decodes a JSON
// answer into out (when not nil). A refusal becomes an error carrying the
// node's one-sentence reason.
func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	return c.send(ctx, method, path, "application/activity+json", body, out)
}

// call sends in (when not nil) as a JSON body and decodes the JSON answer
// into out (when not nil), as do.
func (c *client) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("encode the request: %w", err)
		}
	}
	return c.send(ctx, method, path, "application/json", body, out)
}

func (c *client) send(ctx context.Context, method, path, contentType string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return unreachable(c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the node's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		return c.refused(resp, data)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the node's answer is not the expected JSON: %w", err)
	}
	return nil
}

// refused is the error of the node's answer resp (status 300 or more)
// whose body is data: its sentence, and for a 401 what to do about the
// token.
func (c *client) refused(resp *http.Response, data []byte) error {
	if resp.StatusCode == http.StatusUnauthorized {
		msg, _ := problem.ReadBody(data)
		hint := c.refusedHint
		if hint == "" {
			hint = "give a token file of that node with --token-file or VULTRON_TOKEN_FILE, or log in with vultron login"
		}
		source := c.tokenSource
		if source == "" {
			source = "from " + c.tokenFile
		}
		return &nodeError{status: resp.StatusCode, msg: fmt.Sprintf("the node at %s refused the token %s (401: %s); %s", c.base, source, msg, hint)}
	}
	if msg, ok := problem.ReadBody(data); ok {
		return &nodeError{status: resp.StatusCode, msg: fmt.Sprintf("the node refused (%d): %s", resp.StatusCode, msg)}
	}
	return &nodeError{status: resp.StatusCode, msg: "the node answered " + resp.Status}
}

// download GETs path and copies the answer's body to w, for an answer
// too large for do (a backup): only ctx bounds it, not the client's
// timeout for a page. It returns the answer's headers and the number of
// bytes copied, and fails when the node announced a length that did not
// arrive.
func (c *client) download(ctx context.Context, path string, w io.Writer) (http.Header, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	hc := *c.http
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, unreachable(c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return resp.Header, 0, c.refused(resp, data)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return resp.Header, n, fmt.Errorf("the node's answer stopped after %d bytes: %w", n, err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return resp.Header, n, fmt.Errorf("the node's answer stopped after %d of the %d bytes it announced", n, resp.ContentLength)
	}
	return resp.Header, n, nil
}

// unreachableError is a request that got no answer from the node: nothing
// listens at its address, its name does not resolve, or it did not answer
// in time. Its sentence names the node and what to check, not the
// request the command was making.
type unreachableError struct {
	base string
	err  error
}

// unreachable returns the error of a request to the node at base that
// got no answer.
func unreachable(base string, err error) error {
	var re *redirectError
	if errors.As(err, &re) {
		return re
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return &unreachableError{base: base, err: err}
}

func (e *unreachableError) Error() string {
	if errors.Is(e.err, syscall.ECONNREFUSED) {
		return fmt.Sprintf("nothing answers at %s (connection refused): is the node running there? (vultron ready --node %s waits until it serves)", e.base, e.base)
	}
	return fmt.Sprintf("cannot reach the node at %s: %v", e.base, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

// passing reports whether the failure may pass by itself, as it does while
// a node restarts: anything but a certificate the client refuses (TLS),
// which will be refused again.
func (e *unreachableError) passing() bool {
	var (
		verify  *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		host    x509.HostnameError
		invalid x509.CertificateInvalidError
		record  tls.RecordHeaderError
	)
	return !errors.As(e.err, &verify) && !errors.As(e.err, &unknown) && !errors.As(e.err, &host) &&
		!errors.As(e.err, &invalid) && !errors.As(e.err, &record)
}

// nodeError is a refusal from the node: its status and its sentence.
type nodeError struct {
	status int
	msg    string
}

func (e *nodeError) Error() string { return e.msg }

// isNotFound reports whether err is the node's 404.
func isNotFound(err error) bool {
	var ne *nodeError
	return errors.As(err, &ne) && ne.status == http.StatusNotFound
}
