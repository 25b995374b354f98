package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// actionSpec is one protocol action of the command line: a subcommand of
// a group (report, case, embargo, participant, status) that builds one
// activity, submits it to the acting actor's outbox and prints the result.
// The node checks the protocol's rules; the command only builds the
// activity and finds the ids it refers to.
type actionSpec struct {
	name    string // subcommand, e.g. "validate"
	message string // the protocol message(s) it sends, e.g. "RV"
	summary string // one line for the group's help
	args    string // positional arguments in the synopsis, e.g. "OFFER"
	minArgs int
	maxArgs int
	// flags adds the action's own flags to fs, storing them in v.
	flags func(fs *flag.FlagSet, v *actionValues)
	// build returns the activity to submit and the case it concerns ("" if
	// none yet).
	build func(ctx context.Context, s *session, v *actionValues, args []string) (activity map[string]any, caseID string, err error)
}

// actionValues holds the values of every action flag; each action
// registers only those it uses.
type actionValues struct {
	to, name, content, contentFile string
	end                            string
	days                           int
	actor                          string
	roles                          string
	caseRef                        string
	reason                         string
	// offer, of and related are the report add, report duplicate and
	// case link flags.
	offer, of              string
	parent, child, sibling string
	// off and on are the case engagement flags.
	off, on bool
}

// text returns the text given with --content or read from --content-file
// (what names it in errors), "" when neither is given.
func (v *actionValues) text(what string) (string, error) {
	if v.contentFile == "" {
		return v.content, nil
	}
	if v.content != "" {
		return "", usageError("give --content or --content-file, not both")
	}
	data, err := os.ReadFile(v.contentFile)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", what, err)
	}
	return string(data), nil
}

// actionGroup is a command made of actions, such as "embargo".
type actionGroup struct {
	name        string
	description string
	actions     []actionSpec
}

// lookupAction returns the action of g named name.
func (g actionGroup) lookupAction(name string) (actionSpec, bool) {
	for _, a := range g.actions {
		if a.name == name {
			return a, true
		}
	}
	return actionSpec{}, false
}

// has reports whether g has an action named name.
func (g actionGroup) has(name string) bool {
	_, ok := g.lookupAction(name)
	return ok
}

// caseActionsHelp lists the actions of "vultron case" for its help.
func caseActionsHelp() string {
	var b strings.Builder
	b.WriteString("actions (each sends a message; \"vultron case ACTION -h\" for its flags):\n")
	for _, a := range caseActionGroup().actions {
		fmt.Fprintf(&b, "  %-22s %-4s %s\n", a.name+" "+a.args, a.message, a.summary)
	}
	return strings.TrimRight(b.String(), "\n")
}

// usage prints the group's actions, with the protocol message each sends.
func (g actionGroup) usage(env *environment) {
	fmt.Fprintf(env.stderr, "usage: vultron %s ACTION [arguments] [flags]\n\n%s\n\nactions:\n", g.name, g.description)
	for _, a := range g.actions {
		fmt.Fprintf(env.stderr, "  %-24s %-6s %s\n", a.name+" "+a.args, a.message, a.summary)
	}
	fmt.Fprintf(env.stderr, "\nRun \"vultron %s ACTION -h\" for an action's flags.\n", g.name)
}

// run parses an action's command line, submits its activity and prints
// what the node answered.
func (g actionGroup) run(ctx context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		g.usage(env)
		if len(args) == 0 {
			return usageError("%s needs an action (%s)", g.name, g.actionNames())
		}
		return flag.ErrHelp
	}
	if strings.HasPrefix(args[0], "-") {
		g.usage(env)
		return usageError("%s needs an action first (%s), then its arguments and flags", g.name, g.actionNames())
	}
	a, ok := g.lookupAction(args[0])
	if !ok {
		return usageError("unknown %s action %q (want %s)", g.name, args[0], g.actionNames())
	}
	synopsis := fmt.Sprintf("vultron %s %s %s [flags]", g.name, a.name, a.args)
	fs := newFlagSet(g.name+" "+a.name, synopsis, a.message+": "+a.summary+".", env)
	nf := addNodeFlags(fs)
	as := fs.String("as", "", "the local actor that acts (its name on the node; default: the node's only actor)")
	asJSON := fs.Bool("json", false, "print the submitted activity and the case after it as JSON")
	wait := fs.String("wait", "", "wait until the case reaches a state, e.g. em=ACTIVE (see \"vultron case wait -h\")")
	timeout := fs.Duration("timeout", time.Minute, "how long --wait waits")
	var v actionValues
	if a.flags != nil {
		a.flags(fs, &v)
	}
	c, err := nf.parse(fs, env, args[1:])
	if err != nil {
		return err
	}
	if n := fs.NArg(); n < a.minArgs || n > a.maxArgs {
		return usageError("%s %s takes %s", g.name, a.name, argCount(a))
	}
	actingName, err := actingActor(ctx, c, *as)
	if err != nil {
		return err
	}
	s := &session{c: c, as: actingName, env: env}
	var cond []waitCondition
	if *wait != "" {
		if cond, err = parseConditions(*wait); err != nil {
			return err
		}
	}
	act, caseID, err := a.build(ctx, s, &v, fs.Args())
	if err != nil {
		return err
	}
	submitted, err := s.submit(ctx, act)
	if err != nil {
		return err
	}
	if cond != nil {
		if caseID == "" {
			return usageError("--wait needs an action on a case")
		}
		if err := waitUntil(ctx, s, caseID, cond, *timeout); err != nil {
			return err
		}
	}
	return s.report(ctx, a.message, submitted, caseID, *asJSON)
}

