package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/outbox"
)

// childEnv is set when the test binary runs as a node child process.
const childEnv = "VULTRON_NODE_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChildNode())
	}
	code := m.Run()
	closeChromium()
	os.Exit(code)
}

// fastRetry retries a failed delivery within a fraction of a second, so
// tests of outages finish quickly.
func fastRetry() outbox.RetryPolicy {
	p := outbox.DefaultRetryPolicy()
	p.First = 50 * time.Millisecond
	p.Max = 200 * time.Millisecond
	return p
}

// runChildNode serves a node configured by the environment until SIGTERM,
// with fsync on: it is the process the crash tests kill.
func runChildNode() int {
	name, typ, err := actor.ParseActorSpec(os.Getenv("VULTRON_NODE_TEST_ACTOR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	listen := os.Getenv("VULTRON_NODE_TEST_LISTEN")
	// Listen before announcing readiness, so the parent can send at once.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	n, err := New(ctx, Config{
		DataDir:           os.Getenv("VULTRON_NODE_TEST_DIR"),
		Listener:          ln,
		PublicURL:         "http://" + listen,
		Actors:            []ActorConfig{{Name: name, Type: typ}},
		AllowPrivatePeers: true,
		Retry:             fastRetry(),
		Logger:            zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		Notice:            io.Discard,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	if err := n.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// childNode is a node running in a child process.
type childNode struct {
	cmd    *exec.Cmd
	url    string
	dir    string
	listen string
}

// startChild starts the test binary as a node serving actor on listen.
func startChild(t *testing.T, dir, listen, actorSpec string) *childNode {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1",
		"VULTRON_NODE_TEST_DIR="+dir, "VULTRON_NODE_TEST_LISTEN="+listen, "VULTRON_NODE_TEST_ACTOR="+actorSpec)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line) == "ready"
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child node did not start")
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("child node did not start in time")
	}
	c := &childNode{cmd: cmd, url: "http://" + listen, dir: dir, listen: listen}
	t.Cleanup(func() { c.kill() })
	return c
}

// kill ends the child with SIGKILL: no shutdown code runs.
func (c *childNode) kill() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
}

func (c *childNode) token(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, tokenFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// submit posts an activity to the child's outbox; a 201 means it is
// durably stored with its deliveries queued.
func (c *childNode) submit(t *testing.T, actorName, activity string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.url+"/actors/"+actorName+"/outbox", strings.NewReader(activity))
	req.Header.Set("Authorization", "Bearer "+c.token(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
}

// freeAddr returns a loopback address no one listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func reportOffer(to string, i int) string {
	return fmt.Sprintf(`{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"report %d","content":"details of report %d"}}`, to, i, i)
}

// TestDeliveryWaitsForReceiver queues a report while the vendor's node is
// down; once the vendor's node comes up on its address, the report arrives
// exactly once and is acknowledged.
func TestDeliveryWaitsForReceiver(t *testing.T) {
	vendorAddr := freeAddr(t)
	vendorID := "http://" + vendorAddr + "/actors/vendor"
	finder := startNodeWith(t, Config{Retry: fastRetry()}, "finder:Person")
	finder.submit(t, "finder", reportOffer(vendorID, 1))

	// Let a few attempts fail against the closed port.
	waitFor(t, "a failed attempt", func() bool {
		ds, _, _ := finder.db.PendingDeliveries(context.Background(), 0, 10)
		return len(ds) == 1 && ds[0].Attempts >= 2
	})

	ln, err := net.Listen("tcp", vendorAddr)
	if err != nil {
		t.Fatalf("re-listen on %s: %v", vendorAddr, err)
	}
	vendor := startNodeIn(t, t.TempDir(), ln, "vendor:Organization")
	waitFor(t, "the report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") == 1 })
	waitFor(t, "the acknowledgement at the finder", func() bool { return len(finder.inboxItems(t, "finder")) == 1 })
	waitFor(t, "an empty queue at the finder", func() bool {
		n, _ := finder.db.PendingCount(context.Background())
		return n == 0
	})
	if got := countType(vendor.inboxItems(t, "vendor"), "Offer"); got != 1 {
		t.Errorf("vendor received %d reports, want exactly 1", got)
	}
	if dead, _, _ := finder.db.DeadLetters(context.Background(), 0, 10); len(dead) != 0 {
		t.Errorf("dead letters: %v", dead)
	}
}

