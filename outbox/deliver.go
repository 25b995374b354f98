package outbox

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/policy"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
	"golang.org/x/time/rate"
)

// BusyWorkers is the number of attempts in flight while
// DelivererConfig.Busy reports inbound load.
const BusyWorkers = 1

// BusyShare is the share of the time that attempts may take while
// DelivererConfig.Busy reports inbound load: after an attempt that took t,
// the next one starts t×(1−BusyShare)/BusyShare later. An attempt is mostly
// an RSA signature, so this bounds the CPU that deliveries take from the
// inbox during a burst (a quarter of one core) without ever stopping them.
const BusyShare = 0.25

// Defaults for zero DelivererConfig fields.
const (
	DefaultWorkers        = 8
	DefaultPollInterval   = time.Second
	DefaultAttemptTimeout = time.Minute
	// DefaultClientTimeout bounds one request of the client NewDeliverer
	// builds when DelivererConfig.Client is nil.
	DefaultClientTimeout = 30 * time.Second
	// DefaultMaxYield is the default of DelivererConfig.MaxYield.
	DefaultMaxYield = 10 * time.Second
)

const (
	// maxDrain bounds how much of a response body is read before the
	// connection is closed: peers answer deliveries with little or nothing.
	maxDrain = 64 << 10
	// maxReasonBody is how much of a peer's JSON error goes into the
	// dead-letter reason.
	maxReasonBody = 200
)

// Queue is the part of the store the Deliverer uses: the delivery queue
// and the stored activities. *store.DB satisfies it.
type Queue interface {
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]store.Delivery, error)
	// CompleteDeliveryDeferred removes a delivered delivery from the queue
	// in a later commit and calls done with the outcome (see
	// store.DB.CompleteDeliveryDeferred).
	CompleteDeliveryDeferred(id uint64, done func(error)) error
	RetryDelivery(ctx context.Context, id uint64, next time.Time, lastErr string) error
	DeadLetter(ctx context.Context, id uint64, reason string) error
	Activity(ctx context.Context, id string) (store.StoredActivity, error)
	// Activities returns the activities ids the queue holds, by id, read
	// together (see store.DB.Activities).
	Activities(ctx context.Context, ids []string) (map[string]store.StoredActivity, error)
}

// GoneQueue is a Queue that can tell the function it runs when a delivery
// is dead-lettered that the recipient's actor is gone, so that the
// follower is removed in the same transaction (store.DB.DeadLetterGone).
// *store.DB satisfies it; with a Queue that does not, such a delivery is
// dead-lettered as any other.
type GoneQueue interface {
	DeadLetterGone(ctx context.Context, id uint64, reason string) error
}

// Defaults of the memory of gone recipients.
const (
	// GoneMemoryTTL is how long the deliveries to a recipient whose actor
	// was found gone, queued before it was, are dropped without a
	// request. After it, the next one is sent, and dropped again if the
	// actor is still gone.
	GoneMemoryTTL = 24 * time.Hour
	// GoneMemorySize bounds the number of gone recipients remembered.
	GoneMemorySize = 10000
)

// KeySource gives the private key a local actor signs its deliveries with.
// The error wraps ErrNoSigningKey when the node holds no key for
// actorName, which no retry mends; any other error (the node's store did
// not answer) makes the delivery try again. A lookup that reads the store
// ends with ctx, the attempt's.
type KeySource interface {
	SigningKey(ctx context.Context, actorName string) (keyID string, key *rsa.PrivateKey, err error)
}

// ErrNoSigningKey says that the node holds no key for a local actor.
var ErrNoSigningKey = errors.New("no signing key for the local actor")

// InboxResolver finds the inbox URL of a recipient actor. An error that
// no retry can fix (the actor is gone, its document is malformed) must
// wrap a Permanent error; any other error makes the delivery retry.
type InboxResolver interface {
	Inbox(ctx context.Context, actorIRI string) (string, error)
}

