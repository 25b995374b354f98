package node

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/store"
)

// The node's threat intelligence: the feeds it polls and the signals it
// offers for its cases (as change-feed events, which the webhooks deliver,
// and to the automation, which reports them by policy); the API
// (node/jsonapi) and the dashboard list them for an analyst.

// buildIntel starts polling the configured feeds.
func (n *Node) buildIntel() error {
	if len(n.cfg.IntelFeeds) == 0 {
		return nil
	}
	client := actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: n.cfg.AllowPrivatePeers, Timeout: time.Minute, MaxBody: intel.MaxFeedSize})
	p, err := intel.NewPoller(intel.PollerConfig{Sources: n.cfg.IntelFeeds, Client: client, Interval: n.cfg.IntelInterval,
		FirstBackoff: n.cfg.IntelBackoff, OnFeed: n.takeFeed, Logger: n.log})
	if err != nil {
		return err
	}
	n.services = append(n.services, service{name: "intel", run: p.Run})
	return nil
}

// intelState is the state of an intelligence event in the change feed.
type intelState struct {
	Kind      intel.Kind `json:"kind"`
	ID        string     `json:"id"`
	MatchedID string     `json:"matchedId"`
	Source    string     `json:"source"`
	Detail    string     `json:"detail,omitempty"`
}

// takeFeed offers the signals of a feed for the cases they speak of: a
// case that records one of a signal's ids, is not closed and does not
// know yet what the signal says. Each is recorded, with its change-feed
// event, in one transaction, and handed to the intelligence hooks (the
// automation) after it committed.
func (n *Node) takeFeed(ctx context.Context, f intel.Feed) error {
	var offered []intel.Match
	now := n.cfg.Now().UTC()
	err := n.db.Update(ctx, func(tx *store.Tx) error {
		offered = offered[:0]
		ms, err := intel.Matches(&tx.ReadTx, f)
		if err != nil {
			return err
		}
		for _, m := range ms {
			c, err := cases.Load(&tx.ReadTx, m.CaseID)
			if err != nil {
				return err
			}
			if c == nil || c.Closed() || c.PXA&m.Signal.Kind.Bit() != 0 {
				continue
			}
			ok, err := intel.Offer(tx, m, now)
			if err != nil {
				return err
			}
			if !ok {
				continue // offered before; the feed's later entries may be new
			}
			state, err := json.Marshal(intelState{Kind: m.Signal.Kind, ID: m.Signal.ID, MatchedID: m.MatchedID, Source: m.Signal.Source, Detail: m.Signal.Detail})
			if err != nil {
				return fmt.Errorf("intel event: %w", err)
			}
			if err := tx.AppendEvent(store.Event{CaseID: m.CaseID, EventType: m.Signal.Kind.Event(), Time: now, State: state}); err != nil {
				return err
			}
			offered = append(offered, m)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, m := range offered {
		n.log.Info().Str("case", m.CaseID).Str("kind", string(m.Signal.Kind)).Str("id", m.MatchedID).Str("feed", m.Signal.Source).Msg("intel: signal offered")
		for _, h := range n.intelHooks {
			h(ctx, m)
		}
	}
	return nil
}
