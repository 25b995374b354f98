package federation_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/vocab"
)

// The cluster harness runs real `vultron serve` processes on loopback, one
// actor per node as in the reference topology, and drives them through
// their client-to-server outboxes and read API only.

// clusterWait bounds every wait on a node. Waits poll a condition; a slow
// machine makes them longer, never wrong.
const clusterWait = 15 * time.Second

// clusterPoll is how often a wait looks again.
const clusterPoll = 25 * time.Millisecond

// logTailLines is how much of each node's log a failing test shows.
const logTailLines = 25

// clusterLogs, when set, is a directory the nodes' logs are written to
// and kept in, for reading a failure's whole story; by default they go to
// the test's temporary directory and only their tails are shown.
var clusterLogs = flag.String("cluster.logs", "", "keep every node's whole log in this directory")

// buildVultron builds the vultron binary into a temporary directory and
// returns its path. Call it once per test function: subtests share it.
func buildVultron(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD = %q: the tests must run inside the module", gomod)
	}
	bin := filepath.Join(t.TempDir(), "vultron")
	build := exec.Command("go", "build", "-o", bin, "./cmd/vultron")
	build.Dir = filepath.Dir(gomod)
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/vultron: %v\n%s", err, msg)
	}
	return bin
}

// cluster is a set of running nodes, each named after its one actor.
type cluster struct {
	t     *testing.T
	bin   string
	opts  clusterOptions
	nodes map[string]*clusterNode
	order []string
	http  *http.Client
	hosts map[string]*clusterNode // case id → the node hosting it
}

// clusterOptions changes how newClusterWith starts its nodes.
type clusterOptions struct {
	// args are more `vultron serve` flags, given after the harness's own:
	// a flag given twice takes the later value.
	args []string
	// front, when set, is called with each node's name and listen address
	// before the node first starts, and returns the public URL peers reach
	// it at (a proxy in front of the node). Without it, peers reach the
	// node at its listen address.
	front func(name, addr string) string
	// pipeLogs has each node write its output into a pipe, which the test
	// copies to the log file, rather than into the file itself: a limit
	// on the size of the files the process writes then spares its log.
	pipeLogs bool
}

// clusterNode is one `vultron serve` process.
type clusterNode struct {
	name  string   // the actor's name, also the node's name
	spec  string   // NAME:TYPE[:ROLES]
	extra []string // more flags of vultron serve for this node
	dir   string
	addr  string // 127.0.0.1:PORT
	url   string // http://127.0.0.1:PORT, where the test calls the node's API
	// public is the node's public URL, which its actor ids start with and
	// peers send to: url itself, or a proxy in front of it.
	public string
	token  string
	log    string // path of the process's output
	cmd    *exec.Cmd
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
}

// actorID returns the id of the node's actor.
func (n *clusterNode) actorID() string { return n.public + "/actors/" + n.name }

// newCluster starts one node per actor spec (NAME:TYPE[:ROLES]). The nodes
// stop when the test ends; if it failed, the tail of each node's log is
// shown.
func newCluster(t *testing.T, bin string, specs ...string) *cluster {
	t.Helper()
	return newClusterWith(t, bin, clusterOptions{}, specs...)
}

// newClusterWith is newCluster with options.
func newClusterWith(t *testing.T, bin string, opts clusterOptions, specs ...string) *cluster {
	t.Helper()
	// The data directories are made first so that they are removed after
	// the cleanup below has shown the logs.
	base := t.TempDir()
	c := &cluster{t: t, bin: bin, opts: opts, nodes: map[string]*clusterNode{}, hosts: map[string]*clusterNode{}, http: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		for _, name := range c.order {
			c.stopProcess(c.nodes[name])
		}
		if t.Failed() {
			for _, name := range c.order {
				n := c.nodes[name]
				t.Logf("last lines of the log of node %s (%s):\n%s", name, n.url, tailOf(n.log, logTailLines))
			}
		}
	})
	for _, spec := range specs {
		// A spec may be followed by flags of vultron serve for that node.
		fields := strings.Fields(spec)
		name, _, _ := strings.Cut(fields[0], ":")
		n := &clusterNode{name: name, spec: fields[0], extra: fields[1:], dir: filepath.Join(base, name)}
		n.addr = freeAddr(t)
		n.url = "http://" + n.addr
		n.public = n.url
		if opts.front != nil {
			n.public = opts.front(name, n.addr)
		}
		n.log = filepath.Join(n.dir, "node.log")
		if *clusterLogs != "" {
			n.log = filepath.Join(*clusterLogs, fmt.Sprintf("%s-%s-%s.log", strings.ReplaceAll(t.Name(), "/", "_"), strings.ReplaceAll(n.addr, ":", "_"), name))
		}
		if err := os.MkdirAll(n.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		c.nodes[name] = n
		c.order = append(c.order, name)
		c.launch(n)
	}
	for _, name := range c.order {
		c.awaitUp(c.nodes[name])
	}
	return c
}

