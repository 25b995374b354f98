package cases

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

const (
	caseID    = "https://v.example/cases/c1"
	caseActor = "https://v.example/actors/case-c1"
	vendor    = "https://v.example/actors/vendor"
	finder    = "https://f.example/actors/finder"
	vendor2   = "https://v2.example/actors/vendor2"
	coord     = "https://c.example/actors/coord"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// parseActivity parses a JSON activity for a test.
func parseActivity(t *testing.T, s string) *vocab.Activity {
	t.Helper()
	doc, err := vocab.Parse([]byte(s))
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	a := doc.Activity()
	if a == nil {
		t.Fatalf("not an activity: %s", s)
	}
	return a
}

// act builds an activity of type typ by actor with the given extra JSON
// members.
func act(t *testing.T, typ, actor, members string) *vocab.Activity {
	t.Helper()
	id := fmt.Sprintf(`"id":"https://x.example/a/%d",`, time.Now().UnixNano())
	if strings.HasPrefix(members, `"id":`) {
		id = "" // the caller names the activity
	}
	if members != "" {
		members = "," + members
	}
	return parseActivity(t, fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams",%s"type":%q,"actor":%q%s}`,
		id, typ, actor, members))
}

// newCase creates a case owned by vendor with finder as reporter, with an
// embargo in force when embargo is true.
func newCase(t *testing.T, embargo bool) *Case {
	t.Helper()
	c := &Case{}
	if _, err := c.Apply(EventType(vocab.CreateCase), newCaseCreate(t, embargo), t0); err != nil {
		t.Fatalf("create: %v", err)
	}
	return c
}

