// Package sim simulates many organizations working many vulnerability
// cases in one process, to show what a policy does to the outcomes of
// disclosure before an organization trusts it, and what the load costs.
//
// It uses the project's own models, not a re-implementation of them: every
// step of a case is an activity built as a local actor submits it (the
// shapes of package vocab, through rules.Activity for a policy's actions),
// parsed and classified by vocab, applied by the case engine's
// cases.Case.Apply (which refuses what the protocol forbids, through
// cvdstate), and appended to a hash-chained ledger (ledger.NewEntry) whose
// announcements are written as a Case Actor writes them
// (cases.Announcement). The case-state history of a case is what its
// ledger records, in order; it is assessed against the twelve desiderata
// and the baselines of cvdstate. What the simulator adds is the world
// around the cases: organizations, the timing of fixes and of events in
// the world, the people who answer when no rule decides, and the
// accounting of messages, bytes and ledger entries.
//
// Two kinds of behaviour drive a case:
//
//   - a policy (package rules): every organization runs the same rules at
//     the protocol's decision points; what no rule decides, a person
//     decides after a random delay, with the default a PSIRT would take
//     (see defaults in behaviour.go); fixes, deployments, public exploits,
//     attacks and leaks come at random times drawn from the policy's
//     simulation section;
//   - random: each step chooses uniformly among the case-state events the
//     model allows at that point (cvdstate.CS.Allowed) and carries it out
//     with the protocol action that causes it, so that the measured
//     fractions converge to the random-walk baselines. Every case then goes
//     through a coordinator, so that the public, an exploit or attacks may
//     come before the vendor learns of the vulnerability, as the model
//     allows.
//
// Cases are independent: each has its own random stream derived from the
// seed and its number, so a run's results do not depend on how many
// workers share the cases. Each case is bounded (MaxEventsPerCase); a case
// that reaches the bound is counted as cut short rather than run on.
//
// The simulator keeps no store and sends nothing over a network: messages
// and bytes are counted as a node would send them (a participant's
// activity to a Case Actor on another node, each announcement of a ledger
// entry to a participant on another node, the report's exchange before a
// case exists, the Case Actor's invitations).
package sim