// handedOut holds the loopback ports that this test binary handed out
// (freeAddr) or listens on (listenLoopback) for a test still running. A
// port freeAddr returns is free only until the node's process binds it,
// and in between the kernel may give the same port to the next listener
// on port 0: two nodes of one cluster were once started on one port. The
// registry is package-level because ports are the whole process's.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// listenLoopback listens on a loopback port that no other test of this
// binary holds or was handed, until t ends.
func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		handedOut.Lock()
		taken := handedOut.ports[addr]
		handedOut.ports[addr] = true
		handedOut.Unlock()
		if taken {
			_ = l.Close()
			continue
		}
		t.Cleanup(func() {
			handedOut.Lock()
			delete(handedOut.ports, addr)
			handedOut.Unlock()
		})
		return l
	}
	t.Fatal("no loopback port that this test binary has not handed out in 100 tries")
	return nil
}

// startLoopbackServer starts an httptest server of h on a port from
// listenLoopback.
func startLoopbackServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	_ = srv.Listener.Close()
	srv.Listener = listenLoopback(t)
	srv.Start()
	return srv
}

// freeAddr returns a loopback address with a port nothing listens on, and
// that no other test of this binary is given until t ends.
func freeAddr(t *testing.T) string {
	t.Helper()
	l := listenLoopback(t)
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// launch starts the node's process; awaitUp waits until it serves.
func (c *cluster) launch(n *clusterNode) {
	c.t.Helper()
	if err := c.start(n); err != nil {
		c.t.Fatal(err)
	}
}

// start starts the node's process. Unlike launch it may be called from
// any goroutine.
func (c *cluster) start(n *clusterNode) error {
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open the log of node %s: %w", n.name, err)
	}
	args := []string{"serve",
		"--data", n.dir,
		"--listen", n.addr,
		"--public-url", n.public,
		"--actor", n.spec,
		"--allow-private-peers",
		"--default-embargo", "90d",
		"--retry-first", "100ms",
		"--retry-max", "1s",
		"--log-format", "json"}
	args = append(args, c.opts.args...)
	cmd := exec.Command(c.bin, append(args, n.extra...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if c.opts.pipeLogs {
		// Not an *os.File: exec copies through a pipe, and Wait waits
		// for the copy.
		w := struct{ io.Writer }{logFile}
		cmd.Stdout, cmd.Stderr = w, w
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start node %s: %w", n.name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() {
		n.err = cmd.Wait()
		logFile.Close()
		close(n.done)
	}()
	return nil
}

// awaitUp waits until the node answers GET /healthz with 200, then reads
// its API token.
func (c *cluster) awaitUp(n *clusterNode) {
	c.t.Helper()
	if err := c.awaitServing(n); err != nil {
		c.t.Fatal(err)
	}
}

// awaitServing is awaitUp for any goroutine: it returns what went wrong.
func (c *cluster) awaitServing(n *clusterNode) error {
	deadline := time.Now().Add(clusterWait)
	for {
		select {
		case <-n.done:
			return fmt.Errorf("node %s exited before it served (%v):\n%s", n.name, n.err, tailOf(n.log, logTailLines))
		default:
		}
		resp, err := c.http.Get(n.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s did not answer /healthz with 200 within %s (last error %v)", n.name, clusterWait, err)
		}
		time.Sleep(clusterPoll)
	}
	tok, err := os.ReadFile(filepath.Join(n.dir, "api-token"))
	if err != nil {
		return fmt.Errorf("node %s: read its API token: %w", n.name, err)
	}
	n.token = strings.TrimSpace(string(tok))
	return nil
}

// stopProcess ends a node with SIGTERM and waits for it, killing it if it
// does not stop in time. A node already stopped is left alone.
func (c *cluster) stopProcess(n *clusterNode) {
	if n.cmd == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// stop stops a node (SIGTERM) and waits until it has exited and its port
// is free.
func (c *cluster) stop(name string) {
	c.t.Helper()
	n := c.node(name)
	c.stopProcess(n)
	if n.err != nil {
		c.t.Errorf("node %s exited with %v after SIGTERM, want a clean exit", name, n.err)
	}
}

// restart starts a stopped node again on the same port and data directory.
func (c *cluster) restart(name string) {
	c.t.Helper()
	n := c.node(name)
	select {
	case <-n.done:
	default:
		c.t.Fatalf("restart %s: the node is still running", name)
	}
	c.launch(n)
	c.awaitUp(n)
}

func (c *cluster) node(name string) *clusterNode {
	c.t.Helper()
	n, ok := c.nodes[name]
	if !ok {
		c.t.Fatalf("no node %q in the cluster", name)
	}
	return n
}

// id returns the actor id of the named node's actor.
func (c *cluster) id(name string) string { return c.node(name).actorID() }

// nodeOf returns the node whose actor is actorID, or nil.
func (c *cluster) nodeOf(actorID string) *clusterNode {
	for _, n := range c.nodes {
		if n.actorID() == actorID {
			return n
		}
	}
	return nil
}

// api sends an authorized request to a node and returns the status and
// body.
func (c *cluster) api(n *clusterNode, method, path string, body []byte) (int, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, n.url+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/activity+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s%s: %v", method, n.name, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s%s: read the answer: %v", method, n.name, path, err)
	}
	return resp.StatusCode, out
}

// activity is an activity as JSON: what a test sends and what a node
// answers.
type activity = map[string]any

// post sends an activity as the named node's actor; it adds the Vultron
// context when the activity has none.
func (c *cluster) post(name string, act activity) (int, []byte) {
	c.t.Helper()
	if _, ok := act["@context"]; !ok {
		act["@context"] = vocab.VultronContext
	}
	body, err := json.Marshal(act)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.api(c.node(name), http.MethodPost, "/actors/"+name+"/outbox", body)
}

// submit sends an activity as the named node's actor and returns the
// activity the node stored (with its id) from the 201 answer.
func (c *cluster) submit(name string, act activity) activity {
	c.t.Helper()
	status, body := c.post(name, act)
	if status != http.StatusCreated {
		c.t.Fatalf("%s sends %s %s: the node answered %d %s, want 201", name, act["type"], compact(act), status, body)
	}
	var out activity
	if err := json.Unmarshal(body, &out); err != nil {
		c.t.Fatalf("%s sends %s: the 201 body is not JSON: %v\n%s", name, act["type"], err, body)
	}
	if id, _ := out["id"].(string); id == "" {
		c.t.Fatalf("%s sends %s: the stored activity has no id: %s", name, act["type"], body)
	}
	return out
}

// expectRefused sends an activity the named actor's state forbids and
// checks the node refuses it with the given status and a JSON error.
func (c *cluster) expectRefused(name string, act activity, status int) string {
	c.t.Helper()
	got, body := c.post(name, act)
	var e struct {
		Error string `json:"error"`
	}
	if got != status || json.Unmarshal(body, &e) != nil || e.Error == "" {
		c.t.Fatalf("%s sends %s %s: the node answered %d %s, want %d with {\"error\":...}", name, act["type"], compact(act), got, body, status)
	}
	return e.Error
}

func compact(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// clusterCase is what the read API shows of a case.
type clusterCase struct{ api.CaseDetail }

type clusterParticipant = api.Participant

// participant returns the participant that actor is, or nil.
func (cs clusterCase) participant(actor string) *clusterParticipant {
	for i := range cs.Participants {
		if cs.Participants[i].Actor == actor {
			return &cs.Participants[i]
		}
	}
	return nil
}

// String summarises a case for failure messages.
func (cs clusterCase) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "case %s owner=%s em=%s pxa=%s ledger=%d closed=%v", cs.ID, cs.Owner, cs.EMState, cs.PXAState, cs.LedgerLength, cs.Closed)
	if cs.Diverged != "" {
		fmt.Fprintf(&b, " DIVERGED(%s)", cs.Diverged)
	}
	for _, p := range cs.Participants {
		fmt.Fprintf(&b, "\n  %s roles=%v rm=%s vfd=%s pec=%s removed=%v", p.Actor, p.Roles, p.RMState, p.VFDState, p.PECState, p.Removed)
	}
	return b.String()
}

