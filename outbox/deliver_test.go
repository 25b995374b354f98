package outbox

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
)

var _ Queue = (*store.DB)(nil)

const (
	testActorName = "vendor"
	testActorID   = "http://vendor.example/actors/vendor"
	testKeyID     = testActorID + "#main-key"
	// testSecret is in every test activity body; it must never reach a log.
	testSecret = "XYZZY-embargoed-report-text"
)

// testStart is the fake clock's starting time.
var testStart = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// testKey is generated once per test binary: RSA key generation is slow.
var testKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func signingKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := testKey()
	if err != nil {
		t.Fatalf("generate test key: %v", err)
	}
	return k
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: testStart} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testKeys is the KeySource of the tests: it holds the key of testActorName.
type testKeys struct{ key *rsa.PrivateKey }

func (k testKeys) SigningKey(_ context.Context, name string) (string, *rsa.PrivateKey, error) {
	if name != testActorName {
		return "", nil, ErrNoSigningKey
	}
	return testKeyID, k.key, nil
}

// mapInboxes is an InboxResolver over a map; err, when set, is returned
// for every recipient.
type mapInboxes struct {
	mu    sync.Mutex
	m     map[string]string
	err   error
	calls int
}

func (r *mapInboxes) Inbox(_ context.Context, iri string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.err != nil {
		return "", r.err
	}
	inbox, ok := r.m[iri]
	if !ok {
		return "", Permanent(fmt.Errorf("unknown recipient %s", iri))
	}
	return inbox, nil
}

// verifierKeys resolves our key id to our public key for the recipient's
// verifier.
type verifierKeys struct{ pub *rsa.PublicKey }

func (v verifierKeys) ResolveKey(_ context.Context, keyID string, _ bool) (actor.PublicKey, error) {
	if keyID != testKeyID {
		return actor.PublicKey{}, fmt.Errorf("unknown key %s", keyID)
	}
	return actor.PublicKey{ID: keyID, Owner: testActorID, Key: v.pub}, nil
}

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// received is one request a recipient server got.
type received struct {
	activityID string
	body       []byte
	header     http.Header
	signer     actor.Signer
	verifyErr  error
}

// recipient is an inbox served by httptest on 127.0.0.1 that verifies the
// signature of every POST and answers with respond.
type recipient struct {
	srv     *httptest.Server
	inbox   string
	mu      sync.Mutex
	got     []received
	respond func(n int, r received, w http.ResponseWriter) // n counts requests from 0
}

// newRecipient starts a recipient on ln (a fresh 127.0.0.1 port when nil).
func newRecipient(t *testing.T, clock *fakeClock, ln net.Listener, respond func(int, received, http.ResponseWriter)) *recipient {
	t.Helper()
	rc := &recipient{respond: respond}
	srv := httptest.NewUnstartedServer(nil)
	if ln != nil {
		srv.Listener.Close()
		srv.Listener = ln
	}
	host := srv.Listener.Addr().String()
	v, err := actor.NewVerifier(actor.VerifierOptions{
		Keys:   verifierKeys{pub: &signingKey(t).PublicKey},
		Host:   host,
		Scheme: "http",
		Now:    clock.Now,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body", http.StatusBadRequest)
			return
		}
		var act struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &act)
		rec := received{activityID: act.ID, body: body, header: r.Header.Clone()}
		rec.signer, rec.verifyErr = v.Verify(r.Context(), r, body)
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, rec)
		rc.mu.Unlock()
		if rec.verifyErr != nil {
			http.Error(w, rec.verifyErr.Error(), http.StatusUnauthorized)
			return
		}
		if rc.respond == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		rc.respond(n, rec, w)
	})
	srv.Start()
	t.Cleanup(srv.Close)
	rc.srv = srv
	rc.inbox = "http://" + host + "/actors/coordinator/inbox"
	return rc
}

func (rc *recipient) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// fixture is a store with a local actor, a recipient resolver and a
// Deliverer over them.
type fixture struct {
	db      *store.DB
	clock   *fakeClock
	inboxes *mapInboxes
	logs    *syncBuffer
	d       *Deliverer
}

const testRecipient = "http://coordinator.example/actors/coordinator"

