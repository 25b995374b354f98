package api

import (
	"encoding/json"
	"time"

	"github.com/openvultron/vultron/problem"
	"github.com/openvultron/vultron/store"
	"github.com/openvultron/vultron/vocab"
)

// Error is the body of every refusal: {"error": "<one sentence>"}.
type Error = problem.Body

// HeaderDataKeyID is the header of GET /api/backup's answer that names
// the data key (its id, as the node logs it at start) the backup's sealed
// values open with; absent for a store without a data key.
const HeaderDataKeyID = "Vultron-Data-Key-Id"

// InboxReceipt is the answer to an accepted inbox POST.
type InboxReceipt struct {
	Duplicate bool           `json:"duplicate"`
	ID        string         `json:"id"`
	Semantic  vocab.Semantic `json:"semantic"`
}

// Actor is one of the node's configured actors (not a Case Actor).
type Actor struct {
	Name string `json:"name"`
	ID   string `json:"id"`
	Type string `json:"type"`
}

// ActorList is GET /api/actors: the node's configured actors, sorted by
// name.
type ActorList struct {
	Actors []Actor `json:"actors"`
}

// Invitation is an invitation to a case that a local actor received: the
// Case Actor's Invite naming it.
type Invitation struct {
	ID       string          `json:"id"`
	Actor    string          `json:"actor"`
	Case     string          `json:"case"`
	Activity json.RawMessage `json:"activity"`
	// Accepted says that the invitee takes part in the case on this
	// node's copy of it: the invitation was accepted and is answered.
	Accepted bool `json:"accepted,omitempty"`
}

// InvitationList is GET /actors/{name}/invitations, newest first.
type InvitationList struct {
	Invitations []Invitation `json:"invitations"`
}

// KeyRotation is POST /api/actors/{name}/rotate-key.
type KeyRotation struct {
	Actor         string    `json:"actor"`
	KeyID         string    `json:"keyId"`
	PreviousKeyID string    `json:"previousKeyId"`
	PreviousUntil time.Time `json:"previousKeyUntil"`
	// Update is the id of the Update(actor) queued to the peers, and
	// Peers how many it goes to.
	Update string `json:"update,omitempty"`
	Peers  int    `json:"peers"`
}

// Delivery is a queued delivery or a dead letter.
type Delivery struct {
	ID          uint64    `json:"id"`
	Activity    string    `json:"activity"`
	Actor       string    `json:"actor"`
	Recipient   string    `json:"recipient"`
	OrderingKey string    `json:"orderingKey,omitempty"`
	Attempts    int       `json:"attempts"`
	FirstQueued time.Time `json:"firstQueued"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
	LastError   string    `json:"lastError,omitempty"`
}

// Deliveries is GET /api/deliveries?limit=N&pendingAfter=ID&deadAfter=ID: a
// page of the pending deliveries and one of the dead letters, oldest
// first, with their counts. PendingNext and DeadNext, when set, are the
// pendingAfter and deadAfter of the following pages.
type Deliveries struct {
	Dead         []Delivery `json:"dead"`
	DeadCount    int        `json:"deadCount"`
	DeadNext     uint64     `json:"deadNext,omitempty"`
	Pending      []Delivery `json:"pending"`
	PendingCount int        `json:"pendingCount"`
	PendingNext  uint64     `json:"pendingNext,omitempty"`
}

// Requeued is POST /api/deliveries/{id}/retry: the dead letter moved back
// into the queue and the delivery it became.
type Requeued struct {
	Delivery uint64 `json:"delivery"`
	Requeued uint64 `json:"requeued"`
}

// DamagedDelivery is a delivery record the node set aside because it did
// not open or decode: what can be told of it without its bytes, which
// are sealed case content and never leave the store.
type DamagedDelivery struct {
	ID uint64 `json:"id"`
	// SetAside is when the node set it aside; absent for one set aside
	// by a release that did not note it.
	SetAside time.Time `json:"setAside,omitzero"`
	// Bytes is the size of the record as stored.
	Bytes int `json:"bytes"`
	// Reason says why it did not open or decode.
	Reason string `json:"reason"`
}

// DamagedDeliveries is GET /api/deliveries/damaged?limit=N&after=ID: a page
// of the damaged delivery records, oldest first, with their count. Next,
// when set, is the after of the following page.
type DamagedDeliveries struct {
	Damaged []DamagedDelivery `json:"damaged"`
	Count   int               `json:"count"`
	Next    uint64            `json:"next,omitempty"`
}

// DamagedDiscarded is DELETE /api/deliveries/damaged/{id}: the damaged
// delivery record discarded.
type DamagedDiscarded struct {
	Discarded uint64 `json:"discarded"`
}

// AuditRecord is one record of the node's hash-chained audit log; the
// store defines and chains it.
type AuditRecord = store.AuditRecord

// AuditPage is GET /api/audit?after=SEQ&limit=N: a page of the audit log,
// oldest first.
type AuditPage struct {
	Records []AuditRecord `json:"records"`
	// Next is the after value of the next page, absent on the last.
	Next uint64 `json:"next,omitempty"`
}

// AuditVerdict is GET /api/audit/verify: the outcome of checking the whole
// chain.
type AuditVerdict = store.AuditVerdict

// CalendarLinks is GET /api/calendar and POST /api/calendar/token: the
// embargo feeds' URLs, with the feed token.
type CalendarLinks struct {
	Calendar     string `json:"calendar"`
	CaseTemplate string `json:"caseTemplate"`
}

// Webhook is one of the node's webhooks (serve --webhook), as GET
// /api/webhooks lists it: where it is in the change feed and whether
// the node paused it. Its URL is shown with its password, if it has
// one, replaced by "xxxxx"; its signing secret is never shown.
type Webhook struct {
	// ID names the webhook in POST /api/webhooks/{id}/resume.
	ID  string `json:"id"`
	URL string `json:"url"`
	// Delivered is the sequence number of the last event the webhook
	// acknowledged or the node gave up on; Pending counts the events
	// after it.
	Delivered uint64 `json:"delivered"`
	Pending   uint64 `json:"pending"`
	// Skipped counts the events given up on after the retry horizon.
	Skipped   uint64 `json:"skipped"`
	LastError string `json:"lastError,omitempty"`
	// Paused, when present, says since when and why the node sends the
	// webhook nothing: it refused an event for good too many times in a
	// row. Its events are kept until an operator resumes it.
	Paused *WebhookPause `json:"paused,omitempty"`
}

// WebhookPause says since when and why a webhook is paused; the store
// defines it.
type WebhookPause = store.WebhookPause

// Webhooks is GET /api/webhooks: the node's webhooks, in the order
// configured.
type Webhooks struct {
	Webhooks []Webhook `json:"webhooks"`
}

// Readiness is the body of an answer of GET /readyz: Status is "ready"
// (200) or "not ready" (503); then Check names the check that failed
// (started, stopping, data_key, store, schema) and Error says why, in
// words that name no file, database address or secret.
type Readiness struct {
	Status string `json:"status"`
	Check  string `json:"check,omitempty"`
	Error  string `json:"error,omitempty"`
}
