// Package httpreq reads what the node's HTTP surfaces take from a request
// in the same way for all of them: a whole-number query parameter within
// bounds, a page's size and a ledger's index, and a case named in the path
// or in a query parameter by its id or its short id, which LoadCase then
// reads. Every refusal is a *problem.Error whose sentence names the
// parameter and what it must be, quoting at most 300 bytes of what was
// given.
package httpreq

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// IntParam reads the integer query parameter name in [lo, hi], def when it
// is absent.
func IntParam(q url.Values, name string, def, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < lo || v > hi {
		return 0, problem.BadRequest("%s must be a whole number from %d to %d, not %q", name, lo, hi, problem.Clip(s, 300))
	}
	return v, nil
}

// Limit reads ?limit=, the size of a page from 1 to hi, def when absent.
func Limit(q url.Values, def, hi int) (int, error) {
	v := q.Get("limit")
	if v == "" {
		return def, nil
	}
	l, err := strconv.Atoi(v)
	if err != nil || l < 1 || l > hi {
		return 0, problem.BadRequest("limit %q must be a number from 1 to %d", problem.Clip(v, 300), hi)
	}
	return l, nil
}

// LogIndex reads the query parameter name as an index of a ledger (0 or
// more), 0 when absent.
func LogIndex(q url.Values, name string) (int64, error) {
	v := q.Get(name)
	if v == "" {
		return 0, nil
	}
	i, err := strconv.ParseInt(v, 10, 64)
	if err != nil || i < 0 {
		return 0, problem.BadRequest("%s %q must be a log index (0 or more)", name, problem.Clip(v, 300))
	}
	return i, nil
}

// CaseID reads the {id} path variable of /api/cases/{id}/...: the
// path-escaped id of a case, or its short id (the last segment of its id,
// cases.ShortID). A short id that names no case, or several, is refused
// with a sentence that says what was tried.
func CaseID(r *http.Request, db *store.DB) (string, error) {
	id, err := url.PathUnescape(mux.Vars(r)["id"])
	if err != nil || id == "" {
		return "", problem.BadRequest("the case in the path must be a case's short id or its path-escaped id")
	}
	if strings.Contains(id, "/") {
		return id, nil // a full id; the handler says when there is no such case
	}
	matches, err := lookup(r.Context(), db, id, false)
	switch {
	case err != nil:
		return "", err
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) == 0:
		return "", problem.NotFound("no case %q on this node: it is neither the id nor the short id of a case this node hosts or replicates", problem.Clip(id, 300))
	}
	return "", problem.Conflict("the short id %q names %d cases (%s); give the full case id, path-escaped", problem.Clip(id, 300), len(matches), strings.Join(matches, ", "))
}

// CaseParam reads the query parameter name (case=) as CaseID reads the
// path: a case's id or its short id, and with reports also a report's;
// "" when it is absent. What names no case (or report) this node holds,
// a full id too, is refused with 404, a short id that names several with
// 409, each with a sentence that names the parameter and what was given.
func CaseParam(r *http.Request, db *store.DB, name string, reports bool) (string, error) {
	key := r.URL.Query().Get(name)
	if key == "" {
		return "", nil
	}
	matches, err := lookup(r.Context(), db, key, reports)
	what, several := "case", "cases"
	if reports {
		what, several = "case or report", "cases or reports"
	}
	switch {
	case err != nil:
		return "", err
	case len(matches) == 1:
		return matches[0], nil
	case len(matches) == 0:
		return "", problem.NotFound("%s=%q names no %s on this node: it is neither the id nor the short id of one", name, problem.Clip(key, 300), what)
	}
	return "", problem.Conflict("the short id %s=%q names %d %s (%s); give the full id", name, problem.Clip(key, 300), len(matches), several, strings.Join(matches, ", "))
}

// lookup returns the ids of what key names: key itself when it is the id
// of a case this node holds (or, with reports, of a report its actors
// keep), else the cases (and reports) whose short id it is, at most a
// few. Each costs a seek or two, whatever the number of cases.
func lookup(ctx context.Context, db *store.DB, key string, reports bool) ([]string, error) {
	var matches []string
	err := db.View(ctx, func(tx *store.ReadTx) error {
		matches = nil
		if c, err := cases.Load(tx, key); err != nil || c != nil {
			matches = []string{key}
			return err
		}
		if reports {
			if recs, err := cases.ReportRecords(tx, key); err != nil || len(recs) > 0 {
				matches = []string{key}
				return err
			}
		}
		if strings.Contains(key, "/") {
			return nil // a full id that names nothing
		}
		var err error
		if matches, err = cases.ResolveShortID(tx, key, cases.KindCase); err != nil || !reports {
			return err
		}
		more, err := cases.ResolveShortID(tx, key, cases.KindReport)
		matches = append(matches, more...)
		return err
	})
	return matches, err
}

// LoadCase reads case id from db; nil when this node holds no such case.
func LoadCase(ctx context.Context, db *store.DB, id string) (*cases.Case, error) {
	var c *cases.Case
	err := db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		c, err = cases.Load(tx, id)
		return err
	})
	return c, err
}
