package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
)

var (
	// proposalRE finds the open embargo proposal a case page offers
	// answers to, maxlengthRE the longest note its text area takes.
	proposalRE  = regexp.MustCompile(`name="proposal" value="([^"]+)"`)
	maxlengthRE = regexp.MustCompile(`<textarea name="content"[^>]*maxlength="(\d+)"`)
	flashRE     = regexp.MustCompile(`(?s)<p class="flash[^"]*"[^>]*>(.*?)</p>`)
)

// flashOf returns the message a page shows of the last form, "" when it
// shows none.
func flashOf(page string) string {
	if m := flashRE.FindStringSubmatch(page); m != nil {
		return m[1]
	}
	return ""
}

// TestDashboardFormShowsOutcome checks that the page a form redirects to
// shows the case as the Case Actor recorded the activity, without
// JavaScript and without reloading: on the node that hosts the case and
// on a participant's node, whose copy learns it from the Case Actor's
// announcement. The Case Actor's refusal is shown as one, and when the
// Case Actor does not answer in time, the page says the activity was
// sent, not that it took effect.
func TestDashboardFormShowsOutcome(t *testing.T) {
	// The finder's node would take a longer embargo than the vendor's,
	// whose Case Actor refuses it.
	c := openDashboardCaseWith(t, Config{MaxEmbargo: 1000 * 24 * time.Hour})

	end := time.Now().Add(40 * 24 * time.Hour).UTC().Format("2006-01-02")
	page := c.act("vendor", "propose-embargo", "end", end)
	if !strings.Contains(page, "Embargo proposed, ending "+end) || !strings.Contains(page, "Accept (EA)") {
		t.Fatalf("the page after proposing does not show the proposal recorded:\n%s", section(page, `id="act"`))
	}
	proposal := proposalRE.FindStringSubmatch(page)[1]
	page = c.act("vendor", "accept-embargo", "proposal", proposal)
	if !strings.Contains(page, "Embargo proposal accepted.") || !strings.Contains(page, `id="em-state">ACTIVE<`) || strings.Contains(page, `value="accept-embargo"`) {
		t.Fatalf("the page after accepting does not show the embargo in force, or still offers to accept:\n%s", page)
	}

	// The finder's node holds a copy of the case: its page shows the note
	// once the Case Actor on the vendor's node recorded it and said so.
	fb := newBrowser(t, c.finder.url)
	fb.login(c.finder)
	page = fb.act(c.path, csrfOf(t, fb.get(c.path)), "finder", "note", "content", "first")
	if !strings.Contains(page, "Note added.") || !strings.Contains(page, "Notes (1)") {
		t.Fatalf("the finder's page after its note does not show it:\n%s", page)
	}
	long := time.Now().Add(400 * 24 * time.Hour).UTC().Format("2006-01-02")
	page = fb.act(c.path, csrfOf(t, page), "finder", "propose-embargo", "end", long)
	if flash := flashOf(page); !strings.Contains(flash, "Refused by the Case Actor: ") || !strings.Contains(flash, "at most 365 days") {
		t.Errorf("the page after a proposal the Case Actor refused:\n%s", flash)
	}

	// The Case Actor's node is down: the note is sent, and the page says
	// so rather than that it was added.
	c.vendor.stop()
	page = fb.act(c.path, csrfOf(t, page), "finder", "note", "content", "second")
	if strings.Contains(page, "Note added.") || !strings.Contains(page, "Note sent") || !strings.Contains(page, "once the Case Actor records it") || !strings.Contains(page, "Notes (1)") {
		t.Errorf("the page after a note the Case Actor did not record:\n%s", page)
	}
}

// TestDashboardShortCaseIDs checks that the case page takes a case's
// short id, as the API does, and sends the browser to the case's
// canonical address; that a form names the case by it too; and that a
// form for a case the node does not hold is refused on the page it
// answers with, not on the next one.
func TestDashboardShortCaseIDs(t *testing.T) {
	c := openDashboardCase(t)
	short := "/ui/cases/" + cases.ShortID(c.id)

	resp, body := c.b.do(http.MethodGet, short, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != c.path {
		t.Fatalf("GET %s: %d to %q, want 303 to %s\n%s", short, resp.StatusCode, resp.Header.Get("Location"), c.path, body)
	}
	page := c.b.act(short, c.csrf, "vendor", "note", "content", "by short id")
	if !strings.Contains(page, "Note added.") || !strings.Contains(page, "by short id") {
		t.Errorf("a note posted to the short id is not on the case page:\n%s", page)
	}

	resp, body = c.b.do(http.MethodGet, "/ui/cases/nonexistent", nil)
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "nonexistent") || !strings.Contains(body, "on this node") {
		t.Errorf("GET of an unknown case: %d\n%s", resp.StatusCode, body)
	}
	resp, body = c.b.do(http.MethodPost, "/ui/cases/nonexistent", url.Values{"csrf": {c.csrf}, "action": {"note"}, "as": {"vendor"}, "content": {"x"}})
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Refused: ") || !strings.Contains(body, "nonexistent") {
		t.Fatalf("a form for an unknown case: %d, want 404 saying it was refused\n%s", resp.StatusCode, body)
	}
	if page := c.b.get("/"); flashOf(page) != "" {
		t.Errorf("the refusal of a form for an unknown case shows on the next page:\n%s", flashOf(page))
	}
}

