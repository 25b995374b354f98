package deadline

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/store"
)

func TestAddBusinessDays(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	cal := DefaultCalendar()
	withHolidays := cal
	withHolidays.Holidays = map[string]bool{"2026-12-25": true, "2026-12-28": true}
	fridayOff := cal
	fridayOff.Weekend[time.Friday] = true
	inBerlin := cal
	inBerlin.Location = berlin
	tests := []struct {
		name  string
		cal   Calendar
		start time.Time
		n     int
		want  time.Time
	}{
		{"friday afternoon plus 5", cal, time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC), 5, time.Date(2026, 12, 11, 15, 0, 0, 0, time.UTC)},
		{"saturday plus 1", cal, time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), 1, time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)},
		{"plus 10 spans two weekends", cal, time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), 10, time.Date(2026, 12, 15, 9, 0, 0, 0, time.UTC)},
		{"holidays skipped", withHolidays, time.Date(2026, 12, 24, 9, 0, 0, 0, time.UTC), 2, time.Date(2026, 12, 30, 9, 0, 0, 0, time.UTC)},
		{"a four-day week", fridayOff, time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC), 1, time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)},
		// 23:30 UTC on Friday is Saturday 00:30 in Berlin: counting starts from Saturday.
		{"the calendar's zone decides the day", inBerlin, time.Date(2026, 12, 4, 23, 30, 0, 0, time.UTC), 1, time.Date(2026, 12, 6, 23, 30, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.cal.AddBusinessDays(tc.start, tc.n)
			if err != nil || !got.Equal(tc.want) {
				t.Errorf("AddBusinessDays(%s, %d) = %s, %v; want %s", tc.start, tc.n, got.UTC(), err, tc.want)
			}
		})
	}
	var never Calendar
	never.Weekend = [7]bool{true, true, true, true, true, true, true}
	if _, err := never.AddBusinessDays(time.Now(), 1); err == nil {
		t.Error("a calendar with no business day returned a time")
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := Parse([]byte("timezone: Europe/Berlin\nweekend: [fri, sat]\nholidays: [\"2026-12-25\"]\nnear: 1 day\nlimits:\n  acknowledge: 3 business days\n  engage: off\n  fix: 45 days\n  cra_early_warning: 12 hours\n"), "d.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Calendar.Location.String() != "Europe/Berlin" || !cfg.Calendar.Weekend[time.Friday] || cfg.Calendar.Weekend[time.Sunday] ||
		!cfg.Calendar.Holidays["2026-12-25"] || cfg.Near != 24*time.Hour {
		t.Errorf("calendar = %+v, near %s", cfg.Calendar, cfg.Near)
	}
	for kind, want := range map[string]string{"acknowledge": "3 business days", "engage": "off", "fix": "45 days",
		"cra_early_warning": "12 hours", "validate": "10 business days", "cra_final_report": "14 days"} {
		if got := cfg.Limits[kind].String(); got != want {
			t.Errorf("%s = %q, want %q", kind, got, want)
		}
	}
	if _, ok := cfg.Due("engage", time.Now()); ok {
		t.Error("a clock that is off has a due time")
	}
	for _, tc := range []struct{ src, want string }{
		{"limits:\n  acknowledge: soon\n", "line 2: acknowledge: \"soon\" is not a limit"},
		{"limits:\n  respond: 5 days\n", "line 2: \"respond\" is not a kind of clock"},
		{"timezone: Mars/Olympus\n", "line 1: timezone \"Mars/Olympus\""},
		{"holidays: [christmas]\n", "line 1: holiday \"christmas\""},
		{"weekend: [caturday]\n", "line 1: \"caturday\" is not a day"},
		{"colour: red\n", "line 1: no key \"colour\""},
		{"weekend: [mon, tue, wed, thu, fri, sat, sun]\n", "d.yaml: every day is a weekend day or a holiday: the calendar has no business day within twenty years"},
		{"near: 2 business days\n", "line 1: near must be"},
		// Over twenty years of business days: no due time can be computed,
		// which would leave the clock silently off.
		{"limits:\n  fix: 9999 business days\n", "line 2: fix: 9999 business days"},
		{"limits:\n  fix: 9999 business days\nweekend: [sat, sun]\n", "line 2: fix: 9999 business days"},
	} {
		if _, err := Parse([]byte(tc.src), "d.yaml"); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%q) = %v, want an error with %q", tc.src, err, tc.want)
		}
	}
}

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// saveCase stores a case whose vendor received the report at at.
func saveCase(t *testing.T, db *store.DB, id string, at time.Time) {
	t.Helper()
	c := &cases.Case{ID: id, Name: "case " + id, Owner: "https://v.example/actors/v", UpdatedAt: at}
	c.Participants = []*cases.Participant{{Actor: "https://v.example/actors/v", Roles: cvdstate.Vendor,
		ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMReceived}}}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
}

