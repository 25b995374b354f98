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
	fs := newFlagSet("deliveries", "vultron deliveries [flags] [list | retry ID | damaged | discard-damaged ID]",
		"List the node's pending deliveries and dead letters (deliveries that failed\n"+
			"permanently or for longer than the retry horizon), or move a dead letter back\n"+
			"into the queue. damaged lists the delivery records the node set aside unsent\n"+
			"because they did not open or decode (admin), and discard-damaged removes one\n"+
			"once looked at.", env)
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
		printDeliveries(env, "pending", "No pending deliveries", out.Pending, out.PendingCount)
		printDeliveries(env, "dead letters", "No dead letters", out.Dead, out.DeadCount)
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
	case "damaged":
		if fs.NArg() > 1 {
			return usageError("damaged takes no arguments")
		}
		var out api.DamagedDeliveries
		if err := c.do(ctx, "GET", "/api/deliveries/damaged", nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		printDamaged(env, out)
		return nil
	case "discard-damaged":
		if fs.NArg() != 2 {
			return usageError("discard-damaged takes one damaged delivery id")
		}
		id, err := strconv.ParseUint(fs.Arg(1), 10, 64)
		if err != nil {
			return usageError("damaged delivery id %q is not a number", fs.Arg(1))
		}
		var out api.DamagedDiscarded
		if err := c.do(ctx, "DELETE", fmt.Sprintf("/api/deliveries/damaged/%d", id), nil, &out); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, out)
		}
		fmt.Fprintf(env.stdout, "damaged delivery record %d discarded\n", out.Discarded)
		return nil
	default:
		return usageError("unknown deliveries command %q (want list, retry, damaged or discard-damaged)", fs.Arg(0))
	}
}

// printDamaged prints the damaged delivery records of page, of which the
// node keeps page.Count; one sentence when there are none.
func printDamaged(env *environment, page api.DamagedDeliveries) {
	count := max(page.Count, len(page.Damaged))
	switch {
	case count == 0:
		printNone(env, "No damaged delivery records")
		return
	case len(page.Damaged) < count:
		fmt.Fprintf(env.stdout, "damaged delivery records: %d, the oldest %d shown\n", count, len(page.Damaged))
	default:
		fmt.Fprintf(env.stdout, "damaged delivery records: %d\n", count)
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tSET ASIDE\tBYTES\tWHY IT DID NOT OPEN")
	for _, d := range page.Damaged {
		at := "-"
		if !d.SetAside.IsZero() {
			at = d.SetAside.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "  %d\t%s\t%d\t%s\n", d.ID, at, d.Bytes, d.Reason)
	}
	tw.Flush()
	fmt.Fprintln(env.stdout, "They were not sent; what each would have sent is in the outbox and the audit log.\n"+
		"vultron deliveries discard-damaged ID removes one once looked at (docs/operations.md).")
}

// printDeliveries prints a list of deliveries under its title and the
// count of them the node keeps, of which rows are the oldest; none, when
// there are none.
func printDeliveries(env *environment, title, none string, rows []api.Delivery, count int) {
	count = max(count, len(rows))
	switch {
	case count == 0:
		printNone(env, "%s", none)
		return
	case len(rows) < count:
		fmt.Fprintf(env.stdout, "%s: %d, the oldest %d shown\n", title, count, len(rows))
	default:
		fmt.Fprintf(env.stdout, "%s: %d\n", title, count)
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
