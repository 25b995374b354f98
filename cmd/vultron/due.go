package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/deadline"
)

func runDue(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("due", "vultron due [--overdue] [--limit N] [--json] [CASE]",
		"List the deadlines of the node's cases and reports, soonest due first: each participant's\n"+
			"clocks to acknowledge, validate, engage and fix, the EU Cyber Resilience Act's clocks once\n"+
			"attacks are observed, and the embargo's end, each with its due time in the node's time zone\n"+
			"and in UTC. With CASE (a case's or a report's id or short id), only its clocks.", env)
	nf := addNodeFlags(fs)
	overdue := fs.Bool("overdue", false, "only the deadlines that have passed")
	limit := fs.Int("limit", 50, "list at most `N` deadlines (1 to 1000)")
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError("due takes at most one case, got %d arguments", fs.NArg())
	}
	if *limit < 1 || *limit > 1000 {
		return usageError("--limit must be from 1 to 1000, not %d", *limit)
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if *overdue {
		q.Set("overdue", "true")
	}
	if fs.NArg() == 1 {
		id, err := resolveCaseID(ctx, c, fs.Arg(0))
		if errors.As(err, new(noCaseError)) {
			// Not a case: a report's id or short id, which the node
			// takes as well.
			id, err = fs.Arg(0), nil
		}
		if err != nil {
			return err
		}
		q.Set("case", id)
	}
	var out api.Deadlines
	if err := c.do(ctx, "GET", "/api/deadlines?"+q.Encode(), nil, &out); isNotFound(err) && fs.NArg() == 1 {
		return fmt.Errorf("no case or report on the node matches %q", fs.Arg(0))
	} else if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, out)
	}
	if len(out.Deadlines) == 0 {
		if *overdue {
			return printNone(env, "Nothing is overdue")
		}
		return printNone(env, "No deadline is running")
	}
	// The due time in the node's zone, and in UTC beside it unless that
	// is the node's zone.
	inUTC := out.TimeZone != "UTC"
	header := []string{"due (" + out.TimeZone + ")", "UTC", "left", "clock", "limit", "case or report", "whose"}
	if !inUTC {
		header = slices.Delete(header, 1, 2)
	}
	rows := [][]string{header}
	for _, d := range out.Deadlines {
		what := "case " + cases.ShortID(d.Subject)
		if d.Report {
			what = "report " + cases.ShortID(d.Subject)
		}
		if d.Name != "" {
			what += " " + strconv.Quote(d.Name)
		}
		// One of the node's actors by its name, as --as and report list
		// name it, whether the clock is a report's or a case's; another
		// node's actor by its id.
		whose := d.Participant
		switch {
		case d.Local != "":
			whose = d.Local
		case whose == "":
			whose = "the case"
		}
		// The limit as the node words it: "at its time" for the embargo's
		// end and an invitation's answer-by time (deadline.Limit.Text).
		row := []string{d.DueLocal, d.Due.UTC().Format("2006-01-02 15:04"), deadline.In(d.Due, out.Now), d.Kind, d.Limit, what, whose}
		if !inUTC {
			row = slices.Delete(row, 1, 2)
		}
		rows = append(rows, row)
	}
	return table(env.stdout, rows)
}
