package node

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// The node's metrics, served at GET /metrics in the Prometheus exposition
// formats by client_golang (promhttp), which also escapes label values as
// the formats say. Each node has a registry of its own (several nodes run in one test
// process), never the library's global one.
//
// Nothing a scrape does grows with the data the node holds: the queue
// depth, the dead letters and the cases by state are counts the store
// keeps in the transactions that change them (store/deliveryindex.go,
// cases/counts.go, cases/sync.go), read in one short read transaction; the rest are
// in-memory counters; the deadlines running and past due are counts too
// (cases/deadlines.go). Every label has a bounded set of values: routes are
// gorilla/mux route templates, never raw paths; methods outside the
// standard ones are "other".

// metrics is the node's registry and the instruments the request path
// updates; the figures of the store, the delivery workers and the webhook
// dispatcher are read at each scrape by nodeCollector.
type metrics struct {
	reg *prometheus.Registry
	// requests counts requests by method, route template and status;
	// latency observes their duration by method and route template.
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// inboxRefusals counts refused federation requests (inbox POSTs and
	// the per-IP limit in front of signed GETs) by status: 401 are
	// signature failures.
	inboxRefusals *prometheus.CounterVec
}

// newMetrics builds the registry of node n: the request instruments, the
// node's own figures, the Go runtime and process collectors and the build
// information.
func newMetrics(n *Node) (*metrics, error) {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vultron_http_requests_total",
			Help: "HTTP requests by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "vultron_http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by method and route template.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		inboxRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vultron_inbox_refusals_total",
			Help: "Refused inbox requests by status (401: signature failures).",
		}, []string{"status"}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "vultron_build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": n.cfg.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vultron_http_requests_in_flight",
		Help: "HTTP requests being served now.",
	}, func() float64 { return float64(n.requests.running()) })
	for _, c := range []prometheus.Collector{
		m.requests, m.latency, m.inboxRefusals, build, inFlight, newNodeCollector(n), newDeadlineCollector(n),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := m.reg.Register(c); err != nil {
			return nil, fmt.Errorf("metrics: %w", err)
		}
	}
	return m, nil
}

// request counts one finished request.
func (m *metrics) request(method, route string, status int, took time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(method, route, fmt.Sprint(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(took.Seconds())
}

// inboxRefused counts one refused federation request.
func (m *metrics) inboxRefused(status int) {
	m.inboxRefusals.WithLabelValues(fmt.Sprint(status)).Inc()
}

// methodLabel returns the method as a label value: a client may send any
// token as its method, and a route without a method matcher would let
// each become a new series.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// routeOf names the route a request matched, so that metrics do not grow
// with every id a client sends.
func routeOf(r *http.Request) string {
	if rt := mux.CurrentRoute(r); rt != nil {
		if tpl, err := rt.GetPathTemplate(); err == nil {
			return tpl
		}
	}
	return "unmatched"
}

// countRequests counts each request by method, route and status, and
// observes how long it took.
func (n *Node) countRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		n.metrics.request(r.Method, routeOf(r), rec.Status(), time.Since(start))
	})
}

// serveMetrics answers GET /metrics with promhttp, in the exposition
// format and compression the scraper asks for (text by default). The
// metrics are gathered first: when the store does not answer, the scrape
// fails as a whole with 503 and a JSON error, so that the scraper sees the
// node down rather than a gauge silently missing.
func (n *Node) serveMetrics(w http.ResponseWriter, r *http.Request) {
	families, err := n.metrics.reg.Gather()
	if err != nil {
		problem.Write(w, problem.Wrap(http.StatusServiceUnavailable, err, "the metrics could not be read from the store"))
		return
	}
	gathered := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil })
	promhttp.HandlerFor(gathered, promhttp.HandlerOpts{
		ErrorLog:      promLogger{n.log},
		ErrorHandling: promhttp.HTTPErrorOnError, // stop writing on an encoding error
	}).ServeHTTP(w, r)
}

// promLogger hands promhttp's errors (a response that could not be
// written) to the node's log.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn().Msg(strings.TrimSpace(fmt.Sprintln(v...))) }

