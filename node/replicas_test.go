package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/store"
)

// quickSync makes replica checks fast enough for tests.
var quickSync = cases.SyncTiming{IdleMin: 200 * time.Millisecond, IdleMax: time.Second,
	RetryMin: 100 * time.Millisecond, RetryMax: 500 * time.Millisecond}

// replicaPair is a vendor's node hosting a case and a finder's node that
// replicates it and can be stopped and started again on the same address.
type replicaPair struct {
	t              testing.TB
	vendor, finder *testNode
	finderDir      string
	finderAddr     string
	caseID         string
	// within bounds inStep's wait; 20 seconds when zero.
	within time.Duration
}

func newReplicaPair(t testing.TB) *replicaPair {
	t.Helper()
	p := &replicaPair{t: t, finderDir: t.TempDir(), finderAddr: freeAddr(t)}
	p.startFinder()
	p.vendor = startNodeWith(t, Config{Retry: fastRetry(), ReplicaSync: quickSync}, "vendor:Organization")
	offerID := p.finder.submit(t, "finder", reportOffer(p.vendor.actorID("vendor"), 1))
	waitFor(t, "the report at the vendor", func() bool { return countType(p.vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	p.vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`,
		offerID, p.finder.actorID("finder")))
	p.caseID = p.vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	p.inStep("the case opened")
	return p
}

func (p *replicaPair) startFinder() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.finderAddr)
	if err != nil {
		p.t.Fatalf("listen on %s: %v", p.finderAddr, err)
	}
	p.finder = startNodeConfig(p.t, p.finderDir, ln, Config{Retry: fastRetry(), ReplicaSync: quickSync}, "finder:Person")
}

// note has the vendor add a note to the case and returns the ledger
// length it waits for at the vendor.
func (p *replicaPair) note(text string) int64 {
	p.t.Helper()
	before := p.vendor.cases(p.t)[0].LedgerLength
	p.vendor.submit(p.t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":%q},"target":%q,"context":%q}`,
		text, p.caseID, p.caseID))
	p.vendor.oneCase(p.t, "the note at the vendor", func(c api.Case) bool { return c.LedgerLength == before+1 })
	return before + 1
}

// loseDeliveriesToFinder dead-letters every delivery the vendor's node
// still has for the finder: the announcements are lost for good.
func (p *replicaPair) loseDeliveriesToFinder() int {
	p.t.Helper()
	ctx := context.Background()
	lost := 0
	for after := uint64(0); ; {
		pending, next, err := p.vendor.db.PendingDeliveries(ctx, after, 1000)
		if err != nil {
			p.t.Fatal(err)
		}
		for _, d := range pending {
			if d.Recipient == p.finder.actorID("finder") {
				if err := p.vendor.db.DeadLetter(ctx, d.ID, "lost on purpose by the test"); err != nil {
					p.t.Fatal(err)
				}
				lost++
			}
		}
		if next == 0 || len(pending) == 0 {
			return lost
		}
		after = next
	}
}

// inStep waits until the finder's replica holds exactly the vendor's
// ledger and says it is in sync.
func (p *replicaPair) inStep(what string) {
	p.t.Helper()
	host := p.vendor.cases(p.t)[0]
	within := p.within
	if within == 0 {
		within = 20 * time.Second
	}
	waitWithin(p.t, within, what+": the finder's replica at the vendor's tail", func() bool {
		cs := p.finder.cases(p.t)
		return len(cs) == 1 && cs[0].LedgerLength == host.LedgerLength && cs[0].TailHash == host.TailHash &&
			p.replicaStatus().State == cases.ReplicaInSync
	})
}

func (p *replicaPair) replicaStatus() cases.ReplicaStatus {
	p.t.Helper()
	d := p.finder.caseDetail(p.t, p.caseID)
	raw, _ := json.Marshal(d["replica"])
	var st cases.ReplicaStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		p.t.Fatalf("replica status %s: %v", raw, err)
	}
	return st
}

