package federation_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/ledger"
)

// The tests below check the fault harness itself, without nodes: that the
// proxy injects each fault as described, that the invariant checker finds
// each kind of divergence, and that a plan follows from its seed alone.

// recordingBackend stands in for a node behind a proxy: it counts the
// bodies it receives and the Host headers they came with, and answers 202.
type recordingBackend struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   map[string]int // body → times received
	hosts map[string]bool
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	b := &recordingBackend{got: map[string]int{}, hosts: map[string]bool{}}
	b.srv = startLoopbackServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got[r.Method+" "+r.URL.Path+" "+string(body)]++
		b.hosts[r.Host] = true
		b.mu.Unlock()
		w.Header().Set("X-Backend", "yes")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *recordingBackend) count(key string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.got[key]
}

// proxyRig is a fault network with one node ("node", the backend) behind
// a proxy, and a second registered node ("sender") whose keyId signs the
// test's requests.
type proxyRig struct {
	net     *faultNet
	backend *recordingBackend
	public  string // the node's proxy
	keyID   string // a key of the sender
	client  *http.Client
}

func newProxyRig(t *testing.T) *proxyRig {
	t.Helper()
	b := newRecordingBackend(t)
	n := newFaultNet(t)
	n.maxHold = 50 * time.Millisecond
	front := n.front(t)
	public := front("node", strings.TrimPrefix(b.srv.URL, "http://"))
	sender := front("sender", "127.0.0.1:1") // never forwarded to here
	return &proxyRig{net: n, backend: b, public: public, keyID: sender + "/actors/alice#main-key",
		client: &http.Client{Timeout: 10 * time.Second}}
}

// post sends a POST to the node's inbox through the proxy, signed by the
// sender (only the keyId matters to the proxy) or not; status is 0 when
// the connection closed unanswered.
func (r *proxyRig) post(t *testing.T, body string, signed bool) int {
	t.Helper()
	return r.send(t, http.MethodPost, "/actors/node/inbox", strings.NewReader(body), signed)
}

// get sends a GET through the proxy, signed by the sender or not.
func (r *proxyRig) get(t *testing.T, path string, signed bool) int {
	t.Helper()
	return r.send(t, http.MethodGet, path, nil, signed)
}