// cases returns every case the named node holds.
func (c *cluster) cases(name string) []clusterCase {
	c.t.Helper()
	status, body := c.api(c.node(name), http.MethodGet, "/api/cases", nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET /api/cases on %s: %d %s", name, status, body)
	}
	var out struct {
		Cases []clusterCase `json:"cases"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		c.t.Fatalf("GET /api/cases on %s: %v\n%s", name, err, body)
	}
	return out.Cases
}

// caseOn returns the named node's detailed view of a case; ok is false when
// the node does not hold it.
func (c *cluster) caseOn(name, caseID string) (clusterCase, bool) {
	c.t.Helper()
	status, body := c.api(c.node(name), http.MethodGet, "/api/cases/"+url.PathEscape(caseID), nil)
	if status == http.StatusNotFound {
		return clusterCase{}, false
	}
	if status != http.StatusOK {
		c.t.Fatalf("GET /api/cases/%s on %s: %d %s", caseID, name, status, body)
	}
	var out clusterCase
	if err := json.Unmarshal(body, &out); err != nil {
		c.t.Fatalf("GET /api/cases/%s on %s: %v\n%s", caseID, name, err, body)
	}
	return out, true
}

// waitFor polls cond until it holds; describe says what the test waited
// for and what it last saw.
func (c *cluster) waitFor(what string, cond func() bool, describe func() string) {
	c.t.Helper()
	deadline := time.Now().Add(clusterWait)
	for !cond() {
		if time.Now().After(deadline) {
			last := ""
			if describe != nil {
				last = "\nlast seen: " + describe()
			}
			c.t.Fatalf("waited %s for %s%s", clusterWait, what, last)
		}
		time.Sleep(clusterPoll)
	}
}

// waitCase waits until the named node holds a case satisfying pred
// (caseID "" matches any case) and returns the node's view of it.
func (c *cluster) waitCase(name, caseID, what string, pred func(clusterCase) bool) clusterCase {
	c.t.Helper()
	var got clusterCase
	var seen []clusterCase
	c.waitFor(fmt.Sprintf("%s on node %s", what, name), func() bool {
		seen = c.cases(name)
		for _, cs := range seen {
			if (caseID == "" || cs.ID == caseID) && pred(cs) {
				got = cs
				return true
			}
		}
		return false
	}, func() string {
		var parts []string
		for _, cs := range seen {
			parts = append(parts, cs.String())
		}
		if len(parts) == 0 {
			return "no case"
		}
		return strings.Join(parts, "\n")
	})
	return got
}

// inbox returns what the named actor received, newest first.
func (c *cluster) inbox(name string) []activity {
	c.t.Helper()
	status, body := c.api(c.node(name), http.MethodGet, "/actors/"+name+"/inbox?limit=200", nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET inbox of %s: %d %s", name, status, body)
	}
	var page struct {
		Items []activity `json:"orderedItems"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		c.t.Fatalf("GET inbox of %s: %v\n%s", name, err, body)
	}
	return page.Items
}

