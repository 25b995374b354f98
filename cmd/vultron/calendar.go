package main

import (
	"context"
	"fmt"
)

// runCalendar prints the node's embargo calendar feeds, with the feed token
// calendar clients subscribe with.
func runCalendar(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("calendar", "vultron calendar [flags]",
		"Print the iCalendar (RFC 5545) feeds of a node's embargoes: one for every case, and\n"+
			"the address of each case's own feed. The URLs carry the node's feed token, which\n"+
			"reads the feeds and nothing else; subscribe to them in a calendar client.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("calendar takes no arguments")
	}
	var links struct {
		Calendar     string `json:"calendar"`
		CaseTemplate string `json:"caseTemplate"`
	}
	if err := c.do(ctx, "GET", "/api/calendar", nil, &links); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, links)
	}
	fmt.Fprintf(env.stdout, "every case:  %s\none case:    %s\n", links.Calendar, links.CaseTemplate)
	return nil
}
