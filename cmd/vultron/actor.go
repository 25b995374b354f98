package main

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/openvultron/vultron/api"
)

// runActor runs `vultron actor rotate-key NAME`.
func runActor(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("actor", "vultron actor rotate-key NAME [flags]",
		"Give a local actor a new RSA-2048 key under a new key id. The new key signs\n"+
			"everything the actor sends from now on; the old key stays in the actor's\n"+
			"document, and peers keep accepting it, for --key-overlap.", env)
	nf := addNodeFlags(fs)
	overlap := daysFlag(7 * 24 * time.Hour)
	fs.Var(&overlap, "key-overlap", "how long the old key stays published and accepted (such as 7d or 36h)")
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.Arg(0) != "rotate-key" {
		return usageError("unknown actor command %q (want rotate-key)", fs.Arg(0))
	}
	if fs.NArg() != 2 {
		return usageError("rotate-key takes one actor name")
	}
	var out api.KeyRotation
	path := "/api/actors/" + url.PathEscape(fs.Arg(1)) + "/rotate-key?overlap=" + url.QueryEscape(time.Duration(overlap).String())
	if err := c.do(ctx, "POST", path, nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.stdout, "%s now signs with %s; %s stays accepted until %s\n", out.Actor, out.KeyID, out.PreviousKeyID, out.PreviousUntil.UTC().Format(time.RFC3339))
	return nil
}
