package jsonapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// viewDeliveries writes deliveries as the API shows them.
func viewDeliveries(ds []store.Delivery) []api.Delivery {
	out := make([]api.Delivery, len(ds))
	for i, d := range ds {
		out[i] = api.Delivery{ID: d.ID, Activity: d.ActivityID, Actor: d.Actor, Recipient: d.Recipient, OrderingKey: d.OrderingKey,
			Attempts: d.Attempts, FirstQueued: d.FirstQueued, NextAttempt: d.NextAttempt, LastError: d.LastError}
	}
	return out
}

// Page size of GET /api/deliveries.
const maxDeliveryPage = 1000

// Deliveries answers GET /api/deliveries?limit=N&pendingAfter=ID&deadAfter=ID:
// a page of the pending deliveries and one of the dead letters, oldest
// first, with their counts. pendingNext and deadNext, when present, are
// the pendingAfter and deadAfter of the following pages.
func (e *Endpoints) Deliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpreq.IntParam(q, "limit", maxDeliveryPage, 1, maxDeliveryPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var after [2]uint64
	for i, name := range []string{"pendingAfter", "deadAfter"} {
		if s := q.Get(name); s != "" {
			if after[i], err = strconv.ParseUint(s, 10, 64); err != nil {
				problem.Write(w, problem.BadRequest("%s must be a delivery id (a whole number), not %q", name, s))
				return
			}
		}
	}
	pending, pendingNext, err := e.cfg.Store.PendingDeliveries(r.Context(), after[0], limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	dead, deadNext, err := e.cfg.Store.DeadLetters(r.Context(), after[1], limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	pendingCount, err := e.cfg.Store.PendingCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	deadCount, err := e.cfg.Store.DeadLetterCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, api.Deliveries{Pending: viewDeliveries(pending), Dead: viewDeliveries(dead),
		PendingCount: pendingCount, DeadCount: deadCount, PendingNext: pendingNext, DeadNext: deadNext})
}

// RetryDelivery answers POST /api/deliveries/{id}/retry: it moves a dead
// letter back into the queue.
func (e *Endpoints) RetryDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		problem.Write(w, problem.BadRequest("delivery id %q is not a number", mux.Vars(r)["id"]))
		return
	}
	// An analyst retries the dead letters of the actors it acts for.
	p, _ := accounts.PrincipalFrom(r.Context())
	newID, err := e.cfg.Store.RequeueDeadLetterIf(r.Context(), id, accounts.LabelOf(r.Context()), func(actor string) error {
		if !p.ActsFor(actor) {
			return problem.Forbidden("%s may act for %s only: dead letter %d is %s's", p.Name, strings.Join(p.Actors, ", "), id, actor)
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, problem.NotFound("no dead letter %d", id))
		return
	}
	if pe := (*store.PendingError)(nil); errors.As(err, &pe) {
		problem.Write(w, problem.Conflict("%s", pe.Error()))
		return
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	e.cfg.Wake()
	e.cfg.Logger.Info().Uint64("dead_letter", id).Uint64("delivery", newID).Msg("dead letter requeued")
	problem.WriteJSON(w, http.StatusOK, api.Requeued{Requeued: id, Delivery: newID})
}

// DamagedDeliveries answers GET /api/deliveries/damaged?limit=N&after=ID:
// a page of the delivery records the node set aside because they did not
// open or decode, oldest first, with their count: for each, when it was
// set aside, its size and why, never its bytes (sealed case content).
// next, when present, is the after of the following page.
func (e *Endpoints) DamagedDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := httpreq.IntParam(q, "limit", maxDeliveryPage, 1, maxDeliveryPage)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var after uint64
	if s := q.Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			problem.Write(w, problem.BadRequest("after must be a delivery id (a whole number), not %q", s))
			return
		}
	}
	page, next, err := e.cfg.Store.DamagedDeliveries(r.Context(), after, limit)
	if err != nil {
		problem.Write(w, err)
		return
	}
	count, err := e.cfg.Store.DamagedDeliveryCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	out := api.DamagedDeliveries{Damaged: make([]api.DamagedDelivery, len(page)), Count: count, Next: next}
	for i, d := range page {
		out.Damaged[i] = api.DamagedDelivery{ID: d.ID, SetAside: d.SetAside, Bytes: d.Bytes, Reason: d.Reason}
	}
	problem.WriteJSON(w, http.StatusOK, out)
}

// DiscardDamagedDelivery answers DELETE /api/deliveries/damaged/{id}: it
// removes a damaged delivery record an operator has looked at, and the
// store audits it with who asked.
func (e *Endpoints) DiscardDamagedDelivery(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(mux.Vars(r)["id"], 10, 64)
	if err != nil {
		problem.Write(w, problem.BadRequest("delivery id %q is not a number", mux.Vars(r)["id"]))
		return
	}
	err = e.cfg.Store.DiscardDamagedDelivery(r.Context(), id, accounts.LabelOf(r.Context()))
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, problem.NotFound("no damaged delivery %d: vultron deliveries damaged lists them", id))
		return
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, api.DamagedDiscarded{Discarded: id})
}
