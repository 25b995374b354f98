package deadline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/store"
)

// Deadline is a running clock with its due time under a configuration.
type Deadline struct {
	cases.Clock
	Due     time.Time
	Limit   Limit
	Overdue bool
}

// MaxList is the most deadlines one listing returns.
const MaxList = 1000

// List returns the deadlines soonest due first, at most limit of them (at
// most MaxList): every running clock, or with overdueOnly those due before
// now. It reads at most limit clocks of each kind, because each kind's
// index is in due order; kinds that are off are left out.
func List(tx *store.ReadTx, cfg Config, now time.Time, overdueOnly bool, limit int) ([]Deadline, error) {
	limit = min(max(limit, 1), MaxList)
	var out []Deadline
	for _, kind := range cases.ClockKinds() {
		l := cfg.Limits[kind]
		if l.Off {
			continue
		}
		n := 0
		err := cases.Clocks(tx, kind, nil, func(cl cases.Clock) bool {
			due, ok := cfg.Due(kind, cl.Start)
			if !ok || (overdueOnly && !due.Before(now)) {
				return false
			}
			out = append(out, Deadline{Clock: cl, Due: due, Limit: l, Overdue: due.Before(now)})
			n++
			return n < limit
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b Deadline) int { return a.Due.Compare(b.Due) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Subject returns the deadlines of one case or report, soonest first.
func Subject(tx *store.ReadTx, cfg Config, now time.Time, subject string) ([]Deadline, error) {
	cls, err := cases.SubjectClocks(tx, subject)
	if err != nil {
		return nil, err
	}
	var out []Deadline
	for _, cl := range cls {
		if due, ok := cfg.Due(cl.Kind, cl.Start); ok {
			out = append(out, Deadline{Clock: cl, Due: due, Limit: cfg.Limits[cl.Kind], Overdue: due.Before(now)})
		}
	}
	slices.SortStableFunc(out, func(a, b Deadline) int { return a.Due.Compare(b.Due) })
	return out, nil
}

// Summary is what the metrics report of one kind of clock.
type Summary struct {
	Running int64
	// Overdue counts the running clocks the watcher announced as passed:
	// every clock past due, once the watcher's next check ran.
	Overdue int64
}

// Summarize returns the running and overdue clocks of each kind from the
// counts the store keeps: its cost does not grow with the number of cases
// or deadlines.
func Summarize(tx *store.ReadTx) (map[string]Summary, error) {
	counts, err := cases.ClockCounts(tx)
	if err != nil {
		return nil, err
	}
	out := map[string]Summary{}
	for _, kind := range cases.ClockKinds() {
		out[kind] = Summary{Running: counts[kind].Running, Overdue: counts[kind].Passed}
	}
	return out, nil
}

// In says how far off a due time is from now ("in 3d", "in 5h"), or how
// long ago it passed ("overdue by 2d").
func In(due, now time.Time) string {
	d := due.Sub(now)
	word := "in "
	if d < 0 {
		d, word = -d, "overdue by "
	}
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%s%dm", word, int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%s%dh", word, int(d.Hours()))
	}
	return fmt.Sprintf("%s%dd", word, int(d.Hours()/24))
}

// Views writes deadlines as the API answers them: due times also in loc
// (the node's time zone), and each clock's actor named alike whether the
// clock is a report's or a case's: Participant its id and, for one of the
// node's own actors (isLocal; their ids actor.ID makes of publicURL, the
// node's public base URL, and their names), Local its name and Mine true.
func Views(ds []Deadline, loc *time.Location, publicURL string, isLocal func(id string) bool) []api.Deadline {
	if loc == nil {
		loc = time.UTC
	}
	out := make([]api.Deadline, 0, len(ds))
	for _, d := range ds {
		participant, local := d.Participant, d.Local
		switch {
		case participant == "" && local != "":
			// A report's clock, which names its local actor by name.
			participant = actor.ID(publicURL, local)
		case participant != "" && local == "" && isLocal(participant):
			if name, ok := strings.CutPrefix(participant, actor.ID(publicURL, "")); ok {
				local = name
			}
		}
		out = append(out, api.Deadline{Kind: d.Kind, Subject: d.Subject, Report: d.Report, Name: d.Name, Participant: participant,
			Local: local, Mine: local != "", Start: d.Start, Due: d.Due,
			DueLocal: d.Due.In(loc).Format("2006-01-02 15:04 MST"), Limit: d.Limit.Text(), Overdue: d.Overdue})
	}
	return out
}