func (r *proxyRig) send(t *testing.T, method, path string, body io.Reader, signed bool) int {
	t.Helper()
	req, err := http.NewRequest(method, r.public+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if signed {
		req.Header.Set("Signature", fmt.Sprintf(`keyId="%s",algorithm="rsa-sha256",headers="(request-target) host date",signature="c2ln"`, r.keyID))
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestFaultProxySender(t *testing.T) {
	r := newProxyRig(t)
	host := strings.TrimPrefix(strings.TrimSuffix(r.keyID, "/actors/alice#main-key"), "http://")
	tests := []struct {
		name   string
		header http.Header
		want   string
	}{
		{"draft-cavage Signature", http.Header{"Signature": {`keyId="http://` + host + `/actors/alice#main-key",algorithm="rsa-sha256",signature="x"`}}, "sender"},
		{"RFC 9421 Signature-Input", http.Header{"Signature-Input": {`sig1=("@method" "@target-uri");created=1;keyid="http://` + host + `/actors/case-x#main-key"`}}, "sender"},
		{"key of a host outside the cluster", http.Header{"Signature": {`keyId="http://127.0.0.1:9/actors/a#main-key"`}}, ""},
		{"unsigned", http.Header{}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.net.senderOf(tc.header); got != tc.want {
				t.Errorf("senderOf = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFaultProxyPassesThrough checks that with faults off the node gets
// the request as sent, Host header included (signatures cover it), and
// the sender gets the node's answer.
func TestFaultProxyPassesThrough(t *testing.T) {
	r := newProxyRig(t)
	if got := r.post(t, `{"n":1}`, true); got != http.StatusAccepted {
		t.Fatalf("POST through the proxy: %d, want the node's 202", got)
	}
	if got := r.backend.count(`POST /actors/node/inbox {"n":1}`); got != 1 {
		t.Errorf("the node received the POST %d times, want once", got)
	}
	if want := strings.TrimPrefix(r.public, "http://"); !r.backend.hosts[want] {
		t.Errorf("the node saw Host headers %v, want the public host %s", r.backend.hosts, want)
	}
}

// TestFaultProxyKinds sends twelve signed POSTs concurrently with one
// request kind at rate 1 and checks what the sender and the node saw.
func TestFaultProxyKinds(t *testing.T) {
	const n = 12
	tests := []struct {
		kind faultKind
		// check gets the statuses the sender saw and how many times the
		// node received each request, after heal.
		check func(t *testing.T, statuses []int, received []int)
	}{
		{faultDrop, func(t *testing.T, statuses, received []int) {
			for i := range n {
				if (statuses[i] != 0 && statuses[i] != http.StatusBadGateway) || received[i] != 0 {
					t.Errorf("request %d: sender saw %d, node received it %d times; want closed or 502, never forwarded", i, statuses[i], received[i])
				}
			}
			if !slices.Contains(statuses, 0) || !slices.Contains(statuses, http.StatusBadGateway) {
				t.Errorf("statuses %v: want both forms of drop", statuses)
			}
		}},
		{faultDelay, func(t *testing.T, statuses, received []int) {
			for i := range n {
				if statuses[i] != http.StatusAccepted || received[i] != 1 {
					t.Errorf("request %d: sender saw %d, node received it %d times; want 202, once", i, statuses[i], received[i])
				}
			}
		}},
		{faultDup, func(t *testing.T, statuses, received []int) {
			for i := range n {
				if statuses[i] != http.StatusAccepted || received[i] != 2 {
					t.Errorf("request %d: sender saw %d, node received it %d times; want 202, twice", i, statuses[i], received[i])
				}
			}
		}},
		{faultReorder, func(t *testing.T, statuses, received []int) {
			twice := 0
			for i := range n {
				if statuses[i] != http.StatusAccepted || received[i] < 1 || received[i] > 2 {
					t.Errorf("request %d: sender saw %d, node received it %d times; want 202, once or (a held copy) twice", i, statuses[i], received[i])
				}
				if received[i] == 2 {
					twice++
				}
			}
			if twice == 0 || twice == n {
				t.Errorf("%d of %d requests were forwarded again: want both forms of reorder", twice, n)
			}
		}},
		{fault413, refusedCheck(http.StatusRequestEntityTooLarge)},
		{fault500, refusedCheck(http.StatusInternalServerError)},
		{faultTimeout, refusedCheck(http.StatusGatewayTimeout)},
	}
	for _, tc := range tests {
		t.Run(string(tc.kind), func(t *testing.T) {
			r := newProxyRig(t)
			trace := newFaultTrace()
			r.net.begin(7, faultKinds{tc.kind: true}, 1, trace)
			statuses := make([]int, n)
			var wg sync.WaitGroup
			// Announcements, which every kind meets (a 413 only them).
			body := func(i int) string { return fmt.Sprintf(`{"type":"Announce","n":%d}`, i) }
			for i := range n {
				wg.Add(1)
				go func() { defer wg.Done(); statuses[i] = r.post(t, body(i), true) }()
			}
			wg.Wait()
			r.net.heal()
			received := make([]int, n)
			for i := range n {
				received[i] = r.backend.count("POST /actors/node/inbox " + body(i))
			}
			tc.check(t, statuses, received)
			if !strings.Contains(trace.summary(), fmt.Sprintf("%s %d", tc.kind, n)) {
				t.Errorf("trace summary %q: want %d faults of kind %s", trace.summary(), n, tc.kind)
			}
		})
	}
}

// refusedCheck expects every request answered with status, some forwarded
// anyway and some not.
func refusedCheck(status int) func(t *testing.T, statuses, received []int) {
	return func(t *testing.T, statuses, received []int) {
		forwarded := 0
		for i := range statuses {
			if statuses[i] != status || received[i] > 1 {
				t.Errorf("request %d: sender saw %d, node received it %d times; want %d, at most once", i, statuses[i], received[i], status)
			}
			forwarded += received[i]
		}
		if forwarded == 0 || forwarded == len(statuses) {
			t.Errorf("%d of %d requests reached the node: want both forwarded and unforwarded ones", forwarded, len(statuses))
		}
	}
}

// TestFaultProxyScope checks that request faults spare what nodes do not
// send each other (unsigned requests) and that a cut node fails both ways.
func TestFaultProxyScope(t *testing.T) {
	r := newProxyRig(t)
	r.net.begin(3, faultKinds{faultDrop: true}, 1, newFaultTrace())
	if got := r.get(t, "/actors/node", false); got != http.StatusAccepted {
		t.Errorf("an unsigned GET with every eligible request dropped: %d, want it forwarded (the node's 202)", got)
	}
	if got := r.get(t, "/actors/node", true); got != 0 && got != http.StatusBadGateway {
		t.Errorf("a signed GET with every eligible request dropped: %d, want it closed or 502", got)
	}
	if got := r.post(t, `{"unsigned":1}`, false); got != 0 && got != http.StatusBadGateway {
		t.Errorf("an unsigned inbox POST with every eligible request dropped: %d, want it closed or 502", got)
	}

	r.net.begin(3, faultKinds{}, 1, newFaultTrace())
	r.net.setCut("sender", true)
	if got := r.post(t, `{"from-cut":1}`, true); got != 0 && got != http.StatusBadGateway {
		t.Errorf("a POST signed by a cut-off node: %d, want it closed or 502", got)
	}
	if got := r.post(t, `{"unsigned-to-uncut":1}`, false); got != http.StatusAccepted {
		t.Errorf("an unsigned POST to a node that is not cut off: %d, want 202", got)
	}
	r.net.setCut("sender", false)
	r.net.setCut("node", true)
	if got := r.post(t, `{"to-cut":1}`, false); got != 0 && got != http.StatusBadGateway {
		t.Errorf("a POST to a cut-off node: %d, want it closed or 502", got)
	}
	r.net.heal()
	if got := r.post(t, `{"healed":1}`, true); got != http.StatusAccepted {
		t.Errorf("a POST after heal: %d, want 202", got)
	}
	for _, body := range []string{`{"from-cut":1}`, `{"to-cut":1}`} {
		if got := r.backend.count("POST /actors/node/inbox " + body); got != 0 {
			t.Errorf("the node received %s %d times through a cut, want never", body, got)
		}
	}
}

// checkerLedger builds a small valid ledger of a case: its creation and
// notes.
func checkerLedger(t *testing.T, caseID, caseActor string, notes int) []ledger.Entry {
	t.Helper()
	published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	genesis := ledger.GenesisHash(caseID, published, caseActor)
	create, err := json.Marshal(map[string]any{"@context": "https://www.w3.org/ns/activitystreams", "id": caseID + "/created",
		"type": "Create", "actor": caseActor, "context": caseID,
		"object": map[string]any{"id": caseID, "type": "VulnerabilityCase", "published": published.Format(time.RFC3339), "genesisHash": genesis}})
	if err != nil {
		t.Fatal(err)
	}
	e, err := ledger.NewEntry(caseID, 0, genesis, caseID+"/created", "create_case", create, published)
	if err != nil {
		t.Fatal(err)
	}
	entries := []ledger.Entry{e}
	for i := range notes {
		id := fmt.Sprintf("http://127.0.0.1:1/activities/%d", i)
		payload := []byte(fmt.Sprintf(`{"id":%q,"type":"Add","actor":"http://127.0.0.1:1/actors/vendor","object":{"type":"Note","content":"n%d"},"target":%q,"context":%q}`, id, i, caseID, caseID))
		e, err := ledger.NewEntry(caseID, int64(i+1), entries[i].EntryHash, id, "add_note_to_case", payload, published.Add(time.Duration(i+1)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return entries
}

// TestFaultInvariants feeds the checker a converged case and variations
// of it, each breaking one invariant, and checks it names that invariant.
func TestFaultInvariants(t *testing.T) {
	const caseID, caseActor = "http://127.0.0.1:1/cases/c1", "http://127.0.0.1:1/actors/case-c1"
	const finder = "http://127.0.0.1:2/actors/finder"
	host := checkerLedger(t, caseID, caseActor, 5)
	view := func(entries []ledger.Entry) clusterCase {
		return clusterCase{api.CaseDetail{Case: api.Case{ID: caseID, CaseActor: caseActor, EMState: "ACTIVE", PXAState: "pxa", LedgerLength: int64(len(entries)), TailHash: tailHash(entries),
			Participants: []clusterParticipant{{Actor: finder, ID: caseID + "/participants/f", Roles: []string{"finder", "reporter"}, RMState: "ACCEPTED", VFDState: "vfd"}}}}}
	}
	converged := func() *caseState {
		return &caseState{id: caseID, host: "vendor", hostView: view(host), ledger: host,
			replicas: []replicaState{{node: "finder", actor: finder, held: true, view: view(host), ledger: slices.Clone(host)}},
			sent:     []sentActivity{{id: host[3].LogObjectID, actor: "vendor", what: "a note"}, {id: "http://127.0.0.1:2/activities/refused", actor: "finder", what: "a refused note"}},
			refused:  map[string]string{"http://127.0.0.1:2/activities/refused": "not allowed"},
			dead:     map[string][]deliveryInfo{}}
	}
	// The same creation, and a different note at index 3: a fork.
	forked := append(slices.Clone(host[:3]), func() ledger.Entry {
		payload := []byte(fmt.Sprintf(`{"id":"http://127.0.0.1:1/activities/x","type":"Add","actor":"http://127.0.0.1:1/actors/vendor","object":{"type":"Note","content":"other"},"target":%q,"context":%q}`, caseID, caseID))
		e, err := ledger.NewEntry(caseID, 3, host[2].EntryHash, "http://127.0.0.1:1/activities/x", "add_note_to_case", payload, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return e
	}())
	tests := []struct {
		name   string
		change func(cs *caseState)
		want   []string // substrings of the violations, in order; none: converged
	}{
		{"converged", func(*caseState) {}, nil},
		{"replica behind", func(cs *caseState) {
			cs.replicas[0].ledger = host[:2]
			cs.replicas[0].view = view(host[:2])
			cs.dead["vendor"] = []deliveryInfo{{Activity: "http://127.0.0.1:1/activities/ann", Recipient: finder, OrderingKey: caseID, Attempts: 1, LastError: "peer answered 413"}}
		}, []string{"(a) node finder holds 2 of the host's 6 entries: 4 behind", "peer answered 413"}},
		{"replica missing", func(cs *caseState) { cs.replicas[0] = replicaState{node: "finder", actor: finder} },
			[]string{"(a) node finder holds no replica"}},
		{"replica serves less than it reports", func(cs *caseState) { cs.replicas[0].ledger = host[:5] },
			[]string{"(a) node finder reports 6 entries", "(a) node finder holds 5 of the host's 6 entries: 1 behind"}},
		{"recorded twice", func(cs *caseState) {
			again, err := ledger.NewEntry(caseID, 6, host[5].EntryHash, host[4].LogObjectID, host[4].EventType, host[4].PayloadSnapshot, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			cs.ledger = append(slices.Clone(host), again)
			cs.hostView = view(cs.ledger)
		}, []string{"(b) activity " + host[4].LogObjectID + " is recorded twice in the host's ledger: entries 4 and 6", "(a) node finder holds 6 of the host's 7 entries"}},
		{"lost", func(cs *caseState) {
			cs.sent = append(cs.sent, sentActivity{id: "http://127.0.0.1:2/activities/lost", actor: "finder", what: "step 9 a note"})
			cs.dead["finder"] = []deliveryInfo{{Activity: "http://127.0.0.1:2/activities/lost", Recipient: caseActor, Attempts: 1, LastError: "peer answered 413"}}
		}, []string{"(c) lost: step 9 a note (activity http://127.0.0.1:2/activities/lost) got 201 from finder's node", "finder dead-lettered it to " + caseActor}},
		{"forked replica", func(cs *caseState) {
			cs.replicas[0].ledger = forked
			cs.replicas[0].view = view(forked)
		}, []string{"(d) node finder: entry 3 is add_note_to_case"}},
		{"replica ahead", func(cs *caseState) {
			cs.ledger = host[:4]
			cs.hostView = view(host[:4])
		}, []string{"(d) node finder holds 6 entries, more than the host's 4"}},
		{"replica view differs", func(cs *caseState) {
			cs.replicas[0].view.Participants[0].RMState = "CLOSED"
			cs.replicas[0].view.EMState = "EXITED"
		}, []string{`(d) node finder: EM state is "EXITED", the host's "ACTIVE"`, "(d) node finder: participant " + finder}},
		{"replica diverged", func(cs *caseState) { cs.replicas[0].view.Diverged = "entry 3: not allowed" },
			[]string{"(d) node finder: its replica diverged: entry 3: not allowed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := converged()
			tc.change(cs)
			got := cs.violations()
			if len(tc.want) == 0 && len(got) > 0 {
				t.Fatalf("violations of a converged case:\n%s", strings.Join(got, "\n"))
			}
			all := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("violations lack %q:\n%s", w, all)
				}
			}
		})
	}
}

// TestFaultPlan checks that a plan follows from its seed and its kinds
// alone, opens one or two cases, bursts notes, and has kill and cut
// windows only when their kinds are on.
func TestFaultPlan(t *testing.T) {
	all, err := parseFaultKinds("all")
	if err != nil {
		t.Fatal(err)
	}
	render := func(p faultPlan) string {
		var b bytes.Buffer
		fmt.Fprintln(&b, p.receivers)
		for _, s := range p.steps {
			fmt.Fprintf(&b, "%s gap=%s\n", s, s.gap)
		}
		return b.String()
	}
	if render(newFaultPlan(42, all, nil)) != render(newFaultPlan(42, all, nil)) {
		t.Errorf("two plans of seed 42 differ")
	}
	if render(newFaultPlan(42, all, nil)) == render(newFaultPlan(43, all, nil)) {
		t.Errorf("seeds 42 and 43 give the same plan")
	}
	bursts, windows := 0, 0
	for seed := range int64(30) {
		p := newFaultPlan(seed, all, nil)
		if len(p.receivers) < 1 || len(p.receivers) > 2 {
			t.Errorf("seed %d opens %d cases, want 1 or 2", seed, len(p.receivers))
		}
		downs := 0
		for k, s := range p.steps {
			if s.untilBurst {
				downs++
				if s.op != opKill || s.actor != "finder" || k+1 == len(p.steps) || p.steps[k+1].op != opBurst || p.steps[k+1].count != downBurst || p.steps[k+1].actor != p.receivers[0] {
					t.Errorf("seed %d: %s is not the finder's kill followed by its case owner's burst of %d notes", seed, s, downBurst)
				}
			}
			switch s.op {
			case opBurst:
				if s.count < 10 || s.count > 50 {
					t.Errorf("seed %d: a burst of %d notes, want 10 to 50", seed, s.count)
				}
				bursts++
			case opKill, opCut:
				windows++
			}
		}
		if downs != 1 {
			t.Errorf("seed %d keeps the finder down during a burst %d times, want once", seed, downs)
		}
		for _, s := range newFaultPlan(seed, faultKinds{faultDup: true}, nil).steps {
			if s.op == opKill || s.op == opCut {
				t.Errorf("seed %d without kill and cut plans %s", seed, s)
			}
		}
	}
	if bursts < 30 || windows < 60 {
		t.Errorf("30 seeds with every kind plan %d bursts and %d windows; want at least one burst and two windows a seed on average", bursts, windows)
	}
	if _, err := parseFaultKinds("dup,bogus"); err == nil || !strings.Contains(err.Error(), `"bogus"`) {
		t.Errorf("parseFaultKinds(dup,bogus) = %v, want an error naming the unknown kind", err)
	}
	if got, _ := parseFaultKinds("kill, dup"); got.String() != "dup,kill" {
		t.Errorf("parseFaultKinds(kill, dup).String() = %q, want dup,kill", got)
	}
}

// TestFault413OnlyOnAnnouncements checks that the 413 the proxy plays
// meets announcements only: a participant's activity is no larger than
// what every node takes.
func TestFault413OnlyOnAnnouncements(t *testing.T) {
	r := newProxyRig(t)
	trace := newFaultTrace()
	r.net.begin(7, faultKinds{fault413: true}, 1, trace)
	for i := range 6 {
		if status := r.post(t, fmt.Sprintf(`{"type":"Create","n":%d}`, i), true); status != http.StatusAccepted {
			t.Errorf("activity %d: sender saw %d, want 202", i, status)
		}
	}
	r.net.heal()
	if s := trace.summary(); s != "no request faults" {
		t.Errorf("trace summary %q: want no fault on activities that are no announcements", s)
	}
}
