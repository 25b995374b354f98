package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/vocab"
)

// Load is what simulated cases cost: messages between nodes and their
// bytes, and the ledger entries the Case Actors wrote.
type Load struct {
	Messages      int64 `json:"messages"`
	Bytes         int64 `json:"bytes"`
	LedgerEntries int64 `json:"ledgerEntries"`
	LedgerBytes   int64 `json:"ledgerBytes"`
	// Refused counts the actions the case engine refused (a rule that
	// asked for what the protocol did not allow at that moment).
	Refused int64 `json:"refused"`
	// Notifications counts the webhook notifications rules asked for.
	Notifications int64 `json:"notifications"`
}

func (l *Load) add(o Load) {
	l.Messages += o.Messages
	l.Bytes += o.Bytes
	l.LedgerEntries += o.LedgerEntries
	l.LedgerBytes += o.LedgerBytes
	l.Refused += o.Refused
	l.Notifications += o.Notifications
}

// caseSim is one simulated case: the Case Actor's fold of its ledger, the
// objects the case's nodes hold (for classification), and what it cost.
type caseSim struct {
	w   *world
	n   int // the case's number
	rng *rand.Rand
	// now is the simulated time, and day the days since the discovery.
	now time.Time
	day float64

	c      *cases.Case
	host   int // the organization whose node hosts the Case Actor
	finder int
	vendor int // the vendor of the affected product
	// receiver is the organization the finder reported to.
	receiver int
	offer    *vocab.Activity // the report's Offer (RS)
	report   *vocab.VulnerabilityReport

	objects map[string]vocab.Object
	ids     int
	history cvdstate.History
	load    Load
	// f is the state of a case run by policy; nil for a random walk.
	f *follower
}

func newCaseSim(w *world, n int) *caseSim {
	return &caseSim{w: w, n: n, rng: rand.New(rand.NewPCG(uint64(w.seed), uint64(n))),
		now: w.epoch, objects: map[string]vocab.Object{}}
}

// Resolve finds what the case's nodes hold, for vocab.Classify: the
// activities sent and recorded, the report, the case and its participants
// (as cases.Resolver finds them in a node's store).
func (s *caseSim) Resolve(id string) (vocab.Object, bool) {
	if o, ok := s.objects[id]; ok {
		return o, true
	}
	if s.c == nil || s.c.ID == "" {
		return nil, false
	}
	if id == s.c.ID {
		vc := &vocab.VulnerabilityCase{}
		vc.ID, vc.Type, vc.Name = s.c.ID, vocab.TypeVulnerabilityCase, s.c.Name
		return vc, true
	}
	for _, p := range s.c.Participants {
		if p.ID == id {
			cp := &vocab.CaseParticipant{}
			cp.ID, cp.Type = p.ID, vocab.TypeCaseParticipant
			cp.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(p.Actor)}, Single: true}
			cp.Context = vocab.RefTo(s.c.ID)
			return cp, true
		}
	}
	return nil, false
}

// advance moves the clock to day d (days since the discovery).
func (s *caseSim) advance(d float64) {
	if d > s.day {
		s.day = d
		s.now = s.w.epoch.Add(time.Duration(d * float64(24*time.Hour))).Truncate(time.Second)
	}
}

// exp draws an exponential delay with the given mean, in days.
func (s *caseSim) exp(mean float64) float64 { return s.rng.ExpFloat64() * mean }

func (s *caseSim) newID(org int, kind string) string {
	s.ids++
	return s.w.orgs[org].base + "/" + kind + "/" + strconv.Itoa(s.n) + "-" + strconv.Itoa(s.ids)
}

