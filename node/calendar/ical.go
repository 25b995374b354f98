package calendar

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/emersion/go-ical"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
)

// write encodes the embargo events of cs as one VCALENDAR.
func (f *Feeds) write(w http.ResponseWriter, name string, cs []*cases.Case) {
	cal := ical.NewCalendar()
	cal.Props.SetText(ical.PropVersion, "2.0")
	cal.Props.SetText(ical.PropProductID, "-//openvultron//vultron "+f.cfg.Version+"//EN")
	cal.Props.SetText(ical.PropCalendarScale, "GREGORIAN")
	cal.Props.SetText(ical.PropMethod, "PUBLISH")
	cal.Props.SetText("X-WR-CALNAME", name)
	refresh := ical.NewProp("REFRESH-INTERVAL")
	refresh.Params = ical.Params{}
	refresh.Params.Set(ical.ParamValue, "DURATION")
	refresh.Value = "PT1H"
	cal.Props.Set(refresh)
	now := f.cfg.Now().UTC().Truncate(time.Second)
	for _, c := range cs {
		cal.Children = append(cal.Children, f.embargoEvents(c, now)...)
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
func (f *Feeds) embargoUID(c *cases.Case, suffix string) string {
	sum := sha256.Sum256([]byte(c.ID + suffix))
	return "embargo-" + hex.EncodeToString(sum[:10]) + "@" + f.cfg.Host
}

// embargoEvents returns the VEVENTs of a case: its embargo and each open
// proposal.
func (f *Feeds) embargoEvents(c *cases.Case, now time.Time) []*ical.Component {
	var out []*ical.Component
	uid := f.embargoUID(c, "")
	if c.Embargo != nil && !c.Embargo.End.IsZero() {
		status := ical.EventConfirmed
		if c.EM == cvdstate.EMExited && now.Before(c.Embargo.End) {
			status = ical.EventCancelled // ended before its date
		}
		ev := f.baseEvent(c, uid, c.Embargo.End, now)
		ev.Props.SetText(ical.PropSummary, "Case "+cases.ShortID(c.ID)+" embargo expiration")
		setValue(ev.Props, ical.PropSequence, fmt.Sprint(c.Embargo.Sequence))
		ev.SetStatus(status)
		if c.Embargo.Proposer != "" {
			org := ical.NewProp(ical.PropOrganizer)
			org.Value = c.Embargo.Proposer
			ev.Props.Set(org)
		}
		// Each participant is an attendee whose PARTSTAT is its embargo
		// consent now (DECLINED once an invitation it did not answer
		// passed its RSVP deadline). No RSVP is asked: a calendar's reply (iTIP REPLY) has
		// nowhere to go, and consent is given on the node (EA), so asking
		// would offer buttons that do nothing.
		for _, p := range c.Participants {
			if p.Removed {
				continue
			}
			att := ical.NewProp(ical.PropAttendee)
			att.Params = ical.Params{}
			att.Params.Set(ical.ParamRole, "OPT-PARTICIPANT")
			att.Params.Set(ical.ParamParticipationStatus, partstat(c.ConsentAt(p, now)))
			att.Value = p.Actor
			ev.Props.Add(att)
		}
		if status != ical.EventCancelled {
			for _, r := range embargoReminders() {
				// A reminder whose moment has passed is left out: a
				// calendar that subscribes late would otherwise ring at
				// once for a moment long gone.
				if now.Before(c.Embargo.End.Add(-r.before)) {
					ev.Children = append(ev.Children, reminder(r.trigger, "Case "+cases.ShortID(c.ID)+" embargo ends "+r.when))
				}
			}
		}
		out = append(out, ev.Component)
	}
	for _, p := range c.Proposals {
		ev := f.baseEvent(c, f.embargoUID(c, "|"+p.InviteID), p.Terms.End, now)
		ev.Props.SetText(ical.PropSummary, "Case "+cases.ShortID(c.ID)+" embargo expiration (proposed)")
		setValue(ev.Props, ical.PropSequence, "0")
		ev.SetStatus(ical.EventTentative)
		if c.Embargo != nil {
			ev.Props.SetText(ical.PropRelatedTo, uid)
		}
		out = append(out, ev.Component)
	}
	if a := c.Advisory; a != nil && a.PublishAt != nil {
		out = append(out, f.publicationEvent(c, a.PublishAt, now))
	}
	return out
}

// publicationEvent returns the VEVENT of the advisory's proposed
// publication time: tentative until every participant accepted it, each
// participant an attendee that has accepted it or not.
func (f *Feeds) publicationEvent(c *cases.Case, pt *cases.PublicationTime, now time.Time) *ical.Component {
	ev := f.baseEvent(c, f.embargoUID(c, "|publication"), pt.Time, now)
	ev.Props.SetText(ical.PropSummary, "Case "+cases.ShortID(c.ID)+" advisory publication")
	ev.Props.SetText(ical.PropCategories, "PUBLICATION")
	ev.Props.SetText(ical.PropDescription, "The advisory of the case is to be published at this time. Details are on the node, for the case's participants only.")
	org := ical.NewProp(ical.PropOrganizer)
	org.Value = pt.By
	ev.Props.Set(org)
	all := true
	for _, p := range c.Participants {
		if p.Removed {
			continue
		}
		accepted := p.Actor == pt.By || slices.Contains(pt.Accepted, p.Actor)
		all = all && accepted
		att := ical.NewProp(ical.PropAttendee)
		att.Params = ical.Params{}
		att.Params.Set(ical.ParamRole, "OPT-PARTICIPANT")
		att.Params.Set(ical.ParamParticipationStatus, map[bool]string{true: "ACCEPTED", false: "NEEDS-ACTION"}[accepted])
		att.Value = p.Actor
		ev.Props.Add(att)
	}
	if published := c.Advisory != nil && len(c.Advisory.Revisions) > 0; all || published {
		ev.SetStatus(ical.EventConfirmed)
	} else {
		ev.SetStatus(ical.EventTentative)
	}
	return ev.Component
}

// baseEvent returns a VEVENT with what every embargo event carries.
func (f *Feeds) baseEvent(c *cases.Case, uid string, end, now time.Time) *ical.Event {
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
	u.Value = f.cfg.PublicURL + "/ui/cases/" + url.PathEscape(c.ID)
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
