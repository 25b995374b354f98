package node

import (
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// caseView is a case as the read API shows it.
type caseView struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Owner        string            `json:"owner"`
	CaseActor    string            `json:"caseActor"`
	Hosted       bool              `json:"hosted"`
	EMState      string            `json:"emState"`
	EmbargoEnd   *time.Time        `json:"embargoEnd,omitempty"`
	PXAState     string            `json:"pxaState"`
	Reports      []string          `json:"reports"`
	Participants []participantView `json:"participants"`
	LedgerLength int64             `json:"ledgerLength"`
	TailHash     string            `json:"tailHash"`
	Closed       bool              `json:"closed"`
	Diverged     string            `json:"diverged,omitempty"`
	UpdatedAt    time.Time         `json:"updatedAt"`
	// Replica says how this node's copy compares with the Case Actor's
	// ledger, and what the node is doing about a difference.
	Replica cases.ReplicaStatus `json:"replica"`
}

type participantView struct {
	Actor            string        `json:"actor"`
	ID               string        `json:"id"`
	Roles            []string      `json:"roles"`
	RMState          string        `json:"rmState"`
	VFDState         string        `json:"vfdState"`
	PECState         string        `json:"pecState"`
	Engaged          bool          `json:"engaged"`
	EmbargoAdherence bool          `json:"embargoAdherence"`
	Removed          bool          `json:"removed,omitempty"`
	Contact          cases.Contact `json:"contact"`
}

// caseDetail adds what a single case's page shows to the summary.
type caseDetail struct {
	caseView
	Embargo   *cases.Embargo      `json:"embargo,omitempty"`
	Proposals []cases.Proposal    `json:"proposals,omitempty"`
	History   []cases.EmbargoStep `json:"embargoHistory,omitempty"`
	// Notes is a page of the case's notes: by default the newest
	// defaultNotePage; ?notes=N&notesFrom=K asks for N from the K-th.
	Notes       []cases.Note       `json:"notes,omitempty"`
	NotesFrom   int                `json:"notesFrom"`
	NotesTotal  int                `json:"notesTotal"`
	Invites     []cases.Invite     `json:"invites,omitempty"`
	Suggestions []cases.Suggestion `json:"suggestions,omitempty"`
	Transfer    *cases.Transfer    `json:"transfer,omitempty"`
	// VulnerabilityIDs are the CVE id and aliases the case records.
	VulnerabilityIDs []string `json:"vulnerabilityIds,omitempty"`
}

// viewCase reads what the API shows of case c, in tx.
func viewCase(tx *store.ReadTx, c *cases.Case, now time.Time) (caseView, error) {
	status, err := cases.Status(tx, c, now)
	if err != nil {
		return caseView{}, err
	}
	v := caseView{ID: c.ID, Name: c.Name, Owner: c.Owner, CaseActor: c.CaseActor, Hosted: status.State == cases.ReplicaHosted, Replica: status,
		EMState: c.EM.String(), PXAState: c.PXA.String(), Reports: c.Reports,
		LedgerLength: c.LedgerLen, TailHash: c.TailHash, Closed: c.Closed(), Diverged: c.Diverged, UpdatedAt: c.UpdatedAt}
	if c.Embargo != nil && c.EM.InForce() {
		end := c.Embargo.End
		v.EmbargoEnd = &end
	}
	for _, p := range c.Participants {
		pv := participantView{Actor: p.Actor, ID: p.ID, RMState: p.RM.String(), VFDState: p.VFD.String(),
			PECState: p.PEC.String(), Engaged: p.Engaged(), EmbargoAdherence: p.EmbargoAdherence(), Removed: p.Removed, Contact: p.Contact}
		pv.Roles = roleNames(p.Roles)
		v.Participants = append(v.Participants, pv)
	}
	return v, nil
}

// Pages of GET /api/cases and of the notes in GET /api/cases/{id}.
const (
	defaultCasePage = 100
	maxCasePage     = 1000
	defaultNotePage = 100
)

// listCases answers GET /api/cases?limit=N&after=CURSOR: a page of cases in
// id order and, when more follow, the cursor of the next page in "next".
func (n *Node) listCases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := intParam(q, "limit", defaultCasePage, 1, maxCasePage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var out []caseView
	var next string
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		page, cursor, err := cases.ListCasesPage(tx, q.Get("after"), limit)
		if err != nil {
			return err
		}
		for _, c := range page {
			v, err := viewCase(tx, c, n.cfg.Now())
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		next = cursor
		return nil
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	if out == nil {
		out = []caseView{}
	}
	body := map[string]any{"cases": out}
	if next != "" {
		body["next"] = next
	}
	problem.WriteJSON(w, http.StatusOK, body)
}

// intParam reads an integer query parameter in [lo, hi], def when absent.
func intParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, problem.BadRequest("%s must be a whole number from %d to %d, not %q", name, lo, hi, s)
	}
	return v, nil
}

