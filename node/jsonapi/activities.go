package jsonapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// PostOutbox answers a local actor's client-to-server POST to its outbox:
// the outbox Submitter validates, stores and queues the activity, and the
// answer is the activity as recorded, with its id in Location.
func (e *Endpoints) PostOutbox(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, e.cfg.MaxBody+1))
	if err != nil {
		problem.Write(w, problem.BadRequest("the request body could not be read"))
		return
	}
	if int64(len(body)) > e.cfg.MaxBody {
		problem.Write(w, problem.TooLarge("the body is larger than the limit of %d bytes", e.cfg.MaxBody))
		return
	}
	sub, err := e.cfg.Submit(r.Context(), mux.Vars(r)["name"], body)
	if err != nil {
		e.cfg.Refused(r, "outbox", err)
		problem.Write(w, err)
		return
	}
	w.Header().Set("Location", sub.ID)
	w.Header().Set("Content-Type", actor.ContentType)
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(sub.Body)
}

// writePage writes one page of an inbox or outbox as an ActivityStreams
// OrderedCollectionPage. Items are the stored activities themselves.
func (e *Endpoints) writePage(w http.ResponseWriter, r *http.Request, page func(actor, cursor string, limit int) ([]store.StoredActivity, string, error)) {
	name := mux.Vars(r)["name"]
	l, ok, err := e.cfg.Local(r.Context(), name)
	if err != nil {
		problem.Write(w, err)
		return
	}
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", name))
		return
	}
	limit, err := httpreq.Limit(r.URL.Query(), 20, 200)
	if err != nil {
		problem.Write(w, err)
		return
	}
	cursor := r.URL.Query().Get("cursor")
	acts, next, err := page(l.Name, cursor, limit)
	if err != nil {
		if errors.Is(err, store.ErrInvalid) {
			problem.Write(w, problem.BadRequest("cursor %q is not valid", cursor))
			return
		}
		problem.Write(w, err)
		return
	}
	items := make([]json.RawMessage, len(acts))
	for i, a := range acts {
		items[i] = json.RawMessage(a.Body)
	}
	self := e.cfg.PublicURL + r.URL.Path
	// A page's id and its next keep the limit the client asked for, so
	// that following next pages by the same size.
	pageURL := self + "?"
	if r.URL.Query().Has("limit") {
		pageURL += "limit=" + strconv.Itoa(limit) + "&"
	}
	doc := map[string]any{
		"@context":     vocab.ActivityStreamsContext,
		"id":           pageURL + "cursor=" + url.QueryEscape(cursor),
		"type":         "OrderedCollectionPage",
		"partOf":       self,
		"orderedItems": items,
	}
	if next != "" {
		doc["next"] = pageURL + "cursor=" + url.QueryEscape(next)
	}
	problem.WriteTyped(w, http.StatusOK, actor.ContentType, doc)
}

// Inbox answers GET /actors/{name}/inbox?limit=N&cursor=C: a page of the
// activities a local actor received, newest first.
func (e *Endpoints) Inbox(w http.ResponseWriter, r *http.Request) {
	e.writePage(w, r, func(a, c string, l int) ([]store.StoredActivity, string, error) {
		return e.cfg.Store.InboxPage(r.Context(), a, c, l)
	})
}

// Outbox answers GET /actors/{name}/outbox?limit=N&cursor=C: a page of the
// activities a local actor sent, newest first.
func (e *Endpoints) Outbox(w http.ResponseWriter, r *http.Request) {
	e.writePage(w, r, func(a, c string, l int) ([]store.StoredActivity, string, error) {
		return e.cfg.Store.OutboxPage(r.Context(), a, c, l)
	})
}

// invitationScan bounds how many inbox activities GET
// /actors/{name}/invitations looks through, newest first.
const invitationScan = 10000

// Invitations answers GET /actors/{name}/invitations: the invitations
// to a case that the local actor received (inbound Invites naming it as
// the object), newest first. Its own node's copy of an owner's Invite
// that merely named it is not one: only the Case Actor's invitation,
// delivered to the actor, can be accepted.
func (e *Endpoints) Invitations(w http.ResponseWriter, r *http.Request) {
	l, ok, err := e.cfg.Local(r.Context(), mux.Vars(r)["name"])
	if err != nil {
		problem.Write(w, err)
		return
	}
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", mux.Vars(r)["name"]))
		return
	}
	out := []api.Invitation{}
	cursor, scanned := "", 0
	for scanned < invitationScan {
		page, next, err := e.cfg.Store.InboxPage(r.Context(), l.Name, cursor, 500)
		if err != nil {
			problem.Write(w, err)
			return
		}
		for _, a := range page {
			scanned++
			if a.Semantic != string(vocab.InviteActorToCase) || !cases.Received(a, l.Name) {
				continue
			}
			doc, err := vocab.Parse(a.Body)
			if err != nil {
				continue
			}
			if act := doc.Activity(); act != nil && act.Object.ID() == l.ID {
				accepted, err := e.takesPart(r.Context(), act.Target.ID(), l.ID)
				if err != nil {
					problem.Write(w, err)
					return
				}
				out = append(out, api.Invitation{ID: a.ID, Actor: act.Actor.ID(), Case: act.Target.ID(), Activity: a.Body, Accepted: accepted})
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	problem.WriteJSON(w, http.StatusOK, api.InvitationList{Invitations: out})
}

// takesPart reports whether actor is a participant, not removed, of case
// caseID as this node's copy of it says.
func (e *Endpoints) takesPart(ctx context.Context, caseID, actor string) (bool, error) {
	var in bool
	err := e.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, caseID)
		if err != nil || c == nil {
			return err
		}
		p := c.Participant(actor)
		in = p != nil && !p.Removed
		return nil
	})
	return in, err
}
