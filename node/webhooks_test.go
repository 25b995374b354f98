package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/webhook"
)

// webhookSink receives webhook documents, checks each signature with the
// node's secret, and fails with 500 while failing is set.
type webhookSink struct {
	t       *testing.T
	mu      sync.Mutex
	secret  []byte
	failing int // answer 503 with Retry-After to this many requests
	docs    []webhook.Document
	ids     map[string]int
	badSigs int
}

func (s *webhookSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing > 0 {
		s.failing--
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	sig := r.Header.Get(webhook.SignatureHeader)
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	var unix int64
	fmt.Sscan(ts, &unix)
	if s.secret == nil || sig != webhook.Sign(s.secret, body, time.Unix(unix, 0)) {
		s.badSigs++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var d webhook.Document
	if err := json.Unmarshal(body, &d); err != nil || d.ID != r.Header.Get(webhook.EventIDHeader) {
		s.badSigs++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	s.ids[d.ID]++
	s.docs = append(s.docs, d)
	w.WriteHeader(http.StatusNoContent)
}

func (s *webhookSink) snapshot() []webhook.Document {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]webhook.Document(nil), s.docs...)
}

// TestWebhooks checks that every case event of a node reaches its webhook
// once, in ledger order, signed, with the states after it — across a
// failing receiver and a restart of the node.
func TestWebhooks(t *testing.T) {
	sink := &webhookSink{t: t, ids: map[string]int{}}
	srv := httptest.NewServer(sink)
	defer srv.Close()

	finder := startNode(t, "finder:Person")
	dir := t.TempDir()
	extra := Config{Webhooks: []string{srv.URL + "/hook"},
		Retry: outbox.RetryPolicy{First: 50 * time.Millisecond, Max: 200 * time.Millisecond, Horizon: time.Minute}}
	vendor := startNodeConfig(t, dir, nil, extra, "vendor:Organization")
	secret, err := os.ReadFile(filepath.Join(dir, "webhook-secret"))
	if err != nil {
		t.Fatalf("the webhook secret file: %v", err)
	}
	if info, _ := os.Stat(filepath.Join(dir, "webhook-secret")); info.Mode().Perm() != 0o600 {
		t.Errorf("webhook-secret has mode %v, want 0600", info.Mode().Perm())
	}
	sink.mu.Lock()
	sink.secret = []byte(strings.TrimSpace(string(secret)))
	sink.failing = 3 // the first deliveries fail, then succeed
	sink.mu.Unlock()

	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Webhook test","content":"secret details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID))
	waitFor(t, "five events at the webhook", func() bool { return len(sink.snapshot()) == 5 })
	// The receiver has the fifth event a moment before its sender counts it.
	waitFor(t, "five events counted as delivered", func() bool { return vendor.webhooks.Stats().Delivered == 5 })
	if st := vendor.webhooks.Stats(); st.Retried != 3 || st.Delivered != 5 {
		t.Errorf("webhook stats %+v, want 5 delivered after 3 retries", st)
	}

	// Restart the vendor's node: delivery resumes after the last event
	// acknowledged, nothing is sent again.
	vendor.stop()
	http.DefaultClient.CloseIdleConnections() // connections to the stopped node
	ln, err := net.Listen("tcp", strings.TrimPrefix(vendor.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	vendor = startNodeConfig(t, dir, ln, extra, "vendor:Organization")
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"n"},"target":%q,"context":%q}`, caseID, caseID))
	// The restarted node sends its events in order from where it was
	// acknowledged: a duplicate would come before the note's, and count
	// as a second delivery.
	waitFor(t, "six events at the webhook", func() bool { return len(sink.snapshot()) >= 6 && vendor.webhooks.Stats().Delivered >= 1 })
	if st := vendor.webhooks.Stats(); st.Delivered != 1 {
		t.Errorf("the restarted node delivered %d webhook events (%+v), want the note's alone", st.Delivered, st)
	}

	docs := sink.snapshot()
	// The report's milestones come before the case's entries: received,
	// then validated (which opens the case).
	want := []string{"report_received", "report_validated", "create_case", "validate_report", "engage_case", "add_note_to_case"}
	if len(docs) != len(want) {
		t.Fatalf("%d documents, want %d", len(docs), len(want))
	}
	for i, d := range docs {
		switch {
		case i < 2:
			if d.Event != want[i] || d.Report == "" || d.LogIndex != nil {
				t.Errorf("document %d: %s of report %q (logIndex %v), want %s of the report and no logIndex", i, d.Event, d.Report, d.LogIndex, want[i])
			}
		case d.Event != want[i] || d.LogIndex == nil || *d.LogIndex != int64(i-2) || d.Case != caseID:
			t.Errorf("document %d: %s %v of %s, want %s #%d of %s", i, d.Event, d.LogIndex, d.Case, want[i], i-2, caseID)
		}
		if strings.Contains(string(d.State), "secret details") || strings.Contains(string(d.State), "Webhook test") {
			t.Errorf("document %d carries the report's text", i)
		}
	}
	if docs[1].Case != caseID {
		t.Errorf("the validation of the report names case %q, want the case it opened, %s", docs[1].Case, caseID)
	}
	var st struct {
		EM, PXA     string
		Participant struct{ Actor, RM string }
	}
	if err := json.Unmarshal(docs[4].State, &st); err != nil || st.Participant.Actor != vendorID || st.Participant.RM != "ACCEPTED" {
		t.Errorf("the engage event's state %s (%v), want the vendor at ACCEPTED", docs[4].State, err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	for id, n := range sink.ids {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
	if sink.badSigs != 0 {
		t.Errorf("%d requests with a bad signature or id", sink.badSigs)
	}
}

// TestWebhookReportMilestones checks that a ticket can follow a report
// from the moment it arrives: every RM milestone of a report, before a
// case exists and inside it, is an event on both nodes' webhooks, for the
// receiver's own steps and for the steps the other party told it of.
func TestWebhookReportMilestones(t *testing.T) {
	start := func(name, spec string) (*testNode, *webhookSink) {
		sink := &webhookSink{t: t, ids: map[string]int{}}
		srv := httptest.NewServer(sink)
		t.Cleanup(srv.Close)
		dir := t.TempDir()
		n := startNodeConfig(t, dir, nil, Config{Webhooks: []string{srv.URL}}, spec)
		secret, err := os.ReadFile(filepath.Join(dir, "webhook-secret"))
		if err != nil {
			t.Fatal(err)
		}
		sink.mu.Lock()
		sink.secret = []byte(strings.TrimSpace(string(secret)))
		sink.mu.Unlock()
		return n, sink
	}
	finder, finderHook := start("finder", "finder:Person")
	vendor, vendorHook := start("vendor", "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	// events lists the events of one report, or with report "" those of
	// the cases, in the order the webhook received them.
	events := func(s *webhookSink, report string) string {
		var out []string
		for _, d := range s.snapshot() {
			if d.Report == report {
				out = append(out, d.Event)
			}
		}
		return strings.Join(out, " ")
	}
	offer := func(title string) (string, string) {
		id := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"c"}}`, vendorID, title))
		waitFor(t, "the report at the vendor", func() bool {
			for _, it := range vendor.inboxItems(t, "vendor") {
				if it["id"] == id {
					return true
				}
			}
			return false
		})
		return id, reportIDOf(t, finder, id)
	}
	answer := func(typ, offerID string) {
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":%q,"object":%q,"to":[%q]}`, typ, offerID, finderID))
	}
	// A report invalidated, then closed, before any case.
	first, firstReport := offer("first")
	answer("TentativeReject", first)
	answer("Reject", first)
	waitFor(t, "the first report's milestones", func() bool {
		return events(vendorHook, firstReport) == "report_received report_invalidated report_closed" &&
			events(finderHook, firstReport) == "report_submitted report_received report_invalidated report_closed"
	})
	// A report validated into a case, engaged, deferred and closed there.
	second, secondReport := offer("second")
	answer("Accept", second)
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	for i, typ := range []string{"Join", "Ignore", "Leave"} {
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":%q,"object":%q,"context":%q}`, typ, c.ID, c.ID))
		want := int64(3 + i)
		if typ == "Leave" {
			want++ // the vendor owns the case: its Case Actor closes it next
		}
		vendor.oneCase(t, "the "+typ, func(c api.Case) bool { return c.LedgerLength == want })
	}
	// The report's events and the case's follow each other in their own
	// order; between nodes they travel apart. The owner's Leave closes the
	// case: the Case Actor's entry is an event like every entry.
	want := "create_case validate_report engage_case defer_case close_case case_fully_closed"
	waitFor(t, "the second report's milestones", func() bool {
		return events(vendorHook, "") == want && events(finderHook, "") == want &&
			events(vendorHook, secondReport) == "report_received report_validated" &&
			events(finderHook, secondReport) == "report_submitted report_received report_validated"
	})
	for _, d := range vendorHook.snapshot() {
		if d.Report == secondReport && d.Event == "report_validated" && d.Case != c.ID {
			t.Errorf("report_validated names case %q, want %s", d.Case, c.ID)
		}
	}
	for _, s := range []*webhookSink{vendorHook, finderHook} {
		for _, d := range s.snapshot() {
			if d.Event == "case_fully_closed" && (d.Actor != c.CaseActor || !strings.Contains(string(d.State), `"closed":true`)) {
				t.Errorf("the case's closing: actor %s, state %s; want the Case Actor %s and a closed case", d.Actor, d.State, c.CaseActor)
			}
			if d.Report != "" && d.Actor == "" {
				t.Errorf("the report event %s names no actor", d.Event)
			}
		}
	}
	// On the reporter's node, report_received (the receiver's RK) has the
	// receiver in RECEIVED, as the receiver's own node has it.
	for _, d := range finderHook.snapshot() {
		if d.Event != "report_received" {
			continue
		}
		var st struct {
			Peers map[string]string `json:"peers"`
		}
		if err := json.Unmarshal(d.State, &st); err != nil || st.Peers[vendorID] != "RECEIVED" {
			t.Errorf("the finder's report_received: peers %v (%v); want the vendor RECEIVED", st.Peers, err)
		}
	}
}

