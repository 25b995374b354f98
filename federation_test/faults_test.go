package federation_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestFaults runs five real nodes behind fault-injecting proxies, drives
// a random schedule of protocol actions per seed through the actors'
// outboxes while the proxies drop, delay, duplicate, reorder and refuse
// requests and the schedule cuts nodes off and kills them, heals every
// fault, and checks that every replica of every case converged to its
// Case Actor's ledger with nothing recorded twice, nothing lost and
// nothing applied that the Case Actor refused. See docs/faults.md.

// Flags of TestFaults.
var (
	faultsSeed     = flag.Int64("faults.seed", -1, "TestFaults: run this one seed (replays a failure)")
	faultsSeeds    = flag.Int("faults.seeds", 3, "TestFaults: how many seeds to run, from -faults.first on")
	faultsFirst    = flag.Int64("faults.first", 1, "TestFaults: the first seed")
	faultsKinds    = flag.String("faults.kinds", "", "TestFaults: fault kinds, comma-separated, or all, or none (default: the kinds that converge today, "+convergingFaultKinds().String()+")")
	faultsTrace    = flag.Bool("faults.trace", false, "TestFaults: log the trace of every seed, not only of the failing ones")
	faultsActions  = flag.String("faults.actions", "", "TestFaults: all to put the held-back actions (heldBackActions) into the schedule too")
	faultsConverge = flag.Duration("faults.converge", 60*time.Second, "TestFaults: how long to wait for convergence after the faults heal")
	faultsClusters = flag.Int("faults.clusters", 1, "TestFaults: how many clusters run seeds side by side (each its own nodes, proxies and ports)")
	faultsStore    = flag.String("faults.store", storeBolt, "TestFaults: where each node keeps its state: "+storeBolt+" (its bbolt file), "+storePostgres+" (its own schema on a throw-away PostgreSQL server) or "+storeMixed+" (every other node on PostgreSQL)")
	faultsPGSeeds  = flag.Int("faults.pgseeds", 1, "TestFaultsOnPostgreSQL: how many seeds to run with every node on PostgreSQL, from -faults.first on")
)

// The stores a fault run puts its nodes on (-faults.store).
const (
	storeBolt     = "bolt"
	storePostgres = "postgres"
	storeMixed    = "mixed"
)

// onPostgres reports whether the i-th node of a cluster keeps its state in
// PostgreSQL with store.
func onPostgres(store string, i int) bool {
	return store == storePostgres || store == storeMixed && i%2 == 1
}

// convergingFaultKinds are the fault kinds TestFaults injects by default:
// under them every seed tried converges. That is every kind.
func convergingFaultKinds() faultKinds {
	kinds := faultKinds{}
	for _, k := range allFaultKinds() {
		kinds[k] = true
	}
	return kinds
}

// heldBackFaultKinds are the kinds left out of the default run because
// replicas do not converge under them yet, each with why; none today.
// Move a kind here, with its reason, when a change breaks convergence
// under it and cannot be fixed at once.
func heldBackFaultKinds() map[faultKind]string { return map[faultKind]string{} }

// heldBackActions are behaviours of the schedule that the default run
// leaves out because nodes mishandle them, each with why; none today
// (docs/faults.md says what they were and what fixed them).
// -faults.actions=all puts back whatever is listed here.
func heldBackActions() map[string]string { return map[string]string{} }

// faultConfig is what a run injects and schedules, and where its nodes
// keep their state.
type faultConfig struct {
	kinds    faultKinds
	withheld map[string]bool // behaviours left out of the schedule
	all      bool            // -faults.actions=all
	store    string          // -faults.store
}

func (cfg faultConfig) String() string {
	s := "faults " + cfg.kinds.String()
	if cfg.all {
		s += ", every action"
	} else {
		s += ", held-back actions left out"
	}
	switch cfg.store {
	case storePostgres:
		s += ", every node on PostgreSQL"
	case storeMixed:
		s += ", every other node on PostgreSQL"
	}
	return s
}

// maxViolationsShown is how many violations of each invariant a failing
// case lists.
const maxViolationsShown = 8

// pollInterval is how often the convergence wait looks again.
const pollInterval = 200 * time.Millisecond

// openWait bounds the wait for a report to reach its receiver while the
// request faults are on. A receiver that cannot fetch the finder's key
// answers 503 with a Retry-After of 10 s (inbox), so three faulted key
// fetches in a row, which a seed's schedule can hold (92004), take the
// report past 30 s without anything being wrong; the wait allows for five.
const openWait = 60 * time.Second

func TestFaults(t *testing.T) {
	seeds := []int64{*faultsSeed}
	if *faultsSeed < 0 {
		seeds = nil
		for i := range int64(*faultsSeeds) {
			seeds = append(seeds, *faultsFirst+i)
		}
	}
	runFaults(t, faultConfigFromFlags(t, *faultsStore), seeds)
}

// TestFaultsOnPostgreSQL runs TestFaults' first seeds (-faults.pgseeds of
// them) with every node's state in PostgreSQL: its own schema of the
// throw-away server of this test binary (internal/pgtest). Replicas must
// converge under the same faults whichever store their nodes use, SIGKILL
// included, which on PostgreSQL ends the node's sessions mid-transaction.
func TestFaultsOnPostgreSQL(t *testing.T) {
	var seeds []int64
	for i := range int64(*faultsPGSeeds) {
		seeds = append(seeds, *faultsFirst+i)
	}
	runFaults(t, faultConfigFromFlags(t, storePostgres), seeds)
}

// faultConfigFromFlags returns the configuration the flags ask for, with
// the nodes on store.
func faultConfigFromFlags(t *testing.T, store string) faultConfig {
	t.Helper()
	switch store {
	case storeBolt, storePostgres, storeMixed:
	default:
		t.Fatalf("-faults.store: %q, want %s, %s or %s", store, storeBolt, storePostgres, storeMixed)
	}
	kinds := convergingFaultKinds()
	if *faultsKinds != "" {
		var err error
		if kinds, err = parseFaultKinds(*faultsKinds); err != nil {
			t.Fatalf("-faults.kinds: %v", err)
		}
	}
	cfg := faultConfig{kinds: kinds, withheld: map[string]bool{}, store: store}
	switch *faultsActions {
	case "all":
		cfg.all = true
	case "":
		for a := range heldBackActions() {
			cfg.withheld[a] = true
		}
	default:
		t.Fatalf("-faults.actions: %q, want all or nothing", *faultsActions)
	}
	for k, why := range heldBackFaultKinds() {
		if !kinds[k] {
			t.Logf("fault kind %s held back: %s", k, why)
		}
	}
	for _, a := range allActions() {
		if cfg.withheld[a] {
			t.Logf("action %s held back: %s", a, heldBackActions()[a])
		}
	}
	return cfg
}

