package cases

import (
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
	// OfferID is the id of the Offer that submitted the report (for a
	// receiver, the one it received first).
	OfferID string `json:"offerId"`
	// Reporter is, for a receiver, the actor whose Offer it received first:
	// the reporter of the case that validating the report opens. Records
	// written before it was kept have it empty (see reporterOf).
	Reporter string `json:"reporter,omitempty"`
	// CaseID is the case the report belongs to, once its receiver opened
	// one by validating it.
	CaseID    string    `json:"caseId,omitempty"`
	Name      string    `json:"name,omitempty"` // the report's title
	UpdatedAt time.Time `json:"updatedAt"`
}

// reportBucket is the case bucket that holds every local actor's record of
// a report.
func reportBucket(reportID string) string { return "report " + reportID }

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

func writeReport(tx *store.Tx, r ReportRecord) error {
	b, err := tx.Case(reportBucket(r.ReportID))
	if err != nil {
		return err
	}
	v, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("report %s of %s: encode record: %w", r.ReportID, r.Actor, err)
	}
	if err := b.Put([]byte(r.Actor), v); err != nil {
		return err
	}
	if _, err = indexShortID(tx, r.ReportID, KindReport); err != nil { // lookup.go
		return err
	}
	return indexReportClocks(tx, r) // deadlines.go
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
	err = b.ForEach(func(k, v []byte) error {
		var r ReportRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("report %s of %s: decode record: %w", reportID, k, err)
		}
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