func (g actionGroup) actionNames() string {
	names := make([]string, len(g.actions))
	for i, a := range g.actions {
		names[i] = a.name
	}
	return strings.Join(names, ", ")
}

func argCount(a actionSpec) string {
	switch {
	case a.maxArgs == 0:
		return "no arguments"
	case a.minArgs == a.maxArgs:
		return fmt.Sprintf("the argument %s", a.args)
	}
	return fmt.Sprintf("the arguments %s", a.args)
}

// actingActor returns the name of the local actor that acts: the one given
// with --as (or VULTRON_AS), else the node's only configured actor, which
// it asks the node for (GET /api/actors).
func actingActor(ctx context.Context, c *client, as string) (string, error) {
	if as != "" {
		return as, nil
	}
	var list struct {
		Actors []struct {
			Name string `json:"name"`
		} `json:"actors"`
	}
	if err := c.do(ctx, "GET", "/api/actors", nil, &list); err != nil {
		return "", fmt.Errorf("list the node's actors to choose the acting one: %w", err)
	}
	switch len(list.Actors) {
	case 1:
		return list.Actors[0].Name, nil
	case 0:
		return "", usageError("the node has no actor of its own; give the acting local actor with --as NAME (or VULTRON_AS)")
	}
	names := make([]string, len(list.Actors))
	for i, a := range list.Actors {
		names[i] = a.Name
	}
	return "", usageError("the node has %d actors (%s): give the acting one with --as NAME (or VULTRON_AS)", len(names), strings.Join(names, ", "))
}

// session is what an action knows while it runs: the node, the acting
// local actor, and what it has looked up so far.
type session struct {
	c    *client
	as   string
	env  *environment
	self string // the acting actor's id, once looked up
}

// me returns the id of the acting local actor, from its actor document.
func (s *session) me(ctx context.Context) (string, error) {
	if s.self != "" {
		return s.self, nil
	}
	var doc struct {
		ID string `json:"id"`
	}
	if err := s.c.do(ctx, "GET", "/actors/"+url.PathEscape(s.as), nil, &doc); err != nil {
		return "", fmt.Errorf("look up the actor %q on the node: %w", s.as, err)
	}
	if doc.ID == "" {
		return "", fmt.Errorf("the node's document of actor %q has no id", s.as)
	}
	s.self = doc.ID
	return s.self, nil
}