// TestDashboardLongNote checks that a note as long as the outbox takes
// from the API is taken from the case page too, that the text area says
// how long a note may be, and that a longer note or form is refused with
// a sentence that gives the limit, and nothing is stored.
func TestDashboardLongNote(t *testing.T) {
	c := openDashboardCase(t)
	if m := maxlengthRE.FindStringSubmatch(c.page); m == nil {
		t.Errorf("the note's text area gives no maxlength:\n%s", section(c.page, `class="note"`))
	} else if n, _ := strconv.Atoi(m[1]); n < 250_000 || n >= 256<<10 {
		t.Errorf("the note's maxlength is %d, want the node's 256 KiB body limit less the activity around the note", n)
	}

	line := "A line of the note, with words, <markup> & a newline.\n"
	note := strings.Repeat(line, 70_004/len(line)+1)[:70_004]
	page := c.act("vendor", "note", "content", note)
	if !strings.Contains(page, "Note added.") || !strings.Contains(page, "Notes (1)") {
		t.Fatalf("a note of 70,004 characters was not added:\n%s", flashOf(page))
	}

	// Over the limit of an activity: refused with the limit, not stored.
	page = c.act("vendor", "note", "content", strings.Repeat("x", 256<<10))
	if !strings.Contains(page, "Refused: the note is too long") || !strings.Contains(page, strconv.Itoa(256<<10)) || !strings.Contains(page, "Notes (1)") {
		t.Errorf("a note over the limit was not refused with the limit:\n%s", flashOf(page))
	}
	// A form larger than the node reads: the page says how large a note
	// may be.
	resp, body := c.b.do(http.MethodPost, c.path, url.Values{"csrf": {c.csrf}, "action": {"note"}, "as": {"vendor"}, "content": {strings.Repeat("%", 1<<20)}})
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, strconv.Itoa(256<<10)) || !strings.Contains(body, "nothing was sent") {
		t.Errorf("a form over the limit: %d\n%s", resp.StatusCode, body)
	}
	if got := c.vendor.caseDetail(t, c.id)["notesTotal"]; got != float64(1) {
		t.Errorf("the case has %v notes, want 1", got)
	}
}

// TestDashboardWithdrawOwnProposal checks that a proposer that takes
// back its own embargo proposal (ER) is told it withdrew it, not that it
// rejected it.
func TestDashboardWithdrawOwnProposal(t *testing.T) {
	c := openDashboardCase(t)
	page := c.act("vendor", "propose-embargo", "end", time.Now().Add(40*24*time.Hour).UTC().Format("2006-01-02"))
	m := proposalRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no proposal on the page after proposing:\n%s", section(page, `id="act"`))
	}
	page = c.act("vendor", "reject-embargo", "proposal", m[1])
	if flash := flashOf(page); flash != "Embargo proposal withdrawn." {
		t.Errorf("withdrawing one's own proposal says %q, want \"Embargo proposal withdrawn.\"", flash)
	}
}

// TestDashboardInviteUnreachableActor checks that an invitation of an
// actor whose host does not exist is refused with a sentence that says so
// without the node's resolver or Go's error chain, on the page and in the
// API's answer.
func TestDashboardInviteUnreachableActor(t *testing.T) {
	c := openDashboardCase(t)
	invitee := "http://nonexistent.invalid/actors/x"
	flash := flashOf(c.act("vendor", "invite", "actor", invitee, "role", "vendor"))
	if !strings.Contains(flash, "Refused: ") || !strings.Contains(flash, "could not be fetched (host not found)") {
		t.Errorf("inviting an actor on a host that does not exist:\n%s", flash)
	}
	status, body := c.vendor.api(t, http.MethodPost, "/actors/vendor/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q}`, invitee, c.id, c.id))
	var refusal struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(body, &refusal); err != nil || status != http.StatusUnprocessableEntity || !strings.Contains(refusal.Error, "could not be fetched (host not found)") {
		t.Errorf("the API's invitation of an actor on a host that does not exist: %d %s", status, body)
	}
	for _, internal := range []string{"lookup", "dial tcp", ":53", "Get \""} {
		if strings.Contains(flash, internal) || strings.Contains(refusal.Error, internal) {
			t.Errorf("a refused invitation shows %q:\n%s\n%s", internal, flash, refusal.Error)
		}
	}
}

// TestEmbargoEndThatHasPassed: a proposal whose end has passed (a date
// before today, or today, whose 00:00 UTC is behind) is refused on the
// page with the date the analyst chose, and nothing is sent.
func TestEmbargoEndThatHasPassed(t *testing.T) {
	c := openDashboardCase(t)
	for _, end := range []string{"2020-01-01", time.Now().UTC().Format("2006-01-02")} {
		page := c.act("vendor", "propose-embargo", "end", end)
		want := "Refused: the embargo would end on " + end + " at 00:00 UTC, which has passed; choose a later date"
		if flash := flashOf(page); !strings.Contains(flash, want) {
			t.Errorf("proposing an embargo ending %s: the page says %q, want %q", end, flash, want)
		}
		if strings.Contains(page, "Accept (EA)") {
			t.Errorf("an embargo ending %s was proposed", end)
		}
	}
}
