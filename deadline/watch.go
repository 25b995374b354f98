package deadline

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/store"
)

// The change-feed events a Watcher appends, which the node's webhooks
// deliver like every other event.
const (
	EventNear   = "deadline_near"
	EventPassed = "deadline_passed"
)

// Notice is a deadline the watcher announced.
type Notice struct {
	Deadline
	Event string // EventNear or EventPassed
}

// NoticeState is the "state" of a deadline event in the change feed and
// in a webhook's document.
type NoticeState struct {
	Kind        string    `json:"kind"`
	Start       time.Time `json:"start"`
	Due         time.Time `json:"due"`
	Limit       string    `json:"limit"`
	Report      bool      `json:"report,omitempty"`
	Name        string    `json:"name,omitempty"`
	Participant string    `json:"participant,omitempty"`
	Local       string    `json:"local,omitempty"`
	Overdue     bool      `json:"overdue"`
}

// WatcherConfig configures a Watcher. DB is required.
type WatcherConfig struct {
	DB     *store.DB
	Config Config
	Now    func() time.Time
	// Interval is how often the clocks are checked; zero means a minute.
	Interval time.Duration
	// Rescan is how often a check starts again from the first clock of
	// each kind, to find clocks indexed behind where the last check
	// stopped (a replica taking up old entries); zero means an hour.
	Rescan time.Duration
	// OnNotice, when set, is called with each notice after it committed.
	OnNotice func(ctx context.Context, n Notice)
	// LocalActorID returns the id of the local actor with the given name,
	// the actor of a notice about a clock of one of the node's own actors
	// (a report it received); nil leaves such notices without an actor.
	LocalActorID func(name string) string
	Logger       zerolog.Logger
}

// Watcher announces, once each, the deadlines that come near and those
// that pass: it appends an event to the change feed and marks the clock
// in the transaction that does so, so that a restart announces nothing
// twice.
type Watcher struct {
	cfg        WatcherConfig
	cursors    map[string][]byte
	lastRescan time.Time
}

// maxExamined bounds the clocks of one kind one check reads; the next
// check goes on from there.
const maxExamined = 5000

// NewWatcher returns a Watcher.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	if cfg.Rescan <= 0 {
		cfg.Rescan = time.Hour
	}
	return &Watcher{cfg: cfg, cursors: map[string][]byte{}}
}

// Run checks the clocks every Interval until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := w.Check(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.Error().Err(err).Msg("deadlines: check")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check announces what came near or passed since the last check, and
// returns the notices it made.
func (w *Watcher) Check(ctx context.Context) ([]Notice, error) {
	now := w.cfg.Now()
	if now.Sub(w.lastRescan) >= w.cfg.Rescan {
		clear(w.cursors)
		w.lastRescan = now
	}
	var notices []Notice
	next := map[string][]byte{}
	err := w.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
		for _, kind := range cases.ClockKinds() {
			l := w.cfg.Config.Limits[kind]
			if l.Off {
				continue
			}
			cursor, examined, settled := w.cursors[kind], 0, true
			err := cases.Clocks(tx, kind, w.cursors[kind], func(cl cases.Clock) bool {
				due, ok := w.cfg.Config.Due(kind, cl.Start)
				if !ok || now.Before(w.cfg.Config.NearAt(cl.Start, due)) {
					return false
				}
				d := Deadline{Clock: cl, Due: due, Limit: l, Overdue: !now.Before(due)}
				switch {
				case d.Overdue && !cl.Passed:
					notices = append(notices, Notice{Deadline: d, Event: EventPassed})
				case !d.Overdue && !cl.Near:
					notices = append(notices, Notice{Deadline: d, Event: EventNear})
				}
				// The cursor passes the clocks that have nothing more to
				// announce: those that are (or are now being) announced as
				// passed, in an unbroken run from the start.
				if settled && d.Overdue {
					cursor = cl.Key
				} else {
					settled = false
				}
				examined++
				return examined < maxExamined
			})
			if err != nil {
				return err
			}
			next[kind] = cursor
		}
		return nil
	})
	if err != nil || len(notices) == 0 {
		if err == nil {
			w.cursors = next
		}
		return nil, err
	}
	var done []Notice
	err = w.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		done = done[:0]
		flags := make([]cases.ClockFlags, len(notices))
		for i, n := range notices {
			flags[i] = cases.ClockFlags{Key: n.Key, Near: n.Event == EventNear, Passed: n.Event == EventPassed}
		}
		applied, err := cases.SetClockFlags(tx, flags)
		if err != nil {
			return err
		}
		for i, n := range notices {
			if !applied[i] {
				continue // the clock stopped or restarted meanwhile
			}
			state, err := json.Marshal(NoticeState{Kind: n.Kind, Start: n.Start, Due: n.Due, Limit: n.Limit.Text(), Report: n.Report,
				Name: n.Name, Participant: n.Participant, Local: n.Local, Overdue: n.Overdue})
			if err != nil {
				return fmt.Errorf("deadline event: %w", err)
			}
			ev := store.Event{CaseID: n.Subject, EventType: n.Event, Actor: n.Participant, Time: now, State: state}
			if n.Report {
				// A report's clock: the event names the report, as a
				// report's steps do, not a case.
				ev.CaseID, ev.Report = "", n.Subject
			}
			if ev.Actor == "" && n.Local != "" && w.cfg.LocalActorID != nil {
				ev.Actor = w.cfg.LocalActorID(n.Local)
			}
			if err := tx.AppendEvent(ev); err != nil {
				return err
			}
			done = append(done, n)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("deadlines: record notices: %w", err)
	}
	w.cursors = next
	for _, n := range done {
		w.cfg.Logger.Info().Str("event", n.Event).Str("kind", n.Kind).Str("subject", n.Subject).Str("participant", n.Participant+n.Local).
			Time("due", n.Due).Msg("deadline")
		if w.cfg.OnNotice != nil {
			w.cfg.OnNotice(ctx, n)
		}
	}
	return done, nil
}
