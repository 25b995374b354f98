package intel

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/store"
)

// kevSample has the shape of CISA's known_exploited_vulnerabilities.json.
const kevSample = `{
  "title": "CISA Catalog of Known Exploited Vulnerabilities",
  "catalogVersion": "2026.12.01",
  "dateReleased": "2026-12-01T15:00:00.000Z",
  "count": 2,
  "vulnerabilities": [
    {"cveID": "CVE-2021-44228", "vendorProject": "Apache", "product": "Log4j2", "vulnerabilityName": "Apache Log4j2 Remote Code Execution Vulnerability",
     "dateAdded": "2021-12-10", "shortDescription": "...", "requiredAction": "...", "dueDate": "2021-12-24", "knownRansomwareCampaignUse": "Known", "notes": "", "cwes": ["CWE-20"]},
    {"cveID": "CVE-2026-1234", "vendorProject": "Example", "product": "Widget", "vulnerabilityName": "Widget SQL Injection",
     "dateAdded": "2026-11-30", "shortDescription": "...", "requiredAction": "...", "dueDate": "2026-12-21", "knownRansomwareCampaignUse": "Unknown", "notes": ""}
  ]
}`

const simpleSample = `{"format": "vultron-intel/1", "signals": [
  {"id": "CVE-2026-1234", "aliases": ["ghsa-2f3q-x8v6-9c4m"], "kind": "exploit_public", "detail": "a proof of concept on a public repository", "date": "2026-12-02"},
  {"id": "GHSA-9999-8888-7777", "kind": "public"}
]}`

func TestParse(t *testing.T) {
	f, err := Parse([]byte(kevSample), "kev.json")
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != FormatKEV || len(f.Signals) != 2 || f.Signals[0].ID != "CVE-2021-44228" || f.Signals[0].Kind != Attacks ||
		f.Signals[0].Detail != "Apache Log4j2: Apache Log4j2 Remote Code Execution Vulnerability" || !f.Signals[1].Date.Equal(time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("KEV feed = %+v", f)
	}
	f, err = Parse([]byte(simpleSample), "simple.json")
	if err != nil {
		t.Fatal(err)
	}
	if f.Format != FormatSimple || len(f.Signals) != 2 || f.Signals[0].Kind != ExploitPublic ||
		strings.Join(f.Signals[0].IDs(), ",") != "CVE-2026-1234,GHSA-2F3Q-X8V6-9C4M" || f.Signals[1].Kind != Public {
		t.Errorf("simple feed = %+v", f)
	}
	for _, tc := range []struct{ src, want string }{
		{`[1,2]`, "not JSON"},
		{`{"items": []}`, "neither a CISA KEV catalog"},
		{`{"vulnerabilities": [{"cveID": "Log4Shell"}]}`, `vulnerability 1: cveID "Log4Shell" is not a CVE id`},
		{`{"format": "other/2", "signals": []}`, `format "other/2" is not "vultron-intel/1"`},
		// A signal with a well-formed id is named by it whatever else is
		// wrong with it.
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE-2026-1234", "kind": "rumour"}]}`, `signal 1 (id "CVE-2026-1234"): kind "rumour"`},
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE-2026-1234", "kind": "public", "aliases": ["bad id!"]}]}`, `signal 1 (id "CVE-2026-1234"): alias "bad id!"`},
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE 2026", "kind": "public"}]}`, `signal 1: id "CVE 2026"`},
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE-2026-1234", "kind": "public", "severity": 9}]}`, `signal 1 (id "CVE-2026-1234"): unknown field "severity"`},
		// A member the format does not have, or of the wrong type, names
		// the signal by its place and, when it has one, its id.
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE-2026-1111", "kind": "public"}, {"id": "CVE-2026-2222", "kind": "public", "extra": 1}]}`,
			`f.json: signal 2 (id "CVE-2026-2222"): unknown field "extra"`},
		{`{"format": "vultron-intel/1", "signals": [{"kind": "public", "aliases": "GHSA-2f3q-x8v6-9c4m"}]}`, `f.json: signal 1: member "aliases" cannot be a string`},
		{`{"format": "vultron-intel/1", "signals": [{"id": 7, "kind": "public"}]}`, `f.json: signal 1: member "id" cannot be a number`},
		{`{"format": "vultron-intel/1", "signals": [7]}`, `f.json: signal 1: it is a number, not an object`},
		{`{"format": "vultron-intel/1", "signals": [], "extra": 1}`, `f.json: unknown field "extra"`},
		{`{"vulnerabilities": [{"cveID": "CVE-2021-1111"}, {"cveID": "CVE-2021-44228", "dateAdded": 20211210}]}`, `f.json: vulnerability 2 (cveID "CVE-2021-44228"): member "dateAdded" cannot be a number`},
		{`{"format": "vultron-intel/1", "signals": [{"id": "CVE-2026-1234", "kind": "public", "date": "yesterday"}]}`, `signal 1 (id "CVE-2026-1234"): date "yesterday"`},
	} {
		if _, err := Parse([]byte(tc.src), "f.json"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want an error with %q", tc.src, err, tc.want)
		}
	}
	if _, err := Parse(make([]byte, MaxFeedSize+1), "big.json"); err == nil || !strings.Contains(err.Error(), "over the") {
		t.Errorf("a feed over the limit: %v", err)
	}
}

