package intel

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/openvultron/vultron/internal/urlsecret"
	"github.com/rs/zerolog"
)

// PollerConfig configures a Poller. Sources and OnFeed are required.
type PollerConfig struct {
	// Sources are the feeds: http(s) URLs, fetched with Client, or files.
	Sources []string
	// Client fetches URLs; in a node it is the SSRF-safe client
	// (actor.NewSafeClient), which refuses private addresses and bounds
	// what it reads.
	Client *http.Client
	// Interval is how often a source that answered is fetched again;
	// zero means an hour.
	Interval time.Duration
	// FirstBackoff and MaxBackoff bound the wait after a failed fetch,
	// which doubles with each failure (with jitter); zero means a minute
	// and six hours.
	FirstBackoff, MaxBackoff time.Duration
	// OnFeed is called with each feed that changed since its last fetch.
	OnFeed func(ctx context.Context, f Feed) error
	Logger zerolog.Logger
}

// Poller fetches feeds, each on its own schedule, and hands over those
// that changed.
type Poller struct {
	cfg   PollerConfig
	rngMu sync.Mutex
	rng   *mrand.Rand
	mu    sync.Mutex
	seen  map[string]version // by source: what the last fetch saw
}

// version identifies what a source served: its ETag and Last-Modified,
// or a file's modification time and size.
type version struct{ etag, modified string }

// NewPoller returns a Poller.
func NewPoller(cfg PollerConfig) (*Poller, error) {
	if len(cfg.Sources) == 0 || cfg.OnFeed == nil {
		return nil, errors.New("intel: sources and a feed handler are required")
	}
	for _, s := range cfg.Sources {
		if isURL(s) && cfg.Client == nil {
			return nil, fmt.Errorf("intel: %s is a URL, and no client was given to fetch it", s)
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.FirstBackoff <= 0 {
		cfg.FirstBackoff = time.Minute
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 6 * time.Hour
	}
	var seed [16]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("intel: seed: %w", err)
	}
	return &Poller{cfg: cfg, seen: map[string]version{},
		rng: mrand.New(mrand.NewPCG(binary.LittleEndian.Uint64(seed[:8]), binary.LittleEndian.Uint64(seed[8:])))}, nil
}

func isURL(s string) bool { return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://") }

// Run polls every source until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, src := range p.cfg.Sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.follow(ctx, src)
		}()
	}
	wg.Wait()
	return nil
}

// follow polls one source: every Interval while it answers, backing off
// while it fails.
func (p *Poller) follow(ctx context.Context, src string) {
	failures := 0
	for ctx.Err() == nil {
		wait := p.cfg.Interval
		if err := p.Poll(ctx, src); err != nil {
			failures++
			wait = p.backoff(failures)
			p.cfg.Logger.Warn().Err(err).Str("feed", shownSource(src)).Int("failures", failures).Dur("next_in", wait).Msg("intel: fetch failed")
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is the wait after the n-th failure in a row: FirstBackoff
// doubling up to MaxBackoff, less up to a quarter at random, so that
// nodes polling one feed do not fall into step.
func (p *Poller) backoff(n int) time.Duration {
	d := p.cfg.FirstBackoff
	for i := 1; i < n && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	p.rngMu.Lock()
	jitter := time.Duration(p.rng.Int64N(int64(d/4) + 1))
	p.rngMu.Unlock()
	return d - jitter
}

// Poll fetches one source once and hands over its feed if it changed
// since the last fetch.
func (p *Poller) Poll(ctx context.Context, src string) error {
	p.mu.Lock()
	last := p.seen[src]
	p.mu.Unlock()
	var data []byte
	var now version
	var err error
	if isURL(src) {
		data, now, err = p.fetchURL(ctx, src, last)
	} else {
		data, now, err = readFile(src, last)
	}
	if err != nil || data == nil {
		return err // nil data: unchanged
	}
	shown := shownSource(src)
	f, err := Parse(data, shown)
	if err != nil {
		return err
	}
	if err := p.cfg.OnFeed(ctx, f); err != nil {
		return fmt.Errorf("intel: take in %s: %w", shown, err)
	}
	p.mu.Lock()
	p.seen[src] = now
	p.mu.Unlock()
	p.cfg.Logger.Info().Str("feed", shown).Str("format", f.Format).Int("signals", len(f.Signals)).Msg("intel: feed taken in")
	return nil
}

// shownSource is a feed as the node names it in what it writes or sends
// (errors, log lines, its signals' Source): a file by its path, a URL as
// urlsecret shows it, without the credentials (an API key) its password
// or query may carry.
func shownSource(src string) string {
	if !isURL(src) {
		return src
	}
	return urlsecret.Shown(src)
}

// fetchURL GETs a feed, asking only for a change since last; it returns
// nil data when the server says nothing changed.
func (p *Poller) fetchURL(ctx context.Context, src string, last version) ([]byte, version, error) {
	shown := shownSource(src)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: %s: the URL does not make a request", shown)
	}
	req.Header.Set("Accept", "application/json")
	if last.etag != "" {
		req.Header.Set("If-None-Match", last.etag)
	}
	if last.modified != "" {
		req.Header.Set("If-Modified-Since", last.modified)
	}
	resp, err := p.cfg.Client.Do(req)
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: fetch %s: %w", shown, urlsecret.HideIn(err, req.URL))
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil, last, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, version{}, fmt.Errorf("intel: fetch %s: the server answered %s", shown, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFeedSize+1))
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: read %s: %w", shown, urlsecret.HideIn(err, req.URL))
	}
	if len(data) > MaxFeedSize {
		return nil, version{}, fmt.Errorf("intel: %s is over the %d bytes a feed may have", shown, MaxFeedSize)
	}
	now := version{etag: resp.Header.Get("ETag"), modified: resp.Header.Get("Last-Modified")}
	if now != (version{}) && now == last {
		return nil, last, nil
	}
	return data, now, nil
}

// readFile reads a feed file unless its modification time and size are
// those of the last read.
func readFile(path string, last version) ([]byte, version, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: %w", err)
	}
	if st.Size() > MaxFeedSize {
		return nil, version{}, fmt.Errorf("intel: %s is %d bytes, over the %d a feed may have", path, st.Size(), MaxFeedSize)
	}
	now := version{modified: st.ModTime().UTC().Format(time.RFC3339Nano), etag: fmt.Sprint(st.Size())}
	if now == last {
		return nil, last, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFeedSize+1))
	if err != nil {
		return nil, version{}, fmt.Errorf("intel: read %s: %w", path, err)
	}
	if len(data) > MaxFeedSize {
		return nil, version{}, fmt.Errorf("intel: %s grew over the %d bytes a feed may have", path, MaxFeedSize)
	}
	return data, now, nil
}
