package cases

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Role is the part a local actor plays for a report.
type Role string

// The roles of a report record.
const (
	Reporter Role = "reporter" // the local actor submitted the report
	Receiver Role = "receiver" // the local actor received it
)

// ReportRecord is one local actor's state for one report.
type ReportRecord struct {
	ReportID string `json:"reportId"`
	Actor    string `json:"actor"` // local actor name
	Role     Role   `json:"role"`
	// RM is the local actor's own Report Management state.
	RM cvdstate.RMState `json:"rmState"`
	// Peers maps each other party's actor id to this node's model of its
	// RM state: the receivers of a report the actor submitted, or the
	// reporter of a report it received.
	Peers map[string]cvdstate.RMState `json:"peers"`
	// PeerVFD is, for a reporter, what the receivers said of their
	// awareness of the vulnerability (CV), by actor id.
	PeerVFD map[string]cvdstate.VFD `json:"peerVfd,omitempty"`
	// OfferID is the id of the Offer that submitted the report (for a
	// receiver, the one it received first).
	OfferID string `json:"offerId"`
	// Reporter is, for a receiver, the actor whose Offer it received first:
	// the reporter of the case that validating the report opens. Records
	// written before it was kept have it empty (see reporterOf).
	Reporter string `json:"reporter,omitempty"`
	// CaseID is the case the report belongs to, once its receiver opened
	// one by validating it or added it to one (a report about the same
	// vulnerability as that case's).
	CaseID string `json:"caseId,omitempty"`
	// DuplicateOf is the case a report was closed as a duplicate of.
	DuplicateOf string    `json:"duplicateOf,omitempty"`
	Name        string    `json:"name,omitempty"` // the report's title
	UpdatedAt   time.Time `json:"updatedAt"`
	// ReceivedAt is when a receiver's record was made: the report's place
	// in the index of reports awaiting a decision (pending.go). It never
	// changes. Records made before it was kept take their UpdatedAt when
	// the index is moved to it (MigratePendingReports).
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
}

// reportBucket is the case bucket that holds every local actor's record of
// a report, under the actor's name, and the report's running deadline
// clocks (keyReportClocks, deadlines.go).
func reportBucket(reportID string) string { return "report " + reportID }

// eachRecord calls fn with each local actor's record in b, the bucket of
// report reportID, in actor name order.
func eachRecord(b *store.CaseBucket, reportID string, fn func(ReportRecord) error) error {
	return b.ForEach(func(k, v []byte) error {
		if bytes.Equal(k, keyReportClocks) {
			return nil
		}
		var r ReportRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("report %s of %s: decode record: %w", reportID, k, err)
		}
		return fn(r)
	})
}

func readReport(tx *store.ReadTx, reportID, actorName string) (ReportRecord, bool, error) {
	b, err := tx.Case(reportBucket(reportID))
	if errors.Is(err, store.ErrNotFound) {
		return ReportRecord{}, false, nil
	}
	if err != nil {
		return ReportRecord{}, false, err
	}
	v := b.Get([]byte(actorName))
	if v == nil {
		return ReportRecord{}, false, nil
	}
	var r ReportRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return ReportRecord{}, false, fmt.Errorf("report %s of %s: decode record: %w", reportID, actorName, err)
	}
	return r, true, nil
}

// writeReport stores a local actor's record of a report and keeps the
// indexes that follow records: short ids, reports awaiting a decision and
// deadline clocks.
func writeReport(tx *store.Tx, r ReportRecord) error { return writeRecord(tx, r, false) }

// writeNewReport is writeReport for a record that readReport found absent
// in this transaction: no key of it can be in the index of reports
// awaiting a decision, so that index is not read for it (on PostgreSQL, a
// request less per received report while the writer lock is held).
func writeNewReport(tx *store.Tx, r ReportRecord) error { return writeRecord(tx, r, true) }

