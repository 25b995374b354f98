package federation_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
)

// crashPeer is a remote actor served by the test: it signs the inbound
// stream the node receives and its inbox is the sink of the node's
// outbound stream. The sink records every delivery it gets, by activity id.
type crashPeer struct {
	srv   *httptest.Server
	id    string
	keyID string
	key   *rsa.PrivateKey

	mu        sync.Mutex
	delivered map[string]int    // activity id → deliveries received
	readOf    map[string]string // offer id → id of the Read (RK) that acknowledged it
	readDup   []string          // offers acknowledged by two different Reads
}

func newCrashPeer(t *testing.T) *crashPeer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &crashPeer{key: key, delivered: map[string]int{}, readOf: map[string]string{}}
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	p.srv = startLoopbackServer(t, mux)
	t.Cleanup(p.srv.Close)
	p.id = p.srv.URL + "/actors/sink"
	p.keyID = p.id + "#main-key"
	mux.HandleFunc("GET /actors/sink", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", actor.ContentType)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{actor.ActivityStreamsContext, actor.SecurityContext},
			"id":       p.id, "type": "Organization", "preferredUsername": "sink",
			"inbox": p.id + "/inbox", "outbox": p.id + "/outbox",
			"publicKey": map[string]string{"id": p.keyID, "owner": p.id, "publicKeyPem": pemText},
		})
	})
	mux.HandleFunc("POST /actors/sink/inbox", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var a struct {
			ID     string          `json:"id"`
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if json.Unmarshal(body, &a) != nil || a.ID == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		p.delivered[a.ID]++
		if a.Type == "Read" {
			var ref string
			if json.Unmarshal(a.Object, &ref) != nil {
				var o struct {
					ID string `json:"id"`
				}
				_ = json.Unmarshal(a.Object, &o)
				ref = o.ID
			}
			if prev, ok := p.readOf[ref]; ok && prev != a.ID {
				p.readDup = append(p.readDup, ref)
			}
			p.readOf[ref] = a.ID
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	return p
}

// TestCrashSafetyUnderRepeatedSigkill runs a `vultron serve` process that
// receives a stream of signed Offers from a peer and sends a stream of
// Offers to it through its outbox, SIGKILLs it five times at random
// moments and restarts it each time. Senders retry what was not
// acknowledged. At the end every Offer the node acknowledged with 202 is in
// its inbox exactly once and was acknowledged (RK, a Read) exactly once, and
// every activity its outbox acknowledged with 201 reached the peer. Delivery
// is at least once: an activity whose delivery was under way at a kill is
// sent again after the restart, so the peer may see it twice (deduping by
// activity id); the test logs how many such duplicates there were.
func TestCrashSafetyUnderRepeatedSigkill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a node process through five SIGKILLs")
	}
	const inbound, outbound, kills = 200, 200, 5
	bin := buildVultron(t)
	p := newCrashPeer(t)
	c := newCluster(t, bin, "vendor:Organization")
	n := c.node("vendor")
	token := n.token // the token file outlives restarts
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(80 * time.Second)

	var inAcked, outAcked sync.Map // activity id → true
	var wg sync.WaitGroup
	wg.Go(func() {
		p.postOffers(t, client, n.actorID(), "crash-offer", inbound, deadline, &inAcked, 50*time.Millisecond)
	})
	wg.Go(func() {
		p.submitOffers(t, client, n.actorID(), token, outbound, deadline, &outAcked, 50*time.Millisecond)
	})

	count := func(m *sync.Map) int {
		n := 0
		m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	// The kills fall at random moments inside the streams: the k-th when
	// about k/(kills+1) of the inbound stream is acknowledged, give or take
	// a few activities and a few milliseconds.
	for k := range kills {
		mark := (k+1)*inbound/(kills+1) + mrand.IntN(21) - 10
		for count(&inAcked) < mark && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(time.Duration(mrand.IntN(50)) * time.Millisecond)
		if err := n.cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL %d: %v", k+1, err)
		}
		<-n.done
		t.Logf("SIGKILL %d: %d inbound and %d outbound activities acknowledged so far", k+1, count(&inAcked), count(&outAcked))
		c.restart("vendor")
	}
	wg.Wait()

	ids := func(m *sync.Map) []string {
		var out []string
		m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
		return out
	}
	in, out := ids(&inAcked), ids(&outAcked)
	if len(in) != inbound || len(out) != outbound {
		t.Fatalf("within the time limit %d of %d inbound and %d of %d outbound activities were acknowledged", len(in), inbound, len(out), outbound)
	}

	// Every acknowledged inbound Offer is in the inbox exactly once.
	inbox := inboxCounts(t, func(path string) (int, []byte) { return c.api(n, http.MethodGet, path, nil) })
	for _, id := range in {
		if inbox[id] != 1 {
			t.Errorf("acknowledged Offer %s is in the inbox %d times, want once", id, inbox[id])
		}
	}

	// Every acknowledged outbound activity reaches the peer, and every
	// acknowledged inbound Offer is acknowledged (applied) exactly once.
	waitUntil := time.Now().Add(60 * time.Second)
	for {
		p.mu.Lock()
		missing, unread := 0, 0
		for _, id := range out {
			if p.delivered[id] == 0 {
				missing++
			}
		}
		for _, id := range in {
			if p.readOf[id] == "" {
				unread++
			}
		}
		dupReads := slicesClone(p.readDup)
		dups := 0
		for _, cnt := range p.delivered {
			dups += cnt - 1
		}
		p.mu.Unlock()
		if len(dupReads) > 0 {
			t.Fatalf("offers acknowledged by two different Reads (applied twice): %v", dupReads)
		}
		if missing == 0 && unread == 0 {
			t.Logf("after %d SIGKILLs: %d inbound and %d outbound activities; the peer received %d duplicate deliveries (at-least-once delivery)", kills, len(in), len(out), dups)
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatalf("%d of %d outbound activities never reached the peer and %d of %d inbound Offers were never acknowledged", missing, len(out), unread, len(in))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// offerRequest returns a POST, signed by p now, of an Offer of a report
// with content to the inbox of actorID; the Offer's id is
// p.id/activities/NAME and the report's p.id/reports/NAME.
func (p *crashPeer) offerRequest(actorID, name, content string) (*http.Request, string, error) {
	id := fmt.Sprintf("%s/activities/%s", p.id, name)
	body := []byte(fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","id":%q,"type":"Offer","actor":%q,"to":[%q],
"object":{"id":"%s/reports/%s","type":"VulnerabilityReport","name":"Report %s","content":%q,"attributedTo":%q}}`,
		id, p.id, actorID, p.id, name, name, content, p.id))
	req, err := http.NewRequest(http.MethodPost, actorID+"/inbox", bytes.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", actor.ContentType)
	if err := actor.SignRequest(req, body, p.keyID, p.key, time.Now()); err != nil {
		return nil, "", err
	}
	return req, id, nil
}

// postOffers posts n signed Offers of reports from p to the inbox of
// actorID, one after the other, each until the node answers 202 or
// deadline passes, and stores the id of each one answered 202 in acked.
// name tells the Offers of one test from another's.
func (p *crashPeer) postOffers(t *testing.T, client *http.Client, actorID, name string, n int, deadline time.Time, acked *sync.Map, pause time.Duration) {
	for i := range n {
		for time.Now().Before(deadline) {
			req, id, err := p.offerRequest(actorID, fmt.Sprintf("%s-%d", name, i), fmt.Sprintf("details %d", i))
			if err != nil {
				t.Error(err)
				return
			}
			resp, err := client.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					acked.Store(id, true)
					break
				}
			}
			time.Sleep(pause)
		}
	}
}

// postOffer signs and posts one Offer of a report with content to the
// inbox of actorID, as p, with the id p.id/activities/NAME, and returns
// the answer.
func (p *crashPeer) postOffer(t *testing.T, client *http.Client, actorID, name, content string) (int, []byte, http.Header) {
	t.Helper()
	req, _, err := p.offerRequest(actorID, name, content)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("post %s: %v", name, err)
	}
	defer resp.Body.Close()
	said, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, said, resp.Header
}

// submitOffers submits n Offers to p through the outbox of actorID with
// the node's API token, each until the node answers 201 (or 202) or
// deadline passes, and stores the id of each acknowledged activity in
// acked. A submission whose answer was lost may or may not be queued; only
// acknowledged ones are promised.
func (p *crashPeer) submitOffers(t *testing.T, client *http.Client, actorID, token string, n int, deadline time.Time, acked *sync.Map, pause time.Duration) {
	for i := range n {
		body := []byte(fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Outbound %d","content":"outbound details %d"}}`, p.id, i, i))
		for time.Now().Before(deadline) {
			req, err := http.NewRequest(http.MethodPost, actorID+"/outbox", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", actor.ContentType)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err == nil {
				data, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusAccepted {
					var a struct {
						ID string `json:"id"`
					}
					if json.Unmarshal(data, &a) != nil || a.ID == "" {
						t.Errorf("the outbox answered %d without an activity id: %s", resp.StatusCode, data)
						return
					}
					acked.Store(a.ID, true)
					break
				}
			}
			time.Sleep(pause)
		}
	}
}

// inboxCounts reads the whole inbox of the vendor actor page by page with
// get (a GET of a path with the API token) and counts each activity id.
func inboxCounts(t *testing.T, get func(path string) (int, []byte)) map[string]int {
	t.Helper()
	inbox := map[string]int{}
	cursor := ""
	for {
		status, body := get("/actors/vendor/inbox?limit=200&cursor=" + cursor)
		if status != http.StatusOK {
			t.Fatalf("GET the inbox: %d %s", status, body)
		}
		var page struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"orderedItems"`
			Next string `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			t.Fatal(err)
		}
		for _, it := range page.Items {
			inbox[it.ID]++
		}
		if page.Next == "" {
			return inbox
		}
		_, cursor, _ = strings.Cut(page.Next, "cursor=")
	}
}
