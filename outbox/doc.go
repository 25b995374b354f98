// Package outbox is the node's send pipeline: it validates an activity a
// local actor sends, resolves every recipient the client named (one with
// no actor this node can deliver to is refused with 422 before anything is
// stored; one whose node does not answer now is queued and retried; one
// outside the case a case activity is about is refused by the engine,
// package cases, with 422), stores it together with one queued delivery
// per recipient it names in a single transaction (the deliveries to the
// actor's followers follow it, a batch of at most social.FanoutBatch per
// transaction, from a cursor that transaction records: package social),
// and delivers each with a signed POST,
// retrying with capped exponential backoff until the peer accepts it or the
// retry horizon (seven days by default) has passed, when the delivery moves
// to the dead letters for an operator to see and retry (the store runs the
// node's dead-letter function in that move and in the retry: a Follow
// given up on fails its following until it is retried, package social).
//
// Deliveries to one recipient for one case are sent in order: the store
// hands out only the oldest pending delivery of each lane.
//
// SubmitBy records who asked for an activity (By: a user's name, which
// the node knows from the request's principal): the name is stored with
// the activity and in its audit record, never sent; only a display name,
// which the node gives when it is configured to name people, travels, as
// the activity's attributedTo (an AS2 Person with a name and no id). The
// actor and the signature stay the organization's.
//
// # Delivery
//
// A Deliverer runs a dispatcher and a fixed pool of workers. The dispatcher
// leases due deliveries from the queue whenever it holds fewer than twice
// as many as there are workers (the others wait, claimed, for the next
// free worker, so that no worker waits for a claim) and something may have
// changed: a worker finished, Wake was called after new deliveries were
// queued, or the poll interval passed. A worker makes one attempt:
//
//  1. it loads the stored activity, whose bytes are sent unchanged on every
//     attempt, so a receiver sees the same id and body each time (the
//     last one loaded is kept: a case event goes to every participant),
//     and asks DelivererConfig.Withdrawn whether the delivery is still to
//     be sent: one withdrawn since it was queued (the node's: its
//     recipient was removed from the case, cases.Withdrawn) moves to the
//     dead letters with the reason, unsent;
//  2. it resolves the recipient actor's inbox (ActorInboxes fetches and
//     caches the actor document and accepts only an inbox on the actor's
//     own host; a shared inbox only for the followers that named one on
//     their own host (package social keeps no other), for an activity
//     addressed to the actor's followers);
//  3. it signs the POST with a key of the activity's local actor and sends
//     it without following redirects: with RFC 9421 and the actor's
//     Ed25519 key (alg="ed25519", covering @method, @target-uri, @authority
//     and content-digest, created at send time) when the recipient's actor
//     document lists the FEP-844e capability of RFC 9421 Ed25519
//     signatures, as every Vultron node's actors do; otherwise with
//     draft-cavage and its RSA key (rsa-sha256, "(request-target) host
//     date digest", Date at send time), which every fediverse server
//     verifies. A 401 or 400 to an Ed25519 signature is asked again at
//     once with RSA, and the origin that accepted RSA instead is signed to
//     with RSA only for a day (signatures.go);
//  4. it classifies the answer: 2xx completes the delivery; 408, 429, 5xx
//     and network errors schedule a retry under the RetryPolicy, honouring
//     Retry-After; so does a 401 (the peer may verify with a copy of the
//     actor's key cached before a rotation, and fetch it again), until the
//     delivery has failed MaxUnauthorizedAttempts times and the attempt
//     before was a 401 too, when it is dead-lettered with a reason that
//     names the 401 and the attempt; any other status,
//     a missing signing key, a recipient that is gone or unusable and an
//     inbox on an address the node does not connect to (loopback,
//     private, a host off the federation allow-list) dead-letter it at
//     once, as does a retry that would fall after the horizon. A 410
//     Gone from the recipient's actor document or its inbox dead-letters
//     it as gone (GoneQueue: in the same transaction the follower is
//     removed, or, for a shared inbox, which names no actor, the
//     followers behind it get their later deliveries at their own
//     inboxes), and for GoneMemoryTTL the other deliveries to that actor
//     that were queued before it was found gone are dead-lettered without
//     a request, saying so, unless an operator retried them; one queued
//     after (an answer to a Follow the actor sent since) is sent.
//
// Each attempt logs one line: delivery, activity, actor, recipient, inbox,
// the signature it carried, attempt number, status, outcome, duration and
// next attempt. Activity
// bodies, keys and signatures are never logged.
//
// Leases are the store's (in memory on bbolt, in the database on
// PostgreSQL, where they expire after the lease TTL). A delivery whose
// attempt was cut short by a crash, or handed out but not started when Run
// stopped, is still pending in the store and is sent again after a
// restart: delivery is at least once, and receivers deduplicate by
// activity id.
package outbox
