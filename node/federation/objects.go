package federation

import (
	"errors"
	"net/http"
	"slices"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Activity serves a stored activity to the node's API token or to a
// signed GET from an actor that took part in it (its sender or one of its
// addressees); an activity a case recorded also to the case's participants,
// and never to a participant removed from it. An unsigned GET gets 401, a
// signed GET from anyone else 403.
func (e *Endpoints) Activity(w http.ResponseWriter, r *http.Request) {
	id := e.cfg.PublicURL + "/activities/" + mux.Vars(r)["id"]
	stored, err := e.cfg.Store.Activity(r.Context(), id)
	signer, ok := e.signer(w, r)
	if !ok {
		return
	}
	if signer != nil {
		var c *cases.Case
		if err == nil {
			if cerr := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
				var e error
				c, e = cases.CaseOf(tx, id)
				if e == nil && c == nil {
					// An activity the case did not record, such as the
					// Case Actor's copy of an invitation, belongs to the
					// case it names as its context.
					if doc, perr := vocab.Parse(stored.Body); perr == nil && doc.Activity() != nil && doc.Activity().Context.ID() != "" {
						c, e = cases.Load(tx, doc.Activity().Context.ID())
					}
				}
				return e
			}); cerr != nil {
				problem.Write(w, cerr)
				return
			}
		}
		if err == nil && !(c == nil && takesPart(stored, signer.Owner) || c != nil && c.MayRead(signer.Owner, takesPart(stored, signer.Owner))) {
			problem.Write(w, problem.Forbidden("%s is not a party to %s", signer.Owner, id))
			return
		}
	}
	if errors.Is(err, store.ErrNotFound) {
		problem.Write(w, problem.NotFound("no activity %s on this node", id))
		return
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(stored.Body)
}

// Object serves an object minted by this node, such as a report one of
// its actors submitted, to the API token or to a signed GET from a party to
// it; an object a case recorded (a report, a note) also to the case's
// participants, and never to a participant removed from it. An unsigned GET
// gets 401, a signed GET from anyone else 403.
func (e *Endpoints) Object(w http.ResponseWriter, r *http.Request) {
	id := e.cfg.PublicURL + "/objects/" + mux.Vars(r)["id"]
	// Who asks, first: a request that is not signed learns nothing of what
	// the node holds, not even that a record of it does not read.
	signer, ok := e.signer(w, r)
	if !ok {
		return
	}
	var obj vocab.Object
	var locals, parties []string
	var c *cases.Case // the case that recorded the object, if any
	err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		res := cases.NewResolver(tx)
		o, ok := res.Resolve(id)
		if !ok {
			return res.Err() // an object the store could not read is not absent
		}
		var err error
		if locals, parties, err = cases.ReportParties(tx, id); err != nil {
			return err
		}
		obj = o
		c, err = cases.CaseOf(tx, id)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	// The local parties' ids, once the read has ended: Local may read a
	// Case Actor from the store, and a read within a read waits, on bbolt,
	// behind a write that must grow the file, which waits for the first.
	for _, name := range locals {
		if l, ok, err := e.cfg.Local(r.Context(), name); err != nil {
			problem.Write(w, err)
			return
		} else if ok {
			parties = append(parties, l.ID)
		}
	}
	if signer != nil {
		party := slices.Contains(parties, signer.Owner)
		if obj != nil && !(c == nil && party || c != nil && c.MayRead(signer.Owner, party)) {
			problem.Write(w, problem.Forbidden("%s is not a party to %s", signer.Owner, id))
			return
		}
	}
	if obj == nil {
		problem.Write(w, problem.NotFound("no object %s on this node", id))
		return
	}
	body, err := vocab.Marshal(obj)
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(body)
}

// takesPart reports whether actorID sent the stored activity or is among
// its addressees.
func takesPart(a store.StoredActivity, actorID string) bool {
	doc, err := vocab.Parse(a.Body)
	if err != nil {
		return false
	}
	act := doc.Activity()
	if act == nil {
		return false
	}
	if act.Actor.ID() == actorID {
		return true
	}
	for _, refs := range []vocab.Refs{act.To, act.Cc, act.Audience} {
		for _, id := range refs.IDs() {
			if id == actorID {
				return true
			}
		}
	}
	return false
}

// signer returns who signed a GET, or nil for a GET with the node's API
// token. When the request carries neither, it answers 401 (or the
// federation policy's 403 or 429) and returns false.
func (e *Endpoints) signer(w http.ResponseWriter, r *http.Request) (*actor.Signer, bool) {
	if e.cfg.Authorized(r) {
		return nil, true
	}
	s, err := e.cfg.Verifier.Verify(r.Context(), r, nil)
	if err != nil {
		problem.Write(w, unauthorizedGET(err))
		return nil, false
	}
	return &s, true
}

// unauthorizedGET is the refusal of a GET whose signature did not verify.
func unauthorizedGET(err error) error {
	var pe *problem.Error
	if errors.As(err, &pe) {
		return err // the federation policy's 403 or 429
	}
	var cacheErr *actor.CacheError
	if errors.As(err, &cacheErr) {
		return err // this node's store failed: 5xx, not the requester's fault
	}
	var ve *actor.VerifyError
	if errors.As(err, &ve) {
		return problem.Wrap(http.StatusUnauthorized, err, ve.Reason+"; objects are served only to signed requests from their participants or with the node's API token")
	}
	return problem.Wrap(http.StatusUnauthorized, err, "objects are served only to signed requests from their participants or with the node's API token")
}

// Case serves a case object (GET {public}/cases/ID) as a
// VulnerabilityCase, to the node's API token or to a signed GET from one of
// the case's participants; an invitee reads it only once it has accepted,
// and a removed participant no longer reads it. Anyone else is answered as
// for a case this node does not hold (noCase).
func (e *Endpoints) Case(w http.ResponseWriter, r *http.Request) {
	id := e.cfg.PublicURL + "/cases/" + mux.Vars(r)["cid"]
	// Who asks, first, as for an object: an unsigned request learns
	// nothing of what the node holds, not even that a record of it does
	// not read.
	signer, ok := e.signer(w, r)
	if !ok {
		return
	}
	c, err := httpreq.LoadCase(r.Context(), e.cfg.Store, id)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if c != nil && signer != nil && !c.CanRead(signer.Owner) {
		e.cfg.Withheld(r, problem.Forbidden("%s is not a participant of %s", signer.Owner, id))
		c = nil
	}
	if c == nil {
		problem.Write(w, noCase(id))
		return
	}
	// The notes are read only for a reader allowed to see them.
	var noteIDs []string
	if err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		noteIDs, err = c.NoteIDs(tx)
		return err
	}); err != nil {
		problem.Write(w, err)
		return
	}
	body, err := vocab.Marshal(c.Object(noteIDs))
	if err != nil {
		problem.Write(w, err)
		return
	}
	w.Header().Set("Content-Type", actor.ContentType)
	_, _ = w.Write(body)
}

// noCase is the answer to a GET of case id, or of its ledger, when this
// node does not host the case, and also when the signer may not read it:
// the same status and sentence either way, so that a signed GET cannot
// tell whether the node holds a case whose id it learned. A participant
// learns nothing new from it, and the node's API token reads every case.
func noCase(id string) error {
	return problem.NotFound("this node hosts no case %s", id)
}
