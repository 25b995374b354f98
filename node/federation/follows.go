package federation

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Collection paging: the members an admin is shown per page.
const (
	defaultFollowPage = 100
	maxFollowPage     = 1000
)

// Followers serves a local actor's followers collection.
func (e *Endpoints) Followers(w http.ResponseWriter, r *http.Request) {
	e.follows(w, r, store.FollowerOf, "followers")
}

// Following serves the collection of the actors a local actor follows.
func (e *Endpoints) Following(w http.ResponseWriter, r *http.Request) {
	e.follows(w, r, store.Following, "following")
}

// followMember is one member of a collection as an admin sees it.
type followMember struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	FollowID    string `json:"follow"`
	SharedInbox string `json:"sharedInbox,omitempty"`
	Since       string `json:"since,omitempty"`
	// Reason is why a failed following failed, or a gone follower is
	// gone.
	Reason string `json:"reason,omitempty"`
}

// follows serves an OrderedCollection: its totalItems (accepted members)
// to anyone, as Mastodon shows a count; its members only to the node's
// admins (Config.Admin), a page at a time (?limit=&after=), the pending
// requests with ?state=pending, with ?state=failed the followings whose
// Follow was refused for good, and with ?state=gone the followers removed
// because their actor is gone, each with its reason.
func (e *Endpoints) follows(w http.ResponseWriter, r *http.Request, dir store.FollowDirection, what string) {
	l, ok := e.local(w, r, mux.Vars(r)["name"])
	if !ok {
		return
	}
	q := r.URL.Query()
	admin := e.cfg.Admin(r)
	state := store.FollowAccepted
	switch q.Get("state") {
	case "", "accepted":
	case "pending":
		state = store.FollowPending
	case "failed":
		state = store.FollowFailed
	case "gone":
		state = store.FollowGone
	default:
		problem.Write(w, problem.BadRequest("state is accepted, pending, failed or gone, not %q", problem.Clip(q.Get("state"), 40)))
		return
	}
	if !admin && (q.Has("state") || q.Has("after") || q.Has("limit")) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vultron"`)
		problem.Write(w, problem.Unauthorized("the members of %s's %s are shown to the node's admins only", l.Name, what))
		return
	}
	limit := defaultFollowPage
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxFollowPage {
			problem.Write(w, problem.BadRequest("limit is a number from 1 to %d", maxFollowPage))
			return
		}
		limit = n
	}
	id := l.ID + "/" + what
	doc := map[string]any{"@context": actor.ActivityStreamsContext, "id": id, "type": "OrderedCollection"}
	var (
		members []store.Follow
		next    string
		total   int
	)
	err := e.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		total = tx.FollowCount(l.Name, dir, state)
		if !admin {
			return nil
		}
		var err error
		members, next, err = tx.Follows(l.Name, dir, state, q.Get("after"), limit)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	doc["totalItems"] = total
	if admin {
		items := make([]followMember, 0, len(members))
		for _, f := range members {
			m := followMember{ID: f.Remote, State: f.State.String(), FollowID: f.FollowID, SharedInbox: f.SharedInbox, Reason: f.Reason}
			if !f.Since.IsZero() {
				m.Since = f.Since.UTC().Format("2006-01-02T15:04:05Z")
			}
			items = append(items, m)
		}
		doc["orderedItems"] = items
		if next != "" {
			v := url.Values{"after": {next}, "limit": {strconv.Itoa(limit)}}
			if state != store.FollowAccepted {
				v.Set("state", state.String())
			}
			doc["next"] = id + "?" + v.Encode()
		}
	}
	problem.WriteTyped(w, http.StatusOK, actor.ContentType, doc)
}
