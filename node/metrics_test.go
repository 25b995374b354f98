package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

// idleNode is a node that is built but not served: no delivery worker or
// other service runs, so nothing but the test's requests reads the store.
type idleNode struct {
	*Node
	token string
	dir   string
}

func newIdleNode(t testing.TB, extra Config) *idleNode {
	t.Helper()
	dir := t.TempDir()
	cfg := extra
	cfg.DataDir = dir
	cfg.PublicURL = "http://127.0.0.1:7001"
	cfg.Actors = []ActorConfig{{Name: "vendor", Type: actor.Organization}}
	cfg.NoSync = true
	cfg.Logger = zerolog.Nop()
	cfg.Notice = io.Discard
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	token, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return &idleNode{Node: n, token: strings.TrimSpace(string(token)), dir: dir}
}

// serve sends a request to the node's handler with the given bearer token
// ("" for none) and returns the status and body.
func (n *idleNode) serve(t testing.TB, method, path, token string) (int, string) {
	t.Helper()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(`{"type":"Note"}`)
	}
	req := httptest.NewRequest(method, path, body)
	if body != nil {
		req.Header.Set("Content-Type", "application/activity+json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	n.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// addCases stores cases from..to-1, spread over the embargo and world
// states, as the engine would (through cases.Save).
func addCases(t testing.TB, db *store.DB, from, to int) {
	t.Helper()
	ems := cvdstate.EMStates()
	for lo := from; lo < to; lo += 1000 {
		err := db.Update(context.Background(), func(tx *store.Tx) error {
			for i := lo; i < min(lo+1000, to); i++ {
				c := &cases.Case{ID: fmt.Sprintf("http://127.0.0.1:7001/cases/c%06d", i), Name: "case",
					EM: ems[i%len(ems)], PXA: cvdstate.PXA(i % 8)}
				if err := cases.Save(tx, c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// addDeadLetters queues n activities of the node's vendor to one recipient
// each and gives every delivery up.
func addDeadLetters(t testing.TB, db *store.DB, tag string, n int) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("http://127.0.0.1:7001/activities/%s-%d", tag, i)
		err := db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: "vendor", Body: fmt.Appendf(nil, `{"id":%q,"type":"Note"}`, id),
			Deliveries: []store.DeliveryTarget{{Recipient: "https://peer.example/actors/p"}}}, nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	pending, _, err := db.PendingDeliveries(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range pending {
		if err := db.DeadLetter(ctx, d.ID, "gone"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestScrapeReadsDoNotGrowWithTheData scrapes a node with few cases and
// dead letters and again with many: the values the store decrypts for a
// scrape must be the same number, since every count is kept, not
// recounted. (It grows with the states some case is in, at most 5 embargo
// × 8 world states: the 40 first cases are in all of them.)
func TestScrapeReadsDoNotGrowWithTheData(t *testing.T) {
	n := newIdleNode(t, Config{})
	// The scraper's credential, the metrics token, is checked without the
	// store (a user's token is a read of its own, counted apart from the
	// scrape: TestRouteTable).
	metricsToken := readMetricsToken(t, n.dir)
	scrape := func() (uint64, string) {
		t.Helper()
		before := n.db.ValuesOpened()
		status, body := n.serve(t, http.MethodGet, "/metrics", metricsToken)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d %s", status, body)
		}
		return n.db.ValuesOpened() - before, body
	}
	addCases(t, n.db, 0, 40)
	addDeadLetters(t, n.db, "a", 3)
	scrape() // the first scrape may warm something up; compare the next ones
	small, body := scrape()
	if !strings.Contains(body, "vultron_dead_letters 3\n") {
		t.Fatalf("metrics with 3 dead letters:\n%s", body)
	}
	addCases(t, n.db, 40, 1000)
	addDeadLetters(t, n.db, "b", 60)
	big, body := scrape()
	if !strings.Contains(body, "vultron_dead_letters 63\n") {
		t.Fatalf("metrics with 63 dead letters:\n%s", body)
	}
	if big != small {
		t.Errorf("a scrape decrypted %d store values with 40 cases and 3 dead letters, %d with 1,000 and 63", small, big)
	}
	t.Logf("values decrypted per scrape: %d, then %d", small, big)
}

// TestMetricsToken: the node creates a metrics token beside the API token
// (0600), which reads GET /metrics and is refused on every other route
// that is not public; the API token still reads /metrics.
func TestMetricsToken(t *testing.T) {
	n := newIdleNode(t, Config{})
	path := filepath.Join(n.dir, metricsTokenFile)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no metrics token file: %v", err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("metrics token file mode %v, want 0600", info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	metricsToken := strings.TrimSpace(string(raw))
	if len(metricsToken) < 32 || metricsToken == n.token {
		t.Fatalf("metrics token %d characters long, equal to the API token: %v", len(metricsToken), metricsToken == n.token)
	}

	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"metrics token", metricsToken, http.StatusOK},
		{"API token", n.token, http.StatusOK},
		{"no token", "", http.StatusUnauthorized},
		{"another token", strings.Repeat("x", 43), http.StatusUnauthorized},
	} {
		status, body := n.serve(t, http.MethodGet, "/metrics", tc.token)
		if status != tc.want {
			t.Errorf("GET /metrics with %s: %d %s, want %d", tc.name, status, body, tc.want)
		}
		if tc.want == http.StatusOK && !strings.Contains(body, "vultron_build_info{") {
			t.Errorf("GET /metrics with %s: no build info in\n%s", tc.name, body)
		}
		if tc.want != http.StatusOK {
			checkJSONError(t, "GET /metrics with "+tc.name, body)
		}
	}

	// What else the metrics token may call, every route in turn, is in
	// TestRouteTable: nothing but the public routes.
}

// checkJSONError fails the test unless body is a JSON object with a
// non-empty "error".
func checkJSONError(t *testing.T, what, body string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
		t.Errorf("%s: the body is not a JSON error: %q", what, body)
	}
}

// TestMetricsTokenFile: the metrics token can live elsewhere, and must not
// be the API token.
func TestMetricsTokenFile(t *testing.T) {
	elsewhere := filepath.Join(t.TempDir(), "scrape-token")
	n := newIdleNode(t, Config{MetricsTokenFile: elsewhere})
	raw, err := os.ReadFile(elsewhere)
	if err != nil {
		t.Fatalf("no metrics token at %s: %v", elsewhere, err)
	}
	if _, err := os.Stat(filepath.Join(n.dir, metricsTokenFile)); err == nil {
		t.Errorf("a metrics token was created in the data directory too")
	}
	if status, body := n.serve(t, http.MethodGet, "/metrics", strings.TrimSpace(string(raw))); status != http.StatusOK {
		t.Errorf("GET /metrics with the token from %s: %d %s", elsewhere, status, body)
	}

	// The API token file itself, by its path or through a link, is
	// refused with a hint to point elsewhere: deleting it would replace
	// the admin's token. A copy of the API token may be removed.
	dir := t.TempDir()
	apiToken := strings.Repeat("t", 43) + "\n"
	if err := os.WriteFile(filepath.Join(dir, tokenFile), []byte(apiToken), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "link-to-api-token")
	if err := os.Symlink(filepath.Join(dir, tokenFile), link); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy-of-api-token")
	if err := os.WriteFile(cp, []byte(apiToken), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{filepath.Join(dir, tokenFile), "is the API token file; point --metrics-token-file at another file"},
		{link, "is the API token file; point --metrics-token-file at another file"},
		{cp, "holds a copy of the API token, which does everything; the metrics token must be one of its own, which reads GET /metrics and nothing else: remove this copy"},
	} {
		_, err = New(context.Background(), Config{
			DataDir: dir, MetricsTokenFile: tc.file, PublicURL: "http://127.0.0.1:7001",
			Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, NoSync: true, Notice: io.Discard,
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.file != cp && strings.Contains(err.Error(), "remove")) {
			t.Errorf("New with the metrics token file %s: %v, want a refusal saying %q", tc.file, err, tc.want)
		}
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 1 {
			t.Errorf("New made files in the data directory before refusing: %v, %v", entries, err)
		}
		if got, err := os.ReadFile(filepath.Join(dir, tokenFile)); err != nil || string(got) != apiToken {
			t.Errorf("the API token file changed: %q, %v", got, err)
		}
	}
}

// TestMetricsExposition scrapes a node after some requests and parses the
// answer with Prometheus's own parser: every metric the node reports is
// there, label values (a build version with a quote, a backslash, a line
// break and a non-ASCII letter) come back exactly, requests are labelled
// by route template and never by raw path, and cases and dead letters are
// counted.
func TestMetricsExposition(t *testing.T) {
	const version = "1.2.3 \"rc\" \\ next\nline β"
	n := newIdleNode(t, Config{Version: version})
	addCases(t, n.db, 0, 45)
	addDeadLetters(t, n.db, "x", 4)
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/actors/vendor"}, {http.MethodGet, "/actors/vendor"}, {http.MethodGet, "/actors/nobody"},
		{"FROB", "/ui/static/app.js"}, {http.MethodGet, "/no/such/path"},
	} {
		n.serve(t, req.method, req.path, "")
	}
	status, body := n.serve(t, http.MethodGet, "/metrics", n.token)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v\n%s", err, body)
	}
	for _, name := range []string{
		"vultron_http_requests_total", "vultron_http_request_duration_seconds", "vultron_inbox_refusals_total",
		"vultron_deliveries_total", "vultron_webhooks_total", "vultron_store_commits_total",
		"vultron_store_commit_failures_total", "vultron_store_writes_failing", "vultron_store_values_decrypted_total", "vultron_store_page_writes_total", "vultron_delivery_queue_depth", "vultron_dead_letters",
		"vultron_deliveries_damaged", "vultron_cases", "vultron_build_info", "go_goroutines", "go_memstats_heap_alloc_bytes",
		"process_cpu_seconds_total", "process_resident_memory_bytes",
	} {
		// A CounterVec with no sample yet is not exposed.
		if families[name] == nil && name != "vultron_inbox_refusals_total" {
			t.Errorf("no %s in the exposition", name)
		}
	}
	// A bbolt store asks no server: it exports no round trips, pool or
	// writer lock.
	for _, name := range []string{"vultron_store_round_trips_total", "vultron_store_statements_total",
		"vultron_store_pool_max_connections", "vultron_store_pool_connections", "vultron_store_pool_waits_total",
		"vultron_store_pool_wait_seconds_total", "vultron_store_writer_locks_total", "vultron_store_writer_lock_wait_seconds_total"} {
		if families[name] != nil {
			t.Errorf("%s exported by a node on bbolt", name)
		}
	}
	labels := func(m *dto.Metric) map[string]string {
		out := map[string]string{}
		for _, l := range m.GetLabel() {
			out[l.GetName()] = l.GetValue()
		}
		return out
	}
	sample := func(name string, want map[string]string) *dto.Metric {
		t.Helper()
		for _, m := range families[name].GetMetric() {
			if maps.Equal(labels(m), want) {
				return m
			}
		}
		t.Errorf("no %s%v in %v", name, want, families[name].GetMetric())
		return &dto.Metric{}
	}
	sample("vultron_build_info", map[string]string{"version": version, "goversion": runtime.Version()})
	if got := sample("vultron_http_requests_total", map[string]string{"method": "GET", "route": "/actors/{name}", "status": "200"}).GetCounter().GetValue(); got != 2 {
		t.Errorf("GET /actors/{name} 200 counted %v times, want 2", got)
	}
	sample("vultron_http_requests_total", map[string]string{"method": "GET", "route": "/actors/{name}", "status": "404"})
	if got := sample("vultron_http_request_duration_seconds", map[string]string{"method": "GET", "route": "/actors/{name}"}).GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("the latency of GET /actors/{name} observed %d times, want 3", got)
	}
	other := false
	for _, m := range families["vultron_http_requests_total"].GetMetric() {
		other = other || labels(m)["method"] == "other"
		if r := labels(m)["route"]; strings.Contains(r, "vendor") || strings.Contains(r, "nobody") || strings.Contains(r, "no/such") {
			t.Errorf("a request is labelled by its raw path: %q", r)
		}
		if m := labels(m)["method"]; m != methodLabel(m) || m == "FROB" {
			t.Errorf("a request is labelled by a method of the client's choosing: %q", m)
		}
	}
	if !other {
		t.Errorf("the FROB request is not counted as method \"other\"")
	}
	var cases float64
	for _, m := range families["vultron_cases"].GetMetric() {
		cases += m.GetGauge().GetValue()
	}
	if cases != 45 || len(families["vultron_cases"].GetMetric()) != 40 {
		t.Errorf("vultron_cases counts %v cases in %d states, want 45 in 40", cases, len(families["vultron_cases"].GetMetric()))
	}
	if got := families["vultron_dead_letters"].GetMetric()[0].GetGauge().GetValue(); got != 4 {
		t.Errorf("vultron_dead_letters %v, want 4", got)
	}
	if got := families["vultron_delivery_queue_depth"].GetMetric()[0].GetGauge().GetValue(); got != 0 {
		t.Errorf("vultron_delivery_queue_depth %v, want 0", got)
	}
}

// TestMetricsWhenTheStoreFails: a scrape the store cannot answer fails as
// a whole, with 503 and a JSON error.
func TestMetricsWhenTheStoreFails(t *testing.T) {
	n := newIdleNode(t, Config{})
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
	status, body := n.serve(t, http.MethodGet, "/metrics", n.token)
	if status != http.StatusServiceUnavailable {
		t.Errorf("GET /metrics with the store closed: %d %s, want 503", status, body)
	}
	checkJSONError(t, "GET /metrics with the store closed", body)
}

// TestRetryAfterWhenTheStoreDoesNotAnswer: the node's own 503s for a store
// that does not answer (the readiness check, the check of a credential)
// say when to try again, as every 503 of the node does.
func TestRetryAfterWhenTheStoreDoesNotAnswer(t *testing.T) {
	n := newIdleNode(t, Config{})
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/readyz", "/api/cases"} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+n.token)
		rec := httptest.NewRecorder()
		n.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" {
			t.Errorf("GET %s with the store closed: %d (Retry-After %q) %s, want 503 with Retry-After", path, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
		checkJSONError(t, "GET "+path+" with the store closed", rec.Body.String())
	}
}
