package federation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fault network puts a reverse proxy in front of every node of a
// cluster: a node listens on 127.0.0.1:P and announces
// http://127.0.0.1:X as its public URL, where X is its proxy. Everything
// one node sends another (deliveries, key and actor fetches, signed GETs)
// crosses the receiver's proxy, which injects faults; the test's own API
// calls go to P directly. The proxy is hand-written rather than
// httputil.ReverseProxy because a fault must hold, copy, repeat and answer
// a request independently of forwarding it, which ReverseProxy's single
// request/response flow does not allow.

// faultKind names one kind of fault the harness injects.
type faultKind string

// The kinds a proxy decides per request (the first seven) and the two the
// schedule opens as windows (cut, kill).
const (
	faultDrop    faultKind = "drop"    // close the connection unanswered, or 502 without forwarding
	faultDelay   faultKind = "delay"   // wait, then forward
	faultDup     faultKind = "dup"     // forward the same request twice
	faultReorder faultKind = "reorder" // hold a request past later ones, or forward a copy again later
	fault413     faultKind = "413"     // answer 413 to an announcement, after forwarding it or not
	fault500     faultKind = "500"     // answer 500, after forwarding or not
	faultTimeout faultKind = "timeout" // answer 504 after a while; the node may or may not have it
	faultCut     faultKind = "cut"     // a node cut off: every request to or from it fails for a while
	faultKill    faultKind = "kill"    // a node SIGKILLed and restarted on the same data and port
)

// allFaultKinds lists every kind, request kinds first.
func allFaultKinds() []faultKind {
	return []faultKind{faultDrop, faultDelay, faultDup, faultReorder, fault413, fault500, faultTimeout, faultCut, faultKill}
}

// isRequestFault reports whether a proxy decides kind request by request.
func isRequestFault(kind faultKind) bool { return kind != faultCut && kind != faultKill }

// faultKinds is a set of fault kinds.
type faultKinds map[faultKind]bool

// parseFaultKinds reads a comma-separated list of kinds; "all" is every
// kind and "none" (or "") no fault at all.
func parseFaultKinds(s string) (faultKinds, error) {
	out := faultKinds{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		switch part {
		case "", "none":
			continue
		case "all":
			for _, k := range allFaultKinds() {
				out[k] = true
			}
			continue
		}
		if !slices.Contains(allFaultKinds(), faultKind(part)) {
			return nil, fmt.Errorf("unknown fault kind %q: want a comma-separated list of %s, or all, or none", part, faultKinds{}.with(allFaultKinds()...))
		}
		out[faultKind(part)] = true
	}
	return out, nil
}

func (k faultKinds) with(kinds ...faultKind) faultKinds {
	out := faultKinds{}
	for kind := range k {
		out[kind] = true
	}
	for _, kind := range kinds {
		out[kind] = true
	}
	return out
}

