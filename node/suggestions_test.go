package node

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestSuggestionsTheReferenceWay runs a suggestion as the reference does
// between nodes: the finder suggests an actor to the Case Actor; the Case
// Actor offers the owner a CaseParticipant for it; the owner accepts that
// offer; the Case Actor invites the actor and tells the finder its
// suggestion was accepted (Accept of its Offer), which the finder's node
// keeps with the case.
func TestSuggestionsTheReferenceWay(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	suggested := newPeer(t, sharedKeys.get(t, 1))
	c := openCase(t, finder, vendor)

	suggestion := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","object":%q,"target":%q,"context":%q,"roles":["coordinator"]}`,
		suggested.id, c.ID, c.ID))
	var offered map[string]any
	waitFor(t, "the Case Actor's offer of a participant at the owner", func() bool {
		for _, it := range vendor.inboxItems(t, "vendor") {
			if it["type"] == "Offer" && it["actor"] == c.CaseActor && it["origin"] == suggestion {
				offered = it
				return true
			}
		}
		return false
	})
	if obj, _ := offered["object"].(map[string]any); obj["type"] != "CaseParticipant" || obj["attributedTo"] != suggested.id || offered["target"] != c.ID {
		t.Fatalf("the Case Actor's offer = %v; want Offer(CaseParticipant for the suggested actor) to the case", offered)
	}
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, offered["id"], c.ID))

	waitFor(t, "the invitation at the suggested actor", func() bool {
		suggested.mu.Lock()
		defer suggested.mu.Unlock()
		for _, b := range suggested.received {
			var m map[string]any
			if json.Unmarshal(b, &m) == nil && m["type"] == "Invite" && m["object"].(map[string]any)["id"] == suggested.id {
				return true
			}
		}
		return false
	})
	answer := finder.inboxReply(t, "finder", "Accept", suggestion)
	if answer["actor"] != c.CaseActor {
		t.Errorf("the answer to the suggestion = %v; want an Accept by the Case Actor", answer)
	}
	detail := finder.caseDetail(t, c.ID)
	replies, _ := detail["replies"].([]any)
	found := false
	for _, r := range replies {
		if m, _ := r.(map[string]any); m["semantic"] == "ACCEPT_ACTOR_RECOMMENDATION" && m["answers"] == suggestion {
			found = true
		}
	}
	if !found {
		t.Errorf("the finder's case does not list the answer to its suggestion: %v", replies)
	}
	if s, _ := vendor.caseDetail(t, c.ID)["suggestions"].([]any); len(s) != 0 {
		t.Errorf("the suggestion is still open: %v", s)
	}
}
