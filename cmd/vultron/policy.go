package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"strings"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node"
)

// policyCommands are the subcommands of "vultron policy".
var policyUsage = `usage: vultron policy <subcommand> [flags]

An automation policy (serve --policy FILE, docs/policies.md) makes routine protocol decisions
for a node's actors.

subcommands:
  check FILE     check a policy file (YAML or JSON) and list its rules; exit 1 with the line and
                 reason of the first fault
  show           print the policy a running node follows
  explain CASE   which rules of a running node's policy would fire now in a case, and why`

func runPolicy(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintln(env.stderr, policyUsage)
		if len(args) == 0 {
			return usageError("policy needs a subcommand: check, show or explain")
		}
		return flag.ErrHelp
	}
	switch args[0] {
	case "check":
		return runPolicyCheck(env, args[1:])
	case "show":
		return runPolicyShow(ctx, env, args[1:])
	case "explain":
		return runPolicyExplain(ctx, env, args[1:])
	}
	return usageError("unknown policy subcommand %q; want check, show or explain", args[0])
}

func runPolicyCheck(env *environment, args []string) error {
	fs := newFlagSet("policy check", "vultron policy check FILE",
		"Check a policy file, whole: every rule's decision point, condition and actions, as serve --policy\n"+
			"does before it follows it. Print its rules, or the line and reason of the first fault.", env)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("policy check takes one file")
	}
	p, err := node.ReadPolicy(fs.Arg(0))
	if err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "policy %s: %s, valid\n", p.Name, ruleCount(len(p.Rules)))
	if len(p.Off) > 0 {
		fmt.Fprintf(env.stdout, "off for: %s\n", strings.Join(p.Off, ", "))
	}
	rows := [][]string{{"line", "rule", "on", "if", "do"}}
	for _, r := range p.Rules {
		var do []string
		for _, a := range r.Do {
			do = append(do, a.String())
		}
		cond := r.If
		if cond == "" {
			cond = "-"
		}
		rows = append(rows, []string{fmt.Sprint(r.Line), r.Name, string(r.On), cond, strings.Join(do, ", ")})
	}
	return table(env.stdout, rows)
}

// ruleCount says how many rules a policy has: "1 rule", "3 rules".
func ruleCount(n int) string {
	if n == 1 {
		return "1 rule"
	}
	return fmt.Sprintf("%d rules", n)
}

func runPolicyShow(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("policy show", "vultron policy show [--json]", "Print the policy a running node follows.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("policy show takes no arguments")
	}
	var out api.Policy
	if err := c.do(ctx, "GET", "/api/policy", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.stdout, "policy %s (%s): %s\n", out.Name, out.Source, ruleCount(len(out.Rules)))
	if len(out.Off) > 0 {
		fmt.Fprintf(env.stdout, "off for: %s\n", strings.Join(out.Off, ", "))
	}
	rows := [][]string{{"line", "rule", "on", "if", "do"}}
	for _, r := range out.Rules {
		cond := r.If
		if cond == "" {
			cond = "-"
		}
		rows = append(rows, []string{fmt.Sprint(r.Line), r.Name, r.On, cond, strings.Join(r.Do, ", ")})
	}
	return table(env.stdout, rows)
}

func runPolicyExplain(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("policy explain", "vultron policy explain CASE [--json]",
		"Say which rules of a running node's policy would fire now in a case, for each of the node's actors\n"+
			"in it and each decision point the policy has rules for, and why: the condition with the values it\n"+
			"read. \"open\" marks a point the case holds open now (a proposal waiting for an answer, a ready fix,\n"+
			"an intelligence signal ...), \"decided\" one the policy has decided already, or an embargo proposal or\n"+
			"invitation that closed with the actor's answer: its rules then say who answered it, how and when, and\n"+
			"the rule that did when the policy did. Nothing is sent.", env)
	nf := addNodeFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("policy explain takes one case")
	}
	id, err := resolveCaseID(ctx, c, fs.Arg(0))
	if err != nil {
		return err
	}
	var out api.PolicyExplanation
	if err := c.do(ctx, "GET", "/api/cases/"+url.PathEscape(id)+"/policy", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		return printJSON(env, out)
	}
	fmt.Fprintf(env.stdout, "case %s, policy %s\n", id, out.Policy)
	if len(out.Points) == 0 {
		var d api.CaseDetail
		if err := c.do(ctx, "GET", "/api/cases/"+url.PathEscape(id)+"?notes=0", nil, &d); err == nil && d.Closed {
			fmt.Fprintln(env.stdout, "the case is closed: the policy decides nothing in it")
		} else {
			fmt.Fprintln(env.stdout, "none of the node's actors works on the case, or the policy has no rule for it")
		}
	}
	for _, p := range out.Points {
		state := "not open now"
		switch {
		case p.Decided:
			state = "decided"
		case p.Open:
			state = "open now"
		}
		fmt.Fprintf(env.stdout, "\n%s for %s (%s)\n", p.Point, p.Actor, state)
		for _, r := range p.Rules {
			verdict := "does not fire"
			if r.Fires {
				verdict = "fires: " + strings.Join(r.Actions, ", ")
			}
			fmt.Fprintf(env.stdout, "  %s (line %d) %s\n    because %s\n", r.Rule, r.Line, verdict, r.Why)
		}
	}
	return nil
}
