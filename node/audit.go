package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Refusals are audited by the HTTP layer, which sees every refusal of the
// federation routes (inbox POSTs, signed GETs) and of the token API,
// whatever part of the node made it: the per-IP and per-peer limits, the
// allow-list, the signature checks, the parser and the protocol rules. An
// accepted inbound activity, an enqueued outbound one and a delivery's
// outcome are recorded by the store in the transaction that writes them.
//
// A flood must not grow the log without bound, so refusals are recorded
// one by one only up to a budget per fixed window of one minute: at most
// DefaultAuditPerRemote per client IP and DefaultAuditPerWindow in all.
// Refusals beyond the budget are counted; at the end of the window each
// remote's count is written as one summary record (decision "refused",
// Dropped set), and refusals from remotes that had no budget left at all
// as one record for remote "*". A window therefore writes at most
// 2×DefaultAuditPerWindow+1 refusal records.
//
// A record the store fails to write (a full disk) is not lost from the
// count: the refusals it stood for (one, or a summary's count) are added
// to its remote's count in the window that is current then, and written
// with that window's summary; a remote that has no record in that window
// takes one of the window's budget for it, or is counted under "*".

// Defaults of the refusal budget.
const (
	DefaultAuditPerRemote = 100
	DefaultAuditPerWindow = 3000
	auditWindow           = time.Minute
	// auditCapture is how much of a refusal's JSON answer is kept to read
	// its error sentence from.
	auditCapture = 2048
)

// refusalAuditor records refusals within the budget described above.
type refusalAuditor struct {
	db        auditWriter
	log       zerolog.Logger
	now       func() time.Time
	perRemote int
	perWindow int

	mu       sync.Mutex
	start    time.Time            // start of the current window
	used     int                  // records written in this window
	remotes  map[string]*auditTab // remotes with a record in this window
	overflow uint64               // refusals not counted against any remote
	// overflowUnwritten counts refusals, of this window or earlier ones,
	// not counted against any remote, whose records could not be written.
	overflowUnwritten uint64
}

// auditTab is one remote's use of the budget in the current window.
type auditTab struct {
	used    int
	dropped uint64
	// unwritten counts refusals, of this window or earlier ones, whose
	// records (one by one, or a summary) the store failed to write.
	unwritten uint64
	kind      string
}

// auditWriter is the store's write the auditor records with; *store.DB
// is one.
type auditWriter interface {
	Update(ctx context.Context, fn func(*store.Tx) error) error
}

func newRefusalAuditor(db auditWriter, log zerolog.Logger, now func() time.Time, perRemote, perWindow int) *refusalAuditor {
	if perRemote <= 0 {
		perRemote = DefaultAuditPerRemote
	}
	if perWindow <= 0 {
		perWindow = DefaultAuditPerWindow
	}
	return &refusalAuditor{db: db, log: log, now: now, perRemote: perRemote, perWindow: perWindow, remotes: map[string]*auditTab{}}
}

// record writes rec unless its remote or the window is over budget, in
// which case it is counted. A window that has ended is summarised first.
func (a *refusalAuditor) record(ctx context.Context, rec store.AuditRecord) {
	now := a.now()
	a.mu.Lock()
	summaries := a.rollLocked(now, false)
	tab := a.remotes[rec.Remote]
	write := false
	switch {
	case tab != nil && tab.used < a.perRemote && a.used < a.perWindow:
		write = true
	case tab == nil && a.used < a.perWindow:
		tab = &auditTab{kind: rec.Kind}
		a.remotes[rec.Remote] = tab
		write = true
	case tab != nil:
		tab.dropped++
	default:
		a.overflow++
	}
	if write {
		tab.used++
		a.used++
	}
	a.mu.Unlock()

	a.write(ctx, summaries)
	if write {
		rec.Time = now
		a.write(ctx, []store.AuditRecord{rec})
	}
}

// flush summarises the current window if it has ended, or with force
// (at shutdown) even if it has not; the node calls it every window so that
// counts are written even when a flood stops.
func (a *refusalAuditor) flush(ctx context.Context, force bool) {
	now := a.now()
	a.mu.Lock()
	summaries := a.rollLocked(now, force)
	a.mu.Unlock()
	a.write(ctx, summaries)
}

