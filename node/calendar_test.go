package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/node/internal/icaltest"
)

// getFeed fetches a calendar feed without the API token.
func getFeed(t *testing.T, u string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestEmbargoCalendar follows a case's embargo through proposal,
// acceptance, revision and termination in its iCalendar feeds.
func TestEmbargoCalendar(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
	secret := "Heap overflow in decode_chunk"
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"%s, reachable from any PNG."}}`, vendorID, secret, secret))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID

	// The feed URLs come from the token API; without a token: 401.
	status, body := vendor.api(t, http.MethodGet, "/api/calendar", "")
	if status != http.StatusOK {
		t.Fatalf("GET /api/calendar: %d %s", status, body)
	}
	var links struct{ Calendar, CaseTemplate string }
	if err := json.Unmarshal(body, &links); err != nil || !strings.Contains(links.Calendar, "/calendar.ics?token=") {
		t.Fatalf("calendar links %s (%v)", body, err)
	}
	caseFeed := strings.Replace(links.CaseTemplate, "{id}", url.PathEscape(caseID), 1)
	for _, u := range []string{vendor.url + "/calendar.ics", vendor.url + "/calendar.ics?token=wrong", vendor.url + "/api/cases/" + url.PathEscape(caseID) + "/embargo.ics"} {
		if st, b := getFeed(t, u); st != http.StatusUnauthorized || !strings.Contains(string(b), `"error"`) {
			t.Errorf("GET %s: %d %s, want 401 with an error", u, st, b)
		}
	}
	if _, b := getFeed(t, links.Calendar); len(icaltest.CheckRFC5545(t, b).Events()) != 0 {
		t.Errorf("a case with no embargo has embargo events")
	}

	step := func(n *testNode, actor, activity string, want int64) {
		t.Helper()
		n.submit(t, actor, activity)
		vendor.oneCase(t, fmt.Sprintf("entry %d", want), func(c api.Case) bool { return c.LedgerLength == want })
	}
	propose := func(days int) string {
		end := time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":{"type":"EmbargoEvent","startTime":%q,"endTime":%q},"context":%q}`,
			time.Now().UTC().Format(time.RFC3339), end, caseID)
	}
	answer := func(typ, invite string) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":%q,"object":%q,"context":%q}`, typ, invite, caseID)
	}
	feed := func() *ical.Calendar {
		t.Helper()
		st, b := getFeed(t, caseFeed)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", caseFeed, st, b)
		}
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte("PNG")) {
			t.Errorf("the feed carries the report's text:\n%s", b)
		}
		return icaltest.CheckRFC5545(t, b)
	}

	// Proposed: one TENTATIVE event.
	ep := vendor.submit(t, "vendor", propose(30))
	vendor.oneCase(t, "the proposal", func(c api.Case) bool { return c.LedgerLength == 3 })
	cal := feed()
	if evs := cal.Events(); len(evs) != 1 || evs[0].Props.Get(ical.PropStatus).Value != "TENTATIVE" {
		t.Fatalf("after EP: %d events, want one TENTATIVE", len(evs))
	}
	// Accepted by the owner: CONFIRMED, SEQUENCE 0, at the proposed end.
	step(vendor, "vendor", answer("Accept", ep), 4)
	ev, total := icaltest.MainEvent(t, feed())
	uid := ev.Props.Get(ical.PropUID).Value
	if total != 1 || ev.Props.Get(ical.PropStatus).Value != "CONFIRMED" || ev.Props.Get(ical.PropSequence).Value != "0" {
		t.Errorf("after EA: %d events, status %s sequence %s; want one CONFIRMED at 0", total,
			ev.Props.Get(ical.PropStatus).Value, ev.Props.Get(ical.PropSequence).Value)
	}
	if u := ev.Props.Get(ical.PropURL); u == nil || u.Value != vendor.url+"/ui/cases/"+url.PathEscape(caseID) {
		t.Errorf("URL %v, want the dashboard's case page", u)
	}
	if sum := ev.Props.Get(ical.PropSummary).Value; !strings.HasSuffix(sum, " embargo expiration") || !strings.Contains(caseID, strings.Fields(sum)[1]) {
		t.Errorf("SUMMARY %q, want the case's short id and \"embargo expiration\"", sum)
	}
	start, err := ev.DateTimeStart(time.UTC)
	if err != nil || start.Sub(time.Now().Add(30*24*time.Hour)).Abs() > time.Hour {
		t.Errorf("DTSTART %v (%v), want the embargo's end in 30 days", start, err)
	}
	if len(ev.Children) != 3 {
		t.Errorf("the event has %d alarms, want 3 (-P14D, -P7D, -P1D)", len(ev.Children))
	}
	if n := len(ev.Props.Values(ical.PropAttendee)); n != 2 {
		t.Errorf("%d attendees, want the vendor and the finder", n)
	}
	for _, a := range ev.Props.Values(ical.PropAttendee) {
		if a.Params.Get(ical.ParamRSVP) != "" || a.Params.Get(ical.ParamRole) != "OPT-PARTICIPANT" {
			t.Errorf("attendee %s: RSVP=%q ROLE=%q, want no RSVP (a calendar reply cannot answer an embargo) and OPT-PARTICIPANT",
				a.Value, a.Params.Get(ical.ParamRSVP), a.Params.Get(ical.ParamRole))
		}
	}
	// A revision: a TENTATIVE event related to the confirmed one.
	ev1 := vendor.submit(t, "vendor", propose(45))
	vendor.oneCase(t, "the revision", func(c api.Case) bool { return c.LedgerLength == 5 })
	cal = feed()
	if len(cal.Events()) != 2 {
		t.Fatalf("during a revision: %d events, want 2", len(cal.Events()))
	}
	for _, e := range cal.Events() {
		if rel := e.Props.Get(ical.PropRelatedTo); rel != nil && (rel.Value != uid || e.Props.Get(ical.PropStatus).Value != "TENTATIVE") {
			t.Errorf("the revision relates to %s with status %s; want %s, TENTATIVE", rel.Value, e.Props.Get(ical.PropStatus).Value, uid)
		}
	}
	// Accepted: the same UID, SEQUENCE 1, the new end.
	step(vendor, "vendor", answer("Accept", ev1), 6)
	ev, total = icaltest.MainEvent(t, feed())
	if total != 1 || ev.Props.Get(ical.PropUID).Value != uid || ev.Props.Get(ical.PropSequence).Value != "1" {
		t.Errorf("after EC: %d events, uid %s sequence %s; want 1, %s, 1", total, ev.Props.Get(ical.PropUID).Value, ev.Props.Get(ical.PropSequence).Value, uid)
	}
	if start, _ := ev.DateTimeStart(time.UTC); start.Sub(time.Now().Add(45*24*time.Hour)).Abs() > time.Hour {
		t.Errorf("after EC DTSTART %v, want the revised end in 45 days", start)
	}
	// Terminated early: CANCELLED, no alarms.
	embargoID, _ := vendor.caseDetail(t, caseID)["embargo"].(map[string]any)["id"].(string)
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"origin":%q,"context":%q}`, embargoID, caseID, caseID), 7)
	ev, _ = icaltest.MainEvent(t, feed())
	if ev.Props.Get(ical.PropStatus).Value != "CANCELLED" || len(ev.Children) != 0 {
		t.Errorf("after ET: status %s with %d alarms, want CANCELLED with none", ev.Props.Get(ical.PropStatus).Value, len(ev.Children))
	}
	// The node's feed has the case too; with the API token as well.
	_, b := getFeed(t, links.Calendar)
	if cal := icaltest.CheckRFC5545(t, b); len(cal.Events()) != 1 {
		t.Errorf("/calendar.ics has %d events, want 1", len(cal.Events()))
	}
	if st, _ := vendor.api(t, http.MethodGet, "/calendar.ics", ""); st != http.StatusOK {
		t.Errorf("/calendar.ics with the API token: %d", st)
	}
}

// TestCalendarTokenRotation checks that rotating the feed token retires the
// old feed URL, that the new one works and is what GET /api/calendar then
// gives, and that rotation needs the API token.
func TestCalendarTokenRotation(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	links := func(method, path string) string {
		t.Helper()
		status, body := n.api(t, method, path, "")
		if status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, status, body)
		}
		var l struct{ Calendar, CaseTemplate string }
		if err := json.Unmarshal(body, &l); err != nil || !strings.Contains(l.Calendar, "/calendar.ics?token=") {
			t.Fatalf("%s %s: %s (%v)", method, path, body, err)
		}
		return l.Calendar
	}
	old := links(http.MethodGet, "/api/calendar")
	if st, b := getFeed(t, old); st != http.StatusOK {
		t.Fatalf("the first feed URL: %d %s", st, b)
	}
	resp, err := http.Post(n.url+"/api/calendar/token", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("rotation without the API token: %d, want 401", resp.StatusCode)
	}
	rotated := links(http.MethodPost, "/api/calendar/token")
	if rotated == old {
		t.Fatalf("rotation gave the same feed URL %s", old)
	}
	if st, b := getFeed(t, old); st != http.StatusUnauthorized || !strings.Contains(string(b), `"error"`) {
		t.Errorf("the retired feed URL: %d %s, want 401 with an error", st, b)
	}
	if st, b := getFeed(t, rotated); st != http.StatusOK || !bytes.HasPrefix(b, []byte("BEGIN:VCALENDAR\r\n")) {
		t.Errorf("the new feed URL: %d %.80s", st, b)
	}
	if now := links(http.MethodGet, "/api/calendar"); now != rotated {
		t.Errorf("GET /api/calendar after rotation gives %s, want %s", now, rotated)
	}
}

// TestFeedURLEndsWithItsReader: the node's feed URL that a viewer read
// (GET /api/calendar, or the dashboard) stops working once that viewer is
// removed or disabled, as its own tokens do: the feed token is rotated, so
// that who left the organization no longer follows its embargoes. The
// feed URL the admin reads then is the new one.
func TestFeedURLEndsWithItsReader(t *testing.T) {
	for _, how := range []string{"removed", "disabled"} {
		t.Run(how, func(t *testing.T) {
			vendor := startNode(t, "vendor:Organization")
			ctx := context.Background()
			admin, err := vendor.accounts.Authenticate(ctx, vendor.token)
			if err != nil {
				t.Fatal(err)
			}
			added, err := vendor.accounts.AddUser(ctx, admin, accounts.NewUser{Name: "vic", Role: accounts.Viewer}, func(string) bool { return true }, "")
			if err != nil {
				t.Fatal(err)
			}
			links := func(tok string) string {
				t.Helper()
				status, body := vendor.apiAs(t, tok, http.MethodGet, "/api/calendar", "")
				var l struct{ Calendar string }
				if status != http.StatusOK || json.Unmarshal(body, &l) != nil {
					t.Fatalf("GET /api/calendar: %d %s", status, body)
				}
				return l.Calendar
			}
			feed := links(added.Token)
			if st, b := getFeed(t, feed); st != http.StatusOK {
				t.Fatalf("the viewer's feed URL: %d %s", st, b)
			}
			switch how {
			case "removed":
				err = vendor.accounts.RemoveUser(ctx, admin, "vic", "")
			case "disabled":
				_, err = vendor.accounts.SetDisabled(ctx, admin, "vic", true, "")
			}
			if err != nil {
				t.Fatal(err)
			}
			if st, b := getFeed(t, feed); st != http.StatusUnauthorized {
				t.Errorf("the feed URL the %s viewer read: %d %s; want 401", how, st, b)
			}
			if now := links(vendor.token); now == feed {
				t.Error("the feed URL is the same after the viewer left")
			} else if st, b := getFeed(t, now); st != http.StatusOK {
				t.Errorf("the new feed URL: %d %s", st, b)
			}
		})
	}
}