// hostActivities counts what the case's Case Actor has sent.
func (p *replicaPair) hostActivities() int {
	p.t.Helper()
	caseActor := p.vendor.cases(p.t)[0].CaseActor
	name := caseActor[strings.LastIndex(caseActor, "/")+1:]
	n := 0
	for cursor := ""; ; {
		items, next, err := p.vendor.db.OutboxPage(context.Background(), name, cursor, 1000)
		if err != nil {
			p.t.Fatal(err)
		}
		n += len(items)
		if next == "" {
			return n
		}
		cursor = next
	}
}

// TestReplicaFetchesWhatItMissed loses the announcements of 50 entries
// recorded while the finder's node was down: the next announcement shows
// the gap, and the finder's node fetches what it lacks from the Case
// Actor's ledger with one request, which costs the host no activity
// beyond those of the note.
func TestReplicaFetchesWhatItMissed(t *testing.T) {
	p := newReplicaPair(t)
	p.finder.stop()
	const down = 50
	for i := range down {
		p.note(fmt.Sprintf("while the finder is down %d", i))
	}
	if lost := p.loseDeliveriesToFinder(); lost != down {
		t.Fatalf("lost %d deliveries, want the %d announcements", lost, down)
	}
	p.startFinder()
	sent := p.hostActivities()
	p.note("after the restart")
	p.inStep("after one more entry")
	// The note costs its announcement and its acknowledgement (GK) to
	// the vendor; the repair costs nothing.
	if got := p.hostActivities() - sent; got != 2 {
		t.Errorf("the host sent %d activities for one note and the repair, want 2 (the note's announcement and GK): a repair must cost the host nothing", got)
	}
	pages := p.vendor.metricValue(t, ledgerPagesServed)
	if pages < 1 || pages > 3 {
		t.Errorf("the finder fetched %v ledger pages, want one for the gap (and at most a couple of checks of the tail)", pages)
	}
}

// TestReplicaFindsAMissingTail loses the announcements of the last
// entries of a case: no later entry reveals the gap, and the finder's
// node finds it by checking the Case Actor's ledger.
func TestReplicaFindsAMissingTail(t *testing.T) {
	p := newReplicaPair(t)
	p.finder.stop()
	for i := range 3 {
		p.note(fmt.Sprintf("last words %d", i))
	}
	if lost := p.loseDeliveriesToFinder(); lost != 3 {
		t.Fatalf("lost %d deliveries, want the 3 announcements", lost)
	}
	p.startFinder()
	p.inStep("with no entry after the lost ones")
}

// TestReporterSeesTheCaseItsReportOpened checks the reporter's own record
// of a report it submitted: once its node holds the case that the
// report's validation opened, the report names that case.
func TestReporterSeesTheCaseItsReportOpened(t *testing.T) {
	p := newReplicaPair(t)
	status, body := p.finder.api(t, http.MethodGet, "/api/reports?actor=finder", "")
	if status != http.StatusOK {
		t.Fatalf("report list: %d %s", status, body)
	}
	var page api.ReportPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Reports) != 1 || page.Reports[0].Role != "reporter" || page.Reports[0].Case != p.caseID {
		t.Errorf("the finder's reports = %+v, want its report in case %s", page.Reports, p.caseID)
	}
}

// TestReplicaBeingRebuiltSaysSo asks for the rebuild of a replica in step
// while the Case Actor's host is down, so that the rebuild cannot finish:
// the API, the dashboard and the metrics say the copy is being replaced,
// not that it forked.
func TestReplicaBeingRebuiltSaysSo(t *testing.T) {
	p := newReplicaPair(t)
	p.vendor.stop()
	status, body := p.finder.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(p.caseID)+"/resync", `{"rebuild":true}`)
	if status != http.StatusOK {
		t.Fatalf("resync with rebuild: %d %s", status, body)
	}
	var out api.Resync
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Replica.State != cases.ReplicaRebuilding || out.Replica.Fork != nil || !strings.Contains(out.Replica.Doing, "replacing this node's copy") {
		t.Errorf("resync's answer = %+v, want a replica being rebuilt", out.Replica)
	}
	if st := p.replicaStatus(); st.State != cases.ReplicaRebuilding {
		t.Errorf("the case's replica status = %+v, want rebuilding", st)
	}
	if got := p.finder.metricValue(t, `vultron_replicas_diverging{state="forked"}`); got != 1 {
		t.Errorf("forked replicas in /metrics while rebuilding = %v, want 1: the copy is not known to agree", got)
	}
	b := newBrowser(t, p.finder.url)
	b.login(p.finder)
	if list := b.get("/"); !strings.Contains(list, `replica-rebuilding`) {
		t.Errorf("the dashboard's case list does not show the rebuild:\n%s", list)
	}
	page := b.get("/ui/cases/" + url.PathEscape(p.caseID))
	if !strings.Contains(page, "is replacing its copy of the case with the Case Actor's ledger, as an operator asked") || strings.Contains(page, "in step with the Case Actor") {
		t.Errorf("the dashboard's case page does not show the rebuild:\n%s", page)
	}
}

