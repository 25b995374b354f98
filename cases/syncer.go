package cases

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/openvultron/vultron/internal/ctxsleep"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// SyncerConfig configures a Syncer. Store, Engine and Fetch are required.
type SyncerConfig struct {
	Store  *store.DB
	Engine *Engine
	Fetch  LedgerFetcher
	// Rate bounds the checks per second across every case (default 5),
	// Workers the checks at once (default 4).
	Rate    float64
	Workers int
	// PageSize is how many entries a check asks for at once (default
	// 200, at most MaxLedgerPage); PagesPerCheck how many pages one check
	// fetches before other cases get their turn (default 25).
	PageSize      int
	PagesPerCheck int
	// DueBatch bounds how many due checks one scan of the schedule takes
	// (default 64).
	DueBatch int
	// ScanGap is the least time between two scans of the schedule that
	// commits wake (default DefaultScanGap): every commit may have made a
	// check due, and a busy inbox commits hundreds of times a second.
	ScanGap time.Duration
	Now     func() time.Time
	Logger  zerolog.Logger
}

// DefaultScanGap is SyncerConfig.ScanGap's default: a check made due by a
// write starts at most this much later, which is nothing beside a fetch
// from another node, and a node under load reads the schedule twenty
// times a second rather than once per commit (on PostgreSQL a scan is a
// read transaction of four round trips).
const DefaultScanGap = 50 * time.Millisecond

// Syncer runs the checks of this node's replicas as they fall due (see
// sync.go): it fetches what a replica lacks from the Case Actor, in pages,
// and applies it through the Engine. It finds due checks in the schedule
// index, so each scan reads only those, and it wakes when the store
// commits (a write may have made a check due now; at most once per ScanGap)
// or when the next check falls due.
type Syncer struct {
	cfg     SyncerConfig
	limiter *rate.Limiter

	mu       sync.Mutex
	inFlight map[string]bool
	// done is signalled when a check ends: its case may be due again, and
	// the scan that skipped it while it ran must look again.
	done chan struct{}
	// scans counts the scans of the schedule, for tests.
	scans atomic.Int64
}

// NewSyncer returns a Syncer.
func NewSyncer(cfg SyncerConfig) (*Syncer, error) {
	if cfg.Store == nil || cfg.Engine == nil || cfg.Fetch == nil {
		return nil, errors.New("cases: a syncer needs a store, an engine and a ledger fetcher")
	}
	if cfg.Rate <= 0 {
		cfg.Rate = 5
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 200
	}
	cfg.PageSize = min(cfg.PageSize, MaxLedgerPage)
	if cfg.ScanGap <= 0 {
		cfg.ScanGap = DefaultScanGap
	}
	if cfg.PagesPerCheck <= 0 {
		cfg.PagesPerCheck = 25
	}
	if cfg.DueBatch <= 0 {
		cfg.DueBatch = 64
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Syncer{cfg: cfg, limiter: rate.NewLimiter(rate.Limit(cfg.Rate), max(1, int(cfg.Rate))), inFlight: map[string]bool{},
		done: make(chan struct{}, 1)}, nil
}

// Run checks replicas as they fall due until ctx ends.
func (s *Syncer) Run(ctx context.Context) {
	work := make(chan string)
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				_ = s.check(ctx, id) // a failed check is recorded in the case's sync state
				s.mu.Lock()
				delete(s.inFlight, id)
				s.mu.Unlock()
				select {
				case s.done <- struct{}{}:
				default:
				}
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	for {
		changed := s.cfg.Store.Changed()
		scanned := time.Now()
		due, next, err := s.due(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.cfg.Logger.Error().Err(err).Msg("replica sync: read the schedule")
		}
		for _, id := range due {
			if err := s.limiter.Wait(ctx); err != nil {
				return
			}
			select {
			case work <- id:
			case <-ctx.Done():
				return
			}
		}
		wait := time.Minute
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(s.cfg.Now()), 10*time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-changed:
			// Let the commits that follow this one join the next scan.
			if !ctxsleep.Sleep(ctx, s.cfg.ScanGap-time.Since(scanned)) {
				timer.Stop()
				return
			}
		case <-s.done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// due returns the cases whose check is due and not running, at most
// DueBatch of them, and when the first later check falls due.
func (s *Syncer) due(ctx context.Context) ([]string, time.Time, error) {
	s.scans.Add(1)
	now := s.cfg.Now()
	var (
		due  []string
		next time.Time
	)
	err := s.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		due, next = due[:0], time.Time{}
		checks, err := tx.Case(replicaChecks)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		errEnough := errors.New("enough")
		s.mu.Lock()
		defer s.mu.Unlock()
		skipped := 0
		err = checks.Range(nil, func(k, _ []byte) error {
			if len(k) < 8 {
				return nil
			}
			at := time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
			if at.After(now) {
				next = at
				return errEnough
			}
			id := string(k[8:])
			if s.inFlight[id] {
				// Running already; it reschedules itself. Skipping too many
				// of these would make the scan long: stop and wait.
				if skipped++; skipped > s.cfg.DueBatch {
					return errEnough
				}
				return nil
			}
			s.inFlight[id] = true
			due = append(due, id)
			if len(due) >= s.cfg.DueBatch {
				return errEnough
			}
			return nil
		})
		if errors.Is(err, errEnough) {
			err = nil
		}
		return err
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("replica sync: due checks: %w", err)
	}
	return due, next, nil
}

// check runs one due check of the replica of caseID: it fetches pages of
// the Case Actor's ledger from the replica's tail until the replica holds
// every entry, PagesPerCheck pages at most, applying each in a
// transaction of its own. It returns the last fetch's error (nil when the
// Case Actor answered), or the store's.
func (s *Syncer) check(ctx context.Context, caseID string) error {
	for range s.cfg.PagesPerCheck {
		more, fetchErr, err := s.checkOnce(ctx, caseID)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error().Err(err).Str("case", caseID).Msg("replica sync: check failed")
			}
			return err
		}
		if !more {
			return fetchErr
		}
	}
	return nil
}

