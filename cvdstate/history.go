package cvdstate

import (
	"fmt"
	"slices"
	"strings"
)

// History is an ordered sequence of CS events, such as V F D P X A. A
// complete history holds all six events; a prefix of one is a history of a
// case still under way.
type History []CSEvent

// String writes the events' letters without separators, such as "VFDPXA".
func (h History) String() string {
	var b strings.Builder
	for _, e := range h {
		b.WriteString(e.String())
	}
	return b.String()
}

// ParseHistory reads a history written as letters, such as "VFDPXA" or
// "V F D"; spaces, commas and "≺" or "<" between letters are ignored. It
// checks that the events can happen in that order from the initial state.
func ParseHistory(s string) (History, error) {
	var h History
	for _, r := range s {
		switch r {
		case ' ', ',', '<', '≺', '\t':
			continue
		}
		e, err := ParseCSEvent(string(r))
		if err != nil {
			return nil, fmt.Errorf("parse history %q: %w", s, err)
		}
		h = append(h, e)
	}
	if _, err := h.Final(); err != nil {
		return nil, fmt.Errorf("parse history %q: %w", s, err)
	}
	return h, nil
}

// Final walks h from the initial state vfdpxa and returns the state it
// reaches, or the error of the first event the CS model refuses.
func (h History) Final() (CS, error) {
	var c CS
	for i, e := range h {
		next, _, err := c.Apply(e)
		if err != nil {
			return c, fmt.Errorf("event %d of %s: %w", i+1, h, err)
		}
		c = next
	}
	return c, nil
}

// Complete reports whether h holds all six events.
func (h History) Complete() bool { return len(h) == len(CSEvents()) }

// index returns the position of e in h, or -1.
func (h History) index(e CSEvent) int { return slices.Index(h, e) }

// WeightedHistory is a complete valid history with its probability under
// the uniform random walk: starting from vfdpxa, each next event is chosen
// with equal probability among the events the CS model allows, so a forced
// event is taken with probability one.
type WeightedHistory struct {
	Events      History
	Probability float64
}

// Histories returns every complete valid history (70 of them) with its
// probability, ordered lexicographically by event order V, F, D, P, X, A,
// so the first is VFDPXA. The probabilities sum to one.
func Histories() []WeightedHistory {
	var out []WeightedHistory
	var walk func(c CS, h History, p float64)
	walk = func(c CS, h History, p float64) {
		next := c.Allowed()
		if len(next) == 0 {
			out = append(out, WeightedHistory{Events: slices.Clone(h), Probability: p})
			return
		}
		for _, e := range next {
			to, _, _ := c.Apply(e)
			walk(to, append(h, e), p/float64(len(next)))
		}
	}
	walk(CS{}, nil, 1)
	slices.SortFunc(out, func(a, b WeightedHistory) int { return slices.Compare(a.Events, b.Events) })
	return out
}

// Desideratum is a preferred ordering of two CS events: Before should
// happen before After.
type Desideratum struct {
	Before, After CSEvent
}

// desiderata are the twelve preferred orderings in the protocol's roughly
// descending order of desirability.
var desiderata = []Desideratum{
	{EventD, EventP}, {EventF, EventP}, {EventD, EventX}, {EventD, EventA},
	{EventF, EventX}, {EventV, EventP}, {EventF, EventA}, {EventP, EventX},
	{EventX, EventA}, {EventP, EventA}, {EventV, EventX}, {EventV, EventA},
}

// Desiderata returns the twelve desiderata in descending order of
// desirability: D≺P, F≺P, D≺X, D≺A, F≺X, V≺P, F≺A, P≺X, X≺A, P≺A, V≺X, V≺A.
func Desiderata() []Desideratum { return slices.Clone(desiderata) }

// String writes d as "D≺P".
func (d Desideratum) String() string { return d.Before.String() + "≺" + d.After.String() }

// ParseDesideratum reads "D≺P" or its ASCII form "D<P".
func ParseDesideratum(s string) (Desideratum, error) {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == '≺' || r == '<' || r == ' ' })
	if len(parts) == 2 {
		b, errB := ParseCSEvent(parts[0])
		a, errA := ParseCSEvent(parts[1])
		d := Desideratum{b, a}
		if errB == nil && errA == nil && slices.Contains(desiderata, d) {
			return d, nil
		}
	}
	return Desideratum{}, fmt.Errorf("parse desideratum %q: want one of the twelve, such as \"D≺P\" or \"D<P\"", s)
}

