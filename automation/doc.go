// Package automation carries an organization's policy (package rules) out
// on a node, and describes a case to a policy's conditions (CaseEnv) the
// same way for the node and for the simulator.
//
// An Engine reads, from durable cursors in the store, each local actor's
// inbox (reports received, invitations to a case) and the node's change
// feed (case entries, announced deadlines, intelligence signals), finds
// the decision points they open for the node's actors (report_received,
// invitation_received, embargo_proposed, suggestion_received, fix_ready,
// fix_deployed, advisory_published, publication, embargo_ended, intel_*),
// and asks the policy.
// The actions of the rules that fire are the protocol's ordinary actions,
// built with rules.Activity and sent through the node's outbox exactly as
// a person's would be (checked against the protocol, stored, audited,
// delivered); each is also written to the audit log with the policy, the
// rule and its line, and its activity's summary names the rule, so that
// the case's timeline does too. notify posts to a URL; ask appends a
// policy_ask event to the change feed for a person.
//
// Invariants: a decision is taken at most once (a mark keyed by the point,
// its subject and the actor is committed before its actions are sent);
// the cursors move only after the decisions they opened are taken, so a
// crash repeats reading, never deciding; a node's first read only marks
// where its inboxes and feed stand, and a policy turned on later does not
// act on what happened before; a step reads at most maxInboxScan inbox
// entries per actor and maxFeedPerStep feed events, and an explanation
// (Explain) at most the latest historyWindow entries of the case's
// ledger. A policy's "off" list names the actors it never acts for. No
// rule counters an embargo proposal a rule sent (propose_embargo at
// embargo_proposed), which would open the point again without end, and an
// actor's policy counters at most MaxCounterProposals proposals in a case,
// which bounds two nodes whose policies counter each other's.
package automation
