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
// report id, one entry per local actor, beside the report's running
// deadline clocks (deadlines.go).
//
// # Cases, the Case Actor and replicas
//
// Validating a report opens a case whose Case Actor (a Service actor of
// this node) is the single writer of its ledger (host.go): it applies every
// case-scoped activity with Case.Apply, appends it as a ledger entry and
// announces the entry to the participants on other nodes. A participant's
// node keeps a replica (replica.go): it applies entries in ledger order
// only, with the same Case.Apply, and keeps none that arrive early. Where
// this release refuses what a Case Actor of an earlier release recorded as
// applied (laterRule), the replica follows its Case Actor.
//
// A replica repairs itself by pulling (sync.go, syncer.go): every sign of a
// gap makes its one scheduled check due now, and the check fetches pages of
// the Case Actor's ledger (ReadLedgerPage on the host) from the replica's
// tail. Checks of replicas in sync find a lost tail at growing intervals. A
// replica whose ledger differs from the Case Actor's is forked: it applies
// nothing more until an operator rebuilds it (Engine.Resync); the rebuilt
// copy announces on the change feed only the entries no earlier copy held
// (bucketEmitted), so that webhooks get no entry twice, and keeps the
// case's deadline clocks as they were until it reaches the Case Actor's
// tail (SyncState.ClocksHeld), so that no deadline is announced twice. A
// replica whose Case Actor refuses its actor the ledger again and again
// (the removal's announcement was lost) is ended and checked no more
// (SyncState.Ended). Invariants:
// a replica's ledger is always a prefix of a chain that verifies from the
// case's genesis hash; its case state is the fold of that prefix; its sync
// state, schedule entry and the counts of replicas behind and forked are
// written in the transaction that changes the replica; the host stores
// nothing to serve a repair.
//
// # Replies
//
// Every message is answered with its model's acknowledgement, or its
// error when it is refused (replies.go): by the Case Actor for what is
// sent to it (one reply per message, never one per replica), by the
// local actor for what reaches it directly. A reply a local actor
// receives is stored and listed under its case or report (Replies,
// CaseTimeline, which also names the person who had each of this node's
// entries sent, read from the stored activity: SentBy) and never
// answered; only the vendor's awareness (CV) an
// RK carries is acknowledged. An error to a sender that may not read the
// case says nothing the case knows of what it refused.
//
// # Fan-out, reports and relations
//
// The Case Actor announces each entry to the participants that work on
// the case, and to those that closed it or left active work only when they
// still need it (Case.AnnounceTo); their nodes fetch the rest when such an
// entry shows the gap. A delivery of the case's content queued before its
// recipient was removed is withdrawn at its next attempt (Withdrawn,
// participants.go), all but the announcement of that removal: the check
// reads an index of the case's participants that saveCase keeps, not the
// case's record; a replica that is announced its own actor's removal past
// entries it lacks stops there, checking the ledger no more. A local
// actor's case activity names no other recipient
// than the Case Actor and the participants, but where the protocol
// addresses others on purpose (checkAddressees). A case may hold several reports (the owner adds a
// received one; a report in a case opens no other), and relations to other
// cases, indexed from both ends (Related). Every step of a report, before
// and as it joins a case, is an event of the change feed (reportEvent),
// like every ledger entry.
//
// Slow work (making a Case Actor's key) is done by Engine.Prepare before
// the write that needs it, never inside the store's write path.
//
// # Look-ups
//
// Clients name cases and reports by short ids and ask whether a case
// recorded an activity they sent; lookup.go answers both from indexes kept
// in the transactions that write what they index: the short id (last
// segment) of every case and report, the index of recorded activities
// (an activity stays indexed where it was recorded when a later entry
// carries it inline), and the Case Actor refusals that reached the local
// actor that sent the refused activity (ApplyInbound). MigrateShortIDs
// indexes the cases and reports of an older store once.
//
// # Closing
//
// A participant's Leave closes its own report; the owner's closes the
// case (Effects.CloseCase): the Case Actor records, in the Leave's
// transaction, its own Leave of the case (EventCaseFullyClosed), which
// every replica folds into Case.Closure, ending the case's open
// invitations, suggestions, ownership offer and embargo proposals. After
// it Apply takes nothing but a remaining participant's own Leave, which
// may take the RM steps that participant skipped, so that every
// participant can end CLOSED. A Case Actor's entry is announced to every
// participant when it sets Closure and when every participant has left
// (AnnounceTo).
//
// # Embargo consent
//
// A proposal invites the participants it does not bind, and each open
// proposal carries its RSVP deadline (AnswerBy). Consent past that
// deadline is read, never stored: Case.ConsentAt gives DECLINED for an
// INVITED or LAPSED participant whose deadline passed, and only the Case
// Actor refuses a late Accept (CheckRSVP, not Apply), so replicas agree
// with whatever their Case Actor recorded. The owner's acceptance of terms
// leaves no proposal to answer: whoever did not accept them is DECLINED
// from then on (acceptEmbargo). A rejected revision binds again the
// signatories of the terms in force (revisionRejected).
//
// # Embargo length
//
// Config.MaxEmbargo is the node's own limit: checkCase refuses a local
// actor's longer proposal and hostInbound has the Case Actor refuse one
// from any participant; replicas never apply it to entries their Case
// Actor recorded.
//
// # Publication time
//
// checkCase also refuses a local actor's proposal of a publication time
// that has passed (checkProposedTime); it is no rule of the case, so a
// proposal the Case Actor recorded applies on every replica whatever its
// time. A product's versions in a form the advisory's documents cannot
// read are refused by the sender's node and the Case Actor alike
// (checkProductVersions), not by Apply, for the same reason, and so is a
// CPE name the documents cannot carry (checkProductCPE); so are an
// advisory published while an embargo proposal waits for answers and an
// embargo proposed or accepted once the advisory is public
// (checkEmbargoAndAdvisory).
//
// # Counts
//
// The number of cases in each embargo and world state is kept in the store
// by every save of a case record, in its transaction (counts.go), so that
// Counts costs the same for ten cases as for thirty thousand. A store
// written before the counts is counted once by MigrateCounts; nothing
// may write a case record but saveCase, or the counts drift.
//
// # The advisory
//
// What a case's advisory says is recorded in its ledger like every case
// activity (publication.go, advisories.go): the vendors' product statuses
// (Add(ProductStatus)), the draft shared for review and each reviewer's
// answer, the proposed publication time and who accepted it (GI notes),
// and each publication (Create, then Update, of the owner's Article),
// which is refused while the embargo is in force and the public is not
// aware (Case.PublicationBlocked). Each revision keeps everything its
// documents say, so package advisory derives them from the case alone and
// a published revision's documents never change. Bounds: 200 products, 50
// revisions, 32 reviewers.
//
// # Deadline clocks
//
// The clocks a case's participants and a report's receiver run (to
// acknowledge, validate, engage, fix; the CRA clocks once attacks are
// observed; the embargo's end) are derived from the case and report
// records and indexed by kind and start time in the transaction that
// writes the record (deadlines.go): saveCase and writeReport keep the
// index, so it never drifts from the ledger, and listing what is due costs
// the clocks listed. How long a clock may run is the node's configuration
// (package deadline). MigrateClocks indexes an older store once.
package cases
