package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// caseSummary is what GET /api/cases shows of a case.
type caseSummary struct {
	ID           string `json:"id"`
	Owner        string `json:"owner"`
	CaseActor    string `json:"caseActor"`
	Hosted       bool   `json:"hosted"`
	EMState      string `json:"emState"`
	PXAState     string `json:"pxaState"`
	LedgerLength int64  `json:"ledgerLength"`
	TailHash     string `json:"tailHash"`
	Closed       bool   `json:"closed"`
	Diverged     string `json:"diverged"`
	Participants []struct {
		Actor    string   `json:"actor"`
		ID       string   `json:"id"`
		Roles    []string `json:"roles"`
		RMState  string   `json:"rmState"`
		VFDState string   `json:"vfdState"`
		PECState string   `json:"pecState"`
	} `json:"participants"`
}

func (tn *testNode) cases(t *testing.T) []caseSummary {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/api/cases", "")
	if status != http.StatusOK {
		t.Fatalf("cases: %d %s", status, body)
	}
	var out struct {
		Cases []caseSummary `json:"cases"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.Cases
}

// oneCase waits until the node holds exactly one case satisfying cond.
func (tn *testNode) oneCase(t *testing.T, what string, cond func(caseSummary) bool) caseSummary {
	t.Helper()
	var got caseSummary
	waitFor(t, what, func() bool {
		cs := tn.cases(t)
		if len(cs) == 1 && cond(cs[0]) {
			got = cs[0]
			return true
		}
		return false
	})
	return got
}

func participantOf(c caseSummary, actor string) (id, rm, vfd, pec string) {
	for _, p := range c.Participants {
		if p.Actor == actor {
			return p.ID, p.RMState, p.VFDState, p.PECState
		}
	}
	return "", "", "", ""
}

// TestCaseLifecycleBetweenNodes runs the finder-vendor story across two
// nodes through their outboxes: validating the report opens a case with the
// vendor's default embargo, whose ledger the finder's node replicates;
// engaging, notes, a fix and publication (which ends the embargo), and
// closing by both; at the end both hold the same ledger.
func TestCaseLifecycleBetweenNodes(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNodeWith(t, Config{DefaultEmbargo: 90 * 24 * time.Hour}, "vendor:Organization")
	finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"SQL injection in login","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return len(vendor.inboxItems(t, "vendor")) == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))

	host := vendor.oneCase(t, "the case at the vendor", func(c caseSummary) bool { return c.LedgerLength == 2 })
	if !host.Hosted || host.Owner != vendorID || host.EMState != "ACTIVE" {
		t.Fatalf("hosted case = %+v", host)
	}
	replica := finder.oneCase(t, "the case replica at the finder", func(c caseSummary) bool { return c.LedgerLength == 2 })
	if replica.Hosted || replica.TailHash != host.TailHash || replica.Diverged != "" {
		t.Fatalf("replica = %+v, host tail %s", replica, host.TailHash)
	}
	caseID := host.ID
	vendorPart, _, _, _ := participantOf(host, vendorID)
	finderPart, _, _, _ := participantOf(host, finderID)

	steps := []struct {
		node            *testNode
		actor, activity string
	}{
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Join","object":%q,"context":%q}`, caseID, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"Any progress?"},"target":%q,"context":%q}`, caseID, caseID)},
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"vfdState":"VFd"},"target":%q,"context":%q}`, vendorPart, vendorPart, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"ParticipantStatus","context":%q,"caseStatus":{"type":"CaseStatus","pxaState":"Pxa"}},"target":%q,"context":%q}`, finderPart, finderPart, caseID)},
		{vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID)},
		{finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Leave","object":%q,"context":%q}`, caseID, caseID)},
	}
	for i, s := range steps {
		want := int64(3 + i)
		s.node.submit(t, s.actor, s.activity)
		vendor.oneCase(t, fmt.Sprintf("entry %d at the vendor", want), func(c caseSummary) bool { return c.LedgerLength == want })
		finder.oneCase(t, fmt.Sprintf("entry %d at the finder", want), func(c caseSummary) bool { return c.LedgerLength == want })
	}
	h := vendor.cases(t)[0]
	r := finder.cases(t)[0]
	if h.TailHash != r.TailHash || r.Diverged != "" {
		t.Fatalf("tails differ: host %s replica %s (diverged %q)", h.TailHash, r.TailHash, r.Diverged)
	}
	for _, c := range []caseSummary{h, r} {
		if !c.Closed || c.PXAState != "Pxa" || c.EMState != "EXITED" {
			t.Errorf("final case = %+v, want closed, Pxa, EXITED", c)
		}
		if _, rm, vfd, _ := participantOf(c, vendorID); rm != "CLOSED" || vfd != "VFd" {
			t.Errorf("vendor ends %s %s, want CLOSED VFd", rm, vfd)
		}
		if _, rm, _, _ := participantOf(c, finderID); rm != "CLOSED" {
			t.Errorf("finder ends %s, want CLOSED", rm)
		}
	}

	// A closed case refuses new activity at the sender's node.
	status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"late"},"target":%q,"context":%q}`, caseID, caseID))
	if status != http.StatusConflict || !strings.Contains(string(body), "is closed") {
		t.Errorf("note on a closed case: %d %s, want 409", status, body)
	}
	// The ledger reads back in order from both nodes.
	for _, n := range []*testNode{vendor, finder} {
		status, body := n.api(t, http.MethodGet, "/api/cases/"+url.PathEscape(caseID)+"/ledger?limit=1000", "")
		var page struct {
			Entries []struct {
				LogIndex  int64  `json:"logIndex"`
				EventType string `json:"eventType"`
			} `json:"entries"`
		}
		if status != 200 || json.Unmarshal(body, &page) != nil || len(page.Entries) != 8 {
			t.Fatalf("ledger of %s: %d %s", n.url, status, body)
		}
		if page.Entries[0].EventType != "create_case" || page.Entries[7].EventType != "close_case" {
			t.Errorf("ledger events: first %s last %s", page.Entries[0].EventType, page.Entries[7].EventType)
		}
	}
}
