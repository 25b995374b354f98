package node

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/vocab"
)

// skewed is a node's clock running skew ahead of the real one: a test
// moves a node past a deadline by storing a skew, without sleeping.
func skewed(skew *atomic.Int64) func() time.Time {
	return func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
}

// proposal is the body of an embargo proposal (Invite(EmbargoEvent)) in
// case caseID, as clients send it, with an RSVP deadline (the Invite's
// own endTime) when rsvp is not empty.
func proposal(t *testing.T, caseID string, days int, rsvp string) string {
	t.Helper()
	now := time.Now()
	a := vocab.ProposeEmbargo(caseID, now, now.Add(time.Duration(days)*24*time.Hour))
	a["@context"] = vocab.ActivityStreamsContext
	if rsvp != "" {
		a["endTime"] = rsvp
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func participantView(c api.Case, actor string) api.Participant {
	for _, p := range c.Participants {
		if p.Actor == actor {
			return p
		}
	}
	return api.Participant{}
}

// TestEmbargoInvitationAcrossNodes: the vendor proposes an embargo; the
// vendor's node writes the RSVP deadline into the Invite (a naive one is
// refused, a short one moved to 72 hours); the finder's node shows the
// finder INVITED with that deadline; the finder's Accept makes it a
// SIGNATORY. A revision lapses the finder's consent; once the Case
// Actor's clock passes the deadline it refuses the finder's Accept with
// the protocol's error and shows the finder DECLINED, and so does the
// finder's node once its clock passes it too.
func TestEmbargoInvitationAcrossNodes(t *testing.T) {
	var finderSkew, vendorSkew atomic.Int64
	finder, vendor, _, c := openedCase(t, Config{Now: skewed(&finderSkew)}, Config{Now: skewed(&vendorSkew)})
	finderID := finder.actorID("finder")
	steps := caseSteps{t: t, host: vendor, length: c.LedgerLength}

	status, body := vendor.api(t, http.MethodPost, "/actors/vendor/outbox", proposal(t, c.ID, 90, "2030-01-01T00:00:00"))
	if status != http.StatusUnprocessableEntity || !strings.Contains(string(body), "endTime") {
		t.Fatalf("a proposal with a naive RSVP deadline: %d %s; want 422 naming endTime", status, body)
	}

	before := time.Now()
	ep := steps.step(vendor, "vendor", proposal(t, c.ID, 90, time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), finder)
	var inv struct {
		EndTime string `json:"endTime"`
		Object  struct {
			EndTime string `json:"endTime"`
		} `json:"object"`
	}
	for _, it := range vendor.boxItems(t, "vendor", "outbox") {
		if it["id"] == ep {
			b, _ := json.Marshal(it)
			json.Unmarshal(b, &inv)
		}
	}
	rsvp, err := time.Parse(time.RFC3339, inv.EndTime)
	if err != nil || rsvp.Before(before.Add(72*time.Hour).Truncate(time.Second)) || rsvp.After(time.Now().Add(72*time.Hour)) || inv.Object.EndTime == inv.EndTime {
		t.Fatalf("the Invite's RSVP deadline = %q (embargo end %q); want 72 hours from now", inv.EndTime, inv.Object.EndTime)
	}

	fc := finder.oneCase(t, "the proposal at the finder", func(c api.Case) bool { return c.EMState == "PROPOSED" })
	p := participantView(fc, finderID)
	if p.PECState != "INVITED" || p.RSVPBy == nil || !p.RSVPBy.Equal(rsvp) || p.EmbargoAdherence {
		t.Fatalf("the finder at its node: %s, RSVP by %v; want INVITED by %s", p.PECState, p.RSVPBy, rsvp)
	}
	if v := participantView(fc, vendor.actorID("vendor")); v.PECState != "NO_EMBARGO" || v.RSVPBy != nil {
		t.Errorf("the proposer at the finder's node: %s, RSVP by %v; want NO_EMBARGO, none", v.PECState, v.RSVPBy)
	}

	b := newBrowser(t, finder.url)
	b.login(finder)
	page := b.get("/ui/cases/" + url.PathEscape(c.ID))
	if want := "INVITED</span> <span class=\"muted\">answer by " + rsvp.UTC().Format("2006-01-02 15:04 UTC"); !strings.Contains(page, want) {
		t.Errorf("the finder's case page does not say %q", want)
	}

	accept := func(invite string) string {
		return fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"context":%q}`, invite, c.ID)
	}
	steps.step(finder, "finder", accept(ep), finder)
	fc = finder.oneCase(t, "the finder's acceptance", func(api.Case) bool { return true })
	if p := participantView(fc, finderID); p.PECState != "SIGNATORY" || p.RSVPBy != nil || !p.EmbargoAdherence {
		t.Errorf("after its Accept the finder is %s (RSVP by %v, adherence %v); want SIGNATORY", p.PECState, p.RSVPBy, p.EmbargoAdherence)
	}
	steps.step(vendor, "vendor", accept(ep), finder) // the owner's EA
	ev := steps.step(vendor, "vendor", proposal(t, c.ID, 100, ""), finder)
	fc = finder.oneCase(t, "the revision at the finder", func(c api.Case) bool { return c.EMState == "REVISE" })
	p = participantView(fc, finderID)
	if p.PECState != "LAPSED" || p.RSVPBy == nil || p.RSVPBy.Before(before.Add(7*24*time.Hour).Truncate(time.Second)) {
		t.Fatalf("after the revision the finder is %s, RSVP by %v; want LAPSED, 7 days from now", p.PECState, p.RSVPBy)
	}

	// The Case Actor's clock passes the deadline; the finder's is two
	// minutes short of it (the nodes' clocks differ by less than the
	// signatures' window).
	vendorSkew.Store(int64(7*24*time.Hour + 2*time.Minute))
	finderSkew.Store(int64(7*24*time.Hour - 2*time.Minute))
	late := finder.submit(t, "finder", accept(ev))
	var refused *api.Refusal
	waitFor(t, "the Case Actor's refusal of the late Accept", func() bool {
		refused = finder.ledgerOf(t, c.ID, late).Refused
		return refused != nil
	})
	if !strings.Contains(fmt.Sprint(*refused), "RSVP deadline") {
		t.Errorf("the refusal = %+v; want it to name the RSVP deadline", *refused)
	}
	vc := vendor.oneCase(t, "the case at the vendor", func(api.Case) bool { return true })
	if vc.LedgerLength != steps.length {
		t.Errorf("the ledger has %d entries after the late Accept, want %d", vc.LedgerLength, steps.length)
	}
	if p := participantView(vc, finderID); p.PECState != "DECLINED" {
		t.Errorf("the vendor's node shows the finder %s past the deadline, want DECLINED", p.PECState)
	}

	// The finder's clock passes it too: its node shows DECLINED and
	// refuses the Accept itself.
	finderSkew.Store(int64(7*24*time.Hour + 2*time.Minute))
	if p := participantView(finder.oneCase(t, "the case", func(api.Case) bool { return true }), finderID); p.PECState != "DECLINED" {
		t.Errorf("the finder's node shows it %s past the deadline, want DECLINED", p.PECState)
	}
	b = newBrowser(t, finder.url) // the session of a week ago has expired
	b.login(finder)
	if page := b.get("/ui/cases/" + url.PathEscape(c.ID)); !strings.Contains(page, "DECLINED</span> <span class=\"muted\">no answer by ") {
		t.Errorf("the finder's case page does not show it DECLINED for want of an answer")
	}
	status, body = finder.api(t, http.MethodPost, "/actors/finder/outbox", accept(ev))
	if status != http.StatusConflict || !strings.Contains(string(body), "RSVP deadline") {
		t.Errorf("the finder's node sends an Accept past the deadline: %d %s; want 409 naming the RSVP deadline", status, body)
	}
}
