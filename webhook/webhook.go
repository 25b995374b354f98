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
//
// A webhook that refuses an event for good (PermanentStatus: a 400, 401,
// 403, 404, 410 or 422) PauseAfter times in a row is paused rather than
// retried until the horizon, which would hold back every later event for
// days: its cursor records the pause, with an audit record, nothing more
// is sent to it, and its events stay in the feed (pruning never passes a
// cursor) until an operator resumes it (Resume), which starts again, in
// order, with the event it refused.
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

	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/internal/ctxsleep"
	"github.com/openvultron/vultron/internal/urlsecret"
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
	// PauseAfter is how many permanent refusals in a row (PermanentStatus)
	// pause a webhook; zero means DefaultPauseAfter.
	PauseAfter int
}

// DefaultPauseAfter is how many permanent refusals in a row pause a
// webhook unless Config says otherwise: enough to ride out a receiver's
// brief misconfiguration, few enough that a receiver that is gone does
// not hold back its later events until the retry horizon.
const DefaultPauseAfter = 5

// ErrUnknownWebhook is what Resume returns (wrapped) for an id that names
// none of the configured webhooks.
var ErrUnknownWebhook = errors.New("no webhook has that id")

// PermanentStatus reports whether a webhook's answer with HTTP status
// code is a refusal that retrying the same request does not change: the
// request is malformed for it (400, 422), the node is not let in (401,
// 403) or the URL has nothing, or nothing any more, behind it (404, 410).
func PermanentStatus(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusGone, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// statusError is a webhook's answer other than a 2xx.
type statusError struct {
	code   int
	status string
}

func (e *statusError) Error() string { return "the webhook answered " + e.status }

// Stats counts a Dispatcher's outcomes since it started.
type Stats struct {
	Delivered, Retried, Skipped uint64
	// Paused counts the webhooks paused after permanent refusals.
	Paused uint64
}

// Dispatcher delivers the change feed to the configured URLs.
type Dispatcher struct {
	cfg       Config
	rngMu     sync.Mutex
	rng       *mrand.Rand
	delivered atomic.Uint64
	retried   atomic.Uint64
	skipped   atomic.Uint64
	paused    atomic.Uint64
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

// host returns the host of webhook URL u, which audit records name as
// the remote.
func host(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Host
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
	if cfg.PauseAfter <= 0 {
		cfg.PauseAfter = DefaultPauseAfter
	}
	var seed [16]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("webhook: seed: %w", err)
	}
	return &Dispatcher{cfg: cfg, rng: mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))}, nil
}