// String lists the kinds in the order of allFaultKinds, comma-separated,
// as -faults.kinds takes them; "none" for the empty set.
func (k faultKinds) String() string {
	var names []string
	for _, kind := range allFaultKinds() {
		if k[kind] {
			names = append(names, string(kind))
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// requestKinds returns the per-request kinds of the set, in a fixed order.
func (k faultKinds) requestKinds() []faultKind {
	var out []faultKind
	for _, kind := range allFaultKinds() {
		if k[kind] && isRequestFault(kind) {
			out = append(out, kind)
		}
	}
	return out
}

// Bounds of the proxy.
const (
	// proxyMaxBody is the largest request or response body a proxy
	// carries; the nodes refuse inbox bodies over 256 KiB themselves.
	proxyMaxBody = 4 << 20
	// proxyForwardTimeout bounds one forwarded request.
	proxyForwardTimeout = 30 * time.Second
	// defaultMaxHold is the longest a reordered request is held before it
	// is forwarded even if fewer later requests passed it.
	defaultMaxHold = 1500 * time.Millisecond
	// faultRate is the share of eligible requests that get a fault while
	// request faults are on.
	faultRate = 0.25
)

// faultNet is the shared state of all proxies of a cluster: which faults
// are on, which nodes are cut off, the requests held back, and the random
// source of each sender→receiver pair. A pair's decisions come from its
// own source, seeded by the seed and the pair, so the n-th request from
// one node to another meets the same fault in every run of a seed; which
// request is the n-th can differ when one sender sends to one receiver in
// several lanes at once.
type faultNet struct {
	forwarder *http.Client
	maxHold   time.Duration

	mu      sync.Mutex
	proxies []*faultProxy
	hosts   map[string]string // public host:port → node name
	on      bool
	seed    uint64
	kinds   []faultKind // request kinds on
	rate    float64
	rngs    map[string]*rand.Rand
	cut     map[string]bool
	passed  map[string]int // node → requests forwarded to it
	held    []*heldRequest
	trace   *faultTrace
	rules   []*faultRule

	// background counts the forwards that outlive their request (second
	// copies, timeouts, replays); idle is signalled when it drops to 0. A
	// counter under mu rather than a WaitGroup, because a request decided
	// just before heal may start one while heal waits.
	background int
	idle       *sync.Cond
}

// heldRequest is a request held back by a reorder fault: either its
// sender waits on release, or it was already answered and copy is
// forwarded again once released.
type heldRequest struct {
	to      string
	after   int           // release when passed[to] reaches it
	release chan struct{} // closed on release when the sender waits
	copy    *proxied      // forwarded again on release when it does not
}

func newFaultNet(t *testing.T) *faultNet {
	n := &faultNet{
		forwarder: &http.Client{
			Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
			// A node's answer is passed on as it is, redirects included.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Timeout:       proxyForwardTimeout,
		},
		maxHold: defaultMaxHold,
		hosts:   map[string]string{},
		rngs:    map[string]*rand.Rand{},
		cut:     map[string]bool{},
		passed:  map[string]int{},
	}
	n.idle = sync.NewCond(&n.mu)
	// Registered before the cluster's cleanup, so it runs after the nodes
	// stopped.
	t.Cleanup(n.close)
	return n
}

// front starts the proxy of a node listening on target and returns the
// node's public URL; it is a clusterOptions.front.
func (n *faultNet) front(t *testing.T) func(name, target string) string {
	return func(name, target string) string {
		ln := listenLoopback(t)
		p := &faultProxy{net: n, name: name, target: target, ln: ln}
		p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = p.srv.Serve(ln) }()
		n.mu.Lock()
		n.proxies = append(n.proxies, p)
		n.hosts[ln.Addr().String()] = name
		n.mu.Unlock()
		return "http://" + ln.Addr().String()
	}
}

func (n *faultNet) close() {
	n.mu.Lock()
	proxies := n.proxies
	n.mu.Unlock()
	for _, p := range proxies {
		_ = p.srv.Close()
	}
	n.waitBackground()
}

// goBackground runs f in a goroutine that heal and close wait for.
func (n *faultNet) goBackground(f func()) {
	n.mu.Lock()
	n.background++
	n.mu.Unlock()
	go func() {
		defer func() {
			n.mu.Lock()
			n.background--
			if n.background == 0 {
				n.idle.Broadcast()
			}
			n.mu.Unlock()
		}()
		f()
	}()
}

// waitBackground waits until no background forward runs.
func (n *faultNet) waitBackground() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for n.background > 0 {
		n.idle.Wait()
	}
}

// begin turns request faults of kinds on for a seed, with fresh random
// sources, recording into trace.
func (n *faultNet) begin(seed int64, kinds faultKinds, rate float64, trace *faultTrace) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.on, n.seed, n.kinds, n.rate, n.trace = true, uint64(seed), kinds.requestKinds(), rate, trace
	n.rngs = map[string]*rand.Rand{}
	n.cut = map[string]bool{}
}

// setCut cuts a node off, or ends its cut.
func (n *faultNet) setCut(node string, cut bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[node] = cut
}

// heal turns every fault off, releases what is held (forwarding the
// copies now) and waits for the forwards still under way.
func (n *faultNet) heal() {
	n.mu.Lock()
	n.on = false
	n.cut = map[string]bool{}
	held := n.held
	n.held = nil
	n.mu.Unlock()
	for _, h := range held {
		n.releaseHeld(h)
	}
	n.waitBackground()
}