func writeRecord(tx *store.Tx, r ReportRecord, isNew bool) error {
	if _, err := putRecord(tx, r); err != nil {
		return err
	}
	if _, err := indexShortID(tx, r.ReportID, KindReport); err != nil { // lookup.go
		return err
	}
	if err := indexPending(tx, r, isNew); err != nil { // pending.go
		return err
	}
	return indexReportClocks(tx, r) // deadlines.go
}

// putRecord stores r in its report's bucket and returns the bucket; unlike
// writeReport it updates no index.
func putRecord(tx *store.Tx, r ReportRecord) (*store.CaseBucket, error) {
	b, err := tx.Case(reportBucket(r.ReportID))
	if err != nil {
		return nil, err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("report %s of %s: encode record: %w", r.ReportID, r.Actor, err)
	}
	return b, b.Put([]byte(r.Actor), v)
}

// InboundReads names what ApplyInbound reads first for a, received from
// sender, as far as a shows it before anything is read: for the offer of a
// report carried inline, the report's namespace, the key of its short id
// and the delivery lane of its acknowledgement to sender. The inbox hands
// them to store.Inbound.ReadAhead, so that on PostgreSQL a batch of
// received reports reads them in two requests instead of three per report
// while the writer lock is held. Anything else names nothing.
func InboundReads(a *vocab.Activity, sender string) []store.ReadRef {
	if a == nil || a.Type != "Offer" {
		return nil
	}
	rep, ok := a.Object.Object.(*vocab.VulnerabilityReport)
	if !ok || rep.ID == "" {
		return nil
	}
	return []store.ReadRef{store.ReadCase(reportBucket(rep.ID)), store.ReadCaseKey(shortIDs, shortKey(rep.ID)),
		store.ReadDeliveryLane(sender, rep.ID)}
}

// Report returns the record that local actor actorName keeps for a report.
func Report(tx *store.ReadTx, reportID, actorName string) (ReportRecord, bool, error) {
	return readReport(tx, reportID, actorName)
}

// offeredReport returns the report an Offer(VulnerabilityReport) carries.
// Classification has already established the shape; the report must be
// inline or resolvable, and it must have an id to be tracked.
func offeredReport(offer *vocab.Activity, r vocab.Resolver) (*vocab.VulnerabilityReport, error) {
	obj := offer.Object.Object
	if obj == nil && offer.Object.IRI != "" && r != nil {
		obj, _ = r.Resolve(offer.Object.IRI)
	}
	rep, ok := obj.(*vocab.VulnerabilityReport)
	if !ok {
		return nil, problem.Unprocessable("the offer %s does not carry a VulnerabilityReport", offer.ID)
	}
	if rep.ID == "" {
		return nil, problem.Unprocessable("the report offered in %s has no id", offer.ID)
	}
	return rep, nil
}

// answeredOffer returns the Offer(VulnerabilityReport) that an Accept,
// TentativeReject, Reject or Read answers, and the report inside it. The
// Offer may be inline or a reference the resolver knows.
func answeredOffer(a *vocab.Activity, r vocab.Resolver) (*vocab.Activity, *vocab.VulnerabilityReport, error) {
	obj := a.Object.Object
	if obj == nil && a.Object.IRI != "" && r != nil {
		obj, _ = r.Resolve(a.Object.IRI)
	}
	// Read(Report) is an equivalent form of the acknowledgement that the
	// reference implementation itself emits.
	if rep, ok := obj.(*vocab.VulnerabilityReport); ok && rep.ID != "" {
		return nil, rep, nil
	}
	offer, ok := obj.(*vocab.Activity)
	if !ok || offer.Type != "Offer" {
		return nil, nil, problem.Unprocessable("%s %s does not answer an Offer of a report", a.Type, a.ID)
	}
	rep, err := offeredReport(offer, r)
	if err != nil {
		return nil, nil, err
	}
	return offer, rep, nil
}

