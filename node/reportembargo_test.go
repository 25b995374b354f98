package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
)

// caseEmbargo is the embargo part of GET /api/cases/ID.
type caseEmbargo struct {
	EMState string `json:"emState"`
	Embargo *struct {
		End      time.Time `json:"end"`
		Proposer string    `json:"proposer"`
	} `json:"embargo"`
	Proposals []struct {
		InviteID string `json:"inviteId"`
		Terms    struct {
			End      time.Time `json:"end"`
			Proposer string    `json:"proposer"`
		} `json:"terms"`
	} `json:"proposals"`
	Participants []struct {
		Actor    string `json:"actor"`
		PECState string `json:"pecState"`
	} `json:"participants"`
}

func (tn *testNode) caseEmbargo(t *testing.T, caseID string) caseEmbargo {
	t.Helper()
	b, err := json.Marshal(tn.caseDetail(t, caseID))
	if err != nil {
		t.Fatal(err)
	}
	var ce caseEmbargo
	if err := json.Unmarshal(b, &ce); err != nil {
		t.Fatal(err)
	}
	return ce
}

// TestReportWithEmbargoProposal checks RS|EP: a finder offers a report
// with an embargo proposal (the Offer's instrument); the vendor's RK
// acknowledges both; when the vendor validates the report, the case opens
// with the finder's proposal pending from the finder, PROPOSED. When the
// vendor has a default embargo, the shorter of the two is in force from
// the start and the longer is a pending revision (REVISE), as the
// protocol's defaults say: a proposal longer than the default leaves the
// default in force, a shorter one is in force with the default pending.
// Both participants' consent has lapsed, as it does whenever a revision
// is pending. The owner's acceptance of the pending terms puts them in
// force. A proposal that ends in the past is refused before it is sent.
func TestReportWithEmbargoProposal(t *testing.T) {
	end := time.Now().Add(45 * 24 * time.Hour).UTC().Truncate(time.Second)
	offerWith := func(to string, end time.Time) string {
		return fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Heap overflow","content":"details"},
"instrument":{"type":"EmbargoEvent","startTime":%q,"endTime":%q}}`, to, end.Add(-30*24*time.Hour).Format(time.RFC3339), end.Format(time.RFC3339))
	}
	tests := []struct {
		name   string
		def    time.Duration // the vendor's default embargo
		wantEM string
		// pending and inForce name whose terms are pending and in force
		// once the case opens ("" for none).
		pending, inForce string
		// consent is both participants' consent once the case opens, but
		// that the owner is invited to a proposal (docs/protocol.md).
		consent string
	}{
		{"no default embargo", 0, "PROPOSED", "finder", "", "NO_EMBARGO"},
		{"a default embargo shorter than the proposal", 30 * 24 * time.Hour, "REVISE", "finder", "vendor", "LAPSED"},
		{"a default embargo longer than the proposal", 90 * 24 * time.Hour, "REVISE", "vendor", "finder", "LAPSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			finder := startNode(t, "finder:Person")
			vendor := startNodeWith(t, Config{DefaultEmbargo: tt.def}, "vendor:Organization")
			finderID, vendorID := finder.actorID("finder"), vendor.actorID("vendor")
			ids := map[string]string{"finder": finderID, "vendor": vendorID}
			offerID := finder.submit(t, "finder", offerWith(vendorID, end))
			rk := finder.inboxReply(t, "finder", "Read", offerID)
			if obj, _ := rk["object"].(map[string]any); obj["instrument"] == nil {
				t.Errorf("the vendor's RK does not carry the proposal it acknowledges (EK): %v", rk)
			}
			validated := time.Now().UTC()
			vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
			c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
			finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
			// endsAsProposed says whether end is what who proposed: the
			// finder's terms, or the vendor's default from the validation.
			endsAsProposed := func(who string, got time.Time) bool {
				if who == "finder" {
					return got.Equal(end)
				}
				want := validated.Add(tt.def)
				return got.After(want.Add(-time.Minute)) && got.Before(want.Add(time.Minute))
			}
			var pendingEnd time.Time
			for _, n := range []*testNode{vendor, finder} {
				ce := n.caseEmbargo(t, c.ID)
				if ce.EMState != tt.wantEM || len(ce.Proposals) != 1 || ce.Proposals[0].Terms.Proposer != ids[tt.pending] || !endsAsProposed(tt.pending, ce.Proposals[0].Terms.End) {
					t.Fatalf("%s: the case opens with %+v; want %s with the %s's terms pending", n.url, ce, tt.wantEM, tt.pending)
				}
				pendingEnd = ce.Proposals[0].Terms.End
				switch {
				case tt.inForce == "" && ce.Embargo != nil:
					t.Errorf("%s: the embargo in force is %+v, want none", n.url, ce.Embargo)
				case tt.inForce != "" && (ce.Embargo == nil || ce.Embargo.Proposer != ids[tt.inForce] || !endsAsProposed(tt.inForce, ce.Embargo.End)):
					t.Errorf("%s: the embargo in force is %+v, want the %s's terms", n.url, ce.Embargo, tt.inForce)
				}
				if len(ce.Participants) != 2 {
					t.Errorf("%s: the case opens with participants %+v", n.url, ce.Participants)
				}
				for _, p := range ce.Participants {
					want := tt.consent
					if tt.wantEM == "PROPOSED" && p.Actor == vendorID {
						want = "INVITED"
					}
					if p.PECState != want {
						t.Errorf("%s: %s's consent is %s, want %s", n.url, p.Actor, p.PECState, want)
					}
				}
			}
			// The owner accepts the pending terms.
			invite := vendor.caseEmbargo(t, c.ID).Proposals[0].InviteID
			vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, invite, c.ID))
			finder.oneCase(t, "the accepted proposal at the finder", func(c api.Case) bool { return c.LedgerLength == 3 })
			for _, n := range []*testNode{vendor, finder} {
				ce := n.caseEmbargo(t, c.ID)
				if ce.EMState != "ACTIVE" || ce.Embargo == nil || !ce.Embargo.End.Equal(pendingEnd) || ce.Embargo.Proposer != ids[tt.pending] || len(ce.Proposals) != 0 {
					t.Errorf("%s: after the owner accepted, %+v; want the %s's terms in force", n.url, ce, tt.pending)
				}
			}
		})
	}
	// A proposal longer than --max-embargo: the finder's own node refuses
	// it before it is sent; a vendor's node with a shorter limit than the
	// finder's refuses the offer, which says why, and opens no case.
	t.Run("a proposal longer than this node accepts", func(t *testing.T) {
		finder := startNode(t, "finder:Person")
		status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", offerWith("https://v.example/actors/vendor", time.Now().Add(400*24*time.Hour).UTC().Truncate(time.Second)))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "accepts embargoes of at most 365 days (--max-embargo)") {
			t.Errorf("an offer proposing a 400-day embargo: %d %s, want 422 naming the node's limit", status, body)
		}
	})
	t.Run("a proposal longer than the vendor accepts", func(t *testing.T) {
		finder := startNodeWith(t, Config{MaxEmbargo: 500 * 24 * time.Hour, Retry: fastRetry()}, "finder:Person")
		vendor := startNode(t, "vendor:Organization")
		finder.submit(t, "finder", offerWith(vendor.actorID("vendor"), time.Now().Add(400*24*time.Hour).UTC().Truncate(time.Second)))
		var reason string
		waitFor(t, "the refused offer dead-lettered at the finder", func() bool {
			dead, _, err := finder.db.DeadLetters(context.Background(), 0, 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) == 1 {
				reason = dead[0].LastError
			}
			return len(dead) == 1
		})
		if !strings.Contains(reason, "422") || !strings.Contains(reason, "accepts embargoes of at most 365 days") {
			t.Errorf("the dead letter's reason = %q, want the vendor's 422 naming its limit", reason)
		}
		if items := vendor.inboxItems(t, "vendor"); countType(items, "Offer") != 0 {
			t.Errorf("the vendor's inbox holds %d offers, want none", countType(items, "Offer"))
		}
	})
	t.Run("a proposal that has ended", func(t *testing.T) {
		finder := startNode(t, "finder:Person")
		status, body := finder.api(t, http.MethodPost, "/actors/finder/outbox", offerWith("https://v.example/actors/vendor", time.Now().Add(-time.Hour).UTC().Truncate(time.Second)))
		if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "has passed") {
			t.Errorf("an offer proposing an embargo that ended: %d %s, want 422 saying the end has passed", status, body)
		}
	})
}
