package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/webhook"
)

// TestWebhookPausedAndResumedThroughTheAPI has a webhook answer 410 Gone
// to every request: the node pauses it after webhook.DefaultPauseAfter
// refusals and GET /api/webhooks says so, with the status and since
// when; an admin resumes it, once (a second
// resumption is a conflict, an unknown id not found, each with a JSON
// error); the dashboard's front page shows it paused; the event it refused is then delivered, and the pause and the
// resumption are in the audit log.
func TestWebhookPausedAndResumedThroughTheAPI(t *testing.T) {
	var (
		gone atomic.Bool
		mu   sync.Mutex
		ids  []string
	)
	gone.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if gone.Load() {
			w.WriteHeader(http.StatusGone)
			return
		}
		mu.Lock()
		ids = append(ids, r.Header.Get(webhook.EventIDHeader))
		mu.Unlock()
	}))
	defer srv.Close()
	extra := Config{Webhooks: []string{srv.URL + "/hook"},
		Retry: outbox.RetryPolicy{First: 5 * time.Millisecond, Max: 10 * time.Millisecond, Horizon: time.Hour}}
	n := startNodeConfig(t, t.TempDir(), nil, extra, "vendor:Organization")
	waitFor(t, "the webhook's cursor", func() bool {
		_, known, err := n.db.WebhookCursor(context.Background(), srv.URL+"/hook")
		return err == nil && known
	})
	if err := n.db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.AppendEvent(store.Event{CaseID: n.url + "/cases/1", EventType: "deadline_near", Time: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	var hook api.Webhook
	waitFor(t, "the webhook paused", func() bool {
		list := apiGet[api.Webhooks](t, n, "/api/webhooks").Webhooks
		if len(list) != 1 {
			t.Fatalf("GET /api/webhooks lists %d webhooks; want 1", len(list))
		}
		hook = list[0]
		return hook.Paused != nil
	})
	if hook.Paused.Status != http.StatusGone || hook.Pending != 1 || hook.Paused.Since.IsZero() || hook.ID != webhook.ID(srv.URL+"/hook") {
		t.Errorf("the paused webhook %+v, pause %+v; want status 410, one event pending", hook, *hook.Paused)
	}
	b := newBrowser(t, n.url)
	b.login(n)
	page := b.get("/")
	if !strings.Contains(page, `id="webhooks"`) || !strings.Contains(page, "paused since") || !strings.Contains(page, "410") ||
		!strings.Contains(page, "vultron webhooks resume "+hook.ID) {
		t.Errorf("the dashboard's front page does not show the webhook paused, with its status and how to resume it:\n%s", page)
	}
	gone.Store(false)
	for _, tt := range []struct {
		name   string
		path   string
		tok    string
		status int
	}{
		{"an unknown id", "/api/webhooks/000000000000/resume", n.token, http.StatusNotFound},
		{"the admin", "/api/webhooks/" + hook.ID + "/resume", n.token, http.StatusOK},
		{"the admin again", "/api/webhooks/" + hook.ID + "/resume", n.token, http.StatusConflict},
	} {
		status, body := n.apiAs(t, tt.tok, http.MethodPost, tt.path, "")
		var refusal struct {
			Error string `json:"error"`
		}
		if status != tt.status || (status != http.StatusOK && (json.Unmarshal(body, &refusal) != nil || refusal.Error == "")) {
			t.Errorf("%s: POST %s = %d %s; want %d (with a JSON error when refused)", tt.name, tt.path, status, body, tt.status)
		}
	}
	waitFor(t, "the refused event after the resumption", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ids) == 1
	})
	if l := apiGet[api.Webhooks](t, n, "/api/webhooks").Webhooks; len(l) != 1 || l[0].Paused != nil {
		t.Errorf("after the resumption GET /api/webhooks = %+v; want the webhook not paused", l)
	}
	var paused, resumed int
	for _, r := range n.auditRecords(t) {
		switch r.Decision {
		case store.DecisionPaused:
			paused++
		case store.DecisionResumed:
			resumed++
			if r.Principal == "" || r.Status != http.StatusGone {
				t.Errorf("the audit record of the resumption %+v; want who resumed it and the status it was paused for", r)
			}
		}
	}
	if paused != 1 || resumed != 1 {
		t.Errorf("%d audit records of a pause and %d of a resumption; want one of each", paused, resumed)
	}
}

// TestWebhookURLsOnlyForAdmins: a webhook URL may carry the receiver's
// credential in its path (a chat service's incoming webhook), which the
// shown URL keeps: the list of webhooks, in the API and on the
// dashboard's front page, is an admin's, as their configuration is; a
// viewer's front page still says that a webhook is paused.
func TestWebhookURLsOnlyForAdmins(t *testing.T) {
	const secret = "path-secret-5e2b91"
	hookURL := "http://127.0.0.1:9/services/T0/B0/" + secret // nothing answers
	n := startNodeConfig(t, t.TempDir(), nil, Config{Webhooks: []string{hookURL}}, "vendor:Organization")
	viewer := newBrowser(t, n.url)
	viewer.loginAs("vera", n.person(t, "vera", accounts.Viewer))
	if page := viewer.get("/"); strings.Contains(page, secret) || strings.Contains(page, `id="webhooks"`) {
		t.Errorf("a viewer's front page lists the webhooks, with the URL of %s", hookURL)
	}
	admin := newBrowser(t, n.url)
	admin.login(n)
	if page := admin.get("/"); !strings.Contains(page, `id="webhooks"`) {
		t.Errorf("an admin's front page does not list the webhooks:\n%s", page)
	}
}
