package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/vocab"
)

// reportGroup is "vultron report": the Report Management messages a
// finder or a vendor sends about one report before (and as) a case opens.
func reportGroup() actionGroup {
	return actionGroup{
		name: "report",
		description: "Report Management (RM): submit a vulnerability report to a vendor or coordinator, and\n" +
			"decide on one received. The node acknowledges received reports (RK) by itself.\n" +
			"OFFER is the report's id, its short id (the last part of its id), the id of the Offer\n" +
			"that submitted it, or a unique part of either id.\n" +
			"Reading: \"vultron report list\" lists the reports received and submitted, \"vultron report\n" +
			"show OFFER\" shows one with its text.",
		actions: []actionSpec{
			{name: "submit", message: "RS", summary: "submit a vulnerability report to an actor (RS|EP with an embargo proposal)", minArgs: 0, maxArgs: 0,
				needs: "--to ACTOR --name TITLE", noCase: true,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.to, "to", "", "the actor id (URL) of the vendor or coordinator to report to (required)")
					fs.StringVar(&v.name, "name", "", "the report's title (required)")
					fs.StringVar(&v.content, "content", "", "the report's text")
					fs.StringVar(&v.contentFile, "content-file", "", "a file holding the report's text")
					embargoDaysFlag(fs, v, "embargo-days", "propose an embargo ending this many days from now with the report (EP)")
					fs.StringVar(&v.end, "embargo-end", "", "propose an embargo ending at this RFC 3339 time with the report (EP)")
				},
				build: buildSubmitReport},
			{name: "validate", message: "RV", summary: "validate a received report; this opens a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("Accept"), opensCase: true},
			{name: "invalidate", message: "RI", summary: "invalidate a received report", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("TentativeReject"), noCase: true},
			{name: "close", message: "RC", summary: "close a received report without a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				build: reportDecision("Reject"), noCase: true},
			{name: "add", message: "-", summary: "add a received report to a case that exists (owner; it opens no other case)", args: "CASE", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.offer, "offer", "", "the report to add: its id, short id, its Offer's id, or a unique part (required)")
				},
				build: buildAddReport},
			{name: "duplicate", message: "RC", summary: "close a received report as a duplicate of a case", args: "OFFER", minArgs: 1, maxArgs: 1,
				flags: func(fs *flag.FlagSet, v *actionValues) {
					fs.StringVar(&v.of, "of", "", "the case the report duplicates: its id, short id or a unique part (required)")
				},
				build: buildDuplicate, noCase: true},
		},
	}
}

func runReport(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 && (args[0] == "list" || args[0] == "show") {
		return runReportRead(ctx, env, args[0], args[1:])
	}
	return reportGroup().run(ctx, env, args)
}

func buildSubmitReport(ctx context.Context, s *session, v *actionValues, _ []string) (map[string]any, string, error) {
	if v.to == "" || v.name == "" {
		return nil, "", usageError("report submit needs --to ACTOR and --name TITLE")
	}
	if !strings.HasPrefix(v.to, "https://") && !strings.HasPrefix(v.to, "http://") {
		return nil, "", usageError("--to must be an actor id (a URL), not %q", v.to)
	}
	// The node leaves the sender out of an activity's recipients, and
	// would refuse a report to itself as one with no recipient.
	me, err := s.me(ctx)
	if err != nil {
		return nil, "", err
	}
	if strings.TrimRight(v.to, "/") == me {
		return nil, "", usageError("--to names %s, the actor that submits the report; a report goes to another actor, the vendor's or a coordinator's", s.as)
	}
	content, err := v.text("the report text")
	if err != nil {
		return nil, "", err
	}
	now := time.Now().UTC().Truncate(time.Second)
	end, err := endFlags(v, v.daysSet, now, "--embargo-end", "--embargo-days")
	if err != nil {
		return nil, "", err
	}
	// The node checks the terms: an end that has passed is its refusal.
	return vocab.OfferReport(v.to, v.name, content, now, end), "", nil
}

// buildAddReport adds a report the acting actor received to a case it
// owns: Add(VulnerabilityReport) to the case, also addressed to the
// report's reporter.
func buildAddReport(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.offer == "" {
		return nil, "", usageError("report add needs --offer OFFER, the report to add")
	}
	d, err := s.caseDetail(ctx, args[0])
	if err != nil {
		return nil, "", err
	}
	r, err := findReport(ctx, s.c, s.as, v.offer, true)
	if err != nil {
		return nil, "", err
	}
	report := map[string]any{"id": r.ID, "type": vocab.TypeVulnerabilityReport, "name": r.Name}
	if r.Content != "" {
		report["content"] = r.Content
	}
	return vocab.AddReport(d.ID, report, r.Reporter), d.ID, nil
}

