package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/store"
)

// TestShutdownSummaryNamesItsMinute: the summary a flush at shutdown
// writes of a window that has not ended names the minute the window
// started, as the summary of a window that ended does.
func TestShutdownSummaryNamesItsMinute(t *testing.T) {
	db, err := store.Open(t.TempDir()+"/vultron.db", store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	start := time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC)
	clock := &fakeClock{t: start}
	a := newRefusalAuditor(db, zerolog.Nop(), clock.now, 1, 5)
	ctx := context.Background()
	for range 3 {
		a.record(ctx, store.AuditRecord{Kind: store.AuditInbound, Decision: store.DecisionRefused, Status: 401, Reason: "bad signature", Remote: "192.0.2.1"})
	}
	clock.add(20 * time.Second)
	a.flush(ctx, true)
	recs := auditAfter(t, db, 0)
	if len(recs) != 2 || recs[1].Dropped != 2 {
		t.Fatalf("records after the flush: %+v; want the refusal and a summary of 2", recs)
	}
	if want := "in the minute from " + start.Format(time.RFC3339); !strings.Contains(recs[1].Reason, want) {
		t.Errorf("summary reason %q; want it to say %q", recs[1].Reason, want)
	}
}
