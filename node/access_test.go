package node

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/store"
)

// The access rule these tests check: a case, its reports, its ledger's
// activities and its notes are served to the node's API token and to a
// signed GET from a participant of the case that was not removed. An
// unsigned GET gets 401 (who is asking is unknown); a signed GET from an
// actor that may not read gets 403 (it is known and refused), except for
// the case and its ledger, which answer it 404 as for a case the node
// does not hold. An invitee is not a participant until it accepts the
// invitation, which binds it to the embargo in force, so it is refused
// until then; a removed participant is refused again. Every refusal is a
// JSON {"error": ...} that carries none of the content.

const accessSecret = "secret-detail-7f3a: the admin console trusts X-Forwarded-User"

// requester is one way of asking for an object.
type requester struct {
	name  string
	keyID string
	key   *rsa.PrivateKey
	token string
}

// fetchAs GETs url as rq (signed, with a token, or neither) and returns the
// status and the body.
func fetchAs(t *testing.T, url string, rq requester) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", actor.ContentType)
	if rq.token != "" {
		req.Header.Set("Authorization", "Bearer "+rq.token)
	}
	if rq.key != nil {
		if err := actor.SignRequest(req, nil, rq.keyID, rq.key, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestAccessControl checks who reads a case and what it recorded, across
// an invitation, its acceptance and the invitee's removal.
func TestAccessControl(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	vendor2 := startNode(t, "vendor2:Organization")
	stranger := newPeer(t, sharedKeys.get(t, 0))
	finderID, vendorID, vendor2ID := finder.actorID("finder"), vendor.actorID("vendor"), vendor2.actorID("vendor2")

	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Header trust","content":%q}}`, vendorID, accessSecret))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	acceptID := vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finderID))
	c := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 })
	caseID := c.ID
	finder.oneCase(t, "the finder's replica", func(c api.Case) bool { return c.LedgerLength == 2 })
	reportID := reportIDOf(t, finder, offerID)

	steps := &caseSteps{t: t, host: vendor, length: 2}
	step := steps.step
	addID := step(finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":%q},"target":%q,"context":%q}`, accessSecret, caseID, caseID), finder)
	stored, err := finder.db.Activity(context.Background(), addID)
	if err != nil {
		t.Fatal(err)
	}
	var add struct {
		Object struct {
			ID string `json:"id"`
		} `json:"object"`
	}
	if err := json.Unmarshal(stored.Body, &add); err != nil || add.Object.ID == "" {
		t.Fatalf("the stored Add carries no note id (%v): %s", err, stored.Body)
	}
	noteID := add.Object.ID

	fl, _ := finder.Local("finder")
	v2l, _ := vendor2.Local("vendor2")
	participant := requester{name: "participant", keyID: fl.KeyID, key: fl.Key}
	outsider := requester{name: "non-participant", keyID: stranger.keyID, key: stranger.key}
	unsigned := requester{name: "unsigned"}
	vendor2Signed := requester{keyID: v2l.KeyID, key: v2l.Key}

	// An object is served by the node that minted or holds it: the case by
	// its host, the report and the note by the finder's node (which minted
	// them), the Accept by the vendor's node.
	type object struct {
		kind  string
		url   string
		token string // the serving node's API token
	}
	objects := []object{
		{"case", caseID, vendor.token},
		{"ledger page", caseID + "/ledger?from=0&limit=10", vendor.token},
		{"report", reportID, finder.token},
		{"ledger activity", acceptID, vendor.token},
		{"note", noteID, finder.token},
	}
	for _, o := range objects {
		if !strings.Contains(o.url, "/cases/") && !strings.Contains(o.url, "/objects/") && !strings.Contains(o.url, "/activities/") {
			t.Fatalf("%s id %s is not a URL this node serves", o.kind, o.url)
		}
	}
	check := func(phase string, rq requester, want int) {
		t.Helper()
		for _, o := range objects {
			r := rq
			if r.name == "local token user" {
				r.token = o.token
			}
			status, body := fetchAs(t, o.url, r)
			want := want
			if want == http.StatusForbidden && (o.kind == "case" || o.kind == "ledger page") {
				want = http.StatusNotFound // as for a case the node does not hold
			}
			if status != want {
				t.Errorf("%s: %s GET of the %s: %d %s, want %d", phase, r.name, o.kind, status, body, want)
				continue
			}
			if want == http.StatusOK {
				if o.kind == "report" || o.kind == "note" || o.kind == "ledger page" {
					if !strings.Contains(string(body), accessSecret) {
						t.Errorf("%s: %s GET of the %s answered 200 without its content: %s", phase, r.name, o.kind, body)
					}
				}
				continue
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
				t.Errorf("%s: %s GET of the %s refused without a JSON error: %s", phase, r.name, o.kind, body)
			}
			if strings.Contains(string(body), "secret-detail") || strings.Contains(string(body), "Header trust") {
				t.Errorf("%s: the refusal of the %s to %s leaks its content: %s", phase, o.kind, r.name, body)
			}
		}
	}
	apiCase := func(phase string, token string, want int) {
		t.Helper()
		r := requester{name: "API", token: token}
		status, body := fetchAs(t, vendor.url+"/api/cases/"+url.PathEscape(caseID), r)
		if status != want {
			t.Errorf("%s: GET /api/cases/{id} with token %t: %d %s, want %d", phase, token != "", status, body, want)
		}
		if want != http.StatusOK && strings.Contains(string(body), "secret-detail") {
			t.Errorf("%s: the API's refusal leaks content: %s", phase, body)
		}
	}

	rows := []struct {
		rq   requester
		want int
	}{
		{participant, http.StatusOK},
		{outsider, http.StatusForbidden},
		{unsigned, http.StatusUnauthorized},
		{requester{name: "local token user"}, http.StatusOK},
	}
	for _, row := range rows {
		check("before the invitation", row.rq, row.want)
	}
	apiCase("without a token", "", http.StatusUnauthorized)
	apiCase("with the token", vendor.token, http.StatusOK)
	vendor2Signed.name = "uninvited vendor2"
	check("before the invitation", vendor2Signed, http.StatusForbidden)

	// The vendor invites vendor2: until vendor2 accepts (and so the embargo
	// in force) it reads nothing of the case.
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Invite","object":%q,"target":%q,"context":%q,"roles":["vendor"]}`, vendor2ID, caseID, caseID), finder)
	inviteID := vendor2.awaitInboxItem(t, "vendor2", "Invite")
	vendor2Signed.name = "invitee before accepting"
	check("invited", vendor2Signed, http.StatusForbidden)
	// The invitation itself is addressed to the invitee, which may read it.
	if status, body := fetchAs(t, inviteID, vendor2Signed); status != http.StatusOK {
		t.Errorf("the invitee's GET of its invitation: %d %s, want 200", status, body)
	}

	step(vendor2, "vendor2", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q}`, inviteID), finder, vendor2)
	vendor2Signed.name = "invitee after accepting"
	check("joined", vendor2Signed, http.StatusOK)

	// Removed, vendor2 reads nothing again, not even what was addressed to
	// it while it took part, and receives no further entries after the
	// one that removes it.
	v2part, _, _, _ := participantOf(vendor.cases(t)[0], vendor2ID)
	step(vendor, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Remove","object":%q,"target":%q,"context":%q}`, v2part, caseID, caseID), finder, vendor2)
	removedAt := vendor2.cases(t)[0].LedgerLength
	vendor2Signed.name = "removed participant"
	check("removed", vendor2Signed, http.StatusForbidden)
	if status, _ := fetchAs(t, inviteID, vendor2Signed); status != http.StatusForbidden {
		t.Errorf("the removed participant's GET of its old invitation: %d, want 403", status)
	}
	step(finder, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Add","object":{"type":"Note","content":"after removal"},"target":%q,"context":%q}`, caseID, caseID), finder)
	if got := vendor2.cases(t)[0].LedgerLength; got != removedAt || got >= steps.length {
		t.Errorf("the removed vendor2 holds %d entries (had %d at its removal; the case has %d)", got, removedAt, steps.length)
	}
	for _, row := range rows {
		check("after the removal", row.rq, row.want)
	}
}

