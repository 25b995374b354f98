package inbox

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
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
		IsLocal:   func(id string) bool { return len(id) > len(finderURL) && id[:len(finderURL)] == finderURL },
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
		Local: func(name string) (actor.Local, bool) { return f.finder, name == "finder" },
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

// TestOneActivityForTwoLocalActors delivers one report (RS) to two actors
// of the same node, as a sender does, with one request per inbox: each
// actor must receive it (RM RECEIVED) and acknowledge it (RK).
func TestOneActivityForTwoLocalActors(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	const node = "https://vendor.example"
	locals := map[string]actor.Local{}
	for _, name := range []string{"vendor", "psirt"} {
		locals[name] = actor.Local{Name: name, Type: "Organization", ID: node + "/actors/" + name}
		if err := db.PutLocalActor(ctx, store.LocalActor{Name: name, Type: "Organization"}); err != nil {
			t.Fatal(err)
		}
	}
	var ids atomic.Int64
	engine := cases.NewEngine(cases.Config{
		PublicURL: node,
		NewID:     func(kind string) string { return fmt.Sprintf("%s/%s/%d", node, kind, ids.Add(1)) },
		Roles:     func(string) cvdstate.RoleSet { return cvdstate.Vendor },
		Provision: func(name string) (store.LocalActor, error) { return store.LocalActor{Name: name, Type: "Service"}, nil },
		IsLocal:   func(id string) bool { return len(id) > len(node) && id[:len(node)] == node },
	})
	const finder = "https://finder.example/actors/finder"
	p, err := New(Config{
		Store: db, Engine: engine, MaxBody: 1 << 20, Logger: zerolog.Nop(),
		Verifier: finderVerifier{},
		Local: func(name string) (actor.Local, bool) {
			l, ok := locals[name]
			return l, ok
		},
		NewID: func() string { return fmt.Sprintf("%s/activities/reply-%d", node, ids.Add(1)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	offer := fmt.Sprintf(`{"@context":%q,"id":"https://finder.example/activities/rs-1","type":"Offer","actor":%q,
		"object":{"id":"https://finder.example/objects/r1","type":"VulnerabilityReport","name":"Overflow","attributedTo":%q},
		"to":[%q,%q]}`, vocab.VultronContext, finder, finder, locals["vendor"].ID, locals["psirt"].ID)
	for _, name := range []string{"vendor", "psirt"} {
		req := httptest.NewRequest(http.MethodPost, node+"/actors/"+name+"/inbox", bytes.NewBufferString(offer))
		req.Header.Set("Content-Type", "application/activity+json")
		res, err := p.Receive(ctx, name, req)
		if err != nil {
			t.Fatalf("Receive for %s: %v", name, err)
		}
		if res.Duplicate || res.Replies != 1 {
			t.Errorf("%s: duplicate = %v, replies = %d; want a new activity for it, acknowledged once", name, res.Duplicate, res.Replies)
		}
	}
	err = db.View(ctx, func(tx *store.ReadTx) error {
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
	req := httptest.NewRequest(http.MethodPost, node+"/actors/psirt/inbox", bytes.NewBufferString(offer))
	req.Header.Set("Content-Type", "application/activity+json")
	if res, err := p.Receive(ctx, "psirt", req); err != nil || !res.Duplicate || res.Replies != 0 {
		t.Errorf("second delivery to psirt = %+v, %v; want a duplicate with no reply", res, err)
	}
	if n, err := db.PendingCount(ctx); err != nil || n != 2 {
		t.Errorf("pending deliveries = %d, %v; want the two RKs", n, err)
	}
}

type finderVerifier struct{}

func (finderVerifier) Verify(ctx context.Context, r *http.Request, body []byte) (actor.Signer, error) {
	const finder = "https://finder.example/actors/finder"
	return actor.Signer{KeyID: finder + "#main-key", Owner: finder, Scheme: actor.SchemeCavage}, nil
}
