// Package jsonapi serves the node's token-authenticated JSON API, what an
// operator's tools and the command line (cmd/vultron) call: the actors'
// outbox POSTs (client to server) and the pages of their inboxes and
// outboxes, their invitations, the cases with their ledgers and whether a
// case recorded an activity, the replicas' resync, the reports, the
// delivery queue, its dead letters and the delivery records set aside as
// damaged (never their bytes), the audit log, key rotations, the
// deadlines, the threat-intelligence signals, the automation policy
// with its explanation of a case (automation.go), and the webhooks with
// whether each is paused (webhooks.go).
// Every answer outside ActivityStreams is a type of package api.
//
// It also serves the node's people (users.go): who a token is, the users,
// their tokens and sessions, through package accounts.
//
// Invariants: the node routes to these handlers (node/routes.go) only
// behind the guard of each route, which checks the token's scope (and for
// an outbox POST that its user acts for the actor) and audits the
// refusals; a query parameter outside its
// bounds is refused with 400 and a sentence that names it; every list is
// read a bounded page at a time; nothing is written but through the
// outbox's Submit, the engine's Resync, the store's requeue of a dead letter
// and discard of a damaged delivery record,
// the node's key rotation, the audit record of a backup and the
// resumption of a paused webhook (webhook.Dispatcher.Resume).
package jsonapi

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/openvultron/vultron/accounts"
	"github.com/openvultron/vultron/actor"
	"github.com/openvultron/vultron/api"
	"github.com/openvultron/vultron/automation"
	"github.com/openvultron/vultron/deadline"
	"github.com/openvultron/vultron/outbox"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/webhook"
)

// Config is what the API needs from the node.
type Config struct {
	Store *store.DB
	// Submit sends an activity as a local actor (outbox.Submitter.Submit).
	Submit func(ctx context.Context, name string, body []byte) (outbox.Submitted, error)
	// Resync checks a replica against its Case Actor's ledger now, or
	// drops it to fetch the ledger again (cases.Engine.Resync).
	Resync func(tx *store.Tx, caseID string, rebuild bool) error
	// Local returns a local actor (configured, or a Case Actor) by name,
	// false when there is none, and an error when it could not be looked
	// up (the store failed: a Case Actor the process has not loaded),
	// which is answered as the node's failure, not as an actor that does
	// not exist; Actors returns the configured ones.
	Local  func(ctx context.Context, name string) (actor.Local, bool, error)
	Actors func() []actor.Local
	// Accounts are the node's people: users, tokens, sessions.
	Accounts *accounts.Service
	// ClientIP returns a request's client IP, for the audit records of
	// what people do.
	ClientIP func(*http.Request) string
	// RotateKey gives the configured actor name a new key, keeping the old
	// one for overlap, and tells its peers.
	RotateKey func(ctx context.Context, name string, overlap time.Duration) (api.KeyRotation, error)
	// Wake tells the delivery workers that a delivery is due.
	Wake func()
	// MaxBody is the largest activity an outbox POST may carry.
	MaxBody int64
	// Refused logs a refused outbox POST with its whole error; the client
	// sees only the sentence.
	Refused func(r *http.Request, where string, err error)
	// PublicURL is the node's base URL, which the collection pages' ids
	// start with.
	PublicURL string
	// Deadlines are the node's deadline limits and calendar; IsLocal says
	// whether an actor id is one of this node's; Automation carries the
	// node's policy out and explains it.
	Deadlines  deadline.Config
	IsLocal    func(id string) bool
	Automation *automation.Engine
	// Webhooks lists the node's webhooks and resumes a paused one.
	Webhooks *webhook.Dispatcher
	// BackupDir is where Backup writes a copy of the store before sending
	// it (the data directory, beside the store); empty on a node without
	// a store file.
	BackupDir string
	// BackupStall is how long a backup's client may take to read 32 KiB
	// before the backup is cut short (zero: DefaultBackupStallTimeout), so that
	// a client that stopped reading does not hold the node's one backup
	// slot, and the copy beside the store, until BackupSendTimeout.
	BackupStall time.Duration
	Now         func() time.Time
	Logger      zerolog.Logger
}

// Endpoints are the handlers of the API's routes.
type Endpoints struct {
	cfg Config
	// backingUp is set while a backup is taken and sent.
	backingUp atomic.Bool
}

// New returns the endpoints of cfg.
func New(cfg Config) (*Endpoints, error) {
	if cfg.Store == nil || cfg.Submit == nil || cfg.Resync == nil || cfg.Local == nil || cfg.Actors == nil ||
		cfg.Accounts == nil || cfg.ClientIP == nil || cfg.RotateKey == nil || cfg.Wake == nil || cfg.MaxBody <= 0 || cfg.Refused == nil || cfg.Now == nil ||
		cfg.IsLocal == nil || cfg.Automation == nil || cfg.Webhooks == nil {
		return nil, errors.New("jsonapi: the configuration misses a dependency")
	}
	return &Endpoints{cfg: cfg}, nil
}
