package jsonapi

import (
	"net/http"
	"strconv"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Audit answers GET /api/audit?after=SEQ&limit=N with a page of the
// audit log, oldest first.
func (e *Endpoints) Audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		var err error
		if after, err = strconv.ParseUint(v, 10, 64); err != nil {
			problem.Write(w, problem.BadRequest("after %q must be a record number", v))
			return
		}
	}
	limit, err := httpreq.Limit(q, 100, 1000)
	if err != nil {
		problem.Write(w, err)
		return
	}
	recs, next, err := e.cfg.Store.AuditPage(r.Context(), after, limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if recs == nil {
		recs = []store.AuditRecord{}
	}
	problem.WriteJSON(w, http.StatusOK, api.AuditPage{Records: recs, Next: next})
}

// VerifyAudit answers GET /api/audit/verify with the outcome of checking
// the whole chain (200 either way; ok says whether it holds).
func (e *Endpoints) VerifyAudit(w http.ResponseWriter, r *http.Request) {
	v, err := e.cfg.Store.VerifyAudit(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, v)
}
