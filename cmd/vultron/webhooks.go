package main

import (
	"context"
	"fmt"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
)

func runWebhooks(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("webhooks", "vultron webhooks [flags] [list | resume ID]",
		"List the node's webhooks (serve --webhook), where each is in the change feed\n"+
			"and whether the node paused it after it refused an event for good (a 400,\n"+
			"401, 403, 404, 410 or 422 several times in a row), or resume a paused one:\n"+
			"delivery starts again, in order, with the event it refused. Listing and\n"+
			"resuming need a token with the admin scope.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	switch fs.Arg(0) {
	case "", "list":
		if fs.NArg() > 1 {
			return usageError("list takes no arguments")
		}
		var out api.Webhooks
		if err := c.do(ctx, "GET", "/api/webhooks", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		printWebhooks(env, out.Webhooks)
		return nil
	case "resume":
		if fs.NArg() != 2 {
			return usageError("resume takes one webhook id (vultron webhooks lists them)")
		}
		var out api.Webhook
		if err := c.do(ctx, "POST", "/api/webhooks/"+url.PathEscape(fs.Arg(1))+"/resume", nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "webhook %s resumed: %d events to deliver, from the one it refused\n", out.ID, out.Pending)
		return nil
	default:
		return usageError("unknown webhooks command %q (want list or resume)", fs.Arg(0))
	}
}

func printWebhooks(env *environment, rows []api.Webhook) {
	if len(rows) == 0 {
		fmt.Fprintln(env.stdout, "No webhooks (serve --webhook URL adds one).")
		return
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tSTATE\tPENDING\tSKIPPED\tLAST ERROR")
	for _, w := range rows {
		state := "delivering"
		if w.Paused != nil {
			state = fmt.Sprintf("paused since %s (%d)", w.Paused.Since.UTC().Format(time.RFC3339), w.Paused.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", w.ID, w.URL, state, w.Pending, w.Skipped, w.LastError)
	}
	tw.Flush()
}
