package inbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

const (
	finderURL = "https://finder.example"
	vendorID  = "https://vendor.example/actors/vendor"
)

// stubVerifier accepts every request as signed by vendorID and runs
// onVerify first.
type stubVerifier struct{ onVerify func() }

func (v stubVerifier) Verify(ctx context.Context, r *http.Request, body []byte) (actor.Signer, error) {
	if v.onVerify != nil {
		v.onVerify()
	}
	return actor.Signer{KeyID: vendorID + "#main-key", Owner: vendorID, Scheme: actor.SchemeCavage}, nil
}

type fixture struct {
	db     *store.DB
	engine *cases.Engine
	finder actor.Local
	ids    atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	f := &fixture{db: db}
	f.finder = actor.Local{Name: "finder", Type: "Person", ID: finderURL + "/actors/finder"}
	if err := db.Update(context.Background(), func(tx *store.Tx) error {
		return tx.PutLocalActor(store.LocalActor{Name: "finder", Type: "Person"})
	}); err != nil {
		t.Fatalf("put actor: %v", err)
	}
	f.engine = cases.NewEngine(cases.Config{
		PublicURL: finderURL,
		NewID:     func(kind string) string { return fmt.Sprintf("%s/%s/%d", finderURL, kind, f.ids.Add(1)) },
		Roles:     func(string) cvdstate.RoleSet { return cvdstate.Finder },
		Provision: func(name string) (store.LocalActor, error) { return store.LocalActor{Name: name, Type: "Service"}, nil },
		Provisioned: func(name string) (store.LocalActor, bool, error) {
			return store.LocalActor{Name: name, Type: "Service"}, true, nil
		},
		IsLocal: func(id string) bool { return len(id) > len(finderURL) && id[:len(finderURL)] == finderURL },
	})
	return f
}

// submitOffer writes, in one transaction, the finder's Offer of a report
// to the vendor as the outbox does, and calls hold inside that
// transaction once the Offer is written.
func (f *fixture) submitOffer(ctx context.Context, offerID string, hold func()) error {
	rep := &vocab.VulnerabilityReport{}
	rep.ID, rep.Type, rep.Name = finderURL+"/objects/report", vocab.TypeVulnerabilityReport, "Overflow"
	rep.AttributedTo = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(f.finder.ID)}, Single: true}
	offer := &vocab.Activity{}
	offer.ID, offer.Type = offerID, "Offer"
	offer.Actor = vocab.RefTo(f.finder.ID)
	offer.Object = vocab.Inline(rep)
	offer.To = vocab.Refs{Items: []vocab.Ref{vocab.RefTo(vendorID)}}
	body, err := vocab.Marshal(offer)
	if err != nil {
		return err
	}
	return f.db.Update(ctx, func(tx *store.Tx) error {
		m := cases.Message{Activity: offer, Class: vocab.Classify(offer, cases.NewResolver(&tx.ReadTx)), Resolver: cases.NewResolver(&tx.ReadTx)}
		if err := f.engine.ApplyOutbound(tx, cases.LocalActor{Name: "finder", ID: f.finder.ID}, []string{vendorID}, m); err != nil {
			return err
		}
		if err := tx.EnqueueOutbound(store.Outbound{ID: offer.ID, Actor: "finder", Body: body, Semantic: string(m.Class.Semantic),
			CreatedAt: time.Now(), Deliveries: []store.DeliveryTarget{{Recipient: vendorID}}}); err != nil {
			return err
		}
		if hold != nil {
			hold()
		}
		return nil
	})
}

