// Package webhook posts the node's case events to the URLs an operator
// configures, so that other tools (a ticket workflow, a chat bridge) can
// mirror a case. It owns the delivery of the change feed (store.Event) to
// those URLs: one small JSON document per ledger entry and per step of a
// report (received, validated, invalidated, closed, ...), in order, signed
// with an HMAC of a shared secret, retried with the same backoff as
// ActivityPub deliveries (outbox.RetryPolicy) and given up on after the
// retry horizon. Each URL has a durable cursor in the store, so a restart
// resumes where delivery stopped and nothing is sent twice once
// acknowledged.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"github.com/openvultron/vultron/internal/ctxsleep"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// Headers of a webhook request.
const (
	// SignatureHeader carries "t=<unix seconds>,sha256=<hex HMAC-SHA256 of
	// "<t>.<body>" with the secret>".
	SignatureHeader = "X-Vultron-Signature"
	// EventIDHeader carries the event's id, the same on every retry.
	EventIDHeader = "X-Vultron-Event-Id"
)

// batch is how many events a webhook reads from the feed at a time.
const batch = 100

// Config configures a Dispatcher.
type Config struct {
	DB      *store.DB
	URLs    []string
	Secret  []byte
	Policy  outbox.RetryPolicy // zero: outbox.DefaultRetryPolicy
	Client  *http.Client       // nil: a client with a 30 s timeout that follows no redirect
	Logger  zerolog.Logger
	Now     func() time.Time
	Node    string // the node's public URL, named in every document
	Version string
	// Retention is how long events stay in the feed after every webhook
	// has passed them; zero means 7 days.
	Retention time.Duration
}

// Stats counts a Dispatcher's outcomes since it started.
type Stats struct {
	Delivered, Retried, Skipped uint64
}

// Dispatcher delivers the change feed to the configured URLs.
type Dispatcher struct {
	cfg       Config
	rngMu     sync.Mutex
	rng       *mrand.Rand
	delivered atomic.Uint64
	retried   atomic.Uint64
	skipped   atomic.Uint64
}

// CheckURL returns an error that names u unless it is an absolute http
// or https URL with a host, which a webhook can be posted to.
func CheckURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("webhook URL %q is not an http or https URL such as https://tickets.example.org/hooks", u)
	}
	return nil
}

// redacted returns webhook URL u as the log names it: with its password,
// if it has one, replaced by "xxxxx".
func redacted(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(a webhook URL that does not parse)"
	}
	return p.Redacted()
}

// noRedirects keeps a client from following a redirect: a webhook that
// answers one has not taken the event (its 3xx is the answer, which is
// retried), and following it would post the event to another address, or
// turn the POST into a GET whose 200 would count as the delivery.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// New returns a Dispatcher.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.DB == nil {
		return nil, errors.New("webhook: a store is required")
	}
	for _, u := range cfg.URLs {
		if err := CheckURL(u); err != nil {
			return nil, fmt.Errorf("webhook: %w", err)
		}
	}
	// A URL has one cursor: configured twice, it is still followed once,
	// or each event would be posted to it twice.
	urls := make([]string, 0, len(cfg.URLs))
	for _, u := range cfg.URLs {
		if !slices.Contains(urls, u) {
			urls = append(urls, u)
		}
	}
	cfg.URLs = urls
	if len(cfg.URLs) > 0 && len(cfg.Secret) < 16 {
		return nil, errors.New("webhook: a secret of at least 16 bytes is required to sign webhooks")
	}
	if cfg.Policy == (outbox.RetryPolicy{}) {
		cfg.Policy = outbox.DefaultRetryPolicy()
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirects}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention == 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	var seed [16]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("webhook: seed: %w", err)
	}
	return &Dispatcher{cfg: cfg, rng: mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))}, nil
}

// Stats returns the outcomes so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{Delivered: d.delivered.Load(), Retried: d.retried.Load(), Skipped: d.skipped.Load()}
}

// Document is the JSON body of a webhook request: a ledger entry of a
// case (Case and LogIndex), or a step in the life of a report (Report, and
// Case once the report is in one; no LogIndex), such as its arrival.
type Document struct {
	ID       string          `json:"id"`
	Node     string          `json:"node"`
	Report   string          `json:"report,omitempty"`
	Case     string          `json:"case,omitempty"`
	LogIndex *int64          `json:"logIndex,omitempty"`
	Event    string          `json:"event"`
	Actor    string          `json:"actor,omitempty"`
	Time     time.Time       `json:"time"`
	State    json.RawMessage `json:"state,omitempty"`
}

// Sign returns the SignatureHeader value for body at t.
func Sign(secret, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Run delivers until ctx ends: one goroutine per URL, and the pruning of
// events every webhook has passed.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, u := range d.cfg.URLs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.follow(ctx, u)
		}()
	}
	d.prune(ctx)
	wg.Wait()
	return nil
}

