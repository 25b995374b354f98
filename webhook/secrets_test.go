package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// TestSecretsStayOutOfLogsAndRecords has webhooks whose URLs carry a
// credential of the receiver (a password, or a token in the query)
// refuse or drop every request until the node gives the event up: the
// node's log, the stored cursor (what the API shows as lastError), the
// list of webhooks and the request bodies hold neither that credential
// nor the node's signing secret.
func TestSecretsStayOutOfLogsAndRecords(t *testing.T) {
	const (
		password = "hunter2-receiver-password"
		token    = "receiver-query-token-7c1e"
		secret   = "node-signing-secret-0123456789"
	)
	refuse := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	for _, tt := range []struct {
		name    string
		handler http.HandlerFunc
		hook    func(base string) string
	}{
		{"a password, answered 500", refuse, func(b string) string {
			return strings.Replace(b, "http://", "http://tickets:"+password+"@", 1) + "/hook"
		}},
		{"a query token, answered 500", refuse, func(b string) string { return b + "/hook?token=" + token }},
		{"a password, connection dropped", hangUp, func(b string) string {
			return strings.Replace(b, "http://", "http://tickets:"+password+"@", 1) + "/hook"
		}},
		{"a query token, connection dropped", hangUp, func(b string) string { return b + "/hook?token=" + token }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var (
				mu     sync.Mutex
				bodies []string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, string(b))
				mu.Unlock()
				tt.handler(w, r)
			}))
			defer srv.Close()
			hook := tt.hook(srv.URL)
			var logs syncBuffer
			d, err := New(Config{DB: db, URLs: []string{hook}, Secret: []byte(secret),
				Policy: outbox.RetryPolicy{First: 5 * time.Millisecond, Max: 10 * time.Millisecond, Horizon: 30 * time.Millisecond},
				Logger: zerolog.New(&logs), Node: "http://node.example"})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- d.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitForCursor(t, db, hook)
			if err := db.Update(ctx, func(tx *store.Tx) error {
				return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "add_note_to_case", Time: time.Now()})
			}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the event given up on", func() bool { return d.Stats().Skipped == 1 })
			cur, _, err := db.WebhookCursor(ctx, hook)
			if err != nil || cur.LastError == "" {
				t.Fatalf("cursor %+v, %v; want the last error recorded", cur, err)
			}
			list, err := d.Webhooks(ctx)
			if err != nil || len(list) != 1 {
				t.Fatalf("Webhooks = %+v, %v", list, err)
			}
			mu.Lock()
			sent := strings.Join(bodies, "\n")
			mu.Unlock()
			if sent == "" {
				t.Fatal("the webhook received no request")
			}
			for what, text := range map[string]string{"the log": logs.String(), "the cursor's last error": cur.LastError,
				"the listed URL and error": list[0].URL + " " + list[0].LastError, "the request bodies": sent} {
				for _, s := range []string{password, token, secret} {
					if strings.Contains(text, s) {
						t.Errorf("%s holds %q:\n%s", what, s, text)
					}
				}
			}
		})
	}
}
