package node

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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
)

// testKeys holds RSA keys generated once per test binary: generating a
// 2048-bit key takes long enough to matter when every test wants one.
type testKeys struct {
	once sync.Once
	keys []*rsa.PrivateKey
}

func (k *testKeys) get(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	k.once.Do(func() {
		for range 3 {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			k.keys = append(k.keys, key)
		}
	})
	return k.keys[i]
}

var sharedKeys testKeys

// testNode is a node served on a loopback port for a test.
type testNode struct {
	*Node
	url   string
	token string
	dir   string
	stop  func()
}

// startNode starts a node with the given actors ("name:Type") on
// 127.0.0.1 and stops it when the test ends.
func startNode(t testing.TB, specs ...string) *testNode {
	t.Helper()
	return startNodeIn(t, t.TempDir(), nil, specs...)
}

func startNodeIn(t testing.TB, dir string, ln net.Listener, specs ...string) *testNode {
	t.Helper()
	return startNodeConfig(t, dir, ln, Config{}, specs...)
}

// startNodeConfig starts a node like startNode with the non-zero fields
// of extra applied, whose analysts and admins log in to the dashboard
// with a password alone (a second factor is optional), as most tests of
// the dashboard want; startNodeStrict starts one that requires it.
func startNodeConfig(t testing.TB, dir string, ln net.Listener, extra Config, specs ...string) *testNode {
	t.Helper()
	extra.SecondFactorOptional = true
	return startNodeStrict(t, dir, ln, extra, specs...)
}

// startNodeStrict starts a node with exactly the login settings of extra.
func startNodeStrict(t testing.TB, dir string, ln net.Listener, extra Config, specs ...string) *testNode {
	t.Helper()
	return startNodeLogged(t, dir, ln, extra, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), specs...)
}