// build turns what a local actor of org submits into the activity its
// outbox would store: id, actor, publication time and the ids of new
// objects filled in, parsed back as vocab reads it.
func (s *caseSim) build(org int, m map[string]any) (*vocab.Activity, []byte, error) {
	m["@context"] = vocab.VultronContext
	m["id"] = s.newID(org, "activities")
	m["actor"] = s.w.orgs[org].actor
	m["published"] = s.now.UTC().Format(time.RFC3339)
	if obj, ok := m["object"].(map[string]any); ok && obj["id"] == nil {
		obj["id"] = s.newID(org, "objects")
	}
	if id, ok := m["object"].(string); ok && m["type"] == "Invite" {
		// The outbox inlines the actor an invitation names by its id.
		if o := s.w.orgOf(id); o >= 0 && s.w.orgs[o].actor == id {
			m["object"] = map[string]any{"id": id, "type": "Organization", "preferredUsername": s.w.orgs[o].name}
		}
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("encode %s: %w", m["type"], err)
	}
	doc, err := vocab.Parse(body)
	if err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", m["type"], err)
	}
	act := doc.Activity()
	if act == nil {
		return nil, nil, fmt.Errorf("%s is not an activity", m["type"])
	}
	s.objects[act.ID] = act
	return act, body, nil
}

// send counts one message between nodes: from org to the node of actor.
func (s *caseSim) send(from int, to string, size int) {
	if s.w.orgOf(to) != from {
		s.load.Messages++
		s.load.Bytes += int64(size)
	}
}

// errRefused marks an activity the case engine did not record.
var errRefused = errors.New("refused by the case")

// submit has a participant of org send a case-scoped activity to the Case
// Actor, which records it.
func (s *caseSim) submit(org int, m map[string]any) error {
	act, body, err := s.build(org, m)
	if err != nil {
		return err
	}
	s.send(org, s.c.CaseActor, len(body))
	return s.record(act)
}

// record is the Case Actor's work: classify the activity, apply it to the
// case (refused, it changes nothing), append the entry to the ledger,
// announce it to the participants on other nodes, send the invitation it
// calls for, and extend the case's history with the events it recorded.
func (s *caseSim) record(act *vocab.Activity) error {
	class := vocab.Classify(act, s)
	eventType := cases.EventType(class.Semantic)
	received := s.c.Received(eventType, act)
	if err := s.c.Try(eventType, act, s.now); err != nil {
		s.load.Refused++
		if received != 0 {
			// The Case Actor answers a refused message with its error (E).
			if err := s.reply(vocab.Refuse(s.c.CaseActor, act, act.Actor.ID(), s.c.ID, err.Error(), s)); err != nil {
				return err
			}
		}
		return fmt.Errorf("%w: %v", errRefused, err)
	}
	histBefore := len(s.history)
	beforeVFD, beforePXA := s.vendorVFD(), s.c.PXA
	fx, err := s.c.Apply(eventType, act, s.now)
	if err != nil {
		return fmt.Errorf("apply %s after Try allowed it: %w", eventType, err)
	}
	payload, err := vocab.Marshal(act)
	if err != nil {
		return fmt.Errorf("record %s: %w", act.ID, err)
	}
	entry, err := ledger.NewEntry(s.c.ID, s.c.LedgerLen, s.c.TailHash, act.ID, eventType, payload, s.now)
	if err != nil {
		return fmt.Errorf("record %s: %w", act.ID, err)
	}
	s.c.LedgerLen, s.c.TailHash = entry.LogIndex+1, entry.EntryHash
	raw, err := ledger.Marshal(entry)
	if err != nil {
		return fmt.Errorf("record %s: %w", act.ID, err)
	}
	s.load.LedgerEntries++
	s.load.LedgerBytes += int64(len(raw))
	ann, err := cases.Announcement(s.c.CaseActor, s.newID(s.host, "activities"), entry, s.now)
	if err != nil {
		return err
	}
	for _, p := range s.c.Recipients() {
		s.send(s.host, p, len(ann))
	}
	if fx.Invite != nil {
		if err := s.sendInvite(*fx.Invite); err != nil {
			return err
		}
	}
	if received != 0 && act.Type != "Create" {
		// The Case Actor acknowledges a recorded message (K).
		if err := s.reply(vocab.Acknowledge(s.c.CaseActor, act, act.Actor.ID(), s.c.ID, s)); err != nil {
			return err
		}
	}
	s.extendHistory(beforeVFD, beforePXA)
	if s.f != nil {
		s.react(histBefore)
	}
	return nil
}