// DelivererConfig configures NewDeliverer.
type DelivererConfig struct {
	// Queue holds the deliveries and the activities they send; required.
	Queue Queue
	// Keys signs the requests; required.
	Keys KeySource
	// Inboxes resolves recipients to inbox URLs; required.
	Inboxes InboxResolver
	// Client sends the POSTs. Nil means an SSRF-safe client
	// (actor.NewSafeClient) with DefaultClientTimeout. Redirects are never
	// followed, whatever the client says: a signature is bound to the
	// inbox's host, and a peer must not bounce it to another one.
	Client *http.Client
	// Policy is the retry policy. The zero value means DefaultRetryPolicy.
	Policy RetryPolicy
	// Workers is the number of deliveries attempted at once; default
	// DefaultWorkers.
	Workers int
	// Busy, when set, reports that the node is answering inbound requests
	// that peers are waiting on. While it returns true the Deliverer has at
	// most BusyWorkers attempts in flight and spends at most BusyShare of
	// the time on them: signing a request (RSA) is the most expensive thing
	// a node does, and queued deliveries can wait a little while a peer's
	// POST cannot. It never stops delivery entirely, so a node under
	// constant load still drains its queue, and at full speed once the
	// load stops.
	Busy func() bool
	// MaxYield bounds how long deliveries yield to a busy inbox: once the
	// queue has not been empty of due deliveries for this long, the
	// Deliverer sends at full speed however busy the inbox is, until it
	// has caught up. A burst of inbound activities is answered after it;
	// sustained load cannot grow the queue without bound. Default
	// DefaultMaxYield.
	MaxYield time.Duration
	// Logger receives one line per attempt. Activity bodies, keys and
	// signatures are never logged.
	Logger zerolog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
	// PollInterval is how often the queue is checked for due deliveries
	// when nothing calls Wake; default DefaultPollInterval.
	PollInterval time.Duration
	// AttemptTimeout bounds one attempt (inbox resolution, POST, recording
	// the outcome), whatever the client's own timeout; default
	// DefaultAttemptTimeout. Keep it at most half the store's lease TTL
	// (as the node does) so that a delivery is not handed to a second
	// worker while the first one still sends it: a claimed delivery may
	// wait up to one AttemptTimeout for a free worker (see Run), then
	// take up to one.
	AttemptTimeout time.Duration
	// Rand jitters the retry times. Nil means a generator seeded from
	// crypto/rand. The Deliverer serializes its use.
	Rand *rand.Rand
	// Version goes into the User-Agent, "vultron/VERSION"; default "dev".
	Version string
	// Withdrawn, when set, says why a due delivery of activity a is no
	// longer to be sent, "" when it is to be sent: it is asked at every
	// attempt, after the activity is loaded and before anything is signed
	// or posted, so that what changed since the delivery was queued (a
	// recipient removed from the case, cases.Withdrawn) counts. A
	// withdrawn delivery moves to the dead letters with the reason,
	// unsent; an error (the store did not answer) retries it.
	Withdrawn func(ctx context.Context, d store.Delivery, a store.StoredActivity) (string, error)
}

// DeliveryStats counts the outcomes of delivery attempts since the
// Deliverer was created.
type DeliveryStats struct {
	Delivered    uint64 // accepted by the peer
	Retried      uint64 // failed transiently, scheduled again
	DeadLettered uint64 // moved to the dead letters
	// Withdrawn counts the deliveries DelivererConfig.Withdrawn withdrew:
	// moved to the dead letters unsent.
	Withdrawn uint64
	// Ed25519 counts the requests signed with RFC 9421 and Ed25519, and
	// Knocks those a peer refused and was asked again with RSA.
	Ed25519 uint64
	Knocks  uint64
}

// Deliverer sends queued deliveries: it signs each POST with the key of
// the activity's local actor, retries transient failures under its
// RetryPolicy and moves permanent failures and deliveries past the retry
// horizon to the dead letters. It is safe for concurrent use; Run should
// be called by one goroutine at a time.
type Deliverer struct {
	// readFailed logs a failure to read the due deliveries at most once
	// a minute: the loop tries again every second, and a store that
	// cannot serve for a while (which logs it itself) would flood the log.
	readFailed     rate.Sometimes
	queue          Queue
	keys           KeySource
	inboxes        InboxResolver
	client         *http.Client
	policy         RetryPolicy
	workers        int
	busy           func() bool
	maxYield       time.Duration
	log            zerolog.Logger
	now            func() time.Time
	pollInterval   time.Duration
	attemptTimeout time.Duration
	userAgent      string
	withdrawn      func(ctx context.Context, d store.Delivery, a store.StoredActivity) (string, error)

	rngMu sync.Mutex
	rng   *rand.Rand

	// last is the activity the last attempt read (see activity), and
	// claimed, by activity id, the read of the activities of the claim
	// that holds a delivery of it (see readClaimed); both are guarded by
	// lastMu.
	lastMu  sync.Mutex
	last    store.StoredActivity
	claimed map[string]*claimRead

	wake chan struct{}

	// abandoned is cancelled by Abandon: the attempts in flight derive
	// their contexts from it as well as from their own timeout.
	abandoned context.Context
	abandon   context.CancelFunc

	// edKeys and caps are the key source and the inbox resolver when they
	// offer Ed25519 keys and recipients' capabilities; nil otherwise.
	edKeys    Ed25519KeySource
	caps      SignatureCapabilities
	sigMemory *expiringSet
	// gone holds the recipients whose actor was found gone (410) lately:
	// their other deliveries queued before then are dropped without a
	// request.
	gone *expiringSet

	delivered    atomic.Uint64
	retried      atomic.Uint64
	deadLettered atomic.Uint64
	withdrawals  atomic.Uint64
	ed25519      atomic.Uint64
	knocks       atomic.Uint64
}

