// Package api holds the JSON shapes the node answers with outside
// ActivityStreams: its token-authenticated API (/api/..., an actor's
// invitations), the answer to an inbox POST, and the {"error": ...} body
// of every refusal. The node's HTTP surfaces write these types and
// nothing else, and the command line (cmd/vultron) and the tests read
// them, so a field is added, renamed or dropped in one place for all of
// them.
//
// Values that the domain packages already define as their own JSON (a
// case's embargo, notes and invitations, a ledger entry, a replica's
// status, an audit record) are used as they are: this package names them
// (ReplicaStatus, AuditRecord ...) rather than copying them.
//
// The types carry no behaviour; the package does no I/O and imports no
// HTTP surface, so that a client depends on the shapes without depending
// on the server.
package api