// TestPollFileAndURL polls a feed file and a feed URL: each is handed
// over when it changed and not again when it did not; a failing URL backs
// off.
func TestPollFileAndURL(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "feed.json")
	if err := os.WriteFile(file, []byte(simpleSample), 0o600); err != nil {
		t.Fatal(err)
	}
	var hits, failing atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if failing.Load() > 0 {
			failing.Add(-1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Write([]byte(kevSample))
	}))
	defer srv.Close()
	var mu sync.Mutex
	var got []string
	p, err := NewPoller(PollerConfig{Sources: []string{file, srv.URL + "/kev.json"},
		Client: actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: true, MaxBody: MaxFeedSize}),
		OnFeed: func(_ context.Context, f Feed) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, f.Format)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 {
		if err := p.Poll(ctx, file); err != nil {
			t.Fatal(err)
		}
		if err := p.Poll(ctx, srv.URL+"/kev.json"); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Join(got, ",") != FormatSimple+","+FormatKEV {
		t.Errorf("feeds handed over: %v, want each once", got)
	}
	// The file changes: it is read again.
	if err := os.WriteFile(file, []byte(strings.Replace(simpleSample, "public\"}", "attacks\"}", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(file, future, future); err != nil {
		t.Fatal(err)
	}
	if err := p.Poll(ctx, file); err != nil || len(got) != 3 {
		t.Errorf("after the file changed: %v, handed over %v", err, got)
	}
	failing.Store(1)
	if err := p.Poll(ctx, srv.URL+"/kev.json"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a failing source: %v", err)
	}
	// Backoff doubles from the first wait up to the last, less jitter.
	for n, want := range map[int]time.Duration{1: time.Minute, 3: 4 * time.Minute, 20: 6 * time.Hour} {
		if d := p.backoff(n); d > want || d < want*3/4 {
			t.Errorf("backoff after %d failures = %s, want within [%s, %s]", n, d, want*3/4, want)
		}
	}
	// A private address is refused by the safe client a node uses.
	strict, err := NewPoller(PollerConfig{Sources: []string{srv.URL}, Client: actor.NewSafeClient(actor.SafeClientOptions{}),
		OnFeed: func(context.Context, Feed) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if err := strict.Poll(ctx, srv.URL); err == nil || !errors.Is(err, actor.ErrAddressRefused) {
		t.Errorf("polling 127.0.0.1 with the safe client: %v", err)
	}
}

// TestMatchesAndOffer finds the cases a feed speaks of by CVE id and by
// alias, and offers each kind of signal once per case.
func TestMatchesAndOffer(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for id, vids := range map[string][]string{
		"https://v.example/cases/a": {"CVE-2026-1234"},
		"https://v.example/cases/b": {"CVE-2025-1", "GHSA-2F3Q-X8V6-9C4M"},
		"https://v.example/cases/c": {"CVE-2025-2"},
	} {
		c := &cases.Case{ID: id, Owner: "https://v.example/actors/v", VulnerabilityIDs: vids}
		if err := db.Update(ctx, func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
			t.Fatal(err)
		}
	}
	f, err := Parse([]byte(simpleSample), "simple.json")
	if err != nil {
		t.Fatal(err)
	}
	var ms []Match
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		ms, err = Matches(tx, f)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].CaseID != "https://v.example/cases/a" || ms[1].CaseID != "https://v.example/cases/b" ||
		ms[1].MatchedID != "GHSA-2F3Q-X8V6-9C4M" || ms[0].Signal.Kind.Bit() != 2 {
		t.Fatalf("matches = %+v", ms)
	}
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	for round, want := range []bool{true, false} {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			ok, err := Offer(tx, ms[0], now)
			if ok != want {
				t.Errorf("round %d: Offer = %v, want %v", round, ok, want)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var all, forA []Offered
	if err := db.View(ctx, func(tx *store.ReadTx) error {
		if all, err = OfferedAll(tx, 10); err != nil {
			return err
		}
		forA, err = OfferedFor(tx, "https://v.example/cases/a")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || len(forA) != 1 || forA[0].Signal.Detail != "a proof of concept on a public repository" {
		t.Errorf("offered: all %+v, for a %+v", all, forA)
	}
}

// TestFeedURLCredentialsStayOut: a feed URL may carry its credentials, a
// password or an API key in its query; neither reaches what the node
// writes or sends of the feed: the errors and log lines of its fetches and
// the Source of its signals, which the change feed, the webhooks, the API
// and the dashboard show. They name the feed by its scheme, host and path.
func TestFeedURLCredentialsStayOut(t *testing.T) {
	var failing atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(kevSample))
	}))
	defer srv.Close()
	src := strings.Replace(srv.URL, "http://", "http://reader:pa55word@", 1) + "/kev.json?api_key=k3y-s3cret"
	var logs strings.Builder
	var sources []string
	p, err := NewPoller(PollerConfig{Sources: []string{src},
		Client: actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: true, MaxBody: MaxFeedSize}),
		Logger: zerolog.New(&logs),
		OnFeed: func(_ context.Context, f Feed) error {
			sources = append(sources, f.Source)
			for _, s := range f.Signals {
				sources = append(sources, s.Source)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := p.Poll(ctx, src); err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	var said []string
	if err := p.Poll(ctx, src); err == nil {
		t.Fatal("a failing feed polled without an error")
	} else {
		said = append(said, err.Error())
	}
	// An address nothing listens on: the client's own error.
	gone := strings.Replace(src, srv.Listener.Addr().String(), "127.0.0.1:1", 1)
	if err := p.Poll(ctx, gone); err == nil {
		t.Fatal("an unreachable feed polled without an error")
	} else {
		said = append(said, err.Error())
	}
	said = append(said, logs.String())
	said = append(said, sources...)
	if len(sources) < 2 {
		t.Fatalf("the feed's signals: %v", sources)
	}
	for _, s := range said {
		if strings.Contains(s, "pa55word") || strings.Contains(s, "k3y-s3cret") {
			t.Errorf("a feed's credentials in %q", s)
		}
	}
	if want := "/kev.json"; !strings.Contains(sources[0], want) {
		t.Errorf("the feed's source %q does not name its path %s", sources[0], want)
	}
}

// TestAFeedTooBigNamesItsURLWithoutCredentials: the safe client's refusal
// of a feed over its size names the URL it fetched; the error the poller
// returns names it as shown.
func TestAFeedTooBigNamesItsURLWithoutCredentials(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(MaxFeedSize+10))
		w.Write(make([]byte, MaxFeedSize+10))
	}))
	defer srv.Close()
	src := srv.URL + "/kev.json?api_key=k3y-s3cret"
	p, err := NewPoller(PollerConfig{Sources: []string{src},
		Client: actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: true, MaxBody: MaxFeedSize}),
		OnFeed: func(context.Context, Feed) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	err = p.Poll(context.Background(), src)
	if err == nil || strings.Contains(err.Error(), "k3y-s3cret") || !errors.Is(err, actor.ErrBodyTooLarge) {
		t.Errorf("a feed over its size: %v; want ErrBodyTooLarge without the URL's query", err)
	}
}