// newCaseCreate returns the activity that creates the case newCase folds.
func newCaseCreate(t *testing.T, embargo bool) *vocab.Activity {
	t.Helper()
	em, consent, active := "NONE", "NO_EMBARGO", ""
	if embargo {
		em, consent = "ACTIVE", "SIGNATORY"
		active = fmt.Sprintf(`,"activeEmbargo":{"id":"%s/embargoes/1","type":"EmbargoEvent","startTime":"2026-11-01T12:00:00Z","endTime":"2027-01-30T12:00:00Z"}`, caseID)
	}
	create := parseActivity(t, fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","id":"%[1]s/created","type":"Create","actor":%[2]q,
"object":{"id":%[1]q,"type":"VulnerabilityCase","name":"SQLi","attributedTo":%[3]q,"published":"2026-11-01T12:00:00Z",
 "vulnerabilityReports":["https://f.example/reports/1"],
 "caseParticipants":[
  {"id":"%[1]s/participants/v","type":"CaseParticipant","attributedTo":%[3]q,"caseRoles":["vendor","case_owner"],"embargoConsentState":%[6]q,
   "participantStatuses":[{"type":"ParticipantStatus","context":"%[1]s/participants/v","rmState":"RECEIVED","vfdState":"Vfd"}]},
  {"id":"%[1]s/participants/f","type":"CaseParticipant","attributedTo":%[4]q,"caseRoles":["finder","reporter"],"embargoConsentState":%[6]q,
   "participantStatuses":[{"type":"ParticipantStatus","context":"%[1]s/participants/f","rmState":"ACCEPTED","vfdState":"vfd"}]}],
 "caseStatuses":[{"type":"CaseStatus","emState":%[5]q,"pxaState":"pxa"}]%[7]s}}`, caseID, caseActor, vendor, finder, em, consent, active))
	return create
}

// must applies an activity and fails the test if it is refused.
func must(t *testing.T, c *Case, sem vocab.Semantic, a *vocab.Activity) Effects {
	t.Helper()
	fx, err := c.Apply(EventType(sem), a, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("%s by %s: %v", sem, a.Actor.ID(), err)
	}
	return fx
}

// refused applies an activity that must be refused with status and a
// message containing want, and checks the case did not change.
func refused(t *testing.T, c *Case, sem vocab.Semantic, a *vocab.Activity, status int, want string) {
	t.Helper()
	before, _ := json.Marshal(c)
	work := c.clone()
	_, err := work.Apply(EventType(sem), a, t0.Add(time.Hour))
	if err == nil {
		t.Fatalf("%s by %s was allowed; want %d", sem, a.Actor.ID(), status)
	}
	if got := problem.Status(err); got != status {
		t.Errorf("%s: status %d (%v), want %d", sem, got, err, status)
	}
	if !strings.Contains(problem.Message(err), want) {
		t.Errorf("%s: message %q does not contain %q", sem, problem.Message(err), want)
	}
	if strings.Contains(problem.Message(err), "step (") {
		t.Errorf("%s: message %q shows the states the state models were in; want only why", sem, problem.Message(err))
	}
	after, _ := json.Marshal(c)
	if string(before) != string(after) {
		t.Errorf("%s: the case changed although the activity was refused", sem)
	}
}

// acknowledged applies an activity a receiver acknowledges although it
// changes nothing (the receiver tables' rows with no transition): it is
// allowed, carries no message of its own, leaves the case as it was but
// for the time of its last activity, and says in Effects.Unsendable, with
// a message containing want, why a sender may not send it.
func acknowledged(t *testing.T, c *Case, sem vocab.Semantic, a *vocab.Activity, want string) {
	t.Helper()
	before := c.clone()
	fx := must(t, c, sem, a)
	if fx.Messages != 0 || fx.Unsendable == nil || problem.Status(fx.Unsendable) != 409 || !strings.Contains(problem.Message(fx.Unsendable), want) {
		t.Errorf("%s by %s: messages %s, unsendable %v; want none, and a 409 saying %q", sem, a.Actor.ID(), fx.Messages, fx.Unsendable, want)
	}
	before.UpdatedAt = c.UpdatedAt
	b, _ := json.Marshal(before)
	after, _ := json.Marshal(c)
	if string(b) != string(after) {
		t.Errorf("%s by %s changed the case:\n%s\nwas\n%s", sem, a.Actor.ID(), after, b)
	}
}

func join(t *testing.T, actor string) *vocab.Activity {
	return act(t, "Join", actor, fmt.Sprintf(`"object":%q,"context":%q`, caseID, caseID))
}

func leave(t *testing.T, actor string) *vocab.Activity {
	return act(t, "Leave", actor, fmt.Sprintf(`"object":%q,"context":%q`, caseID, caseID))
}

func status(t *testing.T, actor, participant, vfd, pxa string) *vocab.Activity {
	obj := `"type":"ParticipantStatus","context":"` + participant + `"`
	if vfd != "" {
		obj += `,"vfdState":"` + vfd + `"`
	}
	if pxa != "" {
		obj += `,"caseStatus":{"type":"CaseStatus","pxaState":"` + pxa + `"}`
	}
	return act(t, "Add", actor, fmt.Sprintf(`"object":{%s},"target":%q,"context":%q`, obj, participant, caseID))
}

func TestCreateCase(t *testing.T) {
	c := newCase(t, true)
	if c.Owner != vendor || c.CaseActor != caseActor || c.EM != cvdstate.EMActive || c.Embargo == nil {
		t.Fatalf("case = %+v", c)
	}
	v, f := c.Participant(vendor), c.Participant(finder)
	if v.RM != cvdstate.RMReceived || v.VFD != cvdstate.VFDAware || !v.Roles.Has(cvdstate.CaseOwner) || !v.EmbargoAdherence() {
		t.Errorf("vendor = %+v", v)
	}
	if f.RM != cvdstate.RMAccepted || !f.Roles.Has(cvdstate.Reporter) || f.PEC != cvdstate.PECSignatory {
		t.Errorf("finder = %+v", f)
	}
	refused(t, c, vocab.CreateCase, act(t, "Create", caseActor, ""), 409, "already exists")
}

func TestReportManagementInCase(t *testing.T) {
	c := newCase(t, false)
	refused(t, c, vocab.CloseCase, leave(t, vendor), 409, "close is not allowed from RECEIVED")
	fx := must(t, c, vocab.EngageCase, join(t, vendor)) // RECEIVED → VALID → ACCEPTED
	if got := c.Participant(vendor).RM; got != cvdstate.RMAccepted {
		t.Fatalf("vendor RM = %s, want ACCEPTED", got)
	}
	if fx.Messages != cvdstate.RV|cvdstate.RA {
		t.Errorf("messages = %s, want RV|RA", fx.Messages)
	}
	// A repeat of a participant's own step (RA in A, RD in D), as two
	// sent at once are, is acknowledged (RK) and changes nothing.
	acknowledged(t, c, vocab.EngageCase, join(t, vendor), "already accepted")
	must(t, c, vocab.DeferCase, act(t, "Ignore", vendor, fmt.Sprintf(`"object":%q`, caseID)))
	acknowledged(t, c, vocab.DeferCase, act(t, "Ignore", vendor, fmt.Sprintf(`"object":%q`, caseID)), "already deferred")
	must(t, c, vocab.EngageCase, join(t, vendor))
	refused(t, c, vocab.EngageCase, join(t, coord), 403, "is not a participant")
	must(t, c, vocab.CloseCase, leave(t, vendor))
	refused(t, c, vocab.EngageCase, join(t, vendor), 409, "")
	must(t, c, vocab.CloseCase, leave(t, finder))
	if !c.Closed() {
		t.Fatal("every participant left, but the case is not closed")
	}
	refused(t, c, vocab.AddNoteToCase, act(t, "Add", finder, `"object":{"id":"https://f.example/n/1","type":"Note","content":"x"}`), 409, "is closed")
}

func TestStatusAndEmbargoTeardown(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	vp, fp := c.Participant(vendor).ID, c.Participant(finder).ID
	refused(t, c, vocab.AddParticipantStatusToParticipant, status(t, finder, fp, "VFd", ""), 409, "")
	refused(t, c, vocab.AddParticipantStatusToParticipant, status(t, finder, vp, "", "Pxa"), 403, "only its own status")
	must(t, c, vocab.AddParticipantStatusToParticipant, status(t, vendor, vp, "VFd", ""))
	if got := c.Participant(vendor).VFD; got != cvdstate.VFDFixReady {
		t.Fatalf("vendor VFD = %s, want VFd", got)
	}
	refused(t, c, vocab.AddParticipantStatusToParticipant, status(t, vendor, vp, "VFD", ""), 409, "")
	fx := must(t, c, vocab.AddParticipantStatusToParticipant, status(t, finder, fp, "", "Pxa"))
	if c.PXA != cvdstate.PXAPublic || c.EM != cvdstate.EMExited {
		t.Fatalf("after P: pxa %s em %s, want Pxa EXITED", c.PXA, c.EM)
	}
	if fx.Messages&(cvdstate.CP|cvdstate.ET) != cvdstate.CP|cvdstate.ET {
		t.Errorf("messages = %s, want CP and ET", fx.Messages)
	}
	for _, p := range c.Participants {
		if p.PEC != cvdstate.PECNoEmbargo {
			t.Errorf("%s consent = %s after the embargo ended, want NO_EMBARGO", p.Actor, p.PEC)
		}
	}
	if n := len(c.History); n < 2 || c.History[n-1].To != cvdstate.EMExited {
		t.Errorf("embargo history = %+v", c.History)
	}
	// A second report of what the case knows (CP in P: none, CK), as two
	// participants reporting at once send, is acknowledged.
	acknowledged(t, c, vocab.AddParticipantStatusToParticipant, status(t, vendor, vp, "", "Pxa"), "changes nothing")
	acknowledged(t, c, vocab.AddParticipantStatusToParticipant, status(t, finder, fp, "", "Pxa"), "changes nothing")
	// X after P, then attacks.
	must(t, c, vocab.AddParticipantStatusToParticipant, status(t, finder, fp, "", "PXA"))
	if c.PXA != cvdstate.PXAPublic|cvdstate.PXAExploit|cvdstate.PXAAttacks {
		t.Errorf("pxa = %s, want PXA", c.PXA)
	}
}

func embargoInvite(t *testing.T, actor, id, end string) *vocab.Activity {
	return act(t, "Invite", actor, fmt.Sprintf(`"id":%q,"object":{"id":"%s/embargoes/%s","type":"EmbargoEvent","startTime":"2026-11-01T12:00:00Z","endTime":%q},"context":%q`,
		id, caseID, strings.ReplaceAll(end, ":", ""), end, caseID))
}

func TestEmbargoNegotiation(t *testing.T) {
	c := newCase(t, false)
	ep := embargoInvite(t, finder, "https://f.example/a/ep1", "2027-02-01T00:00:00Z")
	fx := must(t, c, vocab.InviteToEmbargoOnCase, ep)
	if c.EM != cvdstate.EMProposed || fx.Messages != cvdstate.EP || len(c.Proposals) != 1 {
		t.Fatalf("after EP: em %s messages %s proposals %d", c.EM, fx.Messages, len(c.Proposals))
	}
	accept := func(actor, invite string) *vocab.Activity {
		return act(t, "Accept", actor, fmt.Sprintf(`"object":%q,"context":%q`, invite, caseID))
	}
	refused(t, c, vocab.AcceptInviteToEmbargoOnCase, accept(vendor, "https://f.example/a/nope"), 409, "not an open embargo proposal")
	must(t, c, vocab.AcceptInviteToEmbargoOnCase, accept(vendor, ep.ID))
	if c.EM != cvdstate.EMActive || c.Embargo == nil || c.Embargo.Sequence != 0 {
		t.Fatalf("after the owner's EA: em %s embargo %+v", c.EM, c.Embargo)
	}
	if c.Participant(finder).PEC != cvdstate.PECSignatory || c.Participant(vendor).PEC != cvdstate.PECSignatory {
		t.Errorf("proposer and owner must be signatories: %s %s", c.Participant(finder).PEC, c.Participant(vendor).PEC)
	}
	ev := embargoInvite(t, vendor, "https://v.example/a/ev1", "2027-03-01T00:00:00Z")
	fx = must(t, c, vocab.InviteToEmbargoOnCase, ev)
	if c.EM != cvdstate.EMRevise || fx.Messages != cvdstate.EV {
		t.Fatalf("after EV: em %s messages %s", c.EM, fx.Messages)
	}
	if c.Participant(finder).PEC != cvdstate.PECLapsed {
		t.Errorf("a revision lapses the signatories' consent: finder %s", c.Participant(finder).PEC)
	}
	must(t, c, vocab.AcceptInviteToEmbargoOnCase, accept(finder, ev.ID)) // a non-owner binds itself
	if c.EM != cvdstate.EMRevise || c.Participant(finder).PEC != cvdstate.PECSignatory {
		t.Errorf("non-owner accept: em %s finder %s", c.EM, c.Participant(finder).PEC)
	}
	must(t, c, vocab.AcceptInviteToEmbargoOnCase, accept(vendor, ev.ID))
	if c.EM != cvdstate.EMActive || c.Embargo.Sequence != 1 || !c.Embargo.End.Equal(time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("after EC: em %s embargo %+v", c.EM, c.Embargo)
	}
	refused(t, c, vocab.RemoveEmbargoEventFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":"%s/embargoes/x","origin":%q`, caseID, caseID)), 409, "is not the embargo in force")
	must(t, c, vocab.RemoveEmbargoEventFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"origin":%q`, c.Embargo.ID, caseID)))
	if c.EM != cvdstate.EMExited {
		t.Errorf("after ET: em %s", c.EM)
	}
	refused(t, c, vocab.InviteToEmbargoOnCase, embargoInvite(t, vendor, "https://v.example/a/ep2", "2027-04-01T00:00:00Z"), 409, "")
}

func TestParticipants(t *testing.T) {
	c := newCase(t, true)
	invite := func(by, who string, roles ...string) *vocab.Activity {
		r, _ := json.Marshal(roles)
		return act(t, "Invite", by, fmt.Sprintf(`"object":%q,"target":%q,"roles":%s`, who, caseID, r))
	}
	refused(t, c, vocab.InviteActorToCase, invite(finder, vendor2), 403, "only the case owner")
	fx := must(t, c, vocab.InviteActorToCase, invite(vendor, vendor2, "vendor", "deployer"))
	if fx.Invite == nil || fx.Invite.Actor != vendor2 || !fx.Invite.Roles.Has(cvdstate.Deployer) {
		t.Fatalf("invite effect = %+v", fx.Invite)
	}
	if c.CanRead(vendor2) {
		t.Error("an invitee reads the case before accepting")
	}
	fx = must(t, c, vocab.AcceptInviteActorToCase, act(t, "Accept", vendor2, ""))
	p := c.Participant(vendor2)
	if fx.Joined != vendor2 || p == nil || p.RM != cvdstate.RMReceived || p.PEC != cvdstate.PECSignatory || p.VFD != cvdstate.VFDAware {
		t.Fatalf("after accepting: effects %+v participant %+v", fx, p)
	}
	if p.Contact.Actor != vendor2 || p.Contact.Organization != "v2.example" {
		t.Errorf("contact = %+v, want the actor and its organization's host", p.Contact)
	}
	refused(t, c, vocab.AcceptInviteActorToCase, act(t, "Accept", coord, ""), 403, "no open invitation")

	suggest := act(t, "Offer", finder, fmt.Sprintf(`"object":%q,"target":%q,"roles":["coordinator"]`, coord, caseID))
	must(t, c, vocab.OfferActorToCase, suggest)
	refused(t, c, vocab.AcceptActorRecommendation, act(t, "Accept", finder, fmt.Sprintf(`"object":%q`, suggest.ID)), 403, "only the case owner")
	fx = must(t, c, vocab.AcceptActorRecommendation, act(t, "Accept", vendor, fmt.Sprintf(`"object":%q`, suggest.ID)))
	if fx.Invite == nil || fx.Invite.Actor != coord || !fx.Invite.Roles.Has(cvdstate.Coordinator) {
		t.Errorf("accepting a suggestion must invite: %+v", fx.Invite)
	}
	must(t, c, vocab.RejectInviteActorToCase, act(t, "Reject", coord, ""))
	if c.Participant(coord) != nil || len(c.Invites) != 0 {
		t.Error("a rejected invitation left a participant or an open invitation")
	}

	offer := act(t, "Offer", vendor, fmt.Sprintf(`"object":%q,"target":%q`, caseID, vendor2))
	refused(t, c, vocab.OfferCaseOwnershipTransfer, act(t, "Offer", vendor, fmt.Sprintf(`"object":%q,"target":%q`, caseID, coord)), 409, "engaged participant")
	must(t, c, vocab.OfferCaseOwnershipTransfer, offer)
	refused(t, c, vocab.AcceptCaseOwnershipTransfer, act(t, "Accept", finder, fmt.Sprintf(`"object":%q`, offer.ID)), 403, "addressed to")
	must(t, c, vocab.AcceptCaseOwnershipTransfer, act(t, "Accept", vendor2, fmt.Sprintf(`"object":%q`, offer.ID)))
	if c.Owner != vendor2 || c.Participant(vendor).Roles.Has(cvdstate.CaseOwner) || !c.Participant(vendor2).Roles.Has(cvdstate.CaseOwner) {
		t.Errorf("after the transfer: owner %s, roles %s / %s", c.Owner, c.Participant(vendor).Roles, c.Participant(vendor2).Roles)
	}
	refused(t, c, vocab.RemoveCaseParticipantFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q`, finder, caseID)), 403, "only the case owner")
	must(t, c, vocab.RemoveCaseParticipantFromCase, act(t, "Remove", vendor2, fmt.Sprintf(`"object":%q,"target":%q`, finder, caseID)))
	if c.CanRead(finder) || containsString(c.Recipients(), finder) {
		t.Error("a removed participant still reads the case or receives its entries")
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestApplyIsDeterministic folds the same activities into two fresh cases
// and checks they agree: the Case Actor and every replica must.
func TestApplyIsDeterministic(t *testing.T) {
	build := func() *Case {
		c := newCase(t, true)
		return c
	}
	a, b := build(), build()
	steps := []struct {
		sem vocab.Semantic
		a   *vocab.Activity
	}{
		{vocab.EngageCase, join(t, vendor)},
		{vocab.AddNoteToCase, act(t, "Add", finder, fmt.Sprintf(`"object":{"id":"https://f.example/n/1","type":"Note","content":"hello"},"target":%q`, caseID))},
		{vocab.AddParticipantStatusToParticipant, status(t, vendor, a.Participant(vendor).ID, "VFd", "")},
		{vocab.AddParticipantStatusToParticipant, status(t, finder, a.Participant(finder).ID, "", "Pxa")},
		{vocab.CloseCase, leave(t, vendor)},
	}
	for _, s := range steps {
		must(t, a, s.sem, s.a)
		must(t, b, s.sem, s.a)
	}
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		t.Fatalf("two folds of the same activities differ:\n%s\n%s", ja, jb)
	}
}