// newFixture opens a store in t.TempDir and builds a Deliverer that sends
// testRecipient's deliveries to inbox, both on clock. edit may change the configuration.
func newFixture(t *testing.T, clock *fakeClock, inbox string, edit func(*DelivererConfig)) *fixture {
	t.Helper()
	f := &fixture{
		clock:   clock,
		inboxes: &mapInboxes{m: map[string]string{testRecipient: inbox}},
		logs:    &syncBuffer{},
	}
	f.db = openStore(t, filepath.Join(t.TempDir(), "node.db"), f.clock)
	pem, err := actor.PublicKeyPEM(&signingKey(t).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	err = f.db.PutLocalActor(context.Background(), store.LocalActor{
		Name: testActorName, Type: "Organization", KeyID: testKeyID, PublicKeyPEM: pem, CreatedAt: testStart,
	})
	if err != nil {
		t.Fatalf("PutLocalActor: %v", err)
	}
	f.d = f.deliverer(t, edit)
	return f
}

func openStore(t *testing.T, path string, clock *fakeClock) *store.DB {
	t.Helper()
	db, err := store.Open(path, store.Options{NoSync: true, Now: clock.Now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// deliverer builds a Deliverer over the fixture's store.
func (f *fixture) deliverer(t *testing.T, edit func(*DelivererConfig)) *Deliverer {
	t.Helper()
	policy := DefaultRetryPolicy()
	policy.Jitter = 0
	cfg := DelivererConfig{
		Queue:        f.db,
		Keys:         testKeys{key: signingKey(t)},
		Inboxes:      f.inboxes,
		Client:       actor.NewSafeClient(actor.SafeClientOptions{AllowPrivate: true, Timeout: 10 * time.Second}),
		Policy:       policy,
		Workers:      4,
		Logger:       zerolog.New(f.logs),
		Now:          f.clock.Now,
		PollInterval: 20 * time.Millisecond,
		Version:      "test",
	}
	if edit != nil {
		edit(&cfg)
	}
	d, err := NewDeliverer(cfg)
	if err != nil {
		t.Fatalf("NewDeliverer: %v", err)
	}
	return d
}

// activityBody returns the body of the n-th test activity.
func activityBody(n int) (id string, body []byte) {
	id = fmt.Sprintf("http://vendor.example/activities/%d", n)
	body = fmt.Appendf(nil, `{"@context":"https://www.w3.org/ns/activitystreams","id":%q,"type":"Offer","actor":%q,"object":{"type":"Note","content":"%s %d"}}`,
		id, testActorID, testSecret, n)
	return id, body
}

// enqueue stores activity n with one delivery to testRecipient in the
// ordering lane key.
func (f *fixture) enqueue(t *testing.T, n int, key string) string {
	t.Helper()
	id, body := activityBody(n)
	err := f.db.EnqueueOutbound(context.Background(), store.Outbound{
		ID: id, Actor: testActorName, Body: body,
		Deliveries: []store.DeliveryTarget{{Recipient: testRecipient, OrderingKey: key}},
	}, nil)
	if err != nil {
		t.Fatalf("EnqueueOutbound %s: %v", id, err)
	}
	return id
}

// due leases the next due delivery, as the dispatcher does.
func (f *fixture) due(t *testing.T) store.Delivery {
	t.Helper()
	ds, err := f.db.DueDeliveries(context.Background(), f.clock.Now(), 1)
	if err != nil || len(ds) != 1 {
		t.Fatalf("DueDeliveries = %v, %v; want one delivery", ds, err)
	}
	return ds[0]
}

func (f *fixture) pending(t *testing.T) []store.Delivery {
	t.Helper()
	ds, _, err := f.db.PendingDeliveries(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("PendingDeliveries: %v", err)
	}
	return ds
}

func (f *fixture) deadLetters(t *testing.T) []store.Delivery {
	t.Helper()
	ds, _, err := f.db.DeadLetters(context.Background(), 0, 1000)
	if err != nil {
		t.Fatalf("DeadLetters: %v", err)
	}
	return ds
}

// run starts Run in a goroutine and returns a function that cancels it
// and fails the test unless Run returns nil within 10 s.
func run(t *testing.T, d *Deliverer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliverSignedExactBodyOnce(t *testing.T) {
	var rc *recipient
	clock := newFakeClock()
	rc = newRecipient(t, clock, nil, nil)
	f := newFixture(t, clock, rc.inbox, nil)
	id := f.enqueue(t, 1, "case-1")
	_, wantBody := activityBody(1)

	stop := run(t, f.d)
	f.d.Wake()
	waitFor(t, "the delivery to complete", func() bool {
		n, err := f.db.PendingCount(context.Background())
		return err == nil && n == 0
	})
	stop()

	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("recipient got %d requests, want 1", len(got))
	}
	r := got[0]
	if r.verifyErr != nil {
		t.Fatalf("signature did not verify: %v", r.verifyErr)
	}
	if r.signer.KeyID != testKeyID || r.signer.Scheme != actor.SchemeCavage {
		t.Errorf("signer = %+v, want key %s, cavage", r.signer, testKeyID)
	}
	if !bytes.Equal(r.body, wantBody) || r.activityID != id {
		t.Errorf("body = %s, want the stored bytes %s", r.body, wantBody)
	}
	for h, want := range map[string]string{
		"Content-Type": "application/activity+json",
		"Accept":       "application/activity+json",
		"User-Agent":   "vultron/test",
		"Date":         clock.Now().Format(http.TimeFormat),
		"Digest":       actor.DigestHeader(wantBody),
	} {
		if v := r.header.Get(h); v != want {
			t.Errorf("%s = %q, want %q", h, v, want)
		}
	}
	sig := r.header.Get("Signature")
	for _, want := range []string{`algorithm="rsa-sha256"`, `headers="(request-target) host date digest"`, `keyId="` + testKeyID + `"`} {
		if !strings.Contains(sig, want) {
			t.Errorf("Signature header lacks %s", want)
		}
	}
	if s := f.d.Stats(); s != (DeliveryStats{Delivered: 1}) {
		t.Errorf("Stats = %+v, want one delivered", s)
	}

	lines := f.logs.lines(t)
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want one per attempt:\n%s", len(lines), f.logs)
	}
	l := lines[0]
	for k, want := range map[string]any{
		"activity_id": id, "actor": testActorName, "recipient": testRecipient,
		"inbox": rc.inbox, "attempt": float64(1), "status": float64(202), "outcome": "delivered",
	} {
		if l[k] != want {
			t.Errorf("log %s = %v, want %v", k, l[k], want)
		}
	}
	for _, k := range []string{"delivery_id", "duration"} {
		if _, ok := l[k]; !ok {
			t.Errorf("log line lacks %s", k)
		}
	}
	if s := f.logs.String(); strings.Contains(s, testSecret) || strings.Contains(s, "Signature") || strings.Contains(s, "PRIVATE") {
		t.Errorf("log leaks the body, a signature or a key:\n%s", s)
	}
}

// TestAttemptOutcomes makes single attempts against peers answering with
// each class of status and checks what the queue records.
func TestAttemptOutcomes(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		retryAfter string
		errBody    string
		want       outcome
		wantWait   time.Duration // for retries: NextAttempt - now
		wantReason []string
	}{
		{name: "202 accepted", status: 202, want: delivered},
		{name: "200 ok", status: 200, want: delivered},
		{name: "503 retried after the first backoff", status: 503, want: retry, wantWait: 30 * time.Second, wantReason: []string{"503 Service Unavailable"}},
		{name: "500 retried", status: 500, want: retry, wantWait: 30 * time.Second, wantReason: []string{"500"}},
		{name: "408 retried", status: 408, want: retry, wantWait: 30 * time.Second, wantReason: []string{"408 Request Timeout"}},
		{name: "429 honours Retry-After", status: 429, retryAfter: "120", want: retry, wantWait: 120 * time.Second, wantReason: []string{"429 Too Many Requests"}},
		{name: "503 honours an HTTP-date Retry-After", status: 503, retryAfter: testStart.Add(10 * time.Minute).Format(http.TimeFormat), want: retry, wantWait: 10 * time.Minute},
		{name: "Retry-After capped", status: 503, retryAfter: "9999999", want: retry, wantWait: 24 * time.Hour},
		{name: "403 dead-lettered with the peer's JSON error", status: 403, errBody: `{"error":"actor is blocked"}`, want: permanent, wantReason: []string{"peer answered 403 Forbidden", "actor is blocked"}},
		{name: "410 dead-lettered", status: 410, want: permanent, wantReason: []string{"peer answered 410 Gone"}},
		{name: "400 dead-lettered", status: 400, want: permanent, wantReason: []string{"400 Bad Request"}},
		{name: "redirect not followed", status: 308, want: permanent, wantReason: []string{"308 Permanent Redirect"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
				if tt.retryAfter != "" {
					w.Header().Set("Retry-After", tt.retryAfter)
				}
				if tt.status == 308 {
					w.Header().Set("Location", "http://elsewhere.example/inbox")
				}
				if tt.errBody != "" {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.errBody)
			})
			f := newFixture(t, clock, rc.inbox, nil)
			f.enqueue(t, 1, "case-1")

			f.d.attempt(context.Background(), f.due(t))

			if n := len(rc.requests()); n != 1 {
				t.Fatalf("recipient got %d requests, want 1", n)
			}
			if err := rc.requests()[0].verifyErr; err != nil {
				t.Fatalf("signature did not verify: %v", err)
			}
			if tt.want == delivered {
				// The completion commits a moment later (deferred).
				waitFor(t, "the completion to commit", func() bool { return f.d.Stats().Delivered == 1 })
			}
			pending, dead := f.pending(t), f.deadLetters(t)
			stats := f.d.Stats()
			switch tt.want {
			case delivered:
				if len(pending) != 0 || len(dead) != 0 || stats.Delivered != 1 {
					t.Fatalf("pending %v, dead %v, stats %+v; want the delivery completed", pending, dead, stats)
				}
				return
			case retry:
				if len(pending) != 1 || len(dead) != 0 || stats.Retried != 1 {
					t.Fatalf("pending %v, dead %v, stats %+v; want the delivery retried", pending, dead, stats)
				}
				p := pending[0]
				if p.Attempts != 1 {
					t.Errorf("Attempts = %d, want 1", p.Attempts)
				}
				if want := clock.Now().Add(tt.wantWait); !p.NextAttempt.Equal(want) {
					t.Errorf("NextAttempt = %v, want %v", p.NextAttempt, want)
				}
				checkReason(t, p.LastError, tt.wantReason)
			case permanent:
				if len(pending) != 0 || len(dead) != 1 || stats.DeadLettered != 1 {
					t.Fatalf("pending %v, dead %v, stats %+v; want the delivery dead-lettered", pending, dead, stats)
				}
				checkReason(t, dead[0].LastError, tt.wantReason)
			}
			if strings.Contains(f.logs.String(), testSecret) {
				t.Errorf("log leaks the activity body:\n%s", f.logs)
			}
		})
	}
}

