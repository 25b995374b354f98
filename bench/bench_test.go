package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/internal/pgtest"
	"github.com/openvultron/vultron/ledger"
	"github.com/openvultron/vultron/node"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// TestMain runs the tests and benchmarks with the garbage collector set as
// in a serving node (node.DefaultGCPercent) unless GOGC says otherwise, so
// that the limits are measured as the node runs.
func TestMain(m *testing.M) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(node.DefaultGCPercent)
	}
	os.Exit(m.Run())
}

// The smoke tests run every harness at a tiny size, so that `go test ./...`
// keeps them working without measuring anything.

func TestInboxLimitSmoke(t *testing.T) {
	r, err := InboxLimit(t.TempDir(), 20, 4)
	if err != nil {
		t.Fatal(err)
	}
	if r.Activities != 20 || r.PerSecond <= 0 {
		t.Fatalf("InboxLimit: %+v", r)
	}
}

func TestAckLimitSmoke(t *testing.T) {
	for _, sig := range []string{AckEd25519, AckRSA} {
		r, err := AckLimit(t.TempDir(), 20, 4, sig)
		if err != nil {
			t.Fatal(err)
		}
		if r.Activities != 20 || r.PerSecond <= 0 {
			t.Fatalf("AckLimit %s: %+v", sig, r)
		}
	}
	if _, err := AckLimit(t.TempDir(), 1, 1, "hmac"); err == nil {
		t.Fatal("AckLimit took an unknown signature")
	}
}

func TestFanoutSmoke(t *testing.T) {
	f, err := NewFanout(t.TempDir(), 4)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := f.Run(10, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Recipients != 10 || r.Refused != 0 || r.PerSecond <= 0 {
		t.Fatalf("Fanout: %+v", r)
	}
}

func TestDrainSmoke(t *testing.T) {
	r, err := Drain(t.TempDir(), 40, 20, 2, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Blocked != 40 || r.Healthy != 20 || r.Polls == 0 || r.Seconds <= 0 || r.DeadAttempts != 0 {
		t.Fatalf("Drain: %+v", r)
	}
}

func TestBigCaseSmoke(t *testing.T) {
	bc, err := BuildCase("http://127.0.0.1:7001", "smoke", 5, 30)
	if err != nil {
		t.Fatal(err)
	}
	if err := bc.Verify(); err != nil {
		t.Fatal(err)
	}
	c, r, err := bc.Apply()
	if err != nil {
		t.Fatal(err)
	}
	const notes = 30 - 1 - 2*3
	if c.LedgerLen != 30 || len(c.Participants) != 5 || c.NoteCount != notes || len(c.PendingNotes()) != notes || c.Diverged != "" || r.Next != 30 {
		t.Fatalf("applied case: length %d, %d participants, %d notes (%d pending), diverged %q",
			c.LedgerLen, len(c.Participants), c.NoteCount, len(c.PendingNotes()), c.Diverged)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "v.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := bc.Store(context.Background(), db, c, r); err != nil {
		t.Fatal(err)
	}
	var stored []cases.Note
	err = db.View(context.Background(), func(tx *store.ReadTx) error {
		var err error
		stored, err = cases.Notes(tx, bc.CaseID, 0, 0)
		return err
	})
	if err != nil || len(stored) != notes || len(c.PendingNotes()) != 0 {
		t.Fatalf("stored case: %d notes (%v), %d still pending", len(stored), err, len(c.PendingNotes()))
	}
	// Store left c without pending notes: measure on a fresh fold.
	if c, r, err = bc.Apply(); err != nil {
		t.Fatal(err)
	}
	if _, err := recordCost(t.TempDir(), bc, c, r); err != nil {
		t.Fatal(err)
	}
	if err := StoreManyCases(context.Background(), db, "http://127.0.0.1:7001", 3, 3, 4); err != nil {
		t.Fatal(err)
	}
}

// The benchmarks below run each measurement once per iteration at a fixed
// size; bench/run runs them with -benchtime 1x -count N and takes medians.
// Their figures are reported as custom metrics.

// BenchmarkInboxLimit measures the unavoidable work per inbox activity
// (see InboxLimit) for 4,000 activities at 1, 16 and 64 concurrent workers.
func BenchmarkInboxLimit(b *testing.B) {
	for _, w := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			n := 4000
			if w == 1 {
				n = 1500
			}
			var r LimitResult
			for b.Loop() {
				var err error
				if r, err = InboxLimit(b.TempDir(), n, w); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.PerSecond, "activities/s")
		})
	}
}

