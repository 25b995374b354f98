package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runReady is "vultron ready": it waits until a node answers GET /readyz
// with 200, so that a script may start a node in the background and go on
// once it serves.
func runReady(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("ready", "vultron ready [--node URL] [--timeout D]",
		"Wait until the node answers /readyz (its store open, its services started), at most\n"+
			"--timeout. Exit status 0 once it is ready, 1 when it was not in time. It needs no token.", env)
	// The node flags of every command, though no token is read.
	nf := addNodeFlags(fs)
	node := nf.node
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := applySettings(fs, env.getenv, *nf.config); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("ready takes no arguments")
	}
	base, err := nodeURL(*node)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usageError("--timeout must be positive, not %s", *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "it did not answer"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("ask %s whether it is ready: %w", base, err)
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				fmt.Fprintf(env.stdout, "%s is ready\n", base)
				return nil
			}
			last = fmt.Sprintf("it answered %d", resp.StatusCode)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the node at %s was not ready within %s: %s", base, *timeout, last)
		case <-tick.C:
		}
	}
}
