package node

import (
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/mux"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// metrics counts what the node does, for the Prometheus text exposition
// at /metrics. It holds counters only; gauges are read when scraped.
type metrics struct {
	mu       sync.Mutex
	requests map[requestKey]uint64
	// refusals counts refused inbox requests by status: 401 are
	// signature failures.
	inboxRefusals sync.Map // int status → *atomic.Uint64
}

type requestKey struct {
	method string
	route  string
	status int
}

func newMetrics() *metrics { return &metrics{requests: map[requestKey]uint64{}} }

func (m *metrics) request(method, route string, status int) {
	m.mu.Lock()
	m.requests[requestKey{method, route, status}]++
	m.mu.Unlock()
}

func (m *metrics) inboxRefused(status int) {
	v, _ := m.inboxRefusals.LoadOrStore(status, new(atomic.Uint64))
	v.(*atomic.Uint64).Add(1)
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

// serveMetrics answers GET /metrics in the Prometheus text format:
// requests by route and status, delivery outcomes, queue depth, signature
// failures, and cases by embargo and world state. Case counts are
// sensitive, so /metrics needs the API token.
func (n *Node) serveMetrics(w http.ResponseWriter, r *http.Request) {
	var b strings.Builder
	b.WriteString("# HELP vultron_http_requests_total HTTP requests by method, route and status.\n# TYPE vultron_http_requests_total counter\n")
	n.metrics.mu.Lock()
	keys := make([]requestKey, 0, len(n.metrics.requests))
	for k := range n.metrics.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		if keys[i].method != keys[j].method {
			return keys[i].method < keys[j].method
		}
		return keys[i].status < keys[j].status
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "vultron_http_requests_total{method=%q,route=%q,status=\"%d\"} %d\n", k.method, k.route, k.status, n.metrics.requests[k])
	}
	n.metrics.mu.Unlock()

	st := n.deliverer.Stats()
	b.WriteString("# HELP vultron_deliveries_total Delivery attempts by outcome.\n# TYPE vultron_deliveries_total counter\n")
	fmt.Fprintf(&b, "vultron_deliveries_total{outcome=\"delivered\"} %d\n", st.Delivered)
	fmt.Fprintf(&b, "vultron_deliveries_total{outcome=\"retried\"} %d\n", st.Retried)
	fmt.Fprintf(&b, "vultron_deliveries_total{outcome=\"dead_lettered\"} %d\n", st.DeadLettered)
	wh := n.webhooks.Stats()
	b.WriteString("# HELP vultron_webhooks_total Webhook events by outcome.\n# TYPE vultron_webhooks_total counter\n")
	fmt.Fprintf(&b, "vultron_webhooks_total{outcome=\"delivered\"} %d\n", wh.Delivered)
	fmt.Fprintf(&b, "vultron_webhooks_total{outcome=\"retried\"} %d\n", wh.Retried)
	fmt.Fprintf(&b, "vultron_webhooks_total{outcome=\"skipped\"} %d\n", wh.Skipped)

	pending, err := n.db.PendingCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	dead, err := n.db.DeadLetterCount(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	b.WriteString("# HELP vultron_store_commits_total Durable store transactions (each one fsync), however many writes each carried.\n# TYPE vultron_store_commits_total counter\n")
	fmt.Fprintf(&b, "vultron_store_commits_total %d\n", n.db.Commits())
	b.WriteString("# HELP vultron_delivery_queue_depth Deliveries waiting to be sent.\n# TYPE vultron_delivery_queue_depth gauge\n")
	fmt.Fprintf(&b, "vultron_delivery_queue_depth %d\n", pending)
	b.WriteString("# HELP vultron_dead_letters Deliveries given up on, waiting for an operator.\n# TYPE vultron_dead_letters gauge\n")
	fmt.Fprintf(&b, "vultron_dead_letters %d\n", dead)

	b.WriteString("# HELP vultron_inbox_refusals_total Refused inbox requests by status (401: signature failures).\n# TYPE vultron_inbox_refusals_total counter\n")
	var statuses []int
	n.metrics.inboxRefusals.Range(func(k, _ any) bool { statuses = append(statuses, k.(int)); return true })
	sort.Ints(statuses)
	for _, s := range statuses {
		v, _ := n.metrics.inboxRefusals.Load(s)
		fmt.Fprintf(&b, "vultron_inbox_refusals_total{status=\"%d\"} %d\n", s, v.(*atomic.Uint64).Load())
	}

	counts := map[[2]string]int{}
	if err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		all, err := cases.ListCases(tx)
		for _, c := range all {
			counts[[2]string{c.EM.String(), c.PXA.String()}]++
		}
		return err
	}); err != nil {
		problem.Write(w, err)
		return
	}
	b.WriteString("# HELP vultron_cases Cases this node hosts or replicates, by embargo state and world state.\n# TYPE vultron_cases gauge\n")
	var ck [][2]string
	for k := range counts {
		ck = append(ck, k)
	}
	sort.Slice(ck, func(i, j int) bool { return ck[i][0]+ck[i][1] < ck[j][0]+ck[j][1] })
	for _, k := range ck {
		fmt.Fprintf(&b, "vultron_cases{em_state=%q,pxa_state=%q} %d\n", k[0], k[1], counts[k])
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}

// serveReady answers GET /readyz: 200 when the store answers, 503 when not.
func (n *Node) serveReady(w http.ResponseWriter, r *http.Request) {
	if _, err := n.db.PendingCount(r.Context()); err != nil {
		problem.Write(w, problem.Wrap(http.StatusServiceUnavailable, err, "the store does not answer"))
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