func (n *faultNet) releaseHeld(h *heldRequest) {
	if h.release != nil {
		close(h.release)
		return
	}
	n.goBackground(func() {
		res := n.forward(context.Background(), h.copy)
		n.noteLater(faultReorder, h.copy, "held copy forwarded again: "+res.outcome())
	})
}

// note records a request fault in the current trace.
func (n *faultNet) note(kind faultKind, req *proxied, what string) { n.record(kind, req, what, true) }

// noteLater records what became of a fault already noted (a copy
// forwarded later), without counting it again.
func (n *faultNet) noteLater(kind faultKind, req *proxied, what string) {
	n.record(kind, req, what, false)
}

func (n *faultNet) record(kind faultKind, req *proxied, what string, count bool) {
	n.mu.Lock()
	tr := n.trace
	n.mu.Unlock()
	if tr != nil {
		tr.request(kind, fmt.Sprintf("%s %s→%s %s: %s", kind, orUnknown(req.from), req.to, req.what, what), count)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// senderOf names the node that signed a request, from the host of the
// keyId in its Signature (draft-cavage) or Signature-Input (RFC 9421)
// header; "" when it is unsigned or signed by no node of the cluster.
func (n *faultNet) senderOf(h http.Header) string {
	keyID := keyIDOf(h)
	if keyID == "" {
		return ""
	}
	u, err := url.Parse(keyID)
	if err != nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.hosts[u.Host]
}

// keyIDOf returns the keyId parameter of a request's signature headers.
func keyIDOf(h http.Header) string {
	for _, v := range []string{h.Get("Signature"), h.Get("Signature-Input")} {
		i := strings.Index(strings.ToLower(v), `keyid="`)
		if i < 0 {
			continue
		}
		rest := v[i+len(`keyid="`):]
		if j := strings.IndexByte(rest, '"'); j >= 0 {
			return rest[:j]
		}
	}
	return ""
}

// proxied is one request a proxy received, kept whole so that it can be
// forwarded any number of times.
type proxied struct {
	method, uri, host string
	header            http.Header
	body              []byte
	signed            bool
	from, to          string // sending node ("" unknown) and receiving node
	target            string // the receiving node's listen address
	what              string // a short description for the trace
}

// announcement reports whether the request delivers an Announce, as a
// Case Actor announces the entries of its ledger.
func (r *proxied) announcement() bool {
	return r.method == http.MethodPost && strings.HasPrefix(r.what, "Announce")
}

// eligible reports whether request faults apply: POSTs to inboxes and
// signed GETs, the requests nodes make of each other.
func (r *proxied) eligible() bool {
	switch r.method {
	case http.MethodPost:
		path, _, _ := strings.Cut(r.uri, "?")
		return strings.HasPrefix(path, "/actors/") && strings.HasSuffix(path, "/inbox")
	case http.MethodGet:
		return r.signed
	}
	return false
}

// decision is what a proxy does with one request.
type decision struct {
	kind    faultKind // "" for none
	variant bool      // which of the kind's two forms
	wait    time.Duration
	after   int // reorder: how many later requests pass it
}

// faultRule is a fault a test scripts: it meets the next requests match
// picks, left of them, whether or not a seed's faults are on.
type faultRule struct {
	match  func(*proxied) bool
	d      decision
	left   int
	played int
}

// script plays the fault d on the next times requests match picks, and
// returns how many it has played so far.
func (n *faultNet) script(match func(*proxied) bool, d decision, times int) (played func() int) {
	r := &faultRule{match: match, d: d, left: times}
	n.mu.Lock()
	n.rules = append(n.rules, r)
	n.mu.Unlock()
	return func() int {
		n.mu.Lock()
		defer n.mu.Unlock()
		return r.played
	}
}

// decide picks the fault for a request.
func (n *faultNet) decide(req *proxied) decision {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, r := range n.rules {
		if r.left > 0 && r.match(req) {
			r.left--
			r.played++
			return r.d
		}
	}
	if !n.on {
		return decision{}
	}
	rng := n.rngs[req.from+">"+req.to]
	if rng == nil {
		h := fnv.New64a()
		_, _ = h.Write([]byte(req.from + ">" + req.to))
		rng = rand.New(rand.NewPCG(n.seed, h.Sum64()))
		n.rngs[req.from+">"+req.to] = rng
	}
	if n.cut[req.to] || (req.from != "" && n.cut[req.from]) {
		return decision{kind: faultCut, variant: rng.IntN(2) == 0}
	}
	if !req.eligible() || len(n.kinds) == 0 || rng.Float64() >= n.rate {
		return decision{}
	}
	d := decision{kind: n.kinds[rng.IntN(len(n.kinds))], variant: rng.IntN(2) == 0}
	if d.kind == fault413 && !req.announcement() {
		// A node refuses a body as too large when the sender's limit is
		// larger than its own, which happens to what a Case Actor
		// announces (an activity wrapped in a ledger entry): the 413 this
		// harness plays is that one. An activity a participant sends is no
		// larger than what every node takes.
		return decision{}
	}
	switch d.kind {
	case faultDelay:
		d.wait = 50*time.Millisecond + time.Duration(rng.Int64N(int64(1450*time.Millisecond)))
	case faultDup:
		d.wait = time.Duration(rng.Int64N(int64(300 * time.Millisecond)))
	case faultReorder:
		d.after = 1 + rng.IntN(6)
	case faultTimeout:
		d.wait = 200*time.Millisecond + time.Duration(rng.Int64N(int64(1800*time.Millisecond)))
	}
	return d
}

// faultProxy is the proxy in front of one node.
type faultProxy struct {
	net    *faultNet
	name   string // the node behind it
	target string // the node's listen address
	ln     net.Listener
	srv    *http.Server
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, proxyMaxBody+1))
	if err != nil {
		writeProxyError(w, http.StatusBadRequest, "proxy: read the request body: "+err.Error())
		return
	}
	if len(body) > proxyMaxBody {
		writeProxyError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("proxy: request body over %d bytes", proxyMaxBody))
		return
	}
	req := &proxied{method: r.Method, uri: r.URL.RequestURI(), host: r.Host, header: r.Header.Clone(), body: body,
		signed: keyIDOf(r.Header) != "", from: p.net.senderOf(r.Header), to: p.name, target: p.target}
	req.what = describeRequest(r.Method, r.URL.Path, body)
	p.net.serve(w, r.Context(), req, p.net.decide(req))
}

