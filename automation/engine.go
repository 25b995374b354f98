package automation

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/rules"
	"github.com/openvultron/vultron/store"
	"golang.org/x/time/rate"
)

// Local is a local actor the automation may act for.
type Local struct {
	Name string
	ID   string
}

// Config configures an Engine. DB, Locals and Submit are required.
type Config struct {
	DB *store.DB
	// Locals returns the node's configured actors (not its Case Actors).
	Locals func() []Local
	// Submit sends an activity as local actor name through the node's
	// outbox (outbox.Submitter), exactly as a person's action would be:
	// checked against the protocol, stored, audited and delivered. It
	// returns the activity's id.
	Submit func(ctx context.Context, name string, activity map[string]any) (string, error)
	// Notify posts a rule's notification to a URL; nil drops them (with a
	// log line).
	Notify func(ctx context.Context, url string, n Notification) error
	Now    func() time.Time
	// Interval is how often the engine looks for new decisions when
	// nothing woke it; zero means two seconds.
	Interval time.Duration
	Logger   zerolog.Logger
}

// Engine carries a policy out on a node: it reads each local actor's
// inbox (reports received, invitations) and the node's change feed (case
// entries, deadlines, intelligence) from durable cursors, finds the
// decision points they open, asks the policy, and takes the actions of
// the rules that fire through the outbox. Each decision is taken once: a
// mark in the store, written before its actions are sent, keeps a restart
// from taking it again.
type Engine struct {
	// stepFailed logs a failed step at most once a minute: the loop steps
	// again within a second, and a store that cannot serve for a while
	// (which logs it itself) would flood the log.
	stepFailed rate.Sometimes
	cfg        Config
	policy     atomic.Pointer[rules.Policy]
	wake       chan struct{}
	stepMu     sync.Mutex
}

// New returns an Engine with no policy: it takes no decision until
// SetPolicy gives it one.
func New(cfg Config) (*Engine, error) {
	if cfg.DB == nil || cfg.Locals == nil || cfg.Submit == nil {
		return nil, errors.New("automation: a store, the local actors and a submitter are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	return &Engine{cfg: cfg, wake: make(chan struct{}, 1), stepFailed: rate.Sometimes{First: 1, Interval: time.Minute}}, nil
}

// SetPolicy replaces the policy, whole; nil turns the automation off.
func (e *Engine) SetPolicy(p *rules.Policy) {
	e.policy.Store(p)
	e.Wake()
}

// Policy returns the policy in force, nil if none.
func (e *Engine) Policy() *rules.Policy { return e.policy.Load() }

// Wake makes the engine look for decisions now.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// minStepGap is the least time between two steps: a node that commits
// thousands of times a second does not step as often.
const minStepGap = 200 * time.Millisecond

// Run takes decisions until ctx ends: at once when woken or when the store
// changed, at least every Interval, at most every minStepGap.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := e.Step(ctx); err != nil && ctx.Err() == nil {
			e.stepFailed.Do(func() { e.cfg.Logger.Error().Err(err).Msg("automation: step (logged at most once a minute)") })
		}
		gap := time.NewTimer(minStepGap)
		select {
		case <-ctx.Done():
			gap.Stop()
			return nil
		case <-gap.C:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-e.wake:
		case <-e.cfg.DB.Changed():
		case <-t.C:
		}
	}
}

// The engine's durable state, in the case bucket named by stateBucket:
//
//	feed            the change feed's sequence number read up to
//	inbox NAME      the newest inbox activity of NAME read
//	done KEY        a decision taken (KEY names the point, its subject
//	                and the actor), with the time
//	proposed ID     an embargo proposal (its Invite's id) a rule sent,
//	                which no rule counters
//	countered CASE ACTOR  how many counter-proposals ACTOR's policy sent
//	                in CASE (MaxCounterProposals)
const stateBucket = "automation"

// Limits of one step.
const (
	// maxInboxScan bounds the inbox entries one step reads per actor.
	maxInboxScan = 5000
	// feedBatch is how many change-feed events one read takes.
	feedBatch = 100
	// maxFeedPerStep bounds the change-feed events one step reads.
	maxFeedPerStep = 2000
)

// Step reads what is new since the last step and takes the decisions it
// opens; it returns how many decisions it took. Without a policy it only
// moves its cursors to the newest entries (one inbox entry per actor and
// the feed's last number), so that turning a policy on later does not act
// on what happened while it was off.
func (e *Engine) Step(ctx context.Context) (int, error) {
	e.stepMu.Lock()
	defer e.stepMu.Unlock()
	p := e.Policy()
	var points []point
	var updates []*cursorUpdate
	for _, l := range e.cfg.Locals() {
		ps, u, err := e.inboxPoints(ctx, l, p == nil)
		if err != nil {
			return 0, err
		}
		points, updates = append(points, ps...), append(updates, u)
	}
	ps, u, err := e.feedPoints(ctx, p == nil)
	if err != nil {
		return 0, err
	}
	points, updates = append(points, ps...), append(updates, u)
	n := 0
	if p != nil {
		for _, pt := range points {
			took, err := e.decide(ctx, p, pt)
			if err != nil {
				return n, err
			}
			if took {
				n++
			}
		}
		if err := e.resumeAll(ctx, p); err != nil {
			return n, err
		}
	}
	// The cursors move once the decisions are taken: a crash before
	// reads the same again, and the marks of the decisions taken keep
	// them from being taken twice.
	err = e.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		for _, u := range updates {
			if u != nil {
				if err := putState(tx, u.key, u.value); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// resumeAll takes the postponed actions whose case the node now holds.
func (e *Engine) resumeAll(ctx context.Context, p *rules.Policy) error {
	ids, err := e.pendingCases(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		var c *cases.Case
		if err := e.cfg.DB.View(ctx, func(tx *store.ReadTx) error {
			var err error
			c, err = cases.Load(tx, id)
			return err
		}); err != nil {
			return err
		}
		if c != nil && c.ID != "" {
			if err := e.resume(ctx, p, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// getState and putState read and write the engine's state.
func getState(tx *store.ReadTx, key string) ([]byte, error) {
	b, err := tx.Case(stateBucket)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return b.Get([]byte(key)), nil
}

func putState(tx *store.Tx, key string, v []byte) error {
	b, err := tx.Case(stateBucket)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), v)
}

// markDone records decision key as taken, in tx; it returns false when it
// was taken before.
func markDone(tx *store.Tx, key string, at time.Time) (bool, error) {
	v, err := getState(&tx.ReadTx, "done "+key)
	if err != nil || v != nil {
		return false, err
	}
	return true, putState(tx, "done "+key, binary.BigEndian.AppendUint64(nil, uint64(at.Unix())))
}

// decided reports whether decision key was taken.
func decided(tx *store.ReadTx, key string) (bool, error) {
	v, err := getState(tx, "done "+key)
	return v != nil, err
}

func feedCursor(v []byte) (uint64, error) {
	if v == nil {
		return 0, nil
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("automation: malformed change-feed cursor")
	}
	return binary.BigEndian.Uint64(v), nil
}

// Init takes one step before the node serves: on the first start it
// reads where the inboxes and the change feed stand, so that only what
// comes after is new (and nothing arrives between); after a restart it
// takes the decisions of what arrived while the node was down.
func (e *Engine) Init(ctx context.Context) error {
	_, err := e.Step(ctx)
	return err
}
