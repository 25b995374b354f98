package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
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
	// Update is the id of the Update(actor) queued to the peers, and
	// Peers how many it goes to.
	Update string `json:"update,omitempty"`
	Peers  int    `json:"peers"`
}

// rotateActorKey answers POST /api/actors/{name}/rotate-key[?overlap=DURATION]:
// it gives a configured actor a new RSA-2048 key under a new key id, which
// signs every request from now on (deliveries are signed when they are
// attempted), and keeps the old key listed in the actor's document, at its
// old key id, for the overlap (default DefaultKeyOverlap). It then queues
// an Update(actor), signed with the new key when it is delivered, to every
// peer the actor has sent to or shares a case with. The rotation is
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
	update, peers, err := n.announceKey(r.Context(), rotated)
	if err != nil {
		problem.Write(w, fmt.Errorf("the key was rotated but the Update to peers was not queued: %w", err))
		return
	}
	n.log.Info().Str("actor", rotated.ID).Str("key_id", rotated.KeyID).Str("previous_key_id", old.KeyID).Time("previous_until", until).Msg("rotated actor key")
	problem.WriteJSON(w, http.StatusOK, rotationView{Actor: rotated.ID, KeyID: rotated.KeyID, PreviousKeyID: old.KeyID, PreviousUntil: until, Update: update, Peers: len(peers)})
}

// keyPeers returns the remote actors that l has sent to (its outbox) or
// that share a case with it: the peers that cache its key.
func (n *Node) keyPeers(ctx context.Context, l actor.Local) ([]string, error) {
	var peers []string
	add := func(id string) {
		if id != "" && id != vocab.PublicCollection && !n.isLocal(id) && !slices.Contains(peers, id) {
			peers = append(peers, id)
		}
	}
	cursor := ""
	for {
		page, next, err := n.db.OutboxPage(ctx, l.Name, cursor, 200)
		if err != nil {
			return nil, err
		}
		for _, a := range page {
			doc, err := vocab.Parse(a.Body)
			if err != nil || doc.Activity() == nil {
				continue
			}
			act := doc.Activity()
			for _, refs := range []vocab.Refs{act.To, act.Cc, act.Audience} {
				for _, id := range refs.IDs() {
					add(id)
				}
			}
		}
		if next == "" || next == cursor {
			break
		}
		cursor = next
	}
	err := n.db.View(ctx, func(tx *store.ReadTx) error {
		all, err := cases.ListCases(tx)
		if err != nil {
			return err
		}
		for _, c := range all {
			if c.Participant(l.ID) == nil {
				continue
			}
			add(c.CaseActor)
			for _, p := range c.Participants {
				if !p.Removed {
					add(p.Actor)
				}
			}
		}
		return nil
	})
	return peers, err
}

// announceKey queues an Update of l's actor document to every peer that
// caches its key, through the outbox queue. It returns the Update's id and
// the peers; with no peers nothing is queued.
func (n *Node) announceKey(ctx context.Context, l actor.Local) (string, []string, error) {
	peers, err := n.keyPeers(ctx, l)
	if err != nil || len(peers) == 0 {
		return "", peers, err
	}
	doc, err := l.Document()
	if err != nil {
		return "", nil, err
	}
	now := n.cfg.Now().UTC()
	id := n.newID("activities")
	body, err := json.Marshal(map[string]any{
		"@context":  []string{actor.ActivityStreamsContext, actor.SecurityContext},
		"id":        id,
		"type":      "Update",
		"actor":     l.ID,
		"to":        peers,
		"object":    json.RawMessage(doc),
		"published": now.Format(time.RFC3339),
	})
	if err != nil {
		return "", nil, err
	}
	targets := make([]store.DeliveryTarget, len(peers))
	for i, p := range peers {
		targets[i] = store.DeliveryTarget{Recipient: p}
	}
	if err := n.db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: l.Name, Body: body, CreatedAt: now, Deliveries: targets}, nil); err != nil {
		return "", nil, err
	}
	n.deliverer.Wake()
	return id, peers, nil
}

// maxActorKeys bounds the keys an actor document may list for a refresh:
// each one is fetched.
const maxActorKeys = 16

// refreshActorKeys re-reads the keys a peer actor lists after it announced
// a rotation with Update(actor): its document is fetched again (never
// taken from the Update) and each key it lists is fetched past the cache,
// so a retired key is from then on accepted only until it expires (its
// cached copy goes stale then). A key already expired is left to be
// refused when it is next used. Every key is fetched before any is
// stored, and all are stored, each with its audit record, in one
// transaction: a refresh that fails for one key returns an error naming
// it, which the inbox answers to the sender so that it retries, and
// caches nothing.
func (n *Node) refreshActorKeys(ctx context.Context, actorID string) error {
	body, err := n.policy.FetchFunc(n.fetcher.FetchDocument)(ctx, actorID)
	if err != nil {
		return fmt.Errorf("fetch actor %s: %w", actorID, err)
	}
	var doc struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("actor %s: %w", actorID, err)
	}
	var keys []actor.PublicKeyDoc
	if err := json.Unmarshal(doc.PublicKey, &keys); err != nil {
		var one actor.PublicKeyDoc
		if err := json.Unmarshal(doc.PublicKey, &one); err != nil {
			return fmt.Errorf("actor %s lists no readable publicKey", actorID)
		}
		keys = []actor.PublicKeyDoc{one}
	}
	if len(keys) == 0 || len(keys) > maxActorKeys {
		return fmt.Errorf("actor %s lists %d keys; between 1 and %d are accepted", actorID, len(keys), maxActorKeys)
	}
	fetched := make([]store.RemoteKey, 0, len(keys))
	for _, k := range keys {
		_, c, err := n.keys.FetchKey(ctx, k.ID)
		if errors.Is(err, actor.ErrKeyRotatedAway) {
			continue
		}
		if err != nil {
			return err // names the key and what failed
		}
		if c.Owner != actorID {
			return fmt.Errorf("actor %s lists key %s, which belongs to %s", actorID, k.ID, c.Owner)
		}
		fetched = append(fetched, store.RemoteKey{KeyID: c.KeyID, Owner: c.Owner, PublicKeyPEM: c.PublicKeyPEM, FetchedAt: c.FetchedAt})
	}
	err = n.db.Update(ctx, func(tx *store.Tx) error {
		for _, k := range fetched {
			if err := tx.PutRemoteKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store the keys of %s: %w", actorID, err)
	}
	return nil
}
