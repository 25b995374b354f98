package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/internal/urlhost"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// rotateKey rotates the key of the configured actor name as one
// transaction. The new key and the record of the new key ring are first
// written beside the current ones (actor.PrepareRotation), which changes
// nothing that signs. Then one store transaction writes the actor record
// with the new key, the audit record and the queued Update(actor): that
// commit is the rotation. Only after it does the actor sign with the new
// key, and the key files are put in place (PendingRotation.Install). A
// failure before the commit discards the prepared files; a crash before
// it leaves files that the next start discards (the store still names the
// old key), and a crash after it leaves files that the next start installs
// (the store names the new one): either the old state or the new one,
// never a part of each.
func (n *Node) rotateKey(ctx context.Context, name string, overlap time.Duration) (api.KeyRotation, error) {
	n.rotateMu.Lock()
	defer n.rotateMu.Unlock()
	n.localsMu.RLock()
	old, ok := n.locals[name]
	n.localsMu.RUnlock()
	if !ok {
		return api.KeyRotation{}, problem.NotFound("no actor %q on this node", name)
	}
	oldPEM, err := actor.PublicKeyPEM(&old.Key.PublicKey)
	if err != nil {
		return api.KeyRotation{}, err
	}
	now := n.cfg.Now()
	pending, err := actor.PrepareRotation(n.keyDir, name, oldPEM, now, overlap)
	if err != nil {
		return api.KeyRotation{}, fmt.Errorf("prepare the new key of actor %s: %w", name, err)
	}
	ringFiles, preparedFiles := actor.KeyFileNames(name)
	discard := func(err error) error {
		if derr := pending.Discard(); derr != nil {
			n.log.Error().Err(derr).Str("actor", name).Msg("discard the files of a failed key rotation (the next start removes them)")
		}
		if derr := n.unshareKeyFiles(ctx, preparedFiles); derr != nil {
			n.log.Error().Err(derr).Str("actor", name).Msg("drop the files of a failed key rotation from the store (the other processes discard them)")
		}
		return err
	}
	// On a shared store the other processes get the prepared files before
	// the commit, so that the commit is what installs them everywhere, as
	// it is here (see watchKeys).
	if err := n.shareKeyFiles(ctx, preparedFiles); err != nil {
		return api.KeyRotation{}, discard(err)
	}
	if err := n.stepDone("prepared"); err != nil {
		return api.KeyRotation{}, discard(err)
	}
	rotated := old.WithRing(pending.Ring, now)
	newPEM, err := actor.PublicKeyPEM(&rotated.Key.PublicKey)
	if err != nil {
		return api.KeyRotation{}, discard(err)
	}
	update, peers, err := n.keyUpdate(ctx, rotated)
	if err != nil {
		return api.KeyRotation{}, discard(fmt.Errorf("find the peers to tell about the new key of actor %s: %w", name, err))
	}
	until := now.Add(overlap).UTC()
	// The actor switches to the new key in the same critical section as
	// the commit, so a delivery worker that finds the queued Update at once
	// waits here and signs it with the new key. No function the store runs
	// inside a transaction takes localsMu, so holding it across the commit
	// cannot deadlock.
	n.localsMu.Lock()
	err = n.db.Update(ctx, func(tx *store.Tx) error {
		rec, err := tx.LocalActor(name)
		if err != nil {
			return err
		}
		rec.KeyID, rec.PublicKeyPEM = rotated.KeyID, newPEM
		if err := tx.PutLocalActor(rec); err != nil {
			return err
		}
		if err := n.stepDone("stored"); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(store.AuditRecord{Kind: store.AuditAdmin, Actor: name, KeyID: rotated.KeyID, Decision: store.DecisionDone, Principal: accounts.LabelOf(ctx),
			Reason: "actor key rotated from " + old.KeyID + ", which stays accepted until " + until.Format(time.RFC3339)}); err != nil {
			return err
		}
		if update != nil {
			return tx.EnqueueOutbound(*update)
		}
		return nil
	})
	if err != nil {
		n.localsMu.Unlock()
		return api.KeyRotation{}, discard(fmt.Errorf("commit the key rotation of actor %s: %w", name, err))
	}
	if err := n.stepDone("committed"); err != nil {
		n.localsMu.Unlock()
		return api.KeyRotation{}, err // as a crash right after the commit: the next start finishes it
	}
	n.locals[name] = rotated
	n.localsMu.Unlock()
	if err := pending.Install(); err != nil {
		n.log.Error().Err(err).Str("actor", name).Msg("the key rotation is committed but its key files were not put in place; the next start does it")
	} else if err := n.shareKeyFiles(ctx, ringFiles); err != nil {
		n.log.Error().Err(err).Str("actor", name).Msg("store the installed key files (the other processes install the prepared ones)")
	} else if err := n.unshareKeyFiles(ctx, preparedFiles); err != nil {
		n.log.Error().Err(err).Str("actor", name).Msg("drop the installed rotation's prepared files from the store")
	}
	view := api.KeyRotation{Actor: rotated.ID, KeyID: rotated.KeyID, PreviousKeyID: old.KeyID, PreviousUntil: until, Peers: len(peers)}
	if update != nil {
		view.Update = update.ID
		n.deliverer.Wake()
	}
	n.log.Info().Str("actor", rotated.ID).Str("key_id", rotated.KeyID).Str("previous_key_id", old.KeyID).Time("previous_until", until).Int("peers", len(peers)).Msg("rotated actor key")
	return view, nil
}

