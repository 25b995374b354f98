package cases

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// ReportsPage returns the records of at most limit reports whose ids sort
// after after, in report id order, and the cursor of the next page (""
// on the last). With actor set, only that local actor's records are
// returned, so a page may hold fewer than limit.
func ReportsPage(tx *store.ReadTx, after string, limit int, actor string) ([]ReportRecord, string, error) {
	var out []ReportRecord
	next, err := eachReport(tx, after, limit, func(recs []ReportRecord) {
		for _, r := range recs {
			if actor == "" || r.Actor == actor {
				out = append(out, r)
			}
		}
	})
	return out, next, err
}

// eachReport calls fn with the records of each report whose id sorts
// after after, in id order, at most limit reports (all when limit ≤ 0),
// and returns the id of the last one when more follow. It takes the
// reports' names a window at a time and reads their records together
// (store.ReadTx.ReadAheadCaseContents), so that on PostgreSQL a page of
// reports costs a few requests, not one or two per report.
func eachReport(tx *store.ReadTx, after string, limit int, fn func([]ReportRecord)) (string, error) {
	prefix := reportBucket("")
	seen, last := 0, ""
	for {
		want := reportWindow
		if limit > 0 {
			want = min(want, limit-seen)
		}
		// One name more than wanted says whether more follow.
		var names []string
		err := tx.CasesAfterN(reportBucket(after), want+1, func(id string) (bool, error) {
			if !strings.HasPrefix(id, prefix) || len(names) == want+1 {
				return false, nil
			}
			names = append(names, id)
			return true, nil
		})
		if err != nil {
			return "", err
		}
		more := len(names) > want
		names = names[:min(len(names), want)]
		tx.ReadAheadCaseContents(names)
		for _, name := range names {
			recs, err := ReportRecords(tx, strings.TrimPrefix(name, prefix))
			if err != nil {
				return "", err
			}
			fn(recs)
			seen, last = seen+1, strings.TrimPrefix(name, prefix)
		}
		switch {
		case !more:
			return "", nil
		case limit > 0 && seen == limit:
			return last, nil
		}
		after = last
	}
}

// reportWindow is how many reports eachReport reads at once.
const reportWindow = 256

// ReportRecords returns every local actor's record of one report, none
// when no local actor keeps one.
func ReportRecords(tx *store.ReadTx, reportID string) ([]ReportRecord, error) {
	b, err := tx.Case(reportBucket(reportID))
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var recs []ReportRecord
	err = eachRecord(b, reportID, func(r ReportRecord) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// ReportDetail is what a client is shown of one local actor's record of a
// report beyond the record: who reported it (for the reporter's own
// record, the local actor whose Offer submitted it), when the Offer
// arrived (or, for the reporter, was sent), and the report itself.
type ReportDetail struct {
	Reporter string
	Received time.Time                  // zero when the Offer is not stored
	Report   *vocab.VulnerabilityReport // nil when the node holds no copy
}

// ReadAheadDetails reads what DetailOf reads of each of recs (the Offers
// that carried them) together, where that saves round trips (PostgreSQL):
// a list of reports calls it before DetailOf for each.
func ReadAheadDetails(tx *store.ReadTx, recs []ReportRecord) {
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.OfferID)
	}
	tx.ReadAheadActivities(ids)
}

// DetailOf reads the detail of rec from the Offer that carried the report,
// and, when the Offer named the report only by its id or is not stored,
// from the copy of the report the node holds. The dashboard and the API
// both show reports through it.
func DetailOf(tx *store.ReadTx, rec ReportRecord) ReportDetail {
	d := ReportDetail{}
	if rec.Role != Reporter {
		d.Reporter = reporterOf(tx, rec)
	}
	if a, err := tx.Activity(rec.OfferID); err == nil {
		d.Received = a.Time
		if doc, err := vocab.Parse(a.Body); err == nil && doc.Activity() != nil {
			offer := doc.Activity()
			if rec.Role == Reporter {
				d.Reporter = offer.Actor.ID()
			}
			d.Report, _ = offer.Object.Object.(*vocab.VulnerabilityReport)
		}
	}
	if d.Report == nil {
		obj, _ := NewResolver(tx).Resolve(rec.ReportID)
		d.Report, _ = obj.(*vocab.VulnerabilityReport)
	}
	return d
}

