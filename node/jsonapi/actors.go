package jsonapi

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
)

// Actors answers GET /api/actors: the node's configured actors (not its
// Case Actors), sorted by name, so that a client can act as the node's
// only actor without being told its name.
func (e *Endpoints) Actors(w http.ResponseWriter, _ *http.Request) {
	out := []api.Actor{}
	for _, l := range e.cfg.Actors() {
		out = append(out, api.Actor{Name: l.Name, ID: l.ID, Type: string(l.Type)})
	}
	slices.SortFunc(out, func(a, b api.Actor) int { return strings.Compare(a.Name, b.Name) })
	problem.WriteJSON(w, http.StatusOK, api.ActorList{Actors: out})
}

// DefaultKeyOverlap is how long an actor's old key stays published and
// accepted after a rotation when the request names no overlap.
const DefaultKeyOverlap = 7 * 24 * time.Hour

// maxKeyOverlap bounds the overlap a rotation may ask for.
const maxKeyOverlap = 90 * 24 * time.Hour

// RotateKey answers POST /api/actors/{name}/rotate-key[?overlap=DURATION]:
// it gives a configured actor a new RSA-2048 key under a new key id, which
// signs every request from now on (deliveries are signed when they are
// attempted), and keeps the old key listed in the actor's document, at its
// old key id, for the overlap (default DefaultKeyOverlap). It queues an
// Update(actor), signed with the new key when it is delivered, to every
// peer the actor has sent to or shares a case with, and records the
// rotation in the audit log; the node commits all of it as one transaction
// (Config.RotateKey).
func (e *Endpoints) RotateKey(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	overlap := DefaultKeyOverlap
	if v := r.URL.Query().Get("overlap"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > maxKeyOverlap {
			problem.Write(w, problem.BadRequest("overlap %q must be a duration from 0s to %s", v, maxKeyOverlap))
			return
		}
		overlap = d
	}
	if strings.HasPrefix(name, cases.CaseActorPrefix) {
		problem.Write(w, problem.BadRequest("%s is a Case Actor; only the node's configured actors rotate their keys", name))
		return
	}
	view, err := e.cfg.RotateKey(r.Context(), name, overlap)
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, view)
}