// TestParticipantIndex checks Participant's index against a scan, through
// joins, a clone that diverges and a case decoded from its record.
func TestParticipantIndex(t *testing.T) {
	c := &Case{}
	add := func(c *Case, actor string) {
		if c.Participant(actor) != nil {
			t.Fatalf("%s is a participant before joining", actor)
		}
		c.addParticipant(&Participant{Actor: actor})
	}
	for i := range 50 {
		add(c, fmt.Sprintf("https://n.example/actors/a%d", i))
	}
	cl := c.clone()
	add(cl, "https://n.example/actors/only-in-clone")
	add(c, "https://n.example/actors/only-in-original")
	check := func(name string, c *Case) {
		t.Helper()
		for i, p := range c.Participants {
			if got := c.Participant(p.Actor); got != c.Participants[i] {
				t.Errorf("%s: Participant(%s) = %p, want participant %d", name, p.Actor, got, i)
			}
		}
	}
	check("original", c)
	check("clone", cl)
	if c.Participant("https://n.example/actors/only-in-clone") != nil || cl.Participant("https://n.example/actors/only-in-original") != nil {
		t.Error("a participant added to one copy is found in the other")
	}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var decoded Case
	if err := json.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	check("decoded", &decoded)
}

// TestInvitationsAreIndependent invites one actor twice: declining one
// invitation leaves the other open, and accepting that one works.
func TestInvitationsAreIndependent(t *testing.T) {
	c := newCase(t, false)
	invite := func(id string, roles ...string) *vocab.Activity {
		r, _ := json.Marshal(roles)
		return act(t, "Invite", vendor, fmt.Sprintf(`"id":%q,"object":%q,"target":%q,"roles":%s`, id, vendor2, caseID, r))
	}
	first := must(t, c, vocab.InviteActorToCase, invite("https://v.example/a/inv-1", "vendor")).Invite
	second := must(t, c, vocab.InviteActorToCase, invite("https://v.example/a/inv-2", "deployer")).Invite
	if first == nil || second == nil || first.Sent == "" || first.Sent == second.Sent {
		t.Fatalf("invitations sent as %+v and %+v; want two of their own", first, second)
	}
	if len(c.Invites) != 2 {
		t.Fatalf("open invitations = %+v, want both", c.Invites)
	}
	answer := func(typ, invitation string) *vocab.Activity {
		return act(t, typ, vendor2, fmt.Sprintf(`"object":%q`, invitation))
	}
	refused(t, c, vocab.AcceptInviteActorToCase, act(t, "Accept", vendor2, ""), 409, "names none")
	must(t, c, vocab.RejectInviteActorToCase, answer("Reject", first.Sent))
	if len(c.Invites) != 1 || c.Invites[0].Sent != second.Sent {
		t.Fatalf("after declining the first: open invitations = %+v, want the second", c.Invites)
	}
	refused(t, c, vocab.AcceptInviteActorToCase, answer("Accept", first.Sent), 409, "names none")
	fx := must(t, c, vocab.AcceptInviteActorToCase, answer("Accept", second.Sent))
	if p := c.Participant(vendor2); fx.Joined != vendor2 || p == nil || !p.Roles.Has(cvdstate.Deployer) {
		t.Fatalf("after accepting the second: effects %+v, participant %+v", fx, p)
	}
	if len(c.Invites) != 0 {
		t.Errorf("open invitations after joining = %+v, want none", c.Invites)
	}
}

