package automation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/intel"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
	"github.com/rs/zerolog"
)

const (
	vendor = "https://v.example/actors/vendor"
	finder = "https://f.example/actors/finder"
)

// recorder stands in for the outbox: it keeps what was submitted.
type recorder struct {
	mu   sync.Mutex
	sent []map[string]any
}

func (r *recorder) submit(_ context.Context, name string, act map[string]any) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, act)
	return "https://v.example/activities/" + name + string(rune('a'+len(r.sent))), nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sent)
}

func setup(t *testing.T) (*store.DB, string) {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *store.Tx) error {
		return tx.PutLocalActor(store.LocalActor{Name: "vendor", Type: "Organization"})
	}); err != nil {
		t.Fatal(err)
	}
	c := &cases.Case{ID: "https://v.example/cases/1", Owner: vendor, EM: cvdstate.EMProposed, UpdatedAt: time.Now()}
	c.Participants = []*cases.Participant{
		{Actor: vendor, ID: "https://v.example/cases/1/participants/v", Roles: cvdstate.Vendor | cvdstate.CaseOwner, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}},
		{Actor: finder, ID: "https://v.example/cases/1/participants/f", Roles: cvdstate.Finder | cvdstate.Reporter, ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}},
	}
	c.Proposals = []cases.Proposal{{InviteID: "https://f.example/activities/ep1", Terms: cases.Embargo{ID: "https://f.example/objects/e1", End: time.Now().Add(60 * 24 * time.Hour), Proposer: finder}}}
	if err := db.Update(ctx, func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
	return db, c.ID
}

