package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
)

// chromiumPath is Debian's Chromium, which `make browser-deps` installs.
const chromiumPath = "/usr/bin/chromium"

// screenshotsEnv names the directory the browser test writes the README's
// screenshots to; unset, it writes none.
const screenshotsEnv = "VULTRON_SCREENSHOTS"

// TestDashboardInBrowser drives the dashboard in headless Chromium: log in
// as an analyst with a password, open a case, read its report and its participants by
// name, accept the finder's embargo proposal through the form and find
// the chart's labels apart, see a change made by another participant
// arrive on the open page over Server-Sent Events without a reload, and
// close the case, whose page then offers no form. With VULTRON_SCREENSHOTS
// set to a directory, it saves the case list and the case page there as
// PNG images.
func TestDashboardInBrowser(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Heap overflow in the widget parser","content":%q}}`, vendorID, browserReportText))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	// The finder proposes an embargo; the vendor, owner, will accept it in
	// the browser.
	end := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
		time.Now().UTC().Format(time.RFC3339), end, caseID))
	vendor.oneCase(t, "the proposal at the vendor", func(c api.Case) bool { return c.EMState == "PROPOSED" })

	password := vendor.person(t, "vic", accounts.Analyst, "vendor")
	ctx := browserTab(t)
	bctx := ctx
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()

	casePage := vendor.url + "/ui/cases/" + url.PathEscape(caseID)
	err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1200, 900),
		// Opening the case sends the browser to the login page first.
		chromedp.Navigate(casePage),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "vic"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login")),
		// Back on the case page, with the proposal to answer.
		chromedp.WaitVisible(chromedp.CSS("button.accept-embargo")),
	)
	if err != nil {
		t.Fatalf("log in and open the case: %v", err)
	}
	// Read through waitText: the live view may replace the element between
	// finding it and reading it, when a commit (a delivery's completion)
	// makes the page load its parts again.
	if err := chromedp.Do(ctx, waitText("#em-state", "PROPOSED")); err != nil {
		t.Fatalf("the case page's embargo: %v", err)
	}
	// The report's text reads as the finder wrote it, markup as text.
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#reports .report-text").innerText`))
	if err != nil || text != browserReportText {
		t.Errorf("the case page shows the report's text as %q (%v), want %q", text, err, browserReportText)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#reports img").length`)); err != nil || n != 0 {
		t.Errorf("the report's markup became %d elements (%v)", n, err)
	}
	// The finder, on another node, by the name its document gives, with
	// its id on hover.
	if err := chromedp.Do(ctx, waitText(`table.participants .actor[title="`+finderID+`"]`, "finder")); err != nil {
		t.Errorf("the finder is not shown by name: %v", err)
	}
	// Accept through the form; the page loads again after the POST and the
	// Case Actor's record arrives live.
	err = chromedp.Do(ctx,
		clickLive("button.accept-embargo"),
		chromedp.WaitVisible(chromedp.CSS("p.flash.ok")),
		waitText("#em-state", "ACTIVE"),
	)
	if err != nil {
		dctx, dc := context.WithTimeout(bctx, 5*time.Second)
		defer dc()
		dbg, derr := chromedp.Run(dctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText.slice(0, 1500)`))
		t.Logf("debug (%v): %s", derr, dbg)
		t.Fatalf("accept the embargo in the browser: %v", err)
	}
	// The proposal and its acceptance a moment later are both named, and
	// no label of the chart covers another.
	if err := chromedp.Do(ctx, waitLabels("EP", "EA")); err != nil {
		t.Errorf("the embargo chart: %v", err)
	}
	if dir := os.Getenv(screenshotsEnv); dir != "" {
		// A second report waits for the vendor's decision in the list.
		finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Path traversal in the export endpoint","content":%q}}`, vendorID, screenshotReportText))
		waitFor(t, "the second report at the vendor", func() bool { return len(vendor.inboxItems(t, "vendor")) >= 2 })
		finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":%q},"target":%q,"context":%q}`,
			"A fix is on our side too: we will confirm it against the vendor's build.", caseID, caseID))
		waitFor(t, "the note at the vendor", func() bool { return vendor.caseDetail(t, caseID)["notesTotal"] == float64(1) })
		saveScreenshot(t, ctx, dir, "case.png", casePage, "#reports")
		saveScreenshot(t, ctx, dir, "cases.png", vendor.url+"/", "#pending")
		if err := chromedp.Do(ctx, chromedp.Navigate(casePage), chromedp.WaitVisible(chromedp.ID("em-state"))); err != nil {
			t.Fatalf("back to the case page: %v", err)
		}
	}
	// Mark the page, then let the finder report publication from its own
	// node. The vendor's page must show it without navigating: the mark
	// survives, the state changes.
	if marked, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__stillHere = true; true`)); err != nil || !marked {
		t.Fatalf("mark the page: %v", err)
	}
	part := participantIDOn(t, finder, caseID, finderID)
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","target":%q,"context":%q,
"object":{"type":"ParticipantStatus","context":%q,"caseStatus":{"type":"CaseStatus","pxaState":"Pxa"}}}`, part, caseID, part))
	if err := chromedp.Do(ctx, waitText("#pxa-state", "Pxa"), waitText("#em-state", "EXITED")); err != nil {
		t.Fatalf("the finder's publication did not arrive on the open page: %v", err)
	}
	if still, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__stillHere === true`)); err != nil || !still {
		t.Errorf("the page was reloaded instead of updated in place (%v)", err)
	}
	// The embargo ended early: the page says so and counts down nothing.
	if err := chromedp.Do(ctx, waitContains("dl.states", "ended early")); err != nil {
		t.Errorf("the ended embargo: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("dl.states .countdown").length`)); err != nil || n != 0 {
		t.Errorf("an ended embargo still counts down (%d countdowns, %v)", n, err)
	}
	// The vendor engages and closes in the browser, the finder closes from
	// its node: the case is closed and its page offers no form.
	err = chromedp.Do(ctx,
		clickLive("button.engage"), waitContains("p.flash.ok", "Engaged"),
		clickLive("button.close"), waitContains("p.flash.ok", "Closed the case for every participant"),
	)
	if err != nil {
		t.Fatalf("engage and close in the browser: %v", err)
	}
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID))
	if err := chromedp.Do(ctx, waitContains("#act", "This case is closed")); err != nil {
		t.Fatalf("the closed case: %v", err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main form button[name=action], main form input[name=action]").length`)); err != nil || n != 0 {
		t.Errorf("the page of a closed case has %d action controls (%v), want none", n, err)
	}
}