func checkReason(t *testing.T, reason string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(reason, w) {
			t.Errorf("reason %q does not contain %q", reason, w)
		}
	}
}

// TestRetryAfterWithJitter checks that jitter never brings a retry before
// the peer's Retry-After.
func TestRetryAfterWithJitter(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Policy = DefaultRetryPolicy()
	})
	for i := 1; i <= 5; i++ {
		f.enqueue(t, i, "")
	}
	for range 5 {
		f.d.attempt(context.Background(), f.due(t))
	}
	for _, p := range f.pending(t) {
		if p.NextAttempt.Before(clock.Now().Add(120 * time.Second)) {
			t.Errorf("delivery %d: NextAttempt %v is before Retry-After", p.ID, p.NextAttempt)
		}
	}
}

// TestAttemptLocalFailures covers failures found before anything is sent.
func TestAttemptLocalFailures(t *testing.T) {
	tests := []struct {
		name       string
		actor      string // the delivery's local actor
		resolveErr error
		inbox      string
		want       outcome
		wantReason string
	}{
		{name: "no key for the actor", actor: "ghost", want: permanent, wantReason: `no signing key for local actor "ghost"`},
		{name: "recipient gone", resolveErr: Permanent(errors.New("fetch the actor document: status 410")), want: permanent, wantReason: "status 410"},
		{name: "resolution network error", resolveErr: &net.OpError{Op: "dial", Err: errors.New("connection refused")}, want: retry, wantReason: "connection refused"},
		{name: "inbox not http", inbox: "ftp://coordinator.example/inbox", want: permanent, wantReason: "not http or https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inbox := tt.inbox
			if inbox == "" {
				inbox = "http://127.0.0.1:1/inbox" // never dialled by these cases
			}
			f := newFixture(t, newFakeClock(), inbox, nil)
			f.inboxes.err = tt.resolveErr
			id, body := activityBody(1)
			name := testActorName
			if tt.actor != "" {
				name = tt.actor
				err := f.db.PutLocalActor(context.Background(), store.LocalActor{Name: name, Type: "Person", KeyID: "k", PublicKeyPEM: "p"})
				if err != nil {
					t.Fatal(err)
				}
			}
			err := f.db.EnqueueOutbound(context.Background(), store.Outbound{
				ID: id, Actor: name, Body: body,
				Deliveries: []store.DeliveryTarget{{Recipient: testRecipient}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			f.d.attempt(context.Background(), f.due(t))
			var reason string
			switch tt.want {
			case retry:
				p := f.pending(t)
				if len(p) != 1 || p[0].Attempts != 1 {
					t.Fatalf("pending = %+v, want one delivery with one failed attempt", p)
				}
				reason = p[0].LastError
			case permanent:
				d := f.deadLetters(t)
				if len(d) != 1 {
					t.Fatalf("dead letters = %+v, want one", d)
				}
				reason = d[0].LastError
			}
			checkReason(t, reason, []string{tt.wantReason})
		})
	}
}

// TestHorizonPassedDeadLetters fails a delivery queued more than seven
// days ago: it is not retried again.
func TestHorizonPassedDeadLetters(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		w.WriteHeader(http.StatusBadGateway)
	})
	f := newFixture(t, clock, rc.inbox, nil)
	f.enqueue(t, 1, "case-1")
	clock.Advance(7*24*time.Hour + time.Minute)

	f.d.attempt(context.Background(), f.due(t))

	if p := f.pending(t); len(p) != 0 {
		t.Fatalf("pending = %+v, want none", p)
	}
	dead := f.deadLetters(t)
	if len(dead) != 1 {
		t.Fatalf("dead letters = %+v, want one", dead)
	}
	checkReason(t, dead[0].LastError, []string{"retry horizon passed", "502 Bad Gateway"})
	if s := f.d.Stats(); s.DeadLettered != 1 || s.Retried != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

// TestRetryThenDeliver runs the workers against a peer that fails once:
// the delivery waits for its next attempt and then goes through.
func TestRetryThenDeliver(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, func(n int, _ received, w http.ResponseWriter) {
		if n == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	})
	f := newFixture(t, clock, rc.inbox, nil)
	f.enqueue(t, 1, "case-1")
	stop := run(t, f.d)
	f.d.Wake()

	waitFor(t, "the first attempt to be recorded", func() bool {
		p := f.pending(t)
		return len(p) == 1 && p[0].Attempts == 1
	})
	if p := f.pending(t)[0]; !p.NextAttempt.Equal(testStart.Add(30 * time.Second)) {
		t.Errorf("NextAttempt = %v, want %v", p.NextAttempt, testStart.Add(30*time.Second))
	}
	if n := len(rc.requests()); n != 1 {
		t.Fatalf("recipient got %d requests before the retry was due, want 1", n)
	}

	clock.Advance(31 * time.Second)
	f.d.Wake()
	waitFor(t, "the retry to deliver", func() bool { return len(f.pending(t)) == 0 })
	stop() // the counters and the log are written after the queue
	got := rc.requests()
	if len(got) != 2 || got[0].activityID != got[1].activityID {
		t.Fatalf("recipient got %d requests, want the same activity twice", len(got))
	}
	if s := f.d.Stats(); s != (DeliveryStats{Delivered: 1, Retried: 1}) {
		t.Errorf("Stats = %+v", s)
	}
	if n := len(f.logs.lines(t)); n != 2 {
		t.Errorf("got %d log lines, want one per attempt (2)", n)
	}
}

