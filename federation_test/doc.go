// Package federation_test holds tests that run whole nodes and foreign
// peers on loopback (127.0.0.1): a node is started in-process and talks
// over real HTTP to implementations this project did not write.
//
// The foreign peer in peer/ is a small Node.js script built on Fedify, an
// independent ActivityPub framework, with the Misskey and PeerTube HTTP
// signature verifiers as second opinions. Its packages are pinned in
// peer/package-lock.json and installed by `make test` (npm ci); see
// docs/interop.md for what is tested and what was found.
//
// The scripts of deploy/ run here too: `make demo` (deploy/demo.sh) and the
// fv story it shares with the compose deployment (deploy/story.sh), with
// /bin/sh as in the image, against local nodes.
//
// The cluster tests run several `vultron serve` processes on loopback and
// drive them through their outboxes. TestFaults puts a fault-injecting
// proxy in front of each of five nodes, drives a schedule drawn from a
// seed, and checks that every replica converges to its Case Actor's
// ledger once the faults healed; see docs/faults.md.
// TestPublicationNetwork runs a whole publication on three processes
// through the command line: following, products, draft review, the leak
// check under embargo, the advisory reaching a follower, and its CSAF
// document through secvisogram's validator (peer/csaf-validate.mjs); with
// the conformance tag, the CVE and OSV records it served are checked
// against their official schemas.
//
// The package has no code of its own besides its tests.
package federation_test
