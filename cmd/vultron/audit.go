package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
)

func runAudit(ctx context.Context, env *environment, args []string) error {
	sub := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		sub, args = args[0], args[1:]
	}
	fs := newFlagSet("audit", "vultron audit show [--after N] [--limit N] [--json] | verify [flags]",
		"Page through the node's audit log (every inbound and outbound activity, refusal,\n"+
			"key change and admin action, with signer, key id, digest, decision and reason),\n"+
			"or check its hash chain. verify exits with 1 and names the first broken record\n"+
			"when a record was changed, removed or reordered.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	after := fs.Uint64("after", 0, "show records after this sequence number")
	limit := fs.Int("limit", 0, "show at most this many records (0: all after --after)")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError("audit %s takes no arguments", sub)
	}
	switch sub {
	case "show":
		if *limit < 0 {
			return usageError("--limit must not be negative")
		}
		rows, err := auditRows(ctx, c, *after, *limit)
		if err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, rows)
		}
		if len(rows) == 0 {
			if *after > 0 {
				return printNone(env, "No audit records after %d", *after)
			}
			return printNone(env, "No audit records")
		}
		printAudit(env, rows)
		return nil
	case "verify":
		var v api.AuditVerdict
		if err := c.do(ctx, "GET", "/api/audit/verify", nil, &v); err != nil {
			return err
		}
		if *asJSON {
			if err := printJSON(env, v); err != nil {
				return err
			}
		}
		if !v.OK {
			return fmt.Errorf("the audit log is broken at record %d: %s", v.BrokenSeq, v.Reason)
		}
		if !*asJSON {
			fmt.Fprintf(env.stdout, "audit log intact: %d records, head %s\n", v.Records, v.Head)
		}
		return nil
	case "":
		return usageError("audit needs a command: show or verify")
	default:
		return usageError("unknown audit command %q (want show or verify)", sub)
	}
}

// auditRows follows the pages of GET /api/audit from after until limit
// records (all when limit is 0) or the end.
func auditRows(ctx context.Context, c *client, after uint64, limit int) ([]api.AuditRecord, error) {
	rows := []api.AuditRecord{}
	for {
		page := 1000
		if limit > 0 {
			page = min(page, limit-len(rows))
		}
		q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(page)}}
		var out api.AuditPage
		if err := c.do(ctx, "GET", "/api/audit?"+q.Encode(), nil, &out); err != nil {
			return nil, err
		}
		rows = append(rows, out.Records...)
		if out.Next == 0 || (limit > 0 && len(rows) >= limit) {
			return rows, nil
		}
		if out.Next <= after {
			return nil, errors.New("the node's audit pages do not advance")
		}
		after = out.Next
	}
}

func printAudit(env *environment, rows []api.AuditRecord) {
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tDECISION\tSTATUS\tACTOR\tSIGNER\tKEY\tACTIVITY\tREMOTE\tBY\tREASON")
	for _, r := range rows {
		status := "-"
		if r.Status != 0 {
			status = strconv.Itoa(r.Status)
		}
		reason := r.Reason
		if r.Dropped > 0 && reason == "" {
			reason = fmt.Sprintf("%d not recorded one by one", r.Dropped)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.Time.UTC().Format(time.RFC3339), r.Kind, r.Decision,
			status, dash(r.Actor), dash(r.Signer), dash(r.KeyID), dash(r.ActivityID), dash(r.Remote), dash(r.Principal), dash(reason))
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