// buildDuplicate closes a report the acting actor received as a duplicate
// of a case (RC, with the case as the pointer).
func buildDuplicate(ctx context.Context, s *session, v *actionValues, args []string) (map[string]any, string, error) {
	if v.of == "" {
		return nil, "", usageError("report duplicate needs --of CASE, the case the report duplicates")
	}
	r, err := findReport(ctx, s.c, s.as, args[0], true)
	if err != nil {
		return nil, "", err
	}
	d, err := s.caseDetail(ctx, v.of)
	if err != nil {
		return nil, "", err
	}
	return vocab.CloseAsDuplicate(r.Offer, d.ID, r.Reporter), "", nil
}

// reportDecision answers a report's Offer with an activity of type typ:
// Accept (RV), TentativeReject (RI) or Reject (RC), addressed to its
// reporter.
func reportDecision(typ string) func(context.Context, *session, *actionValues, []string) (map[string]any, string, error) {
	return func(ctx context.Context, s *session, _ *actionValues, args []string) (map[string]any, string, error) {
		r, err := findReport(ctx, s.c, s.as, args[0], true)
		if err != nil {
			return nil, "", err
		}
		if r.Role != string(cases.Receiver) {
			return nil, "", fmt.Errorf("%s submitted report %s; only its receiver decides on it", s.as, r.ID)
		}
		s.reportID = r.ID
		act := map[string]any{"type": typ, "object": r.Offer}
		if r.Reporter != "" {
			act["to"] = []string{r.Reporter}
		}
		return act, "", nil
	}
}

