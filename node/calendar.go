package node

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
)

// Embargo calendars. Each case's embargo is one VEVENT at the instant it
// ends, in UTC, with a UID that stays the same across revisions and a
// SEQUENCE that counts them, so a subscribed calendar moves the event instead
// of adding one. An open proposal is a second, TENTATIVE event related to the
// first. The mapping follows the Vultron iCalendar note (vultron-protocol.md
// §8) with the changes of cvd-landscape.md §3.2:
//
//   - the note's zero-length event (DTSTART = DTEND) is not valid RFC 5545;
//     the event has a DTSTART and no DTEND, which RFC 5545 §3.6.1 defines as
//     an event that takes up the instant of DTSTART;
//   - STATUS is TENTATIVE while proposed, CONFIRMED while in force or once it
//     ended at its date, CANCELLED when it ended early (terminated, or torn
//     down by publication before its date);
//   - no vulnerability detail: SUMMARY carries the case's short id, and the
//     report's name and content never appear;
//   - the participants are ATTENDEEs whose PARTSTAT is their embargo consent,
//     without RSVP: consent is given on the node, not by a calendar reply;
//   - an embargo in force has reminders two weeks, a week and a day before
//     its end (cvd-landscape.md §3.2), each only while its moment is ahead;
//   - a rejected proposal or revision leaves the feed instead of being sent
//     as CANCELLED (the note's "new → CANCELLED" on reject): the feeds are
//     subscribed snapshots (METHOD:PUBLISH), from which a client drops an
//     event that is no longer there, and the case keeps no record of a
//     proposal once it is answered, so there is no UID to cancel.
//
// Calendar clients cannot send an Authorization header, so the feeds also
// take a feed token in the URL. It reads the feeds and nothing else. The node
// derives it (HMAC) from its API token and a generation kept in the store:
// `vultron calendar token --rotate` bumps the generation, which retires the
// old feed URLs without touching the API token, and the token itself is
// never stored. It also changes when the API token changes.

// feedTokenContext separates the feed token from anything else derived from
// the API token.
const feedTokenContext = "vultron calendar feed v1"

// feedToken returns the current feed token, for pages that link the feed
// and have no request context to pass; "" when the store cannot be read (the
// link then answers 401 instead of the page failing).
func (n *Node) feedToken() string {
	tok, err := n.currentFeedToken(context.Background())
	if err != nil {
		n.log.Warn().Err(err).Msg("read the calendar feed token generation")
		return ""
	}
	return tok
}

