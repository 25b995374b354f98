package federation_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/vocab"
)

// The reference topology's actors: one per node.
const (
	finderSpec       = "finder:Person"
	vendorSpec       = "vendor:Organization"
	vendor2Spec      = "vendor2:Organization"
	coordinatorSpec  = "coordinator:Service"
	coordinator2Spec = "coordinator2:Service"
	// The vendor that also deploys (the reference's vendor-deployer) takes
	// vendor2's place in fcvcv.
	vendorDeployerSpec = "vendor2:Organization:vendor|deployer"
)

// The event types every scenario's ledger holds (the reference's
// universal five).
var universalEvents = []string{"validate_report", "engage_case", "add_note_to_case", "add_participant_status_to_participant", "close_case"}

// TestScenarios runs the reference's multi-party scenarios, each on its own
// set of real nodes, through the actors' outboxes only. At the end every
// node of the case holds the same verified ledger, every participant has
// closed the case, and the final states are the scenario's.
func TestScenarios(t *testing.T) {
	bin := buildVultron(t)
	tests := []struct {
		name   string
		actors []string
		// story runs the scenario and returns the case id and the nodes
		// that must hold the case at the end.
		story func(c *cluster) (caseID string, holders []string)
		// expect checks the scenario's own final states on the host's view.
		expect func(t *testing.T, c *cluster, final clusterCase, entries []ledger.Entry)
	}{
		{"fv", []string{finderSpec, vendorSpec}, storyFV, expectFV},
		{"fvv", []string{finderSpec, vendorSpec, vendor2Spec}, storyFVV, expectFVV},
		{"fcv", []string{finderSpec, coordinatorSpec, vendorSpec}, storyFCV, expectFCV},
		{"fcv-reject", []string{finderSpec, coordinatorSpec, vendorSpec}, storyFCVReject, expectFCVReject},
		{"fvcv-handoff", []string{finderSpec, vendorSpec, coordinatorSpec, vendor2Spec}, storyFVCVHandoff, expectFVCVHandoff},
		{"fcvcv", []string{finderSpec, coordinatorSpec, vendorSpec, coordinator2Spec, vendorDeployerSpec}, storyFCVCV, expectFCVCV},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, bin, tc.actors...)
			caseID, holders := tc.story(c)
			final := c.checkConverged(caseID, holders...)
			entries := c.ledgerOf(final.hostName(c), caseID)
			checkClosedAndPublished(t, final)
			for _, ev := range universalEvents {
				if !slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.EventType == ev }) {
					t.Errorf("the ledger of %s has no %s entry; every scenario records one", caseID, ev)
				}
			}
			// A case every participant closed takes nothing more.
			c.expectRefused("finder", addNote(caseID, "one more thing", ""), http.StatusConflict)
			tc.expect(t, c, final, entries)
		})
	}
}

// hostName returns the name of the node hosting the case.
func (cs clusterCase) hostName(c *cluster) string { return c.hostNode(cs.ID).name }

// checkClosedAndPublished checks what every scenario ends with: the
// vulnerability public (Pxa), the embargo exited, and every participant
// closed.
func checkClosedAndPublished(t *testing.T, final clusterCase) {
	t.Helper()
	if !final.Closed || final.PXAState != "Pxa" || final.EMState != "EXITED" {
		t.Errorf("final case: closed %v pxa %s em %s, want closed, Pxa, EXITED\n%s", final.Closed, final.PXAState, final.EMState, final)
	}
	for _, p := range final.Participants {
		if p.RMState != "CLOSED" {
			t.Errorf("participant %s ends in RM %s, want CLOSED", p.Actor, p.RMState)
		}
	}
}

// Activities the stories send. The node fills in id, actor and published,
// and adds the Case Actor as a recipient of case-scoped activities.

func join(caseID string) activity {
	return activity{"type": "Join", "object": caseID, "context": caseID}
}

func leave(caseID string) activity {
	return activity{"type": "Leave", "object": caseID, "context": caseID}
}

func addNote(caseID, content, inReplyTo string) activity {
	note := activity{"type": "Note", "content": content}
	if inReplyTo != "" {
		note["inReplyTo"] = inReplyTo
	}
	return activity{"type": "Add", "object": note, "target": caseID, "context": caseID}
}

