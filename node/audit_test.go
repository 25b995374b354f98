package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// lastAuditSeq returns the sequence number of the newest audit record.
func lastAuditSeq(t *testing.T, db *store.DB) uint64 {
	t.Helper()
	recs := auditAfter(t, db, 0)
	if len(recs) == 0 {
		return 0
	}
	return recs[len(recs)-1].Seq
}

// auditAfter returns every audit record after seq.
func auditAfter(t *testing.T, db *store.DB, seq uint64) []store.AuditRecord {
	t.Helper()
	var out []store.AuditRecord
	for {
		page, next, err := db.AuditPage(context.Background(), seq, 500)
		if err != nil {
			t.Fatalf("AuditPage: %v", err)
		}
		out = append(out, page...)
		if next == 0 {
			return out
		}
		seq = next
	}
}

// assertRefusalAudited checks that a refusal with the given status and the
// sentence the client saw was recorded after seq, and nothing accepted.
func assertRefusalAudited(t *testing.T, db *store.DB, seq uint64, status int, msg string) {
	t.Helper()
	recs := auditAfter(t, db, seq)
	found := false
	for _, r := range recs {
		if r.Decision == store.DecisionAccepted {
			t.Errorf("audit log records an accept after a refusal: %+v", r)
		}
		if r.Decision == store.DecisionRefused && r.Status == status && r.Reason == problem.Clip(msg, 300) && r.Remote == "127.0.0.1" {
			found = true
		}
	}
	if !found {
		t.Errorf("no audit record of the refusal %d %q from 127.0.0.1; records after %d: %+v", status, msg, seq, recs)
	}
}

func TestAuditOfAcceptedAndAdmin(t *testing.T) {
	vendor := startNode(t, "vendor:Organization")
	p := newPeer(t, sharedKeys.get(t, 0))
	vendorID := vendor.actorID("vendor")
	if status, msg := p.post(t, vendorID+"/inbox", p.offer(1, vendorID), nil); status != http.StatusAccepted {
		t.Fatalf("offer: %d %q", status, msg)
	}
	offerID := p.id + "/activities/offer-1"
	stored, err := vendor.db.Activity(context.Background(), offerID)
	if err != nil {
		t.Fatal(err)
	}

	// Without the token: refused, and the refusal is recorded as admin.
	req, _ := http.NewRequest(http.MethodGet, vendor.url+"/api/audit", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /api/audit without the token: %d, want 401", resp.StatusCode)
	}
	// A refused admin POST.
	if status, _ := vendor.api(t, http.MethodPost, "/api/deliveries/999/retry", ""); status != http.StatusNotFound {
		t.Fatalf("retry of a missing dead letter: %d, want 404", status)
	}

	status, body := vendor.api(t, http.MethodGet, "/api/audit?limit=1000", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/audit: %d %s", status, body)
	}
	var page api.AuditPage
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	var accepted, key, enqueued, noToken, retry bool
	for _, r := range page.Records {
		switch {
		case r.Kind == store.AuditInbound && r.Decision == store.DecisionAccepted && r.ActivityID == offerID:
			accepted = r.Signer == p.id && r.KeyID == p.keyID && r.Digest == stored.Digest && r.Actor == "vendor" && r.Remote == "127.0.0.1"
		case r.Kind == store.AuditKey && r.KeyID == p.keyID:
			key = r.Decision == "fetched" && r.Signer == p.id && len(r.Digest) == 64
		case r.Kind == store.AuditOutbound && r.Decision == store.DecisionEnqueued:
			enqueued = true // the acknowledgement (RK) the offer called for
		case r.Kind == store.AuditAdmin && r.Status == 401:
			noToken = r.Remote == "127.0.0.1" && strings.Contains(r.Reason, "API token")
		case r.Kind == store.AuditAdmin && r.Status == 404:
			retry = strings.Contains(r.Reason, "no dead letter 999")
		}
	}
	if !accepted || !key || !enqueued || !noToken || !retry {
		t.Errorf("accepted %v, key fetched %v, reply enqueued %v, token refusal %v, retry refusal %v; records %+v", accepted, key, enqueued, noToken, retry, page.Records)
	}
	if strings.Contains(string(body), "Heap overflow") {
		t.Error("the audit log holds report text")
	}

	// Paging.
	status, body = vendor.api(t, http.MethodGet, "/api/audit?limit=1", "")
	var first api.AuditPage
	if err := json.Unmarshal(body, &first); status != http.StatusOK || err != nil || len(first.Records) != 1 || first.Next != 1 {
		t.Fatalf("first page of one: %d %s", status, body)
	}
	_, body = vendor.api(t, http.MethodGet, "/api/audit?after=1&limit=1", "")
	var second api.AuditPage
	if err := json.Unmarshal(body, &second); err != nil || len(second.Records) != 1 || second.Records[0].Seq != 2 || second.Records[0].Prev != first.Records[0].Hash {
		t.Fatalf("second page: %s", body)
	}
	if status, _ := vendor.api(t, http.MethodGet, "/api/audit?limit=0", ""); status != http.StatusBadRequest {
		t.Errorf("limit=0: %d, want 400", status)
	}

	status, body = vendor.api(t, http.MethodGet, "/api/audit/verify", "")
	var v store.AuditVerdict
	if err := json.Unmarshal(body, &v); status != http.StatusOK || err != nil || !v.OK || v.Records < 5 || v.Head == "" {
		t.Fatalf("verify: %d %s", status, body)
	}
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestRefusalBudget(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/vultron.db", store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a := newRefusalAuditor(db, zerolog.Nop(), clock.now, 3, 5)
	ctx := context.Background()
	refuse := func(remote string) {
		a.record(ctx, store.AuditRecord{Kind: store.AuditInbound, Decision: store.DecisionRefused, Status: 401, Reason: "bad signature", Remote: remote})
	}
	for range 10 {
		refuse("192.0.2.1") // 3 recorded, 7 counted
	}
	refuse("192.0.2.2")
	refuse("192.0.2.2") // the window's 5 are spent now
	refuse("192.0.2.2") // counted against .2
	refuse("192.0.2.3") // no budget at all: overflow
	if got := len(auditAfter(t, db, 0)); got != 5 {
		t.Fatalf("%d records in the first window, want 5", got)
	}
	clock.add(time.Minute)
	refuse("192.0.2.1") // new window: summaries first, then this one
	recs := auditAfter(t, db, 5)
	dropped := map[string]uint64{}
	for _, r := range recs {
		if r.Dropped > 0 {
			dropped[r.Remote] = r.Dropped
		}
	}
	if len(recs) != 4 || dropped["192.0.2.1"] != 7 || dropped["192.0.2.2"] != 1 || dropped["*"] != 1 {
		t.Fatalf("after the window: %d records, dropped %v; want 4 records, 7 from .1, 1 from .2, 1 overflow", len(recs), dropped)
	}
	if recs[3].Remote != "192.0.2.1" || recs[3].Dropped != 0 {
		t.Fatalf("the new window's refusal = %+v", recs[3])
	}
	for range 5 {
		refuse("192.0.2.1")
	}
	a.flush(ctx, true) // shutdown writes the last window's count
	last := auditAfter(t, db, 9)
	if len(last) != 3 || last[2].Dropped != 3 {
		t.Fatalf("after the flush: %+v; want 2 more records and a summary of 3", last)
	}
	if v, err := db.VerifyAudit(ctx); err != nil || !v.OK {
		t.Fatalf("VerifyAudit = %+v, %v", v, err)
	}
}