// serve carries out a decision on a request and answers its sender.
func (n *faultNet) serve(w http.ResponseWriter, ctx context.Context, req *proxied, d decision) {
	switch d.kind {
	case "":
		n.relay(w, n.forward(ctx, req))
	case faultCut, faultDrop:
		if d.variant {
			n.note(d.kind, req, "connection closed unanswered")
			hangUp(w)
			return
		}
		n.note(d.kind, req, "502, not forwarded")
		writeProxyError(w, http.StatusBadGateway, fmt.Sprintf("proxy: fault %s", d.kind))
	case faultDelay:
		if !waitFor(ctx, d.wait) {
			return
		}
		res := n.forward(ctx, req)
		n.note(d.kind, req, fmt.Sprintf("forwarded after %s: %s", d.wait.Round(time.Millisecond), res.outcome()))
		n.relay(w, res)
	case faultDup:
		if d.variant {
			// Both copies at once: the node sees them concurrently.
			var second forwardResult
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); second = n.forward(ctx, req) }()
			first := n.forward(ctx, req)
			wg.Wait()
			n.note(d.kind, req, fmt.Sprintf("forwarded twice at once: %s, %s", first.outcome(), second.outcome()))
			n.relay(w, first)
			return
		}
		first := n.forward(ctx, req)
		n.relay(w, first)
		n.goBackground(func() {
			waitFor(context.Background(), d.wait)
			second := n.forward(context.Background(), req)
			n.note(d.kind, req, fmt.Sprintf("forwarded, answered %s, again %s later: %s", first.outcome(), d.wait.Round(time.Millisecond), second.outcome()))
		})
	case faultReorder:
		if d.variant {
			waited := n.hold(ctx, req, d.after)
			res := n.forward(ctx, req)
			n.note(d.kind, req, fmt.Sprintf("held %s while later requests passed, then forwarded: %s", waited.Round(time.Millisecond), res.outcome()))
			n.relay(w, res)
			return
		}
		res := n.forward(ctx, req)
		n.keepCopy(req, d.after)
		n.note(d.kind, req, fmt.Sprintf("forwarded (%s), a copy kept to forward again after %d later requests", res.outcome(), d.after))
		n.relay(w, res)
	case fault413, fault500:
		status := http.StatusRequestEntityTooLarge
		if d.kind == fault500 {
			status = http.StatusInternalServerError
		}
		if d.variant {
			res := n.forward(ctx, req)
			n.note(d.kind, req, fmt.Sprintf("forwarded (%s), answered %d", res.outcome(), status))
		} else {
			n.note(d.kind, req, fmt.Sprintf("answered %d, not forwarded", status))
		}
		writeProxyError(w, status, fmt.Sprintf("proxy: fault %s", d.kind))
	case faultTimeout:
		forwarded := "not forwarded"
		if d.variant {
			forwarded = "forwarded meanwhile"
			n.goBackground(func() {
				res := n.forward(context.Background(), req)
				n.noteLater(d.kind, req, "the forwarded copy got "+res.outcome())
			})
		}
		if !waitFor(ctx, d.wait) {
			return
		}
		n.note(d.kind, req, fmt.Sprintf("504 after %s, %s", d.wait.Round(time.Millisecond), forwarded))
		writeProxyError(w, http.StatusGatewayTimeout, "proxy: fault timeout")
	}
}

