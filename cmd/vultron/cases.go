package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// caseRow is a case as the node's read API returns it.
type caseRow struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Owner        string     `json:"owner"`
	CaseActor    string     `json:"caseActor"`
	Hosted       bool       `json:"hosted"`
	EMState      string     `json:"emState"`
	EmbargoEnd   *time.Time `json:"embargoEnd"`
	PXAState     string     `json:"pxaState"`
	LedgerLength int64      `json:"ledgerLength"`
	TailHash     string     `json:"tailHash"`
	Closed       bool       `json:"closed"`
	Diverged     string     `json:"diverged"`
	Participants []struct {
		Actor            string   `json:"actor"`
		Roles            []string `json:"roles"`
		RMState          string   `json:"rmState"`
		VFDState         string   `json:"vfdState"`
		PECState         string   `json:"pecState"`
		Engaged          bool     `json:"engaged"`
		EmbargoAdherence bool     `json:"embargoAdherence"`
		Removed          bool     `json:"removed"`
	} `json:"participants"`
	Notes []struct {
		Author    string    `json:"author"`
		Content   string    `json:"content"`
		Published time.Time `json:"published"`
	} `json:"notes"`
}

func runCase(ctx context.Context, env *environment, args []string) error {
	if len(args) > 0 {
		if args[0] == "wait" {
			return runCaseWait(ctx, env, args[1:])
		}
		if g := caseActionGroup(); g.has(args[0]) {
			return g.run(ctx, env, args)
		}
	}
	fs := newFlagSet("case", "vultron case [flags] list | show CASE | ledger CASE | wait CASE | ACTION CASE",
		"Show the cases a node hosts or keeps a replica of: list them, show one with its\n"+
			"participants (roles, RM, VFD, embargo consent), print its hash-chained ledger, or\n"+
			"wait until it reaches a state (\"vultron case wait -h\").\n"+
			"CASE is a case id or a unique part of it.\n\n"+caseActionsHelp(), env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	from := fs.Int64("from", 0, "ledger: first log index to print")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	var all struct {
		Cases []caseRow `json:"cases"`
	}
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
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CASE\tNAME\tEM\tEMBARGO ENDS\tPXA\tPARTICIPANTS\tLEDGER\tHOSTED")
		for _, r := range all.Cases {
			end := "-"
			if r.EmbargoEnd != nil {
				end = r.EmbargoEnd.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%v\n", r.ID, r.Name, r.EMState, end, r.PXAState, len(r.Participants), r.LedgerLength, r.Hosted)
		}
		return tw.Flush()
	case "show", "ledger":
		if fs.NArg() != 2 {
			return usageError("%s takes one case id", fs.Arg(0))
		}
		if err := fetchAll(); err != nil {
			return err
		}
		id, err := pickCase(all.Cases, fs.Arg(1))
		if err != nil {
			return err
		}
		if fs.Arg(0) == "show" {
			var detail caseRow
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
		return usageError("unknown case command %q (want list, show, ledger, wait or %s)", fs.Arg(0), caseActionGroup().actionNames())
	}
}

// pickCase finds the case whose id is, or uniquely contains, key.
func pickCase(all []caseRow, key string) (string, error) {
	var found []string
	for _, r := range all {
		if r.ID == key {
			return r.ID, nil
		}
		if strings.Contains(r.ID, key) {
			found = append(found, r.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no case on the node matches %q", key)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q matches %d cases; give more of the id", key, len(found))
}

func printCase(env *environment, r caseRow) {
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
	line("world", "%s", r.PXAState)
	line("ledger", "%d entries, tail %s", r.LedgerLength, r.TailHash)
	if r.Closed {
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Actor, strings.Join(p.Roles, ","), p.RMState, p.VFDState, p.PECState, engaged)
	}
	tw.Flush()
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "\nnotes:\n")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  %s  %s: %s\n", n.Published.UTC().Format(time.RFC3339), n.Author, n.Content)
		}
	}
}

func printLedger(ctx context.Context, env *environment, c *client, id string, from int64, asJSON bool) error {
	type entry struct {
		LogIndex    int64     `json:"logIndex"`
		EventType   string    `json:"eventType"`
		LogObjectID string    `json:"logObjectId"`
		EntryHash   string    `json:"entryHash"`
		ReceivedAt  time.Time `json:"receivedAt"`
	}
	var all []json.RawMessage
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	if !asJSON {
		fmt.Fprintln(tw, "INDEX\tRECORDED\tEVENT\tACTIVITY\tHASH")
	}
	for {
		var page struct {
			Entries []json.RawMessage `json:"entries"`
			Next    *int64            `json:"next"`
		}
		if err := c.do(ctx, "GET", fmt.Sprintf("/api/cases/%s/ledger?from=%d&limit=1000", url.PathEscape(id), from), nil, &page); err != nil {
			return err
		}
		for _, raw := range page.Entries {
			if asJSON {
				all = append(all, raw)
				continue
			}
			var e entry
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("the node's ledger entry is malformed: %w", err)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", e.LogIndex, e.ReceivedAt.UTC().Format(time.RFC3339), e.EventType, e.LogObjectID, shortHash(e.EntryHash))
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
