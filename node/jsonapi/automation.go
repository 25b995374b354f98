package jsonapi

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// The deadlines, the threat-intelligence signals and the automation policy
// of the node (docs/deadlines.md, docs/intelligence.md, docs/policies.md).

// Defaults of GET /api/deadlines and GET /api/intel.
const (
	defaultDeadlines = 50
	defaultSignals   = 100
)

// Deadlines answers GET /api/deadlines?overdue=true&limit=N&case=ID: the
// deadlines soonest due first, at most limit of them, only the overdue ones
// with overdue, and with case only those of one case or report (named by
// its id or short id; 404 when the node holds none), each due time also in
// the node's time zone.
func (e *Endpoints) Deadlines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpreq.Limit(q, defaultDeadlines, deadline.MaxList)
	if err != nil {
		problem.Write(w, err)
		return
	}
	overdue := false
	if s := q.Get("overdue"); s != "" {
		if overdue, err = strconv.ParseBool(s); err != nil {
			problem.Write(w, problem.BadRequest("overdue must be true or false, not %q", problem.Clip(s, 100)))
			return
		}
	}
	subject, err := httpreq.CaseParam(r, e.cfg.Store, "case", true)
	if err != nil {
		problem.Write(w, err)
		return
	}
	now := e.cfg.Now()
	var ds []deadline.Deadline
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		if subject == "" {
			ds, err = deadline.List(tx, e.cfg.Deadlines, now, overdue, limit)
			return err
		}
		// A case runs a few clocks per participant, in due order.
		all, err := deadline.Subject(tx, e.cfg.Deadlines, now, subject)
		for _, d := range all {
			if len(ds) == limit {
				break
			}
			if d.Overdue || !overdue {
				ds = append(ds, d)
			}
		}
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	loc := e.cfg.Deadlines.Calendar.Location
	problem.WriteJSON(w, http.StatusOK, api.Deadlines{TimeZone: loc.String(), Now: now, Deadlines: deadline.Views(ds, loc, e.cfg.PublicURL, e.cfg.IsLocal)})
}

// Intel answers GET /api/intel?case=ID&limit=N: at most limit of the
// signals offered for the node's cases, or for one (named by its id or
// short id; 404 when the node holds no such case), each saying whether the
// case still lacks what it says.
func (e *Endpoints) Intel(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpreq.Limit(q, defaultSignals, intel.MaxListed)
	if err != nil {
		problem.Write(w, err)
		return
	}
	caseID, err := httpreq.CaseParam(r, e.cfg.Store, "case", false)
	if err != nil {
		problem.Write(w, err)
		return
	}
	out := api.IntelSignals{Signals: []api.IntelSignal{}}
	err = e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var os []intel.Offered
		var err error
		if caseID != "" {
			os, err = intel.OfferedFor(tx, caseID) // one per kind of signal
			os = os[:min(len(os), limit)]
		} else {
			os, err = intel.OfferedAll(tx, limit)
		}
		if err != nil {
			return err
		}
		for _, o := range os {
			c, err := cases.Load(tx, o.CaseID)
			if err != nil {
				return err
			}
			out.Signals = append(out.Signals, api.IntelSignal{Offered: o, Open: c != nil && !c.Closed() && c.PXA&o.Signal.Kind.Bit() == 0})
		}
		return nil
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, out)
}

// Policy answers GET /api/policy: the automation policy in force.
func (e *Endpoints) Policy(w http.ResponseWriter, _ *http.Request) {
	p := e.cfg.Automation.Policy()
	if p == nil {
		problem.Write(w, problem.NotFound("%v", automation.ErrNoPolicy))
		return
	}
	v := api.Policy{Name: p.Name, Source: p.Source, Off: p.Off, Rules: []api.PolicyRule{}}
	for _, rule := range p.Rules {
		rv := api.PolicyRule{Name: rule.Name, Line: rule.Line, On: string(rule.On), If: rule.If}
		for _, a := range rule.Do {
			rv.Do = append(rv.Do, a.String())
		}
		v.Rules = append(v.Rules, rv)
	}
	problem.WriteJSON(w, http.StatusOK, v)
}

// ExplainPolicy answers GET /api/cases/{id}/policy: which rules of the
// policy in force would fire now in the case, and why. Nothing is sent.
func (e *Endpoints) ExplainPolicy(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, e.cfg.Store)
	if err != nil {
		problem.Write(w, err)
		return
	}
	points, err := e.cfg.Automation.Explain(r.Context(), id)
	switch {
	case errors.Is(err, automation.ErrNoPolicy):
		problem.Write(w, problem.NotFound("%v", err))
		return
	case errors.Is(err, automation.ErrNoCase):
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	case err != nil:
		problem.Write(w, err)
		return
	}
	if points == nil {
		points = []api.PolicyPoint{}
	}
	problem.WriteJSON(w, http.StatusOK, api.PolicyExplanation{Case: id, Policy: e.cfg.Automation.Policy().Name, Now: e.cfg.Now().UTC(), Points: points})
}