// TestLaneOrder sends three activities of one case to one recipient with
// several workers: they arrive in order, and a failing first one holds
// back the others until it succeeds. A delivery in another lane is not
// held back.
func TestLaneOrder(t *testing.T) {
	clock := newFakeClock()
	var failedOnce sync.Once
	rc := newRecipient(t, clock, nil, func(_ int, r received, w http.ResponseWriter) {
		status := http.StatusAccepted
		if strings.HasSuffix(r.activityID, "/1") {
			failedOnce.Do(func() { status = http.StatusServiceUnavailable })
		}
		w.WriteHeader(status)
	})
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Workers = 4
	})
	ids := []string{f.enqueue(t, 1, "case-1"), f.enqueue(t, 2, "case-1"), f.enqueue(t, 3, "case-1")}
	other := f.enqueue(t, 4, "case-2")
	run(t, f.d)
	f.d.Wake()

	waitFor(t, "the first failure and the other lane's delivery", func() bool {
		p := f.pending(t)
		return len(p) == 3 && p[0].Attempts == 1
	})
	for _, r := range rc.requests() {
		if r.activityID == ids[1] || r.activityID == ids[2] {
			t.Fatalf("%s was sent while %s had not been delivered", r.activityID, ids[0])
		}
	}

	clock.Advance(time.Minute)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })

	var lane []string
	sawOther := false
	for _, r := range rc.requests() {
		if r.activityID == other {
			sawOther = true
			continue
		}
		lane = append(lane, r.activityID)
	}
	want := []string{ids[0], ids[0], ids[1], ids[2]}
	if strings.Join(lane, " ") != strings.Join(want, " ") {
		t.Errorf("lane arrived as %v, want %v", lane, want)
	}
	if !sawOther {
		t.Errorf("the delivery in another lane was not sent")
	}
}

