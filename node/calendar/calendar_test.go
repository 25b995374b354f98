package calendar

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-ical"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/node/internal/icaltest"
	"github.com/openvultron/vultron/store"
)

// TestFoldingWriter checks folding at 75 octets without splitting a
// UTF-8 sequence, and that unfolding restores the line.
func TestFoldingWriter(t *testing.T) {
	long := "DESCRIPTION:" + strings.Repeat("é", 100) + strings.Repeat("x", 50)
	var buf bytes.Buffer
	fw := &foldingWriter{w: &buf}
	if _, err := fw.Write([]byte(long + "\r\nEND:VEVENT\r\n")); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\r\n"), "\r\n")
	for _, l := range lines {
		if len(l) > 75 {
			t.Errorf("line of %d octets", len(l))
		}
		if !utf8.ValidString(l) {
			t.Errorf("a fold split a UTF-8 sequence: %q", l)
		}
	}
	if got := strings.ReplaceAll(buf.String(), "\r\n ", ""); got != long+"\r\nEND:VEVENT\r\n" {
		t.Errorf("unfolded %q", got)
	}
}

// TestEmbargoEventAlarmsAndAttendees reads back, with go-ical, the event of
// an embargo in force at several distances from its end: the reminders two
// weeks, a week and a day before are there only while their moment is still
// ahead (a client subscribing late must not ring at once for a moment long
// past), none once the embargo ended early, and no attendee is asked for an
// RSVP, since a calendar reply cannot accept or decline an embargo.
func TestEmbargoEventAlarmsAndAttendees(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &Feeds{cfg: Config{PublicURL: "https://vendor.example", Host: "vendor.example", Version: "test", Now: func() time.Time { return now }}}
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		left     time.Duration
		em       cvdstate.EMState
		triggers []string
		texts    []string
	}{
		{"30 days left", 30 * day, cvdstate.EMActive, []string{"-P14D", "-P7D", "-P1D"}, []string{"in two weeks", "in a week", "in 24 hours"}},
		{"exactly two weeks left", 14 * day, cvdstate.EMActive, []string{"-P7D", "-P1D"}, []string{"in a week", "in 24 hours"}},
		{"10 days left", 10 * day, cvdstate.EMActive, []string{"-P7D", "-P1D"}, []string{"in a week", "in 24 hours"}},
		{"3 days left, under revision", 3 * day, cvdstate.EMRevise, []string{"-P1D"}, []string{"in 24 hours"}},
		{"12 hours left", 12 * time.Hour, cvdstate.EMActive, nil, nil},
		{"ended early", 30 * day, cvdstate.EMExited, nil, nil},
		{"ended at its date", -day, cvdstate.EMExited, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cases.Case{ID: "https://vendor.example/cases/abc123", EM: tc.em,
				Embargo: &cases.Embargo{ID: "https://vendor.example/embargoes/1", End: now.Add(tc.left), Proposer: "https://vendor.example/actors/vendor"},
				Participants: []*cases.Participant{
					{Actor: "https://vendor.example/actors/vendor", ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECSignatory}},
					{Actor: "https://finder.example/actors/finder", ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECInvited}},
					{Actor: "https://gone.example/actors/gone", Removed: true},
				}}
			rec := httptest.NewRecorder()
			f.write(rec, "test", []*cases.Case{c})
			if rec.Code != http.StatusOK {
				t.Fatalf("write: %d %s", rec.Code, rec.Body)
			}
			ev, _ := icaltest.MainEvent(t, icaltest.CheckRFC5545(t, rec.Body.Bytes()))
			var triggers, texts []string
			for _, a := range ev.Children {
				if a.Name != ical.CompAlarm {
					t.Errorf("a %s inside the event, want only VALARMs", a.Name)
					continue
				}
				triggers = append(triggers, a.Props.Get(ical.PropTrigger).Value)
				texts = append(texts, a.Props.Get(ical.PropDescription).Value)
			}
			if !slices.Equal(triggers, tc.triggers) {
				t.Errorf("alarms %v, want %v", triggers, tc.triggers)
			}
			for i, want := range tc.texts {
				if i < len(texts) && (!strings.Contains(texts[i], want) || !strings.Contains(texts[i], cases.ShortID(c.ID))) {
					t.Errorf("alarm %s says %q, want the case's short id and %q", triggers[i], texts[i], want)
				}
			}
			attendees := ev.Props.Values(ical.PropAttendee)
			if len(attendees) != 2 {
				t.Errorf("%d attendees, want the two participants not removed", len(attendees))
			}
			want := map[string]string{"https://vendor.example/actors/vendor": "ACCEPTED", "https://finder.example/actors/finder": "NEEDS-ACTION"}
			for _, a := range attendees {
				if rsvp := a.Params.Get(ical.ParamRSVP); rsvp != "" {
					t.Errorf("attendee %s has RSVP=%s; no calendar reply can answer an embargo", a.Value, rsvp)
				}
				if got := a.Params.Get(ical.ParamParticipationStatus); got != want[a.Value] {
					t.Errorf("attendee %s has PARTSTAT %q, want %q (its embargo consent)", a.Value, got, want[a.Value])
				}
			}
		})
	}
}

