package automation

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// point is one decision point that opened for a local actor.
type point struct {
	Point rules.Point
	// Key names the decision, so that it is taken once: the point, its
	// subject (report, invitation, proposal, case) and the actor.
	Key   string
	Actor Local
	// Env holds what the point knows beyond the case (sender, report,
	// proposal, invitation, suggestion, signal); the case is read when
	// the decision is taken.
	Env rules.Env
	// CaseID is the case the decision concerns; ReportID the report a
	// report_received decision is about (its case, once validated).
	CaseID   string
	ReportID string
	// Target holds the ids the actions refer to beyond the case.
	Target rules.Target
}

// cursorUpdate is a cursor a step moves once its decisions are taken.
type cursorUpdate struct {
	key   string
	value []byte
}

// inboxPoints reads local actor l's inbox from the newest entry back to
// the one the last step read (at most maxInboxScan), and returns the
// decision points of what is new, oldest first: reports received and
// invitations to a case. On the first read it only remembers where the
// inbox stands.
func (e *Engine) inboxPoints(ctx context.Context, l Local, skip bool) ([]point, *cursorUpdate, error) {
	var marker []byte
	if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		var err error
		marker, err = getState(tx, "inbox "+l.Name)
		return err
	}); err != nil {
		return nil, nil, err
	}
	var fresh []store.StoredActivity
	cursor, newest := "", ""
	// The first page is small: most steps find little or nothing new.
	size := 8
scan:
	for len(fresh) < maxInboxScan {
		page, next, err := e.cfg.DB.InboxPage(ctx, l.Name, cursor, size)
		size = 200
		if err != nil {
			return nil, nil, err
		}
		for _, a := range page {
			if newest == "" {
				newest = a.ID
			}
			if marker != nil && a.ID == string(marker) {
				break scan
			}
			fresh = append(fresh, a)
		}
		if next == "" || skip {
			break // without a policy only the newest entry matters
		}
		cursor = next
	}
	if marker == nil || skip {
		// The first read, or a step without a policy: what the inbox
		// holds already is not new ("-" stands for an inbox that was
		// empty).
		return nil, &cursorUpdate{key: "inbox " + l.Name, value: []byte(cmp.Or(newest, "-"))}, nil
	}
	if newest == "" || newest == string(marker) {
		return nil, nil, nil
	}
	update := &cursorUpdate{key: "inbox " + l.Name, value: []byte(newest)}
	var out []point
	for i := len(fresh) - 1; i >= 0; i-- {
		a := fresh[i]
		if !cases.Received(a, l.Name) {
			continue
		}
		doc, err := vocab.Parse(a.Body)
		if err != nil || doc.Activity() == nil {
			continue
		}
		act := doc.Activity()
		switch a.Semantic {
		case string(vocab.SubmitReport):
			rep, ok := act.Object.Object.(*vocab.VulnerabilityReport)
			if !ok || rep.ID == "" {
				continue
			}
			out = append(out, point{Point: rules.ReportReceived, Key: "report_received " + rep.ID + " " + l.Name, Actor: l,
				Env:      rules.Env{Sender: a.Sender, Report: rules.Report{ID: rep.ID, Name: rep.Name, Content: rep.Content, Reporter: a.Sender}},
				ReportID: rep.ID, Target: rules.Target{OfferID: act.ID, Reporter: a.Sender}})
		case string(vocab.InviteActorToCase):
			if act.Object.ID() != l.ID {
				continue
			}
			caseID := act.Target.ID()
			out = append(out, point{Point: rules.InvitationReceived, Key: "invitation_received " + act.ID + " " + l.Name, Actor: l,
				Env:    rules.Env{Sender: act.Actor.ID(), Invitation: rules.Invitation{ID: act.ID, By: act.Actor.ID(), Host: hostOf(act.Actor.ID()), Case: caseID, Roles: act.Roles}},
				CaseID: caseID, Target: rules.Target{CaseID: caseID, InvitationID: act.ID}})
		}
	}
	return out, update, nil
}

