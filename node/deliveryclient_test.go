package node

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestDeliveryClientReusesConnections sends from as many goroutines as
// the node has delivery workers to one host, round after round, and
// checks that the delivery client opens no more connections than there
// are workers: each keeps its connection between requests.
func TestDeliveryClientReusesConnections(t *testing.T) {
	const workers, rounds = 8, 25
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusAccepted)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	client := deliveryClient(Config{AllowPrivatePeers: true, DeliveryWorkers: workers})
	// Every round starts its requests together, so that all workers hold
	// a connection at once, as they do when one peer has many deliveries due.
	for round := range rounds {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, srv.URL+"/inbox", http.NoBody)
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("round %d: %v", round, err)
					return
				}
				resp.Body.Close()
			}()
		}
		close(start)
		wg.Wait()
	}
	// A connection goes back to the idle pool a moment after its body is
	// closed, so a round may start before the last one's are all back and
	// dial one or two more; keeping net/http's two idle connections per
	// host opened 138 here.
	if n := opened.Load(); n > 2*workers {
		t.Errorf("%d requests from %d workers opened %d connections, want at most %d", workers*rounds, workers, n, 2*workers)
	}
}
