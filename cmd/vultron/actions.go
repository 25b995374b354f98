package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/vocab"
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
	// none, or when the acting node will hold no copy of it to wait on).
	build func(ctx context.Context, s *session, v *actionValues, args []string) (activity map[string]any, caseID string, err error)
	// opensCase marks the validation of a report, whose case the node
	// opens when it accepts the activity (session.caseOfReport finds it).
	opensCase bool
	// needs is what the usage line shows after the arguments: the flags
	// the action cannot do without, e.g. "--to ACTOR --name TITLE".
	needs string
	// noCase marks an action whose activity no copy of a case on the
	// acting node records (a submission, a decision on a report outside
	// a case, a declined invitation): the command returns once the node
	// accepted it, and its help says so.
	noCase bool
}

// actionValues holds the values of every action flag; each action
// registers only those it uses.
type actionValues struct {
	to, name, content, contentFile string
	end                            string
	days                           int
	daysSet                        bool // --days was given
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
	aliases string
	// The product flags.
	vendor, product, purl, cpe, versions, status, justification string
	// The advisory flags.
	with, title, summary, details string
	approve, changes              bool
	at                            string
	// message is the protocol message the action sends, when its build
	// tells which of the action's messages it is (EP or EV by the case's
	// EM state); "" keeps the action's own.
	message string
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
	// others are the group's commands that are not case activities, run
	// by the group's own command before the actions; they are listed in
	// its help and its errors with the actions.
	others []actionSpec
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
	printActions(&b, caseActionGroup().actions)
	return strings.TrimRight(b.String(), "\n")
}

// usage prints the group's actions, with the protocol message each sends.
func (g actionGroup) usage(env *environment) {
	fmt.Fprintf(env.stderr, "usage: vultron %s ACTION [arguments] [flags]\n\n%s\n\nactions:\n", g.name, g.description)
	printActions(env.stderr, append(slices.Clone(g.others), g.actions...))
	fmt.Fprintf(env.stderr, "\nRun \"vultron %s ACTION -h\" for an action's flags.\n", g.name)
}

