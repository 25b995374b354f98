package node

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/internal/storetest"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
	"github.com/rs/zerolog"
)

// TestACaseActorIsNotAbsentWhenTheStoreFails: a Case Actor this process
// has not loaded yet (every Case Actor after a restart) is read from the
// store when it is first asked for. When that read fails (a full disk, a
// database out of reach; here the store is closed), a peer is not told
// that the actor does not exist, which would make it give up its delivery
// to the case, and the Case Actor's own deliveries are tried again rather
// than dead-lettered for want of a key; with the store up, it is found.
func TestACaseActorIsNotAbsentWhenTheStoreFails(t *testing.T) {
	n := newIdleNode(t, Config{})
	const name = "case-0123456789abcdef"
	rec, err := n.provisionCaseActor(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.db.PutLocalActor(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (signingKeys{n.Node}).SigningKey(context.Background(), "case-fedcba9876543210"); !errors.Is(err, outbox.ErrNoSigningKey) {
		t.Errorf("SigningKey of a Case Actor the node does not host: %v, want ErrNoSigningKey", err)
	}
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, req := range []struct{ method, path string }{
		{http.MethodPost, "/actors/" + name + "/inbox"},
		{http.MethodGet, "/actors/" + name},
		{http.MethodGet, "/actors/" + name + "/followers"},
		{http.MethodGet, "/.well-known/webfinger?resource=acct:" + name + "@" + strings.TrimPrefix(n.cfg.PublicURL, "http://")},
	} {
		if status, body := n.serve(t, req.method, req.path, ""); status != http.StatusServiceUnavailable {
			t.Errorf("%s %s with the store out of reach: %d %s, want 503 (a 404 tells a peer the actor does not exist)", req.method, req.path, status, body)
		}
	}
	if _, _, err := (signingKeys{n.Node}).SigningKey(context.Background(), name); err == nil || errors.Is(err, outbox.ErrNoSigningKey) {
		t.Errorf("SigningKey(%s) with the store out of reach: %v, want an error that is not ErrNoSigningKey (which dead-letters the delivery)", name, err)
	}
}

// TestADashboardSessionTheStoreCannotRead: a logged-in browser whose
// session the store cannot read now (here: the node's store is closed,
// as while it stops) is answered 503 with Retry-After, not 500 as for a
// fault of the node's.
func TestADashboardSessionTheStoreCannotRead(t *testing.T) {
	n := startNode(t, "vendor:Organization")
	b := newBrowser(t, n.url)
	b.login(n)
	if err := n.db.Close(); err != nil {
		t.Fatal(err)
	}
	resp, body := b.do(http.MethodGet, "/", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET / with a session the store cannot read: %d (Retry-After %q)\n%s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
}

// TestARecordThatDoesNotDecodeIsNotAbsent: an object of this node (a
// report one of its actors tracks) or a case whose record the store holds
// but cannot decode is answered 500 to the API token, the store's
// failure, not 404, which tells whoever asks that the node holds no such
// thing; and 401 to an unsigned request, as one the node does not hold
// is: an unsigned GET learns nothing of what the node holds, not even
// that a record of it does not read.
func TestARecordThatDoesNotDecodeIsNotAbsent(t *testing.T) {
	tests := []struct {
		name, bucket, key, value, path, absent string
	}{
		{"a report", "report {url}/objects/r1", "vendor", `{"reportId":`, "/objects/r1", "/objects/none"},
		{"a case", "{url}/cases/c1", "case", `{"id":`, "/cases/c1", "/cases/none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newIdleNode(t, Config{})
			err := n.db.Update(context.Background(), func(tx *store.Tx) error {
				b, err := tx.Case(strings.ReplaceAll(tt.bucket, "{url}", n.cfg.PublicURL))
				if err != nil {
					return err
				}
				return b.Put([]byte(tt.key), []byte(tt.value))
			})
			if err != nil {
				t.Fatal(err)
			}
			if status, body := n.serve(t, http.MethodGet, tt.path, n.token); status != http.StatusInternalServerError {
				t.Errorf("GET %s with a record that does not decode: %d %s, want 500 (a 404 says the node holds no such thing)", tt.path, status, body)
			}
			for _, path := range []string{tt.path, tt.absent} {
				if status, body := n.serve(t, http.MethodGet, path, ""); status != http.StatusUnauthorized {
					t.Errorf("unsigned GET %s: %d %s, want 401", path, status, body)
				}
			}
		})
	}
}

// TestACaseActorTheStoreCannotReadIsNotAbsent: a Case Actor whose record
// the store holds but cannot read (a process that has not loaded it yet,
// after a restart) is answered to the API as the node's failure (500),
// not as an actor the node does not have (404), for its inbox and outbox
// pages, its invitations and a submission as it; an actor the node does
// not have is still 404.
func TestACaseActorTheStoreCannotReadIsNotAbsent(t *testing.T) {
	first := newIdleNode(t, Config{})
	dir := first.dir
	const caseActor = cases.CaseActorPrefix + "damaged"
	if err := first.db.PutLocalActor(context.Background(), store.LocalActor{Name: caseActor, Type: "Service"}); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	storetest.DamageLocalActor(t, filepath.Join(dir, "vultron.db"), caseActor)

	cfg := Config{DataDir: dir, PublicURL: "http://127.0.0.1:7001", Actors: []ActorConfig{{Name: "vendor", Type: actor.Organization}},
		NoSync: true, Logger: zerolog.Nop(), Notice: io.Discard}
	n, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New on the store with a damaged Case Actor: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	again := &idleNode{Node: n, token: first.token, dir: dir}
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/actors/" + caseActor + "/outbox"},
		{http.MethodGet, "/actors/" + caseActor + "/inbox"},
		{http.MethodGet, "/actors/" + caseActor + "/invitations"},
		{http.MethodPost, "/actors/" + caseActor + "/outbox"},
	} {
		if status, body := again.serve(t, req.method, req.path, again.token); status != http.StatusInternalServerError {
			t.Errorf("%s %s of a Case Actor the store cannot read: %d %s, want 500 (a 404 says the node has no such actor)", req.method, req.path, status, body)
		}
	}
	if status, body := again.serve(t, http.MethodGet, "/actors/"+cases.CaseActorPrefix+"none/outbox", again.token); status != http.StatusNotFound {
		t.Errorf("GET the outbox of a Case Actor the node does not have: %d %s, want 404", status, body)
	}
}