// fixStatus reports a participant's vendor fix path state (VFd, VFD).
func fixStatus(caseID, participantID, vfd string) activity {
	return activity{"type": "Add", "target": participantID, "context": caseID,
		"object": activity{"type": "ParticipantStatus", "context": participantID, "vfdState": vfd}}
}

// published reports that the vulnerability is public (P).
func published(caseID, participantID string) activity {
	return activity{"type": "Add", "target": participantID, "context": caseID,
		"object": activity{"type": "ParticipantStatus", "context": participantID,
			"caseStatus": activity{"type": "CaseStatus", "pxaState": "Pxa"}}}
}

func inviteActor(caseID, actorID string, roles ...string) activity {
	return activity{"type": "Invite", "object": actorID, "target": caseID, "context": caseID, "roles": roles}
}

// openCase runs the pre-case exchange: the finder offers a report to the
// receiver, whose validation opens a case it owns, hosted by its node. It
// checks the case's first state on both nodes and returns its id.
func openCase(c *cluster, finder, receiver string) string {
	c.t.Helper()
	offer := c.submit(finder, activity{"type": "Offer", "to": []string{c.id(receiver)},
		"object": activity{"type": "VulnerabilityReport", "name": "SQL injection in login",
			"content": "The login form builds SQL from the user name."}})
	offerID := offer["id"].(string)
	c.waitInbox(receiver, "the finder's report "+offerID, func(a activity) bool { return a["id"] == offerID })
	c.submit(receiver, activity{"type": "Accept", "object": offerID, "to": []string{c.id(finder)}})
	host := c.waitCase(receiver, "", "the case its validation opened", func(cs clusterCase) bool { return cs.Hosted && cs.LedgerLength == 2 })
	c.hosts[host.ID] = c.node(receiver)
	replica := c.waitCase(finder, host.ID, "the replica of the new case", func(cs clusterCase) bool { return cs.LedgerLength == 2 })
	for _, cs := range []clusterCase{host, replica} {
		owner, reporter := cs.participant(c.id(receiver)), cs.participant(c.id(finder))
		if cs.Owner != c.id(receiver) || cs.EMState != "ACTIVE" || cs.TailHash != host.TailHash || owner == nil || reporter == nil ||
			owner.RMState != "VALID" || reporter.RMState != "ACCEPTED" || !owner.EmbargoAdherence || !reporter.EmbargoAdherence {
			c.t.Fatalf("the new case, want owner %s at VALID (its validation is entry 1), reporter at ACCEPTED, both SIGNATORY, EM ACTIVE, tail %s:\n%s",
				receiver, host.TailHash, cs)
		}
	}
	return host.ID
}

// participantID returns the CaseParticipant id of an actor in a case, as
// the host shows it.
func participantID(c *cluster, caseID, name string) string {
	c.t.Helper()
	cs, _ := c.caseOn(c.hostNode(caseID).name, caseID)
	p := cs.participant(c.id(name))
	if p == nil {
		c.t.Fatalf("%s is not a participant of case %s:\n%s", name, caseID, cs)
	}
	return p.ID
}

// caseActorInvite waits for the Case Actor's invitation of the named actor
// in its inbox and returns it.
func caseActorInvite(c *cluster, caseID, invitee string) activity {
	c.t.Helper()
	cs, _ := c.caseOn(c.hostNode(caseID).name, caseID)
	return c.waitInbox(invitee, "the invitation to case "+caseID+" from its Case Actor "+cs.CaseActor, func(a activity) bool {
		return a["type"] == "Invite" && refID(a["actor"]) == cs.CaseActor && refID(a["object"]) == c.id(invitee)
	})
}

// inviteAndAccept has the owner invite an actor with roles; the invitee
// accepts the Case Actor's invitation and becomes a participant at
// RECEIVED, bound by the embargo in force, and its node receives the
// ledger.
func inviteAndAccept(c *cluster, caseID, owner, invitee string, roles ...string) {
	c.t.Helper()
	c.record(owner, caseID, inviteActor(caseID, c.id(invitee), roles...))
	acceptInvite(c, caseID, invitee, roles...)
}

