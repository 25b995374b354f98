package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// readyWait bounds the store's answer to a readiness check: a load
// balancer asks again, and a check that hangs tells it nothing.
const readyWait = 5 * time.Second

// readyRetryAfter is the Retry-After of a 503 of /readyz.
const readyRetryAfter = 10 * time.Second

// serveReady answers GET /readyz: 200 when the node serves, its store
// answers a read and holds records this binary reads; otherwise 503 with
// the check that failed: started (Serve has not started the node's
// services), stopping (it is shutting down), data_key (another process
// rotated the data key of the shared store), store (the store does not
// answer) or schema (its records are at another version than this
// binary's).
func (n *Node) serveReady(w http.ResponseWriter, r *http.Request) {
	check, why := n.readiness(r.Context())
	if check == "" {
		problem.WriteJSON(w, http.StatusOK, api.Readiness{Status: "ready"})
		return
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(readyRetryAfter.Seconds())))
	problem.WriteJSON(w, http.StatusServiceUnavailable, api.Readiness{Status: "not ready", Check: check, Error: why})
}

// readiness returns the first check the node fails and a sentence that
// says why, or "" when it is ready.
func (n *Node) readiness(ctx context.Context) (check, why string) {
	if !n.serving.Load() {
		return "started", "the node has not started serving yet"
	}
	select {
	case <-n.stopping:
		return "stopping", "the node is stopping"
	case <-n.db.Fenced():
		return "data_key", "another process rotated the data key of the store; this process stops, to be started again with the new key"
	default:
	}
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	err := n.db.Ready(ctx)
	var ue *store.UnavailableError
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, store.ErrSchema):
		// The store's sentence names versions only.
		return "schema", strings.TrimPrefix(err.Error(), store.ErrSchema.Error()+": ")
	case errors.Is(err, store.ErrClosed):
		return "store", "the store is closed: the process is stopping"
	case errors.As(err, &ue):
		return "store", "the store cannot serve now: " + ue.Reason
	case ctx.Err() != nil:
		return "store", fmt.Sprintf("the store did not answer a read within %s", readyWait)
	}
	n.log.Warn().Err(err).Msg("readiness check: the store does not answer")
	return "store", "the store does not answer a read; the node's log says why"
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