// CatchUp checks the replica of caseID against its Case Actor's ledger now,
// whatever its schedule, and applies what it lacks. It reports whether the
// replica took entries, and why the Case Actor could not be asked when it
// could not. An action refused by a replica that may be behind
// (ReplicaRefusal) calls it before trying again.
func (s *Syncer) CatchUp(ctx context.Context, caseID string) (advanced bool, err error) {
	held := func() (int64, error) {
		var n int64
		err := s.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
			r, err := loadReplica(tx, caseID)
			if r != nil {
				n = r.Next
			}
			return err
		})
		return n, err
	}
	before, err := held()
	if err != nil {
		return false, err
	}
	checkErr := s.check(ctx, caseID)
	after, err := held()
	if err != nil {
		return false, err
	}
	return after > before, checkErr
}

// checkOnce fetches one page for the replica of caseID and applies it. It
// reports whether the replica still lacks entries and the fetch's error.
func (s *Syncer) checkOnce(ctx context.Context, caseID string) (more bool, fetched, err error) {
	var (
		st   *SyncState
		from int64
		prev string
	)
	err = s.cfg.Store.View(ctx, func(tx *store.ReadTx) error {
		if hostedBy(tx, caseID) != "" {
			return nil
		}
		var err error
		if st, err = loadSync(tx, caseID); err != nil || st == nil {
			return err
		}
		r, err := loadReplica(tx, caseID)
		if err != nil {
			return err
		}
		if r != nil && !st.Rebuild {
			from, prev = r.Next, r.TailHash()
		}
		return nil
	})
	if err != nil || st == nil || st.Fork != nil || st.NextCheck.IsZero() {
		// Nothing to fetch for: it is scheduled no more (a fork), or gone.
		return false, nil, err
	}
	fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	page, fetchErr := s.cfg.Fetch.FetchLedger(fctx, st.Local, caseID, from, prev, s.cfg.PageSize)
	cancel()
	if fetchErr != nil && ctx.Err() != nil {
		return false, fetchErr, ctx.Err()
	}
	now := s.cfg.Now().UTC()
	err = s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
		more = false
		var err error
		more, err = s.cfg.Engine.applyCheck(tx, caseID, from, page, fetchErr, now)
		return err
	})
	if err != nil {
		err = fmt.Errorf("replica sync: case %s: %w", caseID, err)
		if ctx.Err() == nil {
			// Recorded, so that the check waits for the back-off rather
			// than fetching the same page again at once.
			if rerr := s.cfg.Store.Update(ctx, func(tx *store.Tx) error {
				return s.cfg.Engine.checkFailed(tx, caseID, err, now)
			}); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return false, fetchErr, err
	}
	ev := s.cfg.Logger.Debug()
	if fetchErr != nil {
		ev = s.cfg.Logger.Warn().Err(fetchErr)
	}
	ev.Str("case", caseID).Int64("from", from).Int("entries", len(page.Entries)).Int64("length", page.Length).Bool("more", more).Msg("replica sync: checked the Case Actor's ledger")
	return more, fetchErr, nil
}

