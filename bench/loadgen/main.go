// Command loadgen is the load generator of the inbox benchmark. It serves
// the actor documents of N foreign senders on 127.0.0.1, signs a fixed
// number of Offer(VulnerabilityReport) activities (or, with -object note,
// the same Offers with an ActivityStreams Note) as those senders
// (draft-cavage, RSA-2048) before the clock starts, then POSTs them to one
// inbox from N concurrent senders and reports accepted activities per
// second and the latency of the accepted requests as one JSON object.
//
// Signing happens before the timed phase because RSA signing on the
// benchmark machine is slower than the inbox under test: the load
// generator would otherwise measure itself. Each sender first posts one
// untimed activity, so that the receiver has fetched and cached its key.
//
// Usage:
//
//	loadgen -inbox http://127.0.0.1:7001/actors/vendor/inbox -senders 16 -count 3000
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/bench"
)

// Result is what loadgen prints.
type Result struct {
	Inbox        string  `json:"inbox"`
	Senders      int     `json:"senders"`
	Sent         int     `json:"sent"`
	Accepted     int     `json:"accepted"`
	Refused      int     `json:"refused"`
	Errors       int     `json:"errors"`
	FirstRefusal string  `json:"firstRefusal,omitempty"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"acceptedPerSecond"`
	P50ms        float64 `json:"p50ms"`
	P95ms        float64 `json:"p95ms"`
	P99ms        float64 `json:"p99ms"`
	SignSeconds  float64 `json:"presignSeconds"`
	// Replies counts what the receiver delivered back to the senders'
	// inboxes by the end of the drain wait.
	Replies      int64   `json:"replies"`
	DrainSeconds float64 `json:"drainSeconds"`
}

type signed struct {
	body   []byte
	header http.Header
	sender int
}

