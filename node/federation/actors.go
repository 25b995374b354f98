package federation

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/problem"
)

// Actor serves a local actor's document, with the keys it publishes.
func (e *Endpoints) Actor(w http.ResponseWriter, r *http.Request) {
	l, ok := e.local(w, r, mux.Vars(r)["name"])
	if !ok {
		return
	}
	// A retired key is listed only until its overlap window ends.
	l.Retired = actor.KeyRing{Retired: l.Retired}.Published(e.cfg.Now())
	doc, err := l.Document()
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	// The document carries the actor's keys: a peer that refused a
	// signature and fetches them again after a rotation must get the
	// current ones, never a copy a cache kept of the old.
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(doc)
}

// Inbox answers a peer's POST to a local actor's inbox: the inbox
// pipeline verifies, classifies, applies and stores the activity.
func (e *Endpoints) Inbox(w http.ResponseWriter, r *http.Request) {
	res, err := e.cfg.Inbox.Receive(r.Context(), mux.Vars(r)["name"], r)
	if err != nil {
		e.cfg.Refused(r, "inbox", err)
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusAccepted, api.InboxReceipt{ID: res.ID, Semantic: res.Semantic, Duplicate: res.Duplicate})
}

// local finds the local actor name for a request, or answers it: 404 when
// there is none, the lookup's error (503 when the store cannot serve now)
// when it could not be looked up.
func (e *Endpoints) local(w http.ResponseWriter, r *http.Request, name string) (actor.Local, bool) {
	l, ok, err := e.cfg.Local(r.Context(), name)
	switch {
	case err != nil:
		problem.Write(w, err)
		return actor.Local{}, false
	case !ok:
		problem.Write(w, problem.NotFound("no actor %q on this node", name))
		return actor.Local{}, false
	}
	return l, true
}
