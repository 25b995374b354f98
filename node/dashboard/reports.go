package dashboard

import (
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// An analyst decides on a report's text, so the list of reports waiting
// for a decision shows it (clipped, the whole text being a click away once
// the case opens) with its reporter and the time it arrived, and a case
// page shows the full text of each of the case's reports. The text comes
// from the Offer that carried the report, as this node stored it.

const (
	// listTextBytes bounds the text of a report in the list of reports
	// waiting for a decision.
	listTextBytes = 2000
	// maxPendingShown bounds the reports the list shows; the rest are
	// counted.
	maxPendingShown = 50
	// maxCaseReports bounds the reports a case page shows.
	maxCaseReports = 20
)

// dashboardReport is a report as the dashboard shows it.
type dashboardReport struct {
	ID, Title, Text string
	// Clipped is true when Text is the start of a longer text of Size
	// bytes.
	Clipped bool
	Size    int
	// Reporter is the actor that offered the report.
	Reporter string
	// At is when this node received the Offer, or when its actor sent it
	// (Sent); zero when the node holds no Offer of it.
	At   time.Time
	Sent bool
	// Actor is the local actor that keeps the record, and RM its state.
	Actor string
	RM    cvdstate.RMState
	// Decisions are the receiver's decisions the protocol allows now, of
	// validate, invalidate and close.
	Decisions []string
}

// reportDecisions are the list's decisions and the RM event of each.
var reportDecisions = []struct {
	name  string
	event cvdstate.RMEvent
}{{"validate", cvdstate.RMValidate}, {"invalidate", cvdstate.RMInvalidate}, {"close", cvdstate.RMClose}}

// viewReport reads what the record rec of a local actor says of its
// report, and the report itself (cases.DetailOf).
func viewReport(tx *store.ReadTx, rec cases.ReportRecord) dashboardReport {
	d := cases.DetailOf(tx, rec)
	v := dashboardReport{ID: rec.ReportID, Title: rec.Name, Reporter: d.Reporter, At: d.Received, Actor: rec.Actor, RM: rec.RM, Sent: rec.Role == cases.Reporter}
	for _, dec := range reportDecisions {
		// The outbox applies the same RM step to the record (Engine.ApplyOutbound).
		if _, _, err := rec.RM.Apply(dec.event); err == nil && rec.Role == cases.Receiver {
			v.Decisions = append(v.Decisions, dec.name)
		}
	}
	if d.Report != nil {
		v.fill(d.Report)
	}
	return v
}

// fill takes the title and text of rep.
func (v *dashboardReport) fill(rep *vocab.VulnerabilityReport) {
	if v.Title == "" {
		v.Title = rep.Name
	}
	v.Text, v.Size = rep.Content, len(rep.Content)
	if v.Reporter == "" && len(rep.AttributedTo.Items) > 0 {
		v.Reporter = rep.AttributedTo.Items[0].ID()
	}
}

// clip shortens the text to n bytes for a list.
func (v dashboardReport) clip(n int) dashboardReport {
	if len(v.Text) > n {
		v.Text, v.Clipped = problem.Clip(v.Text, n), true
	}
	return v
}

// pendingViews are the dashboard's views of reports awaiting a decision
// (cases.PendingReports: RM RECEIVED or INVALID, no case yet), their text
// clipped for the list.
func pendingViews(tx *store.ReadTx, recs []cases.ReportRecord) []dashboardReport {
	out := make([]dashboardReport, 0, len(recs))
	cases.ReadAheadDetails(tx, recs)
	for _, rep := range recs {
		out = append(out, viewReport(tx, rep).clip(listTextBytes))
	}
	return out
}

// caseReports returns the reports of case c, with their text: from the
// record a local actor keeps, or else from the case's ledger.
func caseReports(tx *store.ReadTx, c *cases.Case) []dashboardReport {
	var out []dashboardReport
	resolver := cases.NewResolver(tx)
	for _, id := range c.Reports {
		if len(out) == maxCaseReports {
			break
		}
		v, found := dashboardReport{ID: id}, false
		locals, _, err := cases.ReportParties(tx, id)
		if err == nil {
			for _, name := range locals {
				if rec, ok, err := cases.Report(tx, id, name); err == nil && ok {
					v, found = viewReport(tx, rec), true
					break
				}
			}
		}
		if !found {
			if rep, ok := resolver.Resolve(id); ok {
				if r, ok := rep.(*vocab.VulnerabilityReport); ok {
					v.fill(r)
				}
			}
		}
		out = append(out, v)
	}
	return out
}