// printActions lists actions, one a line, in columns as wide as their
// longest entry: name and arguments, message, summary.
func printActions(w io.Writer, actions []actionSpec) {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, a := range actions {
		fmt.Fprintf(tw, "  %s\t %s\t %s\n", a.name+" "+a.args, a.message, a.summary)
	}
	tw.Flush()
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
		return usageError("%s needs an action first (%s), then its arguments and flags", g.name, g.actionNames())
	}
	a, ok := g.lookupAction(args[0])
	if !ok {
		return usageError("unknown %s action %q (want %s)", g.name, args[0], g.actionNames())
	}
	synopsis := strings.Join(slices.DeleteFunc([]string{"vultron", g.name, a.name, a.args, a.needs, "[flags]"}, func(w string) bool { return w == "" }), " ")
	about := a.message + ": " + a.summary
	if a.message == noMessage {
		// No protocol message of its own: the help opens with what it does.
		about = strings.ToUpper(a.summary[:1]) + a.summary[1:]
	}
	outcome := actionOutcomeHelp
	if a.noCase {
		outcome = noCaseOutcomeHelp
	}
	fs := newFlagSet(g.name+" "+a.name, synopsis, about+".\n"+outcome, env)
	nf := addNodeFlags(fs)
	as := fs.String("as", "", "the local actor that acts (its name on the node; default: the node's only actor)")
	asJSON := fs.Bool("json", false, "print the submitted activity, where the case recorded it and the case after it as JSON")
	wait := fs.String("wait", "", "then wait until the case reaches a state, e.g. em=ACTIVE (see \"vultron case wait -h\")")
	timeout := fs.Duration("timeout", defaultWait, "how long to wait for the case to record the activity, and for --wait; for an activity no case\nrecords, how long to wait for its first delivery attempt (at most 10s)")
	noWait := fs.Bool("no-wait", false, "print the activity once the node accepted it, without waiting for the case to record it")
	quiet := fs.Bool("quiet", false, "print only the short id of what the action made: the report (report submit), the case\n(report validate), else the activity's id; for scripts")
	fs.BoolVar(quiet, "q", false, "short for --quiet")
	var v actionValues
	if a.flags != nil {
		a.flags(fs, &v)
	}
	c, err := nf.parse(fs, env, args[1:])
	if err != nil {
		return err
	}
	if n := fs.NArg(); n < a.minArgs || n > a.maxArgs {
		// Text given as one more argument is the commonest slip.
		if n > a.maxArgs && fs.Lookup("content") != nil {
			return usageError("%s %s takes %s; give the text with --content TEXT (or --content-file FILE)", g.name, a.name, argCount(a))
		}
		return usageError("%s %s takes %s", g.name, a.name, argCount(a))
	}
	// The command line is checked whole before anything is sent.
	var cond []waitCondition
	if *wait != "" {
		if *noWait {
			return usageError("--wait waits for the case and --no-wait does not: give one of them")
		}
		if cond, err = parseConditions(*wait); err != nil {
			return err
		}
	}
	if *timeout <= 0 {
		return usageError("--timeout must be positive, not %s", *timeout)
	}
	actingName, err := actingActor(ctx, c, *as)
	if err != nil {
		return err
	}
	if *quiet && *asJSON {
		return usageError("--quiet prints an id and --json a document: give one of them")
	}
	s := &session{c: c, as: actingName, env: env, timeout: *timeout}
	act, caseID, err := a.build(ctx, s, &v, fs.Args())
	if err != nil {
		return err
	}
	if cond != nil && caseID == "" && !a.opensCase {
		return usageError("--wait needs an action on a case")
	}
	submitted, err := s.submit(ctx, act)
	if err != nil {
		return err
	}
	id, _ := submitted["id"].(string)
	if a.opensCase {
		// The validation opens the case in the write that accepts it.
		if caseID, err = s.caseOfReport(ctx); err != nil {
			return fmt.Errorf("the node accepted %s but %w", id, err)
		}
	}
	var rec *api.ActivityRecord
	if caseID != "" && !*noWait {
		if rec, err = waitRecorded(ctx, s, caseID, id, *timeout); err != nil {
			return err
		}
	}
	if cond != nil {
		if err := waitUntil(ctx, s, caseID, cond, *timeout); err != nil {
			return err
		}
	}
	// An activity no case records has nothing to wait for but its
	// delivery: what the first attempt did is said, not taken for granted.
	var delivery *deliveryOutcome
	if a.noCase && caseID == "" && !*noWait {
		o, err := awaitFirstAttempt(ctx, c, id, min(*timeout, firstAttemptWait))
		if err != nil {
			return err
		}
		delivery = &o
	}
	if v.message != "" {
		a.message = v.message
	}
	if *quiet {
		err = s.printID(a, submitted, caseID)
	} else {
		err = s.report(ctx, a, submitted, caseID, rec, delivery, *noWait, *asJSON)
	}
	if err != nil || delivery == nil {
		return err
	}
	if err := delivery.givenUp(id); err != nil {
		return err
	}
	if *quiet && delivery.sentence() != "" {
		// --quiet keeps stdout to the id a script reads; a person still
		// learns that nothing arrived yet.
		fmt.Fprintf(env.stderr, "vultron %s %s: %s.\n", g.name, a.name, delivery.sentence())
	}
	return nil
}

// printID prints, for --quiet, the short id of what an action made: the
// report a submission offered, the case a validation opened, else the
// activity's id.
func (s *session) printID(a actionSpec, submitted map[string]any, caseID string) error {
	id, _ := submitted["id"].(string)
	switch {
	case a.opensCase && caseID != "":
		id = cases.ShortID(caseID)
	case offeredReport(submitted) != "":
		id = cases.ShortID(offeredReport(submitted))
	}
	_, err := fmt.Fprintln(s.env.stdout, id)
	return err
}

// actionOutcomeHelp says what every action prints and when it returns.
const actionOutcomeHelp = "The command sends the activity through the acting actor's outbox, waits until this node's\n" +
	"copy of the case has recorded it (or the Case Actor refused it), and prints the activity's\n" +
	"id, where the case recorded it and the case after it. Exit status: 0 recorded, 1 refused\n" +
	"(the node's or the Case Actor's sentence) or not recorded in time, 2 a bad command line."

// noCaseOutcomeHelp says what an action no case records prints and when
// it returns.
const noCaseOutcomeHelp = "The command sends the activity through the acting actor's outbox: no copy of a case on this\n" +
	"node records it, so it waits (at most 10s, or --timeout) for the node's first attempt to deliver\n" +
	"it and prints its id with what became of it: sent (delivered), or queued, with why the first\n" +
	"attempt failed or that it is still pending; the node retries a failed delivery until its retry\n" +
	"horizon passes, and \"vultron deliveries\" lists what is still queued. --no-wait returns once\n" +
	"the node queued it. Exit status: 0 sent or queued, 1 refused (the node's sentence) or given up\n" +
	"(a dead letter), 2 a bad command line."