// feedPoints reads the change feed from where the last step stopped (at
// most maxFeedPerStep events) and returns the decision points its events
// open: for each case entry, the points the case now holds open for each
// local participant; for a passed embargo end, embargo_ended; for an
// intelligence signal, its point.
func (e *Engine) feedPoints(ctx context.Context, skip bool) ([]point, *cursorUpdate, error) {
	var from uint64
	first := false
	if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		v, err := getState(tx, "feed")
		if err != nil {
			return err
		}
		first = v == nil
		from, err = feedCursor(v)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if first || skip {
		// The first read, or a step without a policy: what the feed
		// holds already is not new.
		last, err := e.cfg.DB.LastEventSeq(ctx)
		if err != nil {
			return nil, nil, err
		}
		return nil, &cursorUpdate{key: "feed", value: binary.BigEndian.AppendUint64(nil, last)}, nil
	}
	var out []point
	seen := map[string]bool{}
	cursor := from
	for read := 0; read < maxFeedPerStep; {
		events, err := e.cfg.DB.EventsAfter(ctx, cursor, feedBatch)
		if err != nil {
			return nil, nil, err
		}
		for _, ev := range events {
			cursor = ev.Seq
			ps, err := e.eventPoints(ctx, ev)
			if err != nil {
				return nil, nil, err
			}
			for _, p := range ps {
				if !seen[p.Key] {
					seen[p.Key] = true
					out = append(out, p)
				}
			}
		}
		read += len(events)
		if len(events) < feedBatch {
			break
		}
	}
	if cursor == from {
		return out, nil, nil
	}
	return out, &cursorUpdate{key: "feed", value: binary.BigEndian.AppendUint64(nil, cursor)}, nil
}

// eventPoints returns the decision points one change-feed event opens.
func (e *Engine) eventPoints(ctx context.Context, ev store.Event) ([]point, error) {
	if ev.CaseID == "" {
		return nil, nil // a report's step before its case: the inbox tells those
	}
	var c *cases.Case
	if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		var err error
		c, err = cases.Load(tx, ev.CaseID)
		return err
	}); err != nil || c == nil || c.ID == "" || c.Closed() {
		return nil, err
	}
	var out []point
	locals := e.localParticipants(c)
	switch {
	case strings.HasPrefix(ev.EventType, "intel_"):
		var st struct {
			Kind, ID, MatchedID, Source, Detail string
		}
		_ = json.Unmarshal(ev.State, &st)
		for _, l := range locals {
			out = append(out, point{Point: rules.Point(ev.EventType), Key: ev.EventType + " " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID,
				Env: rules.Env{Intel: rules.Intel{Kind: st.Kind, CVE: st.MatchedID, Source: st.Source, Detail: st.Detail}}})
		}
		return out, nil
	case ev.EventType == deadline.EventPassed:
		var st deadline.NoticeState
		if json.Unmarshal(ev.State, &st) != nil {
			return nil, nil
		}
		if st.Kind == cases.ClockEmbargoRSVP {
			// A participant that let its RSVP deadline pass has answered
			// (declined), with no entry to say so: the owner's own
			// proposal may now come up for it (othersAnswered).
			return e.casePoints(c, locals), nil
		}
		if st.Kind != cases.ClockEmbargoEnd {
			return nil, nil
		}
		for _, l := range locals {
			out = append(out, point{Point: rules.EmbargoEnded, Key: "embargo_ended " + c.ID + " " + st.Due.UTC().String() + " " + l.Name, Actor: l, CaseID: c.ID})
		}
		return out, nil
	case strings.HasPrefix(ev.EventType, "deadline_") || ev.EventType == askEvent:
		return nil, nil
	}
	return e.casePoints(c, locals), nil
}

// localParticipants returns the node's actors that work on case c.
func (e *Engine) localParticipants(c *cases.Case) []Local {
	var out []Local
	for _, l := range e.cfg.Locals() {
		if p := c.Participant(l.ID); p != nil && p.Engaged() {
			out = append(out, l)
		}
	}
	return out
}