// acceptInvite has the invitee accept the Case Actor's invitation and
// checks it became a participant with roles.
func acceptInvite(c *cluster, caseID, invitee string, roles ...string) {
	c.t.Helper()
	inv := caseActorInvite(c, caseID, invitee)
	c.record(invitee, caseID, activity{"type": "Accept", "object": inv["id"]})
	cs := c.waitCase(invitee, caseID, "its own replica showing it a participant", func(cs clusterCase) bool {
		return cs.participant(c.id(invitee)) != nil
	})
	p := cs.participant(c.id(invitee))
	if p.RMState != "RECEIVED" || !p.EmbargoAdherence || !rolesInclude(p.Roles, roles) {
		c.t.Fatalf("%s after accepting the invitation: rm %s signatory %v roles %v; want RECEIVED, SIGNATORY (embargo in force), roles %v",
			invitee, p.RMState, p.EmbargoAdherence, p.Roles, roles)
	}
}

func rolesInclude(have, want []string) bool {
	for _, r := range want {
		if !slices.Contains(have, r) {
			return false
		}
	}
	return true
}

// closeAll has each named actor close the case, in order.
func closeAll(c *cluster, caseID string, names ...string) {
	c.t.Helper()
	for _, n := range names {
		c.record(n, caseID, leave(caseID))
	}
}

// storyFV: the finder reports to a vendor, which hosts the case; notes,
// a fix, publication (which ends the embargo) and closing by both.
func storyFV(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "vendor")
	// The vendor has not engaged yet: it cannot close the case.
	c.expectRefused("vendor", leave(caseID), http.StatusConflict)
	c.record("vendor", caseID, join(caseID))
	first := c.record("finder", caseID, addNote(caseID, "Is a fix planned?", ""))
	c.record("vendor", caseID, addNote(caseID, "A fix is in testing.", refID(first["object"])))
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("vendor", caseID, published(caseID, participantID(c, caseID, "vendor")))
	// The finder reports what the case already knows: nothing changes.
	c.expectRefused("finder", published(caseID, participantID(c, caseID, "finder")), http.StatusConflict)
	closeAll(c, caseID, "vendor", "finder")
	return caseID, []string{"finder", "vendor"}
}

func expectFV(t *testing.T, c *cluster, final clusterCase, _ []ledger.Entry) {
	if final.Owner != c.id("vendor") || final.participant(c.id("vendor")).VFDState != "VFd" {
		t.Errorf("fv ends with owner %s, want the vendor at VFd:\n%s", final.Owner, final)
	}
	detail, _ := c.caseOn("finder", final.ID)
	if len(detail.Notes) != 2 || detail.Notes[1].InReplyTo != detail.Notes[0].ID || detail.Notes[0].Author != c.id("finder") {
		t.Errorf("notes on the finder's replica = %+v, want the finder's note and the vendor's reply to it", detail.Notes)
	}
}

// storyFVV: the vendor owns the case and invites a second vendor; each
// vendor follows its own fix path.
func storyFVV(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "vendor")
	c.record("vendor", caseID, join(caseID))
	inviteAndAccept(c, caseID, "vendor", "vendor2", "vendor")
	c.record("vendor2", caseID, join(caseID))
	c.record("vendor2", caseID, addNote(caseID, "We ship the same component.", ""))
	c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFd"))
	if cs, _ := c.caseOn("vendor", caseID); cs.participant(c.id("vendor")).VFDState != "Vfd" {
		c.t.Fatalf("vendor2's fix changed the vendor's fix path:\n%s", cs)
	}
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("finder", caseID, published(caseID, participantID(c, caseID, "finder")))
	closeAll(c, caseID, "vendor2", "vendor", "finder")
	return caseID, []string{"finder", "vendor", "vendor2"}
}

func expectFVV(t *testing.T, c *cluster, final clusterCase, _ []ledger.Entry) {
	for _, v := range []string{"vendor", "vendor2"} {
		if p := final.participant(c.id(v)); p == nil || p.VFDState != "VFd" || !slices.Contains(p.Roles, "vendor") {
			t.Errorf("fvv: %s should end a vendor at VFd:\n%s", v, final)
		}
	}
	if final.Owner != c.id("vendor") {
		t.Errorf("fvv: owner %s, want the vendor", final.Owner)
	}
}

