package node

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// The node's deadlines: the watcher that announces deadlines coming near
// and passing (as change-feed events, which the webhooks deliver), the
// API that lists them for "vultron due", the dashboard's lists, and the
// metrics, all read from the deadline index package cases keeps.

// buildDeadlines starts the deadline watcher.
func (n *Node) buildDeadlines() {
	n.deadlines = deadline.Default()
	if n.cfg.Deadlines != nil {
		n.deadlines = *n.cfg.Deadlines
	}
	w := deadline.NewWatcher(deadline.WatcherConfig{DB: n.db, Config: n.deadlines, Now: n.cfg.Now,
		Interval: n.cfg.DeadlineCheck, Logger: n.log, OnNotice: n.onDeadline})
	n.services = append(n.services, service{name: "deadlines", run: w.Run})
}

// onDeadline is called with every deadline the watcher announced; the
// embargo's end reaches the automation's embargo_ended decision point.
func (n *Node) onDeadline(ctx context.Context, notice deadline.Notice) {
	for _, f := range n.deadlineHooks {
		f(ctx, notice)
	}
}

// deadlineView is one deadline as the API answers it.
type deadlineView struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"` // a case's id, or a report's before a case
	Report  bool   `json:"report,omitempty"`
	Name    string `json:"name,omitempty"`
	// Participant is the actor whose clock it is (none for the embargo's
	// end); Local the local actor's name for a report's clock; Mine says
	// the participant is one of this node's actors.
	Participant string    `json:"participant,omitempty"`
	Local       string    `json:"local,omitempty"`
	Mine        bool      `json:"mine"`
	Start       time.Time `json:"start"`
	Due         time.Time `json:"due"`
	// DueLocal is Due in the node's time zone, as its calendar counts
	// business days.
	DueLocal string `json:"dueLocal"`
	Limit    string `json:"limit"`
	Overdue  bool   `json:"overdue"`
}

// deadlinesView is GET /api/deadlines's answer.
type deadlinesView struct {
	TimeZone  string         `json:"timeZone"`
	Now       time.Time      `json:"now"`
	Deadlines []deadlineView `json:"deadlines"`
}

func (n *Node) deadlineViews(ds []deadline.Deadline) []deadlineView {
	loc := n.deadlines.Calendar.Location
	if loc == nil {
		loc = time.UTC
	}
	out := make([]deadlineView, 0, len(ds))
	for _, d := range ds {
		out = append(out, deadlineView{Kind: d.Kind, Subject: d.Subject, Report: d.Report, Name: d.Name, Participant: d.Participant,
			Local: d.Local, Mine: d.Local != "" || n.isLocal(d.Participant), Start: d.Start, Due: d.Due,
			DueLocal: d.Due.In(loc).Format("2006-01-02 15:04 MST"), Limit: d.Limit.String(), Overdue: d.Overdue})
	}
	return out
}

// Defaults of GET /api/deadlines.
const defaultDeadlines = 50

// listDeadlines answers GET /api/deadlines?overdue=true&limit=N&case=ID:
// the deadlines soonest due first (only the overdue ones with overdue),
// or those of one case or report.
func (n *Node) listDeadlines(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := defaultDeadlines
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > deadline.MaxList {
			problem.Write(w, problem.BadRequest("limit must be a whole number from 1 to %d, not %q", deadline.MaxList, s))
			return
		}
		limit = v
	}
	overdue := false
	if s := q.Get("overdue"); s != "" {
		v, err := strconv.ParseBool(s)
		if err != nil {
			problem.Write(w, problem.BadRequest("overdue must be true or false, not %q", s))
			return
		}
		overdue = v
	}
	now := n.cfg.Now()
	var ds []deadline.Deadline
	err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		if subject := q.Get("case"); subject != "" {
			ds, err = deadline.Subject(tx, n.deadlines, now, subject)
			return err
		}
		ds, err = deadline.List(tx, n.deadlines, now, overdue, limit)
		return err
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	problem.WriteJSON(w, http.StatusOK, deadlinesView{TimeZone: n.deadlines.Calendar.Location.String(), Now: now, Deadlines: n.deadlineViews(ds)})
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