// runFaults runs seeds with cfg on -faults.clusters clusters side by side.
func runFaults(t *testing.T, cfg faultConfig, seeds []int64) {
	t.Helper()
	if *faultsClusters < 1 || *faultsClusters > 4 {
		t.Fatalf("-faults.clusters: %d, want 1 to 4", *faultsClusters)
	}
	clusters := min(*faultsClusters, len(seeds))
	start := time.Now()
	bin := buildVultron(t)
	harnesses := make([]*faultHarness, clusters)
	for i := range harnesses {
		harnesses[i] = newFaultHarness(t, bin, cfg.store)
	}
	t.Logf("cluster of %d nodes up in %s (%d side by side); %d seeds with %s", len(harnesses[0].names), time.Since(start).Round(time.Millisecond), clusters, len(seeds), cfg)

	// Each cluster takes the next seed when it is done with one; a
	// seed's verdict does not depend on which cluster ran it, as every
	// seed starts from new cases on every node.
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range seeds {
			next <- i
		}
	}()
	var (
		mu     sync.Mutex
		done   int
		failed []string
		wg     sync.WaitGroup
	)
	for _, h := range harnesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				seed := seeds[i]
				var summary string
				seedStart := time.Now()
				ok := t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
					summary = h.runSeed(t, seed, cfg)
				})
				verdict := "ok"
				mu.Lock()
				done++
				if !ok {
					verdict = "FAILED, replay: " + replayCommand(seed, cfg)
					failed = append(failed, fmt.Sprint(seed))
				}
				t.Logf("seed %d (%d/%d) %s in %s: %s", seed, done, len(seeds), verdict, time.Since(seedStart).Round(time.Millisecond), summary)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	t.Logf("%d seeds with %s in %s: %d failed %v", len(seeds), cfg, time.Since(start).Round(time.Millisecond), len(failed), failed)
}

// replayCommand is the command that runs one seed again.
func replayCommand(seed int64, cfg faultConfig) string {
	actions := ""
	if cfg.all {
		actions = " -faults.actions=all"
	}
	if cfg.store != storeBolt {
		actions += " -faults.store=" + cfg.store
	}
	return fmt.Sprintf("go test ./federation_test -run 'TestFaults$' -count=1 -faults.seed=%d -faults.kinds=%s%s -v", seed, cfg.kinds, actions)
}

// faultHarness is the cluster TestFaults reuses across seeds: the nodes,
// their proxies, and a client for the test's own calls, which go to each
// node's listen address directly.
type faultHarness struct {
	c     *cluster
	net   *faultNet
	http  *http.Client
	names []string
	nodes map[string]*faultNode
	// overHanded is how many times each node's log has said that its
	// delivery queue handed out more deliveries than asked, at the end of
	// the last seed.
	overHanded map[string]int
}

// overHandedMessage is what a node logs when its delivery queue hands out
// more deliveries than asked (outbox.Deliverer.Run): the ones left out
// stay leased, and their lanes wait, for the whole lease.
const overHandedMessage = "the delivery queue handed out more deliveries than asked"

// countInLog counts the lines of a node's log that contain msg.
func countInLog(path, msg string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return bytes.Count(b, []byte(msg)), nil
}

// faultNode is what the harness needs of a node; it does not change when
// the node restarts.
type faultNode struct {
	name    string
	url     string // the listen address, for the test's calls
	token   string
	actorID string
	proc    *clusterNode
	store   string // the node's PostgreSQL URL, empty on bbolt
}

// newFaultHarness starts the cluster of faultActors behind a faultNet,
// each node on the store -faults.store names for it (see onPostgres). A
// node on PostgreSQL gets a schema of its own, dropped after its process
// has stopped.
func newFaultHarness(t *testing.T, bin, store string) *faultHarness {
	t.Helper()
	fnet := newFaultNet(t)
	specs := faultActors()
	stores := map[string]string{}
	for i := range specs {
		if onPostgres(store, i) {
			// Before the cluster, so that the schema is dropped after
			// the node's process has stopped.
			u := pgtest.Database(t)
			specs[i] += " --store " + u
			name, _, _ := strings.Cut(specs[i], ":")
			stores[name] = u
		}
	}
	c := newClusterWith(t, bin, clusterOptions{
		// Retries within seconds, and a horizon far beyond any fault
		// window and the convergence wait, so that only what a node
		// refuses for good becomes a dead letter. Replicas are checked
		// against their Case Actors within seconds too: a participant
		// that closed is sent only what concerns it and fetches the rest
		// at the next check, a minute or more away with the defaults.
		args:  append([]string{"--retry-first", "100ms", "--retry-max", "1s", "--retry-horizon", "3m"}, quickReplicaChecks()...),
		front: fnet.front(t),
	}, specs...)
	h := &faultHarness{c: c, net: fnet, http: &http.Client{Timeout: 20 * time.Second}, nodes: map[string]*faultNode{}, overHanded: map[string]int{}}
	for _, name := range c.order {
		n := c.nodes[name]
		h.names = append(h.names, name)
		h.nodes[name] = &faultNode{name: name, url: n.url, token: n.token, actorID: n.actorID(), proc: n, store: stores[name]}
	}
	return h
}

// call makes an API call to a node directly and returns the status and
// body; err is set when no answer came.
func (h *faultHarness) call(name, method, path string, body []byte) (int, []byte, error) {
	n := h.nodes[name]
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/activity+json")
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer to %s %s on %s: %w", method, path, name, err)
	}
	return resp.StatusCode, out, nil
}

