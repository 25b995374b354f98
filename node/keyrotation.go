package node

import (
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// DefaultKeyOverlap is how long an actor's old key stays published and
// accepted after a rotation when the request names no overlap.
const DefaultKeyOverlap = 7 * 24 * time.Hour

// maxKeyOverlap bounds the overlap a rotation may ask for.
const maxKeyOverlap = 90 * 24 * time.Hour

// rotationView is the answer to a key rotation.
type rotationView struct {
	Actor         string    `json:"actor"`
	KeyID         string    `json:"keyId"`
	PreviousKeyID string    `json:"previousKeyId"`
	PreviousUntil time.Time `json:"previousKeyUntil"`
}

// rotateActorKey answers POST /api/actors/{name}/rotate-key[?overlap=DURATION]:
// it gives a configured actor a new RSA-2048 key under a new key id, which
// signs every request from now on (deliveries are signed when they are
// attempted), and keeps the old key listed in the actor's document, at its
// old key id, for the overlap (default DefaultKeyOverlap). The rotation is
// recorded in the audit log.
func (n *Node) rotateActorKey(w http.ResponseWriter, r *http.Request) {
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
	if strings.HasPrefix(name, caseActorPrefix) {
		problem.Write(w, problem.BadRequest("%s is a Case Actor; only the node's configured actors rotate their keys", name))
		return
	}
	now := n.cfg.Now()
	n.localsMu.Lock()
	old, ok := n.locals[name]
	if !ok {
		n.localsMu.Unlock()
		problem.Write(w, problem.NotFound("no actor %q on this node", name))
		return
	}
	ring, err := actor.RotateKey(n.keyDir, name, now, overlap)
	if err != nil {
		n.localsMu.Unlock()
		problem.Write(w, err)
		return
	}
	rotated := old.WithRing(ring, now)
	n.locals[name] = rotated
	n.localsMu.Unlock()

	pem, err := actor.PublicKeyPEM(&rotated.Key.PublicKey)
	if err != nil {
		problem.Write(w, err)
		return
	}
	rec, err := n.db.LocalActor(r.Context(), name)
	if err != nil {
		problem.Write(w, err)
		return
	}
	rec.KeyID, rec.PublicKeyPEM = rotated.KeyID, pem
	if err := n.db.PutLocalActor(r.Context(), rec); err != nil {
		problem.Write(w, err)
		return
	}
	until := now.Add(overlap).UTC()
	if err := n.AuditAdmin(r.Context(), store.AuditRecord{Actor: name, KeyID: rotated.KeyID, Decision: store.DecisionDone,
		Reason: "actor key rotated from " + old.KeyID + ", which stays accepted until " + until.Format(time.RFC3339)}); err != nil {
		n.log.Error().Err(err).Str("actor", name).Msg("audit: key rotation not recorded")
	}
	n.log.Info().Str("actor", rotated.ID).Str("key_id", rotated.KeyID).Str("previous_key_id", old.KeyID).Time("previous_until", until).Msg("rotated actor key")
	problem.WriteJSON(w, http.StatusOK, rotationView{Actor: rotated.ID, KeyID: rotated.KeyID, PreviousKeyID: old.KeyID, PreviousUntil: until})
}