func main() {
	inbox := flag.String("inbox", "", "inbox URL on 127.0.0.1 to POST to (required)")
	senders := flag.Int("senders", 1, "concurrent senders")
	count := flag.Int("count", 2000, "activities to send in the timed phase")
	timeout := flag.Duration("timeout", 3*time.Minute, "bound on the timed phase")
	drain := flag.Duration("drain", 0, "wait up to this long after the timed phase for the receiver's replies to reach the senders")
	expectReplies := flag.Bool("replies", true, "the receiver answers each accepted activity with one reply (wait for it during -drain)")
	ed := flag.Bool("ed25519", true, "the senders' documents say their server verifies RFC 9421 Ed25519 signatures, as a Vultron node's do\n(the node signs its replies to them with Ed25519); false: with RSA")
	via := flag.String("via", "", "comma-separated host:port addresses on 127.0.0.1 to connect to instead of the inbox URL's, in turn\n(several node processes behind one public URL); the requests still name the inbox URL's host")
	object := flag.String("object", "report", "the Offer's object: report (a VulnerabilityReport under the Vultron context, what a node receives)\nor note (the same as an ActivityStreams Note, for an inbox without the Vultron vocabulary)")
	flag.Parse()
	offers := map[string]func(actorID, recipient, tag string) []byte{"report": bench.OfferBody, "note": bench.NoteOfferBody}
	offer, ok := offers[*object]
	if !ok {
		fmt.Fprintf(os.Stderr, "loadgen: -object must be report or note, not %q\n", *object)
		os.Exit(2)
	}
	var addrs []string
	if *via != "" {
		addrs = strings.Split(*via, ",")
	}
	if err := run(*inbox, *senders, *count, *timeout, *drain, *expectReplies, *ed, addrs, offer); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(inbox string, n, count int, timeout, drain time.Duration, expectReplies, ed bool, via []string, offer func(actorID, recipient, tag string) []byte) error {
	u, err := url.Parse(inbox)
	if err != nil || u.Hostname() != "127.0.0.1" {
		return fmt.Errorf("-inbox must be an http URL on 127.0.0.1, got %q", inbox)
	}
	if n < 1 || count < 1 {
		return fmt.Errorf("-senders and -count must be positive")
	}
	s, err := bench.NewSenders()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Ed25519 = ed
	recipient := strings.TrimSuffix(inbox, "/inbox")
	tag := fmt.Sprintf("%d", time.Now().UnixNano())

	// Sign everything first, on every core.
	t0 := time.Now()
	warm := make([]signed, n)
	reqs := make([]signed, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	var signErr atomic.Value
	total := int64(n + count)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				sender := int(i % int64(n))
				body := offer(s.ActorID(sender), recipient, fmt.Sprintf("%s-%d", tag, i))
				req, _ := http.NewRequest(http.MethodPost, inbox, nil)
				req.Header.Set("Content-Type", actor.ContentType)
				if err := actor.SignRequest(req, body, s.ActorID(sender)+"#main-key", s.Key, time.Now()); err != nil {
					signErr.Store(err)
					return
				}
				sg := signed{body: body, header: req.Header, sender: sender}
				if i < int64(n) {
					warm[i] = sg
				} else {
					reqs[i-int64(n)] = sg
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := signErr.Load().(error); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	signSecs := time.Since(t0).Seconds()

	transport := &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: n, DisableCompression: true}
	if len(via) > 0 {
		for _, a := range via {
			if h, _, err := net.SplitHostPort(a); err != nil || h != "127.0.0.1" {
				return fmt.Errorf("-via: %q is not a 127.0.0.1:port address", a)
			}
		}
		// Each new connection goes to the next address: the senders'
		// connections are spread over the processes, and each stays with
		// its process, as behind a proxy that balances connections.
		var turn atomic.Int64
		var d net.Dialer
		transport.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, via[int(turn.Add(1)-1)%len(via)])
		}
	}
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	post := func(ctx context.Context, sg signed) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, inbox, strings.NewReader(string(sg.body)))
		if err != nil {
			return 0, "", err
		}
		req.Header = sg.header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return resp.StatusCode, string(msg), nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Warm-up: one untimed activity per sender, so its key is cached.
	for _, sg := range warm {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st, msg, err := post(ctx, sg); err != nil || st != http.StatusAccepted {
				signErr.Store(fmt.Errorf("warm-up POST: status %d %s %v", st, msg, err))
			}
		}()
	}
	wg.Wait()
	if err, _ := signErr.Load().(error); err != nil {
		return err
	}

	res := Result{Inbox: inbox, Senders: n, SignSeconds: signSecs}
	lat := make([][]time.Duration, n)
	var accepted, refused, errs atomic.Int64
	var firstRefusal atomic.Value
	next.Store(0)
	start := time.Now()
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(count) {
					return
				}
				t := time.Now()
				st, msg, err := post(ctx, reqs[i])
				d := time.Since(t)
				switch {
				case err != nil:
					errs.Add(1)
				case st == http.StatusAccepted:
					accepted.Add(1)
					lat[w] = append(lat[w], d)
				default:
					refused.Add(1)
					firstRefusal.CompareAndSwap(nil, fmt.Sprintf("%d %s", st, msg))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.Sent = int(min(next.Load(), int64(count)))
	res.Accepted, res.Refused, res.Errors = int(accepted.Load()), int(refused.Load()), int(errs.Load())
	if r, ok := firstRefusal.Load().(string); ok {
		res.FirstRefusal = r
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(res.Accepted) / elapsed.Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	res.P50ms, res.P95ms, res.P99ms = pct(all, 0.50), pct(all, 0.95), pct(all, 0.99)

	// Let the receiver's replies drain, so that the next run starts on an
	// idle receiver.
	if drain > 0 && expectReplies {
		want := int64(res.Accepted + n)
		d0 := time.Now()
		for s.Replies() < want && time.Since(d0) < drain {
			time.Sleep(20 * time.Millisecond)
		}
		res.DrainSeconds = time.Since(d0).Seconds()
	}
	res.Replies = s.Replies()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// pct returns the p-quantile of sorted durations in milliseconds.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}
