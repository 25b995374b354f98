package main

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
)

func runDeliveries(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("deliveries", "vultron deliveries [flags] [list | retry ID]",
		"List the node's pending deliveries and dead letters (deliveries that failed\n"+
			"permanently or for longer than the retry horizon), or move a dead letter back\n"+
			"into the queue.", env)
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
		var out api.Deliveries
		if err := c.do(ctx, "GET", "/api/deliveries", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		printDeliveries(env, "pending", out.Pending)
		printDeliveries(env, "dead letters", out.Dead)
		return nil
	case "retry":
		if fs.NArg() != 2 {
			return usageError("retry takes one dead letter id")
		}
		id, err := strconv.ParseUint(fs.Arg(1), 10, 64)
		if err != nil {
			return usageError("dead letter id %q is not a number", fs.Arg(1))
		}
		var out api.Requeued
		if err := c.do(ctx, "POST", fmt.Sprintf("/api/deliveries/%d/retry", id), nil, &out); err != nil {
			return err
		}
		fmt.Fprintf(env.stdout, "dead letter %d requeued as delivery %d\n", id, out.Delivery)
		return nil
	default:
		return usageError("unknown deliveries command %q (want list or retry)", fs.Arg(0))
	}
}

func printDeliveries(env *environment, title string, rows []api.Delivery) {
	fmt.Fprintf(env.stdout, "%s: %d\n", title, len(rows))
	if len(rows) == 0 {
		return
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tACTOR\tRECIPIENT\tATTEMPTS\tNEXT\tLAST ERROR")
	for _, r := range rows {
		next := "-"
		if !r.NextAttempt.IsZero() {
			next = r.NextAttempt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%d\t%s\t%s\n", r.ID, r.Actor, r.Recipient, r.Attempts, next, r.LastError)
	}
	tw.Flush()
}
