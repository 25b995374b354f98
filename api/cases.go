package api

import (
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/ledger"
)

// ReplicaStatus says how a node's copy of a case compares with the Case
// Actor's ledger, and what the node is doing about a difference. The
// cases package computes it (cases.Status) and defines its shape.
type ReplicaStatus = cases.ReplicaStatus

// Case is a case as GET /api/cases lists it.
type Case struct {
	ID           string        `json:"id"`
	Name         string        `json:"name"`
	Owner        string        `json:"owner"`
	CaseActor    string        `json:"caseActor"`
	Hosted       bool          `json:"hosted"`
	EMState      string        `json:"emState"`
	EmbargoEnd   *time.Time    `json:"embargoEnd,omitempty"`
	PXAState     string        `json:"pxaState"`
	Reports      []string      `json:"reports"`
	Participants []Participant `json:"participants"`
	LedgerLength int64         `json:"ledgerLength"`
	TailHash     string        `json:"tailHash"`
	Closed       bool          `json:"closed"`
	// Closure says when the case was closed for everyone because its
	// owner left, and who that owner was; absent while the owner is in
	// it. Closed is also true once every participant closed the case.
	Closure   *cases.Closure `json:"closure,omitempty"`
	Diverged  string         `json:"diverged,omitempty"`
	UpdatedAt time.Time      `json:"updatedAt"`
	// Replica says how this node's copy compares with the Case Actor's
	// ledger, and what the node is doing about a difference.
	Replica ReplicaStatus `json:"replica"`
}

// Participant is a participant of a case, with its states written as the
// protocol writes them (RM ACCEPTED, vfd VFd, SIGNATORY).
type Participant struct {
	Actor    string   `json:"actor"`
	ID       string   `json:"id"`
	Roles    []string `json:"roles"`
	RMState  string   `json:"rmState"`
	VFDState string   `json:"vfdState"`
	// FixPath is the participant's part of the case state as written for
	// it: a vendor's vfd, a deployer's own d or D, "" for the others.
	FixPath string `json:"fixPath,omitempty"`
	// PECState is the participant's embargo consent now: INVITED or
	// LAPSED past RSVPBy reads DECLINED (cases.Case.ConsentAt).
	PECState string `json:"pecState"`
	// RSVPBy is when an INVITED or LAPSED participant is to answer the
	// open embargo proposals it was invited to (cases.Case.RSVPDeadline).
	RSVPBy           *time.Time    `json:"rsvpBy,omitempty"`
	Engaged          bool          `json:"engaged"`
	EmbargoAdherence bool          `json:"embargoAdherence"`
	Removed          bool          `json:"removed,omitempty"`
	Contact          cases.Contact `json:"contact"`
}

// CaseDetail is GET /api/cases/{id}: the case as listed, with what a
// single case's page shows.
type CaseDetail struct {
	Case
	Embargo   *cases.Embargo      `json:"embargo,omitempty"`
	Proposals []cases.Proposal    `json:"proposals,omitempty"`
	History   []cases.EmbargoStep `json:"embargoHistory,omitempty"`
	// Notes is a page of the case's notes: by default the newest hundred;
	// ?notes=N&notesFrom=K asks for N from the K-th.
	Notes []cases.Note `json:"notes,omitempty"`
	// NotesSentBy names, by note id, the person of this node who wrote
	// each of Notes (docs/accounts.md); the other notes are absent.
	NotesSentBy map[string]string  `json:"notesSentBy,omitempty"`
	NotesFrom   int                `json:"notesFrom"`
	NotesTotal  int                `json:"notesTotal"`
	Invites     []cases.Invite     `json:"invites,omitempty"`
	Suggestions []cases.Suggestion `json:"suggestions,omitempty"`
	Transfer    *cases.Transfer    `json:"transfer,omitempty"`
	// Replies are the newest acknowledgements and errors this node's
	// actors received about the case, newest first.
	Replies []cases.ReplyRecord `json:"replies,omitempty"`
	// Related are the cases related to this one, from both ends: those
	// it names as parent, child or sibling and those that name it.
	Related []cases.CaseLink `json:"related,omitempty"`
	// VulnerabilityIDs are the CVE id and aliases the case records.
	VulnerabilityIDs []string `json:"vulnerabilityIds,omitempty"`
	// Products are the vendors' statements of their products' statuses;
	// Advisory is the case's advisory: its published revisions, the draft
	// under review with each reviewer's answer, the proposed publication
	// time.
	Products []cases.Product `json:"products,omitempty"`
	Advisory *cases.Advisory `json:"advisory,omitempty"`
}