// BenchmarkAckLimit measures the work per activity that is accepted and
// acknowledged (see AckLimit), with the acknowledgement signed with
// Ed25519 (to another Vultron node) and with RSA-2048 (to any other peer),
// for 4,000 activities at 1, 16 and 64 concurrent workers.
func BenchmarkAckLimit(b *testing.B) {
	for _, sig := range []string{AckEd25519, AckRSA} {
		for _, w := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("sig=%s/workers=%d", sig, w), func(b *testing.B) {
				n := 4000
				if w == 1 {
					n = 1500
				}
				var r LimitResult
				for b.Loop() {
					var err error
					if r, err = AckLimit(b.TempDir(), n, w, sig); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(r.PerSecond, "activities/s")
			})
		}
	}
}

// BenchmarkRSASign measures RSA-2048 signatures per second on every core
// for 2 s.
func BenchmarkRSASign(b *testing.B) {
	var r float64
	for b.Loop() {
		var err error
		if r, err = SignRate(2*time.Second, runtime.GOMAXPROCS(0)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r, "signs/s")
}

// BenchmarkFanout delivers one case event to 200, 1,000 and 2,000
// participant inboxes on a verifying sink with the node's default 8
// delivery workers, signed with Ed25519 (the participants say they verify
// it, as Vultron nodes do) and with RSA. sign-share is the time RSA
// signing alone would take at the signing rate measured in the same
// process, over the fan-out time.
func BenchmarkFanout(b *testing.B) {
	signRate, err := SignRate(2*time.Second, runtime.GOMAXPROCS(0))
	if err != nil {
		b.Fatal(err)
	}
	for _, sig := range []string{AckEd25519, AckRSA} {
		for _, n := range []int{200, 1000, 2000} {
			b.Run(fmt.Sprintf("sig=%s/N=%d", sig, n), func(b *testing.B) { fanoutBench(b, sig, n, signRate) })
		}
	}
}

// BenchmarkFanoutPostgres is BenchmarkFanout's Ed25519 fan-out on
// PostgreSQL: a server of its own from the machine's binaries with its
// default durability (fsync, synchronous commit; internal/pgtest), a fresh
// database per size. Two sizes show whether a delivery costs more as the
// event has more recipients (the queue's reads and writes per delivery
// must not grow with it).
func BenchmarkFanoutPostgres(b *testing.B) {
	srv, err := pgtest.StartDurable(context.Background())
	if err != nil {
		// Without the server's binaries there is nothing to measure;
		// make pg-deps installs them.
		if os.Getenv(pgtest.EnvRequired) != "" {
			b.Fatal(err)
		}
		b.Skip(err)
	}
	defer srv.Stop()
	for _, n := range []int{200, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			runFanout(b, FanoutConfig{Store: srv.NewDatabase(b), Workers: 8, Ed25519: true}, n)
		})
	}
}