// Stats returns the outcomes so far.
func (d *Dispatcher) Stats() Stats {
	return Stats{Delivered: d.delivered.Load(), Retried: d.retried.Load(), Skipped: d.skipped.Load(), Paused: d.paused.Load()}
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
	log := d.cfg.Logger.With().Str("webhook", urlsecret.Shown(url)).Logger()
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
		if cur.Paused != nil && !d.awaitResume(ctx, url, &cur) {
			return
		}
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
			if cur.Paused != nil {
				break
			}
		}
		if len(events) == batch || cur.Paused != nil {
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

// awaitResume waits until an operator resumes the paused webhook at url
// (Resume, perhaps in another process of the node), then sets cur to its
// cursor, which still points before the event it refused. It returns
// false when ctx ended first.
func (d *Dispatcher) awaitResume(ctx context.Context, url string, cur *store.WebhookCursor) bool {
	for {
		changed := d.cfg.DB.Changed()
		if c, _, err := d.cfg.DB.WebhookCursor(ctx, url); err == nil && c.Paused == nil {
			*cur = c
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-changed:
		case <-time.After(time.Minute):
		}
	}
}

// pause stops delivery to the webhook at url, which refused event id for
// good (refusal) PauseAfter times in a row: its cursor, left before the
// event, records the pause, with the audit record of it, so that the
// events are kept and nothing is sent until an operator resumes it.
func (d *Dispatcher) pause(ctx context.Context, url, id string, refusal *statusError, cur *store.WebhookCursor, log zerolog.Logger) {
	d.paused.Add(1)
	cur.LastError = refusal.Error()
	cur.Paused = &store.WebhookPause{Since: d.cfg.Now().UTC(), Status: refusal.code, Error: fmt.Sprintf("%s to event %s", refusal.Error(), id), Event: id}
	reason := fmt.Sprintf("%s %d times in a row to event %s: nothing is sent to it, and its events are kept, until an operator resumes it (vultron webhooks resume %s)",
		refusal.Error(), d.cfg.PauseAfter, id, ID(url))
	rec := store.AuditRecord{Kind: store.AuditOutbound, Decision: store.DecisionPaused, Signer: urlsecret.Shown(url), Remote: host(url), Status: refusal.code, Reason: reason}
	log.Error().Str("event", id).Int("status", refusal.code).Int("refusals", d.cfg.PauseAfter).Str("id", ID(url)).
		Msg("webhook: paused after permanent refusals; its events are kept until an operator resumes it")
	if err := d.cfg.DB.PauseWebhook(ctx, url, *cur, rec); err != nil && ctx.Err() == nil {
		// Paused in this process all the same: the pause is recorded
		// again, from the same refusals, after a restart.
		log.Error().Err(err).Msg("webhook: store the pause")
	}
}

// deliver sends one event until it is acknowledged or the retry horizon
// passes, then moves the cursor past it, or until the webhook refused it
// for good PauseAfter times in a row, then pauses the webhook (cur.Paused).
// It returns false when ctx ended.
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
	refusals := 0 // permanent refusals in a row
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
		var refusal *statusError
		if errors.As(err, &refusal) && PermanentStatus(refusal.code) {
			refusals++
		} else {
			refusals = 0
		}
		if refusals >= d.cfg.PauseAfter {
			d.pause(ctx, url, doc.ID, refusal, cur, log)
			return ctx.Err() == nil
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
func (d *Dispatcher) post(ctx context.Context, to, id string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build the request: the webhook URL %s does not make one", urlsecret.Shown(to))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "vultron/"+d.cfg.Version)
	req.Header.Set(EventIDHeader, id)
	req.Header.Set(SignatureHeader, Sign(d.cfg.Secret, body, d.cfg.Now()))
	resp, err := d.cfg.Client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post to the webhook: %w", urlsecret.HideIn(err, req.URL))
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
	return retryAfter, &statusError{code: resp.StatusCode, status: resp.Status}
}

// ID returns the id by which the API and the command line name the
// webhook at url: the start of the hex SHA-256 of the URL, which names it
// without showing a password it may hold.
func ID(url string) string {
	sum := sha256.Sum256([]byte(url))
	return hex.EncodeToString(sum[:6])
}

// Webhooks returns the configured webhooks, in the order configured,
// each with where it is in the change feed and whether it is paused.
func (d *Dispatcher) Webhooks(ctx context.Context) ([]api.Webhook, error) {
	last, err := d.cfg.DB.LastEventSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("webhooks: read the change feed: %w", err)
	}
	out := make([]api.Webhook, 0, len(d.cfg.URLs))
	for _, u := range d.cfg.URLs {
		c, _, err := d.cfg.DB.WebhookCursor(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		w := api.Webhook{ID: ID(u), URL: urlsecret.Shown(u), Delivered: c.Seq, Skipped: c.Skipped, LastError: c.LastError, Paused: c.Paused}
		if last > c.Seq {
			w.Pending = last - c.Seq
		}
		out = append(out, w)
	}
	return out, nil
}

// Resume lifts the pause of the webhook with the given id (ID), for
// principal, the person who asked, whom the audit record names; its
// delivery starts again with the event it refused, in order. It returns
// the webhook as it is then; ErrUnknownWebhook or
// store.ErrWebhookNotPaused (wrapped) when there is nothing to resume.
func (d *Dispatcher) Resume(ctx context.Context, id, principal string) (api.Webhook, error) {
	for _, u := range d.cfg.URLs {
		if ID(u) != id {
			continue
		}
		rec := store.AuditRecord{Kind: store.AuditAdmin, Decision: store.DecisionResumed, Signer: urlsecret.Shown(u), Remote: host(u), Principal: principal}
		lifted, err := d.cfg.DB.ResumeWebhook(ctx, u, rec)
		if err != nil {
			return api.Webhook{}, fmt.Errorf("webhook %s: %w", id, err)
		}
		list, err := d.Webhooks(ctx)
		if err != nil {
			return api.Webhook{}, err
		}
		d.cfg.Logger.Info().Str("webhook", urlsecret.Shown(u)).Str("by", principal).Int("status", lifted.Status).Time("paused_since", lifted.Since).
			Msg("webhook: resumed; delivery starts again with the event it refused")
		for _, w := range list {
			if w.ID == id {
				return w, nil
			}
		}
	}
	return api.Webhook{}, fmt.Errorf("webhook %s: %w", id, ErrUnknownWebhook)
}