// showCase answers GET /api/cases/{id}?notes=N&notesFrom=K: the case with a
// page of its notes (the newest defaultNotePage unless asked otherwise).
func (n *Node) showCase(w http.ResponseWriter, r *http.Request) {
	id, err := n.caseIDParam(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	q := r.URL.Query()
	notes, err := intParam(q, "notes", defaultNotePage, 0, maxCasePage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	notesFrom, err := intParam(q, "notesFrom", 0, 0, math.MaxInt32)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var d *caseDetail
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil || c == nil {
			return err
		}
		v, err := viewCase(tx, c, n.cfg.Now())
		if err != nil {
			return err
		}
		d = &caseDetail{caseView: v, Embargo: c.Embargo, Proposals: c.Proposals,
			History: c.History, Invites: c.Invites, Suggestions: c.Suggestions, Transfer: c.Transfer, VulnerabilityIDs: c.VulnerabilityIDs}
		d.NotesTotal = c.NoteCount
		d.NotesFrom = max(0, c.NoteCount-notes)
		if q.Has("notesFrom") {
			d.NotesFrom = min(notesFrom, c.NoteCount)
		}
		if notes == 0 {
			return nil // none asked for; a limit of 0 would read them all
		}
		d.Notes, err = c.NotesPage(tx, d.NotesFrom, notes)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	if d == nil {
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	}
	problem.WriteJSON(w, http.StatusOK, d)
}

// caseLedger answers GET /api/cases/{id}/ledger?from=N&limit=M, and
// GET /api/cases/{id}/ledger?activity=ID (recordedActivity).
func (n *Node) caseLedger(w http.ResponseWriter, r *http.Request) {
	id, err := n.caseIDParam(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if r.URL.Query().Has("activity") {
		n.recordedActivity(w, r, id, r.URL.Query().Get("activity"))
		return
	}
	from, limit := int64(0), 100
	if v := r.URL.Query().Get("from"); v != "" {
		if from, err = strconv.ParseInt(v, 10, 64); err != nil || from < 0 {
			problem.Write(w, problem.BadRequest("from %q must be a log index (0 or more)", v))
			return
		}
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			problem.Write(w, problem.BadRequest("limit %q must be a number from 1 to 1000", v))
			return
		}
	}
	var entries []ledger.Entry
	var found bool
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil || c == nil {
			return err
		}
		found = true
		entries, err = cases.Entries(tx, id, from, limit)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	if !found {
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	}
	if entries == nil {
		entries = []ledger.Entry{}
	}
	body := map[string]any{"entries": entries}
	if len(entries) == limit {
		body["next"] = from + int64(limit)
	}
	problem.WriteJSON(w, http.StatusOK, body)
}

// roleNames lists the wire names of the roles in r.
func roleNames(r cvdstate.RoleSet) []string { return r.Names() }

// getCase serves a case object (GET {public}/cases/ID) as a
// VulnerabilityCase, to the node's API token or to a signed GET from one of
// the case's participants; an invitee reads it only once it has accepted,
// and a removed participant no longer reads it.
func (n *Node) getCase(w http.ResponseWriter, r *http.Request) {
	id := n.cfg.PublicURL + "/cases/" + mux.Vars(r)["cid"]
	var c *cases.Case
	if err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		c, err = cases.Load(tx, id)
		return err
	}); err != nil {
		problem.Write(w, err)
		return
	}
	if !n.token.check(r) {
		signer, err := n.verifier.Verify(r.Context(), r, nil)
		if err != nil {
			problem.Write(w, unauthorizedGET(err))
			return
		}
		if c != nil && !c.CanRead(signer.Owner) {
			problem.Write(w, problem.Forbidden("%s is not a participant of %s", signer.Owner, id))
			return
		}
	}
	if c == nil {
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	}
	// The notes are read only for a reader allowed to see them.
	var noteIDs []string
	if err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		noteIDs, err = c.NoteIDs(tx)
		return err
	}); err != nil {
		problem.Write(w, err)
		return
	}
	body, err := vocab.Marshal(c.Object(noteIDs))
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(body)
}