// feedTokenOf returns the node's calendar feed token of generation gen.
func (n *Node) feedTokenOf(gen uint64) string {
	m := hmac.New(sha256.New, n.token.sum[:])
	m.Write([]byte(feedTokenContext))
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], gen)
	m.Write(g[:])
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// currentFeedToken returns the feed token of the generation in the store.
func (n *Node) currentFeedToken(ctx context.Context) (string, error) {
	var gen uint64
	err := n.db.View(ctx, func(tx *store.ReadTx) error {
		var err error
		gen, err = tx.FeedTokenGeneration()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("calendar feed token: %w", err)
	}
	return n.feedTokenOf(gen), nil
}

// feedAllowed reports whether r may read a calendar feed: the API token in
// the Authorization header, or the current feed token in ?token=.
func (n *Node) feedAllowed(r *http.Request) (bool, error) {
	if n.token.check(r) {
		return true, nil
	}
	got := r.URL.Query().Get("token")
	if got == "" {
		return false, nil
	}
	want, err := n.currentFeedToken(r.Context())
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1, nil
}

// checkFeedAccess answers 401 (or the store's error) and returns false when
// r may not read a calendar feed.
func (n *Node) checkFeedAccess(w http.ResponseWriter, r *http.Request) bool {
	ok, err := n.feedAllowed(r)
	if err != nil {
		problem.Write(w, err)
		return false
	}
	if !ok {
		problem.Write(w, problem.Unauthorized("a calendar feed needs the feed token (?token=) or the node's API token"))
	}
	return ok
}

// writeCalendarLinks writes the feed URLs with the feed token tok.
func (n *Node) writeCalendarLinks(w http.ResponseWriter, tok string) {
	q := "?token=" + url.QueryEscape(tok)
	problem.WriteJSON(w, http.StatusOK, api.CalendarLinks{
		Calendar:     n.cfg.PublicURL + "/calendar.ics" + q,
		CaseTemplate: n.cfg.PublicURL + "/api/cases/{id}/embargo.ics" + q,
	})
}

// calendarLinks answers GET /api/calendar: the feed URLs with the feed
// token, for a person to paste into a calendar client.
func (n *Node) calendarLinks(w http.ResponseWriter, r *http.Request) {
	tok, err := n.currentFeedToken(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	n.writeCalendarLinks(w, tok)
}

// rotateCalendarToken answers POST /api/calendar/token: a new feed token,
// which retires the old one, and the feed URLs with it.
func (n *Node) rotateCalendarToken(w http.ResponseWriter, r *http.Request) {
	gen, err := n.db.RotateFeedToken(r.Context())
	if err != nil {
		problem.Write(w, err)
		return
	}
	n.writeCalendarLinks(w, n.feedTokenOf(gen))
}

// serveCalendar answers GET /calendar.ics: every case's embargo.
func (n *Node) serveCalendar(w http.ResponseWriter, r *http.Request) {
	if !n.checkFeedAccess(w, r) {
		return
	}
	var all []*cases.Case
	err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		for after := ""; ; {
			page, next, err := cases.ListCasesPage(tx, after, maxCasePage)
			if err != nil {
				return err
			}
			all = append(all, page...)
			if next == "" {
				return nil
			}
			after = next
		}
	})
	if err != nil {
		problem.Write(w, err)
		return
	}
	n.writeCalendar(w, "Embargoes on "+n.host, all)
}

// serveCaseCalendar answers GET /api/cases/{id}/embargo.ics.
func (n *Node) serveCaseCalendar(w http.ResponseWriter, r *http.Request) {
	if !n.checkFeedAccess(w, r) {
		return
	}
	id, err := n.caseIDParam(r)
	if err != nil {
		problem.Write(w, err)
		return
	}
	var c *cases.Case
	if err := n.db.View(r.Context(), func(tx *store.ReadTx) error {
		var err error
		c, err = cases.Load(tx, id)
		return err
	}); err != nil {
		problem.Write(w, err)
		return
	}
	if c == nil {
		problem.Write(w, problem.NotFound("no case %s on this node", id))
		return
	}
	n.writeCalendar(w, "Embargo of case "+shortID(c.ID), []*cases.Case{c})
}

// writeCalendar encodes the embargo events of cs as one VCALENDAR.
func (n *Node) writeCalendar(w http.ResponseWriter, name string, cs []*cases.Case) {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//openvultron//vultron "+n.cfg.Version+"//EN")
	cal.Props.SetText(ical.PropCalendarScale, "GREGORIAN")
	cal.Props.SetText(ical.PropMethod, "PUBLISH")
	cal.Props.SetText("X-WR-CALNAME", name)
	refresh := ical.NewProp("REFRESH-INTERVAL")
	refresh.Params = ical.Params{}
	refresh.Params.Set(ical.ParamValue, "DURATION")
	refresh.Value = "PT1H"
	cal.Props.Set(refresh)
	now := n.cfg.Now().UTC().Truncate(time.Second)
	for _, c := range cs {
		cal.Children = append(cal.Children, n.embargoEvents(c, now)...)
	}
	if len(cal.Children) == 0 {
		// RFC 5545 wants at least one component in a calendar; a feed
		// with no embargo yet carries only the definition of UTC, which
		// clients accept and show nothing for.
		cal.Children = append(cal.Children, utcTimezone())
	}
	var buf bytes.Buffer
	if err := ical.NewEncoder(&foldingWriter{w: &buf}).Encode(cal); err != nil {
		problem.Write(w, fmt.Errorf("encode the calendar: %w", err))
		return
	}
	w.Header().Set("Content-Type", "text/calendar; charset=utf-8")
	w.Header().Set("Cache-Control", "private, no-store")
	_, _ = w.Write(buf.Bytes())
}