// nodeCollector reads, at each scrape, what the node counts elsewhere: the
// delivery workers' and the webhook dispatcher's outcomes, the store's
// commits and failed commits, decryptions, page writes on bbolt and round
// trips to a database, its pool and its writer lock, and, in one read transaction, the kept counts
// of pending deliveries, dead letters and cases by state, and the last backup sent.
type nodeCollector struct {
	n *Node

	deliveries, webhooks, commits, decrypted *prometheus.Desc
	commitFailures                           *prometheus.Desc
	writesFailing                            *prometheus.Desc
	roundTrips, statements, pageWrites       *prometheus.Desc
	poolMax, poolConns                       *prometheus.Desc
	poolWaits, poolWaitSeconds               *prometheus.Desc
	writerLocks, writerLockSeconds           *prometheus.Desc
	queueDepth, deadLetters, cases           *prometheus.Desc
	damagedDeliveries                        *prometheus.Desc
	replicas                                 *prometheus.Desc
	lastBackup, lastBackupSize               *prometheus.Desc
}

func newNodeCollector(n *Node) *nodeCollector {
	return &nodeCollector{
		n:                 n,
		deliveries:        prometheus.NewDesc("vultron_deliveries_total", "Delivery attempts by outcome.", []string{"outcome"}, nil),
		webhooks:          prometheus.NewDesc("vultron_webhooks_total", "Webhook events by outcome.", []string{"outcome"}, nil),
		commits:           prometheus.NewDesc("vultron_store_commits_total", "Durable store transactions (each one fsync), however many writes each carried.", nil, nil),
		commitFailures:    prometheus.NewDesc("vultron_store_commit_failures_total", "Store transactions whose commit failed (a full disk, a lost database), each failing every write it carried (on PostgreSQL, a commit whose answer was lost may have taken effect: the writes' error says so).", nil, nil),
		decrypted:         prometheus.NewDesc("vultron_store_values_decrypted_total", "Values the store decrypted to read them: the read work of everything the node looked at.", nil, nil),
		roundTrips:        prometheus.NewDesc("vultron_store_round_trips_total", "Requests this process sent to its PostgreSQL database (a pipelined batch counts once); absent on bbolt.", nil, nil),
		statements:        prometheus.NewDesc("vultron_store_statements_total", "SQL statements this process sent to its PostgreSQL database, in batches or alone; absent on bbolt.", nil, nil),
		writesFailing:     prometheus.NewDesc("vultron_store_writes_failing", "1 while the store's commits fail (from a failed commit to the next that succeeds: a full disk, a read-only or unreachable database), 0 otherwise; the log says why when it begins and when it ends.", nil, nil),
		pageWrites:        prometheus.NewDesc("vultron_store_page_writes_total", "Page writes of the bbolt store's commits (a page, or a page and its overflow pages, and each commit's meta page): over vultron_store_commits_total, what a commit costs the disk; absent on PostgreSQL.", nil, nil),
		poolMax:           prometheus.NewDesc("vultron_store_pool_max_connections", "The most connections this process's pool keeps to its PostgreSQL database (pool_max_conns); absent on bbolt.", nil, nil),
		poolConns:         prometheus.NewDesc("vultron_store_pool_connections", "Connections of this process's pool to its PostgreSQL database, in use (acquired) or idle; absent on bbolt.", []string{"state"}, nil),
		poolWaits:         prometheus.NewDesc("vultron_store_pool_waits_total", "Times a request of this process found no idle connection in its pool and waited for one to be freed or opened (the pool opens connections as requests need them, and again after it retires them hourly: those count too); a rise beyond that says a pool too small for the process's concurrent requests (raise pool_max_conns); absent on bbolt.", nil, nil),
		poolWaitSeconds:   prometheus.NewDesc("vultron_store_pool_wait_seconds_total", "How long those requests waited for a connection, in all; absent on bbolt.", nil, nil),
		writerLocks:       prometheus.NewDesc("vultron_store_writer_locks_total", "Write transactions of this process that took the database's writer lock, which the processes sharing the database take in turn; absent on bbolt.", nil, nil),
		writerLockSeconds: prometheus.NewDesc("vultron_store_writer_lock_wait_seconds_total", "How long those transactions waited for the writer lock, in all, as the database measured: over vultron_store_writer_locks_total, what other processes' writes cost this one's; absent on bbolt.", nil, nil),
		queueDepth:        prometheus.NewDesc("vultron_delivery_queue_depth", "Deliveries waiting to be sent.", nil, nil),
		deadLetters:       prometheus.NewDesc("vultron_dead_letters", "Deliveries given up on, waiting for an operator.", nil, nil),
		damagedDeliveries: prometheus.NewDesc("vultron_deliveries_damaged", "Delivery records that did not open or decode, set aside unsent with their bytes kept (docs/operations.md): any above 0 wants an operator.", nil, nil),
		cases:             prometheus.NewDesc("vultron_cases", "Cases this node hosts or replicates, by embargo state and world state.", []string{"em_state", "pxa_state"}, nil),
		replicas:          prometheus.NewDesc("vultron_replicas_diverging", "Replicas of cases that lack entries their Case Actor recorded (behind) or whose ledger differs from it (forked).", []string{"state"}, nil),
		lastBackup:        prometheus.NewDesc("vultron_store_last_backup_timestamp_seconds", "When the node last sent a whole backup of its store (GET /api/backup, vultron backup); absent until it has.", nil, nil),
		lastBackupSize:    prometheus.NewDesc("vultron_store_last_backup_bytes", "The size of that backup.", nil, nil),
	}
}

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.deliveries, c.webhooks, c.commits, c.commitFailures, c.writesFailing, c.decrypted, c.roundTrips, c.statements, c.pageWrites, c.poolMax, c.poolConns, c.poolWaits, c.poolWaitSeconds, c.writerLocks, c.writerLockSeconds, c.queueDepth, c.deadLetters, c.damagedDeliveries, c.cases, c.replicas, c.lastBackup, c.lastBackupSize} {
		ch <- d
	}
}

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := c.n.deliverer.Stats()
	counter(c.deliveries, st.Delivered, "delivered")
	counter(c.deliveries, st.Retried, "retried")
	counter(c.deliveries, st.DeadLettered, "dead_lettered")
	counter(c.deliveries, st.Withdrawn, "withdrawn")
	wh := c.n.webhooks.Stats()
	counter(c.webhooks, wh.Delivered, "delivered")
	counter(c.webhooks, wh.Retried, "retried")
	counter(c.webhooks, wh.Skipped, "skipped")
	counter(c.webhooks, wh.Paused, "paused")
	counter(c.commits, c.n.db.Commits())
	counter(c.commitFailures, c.n.db.CommitFailures())
	failing := 0.0
	if c.n.db.WritesFailing() {
		failing = 1
	}
	ch <- prometheus.MustNewConstMetric(c.writesFailing, prometheus.GaugeValue, failing)

	var pending, dead, damaged uint64
	var byState map[cases.CaseState]int64
	var behind, forked int64
	var backup store.BackupSent
	var backedUp bool
	err := c.n.db.View(context.Background(), func(tx *store.ReadTx) error {
		pending, dead = tx.DeliveryCounts()
		damaged = tx.DamagedDeliveryCount()
		var err error
		if backup, backedUp, err = tx.LastBackupSent(); err != nil {
			return err
		}
		if byState, err = cases.Counts(tx); err != nil {
			return err
		}
		behind, forked, err = cases.ReplicaCounts(tx)
		return err
	})
	// Read after the counts, so that this scrape's own reads are in it.
	counter(c.decrypted, c.n.db.ValuesOpened())
	if trips, stmts, ok := c.n.db.RoundTrips(); ok {
		counter(c.roundTrips, trips)
		counter(c.statements, stmts)
	}
	if pages, ok := c.n.db.PageWrites(); ok {
		counter(c.pageWrites, pages)
	}
	if ps, ok := c.n.db.PoolStats(); ok {
		ch <- prometheus.MustNewConstMetric(c.poolMax, prometheus.GaugeValue, float64(ps.MaxConns))
		ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(ps.AcquiredConns), "acquired")
		ch <- prometheus.MustNewConstMetric(c.poolConns, prometheus.GaugeValue, float64(ps.IdleConns), "idle")
		counter(c.poolWaits, uint64(ps.EmptyAcquires))
		ch <- prometheus.MustNewConstMetric(c.poolWaitSeconds, prometheus.CounterValue, ps.EmptyAcquireWait.Seconds())
		counter(c.writerLocks, ps.WriterLocks)
		ch <- prometheus.MustNewConstMetric(c.writerLockSeconds, prometheus.CounterValue, ps.WriterLockWait.Seconds())
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.cases, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.queueDepth, prometheus.GaugeValue, float64(pending))
	ch <- prometheus.MustNewConstMetric(c.deadLetters, prometheus.GaugeValue, float64(dead))
	ch <- prometheus.MustNewConstMetric(c.damagedDeliveries, prometheus.GaugeValue, float64(damaged))
	ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(behind), "behind")
	ch <- prometheus.MustNewConstMetric(c.replicas, prometheus.GaugeValue, float64(forked), "forked")
	if backedUp {
		ch <- prometheus.MustNewConstMetric(c.lastBackup, prometheus.GaugeValue, float64(backup.At.UnixNano())/1e9)
		ch <- prometheus.MustNewConstMetric(c.lastBackupSize, prometheus.GaugeValue, float64(backup.Bytes))
	}
	for s, count := range byState {
		ch <- prometheus.MustNewConstMetric(c.cases, prometheus.GaugeValue, float64(count), s.EM, s.PXA)
	}
}