// MarshalText writes d as String does.
func (d Desideratum) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads d as ParseDesideratum does.
func (d *Desideratum) UnmarshalText(text []byte) error {
	v, err := ParseDesideratum(string(text))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Status is what a history says about one desideratum.
type Status uint8

// The three outcomes of a desideratum for a history.
const (
	// Pending: neither event has happened, so the history does not decide it yet.
	Pending Status = iota
	// Met: Before happened and After has not happened before it.
	Met
	// Missed: After happened first.
	Missed
)

var statusNames = []string{"pending", "met", "missed"}

// String returns "pending", "met" or "missed".
func (s Status) String() string { return nameOf("Status", statusNames, int(s)) }

// MarshalText writes the status's name.
func (s Status) MarshalText() ([]byte, error) {
	if err := checkRange("status", statusNames, int(s)); err != nil {
		return nil, err
	}
	return []byte(s.String()), nil
}

// In returns what h says about d. Once Before has happened d is met for
// good, because After can only come later; once After has happened without
// Before, d is missed for good.
func (d Desideratum) In(h History) Status {
	b, a := h.index(d.Before), h.index(d.After)
	switch {
	case b >= 0 && (a < 0 || b < a):
		return Met
	case a >= 0:
		return Missed
	}
	return Pending
}

// Baseline is a desideratum with its frequency f_d among the valid
// histories under the uniform random walk: the chance it is met by luck.
type Baseline struct {
	Desideratum Desideratum
	Frequency   float64
}

// Baselines returns f_d for the twelve desiderata, in Desiderata order.
func Baselines() []Baseline {
	hs := Histories()
	out := make([]Baseline, len(desiderata))
	for i, d := range desiderata {
		out[i].Desideratum = d
		for _, h := range hs {
			if d.In(h.Events) == Met {
				out[i].Frequency += h.Probability
			}
		}
	}
	return out
}

// Skill is the skill coefficient of the MPCVD measurement model: with f_d
// the baseline frequency of a desideratum and observed its observed
// frequency (1 or 0 for one case, a share for many), it is
// α_d = (observed − f_d) / (1 − f_d). It is 0 when outcomes match luck, 1
// when the desideratum is always met, and negative when outcomes are worse
// than luck. For f_d = 1 nothing can beat luck and Skill returns 0.
func Skill(observed, baseline float64) float64 {
	if baseline >= 1 {
		return 0
	}
	return (observed - baseline) / (1 - baseline)
}

// DesideratumResult is one desideratum's outcome in an assessment.
type DesideratumResult struct {
	Desideratum Desideratum `json:"desideratum"`
	Status      Status      `json:"status"`
	Baseline    float64     `json:"baseline"`
	// Skill is α_d for this case: Skill(1, f_d) if met, Skill(0, f_d) if
	// missed, and 0 (no evidence either way) while pending.
	Skill float64 `json:"skill"`
}

// Assessment says which desiderata a case history meets and how that
// compares with luck.
type Assessment struct {
	History History             `json:"-"`
	Results []DesideratumResult `json:"desiderata"`
	Met     int                 `json:"met"`
	Missed  int                 `json:"missed"`
	Pending int                 `json:"pending"`
	// Skill is the mean α_d over the decided desiderata, 0 if none is
	// decided: above 0 the case went better than a random walk would.
	Skill float64 `json:"skill"`
}

// Assess evaluates a case history, complete or still under way, against the
// twelve desiderata and their baselines. It refuses a history the CS model
// does not allow.
func Assess(h History) (Assessment, error) {
	if _, err := h.Final(); err != nil {
		return Assessment{}, fmt.Errorf("assess history: %w", err)
	}
	a := Assessment{History: slices.Clone(h)}
	var sum float64
	for _, b := range Baselines() {
		r := DesideratumResult{Desideratum: b.Desideratum, Status: b.Desideratum.In(h), Baseline: b.Frequency}
		switch r.Status {
		case Met:
			r.Skill = Skill(1, b.Frequency)
			a.Met++
		case Missed:
			r.Skill = Skill(0, b.Frequency)
			a.Missed++
		default:
			a.Pending++
		}
		sum += r.Skill
		a.Results = append(a.Results, r)
	}
	if decided := a.Met + a.Missed; decided > 0 {
		a.Skill = sum / float64(decided)
	}
	return a, nil
}