// prune removes, every hour, events older than Retention that every
// webhook has passed.
func (d *Dispatcher) prune(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		upTo, err := d.cfg.DB.LastEventSeq(ctx)
		for _, u := range d.cfg.URLs {
			if c, _, cerr := d.cfg.DB.WebhookCursor(ctx, u); cerr == nil {
				upTo = min(upTo, c.Seq)
			} else {
				err = cerr
			}
		}
		if err == nil {
			if n, perr := d.cfg.DB.PruneEvents(ctx, upTo, d.cfg.Now().Add(-d.cfg.Retention)); perr == nil && n > 0 {
				d.cfg.Logger.Debug().Int("events", n).Msg("webhook: pruned the change feed")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// follow delivers the feed to one URL, in order.
func (d *Dispatcher) follow(ctx context.Context, url string) {
	log := d.cfg.Logger.With().Str("webhook", redacted(url)).Logger()
	// A store that cannot serve (as the node starts, its database not yet
	// up) is tried again every second, and logged once a minute, rather
	// than ending the webhook's delivery until the next restart.
	failed := rate.Sometimes{First: 1, Interval: time.Minute}
	retry := func(what string, err error) bool {
		failed.Do(func() {
			log.Error().Err(err).Msg("webhook: " + what + " (tried again every second, logged at most once a minute)")
		})
		return ctxsleep.Sleep(ctx, time.Second)
	}
	var cur store.WebhookCursor
	for {
		c, known, err := d.cfg.DB.WebhookCursor(ctx, url)
		if err == nil && !known {
			// A new webhook starts with what happens from now on.
			err = d.cfg.DB.SetWebhookCursor(ctx, url, c)
		}
		if err == nil {
			cur = c
			break
		}
		if !retry("read or store its cursor", err) {
			return
		}
	}
	for ctx.Err() == nil {
		changed := d.cfg.DB.Changed()
		events, err := d.cfg.DB.EventsAfter(ctx, cur.Seq, batch)
		if err != nil {
			if !retry("read the change feed", err) {
				return
			}
			continue
		}
		for _, ev := range events {
			ok := d.deliver(ctx, url, ev, &cur, log)
			if !ok {
				return // ctx ended
			}
		}
		if len(events) == batch {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-time.After(time.Minute):
		}
	}
}

// deliver sends one event until it is acknowledged or the retry horizon
// passes, then moves the cursor past it. It returns false when ctx ended.
func (d *Dispatcher) deliver(ctx context.Context, url string, ev store.Event, cur *store.WebhookCursor, log zerolog.Logger) bool {
	doc := Document{ID: fmt.Sprintf("%s#%d", d.cfg.Node, ev.Seq), Node: d.cfg.Node, Report: ev.Report, Case: ev.CaseID,
		Event: ev.EventType, Actor: ev.Actor, Time: ev.Time, State: ev.State, LogIndex: ev.LogIndex}
	if ev.Report != "" {
		// Events that older releases stored name a log index even for
		// a report's step.
		doc.LogIndex = nil
	}
	body, err := json.Marshal(doc)
	if err != nil {
		log.Error().Err(err).Msg("webhook: encode")
		return true
	}
	first := d.cfg.Now()
	for attempt := 1; ; attempt++ {
		retryAfter, err := d.post(ctx, url, doc.ID, body)
		if err == nil {
			// The receiver has the event: record that even if the node is
			// stopping now, or it would send the event again after the
			// restart.
			d.delivered.Add(1)
			cur.Seq, cur.LastError = ev.Seq, ""
			d.saveCursor(context.WithoutCancel(ctx), url, *cur, log)
			return ctx.Err() == nil
		}
		if ctx.Err() != nil {
			return false
		}
		d.rngMu.Lock()
		next, ok := d.cfg.Policy.Next(d.cfg.Now(), first, attempt, retryAfter, d.rng)
		d.rngMu.Unlock()
		if !ok {
			d.skipped.Add(1)
			log.Error().Err(err).Str("event", doc.ID).Int("attempts", attempt).Msg("webhook: gave up on an event after the retry horizon")
			cur.Seq, cur.Skipped, cur.LastError = ev.Seq, cur.Skipped+1, err.Error()
			d.saveCursor(ctx, url, *cur, log)
			return true
		}
		d.retried.Add(1)
		log.Warn().Err(err).Str("event", doc.ID).Int("attempt", attempt).Time("next_attempt", next).Msg("webhook: delivery failed")
		if !ctxsleep.Sleep(ctx, next.Sub(d.cfg.Now())) {
			return false
		}
	}
}

func (d *Dispatcher) saveCursor(ctx context.Context, url string, c store.WebhookCursor, log zerolog.Logger) {
	if err := d.cfg.DB.SetWebhookCursor(ctx, url, c); err != nil && ctx.Err() == nil {
		log.Error().Err(err).Msg("webhook: store cursor")
	}
}

// post sends one signed request. A 2xx is success; anything else is an
// error, with the receiver's Retry-After when it gave one.
func (d *Dispatcher) post(ctx context.Context, url, id string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vultron/"+d.cfg.Version)
	req.Header.Set(EventIDHeader, id)
	req.Header.Set(SignatureHeader, Sign(d.cfg.Secret, body, d.cfg.Now()))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	var retryAfter time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	return retryAfter, fmt.Errorf("the webhook answered %s", resp.Status)
}
