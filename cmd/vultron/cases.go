package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
)

func runCase(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		if args[0] == "wait" {
			return runCaseWait(ctx, env, args[1:])
		}
		if g := caseActionGroup(); g.has(args[0]) {
			return g.run(ctx, env, args)
		}
	}
	fs := newFlagSet("case", "vultron case [flags] list | show CASE | ledger CASE | resync CASE | wait CASE | ACTION CASE",
		"Show the cases a node hosts or keeps a replica of: list them, show one with its\n"+
			"participants (roles, RM, VFD, embargo consent) and how its copy compares with the\n"+
			"Case Actor's ledger, print its hash-chained ledger, or wait until it reaches a state\n"+
			"(\"vultron case wait -h\").\n"+
			"resync checks a replica against its Case Actor now and fetches what it lacks; with\n"+
			"--rebuild it drops the node's copy and fetches the Case Actor's ledger from its start,\n"+
			"which is how a forked replica is repaired once both sides have been looked at.\n"+
			"CASE is a case id, its short id (the last part of its id) or a unique part of its id.\n\n"+caseActionsHelp(), env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	from := fs.Int64("from", 0, "ledger: first log index to print")
	rebuild := fs.Bool("rebuild", false, "resync: drop this node's copy and fetch the Case Actor's whole ledger")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if *from < 0 {
		return usageError("--from must be a log index, 0 or more, not %d", *from)
	}
	var all api.CasePage
	fetchAll := func() error {
		var err error
		all.Cases, err = listAllCases(ctx, c)
		return err
	}

	switch fs.Arg(0) {
	case "", "list":
		if err := fetchAll(); err != nil {
			return err
		}
		if *asJSON {
			return printJSON(env, all.Cases)
		}
		if len(all.Cases) == 0 {
			return printNone(env, "No cases: a case opens when a report is validated (vultron report validate)")
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tNAME\tEM\tEMBARGO ENDS\tPXA\tPARTICIPANTS\tLEDGER\tREPLICA\tCLOSED")
		for _, r := range all.Cases {
			end := "-"
			if r.EmbargoEnd != nil {
				end = r.EmbargoEnd.UTC().Format(time.RFC3339)
			}
			// The short id, which every command takes for CASE; --json
			// has the id.
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", cases.ShortID(r.ID), r.Name, r.EMState, end, r.PXAState, len(r.Participants), r.LedgerLength, replicaWord(r.Replica), closedWord(r))
		}
		return tw.Flush()
	case "show", "ledger", "resync":
		if fs.NArg() != 2 {
			return usageError("%s takes one case: its id, its short id or a unique part of its id", fs.Arg(0))
		}
		id, err := resolveCaseID(ctx, c, fs.Arg(1))
		if err != nil {
			return err
		}
		if fs.Arg(0) == "resync" {
			return resyncCase(ctx, env, c, id, *rebuild, *asJSON)
		}
		if fs.Arg(0) == "show" {
			var detail api.CaseDetail
			var raw json.RawMessage
			if err := c.do(ctx, "GET", "/api/cases/"+url.PathEscape(id), nil, &raw); err != nil {
				return err
			}
			if *asJSON {
				_, err := env.stdout.Write(append(raw, '\n'))
				return err
			}
			if err := json.Unmarshal(raw, &detail); err != nil {
				return fmt.Errorf("the node's answer is not a case: %w", err)
			}
			printCase(env, detail)
			return nil
		}
		return printLedger(ctx, env, c, id, *from, *asJSON)
	default:
		return usageError("unknown case command %q (want list, show, ledger, resync, wait or %s)", fs.Arg(0), caseActionGroup().actionNames())
	}
}

// pickCase finds the case whose id or short id is key, or whose id
// uniquely contains it.
// noCaseError says that no case of the node matches key.
type noCaseError struct{ key string }

func (e noCaseError) Error() string {
	return fmt.Sprintf("no case on the node matches %q (\"vultron case list\" lists them)", e.key)
}

func pickCase(all []api.Case, key string) (string, error) {
	var found []string
	for _, r := range all {
		if r.ID == key || cases.ShortID(r.ID) == key {
			return r.ID, nil
		}
		if strings.Contains(r.ID, key) {
			found = append(found, r.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", noCaseError{key}
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q matches %d cases; give more of the id", key, len(found))
}

func printCase(env *environment, r api.CaseDetail) {
	w := env.stdout
	line := func(label, format string, args ...any) {
		fmt.Fprintf(w, "%-11s "+format+"\n", append([]any{label}, args...)...)
	}
	line("case", "%s", r.ID)
	line("name", "%s", r.Name)
	line("owner", "%s", r.Owner)
	line("case actor", "%s (hosted here: %v)", r.CaseActor, r.Hosted)
	if r.EmbargoEnd != nil {
		line("embargo", "%s until %s", r.EMState, r.EmbargoEnd.UTC().Format(time.RFC3339))
	} else {
		line("embargo", "%s", r.EMState)
	}
	// The open proposals: what each invitee is asked to accept, and by
	// when (the "embargo accept" and "embargo reject" PROPOSAL is the
	// Invite's id).
	for _, pr := range r.Proposals {
		by := ""
		if !pr.RSVPBy.IsZero() && !r.Closed {
			by = ", answer by " + pr.RSVPBy.UTC().Format(time.RFC3339)
		}
		line("proposed", "ending %s by %s%s (%s)", pr.Terms.End.UTC().Format(time.RFC3339), pr.Terms.Proposer, by, pr.InviteID)
	}
	// What else awaits an answer: the invitations the invitees have not
	// answered (the Case Actor's Invite, which "participant accept-invite"
	// names), the suggestions the owner has not decided, and an offer of
	// the ownership.
	for _, inv := range r.Invites {
		invite := inv.Sent
		if invite == "" {
			invite = inv.ID
		}
		line("invited", "%s%s by %s at %s, not answered yet (%s)", inv.Actor, asRoles(inv.Roles), inv.By, inv.At.UTC().Format(time.RFC3339), invite)
	}
	for _, sg := range r.Suggestions {
		line("suggested", "%s%s by %s, not decided yet (%s)", sg.Actor, asRoles(sg.Roles), sg.By, sg.ID)
	}
	if tr := r.Transfer; tr != nil {
		line("transfer", "ownership offered to %s, not answered yet (%s)", tr.To, tr.ID)
	}
	line("world", "%s", r.PXAState)
	line("ledger", "%d entries, tail %s", r.LedgerLength, r.TailHash)
	line("replica", "%s", replicaLine(r.Replica))
	switch {
	case r.Closure != nil:
		rest := "a participant still in it can only close its own part (vultron case close)"
		if allClosed(r.Participants) {
			rest = "every participant has closed its part"
		}
		line("closed", "%s: its owner %s left, so its Case Actor closed the case for every participant; %s",
			r.Closure.At.UTC().Format(time.RFC3339), r.Closure.Owner, rest)
	case r.Closed:
		line("closed", "every participant has closed the case")
	}
	if r.Diverged != "" {
		line("DIVERGED", "%s", r.Diverged)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTICIPANT\tROLES\tRM\tVFD\tCONSENT\tENGAGED")
	for _, p := range r.Participants {
		engaged := strconv.FormatBool(p.Engaged)
		if p.Removed {
			engaged = "removed"
		}
		consent := p.PECState
		if p.RSVPBy != nil {
			// Invited to a proposal (or its consent lapsed under a
			// revision): when it is to answer by.
			consent += " (answer by " + p.RSVPBy.UTC().Format(time.RFC3339) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Actor, strings.Join(p.Roles, ","), p.RMState, p.VFDState, consent, engaged)
	}
	tw.Flush()
	if len(r.VulnerabilityIDs) > 0 {
		fmt.Fprintf(w, "\nknown as:   %s\n", strings.Join(r.VulnerabilityIDs, ", "))
	}
	if len(r.Products) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PRODUCT\tVENDOR\tVERSIONS\tSTATUS\tPURL/CPE")
		for _, p := range r.Products {
			id := p.PURL
			if id == "" {
				id = p.CPE
			}
			status := p.Status
			if p.Justification != "" {
				status += " (" + p.Justification + ")"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Name, p.Vendor, p.Versions, status, id)
		}
		tw.Flush()
	}
	if a := r.Advisory; a != nil {
		fmt.Fprintln(w)
		if n := len(a.Revisions); n > 0 {
			last := a.Revisions[n-1]
			line("advisory", "%s, revision %d published %s: %s", cases.TrackingID(r.ID), last.Number, last.At.UTC().Format(time.RFC3339), last.Title)
		}
		if d := a.Draft; d != nil {
			line("draft", "%q shared %s for review", d.Title, d.At.UTC().Format(time.RFC3339))
			for _, rv := range d.Reviews {
				comment := ""
				if rv.Comment != "" {
					comment = ": " + rv.Comment
				}
				line("  reviewer", "%s %s%s", rv.Actor, rv.State, comment)
			}
		}
		if pt := a.PublishAt; pt != nil {
			line("publish at", "%s (proposed by %s; accepted by %s)", pt.Time.UTC().Format(time.RFC3339), pt.By, strings.Join(pt.Accepted, ", "))
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n")
		for _, n := range r.Notes {
			author := n.Author
			if by := r.NotesSentBy[n.ID]; by != "" {
				author += " (" + by + ")"
			}
			fmt.Fprintf(w, "  %s  %s: %s\n", n.Published.UTC().Format(time.RFC3339), author, n.Content)
		}
	}
}

// asRoles says " as " and the roles of an invitation or a suggestion, ""
// when it names none.
func asRoles(r cvdstate.RoleSet) string {
	if r == 0 {
		return ""
	}
	return " as " + strings.Join(r.Names(), ",")
}

// replicaWord says in a word or two how a replica compares with its Case
// Actor's ledger, for the case list.
func replicaWord(st api.ReplicaStatus) string {
	switch st.State {
	case cases.ReplicaBehind:
		return fmt.Sprintf("behind %d", st.Behind)
	case cases.ReplicaForked:
		return "FORKED"
	case cases.ReplicaRebuilding:
		return "REBUILDING"
	case cases.ReplicaEnded:
		return "ENDED"
	case "":
		return "-"
	}
	return string(st.State)
}

// replicaLine says how a replica compares with its Case Actor's ledger and
// what the node is doing about it, for case show.
func replicaLine(st api.ReplicaStatus) string {
	switch st.State {
	case cases.ReplicaBehind:
		return fmt.Sprintf("BEHIND by %d entries since %s: %s", st.Behind, st.Since.UTC().Format(time.RFC3339), st.Doing)
	case cases.ReplicaForked:
		if st.Fork == nil {
			return fmt.Sprintf("FORKED since %s: %s", st.Since.UTC().Format(time.RFC3339), st.Doing)
		}
		return fmt.Sprintf("FORKED since %s: %s (%s)", st.Since.UTC().Format(time.RFC3339), st.Doing, st.Fork.Reason)
	case cases.ReplicaEnded:
		return fmt.Sprintf("ENDED since %s: %s (%s)", st.Since.UTC().Format(time.RFC3339), st.Doing, st.LastError)
	}
	return fmt.Sprintf("%s: %s", st.State, st.Doing)
}

// resyncCase asks the node to check its replica of case id now (and, with
// rebuild, to fetch the Case Actor's ledger from its start) and prints
// the replica's status.
func resyncCase(ctx context.Context, env *environment, c *client, id string, rebuild, asJSON bool) error {
	body := []byte(`{"rebuild":false}`)
	if rebuild {
		body = []byte(`{"rebuild":true}`)
	}
	var out api.Resync
	if err := c.do(ctx, "POST", "/api/cases/"+url.PathEscape(id)+"/resync", body, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.stdout, "case %s\nreplica %s\n", out.Case, replicaLine(out.Replica))
	return nil
}

// sentEntry is a ledger entry as --json prints it: the entry's own fields,
// and for this node's own entries the person who had it sent.
type sentEntry struct {
	ledger.Entry
	SentBy string `json:"sentBy,omitempty"`
}

func printLedger(ctx context.Context, env *environment, c *client, id string, from int64, asJSON bool) error {
	var all []sentEntry
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "INDEX\tRECORDED\tEVENT\tBY\tACTIVITY\tHASH")
	}
	for {
		var page api.LedgerPage
		if err := c.do(ctx, "GET", fmt.Sprintf("/api/cases/%s/ledger?from=%d&limit=1000", url.PathEscape(id), from), nil, &page); err != nil {
			return err
		}
		for _, e := range page.Entries {
			if asJSON {
				all = append(all, sentEntry{Entry: e, SentBy: page.SentBy[e.LogObjectID]})
				continue
			}
			received, err := time.Parse(time.RFC3339Nano, e.ReceivedAt)
			if err != nil {
				return fmt.Errorf("the node's ledger entry is malformed: %w", err)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.LogIndex, received.UTC().Format(time.RFC3339), e.EventType, cmp.Or(page.SentBy[e.LogObjectID], "-"), e.LogObjectID, shortHash(e.EntryHash))
		}
		if page.Next == nil || len(page.Entries) == 0 {
			break
		}
		from = *page.Next
	}
	if asJSON {
		return printJSON(env, all)
	}
	return tw.Flush()
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

func printJSON(env *environment, v any) error {
	enc := json.NewEncoder(env.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printNone says, for a list with nothing in it, so in one sentence: a
// table's header alone reads as output cut short. --json prints the
// empty list instead.
func printNone(env *environment, format string, args ...any) error {
	_, err := fmt.Fprintf(env.stdout, "%s.\n", sentence(fmt.Sprintf(format, args...)))
	return err
}

// closedWord says, for the case list, whether a case is closed and why.
func closedWord(r api.Case) string {
	switch {
	case r.Closure != nil:
		return r.Closure.At.UTC().Format(time.RFC3339) + " (owner left)"
	case r.Closed:
		return "every participant left"
	}
	return "-"
}

// allClosed reports whether every participant that was not removed has
// closed its part of a case.
func allClosed(ps []api.Participant) bool {
	for _, p := range ps {
		if !p.Removed && p.RMState != "CLOSED" {
			return false
		}
	}
	return true
}
