// Package rules owns an organization's automation policy as data: the file
// format (YAML, or the same document in JSON), the protocol's decision
// points a rule is keyed by, the conditions (expressions of
// github.com/expr-lang/expr over the case, the report, the sender, the
// proposal, the invitation, the intelligence signal and the clock) and the
// actions a rule takes, which are the protocol's ordinary actions.
//
// A policy is checked whole when it is parsed: an unknown key, decision
// point or action, an action a decision point cannot take, a missing
// argument, or a condition that does not compile against the typed
// environment (Env) refuses the file, with the line of the first fault and
// the reason. Nothing of a refused file is used.
//
// The package is pure: it reads no file and keeps no package state. It
// decides which rules fire and what they ask for (Evaluate), and explains
// why each rule does or does not (Explain); carrying an action out is the
// caller's work (the node's automation package, the simulator).
//
// Expressions run under expr's limits: a bounded syntax tree (MaxNodes) and
// its virtual machine's memory budget, and the environment holds only
// bounded lists, so no rule can make a decision unbounded work.
//
// Parsing is hand-written over go.yaml.in/yaml/v3's node tree rather than
// decoded into structs, because the tree keeps the line of every key and
// value, which a refusal must name, and because an action is written either
// as a bare name or as a one-key mapping with arguments.
package rules
