package dashboard

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Live updates: /ui/events streams Server-Sent Events. A page names the
// case it shows (?case=ID) or none (the case list). After every durable
// write, and whenever an actor's name is learnt, the stream reads what the
// page shows in summary (a case's ledger length and states, or the list's,
// and how many names are known) and sends an event when it changed; the
// page's script then fetches the page again and swaps its content (or,
// when the page answers with another, the login page once the session has
// ended, goes there). Before each read the stream checks that its session
// still lives; once it has ended, the stream sends "ended" and closes, and
// the page loads again, which leads to the login page.

const (
	// liveMinInterval spaces the reads a stream makes under a burst of
	// writes.
	liveMinInterval = 250 * time.Millisecond
	// liveHeartbeat keeps proxies from closing an idle stream.
	liveHeartbeat = 25 * time.Second
)

// liveState is the summary of what a page shows; a change of it is an
// event.
func (d *Dashboard) liveState(r *http.Request, caseID string) (string, error) {
	var state string
	err := d.cfg.Store.View(r.Context(), func(tx *store.ReadTx) error {
		if caseID != "" {
			c, err := cases.Load(tx, caseID)
			if err != nil || c == nil {
				state = "gone"
				return err
			}
			st, err := cases.Status(tx, c, d.cfg.Now(), d.cfg.IsLocal)
			if err != nil {
				return err
			}
			state = d.pageState(caseLiveState(c, st))
			return nil
		}
		page, _, err := cases.ListCasesPage(tx, "", casePage)
		if err != nil {
			return err
		}
		reports, total, err := cases.PendingReports(tx, maxPendingShown)
		if err != nil {
			return err
		}
		state = d.pageState(listLiveState(page, reports, total))
		return nil
	})
	return state, err
}

// caseLiveState summarises a case and how this node's copy compares with
// the Case Actor's ledger, for its page's stream.
func caseLiveState(c *cases.Case, st cases.ReplicaStatus) string {
	return fmt.Sprintf("%d %s %s %s %s %d", c.LedgerLen, c.EM, c.PXA, c.TailHash, st.State, st.Known)
}

// listLiveState summarises the case list's first page and the reports
// awaiting a decision that it shows, with how many await one in all.
func listLiveState(page []*cases.Case, reports []cases.ReportRecord, total int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ", total)
	for _, c := range page {
		fmt.Fprintf(&b, "%s:%d ", c.ID, c.LedgerLen)
	}
	for _, rep := range reports {
		fmt.Fprintf(&b, "%s:%s:%s ", rep.ReportID, rep.Actor, rep.RM)
	}
	return b.String()
}

// events serves the Server-Sent Events stream of a page. The page sends the
// state it was rendered from (?state=); when the node has moved on already,
// the first event goes out at once, so a change made between the page's
// render and the stream's start is not missed.
func (d *Dashboard) events(w http.ResponseWriter, r *http.Request, s *uiSession) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		d.ErrorPage(w, http.StatusInternalServerError, "This server cannot stream events.")
		return
	}
	caseID := r.URL.Query().Get("case")
	current, err := d.liveState(r, caseID)
	if err != nil {
		// The store's passing failure is 503 with Retry-After, as every
		// page's: the live page tries again.
		problem.SetRetryAfter(w.Header(), err)
		d.ErrorPage(w, problem.Status(err), "The case could not be read.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	// The server's write timeout would cut the stream: each write extends
	// the deadline instead.
	rc := http.NewResponseController(w)
	extend := func() { _ = rc.SetWriteDeadline(time.Now().Add(2 * liveHeartbeat)) }
	extend()
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n: watching %s\n\n", template.HTMLEscapeString(caseID))
	flusher.Flush()
	last := r.URL.Query().Get("state")
	seq := 0
	send := func(state string) {
		last = state
		seq++
		extend()
		fmt.Fprintf(w, "id: %d\nevent: changed\ndata: %s\n\n", seq, strings.ReplaceAll(state, "\n", " "))
		flusher.Flush()
	}
	if current != last {
		send(current)
	}

	heartbeat := time.NewTicker(liveHeartbeat)
	defer heartbeat.Stop()
	for {
		changed, named := d.cfg.Store.Changed(), d.names.Changed()
		select {
		case <-r.Context().Done():
			return
		case <-d.cfg.Stopping:
			return
		case <-heartbeat.C:
			extend()
			fmt.Fprint(w, ": heartbeat\n\n")
			flusher.Flush()
			continue
		case <-changed:
		case <-named:
		}
		// Let a burst of commits settle into one read.
		select {
		case <-r.Context().Done():
			return
		case <-time.After(liveMinInterval):
		}
		// The session may have ended since the stream opened (a logout in
		// another tab or through another process, a revocation, a disabled
		// user): the page is told so, and hears of no more changes.
		// Asked without counting as a request of the person's: an open
		// page does not keep its session from ending when idle.
		if err := d.cfg.Accounts.CheckSession(r.Context(), s.id); problem.Status(err) == http.StatusUnauthorized {
			fmt.Fprint(w, "event: ended\ndata: the session has ended\n\n")
			flusher.Flush()
			return
		}
		state, err := d.liveState(r, caseID)
		if err != nil || state == last {
			continue
		}
		send(state)
	}
}