// TestPublicationEvent: a proposed publication time is an event of its
// own beside the embargo's, tentative until every participant accepted it.
func TestPublicationEvent(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &Feeds{cfg: Config{PublicURL: "https://vendor.example", Host: "vendor.example", Version: "test", Now: func() time.Time { return now }}}
	vendor, finder := "https://vendor.example/actors/vendor", "https://finder.example/actors/finder"
	at := now.Add(10 * 24 * time.Hour)
	for _, tc := range []struct {
		name     string
		accepted []string
		status   string
	}{
		{"proposed", nil, "TENTATIVE"},
		{"accepted by every participant", []string{finder}, "CONFIRMED"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &cases.Case{ID: "https://vendor.example/cases/abc123", EM: cvdstate.EMNone,
				Participants: []*cases.Participant{{Actor: vendor}, {Actor: finder}},
				Advisory:     &cases.Advisory{PublishAt: &cases.PublicationTime{NoteID: "n", By: vendor, Time: at, Accepted: tc.accepted}}}
			rec := httptest.NewRecorder()
			f.write(rec, "test", []*cases.Case{c})
			cal := icaltest.CheckRFC5545(t, rec.Body.Bytes())
			var found int
			for _, ev := range cal.Children {
				if ev.Name != ical.CompEvent {
					continue
				}
				found++
				if s := ev.Props.Get(ical.PropSummary).Value; !strings.Contains(s, "advisory publication") {
					t.Errorf("summary %q", s)
				}
				if got := ev.Props.Get(ical.PropStatus).Value; got != tc.status {
					t.Errorf("status %s, want %s", got, tc.status)
				}
				if got, _ := ev.Props.DateTime(ical.PropDateTimeStart, time.UTC); !got.Equal(at) {
					t.Errorf("start %s, want %s", got, at)
				}
			}
			if found != 1 {
				t.Errorf("%d events, want the publication's", found)
			}
		})
	}
}

// TestAttendeePastRSVPDeadline: a participant whose consent lapsed under a
// revision it did not answer by the proposal's RSVP deadline is an
// attendee that declined.
func TestAttendeePastRSVPDeadline(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	f := &Feeds{cfg: Config{PublicURL: "https://vendor.example", Host: "vendor.example", Version: "test", Now: func() time.Time { return now }}}
	vendor, finder := "https://vendor.example/actors/vendor", "https://finder.example/actors/finder"
	c := &cases.Case{ID: "https://vendor.example/cases/abc123", EM: cvdstate.EMRevise,
		Embargo: &cases.Embargo{ID: "https://vendor.example/embargoes/1", End: now.Add(30 * 24 * time.Hour), Proposer: vendor},
		Proposals: []cases.Proposal{{InviteID: "https://vendor.example/activities/ev", RSVPBy: now.Add(-time.Hour),
			Terms: cases.Embargo{ID: "https://vendor.example/embargoes/2", End: now.Add(60 * 24 * time.Hour), Proposer: vendor}}},
		Participants: []*cases.Participant{
			{Actor: vendor, ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECSignatory}},
			{Actor: finder, ParticipantState: cvdstate.ParticipantState{PEC: cvdstate.PECLapsed}},
		}}
	rec := httptest.NewRecorder()
	f.write(rec, "test", []*cases.Case{c})
	ev, _ := icaltest.MainEvent(t, icaltest.CheckRFC5545(t, rec.Body.Bytes()))
	for _, a := range ev.Props.Values(ical.PropAttendee) {
		if got := a.Params.Get(ical.ParamParticipationStatus); a.Value == finder && got != "DECLINED" {
			t.Errorf("the finder past its RSVP deadline has PARTSTAT %q, want DECLINED", got)
		}
	}
}

// TestTheFeedReadsRecentAndComingDates: the node's feed is made from the
// cases whose latest date (an embargo's end, a proposed end, an advisory's
// publication) is within FeedHistory or ahead, read from an index by date:
// a case whose dates are long past, or that has none, is neither shown nor
// read, so the feed's cost follows the embargoes of the last months, not
// every case the node ever held.
func TestTheFeedReadsRecentAndComingDates(t *testing.T) {
	now := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	day := 24 * time.Hour
	ended := func(id string, ago time.Duration) *cases.Case {
		return &cases.Case{ID: "https://vendor.example/cases/" + id, EM: cvdstate.EMExited,
			Embargo: &cases.Embargo{ID: "https://vendor.example/embargoes/" + id, End: now.Add(-ago)}}
	}
	all := []*cases.Case{
		ended("long-ago", FeedHistory+day),
		ended("last-month", 30*day),
		{ID: "https://vendor.example/cases/no-embargo"},
		{ID: "https://vendor.example/cases/ahead", EM: cvdstate.EMActive,
			Embargo: &cases.Embargo{ID: "https://vendor.example/embargoes/ahead", End: now.Add(60 * day)}},
	}
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		for _, c := range all {
			if err := cases.Save(tx, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(Config{Store: db, PublicURL: "https://vendor.example", Host: "vendor.example", Version: "test",
		FeedKey: []byte("k"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	f.All(rec, httptest.NewRequest(http.MethodGet, "/calendar.ics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /calendar.ics: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.String()
	for id, want := range map[string]bool{"long-ago": false, "last-month": true, "ahead": true} {
		short := cases.ShortID("https://vendor.example/cases/" + id)
		if got := strings.Contains(body, "Case "+short+" embargo"); got != want {
			t.Errorf("case %s (%s) in the feed: %v, want %v", id, short, got, want)
		}
	}
}
