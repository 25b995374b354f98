package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/store"
)

// TestAFollowerOutlivesAStoreThatFails: a webhook's follower whose first
// read of its cursor fails (the node starts while its database is not up
// yet; here the store is closed) tries again, as it does for the change
// feed, rather than ending that webhook's delivery until the next
// restart; it ends when the node stops.
func TestAFollowerOutlivesAStoreThatFails(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }))
	defer srv.Close()
	d, err := New(Config{DB: db, URLs: []string{srv.URL}, Secret: []byte("0123456789abcdef0123"),
		Logger: zerolog.Nop(), Node: "http://node.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() { d.follow(ctx, srv.URL); close(returned) }()
	// Past its first try again, a second after the first.
	select {
	case <-returned:
		t.Fatal("the follower ended while the node runs: this webhook would get no event until the node restarts")
	case <-time.After(1500 * time.Millisecond):
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the follower did not end with the node")
	}
}