// applyCheck applies the outcome of one check of the replica of caseID,
// which held from entries when it asked: the page the Case Actor sent, or
// the fetch's error. It reports whether the replica still lacks entries.
func (e *Engine) applyCheck(tx *store.Tx, caseID string, from int64, page LedgerPage, fetchErr error, now time.Time) (bool, error) {
	st, err := loadSync(&tx.ReadTx, caseID)
	if err != nil || st == nil || st.Fork != nil {
		return false, err
	}
	if st.Rebuild && from > 0 {
		// The check began from this copy's tail before an operator asked
		// for the rebuild: what it found (nothing new, or a ledger that
		// differs) says nothing of the Case Actor's ledger from its start.
		// The rebuild's own fetch is due now (Resync); the caller goes on
		// to it.
		return true, nil
	}
	caseActor := st.CaseActor
	if caseActor == "" && from == 0 && len(page.Entries) > 0 {
		// A case looked for before its Case Actor was known: the
		// creation names it, and it must be on the case's host, which
		// served the page.
		caseActor = creator(page.Entries[0], caseID)
	}
	if st.Rebuild && fetchErr == nil && from == 0 && len(page.Entries) > 0 {
		// The copy is dropped only for a ledger whose first entry this
		// node accepts: one it refuses would leave it no copy at all.
		if _, err := e.trustGenesis(tx, st.Local, caseActor, page.Entries[0]); err != nil {
			if status := problem.Status(err); status < 400 || status >= 500 {
				return false, err
			}
			fetchErr = fmt.Errorf("the Case Actor's ledger was refused: %s", problem.Message(err))
		}
	}
	if st.Rebuild && fetchErr == nil && from == 0 && len(page.Entries) > 0 {
		// The Case Actor's ledger replaces this copy, in this transaction.
		if err := dropReplica(tx, caseID); err != nil {
			return false, err
		}
		v, err := loadView(&tx.ReadTx, caseID, 0)
		if err != nil {
			return false, err
		}
		v.s.Rebuild, v.s.Emitted, v.s.ClocksHeld = false, true, true
		if err := v.save(tx, 0); err != nil {
			return false, err
		}
	}
	if fetchErr == nil && len(page.Entries) == 0 && page.Length > from {
		// The Case Actor counts entries past this copy's tail but sends
		// none of them: asking again at once would get the same answer.
		fetchErr = fmt.Errorf("the Case Actor says its ledger has %d entries but sent none from entry %d", page.Length, from)
	}
	if fetchErr == nil && len(page.Entries) > 0 {
		err := e.offerEntries(tx, st.Local, caseActor, page.Entries, now, false)
		if problem.Status(err) == http.StatusForbidden && from == 0 {
			// The first entry says this node has no business following the
			// case (it neither reported to its owner nor joined it): forget
			// it, rather than asking again and again.
			r, lerr := loadReplica(&tx.ReadTx, caseID)
			if lerr != nil {
				return false, lerr
			}
			if r == nil {
				return false, dropSync(tx, caseID, st)
			}
		}
		if problem.Status(err) >= 400 && problem.Status(err) < 500 {
			// The Case Actor sent what this node refuses (a first entry it
			// does not trust, a malformed entry): its answers cannot be
			// used, so the check fails like an unreachable Case Actor.
			fetchErr = fmt.Errorf("the Case Actor's ledger was refused: %s", problem.Message(err))
		} else if err != nil {
			return false, err
		}
	}
	r, held, v, err := loadReplicaView(&tx.ReadTx, caseID)
	if err != nil || v.s == nil {
		return false, err
	}
	s := v.s
	s.LastCheck = now
	switch {
	case fetchErr != nil && r == nil && !s.BehindSince.IsZero() && now.Sub(s.BehindSince) > JoinHorizon:
		// A case this node looked for (expectCase: an invitation an
		// actor accepted, or the case a validation named) whose ledger
		// is still refused or out of reach: the Case Actor never recorded
		// the joining, or the case is gone. An announcement of the case
		// would start the replica still (mayFollow).
		return false, dropSync(tx, caseID, v.old)
	case s.Fork != nil:
		// A page that did not chain: offerEntries recorded the fork.
	case errors.Is(fetchErr, ErrLedgerDiffers):
		s.Fork = &Fork{Index: max(from-1, 0), Reason: fetchErr.Error(), Since: now}
		s.LastError, s.NextCheck = fetchErr.Error(), time.Time{}
	case errors.Is(fetchErr, ErrLedgerRefused) && r != nil:
		// The Case Actor no longer counts this node's actor among the
		// participants it serves: the entry that removed it was never
		// delivered here. Asked a bounded number of times, then no more.
		s.Refusals++
		if s.Refusals < e.cfg.Sync.EndAfter {
			e.retry(s, caseID, fetchErr.Error(), now)
			break
		}
		s.Failures++
		s.LastError, s.Ended, s.NextCheck = fetchErr.Error(), now, time.Time{}
	case fetchErr != nil:
		e.retry(s, caseID, fetchErr.Error(), now)
	default:
		s.Failures, s.Refusals, s.LastError = 0, 0, ""
		overstated := false
		if from+int64(len(page.Entries)) >= page.Length {
			// The answer reaches the Case Actor's tail: its ledger is as
			// long as it says now, whatever an earlier answer or
			// announcement claimed. An entry announced while this check
			// ran may be lost so; the next check, soon, finds it.
			overstated = s.Known > max(page.Length, held)
			s.Known = max(page.Length, held)
		} else {
			s.Known = max(s.Known, page.Length)
		}
		if s.behind(held) {
			if s.BehindSince.IsZero() {
				s.BehindSince = now
			}
			s.NextCheck = now
			break
		}
		s.BehindSince = time.Time{}
		c, err := loadCase(&tx.ReadTx, caseID)
		if err != nil {
			return false, err
		}
		if s.ClocksHeld {
			// A rebuilt copy at the Case Actor's tail: its clocks now
			// follow it (see SyncState.ClocksHeld).
			s.ClocksHeld = false
			if c != nil {
				if err := indexCaseClocks(tx, c); err != nil {
					return false, err
				}
			}
		}
		if !e.idleChecks(c, s.Local) {
			s.NextCheck = time.Time{}
			break
		}
		if len(page.Entries) == 0 && !overstated {
			// Nothing new: look again later, and later still next time.
			s.Idle = min(max(s.Idle*2, e.cfg.Sync.IdleMin), e.cfg.Sync.IdleMax)
		} else {
			s.Idle = e.cfg.Sync.IdleMin
		}
		s.NextCheck = now.Add(jitter(s.Idle, caseID, now))
	}
	return s.behind(held) && s.Fork == nil && fetchErr == nil, v.save(tx, held)
}