// storyFCV: the finder reports to a coordinator, which owns the case and
// invites the vendor; the vendor fixes, the coordinator closes last.
func storyFCV(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "coordinator")
	c.record("coordinator", caseID, join(caseID))
	inviteAndAccept(c, caseID, "coordinator", "vendor", "vendor")
	c.record("vendor", caseID, join(caseID))
	c.record("vendor", caseID, addNote(caseID, "Confirmed; fixing.", ""))
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("coordinator", caseID, published(caseID, participantID(c, caseID, "coordinator")))
	closeAll(c, caseID, "vendor", "finder", "coordinator")
	return caseID, []string{"finder", "coordinator", "vendor"}
}

func expectFCV(t *testing.T, c *cluster, final clusterCase, _ []ledger.Entry) {
	if final.Owner != c.id("coordinator") {
		t.Errorf("fcv: owner %s, want the coordinator", final.Owner)
	}
	if p := final.participant(c.id("vendor")); p == nil || p.VFDState != "VFd" {
		t.Errorf("fcv: the vendor should end at VFd:\n%s", final)
	}
	if p := final.participant(c.id("coordinator")); p == nil || !slices.Contains(p.Roles, "coordinator") {
		t.Errorf("fcv: the coordinator should take part as coordinator:\n%s", final)
	}
}

// storyFCVReject: the coordinator invites the vendor, which rejects the
// invitation and never becomes a participant.
func storyFCVReject(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "coordinator")
	c.record("coordinator", caseID, join(caseID))
	c.record("coordinator", caseID, inviteActor(caseID, c.id("vendor"), "vendor"))
	inv := caseActorInvite(c, caseID, "vendor")
	c.record("vendor", caseID, activity{"type": "Reject", "object": inv["id"]})
	host, _ := c.caseOn("coordinator", caseID)
	if host.participant(c.id("vendor")) != nil || len(host.Invites) != 0 {
		c.t.Fatalf("after the vendor rejected the invitation it should be neither participant nor invitee:\n%s\ninvites %+v", host, host.Invites)
	}
	c.record("finder", caseID, addNote(caseID, "Will you contact the vendor again?", ""))
	c.record("coordinator", caseID, published(caseID, participantID(c, caseID, "coordinator")))
	closeAll(c, caseID, "finder", "coordinator")
	return caseID, []string{"finder", "coordinator"}
}

func expectFCVReject(t *testing.T, c *cluster, final clusterCase, entries []ledger.Entry) {
	if final.Owner != c.id("coordinator") {
		t.Errorf("fcv-reject: owner %s, want the coordinator", final.Owner)
	}
	if final.participant(c.id("vendor")) != nil {
		t.Errorf("fcv-reject: the vendor became a participant:\n%s", final)
	}
	if !slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.EventType == "reject_invite_actor_to_case" }) {
		t.Errorf("fcv-reject: the ledger records no reject_invite_actor_to_case")
	}
	if cs := c.cases("vendor"); len(cs) != 0 {
		t.Errorf("fcv-reject: the vendor's node holds %d cases, want none:\n%s", len(cs), cs[0])
	}
}

// storyFVCVHandoff: the vendor owns the case, invites a coordinator and
// transfers the ownership to it; the coordinator, now owner, invites a
// second vendor. The Case Actor stays on the vendor's node.
func storyFVCVHandoff(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "vendor")
	c.record("vendor", caseID, join(caseID))
	inviteAndAccept(c, caseID, "vendor", "coordinator", "coordinator")
	c.record("coordinator", caseID, join(caseID))
	offer := c.record("vendor", caseID, activity{"type": "Offer", "object": caseID, "target": c.id("coordinator"), "context": caseID})
	c.record("coordinator", caseID, activity{"type": "Accept", "object": offer, "context": caseID})
	for _, n := range []string{"finder", "vendor", "coordinator"} {
		if cs, _ := c.caseOn(n, caseID); cs.Owner != c.id("coordinator") {
			c.t.Fatalf("after the transfer node %s shows owner %s, want the coordinator", n, cs.Owner)
		}
	}
	// The former owner no longer invites.
	c.expectRefused("vendor", inviteActor(caseID, c.id("vendor2"), "vendor"), http.StatusForbidden)
	inviteAndAccept(c, caseID, "coordinator", "vendor2", "vendor")
	c.record("vendor2", caseID, join(caseID))
	c.record("coordinator", caseID, addNote(caseID, "vendor2 ships the affected library.", ""))
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFd"))
	c.record("coordinator", caseID, published(caseID, participantID(c, caseID, "coordinator")))
	closeAll(c, caseID, "vendor2", "vendor", "finder", "coordinator")
	return caseID, []string{"finder", "vendor", "coordinator", "vendor2"}
}