// TestClassifiedInTheApplyingTransaction sends the vendor's validation of
// a report (Accept naming the finder's Offer by id) while the write that
// stores that Offer is still open: the inbox must classify the Accept
// with what the accepting transaction holds (the Offer, committed by
// then), not with what a read before it saw.
func TestClassifiedInTheApplyingTransaction(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	offerID := finderURL + "/activities/offer-1"

	holding := make(chan struct{})
	release := make(chan struct{})
	writeDone := make(chan error, 1)
	p, err := New(Config{
		Store:  f.db,
		Engine: f.engine,
		Verifier: stubVerifier{onVerify: func() {
			// The Offer's write is open, and not committed, from here on.
			go func() {
				writeDone <- f.submitOffer(ctx, offerID, func() {
					close(holding)
					<-release
				})
			}()
			<-holding
		}},
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			return f.finder, name == "finder", nil
		},
		// The inbox asks whether the sender is local just before it stores
		// the activity: the Offer's write commits from here on.
		IsLocal: func(string) bool {
			close(release)
			return false
		},
		MaxBody: 1 << 20,
		NewID:   func() string { return fmt.Sprintf("%s/activities/reply-%d", finderURL, f.ids.Add(1)) },
		Logger:  zerolog.Nop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	accept := fmt.Sprintf(`{"@context":%q,"id":"https://vendor.example/activities/rv-1","type":"Accept","actor":%q,"object":%q,"to":[%q]}`,
		vocab.VultronContext, vendorID, offerID, f.finder.ID)
	req := httptest.NewRequest(http.MethodPost, finderURL+"/actors/finder/inbox", bytes.NewBufferString(accept))
	req.Header.Set("Content-Type", "application/activity+json")
	res, err := p.Receive(ctx, "finder", req)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	if err := <-writeDone; err != nil {
		t.Fatalf("store the offer: %v", err)
	}
	if res.Semantic != vocab.ValidateReport {
		t.Errorf("semantic = %s, want %s (classified with the Offer the applying transaction holds)", res.Semantic, vocab.ValidateReport)
	}
	stored, err := f.db.Activity(ctx, "https://vendor.example/activities/rv-1")
	if err != nil {
		t.Fatal(err)
	}
	if stored.Semantic != string(vocab.ValidateReport) {
		t.Errorf("stored semantic = %s, want %s", stored.Semantic, vocab.ValidateReport)
	}
}

// vendorNode is a node with the local actors vendor and psirt, receiving
// through a Pipeline whose verifier reports the signer each request names
// (signerVerifier).
type vendorNode struct {
	db     *store.DB
	engine *cases.Engine
	p      *Pipeline
	locals map[string]actor.Local
}

const vendorNodeURL = "https://vendor.example"

func newVendorNode(t *testing.T) *vendorNode {
	t.Helper()
	return newVendorNodeAt(t, "bolt:"+filepath.Join(t.TempDir(), "vultron.db"))
}

// newVendorNodeAt is newVendorNode on the store at storeURL.
func newVendorNodeAt(t *testing.T, storeURL string) *vendorNode {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenURL(ctx, storeURL, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	n := &vendorNode{db: db, locals: map[string]actor.Local{}}
	for _, name := range []string{"vendor", "psirt"} {
		n.locals[name] = actor.Local{Name: name, Type: "Organization", ID: vendorNodeURL + "/actors/" + name}
		if err := db.PutLocalActor(ctx, store.LocalActor{Name: name, Type: "Organization"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids atomic.Int64
	n.engine = cases.NewEngine(cases.Config{
		PublicURL: vendorNodeURL,
		NewID:     func(kind string) string { return fmt.Sprintf("%s/%s/%d", vendorNodeURL, kind, ids.Add(1)) },
		Roles:     func(string) cvdstate.RoleSet { return cvdstate.Vendor },
		Provision: func(name string) (store.LocalActor, error) { return store.LocalActor{Name: name, Type: "Service"}, nil },
		Provisioned: func(name string) (store.LocalActor, bool, error) {
			return store.LocalActor{Name: name, Type: "Service"}, true, nil
		},
		IsLocal: func(id string) bool { return len(id) > len(vendorNodeURL) && id[:len(vendorNodeURL)] == vendorNodeURL },
	})
	n.p, err = New(Config{
		Store: db, Engine: n.engine, MaxBody: 1 << 20, Logger: zerolog.Nop(),
		Verifier: signerVerifier{},
		Local: func(_ context.Context, name string) (actor.Local, bool, error) {
			l, ok := n.locals[name]
			return l, ok, nil
		},
		NewID: func() string { return fmt.Sprintf("%s/activities/reply-%d", vendorNodeURL, ids.Add(1)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// receive posts body to the inbox of local actor name, signed by signer.
func (n *vendorNode) receive(t *testing.T, signer, name, body string) Result {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, vendorNodeURL+"/actors/"+name+"/inbox", bytes.NewBufferString(body))
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set(testSignerHeader, signer)
	res, err := n.p.Receive(context.Background(), name, req)
	if err != nil {
		t.Fatalf("Receive for %s from %s: %v", name, signer, err)
	}
	return res
}

// signerVerifier verifies every request as signed by the actor its
// testSignerHeader names, so that requests sent at once each have their
// own signer.
type signerVerifier struct{}

const testSignerHeader = "X-Test-Signer"

func (signerVerifier) Verify(_ context.Context, r *http.Request, _ []byte) (actor.Signer, error) {
	owner := r.Header.Get(testSignerHeader)
	return actor.Signer{KeyID: owner + "#main-key", Owner: owner, Scheme: actor.SchemeCavage}, nil
}

// TestOneActivityForTwoLocalActors delivers one report (RS) to two actors
// of the same node, as a sender does, with one request per inbox: each
// actor must receive it (RM RECEIVED) and acknowledge it (RK).
func TestOneActivityForTwoLocalActors(t *testing.T) {
	ctx := context.Background()
	n := newVendorNode(t)
	const finder = "https://finder.example/actors/finder"
	offer := fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/rs-1","type":"Offer","actor":%q,
		"object":{"id":"https://finder.example/objects/r1","type":"VulnerabilityReport","name":"Overflow","attributedTo":%q},
		"to":[%q,%q]}`, vocab.VultronContext, finder, finder, n.locals["vendor"].ID, n.locals["psirt"].ID)
	for _, name := range []string{"vendor", "psirt"} {
		if res := n.receive(t, finder, name, offer); res.Duplicate || res.Replies != 1 {
			t.Errorf("%s: duplicate = %v, replies = %d; want a new activity for it, acknowledged once", name, res.Duplicate, res.Replies)
		}
	}
	err := n.db.View(ctx, func(tx *store.ReadTx) error {
		for _, name := range []string{"vendor", "psirt"} {
			rec, ok, err := cases.Report(tx, "https://finder.example/objects/r1", name)
			if err != nil {
				return err
			}
			if !ok || rec.RM != cvdstate.RMReceived {
				t.Errorf("%s: report record found = %v, RM = %s; want RECEIVED", name, ok, rec.RM)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Delivered again to one of them: a duplicate, nothing more.
	if res := n.receive(t, finder, "psirt", offer); !res.Duplicate || res.Replies != 0 {
		t.Errorf("second delivery to psirt = %+v; want a duplicate with no reply", res)
	}
	if got, err := n.db.PendingCount(ctx); err != nil || got != 2 {
		t.Errorf("pending deliveries = %d, %v; want the two RKs", got, err)
	}
}

// TestCaseReporterIsWhoReportedFirst has two peers offer the same report
// and the vendor validate it: the case names the first sender as its
// reporter, every time.
func TestCaseReporterIsWhoReportedFirst(t *testing.T) {
	ctx := context.Background()
	const finder = "https://finder.example/actors/finder"
	const coord = "https://coord.example/actors/coord"
	for run := 0; run < 16; run++ {
		n := newVendorNode(t)
		for i, sender := range []string{finder, coord} {
			n.receive(t, sender, "vendor", fmt.Sprintf(`{"@context":%q,"id":"%s/rs-%d","type":"Offer","actor":%q,
				"object":{"id":"https://finder.example/objects/r1","type":"VulnerabilityReport","name":"Overflow"},"to":[%q]}`,
				vocab.VultronContext, sender, i, sender, n.locals["vendor"].ID))
		}
		validate := &vocab.Activity{}
		validate.ID, validate.Type = vendorNodeURL+"/activities/rv", "Accept"
		validate.Actor = vocab.RefTo(n.locals["vendor"].ID)
		validate.Object = vocab.RefTo(finder + "/rs-0")
		var caseID string
		err := n.db.Update(ctx, func(tx *store.Tx) error {
			r := cases.NewResolver(&tx.ReadTx)
			m := cases.Message{Activity: validate, Class: vocab.Classify(validate, r), Resolver: r}
			if err := n.engine.ApplyOutbound(tx, cases.LocalActor{Name: "vendor", ID: n.locals["vendor"].ID}, []string{finder}, m); err != nil {
				return err
			}
			rec, _, err := cases.Report(&tx.ReadTx, "https://finder.example/objects/r1", "vendor")
			caseID = rec.CaseID
			return err
		})
		if err != nil {
			t.Fatalf("validate: %v", err)
		}
		err = n.db.View(ctx, func(tx *store.ReadTx) error {
			c, err := cases.Load(tx, caseID)
			if err != nil || c == nil {
				return fmt.Errorf("case %q: %v", caseID, err)
			}
			for _, p := range c.Participants {
				if p.Roles.Has(cvdstate.Reporter) && p.Actor != finder {
					t.Errorf("run %d: the case's reporter is %s, want %s, who reported first", run, p.Actor, finder)
				}
			}
			if c.Participant(finder) == nil {
				t.Errorf("run %d: %s, who reported first, is no participant", run, finder)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestKeyFetchFailureIsRetryable maps a failed verification to what the
// sender is told: when the signer's key could not be fetched for a reason
// that passes (its server down, failing or behind a failing proxy), 503
// with Retry-After, so that the sender tries again instead of giving up
// its delivery; otherwise 401.
func TestKeyFetchFailureIsRetryable(t *testing.T) {
	keyURL := "https://peer.example/actors/a"
	for _, tt := range []struct {
		name string
		err  error
		want int
	}{
		{"connection closed without an answer", &url.Error{Op: "Get", URL: keyURL, Err: io.EOF}, 503},
		{"connection refused", &url.Error{Op: "Get", URL: keyURL, Err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, 503},
		{"server error", &actor.StatusError{URL: keyURL, Code: 500}, 503},
		{"bad gateway", fmt.Errorf("resolve key: %w", &actor.StatusError{URL: keyURL, Code: 502}), 503},
		{"gateway timeout", &actor.StatusError{URL: keyURL, Code: 504}, 503},
		{"proxy refused the size", &actor.StatusError{URL: keyURL, Code: 413}, 503},
		{"too many requests", &actor.StatusError{URL: keyURL, Code: 429}, 503},
		{"no such actor", &actor.StatusError{URL: keyURL, Code: 404}, 401},
		{"gone", &actor.StatusError{URL: keyURL, Code: 410}, 401},
		{"an address this node refuses", fmt.Errorf("fetch: %w", actor.ErrAddressRefused), 401},
		{"a bad signature", errors.New("the signature does not verify"), 401},
		// This node's store failed while the key was looked up: the
		// sender is not at fault and is to try again.
		{"the node's disk is full", &actor.CacheError{Err: fmt.Errorf("cache key: %w", &store.UnavailableError{Reason: "the node's disk is full", Full: true,
			Err: &fs.PathError{Op: "write", Path: "vultron.db", Err: syscall.ENOSPC}})}, 507},
		{"the node's database is read-only", &actor.CacheError{Err: fmt.Errorf("cache key: %w", &store.UnavailableError{Reason: "the database is read-only",
			Err: errors.New("SQLSTATE 25006")})}, 503},
		{"the node's store failed otherwise", &actor.CacheError{Err: errors.New("read cached key: store: damaged file")}, 500},
	} {
		err := unauthorized(tt.err)
		if got := problem.Status(err); got != tt.want {
			t.Errorf("%s: status %d (%v), want %d", tt.name, got, err, tt.want)
		}
		rec := httptest.NewRecorder()
		problem.Write(rec, err)
		if (tt.want == 503 || tt.want == 507) && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After on the %d", tt.name, tt.want)
		}
		if tt.want >= 500 && strings.Contains(rec.Body.String(), "sender's key") && errors.As(tt.err, new(*actor.CacheError)) {
			t.Errorf("%s: %s blames the sender's key for the node's own store", tt.name, rec.Body.String())
		}
	}
}

// TestStoreFailuresAreTheNodesOwn: when the node's store cannot serve
// while it looks up the addressed actor, or stores a sender's refreshed
// keys, the sender is answered 503 or 507 with Retry-After, which it
// retries, or 500 for a failure that does not pass, not 404 (no such
// actor) or 502 (its own server failed), and the answer holds nothing of
// the node's own error.
func TestStoreFailuresAreTheNodesOwn(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	full := &store.UnavailableError{Reason: "the node's disk is full", Full: true,
		Err: &fs.PathError{Op: "write", Path: "/var/lib/vultron/vultron.db", Err: syscall.ENOSPC}}
	update := fmt.Sprintf(`{"@context":%q,"id":"https://vendor.example/activities/up-1","type":"Update","actor":%q,"object":{"id":%q,"type":"Organization"},"to":[%q]}`,
		vocab.VultronContext, vendorID, vendorID, f.finder.ID)
	finder := func(_ context.Context, name string) (actor.Local, bool, error) {
		return f.finder, name == "finder", nil
	}
	for _, tt := range []struct {
		name          string
		local         func(context.Context, string) (actor.Local, bool, error)
		actorsUpdated func(context.Context, string) error
		want          int
	}{
		{"the actor could not be looked up", func(context.Context, string) (actor.Local, bool, error) { return actor.Local{}, false, full }, nil, 507},
		{"the sender's keys could not be stored", finder,
			func(context.Context, string) error { return fmt.Errorf("store the keys of %s: %w", vendorID, full) }, 507},
		// A failure of the store that does not pass (a disk that fails
		// reads) is the node's too: 500, not the 502 of the sender's
		// server, and nothing of it in the answer.
		{"the sender's keys could not be stored for good", finder, func(context.Context, string) error {
			return fmt.Errorf("store the keys of %s: %w", vendorID, &fs.PathError{Op: "read", Path: "/var/lib/vultron/vultron.db", Err: syscall.EIO})
		}, 500},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(Config{Store: f.db, Engine: f.engine, Verifier: stubVerifier{}, Local: tt.local, ActorUpdated: tt.actorsUpdated,
				MaxBody: 1 << 20, NewID: func() string { return fmt.Sprintf("%s/activities/reply-%d", finderURL, f.ids.Add(1)) }, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, finderURL+"/actors/finder/inbox", bytes.NewBufferString(update))
			req.Header.Set("Content-Type", "application/activity+json")
			_, err = p.Receive(ctx, "finder", req)
			rec := httptest.NewRecorder()
			problem.Write(rec, err)
			if rec.Code != tt.want || tt.want == http.StatusInsufficientStorage && rec.Header().Get("Retry-After") == "" || strings.Contains(rec.Body.String(), "vultron.db") {
				t.Errorf("answered %d %s (Retry-After %q), want %d (with Retry-After if 507) and nothing of the node's own error", rec.Code, rec.Body.String(), rec.Header().Get("Retry-After"), tt.want)
			}
		})
	}
}
