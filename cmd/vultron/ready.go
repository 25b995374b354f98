package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/openvultron/vultron/api"
)

// runReady is "vultron ready": it waits until a node answers GET /readyz
// with 200, so that a script may start a node in the background and go on
// once it serves.
func runReady(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("ready", "vultron ready [--node URL | --data DIR] [--timeout D]",
		"Wait until the node answers /readyz (its store open, its services started), at most\n"+
			"--timeout; --data DIR waits for the node serve starts on that data directory, at the\n"+
			"address it writes there. Exit status 0 once it is ready, 1 when it was not in time.\n"+
			"It needs no token.", env)
	// The node flags of every command, though no token is read.
	nf := addNodeFlags(fs)
	node := nf.node
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	onCommandLine := setFlags(fs)
	if err := applySettings(fs, env.getenv, *nf.config); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("ready takes no arguments")
	}
	// With --data, the node is the one serve runs on that directory (as
	// for every command, unless --node, or a setting when --data is one
	// too, names another): its address is read again at each try, since
	// serve makes the directory and writes the address only once it has
	// opened its store, and a file left by an earlier start may name
	// another address.
	fromData := nf.dataOverSettings(onCommandLine, setFlags(fs))
	var base string
	var err error
	if !fromData {
		if base, err = nodeURL(*node); err != nil {
			return err
		}
	}
	if *timeout <= 0 {
		return usageError("--timeout must be positive, not %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	what := "the node at " + base
	if fromData {
		what = "the node of " + *nf.dataDir
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	// What the node last said, kept when the wait ends during a request.
	last := "it did not answer"
	for {
		if fromData {
			// Not nf.dataNode: a script may run ready before serve has
			// made the directory.
			if base, err = readNodeURL(*nf.dataDir); err != nil {
				return err
			}
		}
		if base == "" {
			last = "serve has not written its address to " + filepath.Join(*nf.dataDir, nodeURLFile) + " yet"
		} else if ready, answer, err := askReady(ctx, client, base); err != nil {
			return err
		} else if ready {
			fmt.Fprintf(env.stdout, "%s is ready\n", base)
			return nil
		} else if answer != "" {
			last = answer
		} else if ctx.Err() == nil {
			last = "it did not answer"
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s was not ready within %s: %s", what, *timeout, last)
		case <-tick.C:
		}
	}
}

// askReady asks the node at base for /readyz once: ready when it answers
// 200, else what it answered ("" when it did not).
func askReady(ctx context.Context, client *http.Client, base string) (ready bool, answer string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		return false, "", fmt.Errorf("ask %s whether it is ready: %w", base, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, "", nil
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true, "", nil
	}
	answer = fmt.Sprintf("it answered %d", resp.StatusCode)
	// A node says which check failed and why (api.Readiness).
	var why api.Readiness
	if json.NewDecoder(io.LimitReader(resp.Body, 4<<10)).Decode(&why) == nil && why.Check != "" {
		answer += ": " + why.Check
		if why.Error != "" {
			answer += ": " + why.Error
		}
	}
	return false, answer, nil
}
