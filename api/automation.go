package api

import (
	"time"

	"github.com/openvultron/vultron/intel"
)

// Deadline is one running deadline clock as GET /api/deadlines answers it.
type Deadline struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"` // a case's id, or a report's before a case
	Report  bool   `json:"report,omitempty"`
	Name    string `json:"name,omitempty"`
	// Participant is the id of the actor whose clock it is (none for the
	// embargo's end), of a report's clock as of a case's; Local is that
	// actor's name when it is one of this node's actors, which Mine says.
	Participant string    `json:"participant,omitempty"`
	Local       string    `json:"local,omitempty"`
	Mine        bool      `json:"mine"`
	Start       time.Time `json:"start"`
	Due         time.Time `json:"due"`
	// DueLocal is Due in the node's time zone, as its calendar counts
	// business days.
	DueLocal string `json:"dueLocal"`
	Limit    string `json:"limit"`
	Overdue  bool   `json:"overdue"`
}

// Deadlines is GET /api/deadlines?overdue=true&limit=N&case=ID.
type Deadlines struct {
	TimeZone  string     `json:"timeZone"`
	Now       time.Time  `json:"now"`
	Deadlines []Deadline `json:"deadlines"`
}

// IntelSignal is a threat-intelligence signal the node offered for a case;
// Open says the case does not record yet what it says.
type IntelSignal struct {
	intel.Offered
	Open bool `json:"open"`
}

// IntelSignals is GET /api/intel?case=ID&limit=N.
type IntelSignals struct {
	Signals []IntelSignal `json:"signals"`
}

// Policy is GET /api/policy: the automation policy the node follows.
type Policy struct {
	Name   string       `json:"name"`
	Source string       `json:"source"`
	Off    []string     `json:"off,omitempty"`
	Rules  []PolicyRule `json:"rules"`
}

// PolicyRule is one rule of a Policy, its actions written as a policy
// file writes them.
type PolicyRule struct {
	Name string   `json:"name"`
	Line int      `json:"line"`
	On   string   `json:"on"`
	If   string   `json:"if,omitempty"`
	Do   []string `json:"do"`
}

// PolicyExplanation is GET /api/cases/{id}/policy: which rules would fire
// now in the case, and why.
type PolicyExplanation struct {
	Case   string        `json:"case"`
	Policy string        `json:"policy"`
	Now    time.Time     `json:"now"`
	Points []PolicyPoint `json:"points"`
}

// PolicyPoint is what the policy says for one local actor at one decision
// point of a case: whether the point is open now (an embargo proposal
// waits for an answer, a fix is ready, a signal was offered ...), whether
// the actor decided it already, and each rule keyed by it. For an embargo
// proposal or an invitation the case no longer holds open for the actor
// (answered, withdrawn, its deadline for answers passed), Decided says
// that the actor answered it or the policy decided it, and each rule's
// Why says what became of it instead of evaluating the rule.
type PolicyPoint struct {
	Actor   string           `json:"actor"`
	Point   string           `json:"point"`
	Open    bool             `json:"open"`
	Decided bool             `json:"decided"`
	Rules   []PolicyRuleView `json:"rules"`
}

// PolicyRuleView is what one rule says at a decision point: whether it
// fires, why (its condition with the values it read), and its actions.
type PolicyRuleView struct {
	Rule    string   `json:"rule"`
	Line    int      `json:"line"`
	Fires   bool     `json:"fires"`
	Why     string   `json:"why"`
	Actions []string `json:"actions,omitempty"`
}
