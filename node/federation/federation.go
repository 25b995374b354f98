// Package federation serves what other nodes call: the inboxes of the
// node's actors (POST), their actor documents, WebFinger and NodeInfo, and
// the signed GETs of what this node minted or hosts (/activities/{id},
// /objects/{id}, /cases/{cid}, /cases/{cid}/ledger). Its LedgerFetcher is
// the other end of the ledger pages: the client a replica uses to fetch
// what it lacks from a Case Actor's node.
//
// Invariants: an activity, object, case or ledger page is served only to
// the node's API token or to a signed GET whose signer may read it (a
// party to the activity or object, a participant of the case that is not
// removed); an unsigned GET gets 401, a signed GET from anyone else 403,
// and the sentence of a refused signature says why. A case and its ledger
// are the exception: a signer that may not read one is answered 404, as
// for a case the node does not hold, so that the answer does not tell
// which cases the node holds. Nothing here writes
// to the store but the inbox pipeline. The node routes to these handlers
// (node/routes.go) behind its federation guard, which holds a request
// without the API token to the per-IP rate limit and audits refusals.
package federation

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/inbox"
	"github.com/openvultron/vultron/store"
)

// Verifier verifies a request's HTTP signature and names its signer
// (*actor.Verifier).
type Verifier interface {
	Verify(ctx context.Context, r *http.Request, body []byte) (actor.Signer, error)
}

// Inbox receives a POST to a local actor's inbox (*inbox.Pipeline).
type Inbox interface {
	Receive(ctx context.Context, name string, r *http.Request) (inbox.Result, error)
}

// Config is what the endpoints need from the node.
type Config struct {
	Store    *store.DB
	Inbox    Inbox
	Verifier Verifier
	// Local returns a local actor (configured, or a Case Actor) by name,
	// false when there is none, and an error when it could not be looked
	// up (the store failed), which is answered as the node's failure, not
	// as an actor that does not exist; LocalByID returns one the node has
	// loaded by id.
	Local     func(ctx context.Context, name string) (actor.Local, bool, error)
	LocalByID func(id string) (actor.Local, bool)
	// Authorized reports whether a request carries the node's API token,
	// which reads everything a signed GET may.
	Authorized func(*http.Request) bool
	// Admin reports whether a request is one of the node's admins', who
	// see the members of the actors' followers and following collections.
	Admin func(*http.Request) bool
	// Refused is told of a refused inbox POST, with its whole error: the
	// node logs it and counts it among the refused federation requests.
	Refused func(r *http.Request, where string, err error)
	// Withheld is told of a GET answered as for a case the node does not
	// hold although it holds it (noCase), with the refusal the answer
	// withholds: the node audits and logs that refusal, so that its
	// operator sees who asked for what.
	Withheld func(r *http.Request, err error)
	// PublicURL is the node's base URL (ids are minted under it), Host its
	// host[:port] (WebFinger's acct: host); Version is NodeInfo's.
	PublicURL string
	Host      string
	Version   string
	Now       func() time.Time
}

// Endpoints are the handlers of the federation routes.
type Endpoints struct {
	cfg Config
}

// New returns the endpoints of cfg.
func New(cfg Config) (*Endpoints, error) {
	if cfg.Store == nil || cfg.Inbox == nil || cfg.Verifier == nil || cfg.Local == nil || cfg.LocalByID == nil ||
		cfg.Authorized == nil || cfg.Admin == nil || cfg.Refused == nil || cfg.Withheld == nil || cfg.Now == nil {
		return nil, errors.New("federation: the configuration misses a dependency")
	}
	return &Endpoints{cfg: cfg}, nil
}