// CSHistory returns the order in which the case-state events happened in a
// case, as far as its ledger records them: V where a vendor became aware
// (a vendor among the participants the case opened with, a vendor that
// joined it, or a vendor's status), then each first appearance of F, D (in
// a participant's vfdState) and P, X, A (in a pxaState), in ledger order.
// Only entries that carry a status, open the case or record a joining are
// decoded.
func CSHistory(tx *store.ReadTx, c *Case) (cvdstate.History, error) {
	return CSHistoryFrom(tx, c, 0, nil)
}

// CSHistoryFrom continues a history computed over the entries before from
// (prior) with the entries from index from on, so that a caller that keeps
// a case's history reads only what was added since.
func CSHistoryFrom(tx *store.ReadTx, c *Case, from int64, prior cvdstate.History) (cvdstate.History, error) {
	h := slices.Clone(prior)
	seen := map[cvdstate.CSEvent]bool{}
	for _, e := range h {
		seen[e] = true
	}
	add := func(e cvdstate.CSEvent) {
		if seen[e] {
			return
		}
		// An event the CS model forces next (V once the public is aware,
		// P once an exploit is) happened before any other, whether or not
		// the ledger says so: a vendor that joins a public case later is
		// taken to have been aware at once, as the model has it.
		if cs, err := h.Final(); err == nil {
			if f, ok := cs.Forced(); ok && f != e && !seen[f] {
				seen[f] = true
				h = append(h, f)
			}
		}
		seen[e] = true
		h = append(h, e)
	}
	b, err := tx.Case(c.ID)
	if err != nil {
		return nil, err
	}
	entries, err := b.Bucket("ledger")
	if err != nil {
		return nil, err
	}
	joined := []byte(EventType(vocab.AcceptInviteActorToCase))
	err = entries.Range(store.SeqKey(uint64(from)), func(_, v []byte) error {
		if !bytes.Contains(v, []byte("vfdState")) && !bytes.Contains(v, []byte("pxaState")) && !bytes.Contains(v, joined) {
			return nil
		}
		e, err := ledger.Unmarshal(v)
		if err != nil {
			return err
		}
		var payload struct {
			Actor  json.RawMessage `json:"actor"`
			Object struct {
				VFD        string `json:"vfdState"`
				PXA        string `json:"pxaState"`
				CaseStatus struct {
					PXA string `json:"pxaState"`
				} `json:"caseStatus"`
				CaseParticipants []struct {
					ParticipantStatuses []struct {
						VFD string `json:"vfdState"`
					} `json:"participantStatuses"`
				} `json:"caseParticipants"`
			} `json:"object"`
		}
		if json.Unmarshal(e.PayloadSnapshot, &payload) != nil {
			return nil // a payload this view cannot read shows no events
		}
		switch e.EventType {
		case EventType(vocab.CreateCase):
			// A vendor the case opens with is aware: the report reached it.
			for _, p := range payload.Object.CaseParticipants {
				for _, st := range p.ParticipantStatuses {
					if strings.ContainsRune(st.VFD, 'V') {
						add(cvdstate.EventV)
					}
				}
			}
			return nil
		case EventType(vocab.AcceptInviteActorToCase):
			// A vendor that joins is aware: the case reached it.
			if p := c.Participant(vocab.RefID(payload.Actor)); p != nil && p.Roles.Has(cvdstate.Vendor) {
				add(cvdstate.EventV)
			}
			return nil
		}
		vfd := payload.Object.VFD
		pxa := payload.Object.PXA + payload.Object.CaseStatus.PXA
		if strings.ContainsRune(vfd, 'V') {
			add(cvdstate.EventV)
		}
		if strings.ContainsRune(vfd, 'F') {
			add(cvdstate.EventF)
		}
		if strings.ContainsRune(vfd, 'D') {
			add(cvdstate.EventD)
		}
		// An exploit made public before the vulnerability makes it public
		// at once (the CS model's P follows X immediately), so when one
		// entry shows both for the first time, X came first.
		if strings.ContainsRune(pxa, 'X') {
			add(cvdstate.EventX)
		}
		if strings.ContainsRune(pxa, 'P') {
			add(cvdstate.EventP)
		}
		if strings.ContainsRune(pxa, 'A') {
			add(cvdstate.EventA)
		}
		return nil
	})
	return h, err
}

