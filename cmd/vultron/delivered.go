package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/openvultron/vultron/api"
)

// firstAttemptWait bounds how long an action that no case records (a
// report's submission, a decision on a report) waits for the first
// delivery attempt of its activity: long enough for a peer that answers,
// short enough that a peer that does not answer holds nobody up, since
// the node retries it for days.
const firstAttemptWait = 10 * time.Second

// deliveryScanPages bounds the pages of the delivery queue (and of the
// dead letters) read to find an activity's deliveries: on a node whose
// queue is longer, the command says it could not tell rather than read it
// all.
const deliveryScanPages = 5

// deliveryPageSize is the page the scan asks for, the API's largest.
const deliveryPageSize = 1000

// Delivery states of an activity, as --json prints them.
const (
	deliveryDelivered = "delivered" // no delivery of it is left: every recipient took it
	deliveryPending   = "pending"   // queued, no attempt made yet
	deliveryRetrying  = "retrying"  // an attempt failed; the node tries again
	deliveryDead      = "dead"      // given up: a dead letter
	deliveryUnknown   = "unknown"   // the queue is too long to tell
)

// deliveryOutcome is what became of an activity's deliveries once its
// first attempts were made, or once the wait for them ran out.
type deliveryOutcome struct {
	State string `json:"state"`
	// Pending and Dead are the activity's deliveries still queued and
	// given up, as the node lists them.
	Pending []api.Delivery `json:"pending,omitempty"`
	Dead    []api.Delivery `json:"dead,omitempty"`
	// Reason says why the state is unknown.
	Reason string `json:"reason,omitempty"`
}

// activityDeliveries reads the node's pending deliveries and dead letters
// of activity id, at most deliveryScanPages pages of each. complete says
// whether every page was read, so that a delivery in neither list was
// made.
func activityDeliveries(ctx context.Context, c *client, id string) (pending, dead []api.Delivery, complete bool, err error) {
	var pendingAfter, deadAfter uint64
	pendingDone, deadDone := false, false
	for range deliveryScanPages {
		q := url.Values{"limit": {strconv.Itoa(deliveryPageSize)}}
		if pendingAfter != 0 {
			q.Set("pendingAfter", strconv.FormatUint(pendingAfter, 10))
		}
		if deadAfter != 0 {
			q.Set("deadAfter", strconv.FormatUint(deadAfter, 10))
		}
		var page api.Deliveries
		if err := c.do(ctx, "GET", "/api/deliveries?"+q.Encode(), nil, &page); err != nil {
			return nil, nil, false, err
		}
		// A list read to its end is asked again from its start with the
		// other one's next page: its rows are not taken twice.
		if !pendingDone {
			pending = append(pending, ofActivity(page.Pending, id)...)
			pendingAfter, pendingDone = page.PendingNext, page.PendingNext == 0
		}
		if !deadDone {
			dead = append(dead, ofActivity(page.Dead, id)...)
			deadAfter, deadDone = page.DeadNext, page.DeadNext == 0
		}
		if pendingDone && deadDone {
			return pending, dead, true, nil
		}
	}
	return pending, dead, false, nil
}

// ofActivity returns the deliveries of ds that carry activity id.
func ofActivity(ds []api.Delivery, id string) []api.Delivery {
	var out []api.Delivery
	for _, d := range ds {
		if d.Activity == id {
			out = append(out, d)
		}
	}
	return out
}

// outcomeOf says what became of an activity's deliveries from those of
// them still pending and given up, complete saying whether the whole
// queue was read: pending while one of them waits for its first attempt.
func outcomeOf(pending, dead []api.Delivery, complete bool) deliveryOutcome {
	untried := false
	for _, d := range pending {
		untried = untried || d.Attempts == 0
	}
	switch {
	case len(dead) > 0:
		return deliveryOutcome{State: deliveryDead, Pending: pending, Dead: dead}
	case len(pending) == 0 && complete:
		return deliveryOutcome{State: deliveryDelivered}
	case len(pending) == 0:
		return deliveryOutcome{State: deliveryUnknown, Reason: "the node's delivery queue is too long to tell whether it was delivered"}
	case untried:
		return deliveryOutcome{State: deliveryPending, Pending: pending}
	}
	return deliveryOutcome{State: deliveryRetrying, Pending: pending}
}