// TestForkedReplicaStopsUntilRebuilt makes the finder's copy of a case
// differ from the Case Actor's ledger: its node reports the fork, applies
// nothing more to the case, and takes the Case Actor's ledger again only
// when an operator asks for a rebuild.
func TestForkedReplicaStopsUntilRebuilt(t *testing.T) {
	p := newReplicaPair(t)
	ctx := context.Background()
	// The finder's node now believes the entry it holds last has another
	// hash than the one the Case Actor recorded.
	err := p.finder.db.Update(ctx, func(tx *store.Tx) error {
		b, err := tx.Case(p.caseID)
		if err != nil {
			return err
		}
		var r ledger.Replica
		if err := json.Unmarshal(b.Get([]byte("replica")), &r); err != nil {
			return err
		}
		r.Tail = strings.Repeat("0", 64)
		raw, err := json.Marshal(r)
		if err != nil {
			return err
		}
		return b.Put([]byte("replica"), raw)
	})
	if err != nil {
		t.Fatal(err)
	}
	status, body := p.finder.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(p.caseID)+"/resync", "")
	if status != http.StatusOK {
		t.Fatalf("resync: %d %s", status, body)
	}
	// The answer is the check's outcome, not the state before it: the
	// replica was said to be in step while the check that found the fork
	// had yet to run.
	var answer api.Resync
	if err := json.Unmarshal(body, &answer); err != nil {
		t.Fatal(err)
	}
	if answer.Replica.State != cases.ReplicaForked {
		t.Errorf("resync's answer = %+v, want the fork the check found", answer.Replica)
	}
	waitFor(t, "the fork reported", func() bool { return p.replicaStatus().State == cases.ReplicaForked })
	st := p.replicaStatus()
	if st.Fork == nil || st.Fork.Index != 1 || !strings.Contains(st.Doing, "--rebuild") || !strings.Contains(st.Fork.Reason, "differ") {
		t.Errorf("forked status = %+v, want the fork at entry 1 and what to do", st)
	}
	if got := p.finder.metricValue(t, `vultron_replicas_diverging{state="forked"}`); got != 1 {
		t.Errorf("forked replicas in /metrics = %v, want 1", got)
	}
	// The dashboard says so on the case list and the case page, and
	// offers the way out.
	b := newBrowser(t, p.finder.url)
	b.login(p.finder)
	if list := b.get("/"); !strings.Contains(list, `replica-forked`) {
		t.Errorf("the dashboard's case list does not show the fork:\n%s", list)
	}
	casePath := "/ui/cases/" + url.PathEscape(p.caseID)
	page := b.get(casePath)
	if !strings.Contains(page, "differs from the Case Actor's ledger at entry 1") || !strings.Contains(page, `value="rebuild"`) {
		t.Errorf("the dashboard's case page does not show the fork and the rebuild:\n%s", page)
	}

	// While forked, the finder's node applies nothing more.
	held := p.finder.cases(t)[0].LedgerLength
	want := p.note("while forked")
	waitFor(t, "the announcement at the finder", func() bool {
		for _, it := range p.finder.inboxItems(t, "finder") {
			if it["type"] == "Announce" && strings.Contains(fmt.Sprint(it["object"]), fmt.Sprintf("/ledger/%d", want-1)) {
				return true
			}
		}
		return false
	})
	if got := p.finder.cases(t)[0].LedgerLength; got != held {
		t.Fatalf("a forked replica applied an entry: length %d, was %d", got, held)
	}

	// A plain resync finds the fork still there; a rebuild takes the Case
	// Actor's ledger.
	status, body = p.finder.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(p.caseID)+"/resync", "")
	if err := json.Unmarshal(body, &answer); status != http.StatusOK || err != nil || answer.Replica.State != cases.ReplicaForked {
		t.Errorf("resync of a forked replica: %d %s, want the fork found again", status, body)
	}
	waitFor(t, "the fork found again", func() bool { return p.replicaStatus().State == cases.ReplicaForked })
	// The rebuild, from the dashboard's button.
	b.post(casePath, url.Values{"csrf": {csrfOf(t, page)}, "action": {"rebuild"}})
	p.inStep("after the rebuild")
	if page := b.get(casePath); !strings.Contains(page, "in step with the Case Actor") {
		t.Errorf("the dashboard's case page after the rebuild:\n%s", page)
	}
	if got := p.finder.metricValue(t, `vultron_replicas_diverging{state="forked"}`); got != 0 {
		t.Errorf("forked replicas in /metrics after the rebuild = %v, want 0", got)
	}

	// The host's own copy is the reference: nothing to resync there.
	status, body = p.vendor.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(p.caseID)+"/resync", "")
	if status != http.StatusConflict || !strings.Contains(string(body), "hosts case") {
		t.Errorf("resync on the host: %d %s, want 409", status, body)
	}
}

