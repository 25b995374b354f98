package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
)

// waitCondition is one thing "--wait" and "case wait" wait for.
type waitCondition struct {
	key   string // em, pxa, rm, vfd, pec, entries, closed, draft, reviewed, published
	value string
	min   int64 // entries>=min
}

// waitConditionHelp defines the conditions for the command line.
const waitConditionHelp = `Conditions, comma-separated, all of which must hold:
  em=STATE       the case's embargo: NONE (none proposed), PROPOSED, ACTIVE (in force),
                 REVISE (in force, a revision proposed) or EXITED (ended)
  pxa=STATE      what the world knows, one letter each, upper case when it happened:
                 P public aware, X exploit public, A attacks seen (e.g. pxa, Pxa, PXA)
  rm=STATE       the acting actor's (--as) report management state: START, RECEIVED,
                 INVALID, VALID, DEFERRED, ACCEPTED (engaged) or CLOSED
  vfd=STATE      the acting actor's fix state: V vendor aware, F fix ready, D fix deployed
                 (vfd, Vfd, VFd, VFD)
  pec=STATE      the acting actor's embargo consent: NO_EMBARGO, INVITED, SIGNATORY,
                 DECLINED or LAPSED
  entries>=N     this node's copy of the ledger has at least N entries
  closed         every participant has closed the case (RM CLOSED), not only the
                 acting one: for that, wait for rm=CLOSED
  draft          a draft advisory is shared for review (advisory share)
  reviewed       every reviewer invited to the draft answered it (advisory review)
  published      the case's advisory is published (advisory publish)
Each condition is checked before waiting: a name or state not listed here is refused.`

// conditionStates lists the states each condition takes.
func conditionStates() map[string][]string {
	return map[string][]string{
		"em":  stateNames(cvdstate.EMStates()),
		"pxa": stateNames(cvdstate.PXAs()),
		"rm":  stateNames(cvdstate.RMStates()),
		"vfd": stateNames(cvdstate.VFDs()),
		"pec": stateNames(cvdstate.PECs()),
	}
}

// stateNames writes each state as the node's API shows it.
func stateNames[S fmt.Stringer](states []S) []string {
	out := make([]string, len(states))
	for i, s := range states {
		out[i] = s.String()
	}
	return out
}

// parseConditions reads "em=ACTIVE,entries>=5", refusing in one sentence a
// condition or a state that does not exist.
func parseConditions(s string) ([]waitCondition, error) {
	states := conditionStates()
	var out []waitCondition
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch {
		case part == "closed", part == "draft", part == "reviewed", part == "published":
			out = append(out, waitCondition{key: part})
		case strings.HasPrefix(part, "entries>="):
			n, err := strconv.ParseInt(strings.TrimPrefix(part, "entries>="), 10, 64)
			if err != nil || n < 0 {
				return nil, usageError("entries>=N needs a whole number, not %q", part)
			}
			out = append(out, waitCondition{key: "entries", min: n})
		default:
			key, value, ok := strings.Cut(part, "=")
			key = strings.ToLower(key)
			valid, known := states[key]
			switch {
			case !known && ok:
				return nil, usageError("unknown condition %q in %q: the conditions are em=, pxa=, rm=, vfd=, pec=, entries>=N, closed, draft, reviewed and published (see \"vultron case wait -h\")", key, part)
			case !ok || value == "":
				return nil, usageError("cannot read the condition %q: the conditions are em=STATE, pxa=STATE, rm=STATE, vfd=STATE, pec=STATE, entries>=N, closed, draft, reviewed and published (see \"vultron case wait -h\")", part)
			}
			if key == "em" || key == "rm" || key == "pec" {
				value = strings.ToUpper(value)
			}
			if !slices.Contains(valid, value) {
				return nil, usageError("%s=%s is not a state of %s: it is one of %s", key, value, strings.ToUpper(key), strings.Join(valid, ", "))
			}
			out = append(out, waitCondition{key: key, value: value})
		}
	}
	return out, nil
}

// holds reports whether the condition holds for the case; me is the acting
// actor's id for the per-participant conditions.
func (w waitCondition) holds(d api.CaseDetail, me string) bool {
	switch w.key {
	case "em":
		return d.EMState == w.value
	case "pxa":
		return d.PXAState == w.value
	case "entries":
		return d.LedgerLength >= w.min
	case "closed":
		return everyoneClosed(d)
	case "draft":
		return d.Advisory != nil && d.Advisory.Draft != nil
	case "reviewed":
		return d.Advisory != nil && d.Advisory.Draft != nil && len(d.Advisory.Draft.Pending()) == 0
	case "published":
		return d.Advisory != nil && len(d.Advisory.Revisions) > 0
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
	case "closed", "draft", "reviewed", "published":
		return w.key
	}
	return w.key + "=" + w.value
}

// describe is the one-line state a progress line shows.
func describe(d api.CaseDetail, me string) string {
	s := fmt.Sprintf("EM %s, %s, %d entries", d.EMState, d.PXAState, d.LedgerLength)
	for _, p := range d.Participants {
		if p.Actor == me {
			s += fmt.Sprintf(", %s at %s %s %s", p.Actor, p.RMState, p.VFDState, p.PECState)
		}
	}
	return s + closedNote(d.Closed)
}

// defaultWait is how long an action waits for its entry (and --wait and
// case wait for their conditions) unless --timeout says otherwise.
const defaultWait = 30 * time.Second

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
		var down *unreachableError
		switch {
		case isNotFound(err):
			// A participant's node holds the case once the ledger arrives.
			state = "not on this node yet"
		case errors.As(err, &down) && down.passing():
			// A node being restarted answers again in a moment: the wait
			// goes on until its timeout.
			state = "the node does not answer"
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
			if down != nil {
				return fmt.Errorf("case %s did not reach %s within %s: %w", cases.ShortID(caseID), strings.Join(want, ","), timeout, down)
			}
			return fmt.Errorf("case %s did not reach %s within %s; it is at %s", cases.ShortID(caseID), strings.Join(want, ","), timeout, state)
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
	return &progress{w: w, terminal: isTerminal(w)}
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
		"Wait until a case reaches a state, printing a progress line; exit 1 if the timeout passes.\n"+
			"A node that stops answering meanwhile (it is restarted) is waited for, within the timeout.\n"+
			"CASE is a case id, its short id or a unique part of it.\n\n"+waitConditionHelp, env)
	nf := addNodeFlags(fs)
	as := fs.String("as", "", "the local actor whose rm, vfd and pec conditions refer to")
	until := fs.String("until", "", "the condition(s) to wait for (required)")
	timeout := fs.Duration("timeout", defaultWait, "how long to wait")
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
	fmt.Fprintf(env.stdout, "case %s reached %s\n", cases.ShortID(id), *until)
	return nil
}

// everyoneClosed reports whether every participant of a case closed it
// (RM CLOSED) or was removed: what the condition closed waits for. A case
// its owner's leaving closed counts once the others left it too.
func everyoneClosed(d api.CaseDetail) bool {
	for _, p := range d.Participants {
		if !p.Removed && p.RMState != "CLOSED" {
			return false
		}
	}
	return len(d.Participants) > 0
}
