package node

import (
	"net/http"

	"github.com/openvultron/vultron/problem"
)

// nodeInfoSchema is the NodeInfo schema version this node publishes.
const nodeInfoSchema = "http://nodeinfo.diaspora.software/ns/schema/2.1"

// serveNodeInfoLinks answers GET /.well-known/nodeinfo with the link to the
// NodeInfo document.
func (n *Node) serveNodeInfoLinks(w http.ResponseWriter, r *http.Request) {
	problem.WriteJSON(w, http.StatusOK, map[string]any{
		"links": []map[string]string{{
			"rel":  nodeInfoSchema,
			"href": n.cfg.PublicURL + "/nodeinfo/2.1",
		}},
	})
}

// serveNodeInfo answers GET /nodeinfo/2.1. It publishes no usage counts:
// how many cases or reports a CVD node holds is sensitive, so the usage
// figures are zero by design.
func (n *Node) serveNodeInfo(w http.ResponseWriter, r *http.Request) {
	doc := map[string]any{
		"version": "2.1",
		"software": map[string]string{
			"name":       "vultron",
			"version":    n.cfg.Version,
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
