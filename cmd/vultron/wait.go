package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// waitCondition is one thing "--wait" and "case wait" wait for.
type waitCondition struct {
	key   string // em, pxa, rm, vfd, pec, entries, closed
	value string
	min   int64 // entries>=min
}

// waitConditionHelp describes the conditions for the command line.
const waitConditionHelp = "conditions, comma-separated, all of which must hold: em=STATE (NONE, PROPOSED, ACTIVE,\n" +
	"REVISE, EXITED), pxa=STATE (e.g. Pxa), rm=STATE and vfd=STATE and pec=STATE (of the\n" +
	"acting actor, --as), entries>=N, closed"

// parseConditions reads "em=ACTIVE,entries>=5".
func parseConditions(s string) ([]waitCondition, error) {
	var out []waitCondition
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "closed":
			out = append(out, waitCondition{key: "closed"})
		case strings.HasPrefix(part, "entries>="):
			n, err := strconv.ParseInt(strings.TrimPrefix(part, "entries>="), 10, 64)
			if err != nil || n < 0 {
				return nil, usageError("entries>=N needs a whole number, not %q", part)
			}
			out = append(out, waitCondition{key: "entries", min: n})
		default:
			key, value, ok := strings.Cut(part, "=")
			switch key = strings.ToLower(key); {
			case !ok || value == "":
				return nil, usageError("cannot read the condition %q; %s", part, waitConditionHelp)
			case key == "em" || key == "rm" || key == "pec":
				value = strings.ToUpper(value)
			case key == "pxa" || key == "vfd":
			default:
				return nil, usageError("unknown condition %q; %s", key, waitConditionHelp)
			}
			out = append(out, waitCondition{key: key, value: value})
		}
	}
	return out, nil
}

// holds reports whether the condition holds for the case; me is the acting
// actor's id for the per-participant conditions.
func (w waitCondition) holds(d caseDetailView, me string) bool {
	switch w.key {
	case "em":
		return d.EMState == w.value
	case "pxa":
		return d.PXAState == w.value
	case "entries":
		return d.LedgerLength >= w.min
	case "closed":
		return d.Closed
	}
	for _, p := range d.Participants {
		if p.Actor != me {
			continue
		}
		switch w.key {
		case "rm":
			return p.RMState == w.value
		case "vfd":
			return p.VFDState == w.value
		case "pec":
			return p.PECState == w.value
		}
	}
	return false
}

func (w waitCondition) String() string {
	switch w.key {
	case "entries":
		return fmt.Sprintf("entries>=%d", w.min)
	case "closed":
		return "closed"
	}
	return w.key + "=" + w.value
}

// describe is the one-line state a progress line shows.
func describe(d caseDetailView, me string) string {
	s := fmt.Sprintf("EM %s, %s, %d entries", d.EMState, d.PXAState, d.LedgerLength)
	for _, p := range d.Participants {
		if p.Actor == me {
			s += fmt.Sprintf(", %s at %s %s %s", p.Actor, p.RMState, p.VFDState, p.PECState)
		}
	}
	return s + closedNote(d.Closed)
}

// waitPollInterval is how often waitUntil reads the case.
const waitPollInterval = 250 * time.Millisecond

// waitUntil polls the case until every condition holds, printing a progress
// line on stderr, or fails with a sentence naming the state reached when
// the timeout passes.
func waitUntil(ctx context.Context, s *session, caseID string, conds []waitCondition, timeout time.Duration) error {
	me := ""
	for _, c := range conds {
		if c.key == "rm" || c.key == "vfd" || c.key == "pec" {
			var err error
			if me, err = s.me(ctx); err != nil {
				return err
			}
			break
		}
	}
	want := make([]string, len(conds))
	for i, c := range conds {
		want[i] = c.String()
	}
	p := newProgress(s.env.stderr)
	defer p.done()
	deadline := time.Now().Add(timeout)
	start := time.Now()
	for {
		d, err := s.caseByID(ctx, caseID)
		var ok bool
		var state string
		switch {
		case isNotFound(err):
			// A participant's node holds the case once the ledger arrives.
			state = "not on this node yet"
		case err != nil:
			return err
		default:
			ok = true
			for _, c := range conds {
				ok = ok && c.holds(d, me)
			}
			state = describe(d, me)
		}
		p.show(fmt.Sprintf("waiting for %s: %s (%s)", strings.Join(want, ","), state, time.Since(start).Round(time.Second)), state)
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("case %s did not reach %s within %s; it is at %s", caseID, strings.Join(want, ","), timeout, state)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for case %s: %w", caseID, ctx.Err())
		case <-time.After(waitPollInterval):
		}
	}
}

// progress prints a progress line: rewritten in place on a terminal, a new
// line only when the state changes otherwise (a log stays readable).
type progress struct {
	w        io.Writer
	terminal bool
	last     string
	shown    bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.terminal = true
		}
	}
	return p
}

func (p *progress) show(line, state string) {
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	if state != p.last {
		fmt.Fprintln(p.w, line)
		p.last = state
	}
}

func (p *progress) done() {
	if p.terminal && p.shown {
		fmt.Fprintln(p.w)
	}
}

// runCaseWait is "vultron case wait CASE --until COND".
func runCaseWait(ctx context.Context, env *environment, args []string) error {
	fs := newFlagSet("case wait", "vultron case wait CASE --until COND [flags]",
		"Wait until a case reaches a state, printing a progress line; exit 1 if the timeout passes.\n"+waitConditionHelp+".", env)
	nf := addNodeFlags(fs)
	as := fs.String("as", "", "the local actor whose rm, vfd and pec conditions refer to")
	until := fs.String("until", "", "the condition(s) to wait for (required)")
	timeout := fs.Duration("timeout", time.Minute, "how long to wait")
	c, err := nf.parse(fs, env, args)
	if err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError("case wait takes one case id")
	}
	if *until == "" {
		return usageError("give what to wait for with --until, e.g. --until em=ACTIVE")
	}
	conds, err := parseConditions(*until)
	if err != nil {
		return err
	}
	s := &session{c: c, as: *as, env: env}
	for _, cd := range conds {
		if (cd.key == "rm" || cd.key == "vfd" || cd.key == "pec") && s.as == "" {
			if s.as, err = actingActor(ctx, c, ""); err != nil {
				return err
			}
		}
	}
	// A full case id may name a case that has not reached this node yet;
	// a part of one must match a case the node holds.
	id := fs.Arg(0)
	if !strings.Contains(id, "://") {
		if id, err = s.resolveCase(ctx, id); err != nil {
			return err
		}
	}
	if err := waitUntil(ctx, s, id, conds, *timeout); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "case %s reached %s\n", id, *until)
	return nil
}