// keyPeerPage is how many outbox activities or cases keyPeers reads per
// transaction, so that a rotation holds no long read transaction and no
// more than a page in memory besides the peers.
const keyPeerPage = 200

// keyPeers returns the remote actors that l has sent to (its outbox) or
// that share a case with it: the peers that cache its key. It reads the
// outbox and the cases page by page; a rotation is rare, and its cost grows
// with the actor's history.
func (n *Node) keyPeers(ctx context.Context, l actor.Local) ([]string, error) {
	var peers []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && id != vocab.PublicCollection && !n.isLocal(id) && !seen[id] {
			seen[id] = true
			peers = append(peers, id)
		}
	}
	cursor := ""
	for {
		page, next, err := n.db.OutboxPage(ctx, l.Name, cursor, keyPeerPage)
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
	for after := ""; ; {
		var page []*cases.Case
		next := ""
		err := n.db.View(ctx, func(tx *store.ReadTx) error {
			var err error
			page, next, err = cases.ListCasesPage(tx, after, keyPeerPage)
			return err
		})
		if err != nil {
			return nil, err
		}
		for _, c := range page {
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
		if next == "" {
			return peers, nil
		}
		after = next
	}
}

// keyUpdate builds the Update of l's actor document (with its new key)
// to every peer that caches its key, for the rotation to queue. With no
// peers it returns nil and queues nothing.
func (n *Node) keyUpdate(ctx context.Context, l actor.Local) (*store.Outbound, []string, error) {
	peers, err := n.keyPeers(ctx, l)
	if err != nil || len(peers) == 0 {
		return nil, peers, err
	}
	doc, err := l.Document()
	if err != nil {
		return nil, nil, err
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
		return nil, nil, err
	}
	targets := make([]store.DeliveryTarget, len(peers))
	for i, p := range peers {
		targets[i] = store.DeliveryTarget{Recipient: p}
	}
	return &store.Outbound{ID: id, Actor: l.Name, Body: body, CreatedAt: now, Deliveries: targets}, peers, nil
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
// caches nothing. What failed is told apart for that answer: a failure
// to fetch or read the sender's documents is a *problem.Error of 502,
// its server's; a failure of this node's store is returned as it is,
// answered as the node's own (503 or 507 while it cannot write, else 500
// with nothing of the error in the answer).
func (n *Node) refreshActorKeys(ctx context.Context, actorID string) error {
	fetched, err := n.fetchActorKeys(ctx, actorID)
	var cacheErr *actor.CacheError
	switch {
	case errors.As(err, &cacheErr):
		return err // this node's store, not the sender's server
	case err != nil:
		return problem.Wrap(http.StatusBadGateway, err, fmt.Sprintf("the keys of %s could not be refreshed: %v", actorID, err))
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

// fetchActorKeys fetches the document of actor actorID and every key it
// lists, past the cache (refreshActorKeys).
func (n *Node) fetchActorKeys(ctx context.Context, actorID string) ([]store.RemoteKey, error) {
	body, err := n.policy.FetchFunc(n.fetcher.FetchDocument)(ctx, actorID)
	if err != nil {
		return nil, fmt.Errorf("fetch actor %s: %w", actorID, err)
	}
	var doc struct {
		PublicKey       json.RawMessage `json:"publicKey"`
		AssertionMethod json.RawMessage `json:"assertionMethod"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("actor %s: %w", actorID, err)
	}
	var keys []actor.PublicKeyDoc
	if err := json.Unmarshal(doc.PublicKey, &keys); err != nil {
		var one actor.PublicKeyDoc
		if err := json.Unmarshal(doc.PublicKey, &one); err != nil {
			return nil, fmt.Errorf("actor %s lists no readable publicKey", actorID)
		}
		keys = []actor.PublicKeyDoc{one}
	}
	// Its Ed25519 Multikeys rotate with its keys too; entries that are not
	// Multikeys are not keys this node verifies with.
	var multikeys []actor.MultikeyDoc
	if err := json.Unmarshal(doc.AssertionMethod, &multikeys); err == nil {
		for _, m := range multikeys {
			if m.Type == actor.MultikeyType && m.ID != "" {
				keys = append(keys, actor.PublicKeyDoc{ID: m.ID})
			}
		}
	}
	if len(keys) == 0 || len(keys) > maxActorKeys {
		return nil, fmt.Errorf("actor %s lists %d keys; between 1 and %d are accepted", actorID, len(keys), maxActorKeys)
	}
	for _, k := range keys {
		// An actor's keys are on its own server: a key id elsewhere is
		// refused before anything is fetched for it.
		if !urlhost.Same(k.ID, actorID) {
			return nil, fmt.Errorf("actor %s lists key %q, which is not on its host", actorID, problem.Clip(k.ID, 200))
		}
	}
	fetched := make([]store.RemoteKey, 0, len(keys))
	for _, k := range keys {
		_, c, err := n.keys.FetchKey(ctx, k.ID)
		if errors.Is(err, actor.ErrKeyRotatedAway) {
			continue
		}
		if err != nil {
			return nil, err // names the key and what failed
		}
		if c.Owner != actorID {
			return nil, fmt.Errorf("actor %s lists key %s, which belongs to %s", actorID, k.ID, c.Owner)
		}
		fetched = append(fetched, store.RemoteKey{KeyID: c.KeyID, Owner: c.Owner, PublicKeyPEM: c.PublicKeyPEM, FetchedAt: c.FetchedAt})
	}
	return fetched, nil
}