// TimelineEntry is one ledger entry, or one reply a local actor received,
// described for people.
type TimelineEntry struct {
	Index     int64
	At        time.Time
	Actor     string
	EventType string
	// Summary says what happened, e.g. "accepted the embargo".
	Summary string
	// Detail adds what the entry carried: an embargo's end, a note, a state.
	Detail string
	// Reply is set for an acknowledgement or an error a local actor
	// received, which is no ledger entry (Index is then that of the last
	// entry before it).
	Reply bool
	// By names the person on whose request this node's actor sent the
	// entry's activity (store.StoredActivity.SentBy); "" for what peers
	// sent and what the node did on its own.
	By string
}

// CaseTimeline returns the last n events of a case, newest first: its
// ledger entries, and the acknowledgements and errors (replies) the
// node's actors received about it and about its reports.
func CaseTimeline(tx *store.ReadTx, c *Case, n int) ([]TimelineEntry, error) {
	entries, err := Timeline(tx, c.ID, c.LedgerLen, n)
	if err != nil {
		return nil, err
	}
	var replies []ReplyRecord
	for _, key := range append([]string{c.ID}, reportKeys(c.Reports)...) {
		rs, err := Replies(tx, key, n)
		if err != nil {
			return nil, err
		}
		replies = append(replies, rs...)
	}
	out := make([]TimelineEntry, 0, len(entries)+len(replies))
	out = append(out, entries...)
	for _, r := range replies {
		out = append(out, describeReply(r))
	}
	slices.SortStableFunc(out, func(a, b TimelineEntry) int { return b.At.Compare(a.At) })
	if len(out) > n {
		out = out[:n]
	}
	// A reply stands after the last entry before it.
	for i := len(out) - 1; i >= 0; i-- {
		if out[i].Reply {
			out[i].Index = -1
			if i+1 < len(out) {
				out[i].Index = out[i+1].Index
			}
		}
	}
	return out, nil
}

func reportKeys(reports []string) []string {
	out := make([]string, len(reports))
	for i, r := range reports {
		out[i] = reportBucket(r)
	}
	return out
}

// describeReply describes a reply for the timeline.
func describeReply(r ReplyRecord) TimelineEntry {
	t := TimelineEntry{At: r.At, Actor: r.From, EventType: strings.ToLower(r.Semantic), Reply: true, Detail: r.Reason}
	what := r.AnswersType
	if what == "" {
		what = "a message"
	}
	switch vocab.Semantic(r.Semantic) {
	case vocab.AcceptActorRecommendation:
		t.Summary = fmt.Sprintf("told %s the owner accepted its suggestion", r.To)
		return t
	case vocab.RejectActorRecommendation:
		t.Summary = fmt.Sprintf("told %s the owner rejected its suggestion", r.To)
		return t
	}
	verb := "acknowledged"
	if strings.HasSuffix(r.Semantic, "_ERROR") || r.Reason != "" {
		verb = "refused"
	}
	messages := r.Messages
	if words, ok := answeredInWords[vocab.Semantic(r.AnswersSemantic)]; ok {
		what = words
		// A status names every message its letters may be (CV|CF|...):
		// the entry it made says which; only a message of one or two
		// readings is named here.
		if r.AnswersMessages != "" && strings.Count(r.AnswersMessages, "|") <= 1 {
			messages += ", answering " + r.AnswersMessages
		}
	}
	t.Summary = fmt.Sprintf("%s %s's %s (%s)", verb, r.To, what, messages)
	return t
}

