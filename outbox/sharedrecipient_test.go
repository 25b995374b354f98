package outbox

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/cases"
	"github.com/openvultron/vultron/cvdstate"
	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/social"
	"github.com/openvultron/vultron/store"
)

// TestSubmitRefusesASharedInboxRecipient has a client name, as a
// recipient, the form the node gives a delivery to a shared inbox
// (social.SharedInbox): it is no actor's id, so the activity is refused
// with 422, nothing is fetched and nothing is queued, rather than posted to
// whatever URL the client wrote without an actor document naming it.
func TestSubmitRefusesASharedInboxRecipient(t *testing.T) {
	ctx := context.Background()
	const node = "https://finder.example"
	db, err := store.Open(filepath.Join(t.TempDir(), "vultron.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	finder := actor.Local{Name: "finder", Type: "Person", ID: node + "/actors/finder"}
	if err := db.PutLocalActor(ctx, store.LocalActor{Name: "finder", Type: "Person"}); err != nil {
		t.Fatal(err)
	}
	var ids atomic.Int64
	newID := func(kind string) string { return fmt.Sprintf("%s/%s/%d", node, kind, ids.Add(1)) }
	engine := cases.NewEngine(cases.Config{PublicURL: node, NewID: newID,
		Roles:   func(string) cvdstate.RoleSet { return cvdstate.Finder },
		IsLocal: func(id string) bool { return len(id) > len(node) && id[:len(node)] == node }})
	var fetched []string
	inboxes := NewActorInboxes(func(_ context.Context, iri string) ([]byte, error) {
		fetched = append(fetched, iri)
		return nil, fmt.Errorf("fetch %s: not expected", iri)
	}, 0, nil)
	sub, err := NewSubmitter(SubmitConfig{
		Store: db, Engine: engine, NewID: newID, Logger: zerolog.Nop(),
		Local:            func(_ context.Context, name string) (actor.Local, bool, error) { return finder, name == "finder", nil },
		ResolveRecipient: func(ctx context.Context, iri string) error { _, err := inboxes.Inbox(ctx, iri); return err },
	})
	if err != nil {
		t.Fatal(err)
	}
	to := social.SharedInbox("https://elsewhere.example/inbox")
	body := []byte(fmt.Sprintf(`{"@context":"https://www.w3.org/ns/activitystreams","type":"Offer","to":[%q],
"object":{"type":"VulnerabilityReport","name":"Overflow","content":"details"}}`, to))
	_, err = sub.Submit(ctx, "finder", body)
	if problem.Status(err) != 422 || !strings.Contains(problem.Message(err), to) {
		t.Errorf("Submit to %s: %d %v; want 422 naming it", to, problem.Status(err), err)
	}
	if pending, err := db.PendingCount(ctx); err != nil || pending != 0 {
		t.Errorf("%d deliveries queued (%v), want none", pending, err)
	}
	if len(fetched) != 0 {
		t.Errorf("fetched %q for a refused recipient", fetched)
	}
}
