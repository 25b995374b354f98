package cases

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/store"
)

// pageFetcher answers every fetch with the same page and counts them.
type pageFetcher struct {
	page  LedgerPage
	calls atomic.Int64
}

func (f *pageFetcher) FetchLedger(ctx context.Context, signer, caseID string, from int64, prev string, limit int) (LedgerPage, error) {
	f.calls.Add(1)
	return f.page, nil
}

func loadTestSync(t *testing.T, db *store.DB) *SyncState {
	t.Helper()
	var s *SyncState
	if err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		s, err = loadSync(tx, caseID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCaseActorCountingEntriesItDoesNotSend has a Case Actor answer that
// its ledger is longer than the replica's but send no entry from the
// replica's tail: the check makes no progress, so it fails once, says why
// and is retried after the back-off, instead of asking again and again.
func TestCaseActorCountingEntriesItDoesNotSend(t *testing.T) {
	db := openTestStore(t)
	now := time.Now().UTC()
	e := NewEngine(Config{PublicURL: "https://f.example", IsLocal: func(id string) bool { return strings.HasPrefix(id, "https://f.example/") },
		Now: func() time.Time { return now }})
	startedReplica(t, db, e, now)
	f := &pageFetcher{page: LedgerPage{Length: 50}}
	s, err := NewSyncer(SyncerConfig{Store: db, Engine: e, Fetch: f, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	_ = s.check(context.Background(), caseID)
	if n := f.calls.Load(); n != 1 {
		t.Errorf("one check fetched %d pages that held no entry; want it to stop after the first", n)
	}
	st := loadTestSync(t, db)
	if st.Failures != 1 || !strings.Contains(st.LastError, "50") || !st.NextCheck.After(now) {
		t.Errorf("sync state %+v; want a failed check that names the length claimed, retried later", st)
	}
}