// awaitFirstAttempt waits, at most wait, until every delivery of activity
// id was attempted at least once, and says what became of them: delivered,
// retrying after a failed attempt, given up, or still waiting for its
// first attempt when the wait ran out.
func awaitFirstAttempt(ctx context.Context, c *client, id string, wait time.Duration) (deliveryOutcome, error) {
	deadline := time.Now().Add(wait)
	for {
		pending, dead, complete, err := activityDeliveries(ctx, c, id)
		if err != nil {
			// The activity is queued whatever the queue's page says: a
			// token that may not read the queue learns that much.
			return deliveryOutcome{State: deliveryUnknown, Reason: "its delivery queue could not be read: " + err.Error()}, nil
		}
		if o := outcomeOf(pending, dead, complete); o.State != deliveryPending || time.Now().After(deadline) {
			return o, nil
		}
		select {
		case <-ctx.Done():
			return deliveryOutcome{}, fmt.Errorf("the node accepted %s; stopped waiting for its first delivery attempt: %w", id, ctx.Err())
		case <-time.After(waitPollInterval):
		}
	}
}

// sentence says in one line what became of the deliveries, for a person;
// "" when every recipient took the activity.
func (o deliveryOutcome) sentence() string {
	switch o.State {
	case deliveryDelivered:
		return ""
	case deliveryUnknown:
		return "queued; " + sentence(o.Reason) + " (\"vultron deliveries\" lists the queue)"
	case deliveryPending:
		return fmt.Sprintf("queued for %s, first attempt pending (\"vultron deliveries\" lists it)", recipients(o.Pending))
	}
	var parts []string
	for _, d := range o.Dead {
		parts = append(parts, fmt.Sprintf("the delivery to %s failed for good: %s (\"vultron deliveries retry %d\" queues it again)", d.Recipient, sentence(d.LastError), d.ID))
	}
	for _, d := range o.Pending {
		if d.Attempts == 0 {
			parts = append(parts, fmt.Sprintf("the delivery to %s is queued, first attempt pending", d.Recipient))
			continue
		}
		// Attempts may be more than one by now, on a node that retries
		// at once: the sentence names the last error, not a count.
		parts = append(parts, fmt.Sprintf("the delivery to %s failed (%s); the node retries it, next at %s, until it is delivered or its retry horizon passes (\"vultron deliveries\" lists it)",
			d.Recipient, sentence(d.LastError), d.NextAttempt.UTC().Format(time.RFC3339)))
	}
	return "not delivered: " + strings.Join(parts, "; ")
}

// givenUp is the failure of activity id whose delivery was given up (a
// dead letter), nil for any other outcome.
func (o deliveryOutcome) givenUp(id string) error {
	if o.State != deliveryDead {
		return nil
	}
	return fmt.Errorf("the node accepted %s, but %s", id, strings.TrimPrefix(o.sentence(), "not delivered: "))
}

// printDelivery waits for the first delivery attempt of activity id, which
// no case records, and prints done with, when it did not arrive, why; a
// delivery given up is the error instead.
func printDelivery(ctx context.Context, s *session, id, done string) error {
	o, err := awaitFirstAttempt(ctx, s.c, id, firstAttemptWait)
	if err != nil {
		return err
	}
	if err := o.givenUp(id); err != nil {
		return err
	}
	fmt.Fprintln(s.env.stdout, done)
	if line := o.sentence(); line != "" {
		fmt.Fprintln(s.env.stdout, line)
	}
	return nil
}

// recipients names the recipients of ds.
func recipients(ds []api.Delivery) string {
	var rs []string
	for _, d := range ds {
		rs = append(rs, d.Recipient)
	}
	return strings.Join(rs, ", ")
}