// entry appends a change-feed event for the case, as a ledger entry does.
func entry(t *testing.T, db *store.DB, caseID string) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.AppendEvent(store.Event{CaseID: caseID, EventType: "invite_to_embargo_on_case", Actor: finder, Time: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
}

// mustPolicy parses the policy text as file name.
func mustPolicy(t *testing.T, text, name string) *rules.Policy {
	t.Helper()
	p, err := rules.Parse([]byte(text), name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func newEngine(t *testing.T, db *store.DB, r *recorder, p *rules.Policy) *Engine {
	t.Helper()
	return newEngineAt(t, db, r, p, time.Time{})
}

// TestDecisionsAreTakenOnce: a proposal from the finder opens
// embargo_proposed for the vendor; the policy accepts it once, however
// often the case changes after and across a restart of the engine.
func TestDecisionsAreTakenOnce(t *testing.T) {
	db, caseID := setup(t)
	p := mustPolicy(t, "name: once\nrules:\n  - on: embargo_proposed\n    if: proposal.days > 30\n    do: [accept_embargo]\n", "once.yaml")
	r := &recorder{}
	e := newEngine(t, db, r, p)
	ctx := context.Background()
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 1 {
		t.Fatalf("Step = %d, %v; want one decision", n, err)
	}
	if r.count() != 1 || r.sent[0]["type"] != "Accept" || r.sent[0]["object"] != "https://f.example/activities/ep1" ||
		r.sent[0]["summary"] != "automatic: rule 1 of policy once" {
		t.Fatalf("sent %+v", r.sent)
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 0 {
		t.Errorf("second Step = %d, %v; want none", n, err)
	}
	again := newEngine(t, db, r, p)
	entry(t, db, caseID)
	if n, err := again.Step(ctx); err != nil || n != 0 || r.count() != 1 {
		t.Errorf("after a restart: Step = %d, %v, %d sent; want nothing more", n, err, r.count())
	}
	records, _, err := db.AuditPage(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 || records[0].Reason != "automation: policy once, rule 1 (line 3) at embargo_proposed: accept_embargo" {
		t.Errorf("audit: %+v", records)
	}
}

// TestNothingWhileOff: what happens while no policy is in force is not
// decided when one is put in force later.
func TestNothingWhileOff(t *testing.T) {
	db, caseID := setup(t)
	r := &recorder{}
	e := newEngine(t, db, r, nil)
	ctx := context.Background()
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 0 {
		t.Fatalf("Step without a policy = %d, %v", n, err)
	}
	p := mustPolicy(t, "rules:\n  - on: embargo_proposed\n    do: [accept_embargo]\n", "later.yaml")
	e.SetPolicy(p)
	if n, err := e.Step(ctx); err != nil || n != 0 || r.count() != 0 {
		t.Errorf("after the policy came: Step = %d, %v, %d sent; want nothing", n, err, r.count())
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 1 || r.count() != 1 {
		t.Errorf("a new entry with the policy in force: Step = %d, %v, %d sent; want one decision", n, err, r.count())
	}
}

// TestOffForAnActor: a policy never acts for an actor its off list names.
func TestOffForAnActor(t *testing.T) {
	db, caseID := setup(t)
	p := mustPolicy(t, "off: [vendor]\nrules:\n  - on: embargo_proposed\n    do: [accept_embargo]\n", "off.yaml")
	r := &recorder{}
	e := newEngine(t, db, r, p)
	entry(t, db, caseID)
	if n, err := e.Step(context.Background()); err != nil || n != 0 || r.count() != 0 {
		t.Errorf("Step = %d, %v, %d sent; want nothing for an actor the policy is off for", n, err, r.count())
	}
	xs, err := e.Explain(context.Background(), caseID)
	if err != nil || len(xs) != 1 || xs[0].Rules[0].Fires || !xs[0].Open {
		t.Errorf("Explain = %+v, %v", xs, err)
	}
}

// TestValidatedAndEngagedPoints: a case whose owner validated its report
// and engaged opens report_validated and case_engaged for it, once each;
// a participant that has not engaged yet (RM VALID) has report_validated
// only.
func TestValidatedAndEngagedPoints(t *testing.T) {
	tests := []struct {
		name string
		rm   cvdstate.RMState
		want []string
	}{
		{"validated", cvdstate.RMValid, []string{"at report_validated: ask"}},
		{"engaged", cvdstate.RMAccepted, []string{"at report_validated: ask", "at case_engaged: ask"}},
		{"deferred", cvdstate.RMDeferred, []string{"at report_validated: ask"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, caseID := setup(t)
			ctx := context.Background()
			editCase(t, db, caseID, func(c *cases.Case) {
				c.Proposals = nil
				c.Participant(vendor).RM = tt.rm
			})
			p := mustPolicy(t, "name: steps\nrules:\n  - on: report_validated\n    do: [ask]\n  - on: case_engaged\n    do: [ask]\n", "steps.yaml")
			r := &recorder{}
			e := newEngine(t, db, r, p)
			entry(t, db, caseID)
			n, err := e.Step(ctx)
			if err != nil || n != len(tt.want) {
				t.Fatalf("Step = %d, %v; want %d decisions", n, err, len(tt.want))
			}
			records, _, err := db.AuditPage(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, rec := range records {
				for _, w := range tt.want {
					if strings.Contains(rec.Reason, w) {
						got = append(got, w)
					}
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("audit %+v, want a record for each of %q", records, tt.want)
			}
			entry(t, db, caseID)
			if n, err := e.Step(ctx); err != nil || n != 0 {
				t.Errorf("second Step = %d, %v; want none", n, err)
			}
		})
	}
}

// TestRSVPDeadlineWakesTheOwner: the owner's own proposal comes up for it
// to put in force once every other participant answered; one that lets
// the RSVP deadline pass has answered (declined) then, with no entry to
// say so: the deadline's passing is what asks the policy.
func TestRSVPDeadlineWakesTheOwner(t *testing.T) {
	db, caseID := setup(t)
	ctx := context.Background()
	due := time.Now().Add(time.Hour)
	editCase(t, db, caseID, func(c *cases.Case) {
		c.Proposals[0].Terms.Proposer, c.Proposals[0].RSVPBy = vendor, due
		c.Participant(finder).PEC = cvdstate.PECInvited
	})
	p := mustPolicy(t, "name: own\nrules:\n  - on: embargo_proposed\n    do: [accept_embargo]\n", "own.yaml")
	r := &recorder{}
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	e, err := New(Config{DB: db, Submit: r.submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} },
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(p)
	if err := e.Init(ctx); err != nil {
		t.Fatal(err)
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 0 {
		t.Fatalf("Step while the finder may still answer = %d, %v; want no decision", n, err)
	}
	now.Store(due.Add(time.Minute).UnixNano())
	state, _ := json.Marshal(deadline.NoticeState{Kind: cases.ClockEmbargoRSVP, Due: due, Participant: finder, Overdue: true})
	if err := db.Update(ctx, func(tx *store.Tx) error {
		return tx.AppendEvent(store.Event{CaseID: caseID, EventType: deadline.EventPassed, Time: due, State: state})
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Step(ctx); err != nil || n != 1 || r.count() != 1 || r.sent[0]["type"] != "Accept" {
		t.Errorf("Step once the finder's deadline passed = %d, %v, sent %+v; want the owner's acceptance of its own proposal", n, err, r.sent)
	}
}

// TestAdvisoryPublishedPoint: once the case records the owner's advisory,
// advisory_published comes up once for each local participant, and a
// policy that answers it with report_public sends the owner's CP.
func TestAdvisoryPublishedPoint(t *testing.T) {
	db, caseID := setup(t)
	ctx := context.Background()
	p := mustPolicy(t, "name: public\nrules:\n  - on: advisory_published\n    do: [report_public]\n", "public.yaml")
	r := &recorder{}
	e := newEngine(t, db, r, p)
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 0 || r.count() != 0 {
		t.Fatalf("Step before the publication = %d, %v, %d sent; want nothing", n, err, r.count())
	}
	editCase(t, db, caseID, func(c *cases.Case) {
		c.Proposals = nil
		c.Advisory = &cases.Advisory{Revisions: []cases.Revision{{Number: 1, At: time.Now(), By: vendor}}}
	})
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 1 || r.count() != 1 {
		t.Fatalf("Step after the publication = %d, %v, %d sent; want one decision and its CP", n, err, r.count())
	}
	b, err := json.Marshal(r.sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"pxaState":"P`) || !strings.Contains(string(b), "ParticipantStatus") {
		t.Errorf("the action sent %s, want the vendor's CP (a ParticipantStatus with P)", b)
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 0 {
		t.Errorf("second Step = %d, %v; want none", n, err)
	}
}

// TestNotifyFailureKeepsTheRuleGoing: a notification the receiver does
// not take (unreachable, or an error status) is recorded as refused, and
// the rule's next actions, and the other rules that fire, are still taken.
func TestNotifyFailureKeepsTheRuleGoing(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"unreachable", problem.Wrap(502, errors.New("dial tcp: lookup t.example: no such host"), "notify https://t.example/h failed")},
		{"error status", problem.New(502, "notify https://t.example/h: the receiver answered 500 Internal Server Error")},
		// An engine without a notifier: the action cannot be taken here,
		// which is no failure of the node either.
		{"no notifier", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, caseID := setup(t)
			p := mustPolicy(t, "name: tickets\nrules:\n  - on: embargo_proposed\n    do: [{notify: {url: \"https://t.example/h\"}}, accept_embargo]\n", "tickets.yaml")
			r := &recorder{}
			cfg := Config{DB: db, Submit: r.submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} },
				Notify: func(context.Context, string, Notification) error { return tt.err }}
			want := problem.Message(tt.err)
			if tt.err == nil {
				cfg.Notify, want = nil, "this node sends no notifications"
			}
			e, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			e.SetPolicy(p)
			ctx := context.Background()
			if err := e.Init(ctx); err != nil {
				t.Fatal(err)
			}
			entry(t, db, caseID)
			if n, err := e.Step(ctx); err != nil || n != 1 {
				t.Errorf("Step = %d, %v; want one decision and no failure of the node", n, err)
			}
			if r.count() != 1 || r.sent[0]["type"] != "Accept" {
				t.Errorf("sent %+v; want the Accept after the failed notification", r.sent)
			}
			records, _, err := db.AuditPage(ctx, 0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(records) != 2 || records[0].Decision != store.DecisionRefused || !strings.Contains(records[0].Reason, want) ||
				(tt.err == nil && records[0].Status != http.StatusConflict) || records[1].Decision != store.DecisionDone {
				t.Errorf("audit: %+v", records)
			}
		})
	}
}

// TestExplainSaysAnIntelSignalWasDecided: once the policy answered a
// signal and the case records what it says, the explanation says the
// point was decided, with the signal's values, rather than that it is
// not open.
func TestExplainSaysAnIntelSignalWasDecided(t *testing.T) {
	db, caseID := setup(t)
	p := mustPolicy(t, "name: intel\nrules:\n  - on: intel_attacks_observed\n    if: intel.cve startsWith \"CVE-\"\n    do: [report_attacks]\n", "intel.yaml")
	r := &recorder{}
	e := newEngine(t, db, r, p)
	ctx := context.Background()
	m := intel.Match{CaseID: caseID, MatchedID: "CVE-2026-1234", Signal: intel.Signal{ID: "CVE-2026-1234", Kind: intel.Attacks, Source: "kev.json"}}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		if _, err := intel.Offer(tx, m, time.Now()); err != nil {
			return err
		}
		state, _ := json.Marshal(map[string]string{"kind": "attacks", "id": m.Signal.ID, "matchedId": m.MatchedID, "source": m.Signal.Source})
		return tx.AppendEvent(store.Event{CaseID: caseID, EventType: intel.Attacks.Event(), Time: time.Now(), State: state})
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.Step(ctx); err != nil || n != 1 || r.count() != 1 {
		t.Fatalf("Step = %d, %v, %d sent; want the attacks reported", n, err, r.count())
	}
	// The case records the attacks.
	editCase(t, db, caseID, func(c *cases.Case) {
		c.PXA |= cvdstate.PXAAttacks
	})
	xs, err := e.Explain(ctx, caseID)
	if err != nil || len(xs) != 1 {
		t.Fatalf("Explain = %+v, %v", xs, err)
	}
	if x := xs[0]; x.Point != "intel_attacks_observed" || !x.Decided || x.Open || len(x.Rules) != 1 || !x.Rules[0].Fires ||
		!strings.Contains(x.Rules[0].Why, `intel.cve = "CVE-2026-1234"`) {
		t.Errorf("Explain = %+v; want intel_attacks_observed decided, read with the signal's CVE id", x)
	}
}

// TestExplainWithNothingToDecide: a point whose subject the case does not
// hold (no proposal open, no invitation or suggestion waiting, no signal)
// is explained as such; its rules are not said to fire on empty values
// (proposal.days = 0 made "reject shorter embargoes" fire).
func TestExplainWithNothingToDecide(t *testing.T) {
	tests := []struct {
		point, rule, why string
	}{
		{"embargo_proposed", "    if: proposal.days < 30\n    do: [{reject_embargo: {reason: short}}]\n", "no embargo proposal is open in the case"},
		{"invitation_received", "    do: [ask]\n", "no invitation to the case waits for vendor's answer"},
		{"suggestion_received", "    do: [reject_suggestion]\n", "no suggestion to the case waits for an answer"},
		{"intel_attacks_observed", "    do: [report_attacks]\n", "no intelligence feed has listed attacks on the case's vulnerability"},
	}
	for _, tt := range tests {
		t.Run(tt.point, func(t *testing.T) {
			db, caseID := setup(t)
			ctx := context.Background()
			editCase(t, db, caseID, func(c *cases.Case) {
				c.Proposals = nil
			})
			p := mustPolicy(t, "rules:\n  - on: "+tt.point+"\n"+tt.rule, "p.yaml")
			e := newEngine(t, db, &recorder{}, p)
			xs, err := e.Explain(ctx, caseID)
			if err != nil || len(xs) != 1 || len(xs[0].Rules) != 1 {
				t.Fatalf("Explain = %+v, %v", xs, err)
			}
			if x := xs[0]; x.Open || x.Rules[0].Fires || x.Rules[0].Why != tt.why {
				t.Errorf("Explain = %+v; want the rule not firing because %s", x, tt.why)
			}
		})
	}
}

// TestAskNamesItsSubject: a rule that asks a person about a report no
// case was opened for yet appends a policy_ask event that names the
// report as its report, as the node's other report steps do, not as a
// case; asked in a case, the event names the case.
func TestAskNamesItsSubject(t *testing.T) {
	const report = "https://f.example/objects/r1"
	db, caseID := setup(t)
	p := mustPolicy(t, "name: ask\nrules:\n  - on: report_received\n    do: [ask]\n  - on: fix_ready\n    do: [ask]\n", "ask.yaml")
	e := newEngine(t, db, &recorder{}, p)
	ctx := context.Background()
	l := Local{Name: "vendor", ID: vendor}
	tests := []struct {
		name             string
		pt               point
		wantCase, wantRp string
	}{
		{"a report before its case", point{Point: rules.ReportReceived, Actor: l, ReportID: report}, "", report},
		{"a case", point{Point: rules.FixReady, Actor: l, CaseID: caseID}, caseID, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := e.take(ctx, p, p.Rules[i], tt.pt, rules.Resolved{Kind: rules.Ask}); err != nil {
				t.Fatal(err)
			}
			last, err := db.LastEventSeq(ctx)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := db.EventsAfter(ctx, last-1, 1)
			if err != nil || len(evs) != 1 {
				t.Fatalf("events: %+v, %v", evs, err)
			}
			if ev := evs[0]; ev.EventType != "policy_ask" || ev.CaseID != tt.wantCase || ev.Report != tt.wantRp {
				t.Errorf("policy_ask event names case %q and report %q; want case %q and report %q", ev.CaseID, ev.Report, tt.wantCase, tt.wantRp)
			}
		})
	}
}

// editCase changes the stored case caseID with edit, in one transaction.
func editCase(t *testing.T, db *store.DB, caseID string, edit func(c *cases.Case)) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		c, err := cases.Load(&tx.ReadTx, caseID)
		if err != nil {
			return err
		}
		edit(c)
		return cases.Save(tx, c)
	}); err != nil {
		t.Fatal(err)
	}
}

// TestValidateOfAValidReportIsAudited: a validate action that finds the
// report valid already (an earlier action or rule validated it, and its
// case is open) sends nothing, and says so in the audit log with the
// policy and rule, as a refused action does, rather than leaving no trace.
func TestValidateOfAValidReportIsAudited(t *testing.T) {
	db, caseID := setup(t)
	p := mustPolicy(t, "name: triage\nrules:\n  - on: report_received\n    do: [validate]\n", "triage.yaml")
	r := &recorder{}
	e := newEngine(t, db, r, p)
	ctx := context.Background()
	pt := point{Point: rules.ReportReceived, Actor: Local{Name: "vendor", ID: vendor}, CaseID: caseID, ReportID: "https://f.example/objects/r1",
		Target: rules.Target{OfferID: "https://f.example/activities/offer1", Reporter: finder}}
	if err := e.take(ctx, p, p.Rules[0], pt, rules.Resolved{Kind: rules.Validate}); err != nil {
		t.Fatal(err)
	}
	if r.count() != 0 {
		t.Errorf("sent %+v; want nothing for a report valid already", r.sent)
	}
	records, _, err := db.AuditPage(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 {
		t.Fatalf("audit: %+v; want one record of the validate action", records)
	}
	want := "automation: policy triage, rule 1 (line 3) at report_received: validate: the report is already valid: case " + caseID + " holds it"
	if rec := records[0]; rec.Kind != store.AuditAdmin || rec.Actor != "vendor" || rec.Decision != store.DecisionRefused || rec.Reason != want {
		t.Errorf("audit record %+v; want %s refused because %q", rec, store.AuditAdmin, want)
	}
}

// TestExplainSaysAClosedProposalWasDecided: once an embargo proposal
// closed, the case no longer holds it, and the decision's key names it;
// the explanation says what became of it, from the case's ledger and the
// policy's decision record (who answered it, how and when, and the rule
// that did), rather than that no proposal is open. A proposal still open
// whose deadline for answers passed is decided for the vendor, which may
// no longer answer it, rather than explained with its values as if it
// were to decide.
func TestExplainSaysAClosedProposalWasDecided(t *testing.T) {
	const ep1 = "https://f.example/activities/ep1"
	now := time.Now().UTC().Truncate(time.Minute)
	proposed, answered := now.Add(-2*time.Hour), now.Add(-time.Hour)
	end := now.Add(60 * 24 * time.Hour)
	proposal := map[string]any{"id": ep1, "type": "Invite", "actor": finder, "context": "https://v.example/cases/1",
		"object": map[string]any{"id": "https://f.example/objects/e1", "type": "EmbargoEvent", "endTime": end.Format(time.RFC3339)}}
	header := "the embargo proposal " + ep1 + " by " + finder + " (to end " + end.Format("2006-01-02 15:04 UTC") + ")"
	at := func(t time.Time) string { return t.Format("2006-01-02 15:04 UTC") }
	tests := []struct {
		name, rule string
		// answer is the closing answer the ledger records, with the
		// summary of the activity the policy sent when from is "policy".
		answer  map[string]any
		from    string
		decided bool
		why     string
	}{
		{"accepted by the policy", "    if: proposal.days > 30\n    do: [accept_embargo]\n",
			map[string]any{"id": "https://v.example/activities/a1", "type": "Accept", "actor": vendor, "object": ep1}, "policy", true,
			header + " is closed: vendor accepted it at " + at(answered) + " (automatic: rule 1 of policy p)"},
		{"rejected by a person the policy asked", "    do: [ask]\n",
			map[string]any{"id": "https://v.example/activities/r1", "type": "Reject", "actor": vendor, "object": ep1}, "person", true,
			header + " is closed: vendor rejected it at " + at(answered) + "; the policy decided it at " + at(now)},
		{"withdrawn before the vendor answered", "    if: proposal.days > 365\n    do: [accept_embargo]\n",
			map[string]any{"id": "https://f.example/activities/w1", "type": "Reject", "actor": finder, "object": ep1}, "person", false,
			header + " is closed: its proposer " + finder + " withdrew it at " + at(answered) + "; vendor did not answer it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, caseID := setup(t)
			p := mustPolicy(t, "name: p\nrules:\n  - on: embargo_proposed\n"+tt.rule, "p.yaml")
			r := &recorder{}
			e := newEngineAt(t, db, r, p, now)
			ctx := context.Background()
			entry(t, db, caseID)
			if _, err := e.Step(ctx); err != nil {
				t.Fatal(err)
			}
			if tt.from == "policy" {
				if r.count() != 1 {
					t.Fatalf("sent %+v; want the policy's answer", r.sent)
				}
				tt.answer["summary"] = r.sent[0]["summary"]
			}
			appendLedger(t, db, caseID, ledgerAct{vocab.InviteToEmbargoOnCase, proposal, proposed}, ledgerAct{semanticOf(tt.answer), tt.answer, answered})
			editCase(t, db, caseID, func(c *cases.Case) {
				c.Proposals = nil
				c.EM = cvdstate.EMNone
				if tt.answer["type"] == "Accept" {
					c.EM, c.Embargo = cvdstate.EMActive, &cases.Embargo{ID: "https://f.example/objects/e1", End: end, Proposer: finder}
				}
			})
			xs, err := e.Explain(ctx, caseID)
			if err != nil || len(xs) != 1 || len(xs[0].Rules) != 1 {
				t.Fatalf("Explain = %+v, %v", xs, err)
			}
			if x := xs[0]; x.Point != "embargo_proposed" || x.Open || x.Decided != tt.decided || x.Rules[0].Fires || x.Rules[0].Why != tt.why {
				t.Errorf("Explain = %+v\nwant decided %v, the rule not firing because %s", x, tt.decided, tt.why)
			}
		})
	}
	t.Run("its deadline for answers passed", func(t *testing.T) {
		db, caseID := setup(t)
		rsvp := now.Add(-30 * time.Minute)
		editCase(t, db, caseID, func(c *cases.Case) {
			c.Proposals[0].RSVPBy = rsvp
		})
		p := mustPolicy(t, "name: p\nrules:\n  - on: embargo_proposed\n    if: proposal.days > 30\n    do: [accept_embargo]\n", "p.yaml")
		e := newEngineAt(t, db, &recorder{}, p, now)
		appendLedger(t, db, caseID, ledgerAct{vocab.InviteToEmbargoOnCase, proposal, proposed})
		xs, err := e.Explain(context.Background(), caseID)
		if err != nil || len(xs) != 1 || len(xs[0].Rules) != 1 {
			t.Fatalf("Explain = %+v, %v", xs, err)
		}
		want := header + " is open, but its deadline for answers passed at " + at(rsvp) + ": vendor did not answer it by then, which declines it"
		if x := xs[0]; x.Open || !x.Decided || x.Rules[0].Fires || x.Rules[0].Why != want {
			t.Errorf("Explain = %+v\nwant decided, the rule not firing because %s", x, want)
		}
	})
}

// TestExplainSaysAClosedInvitationWasDecided: an invitation the vendor
// accepted is no longer in the case it joined, and the decision's key
// names the invitation; the explanation says that the vendor accepted it,
// when, and the rule that did when a policy did, rather than that no
// invitation waits.
func TestExplainSaysAClosedInvitationWasDecided(t *testing.T) {
	const inv = "https://f.example/activities/inv1"
	now := time.Now().UTC().Truncate(time.Minute)
	invited, joined := now.Add(-2*time.Hour), now.Add(-time.Hour)
	at := func(t time.Time) string { return t.Format("2006-01-02 15:04 UTC") }
	for _, byPolicy := range []bool{true, false} {
		t.Run(map[bool]string{true: "by the policy", false: "by a person"}[byPolicy], func(t *testing.T) {
			db, caseID := setup(t)
			var sent string
			// The finder's organization hosts the case; the vendor joined
			// it by invitation.
			editCase(t, db, caseID, func(c *cases.Case) {
				c.Owner, c.CaseActor, c.Proposals, c.EM = finder, "https://f.example/actors/case-actor", nil, cvdstate.EMNone
				c.Participants[0].Roles = cvdstate.Vendor
				c.Participants[1].Roles |= cvdstate.CaseOwner
				sent = c.SentInvitationID(inv)
			})
			rule := "    if: invitation.by == \"" + finder + "\"\n    do: [accept_invitation]\n"
			if !byPolicy {
				rule = "    if: invitation.host == \"c.example\"\n    do: [accept_invitation]\n"
			}
			p := mustPolicy(t, "name: join\nrules:\n  - on: invitation_received\n"+rule, "join.yaml")
			r := &recorder{}
			e := newEngineAt(t, db, r, p, now)
			ctx := context.Background()
			// The invitation as the vendor's inbox holds it (inboxPoints).
			pt := point{Point: rules.InvitationReceived, Key: "invitation_received " + sent + " vendor", Actor: Local{Name: "vendor", ID: vendor},
				Env:    rules.Env{Sender: finder, Invitation: rules.Invitation{ID: sent, By: finder, Host: "f.example", Case: caseID, Roles: []string{"vendor"}}},
				CaseID: caseID, Target: rules.Target{CaseID: caseID, InvitationID: sent}}
			took, err := e.decide(ctx, p, pt)
			if err != nil || took != byPolicy {
				t.Fatalf("decide = %v, %v; want %v", took, err, byPolicy)
			}
			accept := map[string]any{"id": "https://v.example/activities/j1", "type": "Accept", "actor": vendor, "object": sent}
			want := "the invitation " + sent + " by " + finder + " is closed: vendor accepted it at " + at(joined)
			if byPolicy {
				if r.count() != 1 || r.sent[0]["object"] != sent {
					t.Fatalf("sent %+v; want the policy's Accept of %s", r.sent, sent)
				}
				accept["summary"] = r.sent[0]["summary"]
				want += " (automatic: rule 1 of policy join)"
			}
			appendLedger(t, db, caseID,
				ledgerAct{vocab.InviteActorToCase, map[string]any{"id": inv, "type": "Invite", "actor": finder, "object": vendor, "target": caseID}, invited},
				ledgerAct{vocab.AcceptInviteActorToCase, accept, joined})
			xs, err := e.Explain(ctx, caseID)
			if err != nil {
				t.Fatal(err)
			}
			var found bool
			for _, x := range xs {
				if x.Point != "invitation_received" {
					continue
				}
				found = true
				if x.Open || !x.Decided || len(x.Rules) != 1 || x.Rules[0].Fires || x.Rules[0].Why != want {
					t.Errorf("Explain = %+v\nwant decided, the rule not firing because %s", x, want)
				}
			}
			if !found {
				t.Errorf("Explain = %+v; want invitation_received explained", xs)
			}
		})
	}
}

// newEngineAt is newEngine with its clock stopped at now (the zero time:
// the engine's own clock).
func newEngineAt(t *testing.T, db *store.DB, r *recorder, p *rules.Policy, now time.Time) *Engine {
	t.Helper()
	cfg := Config{DB: db, Submit: r.submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} }}
	if !now.IsZero() {
		cfg.Now = func() time.Time { return now }
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(p)
	if err := e.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

// ledgerAct is an activity a case's ledger records, and when.
type ledgerAct struct {
	sem vocab.Semantic
	act map[string]any
	at  time.Time
}

// semanticOf names an answer to an embargo proposal.
func semanticOf(answer map[string]any) vocab.Semantic {
	if answer["type"] == "Accept" {
		return vocab.AcceptInviteToEmbargoOnCase
	}
	return vocab.RejectInviteToEmbargoOnCase
}

// appendLedger appends entries recording acts to the ledger of case
// caseID, stored as the case's replica stores them (cases.Entries).
func appendLedger(t *testing.T, db *store.DB, caseID string, acts ...ledgerAct) {
	t.Helper()
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		have, err := cases.Entries(&tx.ReadTx, caseID, 0, 0)
		if err != nil {
			return err
		}
		prev := ledger.GenesisHash(caseID, time.Time{}, "https://v.example/actors/case-actor")
		if len(have) > 0 {
			prev = have[len(have)-1].EntryHash
		}
		b, err := tx.Case(caseID)
		if err != nil {
			return err
		}
		entries, err := b.Bucket("ledger")
		if err != nil {
			return err
		}
		for i, a := range acts {
			payload, err := json.Marshal(a.act)
			if err != nil {
				return err
			}
			e, err := ledger.NewEntry(caseID, int64(len(have)+i), prev, a.act["id"].(string), cases.EventType(a.sem), payload, a.at)
			if err != nil {
				return err
			}
			raw, err := ledger.Marshal(e)
			if err != nil {
				return err
			}
			if err := entries.Put(store.SeqKey(uint64(e.LogIndex)), raw); err != nil {
				return err
			}
			prev = e.EntryHash
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAFailingStepIsLoggedOnceAMinute: a store that cannot serve (here:
// closed) fails every step, which Run takes again within a second; the
// failure is logged once, not once per step.
func TestAFailingStepIsLoggedOnceAMinute(t *testing.T) {
	db, _ := setup(t)
	var logs bytes.Buffer
	r := &recorder{}
	e, err := New(Config{DB: db, Submit: r.submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} },
		Interval: 10 * time.Millisecond, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// Five steps or so: Run steps at most every minStepGap.
	ctx, cancel := context.WithTimeout(context.Background(), 5*minStepGap+minStepGap/2)
	defer cancel()
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(logs.String(), "automation: step"); got != 1 {
		t.Errorf("%d lines for the failing steps of a second, want 1:\n%s", got, logs.String())
	}
}

// TestCounterProposalsDoNotAnswerThePolicy: a policy that answers every
// embargo proposal with one of its own, in force for two of the node's
// actors in one case, counters the finder's proposal once for each, and
// then does not counter the proposals it made itself: each would open
// embargo_proposed for the other actor again, without end.
func TestCounterProposalsDoNotAnswerThePolicy(t *testing.T) {
	const coord = "https://v.example/actors/coord"
	db, caseID := setup(t)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *store.Tx) error {
		return tx.PutLocalActor(store.LocalActor{Name: "coord", Type: "Organization"})
	}); err != nil {
		t.Fatal(err)
	}
	editCase(t, db, caseID, func(c *cases.Case) {
		c.Participants = append(c.Participants, &cases.Participant{Actor: coord, ID: caseID + "/participants/c", Roles: cvdstate.Coordinator,
			ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}})
	})
	p := mustPolicy(t, "name: counter\nrules:\n  - on: embargo_proposed\n    do: [{propose_embargo: {days: 90}}]\n", "counter.yaml")
	r := &recorder{}
	var sent []cases.Proposal // what the outbox sent, as the case records it
	submit := func(ctx context.Context, name string, act map[string]any) (string, error) {
		id, err := r.submit(ctx, name, act)
		sent = append(sent, cases.Proposal{InviteID: id,
			Terms: cases.Embargo{ID: id + "/embargo", End: time.Now().Add(90 * 24 * time.Hour), Proposer: "https://v.example/actors/" + name}})
		return id, err
	}
	e, err := New(Config{DB: db, Submit: submit,
		Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}, {Name: "coord", ID: coord}} }})
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(p)
	if err := e.Init(ctx); err != nil {
		t.Fatal(err)
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 2 || r.count() != 2 {
		t.Fatalf("Step = %d, %v, %d sent; want a counter-proposal of each actor to the finder's", n, err, r.count())
	}
	for round := range 3 {
		// The case records the proposals the policy sent.
		recorded := len(sent)
		editCase(t, db, caseID, func(c *cases.Case) { c.Proposals = append(c.Proposals, sent...) })
		sent = nil
		entry(t, db, caseID)
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
		if r.count() != 2 {
			t.Fatalf("round %d, after %d proposals of the policy were recorded: %d activities sent in all; want only the two counter-proposals to the finder's",
				round, recorded, r.count())
		}
	}
}

// TestNotifyURLPasswordStaysOutOfTheRecords: a notify URL's password (the
// receiver's basic authentication) is posted to, but the audit log and the
// node's log name the URL without it.
func TestNotifyURLPasswordStaysOutOfTheRecords(t *testing.T) {
	const password = "hunter2-receiver-password"
	db, caseID := setup(t)
	p := mustPolicy(t, "name: tickets\nrules:\n  - on: embargo_proposed\n    do: [{notify: {url: \"https://bot:"+password+"@t.example/h\"}}]\n", "tickets.yaml")
	var posted string
	var logs bytes.Buffer
	e, err := New(Config{DB: db, Submit: (&recorder{}).submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} },
		Notify: func(_ context.Context, url string, _ Notification) error { posted = url; return nil }, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(p)
	ctx := context.Background()
	if err := e.Init(ctx); err != nil {
		t.Fatal(err)
	}
	entry(t, db, caseID)
	if n, err := e.Step(ctx); err != nil || n != 1 {
		t.Fatalf("Step = %d, %v; want one decision", n, err)
	}
	if !strings.Contains(posted, password) {
		t.Fatalf("posted to %q; want the URL with its password", posted)
	}
	records, _, err := db.AuditPage(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != 1 || strings.Contains(records[0].Reason, password) || !strings.Contains(records[0].Reason, "t.example/h") {
		t.Errorf("audit: %+v; want the notification without the URL's password", records)
	}
	if strings.Contains(logs.String(), password) {
		t.Errorf("the log holds the notify URL's password:\n%s", logs.String())
	}
}

// TestCounterProposalsAreBoundedPerCase: two nodes whose policies each
// counter the other's embargo proposals would trade counter-proposals
// without end, each a new proposal and so a new decision. An actor's
// policy counters at most MaxCounterProposals proposals in a case; the
// next one waits for a person, and the audit log says why.
func TestCounterProposalsAreBoundedPerCase(t *testing.T) {
	db, caseID := setup(t)
	ctx := context.Background()
	p := mustPolicy(t, "name: counter\nrules:\n  - on: embargo_proposed\n    do: [{propose_embargo: {days: 90}}]\n", "counter.yaml")
	r := &recorder{}
	e, err := New(Config{DB: db, Submit: r.submit, Locals: func() []Local { return []Local{{Name: "vendor", ID: vendor}} }})
	if err != nil {
		t.Fatal(err)
	}
	e.SetPolicy(p)
	if err := e.Init(ctx); err != nil {
		t.Fatal(err)
	}
	// The finder's node counters each counter-proposal with one of its
	// own: a new proposal of the finder's each round.
	for round := range MaxCounterProposals + 3 {
		if round > 0 {
			editCase(t, db, caseID, func(c *cases.Case) {
				c.Proposals = []cases.Proposal{{InviteID: fmt.Sprintf("https://f.example/activities/ep-counter-%d", round),
					Terms: cases.Embargo{ID: fmt.Sprintf("https://f.example/objects/e-%d", round), End: time.Now().Add(45 * 24 * time.Hour), Proposer: finder}}}
			})
		}
		entry(t, db, caseID)
		if _, err := e.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := r.count(); got != MaxCounterProposals {
		t.Errorf("%d counter-proposals sent to %d proposals of the finder's; want %d", got, MaxCounterProposals+3, MaxCounterProposals)
	}
	records, _, err := db.AuditPage(ctx, 0, 500)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, rec := range records {
		if strings.Contains(rec.Reason, "counter-proposals in this case") {
			found = true
		}
	}
	if !found {
		t.Error("no audit record says why the next counter-proposal was not sent")
	}
}