// submit posts an activity to the acting actor's outbox and returns the
// activity the node recorded (with the id, actor and published it filled).
func (s *session) submit(ctx context.Context, act map[string]any) (map[string]any, error) {
	act["@context"] = "https://www.w3.org/ns/activitystreams"
	body, err := json.Marshal(act)
	if err != nil {
		return nil, fmt.Errorf("encode the activity: %w", err)
	}
	var out map[string]any
	if err := s.c.do(ctx, "POST", "/actors/"+url.PathEscape(s.as)+"/outbox", body, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// caseDetail finds the case key names (its id or a unique part of it) and
// returns what GET /api/cases/{id} shows of it.
func (s *session) caseDetail(ctx context.Context, key string) (caseDetailView, error) {
	id, err := s.resolveCase(ctx, key)
	if err != nil {
		return caseDetailView{}, err
	}
	return s.caseByID(ctx, id)
}

func (s *session) caseByID(ctx context.Context, id string) (caseDetailView, error) {
	var d caseDetailView
	if err := s.c.do(ctx, "GET", "/api/cases/"+url.PathEscape(id)+"?notes=0", nil, &d); err != nil {
		return caseDetailView{}, err
	}
	return d, nil
}

// resolveCase turns a case id or a unique part of one into the case id.
func (s *session) resolveCase(ctx context.Context, key string) (string, error) {
	all, err := listAllCases(ctx, s.c)
	if err != nil {
		return "", err
	}
	return pickCase(all, key)
}

// inboxItems calls fn with the activities in the acting actor's inbox,
// newest first, page by page, until fn returns true.
func (s *session) inboxItems(ctx context.Context, fn func(map[string]any) bool) error {
	path := "/actors/" + url.PathEscape(s.as) + "/inbox?limit=200"
	for pages := 0; pages < 1000; pages++ {
		var page struct {
			Items []map[string]any `json:"orderedItems"`
			Next  string           `json:"next"`
		}
		if err := s.c.do(ctx, "GET", path, nil, &page); err != nil {
			return fmt.Errorf("read the inbox of %s: %w", s.as, err)
		}
		for _, it := range page.Items {
			if fn(it) {
				return nil
			}
		}
		if page.Next == "" {
			return nil
		}
		next, err := url.Parse(page.Next)
		if err != nil {
			return fmt.Errorf("the inbox's next page %q is not a URL: %w", page.Next, err)
		}
		path = next.Path + "?limit=200&" + next.RawQuery
	}
	return nil
}

// report prints the outcome of an action: the activity's id, and the case
// it concerns as it is now.
func (s *session) report(ctx context.Context, message string, submitted map[string]any, caseID string, asJSON bool) error {
	id, _ := submitted["id"].(string)
	var detail *caseDetailView
	if caseID != "" {
		d, err := s.caseByID(ctx, caseID)
		if err != nil {
			return fmt.Errorf("the node accepted %s but the case could not be read back: %w", id, err)
		}
		detail = &d
	}
	if asJSON {
		out := map[string]any{"message": message, "activity": submitted}
		if detail != nil {
			out["case"] = detail
		}
		return printJSON(s.env, out)
	}
	fmt.Fprintf(s.env.stdout, "%s sent: %s\n", message, id)
	if detail != nil {
		fmt.Fprintf(s.env.stdout, "case %s: EM %s, %s, %d ledger entries%s\n", detail.ID, detail.EMState, detail.PXAState, detail.LedgerLength, closedNote(detail.Closed))
	}
	return nil
}

func closedNote(closed bool) string {
	if closed {
		return ", closed"
	}
	return ""
}

// caseDetailView is the part of GET /api/cases/{id} the actions use.
type caseDetailView struct {
	ID           string `json:"id"`
	Owner        string `json:"owner"`
	EMState      string `json:"emState"`
	PXAState     string `json:"pxaState"`
	LedgerLength int64  `json:"ledgerLength"`
	Closed       bool   `json:"closed"`
	Participants []struct {
		Actor    string `json:"actor"`
		ID       string `json:"id"`
		RMState  string `json:"rmState"`
		VFDState string `json:"vfdState"`
		PECState string `json:"pecState"`
		Removed  bool   `json:"removed"`
	} `json:"participants"`
	Embargo *struct {
		ID  string    `json:"id"`
		End time.Time `json:"end"`
	} `json:"embargo"`
	Proposals []struct {
		InviteID string `json:"inviteId"`
	} `json:"proposals"`
	Invites []struct {
		Actor string `json:"actor"`
		ID    string `json:"id"`
	} `json:"invites"`
	Suggestions []map[string]any `json:"suggestions"`
	Transfer    *struct {
		ID string `json:"id"`
		To string `json:"to"`
	} `json:"transfer"`
}

// participantOf returns the CaseParticipant id of actor in the case.
func (d caseDetailView) participantOf(actor string) (string, error) {
	for _, p := range d.Participants {
		if p.Actor == actor && !p.Removed {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("%s is not a participant of case %s", actor, d.ID)
}

// listAllCases follows the pages of GET /api/cases.
func listAllCases(ctx context.Context, c *client) ([]caseRow, error) {
	var all []caseRow
	for after := ""; ; {
		var page struct {
			Cases []caseRow `json:"cases"`
			Next  string    `json:"next"`
		}
		if err := c.do(ctx, "GET", "/api/cases?limit=1000&after="+url.QueryEscape(after), nil, &page); err != nil {
			return nil, err
		}
		all = append(all, page.Cases...)
		if page.Next == "" || page.Next == after {
			return all, nil
		}
		after = page.Next
	}
}

// refID returns the id of an ActivityStreams reference: the string itself
// or the "id" of an inline object.
func refID(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		id, _ := x["id"].(string)
		return id
	}
	return ""
}