// embargoUID is the UID of a case's embargo: the same for every revision.
// It is derived from the case id rather than from the embargo's id because
// the embargo's id is that of the EmbargoEvent in force, which each accepted
// revision replaces; a case has one embargo (EM's EXITED is final), so the
// case id names it for its whole life.
func (n *Node) embargoUID(c *cases.Case, suffix string) string {
	sum := sha256.Sum256([]byte(c.ID + suffix))
	return "embargo-" + hex.EncodeToString(sum[:10]) + "@" + n.host
}

// embargoEvents returns the VEVENTs of a case: its embargo and each open
// proposal.
func (n *Node) embargoEvents(c *cases.Case, now time.Time) []*ical.Component {
	var out []*ical.Component
	uid := n.embargoUID(c, "")
	if c.Embargo != nil && !c.Embargo.End.IsZero() {
		status := ical.EventConfirmed
		if c.EM == cvdstate.EMExited && now.Before(c.Embargo.End) {
			status = ical.EventCancelled // ended before its date
		}
		ev := n.baseEvent(c, uid, c.Embargo.End, now)
		ev.Props.SetText(ical.PropSummary, "Case "+shortID(c.ID)+" embargo expiration")
		setValue(ev.Props, ical.PropSequence, fmt.Sprint(c.Embargo.Sequence))
		ev.SetStatus(status)
		if c.Embargo.Proposer != "" {
			org := ical.NewProp(ical.PropOrganizer)
			org.Value = c.Embargo.Proposer
			ev.Props.Set(org)
		}
		// Each participant is an attendee whose PARTSTAT is its embargo
		// consent. No RSVP is asked: a calendar's reply (iTIP REPLY) has
		// nowhere to go, and consent is given on the node (EA), so asking
		// would offer buttons that do nothing.
		for _, p := range c.Participants {
			if p.Removed {
				continue
			}
			att := ical.NewProp(ical.PropAttendee)
			att.Params = ical.Params{}
			att.Params.Set(ical.ParamRole, "OPT-PARTICIPANT")
			att.Params.Set(ical.ParamParticipationStatus, partstat(p.PEC))
			att.Value = p.Actor
			ev.Props.Add(att)
		}
		if status != ical.EventCancelled {
			for _, r := range embargoReminders() {
				// A reminder whose moment has passed is left out: a
				// calendar that subscribes late would otherwise ring at
				// once for a moment long gone.
				if now.Before(c.Embargo.End.Add(-r.before)) {
					ev.Children = append(ev.Children, reminder(r.trigger, "Case "+shortID(c.ID)+" embargo ends "+r.when))
				}
			}
		}
		out = append(out, ev.Component)
	}
	for _, p := range c.Proposals {
		ev := n.baseEvent(c, n.embargoUID(c, "|"+p.InviteID), p.Terms.End, now)
		ev.Props.SetText(ical.PropSummary, "Case "+shortID(c.ID)+" embargo expiration (proposed)")
		setValue(ev.Props, ical.PropSequence, "0")
		ev.SetStatus(ical.EventTentative)
		if c.Embargo != nil {
			ev.Props.SetText(ical.PropRelatedTo, uid)
		}
		out = append(out, ev.Component)
	}
	return out
}

// baseEvent returns a VEVENT with what every embargo event carries.
func (n *Node) baseEvent(c *cases.Case, uid string, end, now time.Time) *ical.Event {
	ev := ical.NewEvent()
	ev.Props.SetText(ical.PropUID, uid)
	ev.Props.SetDateTime(ical.PropDateTimeStamp, now)
	ev.Props.SetDateTime(ical.PropDateTimeStart, end.UTC())
	ev.Props.SetText(ical.PropClass, "CONFIDENTIAL")
	ev.Props.SetText(ical.PropCategories, "EMBARGO")
	ev.Props.SetText(ical.PropTransparency, "TRANSPARENT")
	ev.Props.SetText(ical.PropDescription, "Embargoed until this time. Details are on the node, for the case's participants only.")
	u := ical.NewProp(ical.PropURL)
	u.Params = ical.Params{}
	u.Params.Set(ical.ParamValue, "URI")
	u.Value = n.cfg.PublicURL + "/ui/cases/" + url.PathEscape(c.ID)
	ev.Props.Set(u)
	ev.Props.SetText("X-VULTRON-CASE", c.ID)
	ev.Props.SetText("X-VULTRON-EM-STATE", c.EM.String())
	return ev
}

