package jsonapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// defaultReplyPage is how many replies a case's detail shows.
const defaultReplyPage = 100

// viewCase reads what the API shows of case c, in tx; isLocal says
// whether an actor id is one of this node's.
func viewCase(tx *store.ReadTx, c *cases.Case, now time.Time, isLocal func(id string) bool) (api.Case, error) {
	status, err := cases.Status(tx, c, now, isLocal)
	if err != nil {
		return api.Case{}, err
	}
	v := api.Case{ID: c.ID, Name: c.Name, Owner: c.Owner, CaseActor: c.CaseActor, Hosted: status.State == cases.ReplicaHosted, Replica: status,
		EMState: c.EM.String(), PXAState: c.PXA.String(), Reports: c.Reports,
		LedgerLength: c.LedgerLen, TailHash: c.TailHash, Closed: c.Closed(), Closure: c.Closure, Diverged: c.Diverged, UpdatedAt: c.UpdatedAt}
	if c.Embargo != nil && c.EM.InForce() {
		end := c.Embargo.End
		v.EmbargoEnd = &end
	}
	for _, p := range c.Participants {
		pv := api.Participant{Actor: p.Actor, ID: p.ID, RMState: p.RM.String(), VFDState: p.VFD.String(),
			FixPath:  cvdstate.FixPath(p.Roles, p.VFD),
			PECState: c.ConsentAt(p, now).String(), Engaged: p.CaseEngagement(), EmbargoAdherence: c.ConsentAt(p, now).Adheres(), Removed: p.Removed, Contact: p.Contact}
		if by := c.RSVPDeadline(p); !by.IsZero() {
			pv.RSVPBy = &by
		}
		pv.Roles = p.Roles.Names()
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

// Cases answers GET /api/cases?limit=N&after=CURSOR: a page of cases in
// id order and, when more follow, the cursor of the next page in "next".
func (e *Endpoints) Cases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpreq.IntParam(q, "limit", defaultCasePage, 1, maxCasePage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var out []api.Case
	var next string
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		page, cursor, err := cases.ListCasesPage(tx, q.Get("after"), limit)
		if err != nil {
			return err
		}
		for _, c := range page {
			v, err := viewCase(tx, c, e.cfg.Now(), e.cfg.IsLocal)
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
		out = []api.Case{}
	}
	problem.WriteJSON(w, http.StatusOK, api.CasePage{Cases: out, Next: next})
}

// Case answers GET /api/cases/{id}?notes=N&notesFrom=K: the case with a
// page of its notes (the newest defaultNotePage unless asked otherwise).
func (e *Endpoints) Case(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, e.cfg.Store)
	if err != nil {
		problem.Write(w, err)
		return
	}
	q := r.URL.Query()
	notes, err := httpreq.IntParam(q, "notes", defaultNotePage, 0, maxCasePage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	notesFrom, err := httpreq.IntParam(q, "notesFrom", 0, 0, math.MaxInt32)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var d *api.CaseDetail
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil || c == nil {
			return err
		}
		v, err := viewCase(tx, c, e.cfg.Now(), e.cfg.IsLocal)
		if err != nil {
			return err
		}
		d = &api.CaseDetail{Case: v, Embargo: c.Embargo, Proposals: c.Proposals,
			History: c.History, Invites: c.Invites, Suggestions: c.Suggestions, Transfer: c.Transfer, VulnerabilityIDs: c.VulnerabilityIDs,
			Products: c.Products, Advisory: c.Advisory}
		if d.Replies, err = cases.Replies(tx, c.ID, defaultReplyPage); err != nil {
			return err
		}
		if d.Related, err = cases.Related(tx, c.ID); err != nil {
			return err
		}
		d.NotesTotal = c.NoteCount
		d.NotesFrom = max(0, c.NoteCount-notes)
		if q.Has("notesFrom") {
			d.NotesFrom = min(notesFrom, c.NoteCount)
		}
		if notes == 0 {
			return nil // none asked for; a limit of 0 would read them all
		}
		if d.Notes, err = c.NotesPage(tx, d.NotesFrom, notes); err != nil {
			return err
		}
		d.NotesSentBy, err = cases.NotesSentBy(tx, d.Notes, e.cfg.IsLocal)
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

// CaseLedger answers GET /api/cases/{id}/ledger?from=N&limit=M, and
// GET /api/cases/{id}/ledger?activity=ID (recordedActivity).
func (e *Endpoints) CaseLedger(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, e.cfg.Store)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if r.URL.Query().Has("activity") {
		e.recordedActivity(w, r, id, r.URL.Query().Get("activity"))
		return
	}
	from, err := httpreq.LogIndex(r.URL.Query(), "from")
	if err != nil {
		problem.Write(w, err)
		return
	}
	limit, err := httpreq.Limit(r.URL.Query(), 100, 1000)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var entries []ledger.Entry
	var found bool
	var sentBy map[string]string
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil || c == nil {
			return err
		}
		found = true
		if entries, err = cases.Entries(tx, id, from, limit); err != nil {
			return err
		}
		// Who had each of this node's entries sent: one read by key per
		// entry of the (bounded) page.
		for _, en := range entries {
			by, err := cases.SentBy(tx, en.LogObjectID)
			if err != nil {
				return err
			}
			if by != "" {
				if sentBy == nil {
					sentBy = map[string]string{}
				}
				sentBy[en.LogObjectID] = by
			}
		}
		return nil
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
	page := api.LedgerPage{Entries: entries, SentBy: sentBy}
	if len(entries) == limit {
		next := from + int64(limit)
		page.Next = &next
	}
	problem.WriteJSON(w, http.StatusOK, page)
}

// recordedActivity answers GET /api/cases/{id}/ledger?activity=ID: whether
// this node's copy of the case recorded the activity, at which log index,
// and whether the Case Actor refused it instead (its Reject reached the
// local actor that sent it), as cases.OutcomeOf reads them. Both are index
// look-ups, so a client may ask again and again while it waits.
func (e *Endpoints) recordedActivity(w http.ResponseWriter, r *http.Request, caseID, activity string) {
	if activity == "" {
		problem.Write(w, problem.BadRequest("activity= must name an activity id"))
		return
	}
	var o cases.Outcome
	err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		o, err = cases.OutcomeOf(tx, caseID, activity)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	out := api.ActivityRecord{Activity: activity, Case: caseID, CaseHeld: o.CaseHeld, Recorded: o.Recorded, Refused: o.Refused}
	if o.Recorded {
		out.LogIndex = &o.LogIndex
	}
	problem.WriteJSON(w, http.StatusOK, out)
}

// resyncWait bounds how long a resync's answer waits for the check it
// asked for: a Case Actor that does not answer is reported as the check's
// failure once the fetch gives up (10 s), or as scheduled after this.
const resyncWait = 15 * time.Second

// Resync answers POST /api/cases/{id}/resync ({"rebuild": true} to
// drop this node's copy of the case and fetch the Case Actor's ledger from
// its start): the replica is checked now, and the answer shows its status.
func (e *Endpoints) Resync(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, e.cfg.Store)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var req struct {
		Rebuild bool `json:"rebuild"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err != nil {
		problem.Write(w, problem.BadRequest("the request body could not be read"))
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			problem.Write(w, problem.BadRequest("the body must be a JSON object such as {\"rebuild\": true}: %v", err))
			return
		}
	}
	asked := e.cfg.Now()
	err = e.cfg.Store.Update(r.Context(), func(tx *store.Tx) error { return e.cfg.Resync(tx, id, req.Rebuild) })
	var pe *problem.Error
	if err != nil && !errors.As(err, &pe) {
		err = fmt.Errorf("resync case %s: %w", id, err)
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	e.cfg.Logger.Info().Str("case", id).Bool("rebuild", req.Rebuild).Msg("replica resync requested")
	// The node's syncer checks the replica at once, woken by the commit;
	// the answer waits for that check (resyncWait at most), so that it
	// says what the check found rather than the state before it (a fork
	// a check is to confirm is lifted until then). A rebuild's answer
	// says it is under way.
	wait := time.NewTimer(resyncWait)
	defer wait.Stop()
	var status api.ReplicaStatus
	for {
		changed := e.cfg.Store.Changed()
		err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
			c, err := cases.Load(tx, id)
			if err != nil {
				return err
			}
			if c == nil {
				c = &cases.Case{ID: id}
			}
			status, err = cases.Status(tx, c, e.cfg.Now(), e.cfg.IsLocal)
			return err
		})
		if err != nil {
			problem.Write(w, err)
			return
		}
		if req.Rebuild || !status.LastCheck.Before(asked) {
			break
		}
		select {
		case <-changed:
			continue
		case <-wait.C:
		case <-r.Context().Done():
		}
		break
	}
	problem.WriteJSON(w, http.StatusOK, api.Resync{Case: id, Replica: status})
}
