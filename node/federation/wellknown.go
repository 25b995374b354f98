package federation

import (
	"net/http"
	"strings"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
)

// WebFinger answers GET /.well-known/webfinger?resource=acct:NAME@HOST (or
// an actor's id) with the actor's JRD.
func (e *Endpoints) WebFinger(w http.ResponseWriter, r *http.Request) {
	resource := r.URL.Query().Get("resource")
	if resource == "" {
		problem.Write(w, problem.BadRequest("the resource parameter is missing; ask for acct:NAME@%s", e.cfg.Host))
		return
	}
	var l actor.Local
	var ok bool
	if name, host, err := actor.ParseAcct(resource); err == nil {
		if !strings.EqualFold(host, e.cfg.Host) {
			problem.Write(w, problem.NotFound("%s is not on this node (%s)", resource, e.cfg.Host))
			return
		}
		var err error
		if l, ok, err = e.cfg.Local(r.Context(), name); err != nil {
			problem.Write(w, err)
			return
		}
	} else {
		// WebFinger also answers for an actor's id.
		if l, ok = e.cfg.LocalByID(resource); !ok {
			problem.Write(w, problem.BadRequest("%v", err))
			return
		}
	}
	if !ok {
		problem.Write(w, problem.NotFound("no actor %s on this node", resource))
		return
	}
	w.Header().Set("Content-Type", actor.JRDContentType)
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(actor.WebFingerJRD(l, e.cfg.Host))
}

// nodeInfoSchema is the NodeInfo schema version this node publishes.
const nodeInfoSchema = "http://nodeinfo.diaspora.software/ns/schema/2.1"

// NodeInfoLinks answers GET /.well-known/nodeinfo with the link to the
// NodeInfo document.
func (e *Endpoints) NodeInfoLinks(w http.ResponseWriter, r *http.Request) {
	problem.WriteJSON(w, http.StatusOK, map[string]any{
		"links": []map[string]string{{
			"rel":  nodeInfoSchema,
			"href": e.cfg.PublicURL + "/nodeinfo/2.1",
		}},
	})
}

// NodeInfo answers GET /nodeinfo/2.1. It publishes no usage counts:
// how many cases or reports a CVD node holds is sensitive, so the usage
// figures are zero by design.
func (e *Endpoints) NodeInfo(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"version": "2.1",
		"software": map[string]string{
			"name":       "vultron",
			"version":    e.cfg.Version,
			"repository": "https://github.com/openvultron/vultron",
		},
		"protocols":         []string{"activitypub"},
		"services":          map[string][]string{"inbound": {}, "outbound": {}},
		"openRegistrations": false,
		"usage": map[string]any{
			"users": map[string]int{"total": 0, "activeHalfyear": 0, "activeMonth": 0},
		},
		"metadata": map[string]any{
			"protocol": "vultron",
		},
	}
	problem.WriteTyped(w, http.StatusOK, `application/json; profile="`+nodeInfoSchema+`#"`, doc)
}