// waitInbox waits until the named actor's inbox holds an activity
// satisfying pred, and returns it.
func (c *cluster) waitInbox(name, what string, pred func(activity) bool) activity {
	c.t.Helper()
	var got activity
	var seen []activity
	c.waitFor(fmt.Sprintf("%s in the inbox of %s", what, name), func() bool {
		seen = c.inbox(name)
		for _, a := range seen {
			if pred(a) {
				got = a
				return true
			}
		}
		return false
	}, func() string {
		var types []string
		for _, a := range seen {
			types = append(types, fmt.Sprintf("%v from %v", a["type"], a["actor"]))
		}
		return fmt.Sprintf("%d activities: %s", len(seen), strings.Join(types, ", "))
	})
	return got
}

// refusalOf returns the reason a Case Actor gave for refusing the activity
// id, found as an error (an Ignore of it, or the Reject of nodes from
// before typed errors) in the sender's inbox; "" when there is none.
func (c *cluster) refusalOf(name, id string) string {
	c.t.Helper()
	for _, a := range c.inbox(name) {
		if (a["type"] == "Ignore" || a["type"] == "Reject") && (refID(a["inReplyTo"]) == id || refID(a["object"]) == id) {
			s, _ := a["summary"].(string)
			return fmt.Sprintf("%s refused it: %q", a["actor"], s)
		}
	}
	return ""
}