// hold makes a request wait until after more requests to its node were
// forwarded, at most n.maxHold, and returns how long it waited.
func (n *faultNet) hold(ctx context.Context, req *proxied, after int) time.Duration {
	start := time.Now()
	h := &heldRequest{to: req.to, release: make(chan struct{})}
	n.mu.Lock()
	h.after = n.passed[req.to] + after
	n.held = append(n.held, h)
	n.mu.Unlock()
	timer := time.NewTimer(n.maxHold)
	defer timer.Stop()
	select {
	case <-h.release:
	case <-timer.C:
		n.unhold(h)
	case <-ctx.Done():
		n.unhold(h)
	}
	return time.Since(start)
}

// unhold takes a held request off the list, unless a release did.
func (n *faultNet) unhold(h *heldRequest) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held = slices.DeleteFunc(n.held, func(x *heldRequest) bool { return x == h })
}

// keepCopy holds a copy of a forwarded request, to be forwarded again
// once after more requests to its node were forwarded (or at heal).
func (n *faultNet) keepCopy(req *proxied, after int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.held = append(n.held, &heldRequest{to: req.to, after: n.passed[req.to] + after, copy: req})
}

// forwardResult is a node's answer to a forwarded request.
type forwardResult struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func (r forwardResult) outcome() string {
	if r.err != nil {
		return "error " + r.err.Error()
	}
	return fmt.Sprint(r.status)
}

// forward sends a request to its node as it came, Host header included
// (signatures cover it), counts it as passed and releases what was held
// for it.
func (n *faultNet) forward(ctx context.Context, req *proxied) forwardResult {
	defer n.passedOne(req.to)
	ctx, cancel := context.WithTimeout(ctx, proxyForwardTimeout)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, req.method, "http://"+req.target+req.uri, bytes.NewReader(req.body))
	if err != nil {
		return forwardResult{err: err}
	}
	out.Header = req.header.Clone()
	for _, h := range hopHeaders() {
		out.Header.Del(h)
	}
	out.Host = req.host
	if len(req.body) == 0 {
		out.Body, out.ContentLength = http.NoBody, 0
	}
	resp, err := n.forwarder.Do(out)
	if err != nil {
		return forwardResult{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, proxyMaxBody))
	if err != nil {
		return forwardResult{err: fmt.Errorf("read the answer: %w", err)}
	}
	return forwardResult{status: resp.StatusCode, header: resp.Header, body: body}
}