// TestReceiverDownThenUp closes the recipient, lets deliveries fail, then
// serves the same address again: each activity arrives exactly once.
func TestReceiverDownThenUp(t *testing.T) {
	clock := newFakeClock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	inbox := "http://" + addr + "/actors/coordinator/inbox"

	f := newFixture(t, clock, inbox, nil)
	ids := []string{f.enqueue(t, 1, "case-1"), f.enqueue(t, 2, "case-1"), f.enqueue(t, 3, "")}
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "failed attempts while the recipient is down", func() bool {
		p := f.pending(t)
		return len(p) == 3 && p[0].Attempts == 1 && p[2].Attempts == 1
	})
	if p := f.pending(t); !strings.Contains(p[0].LastError, "connection refused") {
		t.Errorf("LastError = %q, want a refused connection", p[0].LastError)
	}

	var ln2 net.Listener
	waitFor(t, "the recipient's address to be free again", func() bool {
		ln2, err = net.Listen("tcp", addr)
		return err == nil
	})
	rc := newRecipient(t, clock, ln2, nil)
	if rc.inbox != inbox {
		t.Fatalf("recipient restarted at %s, want %s", rc.inbox, inbox)
	}
	clock.Advance(time.Minute)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })

	count := map[string]int{}
	for _, r := range rc.requests() {
		if r.verifyErr != nil {
			t.Errorf("signature of %s did not verify: %v", r.activityID, r.verifyErr)
		}
		count[r.activityID]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s arrived %d times, want once", id, count[id])
		}
	}
}

