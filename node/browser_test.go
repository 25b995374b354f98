package node

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumPath is Debian's Chromium, which `make browser-deps` installs.
const chromiumPath = "/usr/bin/chromium"

// TestDashboardInBrowser drives the dashboard in headless Chromium: log in
// with the token, open a case, accept the finder's embargo proposal through
// the form, and see a change made by another participant arrive on the open
// page over Server-Sent Events, without a reload.
func TestDashboardInBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is needed at %s for the dashboard's browser test: run `make browser-deps` (%v)", chromiumPath, err)
	}
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Browser test report","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c caseSummary) bool { return c.LedgerLength == 2 }).ID
	finder.oneCase(t, "the finder's replica", func(c caseSummary) bool { return c.LedgerLength == 2 })
	// The finder proposes an embargo; the vendor, owner, will accept it in
	// the browser.
	end := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
		time.Now().UTC().Format(time.RFC3339), end, caseID))
	vendor.oneCase(t, "the proposal at the vendor", func(c caseSummary) bool { return c.EMState == "PROPOSED" })

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
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	defer cancelCtx()
	bctx := ctx
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()

	casePage := vendor.url + "/ui/cases/" + url.PathEscape(caseID)
	err := chromedp.Do(ctx,
		// Opening the case sends the browser to the login page first.
		chromedp.Navigate(casePage),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), vendor.token),
		chromedp.Click(chromedp.ID("login")),
		// Back on the case page, with the proposal to answer.
		chromedp.WaitVisible(chromedp.CSS("button.accept-embargo")),
	)
	if err != nil {
		t.Fatalf("log in and open the case: %v", err)
	}
	if em, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID("em-state"))); err != nil || em != "PROPOSED" {
		t.Fatalf("the case page shows the embargo %q (%v), want PROPOSED", em, err)
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