// answeredInWords names, for the timeline, what a local actor sent that
// a reply answers; a message not named here is told by its activity type.
var answeredInWords = map[vocab.Semantic]string{
	vocab.SubmitReport:                      "report",
	vocab.AckReport:                         "acknowledgement",
	vocab.ValidateReport:                    "validation of the report",
	vocab.InvalidateReport:                  "invalidation of the report",
	vocab.CloseReport:                       "closure of the report",
	vocab.EngageCase:                        "engagement in the case",
	vocab.DeferCase:                         "deferral of the case",
	vocab.CloseCase:                         "closure of its part in the case",
	vocab.AddNoteToCase:                     "note",
	vocab.AddReportToCase:                   "report added to the case",
	vocab.InviteToEmbargoOnCase:             "embargo proposal",
	vocab.AcceptInviteToEmbargoOnCase:       "acceptance of the embargo",
	vocab.RejectInviteToEmbargoOnCase:       "rejection of the embargo proposal",
	vocab.RemoveEmbargoEventFromCase:        "termination of the embargo",
	vocab.AddParticipantStatusToParticipant: "status report",
	vocab.AddCaseStatusToCase:               "case status report",
	vocab.InviteActorToCase:                 "invitation to the case",
	vocab.AcceptInviteActorToCase:           "acceptance of the invitation",
	vocab.RejectInviteActorToCase:           "refusal of the invitation",
	vocab.OfferActorToCase:                  "suggestion of an actor",
	vocab.OfferCaseOwnershipTransfer:        "offer of the case's ownership",
	vocab.AcceptCaseOwnershipTransfer:       "acceptance of the case's ownership",
	vocab.RejectCaseOwnershipTransfer:       "refusal of the case's ownership",
	vocab.AddVulnerabilityRecordToCase:      "vulnerability ids",
	vocab.AddProductStatusToCase:            "product status",
	vocab.PublishAdvisory:                   "advisory",
	vocab.ReviseAdvisory:                    "revision of the advisory",
}