// deadLetter returns why the named node gave up delivering activity id,
// from its dead letters; "" when it has not.
func (c *cluster) deadLetter(name, id string) string {
	c.t.Helper()
	status, body := c.api(c.node(name), http.MethodGet, "/api/deliveries", nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET /api/deliveries on %s: %d %s", name, status, body)
	}
	var out api.Deliveries
	if err := json.Unmarshal(body, &out); err != nil {
		c.t.Fatalf("GET /api/deliveries on %s: %v\n%s", name, err, body)
	}
	for _, d := range out.Dead {
		if d.Activity == id {
			return fmt.Sprintf("dead letter to %s: %s", d.Recipient, d.LastError)
		}
	}
	return ""
}

// refID reads the id of a JSON reference: a string or an object with an id.
func refID(v any) string {
	switch r := v.(type) {
	case string:
		return r
	case map[string]any:
		s, _ := r["id"].(string)
		return s
	}
	return ""
}

// ledgerOf returns the whole ledger of a case as the named node holds it,
// paging through the read API.
func (c *cluster) ledgerOf(name, caseID string) []ledger.Entry {
	c.t.Helper()
	var all []ledger.Entry
	from := int64(0)
	for {
		path := fmt.Sprintf("/api/cases/%s/ledger?from=%d&limit=50", url.PathEscape(caseID), from)
		status, body := c.api(c.node(name), http.MethodGet, path, nil)
		if status != http.StatusOK {
			c.t.Fatalf("GET %s on %s: %d %s", path, name, status, body)
		}
		var page api.LedgerPage
		if err := json.Unmarshal(body, &page); err != nil {
			c.t.Fatalf("GET %s on %s: %v", path, name, err)
		}
		all = append(all, page.Entries...)
		if page.Next == nil || len(page.Entries) == 0 {
			return all
		}
		if *page.Next <= from {
			c.t.Fatalf("GET %s on %s: next %d does not advance", path, name, *page.Next)
		}
		from = *page.Next
	}
}

// record sends a case-scoped activity as the named actor and waits until
// the Case Actor has recorded it and every participant's node holds the
// ledger up to it. It fails with the Case Actor's reason when it refuses
// the activity. It returns the stored activity.
func (c *cluster) record(name, caseID string, act activity) activity {
	c.t.Helper()
	host := c.hostNode(caseID)
	sent := c.submit(name, act)
	id := sent["id"].(string)
	var length int64
	var refusal string
	c.waitFor(fmt.Sprintf("the Case Actor to record %s's %s %s", name, act["type"], id), func() bool {
		c.t.Helper()
		for _, e := range c.ledgerOf(host.name, caseID) {
			if e.LogObjectID == id {
				// The replicas must hold this entry; the case's length,
				// read in another request, may not count it yet.
				length = e.LogIndex + 1
				return true
			}
		}
		if dead := c.deadLetter(name, id); dead != "" {
			c.t.Fatalf("%s sent %s %s (201 from its node) but its delivery to the Case Actor failed for good: %s", name, act["type"], compact(act), dead)
		}
		if refusal = c.refusalOf(name, id); refusal != "" {
			c.t.Fatalf("%s sent %s %s (201 from its node) but the Case Actor did not record it: %s", name, act["type"], compact(act), refusal)
		}
		return false
	}, func() string { cs, _ := c.caseOn(host.name, caseID); return cs.String() })
	c.awaitReplicas(host, caseID, length)
	return sent
}

// hostNode returns the running node that hosts a case.
func (c *cluster) hostNode(caseID string) *clusterNode {
	c.t.Helper()
	if n, ok := c.hosts[caseID]; ok {
		return n
	}
	for _, name := range c.order {
		if n := c.nodes[name]; !c.stopped(n) {
			if cs, ok := c.caseOn(name, caseID); ok && cs.Hosted {
				c.hosts[caseID] = n
				return n
			}
		}
	}
	c.t.Fatalf("no running node hosts case %s", caseID)
	return nil
}

