package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/deadline"
)

// TestDeadlinesOnAnInjectedClock has a finder report to a vendor whose
// node runs on a clock the test moves: the vendor's clocks to acknowledge
// and validate the report run from its arrival; eight days later the
// acknowledgement (5 business days) is overdue and appears in the API's
// list of overdue deadlines, as a deadline_passed webhook event and in the
// metrics, while the validation (10 business days) is not.
func TestDeadlinesOnAnInjectedClock(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	finder := startNode(t, "finder:Person")
	vendor, sink := startWithSink(t, Config{Now: now, DeadlineCheck: 20 * time.Millisecond}, "vendor:Organization")

	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Deadline test","content":"details"}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })

	list := func(query string) api.Deadlines {
		t.Helper()
		status, body := vendor.api(t, http.MethodGet, "/api/deadlines"+query, "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/deadlines%s: %d %s", query, status, body)
		}
		var v api.Deadlines
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := list("")
	if len(v.Deadlines) != 2 || v.Deadlines[0].Kind != "acknowledge" || v.Deadlines[1].Kind != "validate" ||
		!v.Deadlines[0].Report || v.Deadlines[0].Local != "vendor" || !v.Deadlines[0].Mine || v.Deadlines[0].Overdue ||
		v.Deadlines[0].Limit != "5 business days" || v.TimeZone != "UTC" {
		t.Fatalf("deadlines after the report arrived: %+v", v)
	}
	// The vendor is named as in a case's clock: its id and its name.
	if d := v.Deadlines[0]; d.Participant != vendor.actorID("vendor") {
		t.Errorf("the report's acknowledge clock names participant %q, local %q; want %s and vendor", d.Participant, d.Local, vendor.actorID("vendor"))
	}
	arrived := v.Deadlines[0].Start
	if want, _ := deadline.Default().Due("acknowledge", arrived); !v.Deadlines[0].Due.Equal(want) {
		t.Errorf("acknowledge due %s, want %s", v.Deadlines[0].Due, want)
	}
	if v := list("?overdue=true"); len(v.Deadlines) != 0 {
		t.Fatalf("overdue before the clock moved: %+v", v.Deadlines)
	}

	offset.Store(int64(8 * 24 * time.Hour)) // past 5 business days, within 10
	waitFor(t, "the deadline_passed event at the webhook", func() bool {
		for _, d := range sink.snapshot() {
			if d.Event == deadline.EventPassed {
				return true
			}
		}
		return false
	})
	v = list("?overdue=true")
	if len(v.Deadlines) != 1 || v.Deadlines[0].Kind != "acknowledge" || !v.Deadlines[0].Overdue {
		t.Fatalf("overdue after eight days: %+v", v.Deadlines)
	}
	// One report's deadlines, named by its id or its short id, honour
	// limit and overdue; a case= that names nothing is a 404 that says so.
	report := v.Deadlines[0].Subject
	for _, subject := range []string{url.QueryEscape(report), cases.ShortID(report)} {
		if v := list("?case=" + subject); len(v.Deadlines) != 2 || v.Deadlines[0].Subject != report {
			t.Errorf("?case=%s: %+v, want the report's 2 deadlines", subject, v.Deadlines)
		}
		if v := list("?limit=1&case=" + subject); len(v.Deadlines) != 1 || v.Deadlines[0].Kind != "acknowledge" {
			t.Errorf("?limit=1&case=%s: %+v, want the acknowledgement alone", subject, v.Deadlines)
		}
		if v := list("?overdue=true&case=" + subject); len(v.Deadlines) != 1 || v.Deadlines[0].Kind != "acknowledge" || !v.Deadlines[0].Overdue {
			t.Errorf("?overdue=true&case=%s: %+v, want the overdue acknowledgement alone", subject, v.Deadlines)
		}
	}
	for _, subject := range []string{"nosuch", url.QueryEscape(vendor.url + "/cases/nosuch")} {
		status, body := vendor.api(t, http.MethodGet, "/api/deadlines?case="+subject, "")
		if status != http.StatusNotFound || !strings.Contains(string(body), `{"error":"case=`) || !strings.Contains(string(body), "names no case or report on this node") {
			t.Errorf("GET /api/deadlines?case=%s: %d %s, want 404 saying it names no case or report", subject, status, body)
		}
	}
	var passed []string
	for _, d := range sink.snapshot() {
		if raw, err := json.Marshal(d); err != nil || strings.Contains(string(raw), "details") {
			t.Errorf("webhook event %s carries the report's text (%v): %s", d.Event, err, raw)
		}
		if strings.HasPrefix(d.Event, "deadline_") {
			var st deadline.NoticeState
			if err := json.Unmarshal(d.State, &st); err != nil {
				t.Fatal(err)
			}
			passed = append(passed, d.Event+" "+st.Kind)
			// A report's clock: the document names the report, not a
			// case, and no log index; its actor is the local actor whose
			// clock it is.
			if d.Event == deadline.EventPassed && (st.Local != "vendor" || !st.Report || d.Report == "" || d.Case != "" || d.LogIndex != nil ||
				d.Actor != vendor.actorID("vendor")) {
				t.Errorf("deadline_passed document: %+v, state %+v; want the report, the vendor as actor, no case or log index", d, st)
			}
		}
	}
	if strings.Join(passed, ",") != "deadline_passed acknowledge" {
		t.Errorf("deadline events at the webhook: %v, want one deadline_passed for acknowledge", passed)
	}
	status, body := vendor.api(t, http.MethodGet, "/metrics", "")
	if status != http.StatusOK || !strings.Contains(string(body), `vultron_deadlines_overdue{kind="acknowledge"} 1`) ||
		!strings.Contains(string(body), `vultron_deadlines_running{kind="validate"} 1`) {
		t.Errorf("metrics: %d\n%s", status, grepLines(string(body), "vultron_deadlines"))
	}
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	page := b.get("/")
	for _, want := range []string{"<h1>Deadlines</h1>", "node's time zone (UTC)", "acknowledge <span class=\"muted\">(5 business days)</span>",
		"badge overdue\">overdue by", "Deadline test"} {
		if !strings.Contains(page, want) {
			t.Errorf("the cases page lacks %q:\n%s", want, grepLines(page, "deadline"))
		}
	}
	// The report's clock names the vendor as a case's clock names a
	// participant: by its name, with its id on hover.
	if row, want := grepLines(page, "acknowledge <span"), fmt.Sprintf(`<span class="actor" title="%s">vendor</span>`, vendor.actorID("vendor")); !strings.Contains(row, want) {
		t.Errorf("the cases page's acknowledge row lacks %s:\n%s", want, row)
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?overdue=maybe"} {
		if status, body := vendor.api(t, http.MethodGet, "/api/deadlines"+q, ""); status != http.StatusBadRequest || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET /api/deadlines%s: %d %s, want 400 with a JSON error", q, status, body)
		}
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startWithSink starts a node with extra's settings and a webhook that a
// sink the test reads receives, checking each request's signature.
func startWithSink(t *testing.T, extra Config, specs ...string) (*testNode, *webhookSink) {
	t.Helper()
	sink := &webhookSink{t: t, ids: map[string]int{}}
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	extra.Webhooks = []string{srv.URL + "/hook"}
	n := startNodeConfig(t, dir, nil, extra, specs...)
	secret, err := os.ReadFile(filepath.Join(dir, "webhook-secret"))
	if err != nil {
		t.Fatal(err)
	}
	sink.mu.Lock()
	sink.secret = []byte(strings.TrimSpace(string(secret)))
	sink.mu.Unlock()
	return n, sink
}