// NewDeliverer returns a Deliverer. Queue, Keys and Inboxes are required.
func NewDeliverer(cfg DelivererConfig) (*Deliverer, error) {
	if cfg.Queue == nil || cfg.Keys == nil || cfg.Inboxes == nil {
		return nil, errors.New("deliverer: a queue, a key source and an inbox resolver are required")
	}
	if cfg.Workers < 0 || cfg.PollInterval < 0 || cfg.AttemptTimeout < 0 || cfg.MaxYield < 0 {
		return nil, errors.New("deliverer: workers, poll interval, attempt timeout and the longest yield must not be negative")
	}
	if cfg.Policy == (RetryPolicy{}) {
		cfg.Policy = DefaultRetryPolicy()
	}
	if cfg.Policy.First <= 0 || cfg.Policy.Max < cfg.Policy.First || cfg.Policy.Horizon <= 0 {
		return nil, fmt.Errorf("deliverer: retry policy needs 0 < First <= Max and a positive Horizon (got First %v, Max %v, Horizon %v)",
			cfg.Policy.First, cfg.Policy.Max, cfg.Policy.Horizon)
	}
	if cfg.Workers == 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.AttemptTimeout == 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.MaxYield == 0 {
		cfg.MaxYield = DefaultMaxYield
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.Rand == nil {
		var seed [16]byte
		if _, err := crand.Read(seed[:]); err != nil {
			return nil, fmt.Errorf("deliverer: seed the jitter generator: %w", err)
		}
		cfg.Rand = rand.New(rand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))
	}
	var client http.Client
	if cfg.Client != nil {
		client = *cfg.Client
	} else {
		client = *actor.NewSafeClient(actor.SafeClientOptions{Timeout: DefaultClientTimeout, MaxRedirects: -1, IdleConnsPerHost: cfg.Workers})
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	edKeys, _ := cfg.Keys.(Ed25519KeySource)
	caps, _ := cfg.Inboxes.(SignatureCapabilities)
	abandoned, abandon := context.WithCancel(context.Background())
	return &Deliverer{
		readFailed:     rate.Sometimes{First: 1, Interval: time.Minute},
		abandoned:      abandoned,
		abandon:        abandon,
		edKeys:         edKeys,
		caps:           caps,
		sigMemory:      newExpiringSet(SignatureMemorySize, SignatureMemoryTTL),
		gone:           newExpiringSet(GoneMemorySize, GoneMemoryTTL),
		queue:          cfg.Queue,
		keys:           cfg.Keys,
		inboxes:        cfg.Inboxes,
		client:         &client,
		policy:         cfg.Policy,
		workers:        cfg.Workers,
		busy:           cfg.Busy,
		maxYield:       cfg.MaxYield,
		log:            cfg.Logger,
		now:            cfg.Now,
		pollInterval:   cfg.PollInterval,
		attemptTimeout: cfg.AttemptTimeout,
		userAgent:      "vultron/" + cfg.Version,
		withdrawn:      cfg.Withdrawn,
		rng:            cfg.Rand,
		wake:           make(chan struct{}, 1),
	}, nil
}

// Wake tells Run that deliveries may have become due, so it checks the
// queue now instead of at the next poll. It never blocks; the outbox and
// the inbox call it after queuing deliveries.
func (d *Deliverer) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Abandon ends the attempts in flight: what they were sending stays
// pending, unrecorded, and is sent again at the next start (their leases
// end with the process). A node calls it when its shutdown deadline
// passes, so that Run, whose ctx is already cancelled, returns at once
// instead of when the slowest receiver answers, and nothing writes to the
// store after the node has closed it.
func (d *Deliverer) Abandon() { d.abandon() }

// Stats returns the outcome counters.
func (d *Deliverer) Stats() DeliveryStats {
	return DeliveryStats{
		Delivered:    d.delivered.Load(),
		Retried:      d.retried.Load(),
		DeadLettered: d.deadLettered.Load(),
		Withdrawn:    d.withdrawals.Load(),
		Ed25519:      d.ed25519.Load(),
		Knocks:       d.knocks.Load(),
	}
}

// Run delivers due deliveries with a fixed pool of Workers goroutines
// until ctx is cancelled. It checks the queue whenever a worker finishes,
// Wake is called or PollInterval passes.
//
// It keeps up to Workers more deliveries claimed than its workers are
// attempting, so that a worker that finishes starts the next one at once.
//
// When ctx is cancelled Run takes no new work, waits for the attempts in
// flight to finish (each bounded by AttemptTimeout, or ended by Abandon)
// and returns nil.
// Deliveries handed out but not yet started (up to Workers) stay pending
// in the store; their leases keep them from this process until the
// store's lease TTL passes, and a restarted node sends them at once.
func (d *Deliverer) Run(ctx context.Context) error {
	// Up to Workers deliveries are attempted and as many more wait, claimed,
	// for the next free worker (see below); every one of them reports to
	// finished, so neither channel ever blocks its sender.
	jobs := make(chan store.Delivery, 2*d.workers)
	finished := make(chan time.Duration, 2*d.workers) // each attempt's duration
	var wg sync.WaitGroup
	for range d.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for dl := range jobs {
				start := time.Now()
				if ctx.Err() == nil {
					d.attempt(ctx, dl)
				}
				finished <- time.Since(start)
			}
		}()
	}
	defer func() {
		close(jobs)
		wg.Wait()
	}()

	timer := time.NewTimer(d.pollInterval)
	defer timer.Stop()
	inFlight := 0
	// resume is when the next attempt may start while the inbox is busy
	// (see BusyShare); it is measured on the monotonic clock, not d.now.
	var resume time.Time
	// caughtUp is when the queue last had no more due deliveries than
	// were asked for (maxYield counts from it).
	caughtUp := time.Now()
	yielding := func() bool {
		return d.busy != nil && time.Since(caughtUp) < d.maxYield && d.busy()
	}
	done := func(took time.Duration) {
		inFlight--
		if yielding() {
			resume = time.Now().Add(time.Duration(float64(took) * (1 - BusyShare) / BusyShare))
		}
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		limit := d.workers
		wait := d.pollInterval
		if yielding() {
			limit = min(limit, BusyWorkers)
			if pause := time.Until(resume); pause > 0 {
				limit, wait = 0, min(wait, pause)
			}
		}
		// Read ahead: claim up to limit more than the workers can start,
		// so that a worker that finishes takes the next delivery at once
		// rather than waiting for this loop's next claim (on a shared
		// store a round trip and a commit). A delivery waits for a worker
		// at most one AttemptTimeout: each attempt in flight ends within
		// it and frees a worker for the next one in the queue. Not while
		// yielding to a busy inbox, when deliveries should wait unclaimed.
		ahead := limit
		if yielding() {
			ahead = 0
		}
		if free := limit + ahead - inFlight; free > 0 {
			due, err := d.queue.DueDeliveries(ctx, d.now(), free)
			if err != nil && ctx.Err() == nil {
				d.readFailed.Do(func() { d.log.Error().Err(err).Msg("read due deliveries (logged at most once a minute)") })
			}
			if err == nil && len(due) < free {
				caughtUp = time.Now()
			}
			if len(due) > free {
				// A queue must not hand out more than asked: the ones left
				// out stay leased, and their lanes wait, until the lease
				// ends. Say so rather than drop them silently.
				extra := make([]uint64, 0, len(due)-free)
				for _, dl := range due[free:] {
					extra = append(extra, dl.ID)
				}
				d.log.Error().Int("asked", free).Int("handed", len(due)).Uints64("left_leased", extra).
					Msg("the delivery queue handed out more deliveries than asked; those left out wait for their lease to end")
				due = due[:free]
			}
			d.readClaimed(due)
			for _, dl := range due {
				// Never blocks: at most 2*d.workers deliveries are outstanding.
				jobs <- dl
				inFlight++
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
		case took := <-finished:
			done(took)
		case <-timer.C:
		}
		// Collect every other finished attempt without waiting.
		for drained := false; !drained; {
			select {
			case took := <-finished:
				done(took)
			default:
				drained = true
			}
		}
	}
}

