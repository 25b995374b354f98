package federation_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/internal/pgtest"
)

// TestMain gives the package's tests a throw-away PostgreSQL server
// (internal/pgtest), started once for the test binary.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m))
}

// sharedProc is one `vultron serve` process of a node whose store is a
// PostgreSQL database shared with other processes.
type sharedProc struct {
	name string
	dir  string
	addr string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// launchShared starts a process of the node at publicURL on the store
// pgURL, with the node's data key, and waits until it serves.
func launchShared(t *testing.T, bin, name, pgURL, publicURL, dataKey string) *sharedProc {
	t.Helper()
	p := &sharedProc{name: name, dir: filepath.Join(t.TempDir(), name), addr: freeAddr(t)}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p.log = filepath.Join(p.dir, "node.log")
	logFile, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "serve",
		"--store", pgURL,
		"--data", p.dir,
		"--listen", p.addr,
		"--public-url", publicURL,
		"--actor", "vendor:Organization",
		"--allow-private-peers",
		"--retry-first", "100ms",
		"--retry-max", "1s",
		"--log-format", "json")
	p.cmd.Env = append(os.Environ(), "VULTRON_DATA_KEY="+dataKey)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); logFile.Close(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(15 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("last lines of the log of process %s:\n%s", name, tailOf(p.log, logTailLines))
		}
	})
	deadline := time.Now().Add(clusterWait)
	for {
		select {
		case <-p.done:
			t.Fatalf("process %s exited before it served:\n%s", name, tailOf(p.log, logTailLines))
		default:
		}
		resp, err := http.Get("http://" + p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %s did not serve within %s: %v", name, clusterWait, err)
		}
		time.Sleep(clusterPoll)
	}
}

// failoverProxy stands for the reverse proxy in front of a node's
// processes: it sends each request to the next process in turn and, when a
// process does not accept the connection, to the next one. It keeps the
// Host header, which the processes check signatures against. A request a
// process accepted and then dropped is answered 502, as a proxy does for a
// request that is not safe to repeat.
type failoverProxy struct {
	backends []string
	next     atomic.Uint64
	client   *http.Client
}

