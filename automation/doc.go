// Package automation carries an organization's policy (package rules) out
// on a node and in the simulator: it describes a case to the policy's
// conditions (CaseEnv) the same way in both.
package automation
