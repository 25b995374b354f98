package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
)

// TestSeveralReportsOneCase checks duplicate reports and related cases
// between nodes: a second finder's report about the case's vulnerability
// is added to the case by its owner (the case then lists both reports on
// every replica, the second finder learns where its report is handled, and
// validating that report opens no other case); a third report is closed
// as a duplicate of the case, with the case as the pointer; and a case the
// vendor opens for another report is related to the first as its child,
// which both case pages show.
func TestSeveralReportsOneCase(t *testing.T) {
	finder := startNode(t, "finder:Person")
	finder2 := startNode(t, "finder2:Person")
	vendor := startNode(t, "vendor:Organization")
	finderID, finder2ID, vendorID := finder.actorID("finder"), finder2.actorID("finder2"), vendor.actorID("vendor")
	report := func(n *testNode, name, title string) string {
		id := n.submit(t, name, fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":%q,"content":"details"}}`, vendorID, title))
		waitFor(t, "the report "+title+" at the vendor", func() bool {
			for _, it := range vendor.inboxItems(t, "vendor") {
				if it["id"] == id {
					return true
				}
			}
			return false
		})
		return id
	}
	first := report(finder, "finder", "SQL injection in login")
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, first, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })

	// The second finder reports the same bug: the owner adds it.
	second := report(finder2, "finder2", "SQLi in the login form")
	report2 := reportIDOf(t, finder2, second)
	add := fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"id":%q,"type":"VulnerabilityReport","name":"SQLi in the login form"},"target":%q,"context":%q,"to":[%q]}`,
		report2, c.ID, c.ID, finder2ID)
	if status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", add); status != http.StatusConflict && status != http.StatusForbidden {
		t.Errorf("a participant that is not the owner adds a report: %d %s, want a refusal", status, body)
	}
	vendor.submit(t, "vendor", add)
	finder.oneCase(t, "the added report at the finder", func(c api.Case) bool { return c.LedgerLength == 3 })
	for _, n := range []*testNode{vendor, finder} {
		detail := n.caseDetail(t, c.ID)
		if reports, _ := detail["reports"].([]any); len(reports) != 2 || reports[1] != report2 {
			t.Errorf("%s: the case's reports are %v, want both", n.url, detail["reports"])
		}
	}
	finder2.inboxOfType(t, "finder2", "Add") // the owner's Add reaches the second finder
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, second, finder2ID))
	if status != http.StatusConflict || !strings.Contains(string(body), "already in case") {
		t.Errorf("validating a report already in a case: %d %s, want 409", status, body)
	}

	// A third report is closed as a duplicate of the case.
	third := report(finder2, "finder2", "Login SQLi again")
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Reject","object":%q,"result":%q,"to":[%q]}`, third, c.ID, finder2ID))
	rc := finder2.inboxOfType(t, "finder2", "Reject")
	if obj, _ := rc["object"].(map[string]any); rc["result"] != c.ID || obj["id"] != third || obj["type"] != "Offer" || rc["inReplyTo"] != third {
		t.Errorf("the closure of the duplicate = %v; want a Reject of its Offer (inline, and inReplyTo) with the case as result", rc)
	}
	if n := len(vendor.cases(t)); n != 1 {
		t.Errorf("the vendor holds %d cases after a duplicate was added and another closed, want 1", n)
	}

	// Another report opens its own case, which the owner relates to the
	// first as its child.
	fourth := report(finder, "finder", "Password reset leaks tokens")
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, fourth, finderID))
	var other string
	waitFor(t, "the second case", func() bool {
		for _, cs := range vendor.cases(t) {
			if cs.ID != c.ID {
				other = cs.ID
			}
		}
		return other != ""
	})
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Update","object":{"id":%q,"type":"VulnerabilityCase","parentCases":[%q]},"context":%q}`, other, c.ID, other))
	waitFor(t, "the relation on both case pages", func() bool {
		return relatedTo(t, vendor, c.ID) == "child "+other && relatedTo(t, vendor, other) == "parent "+c.ID
	})
	b := newBrowser(t, vendor.url)
	b.login(vendor)
	if page := b.get("/ui/cases/" + url.PathEscape(c.ID)); !strings.Contains(page, "child: <a href=\"/ui/cases/"+url.PathEscape(other)) {
		t.Errorf("the first case's page does not show its child case")
	}
}

// relatedTo returns the relations of a case as its detail lists them.
func relatedTo(t *testing.T, n *testNode, caseID string) string {
	t.Helper()
	b, _ := json.Marshal(n.caseDetail(t, caseID)["related"])
	var links []struct{ Relation, Case string }
	_ = json.Unmarshal(b, &links)
	var out []string
	for _, l := range links {
		out = append(out, l.Relation+" "+l.Case)
	}
	return strings.Join(out, ", ")
}

// TestClosedParticipantIsSentWhatItNeeds checks the Case Actor's fan-out
// to a participant that closed the case: a note is not announced to it,
// the publication of the vulnerability is, and its node then fetches the
// note from the ledger, so its replica still holds the whole ledger.
func TestClosedParticipantIsSentWhatItNeeds(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	vendorID := vendor.actorID("vendor")
	c := openCase(t, finder, vendor)
	step := func(n *testNode, name, activity string, length int64) {
		t.Helper()
		n.submit(t, name, activity)
		vendor.oneCase(t, fmt.Sprintf("entry %d", length-1), func(c api.Case) bool { return c.LedgerLength == length })
	}
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, c.ID, c.ID), 3)
	step(finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, c.ID, c.ID), 4)
	finder.oneCase(t, "the finder's own closing", func(c api.Case) bool { return c.LedgerLength == 4 })
	announced := countType(finder.inboxItems(t, "finder"), "Announce")
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"fix in review"},"target":%q,"context":%q}`, c.ID, c.ID), 5)
	vendorPart, _, _, _ := participantOf(vendor.cases(t)[0], vendorID)
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"caseStatus":{"type":"CaseStatus","pxaState":"Pxa"}},"target":%q,"context":%q}`,
		vendorPart, vendorPart, c.ID), 6)
	replica := finder.oneCase(t, "the finder's replica with the whole ledger", func(c api.Case) bool { return c.LedgerLength == 6 })
	if replica.PXAState != "Pxa" || replica.TailHash != vendor.cases(t)[0].TailHash {
		t.Errorf("the finder's replica: %+v", replica)
	}
	if got := countType(finder.inboxItems(t, "finder"), "Announce") - announced; got != 1 {
		t.Errorf("the closed finder was sent %d announcements for a note and the publication, want 1 (the publication)", got)
	}
}
