package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"

	"github.com/openvultron/vultron/cvdstate"
)

// modelCommand is one subcommand of "vultron model".
type modelCommand struct {
	name, summary string
	run           func(env *environment, args []string) error
}

// modelCommands lists the subcommands of "vultron model".
func modelCommands() []modelCommand {
	return []modelCommand{
		{"states", "the RM, EM, consent and case-state models: states, transitions, messages", runModelStates},
		{"histories", "the 70 valid orderings of the six case-state events and their probabilities", runModelHistories},
		{"desiderata", "the twelve desiderata and their baseline frequencies; a case's skill with -history", runModelDesiderata},
	}
}

// runModel prints the protocol's state models, histories and desiderata
// baselines, as tables for a person or as JSON.
func runModel(_ context.Context, env *environment, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" {
		fmt.Fprintf(env.stderr, "usage: vultron model <subcommand> [-json]\n\nPrint the protocol's state models, histories and desiderata baselines.\n\nsubcommands:\n")
		for _, c := range modelCommands() {
			fmt.Fprintf(env.stderr, "  %-11s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return usageError("model needs a subcommand: states, histories or desiderata")
		}
		return flag.ErrHelp
	}
	for _, c := range modelCommands() {
		if c.name == args[0] {
			return c.run(env, args[1:])
		}
	}
	return usageError("unknown model subcommand %q; want states, histories or desiderata", args[0])
}

// parseModelFlags parses fs, whose -json flag is asJSON, and refuses
// positional arguments.
func parseModelFlags(fs *flag.FlagSet, args []string) error {
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError("model %s takes no arguments, got %q", strings.TrimPrefix(fs.Name(), "model "), fs.Arg(0))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

// table writes rows aligned in columns, without trailing blanks.
func table(w io.Writer, rows [][]string) error {
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	for _, line := range strings.SplitAfter(buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return fmt.Errorf("write table: %w", err)
		}
	}
	return nil
}

// fraction writes f as the simplest fraction within 1e-9 of it, such as
// "3/16", or "" when none has a denominator below 10000.
func fraction(f float64) string {
	for den := 1; den < 10000; den++ {
		num := math.Round(f * float64(den))
		if math.Abs(num/float64(den)-f) < 1e-9 {
			return fmt.Sprintf("%d/%d", int(num), den)
		}
	}
	return ""
}

// transitionView is one edge of a model as printed.
type transitionView struct {
	From    string `json:"from"`
	Event   string `json:"event"`
	To      string `json:"to"`
	Message string `json:"message,omitempty"`
}

// modelView is one state machine as printed.
type modelView struct {
	Name        string           `json:"name"`
	Scope       string           `json:"scope"`
	States      []string         `json:"states"`
	Transitions []transitionView `json:"transitions"`
}

// csStateView is one case state and what may happen next.
type csStateView struct {
	State  string   `json:"state"`
	Next   []string `json:"next"`
	Forced bool     `json:"forced,omitempty"`
}

// effectView is one cross-model rule.
type effectView struct {
	Event   string `json:"event"`
	From    string `json:"emFrom"`
	To      string `json:"emTo"`
	Message string `json:"message"`
	Level   string `json:"level"`
}

// statesView is everything "model states" prints.
type statesView struct {
	Models        []modelView   `json:"models"`
	CaseStates    []csStateView `json:"caseStates"`
	CaseEdges     int           `json:"caseEdges"`
	EmbargoEffect []effectView  `json:"embargoEffects"`
	MessageTypes  []string      `json:"messageTypes"`
}

