// Package vultron is the root of a node for multi-party coordinated
// vulnerability disclosure that speaks the Vultron Protocol over ActivityPub.
//
// The module's packages, and the one direction their dependencies point:
//
//	cvdstate   the protocol's state models (RM, EM, PEC, CS); pure, no I/O
//	vocab      Vultron activities parsed from and written to JSON, classified
//	           into protocol messages; pure, no I/O
//	ledger     the hash-chained case ledger entry, RFC 8785 canonical JSON,
//	           chain verification and a replica's receive state; pure
//	store      the database (bbolt file or PostgreSQL): the only package
//	           that imports a database driver
//	actor      local actors, their keys and documents; HTTP signatures
//	problem    refusals as HTTP status and JSON error body
//	cases      reports and cases: the case model folded from the ledger, the
//	           Case Actor that writes it, the replicas that follow it
//	inbox      the receive pipeline: verify, dedup, classify, apply, store
//	outbox     the send pipeline: validate, store, queue, sign, deliver
//	policy     which peers the node federates with and how often they may
//	           call it, decided before any key is fetched
//	webhook    the case events posted to the URLs an operator configures
//	api        the JSON shapes of the node's API, written by the node and
//	           read by the command line and the tests; no behaviour
//	node/federation  what peers call: inboxes, actor documents,
//	           WebFinger, NodeInfo, signed GETs of what the node holds
//	node/jsonapi     the token-authenticated JSON API (package api's types)
//	node/dashboard   the web interface for people
//	node/calendar    the embargo calendars
//	rules      an automation policy as data: decision points, expr conditions,
//	           actions; pure
//	deadline   deadline limits, the business-day calendar, listings and the
//	           watcher that announces deadlines (the clocks are cases')
//	intel      threat-intelligence feeds: parsing, polling, matching cases
//	automation a policy carried out on a node through the outbox
//	sim        many organizations and cases simulated with the case engine
//	node       one running node: its configuration, the wiring of its
//	           parts, the guards in front of its routes, its lifecycle
//	cmd/vultron the binary: the command-line client of a node's API, and
//	           "vultron serve", which turns flags into a node.Config
//	internal/crashtest  for tests only: kills a child process mid-write
//	internal/httplex tokens and quoted strings of HTTP header values, for
//	           the Signature (actor) and Forwarded (policy) parsers; pure
//	internal/urlhost whether two URLs are on the same host (a key and its
//	           owner, an actor and its inbox, a case and who announces it)
//
// This package holds no code; its tests check that the layering above holds.
package vultron
