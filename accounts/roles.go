package accounts

import (
	"fmt"
	"slices"
	"strings"

	"github.com/openvultron/vultron/problem"
)

// Role is what a user may do on the node: a viewer reads, an analyst also
// acts for its actors, an admin also manages users, tokens, keys, peers
// and webhooks. Roles are ordered: each may do what the one below may.
type Role uint8

// The roles, lowest first. The values are stored.
const (
	RoleNone Role = iota
	Viewer
	Analyst
	Admin
)

// Roles returns the roles, lowest first.
func Roles() []Role { return []Role{Viewer, Analyst, Admin} }

// String returns the role's name: viewer, analyst or admin.
func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Analyst:
		return "analyst"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole parses viewer, analyst or admin.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles() {
		if strings.EqualFold(strings.TrimSpace(s), r.String()) {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("role %q is not one of viewer, analyst, admin", s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	if string(b) == "none" {
		*r = RoleNone
		return nil
	}
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// Scope is what a token is for. read, act and admin nest: act also
// reads, admin also acts. metrics reads GET /metrics and calendar the
// embargo feeds, and nothing else.
type Scope string

// The scopes.
const (
	ScopeRead     Scope = "read"
	ScopeAct      Scope = "act"
	ScopeAdmin    Scope = "admin"
	ScopeMetrics  Scope = "metrics"
	ScopeCalendar Scope = "calendar"
)

// AllScopes lists the scopes in the order they are printed.
func AllScopes() []Scope {
	return []Scope{ScopeRead, ScopeAct, ScopeAdmin, ScopeMetrics, ScopeCalendar}
}

// MinRole is the lowest role a scope may be held by.
func (s Scope) MinRole() Role {
	switch s {
	case ScopeAct:
		return Analyst
	case ScopeAdmin:
		return Admin
	}
	return Viewer
}

// ScopeSet is a set of scopes.
type ScopeSet []Scope

// ParseScopes parses a comma-separated list of scopes.
func ParseScopes(s string) (ScopeSet, error) {
	var out ScopeSet
	for _, part := range strings.Split(s, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if part == "" {
			continue
		}
		if !slices.Contains(AllScopes(), Scope(part)) {
			return nil, fmt.Errorf("scope %q is not one of read, act, admin, metrics, calendar", part)
		}
		if !slices.Contains(out, Scope(part)) {
			out = append(out, Scope(part))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no scope given: name at least one of read, act, admin, metrics, calendar")
	}
	return out.sorted(), nil
}

// sorted returns the set in AllScopes' order.
func (ss ScopeSet) sorted() ScopeSet {
	var out ScopeSet
	for _, s := range AllScopes() {
		if slices.Contains(ss, s) {
			out = append(out, s)
		}
	}
	return out
}

// Has reports whether the set grants s, with read < act < admin nested.
func (ss ScopeSet) Has(s Scope) bool {
	switch s {
	case ScopeRead:
		return slices.Contains(ss, ScopeRead) || slices.Contains(ss, ScopeAct) || slices.Contains(ss, ScopeAdmin)
	case ScopeAct:
		return slices.Contains(ss, ScopeAct) || slices.Contains(ss, ScopeAdmin)
	}
	return slices.Contains(ss, s)
}

// String returns the scopes comma-separated.
func (ss ScopeSet) String() string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		parts[i] = string(s)
	}
	return strings.Join(parts, ",")
}

// implied returns ss with what each of its scopes includes: act adds
// read, admin adds act and read.
func (ss ScopeSet) implied() ScopeSet {
	var out ScopeSet
	for _, s := range AllScopes() {
		if ss.Has(s) {
			out = append(out, s)
		}
	}
	return out
}

// within returns what ss grants that role r may hold: each scope with
// what it includes, then cut to the role, so that an act token of a
// user demoted to viewer still reads.
func (ss ScopeSet) within(r Role) ScopeSet {
	var out ScopeSet
	for _, s := range ss.implied() {
		if r >= s.MinRole() {
			out = append(out, s)
		}
	}
	return out
}

// covers reports whether ss grants every scope of other.
func (ss ScopeSet) covers(other ScopeSet) bool {
	for _, s := range other {
		if !ss.Has(s) {
			return false
		}
	}
	return true
}

// roleScopes are the scopes a dashboard session of a role holds: what the
// role may do, but neither metrics nor calendar, which are for machines.
func roleScopes(r Role) ScopeSet {
	return ScopeSet{ScopeRead, ScopeAct, ScopeAdmin}.within(r)
}

// Permission is what a route needs: a scope (and so a role), and, for a
// route that acts as one of the node's actors, the name of the route
// variable (or form field) that names it, which an analyst limited to
// some actors must be assigned.
type Permission struct {
	// Scope is the scope the route needs; "" for a route anyone may call
	// (the federation's, which check signatures themselves, and the
	// login pages).
	Scope Scope
	// ActorVar names the route variable of the actor acted for.
	ActorVar string
}

// Public reports whether the route needs no principal.
func (p Permission) Public() bool { return p.Scope == "" }

// String describes the permission for tables and errors.
func (p Permission) String() string {
	if p.Public() {
		return "public"
	}
	if p.ActorVar != "" {
		return string(p.Scope) + " for {" + p.ActorVar + "}"
	}
	return string(p.Scope)
}

// Principal is who makes a request: a user with the credential it came
// with (a token or a dashboard session), or one of the node's own tokens
// (the metrics token, the calendar feed token), which belong to no user.
type Principal struct {
	// User is the user's id; "" for a node token.
	User string `json:"user,omitempty"`
	// Name is the user's name, or the node token's ("metrics token").
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
	Role        Role   `json:"role"`
	// Actors are the local actors an analyst acts for; none means all.
	Actors []string `json:"actors,omitempty"`
	// Scopes are what this credential grants: a token's scopes, with
	// what they include, within its user's role, or a session's role's.
	Scopes ScopeSet `json:"scopes"`
	// Via is "token" or "session"; Credential the token's id or the
	// session's handle.
	Via        string `json:"via"`
	Credential string `json:"credential,omitempty"`
}

// Label names the principal in the audit log and the request log:
// "alice via token 3f9a2c1b", "alice via session 9e1d…", "metrics token".
// It never holds a secret.
func (p Principal) Label() string {
	if p.User == "" {
		return p.Name
	}
	if p.Credential == "" {
		return p.Name + " via " + p.Via
	}
	return p.Name + " via " + p.Via + " " + p.Credential
}

// Attribution is what the node records as the person behind what the
// principal sends: the user's name; "" for a node token.
func (p Principal) Attribution() string {
	if p.User == "" {
		return ""
	}
	return p.Name
}

// Can reports whether the principal holds scope s.
func (p Principal) Can(s Scope) bool { return p.Scopes.Has(s) }

// ActsFor reports whether the principal may act as the local actor name:
// an admin for every actor, an analyst for its actors (every actor when
// none is assigned), a viewer for none.
func (p Principal) ActsFor(name string) bool {
	if !p.Can(ScopeAct) {
		return false
	}
	return p.Role >= Admin || len(p.Actors) == 0 || slices.Contains(p.Actors, name)
}

// Allow decides whether the principal may use a route of permission
// perm, acting as the local actor named actor (from the route's
// ActorVar; "" when it has none). It returns nil or a 403 refusal that
// says what was missing.
func (p Principal) Allow(perm Permission, actor string) error {
	if perm.Public() {
		return nil
	}
	if !p.Can(perm.Scope) {
		if p.Role < perm.Scope.MinRole() {
			return problem.Forbidden("%s is %s; this needs the %s scope, %s", p.Name, article(p.Role), perm.Scope, holders(p.Role, perm.Scope.MinRole()))
		}
		return problem.Forbidden("this credential of %s grants %s; this needs the %s scope", p.Name, scopeList(p.Scopes), perm.Scope)
	}
	if perm.ActorVar != "" && actor != "" && !p.ActsFor(actor) {
		return problem.Forbidden("%s may act for %s only, not for %s", p.Name, strings.Join(p.Actors, ", "), actor)
	}
	return nil
}

func article(r Role) string {
	if r == Admin || r == Analyst {
		return "an " + r.String()
	}
	if r == RoleNone {
		return "no user of this node"
	}
	return "a " + r.String()
}

// holders says who holds a scope whose least role is least, to a
// principal of role r that does not: the roles from least up, and to a
// node token that is no user (the metrics token) which token to give.
func holders(r Role, least Role) string {
	if r == RoleNone {
		switch least {
		case Admin:
			return "which an admin's token holds (the node's API token is its first admin's)"
		case Analyst:
			return "which an analyst's or an admin's token holds (the node's API token is its first admin's)"
		}
		return "which a user's token holds (the node's API token, or one made with vultron token create)"
	}
	switch least {
	case Admin:
		return "which only admins hold"
	case Analyst:
		return "which analysts and admins hold"
	}
	return "which every user holds"
}

func scopeList(ss ScopeSet) string {
	if len(ss) == 0 {
		return "no scope"
	}
	return ss.String()
}
