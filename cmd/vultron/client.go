package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/openvultron/vultron/problem"
)

// nodeFlags are the flags of every command that talks to a running node
// through its API.
type nodeFlags struct {
	node      *string
	tokenFile *string
	config    *string
}

func addNodeFlags(fs *flag.FlagSet) nodeFlags {
	return nodeFlags{
		node:      fs.String("node", "http://127.0.0.1:7001", "base URL of the node"),
		tokenFile: fs.String("token-file", "./data/api-token", "file holding the node's API token"),
		config:    fs.String("config", "", "JSON file of settings (keys are the flag names)"),
	}
}

// client talks to a node's API with its token.
type client struct {
	base      string
	token     string
	tokenFile string // where the token was read, for the sentence of a 401
	http      *http.Client
}

// parse parses a node command's flags, completes them from the
// environment and the config file, and returns a client for the node.
func (f nodeFlags) parse(fs *flag.FlagSet, env *environment, args []string) (*client, error) {
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	if err := applySettings(fs, env.getenv, *f.config); err != nil {
		return nil, err
	}
	return f.newClient()
}

// newClient checks the node's URL, reads the token and returns a client.
func (f nodeFlags) newClient() (*client, error) {
	base, err := nodeURL(*f.node)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(*f.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the API token of the node at %s: %w (give the node's token file with --token-file or VULTRON_TOKEN_FILE)", base, err)
	}
	token := strings.TrimSpace(string(data))
	if token == "" {
		return nil, fmt.Errorf("token file %s is empty", *f.tokenFile)
	}
	return &client{base: base, token: token, tokenFile: *f.tokenFile, http: &http.Client{Timeout: 30 * time.Second}}, nil
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

// do sends a request and decodes a JSON answer into out (when not nil). A
// refusal becomes an error carrying the node's one-sentence reason.
func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/activity+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the node's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		if resp.StatusCode == http.StatusUnauthorized {
			return &nodeError{status: resp.StatusCode, msg: fmt.Sprintf("the node at %s refused the API token from %s (401); give that node's token file with --token-file or VULTRON_TOKEN_FILE", c.base, c.tokenFile)}
		}
		if msg, ok := problem.ReadBody(data); ok {
			return &nodeError{status: resp.StatusCode, msg: fmt.Sprintf("the node refused (%d): %s", resp.StatusCode, msg)}
		}
		return &nodeError{status: resp.StatusCode, msg: "the node answered " + resp.Status}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the node's answer is not the expected JSON: %w", err)
	}
	return nil
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
