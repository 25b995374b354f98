package jsonapi

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// viewReport reads what the API shows of rec, in tx.
func (e *Endpoints) viewReport(tx *store.ReadTx, rec cases.ReportRecord, withContent bool) api.Report {
	d := cases.DetailOf(tx, rec)
	v := api.Report{ID: rec.ReportID, ShortID: cases.ShortID(rec.ReportID), Offer: rec.OfferID, Actor: rec.Actor, Role: string(rec.Role),
		Reporter: d.Reporter, Received: d.Received, Name: rec.Name, RMState: rec.RM.String(), Case: rec.CaseID,
		DuplicateOf: rec.DuplicateOf}
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
func (e *Endpoints) reportActorParam(r *http.Request) (string, error) {
	name := r.URL.Query().Get("actor")
	if name == "" {
		return "", nil
	}
	if strings.HasPrefix(name, cases.CaseActorPrefix) {
		return "", problem.NotFound("no actor %q on this node", name) // reports are not a Case Actor's
	}
	l, ok, err := e.cfg.Local(r.Context(), name)
	switch {
	case err != nil:
		return "", err
	case !ok:
		return "", problem.NotFound("no actor %q on this node", name)
	}
	return l.Name, nil
}

// Page size of GET /api/reports.
const (
	defaultReportPage = 100
	maxReportPage     = 1000
)

// Reports answers GET /api/reports?actor=NAME&limit=N&after=CURSOR:
// the records the node's actors (or actor NAME) keep of the reports they
// received or submitted, a page of reports in id order, without their
// text; "next", when present, is the after of the following page.
func (e *Endpoints) Reports(w http.ResponseWriter, r *http.Request) {
	name, err := e.reportActorParam(r)
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
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		out, next = out[:0], ""
		recs, cursor, err := cases.ReportsPage(tx, r.URL.Query().Get("after"), limit, name)
		cases.ReadAheadDetails(tx, recs)
		for _, rec := range recs {
			out = append(out, e.viewReport(tx, rec, false))
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

// Report answers GET /api/reports/{id}?actor=NAME: a report named by
// its id, its short id or the id of the Offer that carried it, with its
// text, as the local actor NAME (by default the first that keeps a
// record of it) sees it.
func (e *Endpoints) Report(w http.ResponseWriter, r *http.Request) {
	name, err := e.reportActorParam(r)
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
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
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
		} else if !errors.Is(err, store.ErrNotFound) {
			return err // an Offer the store cannot read is not one it lacks
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
			v := e.viewReport(tx, found[0], true)
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
