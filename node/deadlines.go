package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/store"
)

// The node's deadlines: the watcher that announces deadlines coming near
// and passing (as change-feed events, which the webhooks deliver) and the
// metrics, read from the deadline index package cases keeps; the API
// (node/jsonapi) and the dashboard list them with the same configuration.

// buildDeadlines starts the deadline watcher.
func (n *Node) buildDeadlines() {
	n.deadlines = deadline.Default()
	if n.cfg.Deadlines != nil {
		n.deadlines = *n.cfg.Deadlines
	}
	w := deadline.NewWatcher(deadline.WatcherConfig{DB: n.db, Config: n.deadlines, Now: n.cfg.Now,
		Interval: n.cfg.DeadlineCheck, Logger: n.log, OnNotice: n.onDeadline,
		LocalActorID: func(name string) string { return actor.ID(n.cfg.PublicURL, name) }})
	n.services = append(n.services, service{name: "deadlines", run: w.Run})
}

// onDeadline is called with every deadline the watcher announced; the
// embargo's end reaches the automation's embargo_ended decision point.
func (n *Node) onDeadline(ctx context.Context, notice deadline.Notice) {
	for _, f := range n.deadlineHooks {
		f(ctx, notice)
	}
}

// deadlineCollector reports the deadlines at each scrape from the counts
// the store keeps: the running clocks and those past due (announced by
// the watcher, so at most a check interval late), by kind.
type deadlineCollector struct {
	n                *Node
	running, overdue *prometheus.Desc
}

func newDeadlineCollector(n *Node) *deadlineCollector {
	return &deadlineCollector{n: n,
		running: prometheus.NewDesc("vultron_deadlines_running", "Deadline clocks running, by kind.", []string{"kind"}, nil),
		overdue: prometheus.NewDesc("vultron_deadlines_overdue", "Running deadline clocks past due, by kind.", []string{"kind"}, nil),
	}
}

func (c *deadlineCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.running
	ch <- c.overdue
}

func (c *deadlineCollector) Collect(ch chan<- prometheus.Metric) {
	var sum map[string]deadline.Summary
	err := c.n.db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		sum, err = deadline.Summarize(tx)
		return err
	})
	if err != nil {
		c.n.log.Error().Err(err).Msg("metrics: read the deadlines")
		return
	}
	for kind, s := range sum {
		ch <- prometheus.MustNewConstMetric(c.running, prometheus.GaugeValue, float64(s.Running), kind)
		ch <- prometheus.MustNewConstMetric(c.overdue, prometheus.GaugeValue, float64(s.Overdue), kind)
	}
}
