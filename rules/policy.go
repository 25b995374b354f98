package rules

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/vm"
	"go.yaml.in/yaml/v3"

	"github.com/openvultron/vultron/internal/urlsecret"
)

// Limits on a policy file, checked before and while it is parsed.
const (
	// MaxSize is the largest policy file read, in bytes.
	MaxSize = 1 << 20
	// MaxRules is the most rules a policy holds.
	MaxRules = 1000
	// MaxActions is the most actions one rule takes.
	MaxActions = 16
	// MaxExprNodes bounds the syntax tree of one expression.
	MaxExprNodes = 1000
	// MaxEmbargoDays is the longest embargo a rule may propose.
	MaxEmbargoDays = 3650
)

// Policy is a parsed, checked automation policy.
type Policy struct {
	// Name names the policy in the audit log and the timeline; the file's
	// name when it gives none.
	Name   string
	Source string // where it was read from
	Rules  []*Rule
	// Vars are the policy's constants, seen by conditions as vars.NAME.
	Vars map[string]any
	// Off lists the local actors (by name) the policy does not act for.
	Off []string
	// Simulation holds the timing "vultron simulate" draws from; a node
	// ignores it.
	Simulation Simulation
}

// Rule is one rule: at a decision point, when its condition holds, it
// takes its actions in order.
type Rule struct {
	Name string // its name, or "rule N" (counting from 1)
	Line int
	On   Point
	If   string // the condition's source; "" means always
	cond *vm.Program
	Do   []Action
}

// Action is one action of a rule, with its arguments.
type Action struct {
	Kind Kind
	Line int
	// Days is the length of a proposed embargo: a number, or an expression
	// (DaysExpr) computed when the rule fires.
	Days     float64
	DaysExpr string
	days     *vm.Program
	// Reason is a rejection's reason.
	Reason string
	// Actor is the actor to invite: an actor id, or an expression
	// (ActorExpr) that yields one.
	Actor     string
	ActorExpr string
	actor     *vm.Program
	Roles     []string // the invitee's roles; vendor when none
	URL       string   // notify's webhook
}

// String writes the action as a policy file would, a notify URL without
// its password.
func (a Action) String() string {
	switch a.Kind {
	case ProposeEmbargo:
		if a.DaysExpr != "" {
			return fmt.Sprintf("propose_embargo {days: %s}", a.DaysExpr)
		}
		return fmt.Sprintf("propose_embargo {days: %g}", a.Days)
	case RejectEmbargo:
		if a.Reason != "" {
			return fmt.Sprintf("reject_embargo {reason: %q}", a.Reason)
		}
	case Invite:
		who := a.Actor
		if a.ActorExpr != "" {
			who = a.ActorExpr
		}
		return fmt.Sprintf("invite {actor: %s, role: %s}", who, strings.Join(a.rolesOrDefault(), "|"))
	case Notify:
		return fmt.Sprintf("notify {url: %s}", redactedURL(a.URL))
	}
	return string(a.Kind)
}

// redactedURL returns a notify URL as the audit log, the node's log and
// the explanations show it: as urlsecret shows a configured URL, without
// the credential its password or query may carry.
func redactedURL(s string) string {
	return urlsecret.Shown(s)
}

func (a Action) rolesOrDefault() []string {
	if len(a.Roles) == 0 {
		return []string{"vendor"}
	}
	return a.Roles
}

// Error is a refused policy file: where the first fault is and why.
type Error struct {
	Source string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("policy %s, line %d: %s", e.Source, e.Line, e.Reason)
	}
	return fmt.Sprintf("policy %s: %s", e.Source, e.Reason)
}

// yamlLine finds the line yaml.v3 names in its errors.
var yamlLine = regexp.MustCompile(`line (\d+): `)

// Parse reads and checks a policy in YAML or JSON. It refuses the whole
// file, with an *Error naming the line and the reason, at the first fault.
func Parse(data []byte, source string) (*Policy, error) {
	fail := func(line int, format string, args ...any) (*Policy, error) {
		return nil, &Error{Source: source, Line: line, Reason: fmt.Sprintf(format, args...)}
	}
	if len(data) > MaxSize {
		return fail(0, "the file is over the %d bytes a policy may have", MaxSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = strings.Replace(msg, m[0], "", 1)
		}
		return fail(line, "not valid YAML or JSON: %s", msg)
	}
	if len(doc.Content) == 0 {
		return fail(0, "the file is empty; a policy needs a list of rules")
	}
	root := doc.Content[0]
	p := &Policy{Name: source, Source: source, Simulation: DefaultSimulation()}
	pr := parser{source: source}
	if err := pr.policy(root, p); err != nil {
		return nil, err
	}
	return p, nil
}

type parser struct{ source string }

func (pr parser) errorf(n *yaml.Node, format string, args ...any) error {
	return &Error{Source: pr.source, Line: n.Line, Reason: fmt.Sprintf(format, args...)}
}

