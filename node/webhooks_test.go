package node

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	caseID := vendor.oneCase(t, "the case", func(c caseSummary) bool { return c.LedgerLength == 2 }).ID
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID))
	waitFor(t, "three events at the webhook", func() bool { return len(sink.snapshot()) == 3 })
	// The receiver has the third event a moment before its sender counts it.
	waitFor(t, "three events counted as delivered", func() bool { return vendor.webhooks.Stats().Delivered == 3 })
	if st := vendor.webhooks.Stats(); st.Retried != 3 || st.Delivered != 3 {
		t.Errorf("webhook stats %+v, want 3 delivered after 3 retries", st)
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
	waitFor(t, "four events at the webhook", func() bool { return len(sink.snapshot()) == 4 })
	time.Sleep(300 * time.Millisecond) // room for a duplicate to show up

	docs := sink.snapshot()
	want := []string{"create_case", "validate_report", "engage_case", "add_note_to_case"}
	if len(docs) != len(want) {
		t.Fatalf("%d documents, want %d", len(docs), len(want))
	}
	for i, d := range docs {
		if d.Event != want[i] || d.LogIndex != int64(i) || d.Case != caseID {
			t.Errorf("document %d: %s #%d of %s, want %s #%d of %s", i, d.Event, d.LogIndex, d.Case, want[i], i, caseID)
		}
		if strings.Contains(string(d.State), "secret details") {
			t.Errorf("document %d carries the report's text", i)
		}
	}
	var st struct {
		EM, PXA     string
		Participant struct{ Actor, RM string }
	}
	if err := json.Unmarshal(docs[2].State, &st); err != nil || st.Participant.Actor != vendorID || st.Participant.RM != "ACCEPTED" {
		t.Errorf("the engage event's state %s (%v), want the vendor at ACCEPTED", docs[2].State, err)
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