func (g actionGroup) actionNames() string {
	var names []string
	for _, a := range append(slices.Clone(g.others), g.actions...) {
		names = append(names, a.name)
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
	var list api.ActorList
	if err := c.do(ctx, "GET", "/api/actors", nil, &list); err != nil {
		// A node that does not answer, or refuses the token, says so
		// itself; what the command was about to ask it adds nothing.
		var ue *unreachableError
		var ne *nodeError
		if errors.As(err, &ue) || (errors.As(err, &ne) && ne.status == http.StatusUnauthorized) {
			return "", err
		}
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
	// reportID is the report a decision (RV, RI, RC) is about.
	reportID string
	// timeout bounds the waits of the action (--timeout).
	timeout time.Duration
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

// caseDetail finds the case key names (its id, its short id or a unique
// part of its id) and returns what GET /api/cases/{id} shows of it.
func (s *session) caseDetail(ctx context.Context, key string) (api.CaseDetail, error) {
	id, err := resolveCaseID(ctx, s.c, key)
	if err != nil {
		return api.CaseDetail{}, err
	}
	return s.caseByID(ctx, id)
}

func (s *session) caseByID(ctx context.Context, id string) (api.CaseDetail, error) {
	var d api.CaseDetail
	if err := s.c.do(ctx, "GET", "/api/cases/"+url.PathEscape(id)+"?notes=0", nil, &d); err != nil {
		return api.CaseDetail{}, err
	}
	return d, nil
}

// resolveCase turns a case id, short id or a unique part of an id into
// the case id.
func (s *session) resolveCase(ctx context.Context, key string) (string, error) {
	return resolveCaseID(ctx, s.c, key)
}

// resolveCaseID turns a case id or short id (which the node resolves) or
// a unique part of a case id (matched against the node's list of cases)
// into the case id.
func resolveCaseID(ctx context.Context, c *client, key string) (string, error) {
	if key == "" {
		return "", usageError("give a case: its id, its short id or a unique part of its id")
	}
	var d api.CaseDetail
	err := c.do(ctx, "GET", "/api/cases/"+url.PathEscape(key)+"?notes=0", nil, &d)
	if err == nil && d.ID != "" {
		return d.ID, nil
	}
	if err != nil && !isNotFound(err) {
		return "", err
	}
	all, err := listAllCases(ctx, c)
	if err != nil {
		return "", err
	}
	return pickCase(all, key)
}

// waitRecorded asks the node, until timeout passes, whether its copy of
// case caseID has recorded the activity id: it returns where, or fails
// with the Case Actor's refusal, or with a sentence saying it is still
// not recorded.
func waitRecorded(ctx context.Context, s *session, caseID, id string, timeout time.Duration) (*api.ActivityRecord, error) {
	deadline := time.Now().Add(timeout)
	path := "/api/cases/" + url.PathEscape(caseID) + "/ledger?activity=" + url.QueryEscape(id)
	for {
		var rec api.ActivityRecord
		if err := s.c.do(ctx, "GET", path, nil, &rec); err != nil {
			return nil, fmt.Errorf("the node accepted %s, but asking whether case %s recorded it failed: %w", id, cases.ShortID(caseID), err)
		}
		switch {
		case rec.Recorded && rec.LogIndex != nil:
			return &rec, nil
		case rec.Refused != nil:
			return nil, fmt.Errorf("the Case Actor of case %s refused %s: %s", cases.ShortID(caseID), id, sentence(rec.Refused.Reason))
		case time.Now().After(deadline):
			where := "its copy of case " + cases.ShortID(caseID) + " has not recorded it"
			if !rec.CaseHeld {
				where = "it holds no copy of case " + cases.ShortID(caseID) + " yet"
			}
			return nil, fmt.Errorf("the node accepted %s, but %s after %s: the Case Actor has not answered yet (\"vultron deliveries\" lists what is still queued; \"vultron case show %s\" shows the case)", id, where, timeout, cases.ShortID(caseID))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("stopped waiting for case %s to record %s: %w", cases.ShortID(caseID), id, ctx.Err())
		case <-time.After(waitPollInterval):
		}
	}
}

// report prints the outcome of an action: the activity's id, where the
// case recorded it, and the case after it.
//
// delivery, when not nil, is what became of the first delivery attempts
// of an activity no case records: the activity is "sent" once delivered,
// else "queued", with a sentence saying why it was not delivered. A
// delivery given up is left for the caller to return as the failure.
func (s *session) report(ctx context.Context, a actionSpec, submitted map[string]any, caseID string, rec *api.ActivityRecord, delivery *deliveryOutcome, noWait, asJSON bool) error {
	id, _ := submitted["id"].(string)
	var detail *api.CaseDetail
	if caseID != "" && !noWait {
		d, err := s.caseByID(ctx, caseID)
		if err != nil {
			return fmt.Errorf("the case recorded %s but could not be read back: %w", id, err)
		}
		detail = &d
	}
	if asJSON {
		out := map[string]any{"message": a.message, "activity": submitted}
		if rec != nil {
			out["recorded"] = map[string]any{"case": caseID, "logIndex": *rec.LogIndex}
		}
		if detail != nil {
			out["case"] = detail
		}
		if delivery != nil {
			out["delivery"] = delivery
		}
		return printJSON(s.env, out)
	}
	verb := "sent"
	if (delivery != nil && delivery.State != deliveryDelivered) || (noWait && a.noCase) {
		verb = "queued"
	}
	fmt.Fprintf(s.env.stdout, "%s %s: %s\n", a.sentLabel(submitted), verb, id)
	if rid := offeredReport(submitted); rid != "" {
		fmt.Fprintf(s.env.stdout, "report %s: %s\n", cases.ShortID(rid), rid)
	}
	if actor := invitedActor(submitted); actor != "" {
		fmt.Fprintf(s.env.stdout, "invited %s: %s\n", cases.ShortID(actor), actor)
	}
	if a.opensCase && caseID != "" {
		fmt.Fprintf(s.env.stdout, "case %s opened: %s\n", cases.ShortID(caseID), caseID)
	}
	switch {
	case rec != nil:
		fmt.Fprintf(s.env.stdout, "recorded in case %s as entry %d\n", cases.ShortID(caseID), *rec.LogIndex)
	case caseID != "" && noWait:
		fmt.Fprintf(s.env.stdout, "not waiting for case %s to record it (--no-wait)\n", cases.ShortID(caseID))
	case delivery != nil && delivery.State != deliveryDead && delivery.sentence() != "":
		fmt.Fprintln(s.env.stdout, delivery.sentence())
	}
	if detail != nil {
		fmt.Fprintf(s.env.stdout, "case %s: EM %s, %s, %d ledger entries%s\n", cases.ShortID(detail.ID), detail.EMState, detail.PXAState, detail.LedgerLength, closedNote(detail.Closed))
	}
	return nil
}

// noMessage is the message of an action that has no protocol message type
// of its own, such as a transfer of ownership or a participant's removal.
const noMessage = "-"

// sentLabel names what an action sent: the protocol message of a, or, for
// an action with no message type of its own, the type of the activity
// the node recorded (Offer, Remove, ...).
func (a actionSpec) sentLabel(submitted map[string]any) string {
	if a.message != noMessage {
		return a.message
	}
	if typ, _ := submitted["type"].(string); typ != "" {
		return typ
	}
	return "activity"
}

// offeredReport returns the id of the report an Offer submitted (RS), ""
// for any other activity.
func offeredReport(submitted map[string]any) string {
	obj, ok := submitted["object"].(map[string]any)
	if submitted["type"] != "Offer" || !ok || obj["type"] != vocab.TypeVulnerabilityReport {
		return ""
	}
	id, _ := obj["id"].(string)
	return id
}

// invitedActor returns the actor an Invite to a case (whose target is the
// case) invites, "" for any other activity (an Invite of an embargo
// proposal among them).
func invitedActor(submitted map[string]any) string {
	if submitted["type"] != "Invite" || refID(submitted["target"]) == "" {
		return ""
	}
	if obj, ok := submitted["object"].(map[string]any); ok && obj["type"] == vocab.TypeEmbargoEvent {
		return ""
	}
	return refID(submitted["object"])
}

func closedNote(closed bool) string {
	if closed {
		return ", closed"
	}
	return ""
}

// participantOf returns the CaseParticipant id of actor in case d.
func participantOf(d api.CaseDetail, actor string) (string, error) {
	for _, p := range d.Participants {
		if p.Actor == actor && !p.Removed {
			return p.ID, nil
		}
	}
	return "", fmt.Errorf("%s is not a participant of case %s", actor, d.ID)
}

// listAllCases follows the pages of GET /api/cases.
func listAllCases(ctx context.Context, c *client) ([]api.Case, error) {
	all := []api.Case{} // --json prints [] for none, not null
	for after := ""; ; {
		var page api.CasePage
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