func buildStatesView() statesView {
	var v statesView
	names := func(ss []fmt.Stringer) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = s.String()
		}
		return out
	}
	rm := modelView{Name: "RM (report management)", Scope: "per participant"}
	for _, s := range cvdstate.RMStates() {
		rm.States = append(rm.States, s.String())
	}
	for _, t := range cvdstate.RMTransitions() {
		rm.Transitions = append(rm.Transitions, transitionView{t.From.String(), t.Event.String(), t.To.String(), t.Message.String()})
	}
	em := modelView{Name: "EM (embargo management)", Scope: "per case"}
	for _, s := range cvdstate.EMStates() {
		em.States = append(em.States, s.String())
	}
	for _, t := range cvdstate.EMTransitions() {
		em.Transitions = append(em.Transitions, transitionView{t.From.String(), t.Event.String(), t.To.String(), t.Message.String()})
	}
	pec := modelView{Name: "PEC (participant embargo consent)", Scope: "per participant"}
	for _, s := range cvdstate.PECs() {
		pec.States = append(pec.States, s.String())
	}
	for _, t := range cvdstate.PECTransitions() {
		pec.Transitions = append(pec.Transitions, transitionView{From: t.From.String(), Event: t.Event.String(), To: t.To.String()})
	}
	vfd := modelView{Name: "VFD (vendor awareness, fix ready, fix deployed)", Scope: "per participant"}
	for _, s := range cvdstate.VFDs() {
		vfd.States = append(vfd.States, s.String())
	}
	pxa := modelView{Name: "PXA (public awareness, exploit public, attacks)", Scope: "per case"}
	for _, s := range cvdstate.PXAs() {
		pxa.States = append(pxa.States, s.String())
	}
	v.Models = []modelView{rm, em, pec, vfd, pxa}
	for _, c := range cvdstate.CSStates() {
		_, forced := c.Forced()
		next := make([]fmt.Stringer, 0, 6)
		for _, e := range c.Allowed() {
			next = append(next, e)
		}
		v.CaseStates = append(v.CaseStates, csStateView{State: c.String(), Next: names(next), Forced: forced})
		v.CaseEdges += len(next)
	}
	for _, e := range cvdstate.CSEvents() {
		for _, s := range cvdstate.EMStates() {
			if eff, ok := cvdstate.EmbargoEffect(s, e); ok {
				v.EmbargoEffect = append(v.EmbargoEffect, effectView{e.String(), s.String(), eff.To.String(), eff.Message.String(), eff.Level.String()})
			}
		}
	}
	for _, m := range cvdstate.MessageTypes() {
		v.MessageTypes = append(v.MessageTypes, m.String())
	}
	return v
}

