package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, known, _ := db.WebhookCursor(ctx, srv.URL); known {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher did not store a cursor")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 2 {
		if err := db.Update(ctx, func(tx *store.Tx) error {
			return tx.AppendEvent(store.Event{CaseID: "http://node.example/cases/1", LogIndex: int64(i), EventType: "add_note_to_case", Time: time.Now()})
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
