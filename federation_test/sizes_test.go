package federation_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestAnnouncementSizes records notes near the largest size a node takes,
// between separate processes. A note just under the largest activity is
// recorded and reaches the finder's replica: its announcement, which
// wraps it in a ledger entry, is larger than the activity but fits the
// inbox's margin. A note over the limit is refused at the sender's node.
// And when the host takes smaller activities than the sender, the Case
// Actor refuses, in one sentence naming both sizes, an activity whose
// announcement would not fit, and records nothing.
func TestAnnouncementSizes(t *testing.T) {
	bin := buildVultron(t)

	t.Run("largest activity", func(t *testing.T) {
		c := newCluster(t, bin, "finder:Person", "vendor:Organization")
		caseID := openCase(c, "finder", "vendor")
		// The note's content takes all but 2 KiB of the 256 KiB an
		// outbox takes; the activity around it and the entry around that
		// make the announcement larger than 256 KiB.
		note := addNote(caseID, strings.Repeat("x", 254<<10), "")
		c.record("finder", caseID, note)
		c.checkConverged(caseID, "finder", "vendor")
		// The announcement was delivered, not given up on (before, the
		// finder's inbox answered 413 and it became a dead letter).
		status, body := c.api(c.node("vendor"), http.MethodGet, "/api/deliveries", nil)
		if status != http.StatusOK || !strings.Contains(string(body), `"deadCount":0`) {
			t.Errorf("the vendor's deliveries: %d %s, want no dead letter", status, body)
		}
		if status, body := c.post("finder", addNote(caseID, strings.Repeat("x", 257<<10), "")); status != http.StatusRequestEntityTooLarge {
			t.Errorf("a note over the limit: %d %s, want 413", status, body)
		}
	})

	t.Run("host with a smaller limit", func(t *testing.T) {
		const hostLimit = 64 << 10 // the host's inbox then takes 128 KiB
		c := newCluster(t, bin, "finder:Person", fmt.Sprintf("vendor:Organization --max-body %d", hostLimit))
		caseID := openCase(c, "finder", "vendor")
		// A probe tells how much the finder's node adds around a note's
		// content.
		probe := c.record("finder", caseID, addNote(caseID, strings.Repeat("p", 1000), ""))
		stored := c.rawActivity("finder", probe["id"].(string))
		overhead := len(stored) - 1000
		before := len(c.ledgerOf("vendor", caseID))
		// An activity 100 bytes under what the host's inbox takes: it is
		// delivered, but its announcement would not fit.
		content := hostLimit + 64<<10 - 100 - overhead
		sent := c.submit("finder", addNote(caseID, strings.Repeat("y", content), ""))
		id := sent["id"].(string)
		var refusal string
		c.waitFor("the Case Actor's refusal of the large note", func() bool {
			refusal = c.refusalOf("finder", id)
			return refusal != ""
		}, func() string { return "" })
		if !strings.Contains(refusal, "its announcement to the participants") || !strings.Contains(refusal, fmt.Sprintf("over the %d bytes", hostLimit+64<<10)) {
			t.Errorf("refusal %s: want one sentence naming the activity's size, the announcement's and the limit", refusal)
		}
		if after := len(c.ledgerOf("vendor", caseID)); after != before {
			t.Errorf("the host's ledger grew from %d to %d entries with a refused note", before, after)
		}
		c.checkConverged(caseID, "finder", "vendor")
	})
}

// rawActivity returns the bytes of an activity the named node minted, as
// it stores and delivers them.
func (c *cluster) rawActivity(name, id string) []byte {
	c.t.Helper()
	n := c.node(name)
	status, body := c.api(n, http.MethodGet, strings.TrimPrefix(id, n.url), nil)
	if status != http.StatusOK {
		c.t.Fatalf("GET %s on %s: %d %s", id, name, status, body)
	}
	return body
}