// mapping walks the key/value pairs of a mapping node, refusing keys
// outside known.
func (pr parser) mapping(n *yaml.Node, what string, known []string, each func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return pr.errorf(n, "%s must be a mapping of %s", what, strings.Join(known, ", "))
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return pr.errorf(k, "%s: key %q already defined", what, k.Value)
		}
		seen[k.Value] = true
		if !slices.Contains(known, k.Value) {
			return pr.errorf(k, "%s has no key %q (want %s)", what, k.Value, strings.Join(known, ", "))
		}
		if err := each(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (pr parser) str(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return "", pr.errorf(n, "%s must be a string", what)
	}
	return n.Value, nil
}

func (pr parser) policy(root *yaml.Node, p *Policy) error {
	var rules *yaml.Node
	err := pr.mapping(root, "a policy", []string{"name", "vars", "off", "rules", "simulation"}, func(key string, k, v *yaml.Node) error {
		switch key {
		case "name":
			s, err := pr.str(v, "name")
			p.Name = s
			return err
		case "vars":
			if v.Kind != yaml.MappingNode {
				return pr.errorf(v, "vars must be a mapping of names to values")
			}
			var m map[string]any
			if err := v.Decode(&m); err != nil {
				return pr.errorf(v, "vars: %v", err)
			}
			p.Vars = m
		case "off":
			if v.Kind != yaml.SequenceNode {
				return pr.errorf(v, "off must be a list of local actor names")
			}
			for _, item := range v.Content {
				s, err := pr.str(item, "an entry of off")
				if err != nil {
					return err
				}
				p.Off = append(p.Off, s)
			}
		case "rules":
			rules = v
		case "simulation":
			return pr.simulation(v, &p.Simulation)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rules == nil {
		return pr.errorf(root, "a policy needs rules: a list of rules, each with on and do")
	}
	if rules.Kind != yaml.SequenceNode {
		return pr.errorf(rules, "rules must be a list")
	}
	if len(rules.Content) > MaxRules {
		return pr.errorf(rules, "%d rules, over the %d a policy may have", len(rules.Content), MaxRules)
	}
	for i, rn := range rules.Content {
		r, err := pr.rule(rn, i+1)
		if err != nil {
			return err
		}
		p.Rules = append(p.Rules, r)
	}
	return nil
}

func (pr parser) rule(n *yaml.Node, number int) (*Rule, error) {
	r := &Rule{Name: fmt.Sprintf("rule %d", number), Line: n.Line}
	var doNode *yaml.Node
	ifLine := 0
	err := pr.mapping(n, fmt.Sprintf("rule %d", number), []string{"name", "on", "if", "do"}, func(key string, k, v *yaml.Node) error {
		var err error
		switch key {
		case "name":
			r.Name, err = pr.str(v, "name")
		case "on":
			var s string
			if s, err = pr.str(v, "on"); err == nil && !knownPoint(s) {
				err = pr.errorf(v, "%q is not a decision point (want one of %s)", s, pointList())
			}
			r.On = Point(s)
		case "if":
			r.If, err = pr.str(v, "if")
			ifLine = v.Line
		case "do":
			doNode = v
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.On == "" {
		return nil, pr.errorf(n, "%s has no on: name the decision point it is for (%s)", r.Name, pointList())
	}
	if doNode == nil {
		return nil, pr.errorf(n, "%s has no do: list the actions it takes", r.Name)
	}
	if strings.TrimSpace(r.If) != "" {
		prog, err := compile(r.If, expr.AsBool())
		if err != nil {
			return nil, &Error{Source: pr.source, Line: ifLine + exprLine(err) - 1, Reason: fmt.Sprintf("%s: the condition %s", r.Name, exprReason(err))}
		}
		r.cond = prog
	}
	if doNode.Kind != yaml.SequenceNode || len(doNode.Content) == 0 {
		return nil, pr.errorf(doNode, "%s: do must be a non-empty list of actions", r.Name)
	}
	if len(doNode.Content) > MaxActions {
		return nil, pr.errorf(doNode, "%s takes %d actions, over the %d a rule may take", r.Name, len(doNode.Content), MaxActions)
	}
	for _, an := range doNode.Content {
		a, err := pr.action(an, r)
		if err != nil {
			return nil, err
		}
		r.Do = append(r.Do, a)
	}
	return r, nil
}

// actionArgs lists the arguments each action takes, and which of them are
// required.
var actionArgs = map[Kind]struct{ known, required []string }{
	ProposeEmbargo: {[]string{"days"}, []string{"days"}},
	RejectEmbargo:  {[]string{"reason"}, nil},
	Invite:         {[]string{"actor", "role"}, []string{"actor"}},
	Notify:         {[]string{"url"}, []string{"url"}},
}

func (pr parser) action(n *yaml.Node, r *Rule) (Action, error) {
	a := Action{Line: n.Line}
	var args *yaml.Node
	switch {
	case n.Kind == yaml.ScalarNode:
		a.Kind = Kind(n.Value)
	case n.Kind == yaml.MappingNode && len(n.Content) == 2:
		a.Kind, args = Kind(n.Content[0].Value), n.Content[1]
	default:
		return a, pr.errorf(n, "%s: an action is a name (such as validate) or a mapping of one name to its arguments (such as {propose_embargo: {days: 90}})", r.Name)
	}
	if !knownKind(string(a.Kind)) {
		return a, pr.errorf(n, "%s: %q is not an action (want one of %s)", r.Name, a.Kind, kindList())
	}
	if !AllowedAt(a.Kind, r.On) {
		return a, pr.errorf(n, "%s: %s answers %s and cannot be taken at %s", r.Name, a.Kind, onlyAt[a.Kind], r.On)
	}
	spec := actionArgs[a.Kind]
	if args != nil && args.Tag == "!!null" {
		args = nil
	}
	if args == nil {
		if len(spec.required) > 0 {
			return a, pr.errorf(n, "%s: %s needs %s", r.Name, a.Kind, strings.Join(spec.required, " and "))
		}
		return a, nil
	}
	if len(spec.known) == 0 {
		return a, pr.errorf(args, "%s: %s takes no arguments", r.Name, a.Kind)
	}
	seen := map[string]bool{}
	err := pr.mapping(args, fmt.Sprintf("%s: %s", r.Name, a.Kind), spec.known, func(key string, k, v *yaml.Node) error {
		seen[key] = true
		if key == "role" {
			return pr.roles(v, r, &a)
		}
		s, err := pr.str(v, fmt.Sprintf("%s of %s", key, a.Kind))
		if err != nil {
			return err
		}
		switch key {
		case "days":
			return pr.days(v, s, r, &a)
		case "reason":
			a.Reason = s
		case "actor":
			return pr.actor(v, s, r, &a)
		case "url":
			u, err := url.Parse(s)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return pr.errorf(v, "%s: notify needs an http or https URL, not %q", r.Name, s)
			}
			a.URL = s
		}
		return nil
	})
	if err != nil {
		return a, err
	}
	for _, req := range spec.required {
		if !seen[req] {
			return a, pr.errorf(args, "%s: %s needs %s", r.Name, a.Kind, req)
		}
	}
	return a, nil
}

// roles reads the role an invitee takes, or a list of them.
func (pr parser) roles(v *yaml.Node, r *Rule, a *Action) error {
	items := []*yaml.Node{v}
	if v.Kind == yaml.SequenceNode {
		items = v.Content
	}
	for _, item := range items {
		s, err := pr.str(item, "role of invite")
		if err != nil {
			return err
		}
		if !slices.Contains([]string{"vendor", "deployer", "coordinator", "finder", "reporter", "observer"}, s) {
			return pr.errorf(item, "%s: %q is not a role an invitee can take (want vendor, deployer, coordinator, finder, reporter or observer)", r.Name, s)
		}
		a.Roles = append(a.Roles, s)
	}
	return nil
}

// days reads the length of a proposed embargo: a whole number of days, or
// an expression that computes one.
func (pr parser) days(v *yaml.Node, s string, r *Rule, a *Action) error {
	if v.Tag == "!!int" || v.Tag == "!!float" {
		d, err := strconv.ParseFloat(s, 64)
		if err != nil || d != math.Trunc(d) || d < 1 || d > MaxEmbargoDays {
			return pr.errorf(v, "%s: days must be a whole number from 1 to %d, not %s", r.Name, MaxEmbargoDays, s)
		}
		a.Days = d
		return nil
	}
	prog, err := compile(s, expr.AsFloat64())
	if err != nil {
		return &Error{Source: pr.source, Line: v.Line + exprLine(err) - 1, Reason: fmt.Sprintf("%s: days is neither a number nor an expression that computes one: %s", r.Name, exprReason(err))}
	}
	a.DaysExpr, a.days = s, prog
	return nil
}

// actor reads the actor to invite: an http(s) actor id, or an expression
// that yields one.
func (pr parser) actor(v *yaml.Node, s string, r *Rule, a *Action) error {
	if u, err := url.Parse(s); err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" {
		a.Actor = s
		return nil
	}
	prog, err := compile(s, expr.AsKind(reflect.String))
	if err != nil {
		return &Error{Source: pr.source, Line: v.Line + exprLine(err) - 1, Reason: fmt.Sprintf("%s: actor is neither an actor id (an http or https URL) nor an expression that yields one: %s", r.Name, exprReason(err))}
	}
	a.ActorExpr, a.actor = s, prog
	return nil
}

func compile(src string, as expr.Option) (*vm.Program, error) {
	return expr.Compile(src, expr.Env(Env{}), as, expr.MaxNodes(MaxExprNodes))
}

// exprLine returns the line (from 1) within an expression that err names.
func exprLine(err error) int {
	var fe *file.Error
	if errors.As(err, &fe) && fe.Line > 0 {
		return fe.Line
	}
	return 1
}

// exprReason returns expr's message without its source excerpt.
func exprReason(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		return fmt.Sprintf("does not compile: %s (column %d)", fe.Message, fe.Column+1)
	}
	return "does not compile: " + err.Error()
}
