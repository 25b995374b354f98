package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/node/internal/httpreq"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// resyncCase answers POST /api/cases/{id}/resync ({"rebuild": true} to
// drop this node's copy of the case and fetch the Case Actor's ledger from
// its start): the replica is checked now, and the answer shows its status.
func (n *Node) resyncCase(w http.ResponseWriter, r *http.Request) {
	id, err := httpreq.CaseID(r, n.db)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var req struct {
		Rebuild bool `json:"rebuild"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10))
	if err != nil {
		problem.Write(w, problem.BadRequest("the request body could not be read"))
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			problem.Write(w, problem.BadRequest("the body must be a JSON object such as {\"rebuild\": true}: %v", err))
			return
		}
	}
	err = n.db.Update(r.Context(), func(tx *store.Tx) error { return n.engine.Resync(tx, id, req.Rebuild) })
	var pe *problem.Error
	if err != nil && !errors.As(err, &pe) {
		err = fmt.Errorf("resync case %s: %w", id, err)
	}
	if err != nil {
		problem.Write(w, err)
		return
	}
	n.log.Info().Str("case", id).Bool("rebuild", req.Rebuild).Msg("replica resync requested")
	var status api.ReplicaStatus
	err = n.db.View(r.Context(), func(tx *store.ReadTx) error {
		c, err := cases.Load(tx, id)
		if err != nil {
			return err
		}
		if c == nil {
			c = &cases.Case{ID: id}
		}
		status, err = cases.Status(tx, c, n.cfg.Now())
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, api.Resync{Case: id, Replica: status})
}