func TestListAndSummarize(t *testing.T) {
	db := openStore(t)
	mon := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	saveCase(t, db, "https://v.example/cases/a", mon)
	saveCase(t, db, "https://v.example/cases/b", mon.Add(48*time.Hour))
	cfg := Default()
	now := mon.AddDate(0, 0, 8) // Tuesday of the next week: a's acknowledge (Mon+5bd) passed, b's (Wed+5bd) not
	var all, overdue []Deadline
	var sum map[string]Summary
	err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		if all, err = List(tx, cfg, now, false, 10); err != nil {
			return err
		}
		if overdue, err = List(tx, cfg, now, true, 10); err != nil {
			return err
		}
		sum, err = Summarize(tx)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 || all[0].Kind != "acknowledge" || !all[0].Due.Equal(mon.AddDate(0, 0, 7)) || !all[0].Overdue {
		t.Fatalf("all = %+v", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Due.Before(all[i-1].Due) {
			t.Errorf("listing not in due order at %d", i)
		}
	}
	if len(overdue) != 1 || overdue[0].Subject != "https://v.example/cases/a" {
		t.Errorf("overdue = %+v", overdue)
	}
	// Nothing was announced yet: the watcher counts what it announces.
	if s := sum["acknowledge"]; s.Running != 2 || s.Overdue != 0 {
		t.Errorf("acknowledge summary = %+v", s)
	}
}

// TestWatcherAnnouncesOnce moves an injected clock past a deadline and
// checks the change feed gets one near and one passed event, never again,
// not even from a new watcher (a restart).
func TestWatcherAnnouncesOnce(t *testing.T) {
	db := openStore(t)
	mon := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	saveCase(t, db, "https://v.example/cases/a", mon)
	cfg := Default()
	for kind := range cfg.Limits {
		if kind != "acknowledge" {
			cfg.Limits[kind] = Limit{Off: true}
		}
	}
	now := mon
	var seen []Notice
	newWatcher := func() *Watcher {
		return NewWatcher(WatcherConfig{DB: db, Config: cfg, Now: func() time.Time { return now },
			OnNotice: func(_ context.Context, n Notice) { seen = append(seen, n) }})
	}
	w := newWatcher()
	check := func(w *Watcher, want int) {
		t.Helper()
		got, err := w.Check(context.Background())
		if err != nil || len(got) != want {
			t.Fatalf("at %s: Check = %+v, %v; want %d notices", now, got, err, want)
		}
	}
	check(w, 0)
	now = mon.AddDate(0, 0, 5).Add(time.Hour) // Saturday: within 48 h of Monday's deadline
	check(w, 1)
	check(w, 0)
	now = mon.AddDate(0, 0, 7).Add(time.Minute)
	check(w, 1)
	check(w, 0)
	check(newWatcher(), 0)
	overdue := func() int64 {
		t.Helper()
		var sum map[string]Summary
		if err := db.View(context.Background(), func(tx *store.ReadTx) error {
			var err error
			sum, err = Summarize(tx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return sum["acknowledge"].Overdue
	}
	if got := overdue(); got != 1 {
		t.Errorf("overdue acknowledge clocks = %d after the watcher announced one, want 1", got)
	}
	// The vendor answers: the clock stops, and is no longer counted.
	c := &cases.Case{ID: "https://v.example/cases/a", Owner: "https://v.example/actors/v", UpdatedAt: now}
	c.Participants = []*cases.Participant{{Actor: "https://v.example/actors/v", Roles: cvdstate.Vendor,
		ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}}}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
	if got := overdue(); got != 0 {
		t.Errorf("overdue acknowledge clocks = %d after the clock stopped, want 0", got)
	}
	if len(seen) != 2 || seen[0].Event != EventNear || seen[1].Event != EventPassed || !seen[1].Overdue {
		t.Fatalf("notices = %+v", seen)
	}
	events, err := db.EventsAfter(context.Background(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[1].EventType != EventPassed || events[1].CaseID != "https://v.example/cases/a" {
		t.Fatalf("change feed = %+v", events)
	}
	var st NoticeState
	if err := json.Unmarshal(events[1].State, &st); err != nil || st.Kind != "acknowledge" || st.Limit != "5 business days" ||
		!st.Due.Equal(mon.AddDate(0, 0, 7)) || !st.Overdue {
		t.Errorf("passed event state = %+v, %v", st, err)
	}
}

// TestClocksAtTheirTimeSaySo: the embargo's end is due at its own time, so
// its listing and its deadline_passed event say "at its time" for its
// limit, as vultron due does, not "0 hours".
func TestClocksAtTheirTimeSaySo(t *testing.T) {
	db := openStore(t)
	mon := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	end := mon.Add(24 * time.Hour)
	c := &cases.Case{ID: "https://v.example/cases/e", Name: "embargoed", Owner: "https://v.example/actors/v", UpdatedAt: mon,
		EM: cvdstate.EMActive, Embargo: &cases.Embargo{ID: "https://v.example/objects/e", End: end}}
	c.Participants = []*cases.Participant{{Actor: "https://v.example/actors/v", Roles: cvdstate.Vendor | cvdstate.CaseOwner,
		ParticipantState: cvdstate.ParticipantState{RM: cvdstate.RMAccepted}}}
	if err := db.Update(context.Background(), func(tx *store.Tx) error { return cases.Save(tx, c) }); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	for kind := range cfg.Limits {
		if kind != cases.ClockEmbargoEnd {
			cfg.Limits[kind] = Limit{Off: true}
		}
	}
	var all []Deadline
	if err := db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		all, err = List(tx, cfg, mon, false, 10)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if views := Views(all, nil, "https://node.example", func(string) bool { return true }); len(all) != 1 || all[0].Kind != cases.ClockEmbargoEnd || views[0].Limit != "at its time" {
		t.Fatalf("listing = %+v; want the embargo's end, at its time", all)
	}
	now := end.Add(time.Minute)
	w := NewWatcher(WatcherConfig{DB: db, Config: cfg, Now: func() time.Time { return now }})
	if got, err := w.Check(context.Background()); err != nil || len(got) != 1 {
		t.Fatalf("Check = %+v, %v; want the embargo's end passed", got, err)
	}
	evs, err := db.EventsAfter(context.Background(), 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events = %+v, %v", evs, err)
	}
	var st NoticeState
	if err := json.Unmarshal(evs[0].State, &st); err != nil || st.Limit != "at its time" {
		t.Errorf("deadline_passed state = %s; want its limit at its time", evs[0].State)
	}
}

// TestViewsNameActorsAlike: a report's clock, which the index keeps by
// its local actor's name, and a case's clock, kept by the actor's id, are
// written alike: the id, and for one of the node's own actors its name;
// another node's actor, and an id under the node's /actors/ that is no
// actor of the node (one no longer configured), have no name here and are
// not the node's.
func TestViewsNameActorsAlike(t *testing.T) {
	const base = "https://node.example"
	start := time.Date(2026, 5, 4, 9, 0, 0, 0, time.UTC)
	ds := []Deadline{
		{Clock: cases.Clock{Kind: cases.ClockAcknowledge, Start: start, Subject: "https://finder.example/objects/r", Report: true, Local: "vendor"}},
		{Clock: cases.Clock{Kind: cases.ClockEngage, Start: start, Subject: base + "/cases/c", Participant: base + "/actors/vendor"}},
		{Clock: cases.Clock{Kind: cases.ClockEngage, Start: start, Subject: base + "/cases/c", Participant: "https://finder.example/actors/finder"}},
		{Clock: cases.Clock{Kind: cases.ClockEmbargoEnd, Start: start, Subject: base + "/cases/c"}},
		{Clock: cases.Clock{Kind: cases.ClockEngage, Start: start, Subject: base + "/cases/c", Participant: base + "/actors/retired"}},
	}
	type who struct {
		participant, local string
		mine               bool
	}
	want := []who{{base + "/actors/vendor", "vendor", true}, {base + "/actors/vendor", "vendor", true},
		{"https://finder.example/actors/finder", "", false}, {"", "", false}, {base + "/actors/retired", "", false}}
	views := Views(ds, nil, base, func(id string) bool { return id == base+"/actors/vendor" })
	for i, v := range views {
		if got := (who{v.Participant, v.Local, v.Mine}); got != want[i] {
			t.Errorf("%s clock of %s: %+v, want %+v", v.Kind, v.Subject, got, want[i])
		}
	}
}