func runModelStates(env *environment, args []string) error {
	fs := newFlagSet("model states", "vultron model states [-json]",
		"Print the protocol's state models: the states and transitions of RM, EM, embargo consent\nand the case state, the messages each transition emits, and how case-state events end\nan embargo.", env)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	if err := parseModelFlags(fs, args); err != nil {
		return err
	}
	v := buildStatesView()
	if *asJSON {
		return writeJSON(env.stdout, v)
	}
	w := env.stdout
	for _, m := range v.Models {
		fmt.Fprintf(w, "%s, %s: %d states\n  %s\n", m.Name, m.Scope, len(m.States), strings.Join(m.States, " "))
		if len(m.Transitions) == 0 {
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "  %d transitions:\n", len(m.Transitions))
		// Consent transitions send no message of their own.
		withMessages := m.Transitions[0].Message != "" || m.Transitions[1].Message != ""
		rows := [][]string{{"   ", "from", "event", "to"}}
		if withMessages {
			rows[0] = append(rows[0], "message")
		}
		for _, t := range m.Transitions {
			row := []string{"   ", t.From, t.Event, t.To}
			if withMessages {
				msg := t.Message
				if msg == "" {
					msg = "-"
				}
				row = append(row, msg)
			}
			rows = append(rows, row)
		}
		if err := table(w, rows); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "CS (case state = VFD x PXA): %d states, %d single-event transitions\n", len(v.CaseStates), v.CaseEdges)
	fmt.Fprintf(w, "  events: V vendor aware, F fix ready, D fix deployed, P public aware, X exploit public, A attacks\n")
	rows := [][]string{{"   ", "state", "next events", ""}}
	for _, c := range v.CaseStates {
		note := ""
		if c.Forced {
			note = "(forced)"
		}
		next := strings.Join(c.Next, " ")
		if next == "" {
			next = "- (final)"
		}
		rows = append(rows, []string{"   ", c.State, next, note})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nEmbargo effects of case-state events:\n")
	rows = [][]string{{"   ", "event", "embargo", "becomes", "message", "level"}}
	for _, e := range v.EmbargoEffect {
		rows = append(rows, []string{"   ", e.Event, e.From, e.To, e.Message, e.Level})
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%d message types: %s\n", len(v.MessageTypes), strings.Join(v.MessageTypes, " "))
	return nil
}

// historyView is one valid history as printed.
type historyView struct {
	History     string   `json:"history"`
	Probability float64  `json:"probability"`
	Met         []string `json:"met"`
}

func runModelHistories(env *environment, args []string) error {
	fs := newFlagSet("model histories", "vultron model histories [-json]",
		"Print every valid ordering of the six case-state events (V, F, D, P, X, A), its probability\nunder a uniform random walk over the case-state model, and the desiderata it meets.", env)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parseModelFlags(fs, args); err != nil {
		return err
	}
	ds := cvdstate.Desiderata()
	var views []historyView
	for _, h := range cvdstate.Histories() {
		hv := historyView{History: h.Events.String(), Probability: h.Probability, Met: []string{}}
		for _, d := range ds {
			if d.In(h.Events) == cvdstate.Met {
				hv.Met = append(hv.Met, d.String())
			}
		}
		views = append(views, hv)
	}
	if *asJSON {
		return writeJSON(env.stdout, views)
	}
	fmt.Fprintf(env.stdout, "%d valid histories; columns mark the desiderata each meets\n", len(views))
	head := []string{"#", "history", "probability", "met"}
	for _, d := range ds {
		head = append(head, d.String())
	}
	rows := [][]string{head}
	for i, hv := range views {
		row := []string{fmt.Sprint(i + 1), hv.History, fmt.Sprintf("%.6f", hv.Probability), fmt.Sprint(len(hv.Met))}
		for _, d := range ds {
			mark := "."
			for _, m := range hv.Met {
				if m == d.String() {
					mark = "x"
				}
			}
			row = append(row, mark)
		}
		rows = append(rows, row)
	}
	return table(env.stdout, rows)
}

// baselineView is one desideratum's baseline as printed.
type baselineView struct {
	Desideratum string  `json:"desideratum"`
	Frequency   float64 `json:"frequency"`
}

// assessmentView is a case history's assessment as printed.
type assessmentView struct {
	History string `json:"history"`
	cvdstate.Assessment
}

func runModelDesiderata(env *environment, args []string) error {
	fs := newFlagSet("model desiderata", "vultron model desiderata [-json] [-history EVENTS]",
		"Print the twelve desiderata of a disclosure, in descending order of desirability, with\n"+
			"their baseline frequency f_d: the chance a uniform random walk over the case-state model\n"+
			"meets them. With -history, assess a case's history (such as VFPXDA, or a prefix of one)\n"+
			"against them: which it meets and its skill α_d = (observed − f_d) / (1 − f_d).", env)
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	history := fs.String("history", "", "a case `history` to assess, written as event letters such as VFPXDA")
	if err := parseModelFlags(fs, args); err != nil {
		return err
	}
	if isFlagSet(fs, "history") {
		h, err := cvdstate.ParseHistory(*history)
		if err != nil {
			return usageError("-history: %v", err)
		}
		a, err := cvdstate.Assess(h)
		if err != nil {
			return fmt.Errorf("assess %s: %w", h, err)
		}
		if *asJSON {
			return writeJSON(env.stdout, assessmentView{History: h.String(), Assessment: a})
		}
		fmt.Fprintf(env.stdout, "history %s: %d met, %d missed, %d pending; skill %+.3f\n", displayHistory(h), a.Met, a.Missed, a.Pending, a.Skill)
		rows := [][]string{{"desideratum", "f_d", "outcome", "skill"}}
		for _, r := range a.Results {
			skill := fmt.Sprintf("%+.3f", r.Skill)
			if r.Status == cvdstate.Pending {
				skill = "-"
			}
			rows = append(rows, []string{r.Desideratum.String(), fmt.Sprintf("%.4f", r.Baseline), r.Status.String(), skill})
		}
		return table(env.stdout, rows)
	}
	var views []baselineView
	for _, b := range cvdstate.Baselines() {
		views = append(views, baselineView{b.Desideratum.String(), b.Frequency})
	}
	if *asJSON {
		return writeJSON(env.stdout, views)
	}
	fmt.Fprintf(env.stdout, "%d desiderata, most desirable first, with their baseline frequency f_d\n", len(views))
	rows := [][]string{{"desideratum", "f_d", "exact"}}
	for _, v := range views {
		rows = append(rows, []string{v.Desideratum, fmt.Sprintf("%.4f", v.Frequency), fraction(v.Frequency)})
	}
	return table(env.stdout, rows)
}

// displayHistory writes h for a person; the empty history is "(none)".
func displayHistory(h cvdstate.History) string {
	if len(h) == 0 {
		return "(none)"
	}
	return h.String()
}

// isFlagSet reports whether the flag name was given on the command line.
func isFlagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
