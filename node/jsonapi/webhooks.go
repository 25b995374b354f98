package jsonapi

import (
	"errors"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/webhook"
)

// Webhooks answers GET /api/webhooks: the node's webhooks, each with where
// it is in the change feed and whether it is paused, for an admin (the
// route says so): a URL may carry the receiver's credential in its path.
// The list is as long as the node's --webhook flags.
func (e *Endpoints) Webhooks(w http.ResponseWriter, r *http.Request) {
	list, err := e.cfg.Webhooks.Webhooks(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, api.Webhooks{Webhooks: list})
}

// ResumeWebhook answers POST /api/webhooks/{id}/resume: it lifts the pause
// of a webhook the node paused after permanent refusals, audited with the
// person who asked; delivery starts again, in order, with the event it
// refused.
func (e *Endpoints) ResumeWebhook(w http.ResponseWriter, r *http.Request) {
	id := mux.Vars(r)["id"]
	hook, err := e.cfg.Webhooks.Resume(r.Context(), id, accounts.LabelOf(r.Context()))
	switch {
	case errors.Is(err, webhook.ErrUnknownWebhook):
		problem.Write(w, problem.NotFound("no webhook %s on this node (vultron webhooks lists their ids)", id))
		return
	case errors.Is(err, store.ErrWebhookNotPaused):
		problem.Write(w, problem.Conflict("webhook %s is not paused: the node is delivering to it", id))
		return
	case err != nil:
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, hook)
}
