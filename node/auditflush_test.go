package node

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync/atomic"
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

// failingAuditStore fails every write while fail is set, as a full disk
// fails the store's commits.
type failingAuditStore struct {
	db   *store.DB
	fail atomic.Bool
}

func (s *failingAuditStore) Update(ctx context.Context, fn func(*store.Tx) error) error {
	if s.fail.Load() {
		return errors.New("write vultron.db: no space left on device")
	}
	return s.db.Update(ctx, fn)
}

// TestUnwrittenRefusalsAreSummarised: refusals whose records (one by one,
// or a summary) the store failed to write are counted in a later summary,
// so that every refusal is in the log, one by one or in a count.
func TestUnwrittenRefusalsAreSummarised(t *testing.T) {
	type step struct {
		fail    bool          // writes fail from this step on
		advance time.Duration // the clock moves on first
		refuse  []string      // remotes refused, in order
		flush   bool          // then a flush at shutdown
	}
	tests := []struct {
		name  string
		steps []step
		// want is, per remote, the refusals the log accounts for: a
		// record each, and the counts of the summaries.
		want map[string]uint64
		// unwritten lists the remotes whose summary says that records
		// could not be written.
		unwritten []string
	}{
		{
			name: "refusals",
			steps: []step{
				{fail: true, refuse: []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.3"}},
				{advance: time.Minute, refuse: []string{"192.0.2.2"}},
			},
			want:      map[string]uint64{"192.0.2.1": 3, "192.0.2.2": 1, "192.0.2.3": 1},
			unwritten: []string{"192.0.2.1", "192.0.2.3"},
		},
		{
			name: "a summary",
			steps: []step{
				{refuse: []string{"192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.1"}},
				{fail: true, advance: time.Minute, refuse: []string{"192.0.2.2"}},
				{advance: time.Second, flush: true},
			},
			want:      map[string]uint64{"192.0.2.1": 4, "192.0.2.2": 1},
			unwritten: []string{"192.0.2.1", "192.0.2.2"},
		},
		{
			name: "the summary of all remotes",
			steps: []step{
				{refuse: []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"}},
				{fail: true, advance: time.Minute, refuse: []string{"192.0.2.5"}},
				{advance: time.Second, flush: true},
			},
			// .4 finds the window's budget spent: it is counted under "*".
			want:      map[string]uint64{"192.0.2.1": 1, "192.0.2.2": 1, "192.0.2.3": 1, "*": 1, "192.0.2.5": 1},
			unwritten: []string{"*", "192.0.2.5"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(t.TempDir()+"/vultron.db", store.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			st := &failingAuditStore{db: db}
			clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
			a := newRefusalAuditor(st, zerolog.Nop(), clock.now, 2, 3)
			ctx := context.Background()
			for _, s := range tt.steps {
				st.fail.Store(s.fail)
				clock.add(s.advance)
				for _, remote := range s.refuse {
					a.record(ctx, store.AuditRecord{Kind: store.AuditInbound, Decision: store.DecisionRefused, Status: 401, Reason: "bad signature", Remote: remote})
				}
				if s.flush {
					st.fail.Store(false)
					a.flush(ctx, true)
				}
			}
			got := map[string]uint64{}
			summarised := map[string]bool{}
			for _, r := range auditAfter(t, db, 0) {
				got[r.Remote] += max(r.Dropped, 1)
				if r.Dropped > 0 && strings.Contains(r.Reason, "could not be written") {
					summarised[r.Remote] = true
				}
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("refusals in the log by remote: %v, want %v", got, tt.want)
			}
			for _, remote := range tt.unwritten {
				if !summarised[remote] {
					t.Errorf("no summary of %s says that records could not be written", remote)
				}
			}
		})
	}
}
