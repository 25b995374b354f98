package deadline

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/openvultron/vultron/cases"
)

// Unit is what a limit counts.
type Unit string

// The units of a limit.
const (
	Hours        Unit = "hours"
	Days         Unit = "days"
	BusinessDays Unit = "business days"
)

// Limit is how long one kind of clock may run: N units, or Off.
type Limit struct {
	N    int
	Unit Unit
	Off  bool
}

// String writes the limit as a configuration file does: "5 business days".
func (l Limit) String() string {
	if l.Off {
		return "off"
	}
	return fmt.Sprintf("%d %s", l.N, l.Unit)
}

// Text writes the limit as the listings and the deadline events show it:
// as String does, and "at its time" for a clock due when it starts (the
// embargo's end, an invitation's answer-by time), which no limit runs up
// to.
func (l Limit) Text() string {
	if !l.Off && l.N == 0 {
		return "at its time"
	}
	return l.String()
}

// Config is a node's deadlines: the limit of each kind of clock, the
// calendar business days follow, and how long before a deadline it is
// announced as near.
type Config struct {
	Calendar Calendar
	Limits   map[string]Limit
	// Near is how long before a deadline it is announced, at most half the
	// time the clock runs.
	Near time.Duration
}

// Default returns the deadlines a node keeps unless configured: the first
// answer within 5 business days and triage within 10 (HackerOne's response
// standards), a decision to work on a valid report within 10 business
// days, a fix within 90 days, and the EU Cyber Resilience Act's clocks
// (Article 14) for a vendor once attacks are observed: an early warning
// within 24 hours, a notification within 72 hours, a final report 14 days
// after the fix is ready; the embargo's end is due when it ends, and an
// invitation to an embargo proposal at its RSVP deadline.
func Default() Config {
	return Config{Calendar: DefaultCalendar(), Near: 48 * time.Hour, Limits: map[string]Limit{
		cases.ClockAcknowledge:     {N: 5, Unit: BusinessDays},
		cases.ClockValidate:        {N: 10, Unit: BusinessDays},
		cases.ClockEngage:          {N: 10, Unit: BusinessDays},
		cases.ClockFix:             {N: 90, Unit: Days},
		cases.ClockCRAEarlyWarning: {N: 24, Unit: Hours},
		cases.ClockCRANotification: {N: 72, Unit: Hours},
		cases.ClockCRAFinalReport:  {N: 14, Unit: Days},
		cases.ClockEmbargoEnd:      {N: 0, Unit: Hours},
		cases.ClockEmbargoRSVP:     {N: 0, Unit: Hours},
	}}
}

// Due returns when a clock of kind that started at start is due, and
// false for a kind that is off.
func (c Config) Due(kind string, start time.Time) (time.Time, bool) {
	l, ok := c.Limits[kind]
	if !ok || l.Off {
		return time.Time{}, false
	}
	switch l.Unit {
	case BusinessDays:
		t, err := c.Calendar.AddBusinessDays(start, l.N)
		return t, err == nil
	case Days:
		return start.AddDate(0, 0, l.N), true
	}
	return start.Add(time.Duration(l.N) * time.Hour), true
}

// NearAt returns when a clock that started at start and is due at due is
// announced as near: Near before it, or half-way for a shorter clock.
func (c Config) NearAt(start, due time.Time) time.Time {
	return due.Add(-min(c.Near, due.Sub(start)/2))
}

// MaxSize is the largest deadline configuration read, in bytes.
const MaxSize = 64 << 10

var limitText = regexp.MustCompile(`^(\d{1,5})\s*(business days?|days?|hours?)$`)