// getJSON reads a JSON document from a node's API; found is false on 404.
func (h *faultHarness) getJSON(name, path string, out any) (found bool, err error) {
	status, body, err := h.call(name, http.MethodGet, path, nil)
	if err != nil {
		return false, fmt.Errorf("GET %s on %s: %w", path, name, err)
	}
	if status == http.StatusNotFound {
		return false, nil
	}
	if status != http.StatusOK {
		return false, fmt.Errorf("GET %s on %s: %d %s", path, name, status, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return false, fmt.Errorf("GET %s on %s: %w", path, name, err)
	}
	return true, nil
}

// view returns a node's view of a case; held is false when it has none.
func (h *faultHarness) view(name, caseID string) (cs clusterCase, held bool, err error) {
	held, err = h.getJSON(name, "/api/cases/"+url.PathEscape(caseID)+"?notes=0", &cs)
	return cs, held, err
}

// ledgerFrom returns a node's ledger of a case from entry from on.
func (h *faultHarness) ledgerFrom(name, caseID string, from int64) ([]ledger.Entry, error) {
	var all []ledger.Entry
	for {
		var page struct {
			Entries []ledger.Entry `json:"entries"`
			Next    *int64         `json:"next"`
		}
		path := fmt.Sprintf("/api/cases/%s/ledger?from=%d&limit=1000", url.PathEscape(caseID), from)
		found, err := h.getJSON(name, path, &page)
		if err != nil || !found {
			return all, err
		}
		all = append(all, page.Entries...)
		if page.Next == nil || len(page.Entries) == 0 {
			return all, nil
		}
		if *page.Next <= from {
			return all, fmt.Errorf("GET %s on %s: next %d does not advance", path, name, *page.Next)
		}
		from = *page.Next
	}
}

// maxInboxScan bounds how many inbox items a scan reads.
const maxInboxScan = 20000

// inboxSince returns the items of an actor's inbox newer than mark (the id
// of the newest item before; "" for all), newest first.
func (h *faultHarness) inboxSince(name, mark string) ([]activity, error) {
	var out []activity
	cursor := ""
	for len(out) < maxInboxScan {
		var page struct {
			Items []activity `json:"orderedItems"`
			Next  string     `json:"next"`
		}
		if _, err := h.getJSON(name, "/actors/"+name+"/inbox?limit=200&cursor="+url.QueryEscape(cursor), &page); err != nil {
			return out, err
		}
		for _, it := range page.Items {
			if mark != "" && refID(it["id"]) == mark {
				return out, nil
			}
			out = append(out, it)
		}
		if page.Next == "" {
			return out, nil
		}
		_, cursor, _ = strings.Cut(page.Next, "cursor=")
	}
	return out, nil
}

// deliveries returns a node's pending deliveries and dead letters.
func (h *faultHarness) deliveries(name string) (pending, dead []deliveryInfo, err error) {
	var out struct {
		Pending []deliveryInfo `json:"pending"`
		Dead    []deliveryInfo `json:"dead"`
	}
	_, err = h.getJSON(name, "/api/deliveries", &out)
	return out.Pending, out.Dead, err
}

// seedRun is one seed's run on the harness's cluster.
type seedRun struct {
	h     *faultHarness
	seed  int64
	cfg   faultConfig
	plan  faultPlan
	trace *faultTrace
	cases []*runCase // nil where the case could not be opened
	marks map[string]string

	mu       sync.Mutex
	out      map[string]bool // nodes in a kill or cut window
	problems []string        // what went wrong in the harness itself
	early    []string        // violations found before the convergence check
	windows  sync.WaitGroup

	bursts   map[int]chan struct{} // step index of a burst → closed once it was sent (for a kill's untilBurst)
	deferred []deferredStep        // steps waiting for what their actor needs, in plan order
	settled  bool                  // the convergence wait ended with everything converged
	waiting  string                // what the last convergence check still waited for
	prefix   map[string]bool       // (d) violations seen while waiting for convergence
	ledgers  map[string][]ledger.Entry
	refused  map[string]string // activity id → reason, from Rejects found so far
	accepted int
}

// runCase is a case a seed opened.
type runCase struct {
	ix   int
	id   string
	host string // the name of the node hosting it
	sent []sentActivity
	// members are the actors expected to take part: the owner, the
	// finder, and those whose acceptance of an invitation got 201.
	members map[string]bool
}

// runSeed runs one seed and returns a one-line summary; it fails t with
// the full report when an invariant broke.
func (h *faultHarness) runSeed(t *testing.T, seed int64, cfg faultConfig) string {
	s := &seedRun{h: h, seed: seed, cfg: cfg, plan: newFaultPlan(seed, cfg.kinds, cfg.withheld), trace: newFaultTrace(),
		out: map[string]bool{}, prefix: map[string]bool{}, ledgers: map[string][]ledger.Entry{}, refused: map[string]string{}}
	var violations []string
	defer func() {
		switch {
		case t.Failed() || len(violations) > 0:
			t.Errorf("%s", s.report(violations))
		case *faultsTrace:
			t.Logf("seed %d converged:\n%s", seed, s.trace)
		}
	}()
	if err := s.prepare(); err != nil {
		t.Fatalf("seed %d: prepare the cluster: %v", seed, err)
	}
	h.net.begin(seed, cfg.kinds, faultRate, s.trace)
	for ix, receiver := range s.plan.receivers {
		rc, err := s.openCase(ix, receiver)
		if err != nil {
			s.problem("case%d: %v", ix, err)
		}
		s.cases = append(s.cases, rc)
	}
	for i, st := range s.plan.steps {
		if !waitFor(context.Background(), st.gap) {
			break
		}
		s.retryDeferred()
		s.do(i, st)
	}
	s.finishDeferred()
	s.windows.Wait()
	h.net.heal()
	s.trace.step("healed: faults off, every node up")
	healed := time.Now()
	violations = s.converge(*faultsConverge)
	for _, name := range h.names {
		n, err := countInLog(h.nodes[name].proc.log, overHandedMessage)
		if err != nil {
			s.problem("read the log of node %s: %v", name, err)
			continue
		}
		if n > h.overHanded[name] {
			violations = append(violations, fmt.Sprintf("node %s: its delivery queue handed out more deliveries than asked, %d times in this seed (those left out stay leased, and their lanes wait, for the whole lease)", name, n-h.overHanded[name]))
		}
		h.overHanded[name] = n
	}
	s.mu.Lock()
	violations = append(append(s.early, violations...), s.problems...)
	s.mu.Unlock()
	entries := 0
	for _, l := range s.ledgers {
		entries += len(l)
	}
	settled := fmt.Sprintf("converged %s after healing", time.Since(healed).Round(time.Millisecond))
	if !s.settled {
		settled = fmt.Sprintf("not converged %s after healing", *faultsConverge)
	}
	return fmt.Sprintf("%d cases, %d steps, %d activities accepted, %d ledger entries, %s; %s",
		len(s.plan.receivers), len(s.plan.steps), s.accepted, entries, s.trace.summary(), settled)
}

// problem records what went wrong in the harness's own work.
func (s *seedRun) problem(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.problems = append(s.problems, "harness: "+fmt.Sprintf(format, args...))
}

// prepare starts again a node a previous seed left down, and notes the
// newest item of each actor's inbox, so that the seed reads only its own.
func (s *seedRun) prepare() error {
	s.marks = map[string]string{}
	for _, name := range s.h.names {
		if n := s.h.nodes[name].proc; s.h.c.stopped(n) {
			if err := s.h.c.start(n); err != nil {
				return err
			}
			if err := s.h.c.awaitServing(n); err != nil {
				return err
			}
		}
		var page struct {
			Items []activity `json:"orderedItems"`
		}
		if _, err := s.h.getJSON(name, "/actors/"+name+"/inbox?limit=1", &page); err != nil {
			return err
		}
		if len(page.Items) > 0 {
			s.marks[name] = refID(page.Items[0]["id"])
		}
	}
	return nil
}

// c2sResult is the outcome of one C2S call.
type c2sResult struct {
	id      string // the activity's id on 201
	outcome string // for the trace
}

// send submits an activity to actor's outbox; a 201 for a case-scoped
// activity is recorded as sent in the case.
func (s *seedRun) send(rc *runCase, actor, what string, act activity) c2sResult {
	if _, ok := act["@context"]; !ok {
		act["@context"] = vocab.VultronContext
	}
	body, err := json.Marshal(act)
	if err != nil {
		s.problem("encode %s: %v", what, err)
		return c2sResult{outcome: "not sent: " + err.Error()}
	}
	status, resp, err := s.h.call(actor, http.MethodPost, "/actors/"+actor+"/outbox", body)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return c2sResult{outcome: "not sent: the node is down"}
	case err != nil:
		// The node went down during the call: it may have stored the
		// activity or not, so nothing is promised.
		return c2sResult{outcome: "unknown: " + err.Error()}
	case status != http.StatusCreated:
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(resp, &e)
		return c2sResult{outcome: fmt.Sprintf("refused %d: %s", status, e.Error)}
	}
	var stored struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(resp, &stored) != nil || stored.ID == "" {
		s.problem("%s: the outbox answered 201 without an activity id: %s", what, resp)
		return c2sResult{outcome: "201 without an id"}
	}
	if rc != nil {
		s.mu.Lock()
		rc.sent = append(rc.sent, sentActivity{id: stored.ID, actor: actor, actorID: s.h.nodes[actor].actorID, what: what})
		s.accepted++
		s.mu.Unlock()
	}
	return c2sResult{id: stored.ID, outcome: "201 " + lastSegment(stored.ID)}
}

