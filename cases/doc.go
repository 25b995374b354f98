// Package cases keeps this node's view of the vulnerability reports and
// cases its local actors take part in, and decides through cvdstate whether
// an activity is allowed and what it changes.
//
// An Engine is used from inside a store transaction, so that the state a
// message changes is committed together with the message itself (and the
// replies it calls for): the inbox calls ApplyInbound for every verified
// activity and the outbox calls ApplyOutbound for every activity a local
// actor sends. Both return a *problem.Error when the protocol forbids the
// activity in the current state, and nothing is written.
//
// # Reports
//
// Before a case exists, a report travels directly between a reporter and a
// receiver (Offer(VulnerabilityReport), the RS message). Each local actor
// keeps one record per report: its own Report Management (RM) state and its
// model of the peer's. The reporter enters at ACCEPTED (finders only enter
// the process already working on the report); the receiver moves from START
// to RECEIVED on receipt and acknowledges with Read(Offer(Report)) (RK). The
// receiver's validate (RV), invalidate (RI) and close (RC) are checked
// against its RM state, and the reporter updates its model of the receiver
// and acknowledges each with RK.
//
// Records live in the store's case buckets under the key "report " + the
// report id, one entry per local actor.
//
// # Counts
//
// The number of cases in each embargo and world state is kept in the store
// by every save of a case record, in its transaction (counts.go), so that
// Counts costs the same for ten cases as for thirty thousand. A store
// written before the counts is counted once by MigrateCounts; nothing
// may write a case record but saveCase, or the counts drift.
package cases