// TestEarlyTermination checks ET as the EM tables allow it: any
// participant that has not closed the report ends the embargo in force
// (ACTIVE or REVISE), with its reason recorded in the embargo's history;
// a participant that closed cannot, nor can one that was removed; and a
// termination that arrives after the embargo ended changes nothing and is
// recorded, as the receiver tables acknowledge it (EK).
func TestEarlyTermination(t *testing.T) {
	terminate := func(t *testing.T, c *Case, actor, reason string) *vocab.Activity {
		return act(t, "Remove", actor, fmt.Sprintf(`"object":%q,"origin":%q,"context":%q,"summary":%q`, c.Embargo.ID, caseID, caseID, reason))
	}
	tests := []struct {
		name   string
		by     string
		revise bool // a revision is pending (REVISE)
		reason string
		want   string // the reason the history records
	}{
		{"the owner", vendor, false, "the fix shipped early", "the fix shipped early"},
		{"the finder", finder, false, "the advisory leaked on a mailing list", "the advisory leaked on a mailing list"},
		{"the finder during a revision", finder, true, "exploit seen in the wild", "exploit seen in the wild"},
		{"the owner without a reason", vendor, false, "", "terminated early by the owner"},
		{"a participant without a reason", finder, false, "", "terminated early by " + finder},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(t, true)
			if tt.revise {
				must(t, c, vocab.InviteToEmbargoOnCase, embargoInvite(t, vendor, "https://v.example/a/ev-"+tt.name, "2027-03-01T00:00:00Z"))
			}
			fx := must(t, c, vocab.RemoveEmbargoEventFromCase, terminate(t, c, tt.by, tt.reason))
			if c.EM != cvdstate.EMExited || fx.Messages != cvdstate.ET {
				t.Fatalf("after ET by %s: em %s messages %s", tt.by, c.EM, fx.Messages)
			}
			last := c.History[len(c.History)-1]
			if last.By != tt.by || last.Message != "ET" || last.Reason != tt.want || last.To != cvdstate.EMExited {
				t.Errorf("history records %+v; want ET by %s because %q", last, tt.by, tt.want)
			}
			for _, p := range c.Participants {
				if p.PEC != cvdstate.PECNoEmbargo {
					t.Errorf("%s's consent after the embargo ended: %s, want NO_EMBARGO", p.Actor, p.PEC)
				}
			}
			// A second termination, as two participants ending the embargo
			// at once send, changes nothing and is recorded.
			// A sender may not send it (ET only from ACTIVE or REVISE).
			before := c.EM
			fx = must(t, c, vocab.RemoveEmbargoEventFromCase, terminate(t, c, vendor, "ending it too"))
			if c.EM != before || c.History[len(c.History)-1].Reason != "ending it too" {
				t.Errorf("a late ET: em %s, history %+v", c.EM, c.History[len(c.History)-1])
			}
			if fx.Unsendable == nil || problem.Status(fx.Unsendable) != 409 || !strings.Contains(problem.Message(fx.Unsendable), "already ended") {
				t.Errorf("a late ET may be sent: %v; want a 409 saying the embargo already ended", fx.Unsendable)
			}
		})
	}
	t.Run("a participant that closed", func(t *testing.T) {
		c := newCase(t, true)
		must(t, c, vocab.EngageCase, join(t, vendor))
		must(t, c, vocab.CloseCase, leave(t, finder))
		refused(t, c, vocab.RemoveEmbargoEventFromCase, terminate(t, c, finder, "done"), 409, "closed the report")
	})
	t.Run("a removed participant", func(t *testing.T) {
		c := newCase(t, true)
		must(t, c, vocab.RemoveCaseParticipantFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"target":%q`, finder, caseID)))
		refused(t, c, vocab.RemoveEmbargoEventFromCase, terminate(t, c, finder, "spite"), 403, "is not a participant")
	})
	t.Run("no embargo", func(t *testing.T) {
		c := newCase(t, false)
		refused(t, c, vocab.RemoveEmbargoEventFromCase, act(t, "Remove", finder, fmt.Sprintf(`"object":"%s/embargoes/1","origin":%q`, caseID, caseID)), 409, "no embargo in force")
	})
}

// TestTimelineShowsTheReason checks that the timeline describes an early
// termination with the reason its sender gave, whoever sent it.
func TestTimelineShowsTheReason(t *testing.T) {
	for _, by := range []string{vendor, finder} {
		payload := fmt.Sprintf(`{"id":"https://x.example/a/et","type":"Remove","actor":%q,"object":"%s/embargoes/1","origin":%q,"summary":"the advisory leaked"}`, by, caseID, caseID)
		e, err := ledger.NewEntry(caseID, 7, strings.Repeat("0", 64), "https://x.example/a/et", EventType(vocab.RemoveEmbargoEventFromCase), []byte(payload), t0)
		if err != nil {
			t.Fatal(err)
		}
		got := describeEntry(e)
		if got.Actor != by || got.Summary != "terminated the embargo (ET)" || got.Detail != "the advisory leaked" {
			t.Errorf("the timeline shows %+v for an ET by %s", got, by)
		}
	}
}

// TestDeployers checks a deployer that is no vendor: it joins at d (it
// has no vendor awareness of its own), reports its deployment (CD, the
// status vfdState VFD) once it engaged, which ends the embargo as D does,
// and cannot ready a fix; a vendor that also deploys keeps the vendor's
// path (V, F, D).
func TestDeployers(t *testing.T) {
	const deployer = "https://d.example/actors/ops"
	c := newCase(t, true)
	must(t, c, vocab.InviteActorToCase, act(t, "Invite", vendor, fmt.Sprintf(`"object":%q,"target":%q,"roles":["deployer"]`, deployer, caseID)))
	must(t, c, vocab.AcceptInviteActorToCase, act(t, "Accept", deployer, ""))
	p := c.Participant(deployer)
	if p.VFD != cvdstate.VFDNone || cvdstate.FixPath(p.Roles, p.VFD) != "d" {
		t.Fatalf("a deployer joins at %s (%q), want d", p.VFD, cvdstate.FixPath(p.Roles, p.VFD))
	}
	part := ParticipantID(caseID, deployer)
	refused(t, c, vocab.AddParticipantStatusToParticipant, status(t, deployer, part, "VFD", ""), 409,
		deployer+" cannot do that now: CS transition D is not allowed from dpxa: the deployer's report is RECEIVED; it must be accepted or deferred before it deploys")
	must(t, c, vocab.EngageCase, join(t, deployer))
	refused(t, c, vocab.AddParticipantStatusToParticipant, status(t, deployer, part, "VFd", ""), 409, "changes nothing")
	if got := c.received(EventType(vocab.AddParticipantStatusToParticipant), status(t, deployer, part, "VFD", "")); got != cvdstate.CD {
		t.Errorf("a deployer's status carries %s, want CD", got)
	}
	fx := must(t, c, vocab.AddParticipantStatusToParticipant, status(t, deployer, part, "VFD", ""))
	if p = c.Participant(deployer); p.VFD != cvdstate.VFDDeployed || cvdstate.FixPath(p.Roles, p.VFD) != "D" || fx.Messages != cvdstate.CD|cvdstate.ET || c.EM != cvdstate.EMExited {
		t.Errorf("after the deployer's CD: %s (%q), messages %s, em %s; want D, CD|ET, EXITED", p.VFD, cvdstate.FixPath(p.Roles, p.VFD), fx.Messages, c.EM)
	}
	if v := c.Participant(vendor); v.VFD != cvdstate.VFDAware {
		t.Errorf("the deployer's deployment moved the vendor to %s", v.VFD)
	}
	acknowledged(t, c, vocab.AddParticipantStatusToParticipant, status(t, deployer, part, "VFD", ""), "changes nothing")
}

// TestDesiderataWithADeployer checks the case-state history a case with a
// deployer that is no vendor records: its deployment is D, after the V and
// F it implies, so the desiderata are assessed on a valid history.
func TestDesiderataWithADeployer(t *testing.T) {
	const deployer = "https://d.example/actors/ops"
	db := openStore(t)
	c := newCase(t, true)
	prev := ledger.GenesisHash(caseID, t0, caseActor)
	var entries []ledger.Entry
	record := func(sem vocab.Semantic, a *vocab.Activity) {
		t.Helper()
		must(t, c, sem, a)
		payload, err := vocab.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		e, err := ledger.NewEntry(caseID, int64(len(entries)), prev, a.ID, EventType(sem), payload, t0)
		if err != nil {
			t.Fatal(err)
		}
		entries, prev = append(entries, e), e.EntryHash
	}
	record(vocab.InviteActorToCase, act(t, "Invite", vendor, fmt.Sprintf(`"object":%q,"target":%q,"roles":["deployer"]`, deployer, caseID)))
	record(vocab.AcceptInviteActorToCase, act(t, "Accept", deployer, ""))
	record(vocab.EngageCase, join(t, deployer))
	record(vocab.AddParticipantStatusToParticipant, status(t, deployer, ParticipantID(caseID, deployer), "VFD", ""))
	record(vocab.AddParticipantStatusToParticipant, status(t, finder, caseID+"/participants/f", "", "Pxa"))
	update(t, db, func(tx *store.Tx) error {
		for _, e := range entries {
			if err := appendEntry(tx, e); err != nil {
				return err
			}
		}
		return saveCase(tx, c)
	})
	var h cvdstate.History
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		h, err = CSHistory(tx, c)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != "VFDP" {
		t.Fatalf("history %s, want VFDP (the deployment implies the vendor's awareness and fix)", h)
	}
	a, err := cvdstate.Assess(h)
	if err != nil {
		t.Fatalf("Assess(%s): %v", h, err)
	}
	if a.Met == 0 {
		t.Errorf("a deployment before publication meets no desideratum: %+v", a)
	}
}

// TestSuggestionsTheReferenceWay checks the suggestion flow of the
// reference: a participant suggests an actor (Offer(Actor)); the Case
// Actor offers the owner a CaseParticipant for it (an Offer whose id every
// replica derives alike); the owner accepts that Offer, which invites the
// actor and answers the suggester, or rejects it. The owner's answer to
// the suggestion itself, the form of nodes before this one, still works.
func TestSuggestionsTheReferenceWay(t *testing.T) {
	suggest := func(t *testing.T, c *Case, by, who string) (*vocab.Activity, Effects) {
		a := act(t, "Offer", by, fmt.Sprintf(`"object":%q,"target":%q,"roles":["coordinator"]`, who, caseID))
		return a, must(t, c, vocab.OfferActorToCase, a)
	}
	answer := func(t *testing.T, typ, by, offered string) *vocab.Activity {
		return act(t, typ, by, fmt.Sprintf(`"object":%q,"context":%q`, offered, caseID))
	}
	t.Run("accepted", func(t *testing.T) {
		c := newCase(t, true)
		s, fx := suggest(t, c, finder, coord)
		if fx.OfferParticipant == nil || fx.OfferParticipant.ID != s.ID || fx.OfferParticipant.Offered == "" || fx.OfferParticipant.Actor != coord {
			t.Fatalf("the suggestion's effects %+v: want the Case Actor to offer the owner a participant for it", fx.OfferParticipant)
		}
		offered := fx.OfferParticipant.Offered
		if other := newCase(t, true); mustOffered(t, other, s) != offered {
			t.Errorf("two replicas derive different ids for the Case Actor's offer")
		}
		refused(t, c, vocab.AcceptOfferCaseParticipant, answer(t, "Accept", finder, offered), 403, "only the case owner")
		refused(t, c, vocab.AcceptOfferCaseParticipant, answer(t, "Accept", vendor, "https://v.example/activities/nope"), 409, "not an open suggestion")
		fx = must(t, c, vocab.AcceptOfferCaseParticipant, answer(t, "Accept", vendor, offered))
		if fx.Invite == nil || fx.Invite.Actor != coord || !fx.Invite.Roles.Has(cvdstate.Coordinator) {
			t.Errorf("accepting the offer must invite the suggested actor: %+v", fx.Invite)
		}
		if fx.Decided == nil || fx.Decided.ID != s.ID || !fx.Accepted || fx.Decided.By != finder {
			t.Errorf("accepting the offer must answer the suggester: %+v accepted %v", fx.Decided, fx.Accepted)
		}
		if len(c.Suggestions) != 0 {
			t.Errorf("the suggestion is still open: %+v", c.Suggestions)
		}
	})
	t.Run("rejected", func(t *testing.T) {
		c := newCase(t, true)
		s, fx := suggest(t, c, finder, coord)
		fx = must(t, c, vocab.RejectOfferCaseParticipant, answer(t, "Reject", vendor, fx.OfferParticipant.Offered))
		if fx.Invite != nil || fx.Decided == nil || fx.Decided.ID != s.ID || fx.Accepted || len(c.Suggestions) != 0 {
			t.Errorf("rejecting the offer: invite %+v, decided %+v accepted %v, open %d", fx.Invite, fx.Decided, fx.Accepted, len(c.Suggestions))
		}
	})
	t.Run("the former shape", func(t *testing.T) {
		c := newCase(t, true)
		s, _ := suggest(t, c, finder, coord)
		fx := must(t, c, vocab.AcceptActorRecommendation, answer(t, "Accept", vendor, s.ID))
		if fx.Invite == nil || fx.Invite.Actor != coord {
			t.Errorf("the owner's Accept of the suggestion itself must still invite: %+v", fx.Invite)
		}
	})
	t.Run("a second suggestion of the same actor", func(t *testing.T) {
		c := newCase(t, true)
		suggest(t, c, finder, coord)
		refused(t, c, vocab.OfferActorToCase, act(t, "Offer", vendor, fmt.Sprintf(`"object":%q,"target":%q`, coord, caseID)), 409, "already suggested")
	})
}

// mustOffered records suggestion s in c and returns the id of the Case
// Actor's offer for it.
func mustOffered(t *testing.T, c *Case, s *vocab.Activity) string {
	t.Helper()
	fx := must(t, c, vocab.OfferActorToCase, s)
	if fx.OfferParticipant == nil {
		t.Fatal("no offer of a participant")
	}
	return fx.OfferParticipant.Offered
}

// TestSeveralReportsAndLinkedCases checks the case side of duplicate
// reports and related cases: the owner adds a second report to the case
// (once; others may not), and relates the case to others as parent, child
// or sibling with an Update of the case that carries the relations; only
// the owner does, never to the case itself, and a relation is recorded
// once.
func TestSeveralReportsAndLinkedCases(t *testing.T) {
	c := newCase(t, true)
	const second = "https://f2.example/reports/2"
	add := func(by string) *vocab.Activity {
		return act(t, "Add", by, fmt.Sprintf(`"object":{"id":%q,"type":"VulnerabilityReport","name":"the same bug"},"target":%q,"context":%q`, second, caseID, caseID))
	}
	refused(t, c, vocab.AddReportToCase, add(finder), 403, "only the case owner")
	must(t, c, vocab.AddReportToCase, add(vendor))
	if !slices.Equal(c.Reports, []string{"https://f.example/reports/1", second}) {
		t.Errorf("reports %v, want both", c.Reports)
	}
	refused(t, c, vocab.AddReportToCase, add(vendor), 409, "already in case")

	link := func(by, rel, other string) *vocab.Activity {
		return act(t, "Update", by, fmt.Sprintf(`"object":{"id":%q,"type":"VulnerabilityCase",%q:[%q]},"context":%q`, caseID, rel, other, caseID))
	}
	const parent, sibling = "https://c.example/cases/umbrella", "https://v2.example/cases/v2-7"
	refused(t, c, vocab.UpdateCase, link(finder, "parentCases", parent), 403, "only the case owner")
	refused(t, c, vocab.UpdateCase, link(vendor, "siblingCases", caseID), 422, "cannot be related to itself")
	refused(t, c, vocab.UpdateCase, act(t, "Update", vendor, fmt.Sprintf(`"object":{"id":%q,"type":"VulnerabilityCase","name":"renamed"},"context":%q`, caseID, caseID)), 422, "relates it to no other case")
	must(t, c, vocab.UpdateCase, link(vendor, "parentCases", parent))
	must(t, c, vocab.UpdateCase, link(vendor, "siblingCases", sibling))
	want := []CaseLink{{Relation: RelParent, Case: parent}, {Relation: RelSibling, Case: sibling}}
	if !slices.Equal(c.Links, want) {
		t.Errorf("links %+v, want %+v", c.Links, want)
	}
	refused(t, c, vocab.UpdateCase, link(vendor, "parentCases", parent), 409, "already")
	vc := c.Object(nil)
	if !slices.Equal(vc.ParentCases, []string{parent}) || !slices.Equal(vc.SiblingCases, []string{sibling}) || len(vc.ChildCases) != 0 {
		t.Errorf("the case object relates %v / %v / %v", vc.ParentCases, vc.ChildCases, vc.SiblingCases)
	}
}

// TestDeclaredEngagementAndAdherence checks a participant's declarations
// in its status: leaving active work while keeping the embargo
// (caseEngagement false), which stops the Case Actor from sending it every
// entry but not those it needs (a change of the embargo or the world
// state, and its own), and declaring it will not honour the embargo
// (embargoAdherence false), which ends its consent and tears the embargo
// down, with its reason in the embargo's history.
func TestDeclaredEngagementAndAdherence(t *testing.T) {
	declare := func(t *testing.T, actor, participant, members, reason string) *vocab.Activity {
		return act(t, "Add", actor, fmt.Sprintf(`"object":{"type":"ParticipantStatus","context":%q,%s},"target":%q,"context":%q,"summary":%q`,
			participant, members, participant, caseID, reason))
	}
	finderPart := caseID + "/participants/f"
	c := newCase(t, true)
	refused(t, c, vocab.AddParticipantStatusToParticipant, declare(t, finder, finderPart, `"caseEngagement":true,"embargoAdherence":true`, ""), 409, "changes nothing")
	before := c.clone()
	must(t, c, vocab.AddParticipantStatusToParticipant, declare(t, finder, finderPart, `"caseEngagement":false,"embargoAdherence":true`, "we have done our part"))
	p := c.Participant(finder)
	if !p.Disengaged || p.CaseEngagement() || p.PEC != cvdstate.PECSignatory || c.EM != cvdstate.EMActive {
		t.Fatalf("after leaving active work: disengaged %v, consent %s, em %s; want disengaged, still a signatory, embargo in force", p.Disengaged, p.PEC, c.EM)
	}
	if to := c.AnnounceTo(before, finder); !slices.Contains(to, finder) {
		t.Errorf("the entry of the finder's own declaration goes to %v", to)
	}
	// A note is not sent to a participant out of active work; the end of
	// the embargo is.
	noted := c.clone()
	must(t, noted, vocab.AddNoteToCase, act(t, "Add", vendor, fmt.Sprintf(`"object":{"id":"https://v.example/notes/1","type":"Note","content":"x"},"target":%q`, caseID)))
	if to := noted.AnnounceTo(c, vendor); slices.Contains(to, finder) || !slices.Contains(to, vendor) {
		t.Errorf("a note goes to %v; want the engaged participants, not the finder", to)
	}
	ended := c.clone()
	must(t, ended, vocab.RemoveEmbargoEventFromCase, act(t, "Remove", vendor, fmt.Sprintf(`"object":%q,"origin":%q`, c.Embargo.ID, caseID)))
	if to := ended.AnnounceTo(c, vendor); !slices.Contains(to, finder) {
		t.Errorf("the end of the embargo goes to %v; a participant out of active work needs it", to)
	}
	// Back to active work: every entry again.
	back := c.clone()
	must(t, back, vocab.AddParticipantStatusToParticipant, declare(t, finder, finderPart, `"caseEngagement":true`, ""))
	if !back.Participant(finder).CaseEngagement() {
		t.Error("the finder could not return to active work")
	}

	// The finder will not honour the embargo: it is torn down.
	fx := must(t, c, vocab.AddParticipantStatusToParticipant, declare(t, finder, finderPart, `"embargoAdherence":false`, "we publish at our conference"))
	p = c.Participant(finder)
	// Entering EXITED resets everyone's consent, the finder's too.
	if p.PEC != cvdstate.PECNoEmbargo || p.EmbargoAdherence() || c.EM != cvdstate.EMExited || fx.Messages&cvdstate.ET == 0 {
		t.Fatalf("after declaring non-adherence: consent %s, em %s, messages %s; want NO_EMBARGO, EXITED, ET", p.PEC, c.EM, fx.Messages)
	}
	last := c.History[len(c.History)-1]
	if last.By != finder || last.Message != "ET" || !strings.Contains(last.Reason, "will not honour") || !strings.Contains(last.Reason, "we publish at our conference") {
		t.Errorf("history records %+v", last)
	}
	if v := c.Participant(vendor); v.PEC != cvdstate.PECNoEmbargo {
		t.Errorf("the vendor's consent after the teardown: %s", v.PEC)
	}
	refused(t, c, vocab.AddParticipantStatusToParticipant, declare(t, finder, finderPart, `"embargoAdherence":false`, ""), 409, "ended")
}

// TestClosedParticipantsGetWhatTheyNeed checks that a participant that
// closed the case is not sent every entry, only those it still needs.
func TestClosedParticipantsGetWhatTheyNeed(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.CloseCase, leave(t, finder))
	before := c.clone()
	must(t, c, vocab.AddNoteToCase, act(t, "Add", vendor, fmt.Sprintf(`"object":{"id":"https://v.example/notes/2","type":"Note","content":"x"},"target":%q`, caseID)))
	if to := c.AnnounceTo(before, vendor); slices.Contains(to, finder) {
		t.Errorf("a note goes to the closed finder: %v", to)
	}
	before = c.clone()
	must(t, c, vocab.AddParticipantStatusToParticipant, status(t, vendor, caseID+"/participants/v", "", "Pxa"))
	if to := c.AnnounceTo(before, vendor); !slices.Contains(to, finder) {
		t.Errorf("publication goes to %v; the closed finder needs it", to)
	}
}

// TestRemovalIsAnnouncedToTheRemoved checks that the entry that removes a
// participant goes to that participant too, so that its node learns it is
// out of the case and stops following it, and that later entries do not.
func TestRemovalIsAnnouncedToTheRemoved(t *testing.T) {
	c := newCase(t, true)
	removed := c.clone()
	removed.Participant(finder).Removed = true
	if to := removed.AnnounceTo(c, vendor); !slices.Contains(to, finder) {
		t.Errorf("the finder's removal goes to %v; want the finder among them", to)
	}
	later := removed.clone()
	later.Name = "renamed"
	if to := later.AnnounceTo(removed, vendor); slices.Contains(to, finder) {
		t.Errorf("an entry after the finder's removal goes to %v; want not the finder", to)
	}
}

// applyEvent applies an activity recorded under eventType and fails the
// test if it is refused.
func applyEvent(t *testing.T, c *Case, eventType string, a *vocab.Activity) Effects {
	t.Helper()
	fx, err := c.Apply(eventType, a, t0.Add(2*time.Hour))
	if err != nil {
		t.Fatalf("%s by %s: %v", eventType, a.Actor.ID(), err)
	}
	return fx
}

// TestOwnerLeaveClosesTheCase checks the case's closing when its owner
// leaves (spec §1.5, CM-23-002/003): the owner's Leave asks the Case Actor
// to close the case, which only it may, once; the closed case then takes
// nothing but a remaining participant's own Leave, and says why.
func TestOwnerLeaveClosesTheCase(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	closing := vocab.CaseClosing(caseActor, caseID, c.Name, vendor, t0)
	if got := vocab.Classify(closing, nil).Semantic; got != vocab.CloseCase {
		t.Errorf("the Case Actor's closing classifies as %s, want %s", got, vocab.CloseCase)
	}
	for _, tc := range []struct {
		name   string
		a      *vocab.Activity
		status int
		want   string
	}{
		{"before the owner left", closing, 409, "has not left"},
	} {
		if _, err := c.clone().Apply(EventCaseFullyClosed, tc.a, t0); problem.Status(err) != tc.status || !strings.Contains(problem.Message(err), tc.want) {
			t.Errorf("%s: %v, want %d saying %q", tc.name, err, tc.status, tc.want)
		}
	}
	// A non-owner's Leave closes only that participant.
	if fx := must(t, c, vocab.CloseCase, leave(t, finder)); fx.CloseCase {
		t.Error("the finder's Leave asks the Case Actor to close the case")
	}
	if fx := must(t, c, vocab.CloseCase, leave(t, vendor)); !fx.CloseCase {
		t.Error("the owner's Leave does not ask the Case Actor to close the case")
	}
	for _, tc := range []struct {
		name   string
		a      *vocab.Activity
		status int
		want   string
	}{
		{"by the owner", act(t, "Leave", vendor, fmt.Sprintf(`"object":%q,"context":%q`, caseID, caseID)), 403, "only its Case Actor"},
		{"of another case", vocab.CaseClosing(caseActor, caseID+"x", c.Name, vendor, t0), 422, "closes case"},
	} {
		if _, err := c.clone().Apply(EventCaseFullyClosed, tc.a, t0); problem.Status(err) != tc.status || !strings.Contains(problem.Message(err), tc.want) {
			t.Errorf("%s: %v, want %d saying %q", tc.name, err, tc.status, tc.want)
		}
	}
	before := c.clone()
	applyEvent(t, c, EventCaseFullyClosed, closing)
	if c.Closure == nil || c.Closure.Owner != vendor || !c.Closure.At.Equal(t0.Add(2*time.Hour)) || !c.Closed() {
		t.Fatalf("closure = %+v, closed %v; want the owner and the entry's time", c.Closure, c.Closed())
	}
	// Everyone learns the case is closed, the participants that closed
	// their report included.
	if to := c.AnnounceTo(before, caseActor); !slices.Contains(to, vendor) || !slices.Contains(to, finder) {
		t.Errorf("the closing is announced to %v, want the owner and the finder", to)
	}
	if _, err := c.clone().Apply(EventCaseFullyClosed, closing, t0); problem.Status(err) != 409 {
		t.Errorf("a second closing: %v, want 409", err)
	}
	const sentence = "is closed because its owner"
	refused(t, c, vocab.AddNoteToCase, act(t, "Add", finder, fmt.Sprintf(`"object":{"id":"https://f.example/n/9","type":"Note","content":"x"},"target":%q`, caseID)), 409, sentence)
	refused(t, c, vocab.CloseCase, leave(t, vendor), 409, sentence)
	refused(t, c, vocab.CloseCase, leave(t, finder), 409, sentence)
}

// TestRemainingParticipantLeavesClosedCase checks that, once the owner
// left and the Case Actor closed the case, a participant still working on
// it can close its own report (spec §9.4, invariant 7) and nothing else.
func TestRemainingParticipantLeavesClosedCase(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	must(t, c, vocab.CloseCase, leave(t, vendor))
	applyEvent(t, c, EventCaseFullyClosed, vocab.CaseClosing(caseActor, caseID, c.Name, vendor, t0))
	const sentence = "is closed because its owner"
	for _, tc := range []struct {
		sem vocab.Semantic
		a   *vocab.Activity
	}{
		{vocab.AddNoteToCase, act(t, "Add", finder, fmt.Sprintf(`"object":{"id":"https://f.example/n/1","type":"Note","content":"x"},"target":%q`, caseID))},
		{vocab.DeferCase, act(t, "Ignore", finder, fmt.Sprintf(`"object":%q`, caseID))},
		{vocab.InviteActorToCase, act(t, "Invite", vendor, fmt.Sprintf(`"object":%q,"target":%q`, coord, caseID))},
		{vocab.AddParticipantStatusToParticipant, status(t, finder, c.Participant(finder).ID, "", "Pxa")},
	} {
		refused(t, c, tc.sem, tc.a, 409, sentence)
		if err := c.TrySend(EventType(tc.sem), tc.a, t0); !strings.Contains(problem.Message(err), sentence) {
			t.Errorf("TrySend %s: %v, want %q", tc.sem, err, sentence)
		}
	}
	if err := c.TrySend(EventType(vocab.CloseCase), leave(t, finder), t0); err != nil {
		t.Fatalf("the finder may not leave the closed case: %v", err)
	}
	before := c.clone()
	must(t, c, vocab.CloseCase, leave(t, finder))
	for _, p := range c.Participants {
		if p.RM != cvdstate.RMClosed {
			t.Errorf("%s ends %s, want CLOSED", p.Actor, p.RM)
		}
	}
	// The last participant's Leave is announced to everyone, the owner
	// that left before it included: every copy ends with every
	// participant CLOSED.
	if to := c.AnnounceTo(before, finder); !slices.Contains(to, vendor) {
		t.Errorf("the last Leave is announced to %v, want the owner %s too", to, vendor)
	}
}

// embargoInviteBy is an embargo proposal published at published, with an
// activity-level endTime (its RSVP deadline) when rsvp is not empty.
func embargoInviteBy(t *testing.T, actor, id, end, published, rsvp string) *vocab.Activity {
	t.Helper()
	extra := fmt.Sprintf(`,"published":%q`, published)
	if rsvp != "" {
		extra += fmt.Sprintf(`,"endTime":%q`, rsvp)
	}
	return act(t, "Invite", actor, fmt.Sprintf(`"id":%q,"object":{"id":"%s/embargoes/%s","type":"EmbargoEvent","startTime":"2026-11-01T12:00:00Z","endTime":%q},"context":%q%s`,
		id, caseID, strings.ReplaceAll(end, ":", ""), end, caseID, extra))
}

// TestProposalInvitesWithRSVPDeadline: an embargo proposal invites the
// participants that are not bound, with the Invite's endTime as their RSVP
// deadline (7 days after its publication when it has none, at least 72
// hours after it); past the deadline an invitee that did not answer
// counts as DECLINED, and the Case Actor refuses its Accept.
func TestProposalInvitesWithRSVPDeadline(t *testing.T) {
	published := "2026-11-01T13:00:00Z"
	pub := time.Date(2026, 11, 1, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		name, rsvp string
		want       time.Time
	}{
		{"no endTime: 7 days", "", pub.Add(7 * 24 * time.Hour)},
		{"the Invite's endTime", "2026-11-11T13:00:00+02:00", time.Date(2026, 11, 11, 11, 0, 0, 0, time.UTC)},
		{"too short: clamped up to 72 hours", "2026-11-01T14:00:00Z", pub.Add(72 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(t, false)
			ep := embargoInviteBy(t, finder, "https://f.example/a/ep1", "2027-02-01T00:00:00Z", published, tt.rsvp)
			must(t, c, vocab.InviteToEmbargoOnCase, ep)
			v, f := c.Participant(vendor), c.Participant(finder)
			if v.PEC != cvdstate.PECInvited || f.PEC != cvdstate.PECNoEmbargo {
				t.Fatalf("after EP: vendor %s, finder (the proposer) %s; want INVITED, NO_EMBARGO", v.PEC, f.PEC)
			}
			if got := c.RSVPDeadline(v); !got.Equal(tt.want) {
				t.Fatalf("vendor's RSVP deadline = %s, want %s", got, tt.want)
			}
			if got := c.RSVPDeadline(f); !got.IsZero() {
				t.Errorf("the proposer has an RSVP deadline %s for its own proposal", got)
			}
			before, after := tt.want.Add(-time.Minute), tt.want.Add(time.Minute)
			if got := c.ConsentAt(v, before); got != cvdstate.PECInvited {
				t.Errorf("consent before the deadline = %s, want INVITED", got)
			}
			if got := c.ConsentAt(v, after); got != cvdstate.PECDeclined {
				t.Errorf("consent past the deadline = %s, want DECLINED", got)
			}
			accept := act(t, "Accept", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ep.ID, caseID))
			if err := c.CheckRSVP(EventType(vocab.AcceptInviteToEmbargoOnCase), accept, before); err != nil {
				t.Errorf("an Accept before the deadline is refused: %v", err)
			}
			err := c.CheckRSVP(EventType(vocab.AcceptInviteToEmbargoOnCase), accept, after)
			if problem.Status(err) != 409 || !strings.Contains(problem.Message(err), "RSVP deadline") {
				t.Errorf("an Accept past the deadline: %v; want a 409 naming the RSVP deadline", err)
			}
			if err := c.Try(EventType(vocab.AcceptInviteToEmbargoOnCase), accept, after); err == nil {
				t.Error("Try allows an Accept past the deadline")
			}
			must(t, c, vocab.AcceptInviteToEmbargoOnCase, accept)
			if v.PEC != cvdstate.PECSignatory || !c.RSVPDeadline(v).IsZero() || c.ConsentAt(v, after) != cvdstate.PECSignatory {
				t.Errorf("after the owner's EA: vendor %s, deadline %s", v.PEC, c.RSVPDeadline(v))
			}
		})
	}
}

// TestRevisionInvites: a revision lapses the signatories but for the
// proposer and invites the participants not bound; the LAPSED ones answer
// by the same deadline.
func TestRevisionInvites(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	ev := embargoInviteBy(t, vendor, "https://v.example/a/ev1", "2027-03-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ev)
	v, f := c.Participant(vendor), c.Participant(finder)
	if c.EM != cvdstate.EMRevise || v.PEC != cvdstate.PECSignatory || f.PEC != cvdstate.PECLapsed {
		t.Fatalf("after EV: em %s, vendor (the proposer) %s, finder %s; want REVISE, SIGNATORY, LAPSED", c.EM, v.PEC, f.PEC)
	}
	due := time.Date(2026, 11, 8, 13, 0, 0, 0, time.UTC)
	if got := c.RSVPDeadline(f); !got.Equal(due) {
		t.Errorf("finder's RSVP deadline = %s, want %s", got, due)
	}
	if got := c.ConsentAt(f, due.Add(time.Second)); got != cvdstate.PECDeclined {
		t.Errorf("a LAPSED signatory past the deadline = %s, want DECLINED", got)
	}
	if got := c.ConsentAt(v, due.Add(time.Second)); got != cvdstate.PECSignatory {
		t.Errorf("the proposer past the deadline = %s, want SIGNATORY", got)
	}
	// The owner's own proposal: the owner accepts it after the deadline.
	accept := act(t, "Accept", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ev.ID, caseID))
	if err := c.CheckRSVP(EventType(vocab.AcceptInviteToEmbargoOnCase), accept, due.Add(time.Hour)); err != nil {
		t.Errorf("the proposer's Accept of its own proposal is refused: %v", err)
	}
}

// TestCaseOpensWithAnInvitation: a case that opens with the reporter's
// embargo proposal pending invites the owner, with the default deadline
// counted from the proposal's publication.
func TestCaseOpensWithAnInvitation(t *testing.T) {
	create := newCaseCreate(t, false)
	vc := create.Object.Object.(*vocab.VulnerabilityCase)
	vc.CaseStatuses[0].Object.(*vocab.CaseStatus).EMState = "PROPOSED"
	inv := embargoInviteBy(t, finder, "https://x.example/activities/ep-1", "2027-02-01T00:00:00Z", "2026-11-01T12:00:00Z", "")
	vc.CaseActivity = []vocab.Ref{vocab.Inline(inv)}
	c := &Case{}
	if _, err := c.Apply(EventType(vocab.CreateCase), create, t0); err != nil {
		t.Fatal(err)
	}
	v := c.Participant(vendor)
	if v.PEC != cvdstate.PECInvited || !c.RSVPDeadline(v).Equal(t0.Add(7*24*time.Hour)) {
		t.Errorf("owner: %s, deadline %s; want INVITED until %s", v.PEC, c.RSVPDeadline(v), t0.Add(7*24*time.Hour))
	}
}

// TestRejectedRevisionKeepsTheSignatories: a revision lapses the
// signatories of the terms in force (spec §2.7); when it is rejected and
// those terms stay in force (EJ, REVISE → ACTIVE), the participants that
// signed them are bound again, and a participant the revision invited is
// no longer invited to anything. A participant that lapsed in an earlier
// round, under other terms, stays LAPSED.
func TestRejectedRevisionKeepsTheSignatories(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	if f := c.Participant(finder); f.AcceptedEmbargo != c.Embargo.ID {
		t.Fatalf("a signatory from the case's creation has accepted %q, want the embargo in force %s", f.AcceptedEmbargo, c.Embargo.ID)
	}
	ev := embargoInviteBy(t, vendor, "https://v.example/a/ev1", "2027-03-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ev)
	if f := c.Participant(finder); f.PEC != cvdstate.PECLapsed {
		t.Fatalf("after EV the finder is %s, want LAPSED", f.PEC)
	}
	// A participant with no consent, invited by the revision.
	other := &Participant{ID: caseID + "/participants/c", Actor: coord}
	other.RM, other.PEC, other.Roles = cvdstate.RMAccepted, cvdstate.PECInvited, cvdstate.Coordinator
	c.addParticipant(other)
	must(t, c, vocab.RejectInviteToEmbargoOnCase, act(t, "Reject", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ev.ID, caseID)))
	if c.EM != cvdstate.EMActive {
		t.Fatalf("after the owner's EJ the embargo is %s, want ACTIVE", c.EM)
	}
	if f := c.Participant(finder); f.PEC != cvdstate.PECSignatory || !f.EmbargoAdherence() {
		t.Errorf("after the revision was rejected the finder is %s, want SIGNATORY of the terms still in force", f.PEC)
	}
	if o := c.Participant(coord); o.PEC != cvdstate.PECNoEmbargo {
		t.Errorf("after the revision was rejected its invitee is %s, want NO_EMBARGO", o.PEC)
	}

	// An earlier revision the owner accepted replaced the terms the
	// finder signed: a later rejected revision leaves it LAPSED.
	c.Participant(finder).PEC, c.Participant(finder).AcceptedEmbargo = cvdstate.PECLapsed, caseID+"/embargoes/older"
	ev2 := embargoInviteBy(t, vendor, "https://v.example/a/ev2", "2027-04-01T00:00:00Z", "2026-11-01T14:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ev2)
	must(t, c, vocab.RejectInviteToEmbargoOnCase, act(t, "Reject", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ev2.ID, caseID)))
	if f := c.Participant(finder); f.PEC != cvdstate.PECLapsed {
		t.Errorf("a participant that signed other terms is %s after a rejected revision, want LAPSED", f.PEC)
	}
}

// TestClosedCaseAsksForNoAnswer: once the owner left and the Case Actor
// closed the case, nobody can answer the embargo proposal still open in it,
// so no participant has an RSVP deadline any more and none turns DECLINED
// when the proposal's deadline passes (the views show no "answer by").
func TestClosedCaseAsksForNoAnswer(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	ev := embargoInviteBy(t, vendor, "https://v.example/a/ev1", "2027-03-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ev)
	f := c.Participant(finder)
	due := c.RSVPDeadline(f)
	if due.IsZero() {
		t.Fatal("the finder, lapsed by the revision, has no RSVP deadline before the case closes")
	}
	must(t, c, vocab.CloseCase, leave(t, vendor))
	applyEvent(t, c, EventCaseFullyClosed, vocab.CaseClosing(caseActor, caseID, c.Name, vendor, t0))
	if got := c.RSVPDeadline(f); !got.IsZero() {
		t.Errorf("in the closed case the finder is to answer by %s, want no deadline: nobody can answer", got)
	}
	if got := c.ConsentAt(f, due.Add(time.Hour)); got != f.PEC {
		t.Errorf("in the closed case the finder's consent past the old deadline is %s, want it unchanged (%s)", got, f.PEC)
	}
}

// TestClosingEndsWhatIsOpen: the Case Actor's closing of a case its owner
// left ends the case's open embargo proposals as their rejection would
// (a revision's lapsed signatories are bound again by the terms in
// force), and a participant that had not finished evaluating the case
// (RECEIVED, VALID) can still close its part, so that every participant
// ends CLOSED (§9.4 invariant 7).
func TestClosingEndsWhatIsOpen(t *testing.T) {
	c := newCase(t, true)
	must(t, c, vocab.EngageCase, join(t, vendor))
	for i, rm := range []cvdstate.RMState{cvdstate.RMReceived, cvdstate.RMValid} {
		p := &Participant{ID: fmt.Sprintf("%s/participants/x%d", caseID, i), Actor: fmt.Sprintf("https://x%d.example/actors/x", i)}
		p.RM, p.Roles = rm, cvdstate.Vendor
		c.addParticipant(p)
	}
	ev := embargoInviteBy(t, finder, "https://f.example/a/ev1", "2027-03-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
	must(t, c, vocab.InviteToEmbargoOnCase, ev)
	if c.EM != cvdstate.EMRevise || c.Participant(vendor).PEC != cvdstate.PECLapsed {
		t.Fatalf("after the finder's EV: em %s, the owner %s; want REVISE, LAPSED", c.EM, c.Participant(vendor).PEC)
	}
	must(t, c, vocab.CloseCase, leave(t, vendor))
	applyEvent(t, c, EventCaseFullyClosed, vocab.CaseClosing(caseActor, caseID, c.Name, vendor, t0))
	if c.EM != cvdstate.EMActive || len(c.Proposals) != 0 {
		t.Errorf("after the closing: em %s with %d proposals; want ACTIVE with none: the revision ended with the case", c.EM, len(c.Proposals))
	}
	if p := c.Participant(vendor); p.PEC != cvdstate.PECSignatory {
		t.Errorf("after the closing the owner, lapsed by the revision, is %s; want SIGNATORY of the terms still in force", p.PEC)
	}
	if last := c.History[len(c.History)-1]; last.Message != "EJ" || last.By != caseActor {
		t.Errorf("the embargo history ends with %+v; want the revision's end (EJ) by the Case Actor", last)
	}
	for i := range 2 {
		x := fmt.Sprintf("https://x%d.example/actors/x", i)
		if err := c.TrySend(EventType(vocab.CloseCase), leave(t, x), t0); err != nil {
			t.Errorf("%s may not close its part of the closed case: %v", x, err)
		}
		must(t, c, vocab.CloseCase, leave(t, x))
	}
	must(t, c, vocab.CloseCase, leave(t, finder))
	for _, p := range c.Participants {
		if p.RM != cvdstate.RMClosed {
			t.Errorf("%s ends %s, want CLOSED", p.Actor, p.RM)
		}
	}
}

// TestProposalEndingInThePast: a proposal with no start, whose end has
// passed when it is proposed, is refused with a sentence that says the
// embargo must end in the future, not that it ends before it starts.
func TestProposalEndingInThePast(t *testing.T) {
	c := newCase(t, false)
	ep := act(t, "Invite", finder, fmt.Sprintf(`"id":"https://f.example/a/past","object":{"id":"%s/embargoes/past","type":"EmbargoEvent","endTime":"2026-10-01T00:00:00Z"},"context":%q`, caseID, caseID))
	refused(t, c, vocab.InviteToEmbargoOnCase, ep, 422, "ends at 2026-10-01T00:00:00Z, which has passed: an embargo must end in the future")
}

// TestOwnershipGoesOnlyToAnEngagedParticipant: an ownership offer made to
// an engaged participant cannot be accepted once that participant closed
// the case: a closed participant takes no further part, and an owner that
// closed could never leave the case and close it for everyone.
func TestOwnershipGoesOnlyToAnEngagedParticipant(t *testing.T) {
	c := newCase(t, true)
	offer := act(t, "Offer", vendor, fmt.Sprintf(`"object":%q,"target":%q`, caseID, finder))
	must(t, c, vocab.OfferCaseOwnershipTransfer, offer)
	must(t, c, vocab.CloseCase, leave(t, finder))
	refused(t, c, vocab.AcceptCaseOwnershipTransfer, act(t, "Accept", finder, fmt.Sprintf(`"object":%q`, offer.ID)), 409, "engaged participant")
	if c.Owner != vendor {
		t.Fatalf("owner %s, want %s", c.Owner, vendor)
	}
	// The owner may still withdraw the offer.
	must(t, c, vocab.RejectCaseOwnershipTransfer, act(t, "Reject", vendor, fmt.Sprintf(`"object":%q`, offer.ID)))
	if c.Transfer != nil {
		t.Errorf("the withdrawn offer is still open: %+v", c.Transfer)
	}
}

// TestClosedParticipantAnswersNoProposal: a participant that closed the
// case takes no further part in its embargo: the sender tables allow EA
// and ER only from a participant whose report is not closed (¬C), so its
// Accept or Reject of a proposal still open is refused and its consent
// does not change.
func TestClosedParticipantAnswersNoProposal(t *testing.T) {
	c := newCase(t, false)
	ep := embargoInvite(t, vendor, "https://v.example/a/ep1", "2027-02-01T00:00:00Z")
	must(t, c, vocab.InviteToEmbargoOnCase, ep)
	must(t, c, vocab.CloseCase, leave(t, finder))
	for _, typ := range []string{"Accept", "Reject"} {
		sem := vocab.AcceptInviteToEmbargoOnCase
		if typ == "Reject" {
			sem = vocab.RejectInviteToEmbargoOnCase
		}
		refused(t, c, sem, act(t, typ, finder, fmt.Sprintf(`"object":%q,"context":%q`, ep.ID, caseID)), 409, "closed")
	}
}

// TestAcceptedTermsBindOnlyTheirSignatories: with two embargo proposals
// open, a participant that accepted one of them is not bound by the other
// when the owner puts that other in force: it never accepted those terms,
// so it is no signatory of the embargo in force (it declined them), and
// the case does not say it adheres to the embargo.
func TestAcceptedTermsBindOnlyTheirSignatories(t *testing.T) {
	for _, revise := range []bool{false, true} {
		t.Run(fmt.Sprintf("revision %v", revise), func(t *testing.T) {
			c := newCase(t, revise)
			other := &Participant{ID: caseID + "/participants/c", Actor: coord}
			other.RM, other.Roles = cvdstate.RMAccepted, cvdstate.Coordinator
			if revise {
				other.PEC, other.AcceptedEmbargo = cvdstate.PECSignatory, c.Embargo.ID
			}
			c.addParticipant(other)
			short := embargoInvite(t, finder, "https://f.example/a/ep1", "2027-02-01T00:00:00Z")
			long := embargoInvite(t, vendor, "https://v.example/a/ep2", "2027-06-01T00:00:00Z")
			must(t, c, vocab.InviteToEmbargoOnCase, short)
			must(t, c, vocab.InviteToEmbargoOnCase, long)
			must(t, c, vocab.AcceptInviteToEmbargoOnCase, act(t, "Accept", coord, fmt.Sprintf(`"object":%q,"context":%q`, short.ID, caseID)))
			if o := c.Participant(coord); o.PEC != cvdstate.PECSignatory {
				t.Fatalf("after accepting the short proposal the coordinator is %s, want SIGNATORY", o.PEC)
			}
			must(t, c, vocab.AcceptInviteToEmbargoOnCase, act(t, "Accept", vendor, fmt.Sprintf(`"object":%q,"context":%q`, long.ID, caseID)))
			if c.EM != cvdstate.EMActive || c.Embargo.ID != long.Object.ID() {
				t.Fatalf("after the owner's acceptance: em %s, embargo %+v; want ACTIVE with the long terms", c.EM, c.Embargo)
			}
			if o := c.Participant(coord); o.PEC == cvdstate.PECSignatory || o.EmbargoAdherence() {
				t.Errorf("the coordinator, which accepted only the short terms, is %s (accepted %s) under the long terms in force", o.PEC, o.AcceptedEmbargo)
			}
			if f := c.Participant(finder); f.PEC == cvdstate.PECSignatory && f.AcceptedEmbargo != long.Object.ID() {
				t.Errorf("the finder, which proposed only the short terms, is a signatory of %s", f.AcceptedEmbargo)
			}
		})
	}
}

// TestTermsInForceEndTheInvitations: when the owner puts terms in force
// (EA, EC) no proposal is left to answer, so a participant that was asked
// and did not accept those terms (INVITED, LAPSED, or a signatory of other
// terms) has declined them (the PEC model's decline edge, as the RSVP
// deadline's pocket veto would): its consent is DECLINED from then on,
// whatever the time, with no RSVP deadline, and the next proposal invites
// it again.
func TestTermsInForceEndTheInvitations(t *testing.T) {
	tests := []struct {
		name    string
		embargo bool // an embargo in force before: the proposal is a revision
		before  cvdstate.PEC
		answer  bool // the coordinator accepts a counter-proposal first
	}{
		{name: "invited to a proposal (EA)", embargo: false, before: cvdstate.PECInvited},
		{name: "lapsed under a revision (EC)", embargo: true, before: cvdstate.PECLapsed},
		{name: "signatory of the counter-proposal", embargo: false, before: cvdstate.PECSignatory, answer: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCase(t, tt.embargo)
			other := &Participant{ID: caseID + "/participants/c", Actor: coord}
			other.RM, other.Roles = cvdstate.RMAccepted, cvdstate.Coordinator
			if tt.embargo {
				other.PEC, other.AcceptedEmbargo = cvdstate.PECSignatory, c.Embargo.ID
			}
			c.addParticipant(other)
			ep := embargoInviteBy(t, finder, "https://f.example/a/ep1", "2027-02-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
			must(t, c, vocab.InviteToEmbargoOnCase, ep)
			if tt.answer {
				counter := embargoInviteBy(t, vendor, "https://v.example/a/ep2", "2027-01-01T00:00:00Z", "2026-11-01T13:00:00Z", "")
				must(t, c, vocab.InviteToEmbargoOnCase, counter)
				must(t, c, vocab.AcceptInviteToEmbargoOnCase, act(t, "Accept", coord, fmt.Sprintf(`"object":%q,"context":%q`, counter.ID, caseID)))
			}
			if o := c.Participant(coord); o.PEC != tt.before {
				t.Fatalf("before the owner's acceptance the coordinator is %s, want %s", o.PEC, tt.before)
			}
			replica := c.clone()
			accept := act(t, "Accept", vendor, fmt.Sprintf(`"object":%q,"context":%q`, ep.ID, caseID))
			must(t, c, vocab.AcceptInviteToEmbargoOnCase, accept)
			must(t, replica, vocab.AcceptInviteToEmbargoOnCase, accept)
			if c.EM != cvdstate.EMActive || c.Embargo.ID != ep.Object.ID() {
				t.Fatalf("after the owner's acceptance: em %s, embargo %+v; want ACTIVE with the finder's terms", c.EM, c.Embargo)
			}
			o := c.Participant(coord)
			if o.PEC != cvdstate.PECDeclined || !c.RSVPDeadline(o).IsZero() {
				t.Errorf("the coordinator, which did not accept the terms put in force, is %s with RSVP deadline %s; want DECLINED with none", o.PEC, c.RSVPDeadline(o))
			}
			for _, at := range []time.Time{t0.Add(2 * time.Hour), t0.Add(365 * 24 * time.Hour)} {
				if got := c.ConsentAt(o, at); got != cvdstate.PECDeclined {
					t.Errorf("consent at %s = %s, want DECLINED", at, got)
				}
			}
			if r := replica.Participant(coord); r.PEC != o.PEC {
				t.Errorf("a replica applying the same entry has the coordinator %s, the Case Actor %s", r.PEC, o.PEC)
			}
			for _, a := range []string{vendor, finder} {
				if p := c.Participant(a); p.PEC != cvdstate.PECSignatory || p.AcceptedEmbargo != c.Embargo.ID {
					t.Errorf("%s is %s of %q, want SIGNATORY of the terms in force", a, p.PEC, p.AcceptedEmbargo)
				}
			}
			ev := embargoInviteBy(t, vendor, "https://v.example/a/ev3", "2027-03-01T00:00:00Z", "2026-11-01T14:00:00Z", "")
			must(t, c, vocab.InviteToEmbargoOnCase, ev)
			if o.PEC != cvdstate.PECInvited {
				t.Errorf("a revision after it declined leaves the coordinator %s, want INVITED", o.PEC)
			}
		})
	}
}
