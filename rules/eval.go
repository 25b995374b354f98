package rules

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
)

// Resolved is an action with its arguments computed for one decision.
type Resolved struct {
	Kind   Kind
	Days   int      // propose_embargo
	Reason string   // reject_embargo
	Actor  string   // invite
	Roles  []string // invite
	URL    string   // notify
}

// String writes the action and its computed arguments, a notify URL
// without its password.
func (r Resolved) String() string {
	switch r.Kind {
	case ProposeEmbargo:
		return fmt.Sprintf("propose_embargo %d days", r.Days)
	case RejectEmbargo:
		if r.Reason != "" {
			return fmt.Sprintf("reject_embargo (%s)", r.Reason)
		}
	case Invite:
		return fmt.Sprintf("invite %s as %s", r.Actor, strings.Join(r.Roles, " and "))
	case Notify:
		return "notify " + redactedURL(r.URL)
	}
	return string(r.Kind)
}

// Decision is what one rule says at a decision point: whether it fires,
// why, and the actions it takes if it does.
type Decision struct {
	Rule    *Rule
	Fires   bool
	Why     string
	Actions []Resolved
	// Err is set when the condition or an argument could not be computed
	// (the rule then does not fire).
	Err error
}

// ActsFor reports whether the policy acts for the local actor name.
func (p *Policy) ActsFor(name string) bool { return !slices.Contains(p.Off, name) }

// Uses reports whether some rule of the policy is keyed by point.
func (p *Policy) Uses(point Point) bool {
	return slices.ContainsFunc(p.Rules, func(r *Rule) bool { return r.On == point })
}

// Decide evaluates every rule of env.Point, in the policy's order, and
// returns what each says. A rule whose condition fails to evaluate does
// not fire and says why.
func (p *Policy) Decide(env Env) []Decision {
	if env.Vars == nil {
		env.Vars = p.Vars
	}
	var out []Decision
	for _, r := range p.Rules {
		if string(r.On) != env.Point {
			continue
		}
		out = append(out, r.decide(env))
	}
	return out
}

// Fired returns the decisions of the rules that fire at env.Point, in
// order.
func (p *Policy) Fired(env Env) []Decision {
	var out []Decision
	for _, d := range p.Decide(env) {
		if d.Fires {
			out = append(out, d)
		}
	}
	return out
}

func (r *Rule) decide(env Env) Decision {
	d := Decision{Rule: r}
	if r.cond == nil {
		d.Fires, d.Why = true, "it has no condition"
	} else {
		v, err := expr.Run(r.cond, env)
		if err != nil {
			d.Err = fmt.Errorf("%s (line %d): the condition failed: %w", r.Name, r.Line, err)
			d.Why = "its condition failed: " + oneLine(err.Error())
			return d
		}
		d.Fires, _ = v.(bool)
		verb := "holds"
		if !d.Fires {
			verb = "does not hold"
		}
		d.Why = fmt.Sprintf("%s %s", r.If, verb)
		if vals := values(r, env); vals != "" {
			d.Why += " with " + vals
		}
	}
	if !d.Fires {
		return d
	}
	for _, a := range r.Do {
		res, err := a.resolve(env)
		if err != nil {
			d.Fires, d.Actions = false, nil
			d.Err = fmt.Errorf("%s (line %d): %w", r.Name, a.Line, err)
			d.Why += "; but " + oneLine(err.Error())
			return d
		}
		d.Actions = append(d.Actions, res)
	}
	return d
}

// resolve computes the action's arguments.
func (a Action) resolve(env Env) (Resolved, error) {
	res := Resolved{Kind: a.Kind, Reason: a.Reason, Actor: a.Actor, URL: a.URL}
	if a.Kind == Invite {
		res.Roles = a.rolesOrDefault()
	}
	switch {
	case a.Kind == ProposeEmbargo && a.days != nil:
		v, err := expr.Run(a.days, env)
		if err != nil {
			return res, fmt.Errorf("days %s failed: %w", a.DaysExpr, err)
		}
		f, _ := v.(float64)
		if f != math.Trunc(f) || f < 1 || f > MaxEmbargoDays {
			return res, fmt.Errorf("days %s is %g, not a whole number from 1 to %d", a.DaysExpr, f, MaxEmbargoDays)
		}
		res.Days = int(f)
	case a.Kind == ProposeEmbargo:
		res.Days = int(a.Days)
	case a.Kind == Invite && a.actor != nil:
		v, err := expr.Run(a.actor, env)
		if err != nil {
			return res, fmt.Errorf("actor %s failed: %w", a.ActorExpr, err)
		}
		s, _ := v.(string)
		if !strings.HasPrefix(s, "https://") && !strings.HasPrefix(s, "http://") {
			return res, fmt.Errorf("actor %s is %q, not an actor id", a.ActorExpr, s)
		}
		res.Actor = s
	}
	return res, nil
}

// envNames are the top-level names of Env, the only identifiers whose
// values an explanation shows.
var envNames = []string{"point", "actor", "sender", "now", "case", "report", "proposal", "invitation", "suggestion", "intel", "vars"}

// values writes the values of the names a rule's condition reads, such as
// `sender = "https://..."`, so that an explanation says why it holds.
func values(r *Rule, env Env) string {
	var names []string
	v := &collector{}
	node := r.cond.Node()
	ast.Walk(&node, v)
	for _, n := range v.names {
		// Keep the longest paths: case.em rather than case.
		covered := slices.ContainsFunc(v.names, func(o string) bool {
			return len(o) > len(n) && strings.HasPrefix(o, n) && (o[len(n)] == '.' || o[len(n)] == '[')
		})
		if !covered && !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		out, err := expr.Eval(n, env)
		if err != nil {
			continue
		}
		parts = append(parts, n+" = "+show(out))
	}
	return strings.Join(parts, ", ")
}

// collector gathers the member paths and identifiers of env names.
type collector struct{ names []string }

func (c *collector) Visit(node *ast.Node) {
	var s, root string
	switch n := (*node).(type) {
	case *ast.MemberNode:
		s = n.String()
		if id, ok := n.Node.(*ast.IdentifierNode); ok {
			root = id.Value
		}
	case *ast.IdentifierNode:
		s, root = n.Value, n.Value
	default:
		return
	}
	if slices.Contains(envNames, root) && !strings.ContainsAny(s, "(# ") {
		c.names = append(c.names, s)
	}
}

// show writes a value for an explanation, clipped.
func show(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = fmt.Sprintf("%q", x)
	case time.Time:
		s = x.UTC().Format(time.RFC3339)
	case float64:
		s = fmt.Sprintf("%.4g", x)
	case []any, []string, map[string]any, map[string]string:
		// JSON, so that strings are quoted as a string alone is and
		// the items can be told apart.
		if b, err := json.Marshal(x); err == nil {
			s = string(b)
		} else {
			s = fmt.Sprintf("%v", x)
		}
	default:
		s = fmt.Sprintf("%v", x)
	}
	if len(s) > 120 {
		cut := 117
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