// offeredEmbargo returns the embargo an Offer of a report proposes with
// it (RS|EP: an EmbargoEvent as the Offer's instrument), nil when it
// proposes none. It refuses (422) an instrument that is no embargo, and
// terms that are malformed, already over at now or longer than limit (the
// node's --max-embargo): the report is offered under them, so the offer is
// bad input as a whole.
func offeredEmbargo(offer *vocab.Activity, now time.Time, limit time.Duration) (*Embargo, error) {
	if offer == nil || offer.Instrument.IsZero() {
		return nil, nil
	}
	ev, ok := offer.Instrument.Object.(*vocab.EmbargoEvent)
	if !ok {
		return nil, problem.Unprocessable("the offer %s names an instrument that is no inline EmbargoEvent; a report is offered with an embargo proposal as its instrument", offer.ID)
	}
	end, err := time.Parse(time.RFC3339Nano, ev.EndTime)
	if err != nil {
		return nil, problem.Unprocessable("the embargo proposed with the report needs an endTime with a date, time and zone: %q", ev.EndTime)
	}
	if !end.After(now) {
		return nil, problem.Unprocessable("the embargo proposed with the report would end at %s, which has passed", end.UTC().Format(time.RFC3339))
	}
	start := parseTime(ev.StartTime, now)
	if !end.After(start) {
		return nil, problem.Unprocessable("the embargo proposed with the report ends (%s) before it starts (%s)", end.UTC().Format(time.RFC3339), start.Format(time.RFC3339))
	}
	if err := embargoLength("the embargo proposed with the report", end, now, limit, "this node"); err != nil {
		return nil, err
	}
	terms := Embargo{ID: ev.ID, Start: start, End: end.UTC(), Proposer: offer.Actor.ID()}
	return &terms, nil
}

// reportDecision is what a receiver's decision about a report records:
// the RM event, the state it leads to, and the message that announces it.
type reportDecision struct {
	event   cvdstate.RMEvent
	target  cvdstate.RMState
	message cvdstate.MessageType
}

// decisionOf returns the decision a report semantic carries, and false for
// a semantic that is no such decision.
func decisionOf(s vocab.Semantic) (reportDecision, bool) {
	switch s {
	case vocab.ValidateReport:
		return reportDecision{cvdstate.RMValidate, cvdstate.RMValid, cvdstate.RV}, true
	case vocab.InvalidateReport:
		return reportDecision{cvdstate.RMInvalidate, cvdstate.RMInvalid, cvdstate.RI}, true
	case vocab.CloseReport:
		return reportDecision{cvdstate.RMClose, cvdstate.RMClosed, cvdstate.RC}, true
	}
	return reportDecision{}, false
}

// decisionFor returns the decision a report semantic carries; the zero
// decision for one that is none.
func decisionFor(s vocab.Semantic) reportDecision {
	d, _ := decisionOf(s)
	return d
}

// stateConflict turns a refused RM transition into the 409 the outbox
// answers with.
func stateConflict(actorName, reportID string, err error) error {
	var te *cvdstate.TransitionError
	if errors.As(err, &te) || errors.Is(err, cvdstate.ErrNotAllowed) {
		// The transition error is the whole reason; it is not kept as a
		// cause so that the log does not repeat it.
		return problem.Conflict("%s cannot do that for report %s: %v", actorName, reportID, err)
	}
	return err
}