// runUntilArrived runs f's Deliverer until its attempt reaches the
// recipient (arrived is closed), and returns what cancels Run and where
// Run's error arrives.
func runUntilArrived(t *testing.T, f *fixture, arrived <-chan struct{}) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- f.d.Run(ctx) }()
	f.d.Wake()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt never reached the recipient")
	}
	return cancel, done
}

// TestShutdownLetsAttemptsFinish cancels Run while an attempt waits for
// the peer: Run waits for that attempt, whose failure is recorded, and
// the delivery stays pending.
func TestShutdownLetsAttemptsFinish(t *testing.T) {
	clock := newFakeClock()
	arrived := make(chan struct{})
	release := make(chan struct{})
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		close(arrived)
		<-release
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	f := newFixture(t, clock, rc.inbox, nil)
	f.enqueue(t, 1, "case-1")
	cancel, done := runUntilArrived(t, f, arrived)
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while an attempt was in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the attempt in flight finished")
	}
	p := f.pending(t)
	if len(p) != 1 || p[0].Attempts != 1 || !strings.Contains(p[0].LastError, "503") {
		t.Fatalf("pending = %+v, want the delivery pending with its failed attempt recorded", p)
	}
	if n := len(rc.requests()); n != 1 {
		t.Errorf("recipient got %d requests, want 1", n)
	}
}