// Timeline returns the last n entries of a case's ledger, newest first,
// described for people.
func Timeline(tx *store.ReadTx, caseID string, length int64, n int) ([]TimelineEntry, error) {
	from := max(0, length-int64(n))
	entries, err := Entries(tx, caseID, from, n)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.LogObjectID
	}
	tx.ReadAheadActivities(ids) // for SentBy: one request, not one per entry
	out := make([]TimelineEntry, 0, len(entries))
	for i := len(entries) - 1; i >= 0; i-- {
		t := describeEntry(entries[i])
		if t.By, err = SentBy(tx, entries[i].LogObjectID); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// NotesSentBy returns, by note id, the person of this node who wrote
// each of notes (SentBy of the activity that added it), reading the
// activities of the notes whose author isLocal says is this node's
// together, and no other; notes from peers and notes recorded before they
// kept their activity are absent.
func NotesSentBy(tx *store.ReadTx, notes []Note, isLocal func(actor string) bool) (map[string]string, error) {
	var ours []Note
	for _, n := range notes {
		if n.Activity != "" && isLocal(n.Author) {
			ours = append(ours, n)
		}
	}
	if len(ours) == 0 {
		return nil, nil
	}
	ids := make([]string, len(ours))
	for i, n := range ours {
		ids[i] = n.Activity
	}
	tx.ReadAheadActivities(ids)
	var out map[string]string
	for _, n := range ours {
		by, err := SentBy(tx, n.Activity)
		if err != nil {
			return nil, err
		}
		if by != "" {
			if out == nil {
				out = make(map[string]string)
			}
			out[n.ID] = by
		}
	}
	return out, nil
}

// SentBy returns the person on whose request one of this node's actors
// sent activity id, or "" when a peer sent it, the node sent it on its
// own, or this node holds no record of it. It is one read by key
// (store.ReadTx.ReadAheadActivities reads many at once).
func SentBy(tx *store.ReadTx, id string) (string, error) {
	if id == "" {
		return "", nil
	}
	a, err := tx.Activity(id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("who sent %s: %w", id, err)
	case a.Direction != store.DirectionOutbound:
		return "", nil
	}
	return a.SentBy, nil
}

// eventSummaries says in words what each recorded event type means.
var eventSummaries = map[string]string{
	"create_case":                           "opened the case",
	"validate_report":                       "validated the report (RV)",
	"engage_case":                           "engaged the case (RA)",
	"defer_case":                            "deferred the case (RD)",
	"close_case":                            "closed the case for itself (RC)",
	"add_note_to_case":                      "added a note",
	"invite_to_embargo_on_case":             "proposed an embargo (EP/EV)",
	"accept_invite_to_embargo_on_case":      "accepted the embargo (EA/EC)",
	"reject_invite_to_embargo_on_case":      "rejected the embargo proposal (ER/EJ)",
	"remove_embargo_event_from_case":        "terminated the embargo (ET)",
	"invite_actor_to_case":                  "invited an actor",
	"accept_invite_actor_to_case":           "joined the case",
	"reject_invite_actor_to_case":           "declined the invitation",
	"offer_actor_to_case":                   "suggested an actor",
	"accept_actor_recommendation":           "accepted a suggestion",
	"reject_actor_recommendation":           "rejected a suggestion",
	"accept_offer_case_participant":         "accepted a suggested participant",
	"reject_offer_case_participant":         "rejected a suggested participant",
	"remove_case_participant_from_case":     "removed a participant",
	"offer_case_ownership_transfer":         "offered the case's ownership",
	"accept_case_ownership_transfer":        "accepted the case's ownership",
	"reject_case_ownership_transfer":        "declined the case's ownership",
	"add_participant_status_to_participant": "reported a status",
	"add_case_status_to_case":               "reported the case status",
}

func describeEntry(e ledger.Entry) TimelineEntry {
	t := TimelineEntry{Index: e.LogIndex, EventType: e.EventType}
	t.At = entryTime(e)
	var p struct {
		Actor   json.RawMessage `json:"actor"`
		Object  json.RawMessage `json:"object"`
		Summary string          `json:"summary"`
	}
	_ = json.Unmarshal(e.PayloadSnapshot, &p)
	t.Actor = vocab.RefID(p.Actor)
	t.Summary = eventSummaries[strings.ToLower(e.EventType)]
	if t.Summary == "" {
		t.Summary = strings.ReplaceAll(strings.ToLower(e.EventType), "_", " ")
	}
	var obj struct {
		Type       string    `json:"type"`
		Content    string    `json:"content"`
		EndTime    time.Time `json:"endTime"`
		VFD        string    `json:"vfdState"`
		CaseStatus struct {
			PXA string `json:"pxaState"`
		} `json:"caseStatus"`
	}
	if json.Unmarshal(p.Object, &obj) == nil {
		switch {
		case obj.Type == "Note":
			t.Detail = obj.Content
		case !obj.EndTime.IsZero():
			t.Detail = "ending " + obj.EndTime.UTC().Format("2006-01-02 15:04 UTC")
		case obj.VFD != "" || obj.CaseStatus.PXA != "":
			t.Detail = strings.TrimSpace(obj.VFD + " " + obj.CaseStatus.PXA)
		}
	}
	if p.Summary != "" {
		// What the sender said of its step: the reason it ended the
		// embargo, declined, left; or the rule of a policy that took it
		// (package automation).
		t.Detail = strings.TrimPrefix(t.Detail+" — "+problem.Clip(p.Summary, 200), " — ")
	}
	return t
}

// EventState is what a change-feed event says of the case after its entry:
// the case's states and those of the participant that acted. It is small
// on purpose: a case may have thousands of participants.
type EventState struct {
	EM           string            `json:"em"`
	PXA          string            `json:"pxa"`
	Owner        string            `json:"owner"`
	Closed       bool              `json:"closed"`
	LedgerLength int64             `json:"ledgerLength"`
	Participant  *EventParticipant `json:"participant,omitempty"`
}

// EventParticipant is the acting participant's state in an EventState.
type EventParticipant struct {
	Actor string   `json:"actor"`
	Roles []string `json:"roles"`
	RM    string   `json:"rm"`
	VFD   string   `json:"vfd"`
	PEC   string   `json:"embargoConsent"`
}

// recordEvent adds a ledger entry, with the case's state after it, to the
// node's change feed, in the transaction that stores the entry. actor is
// the entry's activity's actor, which the caller has already decoded.
func recordEvent(tx *store.Tx, after *Case, e ledger.Entry, actor string) error {
	ev := store.Event{CaseID: e.CaseID, LogIndex: &e.LogIndex, EventType: e.EventType, Actor: actor}
	ev.Time = entryTime(e)
	st := EventState{EM: after.EM.String(), PXA: after.PXA.String(), Owner: after.Owner, Closed: after.Closed(), LedgerLength: e.LogIndex + 1}
	if part := after.Participant(ev.Actor); part != nil {
		st.Participant = &EventParticipant{Actor: part.Actor, Roles: part.Roles.Names(), RM: part.RM.String(), VFD: part.VFD.String(), PEC: part.PEC.String()}
	}
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	ev.State = raw
	return tx.AppendEvent(ev)
}
