package dashboard

import (
	"time"

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/store"
)

// deadlineRow is a deadline as the dashboard shows it: its due time in the
// node's time zone and in UTC.
type deadlineRow struct {
	api.Deadline
	DueUTC string
	// In says how far off the deadline is, or how long ago it passed.
	In string
}

// deadlineLists are the overview's deadlines: the overdue ones and the
// next ones due.
type deadlineLists struct {
	Overdue, Next []deadlineRow
	TimeZone      string
}

// dashboardDeadlines is how many of each list the overview shows.
const dashboardDeadlines = 10

func (d *Dashboard) deadlineRows(ds []deadline.Deadline) []deadlineRow {
	now := d.cfg.Now()
	var out []deadlineRow
	for _, v := range deadline.Views(ds, d.cfg.Deadlines.Calendar.Location, d.cfg.PublicURL, d.cfg.IsLocal) {
		out = append(out, deadlineRow{Deadline: v, DueUTC: v.Due.UTC().Format("2006-01-02 15:04 UTC"), In: deadline.In(v.Due, now)})
	}
	return out
}

// deadlineLists reads the overview's deadlines.
func (d *Dashboard) deadlineLists(tx *store.ReadTx) (deadlineLists, error) {
	now := d.cfg.Now()
	overdue, err := deadline.List(tx, d.cfg.Deadlines, now, true, dashboardDeadlines)
	if err != nil {
		return deadlineLists{}, err
	}
	// The next ones due: the first of each kind that is not overdue yet
	// lies after the overdue ones, so read enough to pass them.
	all, err := deadline.List(tx, d.cfg.Deadlines, now, false, dashboardDeadlines+len(overdue))
	if err != nil {
		return deadlineLists{}, err
	}
	var next []deadline.Deadline
	for _, dl := range all {
		if !dl.Overdue && len(next) < dashboardDeadlines {
			next = append(next, dl)
		}
	}
	loc := d.cfg.Deadlines.Calendar.Location
	if loc == nil {
		loc = time.UTC
	}
	return deadlineLists{Overdue: d.deadlineRows(overdue), Next: d.deadlineRows(next), TimeZone: loc.String()}, nil
}

// caseDeadlineRows is how many deadlines the case page shows unless all
// are asked for: a case of thousands of participants runs thousands of
// clocks, and each row names its participant.
const caseDeadlineRows = 20

// caseDeadlines reads the deadlines of one case, the first limit of them
// by due time (all when limit ≤ 0), and how many there are in all.
func (d *Dashboard) caseDeadlines(tx *store.ReadTx, caseID string, limit int) ([]deadlineRow, int, error) {
	ds, err := deadline.Subject(tx, d.cfg.Deadlines, d.cfg.Now(), caseID)
	if err != nil {
		return nil, 0, err
	}
	shown := firstDeadlines(ds, limit)
	return d.deadlineRows(shown), len(ds), nil
}

// firstDeadlines returns the first limit deadlines of ds, which are in
// due order; all of them when limit ≤ 0.
func firstDeadlines(ds []deadline.Deadline, limit int) []deadline.Deadline {
	if limit > 0 && len(ds) > limit {
		return ds[:limit]
	}
	return ds
}