// startNodeLogged starts a node like startNodeStrict that logs to log.
func startNodeLogged(t testing.TB, dir string, ln net.Listener, extra Config, log zerolog.Logger, specs ...string) *testNode {
	t.Helper()
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + ln.Addr().String()
	if extra.PublicURL != "" {
		// Peers reach the node through something in front of it (a test's
		// proxy); the test talks to it there too.
		url = extra.PublicURL
	}
	var acs []ActorConfig
	for _, s := range specs {
		// "name:Type+open": an actor that accepts every Follow.
		s, open := strings.CutSuffix(s, "+open")
		name, typ, err := actor.ParseActorSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		acs = append(acs, ActorConfig{Name: name, Type: typ, OpenFollowers: open})
	}
	n, err := New(context.Background(), Config{
		DataDir:              dir,
		Listener:             ln,
		PublicURL:            url,
		Actors:               acs,
		AllowPrivatePeers:    true,
		NoSync:               true,
		Retry:                extra.Retry,
		ShutdownTimeout:      extra.ShutdownTimeout,
		BackupStallTimeout:   extra.BackupStallTimeout,
		DefaultEmbargo:       extra.DefaultEmbargo,
		MaxEmbargo:           extra.MaxEmbargo,
		Federation:           extra.Federation,
		AllowPeers:           extra.AllowPeers,
		PeerRate:             extra.PeerRate,
		PeerBurst:            extra.PeerBurst,
		IPRate:               extra.IPRate,
		IPBurst:              extra.IPBurst,
		TrustedProxies:       extra.TrustedProxies,
		TrustedProxyHeaders:  extra.TrustedProxyHeaders,
		Webhooks:             extra.Webhooks,
		ReplicaSync:          extra.ReplicaSync,
		MaxInboxBytes:        extra.MaxInboxBytes,
		SecondFactorOptional: extra.SecondFactorOptional,
		OIDC:                 extra.OIDC,
		AttributeNames:       extra.AttributeNames,
		Argon2:               testArgon2,
		Now:                  extra.Now,
		Deadlines:            extra.Deadlines,
		DeadlineCheck:        extra.DeadlineCheck,
		IntelFeeds:           extra.IntelFeeds,
		IntelInterval:        extra.IntelInterval,
		Policy:               extra.Policy,
		PolicyFile:           extra.PolicyFile,
		PolicyCheck:          extra.PolicyCheck,
		PolicyReload:         extra.PolicyReload,
		AutomationInterval:   extra.AutomationInterval,
		Logger:               log,
		Notice:               io.Discard,
	})
	if err != nil {
		ln.Close()
		t.Fatalf("New: %v", err)
	}
	tokenBytes, err := os.ReadFile(filepath.Join(dir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testNode{Node: n, url: url, token: strings.TrimSpace(string(tokenBytes)), dir: dir, stop: stop}
}

func (tn *testNode) actorID(name string) string { return tn.url + "/actors/" + name }

// person adds a user of the given role (for the actors given, all when
// none) with a password set through its enrollment link, and returns the
// password.
func (tn *testNode) person(t testing.TB, name string, role accounts.Role, actors ...string) string {
	t.Helper()
	ctx := context.Background()
	admin, err := tn.accounts.Authenticate(ctx, tn.token)
	if err != nil {
		t.Fatal(err)
	}
	added, err := tn.accounts.AddUser(ctx, admin, accounts.NewUser{Name: name, DisplayName: "Person " + name, Role: role, Actors: actors}, func(string) bool { return true }, "")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(added.Enroll)
	if err != nil {
		t.Fatal(err)
	}
	password := "the password of " + name
	if _, err := tn.accounts.Enroll(ctx, u.Query().Get("code"), password, accounts.LoginMeta{}); err != nil {
		t.Fatal(err)
	}
	return password
}

// api sends a request with the node's token and returns status and body.
func (tn *testNode) api(t testing.TB, method, path string, body string) (int, []byte) {
	t.Helper()
	return tn.apiAs(t, tn.token, method, path, body)
}

// apiAs sends a request with token tok and returns status and body.
func (tn *testNode) apiAs(t testing.TB, tok, method, path string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, tn.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/activity+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// submit posts an activity to a local actor's outbox and returns its id.
func (tn *testNode) submit(t testing.TB, name, activity string) string {
	t.Helper()
	status, body := tn.api(t, http.MethodPost, "/actors/"+name+"/outbox", activity)
	if status != http.StatusCreated {
		t.Fatalf("submit to %s's outbox: %d %s", name, status, body)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return out.ID
}

// inboxItems returns the activities in a local actor's inbox, newest first.
func (tn *testNode) inboxItems(t testing.TB, name string) []map[string]any {
	t.Helper()
	return tn.boxItems(t, name, "inbox")
}

// boxItems returns the activities of a local actor's inbox or outbox.
func (tn *testNode) boxItems(t testing.TB, name, box string) []map[string]any {
	t.Helper()
	status, body := tn.api(t, http.MethodGet, "/actors/"+name+"/"+box+"?limit=200", "")
	if status != http.StatusOK {
		t.Fatalf("%s of %s: %d %s", box, name, status, body)
	}
	var page struct {
		Items []map[string]any `json:"orderedItems"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	waitWithin(t, 20*time.Second, what, cond)
}

// waitWithin polls cond until it holds or d passes.
func waitWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// peer is a foreign actor served by a test HTTP server: its actor document
// and key are what the node fetches to verify its signatures.
type peer struct {
	srv   *httptest.Server
	id    string
	keyID string
	key   *rsa.PrivateKey
	// docKeyID, when set, is the key id the actor document lists instead
	// of keyID (a document that does not own the signing key).
	mu       sync.Mutex
	received [][]byte
	// docFetches counts the GETs of the actor document (key fetches).
	docFetches atomic.Int32
	// hits counts the requests to each path of the peer's server.
	hitsMu sync.Mutex
	hits   map[string]int
}

// hitCount returns how many requests the peer's server got for path.
func (p *peer) hitCount(path string) int {
	p.hitsMu.Lock()
	defer p.hitsMu.Unlock()
	return p.hits[path]
}

func newPeer(t *testing.T, key *rsa.PrivateKey) *peer {
	t.Helper()
	p := &peer{key: key, hits: map[string]int{}}
	mux := http.NewServeMux()
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.hitsMu.Lock()
		p.hits[r.URL.Path]++
		p.hitsMu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	p.id = p.srv.URL + "/actors/mallory"
	p.keyID = p.id + "#main-key"
	pemText, err := actor.PublicKeyPEM(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/actors/mallory", func(w http.ResponseWriter, r *http.Request) {
		p.docFetches.Add(1)
		w.Header().Set("Content-Type", actor.ContentType)
		json.NewEncoder(w).Encode(map[string]any{
			"@context": []string{actor.ActivityStreamsContext, actor.SecurityContext},
			"id":       p.id, "type": "Organization", "preferredUsername": "mallory",
			"inbox": p.id + "/inbox", "outbox": p.id + "/outbox",
			"publicKey": map[string]string{"id": p.keyID, "owner": p.id, "publicKeyPem": pemText},
		})
	})
	mux.HandleFunc("/actors/mallory/inbox", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		p.mu.Lock()
		p.received = append(p.received, b)
		p.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	return p
}

func (p *peer) receivedCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.received)
}

// post signs body as the peer and posts it to url, with edit applied to the
// request after signing (to tamper with it). It returns the status and the
// error text of the answer.
func (p *peer) post(t *testing.T, url string, body []byte, edit func(*http.Request)) (int, string) {
	t.Helper()
	status, msg, _ := p.postHeader(t, url, body, edit)
	return status, msg
}

// postHeader is post that also returns the answer's headers.
func (p *peer) postHeader(t *testing.T, url string, body []byte, edit func(*http.Request)) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", actor.ContentType)
	if err := actor.SignRequest(req, body, p.keyID, p.key, time.Now()); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error, resp.Header
}

// offer returns an Offer(VulnerabilityReport) from the peer to recipient.
func (p *peer) offer(n int, recipient string) []byte {
	return []byte(fmt.Sprintf(`{
  "@context": "https://certcc.github.io/Vultron/ns/context.jsonld",
  "id": "%[1]s/activities/offer-%[3]d",
  "type": "Offer",
  "actor": "%[1]s",
  "to": ["%[2]s"],
  "object": {
    "id": "%[1]s/reports/%[3]d",
    "type": "VulnerabilityReport",
    "name": "Heap overflow in the widget parser",
    "content": "A crafted widget file overflows a heap buffer.",
    "attributedTo": "%[1]s"
  }
}`, p.id, recipient, n))
}

var errNotJSON = errors.New("not JSON")

// decode parses a JSON object.
func decode(b []byte) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errNotJSON
	}
	return m, nil
}

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// signedGet fetches url with a GET signed by keyID and returns the status.
func signedGet(t *testing.T, url, keyID string, key *rsa.PrivateKey) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", actor.ContentType)
	if err := actor.SignRequest(req, nil, keyID, key, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// reportIDOf returns the id of the report an Offer in tn's store carries.
func reportIDOf(t *testing.T, tn *testNode, offerID string) string {
	t.Helper()
	stored, err := tn.db.Activity(context.Background(), offerID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := decode(stored.Body)
	if err != nil {
		t.Fatal(err)
	}
	obj, _ := m["object"].(map[string]any)
	id, _ := obj["id"].(string)
	if id == "" {
		t.Fatalf("offer %s carries no report id", offerID)
	}
	return id
}

// startNodeWith starts a node like startNode, with the non-zero fields of
// extra (Retry ...) applied to its configuration.
func startNodeWith(t testing.TB, extra Config, specs ...string) *testNode {
	t.Helper()
	return startNodeConfig(t, t.TempDir(), nil, extra, specs...)
}

// countType counts the activities of the given type.
func countType(items []map[string]any, typ string) int {
	n := 0
	for _, it := range items {
		if it["type"] == typ {
			n++
		}
	}
	return n
}

// caseSteps submits activities to a case that host holds and waits after
// each until host and the given followers have recorded it.
type caseSteps struct {
	t    testing.TB
	host *testNode
	// length is the case's ledger length after the last step.
	length int64
}

// step submits activity as local actor name of node n and returns its id
// once every follower's copy has it.
func (s *caseSteps) step(n *testNode, name, activity string, followers ...*testNode) string {
	s.t.Helper()
	id := n.submit(s.t, name, activity)
	s.length++
	want := s.length
	for _, f := range append([]*testNode{s.host}, followers...) {
		f.oneCase(s.t, fmt.Sprintf("entry %d", want), func(c api.Case) bool { return c.LedgerLength == want })
	}
	return id
}

// awaitInboxItem waits until local actor name's inbox holds an activity of
// type typ and returns the id of the latest one.
func (tn *testNode) awaitInboxItem(t testing.TB, name, typ string) string {
	t.Helper()
	var id string
	waitFor(t, "a "+typ+" in the inbox of "+name, func() bool {
		for _, it := range tn.inboxItems(t, name) {
			if it["type"] == typ {
				id, _ = it["id"].(string)
			}
		}
		return id != ""
	})
	return id
}

// apiGet reads path from tn's API with the admin token and decodes its
// JSON answer, which must be 200.
func apiGet[T any](t testing.TB, tn *testNode, path string) T {
	t.Helper()
	var out T
	status, body := tn.api(t, http.MethodGet, path, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, status, body)
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, body)
	}
	return out
}

// auditRecords returns the node's audit log, up to 1,000 records, as its
// admin reads it.
func (tn *testNode) auditRecords(t testing.TB) []api.AuditRecord {
	t.Helper()
	return apiGet[api.AuditPage](t, tn, "/api/audit?limit=1000").Records
}