func expectFVCVHandoff(t *testing.T, c *cluster, final clusterCase, entries []ledger.Entry) {
	if final.Owner != c.id("coordinator") {
		t.Errorf("fvcv-handoff: owner %s, want the coordinator", final.Owner)
	}
	if final.hostName(c) != "vendor" {
		t.Errorf("fvcv-handoff: the case is hosted by %s, want the vendor's node (the Case Actor stays)", final.hostName(c))
	}
	if p := final.participant(c.id("vendor2")); p == nil || p.VFDState != "VFd" {
		t.Errorf("fvcv-handoff: vendor2 should be a participant at VFd:\n%s", final)
	}
	if by := inviter(t, entries, c.id("vendor2")); by != c.id("coordinator") {
		t.Errorf("fvcv-handoff: vendor2 was invited by %q, want the coordinator", by)
	}
	if !slices.ContainsFunc(entries, func(e ledger.Entry) bool { return e.EventType == "accept_case_ownership_transfer" }) {
		t.Errorf("fvcv-handoff: the ledger records no accept_case_ownership_transfer")
	}
}

// inviter returns the actor whose recorded invitation named invitee.
func inviter(t *testing.T, entries []ledger.Entry, invitee string) string {
	t.Helper()
	for _, e := range entries {
		if e.EventType != "invite_actor_to_case" && e.EventType != "accept_actor_recommendation" {
			continue
		}
		doc, err := vocab.Parse(e.PayloadSnapshot)
		if err != nil || doc.Activity() == nil {
			t.Fatalf("entry %d: %v", e.LogIndex, err)
		}
		act := doc.Activity()
		named := act.Object.ID()
		if inner, ok := act.Object.Object.(*vocab.Activity); ok {
			named = inner.Object.ID() // an accepted suggestion names the actor inside
		}
		if named == invitee {
			return act.Actor.ID()
		}
	}
	return ""
}

// storyFCVCV: the coordinator owns the case and invites a vendor and a
// second coordinator; the second coordinator suggests vendor2 (a vendor
// and deployer), whom the owner invites by accepting the suggestion. The
// first vendor stops at VFd; vendor2 deploys its fix (VFD).
func storyFCVCV(c *cluster) (string, []string) {
	caseID := openCase(c, "finder", "coordinator")
	c.record("coordinator", caseID, join(caseID))
	inviteAndAccept(c, caseID, "coordinator", "vendor", "vendor")
	inviteAndAccept(c, caseID, "coordinator", "coordinator2", "coordinator")
	c.record("vendor", caseID, join(caseID))
	c.record("coordinator2", caseID, join(caseID))
	suggestion := c.record("coordinator2", caseID, activity{"type": "Offer", "object": c.id("vendor2"), "target": caseID, "context": caseID,
		"roles": []string{"vendor", "deployer"}})
	// Only the owner decides on suggestions.
	c.expectRefused("vendor", activity{"type": "Accept", "object": suggestion, "context": caseID}, http.StatusForbidden)
	c.record("coordinator", caseID, activity{"type": "Accept", "object": suggestion, "context": caseID})
	acceptInvite(c, caseID, "vendor2", "vendor", "deployer")
	c.record("vendor2", caseID, join(caseID))
	c.record("coordinator2", caseID, addNote(caseID, "vendor2 also runs the product.", ""))
	c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
	c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFd"))
	c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFD"))
	// The vendor has no deployer role.
	c.expectRefused("vendor", fixStatus(caseID, participantID(c, caseID, "vendor"), "VFD"), http.StatusConflict)
	c.record("coordinator2", caseID, published(caseID, participantID(c, caseID, "coordinator2")))
	closeAll(c, caseID, "vendor", "vendor2", "coordinator2", "finder", "coordinator")
	return caseID, []string{"finder", "coordinator", "vendor", "coordinator2", "vendor2"}
}