// sharedChromium is the test binary's one headless Chromium: each browser
// test opens a tab in a browser context of its own (its own cookies), so
// the tests pay for one start of the browser. TestMain closes it.
var sharedChromium struct {
	once   sync.Once
	ctx    context.Context
	cancel context.CancelFunc
	dir    string
	err    error
}

// browserTab returns a new tab, in a fresh browser context of the shared
// Chromium, that closes when the test ends.
func browserTab(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed at %s for the dashboard's browser tests: run `make browser-deps` (%v)", chromiumPath, err)
	}
	sc := &sharedChromium
	sc.once.Do(func() {
		sc.dir, sc.err = os.MkdirTemp("", "vultron-chromium-")
		if sc.err != nil {
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(chromiumPath),
			chromedp.Flag("headless", true),
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.Flag("disable-quic", true),
			chromedp.NoFirstRun,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			// localhost is the loopback address, never looked up.
			chromedp.Flag("host-resolver-rules", "MAP localhost 127.0.0.1"),
			chromedp.UserDataDir(sc.dir),
		)
		alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		browser, cancelBrowser := chromedp.NewContext(alloc)
		// Start the browser now, in the context that outlives the tests.
		if sc.err = chromedp.Do(browser); sc.err != nil {
			cancelBrowser()
			cancelAlloc()
			return
		}
		sc.ctx, sc.cancel = browser, func() { cancelBrowser(); cancelAlloc(); os.RemoveAll(sc.dir) }
	})
	if sc.err != nil {
		t.Fatalf("start Chromium: %v", sc.err)
	}
	tab, cancel := chromedp.NewContext(sc.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	return tab
}

