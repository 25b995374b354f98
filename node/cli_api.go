package node

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// invitationScan bounds how many inbox activities GET
// /actors/{name}/invitations looks through, newest first.
const invitationScan = 10000

// listInvitations answers GET /actors/{name}/invitations: the invitations
// to a case that the local actor received (inbound Invites naming it as
// the object), newest first. Its own node's copy of an owner's Invite
// that merely named it is not one: only the Case Actor's invitation,
// delivered to the actor, can be accepted.
func (n *Node) listInvitations(w http.ResponseWriter, r *http.Request) {
	l, ok := n.Local(mux.Vars(r)["name"])
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", mux.Vars(r)["name"]))
		return
	}
	out := []api.Invitation{}
	cursor, scanned := "", 0
	for scanned < invitationScan {
		page, next, err := n.db.InboxPage(r.Context(), l.Name, cursor, 500)
		if err != nil {
			problem.Write(w, err)
			return
		}
		for _, a := range page {
			scanned++
			if a.Semantic != string(vocab.InviteActorToCase) || !cases.Received(a, l.Name) {
				continue
			}
			doc, err := vocab.Parse(a.Body)
			if err != nil {
				continue
			}
			if act := doc.Activity(); act != nil && act.Object.ID() == l.ID {
				out = append(out, api.Invitation{ID: a.ID, Actor: act.Actor.ID(), Case: act.Target.ID(), Activity: a.Body})
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	problem.WriteJSON(w, http.StatusOK, api.InvitationList{Invitations: out})
}

// listActors answers GET /api/actors: the node's configured actors (not
// its Case Actors), sorted by name, so that a client can act as the node's
// only actor without being told its name.
func (n *Node) listActors(w http.ResponseWriter, _ *http.Request) {
	out := []api.Actor{}
	n.localsMu.RLock()
	for name, l := range n.locals {
		if !strings.HasPrefix(name, caseActorPrefix) {
			out = append(out, api.Actor{Name: l.Name, ID: l.ID, Type: string(l.Type)})
		}
	}
	n.localsMu.RUnlock()
	slices.SortFunc(out, func(a, b api.Actor) int { return strings.Compare(a.Name, b.Name) })
	problem.WriteJSON(w, http.StatusOK, api.ActorList{Actors: out})
}

// recordedActivity answers GET /api/cases/{id}/ledger?activity=ID: whether
// this node's copy of the case recorded the activity, at which log index,
// and whether the Case Actor refused it instead (its Reject reached the
// local actor that sent it). Both are index look-ups, so a client may ask
// again and again while it waits.
func (n *Node) recordedActivity(w http.ResponseWriter, r *http.Request, caseID, activity string) {
	if activity == "" {
		problem.Write(w, problem.BadRequest("activity= must name an activity id"))
		return
	}
	out := api.ActivityRecord{Activity: activity, Case: caseID}
	err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		out.CaseHeld, out.Recorded, out.LogIndex, out.Refused = false, false, nil, nil
		c, err := cases.Load(tx, caseID)
		if err != nil {
			return err
		}
		if c != nil {
			out.CaseHeld = true
			i, ok, err := cases.Recorded(tx, caseID, activity)
			if err != nil || ok {
				out.Recorded, out.LogIndex = ok, &i
				return err
			}
		}
		refusal, ok, err := cases.RefusalOf(tx, activity)
		if ok {
			out.Refused = &refusal
		}
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, out)
}

// viewReport reads what the API shows of rec, in tx.
func (n *Node) viewReport(tx *store.ReadTx, rec cases.ReportRecord, withContent bool) api.Report {
	d := cases.DetailOf(tx, rec)
	v := api.Report{ID: rec.ReportID, ShortID: cases.ShortID(rec.ReportID), Offer: rec.OfferID, Actor: rec.Actor, Role: string(rec.Role),
		Reporter: d.Reporter, Received: d.Received, Name: rec.Name, RMState: rec.RM.String(), Case: rec.CaseID}
	if rec.Role == cases.Reporter {
		if l, ok := n.Local(rec.Actor); ok {
			v.Reporter = l.ID
		}
	}
	if d.Report != nil {
		if v.Name == "" {
			v.Name = d.Report.Name
		}
		if withContent {
			v.Content = d.Report.Content
		}
	}
	return v
}

// reportActorParam reads ?actor=NAME, which must name a local actor when
// given.
func (n *Node) reportActorParam(r *http.Request) (string, error) {
	name := r.URL.Query().Get("actor")
	if name == "" {
		return "", nil
	}
	if l, ok := n.Local(name); !ok || strings.HasPrefix(name, caseActorPrefix) {
		return "", problem.NotFound("no actor %q on this node", name)
	} else {
		return l.Name, nil
	}
}

// Page size of GET /api/reports.
const (
	defaultReportPage = 100
	maxReportPage     = 1000
)

// listReports answers GET /api/reports?actor=NAME&limit=N&after=CURSOR:
// the records the node's actors (or actor NAME) keep of the reports they
// received or submitted, a page of reports in id order, without their
// text; "next", when present, is the after of the following page.
func (n *Node) listReports(w http.ResponseWriter, r *http.Request) {
	name, err := n.reportActorParam(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	limit, err := httpreq.IntParam(r.URL.Query(), "limit", defaultReportPage, 1, maxReportPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	out := []api.Report{}
	var next string
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		out, next = out[:0], ""
		recs, cursor, err := cases.ReportsPage(tx, r.URL.Query().Get("after"), limit, name)
		for _, rec := range recs {
			out = append(out, n.viewReport(tx, rec, false))
		}
		next = cursor
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, api.ReportPage{Reports: out, Next: next})
}

// showReport answers GET /api/reports/{id}?actor=NAME: a report named by
// its id, its short id or the id of the Offer that carried it, with its
// text, as the local actor NAME (by default the first that keeps a
// record of it) sees it.
func (n *Node) showReport(w http.ResponseWriter, r *http.Request) {
	name, err := n.reportActorParam(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	key, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil || key == "" {
		problem.Write(w, problem.BadRequest("the report in the path must be its short id or its path-escaped id"))
		return
	}
	var view *api.Report
	var ambiguous []string
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		ids := []string{key}
		if !strings.Contains(key, "/") {
			short, err := cases.ResolveShortID(tx, key, cases.KindReport)
			if err != nil {
				return err
			}
			ids = append(ids, short...)
		} else if stored, err := tx.Activity(key); err == nil {
			// The id of the Offer that carried it.
			if doc, err := vocab.Parse(stored.Body); err == nil && doc.Activity() != nil && doc.Activity().Type == "Offer" {
				ids = append(ids, doc.Activity().Object.ID())
			}
		}
		var found []cases.ReportRecord
		for _, id := range ids {
			recs, err := cases.ReportRecords(tx, id)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				if name == "" || rec.Actor == name {
					found = append(found, rec)
					break // one record of each report
				}
			}
		}
		switch len(found) {
		case 0:
			return nil
		case 1:
			v := n.viewReport(tx, found[0], true)
			view = &v
			return nil
		}
		for _, rec := range found {
			ambiguous = append(ambiguous, rec.ReportID)
		}
		return nil
	})
	switch {
	case err != nil:
		problem.Write(w, err)
	case len(ambiguous) > 0:
		problem.Write(w, problem.Conflict("%q names %d reports (%s); give the full report id, path-escaped", key, len(ambiguous), strings.Join(ambiguous, ", ")))
	case view == nil && name != "":
		problem.Write(w, problem.NotFound("%s keeps no report %q: it is neither the id, the short id nor the Offer id of one", name, key))
	case view == nil:
		problem.Write(w, problem.NotFound("no report %q on this node: it is neither the id, the short id nor the Offer id of one", key))
	default:
		problem.WriteJSON(w, http.StatusOK, view)
	}
}