func expectFCVCV(t *testing.T, c *cluster, final clusterCase, entries []ledger.Entry) {
	if final.Owner != c.id("coordinator") {
		t.Errorf("fcvcv: owner %s, want the coordinator", final.Owner)
	}
	if p := final.participant(c.id("vendor")); p == nil || p.VFDState != "VFd" {
		t.Errorf("fcvcv: the vendor should end at VFd:\n%s", final)
	}
	if p := final.participant(c.id("vendor2")); p == nil || p.VFDState != "VFD" || !rolesInclude(p.Roles, []string{"vendor", "deployer"}) {
		t.Errorf("fcvcv: vendor2 should end a vendor and deployer at VFD:\n%s", final)
	}
	if by := inviter(t, entries, c.id("vendor2")); by != c.id("coordinator") {
		t.Errorf("fcvcv: vendor2 was invited by %q, want the owner accepting coordinator2's suggestion", by)
	}
}

// quickReplicaChecks returns the flags that have replicas check their
// Case Actors' ledgers within seconds, not minutes, and retry a failed
// check within a second.
func quickReplicaChecks() []string {
	return []string{"--replica-check-first", "2s", "--replica-check-max", "8s", "--replica-retry-first", "500ms", "--replica-retry-max", "4s"}
}

// newFaultyCluster starts nodes of the given specs behind a fault net that
// lets everything through until a test scripts a fault, with quick
// replica checks.
func newFaultyCluster(t *testing.T, specs ...string) (*cluster, *faultNet) {
	t.Helper()
	fnet := newFaultNet(t)
	c := newClusterWith(t, buildVultron(t), clusterOptions{args: quickReplicaChecks(), front: fnet.front(t)}, specs...)
	return c, fnet
}

// TestInviteeFetchesTheLedgerWhenItsJoiningIsNotAnnounced loses the one
// announcement that tells an invitee's node of the case it joined (the
// Case Actor sends it the entry that records its joining, and the node
// fetches the entries before it): a proxy answers it 413, which the Case
// Actor's node takes as final. The node that accepted the invitation
// looks for the case itself, and its replica converges.
func TestInviteeFetchesTheLedgerWhenItsJoiningIsNotAnnounced(t *testing.T) {
	c, fnet := newFaultyCluster(t, finderSpec, vendorSpec, vendor2Spec)
	caseID := openCase(c, "finder", "vendor")
	c.record("vendor", caseID, join(caseID))
	lost := fnet.script(func(r *proxied) bool { return r.to == "vendor2" && r.announcement() }, decision{kind: fault413}, 1)

	inviteAndAccept(c, caseID, "vendor", "vendor2", "vendor")
	if lost() != 1 {
		t.Fatalf("the proxy answered 413 to %d announcements to vendor2, want 1", lost())
	}
	c.record("vendor2", caseID, join(caseID))
	c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFd"))
	c.checkConverged(caseID, "finder", "vendor", "vendor2")
}