// setValue sets a property whose value is not TEXT (SEQUENCE is an
// INTEGER, TZOFFSETFROM a UTC-OFFSET) in its default type: Props.SetText
// would mark it VALUE=TEXT, which RFC 5545 does not allow for them.
func setValue(props ical.Props, name, value string) {
	p := ical.NewProp(name)
	p.Value = value
	props.Set(p)
}

// utcTimezone is a VTIMEZONE for UTC.
func utcTimezone() *ical.Component {
	std := ical.NewComponent(ical.CompTimezoneStandard)
	start := ical.NewProp(ical.PropDateTimeStart)
	start.Value = "19700101T000000"
	std.Props.Set(start)
	setValue(std.Props, ical.PropTimezoneOffsetFrom, "+0000")
	setValue(std.Props, ical.PropTimezoneOffsetTo, "+0000")
	std.Props.SetText(ical.PropTimezoneName, "UTC")
	tz := ical.NewComponent(ical.CompTimezone)
	tz.Props.SetText(ical.PropTimezoneID, "UTC")
	tz.Children = append(tz.Children, std)
	return tz
}

// embargoReminders are the alarms of an embargo in force, earliest first:
// two weeks before its end, the lead time a fix needs to ride a release
// train (cvd-landscape.md §3.2); a week before, to draft the advisory and
// warn downstream; a day before, to stage the publication.
func embargoReminders() []embargoReminder {
	return []embargoReminder{
		{"-P14D", 14 * 24 * time.Hour, "in two weeks"},
		{"-P7D", 7 * 24 * time.Hour, "in a week"},
		{"-P1D", 24 * time.Hour, "in 24 hours"},
	}
}

// embargoReminder is one alarm of an embargo event.
type embargoReminder struct {
	trigger string        // RFC 5545 DURATION before DTSTART
	before  time.Duration // the same, for comparing with the clock
	when    string        // how the reminder says it
}

// reminder is a VALARM that shows text at trigger (a DURATION relative to
// the event's start).
func reminder(trigger, text string) *ical.Component {
	a := ical.NewComponent(ical.CompAlarm)
	a.Props.SetText(ical.PropAction, "DISPLAY")
	a.Props.SetText(ical.PropDescription, text)
	t := ical.NewProp(ical.PropTrigger)
	t.Value = trigger
	a.Props.Set(t)
	return a
}

// partstat maps a participant's embargo consent to iCalendar's PARTSTAT.
func partstat(p cvdstate.PEC) string {
	switch p {
	case cvdstate.PECSignatory:
		return "ACCEPTED"
	case cvdstate.PECDeclined:
		return "DECLINED"
	case cvdstate.PECInvited:
		return "NEEDS-ACTION"
	}
	return "NEEDS-ACTION"
}

// foldingWriter folds the content lines written to it at 75 octets, as RFC
// 5545 §3.1 asks: a line longer than that continues on the next line after
// CRLF and a space, never inside a UTF-8 sequence.
type foldingWriter struct {
	w    io.Writer
	line []byte
}

func (f *foldingWriter) Write(p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		f.line = append(f.line, p[i])
		if n := len(f.line); n >= 2 && f.line[n-2] == '\r' && f.line[n-1] == '\n' {
			if err := f.flush(f.line[:n-2]); err != nil {
				return i, err
			}
			f.line = f.line[:0]
		}
	}
	return len(p), nil
}

func (f *foldingWriter) flush(line []byte) error {
	var out bytes.Buffer
	limit := 75
	for len(line) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		out.Write(line[:cut])
		out.WriteString("\r\n ")
		line = line[cut:]
		limit = 74 // the leading space counts
	}
	out.Write(line)
	out.WriteString("\r\n")
	_, err := f.w.Write(out.Bytes())
	return err
}