// ledgerPagesServed is the series of /metrics that counts the ledger pages
// a node served.
const ledgerPagesServed = `vultron_http_requests_total{method="GET",route="/cases/{cid}/ledger",status="200"}`

// metricValue returns the value of one series of the node's /metrics.
func (tn *testNode) metricValue(t testing.TB, series string) float64 {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/metrics", "")
	if status != http.StatusOK {
		t.Fatalf("metrics: %d %s", status, body)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err != nil {
				t.Fatalf("metric %s: %q", series, rest)
			}
			return v
		}
	}
	return 0
}

// holdingProxy forwards requests to a node and, while hold is set, answers
// 503 to every POST to an inbox: announcements do not get through, fetches
// and the node's own API do.
type holdingProxy struct {
	hold   atomic.Bool
	target *url.URL
}

func (h *holdingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.hold.Load() && r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/inbox") {
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"held back by the test"}`, http.StatusServiceUnavailable)
		return
	}
	httputil.NewSingleHostReverseProxy(h.target).ServeHTTP(w, r)
}

// TestActingRightAfterAnotherNode has the finder answer an embargo
// proposal whose announcement has not reached its node yet: the finder's
// copy of the case knows no proposal, so its node brings the copy to the
// Case Actor's tail and sends the answer, instead of refusing it. When the
// Case Actor's node does not answer, the refusal says the copy may be
// behind.
func TestActingRightAfterAnotherNode(t *testing.T) {
	nodeLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxy := &holdingProxy{target: &url.URL{Scheme: "http", Host: nodeLn.Addr().String()}}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	finder := startNodeConfig(t, t.TempDir(), nodeLn, Config{Retry: fastRetry(), ReplicaSync: quickSync, PublicURL: front.URL}, "finder:Person")
	vendor := startNodeWith(t, Config{Retry: fastRetry(), ReplicaSync: quickSync}, "vendor:Organization")
	p := &replicaPair{t: t, vendor: vendor, finder: finder}
	offerID := finder.submit(t, "finder", reportOffer(vendor.actorID("vendor"), 1))
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
	p.caseID = vendor.oneCase(t, "the case at the vendor", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	p.inStep("the case opened")

	proxy.hold.Store(true)
	end := time.Now().Add(45 * 24 * time.Hour).UTC().Format(time.RFC3339)
	proposal := vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
		time.Now().UTC().Format(time.RFC3339), end, p.caseID))
	vendor.oneCase(t, "the proposal at the vendor", func(c api.Case) bool { return c.EMState == "PROPOSED" })
	if got := finder.cases(t)[0].EMState; got == "PROPOSED" {
		t.Fatal("the proposal reached the finder's node although its announcement was held back")
	}
	status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, proposal, p.caseID))
	if status != http.StatusCreated {
		t.Fatalf("accepting a proposal the finder's copy had not seen yet: %d %s, want 201", status, body)
	}
	vendor.oneCase(t, "the finder's acceptance recorded", func(c api.Case) bool {
		_, _, _, pec := participantOf(c, finder.actorID("finder"))
		return pec == "SIGNATORY" && c.LedgerLength == 4
	})
	proxy.hold.Store(false)
	p.inStep("after the announcements got through")

	// With the Case Actor's node gone, a refusal by the finder's copy says
	// the copy may be behind and why it could not be checked.
	vendor.stop()
	status, body = finder.api(t, http.MethodPost, "/actors/finder/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, proposal, p.caseID))
	if status != http.StatusConflict || !strings.Contains(string(body), "may lack what the Case Actor recorded since") || !strings.Contains(string(body), "could not be checked") {
		t.Errorf("a refusal while the Case Actor's node is down: %d %s, want 409 saying the copy may be behind", status, body)
	}
}

// TestReplicaOfARemovedParticipantEnds removes the finder from the case
// while its node is down and loses the announcement of the removal: the
// finder's node goes on checking the case's ledger, which the Case Actor
// no longer serves it. After a bounded number of such answers it stops,
// and says so in the API and on the dashboard; a resync checks again.
func TestReplicaOfARemovedParticipantEnds(t *testing.T) {
	p := newReplicaPair(t)
	finderID := p.finder.actorID("finder")
	p.finder.stop()
	part, _, _, _ := participantOf(p.vendor.cases(t)[0], finderID)
	if part == "" {
		t.Fatal("the finder is no participant of the case")
	}
	before := p.vendor.cases(t)[0].LedgerLength
	p.vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"target":%q,"context":%q}`, part, p.caseID, p.caseID))
	p.vendor.oneCase(t, "the removal at the vendor", func(c api.Case) bool { return c.LedgerLength == before+1 })
	if lost := p.loseDeliveriesToFinder(); lost < 1 {
		t.Fatalf("lost %d deliveries, want the removal's announcement", lost)
	}
	served := p.vendor.metricValue(t, ledgerPagesRefused)
	p.startFinder()
	waitWithin(t, 30*time.Second, "the finder's replica ended", func() bool { return p.replicaStatus().State == cases.ReplicaEnded })
	st := p.replicaStatus()
	if !st.NextCheck.IsZero() || !strings.Contains(st.Doing, "refused this node's actor its ledger") || !strings.Contains(st.LastError, "404") {
		t.Errorf("ended status = %+v, want no check scheduled and why", st)
	}
	refused := p.vendor.metricValue(t, ledgerPagesRefused) - served
	if refused < cases.DefaultEndAfter || refused > cases.DefaultEndAfter+1 {
		t.Errorf("the Case Actor's node refused %v fetches of its ledger, want %d before the finder's node stopped", refused, cases.DefaultEndAfter)
	}
	b := newBrowser(t, p.finder.url)
	b.login(p.finder)
	if list := b.get("/"); !strings.Contains(list, `replica-ended`) {
		t.Errorf("the dashboard's case list does not show the ended replica:\n%s", list)
	}
	if page := b.get("/ui/cases/" + url.PathEscape(p.caseID)); !strings.Contains(page, "This node stopped following the case") || strings.Contains(page, "in step with the Case Actor") {
		t.Errorf("the dashboard's case page does not show the ended replica:\n%s", page)
	}
	status, body := p.finder.api(t, http.MethodPost, "/api/cases/"+url.PathEscape(p.caseID)+"/resync", "")
	if status != http.StatusOK {
		t.Fatalf("resync: %d %s", status, body)
	}
	waitFor(t, "the resync's check refused", func() bool { return p.vendor.metricValue(t, ledgerPagesRefused)-served > refused })
}

const ledgerPagesRefused = `vultron_http_requests_total{method="GET",route="/cases/{cid}/ledger",status="404"}`
