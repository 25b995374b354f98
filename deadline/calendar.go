package deadline

import (
	"fmt"
	"time"
)

// Calendar says which days are business days: every day but the weekend
// days and the holidays, in the calendar's time zone.
type Calendar struct {
	Location *time.Location
	Weekend  [7]bool // by time.Weekday
	// Holidays are dates written YYYY-MM-DD in Location.
	Holidays map[string]bool
}

// DefaultCalendar is Monday to Friday in UTC, without holidays.
func DefaultCalendar() Calendar {
	var c Calendar
	c.Location = time.UTC
	c.Weekend[time.Saturday], c.Weekend[time.Sunday] = true, true
	return c
}

func (c Calendar) loc() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// BusinessDay reports whether the day t falls on (in the calendar's zone)
// is a business day.
func (c Calendar) BusinessDay(t time.Time) bool {
	t = t.In(c.loc())
	return !c.Weekend[t.Weekday()] && !c.Holidays[t.Format(time.DateOnly)]
}

// maxCalendarDays bounds the walk of AddBusinessDays: a calendar whose
// every day is a holiday or weekend must not make it run for ever.
const maxCalendarDays = 20 * 366

// AddBusinessDays returns the time n business days after t: the same time
// of day, in the calendar's zone, on the n-th business day after t's day.
// A report received on a Friday afternoon with 5 business days to answer
// is due on the next Friday afternoon. It fails for a calendar with no
// business day within twenty years.
func (c Calendar) AddBusinessDays(t time.Time, n int) (time.Time, error) {
	local := t.In(c.loc())
	y, m, d := local.Date()
	hh, mm, ss := local.Clock()
	for i, days := 0, 0; days < n; i++ {
		if i > maxCalendarDays {
			return time.Time{}, fmt.Errorf("the calendar has no %d business days within %d days of %s", n, maxCalendarDays, t.Format(time.DateOnly))
		}
		d++
		if c.BusinessDay(time.Date(y, m, d, 12, 0, 0, 0, c.loc())) {
			days++
		}
	}
	return time.Date(y, m, d, hh, mm, ss, local.Nanosecond(), c.loc()), nil
}