// TestSigkillResumesDeliveries queues reports in a node process, kills it
// with SIGKILL, restarts it, and checks that every report the node had
// accepted reaches the vendor exactly once: with the vendor up (the kill
// lands while deliveries are under way) and with the vendor down until
// after the restart (the kill lands on a full queue).
func TestSigkillResumesDeliveries(t *testing.T) {
	for _, vendorUp := range []bool{true, false} {
		t.Run(fmt.Sprintf("vendor up %v", vendorUp), func(t *testing.T) {
			vendorAddr := freeAddr(t)
			vendorID := "http://" + vendorAddr + "/actors/vendor"
			startVendor := func() *testNode {
				ln, err := net.Listen("tcp", vendorAddr)
				if err != nil {
					t.Fatalf("listen on %s: %v", vendorAddr, err)
				}
				return startNodeIn(t, t.TempDir(), ln, "vendor:Organization")
			}
			var vendor *testNode
			if vendorUp {
				vendor = startVendor()
			}
			dir := t.TempDir()
			listen := freeAddr(t)
			finder := startChild(t, dir, listen, "finder:Person")

			const reports = 25
			for i := range reports {
				finder.submit(t, "finder", reportOffer(vendorID, i))
			}
			finder.kill()
			if vendor == nil {
				vendor = startVendor()
			} else {
				t.Logf("%d of %d reports were delivered before SIGKILL", countType(vendor.inboxItems(t, "vendor"), "Offer"), reports)
			}

			restarted := startChild(t, dir, listen, "finder:Person")
			waitFor(t, "every report at the vendor", func() bool { return countType(vendor.inboxItems(t, "vendor"), "Offer") >= reports })
			waitFor(t, "the finder's queue to drain", func() bool {
				req, _ := http.NewRequest(http.MethodGet, restarted.url+"/api/deliveries", nil)
				req.Header.Set("Authorization", "Bearer "+restarted.token(t))
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return false
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return strings.Contains(string(b), `"pending":[]`)
			})
			// The vendor's inbox also holds the finder's acknowledgements
			// (CK) of the vendor's awareness: count the reports.
			var items []map[string]any
			seen := map[any]int{}
			for _, it := range vendor.inboxItems(t, "vendor") {
				if it["type"] == "Offer" {
					items = append(items, it)
					seen[it["id"]]++
				}
			}
			if len(items) != reports || len(seen) != reports {
				t.Errorf("vendor holds %d inbox entries with %d distinct ids, want %d of each", len(items), len(seen), reports)
			}
		})
	}
}

// TestShutdownWithinItsTimeout stops a node while a request is in flight
// (a body announced and never sent) and a delivery is under way to a
// receiver that never answers: the whole graceful shutdown takes
// ShutdownTimeout, as documented (10 s by default), not one timeout for
// the requests and another for the deliveries after them; and the
// delivery it gave up on has ended when Serve returns, rather than run on
// (up to its attempt timeout of a minute) against a store already closed.
func TestShutdownWithinItsTimeout(t *testing.T) {
	receiverAddr := freeAddr(t)
	const timeout = time.Second
	logs := &lockedBuffer{}
	log := zerolog.New(zerolog.MultiLevelWriter(zerolog.NewTestWriter(t), logs)).Level(zerolog.InfoLevel)
	finder := startNodeLogged(t, t.TempDir(), nil, Config{Retry: fastRetry(), ShutdownTimeout: timeout, SecondFactorOptional: true}, log, "finder:Person")
	finder.submit(t, "finder", reportOffer("http://"+receiverAddr+"/actors/vendor", 1))

	// The receiver: it takes connections and answers nothing.
	hang, err := net.Listen("tcp", receiverAddr)
	if err != nil {
		t.Fatalf("listen on %s: %v", receiverAddr, err)
	}
	defer hang.Close()
	accepted := make(chan struct{}, 16)
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			accepted <- struct{}{}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt reached the receiver")
	}

	host := strings.TrimPrefix(finder.url, "http://")
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /actors/finder/inbox HTTP/1.1\r\nHost: %s\r\nContent-Type: application/activity+json\r\nContent-Length: 100\r\n\r\n{", host)
	waitFor(t, "the request to be in its handler", func() bool { return finder.requests.running() == 1 })

	start := time.Now()
	finder.stop()
	if took := time.Since(start); took > timeout+timeout/2 {
		t.Errorf("the shutdown took %s, want about the %s of ShutdownTimeout", took.Round(time.Millisecond), timeout)
	}
	if !strings.Contains(logs.String(), "delivery abandoned at shutdown") {
		t.Errorf("Serve returned before the delivery it gave up on ended; the log:\n%s", logs.String())
	}
}

// TestStartUnderAnotherPublicURLWarns starts a node's data directory
// under another public URL than the one it ran with, as a restore on a
// new machine may: the node starts (a move is the operator's choice), and
// says in its log, per actor, the address the store knew it by and that
// its peers and cases do not follow.
func TestStartUnderAnotherPublicURLWarns(t *testing.T) {
	dir := t.TempDir()
	open := func(publicURL string, logs io.Writer) {
		t.Helper()
		n, err := New(context.Background(), Config{DataDir: dir, PublicURL: publicURL, NoSync: true, Argon2: testArgon2,
			Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}}, Logger: zerolog.New(logs), Notice: io.Discard})
		if err != nil {
			t.Fatalf("New at %s: %v", publicURL, err)
		}
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
	}
	first := &lockedBuffer{}
	open("https://cvd.example.org", first)
	open("https://cvd.example.org", first)
	if strings.Contains(first.String(), "another public URL") {
		t.Errorf("a start under the same URL warned:\n%s", first)
	}
	moved := &lockedBuffer{}
	open("https://new.example.net", moved)
	if !strings.Contains(moved.String(), `"level":"warn","actor":"https://new.example.net/actors/vendor","was":"https://cvd.example.org/actors/vendor","message":"the store knew this actor under another public URL`) {
		t.Errorf("no warning for a start under another public URL:\n%s", moved)
	}
}
