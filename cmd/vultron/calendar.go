package main

import (
	"context"
	"fmt"

	"github.com/openvultron/vultron/api"
)

// runCalendar prints the node's embargo calendar feeds, with the feed token
// calendar clients subscribe with; --rotate issues a new feed token first.
func runCalendar(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("calendar", "vultron calendar [token] [--rotate] [flags]",
		"Print the iCalendar (RFC 5545) feeds of a node's embargoes: one for every case, and\n"+
			"the address of each case's own feed. The URLs carry the node's feed token, which\n"+
			"reads the feeds and nothing else; subscribe to them in a calendar client.\n"+
			"--rotate issues a new feed token: the URLs printed before stop working.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	rotate := fs.Bool("rotate", false, "issue a new feed token, retiring the old feed URLs")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 || (fs.NArg() == 1 && fs.Arg(0) != "token") {
		return usageError("calendar takes no arguments but the word token")
	}
	var links api.CalendarLinks
	method, path := "GET", "/api/calendar"
	if *rotate {
		method, path = "POST", "/api/calendar/token"
	}
	if err := c.do(ctx, method, path, nil, &links); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, links)
	}
	fmt.Fprintf(env.stdout, "every case:  %s\none case:    %s\n", links.Calendar, links.CaseTemplate)
	return nil
}