// outcomeClass is an outcome without its details: "201", "refused 409",
// "not sent" or "unknown".
func outcomeClass(outcome string) string {
	head, _, _ := strings.Cut(outcome, ":")
	if strings.HasPrefix(head, "201") {
		return "201"
	}
	return head
}

func lastSegment(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// openCase has the finder report to receiver, waits for the report to
// arrive, and has the receiver validate it, which opens a case hosted on
// the receiver's node. A report the finder's node gave up delivering is
// recorded as lost and reported again, at most three times.
func (s *seedRun) openCase(ix int, receiver string) (*runCase, error) {
	h := s.h
	for attempt := 1; attempt <= 3; attempt++ {
		offer := activity{"type": "Offer", "to": []string{h.nodes[receiver].actorID},
			"object": activity{"type": "VulnerabilityReport", "name": fmt.Sprintf("Seed %d case %d", s.seed, ix),
				"content": "A report of the fault harness."}}
		what := fmt.Sprintf("case%d finder reports to %s (attempt %d)", ix, receiver, attempt)
		res := s.send(nil, "finder", what, offer)
		s.trace.step("%s → %s", what, res.outcome)
		if res.id == "" {
			return nil, fmt.Errorf("the finder's report was not accepted: %s", res.outcome)
		}
		var reportID string
		arrived, lost := false, ""
		err := pollUntil(openWait, func() (bool, error) {
			items, err := h.inboxSince(receiver, s.marks[receiver])
			if err != nil {
				return false, err
			}
			for _, it := range items {
				if refID(it["id"]) == res.id {
					reportID, arrived = refID(it["object"]), true
					return true, nil
				}
			}
			_, dead, err := h.deliveries("finder")
			for _, d := range dead {
				if d.Activity == res.id {
					lost = d.LastError
					return true, nil
				}
			}
			return false, err
		})
		switch {
		case err != nil:
			return nil, fmt.Errorf("wait for the report %s at %s: %w", res.id, receiver, err)
		case !arrived && lost == "":
			return nil, fmt.Errorf("the report %s reached neither %s's inbox nor the finder's dead letters within %s", res.id, receiver, openWait)
		case !arrived:
			s.mu.Lock()
			s.early = append(s.early, fmt.Sprintf("case%d: (c) lost: %s (activity %s) got 201 from the finder's node, which dead-lettered it: %s", ix, what, res.id, lost))
			s.mu.Unlock()
			continue
		}
		what = fmt.Sprintf("case%d %s validates the report", ix, receiver)
		val := s.send(nil, receiver, what, activity{"type": "Accept", "object": res.id, "to": []string{h.nodes["finder"].actorID}})
		s.trace.step("%s → %s", what, val.outcome)
		if val.id == "" {
			return nil, fmt.Errorf("the validation was not accepted: %s", val.outcome)
		}
		caseID, err := s.findCase(receiver, reportID)
		if err != nil {
			return nil, err
		}
		s.trace.step("case%d is %s, hosted by %s", ix, caseID, receiver)
		return &runCase{ix: ix, id: caseID, host: receiver, members: map[string]bool{receiver: true, "finder": true},
			sent: []sentActivity{{id: val.id, actor: receiver, actorID: h.nodes[receiver].actorID, what: what}}}, nil
	}
	return nil, errors.New("the finder's report was lost three times")
}

// findCase finds the case a node hosts for a report, paging through its
// cases.
func (s *seedRun) findCase(name, reportID string) (string, error) {
	after := ""
	for range 1000 {
		var page struct {
			Cases []clusterCase `json:"cases"`
			Next  string        `json:"next"`
		}
		if _, err := s.h.getJSON(name, "/api/cases?limit=1000&after="+url.QueryEscape(after), &page); err != nil {
			return "", err
		}
		for _, cs := range page.Cases {
			if cs.Hosted && slices.Contains(cs.Reports, reportID) {
				return cs.ID, nil
			}
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	return "", fmt.Errorf("node %s hosts no case for report %s after validating it", name, reportID)
}

// pollUntil calls cond until it is true, fails, or bound passes; it
// returns cond's error, and nil with cond still false at the bound.
func pollUntil(bound time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(bound)
	for {
		ok, err := cond()
		if ok || err != nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}

// do carries out one step of the plan.
func (s *seedRun) do(i int, st planStep) {
	switch st.op {
	case opKill, opCut:
		s.window(i, st)
		return
	}
	rc := s.cases[st.caseIx]
	if rc == nil {
		s.trace.step("step %d %s → skipped: the case did not open", i, st)
		s.burstSent(i)
		return
	}
	if why := s.unready(rc, st); why != "" {
		s.deferred = append(s.deferred, deferredStep{i: i, st: st, why: why})
		return
	}
	s.act(i, st, rc, "")
}

// deferredStep is a step that waits for what its actor needs: the Case
// Actor's invitation, or (while acting earlier is held back) its node's
// replica of the case.
type deferredStep struct {
	i   int
	st  planStep
	why string
}

// deferWait bounds how long the deferred steps may still wait once the
// schedule's last step was taken.
const deferWait = 10 * time.Second

// unready says what a step waits for, "" when it can be taken now.
func (s *seedRun) unready(rc *runCase, st planStep) string {
	if st.op == opAnswerInvite {
		if inv, err := s.invitationOf(st.actor, rc.id); err != nil || inv == "" {
			return "no invitation to the case in its inbox"
		}
	}
	// Only an actor expected to take part can be about to receive the
	// case; the others act at once and are refused.
	if s.cfg.withheld[actBeforeReplica] && rc.members[st.actor] && st.actor != rc.host && !s.holds(st.actor, rc.id) {
		return "its node does not show it a participant of the case"
	}
	return ""
}

// retryDeferred takes the deferred steps that can be taken now, in order.
func (s *seedRun) retryDeferred() {
	var still []deferredStep
	for _, d := range s.deferred {
		rc := s.cases[d.st.caseIx]
		if why := s.unready(rc, d.st); why != "" {
			d.why = why
			still = append(still, d)
			continue
		}
		s.act(d.i, d.st, rc, "deferred, ")
	}
	s.deferred = still
}

// finishDeferred gives the deferred steps at most deferWait more, then
// records those still waiting as skipped.
func (s *seedRun) finishDeferred() {
	_ = pollUntil(deferWait, func() (bool, error) {
		s.retryDeferred()
		return len(s.deferred) == 0, nil
	})
	for _, d := range s.deferred {
		s.trace.step("step %d %s → skipped: %s, still after the schedule plus %s", d.i, d.st, d.why, deferWait)
	}
	s.deferred = nil
}

// burstSent tells a kill window waiting for the burst of step i that it
// was sent (or will not be).
func (s *seedRun) burstSent(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := s.bursts[i]; ok {
		close(ch)
		delete(s.bursts, i)
	}
}

// windowWait bounds how long a kill that keeps its node down during a
// burst waits for another window on that node to end; windows last at
// most 3 s.
const windowWait = 10 * time.Second

// burstWait bounds how long a kill window waits for its burst.
const burstWait = 60 * time.Second

// act takes a step now.
func (s *seedRun) act(i int, st planStep, rc *runCase, note string) {
	defer s.burstSent(i)
	label := fmt.Sprintf("step %d %s", i, st)
	act, skip := s.build(rc, st)
	if skip != "" {
		s.trace.step("%s → %sskipped: %s", label, note, skip)
		return
	}
	if st.op == opBurst {
		counts := map[string]int{}
		for k := range st.count {
			res := s.send(rc, st.actor, fmt.Sprintf("%s, note %d", label, k+1), vocab.AddNote(rc.id, fmt.Sprintf("Seed %d step %d note %d.", s.seed, i, k+1)))
			counts[outcomeClass(res.outcome)]++
		}
		var parts []string
		for k, c := range counts {
			parts = append(parts, fmt.Sprintf("%s ×%d", k, c))
		}
		slices.Sort(parts)
		s.trace.step("%s → %s%s", label, note, strings.Join(parts, ", "))
		return
	}
	res := s.send(rc, st.actor, label, act)
	s.trace.step("%s → %s%s", label, note, res.outcome)
	if st.op == opAnswerInvite && st.accept && res.id != "" {
		rc.members[st.actor] = true
	}
}

// build resolves a step into the activity its actor sends, against what
// the actor's own node shows; skip says why there is nothing to send.
func (s *seedRun) build(rc *runCase, st planStep) (act activity, skip string) {
	h := s.h
	id := rc.id
	switch st.op {
	case opNote, opBurst:
		return vocab.AddNote(id, fmt.Sprintf("Seed %d: a note from %s.", s.seed, st.actor)), ""
	case opJoin:
		return vocab.Respond("Join", id, id), ""
	case opClose:
		return vocab.Respond("Leave", id, id), ""
	case opPropose:
		now := time.Now().UTC().Truncate(time.Second)
		return vocab.ProposeEmbargo(id, now, now.Add(time.Duration(st.days)*24*time.Hour)), ""
	case opInvite:
		return vocab.InviteToCase(id, h.nodes[st.other].actorID, inviteRoles(st.other)), ""
	case opAnswerInvite:
		inv, err := s.invitationOf(st.actor, id)
		switch {
		case err != nil:
			return nil, "its invitations not read: " + err.Error()
		case inv == "":
			return nil, "no invitation to the case in its inbox"
		}
		typ := "Reject"
		if st.accept {
			typ = "Accept"
		}
		return activity{"type": typ, "object": inv}, ""
	}
	view, held, err := h.view(st.actor, id)
	switch {
	case err != nil:
		return nil, "its node did not answer: " + err.Error()
	case !held:
		return nil, "its node holds no replica of the case yet"
	}
	switch st.op {
	case opAnswer:
		if len(view.Proposals) == 0 {
			return nil, "no pending embargo proposal on its node"
		}
		typ := "Reject"
		if st.accept {
			typ = "Accept"
		}
		return vocab.Respond(typ, view.Proposals[len(view.Proposals)-1].InviteID, id), ""
	case opFix, opPublic:
		p := view.participant(h.nodes[st.actor].actorID)
		if p == nil {
			return nil, "its node does not show it a participant"
		}
		if st.op == opFix {
			vfd := "VFd"
			if slices.Contains(p.Roles, "deployer") {
				vfd = "VFD"
			}
			return vocab.ReportFixState(id, p.ID, vfd), ""
		}
		pxa, err := cvdstate.ParsePXA(view.PXAState)
		if err != nil {
			return nil, fmt.Sprintf("its node shows pxa %q: %v", view.PXAState, err)
		}
		return vocab.ReportCaseState(id, p.ID, (pxa | cvdstate.PXAPublic).String()), ""
	}
	return nil, fmt.Sprintf("no activity for step %s", st.op)
}

// holds reports whether actor's node now shows it a participant of a case.
func (s *seedRun) holds(actor, caseID string) bool {
	v, held, err := s.h.view(actor, caseID)
	return err == nil && held && v.participant(s.h.nodes[actor].actorID) != nil
}

// invitationOf returns the id of the Case Actor's invitation of actor to
// a case in actor's inbox, "" when there is none yet.
func (s *seedRun) invitationOf(actor, caseID string) (string, error) {
	var list struct {
		Invitations []struct {
			ID   string `json:"id"`
			Case string `json:"case"`
		} `json:"invitations"`
	}
	if _, err := s.h.getJSON(actor, "/actors/"+actor+"/invitations", &list); err != nil {
		return "", err
	}
	for _, inv := range list.Invitations {
		if inv.Case == caseID {
			return inv.ID, nil
		}
	}
	return "", nil
}

// window opens a kill or cut window in the background; a node already in
// a window is left alone, except by a kill that keeps it down during a
// burst: that one waits (at most windowWait) for the other window to end.
func (s *seedRun) window(i int, st planStep) {
	claim := func() (bool, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.out[st.actor] {
			return false, nil
		}
		s.out[st.actor] = true
		return true, nil
	}
	busy, _ := claim()
	busy = !busy
	if busy && st.untilBurst {
		s.trace.step("step %d %s: waits for %s's other window to end", i, st, st.actor)
		_ = pollUntil(windowWait, func() (bool, error) {
			ok, _ := claim()
			busy = !ok
			return ok, nil
		})
	}
	if busy {
		s.trace.step("step %d %s → skipped: %s is already out", i, st, st.actor)
		return
	}
	var burst chan struct{}
	if st.untilBurst {
		burst = make(chan struct{})
		s.mu.Lock()
		if s.bursts == nil {
			s.bursts = map[int]chan struct{}{}
		}
		s.bursts[i+1] = burst
		s.mu.Unlock()
	}
	s.windows.Add(1)
	go func() {
		defer s.windows.Done()
		defer func() {
			s.mu.Lock()
			s.out[st.actor] = false
			s.mu.Unlock()
		}()
		if st.op == opCut {
			s.h.net.setCut(st.actor, true)
			s.trace.step("step %d: %s cut off", i, st.actor)
			waitFor(context.Background(), st.hold)
			s.h.net.setCut(st.actor, false)
			s.trace.step("step %d: %s reachable again", i, st.actor)
			return
		}
		n := s.h.nodes[st.actor].proc
		waitFor(context.Background(), st.lag)
		if err := n.cmd.Process.Kill(); err != nil {
			s.problem("SIGKILL %s: %v", st.actor, err)
			return
		}
		<-n.done
		s.trace.step("step %d: %s SIGKILLed", i, st.actor)
		waitFor(context.Background(), st.hold)
		if burst != nil {
			select {
			case <-burst:
				s.trace.step("step %d: the burst of step %d was sent while %s was down", i, i+1, st.actor)
			case <-time.After(burstWait):
				s.trace.step("step %d: the burst of step %d was not sent within %s; restarting %s", i, i+1, burstWait, st.actor)
			}
		}
		if err := s.h.c.start(n); err != nil {
			s.problem("restart %s: %v", st.actor, err)
			return
		}
		if err := s.h.c.awaitServing(n); err != nil {
			s.problem("restart %s: %v", st.actor, err)
			return
		}
		s.trace.step("step %d: %s restarted", i, st.actor)
	}()
}

// participantsElsewhere returns the participants of a case (as the host
// shows them, removed ones excepted) whose node is not the host's.
func (s *seedRun) participantsElsewhere(rc *runCase, host clusterCase) []replicaState {
	var out []replicaState
	for _, p := range host.Participants {
		if p.Removed {
			continue
		}
		for _, name := range s.h.names {
			if s.h.nodes[name].actorID == p.Actor && name != rc.host {
				out = append(out, replicaState{node: name, actor: p.Actor})
			}
		}
	}
	return out
}

// converge waits until every replica reached its host's tail and every
// accepted activity is recorded or refused, at most bound, then checks
// every invariant and returns what broke.
func (s *seedRun) converge(bound time.Duration) []string {
	var pollErr error
	err := pollUntil(bound, func() (bool, error) {
		before := s.waiting
		s.waiting = ""
		done, err := s.converged()
		pollErr, s.settled = err, done
		if err != nil {
			s.waiting = "an answer: " + err.Error()
		}
		// The trace says what the wait was for, each time that changes, so
		// that a slow convergence shows what held it up.
		if s.waiting != before && s.waiting != "" {
			s.trace.step("convergence waits for %s", s.waiting)
		}
		return done, nil // a node answering badly for a moment is retried
	})
	var out []string
	if err != nil {
		out = append(out, "harness: "+err.Error())
	}
	if pollErr != nil {
		out = append(out, "harness: the last convergence check failed: "+pollErr.Error())
	}
	for _, rc := range s.cases {
		if rc == nil {
			continue
		}
		cs, err := s.state(rc)
		if err != nil {
			out = append(out, fmt.Sprintf("harness: case%d: read its final state: %v", rc.ix, err))
			continue
		}
		for _, v := range capViolations(cs.violations(), maxViolationsShown) {
			out = append(out, fmt.Sprintf("case%d %s: %s", rc.ix, lastSegment(rc.id), v))
		}
		replayed, problems := replayLedger(rc.id, cs.ledger)
		problems = append(problems, replayDiffs(rc.host, cs.hostView, replayed)...)
		for _, p := range problems {
			out = append(out, fmt.Sprintf("case%d %s: (d) the host's ledger replayed: %s", rc.ix, lastSegment(rc.id), p))
		}
	}
	var seen []string
	for v := range s.prefix {
		seen = append(seen, v)
	}
	slices.Sort(seen)
	return append(out, seen...)
}

// converged reports whether every case has converged: each replica at
// its host's length and tail, each accepted activity recorded or refused,
// and no node with a delivery of the seed's cases still pending (so that
// nothing is on its way that would change the ledgers after the check).
// On the way it checks that each replica's tail is an entry of the host's
// ledger, recording a (d) violation when it is not.
func (s *seedRun) converged() (bool, error) {
	done, err := s.casesConverged()
	if err != nil || !done {
		return false, err
	}
	lanes := map[string]bool{}
	for _, rc := range s.cases {
		if rc != nil {
			lanes[rc.id] = true
		}
	}
	for _, name := range s.h.names {
		pending, _, err := s.h.deliveries(name)
		if err != nil {
			return false, err
		}
		for _, d := range pending {
			if lanes[d.OrderingKey] {
				s.waiting = fmt.Sprintf("%s's delivery of %s to %s (attempt %d: %s)", name, lastSegment(d.Activity), d.Recipient, d.Attempts, d.LastError)
				return false, nil
			}
		}
	}
	return true, nil
}

// casesConverged is the part of converged read from the cases.
func (s *seedRun) casesConverged() (bool, error) {
	done := true
	for _, rc := range s.cases {
		if rc == nil {
			continue
		}
		host, held, err := s.h.view(rc.host, rc.id)
		if err != nil || !held {
			return false, fmt.Errorf("case%d: the host's view: held %v, %v", rc.ix, held, err)
		}
		var views []clusterCase
		var reps []replicaState
		for _, r := range s.participantsElsewhere(rc, host) {
			v, held, err := s.h.view(r.node, rc.id)
			if err != nil {
				return false, err
			}
			if !held || v.LedgerLength != host.LedgerLength || v.TailHash != host.TailHash {
				if done {
					s.waiting = fmt.Sprintf("case%d: %s's replica (held %v, %d of %d entries)", rc.ix, r.node, held, v.LedgerLength, host.LedgerLength)
				}
				done = false
			}
			if held {
				views, reps = append(views, v), append(reps, r)
			}
		}
		// Read after the replicas, the host's ledger holds every entry a
		// replica can hold.
		hl, err := s.hostLedger(rc)
		if err != nil {
			return false, err
		}
		for i, v := range views {
			switch {
			case v.LedgerLength == 0:
			case v.LedgerLength > int64(len(hl)):
				s.prefix[fmt.Sprintf("case%d %s: (d) node %s held %d entries while the host held %d", rc.ix, lastSegment(rc.id), reps[i].node, v.LedgerLength, len(hl))] = true
			case hl[v.LedgerLength-1].EntryHash != v.TailHash:
				s.prefix[fmt.Sprintf("case%d %s: (d) node %s held entry %d with hash %s, the host's is %s", rc.ix, lastSegment(rc.id), reps[i].node, v.LedgerLength-1, short(v.TailHash), short(hl[v.LedgerLength-1].EntryHash))] = true
			}
		}
		if !done {
			continue
		}
		recorded := map[string]bool{}
		for _, e := range hl {
			recorded[e.LogObjectID] = true
		}
		for _, sa := range rc.sent {
			if recorded[sa.id] {
				continue
			}
			if _, ok := s.refused[sa.id]; ok {
				continue
			}
			if err := s.readRefusals(sa.actor, host.CaseActor); err != nil {
				return false, err
			}
			if _, ok := s.refused[sa.id]; !ok {
				s.waiting = fmt.Sprintf("case%d: %s's %s %s recorded or refused", rc.ix, sa.actor, sa.what, lastSegment(sa.id))
				done = false
				break
			}
		}
	}
	return done, nil
}

// hostLedger brings the cached ledger of a case's host up to date.
func (s *seedRun) hostLedger(rc *runCase) ([]ledger.Entry, error) {
	have := s.ledgers[rc.id]
	more, err := s.h.ledgerFrom(rc.host, rc.id, int64(len(have)))
	if err != nil {
		return have, err
	}
	s.ledgers[rc.id] = append(have, more...)
	return s.ledgers[rc.id], nil
}

// readRefusals collects the refusals a Case Actor sent an actor during the
// seed (its typed errors, Ignore of the refused activity, and the Rejects
// of Case Actors from before them): activity id → the reason.
func (s *seedRun) readRefusals(actor, caseActor string) error {
	items, err := s.h.inboxSince(actor, s.marks[actor])
	if err != nil {
		return err
	}
	for _, a := range items {
		if (a["type"] != "Ignore" && a["type"] != "Reject") || refID(a["actor"]) != caseActor {
			continue
		}
		reason, _ := a["summary"].(string)
		for _, ref := range []any{a["inReplyTo"], a["object"]} {
			if id := refID(ref); id != "" {
				s.refused[id] = reason
			}
		}
	}
	return nil
}

// state reads everything the invariants of a case are checked on.
func (s *seedRun) state(rc *runCase) (*caseState, error) {
	h := s.h
	host, held, err := h.view(rc.host, rc.id)
	if err != nil || !held {
		return nil, fmt.Errorf("the host's view: held %v, %v", held, err)
	}
	cs := &caseState{id: rc.id, host: rc.host, hostView: host, sent: rc.sent, refused: map[string]string{}, dead: map[string][]deliveryInfo{}}
	for _, r := range s.participantsElsewhere(rc, host) {
		v, held, err := h.view(r.node, rc.id)
		if err != nil {
			return nil, err
		}
		r.held, r.view = held, v
		if held {
			if r.ledger, err = h.ledgerFrom(r.node, rc.id, 0); err != nil {
				return nil, err
			}
		}
		cs.replicas = append(cs.replicas, r)
	}
	// Read after the replicas, as in converged.
	if cs.ledger, err = h.ledgerFrom(rc.host, rc.id, 0); err != nil {
		return nil, err
	}
	s.ledgers[rc.id] = cs.ledger
	senders := map[string]bool{}
	sentIDs := map[string]bool{}
	for _, sa := range rc.sent {
		senders[sa.actor], sentIDs[sa.id] = true, true
	}
	for actor := range senders {
		if err := s.readRefusals(actor, host.CaseActor); err != nil {
			return nil, err
		}
	}
	recorded := map[string]bool{}
	for _, e := range cs.ledger {
		recorded[e.LogObjectID] = true
	}
	cs.addressed = map[string][]string{}
	for _, sa := range rc.sent {
		if reason, ok := s.refused[sa.id]; ok {
			cs.refused[sa.id] = reason
			continue
		}
		if recorded[sa.id] {
			continue
		}
		var stored struct {
			To any `json:"to"`
		}
		if found, err := h.getJSON(sa.actor, "/activities/"+url.PathEscape(lastSegment(sa.id)), &stored); err != nil || !found {
			return nil, fmt.Errorf("read lost activity %s on %s: found %v, %v", sa.id, sa.actor, found, err)
		}
		cs.addressed[sa.id] = refIDs(stored.To)
	}
	for _, name := range h.names {
		_, dead, err := h.deliveries(name)
		if err != nil {
			return nil, err
		}
		for _, d := range dead {
			if d.OrderingKey == rc.id || sentIDs[d.Activity] {
				cs.dead[name] = append(cs.dead[name], d)
			}
		}
	}
	return cs, nil
}

// refIDs reads the ids of a JSON reference or list of references.
func refIDs(v any) []string {
	if list, ok := v.([]any); ok {
		var out []string
		for _, r := range list {
			out = append(out, refID(r))
		}
		return out
	}
	if id := refID(v); id != "" {
		return []string{id}
	}
	return []string{}
}

// report is what a failing seed prints: the violations, the command that
// replays it, its trace, the dead letters and the tail of every node's log.
func (s *seedRun) report(violations []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d with %s: %d invariant violations\n", s.seed, s.cfg, len(violations))
	for _, v := range violations {
		b.WriteString("  " + v + "\n")
	}
	fmt.Fprintf(&b, "replay: %s\n", replayCommand(s.seed, s.cfg))
	b.WriteString("(the cluster ran the seeds before this one first; a replay runs this seed alone on a fresh cluster)\n")
	for _, rc := range s.cases {
		if rc != nil {
			fmt.Fprintf(&b, "case%d %s hosted by %s, %d activities accepted\n", rc.ix, rc.id, rc.host, len(rc.sent))
		}
	}
	b.WriteString(s.trace.summary() + "\n")
	b.WriteString(s.trace.String())
	ours := map[string]bool{} // the seed's lanes and sent activities
	for _, rc := range s.cases {
		if rc != nil {
			ours[rc.id] = true
			for _, sa := range rc.sent {
				ours[sa.id] = true
			}
		}
	}
	for _, name := range s.h.names {
		pending, dead, err := s.h.deliveries(name)
		if err != nil {
			fmt.Fprintf(&b, "node %s: deliveries not read: %v\n", name, err)
			continue
		}
		var mine []deliveryInfo
		for _, d := range dead {
			if ours[d.OrderingKey] || ours[d.Activity] {
				mine = append(mine, d)
			}
		}
		fmt.Fprintf(&b, "node %s: %d deliveries pending, %d dead letters of this seed (%d of earlier seeds)\n", name, len(pending), len(mine), len(dead)-len(mine))
		for i, d := range mine {
			if i == 10 {
				fmt.Fprintf(&b, "  … %d more\n", len(mine)-10)
				break
			}
			fmt.Fprintf(&b, "  dead: %s to %s (lane %s) after %d attempts: %s\n", lastSegment(d.Activity), d.Recipient, lastSegment(d.OrderingKey), d.Attempts, d.LastError)
		}
	}
	anyPostgres := ""
	for _, name := range s.h.names {
		if u := s.h.nodes[name].store; u != "" {
			fmt.Fprintf(&b, "node %s: the head of its due index in PostgreSQL:\n%s", name, dueIndexOnPostgres(u, 12))
			anyPostgres = u
		}
	}
	if anyPostgres != "" {
		// The nodes' schemas share one database, and so its sessions.
		fmt.Fprintf(&b, "the database's busy or waiting sessions:\n%s", busySessions(anyPostgres))
	}
	for _, name := range s.h.names {
		fmt.Fprintf(&b, "last warnings and restarts in the log of node %s:\n%s\n", name, faultLogTail(s.h.nodes[name].proc.log, logTailLines))
	}
	return b.String()
}

// dueIndexOnPostgres describes the first n entries of the due index of the
// node whose store is the PostgreSQL URL u: each delivery's id, when it
// is due, and its lease (until when, by which process, and whether that
// process still holds its advisory lock, that is, still runs).
func dueIndexOnPostgres(u string, n int) string {
	return withDatabase(u, func(ctx context.Context, conn *pgx.Conn) string { return dueIndexRows(ctx, conn, n) })
}

// withDatabase connects to the database at u for a failing seed's report
// and returns what describe says of it, or why it could not be read; the
// whole read takes at most 10 s.
func withDatabase(u string, describe func(ctx context.Context, conn *pgx.Conn) string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return fmt.Sprintf("  not read: %v\n", err)
	}
	defer conn.Close(ctx)
	return describe(ctx, conn)
}

// dueIndexRows is dueIndexOnPostgres on an open connection.
func dueIndexRows(ctx context.Context, conn *pgx.Conn, n int) string {
	rows, err := conn.Query(ctx, `
		SELECT k.key, k.lease, k.lease_holder,
			EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
				AND ((l.classid::bigint << 32) | l.objid::bigint) = k.lease_holder),
			count(*) OVER ()
		FROM vultron_kv k JOIN vultron_buckets b ON b.id = k.bucket
		WHERE b.parent = 0 AND b.name = 'deliveries_due'
		ORDER BY k.key LIMIT $1`, n)
	if err != nil {
		return fmt.Sprintf("  not read: %v\n", err)
	}
	defer rows.Close()
	var b strings.Builder
	now := time.Now()
	for rows.Next() {
		var (
			key    []byte
			lease  *int64
			holder *int64
			alive  bool
			total  int
		)
		if err := rows.Scan(&key, &lease, &holder, &alive, &total); err != nil {
			return fmt.Sprintf("  not read: %v\n", err)
		}
		if len(key) != 16 {
			fmt.Fprintf(&b, "  key %x\n", key)
			continue
		}
		at := time.Unix(0, int64(binary.BigEndian.Uint64(key[:8])^1<<63))
		line := fmt.Sprintf("  delivery %d due %s ago", binary.BigEndian.Uint64(key[8:]), now.Sub(at).Round(time.Millisecond))
		if lease != nil {
			line += fmt.Sprintf(", leased for %s more", time.Unix(0, *lease).Sub(now).Round(time.Millisecond))
			if holder != nil {
				line += fmt.Sprintf(" by process %d (running: %t)", *holder, alive)
			}
		}
		fmt.Fprintf(&b, "%s (of %d)\n", line, total)
	}
	if err := rows.Err(); err != nil {
		fmt.Fprintf(&b, "  not read: %v\n", err)
	}
	return b.String()
}

// busySessions describes what the sessions of the database at u that are
// not idle are doing: a session that waits, and for what, tells a stalled
// write path from a slow one.
func busySessions(u string) string { return withDatabase(u, busySessionRows) }

// busySessionRows is busySessions on an open connection.
func busySessionRows(ctx context.Context, conn *pgx.Conn) string {
	var b strings.Builder
	acts, err := conn.Query(ctx, `
		SELECT pid, coalesce(state, ''), coalesce(wait_event_type, ''), coalesce(wait_event, ''),
			coalesce(extract(epoch FROM now() - xact_start), 0)::float8, left(regexp_replace(query, '\s+', ' ', 'g'), 110),
			coalesce(pg_blocking_pids(pid)::text, '')
		FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
		AND (state <> 'idle' OR wait_event_type = 'Lock')
		ORDER BY xact_start NULLS LAST LIMIT 20`)
	if err != nil {
		fmt.Fprintf(&b, "  sessions not read: %v\n", err)
		return b.String()
	}
	defer acts.Close()
	for acts.Next() {
		var (
			pid                          int
			state, waitType, wait, query string
			blockers                     string
			xactAge                      float64
		)
		if err := acts.Scan(&pid, &state, &waitType, &wait, &xactAge, &query, &blockers); err != nil {
			fmt.Fprintf(&b, "  sessions not read: %v\n", err)
			break
		}
		fmt.Fprintf(&b, "  session %d %s for %.1fs, waiting %s/%s behind %s: %s\n", pid, state, xactAge, waitType, wait, blockers, query)
	}
	return b.String()
}

// faultLogTail returns the last n lines of a node's log that are not
// routine (warnings, errors, starts and stops), each shortened to its time,
// level, message and fields.
func faultLogTail(path string, n int) string {
	return logTail(path, n, func(raw []byte) (string, bool) {
		var fields map[string]any
		if json.Unmarshal(raw, &fields) != nil {
			return "", false // the API token line, printed once, is not shown
		}
		level, _ := fields["level"].(string)
		msg, _ := fields["message"].(string)
		if level == "info" && msg != "node started" && msg != "stopped" {
			return "", false
		}
		at, _ := fields["time"].(string)
		if i := strings.IndexByte(at, 'T'); i >= 0 {
			at = at[i+1:]
		}
		var kv []string
		for k, v := range fields {
			if k != "level" && k != "message" && k != "time" && k != "svc" {
				kv = append(kv, fmt.Sprintf("%s=%v", k, v))
			}
		}
		slices.Sort(kv)
		return fmt.Sprintf("  %s %s %s %s", at, level, msg, strings.Join(kv, " ")), true
	})
}

// TestFailingSeedReportReadsPostgreSQL reads, as a failing seed's report
// does, the due index and the sessions of a node's database holding two
// deliveries, one of them leased.
func TestFailingSeedReportReadsPostgreSQL(t *testing.T) {
	u := pgtest.Database(t)
	ctx := context.Background()
	db, err := store.OpenURL(ctx, u, store.Options{NoSync: true, DataKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization", KeyID: "https://v.example/actors/vendor#main-key",
		PublicKeyPEM: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	id := "https://v.example/activities/1"
	err = db.EnqueueOutbound(ctx, store.Outbound{ID: id, Actor: "vendor", Body: []byte(`{"id":"` + id + `","type":"Note"}`),
		Deliveries: []store.DeliveryTarget{{Recipient: "https://a.example/actors/a"}, {Recipient: "https://b.example/actors/b"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DueDeliveries(ctx, time.Now().Add(time.Second), 1); err != nil {
		t.Fatal(err)
	}
	due := dueIndexOnPostgres(u, 12)
	if strings.Count(due, "  delivery ") != 2 || strings.Count(due, "leased for") != 1 || !strings.Contains(due, "(running: true)") || strings.Contains(due, "not read") {
		t.Errorf("the due index as the report shows it:\n%s\nwant two deliveries, one leased by a running process", due)
	}
	if s := busySessions(u); strings.Contains(s, "not read") {
		t.Errorf("the sessions as the report shows them:\n%s", s)
	}
}