// awaitReplicas waits until the node of every participant of a case that
// works on it (as its host sees them) holds at least length entries of its
// ledger. Participants whose node is stopped are skipped, and so are those
// that were removed, closed the case or left active work: they are sent
// only the entries they still need, and fetch the others when one of those
// arrives (checkConverged waits for them).
func (c *cluster) awaitReplicas(host *clusterNode, caseID string, length int64) {
	c.t.Helper()
	cs, _ := c.caseOn(host.name, caseID)
	for _, p := range cs.Participants {
		n := c.nodeOf(p.Actor)
		if n == nil || p.Removed || !p.Engaged || n == host || c.stopped(n) {
			continue
		}
		c.waitCase(n.name, caseID, fmt.Sprintf("ledger entry %d of case %s", length-1, caseID),
			func(r clusterCase) bool { return r.LedgerLength >= length })
	}
}

func (c *cluster) stopped(n *clusterNode) bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// checkConverged checks the end state of a case on the named nodes, which
// must all hold it: the same ledger (length, tail hash and every entry)
// as the host reports, a chain that verifies from the genesis hash with no
// gaps, no participant changing its RM state after it first reached
// CLOSED, and a case state, replayed from the ledger with cases.Case.Apply,
// that equals what every node's read API shows. It returns the host's view.
func (c *cluster) checkConverged(caseID string, names ...string) clusterCase {
	c.t.Helper()
	host := c.hostNode(caseID)
	hostView, _ := c.caseOn(host.name, caseID)
	if !hostView.Hosted {
		c.t.Fatalf("node %s does not say it hosts case %s: %s", host.name, caseID, hostView)
	}
	// Wait for deliveries in flight to settle before comparing.
	for _, name := range names {
		c.waitCase(name, caseID, fmt.Sprintf("the replica of case %s at its host's length %d and tail %s", caseID, hostView.LedgerLength, hostView.TailHash),
			func(r clusterCase) bool {
				return r.LedgerLength == hostView.LedgerLength && r.TailHash == hostView.TailHash
			})
	}
	hostLedger := c.ledgerOf(host.name, caseID)
	if int64(len(hostLedger)) != hostView.LedgerLength {
		c.t.Fatalf("host %s serves %d ledger entries of case %s but reports ledgerLength %d", host.name, len(hostLedger), caseID, hostView.LedgerLength)
	}
	genesis := c.verifyChain(host.name, caseID, hostLedger)
	if err := ledger.Verify(hostLedger, genesis); err != nil {
		c.t.Errorf("ledger.Verify of the ledger of case %s at %s: %v", caseID, host.name, err)
	}
	if tail := hostLedger[len(hostLedger)-1].EntryHash; tail != hostView.TailHash {
		c.t.Errorf("host %s: last entry hash %s, but it reports tailHash %s", host.name, tail, hostView.TailHash)
	}
	replayed := c.replay(caseID, hostLedger)
	for _, name := range names {
		view, ok := c.caseOn(name, caseID)
		if !ok {
			c.t.Fatalf("node %s does not hold case %s", name, caseID)
		}
		if view.Diverged != "" {
			c.t.Errorf("node %s: its replica of case %s diverged: %s", name, caseID, view.Diverged)
		}
		entries := c.ledgerOf(name, caseID)
		if len(entries) != len(hostLedger) || view.LedgerLength != hostView.LedgerLength || view.TailHash != hostView.TailHash {
			c.t.Errorf("node %s holds %d entries (reports %d, tail %s); host %s holds %d (tail %s)",
				name, len(entries), view.LedgerLength, view.TailHash, host.name, len(hostLedger), hostView.TailHash)
			continue
		}
		for i := range entries {
			if entries[i].EntryHash != hostLedger[i].EntryHash || entries[i].PrevLogHash != hostLedger[i].PrevLogHash {
				c.t.Errorf("node %s: entry %d has hash %s (prev %s), host has %s (prev %s)", name, i,
					entries[i].EntryHash, entries[i].PrevLogHash, hostLedger[i].EntryHash, hostLedger[i].PrevLogHash)
			}
		}
		c.verifyChain(name, caseID, entries)
		compareReplay(c.t, name, view, replayed)
	}
	return hostView
}

