package vocab

import (
	"fmt"
	"strings"
)

// The enumerations travel as strings. This file holds the accepted
// spellings of each one and turns an accepted spelling into the current
// wire spelling; package cvdstate converts those strings into its types.
// Every normaliser returns an error that names the field's accepted
// values, so a refusal tells the sender what to write instead.

// NormalizeRole returns the wire spelling of a CVD role in caseRoles and
// an activity's roles (lowercase), or an error naming the roles there are.
// Input is matched without regard to case, as the reference parser
// lowercases it; "other" is the name the observer role had before it was
// renamed. The node reads roles with it; a client checks a role with it
// before sending one.
func NormalizeRole(s string) (string, error) {
	l := strings.ToLower(s)
	switch l {
	case "finder", "reporter", "vendor", "deployer", "coordinator", "observer",
		"case_owner", "case_manager", "cve_numbering_authority":
		return l, nil
	case "other":
		return "observer", nil
	}
	if rest, ok := strings.CutPrefix(l, "cvd_role_"); ok {
		if cur, err := NormalizeRole(rest); err == nil {
			return "", fmt.Errorf("%s is the 2023 spelling of a CVD role: use %s", s, cur)
		}
	}
	return "", fmt.Errorf("%q is not a CVD role (one of finder, reporter, vendor, deployer, coordinator, observer, case_owner, case_manager, cve_numbering_authority)", s)
}

// normalizeRoleName returns the spelling of a CVD role in
// ParticipantStatus.cvdRole, which uses the uppercase enumeration names.
func normalizeRoleName(s string) (string, error) {
	r, err := NormalizeRole(s)
	if err != nil {
		return "", err
	}
	return strings.ToUpper(r), nil
}

// normalizeRM returns the wire spelling of a Report Management state. The
// long names of the 2023 examples (REPORT_MANAGEMENT_RECEIVED) are accepted
// as aliases, as the reference still parses them.
func normalizeRM(s string) (string, error) {
	v := strings.TrimPrefix(s, "REPORT_MANAGEMENT_")
	switch v {
	case "START", "RECEIVED", "INVALID", "VALID", "DEFERRED", "ACCEPTED", "CLOSED":
		return v, nil
	}
	return "", fmt.Errorf("%q is not a report management state (one of START, RECEIVED, INVALID, VALID, DEFERRED, ACCEPTED, CLOSED)", s)
}

// normalizeEM returns the wire spelling of an Embargo Management state,
// accepting the 2023 aliases (EMBARGO_MANAGEMENT_ACTIVE).
func normalizeEM(s string) (string, error) {
	v := strings.TrimPrefix(s, "EMBARGO_MANAGEMENT_")
	switch v {
	case "NONE", "PROPOSED", "ACTIVE", "REVISE", "EXITED":
		return v, nil
	}
	return "", fmt.Errorf("%q is not an embargo management state (one of NONE, PROPOSED, ACTIVE, REVISE, EXITED)", s)
}

// normalizePEC returns the wire spelling of a participant's embargo consent
// state.
func normalizePEC(s string) (string, error) {
	switch s {
	case "NO_EMBARGO", "INVITED", "SIGNATORY", "DECLINED", "LAPSED":
		return s, nil
	}
	return "", fmt.Errorf("%q is not an embargo consent state (one of NO_EMBARGO, INVITED, SIGNATORY, DECLINED, LAPSED)", s)
}

// normalizeVFD checks a vendor/fix/deployed case substate (vfd .. VFD).
// The case of each letter is the state, so no case folding happens. The
// 2023 long names are refused with the current spelling in the message,
// as the reference refuses them too.
func normalizeVFD(s string) (string, error) {
	switch s {
	case "vfd", "Vfd", "VFd", "VFD":
		return s, nil
	}
	if cur, ok := legacyCaseState(s, "VFD", "VENDOR", "FIX", "DEPLOYED"); ok {
		return "", fmt.Errorf("%s is the 2023 spelling of a case state: use %s", s, cur)
	}
	return "", fmt.Errorf("%q is not a vendor/fix/deployed state (one of vfd, Vfd, VFd, VFD)", s)
}

// normalizePXA checks a public/exploit/attack case substate (pxa .. PXA).
func normalizePXA(s string) (string, error) {
	switch s {
	case "pxa", "Pxa", "pXa", "pxA", "PXa", "PxA", "pXA", "PXA":
		return s, nil
	}
	if cur, ok := legacyCaseState(s, "PXA", "PUBLIC", "EXPLOIT", "ATTACK"); ok {
		return "", fmt.Errorf("%s is the 2023 spelling of a case state: use %s", s, cur)
	}
	return "", fmt.Errorf("%q is not a public/exploit/attack state (one of pxa, Pxa, pXa, pxA, PXa, PxA, pXA, PXA)", s)
}

// legacyCaseState maps a 2023 name such as
// CS_VENDOR_AWARE__NO_FIX__NOT_DEPLOYED to its letters (Vfd), only to name
// the replacement in an error message. letters and words give the three
// facets in order.
func legacyCaseState(s, letters string, words ...string) (string, bool) {
	rest, ok := strings.CutPrefix(s, "CS_")
	if !ok {
		return "", false
	}
	parts := strings.Split(rest, "__")
	if len(parts) != len(words) {
		return "", false
	}
	var b strings.Builder
	for i, p := range parts {
		if !strings.Contains(p, words[i]) {
			return "", false
		}
		letter := letters[i : i+1]
		if strings.HasPrefix(p, "NO_") || strings.HasPrefix(p, "NOT_") || strings.HasSuffix(p, "_UNAWARE") {
			letter = strings.ToLower(letter)
		}
		b.WriteString(letter)
	}
	return b.String(), true
}
