package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
)

// TestGivesUpAfterHorizon checks that an event a receiver keeps refusing is
// given up on after the retry horizon, counted and recorded in the cursor,
// and that the next event is then delivered.
func TestGivesUpAfterHorizon(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 3 {
			w.WriteHeader(http.StatusInternalServerError) // every attempt at the first event
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	d, err := New(Config{DB: db, URLs: []string{srv.URL}, Secret: []byte("0123456789abcdef0123"),
		Policy: outbox.RetryPolicy{First: 10 * time.Millisecond, Max: 20 * time.Millisecond, Horizon: 25 * time.Millisecond},
		Logger: zerolog.Nop(), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// Wait for the webhook's cursor to exist before the events, so that it
	// starts before them.
	waitForCursor(t, db, srv.URL)
	deadline := time.Now().Add(10 * time.Second)
	for i := range int64(2) {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", LogIndex: &i, EventType: "add_note_to_case", Time: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	for d.Stats().Delivered != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the second event was not delivered", d.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if st := d.Stats(); st.Skipped != 1 || st.Retried < 1 {
		t.Errorf("stats %+v, want 1 skipped after retries", st)
	}
	c, _, err := db.WebhookCursor(context.Background(), srv.URL)
	if err != nil || c.Seq != 2 || c.Skipped != 1 {
		t.Errorf("cursor %+v (%v), want seq 2 with 1 skipped", c, err)
	}
	if _, err := New(Config{DB: db, URLs: []string{srv.URL}, Secret: []byte("short")}); err == nil {
		t.Error("a dispatcher with a short secret was created")
	}
}

// TestSign checks the signature against a value computed by hand.
func TestSign(t *testing.T) {
	got := Sign([]byte("secret"), []byte(`{"a":1}`), time.Unix(1700000000, 0))
	// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret
	want := "t=1700000000,sha256=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

// TestOnlyLedgerEntriesNameALogIndex sends a case's first ledger entry, an
// event about the case that is no entry of its ledger (an intelligence
// signal), and a report's step: only the entry names a log index, 0
// included, so that a receiver keyed on a case's log index never takes
// another event for an entry.
func TestOnlyLedgerEntriesNameALogIndex(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := make(chan map[string]any, 3)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
			t.Errorf("decode: %v", err)
		}
		got <- doc
	}))
	defer srv.Close()
	d, err := New(Config{DB: db, URLs: []string{srv.URL}, Secret: []byte("0123456789abcdef0123"),
		Logger: zerolog.Nop(), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Run(ctx) }()
	waitForCursor(t, db, srv.URL)
	const caseID = "http://node.example/cases/1"
	first := int64(0)
	for _, ev := range []store.Event{
		{CaseID: caseID, LogIndex: &first, EventType: "create_case"},
		{CaseID: caseID, EventType: "intel_exploit_public"},
		{Report: "http://finder.example/objects/1", EventType: "report_received"},
	} {
		ev.Time = time.Now()
		if err := db.Update(ctx, func(tx *store.Tx) error { return tx.AppendEvent(ev) }); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct {
		event    string
		logIndex any
	}{{"create_case", float64(0)}, {"intel_exploit_public", nil}, {"report_received", nil}} {
		select {
		case doc := <-got:
			if doc["event"] != want.event || doc["logIndex"] != want.logIndex {
				t.Errorf("document %v; want event %s with logIndex %v", doc, want.event, want.logIndex)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no document for %s", want.event)
		}
	}
}

// waitForCursor waits until the dispatcher stored its cursor for url,
// which it does before it reads the change feed.
func waitForCursor(t *testing.T, db *store.DB, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, known, _ := db.WebhookCursor(context.Background(), url); known {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not store a cursor")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLogsHideTheURLPassword: a webhook URL's password (basic
// authentication to the receiver) is never written to the log, neither
// when a delivery fails nor when it is given up on.
func TestLogsHideTheURLPassword(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	const password = "hunter2-receiver-password"
	hook := strings.Replace(srv.URL, "http://", "http://tickets:"+password+"@", 1)
	var logs syncBuffer
	d, err := New(Config{DB: db, URLs: []string{hook}, Secret: []byte("0123456789abcdef0123"),
		Policy: outbox.RetryPolicy{First: 10 * time.Millisecond, Max: 20 * time.Millisecond, Horizon: 25 * time.Millisecond},
		Logger: zerolog.New(&logs), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitForCursor(t, db, hook)
	if err := db.Update(ctx, func(tx *store.Tx) error {
		return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "add_note_to_case", Time: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Skipped != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: the event was not given up on", d.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	out := logs.String()
	if !strings.Contains(out, "gave up") {
		t.Fatalf("no log line of the event given up on:\n%s", out)
	}
	if strings.Contains(out, password) {
		t.Errorf("the log holds the webhook URL's password:\n%s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the dispatcher's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestEachEventOncePerURL: a URL configured twice still receives each
// event once: its one cursor is followed once.
func TestEachEventOncePerURL(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	got := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got[r.Header.Get(EventIDHeader)]++
		mu.Unlock()
	}))
	defer srv.Close()
	d, err := New(Config{DB: db, URLs: []string{srv.URL, srv.URL}, Secret: []byte("0123456789abcdef0123"),
		Logger: zerolog.Nop(), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	waitForCursor(t, db, srv.URL)
	time.Sleep(50 * time.Millisecond) // both followers, if there are two, have read the cursor
	const events = 5
	for range events {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "add_note_to_case", Time: time.Now()})
		}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Stats().Delivered < events {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v: not every event was delivered", d.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for id, n := range got {
		if n != 1 {
			t.Errorf("event %s delivered %d times", id, n)
		}
	}
}

// TestRedirectIsNoDelivery: a receiver that answers with a redirect (a
// login page in front of a ticket system) has not taken the event: the
// node does not follow it, which would turn the POST into a GET of
// another page, or post the event to another address, and count that
// page's 200 as the event delivered. The event is tried again.
func TestRedirectIsNoDelivery(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var posts, elsewhere atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hook":
			posts.Add(1)
			http.Redirect(w, r, "/login", http.StatusFound)
		case "/moved":
			posts.Add(1)
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		default:
			elsewhere.Add(1)
			w.WriteHeader(http.StatusOK)
		}
	}))
	defer srv.Close()
	hooks := []string{srv.URL + "/hook", srv.URL + "/moved"}
	d, err := New(Config{DB: db, URLs: hooks, Secret: []byte("0123456789abcdef0123"),
		Policy: outbox.RetryPolicy{First: 10 * time.Millisecond, Max: 20 * time.Millisecond, Horizon: time.Hour},
		Logger: zerolog.Nop(), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for _, h := range hooks {
		waitForCursor(t, db, h)
	}
	if err := db.Update(ctx, func(tx *store.Tx) error {
		return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", EventType: "add_note_to_case", Time: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for posts.Load() < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%d posts to the webhooks; want them tried again", posts.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if st := d.Stats(); st.Delivered != 0 || st.Retried < 4 {
		t.Errorf("stats %+v; want no event delivered, each tried again", st)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the node followed the redirects %d times", n)
	}
}