// verifyChain checks a whole ledger by hand: indexes 0..n-1 without gaps,
// each entry chaining to the one before, each hash recomputing, entry 0
// chaining to the genesis hash the creation carries and that recomputes
// from the case id, publication time and Case Actor. It returns the
// genesis hash.
func (c *cluster) verifyChain(name, caseID string, entries []ledger.Entry) string {
	c.t.Helper()
	if len(entries) == 0 {
		c.t.Fatalf("node %s holds no ledger entries of case %s", name, caseID)
	}
	for i := range entries {
		e := &entries[i]
		if e.LogIndex != int64(i) {
			c.t.Fatalf("node %s: ledger entry at position %d of case %s has logIndex %d (a gap or reordering)", name, i, caseID, e.LogIndex)
		}
		if e.CaseID != caseID {
			c.t.Errorf("node %s: entry %d belongs to case %s, not %s", name, i, e.CaseID, caseID)
		}
		if i > 0 && e.PrevLogHash != entries[i-1].EntryHash {
			c.t.Errorf("node %s: entry %d prevLogHash %s, want entry %d's hash %s", name, i, e.PrevLogHash, i-1, entries[i-1].EntryHash)
		}
		h, err := e.ComputeHash()
		if err != nil || h != e.EntryHash {
			c.t.Errorf("node %s: entry %d (%s) hash %s recomputes as %s (%v)", name, i, e.EventType, e.EntryHash, h, err)
		}
	}
	genesis, err := genesisOf(caseID, entries[0])
	if err != nil {
		c.t.Fatalf("node %s: %v", name, err)
	}
	return genesis
}

// genesisOf returns the genesis hash of a case from the first entry of its
// ledger: the hash the creation carries, which the entry must chain to and
// which must recompute from the case id, publication time and Case Actor.
func genesisOf(caseID string, first ledger.Entry) (string, error) {
	if first.EventType != "create_case" {
		return "", fmt.Errorf("entry 0 of case %s is %s, want create_case", caseID, first.EventType)
	}
	doc, err := vocab.Parse(first.PayloadSnapshot)
	if err != nil || doc.Activity() == nil {
		return "", fmt.Errorf("the creation of case %s does not parse as an activity: %v", caseID, err)
	}
	create := doc.Activity()
	vc, ok := create.Object.Object.(*vocab.VulnerabilityCase)
	if !ok {
		return "", fmt.Errorf("entry 0 of case %s does not carry an inline VulnerabilityCase", caseID)
	}
	published, err := time.Parse(time.RFC3339Nano, vc.Published)
	if err != nil {
		return "", fmt.Errorf("case %s published %q: %w", caseID, vc.Published, err)
	}
	if want := ledger.GenesisHash(caseID, published, create.Actor.ID()); vc.GenesisHash != want || first.PrevLogHash != want {
		return "", fmt.Errorf("case %s genesis hash %s, entry 0 chains to %s; recomputed %s", caseID, vc.GenesisHash, first.PrevLogHash, want)
	}
	return vc.GenesisHash, nil
}

// replay folds a ledger into a case state with cases.Case.Apply, as every
// replica does, and checks that no participant's RM changes after it first
// reached CLOSED.
func (c *cluster) replay(caseID string, entries []ledger.Entry) *cases.Case {
	c.t.Helper()
	cs, problems := replayLedger(caseID, entries)
	for _, p := range problems {
		c.t.Error(p)
	}
	return cs
}

// replayLedger folds a ledger into a case state with cases.Case.Apply and
// returns it with what was wrong: an entry that does not apply, a
// participant's RM changing after it first reached CLOSED.
func replayLedger(caseID string, entries []ledger.Entry) (*cases.Case, []string) {
	var problems []string
	cs := &cases.Case{}
	closed := map[string]int64{} // actor → index of the entry that closed it
	for _, e := range entries {
		doc, err := vocab.Parse(e.PayloadSnapshot)
		if err != nil || doc.Activity() == nil {
			problems = append(problems, fmt.Sprintf("entry %d (%s) of case %s: payload does not parse as an activity: %v", e.LogIndex, e.EventType, caseID, err))
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, e.ReceivedAt)
		if err != nil {
			problems = append(problems, fmt.Sprintf("entry %d of case %s: receivedAt %q: %v", e.LogIndex, caseID, e.ReceivedAt, err))
			continue
		}
		if _, err := cs.Apply(e.EventType, doc.Activity(), at); err != nil {
			problems = append(problems, fmt.Sprintf("replaying entry %d (%s) of case %s: the Case Actor recorded it, but it does not apply: %v", e.LogIndex, e.EventType, caseID, err))
		}
		for _, p := range cs.Participants {
			at, was := closed[p.Actor]
			switch {
			case was && p.RM.String() != "CLOSED":
				problems = append(problems, fmt.Sprintf("entry %d (%s) of case %s moves %s to %s after it closed at entry %d", e.LogIndex, e.EventType, caseID, p.Actor, p.RM, at))
			case !was && p.RM.String() == "CLOSED":
				closed[p.Actor] = e.LogIndex
			}
		}
	}
	return cs, problems
}

