package node

import (
	"io/fs"
	"net/http"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/vocab"
)

// serveReady answers GET /readyz: 200 when the store answers, 503 when not.
func (n *Node) serveReady(w http.ResponseWriter, r *http.Request) {
	if _, _, err := n.db.DeliveryCounts(r.Context()); err != nil {
		problem.Write(w, &problem.Error{Status: http.StatusServiceUnavailable, RetryAfter: 10 * time.Second, Err: err, Msg: "the store does not answer"})
		return
	}
	problem.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// schemaServer serves the JSON Schemas of every object and activity shape
// the node accepts, at /schemas/NAME.json; /schemas/ lists them.
func schemaServer() http.Handler {
	schemas := vocab.Schemas()
	files := http.StripPrefix("/schemas/", http.FileServerFS(schemas))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/schemas/" {
			names, err := fs.Glob(schemas, "*.json")
			if err != nil {
				problem.Write(w, err)
				return
			}
			problem.WriteJSON(w, http.StatusOK, map[string]any{"schemas": names})
			return
		}
		w.Header().Set("Content-Type", "application/schema+json")
		files.ServeHTTP(w, r)
	})
}