// activity returns the stored activity id. The one last read is kept: a
// case event goes to every participant, so consecutive attempts send the
// same activity, and a store read per delivery (a round trip on a shared
// store) would be repeated work. It cannot go stale: the store keeps one
// body per activity id and never changes it.
func (d *Deliverer) activity(ctx context.Context, id string) (store.StoredActivity, error) {
	d.lastMu.Lock()
	last := d.last
	cr := d.claimed[id]
	delete(d.claimed, id)
	d.lastMu.Unlock()
	if cr != nil {
		if act, ok := cr.get(ctx, d.queue, id); ok {
			d.lastMu.Lock()
			d.last = act
			d.lastMu.Unlock()
			return act, nil
		}
	}
	if last.ID == id && id != "" {
		return last, nil
	}
	act, err := d.queue.Activity(ctx, id)
	if err != nil {
		return act, err
	}
	act.ID = id
	d.lastMu.Lock()
	d.last = act
	d.lastMu.Unlock()
	return act, nil
}

// claimRead is the read, together, of the activities of the deliveries of
// one claim. The first attempt that needs one of them makes it; the
// others of the claim wait for it and take theirs.
type claimRead struct {
	ids  []string
	once sync.Once
	acts map[string]store.StoredActivity
}

// get returns the activity id from the claim's read, making the read if
// no attempt has yet; ok is false when the read failed or did not find
// it, and the attempt reads it alone.
func (c *claimRead) get(ctx context.Context, q Queue, id string) (store.StoredActivity, bool) {
	c.once.Do(func() {
		// An error leaves acts empty: every attempt then reads its own.
		c.acts, _ = q.Activities(ctx, c.ids)
	})
	act, ok := c.acts[id]
	act.ID = id
	return act, ok
}