// retry records a failed check of the replica of caseID in its state s:
// the next one waits RetryMin, doubled after every further failure, up to
// RetryMax.
func (e *Engine) retry(s *SyncState, caseID, reason string, now time.Time) {
	s.Failures++
	s.LastError = reason
	// Doubled step by step, so that a long wait does not overflow.
	wait := e.cfg.Sync.RetryMin
	for i := 1; i < s.Failures && wait < e.cfg.Sync.RetryMax; i++ {
		if wait > e.cfg.Sync.RetryMax/2 {
			wait = e.cfg.Sync.RetryMax
			break
		}
		wait *= 2
	}
	s.NextCheck = now.Add(jitter(min(wait, e.cfg.Sync.RetryMax), caseID, now))
}

// checkFailed records a check of the replica of caseID whose outcome could
// not be applied (the store failed, or the answer could not be stored):
// it is retried like one whose fetch failed.
func (e *Engine) checkFailed(tx *store.Tx, caseID string, cause error, now time.Time) error {
	_, held, v, err := loadReplicaView(&tx.ReadTx, caseID)
	if err != nil || v.s == nil || v.s.Fork != nil || v.s.NextCheck.IsZero() {
		return err
	}
	v.s.LastCheck = now
	e.retry(v.s, caseID, "applying the Case Actor's answer failed: "+cause.Error(), now)
	return v.save(tx, held)
}

// HTTPStatusDiffers is the status a Case Actor's node answers a fetch of
// its ledger with when the entry before the requested ones is not the one
// the replica named (see ReadLedgerPage).
const HTTPStatusDiffers = http.StatusConflict
