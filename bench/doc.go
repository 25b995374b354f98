// Package bench measures what a Vultron node can carry: inbox throughput
// against the cost of the work every accepted activity needs (limit.go: the
// plain limit, and the limit of an activity accepted and acknowledged, its
// RK signed with Ed25519 or RSA; limitinbox.go: the plain limit's work
// behind HTTP, served as an inbox of its own), fan-out of a case event to
// many participants (signed with Ed25519 or RSA), a case with thousands of
// participants and tens of thousands of ledger entries, and the footprint
// of a node process, on bbolt and on PostgreSQL, and how those figures grow
// with the number of cases a store holds.
//
// The node's inbox is compared with two Node.js inboxes on the same machine
// and load: the interoperability tests' peer (federation_test/peer, three
// signature verifiers per request and no key cache) and a plain Fedify inbox
// (fedify-inbox/, one actor and one inbox listener on Fedify's own inbox
// handling), each pinned by its package-lock.json.
//
// The package holds the harnesses; `make bench` runs them through
// bench/run, which prints every figure with the command that produced it
// and writes bench/results/results.json, read by bench/plot.py. Nothing here
// runs in `make test` beyond smoke tests at tiny sizes, and nothing fails on
// a number. Every harness talks to 127.0.0.1 only.
package bench
