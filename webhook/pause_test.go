package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// waitFor fails t unless ok becomes true within 10 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// auditOf returns the audit records of decision.
func auditOf(t *testing.T, db *store.DB, decision string) []store.AuditRecord {
	t.Helper()
	recs, _, err := db.AuditPage(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditRecord
	for _, r := range recs {
		if r.Decision == decision {
			out = append(out, r)
		}
	}
	return out
}

// TestPermanentRefusalsPauseTheWebhook has a webhook answer every request
// with a permanent refusal (a 4xx that retrying does not change): after
// PauseAfter answers in a row the node pauses it, records and audits the
// pause with the status, attempts nothing more and keeps its events
// (with a retry horizon of an hour it would otherwise retry, holding
// back the events after). Resumed by an operator, it gets the events in
// order from the one it refused, and the resumption is audited.
func TestPermanentRefusalsPauseTheWebhook(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 410, 422} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var (
				refuse atomic.Bool
				calls  atomic.Int32
				mu     sync.Mutex
				got    []string
			)
			refuse.Store(true)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if refuse.Load() {
					w.WriteHeader(status)
					return
				}
				var doc Document
				if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
					t.Errorf("decode: %v", err)
				}
				mu.Lock()
				got = append(got, doc.ID)
				mu.Unlock()
			}))
			defer srv.Close()
			const password = "receiver-password-9f2c"
			hook := strings.Replace(srv.URL, "http://", "http://tickets:"+password+"@", 1)
			var logs syncBuffer
			d, err := New(Config{DB: db, URLs: []string{hook}, Secret: []byte("0123456789abcdef0123"),
				Policy:     outbox.RetryPolicy{First: time.Millisecond, Max: 2 * time.Millisecond, Horizon: time.Hour},
				PauseAfter: 3, Logger: zerolog.New(&logs), Node: "http://node.example"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitForCursor(t, db, hook)
			for i := range int64(2) {
				if err := db.Update(ctx, func(tx *store.Tx) error {
					return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", LogIndex: &i, EventType: "add_note_to_case", Time: time.Now()})
				}); err != nil {
					t.Fatal(err)
				}
			}
			var cur store.WebhookCursor
			waitFor(t, "the webhook to be paused", func() bool {
				cur, _, err = db.WebhookCursor(ctx, hook)
				return err == nil && cur.Paused != nil
			})
			if cur.Paused.Status != status || cur.Paused.Event != "http://node.example#1" || cur.Seq != 0 || cur.Paused.Since.IsZero() {
				t.Errorf("paused cursor %+v, pause %+v; want status %d at event #1, no event passed", cur, *cur.Paused, status)
			}
			list, err := d.Webhooks(ctx)
			if err != nil || len(list) != 1 || list[0].Paused == nil || list[0].Paused.Status != status || list[0].Pending != 2 ||
				strings.Contains(list[0].URL, password) {
				t.Fatalf("Webhooks = %+v, %v; want the one webhook paused with status %d, 2 events pending, its URL's password hidden", list, err, status)
			}
			paused := auditOf(t, db, store.DecisionPaused)
			if len(paused) != 1 || paused[0].Status != status || strings.Contains(paused[0].Signer+paused[0].Reason, password) {
				t.Errorf("audit records of the pause: %+v; want one with status %d that does not hold the URL's password", paused, status)
			}
			// Nothing more is attempted: another event wakes the
			// dispatcher, which sees the pause and sends nothing.
			if err := db.Update(ctx, func(tx *store.Tx) error {
				return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "deadline_near", Time: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the dispatcher to see the third event", func() bool {
				l, err := d.Webhooks(ctx)
				return err == nil && len(l) == 1 && l[0].Pending == 3
			})
			if n := calls.Load(); n != 3 {
				t.Errorf("the webhook was sent %d requests; want the 3 before the pause", n)
			}
			if _, err := d.Resume(ctx, "nosuchid", "alice via token 1"); !errors.Is(err, ErrUnknownWebhook) {
				t.Errorf("Resume of an unknown webhook: %v; want ErrUnknownWebhook", err)
			}
			refuse.Store(false)
			if _, err := d.Resume(ctx, list[0].ID, "alice via token 1"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the events after the resumption", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(got) == 3
			})
			mu.Lock()
			if got[0] != "http://node.example#1" || got[1] != "http://node.example#2" || got[2] != "http://node.example#3" {
				t.Errorf("events after the resumption %v; want #1, #2, #3 in order", got)
			}
			mu.Unlock()
			resumed := auditOf(t, db, store.DecisionResumed)
			if len(resumed) != 1 || resumed[0].Principal != "alice via token 1" || resumed[0].Status != status {
				t.Errorf("audit records of the resumption: %+v; want one by alice that names status %d", resumed, status)
			}
			if _, err := d.Resume(ctx, list[0].ID, "alice via token 1"); !errors.Is(err, store.ErrWebhookNotPaused) {
				t.Errorf("Resume of a webhook that is not paused: %v; want ErrWebhookNotPaused", err)
			}
			if strings.Contains(logs.String(), password) {
				t.Errorf("the log holds the webhook URL's password:\n%s", logs.String())
			}
		})
	}
}

// TestTransientFailuresDoNotPause: answers that may change on their own
// (a 5xx, a 429) are retried, never counted towards a pause.
func TestTransientFailuresDoNotPause(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= 6 {
					w.WriteHeader(status)
				}
			}))
			defer srv.Close()
			d, err := New(Config{DB: db, URLs: []string{srv.URL}, Secret: []byte("0123456789abcdef0123"),
				Policy:     outbox.RetryPolicy{First: time.Millisecond, Max: 2 * time.Millisecond, Horizon: time.Hour},
				PauseAfter: 3, Logger: zerolog.Nop(), Node: "http://node.example"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitForCursor(t, db, srv.URL)
			if err := db.Update(ctx, func(tx *store.Tx) error {
				return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "deadline_near", Time: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the event to be delivered", func() bool { return d.Stats().Delivered == 1 })
			if c, _, err := db.WebhookCursor(ctx, srv.URL); err != nil || c.Paused != nil || c.Seq != 1 {
				t.Errorf("cursor %+v, %v; want the event delivered and no pause", c, err)
			}
		})
	}
}