// ReportParties returns who may read a report: the local actors that track
// it (by name) and the peers they exchanged it with (by actor id).
func ReportParties(tx *store.ReadTx, reportID string) (locals []string, peers []string, err error) {
	b, err := tx.Case(reportBucket(reportID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	err = eachRecord(b, reportID, func(r ReportRecord) error {
		locals = append(locals, r.Actor)
		for p := range r.Peers {
			peers = append(peers, p)
		}
		return nil
	})
	return locals, peers, err
}

// reporterOf returns the reporter of a report a local actor received: the
// recorded Reporter, or for a record written before it was kept, the
// sender of the Offer it received first, or else the first of its peers in
// id order, so that the answer never depends on map iteration.
func reporterOf(tx *store.ReadTx, rec ReportRecord) string {
	if rec.Reporter != "" {
		return rec.Reporter
	}
	if a, err := tx.Activity(rec.OfferID); err == nil && a.Direction == store.DirectionInbound {
		if _, ok := rec.Peers[a.Sender]; ok {
			return a.Sender
		}
	}
	first := ""
	for peer := range rec.Peers {
		if first == "" || peer < first {
			first = peer
		}
	}
	return first
}

// addReportToCase checks and records a case owner's adding of a report it
// received to a case that exists (Add(VulnerabilityReport)[target=Case]):
// a report about the vulnerability of that case is handled there, and
// validating it later opens no other case. Adding the report validates it
// (a duplicate report is a valid one; the protocol advises against
// marking it invalid).
func (e *Engine) addReportToCase(tx *store.Tx, from LocalActor, m Message) error {
	repID := m.Activity.Object.ID()
	rec, ok, err := readReport(&tx.ReadTx, repID, from.Name)
	if err != nil {
		return err
	}
	if !ok || rec.Role != Receiver {
		return problem.Conflict("%s has not received report %s, so it cannot add it to a case", from.Name, repID)
	}
	caseID := e.caseOf(&tx.ReadTx, m.Activity)
	switch {
	case rec.CaseID != "":
		return problem.Conflict("report %s is already in case %s", repID, rec.CaseID)
	case rec.RM == cvdstate.RMClosed:
		return problem.Conflict("%s closed report %s; a closed report joins no case", from.Name, repID)
	case caseID == "":
		return problem.Unprocessable("the report is added to no case this node knows (target)")
	}
	if err := e.checkCase(tx, from, caseID, m); err != nil {
		return err
	}
	if rec.RM == cvdstate.RMReceived || rec.RM == cvdstate.RMInvalid {
		rec.RM = cvdstate.RMValid
	}
	rec.CaseID, rec.UpdatedAt = caseID, e.now().UTC()
	if err := writeReport(tx, rec); err != nil {
		return err
	}
	return reportEvent(tx, rec, EventReportAddedToCase, from.ID, caseID, rec.UpdatedAt)
}

// receiveReportAdded records, for the reporter of a report, that the
// receiver added it to a case (Add(VulnerabilityReport)[target=Case],
// addressed to it as well as to the Case Actor): the receiver found it
// valid and handles it in that case.
func (e *Engine) receiveReportAdded(tx *store.Tx, to LocalActor, sender string, m Message) error {
	repID := m.Activity.Object.ID()
	rec, ok, err := readReport(&tx.ReadTx, repID, to.Name)
	if err != nil {
		return err
	}
	if !ok {
		return problem.Unprocessable("%s adds report %s to a case, but %s never sent or received it", sender, repID, to.Name)
	}
	peer, isPeer := rec.Peers[sender]
	if !isPeer {
		return problem.Forbidden("%s is not a party to report %s of %s", sender, repID, to.Name)
	}
	if peer == cvdstate.RMStart || peer == cvdstate.RMReceived || peer == cvdstate.RMInvalid {
		rec.Peers[sender] = cvdstate.RMValid
	}
	rec.CaseID = firstNonEmpty(m.Activity.Target.ID(), m.Activity.Context.ID())
	rec.UpdatedAt = e.now().UTC()
	if err := writeReport(tx, rec); err != nil {
		return err
	}
	return reportEvent(tx, rec, EventReportAddedToCase, sender, "", rec.UpdatedAt)
}

// closeAsDuplicate closes a report as a duplicate of a case this node
// holds (RC, Reject of its Offer with the case as result). A duplicate is
// valid and is not worked on apart, so the receiver's RM goes through V
// and D to C, as the RM model allows, in one message; the reporter's node
// follows the state the message names.
func (e *Engine) closeAsDuplicate(tx *store.Tx, from LocalActor, rec ReportRecord, caseID string, m Message) error {
	if rec.Role != Receiver {
		return problem.Conflict("%s submitted report %s; only a receiver closes it as a duplicate", from.Name, rec.ReportID)
	}
	if rec.CaseID != "" {
		return problem.Conflict("report %s is in case %s; it is no duplicate of another", rec.ReportID, rec.CaseID)
	}
	c, err := loadCase(&tx.ReadTx, caseID)
	if err != nil {
		return err
	}
	if c == nil {
		return problem.Unprocessable("report %s is closed as a duplicate of %s, which is no case this node holds", rec.ReportID, caseID)
	}
	var path []cvdstate.RMEvent
	switch rec.RM {
	case cvdstate.RMReceived:
		path = []cvdstate.RMEvent{cvdstate.RMValidate, cvdstate.RMDefer, cvdstate.RMClose}
	case cvdstate.RMValid:
		path = []cvdstate.RMEvent{cvdstate.RMDefer, cvdstate.RMClose}
	default:
		path = []cvdstate.RMEvent{cvdstate.RMClose}
	}
	for _, ev := range path {
		next, _, err := rec.RM.Apply(ev)
		if err != nil {
			return stateConflict(from.Name, rec.ReportID, err)
		}
		rec.RM = next
	}
	rec.DuplicateOf, rec.UpdatedAt = caseID, e.now().UTC()
	if err := writeReport(tx, rec); err != nil {
		return err
	}
	return reportEvent(tx, rec, EventReportClosed, from.ID, "", rec.UpdatedAt)
}

// decisionEvent names the event of a receiver's RM step on a report.
func decisionEvent(ev cvdstate.RMEvent) string {
	switch ev {
	case cvdstate.RMValidate:
		return EventReportValidated
	case cvdstate.RMInvalidate:
		return EventReportInvalidated
	}
	return EventReportClosed
}

// The events of a report in the node's change feed (store.Event with
// Report set), one for each step of its Report Management, whoever took
// it, so that a ticket can follow a report from its arrival: before a
// case exists, and as it joins one (the case's own entries follow).
const (
	EventReportSubmitted   = "report_submitted"     // a local actor offered it (RS)
	EventReportReceived    = "report_received"      // its receiver has it (RS received, or its RK)
	EventReportValidated   = "report_validated"     // RV; the event names the case it opened
	EventReportInvalidated = "report_invalidated"   // RI
	EventReportClosed      = "report_closed"        // RC, with the case it duplicates if any
	EventReportAddedToCase = "report_added_to_case" // added to a case that exists
)

// ReportEventState is what an event of a report says of it after the
// step: the local actor's role and RM state, its model of the other
// parties', and the case the report is in or duplicates. No report text.
type ReportEventState struct {
	Local       string                      `json:"local"`
	Role        Role                        `json:"role"`
	RM          string                      `json:"rm"`
	Peers       map[string]cvdstate.RMState `json:"peers,omitempty"`
	Case        string                      `json:"case,omitempty"`
	DuplicateOf string                      `json:"duplicateOf,omitempty"`
}

// reportEvent adds a step of report rec, taken by actor, to the change
// feed, in the transaction that records it; caseID is the case the step
// concerns ("" for rec's).
func reportEvent(tx *store.Tx, rec ReportRecord, event, actor, caseID string, at time.Time) error {
	if caseID == "" {
		caseID = rec.CaseID
	}
	st := ReportEventState{Local: rec.Actor, Role: rec.Role, RM: rec.RM.String(), Peers: rec.Peers, Case: caseID, DuplicateOf: rec.DuplicateOf}
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("report %s: encode the event: %w", rec.ReportID, err)
	}
	return tx.AppendEvent(store.Event{Report: rec.ReportID, CaseID: caseID, EventType: event, Actor: actor, Time: at, State: raw})
}
