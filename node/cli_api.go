package node

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/cases"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// invitationScan bounds how many inbox activities GET
// /actors/{name}/invitations looks through, newest first.
const invitationScan = 10000

// listInvitations answers GET /actors/{name}/invitations: the invitations
// to a case that the local actor received (inbound Invites naming it as
// the object), newest first. Its own node's copy of an owner's Invite
// that merely named it is not one: only the Case Actor's invitation,
// delivered to the actor, can be accepted.
func (n *Node) listInvitations(w http.ResponseWriter, r *http.Request) {
	l, ok := n.Local(mux.Vars(r)["name"])
	if !ok {
		problem.Write(w, problem.NotFound("no actor %q on this node", mux.Vars(r)["name"]))
		return
	}
	type invitation struct {
		ID     string          `json:"id"`
		Actor  string          `json:"actor"`
		Case   string          `json:"case"`
		Invite json.RawMessage `json:"activity"`
	}
	out := []invitation{}
	cursor, scanned := "", 0
	for scanned < invitationScan {
		page, next, err := n.db.InboxPage(r.Context(), l.Name, cursor, 500)
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
				out = append(out, invitation{ID: a.ID, Actor: act.Actor.ID(), Case: act.Target.ID(), Invite: a.Body})
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	problem.WriteJSON(w, http.StatusOK, map[string]any{"invitations": out})
}

// listActors answers GET /api/actors: the node's configured actors (not
// its Case Actors), sorted by name, so that a client can act as the node's
// only actor without being told its name.
func (n *Node) listActors(w http.ResponseWriter, _ *http.Request) {
	type actorInfo struct {
		Name string `json:"name"`
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	out := []actorInfo{}
	n.localsMu.RLock()
	for name, l := range n.locals {
		if !strings.HasPrefix(name, caseActorPrefix) {
			out = append(out, actorInfo{Name: l.Name, ID: l.ID, Type: string(l.Type)})
		}
	}
	n.localsMu.RUnlock()
	slices.SortFunc(out, func(a, b actorInfo) int { return strings.Compare(a.Name, b.Name) })
	problem.WriteJSON(w, http.StatusOK, map[string]any{"actors": out})
}