// TestReporterFindsItsCaseWhenItsCreationIsNotAnnounced loses both
// announcements that tell the reporter's node of the case its report
// opened (the case's creation and the report's validation, entries 0 and
// 1): a proxy answers them 413, which the Case Actor's node takes as
// final, and the case then stays quiet. The vendor's validation (RV)
// names the case it opens as its context; the reporter's node looks for
// that case itself, and its replica converges.
func TestReporterFindsItsCaseWhenItsCreationIsNotAnnounced(t *testing.T) {
	c, fnet := newFaultyCluster(t, finderSpec, vendorSpec)
	lost := fnet.script(func(r *proxied) bool { return r.to == "finder" && r.announcement() }, decision{kind: fault413}, 2)

	offer := c.submit("finder", activity{"type": "Offer", "to": []string{c.id("vendor")},
		"object": activity{"type": "VulnerabilityReport", "name": "SQL injection in login",
			"content": "The login form builds SQL from the user name."}})
	offerID := offer["id"].(string)
	c.waitInbox("vendor", "the finder's report "+offerID, func(a activity) bool { return a["id"] == offerID })
	c.submit("vendor", activity{"type": "Accept", "object": offerID, "to": []string{c.id("finder")}})
	host := c.waitCase("vendor", "", "the case its validation opened", func(cs clusterCase) bool { return cs.Hosted && cs.LedgerLength == 2 })
	c.hosts[host.ID] = c.node("vendor")
	rv := c.waitInbox("finder", "the vendor's validation of "+offerID, func(a activity) bool {
		return a["type"] == "Accept" && refID(a["object"]) == offerID
	})
	if got := refID(rv["context"]); got != host.ID {
		t.Errorf("the validation's context is %q, want the case it opened, %s", got, host.ID)
	}
	c.waitCase("finder", host.ID, "the reporter's replica of its case, found without an announcement", func(cs clusterCase) bool {
		return cs.LedgerLength == host.LedgerLength && cs.TailHash == host.TailHash
	})
	if lost() != 2 {
		t.Fatalf("the proxy answered 413 to %d announcements to the finder, want 2", lost())
	}
	c.checkConverged(host.ID, "finder", "vendor")
}

// TestReplicaConvergesAfterRestart stops a participant's node after it
// joined a case, lets the case move on without it, and restarts it: the
// Case Actor's deliveries are retried until the node is back, and its
// replica converges to the host's ledger. It runs for an invited second
// vendor (fvv) and for the finder of an fv case.
func TestReplicaConvergesAfterRestart(t *testing.T) {
	bin := buildVultron(t)
	tests := []struct {
		name   string
		actors []string
		down   string // the participant whose node is stopped
	}{
		{"fvv-vendor2", []string{finderSpec, vendorSpec, vendor2Spec}, "vendor2"},
		{"fv-finder", []string{finderSpec, vendorSpec}, "finder"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, bin, tc.actors...)
			caseID := openCase(c, "finder", "vendor")
			c.record("vendor", caseID, join(caseID))
			if tc.down == "vendor2" {
				inviteAndAccept(c, caseID, "vendor", "vendor2", "vendor")
				c.record("vendor2", caseID, join(caseID))
			}
			before, _ := c.caseOn(tc.down, caseID)

			c.stop(tc.down)
			first := c.record("vendor", caseID, addNote(caseID, "Status update: fix in review.", ""))
			c.record("vendor", caseID, addNote(caseID, "Fix ready next week.", refID(first["object"])))
			c.record("vendor", caseID, fixStatus(caseID, participantID(c, caseID, "vendor"), "VFd"))
			c.record("vendor", caseID, published(caseID, participantID(c, caseID, "vendor")))
			host, _ := c.caseOn("vendor", caseID)
			if host.LedgerLength <= before.LedgerLength {
				t.Fatalf("the case did not move on while %s was down: host ledger %d, %s had %d", tc.down, host.LedgerLength, tc.down, before.LedgerLength)
			}

			c.restart(tc.down)
			c.waitCase(tc.down, caseID, "the restarted replica catching up to the host's tail", func(cs clusterCase) bool {
				return cs.LedgerLength == host.LedgerLength && cs.TailHash == host.TailHash
			})
			holders := []string{"finder", "vendor"}
			if tc.down == "vendor2" {
				holders = append(holders, "vendor2")
			}
			c.checkConverged(caseID, holders...)

			// The restarted participant carries on in the case.
			if tc.down == "vendor2" {
				c.record("vendor2", caseID, fixStatus(caseID, participantID(c, caseID, "vendor2"), "VFd"))
			} else {
				c.record("finder", caseID, addNote(caseID, "Thanks, confirmed fixed.", ""))
			}
			closeAll(c, caseID, holders...)
			final := c.checkConverged(caseID, holders...)
			checkClosedAndPublished(t, final)
		})
	}
}