// rollLocked starts a new window if the current one has ended, or with
// force, and returns the summary records of the old one, which name the
// minute it started.
func (a *refusalAuditor) rollLocked(now time.Time, force bool) []store.AuditRecord {
	if !force && !a.start.IsZero() && now.Sub(a.start) < auditWindow {
		return nil
	}
	var out []store.AuditRecord
	minute := a.start.UTC().Format(time.RFC3339)
	for remote, tab := range a.remotes {
		var reason string
		switch n := tab.dropped + tab.unwritten; {
		case n == 0:
			continue
		case tab.unwritten == 0:
			reason = fmt.Sprintf("%d more refusals from %s in the minute from %s were not recorded one by one", n, remote, minute)
		default:
			reason = fmt.Sprintf("%d more refusals from %s by the end of the minute from %s were not recorded one by one, %d of them because their records could not be written", n, remote, minute, tab.unwritten)
		}
		out = append(out, store.AuditRecord{Kind: tab.kind, Decision: store.DecisionRefused, Remote: remote, Dropped: tab.dropped + tab.unwritten, Reason: reason})
	}
	switch n := a.overflow + a.overflowUnwritten; {
	case n == 0:
	case a.overflowUnwritten == 0:
		out = append(out, store.AuditRecord{Kind: store.AuditInbound, Decision: store.DecisionRefused, Remote: "*", Dropped: n,
			Reason: fmt.Sprintf("%d refusals in the minute from %s were not recorded one by one: the log's budget for the minute was spent", n, minute)})
	default:
		out = append(out, store.AuditRecord{Kind: store.AuditInbound, Decision: store.DecisionRefused, Remote: "*", Dropped: n,
			Reason: fmt.Sprintf("%d refusals by the end of the minute from %s were not recorded one by one: %d past the log's budget for the minute, %d because their records could not be written", n, minute, a.overflow, a.overflowUnwritten)})
	}
	a.start, a.used, a.overflow, a.overflowUnwritten = now, 0, 0, 0
	clear(a.remotes)
	return out
}

// write appends recs in one transaction. The refusals of records that
// could not be written are counted for the current window's summary
// (unwritten), and the failure is logged: the request was refused either
// way.
func (a *refusalAuditor) write(ctx context.Context, recs []store.AuditRecord) {
	if len(recs) == 0 {
		return
	}
	err := a.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error {
		for _, rec := range recs {
			if _, err := tx.AppendAudit(rec); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	a.unwritten(recs)
	if !errors.Is(err, store.ErrClosed) {
		a.log.Error().Err(err).Int("records", len(recs)).Msg("audit: refusals not recorded; they are counted in the next summary")
	}
}

// unwritten counts the refusals of recs, which could not be written, in
// the current window: a summary's count, or one for a refusal's own
// record. They go to their remote's tab, which a remote without one takes
// from the window's budget (it costs the window one summary record), or,
// past the budget, to the count of all remotes.
func (a *refusalAuditor) unwritten(recs []store.AuditRecord) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, rec := range recs {
		n := max(rec.Dropped, 1)
		if rec.Dropped > 0 && rec.Remote == "*" {
			a.overflowUnwritten += n
			continue
		}
		tab := a.remotes[rec.Remote]
		if tab == nil {
			if a.used >= a.perWindow {
				a.overflowUnwritten += n
				continue
			}
			tab = &auditTab{kind: rec.Kind}
			a.remotes[rec.Remote] = tab
			a.used++
		}
		tab.unwritten += n
	}
}

// run summarises each window when it ends, until ctx ends, and then the
// last one.
func (a *refusalAuditor) run(ctx context.Context) error {
	tick := time.NewTicker(auditWindow)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			a.flush(context.Background(), true)
			return ctx.Err()
		case <-tick.C:
			a.flush(ctx, false)
		}
	}
}

// auditRefusals wraps a route: when it answers with a refusal that counts
// (see audited), the refusal is recorded as kind before the answer is
// complete.
func (n *Node) auditRefusals(kind string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		aw := &recorder{ResponseWriter: w, capture: auditCapture}
		h(aw, r)
		ri := info(r)
		status := aw.Status()
		if ri.refusedStatus != 0 {
			status = ri.refusedStatus
		}
		if !audited(r.Method, status) || ri.storeUnavailable || errors.Is(aw.err, store.ErrUnavailable) {
			// A request the store could not serve was not refused for
			// what it is, and its record could not be written either:
			// whether the node's refused said so, or the handler
			// answered the store's failure itself.
			return
		}
		reason := aw.reason()
		if ri.note != "" {
			reason = ri.note
		}
		rec := store.AuditRecord{Kind: kind, Decision: store.DecisionRefused, Status: status,
			Reason: problem.Clip(reason, 300), Remote: n.clientIP(r), KeyID: problem.Clip(actor.ClaimedKeyID(r.Header), 300),
			Actor: mux.Vars(r)["name"], Principal: ri.principal}
		n.audit.record(r.Context(), rec)
	}
}

// audited reports whether an answer is a refusal for the audit log: every
// refused POST, and a GET refused for who asked (401, 403, 429); a GET of
// something that does not exist is not a decision worth recording.
func audited(method string, status int) bool {
	if status < 400 {
		return false
	}
	if method == http.MethodGet || method == http.MethodHead {
		return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
	}
	return true
}
