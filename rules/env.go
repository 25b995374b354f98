package rules

import "time"

// Env is what a condition sees: the decision point, the deciding local
// actor, the sender of what is decided on, the clock, and the objects of
// the decision. Fields a decision point does not have are zero. Names are
// written in expressions as the expr tags say: sender, case.em,
// proposal.days, vars.finders.
type Env struct {
	Point      string         `expr:"point"`
	Actor      string         `expr:"actor"`  // the deciding local actor's id
	Sender     string         `expr:"sender"` // who sent what is decided on
	Now        time.Time      `expr:"now"`
	Case       Case           `expr:"case"`
	Report     Report         `expr:"report"`
	Proposal   Proposal       `expr:"proposal"`
	Invitation Invitation     `expr:"invitation"`
	Suggestion Suggestion     `expr:"suggestion"`
	Intel      Intel          `expr:"intel"`
	Vars       map[string]any `expr:"vars"` // the policy's own constants
}

// Case is the case a decision concerns, as the deciding actor's node holds
// it; empty for a report no case was opened for yet.
type Case struct {
	ID    string `expr:"id"`
	Name  string `expr:"name"`
	Owner string `expr:"owner"`
	EM    string `expr:"em"`  // NONE, PROPOSED, ACTIVE, REVISE, EXITED
	PXA   string `expr:"pxa"` // such as "Pxa"
	// Roles, RM and VFD are the deciding actor's in the case.
	Roles        []string  `expr:"roles"`
	RM           string    `expr:"rm"`
	VFD          string    `expr:"vfd"`
	Participants []string  `expr:"participants"` // actor ids, removed ones left out
	CVEs         []string  `expr:"cves"`         // CVE ids and aliases recorded for the case
	AgeDays      float64   `expr:"age_days"`     // days since the case was opened
	EmbargoEnd   time.Time `expr:"embargo_end"`  // zero without an embargo in force
	// EmbargoDaysLeft is the days until the embargo in force ends (negative
	// once it passed); 0 without one.
	EmbargoDaysLeft float64 `expr:"embargo_days_left"`
}

// Report is the report a decision concerns.
type Report struct {
	ID       string `expr:"id"`
	Name     string `expr:"name"`
	Content  string `expr:"content"`
	Reporter string `expr:"reporter"`
	// Vendor is the vendor the report names, when something says so (the
	// simulator knows it; a node leaves it empty).
	Vendor string `expr:"vendor"`
}

// Proposal is the embargo proposal being decided on.
type Proposal struct {
	ID       string    `expr:"id"`
	Days     float64   `expr:"days"` // from now to the proposed end
	End      time.Time `expr:"end"`
	Proposer string    `expr:"proposer"`
	Revision bool      `expr:"revision"` // it revises an embargo in force
}

// Invitation is the invitation to a case being decided on. It comes from
// the case's Case Actor on its owner's behalf: By is the Case Actor and
// Host the host of its node, the inviting organization's.
type Invitation struct {
	ID    string   `expr:"id"`
	By    string   `expr:"by"`
	Host  string   `expr:"host"`
	Case  string   `expr:"case"`
	Roles []string `expr:"roles"`
}

// Suggestion is a participant's suggestion to invite an actor.
type Suggestion struct {
	ID    string   `expr:"id"`
	Actor string   `expr:"actor"`
	By    string   `expr:"by"`
	Roles []string `expr:"roles"`
}

// Intel is a threat-intelligence signal about a case.
type Intel struct {
	Kind   string `expr:"kind"`   // attacks, exploit_public, public
	CVE    string `expr:"cve"`    // the CVE id the feed listed
	Source string `expr:"source"` // the feed
	Detail string `expr:"detail"` // the feed's own words, such as a KEV entry's name
}