func (p *failoverProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	start := p.next.Add(1)
	for i := range len(p.backends) {
		b := p.backends[(int(start)+i)%len(p.backends)]
		req, err := http.NewRequest(r.Method, "http://"+b+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		req.Header = r.Header.Clone()
		req.Host = r.Host
		resp, err := p.client.Do(req)
		var op *net.OpError
		if err != nil && errors.As(err, &op) && op.Op == "dial" {
			continue // that process is down: try the next
		}
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	w.WriteHeader(http.StatusBadGateway)
}

// TestSharedStoreNodeSurvivesSigkillOfAProcess runs a node as two `vultron
// serve` processes on one PostgreSQL database behind a proxy, beside a
// node on bbolt and a peer the test signs for. While a peer streams signed
// Offers into the node's inbox, the bbolt node sends it Offers, and
// clients submit Offers to its outbox, one of the two processes is
// SIGKILLed and not restarted. At the end every Offer the node
// acknowledged with 202 is in its inbox exactly once and was acknowledged
// (RK, a Read) exactly once, everything the bbolt node sent arrived, and
// every activity the node's outbox acknowledged reached the peer: the
// process left alone carried on, took the lead, and sent what the killed
// one had leased as soon as the killed one's session was gone: the leases
// are the default two minutes, and the test waits one.
func TestSharedStoreNodeSurvivesSigkillOfAProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three node processes and a PostgreSQL server")
	}
	pgURL := pgtest.Database(t)
	const inbound, outbound, fromBolt = 150, 100, 20
	bin := buildVultron(t)
	peer := newCrashPeer(t)
	bolt := newCluster(t, bin, "coord:Organization")

	rawKey := make([]byte, 32)
	if _, err := rand.Read(rawKey); err != nil {
		t.Fatal(err)
	}
	dataKey := base64.StdEncoding.EncodeToString(rawKey)
	proxyLn := listenLoopback(t)
	publicURL := "http://" + proxyLn.Addr().String()
	a := launchShared(t, bin, "a", pgURL, publicURL, dataKey)
	b := launchShared(t, bin, "b", pgURL, publicURL, dataKey)
	proxy := &failoverProxy{backends: []string{a.addr, b.addr}, client: &http.Client{Timeout: 10 * time.Second}}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(proxyLn) }()
	t.Cleanup(func() { _ = srv.Close() })

	// The processes are one node: the same API token, the same actor key.
	tokA, errA := os.ReadFile(filepath.Join(a.dir, "api-token"))
	tokB, errB := os.ReadFile(filepath.Join(b.dir, "api-token"))
	if errA != nil || errB != nil || !bytes.Equal(tokA, tokB) {
		t.Fatalf("the processes do not share the API token (%v, %v)", errA, errB)
	}
	token := strings.TrimSpace(string(tokA))
	keyOf := func(p *sharedProc) string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/actors/vendor", nil)
		req.Host = proxyLn.Addr().String()
		req.Header.Set("Accept", actor.ContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc struct {
			PublicKey struct {
				PEM string `json:"publicKeyPem"`
			} `json:"publicKey"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || doc.PublicKey.PEM == "" {
			t.Fatalf("actor document of process %s: %v", p.name, err)
		}
		return doc.PublicKey.PEM
	}
	if keyOf(a) != keyOf(b) {
		t.Fatal("the processes publish different keys for the same actor")
	}
	vendorID := publicURL + "/actors/vendor"

	// A dashboard session opened on one process is valid on the other: a
	// viewer added on process b sets a password with the enrollment link
	// on process a, which opens a session.
	direct := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	session := enrollOn(t, direct, "http://"+b.addr, "http://"+a.addr, proxyLn.Addr().String(), token)
	page, _ := http.NewRequest(http.MethodGet, "http://"+b.addr+"/", nil)
	page.Host = proxyLn.Addr().String()
	page.AddCookie(session)
	resp, err := direct.Do(page)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the dashboard on process b with a session of process a: %d, want 200", resp.StatusCode)
	}

	// The bbolt node reports to the shared node: its outbox delivers
	// through the proxy while the streams below run, and retries what
	// fails.
	var boltSent []string
	for i := range fromBolt {
		act := bolt.submit("coord", activity{"type": "Offer", "to": []string{vendorID},
			"object": map[string]any{"type": "VulnerabilityReport", "name": fmt.Sprintf("From the bbolt node %d", i), "content": "details"}})
		boltSent = append(boltSent, refID(act["id"]))
	}

	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	var inAcked, outAcked sync.Map
	var wg sync.WaitGroup
	// The streams go through the proxy.
	wg.Go(func() {
		peer.postOffers(t, client, vendorID, "shared-offer", inbound, deadline, &inAcked, 20*time.Millisecond)
	})
	wg.Go(func() {
		peer.submitOffers(t, client, vendorID, token, outbound, deadline, &outAcked, 20*time.Millisecond)
	})

	count := func(m *sync.Map) int {
		n := 0
		m.Range(func(_, _ any) bool { n++; return true })
		return n
	}
	// The kill falls in the middle of the inbound stream.
	for count(&inAcked) < inbound/3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	t.Logf("SIGKILL of process a: %d inbound and %d outbound activities acknowledged so far", count(&inAcked), count(&outAcked))
	wg.Wait()

	keys := func(m *sync.Map) []string {
		var out []string
		m.Range(func(k, _ any) bool { out = append(out, k.(string)); return true })
		return out
	}
	in, out := keys(&inAcked), keys(&outAcked)
	if len(in) != inbound || len(out) != outbound || len(boltSent) != fromBolt {
		t.Fatalf("within the time limit %d of %d inbound, %d of %d outbound and %d of %d bbolt activities were acknowledged",
			len(in), inbound, len(out), outbound, len(boltSent), fromBolt)
	}

	// What the node's inbox holds, read through the proxy (only b is left).
	inboxOf := func() map[string]int {
		return inboxCounts(t, func(path string) (int, []byte) {
			req, _ := http.NewRequest(http.MethodGet, publicURL+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, body
		})
	}
	waitUntil := time.Now().Add(60 * time.Second)
	for {
		inbox := inboxOf()
		var problems []string
		for _, id := range in {
			if inbox[id] != 1 {
				problems = append(problems, fmt.Sprintf("acknowledged Offer %s is in the inbox %d times", id, inbox[id]))
			}
		}
		for _, id := range boltSent {
			if inbox[id] != 1 {
				problems = append(problems, fmt.Sprintf("the bbolt node's Offer %s is in the inbox %d times", id, inbox[id]))
			}
		}
		peer.mu.Lock()
		for _, id := range out {
			if peer.delivered[id] == 0 {
				problems = append(problems, fmt.Sprintf("outbound %s never reached the peer", id))
			}
		}
		for _, id := range in {
			if peer.readOf[id] == "" {
				problems = append(problems, fmt.Sprintf("Offer %s was never acknowledged", id))
			}
		}
		dupReads := slicesClone(peer.readDup)
		dups := 0
		for _, n := range peer.delivered {
			dups += n - 1
		}
		peer.mu.Unlock()
		if len(dupReads) > 0 {
			t.Fatalf("offers acknowledged by two different Reads (applied twice): %v", dupReads)
		}
		if len(problems) == 0 {
			t.Logf("with one of two processes killed: %d inbound, %d outbound and %d bbolt activities; the peer received %d duplicate deliveries (at-least-once delivery)",
				len(in), len(out), len(boltSent), dups)
			break
		}
		if time.Now().After(waitUntil) {
			t.Fatalf("%d problems after the kill, first: %s", len(problems), problems[0])
		}
		time.Sleep(200 * time.Millisecond)
	}
	// It takes the lead once the killed process's session is gone, and
	// leads after the wait that keeps two leaders from overlapping.
	for leadBy := time.Now().Add(30 * time.Second); !strings.Contains(readFile(t, b.log), "this process leads"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(leadBy) {
			t.Fatal("the process left alone never took the lead")
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestSharedStoreKeyRotationReachesEveryProcess rotates the actor key of a
// node run as two processes on one PostgreSQL database through one of
// them, and checks that the other publishes the new key, under the new key
// id, with the old one still listed for its overlap.
func TestSharedStoreKeyRotationReachesEveryProcess(t *testing.T) {
	pgURL := pgtest.Database(t)
	bin := buildVultron(t)
	rawKey := make([]byte, 32)
	if _, err := rand.Read(rawKey); err != nil {
		t.Fatal(err)
	}
	dataKey := base64.StdEncoding.EncodeToString(rawKey)
	publicHost := freeAddr(t) // the proxy's address; no proxy is needed here
	publicURL := "http://" + publicHost
	a := launchShared(t, bin, "a", pgURL, publicURL, dataKey)
	b := launchShared(t, bin, "b", pgURL, publicURL, dataKey)
	token, err := os.ReadFile(filepath.Join(a.dir, "api-token"))
	if err != nil {
		t.Fatal(err)
	}
	// A node on PostgreSQL has no store file to send: GET /api/backup
	// says what backs it up.
	breq, _ := http.NewRequest(http.MethodGet, "http://"+a.addr+"/api/backup", nil)
	breq.Host = publicHost
	breq.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	bresp, err := http.DefaultClient.Do(breq)
	if err != nil {
		t.Fatal(err)
	}
	bbody, _ := io.ReadAll(bresp.Body)
	bresp.Body.Close()
	if bresp.StatusCode != http.StatusConflict || !strings.Contains(string(bbody), `"error":"this node's store is a PostgreSQL database, which is backed up with PostgreSQL's tools (pg_dump`) {
		t.Errorf("GET /api/backup on PostgreSQL: %d %s, want 409 saying PostgreSQL's tools back it up", bresp.StatusCode, bbody)
	}
	type key struct {
		ID  string `json:"id"`
		PEM string `json:"publicKeyPem"`
	}
	// doc is an actor document: its current key, and the whole text. The
	// document lists the current key alone, or first in a list while
	// retired keys are published.
	type doc struct {
		PublicKey key
		Raw       string
	}
	actorOf := func(p *sharedProc) doc {
		req, _ := http.NewRequest(http.MethodGet, "http://"+p.addr+"/actors/vendor", nil)
		req.Host = publicHost
		req.Header.Set("Accept", actor.ContentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var raw struct {
			PublicKey json.RawMessage `json:"publicKey"`
		}
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatalf("actor document of process %s: %v", p.name, err)
		}
		d := doc{Raw: string(body)}
		var keys []key
		if json.Unmarshal(raw.PublicKey, &keys) == nil && len(keys) > 0 {
			d.PublicKey = keys[0]
		} else if err := json.Unmarshal(raw.PublicKey, &d.PublicKey); err != nil {
			t.Fatalf("publicKey of process %s: %v", p.name, err)
		}
		return d
	}
	before := actorOf(b)
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.addr+"/api/actors/vendor/rotate-key", nil)
	req.Host = publicHost
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("rotate the key through process a: %d %s", resp.StatusCode, body)
	}
	rotated := actorOf(a)
	if rotated.PublicKey.PEM == before.PublicKey.PEM || rotated.PublicKey.ID == before.PublicKey.ID {
		t.Fatalf("process a still publishes the old key %s", rotated.PublicKey.ID)
	}
	deadline := time.Now().Add(clusterWait)
	for {
		got := actorOf(b)
		if got.PublicKey.PEM == rotated.PublicKey.PEM && got.PublicKey.ID == rotated.PublicKey.ID {
			if !strings.Contains(got.Raw, before.PublicKey.ID) {
				t.Errorf("process b does not list the old key %s for its overlap", before.PublicKey.ID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process b still publishes key %s, not the rotated %s", got.PublicKey.ID, rotated.PublicKey.ID)
		}
		time.Sleep(clusterPoll)
	}
}

// nginxBin returns the nginx binary, or skips the test (fails it under
// make test, which installs nginx: make proxy-deps).
func nginxBin(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if os.Getenv("VULTRON_TEST_NGINX_REQUIRED") != "" {
		t.Fatal("nginx is required (VULTRON_TEST_NGINX_REQUIRED is set) but not installed: make proxy-deps")
	}
	t.Skip("nginx is not installed (make proxy-deps)")
	return ""
}

// TestNginxConfigInFrontOfTwoProcesses runs deploy/nginx.conf, the proxy
// of deploy/compose-postgres.yaml, with nginx in front of two processes of
// a node on one PostgreSQL database, as the compose file does (with
// loopback addresses for the service names): signed activities reach the
// node through it (it passes the Host the signatures cover and the bodies
// whole), the processes share the work, and when one process is killed
// every request still succeeds.
func TestNginxConfigInFrontOfTwoProcesses(t *testing.T) {
	nginx := nginxBin(t)
	pgURL := pgtest.Database(t)
	bin := buildVultron(t)
	peer := newCrashPeer(t)
	rawKey := make([]byte, 32)
	if _, err := rand.Read(rawKey); err != nil {
		t.Fatal(err)
	}
	dataKey := base64.StdEncoding.EncodeToString(rawKey)
	proxyAddr := freeAddr(t)
	publicURL := "http://" + proxyAddr
	a := launchShared(t, bin, "a", pgURL, publicURL, dataKey)
	b := launchShared(t, bin, "b", pgURL, publicURL, dataKey)

	conf, err := os.ReadFile("../deploy/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	text := string(conf)
	for old, repl := range map[string]string{"vendor-a:7001": a.addr, "vendor-b:7001": b.addr, "listen 8080;": "listen " + proxyAddr + ";",
		"access_log /dev/stdout;": "access_log off;"} {
		if !strings.Contains(text, old) {
			t.Fatalf("deploy/nginx.conf no longer has %q", old)
		}
		text = strings.ReplaceAll(text, old, repl)
	}
	prefix := t.TempDir()
	if err := os.Chmod(prefix, 0o755); err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(prefix, "error.log")
	cmd := exec.Command(nginx, "-p", prefix, "-c", confPath, "-e", logPath,
		"-g", "daemon off; pid "+filepath.Join(prefix, "nginx.pid")+";")
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("nginx error log:\n%s", log)
		}
	})

	vendorID := publicURL + "/actors/vendor"
	client := &http.Client{Timeout: 5 * time.Second}
	send := func(i int) int {
		req, _, err := peer.offerRequest(vendorID, fmt.Sprintf("nginx-offer-%d", i), "details")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// nginx may take a moment to listen.
	deadline := time.Now().Add(clusterWait)
	for send(0) != http.StatusAccepted {
		if time.Now().After(deadline) {
			t.Fatal("no signed Offer was accepted through nginx")
		}
		time.Sleep(clusterPoll)
	}
	for i := 1; i < 20; i++ {
		if code := send(i); code != http.StatusAccepted {
			t.Fatalf("Offer %d through nginx: %d, want 202", i, code)
		}
	}
	accepted := func(p *sharedProc) int {
		return strings.Count(readFile(t, p.log), `"message":"inbox accepted"`)
	}
	if accepted(a) == 0 || accepted(b) == 0 {
		t.Errorf("nginx sent every request to one process: a accepted %d, b %d", accepted(a), accepted(b))
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	for i := 20; i < 40; i++ {
		if code := send(i); code != http.StatusAccepted {
			t.Fatalf("Offer %d through nginx after process a was killed: %d, want 202", i, code)
		}
	}

	// What nginx answers by itself is a JSON error, as every refusal of
	// the node is: a body over its limit, and no process to take a request.
	proxyError := func(req *http.Request, wantStatus int) http.Header {
		t.Helper()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Error string `json:"error"`
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != wantStatus || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(body, &got) != nil || got.Error == "" {
			t.Errorf("%s %s through nginx: %d %s %q, want %d with a JSON error", req.Method, req.URL.Path,
				resp.StatusCode, resp.Header.Get("Content-Type"), body, wantStatus)
		}
		return resp.Header
	}
	req, _ := http.NewRequest(http.MethodPost, vendorID+"/inbox", bytes.NewReader(bytes.Repeat([]byte(" "), 2<<20)))
	req.Header.Set("Content-Type", actor.ContentType)
	proxyError(req, http.StatusRequestEntityTooLarge)
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.done
	req, _ = http.NewRequest(http.MethodGet, vendorID, nil)
	req.Header.Set("Accept", actor.ContentType)
	if h := proxyError(req, http.StatusServiceUnavailable); h.Get("Retry-After") == "" {
		t.Error("nginx's answer with no process left says no Retry-After")
	}
}

// enrollOn adds a viewer through the API of the process at addUser and
// sets its password with the enrollment link on the process at enroll
// (both reached with Host host), returning the session cookie it opens.
func enrollOn(t *testing.T, client *http.Client, addUser, enroll, host, token string) *http.Cookie {
	t.Helper()
	do := func(req *http.Request) (*http.Response, []byte) {
		t.Helper()
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, body
	}
	req, _ := http.NewRequest(http.MethodPost, addUser+"/api/users", strings.NewReader(`{"name":"vic","role":"viewer"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, body := do(req)
	var added struct {
		Enroll string `json:"enroll"`
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK || json.Unmarshal(body, &added) != nil {
		t.Fatalf("add a viewer: %d %s", resp.StatusCode, body)
	}
	code := added.Enroll[strings.Index(added.Enroll, "code=")+len("code="):]
	req, _ = http.NewRequest(http.MethodGet, enroll+"/enroll?code="+code, nil)
	resp, body = do(req)
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(body)
	if resp.StatusCode != http.StatusOK || csrf == nil {
		t.Fatalf("the enrollment page: %d\n%s", resp.StatusCode, body)
	}
	form := url.Values{"csrf": {string(csrf[1])}, "code": {code}, "password": {"vic's long password"}, "password2": {"vic's long password"}}
	req, _ = http.NewRequest(http.MethodPost, enroll+"/enroll", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range resp.Cookies() {
		req.AddCookie(c)
	}
	resp, body = do(req)
	for _, c := range resp.Cookies() {
		if c.Name == "vultron_session" && c.Value != "" {
			if resp.StatusCode != http.StatusSeeOther {
				break
			}
			return c
		}
	}
	t.Fatalf("enroll on process a: %d\n%s", resp.StatusCode, body)
	return nil
}