// runFanout measures fan-outs of n deliveries with cfg, after one warm
// run (it opens the connections), and reports the last one's figures.
func runFanout(b *testing.B, cfg FanoutConfig, n int) FanoutResult {
	b.Helper()
	f, err := NewFanoutWith(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Run(n, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	var r FanoutResult
	for b.Loop() {
		if r, err = f.Run(n, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(r.Seconds, "s-all-delivered")
	b.ReportMetric(r.PerSecond, "deliveries/s")
	return r
}

// fanoutBench is one of BenchmarkFanout's: the deliveries signed with
// Ed25519 (to participants on Vultron nodes) or with RSA.
func fanoutBench(b *testing.B, sig string, n int, signRate float64) {
	r := runFanout(b, FanoutConfig{Dir: b.TempDir(), Workers: 8, Ed25519: sig == AckEd25519}, n)
	if sig == AckRSA {
		b.ReportMetric(float64(n)/signRate/r.Seconds, "sign-share")
		b.ReportMetric(signRate, "signs/s")
	}
}

// BenchmarkDrain drains 1,000 deliveries to healthy peers (ten lanes of
// 100 at a verifying sink) with no backlog and behind 10,000 deliveries to
// a dead peer (see Drain), with the node's default 8 delivery workers.
func BenchmarkDrain(b *testing.B) {
	for _, blocked := range []int{0, 10000} {
		b.Run(fmt.Sprintf("blocked=%d", blocked), func(b *testing.B) {
			var r DrainResult
			for b.Loop() {
				var err error
				if r, err = Drain(b.TempDir(), blocked, 1000, 10, 5*time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			if r.DeadAttempts != 0 {
				b.Fatalf("the dead peer received %d requests during the drain; none of its deliveries was due", r.DeadAttempts)
			}
			b.ReportMetric(r.Seconds, "s-drain")
			b.ReportMetric(float64(r.Healthy)/r.Seconds, "deliveries/s")
			b.ReportMetric(r.PollMs, "ms/poll")
			b.ReportMetric(r.PollMaxMs, "ms-poll-max")
			b.ReportMetric(float64(r.Polls), "polls")
		})
	}
}

// BenchmarkBigCase builds a case with 2,000 participants and 5,000, 10,000
// and 30,000 ledger entries, then measures applying the whole ledger to an
// empty replica and verifying its hash chain. s-record is what a replica
// pays for its case record when one more entry (a note) is announced:
// loading the stored record, adding the note and saving the record with
// the note (see recordCost).
func BenchmarkBigCase(b *testing.B) {
	for _, e := range []int{5000, 10000, 30000} {
		b.Run(fmt.Sprintf("entries=%d", e), func(b *testing.B) {
			bc, err := BuildCase("http://127.0.0.1:7001", "big", 2000, e)
			if err != nil {
				b.Fatal(err)
			}
			var apply, verify, record time.Duration
			for b.Loop() {
				t0 := time.Now()
				c, r, err := bc.Apply()
				if err != nil {
					b.Fatal(err)
				}
				apply = time.Since(t0)
				if record, err = recordCost(b.TempDir(), bc, c, r); err != nil {
					b.Fatal(err)
				}
				t0 = time.Now()
				if err := bc.Verify(); err != nil {
					b.Fatal(err)
				}
				verify = time.Since(t0)
			}
			b.ReportMetric(apply.Seconds(), "s-apply")
			b.ReportMetric(verify.Seconds(), "s-verify")
			b.ReportMetric(record.Seconds(), "s-record")
		})
	}
}

// recordCost stores the case (c folded from bc, with replica state r) in a
// new store in dir, then returns the fastest of three rounds of the work
// on the case record a replica does in the transaction of one more
// announced note: decoding the record (cases.Load), adding the note, and
// encoding the record and writing the note (cases.Save). The ledger entry
// and the commit are not counted.
func recordCost(dir string, bc *BigCase, c *cases.Case, r *ledger.Replica) (time.Duration, error) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(dir, "record.db"), store.Options{NoSync: true})
	if err != nil {
		return 0, fmt.Errorf("record cost: %w", err)
	}
	defer db.Close()
	if err := bc.Store(ctx, db, c, r); err != nil {
		return 0, fmt.Errorf("record cost: %w", err)
	}
	return RecordCost(ctx, db, bc, c.NoteCount)
}

// TestOfferBodies checks the two shapes the load generator sends: the
// Vultron report, which the node classifies as a report submission (RS),
// and the same Offer with its object an ActivityStreams Note under the
// ActivityStreams context, for inboxes whose vocabulary has no Vultron
// types. Both carry the same ids, actor, recipient and text.
func TestOfferBodies(t *testing.T) {
	const actorID, recipient, tag = "http://127.0.0.1:1/users/s0", "http://127.0.0.1:2/users/receiver", "run-7"
	type offer struct {
		Context any    `json:"@context"`
		ID      string `json:"id"`
		Type    string `json:"type"`
		Actor   string `json:"actor"`
		To      []string
		Object  struct {
			ID, Type, Name, Content, AttributedTo string
		}
	}
	decode := func(b []byte) offer {
		t.Helper()
		var o offer
		if err := json.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return o
	}
	report, note := decode(OfferBody(actorID, recipient, tag)), decode(NoteOfferBody(actorID, recipient, tag))
	if report.Object.Type != "VulnerabilityReport" || note.Object.Type != "Note" {
		t.Errorf("object types %q and %q, want VulnerabilityReport and Note", report.Object.Type, note.Object.Type)
	}
	if note.Context != "https://www.w3.org/ns/activitystreams" {
		t.Errorf("the Note offer's @context is %v, want the ActivityStreams context", note.Context)
	}
	report.Context, note.Context, report.Object.Type, note.Object.Type = nil, nil, "", ""
	if !reflect.DeepEqual(report, note) {
		t.Errorf("the two offers differ beyond the object's type and the context:\n%+v\n%+v", report, note)
	}
	if report.ID != actorID+"/activities/offer-"+tag || report.Actor != actorID || len(report.To) != 1 || report.To[0] != recipient {
		t.Errorf("offer %+v: want id ending in the tag, from %s to %s", report, actorID, recipient)
	}
	doc, err := vocab.Parse(OfferBody(actorID, recipient, tag))
	if err != nil {
		t.Fatal(err)
	}
	if c := vocab.ClassifyDocument(doc, nil); c.Semantic != vocab.SubmitReport {
		t.Errorf("the node classifies the report offer as %s, want %s", c.Semantic, vocab.SubmitReport)
	}
}

func TestLimitInboxSmoke(t *testing.T) {
	senders, err := NewSenders()
	if err != nil {
		t.Fatal(err)
	}
	defer senders.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	li, err := StartLimitInbox(t.TempDir(), ln)
	if err != nil {
		t.Fatal(err)
	}
	defer li.Close()
	ctx := context.Background()
	c := &http.Client{Timeout: 10 * time.Second}
	inbox := li.URL + LimitInboxPath
	body := OfferBody(senders.ActorID(3), li.URL+"/actors/vendor", "smoke")
	for _, tt := range []struct {
		name string
		body []byte
		want int
	}{
		{"a signed offer", body, http.StatusAccepted},
		{"the same offer again", body, http.StatusAccepted},
		{"a body that is no activity", []byte(`{"type":"Note","id":"x"}`), http.StatusBadRequest},
	} {
		status, err := senders.Post(ctx, c, 3, inbox, tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if status != tt.want {
			t.Errorf("%s: status %d, want %d", tt.name, status, tt.want)
		}
	}
	got, err := li.db.Activity(ctx, senders.ActorID(3)+"/activities/offer-smoke")
	if err != nil {
		t.Fatalf("the accepted offer is not stored: %v", err)
	}
	if got.Sender != senders.ActorID(3) {
		t.Errorf("stored sender %q, want %q", got.Sender, senders.ActorID(3))
	}

	// A body changed after it was signed fails its Digest: refused, not stored.
	req, _ := http.NewRequest(http.MethodPost, inbox, bytes.NewReader(OfferBody(senders.ActorID(3), li.URL+"/actors/vendor", "tampered")))
	req.Header.Set("Content-Type", actor.ContentType)
	if err := actor.SignRequest(req, body, senders.ActorID(3)+"#main-key", senders.Key, time.Now()); err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a tampered body: status %d, want 401", resp.StatusCode)
	}
	if _, err := li.db.Activity(ctx, senders.ActorID(3)+"/activities/offer-tampered"); err == nil {
		t.Error("the tampered offer was stored")
	}
}