// othersAnswered reports whether every working participant of c but actor
// answered the open embargo proposal by now: accepted it (SIGNATORY) or
// declined, by a Reject or by letting its RSVP deadline pass.
func othersAnswered(c *cases.Case, actor string, now time.Time) bool {
	for _, p := range c.Participants {
		if pec := c.ConsentAt(p, now); p.Actor != actor && p.Engaged() && pec != cvdstate.PECSignatory && pec != cvdstate.PECDeclined {
			return false
		}
	}
	return true
}

// casePoints returns the points case c holds open for its local
// participants: its report valid and its work engaged, embargo proposals
// by others, a vendor's ready or deployed fix, its advisory published,
// the public aware, and suggestions to its owner.
func (e *Engine) casePoints(c *cases.Case, locals []Local) []point {
	now := e.cfg.Now()
	var out []point
	for _, l := range locals {
		if p := c.Participant(l.ID); p != nil {
			switch p.RM {
			case cvdstate.RMAccepted:
				out = append(out, point{Point: rules.ReportValidated, Key: "report_validated " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID},
					point{Point: rules.CaseEngaged, Key: "case_engaged " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID})
			case cvdstate.RMValid, cvdstate.RMDeferred:
				out = append(out, point{Point: rules.ReportValidated, Key: "report_validated " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID})
			}
		}
		for _, pr := range c.Proposals {
			if pr.Terms.Proposer == l.ID && (l.ID != c.Owner || !othersAnswered(c, l.ID, now)) {
				// A proposal is answered by the others; the owner's own
				// comes up for it to put in force once they all have.
				continue
			}
			if pr.Terms.Proposer != l.ID && !pr.RSVPBy.IsZero() && now.After(pr.RSVPBy) {
				continue // too late to answer: the Case Actor refuses an Accept
			}
			prop := rules.Proposal{ID: pr.InviteID, End: pr.Terms.End, Proposer: pr.Terms.Proposer, Revision: c.EM == cvdstate.EMRevise}
			out = append(out, point{Point: rules.EmbargoProposed, Key: "embargo_proposed " + c.ID + " " + pr.InviteID + " " + l.Name, Actor: l, CaseID: c.ID,
				Env: rules.Env{Sender: pr.Terms.Proposer, Proposal: prop}, Target: rules.Target{ProposalID: pr.InviteID}})
		}
		for _, p := range c.Participants {
			if p.Removed || !p.Roles.Has(cvdstate.Vendor) {
				continue
			}
			if p.VFD >= cvdstate.VFDFixReady {
				out = append(out, point{Point: rules.FixReady, Key: "fix_ready " + c.ID + " " + p.Actor + " " + l.Name, Actor: l, CaseID: c.ID, Env: rules.Env{Sender: p.Actor}})
			}
			if p.VFD >= cvdstate.VFDDeployed {
				out = append(out, point{Point: rules.FixDeployed, Key: "fix_deployed " + c.ID + " " + p.Actor + " " + l.Name, Actor: l, CaseID: c.ID, Env: rules.Env{Sender: p.Actor}})
			}
		}
		if c.Advisory != nil && len(c.Advisory.Revisions) > 0 {
			out = append(out, point{Point: rules.AdvisoryPublished, Key: "advisory_published " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID})
		}
		if c.PXA&cvdstate.PXAPublic != 0 {
			out = append(out, point{Point: rules.Publication, Key: "publication " + c.ID + " " + l.Name, Actor: l, CaseID: c.ID})
		}
		if c.Owner == l.ID {
			for _, s := range c.Suggestions {
				out = append(out, point{Point: rules.SuggestionReceived, Key: "suggestion_received " + c.ID + " " + s.ID + " " + l.Name, Actor: l, CaseID: c.ID,
					Env:    rules.Env{Sender: s.By, Suggestion: rules.Suggestion{ID: s.ID, Actor: s.Actor, By: s.By, Roles: s.Roles.Names()}},
					Target: rules.Target{SuggestionID: s.ID}})
			}
		}
	}
	return slices.Clip(out)
}

// hostOf returns the host (and port) of an actor id.
func hostOf(id string) string {
	if u, err := url.Parse(id); err == nil {
		return u.Host
	}
	return ""
}
