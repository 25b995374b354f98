package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/intel"
)

// TestIntelFeedOffersSignals: a vendor's node polls a feed file the test
// writes; once the vendor's case records the CVE the feed lists, the node
// offers the signal (API, webhook event, case page) once, and not for a
// case that records another id.
func TestIntelFeedOffersSignals(t *testing.T) {
	feed := filepath.Join(t.TempDir(), "kev.json")
	if err := os.WriteFile(feed, []byte(`{"vulnerabilities": [{"cveID": "CVE-2026-7777", "vendorProject": "Example", "product": "Widget", "vulnerabilityName": "Widget RCE", "dateAdded": "2026-12-01"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	finder := startNode(t, "finder:Person")
	vendor, sink := startWithSink(t, Config{IntelFeeds: []string{feed}, IntelInterval: 30 * time.Millisecond}, "vendor:Organization")

	openCase := func(name string) string {
		t.Helper()
		offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"x"}}`, vendor.actorID("vendor"), name))
		waitFor(t, "the offer at the vendor", func() bool {
			for _, it := range vendor.inboxItems(t, "vendor") {
				if it["id"] == offerID {
					return true
				}
			}
			return false
		})
		known := map[string]bool{}
		for _, c := range vendor.cases(t) {
			known[c.ID] = true
		}
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
		id := ""
		waitFor(t, "the case of "+name, func() bool {
			for _, c := range vendor.cases(t) {
				if !known[c.ID] {
					id = c.ID
				}
			}
			return id != ""
		})
		return id
	}
	listed, other := openCase("listed"), openCase("other")
	addCVE := func(caseID, cve string) {
		t.Helper()
		vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Add","object":{"type":"VulnerabilityRecord","name":%q},"target":%q,"context":%q}`, cve, caseID, caseID))
	}
	addCVE(other, "CVE-2026-0001")
	addCVE(listed, "CVE-2026-7777")

	type signals struct {
		Signals []struct {
			Case      string `json:"case"`
			MatchedID string `json:"matchedId"`
			Open      bool   `json:"open"`
			Signal    struct {
				Kind   string `json:"kind"`
				Detail string `json:"detail"`
			} `json:"signal"`
		} `json:"signals"`
	}
	var got signals
	waitFor(t, "the signal for the listed case", func() bool {
		// The feed did not change since the case recorded its CVE: the node
		// matches the next version; touch it as a feed's publisher would.
		now := time.Now()
		os.Chtimes(feed, now, now)
		status, body := vendor.api(t, http.MethodGet, "/api/intel", "")
		if status != http.StatusOK {
			t.Fatalf("GET /api/intel: %d %s", status, body)
		}
		got = signals{}
		json.Unmarshal(body, &got)
		return len(got.Signals) > 0
	})
	if len(got.Signals) != 1 || got.Signals[0].Case != listed || got.Signals[0].MatchedID != "CVE-2026-7777" || !got.Signals[0].Open ||
		got.Signals[0].Signal.Kind != "attacks" || got.Signals[0].Signal.Detail != "Example Widget: Widget RCE" {
		t.Fatalf("signals = %+v", got)
	}
	// One case's signals and deadlines, named by its short id (as every
	// command prints it) or its id; a case= that names no case is a 404.
	count := func(path string, into any) {
		t.Helper()
		status, body := vendor.api(t, http.MethodGet, path, "")
		if status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatal(err)
		}
	}
	var all api.Deadlines
	count("/api/deadlines?case="+url.QueryEscape(listed), &all)
	if len(all.Deadlines) == 0 {
		t.Fatalf("deadlines of the listed case: none, want its clock to engage")
	}
	for _, c := range []string{cases.ShortID(listed), url.QueryEscape(listed)} {
		var sigs signals
		count("/api/intel?case="+c, &sigs)
		if len(sigs.Signals) != 1 || sigs.Signals[0].Case != listed {
			t.Errorf("/api/intel?case=%s: %+v, want the listed case's signal", c, sigs)
		}
		var ds, one api.Deadlines
		count("/api/deadlines?case="+c, &ds)
		count("/api/deadlines?limit=1&case="+c, &one)
		if len(ds.Deadlines) != len(all.Deadlines) || len(one.Deadlines) != 1 ||
			one.Deadlines[0].Kind != all.Deadlines[0].Kind || one.Deadlines[0].Participant != all.Deadlines[0].Participant || !one.Deadlines[0].Due.Equal(all.Deadlines[0].Due) {
			t.Errorf("/api/deadlines?case=%s: %d deadlines, %+v with limit=1; want %d and the first, %+v", c, len(ds.Deadlines), one.Deadlines, len(all.Deadlines), all.Deadlines[0])
		}
	}
	var none signals
	if count("/api/intel?case="+cases.ShortID(other), &none); len(none.Signals) != 0 {
		t.Errorf("/api/intel for the other case: %+v, want none", none)
	}
	for _, c := range []string{"nosuch", url.QueryEscape(vendor.url + "/cases/nosuch")} {
		status, body := vendor.api(t, http.MethodGet, "/api/intel?case="+c, "")
		if status != http.StatusNotFound || !strings.Contains(string(body), `{"error":"case=`) || !strings.Contains(string(body), "names no case on this node") {
			t.Errorf("GET /api/intel?case=%s: %d %s, want 404 saying it names no case", c, status, body)
		}
	}
	waitFor(t, "the intel event at the webhook", func() bool {
		for _, d := range sink.snapshot() {
			if d.Event == "intel_attacks_observed" && d.Case == listed {
				return true
			}
		}
		return false
	})
	// Taken in again, the feed offers nothing more: the signal was offered.
	data, err := os.ReadFile(feed)
	if err != nil {
		t.Fatal(err)
	}
	f, err := intel.Parse(data, feed)
	if err != nil {
		t.Fatal(err)
	}
	last, err := vendor.db.LastEventSeq(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := vendor.takeFeed(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if again, _ := vendor.db.LastEventSeq(t.Context()); again != last {
		t.Errorf("taking in the feed again appended %d events to the change feed, want none", again-last)
	}
	// A catalog lists every past entry: a new entry behind the one already
	// offered, which the other case records, is offered too.
	f.Signals = append(f.Signals, intel.Signal{ID: "CVE-2026-0001", Kind: f.Signals[0].Kind, Source: f.Signals[0].Source})
	if err := vendor.takeFeed(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	var both signals
	if count("/api/intel", &both); len(both.Signals) != 2 {
		t.Errorf("signals after a feed whose new entry follows one already offered: %+v, want the other case's too", both)
	}
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	page := b.get("/ui/cases/" + url.PathEscape(listed))
	for _, want := range []string{"Threat intelligence", "attacks: CVE-2026-7777 (Example Widget: Widget RCE)", "Deadlines"} {
		if !strings.Contains(page, want) {
			t.Errorf("the case page lacks %q", want)
		}
	}
}
