package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/openvultron/vultron/api"
)

// TestCaseContentReachesOnlyItsParticipants runs a case across three
// nodes. Through the vendor's JSON API, a note addressed to an actor
// outside the case is refused (422, a JSON error naming it) and nothing is
// recorded or queued. Then, while the second vendor's node is down, the
// owner adds a note, whose announcement to it waits in the queue, and
// removes the second vendor: the note's delivery is not sent after the
// removal (a dead letter saying why, audited without the body), while the
// announcement of the removal itself reaches the restarted node, whose
// copy of the case stops there.
func TestCaseContentReachesOnlyItsParticipants(t *testing.T) {
	ctx := context.Background()
	finder := startNode(t, "finder:Person", "other:Person")
	vendor := startNodeWith(t, Config{Retry: fastRetry()}, "vendor:Organization")
	v2dir := t.TempDir()
	v2ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v2addr := v2ln.Addr().String()
	vendor2 := startNodeIn(t, v2dir, v2ln, "vendor2:Organization")
	finderID, vendorID, vendor2ID, outsider := finder.actorID("finder"), vendor.actorID("vendor"), vendor2.actorID("vendor2"), finder.actorID("other")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Path traversal","content":"details"}}`, vendorID))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	caseID := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	steps := &caseSteps{t: t, host: vendor, length: 2}
	steps.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["vendor"]}`, vendor2ID, caseID, caseID), finder)
	inviteID := vendor2.awaitInboxItem(t, "vendor2", "Invite")
	steps.step(vendor2, "vendor2", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q}`, inviteID), finder, vendor2)

	// A note to an actor outside the case is refused, and nothing is
	// recorded or queued.
	pendingBefore, err := vendor.db.PendingCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add",
"object":{"type":"Note","content":"the fix ships Monday"},"target":%q,"context":%q,"to":[%q,%q]}`, caseID, caseID, finderID, outsider))
	var refusal struct {
		Error string `json:"error"`
	}
	if status != http.StatusUnprocessableEntity || json.Unmarshal(body, &refusal) != nil || !strings.Contains(refusal.Error, outsider) {
		t.Fatalf("a note to %s, outside the case: %d %s; want 422 with a JSON error naming it", outsider, status, body)
	}
	if got := vendor.cases(t)[0].LedgerLength; got != steps.length {
		t.Errorf("the refused note left the ledger at %d entries, want %d", got, steps.length)
	}
	if pending, err := vendor.db.PendingCount(ctx); err != nil || pending != pendingBefore {
		t.Errorf("%d deliveries pending after the refusal (%v), want %d as before", pending, err, pendingBefore)
	}

	// The second vendor's node goes down; the note's announcement to it
	// waits, and the owner removes it meanwhile.
	v2part, _, _, _ := participantOf(vendor.cases(t)[0], vendor2ID)
	vendor2.stop()
	noteAt := steps.length
	steps.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"fixed in 2.4.1"},"target":%q,"context":%q}`, caseID, caseID), finder)
	waitFor(t, "a failed delivery to the stopped node", func() bool {
		ds, _, _ := vendor.db.PendingDeliveries(ctx, 0, 100)
		for _, d := range ds {
			if d.Recipient == vendor2ID && d.Attempts >= 1 {
				return true
			}
		}
		return false
	})
	steps.step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"target":%q,"context":%q}`, v2part, caseID, caseID), finder)
	removalAt := steps.length - 1

	ln, err := net.Listen("tcp", v2addr)
	if err != nil {
		t.Fatalf("listen on %s again: %v", v2addr, err)
	}
	vendor2 = startNodeIn(t, v2dir, ln, "vendor2:Organization")
	announced := func() map[int64]bool {
		out := map[int64]bool{}
		for _, it := range vendor2.inboxItems(t, "vendor2") {
			if obj, _ := it["object"].(map[string]any); it["type"] == "Announce" && obj["logIndex"] != nil {
				out[int64(obj["logIndex"].(float64))] = true
			}
		}
		return out
	}
	waitFor(t, "the announcement of its removal at the second vendor", func() bool { return announced()[removalAt] })
	waitFor(t, "the vendor's queue to the second vendor to drain", func() bool {
		ds, _, _ := vendor.db.PendingDeliveries(ctx, 0, 100)
		for _, d := range ds {
			if d.Recipient == vendor2ID {
				return false
			}
		}
		return true
	})
	if announced()[noteAt] {
		t.Errorf("the note (entry %d) reached the second vendor after its removal", noteAt)
	}
	// Its copy lacks the note and cannot fetch it any more: it stops at
	// the removal rather than asking the Case Actor's ledger again and again.
	waitFor(t, "the second vendor's copy to stop at its removal", func() bool {
		rep, _ := vendor2.caseDetail(t, caseID)["replica"].(map[string]any)
		return rep["state"] == "in-sync" && rep["nextCheck"] == nil && strings.Contains(fmt.Sprint(rep["doing"]), "removed from the case")
	})
	dead, _, err := vendor.db.DeadLetters(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var reason string
	for _, d := range dead {
		if d.Recipient == vendor2ID {
			if reason != "" {
				t.Errorf("more than one dead letter to the second vendor: %+v", dead)
			}
			reason = d.LastError
		}
	}
	if !strings.Contains(reason, vendor2ID) || !strings.Contains(reason, "removed from case "+caseID) {
		t.Errorf("the dead letter to the second vendor says %q; want that it was removed from %s", reason, caseID)
	}
	audited := false
	for _, r := range vendor.auditRecords(t) {
		if r.Signer == vendor2ID && strings.Contains(r.Reason, "removed from case") {
			audited = true
			if strings.Contains(fmt.Sprint(r), "fixed in 2.4.1") {
				t.Errorf("the audit record of the withdrawn delivery shows the note: %+v", r)
			}
		}
	}
	if !audited {
		t.Error("the withdrawn delivery is not in the audit log")
	}
}
