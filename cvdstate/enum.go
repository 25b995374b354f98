package cvdstate

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNotAllowed is wrapped by every error that refuses a transition or a
// message because the protocol does not allow it in the current state.
var ErrNotAllowed = errors.New("not allowed")

// TransitionError says which transition of which model was refused and why.
// It wraps ErrNotAllowed.
type TransitionError struct {
	Model  string // "RM", "EM", "PEC", "CS" or a message family
	Event  string // the event's wire name
	From   string // the state's wire name
	Reason string // why the protocol forbids it, as a clause
}

func (e *TransitionError) Error() string {
	return fmt.Sprintf("%s transition %s is not allowed from %s: %s", e.Model, e.Event, e.From, e.Reason)
}

// Unwrap lets errors.Is find ErrNotAllowed.
func (e *TransitionError) Unwrap() error { return ErrNotAllowed }

// parseName finds s among names, then among aliases; kind names the enum in
// the error. Matching ignores case unless caseSensitive is set.
func parseName(kind, s string, names []string, aliases map[string]int, caseSensitive bool) (int, error) {
	key := strings.TrimSpace(s)
	if !caseSensitive {
		key = strings.ToUpper(key)
	}
	for i, n := range names {
		if n == key {
			return i, nil
		}
	}
	if i, ok := aliases[key]; ok {
		return i, nil
	}
	return 0, fmt.Errorf("parse %s %q: want one of %s", kind, s, strings.Join(names, ", "))
}

// nameOf returns names[i] or a diagnostic spelling for an out-of-range value.
func nameOf(kind string, names []string, i int) string {
	if i >= 0 && i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("%s(%d)", kind, i)
}

// checkRange refuses to marshal a value outside names.
func checkRange(kind string, names []string, i int) error {
	if i < 0 || i >= len(names) {
		return fmt.Errorf("marshal %s: %d is not a valid value", kind, i)
	}
	return nil
}
