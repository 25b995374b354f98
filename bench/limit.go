package bench

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// staticKeys resolves every key id to one public key.
type staticKeys struct{ pub *rsa.PublicKey }

func (k staticKeys) ResolveKey(_ context.Context, keyID string, _ bool) (actor.PublicKey, error) {
	owner := keyID
	if i := len(keyID) - len("#main-key"); i > 0 && keyID[i:] == "#main-key" {
		owner = keyID[:i]
	}
	return actor.PublicKey{ID: keyID, Owner: owner, Key: k.pub}, nil
}

// LimitResult is the outcome of InboxLimit.
type LimitResult struct {
	Activities int
	Seconds    float64
	PerSecond  float64
}

// InboxLimit measures the work no inbox can avoid for a signed activity,
// done by workers concurrent goroutines for n activities: verifying the
// draft-cavage RSA-2048 signature and the body's Digest (actor.Verifier),
// parsing the activity (vocab.Parse), and storing it durably through the
// store's group committer (store.DB.AcceptInbound, fsync on), which merges
// concurrent commits. Nothing else of the inbox runs: no key lookup, no
// protocol state, no replies, no HTTP.
//
// The requests are signed before the clock starts. To keep that set-up
// short, 64 requests are signed and activity i is verified as request
// i mod 64 (a verification costs the same whatever it verifies), while
// the body parsed and stored is unique to activity i, as the store's dedup
// index requires.
func InboxLimit(dir string, n, workers int) (LimitResult, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return LimitResult{}, err
	}
	return limit(dir, n, workers, key, func(ctx context.Context, db *store.DB, _ int64, in store.Inbound) error {
		if _, err := db.AcceptInbound(ctx, in, nil); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	})
}

// limit runs InboxLimit's measurement with store as what is done with
// each verified and parsed activity i.
func limit(dir string, n, workers int, key *rsa.PrivateKey, storeStep func(ctx context.Context, db *store.DB, i int64, in store.Inbound) error) (LimitResult, error) {
	const host = "127.0.0.1:7001"
	const signedReqs = 64
	recipient := "http://" + host + "/actors/vendor"
	inbox := recipient + "/inbox"
	sender := "http://127.0.0.1:7002/users/s0"
	type pre struct {
		req  *http.Request
		body []byte
	}
	reqs := make([]pre, signedReqs)
	for i := range reqs {
		body := OfferBody(sender, recipient, fmt.Sprintf("signed-%d", i))
		req, err := http.NewRequest(http.MethodPost, inbox, nil)
		if err != nil {
			return LimitResult{}, err
		}
		req.Header.Set("Content-Type", actor.ContentType)
		if err := actor.SignRequest(req, body, sender+"#main-key", key, time.Now()); err != nil {
			return LimitResult{}, err
		}
		reqs[i] = pre{req, body}
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = OfferBody(sender, recipient, fmt.Sprintf("limit-%d-%d", time.Now().UnixNano(), i))
	}
	v, err := actor.NewVerifier(actor.VerifierOptions{Keys: staticKeys{&key.PublicKey}, Host: host, Scheme: "http"})
	if err != nil {
		return LimitResult{}, err
	}
	db, err := store.Open(filepath.Join(dir, "limit.db"), store.Options{})
	if err != nil {
		return LimitResult{}, err
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "vendor", Type: "Organization", KeyID: recipient + "#main-key", CreatedAt: time.Now()}); err != nil {
		return LimitResult{}, err
	}

	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				p := reqs[i%signedReqs]
				signer, err := v.Verify(ctx, p.req, p.body)
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("verify: %w", err))
					return
				}
				body := bodies[i]
				doc, err := vocab.Parse(body)
				if err != nil || doc.Activity() == nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("parse: %v", err))
					return
				}
				act := doc.Activity()
				if err := storeStep(ctx, db, i, store.Inbound{ID: act.ID, Recipient: "vendor", Sender: signer.Owner,
					KeyID: signer.KeyID, Body: body, Semantic: "SubmitReport"}); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if err, ok := firstErr.Load().(error); ok {
		return LimitResult{}, err
	}
	return LimitResult{Activities: n, Seconds: el.Seconds(), PerSecond: float64(n) / el.Seconds()}, nil
}