// TestCaseRefusalDoesNotTellWhetherTheNodeHoldsIt: a signed GET of a case
// or of its ledger from a key that is no participant of it gets the answer
// a case the node does not hold gets, the same status and the same
// sentence, so that a key is no way to learn which cases a node holds; a
// participant and the node's API token still read both.
func TestCaseRefusalDoesNotTellWhetherTheNodeHoldsIt(t *testing.T) {
	finder := startNode(t, "finder:Person")
	vendor := startNode(t, "vendor:Organization")
	offerID := finder.submit(t, "finder", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"r","content":"c"}}`, vendor.actorID("vendor")))
	waitFor(t, "the offer at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	vendor.submit(t, "vendor", fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Accept","object":%q,"to":[%q]}`, offerID, finder.actorID("finder")))
	held := vendor.oneCase(t, "the case", func(c api.Case) bool { return c.LedgerLength == 2 }).ID
	missing := vendor.url + "/cases/" + strings.Repeat("0", len(held)-len(vendor.url+"/cases/"))

	stranger := newPeer(t, sharedKeys.get(t, 0))
	outsider := requester{name: "non-participant", keyID: stranger.keyID, key: stranger.key}
	fl, _ := finder.Local("finder")
	participant := requester{name: "participant", keyID: fl.KeyID, key: fl.Key}
	operator := requester{name: "API token", token: vendor.token}

	for _, tc := range []struct {
		name, suffix string
	}{
		{"case", ""},
		{"ledger", "/ledger?from=0&limit=10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := lastAuditSeq(t, vendor.db)
			heldStatus, heldBody := fetchAs(t, held+tc.suffix, outsider)
			// The operator's audit log keeps what the answer withholds.
			// (Deliveries between the two nodes may be audited meanwhile.)
			want := stranger.id + " is not a participant of " + held
			if !slices.ContainsFunc(auditAfter(t, vendor.db, before), func(r store.AuditRecord) bool {
				return r.Decision == store.DecisionRefused && r.Status == http.StatusForbidden && r.Reason == want && r.KeyID == stranger.keyID
			}) {
				t.Errorf("no audit record of the refusal %q withheld from the answer: %+v", want, auditAfter(t, vendor.db, before))
			}
			missStatus, missBody := fetchAs(t, missing+tc.suffix, outsider)
			if heldStatus != missStatus {
				t.Errorf("a non-participant's GET: %d for the case the node holds, %d for one it does not", heldStatus, missStatus)
			}
			if heldStatus != http.StatusNotFound {
				t.Errorf("a non-participant's GET of the held case: %d %s, want 404", heldStatus, heldBody)
			}
			// The sentences may differ only by the id each names.
			if a, b := strings.ReplaceAll(string(heldBody), held, "ID"), strings.ReplaceAll(string(missBody), missing, "ID"); a != b {
				t.Errorf("a non-participant's GET: the held case answers %s, one the node does not hold %s", heldBody, missBody)
			}
			var e struct {
				Error string `json:"error"`
			}
			if err := json.Unmarshal(heldBody, &e); err != nil || e.Error == "" {
				t.Errorf("the refusal is no JSON error: %s", heldBody)
			}
			for _, rq := range []requester{participant, operator} {
				if status, body := fetchAs(t, held+tc.suffix, rq); status != http.StatusOK {
					t.Errorf("the %s's GET of the held case: %d %s, want 200", rq.name, status, body)
				}
				if status, body := fetchAs(t, missing+tc.suffix, rq); status != http.StatusNotFound {
					t.Errorf("the %s's GET of a case the node does not hold: %d %s, want 404", rq.name, status, body)
				}
			}
		})
	}
}