// TestIntegrationsDocChecksWebhookSignatures runs the receiver's Python
// signature check of docs/integrations.md, as written, on a webhook
// secret file the node made and a body the node signed with it: the
// example loads the key from the file itself and must accept the
// signature.
func TestIntegrationsDocChecksWebhookSignatures(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skipf("python3 is not on PATH (%v): the documentation's Python example cannot be run", err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "docs", "integrations.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "Checking the signature, in the receiver")
	if ok {
		_, after, ok = strings.Cut(after, "```python\n")
	}
	if !ok {
		t.Fatal(`docs/integrations.md: no Python block after "Checking the signature, in the receiver"`)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("docs/integrations.md: the Python block does not end")
	}
	dir := t.TempDir()
	secret, created, err := loadOrCreateSecret(filepath.Join(dir, webhookSecretFile), "webhook secret")
	if err != nil || !created {
		t.Fatalf("webhook secret: created %v, %v", created, err)
	}
	body := []byte(`{"id":"https://cvd.example.org#42","event":"engage_case"}`)
	header := webhook.Sign([]byte(secret), body, time.Now())
	script := block + "\nimport sys\nprint(verify(SECRET, sys.argv[1], sys.stdin.buffer.read()))\n"
	if err := os.WriteFile(filepath.Join(dir, "check.py"), []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "check.py", header)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "True" {
		t.Errorf("the documented check of a signature the node made, with the key loaded as the documentation says: %v\n%s", err, out)
	}
}