// readClaimed arranges for the activities of the deliveries due, just
// claimed, that neither the last attempt nor an earlier claim is reading
// to be read together by the first of their attempts: a claim of
// deliveries of different activities (the acknowledgements of a burst of
// reports) then costs one read, on PostgreSQL one round trip, instead of
// one per delivery, and the dispatcher itself waits for none. claimed
// holds no more than the deliveries outstanding (it is emptied when it
// would hold more, as when a shutdown skipped attempts).
func (d *Deliverer) readClaimed(due []store.Delivery) {
	d.lastMu.Lock()
	defer d.lastMu.Unlock()
	cr := &claimRead{}
	for _, dl := range due {
		if _, reading := d.claimed[dl.ActivityID]; !reading && dl.ActivityID != d.last.ID && !slices.Contains(cr.ids, dl.ActivityID) {
			cr.ids = append(cr.ids, dl.ActivityID)
		}
	}
	if len(cr.ids) < 2 {
		return // one read either way
	}
	if d.claimed == nil || len(d.claimed)+len(cr.ids) > 4*d.workers {
		d.claimed = make(map[string]*claimRead, len(cr.ids))
	}
	for _, id := range cr.ids {
		d.claimed[id] = cr
	}
}

// attemptResult is what one attempt found out, for the queue and the log.
type attemptResult struct {
	inbox      string
	signature  string // SignatureCavageRSA or SignatureRFC9421Ed25519: what the last request carried
	status     int
	outcome    outcome
	reason     string        // why it failed; empty on success
	retryAfter time.Duration // the peer's Retry-After, if any
	// gone says that the recipient is gone: its actor document or its
	// inbox (or the shared inbox it stands for) answered 410 Gone.
	gone bool
}