// Parse reads a deadline configuration (YAML or JSON) over the defaults:
//
//	timezone: Europe/Berlin
//	weekend: [saturday, sunday]
//	holidays: ["2026-12-25", "2026-12-26"]
//	near: 2 days
//	limits:
//	  acknowledge: 5 business days
//	  engage: off
//	  fix: 90 days
//
// It refuses the whole file, naming the line and the reason, at the first
// fault.
func Parse(data []byte, source string) (Config, error) {
	cfg := Default()
	fail := func(line int, format string, args ...any) (Config, error) {
		where := source
		if line > 0 {
			where = fmt.Sprintf("%s, line %d", source, line)
		}
		return Config{}, fmt.Errorf("deadlines %s: %s", where, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxSize {
		return fail(0, "the file is over the %d bytes a deadline configuration may have", MaxSize)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fail(0, "not valid YAML or JSON: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fail(root.Line, "want a mapping of timezone, weekend, holidays, near and limits")
	}
	seen := map[string]bool{}
	limitLines := map[string]int{} // the line of each limit the file sets
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if seen[k.Value] {
			return fail(k.Line, "key %q already defined", k.Value)
		}
		seen[k.Value] = true
		switch k.Value {
		case "timezone":
			loc, err := time.LoadLocation(v.Value)
			if err != nil || v.Kind != yaml.ScalarNode {
				return fail(v.Line, "timezone %q is not a time zone name such as Europe/Berlin", v.Value)
			}
			cfg.Calendar.Location = loc
		case "weekend":
			if v.Kind != yaml.SequenceNode {
				return fail(v.Line, "weekend must be a list of day names")
			}
			cfg.Calendar.Weekend = [7]bool{}
			for _, item := range v.Content {
				d, ok := weekday(item.Value)
				if !ok {
					return fail(item.Line, "%q is not a day of the week", item.Value)
				}
				cfg.Calendar.Weekend[d] = true
			}
		case "holidays":
			if v.Kind != yaml.SequenceNode {
				return fail(v.Line, "holidays must be a list of dates such as 2026-12-25")
			}
			cfg.Calendar.Holidays = map[string]bool{}
			for _, item := range v.Content {
				if _, err := time.Parse(time.DateOnly, item.Value); err != nil {
					return fail(item.Line, "holiday %q is not a date such as 2026-12-25", item.Value)
				}
				cfg.Calendar.Holidays[item.Value] = true
			}
		case "near":
			l, err := parseLimit(v.Value)
			if err != nil || l.Off || l.Unit == BusinessDays {
				return fail(v.Line, "near must be a number of hours or days, such as 2 days, not %q", v.Value)
			}
			cfg.Near = time.Duration(l.N) * time.Hour
			if l.Unit == Days {
				cfg.Near *= 24
			}
		case "limits":
			if v.Kind != yaml.MappingNode {
				return fail(v.Line, "limits must be a mapping of clock kinds to limits")
			}
			for j := 0; j+1 < len(v.Content); j += 2 {
				kk, kv := v.Content[j], v.Content[j+1]
				if !slices.Contains(cases.ClockKinds(), kk.Value) {
					return fail(kk.Line, "%q is not a kind of clock (want one of %s)", kk.Value, strings.Join(cases.ClockKinds(), ", "))
				}
				l, err := parseLimit(kv.Value)
				if err != nil {
					return fail(kv.Line, "%s: %v", kk.Value, err)
				}
				cfg.Limits[kk.Value] = l
				limitLines[kk.Value] = kv.Line
			}
		default:
			return fail(k.Line, "no key %q (want timezone, weekend, holidays, near or limits)", k.Value)
		}
	}
	if _, err := cfg.Calendar.AddBusinessDays(time.Now(), 1); err != nil {
		return fail(0, "every day is a weekend day or a holiday: the calendar has no business day within twenty years")
	}
	for _, kind := range cases.ClockKinds() {
		// A limit the calendar cannot count has no due time, which would
		// leave its clock off without a word.
		if l, ok := cfg.Limits[kind]; ok && l.Unit == BusinessDays && !l.Off {
			if _, err := cfg.Calendar.AddBusinessDays(time.Now(), l.N); err != nil {
				return fail(limitLines[kind], "%s: %s is more than the calendar holds within twenty years", kind, l)
			}
		}
	}
	return cfg, nil
}

func parseLimit(s string) (Limit, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "off" {
		return Limit{Off: true}, nil
	}
	m := limitText.FindStringSubmatch(s)
	if m == nil {
		return Limit{}, fmt.Errorf("%q is not a limit such as 5 business days, 90 days, 24 hours or off", s)
	}
	n, _ := strconv.Atoi(m[1])
	unit := Hours
	switch {
	case strings.HasPrefix(m[2], "business"):
		unit = BusinessDays
	case strings.HasPrefix(m[2], "day"):
		unit = Days
	}
	return Limit{N: n, Unit: unit}, nil
}

func weekday(s string) (time.Weekday, bool) {
	for d := time.Sunday; d <= time.Saturday; d++ {
		if strings.EqualFold(s, d.String()) || strings.EqualFold(s, d.String()[:3]) {
			return d, true
		}
	}
	return 0, false
}