// reply counts a Case Actor's reply to the sender of what it recorded or
// refused.
func (s *caseSim) reply(r *vocab.Activity) error {
	r.ID = s.newID(s.host, "activities")
	r.Published = s.now.Format(time.RFC3339)
	body, err := vocab.Marshal(r)
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	for _, to := range r.To.IDs() {
		s.send(s.host, to, len(body))
	}
	return nil
}

// sendInvite builds the Case Actor's Invite of an invitee on the owner's
// behalf (its id is the one the case derived, which the invitee's answer
// names) and sends it.
func (s *caseSim) sendInvite(inv cases.Invite) error {
	stub := &vocab.VulnerabilityCase{}
	stub.ID, stub.Type, stub.Summary = s.c.ID, vocab.TypeVulnerabilityCase, s.c.Name
	invitee := &vocab.Actor{}
	invitee.ID, invitee.Type = inv.Actor, "Organization"
	a := &vocab.Activity{}
	a.ID, a.Type = inv.Sent, "Invite"
	a.Actor = vocab.RefTo(s.c.CaseActor)
	a.Object = vocab.Inline(invitee)
	a.Target = vocab.Inline(stub)
	a.Context = vocab.RefTo(s.c.ID)
	a.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(inv.Actor)}}
	a.Published = s.now.Format(time.RFC3339)
	for _, r := range cvdstate.Roles() {
		if inv.Roles.Has(r) {
			a.Roles = append(a.Roles, r.String())
		}
	}
	body, err := vocab.Marshal(a)
	if err != nil {
		return fmt.Errorf("invite %s: %w", inv.Actor, err)
	}
	s.objects[a.ID] = a
	s.send(s.host, inv.Actor, len(body))
	return nil
}

// vendorVFD is the fix path of the vendor of the affected product, vfd
// while it takes no part in the case.
func (s *caseSim) vendorVFD() cvdstate.VFD {
	if s.c == nil || s.c.ID == "" {
		return cvdstate.VFDNone
	}
	if p := s.c.Participant(s.w.orgs[s.vendor].actor); p != nil {
		return p.VFD
	}
	return cvdstate.VFDNone
}

// extendHistory appends the case-state events an entry recorded. An
// exploit made public makes the public aware at once: when both come in
// one entry, X came first, as the case-state model has it (pX never
// persists, and its only way on is P).
func (s *caseSim) extendHistory(beforeVFD cvdstate.VFD, beforePXA cvdstate.PXA) {
	vfd := []cvdstate.CSEvent{cvdstate.EventV, cvdstate.EventF, cvdstate.EventD}
	for v := beforeVFD; v < s.vendorVFD(); v++ {
		s.history = append(s.history, vfd[v])
	}
	raised := s.c.PXA &^ beforePXA
	if raised&cvdstate.PXAExploit != 0 && raised&cvdstate.PXAPublic != 0 {
		s.history = append(s.history, cvdstate.EventX, cvdstate.EventP)
		raised &^= cvdstate.PXAExploit | cvdstate.PXAPublic
	}
	for _, e := range []struct {
		bit cvdstate.PXA
		ev  cvdstate.CSEvent
	}{{cvdstate.PXAPublic, cvdstate.EventP}, {cvdstate.PXAExploit, cvdstate.EventX}, {cvdstate.PXAAttacks, cvdstate.EventA}} {
		if raised&e.bit != 0 {
			s.history = append(s.history, e.ev)
		}
	}
}

// submitReport has the finder offer the report to the receiver (RS), which
// acknowledges it (RK).
func (s *caseSim) submitReport(receiver int) error {
	s.receiver = receiver
	rep := map[string]any{"type": vocab.TypeVulnerabilityReport, "name": fmt.Sprintf("Simulated vulnerability %d", s.n),
		"content": "A vulnerability found in a product of " + s.w.orgs[s.vendor].actor + "; the simulator's report."}
	act, body, err := s.build(s.finder, map[string]any{"type": "Offer", "to": []string{s.w.orgs[receiver].actor}, "object": rep})
	if err != nil {
		return err
	}
	s.offer = act
	s.report, _ = act.Object.Object.(*vocab.VulnerabilityReport)
	if s.report == nil {
		return fmt.Errorf("the offer of case %d carries no report", s.n)
	}
	s.objects[s.report.ID] = s.report
	s.send(s.finder, s.w.orgs[receiver].actor, len(body))
	return s.acknowledge(receiver, s.finder)
}