// attempt sends one delivery and records its outcome in the queue. It
// runs under its own timeout and is not cut short by the cancellation of
// ctx, so that a shutdown lets the attempts in flight finish.
func (d *Deliverer) attempt(ctx context.Context, dl store.Delivery) {
	// A stopping node lets the attempts in flight finish (Run's ctx ends
	// only new work) until it abandons them.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.attemptTimeout)
	defer cancel()
	defer context.AfterFunc(d.abandoned, cancel)()
	start := d.now()
	res := d.send(ctx, dl)
	duration := d.now().Sub(start)
	if res.outcome != delivered && d.abandoned.Err() != nil {
		// Not a failure of the receiver: the delivery is neither retried
		// later nor dead-lettered, but stays due.
		d.log.Info().Uint64("delivery_id", dl.ID).Str("activity_id", dl.ActivityID).Str("recipient", dl.Recipient).
			Dur("duration", duration).Msg("delivery abandoned at shutdown; it is sent again at the next start")
		return
	}

	// The outcome is written under a bound of its own: an attempt that
	// used its whole time (a peer that never answered) has ended ctx, and
	// its retry must still be recorded, or the delivery would wait out its
	// lease instead of its back-off, its attempts never counted. Abandon
	// ends it as it ends the attempt: nothing is to write to the store
	// once the node has given up waiting.
	record, cancelRecord := context.WithTimeout(context.WithoutCancel(ctx), d.attemptTimeout)
	defer cancelRecord()
	defer context.AfterFunc(d.abandoned, cancelRecord)()
	var next time.Time
	var recordErr error
	switch res.outcome {
	case delivered:
		// The completion needs no fsync of its own: if the node stops
		// before it commits, the delivery is sent again and the receiver
		// drops the duplicate. Its lane stays blocked until it commits,
		// and the commit wakes Run for the lane's next delivery.
		recordErr = d.queue.CompleteDeliveryDeferred(dl.ID, func(err error) {
			if err != nil {
				d.log.Error().Err(err).Uint64("delivery_id", dl.ID).Str("activity_id", dl.ActivityID).
					Msg("delivery succeeded but its completion was not stored; it will be sent again")
				return
			}
			d.delivered.Add(1)
			d.Wake()
		})
	case retry:
		var ok bool
		next, ok = d.nextAttempt(d.now(), dl, res.retryAfter)
		if ok {
			recordErr = d.queue.RetryDelivery(record, dl.ID, next, res.reason)
			if recordErr == nil {
				d.retried.Add(1)
			}
			break
		}
		res.outcome = permanent
		res.reason = "retry horizon passed: last error: " + res.reason
		recordErr = d.queue.DeadLetter(record, dl.ID, res.reason)
		if recordErr == nil {
			d.deadLettered.Add(1)
		}
	case withdrawn:
		recordErr = d.queue.DeadLetter(record, dl.ID, res.reason)
		if recordErr == nil {
			d.withdrawals.Add(1)
		}
	default:
		if res.gone && !shared(dl.Recipient) {
			d.gone.add(dl.Recipient, d.now())
		}
		if gq, ok := d.queue.(GoneQueue); ok && res.gone {
			recordErr = gq.DeadLetterGone(record, dl.ID, res.reason)
		} else {
			recordErr = d.queue.DeadLetter(record, dl.ID, res.reason)
		}
		if recordErr == nil {
			d.deadLettered.Add(1)
		}
	}

	var ev *zerolog.Event
	switch {
	case recordErr != nil:
		ev = d.log.Error().AnErr("record_error", recordErr)
	case res.outcome == delivered:
		ev = d.log.Info()
	default:
		ev = d.log.Warn()
	}
	ev = ev.Uint64("delivery_id", dl.ID).
		Str("activity_id", dl.ActivityID).
		Str("actor", dl.Actor).
		Str("recipient", dl.Recipient).
		Str("inbox", res.inbox).
		Str("signature", res.signature).
		Int("attempt", dl.Attempts+1).
		Int("status", res.status).
		Str("outcome", res.outcome.String()).
		Dur("duration", duration)
	if res.reason != "" {
		ev = ev.Str("error", res.reason)
	}
	if !next.IsZero() {
		ev = ev.Time("next_attempt", next)
	}
	ev.Msg("delivery attempt")
}

// shared reports whether a delivery recipient is a shared inbox, which
// names no actor: that it is gone says nothing of the followers it
// stands for, whose deliveries are not dropped for it.
func shared(recipient string) bool {
	_, ok := social.IsSharedInbox(recipient)
	return ok
}

// nextAttempt asks the policy when dl is tried again after its failure at
// now.
func (d *Deliverer) nextAttempt(now time.Time, dl store.Delivery, retryAfter time.Duration) (time.Time, bool) {
	d.rngMu.Lock()
	defer d.rngMu.Unlock()
	return d.policy.Next(now, dl.FirstQueued, dl.Attempts+1, retryAfter, d.rng)
}