// TestAbandonEndsAttemptsInFlight cancels Run while an attempt waits for a
// peer that never answers, then abandons it, as a node does at its
// shutdown deadline: Run returns at once, and the delivery stays pending
// with no attempt recorded against the peer, to be sent at the next start.
func TestAbandonEndsAttemptsInFlight(t *testing.T) {
	clock := newFakeClock()
	arrived := make(chan struct{})
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		close(arrived)
		<-t.Context().Done() // never answers while the test runs
	})
	f := newFixture(t, clock, rc.inbox, nil)
	f.enqueue(t, 1, "case-1")
	cancel, done := runUntilArrived(t, f, arrived)
	cancel()
	f.d.Abandon()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its attempt in flight was abandoned")
	}
	p := f.pending(t)
	if len(p) != 1 || p[0].Attempts != 0 || p[0].LastError != "" {
		t.Fatalf("pending = %+v, want the delivery pending with no attempt recorded", p)
	}
	if s := f.d.Stats(); s.Retried != 0 || s.DeadLettered != 0 {
		t.Errorf("stats = %+v, want no retry and no dead letter", s)
	}
}

// TestShutdownIdleReturns cancels an idle Run.
func TestShutdownIdleReturns(t *testing.T) {
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", func(c *DelivererConfig) { c.PollInterval = time.Hour })
	stop := run(t, f.d)
	stop()
}

// TestResumeAfterCrash leases a delivery as a worker does and closes the
// store without recording an outcome, as a kill -9 in the middle of a
// delivery would leave it: a Deliverer on the reopened store sends it.
func TestResumeAfterCrash(t *testing.T) {
	clock := newFakeClock()
	rc := newRecipient(t, clock, nil, nil)
	f := newFixture(t, clock, rc.inbox, nil)
	id := f.enqueue(t, 1, "case-1")
	f.due(t) // leased by a worker that never finishes
	path := f.db.Path()
	if err := f.db.Close(); err != nil {
		t.Fatal(err)
	}

	f.db = openStore(t, path, clock)
	f.d = f.deliverer(t, nil)
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "the interrupted delivery to be sent", func() bool { return len(f.pending(t)) == 0 })
	got := rc.requests()
	if len(got) != 1 || got[0].activityID != id {
		t.Fatalf("recipient got %d requests, want %s once", len(got), id)
	}
}

// overlap counts the attempts a recipient is answering at once.
type overlap struct {
	mu        sync.Mutex
	now, most int
}

// peak returns the most attempts seen at once since the last reset.
func (o *overlap) peak() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.most
}

func (o *overlap) reset() {
	o.mu.Lock()
	o.most = 0
	o.mu.Unlock()
}

// slowRecipient answers every delivery with 202 after 20 ms, so that
// attempts the Deliverer runs at once overlap, and counts how many do.
func slowRecipient(t *testing.T, clock *fakeClock) (*recipient, *overlap) {
	t.Helper()
	o := &overlap{}
	rc := newRecipient(t, clock, nil, func(_ int, _ received, w http.ResponseWriter) {
		o.mu.Lock()
		o.now++
		o.most = max(o.most, o.now)
		o.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		o.mu.Lock()
		o.now--
		o.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	return rc, o
}

// TestWorkersBounded checks that no more attempts run at once than there
// are workers.
func TestWorkersBounded(t *testing.T) {
	clock := newFakeClock()
	rc, seen := slowRecipient(t, clock)
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Workers = 2
	})
	for i := 1; i <= 8; i++ {
		f.enqueue(t, i, "") // no lane: all due at once
	}
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })
	if peak := seen.peak(); peak > 2 {
		t.Errorf("%d attempts ran at once with 2 workers", peak)
	}
	if n := len(rc.requests()); n != 8 {
		t.Errorf("recipient got %d requests, want 8", n)
	}
}