// passedOne counts a request forwarded to node and releases the held
// requests whose turn came.
func (n *faultNet) passedOne(node string) {
	n.mu.Lock()
	n.passed[node]++
	var due []*heldRequest
	n.held = slices.DeleteFunc(n.held, func(h *heldRequest) bool {
		if h.to == node && n.passed[node] >= h.after {
			due = append(due, h)
			return true
		}
		return false
	})
	n.mu.Unlock()
	for _, h := range due {
		n.releaseHeld(h)
	}
}

// relay answers the sender with a node's answer, or 502 when there was
// none (the node is down or did not answer in time).
func (n *faultNet) relay(w http.ResponseWriter, res forwardResult) {
	if res.err != nil {
		writeProxyError(w, http.StatusBadGateway, "proxy: the node did not answer: "+res.err.Error())
		return
	}
	for k, vs := range res.header {
		if !slices.Contains(hopHeaders(), k) {
			w.Header()[k] = vs
		}
	}
	w.WriteHeader(res.status)
	_, _ = w.Write(res.body)
}

func hopHeaders() []string {
	return []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}
}

func writeProxyError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeProxyError(w, http.StatusBadGateway, "proxy: fault drop")
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

// waitFor waits d, or until ctx ends; it reports whether d passed. The
// wait is the injected fault itself, not a wait for a condition.
func waitFor(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// describeRequest names a request for the trace: the activity's type and
// its object's (with the log index of an announced ledger entry), or the
// path of a GET.
func describeRequest(method, path string, body []byte) string {
	if method != http.MethodPost {
		return method + " " + path
	}
	var a struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	if json.Unmarshal(body, &a) != nil || a.Type == "" {
		return "POST " + path
	}
	var o struct {
		Type     string `json:"type"`
		LogIndex *int64 `json:"logIndex"`
	}
	if json.Unmarshal(a.Object, &o) != nil || o.Type == "" {
		return a.Type
	}
	if o.LogIndex != nil {
		return fmt.Sprintf("%s(%s#%d)", a.Type, o.Type, *o.LogIndex)
	}
	return fmt.Sprintf("%s(%s)", a.Type, o.Type)
}

// faultTrace is the compact record of one seed: its steps (actions and
// fault windows) in order, and the latest request faults.
type faultTrace struct {
	mu       sync.Mutex
	start    time.Time
	steps    []string
	requests []string // a ring of the latest maxTraceRequests
	next     int
	counts   map[faultKind]int
}

// Bounds of a trace.
const (
	maxTraceSteps    = 4000
	maxTraceRequests = 300
)

func newFaultTrace() *faultTrace {
	return &faultTrace{start: time.Now(), counts: map[faultKind]int{}}
}

func (tr *faultTrace) stamp() string {
	return fmt.Sprintf("+%6.3fs", time.Since(tr.start).Seconds())
}

// step records an action or a fault window.
func (tr *faultTrace) step(format string, args ...any) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if len(tr.steps) < maxTraceSteps {
		tr.steps = append(tr.steps, tr.stamp()+" "+fmt.Sprintf(format, args...))
	}
}

// request records a fault a proxy injected; count is false for what
// became of a fault counted before.
func (tr *faultTrace) request(kind faultKind, line string, count bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if count {
		tr.counts[kind]++
	}
	line = tr.stamp() + " " + line
	if len(tr.requests) < maxTraceRequests {
		tr.requests = append(tr.requests, line)
		return
	}
	tr.requests[tr.next] = line
	tr.next = (tr.next + 1) % maxTraceRequests
}

// summary counts the request faults by kind.
func (tr *faultTrace) summary() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var parts []string
	for _, k := range allFaultKinds() {
		if c := tr.counts[k]; c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, c))
		}
	}
	if len(parts) == 0 {
		return "no request faults"
	}
	return "request faults: " + strings.Join(parts, ", ")
}

// String writes the whole trace.
func (tr *faultTrace) String() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var b strings.Builder
	b.WriteString("steps (actions and fault windows):\n")
	for _, s := range tr.steps {
		b.WriteString("  " + s + "\n")
	}
	fmt.Fprintf(&b, "latest request faults (at most %d):\n", maxTraceRequests)
	ordered := append(slices.Clone(tr.requests[tr.next:]), tr.requests[:tr.next]...)
	for _, s := range ordered {
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}