// closeChromium stops the shared Chromium, if a test started it.
func closeChromium() {
	if sharedChromium.cancel != nil {
		sharedChromium.cancel()
	}
}

// The report of the browser test: markup that must read as text, and a
// line break that must stay one.
const (
	browserReportText    = "A crafted widget file overflows a heap buffer in parse_widget().\nProof of concept: <img src=x onerror=alert(1)> in the title field."
	screenshotReportText = "GET /export?file=../../etc/passwd returns the file.\nAffects 4.2 and later; the fix normalises the path before opening it."
)

// saveScreenshot loads page, waits for the element sel, and saves the
// whole page as name in dir.
func saveScreenshot(t *testing.T, ctx context.Context, dir, name, page, sel string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("open %s for its screenshot: %v", page, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", page, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", filepath.Join(dir, name))
}

// waitLabels waits until the embargo chart names each of the steps, and
// then checks, by the boxes the browser laid the text out in, that none
// of its texts covers another.
func waitLabels(steps ...string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		const script = `(() => {
  const texts = [...document.querySelectorAll("svg.embargo text")];
  const boxes = texts.map(t => ({text: t.textContent, r: t.getBoundingClientRect()}));
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom)
        overlaps.push(boxes[i].text + " / " + boxes[j].text);
    }
  return JSON.stringify({labels: boxes.map(b => b.text).join(" "), overlaps: overlaps});
})()`
		var last string
		for {
			out, err := chromedp.Run(ctx, chromedp.Evaluate[string](script))
			if err == nil {
				var got struct {
					Labels   string   `json:"labels"`
					Overlaps []string `json:"overlaps"`
				}
				if err := json.Unmarshal([]byte(out), &got); err != nil {
					return err
				}
				all := true
				for _, s := range steps {
					all = all && strings.Contains(got.Labels, s)
				}
				if all {
					if len(got.Overlaps) > 0 {
						return fmt.Errorf("labels overlap: %s", strings.Join(got.Overlaps, "; "))
					}
					return nil
				}
				last = got.Labels
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the chart names %q, want %v: %w", last, steps, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// waitContains waits until the element's text contains want.
func waitContains(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var got string
		for {
			if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.AtLeast(0))); err == nil {
				if got = text; strings.Contains(got, want) {
					return nil
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s shows %q, want it to contain %q: %w", sel, got, want, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// The page's script replaces its content in place when the case changes,
// so an element found a moment ago may be gone when it is read or clicked
// ("No node with given id found"); the helpers below try again.

// waitText waits until the element's text is want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var got string
		var lastErr error
		for {
			text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
			if err == nil {
				if got = strings.TrimSpace(text); got == want {
					return nil
				}
			}
			lastErr = err
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s shows %q, want %q (last error: %v): %w", sel, got, want, lastErr, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// clickLive clicks the element, finding it again if the page replaced it
// between finding and clicking.
func clickLive(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		for {
			_, err := chromedp.Run(ctx, chromedp.Click(chromedp.CSS(sel)))
			if err == nil || !strings.Contains(err.Error(), "No node with given id") {
				return err
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("click %s: %w (last error: %v)", sel, ctx.Err(), err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

// participantIDOn returns the CaseParticipant id of actor in a case, as
// node n shows it.
func participantIDOn(t *testing.T, n *testNode, caseID, actor string) string {
	t.Helper()
	for _, p := range n.caseDetail(t, caseID)["participants"].([]any) {
		if m := p.(map[string]any); m["actor"] == actor {
			return m["id"].(string)
		}
	}
	t.Fatalf("%s is not a participant of %s", actor, caseID)
	return ""
}