// compareReplay checks a node's view of a case against the state replayed
// from its ledger.
func compareReplay(t *testing.T, name string, view clusterCase, want *cases.Case) {
	t.Helper()
	for _, d := range replayDiffs(name, view, want) {
		t.Error(d)
	}
}

// replayDiffs says where a node's view of a case differs from the state
// replayed from its ledger.
func replayDiffs(name string, view clusterCase, want *cases.Case) []string {
	var diffs []string
	if view.Owner != want.Owner || view.EMState != want.EM.String() || view.PXAState != want.PXA.String() || view.Closed != want.Closed() {
		diffs = append(diffs, fmt.Sprintf("node %s shows owner %s em %s pxa %s closed %v; the replayed ledger gives owner %s em %s pxa %s closed %v",
			name, view.Owner, view.EMState, view.PXAState, view.Closed, want.Owner, want.EM, want.PXA, want.Closed()))
	}
	if len(view.Participants) != len(want.Participants) {
		diffs = append(diffs, fmt.Sprintf("node %s shows %d participants; the replayed ledger has %d", name, len(view.Participants), len(want.Participants)))
	}
	for _, p := range want.Participants {
		got := view.participant(p.Actor)
		if got == nil {
			diffs = append(diffs, fmt.Sprintf("node %s does not show participant %s, which the replayed ledger has", name, p.Actor))
			continue
		}
		if got.RMState != p.RM.String() || got.VFDState != p.VFD.String() || got.Removed != p.Removed || got.ID != p.ID {
			diffs = append(diffs, fmt.Sprintf("node %s shows %s as rm %s vfd %s removed %v id %s; the replayed ledger gives rm %s vfd %s removed %v id %s",
				name, p.Actor, got.RMState, got.VFDState, got.Removed, got.ID, p.RM, p.VFD, p.Removed, p.ID))
		}
	}
	return diffs
}

// tailOf returns the last n lines of a node's log, leaving out the
// access log lines of requests it answered with 2xx.
func tailOf(path string, n int) string {
	return logTail(path, n, func(raw []byte) (string, bool) {
		var line struct {
			Message string `json:"message"`
			Status  int    `json:"status"`
		}
		if json.Unmarshal(raw, &line) == nil && line.Message == "request" && line.Status < 300 {
			return "", false
		}
		return string(raw), true
	})
}

// logTail returns the last n lines of a node's log that keep shows, as it
// shows them.
func logTail(path string, n int, keep func(line []byte) (string, bool)) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := keep(sc.Bytes())
		if !ok {
			continue
		}
		lines = append(lines, line)
		if len(lines) > n {
			lines = slices.Delete(lines, 0, 1)
		}
	}
	return strings.Join(lines, "\n")
}

// TestDemoScript runs deploy/demo.sh, the script behind `make demo`: three
// `vultron serve` processes and the fv story driven by the command line
// only. The script checks that all three nodes end with the same ledger
// and the final state; the test checks that it said so.
func TestDemoScript(t *testing.T) {
	bin := buildVultron(t)
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("bash", filepath.Join(root, "deploy", "demo.sh"), bin)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("deploy/demo.sh: %v\n%s", err, msg)
	}
	for _, want := range []string{"== RS: the finder reports", "== CP: the vendor publishes", "fv story complete"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, msg)
		}
	}
}

// TestFreeAddrNeverHandsOutAPortTwice: the kernel gives a port just closed
// to the next listener on port 0 often (about one in eight of 2,000 tries
// on a test machine), so freeAddr must remember what it handed out.
func TestFreeAddrNeverHandsOutAPortTwice(t *testing.T) {
	seen := map[string]int{}
	for i := range 300 {
		addr := freeAddr(t)
		if j, ok := seen[addr]; ok {
			t.Fatalf("freeAddr handed out %s twice (calls %d and %d)", addr, j, i)
		}
		seen[addr] = i
	}
}