// awaitReport finds the report key names (a received one when received),
// waiting at most s.timeout for one that has not arrived yet: a
// reporter's node delivers it a moment after the reporter submitted it.
func awaitReport(ctx context.Context, s *session, key string, received bool) (api.Report, error) {
	deadline := time.Now().Add(s.timeout)
	for {
		r, err := findReport(ctx, s.c, s.as, key, received)
		var none *noSuchReport
		if err == nil || !errors.As(err, &none) || time.Now().After(deadline) {
			return r, err
		}
		select {
		case <-ctx.Done():
			return api.Report{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// noSuchReport is findReport's answer when no report matches.
type noSuchReport struct {
	who, key string
	received bool // only the reports received were looked at
}

func (e *noSuchReport) Error() string {
	kept := "received or submitted"
	if e.received {
		kept = "received"
	}
	return fmt.Sprintf("no report %s %s matches %q (\"vultron report list\" lists them)", e.who, kept, e.key)
}

// caseOfReport returns the case the validation of s.reportID opened.
func (s *session) caseOfReport(ctx context.Context) (string, error) {
	var r api.Report
	if err := s.c.do(ctx, "GET", "/api/reports/"+url.PathEscape(s.reportID)+"?actor="+url.QueryEscape(s.as), nil, &r); err != nil {
		return "", fmt.Errorf("its report could not be read back: %w", err)
	}
	if r.Case == "" {
		return "", fmt.Errorf("report %s has no case (it is %s)", r.ID, r.RMState)
	}
	return r.Case, nil
}

// listReports follows the pages of GET /api/reports, of local actor as
// (all of the node's actors when "").
func listReports(ctx context.Context, c *client, as string) ([]api.Report, error) {
	all := []api.Report{} // --json prints [] for none, not null
	for after := ""; ; {
		var page api.ReportPage
		q := url.Values{"limit": {"1000"}, "after": {after}}
		if as != "" {
			q.Set("actor", as)
		}
		if err := c.do(ctx, "GET", "/api/reports?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Reports...)
		if page.Next == "" || page.Next == after {
			return all, nil
		}
		after = page.Next
	}
}

// findReport finds the report key names, as local actor as (any of the
// node's actors when "") keeps it: the node resolves a report's id, short
// id or Offer id; a unique part of a report's or an Offer's id is matched
// against the list. received keeps only the reports as received.
func findReport(ctx context.Context, c *client, as, key string, received bool) (api.Report, error) {
	q := url.Values{}
	if as != "" {
		q.Set("actor", as)
	}
	var r api.Report
	err := c.do(ctx, "GET", "/api/reports/"+url.PathEscape(key)+"?"+q.Encode(), nil, &r)
	if err == nil {
		return r, nil
	}
	if !isNotFound(err) {
		return api.Report{}, err
	}
	all, err := listReports(ctx, c, as)
	if err != nil {
		return api.Report{}, err
	}
	var found []api.Report
	for _, r := range all {
		if (!received || r.Role == string(cases.Receiver)) && (strings.Contains(r.ID, key) || strings.Contains(r.Offer, key)) {
			found = append(found, r)
		}
	}
	who := "the node's actors"
	if as != "" {
		who = as
	}
	switch len(found) {
	case 0:
		return api.Report{}, &noSuchReport{who: who, key: key, received: received}
	case 1:
		// The list has no text: read the one found.
		err := c.do(ctx, "GET", "/api/reports/"+url.PathEscape(found[0].ID)+"?actor="+url.QueryEscape(found[0].Actor), nil, &r)
		return r, err
	}
	return api.Report{}, fmt.Errorf("%q matches %d reports of %s; give more of the id", key, len(found), who)
}

// runReportRead is "vultron report list" and "vultron report show OFFER".
func runReportRead(ctx context.Context, env *environment, verb string, args []string) error {
	synopsis := "vultron report list [flags]"
	if verb == "show" {
		synopsis = "vultron report show OFFER [flags]"
	}
	fs := newFlagSet("report "+verb, synopsis,
		"list: the reports the node's actors received (and submitted), oldest first: short id, when it\n"+
			"arrived, the receiver's state, the reporter, the case it opened and its title.\n"+
			"show: one report with its text. OFFER is the report's id, its short id, its Offer's id or a\n"+
			"unique part of either id.", env)
	nf := addNodeFlags(fs)
	as := fs.String("as", "", "only the reports of this local actor (default: every actor of the node)")
	asJSON := fs.Bool("json", false, "print JSON")
	var wait *time.Duration
	if verb == "show" {
		wait = fs.Duration("timeout", 0, "wait this long for a report that has not arrived yet (default: do not wait)")
	}
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if verb == "show" {
		if fs.NArg() != 1 {
			return usageError("report show takes one report: its id, short id or a unique part of its id")
		}
		if *wait < 0 {
			return usageError("--timeout must not be negative, not %s", *wait)
		}
		r, err := awaitReport(ctx, &session{c: c, as: *as, timeout: *wait}, fs.Arg(0), false)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, r)
		}
		printReport(env, r, submittedDelivery(ctx, c, r))
		return nil
	}
	if fs.NArg() != 0 {
		return usageError("report list takes no arguments")
	}
	all, err := listReports(ctx, c, *as)
	if err != nil {
		return err
	}
	sortReports(all)
	if *asJSON {
		return printJSON(env, all)
	}
	if len(all) == 0 {
		return printNone(env, "No reports")
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPORT\tRECEIVED\tACTOR\tSTATE\tREPORTER\tCASE\tTITLE")
	for _, r := range all {
		caseID := "-"
		switch {
		case r.Case != "":
			caseID = cases.ShortID(r.Case)
		case r.DuplicateOf != "":
			// Closed as a duplicate: the case it points at, not "-", which
			// reads as a report that waits for a decision.
			caseID = "duplicate of " + cases.ShortID(r.DuplicateOf)
		}
		reporter := r.Reporter
		if r.Role == string(cases.Reporter) {
			reporter = "(submitted)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ShortID, r.Received.UTC().Format(time.RFC3339), r.Actor, r.RMState, reporter, caseID, r.Name)
	}
	return tw.Flush()
}

// sortReports orders reports by when they arrived, oldest first.
func sortReports(rs []api.Report) {
	slices.SortStableFunc(rs, func(a, b api.Report) int { return a.Received.Compare(b.Received) })
}

// submittedDelivery says whether a report the node's actor submitted
// reached its recipient, from the node's delivery queue; "" for a report
// received, or when the queue does not tell.
func submittedDelivery(ctx context.Context, c *client, r api.Report) string {
	if r.Role != string(cases.Reporter) || r.Offer == "" {
		return ""
	}
	pending, dead, complete, err := activityDeliveries(ctx, c, r.Offer)
	if err != nil {
		return ""
	}
	o := outcomeOf(pending, dead, complete)
	switch o.State {
	case deliveryDelivered:
		return "delivered"
	case deliveryUnknown:
		return ""
	}
	return o.sentence()
}

// printReport prints a report with its text; delivery, when not "", says
// whether a submitted report reached its recipient.
func printReport(env *environment, r api.Report, delivery string) {
	w := env.stdout
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-9s "+format+"\n", append([]any{label}, args...)...)
	}
	line("report", "%s", r.ID)
	line("title", "%s", r.Name)
	if r.Role == string(cases.Reporter) {
		line("reporter", "%s (submitted by %s)", r.Reporter, r.Actor)
		line("submitted", "%s", r.Received.UTC().Format(time.RFC3339))
		if delivery != "" {
			line("delivery", "%s", delivery)
		}
	} else {
		line("reporter", "%s", r.Reporter)
		line("received", "%s by %s", r.Received.UTC().Format(time.RFC3339), r.Actor)
	}
	line("state", "%s", r.RMState)
	switch {
	case r.Case != "":
		line("case", "%s (%s)", cases.ShortID(r.Case), r.Case)
	case r.DuplicateOf != "":
		line("case", "none: closed as a duplicate of case %s (%s)", cases.ShortID(r.DuplicateOf), r.DuplicateOf)
	case r.RMState == "CLOSED":
		line("case", "none: the report is closed")
	default:
		line("case", "none yet")
	}
	line("offer", "%s", r.Offer)
	fmt.Fprintln(w)
	if r.Content == "" {
		fmt.Fprintln(w, "(the report has no text)")
		return
	}
	fmt.Fprintln(w, strings.TrimRight(r.Content, "\n"))
}