// send makes one attempt at dl: it loads the activity, resolves the
// recipient's inbox, signs and posts the stored bytes and classifies the
// answer.
func (d *Deliverer) send(ctx context.Context, dl store.Delivery) attemptResult {
	fail := func(inbox string, err error) attemptResult {
		return attemptResult{inbox: inbox, outcome: classify(0, err), reason: err.Error()}
	}
	// A dead letter an operator retried (no attempt yet, a last error
	// kept) is sent whatever the memory says, and so is a delivery queued
	// after the actor was found gone: something new (a Follow it sent
	// since, a case it takes part in) addresses it, and an actor that
	// acts again is not gone.
	retried := dl.Attempts == 0 && dl.LastError != ""
	if goneAt, ok := d.gone.since(dl.Recipient, d.now()); ok && !retried && !dl.FirstQueued.After(goneAt) {
		return attemptResult{outcome: permanent, gone: true,
			reason: fmt.Sprintf("not sent: the actor %s is gone (a delivery to it was answered 410 Gone lately)", dl.Recipient)}
	}
	act, err := d.activity(ctx, dl.ActivityID)
	if errors.Is(err, store.ErrNotFound) {
		return fail("", Permanent(fmt.Errorf("load activity %s: it is not stored", dl.ActivityID)))
	}
	if err != nil {
		return fail("", fmt.Errorf("load activity %s: %w", dl.ActivityID, err))
	}
	if len(act.Body) == 0 {
		return fail("", Permanent(fmt.Errorf("load activity %s: its stored body is empty", dl.ActivityID)))
	}
	if d.withdrawn != nil {
		reason, err := d.withdrawn(ctx, dl, act)
		if err != nil {
			return fail("", fmt.Errorf("check that %s is still to receive %s: %w", dl.Recipient, dl.ActivityID, err))
		}
		if reason != "" {
			return attemptResult{outcome: withdrawn, reason: reason}
		}
	}
	keyID, key, err := d.keys.SigningKey(ctx, dl.Actor)
	switch {
	case errors.Is(err, ErrNoSigningKey), err == nil && (key == nil || keyID == ""):
		return fail("", Permanent(fmt.Errorf("no signing key for local actor %q", dl.Actor)))
	case err != nil:
		return fail("", fmt.Errorf("the signing key of local actor %q: %w", dl.Actor, err))
	}
	inbox, err := d.inboxes.Inbox(ctx, dl.Recipient)
	if err != nil {
		res := fail("", fmt.Errorf("resolve the inbox of %s: %w", dl.Recipient, namedOnce(err, dl.Recipient)))
		if status, ok := fetchStatus(err); ok && status == http.StatusGone && res.outcome == permanent {
			res.gone = true
		}
		return res
	}
	if _, err := parseHTTPURL(inbox); err != nil {
		return fail(inbox, Permanent(fmt.Errorf("inbox of %s: %w", dl.Recipient, err)))
	}

	// post sends the stored bytes to inbox, signed with Ed25519 when ed
	// is set and with RSA otherwise.
	post := func(ed *actor.Ed25519Key) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, inbox, bytes.NewReader(act.Body))
		if err != nil {
			return nil, Permanent(fmt.Errorf("build request to %s: %w", inbox, err))
		}
		req.Header.Set("Content-Type", actor.ContentType)
		req.Header.Set("Accept", actor.ContentType)
		req.Header.Set("User-Agent", d.userAgent)
		if ed != nil {
			err = actor.SignRequestEd25519(req, act.Body, ed.KeyID, ed.Key, d.now())
			d.ed25519.Add(1)
		} else {
			err = actor.SignRequest(req, act.Body, keyID, key, d.now())
		}
		if err != nil {
			return nil, Permanent(fmt.Errorf("sign the request: %w", err))
		}
		resp, err := d.client.Do(req)
		if errors.Is(err, actor.ErrAddressRefused) || errors.Is(err, policy.ErrNotAllowed) {
			// The node never connects there (an address it refuses, a
			// host off its allow-list): no retry changes that.
			return nil, Permanent(fmt.Errorf("post to %s: %w", inbox, namedOnce(err, inbox)))
		}
		if err != nil {
			return nil, fmt.Errorf("post to %s: %w", inbox, namedOnce(err, inbox))
		}
		return resp, nil
	}
	signature := SignatureCavageRSA
	var resp *http.Response
	if ed, ok := d.ed25519For(dl.Actor, dl.Recipient, inbox); ok {
		signature = SignatureRFC9421Ed25519
		resp, err = post(&ed)
		if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest) {
			// Double knock: the same delivery once more with RSA; the
			// origin is remembered only if RSA is what it takes.
			drain(resp)
			d.knocks.Add(1)
			signature = SignatureCavageRSA
			if resp, err = post(nil); err == nil && resp.StatusCode/100 == 2 {
				d.sigMemory.add(origin(inbox), d.now())
			}
		}
	} else {
		resp, err = post(nil)
	}
	if err != nil {
		res := fail(inbox, err)
		res.signature = signature
		return res
	}
	res := attemptResult{inbox: inbox, signature: signature, status: resp.StatusCode, outcome: classify(resp.StatusCode, nil)}
	peerErr := drain(resp)
	if res.outcome == delivered {
		return res
	}
	res.reason = "peer answered " + statusText(resp.StatusCode)
	if peerErr != "" {
		res.reason += ": " + peerErr
	}
	res.gone = resp.StatusCode == http.StatusGone
	if resp.StatusCode == http.StatusUnauthorized {
		// The peer may verify with a stale copy of the actor's key (it
		// was rotated since the peer cached it, or the peer was restored
		// with an old cache after it was down) and fetch it again: tried
		// again with backoff, a bounded number of times, and at least
		// once after an attempt that failed otherwise (the first the peer
		// answered since it was down).
		again := strings.HasPrefix(dl.LastError, "peer answered "+statusText(resp.StatusCode))
		if dl.Attempts+1 < MaxUnauthorizedAttempts || !again {
			res.outcome = retry
		} else {
			res.reason = fmt.Sprintf("peer answered %s at attempt %d, as at the attempt before", statusText(resp.StatusCode), dl.Attempts+1)
			if peerErr != "" {
				res.reason += ": " + peerErr
			}
		}
	}
	if res.outcome == retry {
		res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), d.now())
	}
	return res
}