// AdvisoryLinks are the URLs of a published advisory.
type AdvisoryLinks struct {
	Page string `json:"page"`
	CSAF string `json:"csaf"`
	// CVE is empty when the case records no CVE id.
	CVE string `json:"cve,omitempty"`
	OSV string `json:"osv"`
}

// AdvisorySummary is one advisory of GET /advisories.
type AdvisorySummary struct {
	TrackingID string        `json:"trackingId"`
	Title      string        `json:"title"`
	Summary    string        `json:"summary,omitempty"`
	Revision   int           `json:"revision"`
	Published  time.Time     `json:"published"`
	Updated    time.Time     `json:"updated"`
	IDs        []string      `json:"vulnerabilityIds,omitempty"`
	Links      AdvisoryLinks `json:"links"`
}

// AdvisoryList is GET /advisories as JSON.
type AdvisoryList struct {
	Advisories []AdvisorySummary `json:"advisories"`
	Next       string            `json:"next,omitempty"`
}

// PublishRequest is the body of POST /api/cases/{id}/advisory/publish:
// the advisory's text (each defaults to the draft shared last, or the
// latest revision before, leaving out one the case says this node's actor
// published but the node did not send), and Force to publish before every
// invited reviewer answered.
type PublishRequest struct {
	Title   string `json:"title,omitempty"`
	Summary string `json:"summary,omitempty"`
	Details string `json:"details,omitempty"`
	Force   bool   `json:"force,omitempty"`
}

// Published is the answer to a publication: the activity that carries it
// (Create or Update of the Article) and where the advisory is.
type Published struct {
	Activity   string        `json:"activity"`
	TrackingID string        `json:"trackingId"`
	Revision   int           `json:"revision"`
	Links      AdvisoryLinks `json:"links"`
}

// CasePage is GET /api/cases?limit=N&after=CURSOR: a page of cases in id
// order and, when more follow, the after of the next page.
type CasePage struct {
	Cases []Case `json:"cases"`
	Next  string `json:"next,omitempty"`
}

// LedgerPage is GET /api/cases/{id}/ledger?from=N&limit=M: entries of the
// node's copy of a case's ledger and, when the page is full, the from of
// the next page.
type LedgerPage struct {
	Entries []ledger.Entry `json:"entries"`
	Next    *int64         `json:"next,omitempty"`
	// SentBy names, by activity id (an entry's logObjectId), the person
	// on whose request this node's actor sent an entry's activity; the
	// entries of peers and of the node's own actions have none. It is
	// this node's local record, never part of the ledger or the wire.
	SentBy map[string]string `json:"sentBy,omitempty"`
}

// Refusal is a Case Actor's refusal of an activity a local actor sent.
type Refusal = cases.Refusal

// ActivityRecord is GET /api/cases/{id}/ledger?activity=ID: whether the
// node's copy of the case recorded the activity, and where, or the Case
// Actor's refusal of it.
type ActivityRecord struct {
	Activity string `json:"activity"`
	Case     string `json:"case"`
	// CaseHeld is false while this node holds no copy of the case yet (a
	// participant's node holds it once the Case Actor's first
	// announcement arrives).
	CaseHeld bool `json:"caseHeld"`
	Recorded bool `json:"recorded"`
	// LogIndex is where the case recorded the activity, when it did.
	LogIndex *int64 `json:"logIndex,omitempty"`
	// Refused is the Case Actor's refusal, when one reached the local
	// actor that sent the activity.
	Refused *Refusal `json:"refused,omitempty"`
}

// Resync is POST /api/cases/{id}/resync: the replica's status once it was
// checked.
type Resync struct {
	Case    string        `json:"case"`
	Replica ReplicaStatus `json:"replica"`
}