func TestNewDelivererValidates(t *testing.T) {
	f := newFixture(t, newFakeClock(), "http://127.0.0.1:1/inbox", nil)
	tests := []struct {
		name string
		edit func(*DelivererConfig)
	}{
		{"no queue", func(c *DelivererConfig) { c.Queue = nil }},
		{"no keys", func(c *DelivererConfig) { c.Keys = nil }},
		{"no resolver", func(c *DelivererConfig) { c.Inboxes = nil }},
		{"negative workers", func(c *DelivererConfig) { c.Workers = -1 }},
		{"negative longest yield", func(c *DelivererConfig) { c.MaxYield = -time.Second }},
		{"policy without horizon", func(c *DelivererConfig) { c.Policy = RetryPolicy{First: time.Second, Max: time.Minute} }},
	}
	for _, tt := range tests {
		cfg := DelivererConfig{Queue: f.db, Keys: testKeys{}, Inboxes: f.inboxes}
		tt.edit(&cfg)
		if _, err := NewDeliverer(cfg); err == nil {
			t.Errorf("%s: NewDeliverer accepted the configuration", tt.name)
		}
	}
	d, err := NewDeliverer(DelivererConfig{Queue: f.db, Keys: testKeys{}, Inboxes: f.inboxes})
	if err != nil {
		t.Fatalf("NewDeliverer with defaults: %v", err)
	}
	if d.workers != DefaultWorkers || d.pollInterval != DefaultPollInterval || d.policy != DefaultRetryPolicy() || d.userAgent != "vultron/dev" {
		t.Errorf("defaults not applied: workers %d, poll %v, policy %+v, UA %q", d.workers, d.pollInterval, d.policy, d.userAgent)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("actor gone")
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) || p.Error() != "actor gone" {
		t.Errorf("Permanent(%v) = %v: IsPermanent %v, wraps base %v", base, p, IsPermanent(p), errors.Is(p, base))
	}
	if classify(0, fmt.Errorf("resolve: %w", p)) != permanent {
		t.Errorf("a wrapped Permanent error is not classified permanent")
	}
	if Permanent(nil) != nil || IsPermanent(base) {
		t.Errorf("Permanent(nil) or IsPermanent of a plain error is wrong")
	}
}

// TestBusyYields checks that while the node reports inbound load the
// Deliverer keeps one attempt in flight, still delivering everything, and
// uses all its workers again once the load is gone.
func TestBusyYields(t *testing.T) {
	clock := newFakeClock()
	rc, seen := slowRecipient(t, clock)
	var busy atomic.Bool
	busy.Store(true)
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Workers = 4
		c.Busy = busy.Load
	})
	for i := 1; i <= 6; i++ {
		f.enqueue(t, i, "")
	}
	run(t, f.d)
	start := time.Now()
	f.d.Wake()
	waitFor(t, "every delivery while busy", func() bool { return len(f.pending(t)) == 0 })
	// Each attempt takes at least 20 ms, so after each of the first five
	// the next waits at least 20 ms × (1 − BusyShare) / BusyShare.
	if took, least := time.Since(start), time.Duration(5*float64(20*time.Millisecond)*(1-BusyShare)/BusyShare); took < least {
		t.Errorf("6 deliveries while busy took %s, want at least %s (attempts limited to a share of %.2f)", took, least, BusyShare)
	}
	if peak := seen.peak(); peak != BusyWorkers {
		t.Errorf("%d attempts ran at once while busy, want %d", peak, BusyWorkers)
	}
	seen.reset()

	busy.Store(false)
	for i := 7; i <= 14; i++ {
		f.enqueue(t, i, "")
	}
	f.d.Wake()
	waitFor(t, "every delivery once idle", func() bool { return len(f.pending(t)) == 0 })
	if peak := seen.peak(); peak < 2 {
		t.Errorf("at most %d attempt ran at once when not busy, want several of 4 workers", peak)
	}
	if n := len(rc.requests()); n != 14 {
		t.Errorf("recipient got %d requests, want 14", n)
	}
}

// TestYieldEnds checks that deliveries stop yielding to an inbox that stays
// busy once the queue has been behind for MaxYield.
func TestYieldEnds(t *testing.T) {
	clock := newFakeClock()
	rc, seen := slowRecipient(t, clock)
	f := newFixture(t, clock, rc.inbox, func(c *DelivererConfig) {
		c.Workers = 4
		c.Busy = func() bool { return true } // never idle
		c.MaxYield = 100 * time.Millisecond
	})
	const n = 24
	for i := 1; i <= n; i++ {
		f.enqueue(t, i, "")
	}
	run(t, f.d)
	f.d.Wake()
	waitFor(t, "every delivery", func() bool { return len(f.pending(t)) == 0 })
	if peak := seen.peak(); peak < 2 {
		t.Errorf("at most %d attempt ran at once after yielding for %s, want several of 4 workers", peak, 100*time.Millisecond)
	}
	if got := len(rc.requests()); got != n {
		t.Errorf("recipient got %d requests, want %d", got, n)
	}
}