// namedOnce returns err, the failure of a request to rawURL, for a
// reason that names rawURL already: without the "fetch URL: " that
// actor.Fetcher puts before its errors, and with the HTTP client's
// *url.Error ("Get \"URL\": cause") read as its cause alone, since a
// reason that repeats a long URL two or three times hides the cause
// behind it. It still unwraps to err: what failed (a refused
// connection, a status, Permanent) is found in it as before.
func namedOnce(err error, rawURL string) error {
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		msg = strings.Replace(msg, ue.Error(), ue.Err.Error(), 1)
	}
	msg = strings.Replace(msg, "fetch "+rawURL+": ", "", 1)
	return &namedOnceError{msg: msg, err: err}
}

// namedOnceError is an error whose message no longer repeats the URL
// its caller names (namedOnce).
type namedOnceError struct {
	msg string
	err error
}

func (e *namedOnceError) Error() string { return e.msg }
func (e *namedOnceError) Unwrap() error { return e.err }

// drain reads what is left of a response body, up to maxDrain bytes, and
// closes it so the connection can be reused. When the body is a JSON
// document (an error description) it returns its first bytes, made safe
// to log.
func drain(resp *http.Response) string {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxDrain))
	if !strings.Contains(strings.ToLower(resp.Header.Get("Content-Type")), "json") {
		return ""
	}
	return problem.Printable(string(body), maxReasonBody)
}

// statusText returns "403 Forbidden", or just the number for a code
// without a standard text.
func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return fmt.Sprintf("%d %s", code, t)
	}
	return fmt.Sprint(code)
}

// Permanent marks err as a failure no retry can fix, so that a delivery
// failing with it goes straight to the dead letters. InboxResolver
// implementations use it for recipients that do not exist or whose
// documents are unusable. The message of the result is err's.
func Permanent(err error) error {
	if err == nil || errors.Is(err, errPermanent) {
		return err
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	return errors.Is(err, errPermanent)
}

// permanentError is an error marked with Permanent.
type permanentError struct{ err error }

func (e permanentError) Error() string        { return e.err.Error() }
func (e permanentError) Unwrap() error        { return e.err }
func (e permanentError) Is(target error) bool { return target == errPermanent }
