package cvdstate

import (
	"fmt"
	"strings"
)

// RoleSet is the set of roles a participant holds in a case. The zero value
// holds no role.
type RoleSet uint16

// The participant roles. Process roles say what a participant does in the
// disclosure; CaseOwner and CaseManager are protocol authorities.
const (
	Finder RoleSet = 1 << iota
	Reporter
	Vendor
	Deployer
	Coordinator
	Observer
	CaseOwner
	CaseManager
	CVENumberingAuthority
)

// roleNames are the wire spellings in bit order.
var roleNames = [...]string{
	"finder", "reporter", "vendor", "deployer", "coordinator", "observer",
	"case_owner", "case_manager", "cve_numbering_authority",
}

// allRoles is every defined role.
const allRoles = Finder | Reporter | Vendor | Deployer | Coordinator | Observer |
	CaseOwner | CaseManager | CVENumberingAuthority

// Roles returns the nine single roles in canonical order.
func Roles() []RoleSet {
	out := make([]RoleSet, len(roleNames))
	for i := range roleNames {
		out[i] = 1 << i
	}
	return out
}

// Has reports whether r holds every role in other.
func (r RoleSet) Has(other RoleSet) bool { return r&other == other && other != 0 }

// Names returns the wire spellings of the roles in r, in canonical order;
// the empty set gives an empty, non-nil slice.
func (r RoleSet) Names() []string {
	out := []string{}
	for i, name := range roleNames {
		if r&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// String writes r as its wire spellings joined by "|", such as
// "vendor|deployer"; the empty set is "".
func (r RoleSet) String() string {
	names := r.Names()
	if rest := r &^ allRoles; rest != 0 {
		names = append(names, fmt.Sprintf("RoleSet(%#x)", uint16(rest)))
	}
	return strings.Join(names, "|")
}

// ParseRoleSet reads roles separated by "|" or ",", such as
// "vendor|deployer". Names are case-insensitive; "other" is read as observer,
// its former name.
func ParseRoleSet(s string) (RoleSet, error) {
	var r RoleSet
	if strings.TrimSpace(s) == "" {
		return 0, nil
	}
	for _, part := range strings.FieldsFunc(s, func(c rune) bool { return c == '|' || c == ',' }) {
		name := strings.ToLower(strings.TrimSpace(part))
		if name == "other" {
			name = "observer"
		}
		found := false
		for i, n := range roleNames {
			if n == name {
				r |= 1 << i
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("parse roles %q: %q is not a role (want one of %s)", s, part, strings.Join(roleNames[:], ", "))
		}
	}
	return r, nil
}

// MarshalText writes r as String does.
func (r RoleSet) MarshalText() ([]byte, error) {
	if r&^allRoles != 0 {
		return nil, fmt.Errorf("marshal roles: unknown bits %#x", uint16(r&^allRoles))
	}
	return []byte(r.String()), nil
}

// UnmarshalText reads r as ParseRoleSet does.
func (r *RoleSet) UnmarshalText(text []byte) error {
	v, err := ParseRoleSet(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