// acknowledge counts an RK from org to org: Read of the report's Offer.
func (s *caseSim) acknowledge(from, to int) error {
	read := &vocab.Activity{}
	read.ID, read.Type = s.newID(from, "activities"), "Read"
	read.Actor = vocab.RefTo(s.w.orgs[from].actor)
	read.Object = vocab.Inline(s.offer)
	read.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(s.w.orgs[to].actor)}}
	read.Published = s.now.Format(time.RFC3339)
	body, err := vocab.Marshal(read)
	if err != nil {
		return err
	}
	s.send(from, s.w.orgs[to].actor, len(body))
	return nil
}

// validate has the receiver validate the report (RV): the reporter is
// told and acknowledges, and the receiver's node opens the case, whose
// first two entries are its creation and the validation.
func (s *caseSim) validate() error {
	rv, body, err := s.build(s.receiver, map[string]any{"type": "Accept", "object": s.offer.ID, "to": []string{s.w.orgs[s.finder].actor}})
	if err != nil {
		return err
	}
	s.send(s.receiver, s.w.orgs[s.finder].actor, len(body))
	if err := s.acknowledge(s.finder, s.receiver); err != nil {
		return err
	}
	s.host = s.receiver
	s.c = &cases.Case{}
	create := s.creation()
	s.objects[create.ID] = create
	if err := s.record(create); err != nil {
		return fmt.Errorf("open case %d: %w", s.n, err)
	}
	return s.record(rv)
}

// creation builds the Case Actor's Create(VulnerabilityCase) for the
// report its receiver validated, as a node opens a case: the receiver owns
// it (aware of the vulnerability if it is a vendor), the finder takes part
// as finder and reporter, working on its report already, and no embargo is
// in force yet.
func (s *caseSim) creation() *vocab.Activity {
	recv := s.w.orgs[s.receiver]
	now := s.now.Truncate(time.Second)
	caseID := recv.base + "/cases/" + strconv.Itoa(s.n)
	caseActor := recv.base + "/actors/case-" + strconv.Itoa(s.n)
	ownerVFD := "vfd"
	if recv.roles.Has(cvdstate.Vendor) {
		ownerVFD = "Vfd" // receiving the report made the vendor aware
	}
	vc := &vocab.VulnerabilityCase{}
	vc.ID, vc.Type, vc.Name = caseID, vocab.TypeVulnerabilityCase, s.report.Name
	vc.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(recv.actor)}, Single: true}
	vc.Published = now.Format(time.RFC3339)
	vc.VulnerabilityReports = []vocab.Ref{vocab.Inline(s.report)}
	vc.CaseParticipants = []vocab.Ref{
		cases.ParticipantRef(caseID, recv.actor, recv.name, recv.roles|cvdstate.CaseOwner, "NO_EMBARGO", "RECEIVED", ownerVFD),
		cases.ParticipantRef(caseID, s.w.orgs[s.finder].actor, "", cvdstate.Finder|cvdstate.Reporter, "NO_EMBARGO", "ACCEPTED", "vfd"),
	}
	status := &vocab.CaseStatus{EMState: "NONE", PXAState: "pxa"}
	status.Type = vocab.TypeCaseStatus
	status.Context = vocab.RefTo(caseID)
	vc.CaseStatuses = []vocab.Ref{vocab.Inline(status)}
	vc.GenesisHash = ledger.GenesisHash(caseID, now, caseActor)
	create := vocab.CaseCreation(caseActor, vc, now)
	s.c.TailHash = vc.GenesisHash
	return create
}

// participantOf returns org's participant in the case, or nil.
func (s *caseSim) participantOf(org int) *cases.Participant {
	if s.c == nil || s.c.ID == "" {
		return nil
	}
	p := s.c.Participant(s.w.orgs[org].actor)
	if p == nil || p.Removed {
		return nil
	}
	return p
}

// daysUntil returns the days from now to t.
func (s *caseSim) daysUntil(t time.Time) float64 {
	return math.Round(t.Sub(s.now).Hours()/24*1000) / 1000
}