// The signatures an acknowledgement can carry (AckLimit).
const (
	AckEd25519 = "ed25519" // RFC 9421 with the actor's Ed25519 key: to other Vultron nodes
	AckRSA     = "rsa"     // draft-cavage RSA-2048: to peers that verify nothing else
)

// AckLimit measures the work no inbox can avoid for a signed activity that
// it accepts and acknowledges, from workers concurrent goroutines for n
// activities: everything InboxLimit does, except that the activity's
// acknowledgement (an RK reply of the size the node writes) is queued for
// its sender in the accept's own transaction, as the node queues it, and
// then signed for its delivery with sig (AckEd25519 or AckRSA), as a
// delivery worker signs it. Sending the reply is not counted: that is the
// receiver's HTTP, not this node's work.
func AckLimit(dir string, n, workers int, sig string) (LimitResult, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return LimitResult{}, err
	}
	local, err := actor.NewLocal("http://127.0.0.1:7001", "vendor", actor.Organization, key)
	if err != nil {
		return LimitResult{}, err
	}
	ed, _ := local.Ed25519()
	sign := map[string]func(req *http.Request, body []byte) error{
		AckEd25519: func(req *http.Request, body []byte) error {
			return actor.SignRequestEd25519(req, body, ed.KeyID, ed.Key, time.Now())
		},
		AckRSA: func(req *http.Request, body []byte) error {
			return actor.SignRequest(req, body, local.KeyID, key, time.Now())
		},
	}[sig]
	if sign == nil {
		return LimitResult{}, fmt.Errorf("ack limit: signature %q is not %s or %s", sig, AckEd25519, AckRSA)
	}
	return limit(dir, n, workers, key, func(ctx context.Context, db *store.DB, i int64, in store.Inbound) error {
		replyID := fmt.Sprintf("%s/activities/ack-%d-%d", local.ID, time.Now().UnixNano(), i)
		reply := ackBody(replyID, local.ID, in.Sender, in.ID)
		if _, err := db.AcceptInbound(ctx, in, func(tx *store.Tx) error {
			return tx.EnqueueOutbound(store.Outbound{ID: replyID, Actor: "vendor", Body: reply, Semantic: "AckReport",
				Deliveries: []store.DeliveryTarget{{Recipient: in.Sender}}})
		}); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		req, err := http.NewRequest(http.MethodPost, in.Sender+"/inbox", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", actor.ContentType)
		return sign(req, reply)
	})
}

// ackBody is an RK acknowledgement of the size and shape the node sends:
// a Read of the Offer, with the offer inline.
func ackBody(id, actorID, to, offerID string) []byte {
	return fmt.Appendf(nil, `{"@context":"https://certcc.github.io/Vultron/ns/context.jsonld","id":%q,"type":"Read","published":%q,`+
		`"inReplyTo":%q,"to":[%q],"actor":%q,"object":{"id":%q,"type":"Offer","actor":%q,"to":[%q],`+
		`"object":{"id":"%s/report","type":"VulnerabilityReport","name":"Heap overflow in the widget parser",`+
		`"content":"A crafted widget file overflows a heap buffer in the parser of version 2.4.","attributedTo":[%q]}},`+
		`"result":{"type":"ParticipantStatus","context":"%s/report","rmState":"RECEIVED","vfdState":"Vfd"}}`,
		id, time.Now().UTC().Format(time.RFC3339), offerID, to, actorID, offerID, to, actorID, offerID, to, offerID)
}

// SignRate returns RSA-2048 PKCS#1 v1.5 SHA-256 signatures per second made
// by workers goroutines in d (the operation every delivery needs).
func SignRate(d time.Duration, workers int) (float64, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	return rate(d, workers, func(i int64) error {
		h := sha256.Sum256(fmt.Appendf(nil, "(request-target): post /inbox\nhost: x\ndate: %d", i))
		_, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
		return err
	})
}

// rate runs op from workers goroutines for about d and returns ops/s.
func rate(d time.Duration, workers int, op func(i int64) error) (float64, error) {
	var count atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := op(count.Add(1)); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}
